/* cmd_replace.c - `dst replace`: live-migrate one node of a running storage
 * to a new node while the storage stays in use. The daemon copies, switches
 * and records the switch in the config; this command starts it, aborts it,
 * or with --wait draws its progress until it ends. */
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "array/leghdr.h"
#include "array/nodeconf.h"
#include "cli.h"
#include "common/config.h"
#include "common/state.h"
#include "common/util.h"

static const char replace_help[] =
    "usage: dst replace NAME NODE (--remote URI | --disk PATH) [--rate BYTES/s] [--wait]\n"
    "       dst replace NAME NODE --abort\n"
    "\n"
    "Move NODE (its name such as n-800, or its URI or path) of the running\n"
    "storage NAME to a new node while the storage stays in use. A background\n"
    "copy walks the node in 1 MiB regions; reads are served by the old node until\n"
    "the switch, writes behind the copy go to both nodes, a write to the region\n"
    "being copied waits for it. At the end the node's IO is drained, the config\n"
    "and the running storage switch to the new node, and the old one is left\n"
    "untouched. The new node must be at least as large; it is checked first.\n"
    "If the new node fails, or the migration is aborted, the old node stays and\n"
    "nothing is lost. If dstd stops meanwhile, it starts the copy again when it\n"
    "starts. A mirror leg (in sync) moves the same way: the old leg serves and\n"
    "stays in sync until the new one has everything.\n"
    "\n"
    "  --remote URI      the new node is an NBD server\n"
    "  --disk PATH       the new node is a local file or block device\n"
    "  --rate BYTES/s    limit the copy (e.g. 100M) so foreground IO keeps priority\n"
    "  --wait            draw a progress bar until the migration ends\n"
    "  --abort           stop a migration; the old node stays\n";

/* One attribute of the running storage ("S PATH VALUE" lines of its
 * show); malloc'd, or NULL. */
static char *attr(const char *name, const char *leaf)
{
	char err[256], path[256];
	struct strbuf reply;
	if (ctl_call(name, "show", &reply, err, sizeof(err)) < 0)
		return NULL;
	int plen = snprintf(path, sizeof(path), "%s/%s ", name, leaf);
	char *val = NULL;
	for (char *line = reply.s; line && *line;) {
		char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		if (len > 2 + (size_t)plen && !strncmp(line + 2, path, (size_t)plen)) {
			val = strndup(line + 2 + plen, len - 2 - (size_t)plen);
			break;
		}
		line = nl ? nl + 1 : NULL;
	}
	sb_free(&reply);
	return val;
}

static int wait_done(const char *name, const char *last_before)
{
	bool tty = isatty(STDOUT_FILENO);
	for (;;) {
		char *pct = attr(name, "migration/percent");
		if (!pct) {
			char *last = attr(name, "last_migration");
			if (tty)
				putchar('\n');
			if (!last || (last_before && !strcmp(last, last_before))) {
				free(last);
				return die("the migration ended, but the storage does not say how");
			}
			int ok = !strncmp(last, "done", 4);
			if (ok)
				printf("%s\n", last);
			else
				die("migration %s", last);
			free(last);
			return ok ? 0 : 1;
		}
		char *mibs = attr(name, "migration/mib_s"), *eta = attr(name, "migration/eta_s");
		unsigned p = (unsigned)strtoul(pct, NULL, 10);
		char bar[41];
		for (unsigned i = 0; i < 40; i++)
			bar[i] = i < p * 40 / 100 ? '#' : '.';
		bar[40] = '\0';
		printf("%s[%s] %3u%%  %s MiB/s  ETA %ss%s", tty ? "\r" : "", bar, p,
		       mibs ? mibs : "?", eta ? eta : "?", tty ? "   " : "\n");
		fflush(stdout);
		free(pct);
		free(mibs);
		free(eta);
		poll(NULL, 0, 500);
	}
}

