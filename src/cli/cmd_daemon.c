/* cmd_daemon.c - `dst start`, `dst stop`, `dst delete`: daemon life. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "common/config.h"
#include "common/loopdev.h"
#include "common/state.h"
#include "common/util.h"

static const char start_help[] =
    "usage: dst start NAME [--listen ADDR:PORT]... [--socket PATH]... [-f|--fuse PATH]\n"
    "                 [--no-fuse] [--ublk[=ID]] [--ublk-queues N] [--ublk-depth N]\n"
    "                 [--no-ublk] [--allow CIDR[:ro|:rw]]... [--no-allow]\n"
    "                 [--tls off|on|require]\n"
    "                 [--tls-psk FILE | --tls-certs DIR [--tls-verify-peer]] [--foreground]\n"
    "                 [--max-clients N] [--client-budget SIZE] [--handshake-timeout S]\n"
    "                 [--idle-timeout S] [--ctl-group GROUP] [--metrics-listen ADDR:PORT]\n"
    "                 [--on-event PROGRAM [--on-event-timeout S]]\n"
    "\n"
    "Start the daemon of storage or export NAME from its config in the state dir.\n"
    "Remote nodes are connected first; it returns once the storage serves (exit 0)\n"
    "or has failed (exit 1, naming the node and the reason). A node that cannot\n"
    "be reached yet (at boot, its host not up) does not stop the start: a warning\n"
    "names it, the daemon dials on, and IO to its range waits for it (at most\n"
    "io-timeout, as during a reconnect). A node whose server answers but will not\n"
    "serve as the node (TLS credentials, export name, another disk's label, too\n"
    "small) fails the start.\n"
    "\n"
    "A storage is always served over NBD: on the given TCP addresses and Unix\n"
    "sockets, else on NAME.sock in the state dir. `dst show NAME` prints each as a\n"
    "NAME/uri line. It can also appear as a file or a block device (--fuse,\n"
    "--ublk; both at once if wanted).\n"
    "Frontends, TLS options and limits given here are saved in the config, so a\n"
    "later plain `dst start NAME` serves the same way.\n"
    "\n"
    "  --listen ADDR:PORT  serve on TCP (repeatable)\n"
    "  --socket PATH       serve on a Unix socket (repeatable)\n"
    "  --allow CIDR[:ro|:rw]\n"
    "                      let TCP clients from CIDR in, read-write (default) or\n"
    "                      read-only (writes fail with EPERM); repeatable, the\n"
    "                      longest matching prefix wins, as for dst export. The\n"
    "                      rules given replace the saved ones. Without any rule\n"
    "                      only loopback clients are let in; Unix socket clients\n"
    "                      always are. Refused clients are told so during the\n"
    "                      handshake and logged with their address.\n"
    "  --no-allow          forget the saved rules: loopback only again\n" TLS_SERVE_HELP LIMIT_HELP
    "  -f, --fuse PATH     the storage as a regular file at PATH, over FUSE (direct\n"
    "                      IO; fsync flushes every node). PATH is created if it does\n"
    "                      not exist; an existing PATH must be an empty regular\n"
    "                      file. `dst attach NAME` makes it a loop device.\n"
    "                      A /dev/nbdN PATH attaches the kernel's NBD device\n"
    "                      instead (netlink), where the kernel has NBD.\n"
    "                      A /dev/ublkbN PATH is --ublk N.\n"
    "  --no-fuse           forget the saved --fuse PATH\n"
    "  --ublk[=ID]         the storage as the kernel block device /dev/ublkbID\n"
    "                      (ublk: io_uring, one queue per CPU, no loop device, no\n"
    "                      TCP); ID 0..1048575, or auto (the default): the kernel\n"
    "                      picks it. Needs the kernel's ublk_drv and root. A daemon\n"
    "                      killed with -9 leaves the device waiting; the next start\n"
    "                      takes it back, and its waiting IO goes on. `--ublk ID`\n"
    "                      works too\n"
    "  --ublk-queues N     ublk queues, 1..64 (default: one per online CPU, at\n"
    "                      most 4)\n"
    "  --ublk-depth N      requests in flight per ublk queue, 1..1024 (default 128)\n"
    "  --no-ublk           forget the saved --ublk and its queues and depth\n" EVENT_HELP
	METRICS_LISTEN_HELP "  --foreground        do not daemonize; log to stderr\n";

static const char stop_help[] =
    "usage: dst stop NAME [--force] [--timeout SECONDS]\n"
    "\n"
    "Stop the daemon of NAME: it stops accepting clients, answers every request\n"
    "in flight, then exits. Its config stays; `dst start NAME` brings it back.\n"
    "An export with clients connected (a storage using it as a node, say) is not\n"
    "stopped: the error names each client's address and, for one on this host,\n"
    "its process (\"dstd 4242 (storage st)\"). --force stops it all the same,\n"
    "and their IO then fails.\n"
    "A storage with a FUSE file, a kernel NBD device or a ublk device is not\n"
    "stopped while that device (or the loop device `dst attach` made of it) is\n"
    "mounted, used by another block device, or open by a process: the error\n"
    "names the mount point or the process (\"is open by fio (pid 1234)\").\n"
    "Otherwise the loop device is detached first, then the FUSE file unmounted,\n"
    "then the daemon stops (and with it its ublk device).\n"
    "\n"
    "  --force             stop an export even while clients use it\n"
    "  --timeout SECONDS   how long to wait for it to exit (default 30)\n";

static const char delete_help[] =
    "usage: dst delete NAME\n"
    "\n"
    "Remove the config and state of a stopped storage or export NAME.\n"
    "Data on its disks and nodes is not touched, nor is its FUSE file (an\n"
    "empty file once the storage is stopped).\n";

/* /dev/nbdN: the kernel's NBD devices. */
static bool is_nbd_device(const char *path)
{
	if (strncmp(path, "/dev/nbd", 8) != 0 || !path[8])
		return false;
	for (const char *p = path + 8; *p; p++)
		if (*p < '0' || *p > '9')
			return false;
	return true;
}

