/* cmd_status.c - `dst status`: one line per storage and export, as
 * /proc/mdstat or `drbdadm status`, and an exit status that says whether
 * all is well (as `mdadm --detail --test`), for people and for scripts.
 * The data is what `dst show` gathers (the daemons' attribute trees, a
 * stopped one's config); here it is only judged and summed up. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "common/config.h"
#include "common/state.h"
#include "common/util.h"
#include "show.h"

static const char status_help[] =
    "usage: dst status [NAME...] [--json]\n"
    "\n"
    "One line per storage and export (without NAME, every one in the state\n"
    "dir), with its health at a glance:\n"
    "  web    storage  mirror  running  [UU_]  2/3 up  sync 97%  clients 1  size 10.0G\n"
    "  disk1  export   running  clients 2  size 1.0G  /dev/sdb\n"
    "  old    storage  linear  stopped  2 nodes  size 2.0G\n"
    "\n"
    "A running storage shows one letter per node, in start order:\n"
    "  U  up (a mirror leg: up and in sync)\n"
    "  _  down: connecting, reconnecting, failed, or refused as another disk\n"
    "     (foreign); a mirror leg out of the mirror\n"
    "  S  suspended (dst suspend)\n"
    "  R  a mirror leg being resynced\n"
    "  M  being migrated (dst replace)\n"
    "then how many nodes are up, for a mirror the share of regions every leg\n"
    "has (sync), the NBD clients connected, a running resync or migration with\n"
    "its progress (resync 42%, migrate n-0 42%, verify 42%), the blocks the last\n"
    "dst verify found different between the legs and did not repair (legs\n"
    "differ: N blocks), and the size.\n"
    "\n"
    "Exit status, the worst of those shown:\n"
    "  0  all healthy\n"
    "  1  degraded: a node or leg down, a node suspended, a resync or a\n"
    "     migration running (the data is served), legs that differ\n"
    "  2  failed or stopped: not running, its daemon does not answer (10 s), a\n"
    "     linear or stripe node failed (its IO fails past the io-timeout), or\n"
    "     a mirror with no leg in sync\n"
    "  4  the status could not be had (no such NAME, a bad option)\n"
    "\n"
    "  --json   the same as one JSON object keyed by name (see dst(1), JSON\n"
    "           output); the exit status is the same\n";

enum health { H_HEALTHY, H_DEGRADED, H_FAILED, H_STOPPED };
static const char *const health_names[] = {"healthy", "degraded", "failed", "stopped"};

static int health_exit(enum health h)
{
	return h == H_HEALTHY ? 0 : h == H_DEGRADED ? 1 : 2;
}

struct snode {
	char name[32];
	char letter;
	const char *state; /* the node's state attribute; "?" if none */
};

/* One line's worth. Strings point into the attributes. */
struct item {
	const char *name, *type, *alg, *state, *disk;
	enum health health;
	char why[256]; /* what is wrong, for a failed one */
	struct snode *nodes;
	size_t n, up;
	long long clients; /* -1: not known (stopped) */
	uint64_t bytes;
	bool has_bytes;
	long long sync_pct, resync_pct, mig_pct; /* -1: none */
	long long verify_pct;			 /* a dst verify running; -1: none */
	long long differ;			 /* blocks the last verify left differing */
	const char *mig_node;
};

static long long attr_num(const struct attr *a, size_t n, const char *name, const char *leaf)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/%s", name, leaf);
	const char *v = attrs_get(a, n, p);
	uint64_t x;
	if (!v || parse_u64(v, &x) < 0 || x > (uint64_t)1 << 62)
		return -1;
	return (long long)x;
}

static const char *attr_str(const struct attr *a, size_t n, const char *name, const char *leaf)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/%s", name, leaf);
	return attrs_get(a, n, p);
}

/* The nodes under NAME/n-START/, in the order the attributes give them. */
static void collect_nodes(struct item *it, const struct attr *a, size_t n)
{
	size_t plen = strlen(it->name);
	for (size_t i = 0; i < n; i++) {
		const char *p = a[i].path;
		if (strncmp(p, it->name, plen) || p[plen] != '/' || strncmp(p + plen + 1, "n-", 2))
			continue;
		const char *nm = p + plen + 1, *slash = strchr(nm, '/');
		size_t len = slash ? (size_t)(slash - nm) : strlen(nm);
		if (!slash || len >= sizeof(it->nodes[0].name))
			continue;
		bool seen = false;
		for (size_t k = 0; k < it->n && !seen; k++)
			seen = strlen(it->nodes[k].name) == len &&
			       !strncmp(it->nodes[k].name, nm, len);
		if (seen)
			continue;
		it->nodes = realloc(it->nodes, (it->n + 1) * sizeof(*it->nodes));
		if (!it->nodes)
			abort();
		struct snode *sn = &it->nodes[it->n++];
		memcpy(sn->name, nm, len);
		sn->name[len] = '\0';
		sn->letter = '?';
		sn->state = "?";
	}
}

