/* test_parity_code.c - alg_parity's Reed-Solomon coding (parity_code.c, on
 * ISA-L) against a reference model written here: GF(2^8) multiplication
 * bit by bit with ISA-L's polynomial 0x11d, and per byte a plain
 * matrix-vector product with the generator's coefficients. Every (k, m)
 * alg_parity accepts; encode, every erasure pattern of up to m chunks,
 * read-modify-write updates, short and unaligned buffers, the decode
 * cache and bad input. */
#include <stdlib.h>

#include "alg/parity_code.h"
#include "unit.h"

/* Reference GF(2^8): shift-and-add, reducing by x^8+x^4+x^3+x^2+1. */
static uint8_t ref_mul_bits(uint8_t a, uint8_t b)
{
	unsigned p = 0, x = a;
	for (int i = 0; i < 8; i++) {
		if (b & (1u << i))
			p ^= x;
		x <<= 1;
		if (x & 0x100)
			x ^= 0x11d;
	}
	return (uint8_t)p;
}

/* The same products, tabulated once, so that the reference runs over
 * kilobytes in reasonable time. */
static uint8_t mul_tab[256][256];

static void ref_init(void)
{
	static int done;
	if (done)
		return;
	for (unsigned a = 0; a < 256; a++)
		for (unsigned b = 0; b < 256; b++)
			mul_tab[a][b] = ref_mul_bits((uint8_t)a, (uint8_t)b);
	done = 1;
}

static uint8_t ref_inv(uint8_t a)
{
	for (unsigned x = 1; x < 256; x++)
		if (mul_tab[a][x] == 1)
			return (uint8_t)x;
	return 0;
}

/* Chunk w of the codeword (data or parity) from the k data chunks, per
 * byte: the generator's row w times the data vector. */
static void ref_chunk(const struct parity_code *c, unsigned w, uint8_t *const *data, uint8_t *out,
		      size_t len)
{
	for (size_t b = 0; b < len; b++) {
		uint8_t v = 0;
		for (unsigned i = 0; i < c->k; i++)
			v ^= mul_tab[c->matrix[w * c->k + i]][data[i][b]];
		out[b] = v;
	}
}

static void fill(uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)rand();
}

/* n chunks of len bytes, each at an odd address (ISA-L needs no
 * alignment, and must not be given any by chance). */
struct row {
	uint8_t *mem[PARITY_MAX_N];
	uint8_t *buf[PARITY_MAX_N];
	size_t len;
};

static void row_alloc(struct row *r, unsigned n, size_t len)
{
	r->len = len;
	for (unsigned c = 0; c < PARITY_MAX_N; c++) {
		r->mem[c] = c < n ? malloc(len + 1) : NULL;
		r->buf[c] = c < n ? r->mem[c] + 1 : NULL;
	}
}

static void row_free(struct row *r)
{
	for (unsigned c = 0; c < PARITY_MAX_N; c++)
		free(r->mem[c]);
}

#define FOR_EACH_GEOMETRY(k, m)                                \
	for (unsigned k = PARITY_MIN_K; k < PARITY_MAX_N; k++) \
		for (unsigned m = 1; m <= PARITY_MAX_M; m++)   \
			if (k + m <= PARITY_MAX_N)

TEST(init_and_name)
{
	struct parity_code c;
	CHECK_EQ(parity_code_init(&c, 4, 2), 0);
	CHECK_STR(parity_code_name(&c), "isa-l cauchy rs(4,2)");
	CHECK_EQ(parity_code_init(&c, 13, 3), 0);
	CHECK_STR(parity_code_name(&c), "isa-l cauchy rs(13,3)");
	CHECK_EQ(parity_code_init(&c, 15, 1), 0);
	CHECK_EQ(parity_code_init(&c, 1, 1), -1);
	CHECK_EQ(parity_code_init(&c, 4, 0), -1);
	CHECK_EQ(parity_code_init(&c, 4, 4), -1);
	CHECK_EQ(parity_code_init(&c, 14, 3), -1);
	CHECK_EQ(parity_code_init(&c, 16, 1), -1);
}

/* The generator is systematic and Cauchy: identity on top, 1 / (x ^ y)
 * below, with x the row and y the column. */
