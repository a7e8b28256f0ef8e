/* test_parity_plan.c - alg_parity's IO plans (parity_plan.c), executed on a
 * model storage: n nodes as arrays in memory, and the storage's logical
 * bytes beside them. Each write's plan is run as alg_parity will run it
 * (its reads into poisoned buffers, parity_plan_compute, its writes), then
 * the row is checked: the data chunks on present nodes hold the logical
 * bytes, the parity chunks on present nodes a full re-encode of the row's
 * logical data, and a degraded read of each chunk on a missing node gives
 * its logical bytes back. The full re-encode is parity_code_encode, which
 * test_parity_code checks against a reference model.
 *
 * Every sector-aligned write inside a row of 4 KiB chunks for small
 * geometries, with every pattern of missing nodes; random writes (across
 * rows too, cut by parity_write_piece) for every geometry. The plan's kind
 * is checked against the bytes each plan would read, computed here from
 * the definition. */
#include <stdbool.h>
#include <stdlib.h>

#include "alg/parity_plan.h"
#include "unit.h"

#define CHUNK  4096u
#define SECTOR 512u

struct model {
	struct parity_geom g;
	struct parity_code code;
	uint8_t *node[PARITY_MAX_N];
	uint8_t *logical;
	uint8_t *buf[PARITY_MAX_N]; /* the plan's buffers, a chunk each */
	uint8_t *newdata;
	uint32_t missing; /* node mask */
	uint8_t poison;
	unsigned kinds[5];
};

/* Random bytes, 8 at a time (xorshift64*, seeded from rand()). */
static void fill(uint8_t *p, size_t len)
{
	static uint64_t x;
	if (!x)
		x = (uint64_t)rand() << 32 | (uint64_t)rand() | 1;
	for (size_t i = 0; i < len; i += 8) {
		x ^= x >> 12;
		x ^= x << 25;
		x ^= x >> 27;
		uint64_t v = x * 0x2545f4914f6cdd1dull;
		memcpy(p + i, &v, len - i < 8 ? len - i : 8);
	}
}

static void row_parity(struct model *md, uint64_t r, uint8_t *const *out)
{
	const uint8_t *in[PARITY_MAX_N];
	for (unsigned i = 0; i < md->g.k; i++)
		in[i] = md->logical + r * md->g.row_bytes + i * CHUNK;
	parity_code_encode(&md->code, in, out, CHUNK);
}

/* A consistent storage of random data, one full rotation of rows. */
static void model_init(struct model *md, unsigned k, unsigned m, uint32_t missing)
{
	char err[200];
	unsigned n = k + m;
	memset(md, 0, sizeof(*md));
	CHECK_EQ(parity_geom_init(&md->g, k, m, CHUNK, (uint64_t)n * CHUNK, err, sizeof(err)), 0);
	CHECK_EQ(parity_code_init(&md->code, k, m), 0);
	md->logical = malloc(md->g.size);
	md->newdata = malloc(md->g.row_bytes * 3);
	fill(md->logical, md->g.size);
	for (unsigned x = 0; x < n; x++) {
		md->node[x] = malloc(md->g.rows * CHUNK);
		md->buf[x] = malloc(CHUNK);
	}
	for (uint64_t r = 0; r < md->g.rows; r++) {
		for (unsigned i = 0; i < k; i++)
			memcpy(md->node[parity_node(&md->g, r, i)] + r * CHUNK,
			       md->logical + r * md->g.row_bytes + i * CHUNK, CHUNK);
		uint8_t *out[PARITY_MAX_M];
		for (unsigned j = 0; j < m; j++)
			out[j] = md->node[parity_node(&md->g, r, k + j)] + r * CHUNK;
		row_parity(md, r, out);
	}
	md->missing = missing;
}

static void model_free(struct model *md)
{
	for (unsigned x = 0; x < md->g.n; x++) {
		free(md->node[x]);
		free(md->buf[x]);
	}
	free(md->logical);
	free(md->newdata);
}

static unsigned bits(uint32_t x)
{
	return (unsigned)__builtin_popcount(x);
}

/* The kind the rules of parity_plan.h choose, from the definition: the
 * bytes each plan reads and whether it can. */
