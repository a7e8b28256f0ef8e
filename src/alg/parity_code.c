/* parity_code.c - Reed-Solomon coding over ISA-L (see parity_code.h). */
#include "parity_code.h"

#include <isa-l/erasure_code.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

int parity_code_init(struct parity_code *c, unsigned k, unsigned m)
{
	if (k < PARITY_MIN_K || m < 1 || m > PARITY_MAX_M || k + m > PARITY_MAX_N)
		return -1;
	memset(c, 0, sizeof(*c));
	c->k = k;
	c->m = m;
	c->n = k + m;
	gf_gen_cauchy1_matrix(c->matrix, (int)c->n, (int)k);
	ec_init_tables((int)k, (int)m, c->matrix + k * k, c->enc);
	snprintf(c->name, sizeof(c->name), "isa-l cauchy rs(%u,%u)", k, m);
	return 0;
}

const char *parity_code_name(const struct parity_code *c)
{
	return c->name;
}

/* ISA-L's tables for output row j of a set start at 32 * k * j: one row of
 * a set can be run alone. */
static uint8_t *row_tbls(const struct parity_code *c, const uint8_t *tbls, unsigned j)
{
	return (uint8_t *)tbls + 32u * c->k * j;
}

static int all_set(uint8_t *const *p, unsigned cnt)
{
	for (unsigned j = 0; j < cnt; j++)
		if (!p[j])
			return 0;
	return 1;
}

void parity_code_encode(const struct parity_code *c, const uint8_t *const *data,
			uint8_t *const *parity, size_t len)
{
	if (len == 0)
		return;
	/* ISA-L's prototypes take non-const pointers; it only reads the sources. */
	uint8_t **src = (uint8_t **)data;
	if (all_set(parity, c->m)) {
		/* All rows at once: the data is read once for all of them. */
		ec_encode_data((int)len, (int)c->k, (int)c->m, (uint8_t *)c->enc, src,
			       (uint8_t **)parity);
		return;
	}
	for (unsigned j = 0; j < c->m; j++) {
		if (!parity[j])
			continue;
		uint8_t *out = parity[j];
		ec_encode_data((int)len, (int)c->k, 1, row_tbls(c, c->enc, j), src, &out);
	}
}

void parity_code_update(const struct parity_code *c, unsigned i, const uint8_t *delta,
			uint8_t *const *parity, size_t len)
{
	if (len == 0)
		return;
	if (all_set(parity, c->m)) {
		ec_encode_data_update((int)len, (int)c->k, (int)c->m, (int)i, (uint8_t *)c->enc,
				      (uint8_t *)delta, (uint8_t **)parity);
		return;
	}
	for (unsigned j = 0; j < c->m; j++) {
		if (!parity[j])
			continue;
		uint8_t *out = parity[j];
		ec_encode_data_update((int)len, (int)c->k, 1, (int)i, row_tbls(c, c->enc, j),
				      (uint8_t *)delta, &out);
	}
}

void parity_xor(uint8_t *dst, const uint8_t *a, const uint8_t *b, size_t len)
{
	size_t i = 0;
	/* Words through memcpy: no alignment needed, and the compiler makes
	 * vector code of it. */
	for (; i + 8 <= len; i += 8) {
		uint64_t x, y;
		memcpy(&x, a + i, 8);
		memcpy(&y, b + i, 8);
		x ^= y;
		memcpy(dst + i, &x, 8);
	}
	for (; i < len; i++)
		dst[i] = a[i] ^ b[i];
}

/* The decode tables for (src, want): row w of the output is the
 * combination of the k sources that gives chunk w. With S the generator's
 * rows of the sources (k x k) and D = S^-1, data chunk w is D's row w, and
 * parity chunk w is the generator's row w times D. The products are ISA-L's
 * gf_mul. */
static int build(const struct parity_code *c, uint32_t src, uint32_t want,
		 struct parity_decode_tbl *t)
{
	unsigned k = c->k;
	uint8_t s[PARITY_MAX_K * PARITY_MAX_K], d[PARITY_MAX_K * PARITY_MAX_K];
	uint8_t rows[PARITY_MAX_M * PARITY_MAX_K];
	unsigned r = 0;
	for (unsigned x = 0; x < c->n; x++)
		if (src & (1u << x))
			memcpy(s + k * r++, c->matrix + k * x, k);
	if (gf_invert_matrix(s, d, (int)k) < 0)
		return -1; /* cannot happen for a Cauchy generator */
	t->nout = 0;
	for (unsigned w = 0; w < c->n; w++) {
		if (!(want & (1u << w)))
			continue;
		uint8_t *row = rows + k * t->nout;
		if (w < k) {
			memcpy(row, d + k * w, k);
		} else {
			for (unsigned col = 0; col < k; col++) {
				uint8_t v = 0;
				for (unsigned x = 0; x < k; x++)
					v ^= gf_mul(c->matrix[k * w + x], d[k * x + col]);
				row[col] = v;
			}
		}
		t->out[t->nout++] = (uint8_t)w;
	}
	ec_init_tables((int)k, (int)t->nout, rows, t->tbls);
	t->src = src;
	t->want = want;
	return 0;
}

static struct parity_decode_tbl *lookup(struct parity_code *c, uint32_t src, uint32_t want)
{
	struct parity_decode_tbl *victim = &c->cache[0];
	c->clock++;
	for (unsigned e = 0; e < PARITY_CODE_CACHE; e++) {
		struct parity_decode_tbl *t = &c->cache[e];
		if (t->used && t->src == src && t->want == want) {
			t->used = c->clock;
			return t;
		}
		if (t->used < victim->used)
			victim = t;
	}
	c->table_builds++;
	victim->used = 0;
	if (build(c, src, want, victim) < 0)
		return NULL;
	victim->used = c->clock;
	return victim;
}

int parity_code_decode(struct parity_code *c, uint32_t present, uint32_t want, uint8_t *const *buf,
		       size_t len)
{
	uint32_t all = (1u << c->n) - 1;
	if ((want & present) || !(want & all) || (want & ~all))
		return -1;
	/* The sources: the first k present roles. */
	uint32_t src = 0;
	unsigned cnt = 0;
	for (unsigned x = 0; x < c->n && cnt < c->k; x++) {
		if (present & (1u << x)) {
			src |= 1u << x;
			cnt++;
		}
	}
	if (cnt < c->k)
		return -1;
	c->decodes++;
	struct parity_decode_tbl *t = lookup(c, src, want);
	if (!t)
		return -1;
	if (len == 0)
		return 0;
	uint8_t *in[PARITY_MAX_K], *out[PARITY_MAX_M];
	unsigned r = 0;
	for (unsigned x = 0; x < c->n; x++)
		if (src & (1u << x))
			in[r++] = buf[x];
	for (unsigned o = 0; o < t->nout; o++)
		out[o] = buf[t->out[o]];
	ec_encode_data((int)len, (int)c->k, (int)t->nout, t->tbls, in, out);
	return 0;
}