TEST(matrix_is_cauchy)
{
	ref_init();
	FOR_EACH_GEOMETRY(k, m)
	{
		struct parity_code c;
		CHECK_EQ(parity_code_init(&c, k, m), 0);
		for (unsigned w = 0; w < k; w++)
			for (unsigned i = 0; i < k; i++)
				CHECK_EQ(c.matrix[w * k + i], w == i);
		for (unsigned j = 0; j < m; j++) {
			for (unsigned i = 0; i < k; i++) {
				uint8_t want = ref_inv((uint8_t)((k + j) ^ i));
				CHECK_EQ(parity_code_coef(&c, j, i), want);
				CHECK_EQ(mul_tab[want][(k + j) ^ i], 1);
			}
		}
	}
}

TEST(encode_matches_reference)
{
	ref_init();
	srand(1);
	static const size_t lens[] = {1, 15, 16, 31, 32, 33, 64, 511, 4096 + 13};
	FOR_EACH_GEOMETRY(k, m)
	{
		struct parity_code c;
		parity_code_init(&c, k, m);
		for (size_t t = 0; t < sizeof(lens) / sizeof(lens[0]); t++) {
			size_t len = lens[t];
			struct row r, want;
			row_alloc(&r, c.n, len);
			row_alloc(&want, c.n, len);
			for (unsigned i = 0; i < k; i++)
				fill(r.buf[i], len);
			for (unsigned j = 0; j < m; j++)
				fill(r.buf[k + j], len); /* encode overwrites */
			parity_code_encode(&c, (const uint8_t *const *)r.buf, r.buf + k, len);
			for (unsigned j = 0; j < m; j++) {
				ref_chunk(&c, k + j, r.buf, want.buf[k + j], len);
				CHECK(memcmp(r.buf[k + j], want.buf[k + j], len) == 0);
			}
			/* A NULL output is skipped; the others are the same. */
			if (m >= 2) {
				uint8_t *out[PARITY_MAX_M] = {NULL};
				memset(r.buf[k + 1], 0xee, len);
				out[1] = r.buf[k + 1];
				parity_code_encode(&c, (const uint8_t *const *)r.buf, out, len);
				CHECK(memcmp(r.buf[k + 1], want.buf[k + 1], len) == 0);
			}
			row_free(&r);
			row_free(&want);
		}
	}
}

/* Rebuild the chunks in `want` from those in `present` and compare with
 * the original row; the wanted buffers hold garbage before. */
static void check_decode(struct parity_code *c, struct row *orig, struct row *work,
			 uint32_t present, uint32_t want)
{
	for (unsigned x = 0; x < c->n; x++) {
		if (present & (1u << x))
			memcpy(work->buf[x], orig->buf[x], orig->len);
		else
			memset(work->buf[x], 0x5a ^ x, orig->len);
	}
	int rc = parity_code_decode(c, present, want, work->buf, orig->len);
	CHECK_EQ(rc, 0);
	for (unsigned x = 0; x < c->n; x++) {
		if (!((present | want) & (1u << x)))
			continue;
		if (memcmp(work->buf[x], orig->buf[x], orig->len) != 0) {
			fprintf(stderr, "rs(%u,%u) present %#x want %#x: chunk %u wrong\n", c->k,
				c->m, present, want, x);
			unit_failed_checks++;
		}
	}
}

static void random_row(struct parity_code *c, struct row *r)
{
	for (unsigned i = 0; i < c->k; i++)
		fill(r->buf[i], r->len);
	for (unsigned j = 0; j < c->m; j++)
		ref_chunk(c, c->k + j, r->buf, r->buf[c->k + j], r->len);
}

/* Every pattern of 1 to m missing chunks of n: rebuilt from the others.
 * For m = 3 that is at most C(16, 3) + C(16, 2) + 16 = 696 patterns. */
