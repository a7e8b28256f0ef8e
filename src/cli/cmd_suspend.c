/* cmd_suspend.c - `dst suspend` and `dst resume`: freeze one node's IO while
 * its disk is swapped or it moves, every other node's IO going on. The
 * running daemon holds the node's new requests; resume releases them,
 * optionally onto a new address or disk, which the config then records. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array/leghdr.h"
#include "array/nodeconf.h"
#include "cli.h"
#include "common/config.h"
#include "common/state.h"
#include "common/util.h"

static const char suspend_help[] =
    "usage: dst suspend NAME NODE\n"
    "\n"
    "Stop sending IO to NODE (its name such as n-800, or its URI or path) of the\n"
    "running storage NAME. Requests already sent to it complete first (drain);\n"
    "this command returns once they have, and says how many new requests are\n"
    "held. Held requests wait in memory, within the storage's in-flight budget\n"
    "(past it, clients are slowed down); requests for every other node go on.\n"
    "A suspend is deliberate: io-timeout does not apply to it. For alg_mirror,\n"
    "the leg is taken as missing instead: writes go on to the other legs and\n"
    "are marked in the write-intent bitmap, and resume resyncs them.\n"
    "\n"
    "Then swap the disk or move the node, and run dst resume.\n";

static const char resume_help[] =
    "usage: dst resume NAME NODE [--remote URI | --disk PATH]\n"
    "\n"
    "Release the requests held for suspended NODE of storage NAME. With\n"
    "--remote or --disk they go to a new node instead (the disk was swapped or\n"
    "the node moved): it must be at least as large, and the config records it.\n";

int storage_find_node(const char *name, const struct node_conf *nodes, size_t n, const char *node,
		      char *nn, size_t nnlen)
{
	for (size_t i = 0; i < n; i++) {
		node_conf_name(nodes[i].start, nn, nnlen);
		if (!strcmp(nn, node) || !strcmp(nodes[i].spec, node))
			return (int)i;
	}
	die("'%s' has no node '%s' (see 'dst show %s')", name, node, name);
	return -1;
}

int node_spec_arg(const char *remote, const char *disk, char *spec, size_t len)
{
	if (remote) {
		if (!is_nbd_uri(remote))
			return die("--remote %s: expected an NBD URI like nbd://HOST:PORT", remote);
		snprintf(spec, len, "%s", remote);
	} else if (disk) {
		if (!strncmp(disk, "mem:", 4))
			snprintf(spec, len, "%s", disk);
		else if (!realpath(disk, spec))
			return die("--disk %s: %s", disk, strerror(errno));
	}
	return 0;
}

static int must_run(const char *name)
{
	if (state_running_pid(name))
		return 0;
	return die("'%s' is not running (suspend and resume act on a running storage)", name);
}

int cmd_suspend(int argc, char **argv)
{
	static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {0}};
	int c;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'h')
			return fputs(suspend_help, stdout), 0;
		return bad_option("suspend", argv);
	}
	if (optind + 2 != argc)
		return die("suspend: expected NAME and NODE; see 'dst suspend --help'");
	const char *name = argv[optind], *node = argv[optind + 1];
	struct conf conf;
	if (storage_load(name, &conf))
		return 1;
	struct node_conf *nodes;
	size_t n = storage_nodes(&conf, &nodes);
	char nn[32], err[512];
	int rc = 1;
	if (storage_find_node(name, nodes, n, node, nn, sizeof(nn)) < 0 || must_run(name))
		goto out;
	char *cmd = xasprintf("suspend %s", nn);
	struct strbuf reply;
	int r = ctl_call(name, cmd, &reply, err, sizeof(err));
	free(cmd);
	if (r < 0) {
		die("cannot suspend %s of '%s': %s", nn, name, err);
		goto out;
	}
	unsigned long long held = 0;
	sscanf(reply.s, "held %llu", &held);
	sb_free(&reply);
	printf("suspended %s of '%s': drained, %llu requests held\n", nn, name, held);
	rc = 0;
out:
	storage_nodes_free(nodes, n);
	conf_free(&conf);
	return rc;
}

int cmd_resume(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"remote", required_argument, NULL, 'r'},
	    {"disk", required_argument, NULL, 'd'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	const char *remote = NULL, *disk = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "r:d:h", opts, NULL)) != -1) {
		switch (c) {
		case 'r': remote = optarg; break;
		case 'd': disk = optarg; break;
		case 'h': return fputs(resume_help, stdout), 0;
		default: return bad_option("resume", argv);
		}
	}
	if (optind + 2 != argc)
		return die("resume: expected NAME and NODE; see 'dst resume --help'");
	if (remote && disk)
		return die("resume: give --remote or --disk, not both");
	const char *name = argv[optind], *node = argv[optind + 1];
	char spec[PATH_MAX + 64] = "";
	if (node_spec_arg(remote, disk, spec, sizeof(spec)))
		return 1;
	struct conf conf;
	if (storage_load(name, &conf))
		return 1;
	struct node_conf *nodes;
	size_t n = storage_nodes(&conf, &nodes);
	char nn[32], err[512];
	int rc = 1;
	int idx = storage_find_node(name, nodes, n, node, nn, sizeof(nn));
	if (idx < 0 || must_run(name))
		goto out;
	static struct label_move mv;
	mv.self_ok = true; /* the node's own disk at a new address */
	char hex[33] = "";
	int lrc =
	    spec[0] ? label_node_move(name, &conf, nodes, n, (size_t)idx, remote != NULL, spec, &mv)
		    : 1;
	if (lrc < 0)
		goto out;
	if (lrc == 0)
		uuid_format(mv.id, hex);
	char *cmd = spec[0] ? xasprintf("resume %s %s %s%s%s", nn, remote ? "remote" : "disk", spec,
					hex[0] ? " " : "", hex)
			    : xasprintf("resume %s", nn);
	struct strbuf reply;
	int r = ctl_call(name, cmd, &reply, err, sizeof(err));
	free(cmd);
	if (r < 0) {
		die("cannot resume %s of '%s': %s", nn, name, err);
		if (lrc == 0)
			label_node_move_undo(&mv);
		goto out;
	}
	sb_free(&reply);
	if (spec[0]) {
		/* The running storage uses the new node now: so must the config. */
		struct node_conf nc = nodes[idx];
		nc.remote = remote != NULL;
		nc.spec = spec;
		if (lrc == 0)
			memcpy(nc.id, mv.id, 16);
		char *line = node_conf_format(&nc);
		conf_replace_nth(&conf, "node", (size_t)idx, line);
		free(line);
		if (storage_save(name, &conf))
			goto out;
		printf("resumed %s of '%s' on %s\n", nn, name, spec);
	} else {
		printf("resumed %s of '%s'\n", nn, name);
	}
	rc = 0;
out:
	storage_nodes_free(nodes, n);
	conf_free(&conf);
	return rc;
}
