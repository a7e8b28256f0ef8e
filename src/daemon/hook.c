/* hook.c - runs the --on-event program for each event, one at a time, off
 * the event loop (see hook.h). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/config.h"
#include "common/ev.h"
#include "common/log.h"
#include "common/state.h"
#include "common/util.h"
#include "hook.h"

extern char **environ;

/* One queued event: its strings as the program's arguments and
 * environment ("DST_EVENT=node-lost"). */
struct hook_job {
	char *event, *name, *node;
	char *env[7];
};

struct hook {
	struct ev_loop *loop;
	char *program;
	unsigned timeout_s;
	struct hook_job q[HOOK_QUEUE_MAX]; /* a ring */
	unsigned head, len;
	unsigned long dropped;
	/* The one running. */
	pid_t pid;
	int pidfd;
	struct ev_io w;
	struct ev_timer timeout, poll; /* poll: no pidfd (old kernels) */
	bool killed;
	uint64_t started_ns;
};

static void job_free(struct hook_job *j)
{
	free(j->event);
	free(j->name);
	free(j->node);
	for (size_t i = 0; i < sizeof(j->env) / sizeof(j->env[0]); i++)
		free(j->env[i]);
	memset(j, 0, sizeof(*j));
}

static bool is_ours(const char *e)
{
	static const char *const keys[] = {
	    "DST_EVENT=",     "DST_KIND=",   "DST_NAME=",     "DST_NODE=",
	    "DST_NODE_SPEC=", "DST_DETAIL=", "DST_STATE_DIR="};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (!strncmp(e, keys[i], strlen(keys[i])))
			return true;
	return false;
}

static void start_next(struct hook *h);

/* The program is done (or was killed): say how, run the next. */
static void reap(struct hook *h)
{
	int status;
	pid_t r;
	do
		r = waitpid(h->pid, &status, WNOHANG);
	while (r < 0 && errno == EINTR);
	if (r == 0)
		return; /* not yet */
	struct hook_job *j = &h->q[h->head];
	if (r < 0)
		log_warn("event hook %s %s: waitpid: %s", h->program, j->event, strerror(errno));
	else if (h->killed)
		log_warn("event hook %s %s: still running after %u s: killed", h->program, j->event,
			 h->timeout_s);
	else if (WIFEXITED(status) && WEXITSTATUS(status))
		log_warn("event hook %s %s: exit status %d", h->program, j->event,
			 WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		log_warn("event hook %s %s: killed by signal %d", h->program, j->event,
			 WTERMSIG(status));
	if (h->pidfd >= 0) {
		ev_io_stop(h->loop, &h->w);
		close(h->pidfd);
		h->pidfd = -1;
	}
	ev_timer_stop(h->loop, &h->timeout);
	ev_timer_stop(h->loop, &h->poll);
	h->pid = 0;
	h->killed = false;
	job_free(j);
	h->head = (h->head + 1) % HOOK_QUEUE_MAX;
	h->len--;
	start_next(h);
}

static void on_pidfd(struct ev_io *w, uint32_t events)
{
	reap(container_of(w, struct hook, w));
}

static void on_poll(struct ev_timer *t)
{
	struct hook *h = container_of(t, struct hook, poll);
	reap(h);
	if (h->pid && !h->poll.armed)
		ev_timer_start(h->loop, &h->poll, 200 * 1000000ull);
}

/* It hangs: kill it and whatever it started (its own process group). */
static void on_timeout(struct ev_timer *t)
{
	struct hook *h = container_of(t, struct hook, timeout);
	h->killed = true;
	if (kill(-h->pid, SIGKILL) < 0)
		kill(h->pid, SIGKILL);
}

static int spawn(struct hook *h, struct hook_job *j)
{
	size_t n = 0;
	while (environ && environ[n])
		n++;
	const char **envp = xcalloc(n + 8, sizeof(*envp));
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (!is_ours(environ[i]))
			envp[k++] = environ[i];
	for (size_t i = 0; i < sizeof(j->env) / sizeof(j->env[0]); i++)
		envp[k++] = j->env[i];
	char *argv[] = {h->program, j->event, j->name, j->node[0] ? j->node : NULL, NULL};

	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	/* stdout: the log, as stderr is once dstd has daemonized. */
	posix_spawn_file_actions_adddup2(&fa, 2, 1);
	posix_spawnattr_init(&at);
	/* dstd blocks the signals it reads through a signalfd, and ignores
	 * SIGPIPE: the program gets the defaults. Its own process group lets
	 * a timeout kill what it started too. */
	sigset_t none, defs;
	sigemptyset(&none);
	sigemptyset(&defs);
	sigaddset(&defs, SIGPIPE);
	sigaddset(&defs, SIGTERM);
	sigaddset(&defs, SIGINT);
	sigaddset(&defs, SIGHUP);
	sigaddset(&defs, SIGCHLD);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &defs);
	posix_spawnattr_setpgroup(&at, 0);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
					  POSIX_SPAWN_SETPGROUP);
	pid_t pid;
	int rc = strchr(h->program, '/')
		     ? posix_spawn(&pid, h->program, &fa, &at, argv, (char *const *)envp)
		     : posix_spawnp(&pid, h->program, &fa, &at, argv, (char *const *)envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	free(envp);
	if (rc != 0)
		return -rc;
	h->pid = pid;
	return 0;
}

