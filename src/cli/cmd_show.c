/* cmd_show.c - `dst show` (the sysfs-shaped tree, or JSON) and `dst stat`
 * (live per-node rates computed from two samples of the same counters). */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "array/array.h"
#include "array/nodeconf.h"
#include "cli.h"
#include "common/config.h"
#include "common/ev.h"
#include "common/state.h"
#include "common/util.h"
#include "nbd/wire.h"
#include "show.h"

static const char show_help[] =
    "usage: dst show [NAME] [--json]\n"
    "\n"
    "Show storages and exports as a tree of attributes, one per line, as DST's\n"
    "sysfs did:\n"
    "  storage/alg : alg_linear\n"
    "  storage/n-800/type : R: 192.168.4.80:1025\n"
    "  storage/uri : nbd+unix:///?socket=/var/lib/dst/storage.sock\n"
    "Running daemons report their live state, IO counters and latency; stopped\n"
    "ones their config. Without NAME, everything in the state dir.\n"
    "\n"
    "A stopped storage's size is the one it will have once started.\n"
    "\n"
    "  --json   the same data as one JSON object keyed by name, typed: numbers,\n"
    "           booleans, a storage's nodes as the array \"nodes\" (see dst(1),\n"
    "           JSON output)\n";

static const char stat_help[] =
    "usage: dst stat NAME [--watch] [--interval SECONDS] [--count N] [--json]\n"
    "\n"
    "Show IO rates of NAME and of each of its nodes: IOPS and MiB/s for reads\n"
    "and writes, requests in flight, and average latency over the interval.\n"
    "For alg_mirror also the legs' health (A in sync, S syncing, D dead) and,\n"
    "while a leg is resynced, a progress bar with MiB/s and the time left.\n"
    "\n"
    "  --watch            refresh until interrupted (Ctrl-C)\n"
    "  --interval SECONDS sampling interval (default 1; fractions allowed)\n"
    "  --count N          with --watch, stop after N refreshes\n"
    "  --json             each sample as one JSON object on one line (JSON lines\n"
    "                     with --watch); see dst(1), JSON output\n";

/* ---- attribute lines ---- */

size_t attrs_parse(const char *text, struct attr **out)
{
	size_t n = 0, cap = 0;
	struct attr *a = NULL;
	char *copy = xstrdup(text ? text : "");
	char *save = NULL;
	for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if ((line[0] != 'N' && line[0] != 'S') || line[1] != ' ')
			continue;
		char *path = line + 2, *sp = strchr(path, ' ');
		if (!sp)
			continue;
		*sp = '\0';
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			a = realloc(a, cap * sizeof(*a));
			if (!a)
				abort();
		}
		a[n].type = line[0];
		a[n].path = xstrdup(path);
		a[n].val = xstrdup(sp + 1);
		n++;
	}
	free(copy);
	*out = a;
	return n;
}

void attrs_free(struct attr *a, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(a[i].path);
		free(a[i].val);
	}
	free(a);
}

const char *attrs_get(const struct attr *a, size_t n, const char *path)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(a[i].path, path))
			return a[i].val;
	return NULL;
}

void show_print_tree(const char *attrs)
{
	struct attr *a;
	size_t n = attrs_parse(attrs, &a);
	for (size_t i = 0; i < n; i++)
		printf("%s : %s\n", a[i].path, a[i].val);
	attrs_free(a, n);
}

/* ---- gathering ---- */