TEST(decode_every_erasure_pattern)
{
	ref_init();
	srand(2);
	FOR_EACH_GEOMETRY(k, m)
	{
		struct parity_code c;
		parity_code_init(&c, k, m);
		struct row orig, work;
		row_alloc(&orig, c.n, 263);
		row_alloc(&work, c.n, 263);
		random_row(&c, &orig);
		uint32_t all = (1u << c.n) - 1;
		unsigned patterns = 0;
		for (uint32_t miss = 1; miss <= all; miss++) {
			if ((unsigned)__builtin_popcount(miss) > m)
				continue;
			check_decode(&c, &orig, &work, all & ~miss, miss);
			patterns++;
		}
		unsigned expect = 0, binom = 1;
		for (unsigned e = 1; e <= m; e++) {
			binom = binom * (c.n - e + 1) / e;
			expect += binom;
		}
		CHECK_EQ(patterns, expect);
		row_free(&orig);
		row_free(&work);
	}
}

/* Exactly k chunks present, any of them, and any part of the others
 * wanted: the sources are not always the first chunks. */
TEST(decode_any_k_sources)
{
	ref_init();
	srand(3);
	FOR_EACH_GEOMETRY(k, m)
	{
		struct parity_code c;
		parity_code_init(&c, k, m);
		struct row orig, work;
		row_alloc(&orig, c.n, 100);
		row_alloc(&work, c.n, 100);
		random_row(&c, &orig);
		for (int t = 0; t < 60; t++) {
			uint32_t present = 0;
			while ((unsigned)__builtin_popcount(present) < k)
				present |= 1u << (rand() % c.n);
			uint32_t rest = ((1u << c.n) - 1) & ~present, want = 0;
			while (!want)
				want = rest & (uint32_t)rand();
			check_decode(&c, &orig, &work, present, want);
		}
		row_free(&orig);
		row_free(&work);
	}
}

/* Lengths below and around ISA-L's vector widths, for encode, decode and
 * update. */
TEST(short_lengths)
{
	ref_init();
	srand(4);
	static const unsigned geo[][2] = {{2, 1}, {4, 2}, {10, 3}, {13, 3}};
	for (size_t g = 0; g < sizeof(geo) / sizeof(geo[0]); g++) {
		struct parity_code c;
		parity_code_init(&c, geo[g][0], geo[g][1]);
		unsigned k = c.k, m = c.m;
		for (size_t len = 1; len <= 130; len++) {
			struct row r, want, work;
			row_alloc(&r, c.n, len);
			row_alloc(&want, c.n, len);
			row_alloc(&work, c.n, len);
			for (unsigned i = 0; i < k; i++)
				fill(r.buf[i], len);
			parity_code_encode(&c, (const uint8_t *const *)r.buf, r.buf + k, len);
			for (unsigned j = 0; j < m; j++) {
				ref_chunk(&c, k + j, r.buf, want.buf[k + j], len);
				CHECK(memcmp(r.buf[k + j], want.buf[k + j], len) == 0);
			}
			/* The first m chunks lost: data chunks rebuilt. */
			uint32_t lost = (1u << m) - 1;
			check_decode(&c, &r, &work, ((1u << c.n) - 1) & ~lost, lost);
			/* Update chunk k - 1 with a delta; compare with the reference. */
			uint8_t *delta = malloc(len);
			fill(delta, len);
			parity_code_update(&c, k - 1, delta, r.buf + k, len);
			parity_xor(r.buf[k - 1], r.buf[k - 1], delta, len);
			for (unsigned j = 0; j < m; j++) {
				ref_chunk(&c, k + j, r.buf, want.buf[k + j], len);
				CHECK(memcmp(r.buf[k + j], want.buf[k + j], len) == 0);
			}
			free(delta);
			row_free(&r);
			row_free(&want);
			row_free(&work);
		}
	}
}

/* ec_encode_data_update accumulates: on zeroes it gives coef * delta, and
 * the same update twice gives back what was there. */
