/* cmd_storage.c - `dst create`, `dst add`, `dst remove`: a storage's config,
 * and its running daemon when there is one. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "array/array.h"
#include "array/bitmap.h"
#include "array/label.h"
#include "array/leghdr.h"
#include "array/nodeconf.h"
#include "cli.h"
#include "common/config.h"
#include "common/state.h"
#include "common/util.h"

static const char create_help[] =
    "usage: dst create NAME --alg linear|stripe|mirror [--chunk SIZE] [--io-timeout SECONDS]\n"
    "       dst create NAME --alg parity --data K --parity M [--chunk SIZE] ...\n"
    "                  [--request-timeout SECONDS] [--region-size SIZE] [--resync-rate RATE]\n"
    "                  [--tls-psk FILE [--tls-username NAME] | --tls-certs DIR]\n"
    "                  [--assume-clean] [--on-event PROGRAM [--on-event-timeout S]]\n"
    "\n"
    "Create storage NAME: one block device assembled from nodes by an algorithm.\n"
    "  alg_linear   nodes one after another, in start-sector order\n"
    "  alg_stripe   chunks spread round-robin over nodes of equal size\n"
    "  alg_mirror   every node (leg) holds the whole device; 2 to 8 legs, the\n"
    "               smallest one sets the size; survives the loss of all legs but one\n"
    "  alg_parity   Reed-Solomon erasure coding: each row of K data chunks gets M\n"
    "               parity chunks, rotating over K+M nodes of equal size; survives\n"
    "               the loss of any M nodes, stores (K+M)/K bytes per byte\n"
    "Add nodes with `dst add`, then serve it with `dst start`.\n"
    "\n"
    "  --alg ALG      linear (alg_linear), stripe (alg_stripe), mirror (alg_mirror)\n"
    "                 or parity (alg_parity)\n"
    "  --chunk SIZE   alg_stripe, alg_parity: the chunk, a power of two >= 4K\n"
    "                 (default 64K; alg_parity: at most 1M)\n"
    "  --data K       alg_parity: data chunks per row, 2 to 14\n"
    "  --parity M     alg_parity: parity chunks per row, 1 to 3 (K + M <= 15): the\n"
    "                 nodes that may be lost at once\n"
    "  --io-timeout SECONDS\n"
    "                 how long IO waits for a remote node that is unreachable\n"
    "                 (it is reconnected meanwhile and its requests resent) before\n"
    "                 failing with EIO; 0 waits forever (default 120)\n"
    "  --request-timeout SECONDS\n"
    "                 a request a remote node leaves unanswered this long means the\n"
    "                 node hangs: the connection is dropped and made again\n"
    "                 (default 30)\n"
    "  --region-size SIZE\n"
    "                 alg_mirror, alg_parity: bytes of a node per bit of the\n"
    "                 write-intent bitmap, a power of two >= 4K (default 1M); a\n"
    "                 node that comes back gets only the regions written while it\n"
    "                 was away\n"
    "  --resync-rate RATE\n"
    "                 alg_mirror, alg_parity: limit resync copying to RATE bytes/s\n"
    "                 (e.g. 50M) so that foreground IO keeps priority (default:\n"
    "                 unlimited)\n"
    "  --assume-clean alg_mirror: the legs of the new mirror hold the same bytes\n"
    "                 already; alg_parity: the nodes hold zeroes or matching\n"
    "                 parity already; no initial sync\n"
    "  --tls-psk FILE credentials for the storage's nbds:// and nbds+unix:// nodes:\n"
    "                 a psktool file; the storage is --tls-username's key in it\n"
    "                 (default: the first line's)\n"
    "  --tls-username NAME\n"
    "                 which user of the PSK file the storage is\n"
    "  --tls-certs DIR\n"
    "                 X.509 for those nodes: DIR/ca-cert.pem checks their\n"
    "                 certificates (and host names); client-cert.pem and\n"
    "                 client-key.pem, if there, go to nodes that ask for them\n"
    "  --on-event PROGRAM\n"
    "                 run PROGRAM EVENT NAME [NODE] on every event (node-lost,\n"
    "                 degraded, resync-done...; see dst(1), EVENTS), with\n"
    "                 DST_EVENT, DST_NODE, DST_DETAIL... in its environment\n"
    "  --on-event-timeout S\n"
    "                 kill a PROGRAM still running after S seconds (default 30;\n"
    "                 0: never)\n"
    "\n"
    "At its first start a new mirror copies its first leg to the others (initial\n"
    "sync; until then only the first leg serves reads), unless --assume-clean; a\n"
    "leg added to an existing mirror is copied whole when the storage starts.\n";

static const char add_help[] =
    "usage: dst add NAME (--remote URI | --disk PATH) [--start SECTOR] [--size SECTORS]\n"
    "               [--tls-psk FILE [--tls-username NAME] | --tls-certs DIR]\n"
    "\n"
    "Add a node to storage NAME. The node's size is asked from the node itself;\n"
    "--size may only make it smaller. Sizes and starts are 512-byte sectors.\n"
    "The node is named by its start sector (n-0, n-800...).\n"
    "\n"
    "  --remote URI     any NBD server: nbd://HOST:PORT[/EXPORT] or\n"
    "                   nbd+unix:///EXPORT?socket=PATH (a dst export, another dst\n"
    "                   storage, nbdkit, qemu-nbd...); nbds:// and nbds+unix://\n"
    "                   for TLS, with the storage's credentials (below)\n"
    "  --disk PATH      a local file or block device, served by the storage itself\n"
    "  --start SECTOR   where the node begins (alg_linear; default: after the last)\n"
    "  --size SECTORS   use only this much of the node\n"
    "  --tls-psk FILE, --tls-username NAME, --tls-certs DIR\n"
    "                   the storage's credentials for its TLS nodes, as for dst\n"
    "                   create; not while the storage runs\n"
    "  --relabel        take a disk that carries another storage's label, or data\n"
    "                   where the label goes, writing the label over them\n"
    "  --import         keep the disk's data as it is: the node uses the whole disk\n"
    "                   and carries no label, so it is used unchecked (not for\n"
    "                   alg_mirror legs)\n"
    "\n"
    "Every node gets a label in its disk's last 4 KiB block (the node's data ends\n"
    "before it): the storage's UUID, the node's place and a disk id. The storage\n"
    "uses a disk only as the node whose label it carries, on every connect and\n"
    "reconnect: a blank disk, another storage's disk or another node of the same\n"
    "storage at a node's address is not used (dst show says why). A disk that is\n"
    "already a node of the storage, under any name, is refused here.\n"
    "\n"
    "Adding to a running alg_linear storage grows it at its end: clients that\n"
    "connect afterwards see the new size.\n";

static const char remove_help[] =
    "usage: dst remove NAME NODE\n"
    "\n"
    "Remove NODE (its name such as n-800, or its URI or path) from storage NAME.\n"
    "A running storage only lets go of its last node in linear order (the\n"
    "device shrinks; the node is closed once its requests in flight are done).\n"
    "Data on the node is not touched.\n";

/* Load NAME's config and check it is a storage. */
int storage_load(const char *name, struct conf *conf)
{
	char err[512];
	if (!state_name_valid(name, err, sizeof(err)))
		return die("%s", err);
	char *path = state_path(name, ".conf");
	int rc = conf_load(path, conf, err, sizeof(err));
	free(path);
	if (rc == -ENOENT)
		return die("no storage named '%s' (create it with 'dst create %s --alg linear')",
			   name, name);
	if (rc < 0)
		return die("%s", err);
	const char *type = conf_get(conf, "type");
	if (!type || strcmp(type, "storage")) {
		die("'%s' is %s, not a storage", name,
		    !type		      ? "of an unknown type"
		    : !strcmp(type, "export") ? "an export"
					      : type);
		conf_free(conf);
		return 1;
	}
	return 0;
}