static int expected_kind(struct model *md, uint64_t off, uint64_t len, unsigned flags,
			 uint64_t *reads)
{
	const struct parity_geom *g = &md->g;
	uint64_t r = off / g->row_bytes, in_row = off % g->row_bytes;
	uint32_t miss = 0;
	for (unsigned x = 0; x < g->n; x++)
		if (md->missing & (1u << x))
			miss |= 1u << parity_role(g, r, x);
	unsigned pres_parity = 0;
	for (unsigned j = 0; j < g->m; j++)
		pres_parity += !(miss & (1u << (g->k + j)));
	*reads = 0;
	if (!pres_parity)
		return PARITY_PLAN_NOPARITY;
	if (len == g->row_bytes)
		return PARITY_PLAN_FULL;
	/* Each data chunk's written range: the write intersected with it. */
	uint64_t wlo[PARITY_MAX_N], whi[PARITY_MAX_N], lo = CHUNK, hi = 0;
	for (unsigned i = 0; i < g->k; i++) {
		uint64_t a = i * CHUNK, b = a + CHUNK;
		uint64_t s = in_row > a ? in_row : a, e = in_row + len < b ? in_row + len : b;
		wlo[i] = whi[i] = 0;
		if (s < e) {
			wlo[i] = s - a;
			whi[i] = e - a;
			lo = wlo[i] < lo ? wlo[i] : lo;
			hi = whi[i] > hi ? whi[i] : hi;
		}
	}
	bool stale = flags & PARITY_PLAN_STALE;
	if (stale) {
		lo = 0;
		hi = CHUNK;
	}
	uint64_t span = hi - lo, written = 0, rcw = 0;
	bool rcw_ok = true, rmw_ok = !stale, deg_ok = !stale;
	for (unsigned i = 0; i < g->k; i++) {
		uint64_t w = whi[i] - wlo[i];
		written += w;
		rcw += span - w;
		if (w && (miss & (1u << i)))
			rmw_ok = false;
		if (span > w && (miss & (1u << i)))
			rcw_ok = false;
	}
	uint64_t rmw = written + pres_parity * span, deg = g->k * span;
	if (rcw_ok && (!rmw_ok || rcw <= rmw) && (!deg_ok || rcw <= deg)) {
		*reads = rcw;
		return PARITY_PLAN_RCW;
	}
	if (rmw_ok && (!deg_ok || rmw <= deg)) {
		*reads = rmw;
		return PARITY_PLAN_RMW;
	}
	if (deg_ok) {
		*reads = deg;
		return PARITY_PLAN_DEGRADED;
	}
	return -1;
}

static void check_ext(struct model *md, const struct parity_plan *p, const struct parity_ext *e)
{
	CHECK(e->node < md->g.n);
	CHECK(!(md->missing & (1u << e->node)));
	CHECK_EQ(e->node, parity_node(&md->g, p->row, e->role));
	CHECK_EQ(e->node_off, p->row * CHUNK + e->in);
	CHECK(e->len > 0);
	CHECK(e->in + e->len <= CHUNK);
}

/* The row is right: data on present nodes is the logical data, parity on
 * present nodes its encoding, a degraded read of a chunk on a missing node
 * (the whole chunk, and its first sector) the logical bytes. */
static void check_row(struct model *md, uint64_t r)
{
	const struct parity_geom *g = &md->g;
	static uint8_t want[PARITY_MAX_M][CHUNK];
	uint8_t *out[PARITY_MAX_M] = {want[0], want[1], want[2]};
	row_parity(md, r, out);
	int bad = 0;
	for (unsigned c = 0; c < g->n; c++) {
		unsigned x = parity_node(g, r, c);
		const uint8_t *have = md->node[x] + r * CHUNK;
		const uint8_t *should =
		    c < g->k ? md->logical + r * g->row_bytes + c * CHUNK : want[c - g->k];
		if (!(md->missing & (1u << x))) {
			bad |= memcmp(have, should, CHUNK) != 0;
			continue;
		}
		if (c >= g->k)
			continue;
		static const uint32_t ranges[][2] = {{0, CHUNK}, {0, SECTOR}, {CHUNK - 1, 1}};
		for (size_t t = 0; t < 3; t++) {
			struct parity_read_plan rp;
			uint64_t off = r * g->row_bytes + c * CHUNK + ranges[t][0];
			CHECK_EQ(parity_read_plan(g, off, ranges[t][1], md->missing, &rp), 0);
			CHECK_EQ(rp.kind, PARITY_READ_RECONSTRUCT);
			CHECK_EQ(rp.role, c);
			CHECK_EQ(rp.nreads, g->k);
			CHECK_EQ(bits(rp.src), g->k);
			for (unsigned i = 0; i < g->n; i++)
				memset(md->buf[i], ++md->poison, CHUNK);
			for (unsigned i = 0; i < rp.nreads; i++) {
				const struct parity_ext *e = &rp.reads[i];
				CHECK(!(md->missing & (1u << e->node)));
				CHECK_EQ(e->node, parity_node(g, r, e->role));
				CHECK(rp.src & (1u << e->role));
				CHECK_EQ(e->in, ranges[t][0]);
				CHECK_EQ(e->len, ranges[t][1]);
				memcpy(md->buf[e->role], md->node[e->node] + e->node_off, e->len);
			}
			CHECK_EQ(parity_code_decode(&md->code, rp.src, 1u << c, md->buf, rp.len),
				 0);
			bad |= memcmp(md->buf[c], should + ranges[t][0], ranges[t][1]) != 0;
		}
	}
	if (bad) {
		fprintf(stderr, "rs(%u,%u) missing %#x: row %llu wrong\n", g->k, g->m, md->missing,
			(unsigned long long)r);
		unit_failed_checks++;
	}
}