int device_conf_set(struct conf *c, const char *path)
{
	if (!path[0])
		return die("--fuse: expected a path");
	/* /dev/ublkbN: the ublk device, a frontend of its own beside the others. */
	char id[16];
	int u = ublk_dev_path(path, id, sizeof(id));
	if (u < 0)
		return 1;
	if (u > 0) {
		conf_set(c, "ublk", id);
		return 0;
	}
	conf_del(c, "device"); /* the seed's -f of older versions: recorded only */
	conf_del(c, "fuse");
	conf_del(c, "nbd-device");
	if (is_nbd_device(path)) {
		conf_add(c, "nbd-device", path);
		return 0;
	}
	if (path[0] == '/') {
		conf_add(c, "fuse", path);
		return 0;
	}
	/* The daemon does not run in our directory: save it absolute. */
	char cwd[PATH_MAX];
	if (!getcwd(cwd, sizeof(cwd)))
		return die("--fuse %s: current directory: %s", path, strerror(errno));
	char *abs = xasprintf("%s/%s", cwd, path);
	conf_add(c, "fuse", abs);
	free(abs);
	return 0;
}

int one_name(int argc, char **argv, const char *help, const char *sopts, const struct option *lopts,
	     int (*opt)(int c, const char *arg))
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

/* Nodes of a started storage that are not up yet (at boot, before their
 * hosts): said, not an error; the daemon dials them on. */