int storage_save(const char *name, const struct conf *conf)
{
	char err[512];
	char *path = state_path(name, ".conf");
	int rc = conf_save(path, conf, err, sizeof(err));
	free(path);
	if (rc < 0)
		return die("%s", err);
	return 0;
}

/* "--io-timeout 30" style values: whole seconds in [min, max]. */
int check_seconds(const char *opt, const char *v, uint64_t min, uint64_t max)
{
	uint64_t x;
	if (v && (parse_u64(v, &x) < 0 || x < min || x > max))
		return die("--%s %s: expected whole seconds from %llu to %llu", opt, v,
			   (unsigned long long)min, (unsigned long long)max);
	return 0;
}

int storage_create(const char *name, const struct create_args *ca)
{
	const char *alg = ca->alg, *chunk = ca->chunk;
	char err[512];
	if (!state_name_valid(name, err, sizeof(err)))
		return die("%s", err);
	if (!alg)
		return die("create: --alg is required (linear, stripe, mirror or parity)");
	const struct alg_ops *ops = alg_find(alg);
	if (!ops)
		return die("unknown algorithm '%s' (expected linear, stripe, mirror or parity)",
			   alg);
	uint64_t c = ARRAY_DEFAULT_CHUNK;
	if (chunk) {
		if (ops != &alg_stripe && ops != &alg_parity)
			return die("--chunk only applies to alg_stripe and alg_parity");
		if (parse_size(chunk, &c) < 0 || c < 4096 || (c & (c - 1)) || c > (1u << 30))
			return die("--chunk %s: expected a power of two from 4K to 1G", chunk);
	}
	uint64_t k = 0, m = 0;
	if ((ca->data || ca->parity) && ops != &alg_parity)
		return die("--%s only applies to alg_parity", ca->data ? "data" : "parity");
	if (ops == &alg_parity) {
		if (!ca->data || !ca->parity)
			return die("alg_parity needs --data K and --parity M (e.g. --data 4 "
				   "--parity 2: 6 nodes, any 2 may be lost)");
		if (parse_u64(ca->data, &k) < 0 || k < 2 || k > 14)
			return die("--data %s: expected 2 to 14 data chunks per row (for one, use "
				   "alg_mirror)",
				   ca->data);
		if (parse_u64(ca->parity, &m) < 0 || m < 1 || m > 3)
			return die("--parity %s: expected 1 to 3 parity chunks per row",
				   ca->parity);
		if (c > (1u << 20))
			return die("--chunk %s: alg_parity takes chunks of at most 1M", chunk);
		if (k + m > MBM_MAX_LEGS)
			return die("--data %llu --parity %llu: %llu nodes, at most %u",
				   (unsigned long long)k, (unsigned long long)m,
				   (unsigned long long)(k + m), MBM_MAX_LEGS);
	}
	if (check_seconds("io-timeout", ca->io_timeout, 0, 86400 * 365) ||
	    check_seconds("request-timeout", ca->request_timeout, 1, 86400))
		return 1;
	uint64_t x;
	if ((ca->region_size || ca->resync_rate) && !ops->redundant)
		return die("--%s only applies to alg_mirror and alg_parity",
			   ca->region_size ? "region-size" : "resync-rate");
	if (ca->region_size &&
	    (parse_size(ca->region_size, &x) < 0 || x < 4096 || (x & (x - 1)) || x > (1u << 30)))
		return die("--region-size %s: expected a power of two from 4K to 1G",
			   ca->region_size);
	if (ca->resync_rate && (parse_size(ca->resync_rate, &x) < 0 || x < 4096))
		return die("--resync-rate %s: expected bytes per second, at least 4K (e.g. 50M)",
			   ca->resync_rate);
	if (state_dir_ensure(err, sizeof(err)) < 0)
		return die("%s", err);
	char *path = state_path(name, ".conf");
	bool exists = access(path, F_OK) == 0;
	free(path);
	if (exists)
		return die("'%s' already exists (see 'dst show %s')", name, name);
	struct conf conf = {0};
	conf_set(&conf, "type", "storage");
	conf_set(&conf, "alg", ops->name);
	if (ops == &alg_stripe || ops == &alg_parity) {
		char b[32];
		snprintf(b, sizeof(b), "%llu", (unsigned long long)c);
		conf_set(&conf, "chunk", b);
	}
	if (ops == &alg_parity) {
		char b[32];
		snprintf(b, sizeof(b), "%llu", (unsigned long long)k);
		conf_set(&conf, "data", b);
		snprintf(b, sizeof(b), "%llu", (unsigned long long)m);
		conf_set(&conf, "parity", b);
	}
	if (ca->device && device_conf_set(&conf, ca->device)) {
		conf_free(&conf);
		return 1;
	}
	if (ca->io_timeout)
		conf_set(&conf, "io-timeout", ca->io_timeout);
	if (ca->request_timeout)
		conf_set(&conf, "request-timeout", ca->request_timeout);
	{
		/* In every node's label: a disk is used only as the node whose
		 * label it carries. */
		uint8_t uuid[16];
		char hex[33];
		if (uuid_generate(uuid) < 0) {
			conf_free(&conf);
			return die("cannot generate a UUID: %s", strerror(errno));
		}
		uuid_format(uuid, hex);
		conf_set(&conf, "uuid", hex);
	}
	if (ca->tls && tls_opts_nodes(&conf, ca->tls)) {
		conf_free(&conf);
		return 1;
	}
	if (ca->assume_clean) {
		if (!ops->redundant) {
			conf_free(&conf);
			return die("--assume-clean is for alg_mirror and alg_parity");
		}
		conf_set(&conf, "assume-clean", "yes");
	}
	if (ca->region_size)
		conf_set(&conf, "region-size", ca->region_size);
	if (ca->resync_rate)
		conf_set(&conf, "resync-rate", ca->resync_rate);
	if (ca->events && event_opts_save(&conf, ca->events)) {
		conf_free(&conf);
		return 1;
	}
	int rc = storage_save(name, &conf);
	conf_free(&conf);
	if (rc == 0)
		printf("created storage '%s' (%s)\n", name, ops->name);
	return rc;
}