/* A stopped storage, from its config, in the same shape as a running one. */
static void show_stopped_storage(const char *name, const struct conf *c, struct strbuf *out)
{
	char p[512];
#define PATH(leaf) (snprintf(p, sizeof(p), "%s/%s", name, leaf), p)
	const char *alg = conf_get(c, "alg");
	sb_attr_str(out, PATH("name"), "%s", name);
	sb_attr_str(out, PATH("type"), "storage");
	sb_attr_str(out, PATH("alg"), "%s", alg ? alg : "?");
	sb_attr_str(out, PATH("state"), "stopped");
	struct alg_geom geo;
	char gerr[256];
	if (alg_geom_conf(c, &geo, gerr, sizeof(gerr)) < 0)
		geo = (struct alg_geom){.chunk = ARRAY_DEFAULT_CHUNK};
	if (conf_get(c, "chunk"))
		sb_attr_num(out, PATH("chunk"), geo.chunk);
	size_t n = conf_count(c, "node");
	struct node_conf *nodes = xcalloc(n ? n : 1, sizeof(*nodes));
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		char err[256];
		if (node_conf_parse(conf_get_nth(c, "node", i), &nodes[k], err, sizeof(err)) == 0)
			k++;
	}
	/* In start order, as the storage lays them out. */
	for (size_t i = 1; i < k; i++)
		for (size_t j = i; j > 0 && nodes[j].start < nodes[j - 1].start; j--) {
			struct node_conf t = nodes[j];
			nodes[j] = nodes[j - 1];
			nodes[j - 1] = t;
		}
	/* Its size as the daemon will lay it out (a mirror: the smallest leg
	 * less its header; a stripe: whole chunks), by the same code. */
	const struct alg_ops *ops = alg_find(alg ? alg : "");
	struct array_node *an = xcalloc(k ? k : 1, sizeof(*an));
	for (size_t i = 0; i < k; i++) {
		node_conf_name(nodes[i].start, an[i].name, sizeof(an[i].name));
		an[i].start = nodes[i].start;
		an[i].size = nodes[i].size;
		an[i].remote = nodes[i].remote;
		an[i].spec = nodes[i].spec;
	}
	char why[256] = "";
	uint64_t bytes = ops ? ops->layout(an, k, &geo, why, sizeof(why)) : 0;
	free(an);
	sb_attr_num(out, PATH("size"), bytes / 512);
	sb_attr_num(out, PATH("bytes"), bytes);
	if (!bytes)
		sb_attr_str(out, PATH("error"), "%s", ops ? why : "unknown algorithm");
	struct strbuf line;
	sb_init(&line);
	sb_printf(&line, "sectors (start [size]): ");
	for (size_t i = 0; i < k; i++) {
		char nn[32], q[512];
		node_conf_name(nodes[i].start, nn, sizeof(nn));
		char *desc = nodes[i].remote ? nbd_uri_describe(nodes[i].spec)
					     : xasprintf("L: %s", nodes[i].spec);
		snprintf(q, sizeof(q), "%s/%s/type", name, nn);
		sb_attr_str(out, q, "%s", desc);
		free(desc);
		snprintf(q, sizeof(q), "%s/%s/size", name, nn);
		sb_attr_num(out, q, nodes[i].size);
		snprintf(q, sizeof(q), "%s/%s/start", name, nn);
		sb_attr_num(out, q, nodes[i].start);
		snprintf(q, sizeof(q), "%s/%s/state", name, nn);
		sb_attr_str(out, q, "stopped");
		if (nodes[i].remote) {
			snprintf(q, sizeof(q), "%s/%s/uri", name, nn);
			sb_attr_str(out, q, "%s", nodes[i].spec);
		}
		sb_printf(&line, "%s%llu [%llu]", i ? " | " : "",
			  (unsigned long long)nodes[i].start, (unsigned long long)nodes[i].size);
		node_conf_free(&nodes[i]);
	}
	free(nodes);
	sb_attr_str(out, PATH("nodes"), "%s", line.s);
	sb_free(&line);
	/* Where it will be served once started. */
	for (size_t i = 0; conf_get_nth(c, "listen", i); i++)
		sb_attr_str(out, PATH("uri"), "nbd://%s", conf_get_nth(c, "listen", i));
	for (size_t i = 0; conf_get_nth(c, "socket", i); i++)
		sb_attr_str(out, PATH("uri"), "nbd+unix:///?socket=%s",
			    conf_get_nth(c, "socket", i));
	if (!conf_get(c, "listen") && !conf_get(c, "socket"))
		sb_attr_str(out, PATH("uri"), "nbd+unix:///?socket=%s/%s.sock", state_dir(), name);
	for (size_t i = 0; conf_get_nth(c, "allow", i); i++)
		sb_attr_str(out, PATH("allow"), "%s", conf_get_nth(c, "allow", i));
	if (conf_get(c, "fuse"))
		sb_attr_str(out, PATH("fuse"), "%s", conf_get(c, "fuse"));
	if (conf_get(c, "nbd-device"))
		sb_attr_str(out, PATH("nbd_device"), "%s", conf_get(c, "nbd-device"));
