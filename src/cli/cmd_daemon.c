/* cmd_daemon.c - `dst start`, `dst stop`, `dst delete`: daemon life. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "common/config.h"
#include "common/state.h"
#include "common/util.h"

static const char start_help[] =
    "usage: dst start NAME [--listen ADDR:PORT]... [--socket PATH]... [--foreground]\n"
    "                 [--max-clients N] [--client-budget SIZE] [--handshake-timeout S]\n"
    "                 [--idle-timeout S] [--ctl-group GROUP]\n"
    "\n"
    "Start the daemon of storage or export NAME from its config in the state dir.\n"
    "Remote nodes are connected first; it returns once the storage serves (exit 0)\n"
    "or has failed (exit 1, naming the node and the reason).\n"
    "\n"
    "A storage is always served over NBD: on the given TCP addresses and Unix\n"
    "sockets, else on NAME.sock in the state dir. `dst show NAME` prints each as a\n"
    "NAME/uri line. Frontends and limits given here are saved in the config.\n"
    "\n"
    "  --listen ADDR:PORT  serve on TCP (repeatable)\n"
    "  --socket PATH       serve on a Unix socket (repeatable)\n" LIMIT_HELP
    "  --fuse PATH         FUSE device file (not available in this version)\n"
    "  --foreground        do not daemonize; log to stderr\n";

static const char stop_help[] =
    "usage: dst stop NAME [--timeout SECONDS]\n"
    "\n"
    "Stop the daemon of NAME: it stops accepting clients, answers every request\n"
    "in flight, then exits. Its config stays; `dst start NAME` brings it back.\n"
    "\n"
    "  --timeout SECONDS   how long to wait for it to exit (default 30)\n";

static const char delete_help[] =
    "usage: dst delete NAME\n"
    "\n"
    "Remove the config and state of a stopped storage or export NAME.\n"
    "Data on its disks and nodes is not touched.\n";

static int one_name(int argc, char **argv, const char *help, const char *sopts,
		    const struct option *lopts, int (*opt)(int c, const char *arg))
{
	int c;
	while ((c = getopt_long(argc, argv, sopts, lopts, NULL)) != -1) {
		if (c == 'h') {
			fputs(help, stdout);
			return -2;
		}
		if (c == '?' || !opt) {
			bad_option(argv[0], argv);
			return -1;
		}
		if (opt(c, optarg) != 0)
			return -1;
	}
	if (optind + 1 != argc) {
		die("%s: expected exactly one NAME; see 'dst %s --help'", argv[0], argv[0]);
		return -1;
	}
	char err[256];
	if (!state_name_valid(argv[optind], err, sizeof(err))) {
		die("%s", err);
		return -1;
	}
	return optind;
}

int cmd_start(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"listen", required_argument, NULL, 'l'},
	    {"socket", required_argument, NULL, 's'},
	    {"fuse", required_argument, NULL, 'f'},
	    {"foreground", no_argument, NULL, 'F'},
	    {"help", no_argument, NULL, 'h'},
	    LIMIT_LONG_OPTIONS,
	    {0},
	};
	struct limit_opts limits = {0};
	struct conf fronts = {0};
	bool foreground = false;
	int c;
	while ((c = getopt_long(argc, argv, "l:s:f:Fh", opts, NULL)) != -1) {
		switch (c) {
		case 'l': {
			const char *colon = strrchr(optarg, ':');
			uint64_t port;
			if (!colon || parse_u64(colon + 1, &port) < 0 || port > 65535) {
				conf_free(&fronts);
				return die("--listen %s: expected ADDR:PORT", optarg);
			}
			conf_add(&fronts, "listen", optarg);
			break;
		}
		case 's': conf_add(&fronts, "socket", optarg); break;
		case 'f':
			conf_free(&fronts);
			return die(
			    "--fuse %s: the FUSE frontend is not available in this version of "
			    "dst; connect with an NBD client to the URI in 'dst show'",
			    optarg);
		case 'F': foreground = true; break;
		case 'h': conf_free(&fronts); return fputs(start_help, stdout), 0;
		default:
			if (limit_opts_take(&limits, c, optarg))
				break;
			conf_free(&fronts);
			return bad_option("start", argv);
		}
	}
	if (optind + 1 != argc) {
		conf_free(&fronts);
		return die("start: expected exactly one NAME; see 'dst start --help'");
	}
	const char *name = argv[optind];
	char err[512];
	if (!state_name_valid(name, err, sizeof(err))) {
		conf_free(&fronts);
		return die("%s", err);
	}
	char *path = state_path(name, ".conf");
	struct conf conf;
	int rc = conf_load(path, &conf, err, sizeof(err));
	if (rc < 0) {
		free(path);
		conf_free(&fronts);
		if (rc == -ENOENT)
			return die("no storage or export named '%s' (state dir %s)", name,
				   state_dir());
		return die("%s", err);
	}
	pid_t pid = state_running_pid(name);
	if (pid) {
		free(path);
		conf_free(&conf);
		conf_free(&fronts);
		return die("'%s' is already running (pid %d)", name, (int)pid);
	}
	struct conf saved = {0};
	for (size_t i = 0; i < conf.n; i++)
		conf_add(&saved, conf.e[i].key, conf.e[i].val);
	bool limits_given = limit_opts_given(&limits);
	if (limit_opts_save(&conf, &limits)) {
		free(path);
		conf_free(&conf);
		conf_free(&saved);
		conf_free(&fronts);
		return 1;
	}
	if (fronts.n) {
		conf_del(&conf, "listen");
		conf_del(&conf, "socket");
		for (size_t i = 0; i < fronts.n; i++)
			conf_add(&conf, fronts.e[i].key, fronts.e[i].val);
	}
	if (fronts.n || limits_given) {
		if (conf_save(path, &conf, err, sizeof(err)) < 0) {
			free(path);
			conf_free(&conf);
			conf_free(&saved);
			conf_free(&fronts);
			return die("%s", err);
		}
	}
	conf_free(&conf);
	rc = spawn_daemon(name, foreground);
	if (rc != 0 && (fronts.n || limits_given)) {
		/* The new frontends or limits did not work: keep the old ones. */
		conf_save(path, &saved, err, sizeof(err));
	}
	free(path);
	conf_free(&saved);
	conf_free(&fronts);
	if (rc == 0) {
		printf("started '%s'\n", name);
		print_uris(name);
	}
	return rc;
}

