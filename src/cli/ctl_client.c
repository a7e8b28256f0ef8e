/* ctl_client.c - talk to a daemon's control socket; start and wait for daemons. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "common/state.h"
#include "common/util.h"

int die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("dst: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	return 1;
}

int bad_option(const char *cmd, char **argv)
{
	/* getopt is silenced (opterr = 0) so that this is the one line. A long
	 * option missing its value leaves its val in optopt; an unknown one 0. */
	const char *arg = optind > 0 ? argv[optind - 1] : "?";
	bool missing = !strncmp(arg, "--", 2) && optopt != 0;
	if (!cmd[0])
		return die("%s option '%s'; see 'dst -h'",
			   missing ? "missing value for" : "unknown", arg);
	return die("%s: %s option '%s'; see 'dst %s --help'", cmd,
		   missing ? "missing value for" : "unknown", arg, cmd);
}

static unsigned reply_timeout_s = 60;

void ctl_set_timeout(unsigned seconds)
{
	reply_timeout_s = seconds;
}

static int ctl_call_once(const char *name, const char *cmd, struct strbuf *reply, char *err,
			 size_t errlen)
{
	char *path = state_path(name, ".ctl");
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		snprintf(err, errlen, "'%s' is not running (%s: %s)", name, path, strerror(errno));
		if (fd >= 0)
			close(fd);
		free(path);
		return -1;
	}
	free(path);
	/* A daemon that does not answer must not hang the tool. Long commands
	 * (a drain, a resync) may take their time, but not forever. */
	struct timeval tv = {.tv_sec = reply_timeout_s};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	/* send(MSG_NOSIGNAL): a daemon that closes at once (at its descriptor
	 * limit, or past its connection cap) must give an error, not SIGPIPE.
	 * Its refusal, if it wrote one, is still there to read. */
	char *line = xasprintf("%s\n", cmd);
	int rc = 0;
	for (size_t off = 0, len = strlen(line); off < len;) {
		ssize_t w = send(fd, line + off, len - off, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			rc = errno == EAGAIN ? -ETIMEDOUT : -errno;
			break;
		}
		off += (size_t)w;
	}
	free(line);
	bool send_failed = rc < 0;
	if (rc == -EPIPE || rc == -ECONNRESET)
		rc = 0;
	struct strbuf b;
	sb_init(&b);
	char chunk[4096];
	ssize_t n;
	while (rc == 0 && (n = read(fd, chunk, sizeof(chunk))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = errno == EAGAIN ? -ETIMEDOUT : -errno;
			break;
		}
		sb_add(&b, chunk, (size_t)n);
	}
	close(fd);
	if (rc < 0) {
		snprintf(err, errlen, "'%s': control socket: %s", name, strerror(-rc));
		sb_free(&b);
		return -1;
	}
	if (b.len >= 3 && !strncmp(b.s, "ok\n", 3)) {
		sb_init(reply);
		sb_add(reply, b.s + 3, b.len - 3);
		sb_free(&b);
		return 0;
	}
	if (b.len > 7 && !strncmp(b.s, "error: ", 7)) {
		char *nl = strchr(b.s, '\n');
		if (nl)
			*nl = '\0';
		snprintf(err, errlen, "%s", b.s + 7);
		sb_free(&b);
		return -2;
	} else {
		snprintf(err, errlen, "'%s': daemon closed the control connection without %s", name,
			 send_failed ? "reading the command (is it at its descriptor limit?)"
				     : "answering");
	}
	sb_free(&b);
	return -1;
}

/* A daemon past its cap of control connections says so before it reads
 * the command, so any command may be tried again: for a second, in case
 * some of the connections were about to end. */
int ctl_call(const char *name, const char *cmd, struct strbuf *reply, char *err, size_t errlen)
{
	static const char full[] = "too many control connections";
	for (int i = 0;; i++) {
		int rc = ctl_call_once(name, cmd, reply, err, errlen);
		if (rc != -2 || strncmp(err, full, sizeof(full) - 1) || i >= 10)
			return rc;
		struct timespec ts = {.tv_nsec = 100 * 1000000};
		nanosleep(&ts, NULL);
	}
}

void print_uris(const char *name)
{
	char err[512];
	struct strbuf reply;
	if (ctl_call(name, "show", &reply, err, sizeof(err)) < 0)
		return;
	/* Only NAME/uri lines: a storage's nodes have uri attributes too. */
	for (char *line = strtok(reply.s, "\n"); line; line = strtok(NULL, "\n")) {
		char *uri = strstr(line, "/uri ");
		if (line[0] == 'S' && uri && strchr(line + 2, '/') == uri)
			printf("  %s\n", uri + 5);
	}
	sb_free(&reply);
}

/* dstd next to our own binary, else $DST_DSTD, else PATH. */
static char *find_dstd(void)
{
	const char *env = getenv("DST_DSTD");
	if (env && *env)
		return xstrdup(env);
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		char *slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			char *p = xasprintf("%s/dstd", self);
			if (access(p, X_OK) == 0)
				return p;
			free(p);
		}
	}
	return xstrdup("dstd");
}

int spawn_daemon(const char *name, bool foreground)
{
	char *dstd = find_dstd();
	char *argv[] = {dstd, foreground ? "--foreground" : NULL, NULL, NULL};
	argv[foreground ? 2 : 1] = (char *)name;
	if (foreground) {
		execvp(dstd, argv);
		int e = errno;
		free(dstd);
		return die("cannot run %s: %s", argv[0], strerror(e));
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		return die("fork: %s", strerror(errno));
	if (pid == 0) {
		execvp(dstd, argv);
		fprintf(stderr, "dst: cannot run %s: %s\n", dstd, strerror(errno));
		_exit(127);
	}
	free(dstd);
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 1;
}

bool wait_daemon_gone(const char *name, unsigned timeout_ms)
{
	for (unsigned t = 0; t <= timeout_ms; t += 20) {
		if (!state_running_pid(name))
			return true;
		poll(NULL, 0, 20);
	}
	return false;
}

int ctl_show_attr(const char *name, const char *leaf, char *out, size_t len)
{
	char err[512];
	struct strbuf reply;
	if (ctl_call(name, "show", &reply, err, sizeof(err)) < 0)
		return -1;
	char *want = xasprintf("%s/%s ", name, leaf);
	size_t wl = strlen(want);
	int rc = -1;
	for (char *save = NULL, *line = strtok_r(reply.s, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (line[0] && line[1] == ' ' && !strncmp(line + 2, want, wl)) {
			snprintf(out, len, "%s", line + 2 + wl);
			rc = 0;
			break;
		}
	}
	free(want);
	sb_free(&reply);
	return rc;
}