#undef PATH
}

/* Attributes of one name from its config, as a stopped one. */
static int gather_config(const char *name, struct strbuf *out, bool quiet)
{
	char err[512];
	char *path = state_path(name, ".conf");
	struct conf c;
	int rc = conf_load(path, &c, err, sizeof(err));
	free(path);
	if (rc < 0) {
		if (!quiet) {
			if (rc == -ENOENT)
				die("no storage or export named '%s' (state dir %s)", name,
				    state_dir());
			else
				die("%s", err);
		} else if (rc != -ENOENT) {
			/* Listing them all: the others still shown, this one said. */
			fprintf(stderr, "dst: %s (skipped)\n", err);
		}
		return -1;
	}
	const char *type = conf_get(&c, "type");
	if (type && !strcmp(type, "storage")) {
		show_stopped_storage(name, &c, out);
		conf_free(&c);
		return 0;
	}
	char p[512];
	snprintf(p, sizeof(p), "%s/name", name);
	sb_attr_str(out, p, "%s", name);
	for (size_t i = 0; i < c.n; i++) {
		snprintf(p, sizeof(p), "%s/%s", name, c.e[i].key);
		sb_attr_str(out, p, "%s", c.e[i].val);
	}
	snprintf(p, sizeof(p), "%s/state", name);
	sb_attr_str(out, p, "stopped");
	conf_free(&c);
	return 0;
}

int show_gather(const char *name, struct strbuf *out, bool quiet, char *err, size_t errlen)
{
	struct strbuf reply;
	if (state_running_pid(name)) {
		if (ctl_call(name, "show", &reply, err, errlen) < 0)
			return -2;
		sb_add(out, reply.s ? reply.s : "", reply.len);
		sb_free(&reply);
		return 0;
	}
	return gather_config(name, out, quiet);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

size_t show_all_names(char ***out)
{
	DIR *d = opendir(state_dir());
	char **names = NULL;
	size_t n = 0;
	struct dirent *de;
	while (d && (de = readdir(d))) {
		size_t len = strlen(de->d_name);
		if (len > 5 && !strcmp(de->d_name + len - 5, ".conf")) {
			names = realloc(names, (n + 1) * sizeof(*names));
			if (!names)
				abort();
			names[n] = xstrdup(de->d_name);
			names[n++][len - 5] = '\0';
		}
	}
	if (d)
		closedir(d);
	if (n)
		qsort(names, n, sizeof(*names), cmp_str);
	*out = names;
	return n;
}

/* show's gathering: a daemon that does not answer is said, and its config
 * shown instead. */
static int show_one(const char *name, struct strbuf *out, bool quiet)
{
	char err[512];
	int rc = show_gather(name, out, quiet, err, sizeof(err));
	if (rc != -2)
		return rc;
	fprintf(stderr, "dst: %s: %s; showing its config\n", name, err);
	return gather_config(name, out, quiet);
}

int cmd_show(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	bool json = false;
	int c;
	while ((c = getopt_long(argc, argv, "jh", opts, NULL)) != -1) {
		if (c == 'j')
			json = true;
		else if (c == 'h')
			return fputs(show_help, stdout), 0;
		else
			return bad_option("show", argv);
	}
	if (argc - optind > 1)
		return die("show: expected at most one NAME");
	struct strbuf all;
	sb_init(&all);
	if (optind < argc) {
		char err[256];
		if (!state_name_valid(argv[optind], err, sizeof(err)))
			return die("%s", err);
		if (show_one(argv[optind], &all, false) < 0)
			return 1;
	} else {
		char **names;
		size_t n = show_all_names(&names);
		for (size_t i = 0; i < n; i++) {
			show_one(names[i], &all, true);
			free(names[i]);
		}
		free(names);
	}
	if (json)
		show_print_json(all.s);
	else
		show_print_tree(all.s);
	sb_free(&all);
	return 0;
}

/* ---- stat ---- */

struct sample {
	struct attr *a;
	size_t n;
};

static uint64_t num(const struct sample *s, const char *prefix, const char *leaf)
{
	size_t plen = strlen(prefix);
	for (size_t i = 0; i < s->n; i++) {
		const char *p = s->a[i].path;
		if (!strncmp(p, prefix, plen) && !strcmp(p + plen, leaf))
			return strtoull(s->a[i].val, NULL, 10);
	}
	return 0;
}

static const char *str(const struct sample *s, const char *path)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->a[i].path, path))
			return s->a[i].val;
	return NULL;
}

