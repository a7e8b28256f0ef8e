/* dstd.c - the dst daemon: runs one storage or one export node.
 *
 *   dstd [--foreground] [--state-dir DIR] [--debug] NAME
 *
 * Reads NAME.conf from the state dir, takes the NAME.pid lock, builds the
 * service, opens NAME.ctl and serves until SIGTERM or `dst stop`. Without
 * --foreground it forks and the parent exits only once the child is serving
 * (status 0) or has failed (status 1, its reason on stderr), so `dst export`
 * and `dst start` can report start-up errors synchronously. SIGHUP reopens
 * NAME.log (logrotate); events run the on-event program (hook.h).
 *
 * Besides the service's own commands, NAME.ctl answers `metrics` (the
 * Prometheus text exposition; `metrics openmetrics` for OpenMetrics), and
 * the config key metrics-listen = [ADDR:]PORT serves the same over HTTP
 * (metrics_http.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/config.h"
#include "common/ev.h"
#include "common/event.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/state.h"
#include "common/util.h"
#include "common/version.h"
#include "ctl.h"
#include "hook.h"
#include "metrics_http.h"
#include "notify.h"
#include "service.h"

struct daemon {
	struct ev_loop *loop;
	struct service *svc;
	const char *type; /* "storage" or "export" */
	struct ctl *ctl;
	struct metrics_http *http; /* --metrics-listen */
	struct ev_io sig_w;
	FILE *logf;	/* NAME.log once daemonized; NULL: stderr */
	char *log_path; /* reopened on SIGHUP */
	bool stopping;
	struct ctl_req *stop_req; /* answered once stopped */
};

static void usage(FILE *out)
{
	fprintf(out, "usage: dstd [--foreground] [--state-dir DIR] [--debug] NAME\n"
		     "       dstd --version\n"
		     "Runs the storage or export NAME from NAME.conf in the state dir.\n"
		     "Normally started by `dst start` or `dst export`.\n");
}

static void stopped(void *arg)
{
	struct daemon *d = arg;
	ev_loop_break(d->loop);
}

static void begin_stop(struct daemon *d, const char *why)
{
	if (d->stopping)
		return;
	d->stopping = true;
	log_info("stopping: %s", why);
	notify_send("STOPPING=1");
	d->svc->ops->stop(d->svc, stopped, d);
}

/* The whole exposition: dst_up, the service's families, OpenMetrics'
 * closing line. For `dst metrics` (the control command) and HTTP alike. */
static void daemon_metrics(void *arg, bool om, struct strbuf *out)
{
	struct daemon *d = arg;
	struct mx m = {.out = out, .om = om};
	struct mx_labels l;
	mx_labels_init(&l);
	mx_label(&l, "name", d->svc->name);
	mx_label(&l, "type", d->type);
	mx_family(&m, "dst_up", MX_GAUGE, "1 if the storage or export's daemon is running.");
	mx_gauge(&m, "dst_up", &l, 1);
	d->svc->ops->metrics(d->svc, &m);
	mx_eof(&m);
}

static void on_ctl(void *arg, struct ctl_req *req, int argc, char **argv)
{
	struct daemon *d = arg;
	if (!strcmp(argv[0], "show")) {
		struct strbuf b;
		sb_init(&b);
		d->svc->ops->show(d->svc, &b);
		if (d->http) {
			char p[256];
			snprintf(p, sizeof(p), "%s/metrics", d->svc->name);
			sb_attr_str(&b, p, "%s", metrics_http_url(d->http));
		}
		ctl_reply(req, b.s);
		sb_free(&b);
	} else if (!strcmp(argv[0], "metrics") &&
		   (argc == 1 || (argc == 2 && !strcmp(argv[1], "openmetrics")))) {
		struct strbuf b;
		sb_init(&b);
		daemon_metrics(d, argc == 2, &b);
		ctl_reply(req, b.s);
		sb_free(&b);
	} else if (!strcmp(argv[0], "stop")) {
		/* "stop force": whoever still uses it. SIGTERM never asks. */
		bool force = argc > 1 && !strcmp(argv[1], "force");
		struct strbuf why;
		sb_init(&why);
		if (!force && !d->stopping && d->svc->ops->in_use &&
		    d->svc->ops->in_use(d->svc, &why)) {
			const char *w = why.s ? why.s : "in use";
			log_info("dst stop refused: %s", w);
			ctl_reply_error(req, "%s", w);
			sb_free(&why);
			return;
		}
		sb_free(&why);
		ctl_reply(req, NULL);
		begin_stop(d, force ? "requested by dst stop --force" : "requested by dst stop");
	} else if (!strcmp(argv[0], "ping")) {
		ctl_reply(req, "pong\n");
	} else if (d->stopping) {
		ctl_reply_error(req, "daemon is stopping");
	} else {
		d->svc->ops->command(d->svc, req, argc, argv);
	}
}