/* Plan, check, execute one write inside one row; check the row. */
static void do_write(struct model *md, uint64_t off, uint64_t len, unsigned flags)
{
	const struct parity_geom *g = &md->g;
	fill(md->newdata, len);
	struct parity_plan p;
	uint64_t reads;
	int want = expected_kind(md, off, len, flags, &reads);
	int rc = parity_write_plan(g, off, len, md->missing, flags, &p);
	if (want < 0) {
		CHECK_EQ(rc, -1);
		return;
	}
	CHECK_EQ(rc, 0);
	if (rc < 0)
		return;
	CHECK_EQ(p.kind, want);
	CHECK_EQ(p.read_bytes, reads);
	CHECK_EQ(p.row, off / g->row_bytes);
	CHECK(p.lo < p.hi && p.hi <= CHUNK);
	md->kinds[p.kind]++;

	/* The reads: into poisoned buffers, inside the span, no byte twice. */
	CHECK(p.nreads <= g->n);
	uint8_t *buf[PARITY_MAX_N] = {NULL};
	for (unsigned c = 0; c < g->n; c++) {
		if (p.bufs & (1u << c)) {
			buf[c] = md->buf[c];
			memset(buf[c], ++md->poison, CHUNK);
		}
	}
	uint64_t sum = 0;
	for (unsigned i = 0; i < p.nreads; i++) {
		const struct parity_ext *e = &p.reads[i];
		check_ext(md, &p, e);
		CHECK(e->in >= p.lo && e->in + e->len <= p.hi);
		CHECK(p.bufs & (1u << e->role));
		for (unsigned o = 0; o < i; o++) {
			const struct parity_ext *f = &p.reads[o];
			CHECK(f->role != e->role || f->in + f->len <= e->in ||
			      e->in + e->len <= f->in);
		}
		if (buf[e->role])
			memcpy(buf[e->role] + (e->in - p.lo), md->node[e->node] + e->node_off,
			       e->len);
		sum += e->len;
	}
	CHECK_EQ(sum, p.read_bytes);
	CHECK_EQ(parity_plan_compute(g, &md->code, &p, md->newdata, buf), 0);

	/* The writes: data from the request, parity from the buffers. */
	CHECK(p.nwrites <= g->n);
	uint64_t data_bytes = 0, missed = 0;
	unsigned parity_writes = 0;
	for (unsigned i = 0; i < p.nwrites; i++) {
		const struct parity_ext *e = &p.writes[i];
		check_ext(md, &p, e);
		if (md->missing & (1u << e->node))
			continue;
		if (e->role < g->k) {
			CHECK(e->req_off + e->len <= len);
			memcpy(md->node[e->node] + e->node_off, md->newdata + e->req_off, e->len);
			data_bytes += e->len;
		} else {
			CHECK_EQ(e->in, p.lo);
			CHECK_EQ(e->len, p.hi - p.lo);
			memcpy(md->node[e->node] + e->node_off, buf[e->role], e->len);
			parity_writes++;
		}
	}
	/* Every written byte once, but those of chunks on missing nodes. */
	uint64_t in_row = off % g->row_bytes;
	for (unsigned c = 0; c < g->k; c++) {
		uint64_t a = c * CHUNK, b = a + CHUNK;
		uint64_t s = in_row > a ? in_row : a, e = in_row + len < b ? in_row + len : b;
		if (s < e && (md->missing & (1u << parity_node(g, p.row, c))))
			missed += e - s;
	}
	CHECK_EQ(data_bytes + missed, len);
	unsigned pres_parity = g->m - bits(p.missing >> g->k);
	CHECK_EQ(parity_writes, p.kind == PARITY_PLAN_NOPARITY ? 0 : pres_parity);

	memcpy(md->logical + off, md->newdata, len);
	check_row(md, p.row);
}

