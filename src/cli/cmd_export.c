/* cmd_export.c - `dst export DISK ...`: serve a local disk as an export node. */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "common/config.h"
#include "common/state.h"
#include "common/util.h"

static const char export_help[] =
    "usage: dst export DISK [--name NAME] [--listen ADDR:PORT]... [--socket PATH]...\n"
    "                  [--allow CIDR[:ro|:rw]]... [--readonly | --shared] [--backlog N]\n"
    "                  [--buffers SIZE] [--tls off|on|require]\n"
    "                  [--tls-psk FILE | --tls-certs DIR [--tls-verify-peer]]\n"
    "                  [--metrics-listen ADDR:PORT]\n"
    "                  [--max-clients N] [--client-budget SIZE] [--handshake-timeout S]\n"
    "                  [--idle-timeout S] [--ctl-group GROUP]\n"
    "                  [--on-event PROGRAM [--on-event-timeout S]] [--foreground]\n"
    "\n"
    "Serve DISK to remote storages over NBD: an export node.\n"
    "\n"
    "DISK is a regular file, a block device, or mem:SIZE (a sparse disk in memory,\n"
    "e.g. mem:1G, lost when the export stops).\n"
    "\n"
    "A disk exported read-write is the export's alone while it runs: a block device\n"
    "is opened exclusively (O_EXCL: not while mounted, and mkfs or a mount of it\n"
    "fail meanwhile), a regular file gets an OFD lock over the whole file. Another\n"
    "read-write export of it, or a storage with it as a local --disk node, is\n"
    "refused with the holder named. Read-only exports never claim the disk.\n"
    "\n"
    "  --name NAME         name used by `dst show/stop NAME` and offered as the NBD\n"
    "                      export name (default: DISK's base name and the port,\n"
    "                      e.g. disk0.img-1025, mem-10809)\n"
    "  --listen ADDR:PORT  TCP address to serve on (default 127.0.0.1:10809);\n"
    "                      repeatable; [::1]:PORT for IPv6\n"
    "  --socket PATH       also (or only) serve on a Unix socket\n"
    "  --allow CIDR[:ro|:rw]\n"
    "                      let clients from CIDR in, read-write (default) or\n"
    "                      read-only; repeatable, the longest matching prefix wins.\n"
    "                      Without --allow only loopback clients are let in.\n"
    "                      Refused clients are told so during the handshake and\n"
    "                      logged with their address.\n"
    "  --readonly          every client is read-only; the disk is opened read-only\n"
    "                      and not claimed\n"
    "  --shared            read-write without claiming the disk: others may write it\n"
    "                      at the same time (only for users who coordinate writes)\n"
    "  --backlog N         listen backlog (default 64)\n"
    "  --buffers SIZE      IO buffer budget, allocated up front (default 128M);\n"
    "                      when spent, clients wait instead of failing\n" TLS_SERVE_HELP LIMIT_HELP
	EVENT_HELP METRICS_LISTEN_HELP "  --foreground        do not daemonize; log to stderr\n"
    "\n"
    "The export runs as a daemon (dstd) with its config, pid file, log and\n"
    "control socket in the state dir ($DST_STATE_DIR, else /var/lib/dst for root,\n"
    "else $XDG_RUNTIME_DIR/dst). Stop it with `dst stop NAME` or SIGTERM: in-flight\n"
    "requests are answered first (dst stop refuses while clients are connected,\n"
    "unless --force). `dst start NAME` starts it again.\n"
    "\n"
    "Examples:\n"
    "  dst export /srv/disk0.img --listen 0.0.0.0:1025 --allow 192.168.4.0/24\n"
    "  dst export mem:1G --listen 127.0.0.1:10900\n"
    "  psktool -u alice -p keys.psk\n"
    "  dst export /srv/disk0.img --listen 0.0.0.0:1025 --allow 192.168.4.0/24 \\\n"
    "      --tls require --tls-psk keys.psk\n";