/* Judge a running storage: its nodes' letters and its health. */
static void judge_storage(struct item *it, const struct attr *a, size_t n)
{
	char leaf[300];
	/* Redundant storages say each node's health: a mirror's legs as
	 * NODE/leg, a parity storage's nodes as NODE/health. */
	bool mirror = it->alg && !strcmp(it->alg, "alg_mirror");
	bool parity = it->alg && !strcmp(it->alg, "alg_parity");
	bool redundant = mirror || parity;
	const char *k_s = parity ? attr_str(a, n, it->name, "parity/data") : NULL;
	size_t need = k_s ? (size_t)strtoul(k_s, NULL, 10) : 1; /* nodes in sync to read all */
	bool failed_node = false;
	size_t in_sync = 0;
	for (size_t k = 0; k < it->n; k++) {
		struct snode *sn = &it->nodes[k];
		snprintf(leaf, sizeof(leaf), "%s/state", sn->name);
		const char *st = attr_str(a, n, it->name, leaf);
		sn->state = st ? st : "?";
		snprintf(leaf, sizeof(leaf), "%s/suspended", sn->name);
		const char *susp = attr_str(a, n, it->name, leaf);
		snprintf(leaf, sizeof(leaf), "%s/%s", sn->name, parity ? "health" : "leg");
		const char *leg = attr_str(a, n, it->name, leaf);
		bool up = st && !strcmp(st, "up");
		if (susp && !strcmp(susp, "yes"))
			sn->letter = 'S';
		else if (it->mig_node && !strcmp(it->mig_node, sn->name))
			sn->letter = 'M';
		else if (redundant && leg && leg[0] == 'S' && up)
			sn->letter = 'R';
		else if (!up || (redundant && (!leg || leg[0] != 'A')))
			sn->letter = '_';
		else
			sn->letter = 'U';
		if (up && sn->letter != 'S')
			it->up++;
		if (st && !strcmp(st, "failed"))
			failed_node = true;
		if (leg && leg[0] == 'A' && up)
			in_sync++;
	}
	bool all_u = true;
	for (size_t k = 0; k < it->n; k++)
		all_u = all_u && it->nodes[k].letter == 'U';
	if (it->n == 0) {
		it->health = H_FAILED;
		snprintf(it->why, sizeof(it->why), "no nodes");
	} else if (mirror && !in_sync) {
		it->health = H_FAILED;
		snprintf(it->why, sizeof(it->why), "no leg is up and in sync");
	} else if (parity && in_sync < need) {
		it->health = H_FAILED;
		snprintf(it->why, sizeof(it->why),
			 "%zu of %zu nodes in sync, fewer than the %zu data chunks of a row",
			 in_sync, it->n, need);
	} else if (!redundant && failed_node) {
		it->health = H_FAILED;
		snprintf(it->why, sizeof(it->why), "a node failed: its IO fails");
	} else if (!all_u || it->resync_pct >= 0 || it->mig_pct >= 0 || it->differ > 0) {
		it->health = H_DEGRADED;
	} else {
		it->health = H_HEALTHY;
	}
}

/* What NAME's attributes say, into it. */
static void judge(struct item *it, const char *name, const struct attr *a, size_t n)
{
	it->name = name;
	it->type = attr_str(a, n, name, "type");
	it->alg = attr_str(a, n, name, "alg");
	it->state = attr_str(a, n, name, "state");
	it->disk = attr_str(a, n, name, "disk");
	it->clients = attr_num(a, n, name, "clients");
	long long b = attr_num(a, n, name, "bytes");
	it->has_bytes = b >= 0;
	it->bytes = b >= 0 ? (uint64_t)b : 0;
	it->resync_pct = attr_num(a, n, name, "resync/percent");
	it->mig_pct = attr_num(a, n, name, "migration/percent");
	it->mig_node = attr_str(a, n, name, "migration/node");
	const char *vstate = attr_str(a, n, name, "verify/state");
	it->verify_pct =
	    vstate && !strcmp(vstate, "running") ? attr_num(a, n, name, "verify/percent") : -1;
	long long bad = attr_num(a, n, name, "verify/mismatch_blocks");
	long long fixed = attr_num(a, n, name, "verify/repaired_blocks");
	it->differ = bad > 0 && vstate && strcmp(vstate, "running") ? bad - MAX(fixed, 0) : 0;
	it->sync_pct = -1;
	const char *sync = attr_str(a, n, name, "sync");
	unsigned long long x, y;
	if (sync && sscanf(sync, "%llu/%llu", &x, &y) == 2 && y) {
		/* Never round up to 100% while a region is missing. */
		it->sync_pct = (long long)(x * 100 / y);
	}
	if (!it->type)
		it->type = "?";
	collect_nodes(it, a, n);
	if (!it->state || strcmp(it->state, "running")) {
		it->health = H_STOPPED;
		return;
	}
	if (!strcmp(it->type, "storage"))
		judge_storage(it, a, n);
	else
		it->health = H_HEALTHY;
	if (it->n && !it->up)
		it->sync_pct = -1; /* no leg up: what they hold says nothing */
}