static const unsigned small[][2] = {{2, 1}, {3, 1}, {4, 1}, {2, 2}, {4, 2}, {3, 3}};

/* The missing-node patterns of a session: none, each node, each pair,
 * each triple, as m allows; `limit` caps pairs and triples (0: all). */
static unsigned patterns(unsigned n, unsigned m, uint32_t *out, unsigned limit)
{
	unsigned cnt = 0, multi = 0;
	for (uint32_t s = 0; s < (1u << n); s++) {
		unsigned b = bits(s);
		if (b > m)
			continue;
		if (b >= 2 && limit && multi++ >= limit)
			continue;
		out[cnt++] = s;
	}
	return cnt;
}

TEST(every_write_small_geometries)
{
	srand(10);
	static uint32_t pat[1u << PARITY_MAX_N];
	for (size_t t = 0; t < sizeof(small) / sizeof(small[0]); t++) {
		unsigned k = small[t][0], m = small[t][1];
		unsigned np = patterns(k + m, m, pat, 0);
		for (unsigned q = 0; q < np; q++) {
			struct model md;
			model_init(&md, k, m, pat[q]);
			unsigned sectors = k * CHUNK / SECTOR, i = 0;
			for (unsigned s = 0; s < sectors; s++) {
				for (unsigned e = s + 1; e <= sectors; e++, i++) {
					uint64_t row = i % md.g.rows;
					do_write(&md, row * md.g.row_bytes + s * SECTOR,
						 (e - s) * SECTOR, 0);
				}
			}
			if (!pat[q]) /* healthy: only the two read-modify kinds and FULL */
				CHECK_EQ(md.kinds[PARITY_PLAN_DEGRADED] +
					     md.kinds[PARITY_PLAN_NOPARITY],
					 0);
			model_free(&md);
		}
	}
}

/* Every geometry: random writes anywhere (across rows, cut by
 * parity_write_piece), healthy and with random nodes missing. */
TEST(random_writes_every_geometry)
{
	srand(11);
	for (unsigned k = PARITY_MIN_K; k < PARITY_MAX_N; k++) {
		for (unsigned m = 1; m <= PARITY_MAX_M && k + m <= PARITY_MAX_N; m++) {
			unsigned n = k + m;
			for (unsigned nmiss = 0; nmiss <= m; nmiss++) {
				uint32_t missing = 0;
				while (bits(missing) < nmiss)
					missing |= 1u << (rand() % n);
				struct model md;
				model_init(&md, k, m, missing);
				for (int w = 0; w < 60; w++) {
					uint64_t sectors = md.g.size / SECTOR;
					uint64_t s = (uint64_t)rand() % sectors;
					uint64_t max =
					    sectors - s < 3 * k * 8 ? sectors - s : 3 * k * 8;
					uint64_t len = (1 + (uint64_t)rand() % max) * SECTOR;
					if (w % 10 == 0) { /* whole rows too */
						s -= s % (k * 8);
						len = k * CHUNK;
					}
					uint64_t off = s * SECTOR;
					while (len) {
						uint64_t piece =
						    parity_write_piece(&md.g, off, len);
						do_write(&md, off, piece, 0);
						off += piece;
						len -= piece;
					}
				}
				model_free(&md);
			}
		}
	}
}

/* A row whose parity is wrong (a crash between data and parity writes),
 * written with PARITY_PLAN_STALE: no plan reads the parity, and the whole
 * row's parity is right afterwards; a write that needs a missing chunk's
 * old data cannot be planned. */