static int check_disk(const char *disk, bool readonly, char *abs, size_t abslen)
{
	if (!strncmp(disk, "mem:", 4)) {
		uint64_t sz;
		if (parse_size(disk + 4, &sz) < 0 || sz == 0)
			return die("%s: invalid size (expected mem:SIZE, e.g. mem:1G)", disk);
		if (sz % 512)
			return die("%s: size must be a multiple of 512 bytes", disk);
		snprintf(abs, abslen, "%s", disk);
		return 0;
	}
	struct stat st;
	if (stat(disk, &st) < 0)
		return die("%s: %s", disk, strerror(errno));
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		return die("%s: not a regular file or block device", disk);
	if (access(disk, readonly ? R_OK : R_OK | W_OK) < 0)
		return die("%s: %s%s", disk, strerror(errno),
			   readonly ? "" : " (use --readonly for a read-only export)");
	if (S_ISREG(st.st_mode) && st.st_size == 0)
		return die("%s: file is empty; give it a size first, e.g. truncate -s 1G %s", disk,
			   disk);
	if (!realpath(disk, abs))
		return die("%s: %s", disk, strerror(errno));
	(void)abslen;
	return 0;
}

static char *default_name(const char *disk, const char *listen, const char *sock)
{
	char *d = xstrdup(disk);
	const char *base = strncmp(disk, "mem:", 4) ? basename(d) : "mem";
	char *name;
	if (listen) {
		name = xasprintf("%s-%s", base, strrchr(listen, ':') + 1);
	} else {
		char *s = xstrdup(sock);
		char *sb = basename(s);
		char *dot = strrchr(sb, '.');
		if (dot && dot != sb)
			*dot = '\0';
		name = xasprintf("%s-%s", base, sb);
		free(s);
	}
	free(d);
	/* Keep it a valid name whatever the file was called. */
	for (char *p = name; *p; p++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-",
			    *p))
			*p = '_';
	return name;
}