/* alg_mirror, alg_parity: the nodes' health and, while a resync runs, a
 * progress bar. */
static void print_mirror(const char *name, const struct sample *b)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/health", name);
	const char *health = str(b, p);
	if (!health)
		return;
	snprintf(p, sizeof(p), "%s/parity/behind_regions", name);
	const char *behind = str(b, p);
	snprintf(p, sizeof(p), "%s/sync", name);
	const char *sync = str(b, p);
	if (behind)
		printf("parity nodes %s, regions behind: %s\n", health, behind);
	else
		printf("mirror legs %s, in sync: %s\n", health, sync ? sync : "?");
	snprintf(p, sizeof(p), "%s/resync/percent", name);
	const char *pct = str(b, p);
	if (!pct)
		return;
	unsigned percent = (unsigned)strtoul(pct, NULL, 10);
	char bar[41];
	unsigned fill = percent * 40 / 100;
	for (unsigned i = 0; i < 40; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[40] = '\0';
	char prefix[300];
	snprintf(prefix, sizeof(prefix), "%s/resync/", name);
	snprintf(p, sizeof(p), "%s/resync/mib_s", name);
	const char *mibs = str(b, p);
	snprintf(p, sizeof(p), "%s/resync/progress", name);
	const char *prog = str(b, p);
	printf("resync [%s] %3u%%  %s  %s MiB/s  ETA %llus\n", bar, percent, prog ? prog : "",
	       mibs ? mibs : "?", (unsigned long long)num(b, prefix, "eta_s"));
}

static volatile sig_atomic_t stat_interrupted;
static void on_sigint(int sig)
{
	stat_interrupted = 1;
}

static int take_sample(const char *name, struct sample *s, uint64_t *t)
{
	char err[512];
	struct strbuf reply;
	if (ctl_call(name, "show", &reply, err, sizeof(err)) < 0)
		return die("%s", err);
	*t = ev_now_ns();
	s->n = attrs_parse(reply.s, &s->a);
	sb_free(&reply);
	return 0;
}