static void warn_nodes_not_up(const char *name)
{
	char err[512];
	struct strbuf reply;
	if (ctl_call(name, "show", &reply, err, sizeof(err)) < 0)
		return;
	/* Lines "K NAME/n-800/state VALUE"; the node's uri follows its state. */
	char *pre = xasprintf("%s/n-", name);
	size_t pl = strlen(pre);
	char node[64] = "", state[64] = "";
	for (char *save = NULL, *line = strtok_r(reply.s, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (!line[0] || line[1] != ' ' || strncmp(line + 2, pre, pl) != 0)
			continue;
		char *attr = line + 2 + pl - 2; /* "n-800/..." */
		char *slash = strchr(attr, '/');
		char *sp = slash ? strchr(slash, ' ') : NULL;
		if (!sp || (size_t)(slash - attr) >= sizeof(node))
			continue;
		*sp = '\0';
		if (!strcmp(slash, "/state")) {
			snprintf(node, sizeof(node), "%.*s", (int)(slash - attr), attr);
			snprintf(state, sizeof(state), "%s", sp + 1);
		} else if (!strcmp(slash, "/uri") && node[0] && strcmp(state, "up") != 0 &&
			   !strncmp(attr, node, strlen(node)) && attr[strlen(node)] == '/') {
			fprintf(stderr,
				"dst: warning: node %s (%s) is not up yet (%s); dstd dials on, "
				"and IO to it waits for it (io-timeout)\n",
				node, sp + 1, state);
			node[0] = '\0';
		}
	}
	free(pre);
	sb_free(&reply);
}

int cmd_start(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"listen", required_argument, NULL, 'l'},
	    {"socket", required_argument, NULL, 's'},
	    {"fuse", required_argument, NULL, 'f'},
	    {"no-fuse", no_argument, NULL, 'N'},
	    {"allow", required_argument, NULL, 'a'},
	    {"no-allow", no_argument, NULL, 'A'},
	    {"foreground", no_argument, NULL, 'F'},
	    {"tls", required_argument, NULL, 'T'},
	    {"tls-psk", required_argument, NULL, 'P'},
	    {"tls-certs", required_argument, NULL, 'C'},
	    {"tls-verify-peer", no_argument, NULL, 'V'},
	    {"metrics-listen", required_argument, NULL, 'M'},
	    {"no-ublk", no_argument, NULL, OPT_NO_UBLK},
	    {"help", no_argument, NULL, 'h'},
	    LIMIT_LONG_OPTIONS,
	    UBLK_LONG_OPTIONS,
	    EVENT_LONG_OPTIONS,
	    {0},
	};
	struct tls_opts tls = {0};
	struct limit_opts limits = {0};
	struct event_opts events = {0};
	struct ublk_opts ublk = {0};
	struct conf fronts = {0};
	struct conf allow = {0}; /* --allow rules, in command-line order */
	struct conf conf = {0}, saved = {0};
	char *path = NULL;
	const char *fuse = NULL, *metrics_listen = NULL;
	bool no_fuse = false, no_allow = false, foreground = false;
	char err[512];
	int c, rc = 1;
	while ((c = getopt_long(argc, argv, "l:s:f:NFh", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
			if (listen_check(optarg))
				goto out;
			conf_add(&fronts, "listen", optarg);
			break;
		case 's': conf_add(&fronts, "socket", optarg); break;
		case 'f': fuse = optarg; break;
		case 'N': no_fuse = true; break;
		case 'a':
			if (allow_check(optarg))
				goto out;
			conf_add(&allow, "allow", optarg);
			break;
		case 'A': no_allow = true; break;
		case 'F': foreground = true; break;
		case 'T': tls.mode = optarg; break;
		case 'P': tls.psk = optarg; break;
		case 'C': tls.certs = optarg; break;
		case 'V': tls.verify_peer = true; break;
		case 'M':
			if (metrics_listen_check(optarg))
				goto out;
			metrics_listen = optarg;
			break;
		case 'h':
			fputs(start_help, stdout);
			rc = 0;
			goto out;
		default:
			if (limit_opts_take(&limits, c, optarg) ||
			    event_opts_take(&events, c, optarg) ||
			    ublk_opts_take(&ublk, c, optarg, argc, argv))
				break;
			bad_option("start", argv);
			goto out;
		}
	}
	const char *name = ublk_opts_name(&ublk, "start", argc, argv);
	if (!name || ublk_opts_check(&ublk, "start"))
		goto out;
	if (fuse && no_fuse) {
		die("start: --fuse and --no-fuse contradict each other");
		goto out;
	}
	if (allow.n && no_allow) {
		die("start: --allow and --no-allow contradict each other");
		goto out;
	}
	if (!state_name_valid(name, err, sizeof(err))) {
		die("%s", err);
		goto out;
	}
	path = state_path(name, ".conf");
	int lrc = conf_load(path, &conf, err, sizeof(err));
	if (lrc < 0) {
		if (lrc == -ENOENT)
			die("no storage or export named '%s' (state dir %s)", name, state_dir());
		else
			die("%s", err);
		goto out;
	}
	const char *type = conf_get(&conf, "type");
	if ((fuse || no_fuse) && (!type || strcmp(type, "storage"))) {
		die("--fuse: '%s' is an export node, not a storage", name);
		goto out;
	}
	if (ublk_opts_given(&ublk) && (!type || strcmp(type, "storage"))) {
		die("--ublk: '%s' is an export node, not a storage", name);
		goto out;
	}
	pid_t pid = state_running_pid(name);
	if (pid) {
		die("'%s' is already running (pid %d)", name, (int)pid);
		goto out;
	}
	for (size_t i = 0; i < conf.n; i++)
		conf_add(&saved, conf.e[i].key, conf.e[i].val);
	bool limits_given = limit_opts_given(&limits);
	bool tls_given = tls.mode || tls.psk || tls.certs || tls.verify_peer;
	bool events_given = events.program || events.timeout;
	if (limit_opts_save(&conf, &limits) || (tls_given && tls_opts_serve(&conf, &tls)) ||
	    (events_given && event_opts_save(&conf, &events)))
		goto out;
	bool changed = fronts.n || fuse || no_fuse || tls_given || limits_given || events_given ||
		       allow.n || no_allow || metrics_listen || ublk_opts_given(&ublk);
	if (allow.n || no_allow) {
		conf_del(&conf, "allow");
		for (size_t i = 0; i < allow.n; i++)
			conf_add(&conf, "allow", allow.e[i].val);
	}
	if (metrics_listen) {
		conf_del(&conf, "metrics-listen");
		if (strcmp(metrics_listen, "off"))
			conf_add(&conf, "metrics-listen", metrics_listen);
	}
	if (fronts.n) {
		conf_del(&conf, "listen");
		conf_del(&conf, "socket");
		for (size_t i = 0; i < fronts.n; i++)
			conf_add(&conf, fronts.e[i].key, fronts.e[i].val);
	}
	if (no_fuse) {
		conf_del(&conf, "fuse");
		conf_del(&conf, "nbd-device");
		conf_del(&conf, "device");
	}
	if (fuse && !strncmp(fuse, "/dev/ublkb", 10) && (ublk.id || ublk.no_ublk)) {
		die("start: -f %s and --%s contradict each other", fuse,
		    ublk.id ? "ublk" : "no-ublk");
		goto out;
	}
	if (fuse && device_conf_set(&conf, fuse))
		goto out;
	if (ublk_opts_given(&ublk) && ublk_opts_save(&conf, &ublk, name))
		goto out;
	if (changed && conf_save(path, &conf, err, sizeof(err)) < 0) {
		die("%s", err);
		goto out;
	}
	rc = spawn_daemon(name, foreground);
	if (rc != 0 && changed) {
		/* The new frontends or limits did not work: keep the old ones. */
		conf_save(path, &saved, err, sizeof(err));
	}
	if (rc == 0) {
		printf("started '%s'\n", name);
		print_uris(name);
		warn_nodes_not_up(name);
		char dev[PATH_MAX];
		if (ctl_show_attr(name, "fuse", dev, sizeof(dev)) == 0)
			printf("  FUSE file %s ('dst attach %s' makes it a loop device)\n", dev,
			       name);
		if (ctl_show_attr(name, "nbd_device", dev, sizeof(dev)) == 0) {
			char n[32] = "";
			ctl_show_attr(name, "nbd_reconnects", n, sizeof(n));
			printf("  kernel NBD device %s%s\n", dev,
			       strcmp(n, "0") && n[0] ? " (taken back: its IO that waited goes on)"
						      : "");
		}
		print_ublk_device(name, "  ublk device ", NULL, 0);
		if (ctl_show_attr(name, "metrics", dev, sizeof(dev)) == 0)
			printf("  metrics at %s\n", dev);
		/* dst attach --boot: the loop device at every start. */
		if (storage_attach_at_start(name))
			rc = storage_attach(name, false);
	}
out:
	free(path);
	conf_free(&conf);
	conf_free(&saved);
	conf_free(&fronts);
	conf_free(&allow);
	return rc;
}