/* Existing nodes, parsed. */
size_t storage_nodes(const struct conf *conf, struct node_conf **out)
{
	size_t n = conf_count(conf, "node");
	struct node_conf *nc = xcalloc(n ? n : 1, sizeof(*nc));
	char err[256];
	for (size_t i = 0; i < n; i++)
		if (node_conf_parse(conf_get_nth(conf, "node", i), &nc[i], err, sizeof(err)) < 0)
			nc[i].spec = xstrdup("?");
	*out = nc;
	return n;
}

void storage_nodes_free(struct node_conf *nc, size_t n)
{
	for (size_t i = 0; i < n; i++)
		node_conf_free(&nc[i]);
	free(nc);
}

bool is_nbd_uri(const char *s)
{
	static const char *const schemes[] = {"nbd://", "nbds://", "nbd+unix://", "nbds+unix://"};
	for (size_t i = 0; i < ARRAY_SIZE(schemes); i++)
		if (!strncmp(s, schemes[i], strlen(schemes[i])))
			return true;
	return false;
}

/* The storage's credentials for nbds:// nodes, from its config. */
void node_tls(const struct conf *conf, struct tls_opts *t)
{
	memset(t, 0, sizeof(*t));
	t->psk = conf_get(conf, "node-tls-psk");
	t->certs = conf_get(conf, "node-tls-certs");
	t->username = conf_get(conf, "node-tls-username");
}

