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
    "usage: dst start NAME [--foreground]\n"
    "\n"
    "Start the daemon of storage or export NAME from its config in the state dir.\n"
    "Returns once it serves (exit 0) or has failed (exit 1, with the reason).\n"
    "\n"
    "  --foreground   do not daemonize; log to stderr\n";

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
		if (c == '?' || !opt || opt(c, optarg) != 0) {
			die("%s: see 'dst %s --help'", argv[0], argv[0]);
			return -1;
		}
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

static bool start_foreground;
static int start_opt(int c, const char *arg)
{
	if (c != 'F')
		return -1;
	start_foreground = true;
	return 0;
}

int cmd_start(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"foreground", no_argument, NULL, 'F'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	int i = one_name(argc, argv, start_help, "Fh", opts, start_opt);
	if (i < 0)
		return i == -2 ? 0 : 1;
	const char *name = argv[i];
	char *path = state_path(name, ".conf");
	bool exists = access(path, F_OK) == 0;
	free(path);
	if (!exists)
		return die("no storage or export named '%s' (state dir %s)", name, state_dir());
	pid_t pid = state_running_pid(name);
	if (pid)
		return die("'%s' is already running (pid %d)", name, (int)pid);
	int rc = spawn_daemon(name, start_foreground);
	if (rc == 0)
		printf("started '%s'\n", name);
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