static unsigned stop_timeout = 30;
static int stop_opt(int c, const char *arg)
{
	uint64_t v;
	if (c != 't' || parse_u64(arg, &v) < 0 || v > 3600) {
		fprintf(stderr, "dst: --timeout '%s': expected seconds 0..3600\n", arg ? arg : "");
		return -1;
	}
	stop_timeout = (unsigned)v;
	return 0;
}

int cmd_stop(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"timeout", required_argument, NULL, 't'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	int i = one_name(argc, argv, stop_help, "t:h", opts, stop_opt);
	if (i < 0)
		return i == -2 ? 0 : 1;
	const char *name = argv[i];
	pid_t pid = state_running_pid(name);
	if (!pid) {
		char *path = state_path(name, ".conf");
		bool exists = access(path, F_OK) == 0;
		free(path);
		if (!exists)
			return die("no storage or export named '%s' (state dir %s)", name,
				   state_dir());
		return die("'%s' is not running", name);
	}
	char err[512];
	struct strbuf reply;
	if (ctl_call(name, "stop", &reply, err, sizeof(err)) == 0)
		sb_free(&reply);
	else if (kill(pid, SIGTERM) < 0)
		return die("'%s' (pid %d): %s", name, (int)pid, strerror(errno));
	if (!wait_daemon_gone(name, stop_timeout * 1000))
		return die("'%s' (pid %d) did not stop within %u s", name, (int)pid, stop_timeout);
	printf("stopped '%s'\n", name);
	return 0;
}

int cmd_delete(int argc, char **argv)
{
	static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {0}};
	int i = one_name(argc, argv, delete_help, "h", opts, NULL);
	if (i < 0)
		return i == -2 ? 0 : 1;
	const char *name = argv[i];
	pid_t pid = state_running_pid(name);
	if (pid)
		return die("'%s' is running (pid %d); stop it first with 'dst stop %s'", name,
			   (int)pid, name);
	char *conf = state_path(name, ".conf");
	if (unlink(conf) < 0) {
		int e = errno;
		free(conf);
		if (e == ENOENT)
			return die("no storage or export named '%s' (state dir %s)", name,
				   state_dir());
		return die("cannot delete '%s': %s", name, strerror(e));
	}
	free(conf);
	static const char *const suffixes[] = {".pid", ".ctl", ".sock", ".log", ".bitmap", ".meta"};
	for (size_t k = 0; k < ARRAY_SIZE(suffixes); k++) {
		char *p = state_path(name, suffixes[k]);
		unlink(p);
		free(p);
	}
	printf("deleted '%s'\n", name);
	return 0;
}