/* 10.0G: binary units, one decimal. */
static void human(uint64_t bytes, char *out, size_t len)
{
	static const char units[] = "BKMGTPE";
	double v = (double)bytes;
	size_t u = 0;
	while (v >= 1024 && u + 1 < sizeof(units) - 1) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(out, len, "%lluB", (unsigned long long)bytes);
	else
		snprintf(out, len, "%.1f%c", v, units[u]);
}

/* "L: /dev/sdb" (a running export's disk) -> "/dev/sdb". */
static const char *disk_path(const char *d)
{
	if (d && d[0] && d[1] == ':' && d[2] == ' ')
		return d + 3;
	return d;
}

static void print_line(const struct item *it, int width)
{
	char sz[32];
	bool storage = !strcmp(it->type, "storage");
	printf("%-*s  %-7s", width, it->name, it->type);
	/* An export has no algorithm: its column stays blank, so that the
	 * states line up. */
	const char *alg = storage ? (it->alg ? it->alg : "?") : "";
	if (!strncmp(alg, "alg_", 4))
		alg += 4;
	printf("  %-6s", alg);
	printf("  %-7s", it->state ? it->state : "?");
	if (it->health == H_STOPPED) {
		if (storage)
			printf("  %zu node%s", it->n, it->n == 1 ? "" : "s");
	} else if (storage) {
		printf("  [");
		for (size_t k = 0; k < it->n; k++)
			putchar(it->nodes[k].letter);
		printf("]  %zu/%zu up", it->up, it->n);
		if (it->sync_pct >= 0)
			printf("  sync %lld%%", it->sync_pct);
	}
	if (it->clients >= 0)
		printf("  clients %lld", it->clients);
	if (it->resync_pct >= 0)
		printf("  resync %lld%%", it->resync_pct);
	if (it->mig_pct >= 0)
		printf("  migrate %s %lld%%", it->mig_node ? it->mig_node : "?", it->mig_pct);
	if (it->verify_pct >= 0)
		printf("  verify %lld%%", it->verify_pct);
	if (it->differ > 0)
		printf("  legs differ: %lld blocks", it->differ);
	if (it->has_bytes) {
		human(it->bytes, sz, sizeof(sz));
		printf("  size %s", sz);
	}
	if (!storage && it->disk)
		printf("  %s", disk_path(it->disk));
	if (it->health == H_FAILED)
		printf("  FAILED: %s", it->why);
	putchar('\n');
}

static void json_num_or_null(struct jw *w, const char *key, long long v)
{
	jw_key(w, key);
	if (v >= 0)
		jw_u64(w, (uint64_t)v);
	else
		jw_null(w);
}

static void print_json(struct jw *w, const struct item *it)
{
	bool storage = !strcmp(it->type, "storage");
	bool running = it->health != H_STOPPED;
	jw_key(w, it->name);
	jw_obj(w);
	jw_key(w, "name");
	jw_str(w, it->name);
	jw_key(w, "type");
	jw_str(w, it->type);
	jw_key(w, "alg");
	if (storage && it->alg)
		jw_str(w, it->alg);
	else
		jw_null(w);
	jw_key(w, "state");
	jw_str(w, it->state ? it->state : "unknown");
	jw_key(w, "health");
	jw_str(w, health_names[it->health]);
	jw_key(w, "exit");
	jw_u64(w, (uint64_t)health_exit(it->health));
	jw_key(w, "reason");
	if (it->health == H_FAILED)
		jw_str(w, it->why);
	else
		jw_null(w);
	jw_key(w, "letters");
	if (storage && running) {
		char l[it->n + 1];
		for (size_t k = 0; k < it->n; k++)
			l[k] = it->nodes[k].letter;
		l[it->n] = '\0';
		jw_str(w, l);
	} else {
		jw_null(w);
	}
	json_num_or_null(w, "nodes_up", storage && running ? (long long)it->up : -1);
	jw_key(w, "nodes_total");
	jw_u64(w, it->n);
	jw_key(w, "nodes");
	jw_arr(w);
	for (size_t k = 0; k < it->n; k++) {
		jw_obj(w);
		jw_key(w, "name");
		jw_str(w, it->nodes[k].name);
		jw_key(w, "letter");
		if (running) {
			char l[2] = {it->nodes[k].letter, '\0'};
			jw_str(w, l);
		} else {
			jw_null(w);
		}
		jw_key(w, "state");
		jw_str(w, running ? it->nodes[k].state : "stopped");
		jw_end(w);
	}
	jw_end(w);
	json_num_or_null(w, "clients", it->clients);
	json_num_or_null(w, "sync_percent", running ? it->sync_pct : -1);
	json_num_or_null(w, "verify_percent", running ? it->verify_pct : -1);
	json_num_or_null(w, "differing_blocks", running && storage ? it->differ : -1);
	jw_key(w, "resync");
	if (it->resync_pct >= 0) {
		jw_obj(w);
		jw_key(w, "percent");
		jw_u64(w, (uint64_t)it->resync_pct);
		jw_end(w);
	} else {
		jw_null(w);
	}
	jw_key(w, "migration");
	if (it->mig_pct >= 0) {
		jw_obj(w);
		jw_key(w, "node");
		jw_str(w, it->mig_node ? it->mig_node : "");
		jw_key(w, "percent");
		jw_u64(w, (uint64_t)it->mig_pct);
		jw_end(w);
	} else {
		jw_null(w);
	}
	json_num_or_null(w, "bytes", it->has_bytes ? (long long)it->bytes : -1);
	jw_key(w, "disk");
	if (!storage && it->disk)
		jw_str(w, disk_path(it->disk));
	else
		jw_null(w);
	jw_end(w);
}