int cmd_export(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"name", required_argument, NULL, 'n'},
	    {"listen", required_argument, NULL, 'l'},
	    {"socket", required_argument, NULL, 's'},
	    {"allow", required_argument, NULL, 'a'},
	    {"readonly", no_argument, NULL, 'r'},
	    {"shared", no_argument, NULL, 'S'},
	    {"backlog", required_argument, NULL, 'b'},
	    {"buffers", required_argument, NULL, 'B'},
	    {"foreground", no_argument, NULL, 'F'},
	    {"tls", required_argument, NULL, 'T'},
	    {"tls-psk", required_argument, NULL, 'P'},
	    {"tls-certs", required_argument, NULL, 'C'},
	    {"tls-verify-peer", no_argument, NULL, 'V'},
	    {"metrics-listen", required_argument, NULL, 'M'},
	    {"help", no_argument, NULL, 'h'},
	    LIMIT_LONG_OPTIONS,
	    EVENT_LONG_OPTIONS,
	    {0},
	};
	struct tls_opts tls = {0};
	struct limit_opts limits = {0};
	struct event_opts events = {0};
	struct conf conf = {0};
	const char *name = NULL, *backlog = NULL, *buffers = NULL, *metrics_listen = NULL;
	const char *first_listen = NULL, *first_sock = NULL;
	bool readonly = false, shared = false, foreground = false;
	char err[512];
	int c, rc = 1;
	struct conf lists = {0}; /* listen/socket/allow in command-line order */
	while ((c = getopt_long(argc, argv, "n:l:s:a:rb:B:Fh", opts, NULL)) != -1) {
		switch (c) {
		case 'n': name = optarg; break;
		case 'l':
			if (listen_check(optarg))
				goto out;
			if (!first_listen)
				first_listen = optarg;
			conf_add(&lists, "listen", optarg);
			break;
		case 's':
			if (!first_sock)
				first_sock = optarg;
			conf_add(&lists, "socket", optarg);
			break;
		case 'a':
			if (allow_check(optarg))
				goto out;
			conf_add(&lists, "allow", optarg);
			break;
		case 'r': readonly = true; break;
		case 'S': shared = true; break;
		case 'b': backlog = optarg; break;
		case 'B': buffers = optarg; break;
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
			fputs(export_help, stdout);
			rc = 0;
			goto out;
		default:
			if (limit_opts_take(&limits, c, optarg) ||
			    event_opts_take(&events, c, optarg))
				break;
			bad_option("export", argv);
			goto out;
		}
	}
	if (optind >= argc) {
		die("export: missing DISK (a file, a block device or mem:SIZE); see 'dst export "
		    "--help'");
		goto out;
	}
	if (optind + 1 < argc) {
		die("export: unexpected argument '%s'", argv[optind + 1]);
		goto out;
	}
	if (readonly && shared) {
		die("export: --shared is for read-write exports; a --readonly one never claims "
		    "the disk");
		goto out;
	}
	const char *disk = argv[optind];
	char abs[PATH_MAX];
	uint64_t v;
	if (check_disk(disk, readonly, abs, sizeof(abs)))
		goto out;
	if (backlog && (parse_u64(backlog, &v) < 0 || v == 0 || v > 65535)) {
		die("--backlog %s: expected a number 1..65535", backlog);
		goto out;
	}
	if (buffers && (parse_size(buffers, &v) < 0 || v < (1u << 20) || v > (64ull << 30))) {
		die("--buffers %s: expected a size from 1M to 64G", buffers);
		goto out;
	}
	if (limit_opts_save(&lists, &limits))
		goto out;
	if (event_opts_save(&lists, &events))
		goto out;
	if (tls_opts_serve(&lists, &tls))
		goto out;
	if (!first_listen && !first_sock) {
		first_listen = "127.0.0.1:10809";
		conf_add(&lists, "listen", first_listen);
	}
	char *auto_name = name ? NULL : default_name(disk, first_listen, first_sock);
	if (!name)
		name = auto_name;
	if (!state_name_valid(name, err, sizeof(err))) {
		die("export: %s", err);
		free(auto_name);
		goto out;
	}
	if (state_dir_ensure(err, sizeof(err)) < 0) {
		die("%s", err);
		free(auto_name);
		goto out;
	}
	pid_t pid = state_running_pid(name);
	if (pid) {
		die("export '%s' is already running (pid %d); stop it with 'dst stop %s' or choose "
		    "another --name",
		    name, (int)pid, name);
		free(auto_name);
		goto out;
	}
	char *conf_path = state_path(name, ".conf");
	struct conf old = {0};
	bool had_old = conf_load(conf_path, &old, err, sizeof(err)) == 0;
	if (had_old) {
		const char *t = conf_get(&old, "type");
		if (t && strcmp(t, "export")) {
			die("'%s' is a %s, not an export; choose another --name", name, t);
			conf_free(&old);
			free(conf_path);
			free(auto_name);
			goto out;
		}
	}
	conf_set(&conf, "type", "export");
	conf_set(&conf, "disk", abs);
	for (size_t i = 0; i < lists.n; i++)
		conf_add(&conf, lists.e[i].key, lists.e[i].val);
	if (readonly)
		conf_set(&conf, "readonly", "1");
	if (shared)
		conf_set(&conf, "shared", "1");
	if (backlog)
		conf_set(&conf, "backlog", backlog);
	if (buffers)
		conf_set(&conf, "buffers", buffers);
	if (metrics_listen && strcmp(metrics_listen, "off"))
		conf_set(&conf, "metrics-listen", metrics_listen);
	if (conf_save(conf_path, &conf, err, sizeof(err)) < 0) {
		die("%s", err);
	} else if (foreground) {
		rc = spawn_daemon(name, true); /* only returns on failure */
	} else if ((rc = spawn_daemon(name, false)) != 0) {
		/* Nothing changed: put back what was there. */
		if (had_old)
			conf_save(conf_path, &old, err, sizeof(err));
		else {
			unlink(conf_path);
			char *log_path = state_path(name, ".log");
			unlink(log_path);
			free(log_path);
		}
	} else {
		printf("exported %s as '%s'\n", abs, name);
		print_uris(name);
		char url[300];
		if (ctl_show_attr(name, "metrics", url, sizeof(url)) == 0)
			printf("  metrics at %s\n", url);
	}
	conf_free(&old);
	free(conf_path);
	free(auto_name);
out:
	conf_free(&lists);
	conf_free(&conf);
	return rc;
}