int cmd_replace(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"remote", required_argument, NULL, 'r'},
	    {"disk", required_argument, NULL, 'd'},
	    {"rate", required_argument, NULL, 'R'},
	    {"wait", no_argument, NULL, 'w'},
	    {"abort", no_argument, NULL, 'a'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	const char *remote = NULL, *disk = NULL, *rate_s = NULL;
	bool wait = false, abort_it = false;
	int c;
	while ((c = getopt_long(argc, argv, "r:d:R:wah", opts, NULL)) != -1) {
		switch (c) {
		case 'r': remote = optarg; break;
		case 'd': disk = optarg; break;
		case 'R': rate_s = optarg; break;
		case 'w': wait = true; break;
		case 'a': abort_it = true; break;
		case 'h': return fputs(replace_help, stdout), 0;
		default: return bad_option("replace", argv);
		}
	}
	if (optind + 2 != argc)
		return die("replace: expected NAME and NODE; see 'dst replace --help'");
	if (abort_it && (remote || disk || rate_s))
		return die("replace: --abort takes no other option");
	if (!abort_it && !!remote == !!disk)
		return die("replace: give the new node with --remote URI or --disk PATH");
	uint64_t rate = 0;
	if (rate_s && (parse_size(rate_s, &rate) < 0 || rate < 4096))
		return die("--rate %s: expected bytes per second, at least 4K (e.g. 100M)", rate_s);
	const char *name = argv[optind], *node = argv[optind + 1];
	char spec[PATH_MAX + 64] = "";
	if (node_spec_arg(remote, disk, spec, sizeof(spec)))
		return 1;
	struct conf conf;
	if (storage_load(name, &conf))
		return 1;
	struct node_conf *nodes;
	size_t n = storage_nodes(&conf, &nodes);
	char nn[32] = "", err[512];
	int rc = 1;
	int idx = storage_find_node(name, nodes, n, node, nn, sizeof(nn));
	if (idx < 0)
		goto out;
	if (spec[0] && !strcmp(nodes[idx].spec, spec)) {
		die("%s is already on %s", nn, spec);
		goto out;
	}
	if (!state_running_pid(name)) {
		die("'%s' is not running (a live migration needs the running storage; a "
		    "stopped one can take 'dst remove' and 'dst add')",
		    name);
		goto out;
	}
	static struct label_move mv;
	char hex[33] = "";
	int lrc = 1;
	char *moving = abort_it ? NULL : attr(name, "migration/node");
	if (moving && *moving) {
		die("cannot replace %s of '%s': a migration of %s is already running", nn, name,
		    moving);
		free(moving);
		goto out;
	}
	free(moving);
	char key[48];
	snprintf(key, sizeof(key), "%s/suspended", nn);
	char *susp = abort_it ? NULL : attr(name, key);
	if (susp && !strcmp(susp, "yes")) {
		die("cannot replace %s of '%s': %s is suspended; resume it first", nn, name, nn);
		free(susp);
		goto out;
	}
	free(susp);
	if (!abort_it) {
		lrc =
		    label_node_move(name, &conf, nodes, n, (size_t)idx, remote != NULL, spec, &mv);
		if (lrc < 0)
			goto out;
		if (lrc == 0)
			uuid_format(mv.id, hex);
	}
	char *before = attr(name, "last_migration");
	char *cmd = abort_it
			? xasprintf("replace-abort %s", nn)
			: xasprintf("replace %s %s %llu %s%s%s", nn, remote ? "remote" : "disk",
				    (unsigned long long)rate, spec, hex[0] ? " " : "", hex);
	struct strbuf reply;
	int r = ctl_call(name, cmd, &reply, err, sizeof(err));
	free(cmd);
	if (r < 0) {
		free(before);
		if (lrc == 0)
			label_node_move_undo(&mv);
		die("cannot %s %s of '%s': %s", abort_it ? "abort the migration of" : "replace", nn,
		    name, err);
		goto out;
	}
	sb_free(&reply);
	if (abort_it) {
		printf("aborted the migration of %s of '%s'; the old node stays\n", nn, name);
		rc = 0;
	} else if (wait) {
		printf("migrating %s of '%s' to %s\n", nn, name, spec);
		rc = wait_done(name, before);
	} else {
		printf("migrating %s of '%s' to %s; follow it with 'dst show %s' (migration/...)\n",
		       nn, name, spec, name);
		rc = 0;
	}
	free(before);
out:
	storage_nodes_free(nodes, n);
	conf_free(&conf);
	return rc;
}