static void start_next(struct hook *h)
{
	while (h->len && !h->pid) {
		struct hook_job *j = &h->q[h->head];
		int rc = spawn(h, j);
		if (rc < 0) {
			log_warn("event hook %s %s: cannot run it: %s", h->program, j->event,
				 strerror(-rc));
			job_free(j);
			h->head = (h->head + 1) % HOOK_QUEUE_MAX;
			h->len--;
			continue;
		}
		h->started_ns = ev_now_ns();
		h->pidfd = pidfd_open(h->pid, 0);
		if (h->pidfd < 0 || ev_io_start(h->loop, &h->w, h->pidfd, EPOLLIN) < 0) {
			if (h->pidfd >= 0)
				close(h->pidfd);
			h->pidfd = -1;
			ev_timer_start(h->loop, &h->poll, 200 * 1000000ull);
		}
		if (h->timeout_s)
			ev_timer_start(h->loop, &h->timeout,
				       (uint64_t)h->timeout_s * 1000000000ull);
	}
}

void hook_event(void *arg, const struct dst_event *ev)
{
	struct hook *h = arg;
	if (h->len == HOOK_QUEUE_MAX) {
		/* A flood while the program is slow: the log has every event. */
		h->dropped++;
		log_warn("event hook %s: %u events already waiting: %s not passed to it",
			 h->program, h->len, ev->name);
		return;
	}
	struct hook_job *j = &h->q[(h->head + h->len) % HOOK_QUEUE_MAX];
	j->event = xstrdup(ev->name);
	j->name = xstrdup(ev->source);
	j->node = xstrdup(ev->node);
	j->env[0] = xasprintf("DST_EVENT=%s", ev->name);
	j->env[1] = xasprintf("DST_KIND=%s", ev->kind);
	j->env[2] = xasprintf("DST_NAME=%s", ev->source);
	j->env[3] = xasprintf("DST_NODE=%s", ev->node);
	j->env[4] = xasprintf("DST_NODE_SPEC=%s", ev->spec);
	j->env[5] = xasprintf("DST_DETAIL=%s", ev->detail);
	j->env[6] = xasprintf("DST_STATE_DIR=%s", state_dir());
	h->len++;
	start_next(h);
}

struct hook *hook_new(struct ev_loop *loop, const struct conf *conf, char *err, size_t errlen)
{
	err[0] = '\0';
	const char *prog = conf_get(conf, "on-event");
	unsigned timeout = HOOK_TIMEOUT_S_DEF;
	const char *v = conf_get(conf, "on-event-timeout");
	uint64_t x;
	if (v) {
		if (parse_u64(v, &x) < 0 || x > 86400) {
			snprintf(err, errlen,
				 "on-event-timeout '%s': expected 0 to 86400 seconds (0: none)", v);
			return NULL;
		}
		timeout = (unsigned)x;
	}
	if (!prog || !prog[0])
		return NULL;
	struct hook *h = xcalloc(1, sizeof(*h));
	h->loop = loop;
	h->program = xstrdup(prog);
	h->timeout_s = timeout;
	h->pidfd = -1;
	h->w.fn = on_pidfd;
	h->timeout.fn = on_timeout;
	h->poll.fn = on_poll;
	log_info("events go to %s (timeout %u s)", prog, timeout);
	return h;
}

void hook_free(struct hook *h)
{
	if (!h)
		return;
	if (h->pid)
		log_info("event hook %s %s: still running at exit: left to finish", h->program,
			 h->q[h->head].event);
	if (h->pidfd >= 0) {
		ev_io_stop(h->loop, &h->w);
		close(h->pidfd);
	}
	ev_timer_stop(h->loop, &h->timeout);
	ev_timer_stop(h->loop, &h->poll);
	while (h->len) {
		job_free(&h->q[h->head]);
		h->head = (h->head + 1) % HOOK_QUEUE_MAX;
		h->len--;
	}
	free(h->program);
	free(h);
}