TEST(update_accumulates)
{
	ref_init();
	srand(5);
	struct parity_code c;
	parity_code_init(&c, 5, 3);
	size_t len = 4096;
	struct row r;
	row_alloc(&r, c.n, len);
	uint8_t *delta = malloc(len), *before = malloc(len);
	fill(delta, len);
	for (unsigned j = 0; j < 3; j++)
		memset(r.buf[5 + j], 0, len);
	parity_code_update(&c, 2, delta, r.buf + 5, len);
	for (unsigned j = 0; j < 3; j++) {
		uint8_t coef = parity_code_coef(&c, j, 2);
		int ok = 1;
		for (size_t b = 0; b < len; b++)
			ok &= r.buf[5 + j][b] == mul_tab[coef][delta[b]];
		CHECK(ok);
	}
	fill(r.buf[6], len);
	memcpy(before, r.buf[6], len);
	parity_code_update(&c, 4, delta, r.buf + 5, len);
	CHECK(memcmp(r.buf[6], before, len) != 0);
	parity_code_update(&c, 4, delta, r.buf + 5, len);
	CHECK(memcmp(r.buf[6], before, len) == 0);
	/* NULL outputs are left alone, the other one updated. */
	uint8_t *only[PARITY_MAX_M] = {NULL, r.buf[6], NULL};
	uint8_t *before5 = malloc(len), *before7 = malloc(len);
	memcpy(before5, r.buf[5], len);
	memcpy(before7, r.buf[7], len);
	memcpy(before, r.buf[6], len);
	parity_code_update(&c, 0, delta, only, len);
	CHECK(memcmp(r.buf[5], before5, len) == 0);
	CHECK(memcmp(r.buf[7], before7, len) == 0);
	uint8_t coef = parity_code_coef(&c, 1, 0);
	int ok = 1;
	for (size_t b = 0; b < len; b++)
		ok &= r.buf[6][b] == (before[b] ^ mul_tab[coef][delta[b]]);
	CHECK(ok);
	free(delta);
	free(before);
	free(before5);
	free(before7);
	row_free(&r);
}

/* Read-modify-write equals a full re-encode: for every data index, spans
 * at odd offsets of 1, 511, 4096 bytes and the whole chunk; with all
 * parity chunks updated, and with one of them left out (a missing node). */
TEST(update_equals_reencode)
{
	ref_init();
	srand(6);
	const size_t chunk = 16384;
	static const size_t spans[][2] = {{0, 1},    {7, 1},	    {16383, 1}, {3, 511},
					  {1, 4096}, {12285, 4096}, {0, 16384}};
	FOR_EACH_GEOMETRY(k, m)
	{
		struct parity_code c;
		parity_code_init(&c, k, m);
		struct row r, full;
		row_alloc(&r, c.n, chunk);
		row_alloc(&full, c.n, chunk);
		for (unsigned i = 0; i < k; i++)
			fill(r.buf[i], chunk);
		parity_code_encode(&c, (const uint8_t *const *)r.buf, r.buf + k, chunk);
		uint8_t *nw = malloc(chunk), *delta = malloc(chunk);
		for (unsigned i = 0; i < k; i++) {
			for (size_t s = 0; s < sizeof(spans) / sizeof(spans[0]); s++) {
				size_t off = spans[s][0], len = spans[s][1];
				fill(nw, len);
				parity_xor(delta, r.buf[i] + off, nw, len);
				uint8_t *out[PARITY_MAX_M];
				for (unsigned j = 0; j < m; j++)
					out[j] = r.buf[k + j] + off;
				parity_code_update(&c, i, delta, out, len);
				memcpy(r.buf[i] + off, nw, len);
				parity_code_encode(&c, (const uint8_t *const *)r.buf, full.buf + k,
						   chunk);
				for (unsigned j = 0; j < m; j++)
					CHECK(memcmp(r.buf[k + j], full.buf[k + j], chunk) == 0);
			}
		}
		/* Parity 0 left out: it is now stale by exactly the delta, the
		 * others are right. */
		fill(nw, 100);
		parity_xor(delta, r.buf[0] + 50, nw, 100);
		uint8_t *out[PARITY_MAX_M] = {NULL};
		for (unsigned j = 1; j < m; j++)
			out[j] = r.buf[k + j] + 50;
		uint8_t before[100];
		memcpy(before, r.buf[k] + 50, 100);
		parity_code_update(&c, 0, delta, out, 100);
		memcpy(r.buf[0] + 50, nw, 100);
		parity_code_encode(&c, (const uint8_t *const *)r.buf, full.buf + k, chunk);
		CHECK(memcmp(r.buf[k] + 50, before, 100) == 0);
		for (unsigned j = 1; j < m; j++)
			CHECK(memcmp(r.buf[k + j], full.buf[k + j], chunk) == 0);
		free(nw);
		free(delta);
		row_free(&r);
		row_free(&full);
	}
}