/* SIGHUP, as logrotate sends after moving NAME.log away: write to a new
 * NAME.log. The FILE and fd 2 (where hooks and sanitizers write) keep their
 * descriptors, which now point at the new file. */
static void reopen_log(struct daemon *d)
{
	if (!d->logf) {
		log_info("SIGHUP: logging to stderr, nothing to reopen");
		return;
	}
	log_flush_repeats();
	int fd = open(d->log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		log_err("SIGHUP: cannot reopen %s: %s; logging on to the old file", d->log_path,
			strerror(errno));
		return;
	}
	fflush(d->logf);
	if (dup3(fd, fileno(d->logf), O_CLOEXEC) < 0 || dup2(fd, 2) < 0)
		log_err("SIGHUP: reopening %s: %s", d->log_path, strerror(errno));
	close(fd);
	log_info("log reopened");
}

static void on_signal(struct ev_io *w, uint32_t events)
{
	struct daemon *d = container_of(w, struct daemon, sig_w);
	struct signalfd_siginfo si;
	while (read(w->fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
			begin_stop(d, si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
		else if (si.ssi_signo == SIGHUP)
			reopen_log(d);
	}
}

/* ctl-group = GROUP (a name or a number): its members may use NAME.ctl. */
static int ctl_group_allow(struct ctl *ctl, const struct conf *conf, char *err, size_t errlen)
{
	const char *g = conf_get(conf, "ctl-group");
	if (!g)
		return 0;
	struct group *gr = getgrnam(g);
	uint64_t gid;
	if (gr)
		gid = gr->gr_gid;
	else if (parse_u64(g, &gid) < 0 || gid > 0xfffffffeu) {
		snprintf(err, errlen, "ctl-group '%s': no such group", g);
		return -EINVAL;
	}
	return ctl_allow_group(ctl, (gid_t)gid, err, errlen);
}

/* Fork; the parent waits for the child's word on a pipe. Returns the write
 * end in the child, or -1 when running in the foreground. */
static int daemonize(void)
{
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		perror("dstd: pipe");
		exit(1);
	}
	pid_t pid = fork();
	if (pid < 0) {
		perror("dstd: fork");
		exit(1);
	}
	if (pid > 0) {
		close(pfd[1]);
		char c;
		ssize_t n;
		do
			n = read(pfd[0], &c, 1);
		while (n < 0 && errno == EINTR);
		if (n == 1)
			exit(0);
		int status;
		waitpid(pid, &status, 0);
		exit(WIFEXITED(status) && WEXITSTATUS(status) ? WEXITSTATUS(status) : 1);
	}
	close(pfd[0]);
	setsid();
	return pfd[1];
}
/* How long the event loop may poll before it sleeps (common/ev.c): 50 us,
 * or DST_POLL_US (0 to 1000; 0 turns polling off). */
#define POLL_MAX_US_DEFAULT 50
static uint64_t poll_max_ns(void)
{
	const char *v = getenv("DST_POLL_US");
	uint64_t us;
	if (!v || !*v)
		return POLL_MAX_US_DEFAULT * 1000ull;
	if (parse_u64(v, &us) == 0 && us <= 1000)
		return us * 1000;
	log_warn("DST_POLL_US '%s': expected microseconds from 0 to 1000; using %u", v,
		 POLL_MAX_US_DEFAULT);
	return POLL_MAX_US_DEFAULT * 1000ull;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"foreground", no_argument, NULL, 'F'}, {"state-dir", required_argument, NULL, 'S'},
	    {"debug", no_argument, NULL, 'd'},	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},    {0},
	};
	bool foreground = false, debug = false;
	int c;
	while ((c = getopt_long(argc, argv, "FS:dhV", opts, NULL)) != -1) {
		switch (c) {
		case 'F': foreground = true; break;
		case 'S': setenv("DST_STATE_DIR", optarg, 1); break;
		case 'd': debug = true; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("dstd %s\n", dst_version()); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind + 1 != argc) {
		usage(stderr);
		return 2;
	}
	const char *name = argv[optind];
	char err[512];
	log_init("dstd", stderr, debug ? LOG_DEBUG : LOG_INFO);
	if (!state_name_valid(name, err, sizeof(err))) {
		fprintf(stderr, "dstd: %s\n", err);
		return 1;
	}
	char *conf_path = state_path(name, ".conf");
	struct conf conf;
	if (conf_load(conf_path, &conf, err, sizeof(err)) < 0) {
		fprintf(stderr, "dstd: %s\n", err);
		free(conf_path);
		return 1;
	}
	const char *type = conf_get(&conf, "type");
	if (!type || (strcmp(type, "export") != 0 && strcmp(type, "storage") != 0)) {
		fprintf(stderr, "dstd: %s: unknown type '%s'\n", conf_path, type ? type : "(none)");
		conf_free(&conf);
		free(conf_path);
		return 1;
	}

	int ready_fd = foreground ? -1 : daemonize();
	int pid_fd = state_pidfile_acquire(name, err, sizeof(err));
	if (pid_fd < 0) {
		fprintf(stderr, "dstd: %s\n", err);
		conf_free(&conf);
		free(conf_path);
		return 1;
	}
	FILE *logf = NULL;
	char *log_path = NULL;
	if (ready_fd >= 0) {
		/* Progress goes to NAME.log; start-up errors still reach stderr. */
		log_path = state_path(name, ".log");
		logf = fopen(log_path, "ae");
		if (logf)
			log_set_file(logf);
	}
	signal(SIGPIPE, SIG_IGN);
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);

	struct daemon d = {0};
	d.logf = logf;
	d.log_path = log_path;
	d.loop = ev_loop_new();
	ev_set_poll_max(d.loop, poll_max_ns());
	/* Events (common/event.h) are logged, and run the on-event program. */
	event_source(!strcmp(type, "export") ? "export" : "storage", name);
	struct hook *hook = hook_new(d.loop, &conf, err, sizeof(err));
	if (hook)
		event_set_sink(hook_event, hook);
	int sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	d.sig_w.fn = on_signal;
	ev_io_start(d.loop, &d.sig_w, sfd, EPOLLIN);

	if (err[0])
		d.svc = NULL; /* a bad on-event-timeout */
	else if (!strcmp(type, "export"))
		d.svc = export_service_new(d.loop, name, &conf, err, sizeof(err));
	else
		d.svc = storage_service_new(d.loop, name, &conf, err, sizeof(err));
	char *ctl_path = state_path(name, ".ctl");
	if (d.svc)
		d.ctl = ctl_start(d.loop, ctl_path, on_ctl, &d, err, sizeof(err));
	if (d.ctl && ctl_group_allow(d.ctl, &conf, err, sizeof(err)) < 0) {
		ctl_stop(d.ctl);
		d.ctl = NULL;
	}
	d.type = type;
	const char *mlisten = conf_get(&conf, "metrics-listen");
	bool http_ok = true;
	if (d.ctl && mlisten) {
		d.http = metrics_http_start(d.loop, mlisten, daemon_metrics, &d, err, sizeof(err));
		http_ok = d.http != NULL;
	}
	if (!d.svc || !d.ctl || !http_ok) {
		fprintf(stderr, "dstd: %s\n", err);
		ctl_stop(d.ctl);
		if (d.svc)
			d.svc->ops->destroy(d.svc);
		event_set_sink(NULL, NULL);
		hook_free(hook);
		ev_io_stop(d.loop, &d.sig_w);
		close(sfd);
		ev_loop_free(d.loop);
		char *pid_path = state_path(name, ".pid");
		unlink(pid_path);
		free(pid_path);
		close(pid_fd);
		free(ctl_path);
		free(conf_path);
		conf_free(&conf);
		if (logf)
			fclose(logf);
		free(log_path);
		return 1;
	}
	log_info("%s %s: running (pid %d)", type, name, (int)getpid());
	/* Under systemd (Type=notify): serving now. MAINPID for a dstd
	 * started without --foreground, whose parent exits. */
	char note[128];
	snprintf(note, sizeof(note), "READY=1\nSTATUS=serving %s %s\nMAINPID=%d", type, name,
		 (int)getpid());
	int nrc = notify_send(note);
	if (nrc < 0)
		log_warn("could not notify the service manager ($NOTIFY_SOCKET): %s",
			 strerror(-nrc));

	if (ready_fd >= 0) {
		/* From here on, the log file is our stderr too. */
		int lfd = logf ? fileno(logf) : -1;
		int nfd = open("/dev/null", O_RDWR);
		if (nfd >= 0) {
			dup2(nfd, 0);
			dup2(nfd, 1);
			close(nfd);
		}
		if (lfd >= 0)
			dup2(lfd, 2);
		if (write(ready_fd, "k", 1) < 0)
			log_warn("could not signal readiness: %s", strerror(errno));
		close(ready_fd);
	}

	int rc = ev_run(d.loop);
	if (rc < 0)
		log_err("event loop: %s", strerror(-rc));
	metrics_http_stop(d.http);
	ctl_stop(d.ctl);
	d.svc->ops->destroy(d.svc);
	event_set_sink(NULL, NULL);
	hook_free(hook);
	ev_io_stop(d.loop, &d.sig_w);
	close(sfd);
	ev_loop_free(d.loop);
	conf_free(&conf);
	char *pid_path = state_path(name, ".pid");
	unlink(pid_path);
	free(pid_path);
	close(pid_fd);
	log_info("stopped");
	log_flush_repeats();
	if (logf)
		fclose(logf);
	free(log_path);
	free(ctl_path);
	free(conf_path);
	return rc < 0 ? 1 : 0;
}