/* One name that is configured, but whose daemon does not answer. */
static void unanswered(struct item *it, const char *name, const char *err)
{
	it->name = name;
	it->type = "?";
	it->state = "running";
	it->health = H_FAILED;
	it->clients = -1;
	it->sync_pct = it->resync_pct = it->mig_pct = it->verify_pct = -1;
	it->differ = 0;
	snprintf(it->why, sizeof(it->why), "its daemon does not answer: %.200s", err);
	/* What it is, from its config. */
	char *path = state_path(name, ".conf");
	struct conf c;
	char cerr[256];
	if (conf_load(path, &c, cerr, sizeof(cerr)) == 0) {
		const char *t = conf_get(&c, "type");
		if (t && (!strcmp(t, "storage") || !strcmp(t, "export")))
			it->type = !strcmp(t, "storage") ? "storage" : "export";
		conf_free(&c);
	}
	free(path);
}

int cmd_status(int argc, char **argv)
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
			return fputs(status_help, stdout), 0;
		else
			return bad_option("status", argv), 4;
	}
	/* A daemon that does not answer in time is a finding, not a hang. */
	ctl_set_timeout(CTL_READ_TIMEOUT_S);
	char **names;
	size_t n;
	if (optind < argc) {
		n = (size_t)(argc - optind);
		names = xcalloc(n, sizeof(*names));
		for (size_t i = 0; i < n; i++) {
			char err[256];
			if (!state_name_valid(argv[optind + i], err, sizeof(err))) {
				for (size_t k = 0; k < i; k++)
					free(names[k]);
				free(names);
				return die("%s", err), 4;
			}
			names[i] = xstrdup(argv[optind + i]);
		}
	} else {
		n = show_all_names(&names);
	}
	struct item *items = xcalloc(n ? n : 1, sizeof(*items));
	struct attr **as = xcalloc(n ? n : 1, sizeof(*as));
	size_t *an = xcalloc(n ? n : 1, sizeof(*an));
	int rc = 0, width = 4;
	bool missing = false;
	for (size_t i = 0; i < n; i++) {
		struct strbuf out;
		char err[512];
		sb_init(&out);
		int g = show_gather(names[i], &out, false, err, sizeof(err));
		if (g == -2) {
			unanswered(&items[i], names[i], err);
		} else if (g < 0) {
			missing = true; /* said */
			items[i].name = NULL;
		} else {
			an[i] = attrs_parse(out.s, &as[i]);
			judge(&items[i], names[i], as[i], an[i]);
		}
		sb_free(&out);
		if (items[i].name) {
			int e = health_exit(items[i].health);
			rc = e > rc ? e : rc;
			int len = (int)strlen(names[i]);
			width = len > width ? len : width;
		}
	}
	struct jw w;
	if (json) {
		jw_init(&w, stdout, true);
		jw_obj(&w);
	}
	for (size_t i = 0; i < n; i++) {
		if (!items[i].name)
			continue;
		if (json)
			print_json(&w, &items[i]);
		else
			print_line(&items[i], width);
	}
	if (json) {
		jw_end(&w);
		jw_done(&w);
	}
	for (size_t i = 0; i < n; i++) {
		free(items[i].nodes);
		attrs_free(as[i], an[i]);
		free(names[i]);
	}
	free(items);
	free(as);
	free(an);
	free(names);
	return missing ? 4 : rc;
}
