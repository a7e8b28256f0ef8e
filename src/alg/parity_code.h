/* parity_code.h - Reed-Solomon coding of a row's k data chunks into m
 * parity chunks, on ISA-L (libisal: the SIMD GF(2^8) kernels; no Galois
 * arithmetic is written here).
 *
 * The code is systematic with a Cauchy generator: ISA-L's
 * gf_gen_cauchy1_matrix gives the n x k matrix whose first k rows are the
 * identity and whose row k + j, column i is 1 / ((k + j) ^ i) in GF(2^8)
 * (polynomial 0x11d). Every k x k submatrix of it is invertible, so any k
 * of the n chunks rebuild the others, for every k and m accepted here
 * (gf_gen_rs_matrix's Vandermonde-like matrix does not promise that).
 *
 * Chunks are named by role, as in parity_geom.h: data chunk i is role i,
 * parity chunk j role k + j. Buffers are any length >= 1, with no
 * alignment: ISA-L's kernels take unaligned buffers, and below their
 * vector width (16 or 32 bytes) its dispatcher runs the byte-wise base
 * version; test_parity_code checks 1-byte and odd lengths.
 *
 * Everything is in the struct: no allocation, and after init nothing is
 * computed but decode tables for an erasure pattern not seen lately (a
 * small cache, see parity_code_decode). Not thread-safe: decode writes the
 * cache. */
#ifndef DST_ARRAY_PARITY_CODE_H
#define DST_ARRAY_PARITY_CODE_H

#include <stddef.h>
#include <stdint.h>

#include "parity_geom.h"

#define PARITY_MAX_K	  (PARITY_MAX_N - 1)
#define PARITY_CODE_CACHE 8u
#define PARITY_TBL_BYTES  (32u * PARITY_MAX_K * PARITY_MAX_M)

struct parity_decode_tbl {
	uint32_t src, want; /* the key: the k roles read, the roles rebuilt */
	unsigned nout;
	uint8_t out[PARITY_MAX_M]; /* the roles rebuilt, in ascending order */
	uint8_t tbls[PARITY_TBL_BYTES];
	uint64_t used; /* for least-recently-used replacement; 0: empty */
};

struct parity_code {
	unsigned k, m, n;
	uint8_t matrix[PARITY_MAX_N * PARITY_MAX_K]; /* n x k generator, row-major */
	uint8_t enc[PARITY_TBL_BYTES];		     /* ISA-L tables of rows k..n-1 */
	struct parity_decode_tbl cache[PARITY_CODE_CACHE];
	uint64_t clock;
	uint64_t decodes, table_builds; /* decode calls; cache misses */
	char name[32];
};

/* For k data and m parity chunks (the limits of parity_geom_init). 0, or -1
 * for numbers out of range. */
int parity_code_init(struct parity_code *c, unsigned k, unsigned m);

/* "isa-l cauchy rs(K,M)", for dst show. */
const char *parity_code_name(const struct parity_code *c);

/* The generator's coefficient of data chunk i in parity chunk j. */
static inline uint8_t parity_code_coef(const struct parity_code *c, unsigned j, unsigned i)
{
	return c->matrix[(c->k + j) * c->k + i];
}

/* parity[j] = sum over i of coef(j, i) * data[i], len bytes of each. A NULL
 * parity[j] is not computed (its chunk is on a missing node). */
void parity_code_encode(const struct parity_code *c, const uint8_t *const *data,
			uint8_t *const *parity, size_t len);

/* Read-modify-write: delta = old ^ new of data chunk i over some bytes;
 * parity[j] ^= coef(j, i) * delta over the same bytes, for every non-NULL
 * parity[j]. ISA-L's ec_encode_data_update accumulates into its outputs,
 * which is exactly this. */
void parity_code_update(const struct parity_code *c, unsigned i, const uint8_t *delta,
			uint8_t *const *parity, size_t len);

/* dst = a ^ b (dst may be a or b). */
void parity_xor(uint8_t *dst, const uint8_t *a, const uint8_t *b, size_t len);

/* Rebuild the chunks in role mask want from those in present: buf[c] (len
 * bytes each) holds chunk c for every c in present, and receives it for
 * every c in want. The first k roles of present (in role order) are the
 * sources; want may not meet present. Decode tables depend on the sources
 * and want only: they are built once (inverting the sources' k x k
 * submatrix with gf_invert_matrix) and kept in a small cache keyed by
 * (sources, want), since a storage with a node down decodes the same
 * pattern for every read of it. 0, or -1 when present has fewer than k
 * roles, want meets present or names no chunk. */
int parity_code_decode(struct parity_code *c, uint32_t present, uint32_t want, uint8_t *const *buf,
		       size_t len);

#endif