static void print_rates(const char *name, const struct sample *a, const struct sample *b,
			double secs)
{
	printf("%-24s %9s %9s %9s %9s %8s %9s %9s\n", name, "r/s", "w/s", "rMiB/s", "wMiB/s",
	       "inflight", "r_lat_us", "w_lat_us");
	/* Every group of counters is an "X/io/reads" attribute: the storage
	 * itself, an export, or one node of a storage. */
	for (size_t i = 0; i < b->n; i++) {
		const char *p = b->a[i].path;
		size_t len = strlen(p);
		if (len < 9 || strcmp(p + len - 9, "/io/reads"))
			continue;
		char prefix[512];
		snprintf(prefix, sizeof(prefix), "%.*s/io/", (int)(len - 9), p);
		uint64_t dr = num(b, prefix, "reads") - num(a, prefix, "reads");
		uint64_t dw = num(b, prefix, "writes") - num(a, prefix, "writes");
		uint64_t drb = num(b, prefix, "read_bytes") - num(a, prefix, "read_bytes");
		uint64_t dwb = num(b, prefix, "write_bytes") - num(a, prefix, "write_bytes");
		uint64_t drn = num(b, prefix, "read_ns") - num(a, prefix, "read_ns");
		uint64_t dwn = num(b, prefix, "write_ns") - num(a, prefix, "write_ns");
		printf("%-24.*s %9.0f %9.0f %9.1f %9.1f %8llu %9.0f %9.0f\n", (int)(len - 9), p,
		       dr / secs, dw / secs, drb / secs / 1048576.0, dwb / secs / 1048576.0,
		       (unsigned long long)num(b, prefix, "inflight"), dr ? drn / 1e3 / dr : 0.0,
		       dw ? dwn / 1e3 / dw : 0.0);
	}
}

int cmd_stat(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"watch", no_argument, NULL, 'w'},	     {"interval", required_argument, NULL, 'i'},
	    {"count", required_argument, NULL, 'c'}, {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},	     {0},
	};
	bool watch = false, json = false;
	double interval = 1.0;
	uint64_t count = 0;
	int c;
	while ((c = getopt_long(argc, argv, "wi:c:jh", opts, NULL)) != -1) {
		switch (c) {
		case 'w': watch = true; break;
		case 'j': json = true; break;
		case 'i': {
			char *end;
			interval = strtod(optarg, &end);
			if (*end || !(interval >= 0.05 && interval <= 3600))
				return die("--interval '%s': expected seconds from 0.05 to 3600",
					   optarg);
			break;
		}
		case 'c':
			if (parse_u64(optarg, &count) < 0 || !count)
				return die("--count '%s': expected a positive number", optarg);
			break;
		case 'h': return fputs(stat_help, stdout), 0;
		default: return bad_option("stat", argv);
		}
	}
	if (optind + 1 != argc)
		return die("stat: expected exactly one NAME; see 'dst stat --help'");
	const char *name = argv[optind];
	char err[256];
	if (!state_name_valid(name, err, sizeof(err)))
		return die("%s", err);
	if (!state_running_pid(name))
		return die("'%s' is not running", name);
	signal(SIGINT, on_sigint);
	struct sample prev = {0}, cur = {0};
	uint64_t t0, t1;
	if (take_sample(name, &prev, &t0))
		return 1;
	for (uint64_t round = 0; !stat_interrupted; round++) {
		poll(NULL, 0, (int)(interval * 1000));
		if (stat_interrupted)
			break;
		if (take_sample(name, &cur, &t1)) {
			attrs_free(prev.a, prev.n);
			return 1;
		}
		if (json) {
			stat_print_json(name, prev.a, prev.n, cur.a, cur.n,
					(double)(t1 - t0) / 1e9);
		} else {
			if (watch && isatty(STDOUT_FILENO))
				printf("\033[H\033[2J");
			print_rates(name, &prev, &cur, (double)(t1 - t0) / 1e9);
			print_mirror(name, &cur);
		}
		fflush(stdout);
		attrs_free(prev.a, prev.n);
		prev = cur;
		t0 = t1;
		if (!watch || (count && round + 1 >= count))
			break;
		if (!json && !isatty(STDOUT_FILENO))
			putchar('\n');
	}
	attrs_free(prev.a, prev.n);
	return 0;
}
