/* cmd_label.c - dst label NAME: a stopped storage made before node labels
 * gets them where there is room, never over data. A mirror leg's label
 * takes the place of its older header (the last 4 KiB block of the leg,
 * never data); a linear or stripe node's goes in its disk's last 4 KiB
 * block when the node's data ends before it, and a node that fills its disk
 * stays unlabelled, said with the way out. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array/array.h"
#include "array/label.h"
#include "array/leghdr.h"
#include "cli.h"
#include "common/config.h"
#include "common/state.h"
#include "common/util.h"

static const char label_help[] =
    "usage: dst label NAME\n"
    "\n"
    "Give the nodes of stopped storage NAME, made before node labels existed,\n"
    "their labels (see dst add --help): the storage gets a UUID if it has none,\n"
    "and each node a label where there is room for it, never over data:\n"
    "  - a mirror leg: in place of its older header, its last 4 KiB block;\n"
    "  - a linear or stripe node: in its disk's last 4 KiB block, when the\n"
    "    node's data ends before it (added with --size, or a disk grown since).\n"
    "A node that fills its disk stays unlabelled and is used unchecked as\n"
    "before; dst replace moves it onto a disk 4 KiB larger, which is labelled.\n"
    "Nodes that already have a label, mem: disks and --import nodes are left\n"
    "as they are. A disk that is another node of the storage, or carries\n"
    "another storage's label, is refused as dst add refuses it.\n";

/* Where node nc's label can go, or 0 (and why) when there is no room. */
static uint64_t label_place(const struct alg_ops *alg, const struct node_conf *nc,
			    const struct tls_opts *tls, char *why, size_t whylen)
{
	if (alg == &alg_mirror)
		return leghdr_offset(nc->size * 512); /* the old header's block */
	uint64_t bytes = 0;
	char err[400];
	if ((nc->remote ? probe_remote(nc->spec, tls, &bytes, err, sizeof(err))
			: probe_local(nc->spec, &bytes, err, sizeof(err))) < 0) {
		snprintf(why, whylen, "cannot %s it: %s", nc->remote ? "reach" : "open", err);
		return 0;
	}
	uint64_t off = label_offset_for_disk(bytes);
	if (!off || off < nc->size * 512) {
		snprintf(why, whylen,
			 "its data fills the disk (%llu sectors of %llu): no room for a label "
			 "without writing over data; it stays unlabelled (dst replace moves it "
			 "onto a disk 4 KiB larger)",
			 (unsigned long long)nc->size, (unsigned long long)(bytes / 512));
		return 0;
	}
	return off;
}

static int label_storage(const char *name)
{
	struct conf conf;
	if (storage_load(name, &conf))
		return 1;
	int rc = 1;
	struct node_conf *nodes = NULL;
	size_t n = 0;
	pid_t pid = state_running_pid(name);
	const struct alg_ops *alg = alg_find(conf_get(&conf, "alg") ? conf_get(&conf, "alg") : "");
	if (pid) {
		die("'%s' is running (pid %d): stop it first, then dst label", name, (int)pid);
		goto out;
	}
	if (!alg) {
		die("'%s': config names an unknown algorithm", name);
		goto out;
	}
	struct label_join j = {.name = name, .alg = alg->name, .convert = true};
	const char *uuid_s = conf_get(&conf, "uuid");
	if (!uuid_s) {
		char hex[33];
		if (uuid_generate(j.uuid) < 0) {
			die("cannot generate a UUID: %s", strerror(errno));
			goto out;
		}
		uuid_format(j.uuid, hex);
		conf_set(&conf, "uuid", hex);
		printf("'%s' gets UUID %s\n", name, hex);
	} else if (uuid_parse(uuid_s, j.uuid) < 0) {
		die("'%s': the config's uuid '%s' is not 32 hex digits", name, uuid_s);
		goto out;
	}
	struct tls_opts tls;
	node_tls(&conf, &tls);
	j.tls = &tls;
	n = storage_nodes(&conf, &nodes);
	j.nodes = nodes;
	j.n = n;
	unsigned labelled = 0, left = 0;
	for (size_t i = 0; i < n; i++) {
		struct node_conf *nc = &nodes[i];
		char nn[32], why[512];
		node_conf_name(nc->start, nn, sizeof(nn));
		if (nc->label || !strncmp(nc->spec, "mem:", 4))
			continue;
		uint64_t off = label_place(alg, nc, &tls, why, sizeof(why));
		if (!off) {
			printf("%s (%s): %s\n", nn, nc->spec, why);
			left++;
			continue;
		}
		nc->label = off;
		if (label_node_join(&j, nc, why, sizeof(why)) < 0) {
			nc->label = 0;
			die("%s: %s", nn, why);
			goto out;
		}
		char *line = node_conf_format(nc);
		conf_replace_nth(&conf, "node", i, line);
		free(line);
		printf("%s (%s): labelled at byte %llu\n", nn, nc->spec, (unsigned long long)off);
		labelled++;
	}
	if (storage_save(name, &conf) == 0) {
		printf("'%s': %u nodes labelled, %u left unlabelled\n", name, labelled, left);
		rc = 0;
	}
out:
	storage_nodes_free(nodes, n);
	conf_free(&conf);
	return rc;
}

int cmd_label(int argc, char **argv)
{
	static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {0}};
	int c;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'h')
			return fputs(label_help, stdout), 0;
		return bad_option("label", argv);
	}
	if (optind + 1 != argc)
		return die("label: expected exactly one NAME; see 'dst label --help'");
	return label_storage(argv[optind]);
}