TEST(stale_rows)
{
	srand(12);
	static const unsigned geo[][2] = {{4, 2}, {3, 1}, {5, 3}};
	for (size_t t = 0; t < sizeof(geo) / sizeof(geo[0]); t++) {
		unsigned k = geo[t][0], m = geo[t][1], n = k + m;
		for (uint32_t missing = 0; missing < (1u << n);
		     missing = missing ? missing << 1 : 1) {
			struct model md;
			model_init(&md, k, m, missing);
			unsigned sectors = k * CHUNK / SECTOR, refused = 0;
			for (int w = 0; w < 200; w++) {
				uint64_t row = (uint64_t)w % md.g.rows;
				unsigned s = (unsigned)rand() % sectors;
				unsigned len = 1 + (unsigned)rand() % (sectors - s);
				for (unsigned j = 0; j < m; j++) {
					unsigned x = parity_node(&md.g, row, k + j);
					fill(md.node[x] + row * CHUNK, CHUNK);
				}
				uint64_t off = row * md.g.row_bytes + s * SECTOR;
				struct parity_plan p;
				if (parity_write_plan(&md.g, off, len * SECTOR, md.missing,
						      PARITY_PLAN_STALE, &p) < 0) {
					refused++;
					uint64_t reads;
					CHECK_EQ(expected_kind(&md, off, len * SECTOR,
							       PARITY_PLAN_STALE, &reads),
						 -1);
					/* Put the row right again for the next writes. */
					for (unsigned j = 0; j < m; j++) {
						uint8_t *out[PARITY_MAX_M] = {NULL};
						out[j] = md.node[parity_node(&md.g, row, k + j)] +
							 row * CHUNK;
						row_parity(&md, row, out);
					}
					continue;
				}
				CHECK(p.kind == PARITY_PLAN_RCW || p.kind == PARITY_PLAN_FULL ||
				      p.kind == PARITY_PLAN_NOPARITY);
				do_write(&md, off, len * SECTOR, PARITY_PLAN_STALE);
			}
			/* Refused only with a data node missing. */
			if (!missing)
				CHECK_EQ(refused, 0);
			model_free(&md);
		}
	}
}

/* The plan's choice between RMW and RCW, on a healthy 6+2 of 64 KiB
 * chunks: the numbers of the rule, spelt out. */
TEST(rmw_or_rcw)
{
	struct parity_geom g;
	char err[200];
	CHECK_EQ(parity_geom_init(&g, 6, 2, 65536, 1 << 30, err, sizeof(err)), 0);
	struct parity_plan p;
	/* 4 KiB in one chunk: RMW reads 4K + 2 x 4K, RCW 5 x 4K. */
	CHECK_EQ(parity_write_plan(&g, 8192, 4096, 0, 0, &p), 0);
	CHECK_EQ(p.kind, PARITY_PLAN_RMW);
	CHECK_EQ(p.read_bytes, 3 * 4096);
	CHECK_EQ(p.nreads, 3);
	CHECK_EQ(p.lo, 8192);
	CHECK_EQ(p.hi, 8192 + 4096);
	CHECK_EQ(p.nwrites, 3);
	/* 4 whole chunks of 6: RMW reads 4 + 2 chunks, RCW 2. */
	CHECK_EQ(parity_write_plan(&g, 65536, 4 * 65536, 0, 0, &p), 0);
	CHECK_EQ(p.kind, PARITY_PLAN_RCW);
	CHECK_EQ(p.read_bytes, 2 * 65536);
	/* 2 whole chunks: RMW 2 + 2, RCW 4: a tie, RCW. */
	CHECK_EQ(parity_write_plan(&g, 0, 2 * 65536, 0, 0, &p), 0);
	CHECK_EQ(p.kind, PARITY_PLAN_RCW);
	CHECK_EQ(p.read_bytes, 4 * 65536);
	/* The whole row, anywhere in the storage: no reads. */
	CHECK_EQ(parity_write_plan(&g, 7 * 6 * 65536, 6 * 65536, 0, 0, &p), 0);
	CHECK_EQ(p.kind, PARITY_PLAN_FULL);
	CHECK_EQ(p.nreads, 0);
	CHECK_EQ(p.nwrites, 8);
	/* Across two rows: refused (cut it with parity_write_piece). */
	CHECK_EQ(parity_write_plan(&g, 6 * 65536 - 4096, 8192, 0, 0, &p), -1);
	CHECK_EQ(parity_write_plan(&g, 0, 0, 0, 0, &p), -1);
	/* Three nodes missing of m = 2. */
	CHECK_EQ(parity_write_plan(&g, 0, 4096, 7, 0, &p), -1);
	/* Row 0, data chunk 2 on node 2 missing, a 4K write to it: RCW over
	 * the other five; with chunk 3 missing too, DEGRADED. */
	CHECK_EQ(parity_write_plan(&g, 2 * 65536, 4096, 1u << 2, 0, &p), 0);
	CHECK_EQ(p.kind, PARITY_PLAN_RCW);
	CHECK_EQ(p.read_bytes, 5 * 4096);
	CHECK_EQ(p.nwrites, 2);
	CHECK_EQ(parity_write_plan(&g, 2 * 65536 + 512, 4096, 3u << 2, 0, &p), 0);
	CHECK_EQ(p.kind, PARITY_PLAN_DEGRADED);
	CHECK_EQ(p.read_bytes, 6 * 4096);
	CHECK_EQ(p.src, 0xf3u); /* data 0, 1, 4, 5; parity 0, 1 */
	/* Both parity nodes of row 0 missing: just the data. */
	CHECK_EQ(parity_write_plan(&g, 4096, 4096, 3u << 6, 0, &p), 0);
	CHECK_EQ(p.kind, PARITY_PLAN_NOPARITY);
	CHECK_EQ(p.nreads, 0);
	CHECK_EQ(p.nwrites, 1);
	CHECK_STR(parity_plan_kind_name(PARITY_PLAN_DEGRADED), "degraded");
}