static bool same(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

int storage_add(const char *name, bool remote, const char *spec_in, const char *start_s,
		const char *size_s, const struct tls_opts *tls_in, const struct add_opts *ao)
{
	static const struct add_opts no_opts;
	if (!ao)
		ao = &no_opts;
	struct conf conf;
	if (storage_load(name, &conf))
		return 1;
	struct tls_opts tls, before;
	node_tls(&conf, &before);
	if (tls_in && tls_opts_nodes(&conf, tls_in)) {
		conf_free(&conf);
		return 1;
	}
	node_tls(&conf, &tls);
	int rc = 1;
	char err[512], spec[PATH_MAX + 64];
	struct node_conf *nodes;
	size_t n = storage_nodes(&conf, &nodes);
	const struct alg_ops *alg = alg_find(conf_get(&conf, "alg") ? conf_get(&conf, "alg") : "");
	uint64_t bytes = 0, start = 0, size = 0;
	if (!alg) {
		die("'%s': config names an unknown algorithm", name);
		goto out;
	}
	if (alg->max_nodes && n >= alg->max_nodes) {
		die("'%s' already has %zu %ss, the most %s takes", name, n,
		    alg->node_word ? alg->node_word : "node", alg->name);
		goto out;
	}
	if (remote) {
		if (!is_nbd_uri(spec_in)) {
			die("--remote %s: expected an NBD URI like nbd://HOST:PORT or "
			    "nbd+unix:///?socket=PATH",
			    spec_in);
			goto out;
		}
		snprintf(spec, sizeof(spec), "%s", spec_in);
	} else if (!strncmp(spec_in, "mem:", 4)) {
		snprintf(spec, sizeof(spec), "%s", spec_in);
	} else if (!realpath(spec_in, spec)) {
		die("--disk %s: %s", spec_in, strerror(errno));
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(nodes[i].spec, spec)) {
			char nn[32];
			node_conf_name(nodes[i].start, nn, sizeof(nn));
			die("%s is already node %s of '%s'", spec, nn, name);
			goto out;
		}
	}
	int own_creds = remote ? probe_uri_creds(spec, err, sizeof(err)) : 0;
	if (own_creds < 0) {
		die("%s", err);
		goto out;
	}
	if (remote && !strncmp(spec, "nbds", 4) && !tls.psk && !tls.certs && !own_creds) {
		die("node %s: TLS needs the storage's credentials: give --tls-psk FILE or "
		    "--tls-certs DIR (here or to dst create), or name them in the URI "
		    "(?tls-psk-file=FILE or ?tls-certificates=DIR)",
		    spec);
		goto out;
	}
	if (state_running_pid(name) &&
	    (!same(tls.psk, before.psk) || !same(tls.certs, before.certs) ||
	     !same(tls.username, before.username))) {
		die("'%s' is running: stop it to change the credentials of its nbds:// nodes",
		    name);
		goto out;
	}
	if ((remote ? probe_remote(spec, &tls, &bytes, err, sizeof(err))
		    : probe_local(spec, &bytes, err, sizeof(err))) < 0) {
		die("node %s: cannot %s: %s", spec, remote ? "reach it" : "open it", err);
		goto out;
	}
	uint64_t have = bytes / 512;
	if (have == 0) {
		die("node %s: smaller than one sector", spec);
		goto out;
	}
	/* A labelled node: its label in the disk's last 4 KiB block; a
	 * mirror leg's header was always there, inside the leg. */
	uint8_t uuid[16];
	const char *uuid_s = conf_get(&conf, "uuid");
	bool labelled =
	    uuid_s && uuid_parse(uuid_s, uuid) == 0 && strncmp(spec, "mem:", 4) && !ao->import;
	uint64_t label_at = labelled ? label_offset_for_disk(bytes) : 0;
	if (ao->import && alg == &alg_mirror) {
		die("--import: a mirror leg keeps its header in its last 4 KiB; copy the image "
		    "onto the storage instead");
		goto out;
	}
	if (labelled && !label_at) {
		die("node %s: %llu bytes is too small to hold data and its label (8 KiB at least)",
		    spec, (unsigned long long)bytes);
		goto out;
	}
	if (labelled && alg != &alg_mirror)
		have = label_at / 512;
	if (remote && uuid_s && label_node_refuse_loop(name, spec, &tls, uuid))
		goto out;
	size = have;
	if (size_s) {
		if (parse_u64(size_s, &size) < 0 || size == 0) {
			die("--size %s: expected a positive number of sectors", size_s);
			goto out;
		}
		if (size > have) {
			if (labelled && alg != &alg_mirror)
				die("--size %s: node %s has room for %llu sectors and its label "
				    "(the "
				    "disk's last 4 KiB)",
				    size_s, spec, (unsigned long long)have);
			else
				die("--size %s: node %s has only %llu sectors (--size may only "
				    "narrow it)",
				    size_s, spec, (unsigned long long)have);
			goto out;
		}
	}
	uint64_t end = 0;
	for (size_t i = 0; i < n; i++)
		end = MAX(end, nodes[i].start + nodes[i].size);
	start = end;
	if (start_s) {
		if (alg != &alg_linear) {
			die("--start has no meaning for %s (%s)", alg->name,
			    alg == &alg_mirror ? "every leg holds the whole device"
					       : "chunks are spread over all nodes");
			goto out;
		}
		if (parse_u64(start_s, &start) < 0) {
			die("--start %s: expected a sector number", start_s);
			goto out;
		}
	}
	/* The layout with the new node, checked by the code dstd checks it
	 * with at start: what it would refuse is refused here, in its words. */
	{
		struct array_node *all = xcalloc(n + 1, sizeof(*all));
		for (size_t i = 0; i < n; i++) {
			all[i].start = nodes[i].start;
			all[i].size = nodes[i].size;
			node_conf_name(nodes[i].start, all[i].name, sizeof(all[i].name));
		}
		all[n].start = start;
		all[n].size = size;
		node_conf_name(start, all[n].name, sizeof(all[n].name));
		struct alg_geom geo;
		uint64_t bytes_ok = 0;
		if (alg_geom_conf(&conf, &geo, err, sizeof(err)) == 0)
			bytes_ok =
			    array_layout_check(alg, all, n + 1, &geo, true, err, sizeof(err));
		free(all);
		if (!bytes_ok) {
			die("cannot add %s to '%s': %s", spec, name, err);
			goto out;
		}
	}
	if (state_running_pid(name) && !alg->can_grow) {
		die("cannot add %s to running storage '%s': %s cannot grow while running: its "
		    "layout would change",
		    spec, name, alg->name);
		goto out;
	}
	struct node_conf nc = {
	    .remote = remote, .start = start, .size = size, .spec = spec, .label = label_at};
	uint8_t saved[LABEL_SIZE];
	struct label_join j = {.name = name,
			       .alg = alg->name,
			       .nodes = nodes,
			       .n = n,
			       .tls = &tls,
			       .relabel = ao->relabel,
			       .saved = saved};
	memcpy(j.uuid, uuid, 16);
	if (labelled) {
		if (label_node_join(&j, &nc, err, sizeof(err)) < 0) {
			die("%s", err);
			goto out;
		}
	}
	char *line = node_conf_format(&nc);
	char nn[32];
	node_conf_name(start, nn, sizeof(nn));
	if (state_running_pid(name)) {
		char *cmd = xasprintf("add-node %s", line);
		struct strbuf reply;
		int r = ctl_call(name, cmd, &reply, err, sizeof(err));
		free(cmd);
		if (r < 0) {
			die("cannot add %s to running storage '%s': %s", spec, name, err);
			if (labelled)
				label_node_undo(&j, &nc);
			free(line);
			goto out;
		}
		sb_free(&reply);
	}
	conf_add(&conf, "node", line);
	free(line);
	if (storage_save(name, &conf) != 0) {
		if (labelled)
			label_node_undo(&j, &nc);
	} else {
		char d[64];
		printf("added node %s (%s%s, %llu sectors, %s) to '%s'\n", nn,
		       remote ? "R: " : "L: ", spec, (unsigned long long)size,
		       format_size(size * 512, d, sizeof(d)), name);
		rc = 0;
	}
out:
	storage_nodes_free(nodes, n);
	conf_free(&conf);
	return rc;
}