TEST(xor)
{
	srand(7);
	uint8_t a[80], b[80], d[80];
	for (size_t off = 0; off < 8; off++) {
		for (size_t len = 0; len + off <= 70; len++) {
			fill(a, sizeof(a));
			fill(b, sizeof(b));
			memset(d, 0x77, sizeof(d));
			parity_xor(d + off, a + off, b + off, len);
			int ok = 1;
			for (size_t i = 0; i < sizeof(d); i++)
				ok &= d[i] == (i >= off && i < off + len ? (a[i] ^ b[i]) : 0x77);
			CHECK(ok);
			/* In place. */
			uint8_t a0[80];
			memcpy(a0, a, sizeof(a));
			parity_xor(a + off, a + off, b + off, len);
			for (size_t i = 0; i < len; i++)
				ok &= a[off + i] == (a0[off + i] ^ b[off + i]);
			CHECK(ok);
		}
	}
}

/* Tables are built once per (sources, wanted) and kept for the 8 latest
 * patterns; the least recently used goes first. */
TEST(decode_cache)
{
	ref_init();
	srand(8);
	struct parity_code c;
	parity_code_init(&c, 6, 2);
	struct row orig, work;
	row_alloc(&orig, c.n, 64);
	row_alloc(&work, c.n, 64);
	random_row(&c, &orig);
	uint32_t all = 0xff;
	check_decode(&c, &orig, &work, all & ~1u, 1u);
	CHECK_EQ(c.table_builds, 1);
	for (int t = 0; t < 5; t++)
		check_decode(&c, &orig, &work, all & ~1u, 1u);
	CHECK_EQ(c.table_builds, 1);
	CHECK_EQ(c.decodes, 6);
	/* Same missing chunk, another wanted set: other tables. */
	check_decode(&c, &orig, &work, all & ~3u, 3u);
	CHECK_EQ(c.table_builds, 2);
	/* Fill the cache: one pattern per x = 1..6, 8 in all. */
	for (unsigned x = 1; x < 7; x++)
		check_decode(&c, &orig, &work, all & ~(1u << x), 1u << x);
	CHECK_EQ(c.table_builds, 8);
	/* Use the first again, then one more pattern evicts the least recent
	 * (want 3), not the first. */
	check_decode(&c, &orig, &work, all & ~1u, 1u);
	CHECK_EQ(c.table_builds, 8);
	check_decode(&c, &orig, &work, all & ~(1u << 7), 1u << 7);
	CHECK_EQ(c.table_builds, 9);
	check_decode(&c, &orig, &work, all & ~1u, 1u);
	CHECK_EQ(c.table_builds, 9);
	check_decode(&c, &orig, &work, all & ~3u, 3u);
	CHECK_EQ(c.table_builds, 10);
	row_free(&orig);
	row_free(&work);
}

TEST(decode_bad_input)
{
	struct parity_code c;
	parity_code_init(&c, 4, 2);
	struct row r;
	row_alloc(&r, c.n, 32);
	CHECK_EQ(parity_code_decode(&c, 0x3f & ~7u, 7u, r.buf, 32), -1); /* 3 missing of m = 2 */
	CHECK_EQ(parity_code_decode(&c, 0x0f, 0x0f, r.buf, 32), -1);	 /* want is present */
	CHECK_EQ(parity_code_decode(&c, 0x0f, 0, r.buf, 32), -1);	 /* nothing wanted */
	CHECK_EQ(parity_code_decode(&c, 0x0f, 0x40, r.buf, 32), -1);	 /* no chunk 6 */
	CHECK_EQ(c.decodes, 0);
	row_free(&r);
}

UNIT_MAIN(T(init_and_name), T(matrix_is_cauchy), T(encode_matches_reference),
	  T(decode_every_erasure_pattern), T(decode_any_k_sources), T(short_lengths),
	  T(update_accumulates), T(update_equals_reencode), T(xor), T(decode_cache),
	  T(decode_bad_input))
