/* stat_json.c - `dst stat --json`: one sample of rates (two snapshots of
 * the counters, an interval apart) as one JSON object on one line, so that
 * --watch gives JSON lines. The man page's "JSON output" section describes
 * the shape; keep it in step. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "show.h"

static uint64_t num_at(const struct attr *a, size_t n, const char *group, const char *leaf)
{
	char p[600];
	snprintf(p, sizeof(p), "%s/io/%s", group, leaf);
	const char *v = attrs_get(a, n, p);
	return v ? strtoull(v, NULL, 10) : 0;
}

/* The rates of one group of counters ("X/io/..."). */
static void rates(struct jw *w, const char *group, const struct attr *a, size_t na,
		  const struct attr *b, size_t nb, double secs)
{
#define D(leaf) (num_at(b, nb, group, leaf) - num_at(a, na, group, leaf))
	uint64_t dr = D("reads"), dw = D("writes");
	uint64_t drb = D("read_bytes"), dwb = D("write_bytes");
	uint64_t drn = D("read_ns"), dwn = D("write_ns");
#undef D
	jw_obj(w);
	jw_key(w, "reads_s");
	jw_dbl(w, dr / secs);
	jw_key(w, "writes_s");
	jw_dbl(w, dw / secs);
	jw_key(w, "read_mib_s");
	jw_dbl(w, drb / secs / 1048576.0);
	jw_key(w, "write_mib_s");
	jw_dbl(w, dwb / secs / 1048576.0);
	jw_key(w, "inflight");
	jw_u64(w, num_at(b, nb, group, "inflight"));
	jw_key(w, "read_lat_us");
	jw_dbl(w, dr ? drn / 1e3 / dr : 0.0);
	jw_key(w, "write_lat_us");
	jw_dbl(w, dw ? dwn / 1e3 / dw : 0.0);
	jw_end(w);
}

/* The groups of counters in b: the paths X of every "X/io/reads". */
static size_t groups(const struct attr *b, size_t nb, char ***out)
{
	char **g = NULL;
	size_t n = 0;
	for (size_t i = 0; i < nb; i++) {
		size_t len = strlen(b[i].path);
		if (len < 9 || strcmp(b[i].path + len - 9, "/io/reads"))
			continue;
		g = realloc(g, (n + 1) * sizeof(*g));
		if (!g)
			abort();
		g[n] = strndup(b[i].path, len - 9);
		if (!g[n])
			abort();
		n++;
	}
	*out = g;
	return n;
}

static void mirror(struct jw *w, const char *name, const struct attr *b, size_t nb)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/health", name);
	const char *health = attrs_get(b, nb, p);
	jw_key(w, "mirror");
	if (!health) {
		jw_null(w);
		return;
	}
	jw_obj(w);
	jw_key(w, "health");
	jw_str(w, health);
	snprintf(p, sizeof(p), "%s/sync", name);
	const char *sync = attrs_get(b, nb, p);
	unsigned long long x, y;
	jw_key(w, "sync");
	if (sync && sscanf(sync, "%llu/%llu", &x, &y) == 2) {
		jw_obj(w);
		jw_key(w, "in_sync");
		jw_u64(w, x);
		jw_key(w, "regions");
		jw_u64(w, y);
		jw_end(w);
	} else {
		jw_null(w);
	}
	snprintf(p, sizeof(p), "%s/resync/percent", name);
	const char *pct = attrs_get(b, nb, p);
	jw_key(w, "resync");
	if (pct) {
		jw_obj(w);
		jw_key(w, "percent");
		jw_u64(w, strtoull(pct, NULL, 10));
		snprintf(p, sizeof(p), "%s/resync/mib_s", name);
		const char *mibs = attrs_get(b, nb, p);
		jw_key(w, "mib_s");
		jw_dbl(w, mibs ? strtod(mibs, NULL) : 0.0);
		snprintf(p, sizeof(p), "%s/resync/eta_s", name);
		const char *eta = attrs_get(b, nb, p);
		jw_key(w, "eta_s");
		jw_u64(w, eta ? strtoull(eta, NULL, 10) : 0);
		jw_end(w);
	} else {
		jw_null(w);
	}
	jw_end(w);
}

void stat_print_json(const char *name, const struct attr *a, size_t na, const struct attr *b,
		     size_t nb, double secs)
{
	struct jw w;
	jw_init(&w, stdout, false);
	jw_obj(&w);
	jw_key(&w, "name");
	jw_str(&w, name);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	jw_key(&w, "time");
	jw_dbl(&w, (double)ts.tv_sec + ts.tv_nsec / 1e9);
	jw_key(&w, "interval_s");
	jw_dbl(&w, secs);
	char **g;
	size_t ng = groups(b, nb, &g);
	size_t plen = strlen(name);
	/* The whole (NAME's own counters), then its nodes, then the rest
	 * (a FUSE file: "fuse_file"), each under its path below NAME. */
	jw_key(&w, "io");
	bool whole = false;
	for (size_t i = 0; i < ng && !whole; i++)
		if (!strcmp(g[i], name)) {
			rates(&w, g[i], a, na, b, nb, secs);
			whole = true;
		}
	if (!whole)
		jw_null(&w);
	jw_key(&w, "nodes");
	jw_arr(&w);
	for (size_t i = 0; i < ng; i++) {
		const char *rel = g[i] + plen;
		if (strncmp(g[i], name, plen) || strncmp(rel, "/n-", 3) || strchr(rel + 1, '/'))
			continue;
		jw_obj(&w);
		jw_key(&w, "name");
		jw_str(&w, rel + 1);
		jw_key(&w, "io");
		rates(&w, g[i], a, na, b, nb, secs);
		jw_end(&w);
	}
	jw_end(&w);
	for (size_t i = 0; i < ng; i++) {
		const char *rel = g[i] + plen;
		if (strncmp(g[i], name, plen) || rel[0] != '/' || !strncmp(rel, "/n-", 3))
			continue;
		jw_key(&w, rel + 1);
		jw_obj(&w);
		jw_key(&w, "io");
		rates(&w, g[i], a, na, b, nb, secs);
		jw_end(&w);
	}
	mirror(&w, name, b, nb);
	jw_end(&w);
	jw_done(&w);
	for (size_t i = 0; i < ng; i++)
		free(g[i]);
	free(g);
}