/* A piece is inside one row, and cut at a chunk's end only where the two
 * chunks' written ranges leave a gap. */
TEST(write_pieces)
{
	struct parity_geom g;
	char err[200];
	CHECK_EQ(parity_geom_init(&g, 3, 2, CHUNK, 8 * CHUNK, err, sizeof(err)), 0);
	unsigned sectors = (unsigned)(g.size / SECTOR), cuts = 0;
	for (unsigned s = 0; s < sectors; s++) {
		for (unsigned e = s + 1; e <= sectors && e <= s + 4 * g.row_bytes / SECTOR; e++) {
			uint64_t off = (uint64_t)s * SECTOR, len = (uint64_t)(e - s) * SECTOR;
			while (len) {
				uint64_t piece = parity_write_piece(&g, off, len);
				uint64_t row_left = g.row_bytes - off % g.row_bytes;
				uint64_t most = len < row_left ? len : row_left;
				CHECK(piece >= 1 && piece <= most);
				uint64_t a = off % CHUNK, first = off / CHUNK,
					 last = (off + piece - 1) / CHUNK;
				if (last == first + 1)
					CHECK((off + piece) % CHUNK >= a ||
					      (off + piece) % CHUNK == 0);
				if (piece < most) {
					/* Cut: it ends a chunk, and the longer piece had a gap. */
					cuts++;
					CHECK_EQ((off + piece) % CHUNK, 0);
					CHECK_EQ((off + most - 1) / CHUNK, first + 1);
					CHECK(off + most - (first + 1) * CHUNK < a);
				}
				off += piece;
				len -= piece;
			}
		}
	}
	CHECK(cuts > 0);
}

TEST(read_plans)
{
	struct parity_geom g;
	char err[200];
	CHECK_EQ(parity_geom_init(&g, 4, 2, CHUNK, 12 * CHUNK, err, sizeof(err)), 0);
	struct parity_read_plan p;
	/* Row 1: roles rotate left by one, data 0 is on node 5. */
	CHECK_EQ(parity_read_plan(&g, g.row_bytes + 100, 50, 0, &p), 0);
	CHECK_EQ(p.kind, PARITY_READ_DIRECT);
	CHECK_EQ(p.nreads, 1);
	CHECK_EQ(p.reads[0].node, 5);
	CHECK_EQ(p.reads[0].node_off, CHUNK + 100);
	CHECK_EQ(p.reads[0].len, 50);
	/* Node 5 missing: data 1..3 (nodes 0..2) and parity 0 (node 3). */
	CHECK_EQ(parity_read_plan(&g, g.row_bytes + 100, 50, 1u << 5, &p), 0);
	CHECK_EQ(p.kind, PARITY_READ_RECONSTRUCT);
	CHECK_EQ(p.src, 0x1eu);
	CHECK_EQ(p.nreads, 4);
	for (unsigned i = 0; i < 4; i++) {
		CHECK_EQ(p.reads[i].node, i);
		CHECK_EQ(p.reads[i].node_off, CHUNK + 100);
	}
	/* Three missing, or across a chunk's end: refused. */
	CHECK_EQ(parity_read_plan(&g, g.row_bytes + 100, 50, 0x23u, &p), -1);
	CHECK_EQ(parity_read_plan(&g, CHUNK - 1, 2, 0, &p), -1);
}

UNIT_MAIN(T(every_write_small_geometries), T(random_writes_every_geometry), T(stale_rows),
	  T(rmw_or_rcw), T(write_pieces), T(read_plans))