int storage_remove(const char *name, const char *node)
{
	struct conf conf;
	if (storage_load(name, &conf))
		return 1;
	int rc = 1;
	struct node_conf *nodes;
	size_t n = storage_nodes(&conf, &nodes);
	size_t victim = n;
	char nn[32], err[512];
	for (size_t i = 0; i < n; i++) {
		node_conf_name(nodes[i].start, nn, sizeof(nn));
		if (!strcmp(nn, node) || !strcmp(nodes[i].spec, node)) {
			victim = i;
			break;
		}
	}
	if (victim == n) {
		die("'%s' has no node '%s' (see 'dst show %s')", name, node, name);
		goto out;
	}
	node_conf_name(nodes[victim].start, nn, sizeof(nn));
	const struct alg_ops *alg = alg_find(conf_get(&conf, "alg") ? conf_get(&conf, "alg") : "");
	if (state_running_pid(name)) {
		char *cmd = xasprintf("remove-node %s", nn);
		struct strbuf reply;
		int r = ctl_call(name, cmd, &reply, err, sizeof(err));
		free(cmd);
		if (r < 0) {
			die("%s", err);
			goto out;
		}
		sb_free(&reply);
	} else if (alg == &alg_linear && n > 1) {
		/* The rest must still be one device without holes. */
		struct array_node *rest = xcalloc(n, sizeof(*rest));
		size_t k = 0;
		for (size_t i = 0; i < n; i++) {
			if (i == victim)
				continue;
			rest[k].start = nodes[i].start;
			rest[k].size = nodes[i].size;
			node_conf_name(nodes[i].start, rest[k].name, sizeof(rest[k].name));
			k++;
		}
		for (size_t i = 1; i < k; i++) /* sort by start (few nodes) */
			for (size_t j = i; j > 0 && rest[j].start < rest[j - 1].start; j--) {
				struct array_node t = rest[j];
				rest[j] = rest[j - 1];
				rest[j - 1] = t;
			}
		const struct alg_geom geo = {0};
		uint64_t ok = alg_linear.layout(rest, k, &geo, err, sizeof(err));
		free(rest);
		if (!ok) {
			die("cannot remove %s: %s", nn, err);
			goto out;
		}
	}
	/* Drop the victim's line from the config. */
	const char *line = conf_get_nth(&conf, "node", victim);
	char *keep = xstrdup(line);
	struct conf out = {0};
	for (size_t i = 0; i < conf.n; i++)
		if (strcmp(conf.e[i].key, "node") || strcmp(conf.e[i].val, keep))
			conf_add(&out, conf.e[i].key, conf.e[i].val);
	free(keep);
	if (storage_save(name, &out) == 0) {
		printf("removed node %s (%s) from '%s'\n", nn, nodes[victim].spec, name);
		rc = 0;
	}
	conf_free(&out);
out:
	storage_nodes_free(nodes, n);
	conf_free(&conf);
	return rc;
}