static unsigned stop_timeout = 30;
static bool stop_force;
static int stop_opt(int c, const char *arg)
{
	uint64_t v;
	if (c == 'f') {
		stop_force = true;
		return 0;
	}
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
	    {"force", no_argument, NULL, 'f'},
	    {"timeout", required_argument, NULL, 't'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	int i = one_name(argc, argv, stop_help, "ft:h", opts, stop_opt);
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
	if (storage_release_devices(name))
		return 1;
	char err[1024];
	struct strbuf reply;
	int rc = ctl_call(name, stop_force ? "stop force" : "stop", &reply, err, sizeof(err));
	if (rc == 0)
		sb_free(&reply);
	else if (rc == -2) /* it answered: still in use */
		return die("'%s' not stopped: %s; 'dst stop %s --force' stops it anyway (their IO "
			   "then fails)",
			   name, err, name);
	else if (kill(pid, SIGTERM) < 0) /* no control socket: as SIGTERM always did */
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
	struct loop_record rec;
	if (loop_record_get(name, &rec) &&
	    loop_check(rec.dev, rec.file_dev, NULL, true) != LOOP_NONE)
		return die("'%s' still has loop device %s (left over the FUSE file of a killed "
			   "daemon); detach it first with 'dst detach %s'",
			   name, rec.dev, name);
	char *conf = state_path(name, ".conf");
	struct conf c;
	char e2[256];
	if (conf_load(conf, &c, e2, sizeof(e2)) == 0) {
		const char *type = conf_get(&c, "type");
		if (type && !strcmp(type, "storage"))
			label_node_release_all(name, &c);
		conf_free(&c);
	}
	if (unlink(conf) < 0) {
		int e = errno;
		free(conf);
		if (e == ENOENT)
			return die("no storage or export named '%s' (state dir %s)", name,
				   state_dir());
		return die("cannot delete '%s': %s", name, strerror(e));
	}
	free(conf);
	static const char *const suffixes[] = {".pid",	  ".ctl",  ".sock", ".log",
					       ".bitmap", ".meta", ".loop"};
	for (size_t k = 0; k < ARRAY_SIZE(suffixes); k++) {
		char *p = state_path(name, suffixes[k]);
		unlink(p);
		free(p);
	}
	printf("deleted '%s'\n", name);
	return 0;
}