int cmd_create(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"alg", required_argument, NULL, 'A'},
	    {"chunk", required_argument, NULL, 'c'},
	    {"data", required_argument, NULL, 'D'},
	    {"parity", required_argument, NULL, 'M'},
	    {"io-timeout", required_argument, NULL, 'i'},
	    {"request-timeout", required_argument, NULL, 'r'},
	    {"region-size", required_argument, NULL, 'R'},
	    {"assume-clean", no_argument, NULL, 'K'},
	    {"resync-rate", required_argument, NULL, 'S'},
	    {"tls-psk", required_argument, NULL, 'P'},
	    {"tls-certs", required_argument, NULL, 'C'},
	    {"tls-username", required_argument, NULL, 'U'},
	    {"help", no_argument, NULL, 'h'},
	    EVENT_LONG_OPTIONS,
	    {0},
	};
	struct tls_opts tls = {0};
	struct event_opts events = {0};
	struct create_args ca = {.tls = &tls, .events = &events};
	int c;
	while ((c = getopt_long(argc, argv, "A:c:i:r:R:S:h", opts, NULL)) != -1) {
		switch (c) {
		case 'A': ca.alg = optarg; break;
		case 'c': ca.chunk = optarg; break;
		case 'D': ca.data = optarg; break;
		case 'M': ca.parity = optarg; break;
		case 'i': ca.io_timeout = optarg; break;
		case 'r': ca.request_timeout = optarg; break;
		case 'R': ca.region_size = optarg; break;
		case 'K': ca.assume_clean = true; break;
		case 'S': ca.resync_rate = optarg; break;
		case 'P': tls.psk = optarg; break;
		case 'C': tls.certs = optarg; break;
		case 'U': tls.username = optarg; break;
		case 'h': return fputs(create_help, stdout), 0;
		default:
			if (event_opts_take(&events, c, optarg))
				break;
			return bad_option("create", argv);
		}
	}
	if (optind + 1 != argc)
		return die("create: expected exactly one NAME; see 'dst create --help'");
	return storage_create(argv[optind], &ca);
}

int cmd_add(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"remote", required_argument, NULL, 'r'},
	    {"disk", required_argument, NULL, 'd'},
	    {"start", required_argument, NULL, 's'},
	    {"size", required_argument, NULL, 'S'},
	    {"tls-psk", required_argument, NULL, 'P'},
	    {"tls-certs", required_argument, NULL, 'C'},
	    {"tls-username", required_argument, NULL, 'U'},
	    {"relabel", no_argument, NULL, 'L'},
	    {"import", no_argument, NULL, 'I'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	struct tls_opts tls = {0};
	struct add_opts ao = {0};
	const char *remote = NULL, *disk = NULL, *start = NULL, *size = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "r:d:s:S:h", opts, NULL)) != -1) {
		switch (c) {
		case 'r': remote = optarg; break;
		case 'd': disk = optarg; break;
		case 's': start = optarg; break;
		case 'S': size = optarg; break;
		case 'P': tls.psk = optarg; break;
		case 'C': tls.certs = optarg; break;
		case 'U': tls.username = optarg; break;
		case 'L': ao.relabel = true; break;
		case 'I': ao.import = true; break;
		case 'h': return fputs(add_help, stdout), 0;
		default: return bad_option("add", argv);
		}
	}
	if (optind + 1 != argc)
		return die("add: expected exactly one NAME; see 'dst add --help'");
	if (!!remote == !!disk)
		return die("add: give exactly one of --remote URI or --disk PATH");
	bool any_tls = tls.psk || tls.certs || tls.username;
	if (ao.relabel && ao.import)
		return die("add: --relabel and --import exclude each other");
	return storage_add(argv[optind], remote != NULL, remote ? remote : disk, start, size,
			   any_tls ? &tls : NULL, &ao);
}

int cmd_remove(int argc, char **argv)
{
	static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {0}};
	int c;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'h')
			return fputs(remove_help, stdout), 0;
		return bad_option("remove", argv);
	}
	if (optind + 2 != argc)
		return die("remove: expected NAME and NODE; see 'dst remove --help'");
	return storage_remove(argv[optind], argv[optind + 1]);
}
