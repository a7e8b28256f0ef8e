/* parity_plan.h - alg_parity's IO plans for one row: which reads a write
 * needs to compute the row's new parity (and the computation once they are
 * done), and which reads rebuild a chunk on a missing node. Pure: no IO,
 * no allocation (fixed arrays sized by PARITY_MAX_N); unit tested against a
 * model storage in tests/unit/test_parity_plan.c.
 *
 * Missing nodes (failed, or suspended) are given as a node mask; a missing
 * node is never read nor written by a plan. */
#ifndef DST_ARRAY_PARITY_PLAN_H
#define DST_ARRAY_PARITY_PLAN_H

#include <stdint.h>

#include "parity_code.h"
#include "parity_geom.h"

/* One IO of a plan, on one node, inside one chunk of the plan's row. */
struct parity_ext {
	uint8_t node, role;
	uint32_t in, len;  /* the chunk's bytes [in, in+len) */
	uint64_t node_off; /* row * chunk + in */
	uint64_t req_off;  /* data writes: where its bytes are in the request */
};

/* How a write to part of a row computes the row's new parity, over the
 * span [lo, hi) of in-chunk offsets: the hull of the in-chunk ranges the
 * write covers (the whole chunk when it touches two chunks or more, or
 * with PARITY_PLAN_STALE).
 *
 *   FULL      the write is the whole row: encode it, no reads.
 *   RMW       read the old data of the written ranges and the old parity
 *             over the span; parity += coef * (old ^ new) per data chunk.
 *             Needs the written data chunks' nodes.
 *   RCW       read what the write leaves of every data chunk over the
 *             span, encode anew. Needs the node of every data chunk the
 *             write does not cover over the whole span.
 *   DEGRADED  read k surviving chunks over the span, rebuild the missing
 *             data chunks' old bytes, merge the new data, encode. Needs k
 *             chunks of the row: always possible with at most m missing.
 *   NOPARITY  every parity chunk of the row is on a missing node: write
 *             the data, there is no parity to compute.
 *
 * NOPARITY when it applies, FULL for a whole row, else the possible plan
 * that reads the fewest bytes; on a tie RCW, then RMW, then DEGRADED (RCW
 * is one encode instead of an update per chunk, and reads no parity).
 * With no node missing that is RMW or RCW; DEGRADED wins when RMW is the
 * only other possible plan and reads more, e.g. a write over 3 whole
 * chunks of a 4+2 row whose 4th data chunk is missing: RMW reads 3 + 2
 * chunks, DEGRADED 4.
 *
 * The writes: each written data range on a present node (its bytes from
 * the request's buffer), then each parity chunk on a present node over the
 * span (its bytes from parity_plan_compute). A missing node's chunk is not
 * written: its stripe stays dirty in the caller's bitmap, and the parity
 * written covers the new data of a missing data chunk too, so a degraded
 * read of it returns the new bytes. */
enum parity_plan_kind {
	PARITY_PLAN_FULL,
	PARITY_PLAN_RMW,
	PARITY_PLAN_RCW,
	PARITY_PLAN_DEGRADED,
	PARITY_PLAN_NOPARITY,
};

struct parity_plan {
	enum parity_plan_kind kind;
	uint64_t row;
	uint32_t lo, hi;  /* the span */
	uint32_t missing; /* roles on missing nodes */
	uint32_t touched; /* data roles the write covers part of */
	/* Per touched data role c: the in-chunk range [wlo[c], whi[c]) written,
	 * from the request's byte wreq[c] on. */
	uint32_t wlo[PARITY_MAX_N], whi[PARITY_MAX_N];
	uint64_t wreq[PARITY_MAX_N];
	uint32_t bufs; /* roles parity_plan_compute needs a buffer for */
	uint32_t src;  /* DEGRADED: the roles read over the whole span */
	unsigned nreads, nwrites;
	uint64_t read_bytes; /* the sum of the reads' lengths */
	struct parity_ext reads[PARITY_MAX_N], writes[PARITY_MAX_N];
};

/* The bytes from off that one write plan takes: up to the end of the row,
 * and up to the end of the first chunk when the piece would cover the tail
 * of one chunk and the head of the next with a gap between their in-chunk
 * ranges. Such a piece's span is the whole chunk; cut in two, each half's
 * span is its own range (reads fewer bytes, whatever the plan), and the
 * halves touch disjoint bytes of every node, so they need no order between
 * them. */
uint64_t parity_write_piece(const struct parity_geom *g, uint64_t off, uint64_t len);

/* Flags of parity_write_plan. STALE: the row's parity may be wrong (a dirty
 * stripe after a crash, not recomputed yet): no plan may read it, so only
 * FULL, RCW and NOPARITY remain, and the span is the whole chunk: the
 * row's parity on every present parity node is right afterwards. */
#define PARITY_PLAN_STALE 1u

/* The plan for a write of [off, off+len) (len >= 1, inside one row), with
 * the nodes in mask `missing` failed or suspended. 0, or -1 when no plan
 * can keep the row's data: more than m nodes missing, or a STALE row whose
 * write needs an old data chunk that is missing. */
int parity_write_plan(const struct parity_geom *g, uint64_t off, uint64_t len, uint32_t missing,
		      unsigned flags, struct parity_plan *p);

/* After the plan's reads, the new parity. buf[c], for every role c in
 * p->bufs, is a buffer of at least hi - lo bytes that stands for chunk c's
 * bytes [lo, hi): the plan's read of role c went to buf[c] + (in - lo).
 * Roles not in p->bufs may be NULL. data is the request's buffer (its
 * byte 0 is the write's off). Afterwards buf[c] holds the bytes of every
 * parity write of role c (an RMW leaves old ^ new in the data buffers, the
 * others the row's new data). 0, or -1 when a DEGRADED decode fails
 * (cannot happen for a plan parity_write_plan made for the same code). */
int parity_plan_compute(const struct parity_geom *g, struct parity_code *code,
			const struct parity_plan *p, const uint8_t *data, uint8_t *const *buf);

/* A read of [off, off+len) inside one data chunk. DIRECT: its node is
 * present, one read. RECONSTRUCT: it is missing; read the same in-chunk
 * range of k surviving chunks of the row (data chunks first, then parity),
 * each into buf[role], and rebuild it into buf[p->role] with
 * parity_code_decode(code, p->src, 1u << p->role, buf, p->len). */
enum parity_read_kind {
	PARITY_READ_DIRECT,
	PARITY_READ_RECONSTRUCT,
};

struct parity_read_plan {
	enum parity_read_kind kind;
	uint64_t row;
	unsigned role; /* the data chunk read */
	uint32_t in, len;
	uint32_t src; /* RECONSTRUCT: the roles read */
	unsigned nreads;
	struct parity_ext reads[PARITY_MAX_N];
};

/* 0, or -1 when the chunk is missing and fewer than k chunks of its row
 * survive. */
int parity_read_plan(const struct parity_geom *g, uint64_t off, uint64_t len, uint32_t missing,
		     struct parity_read_plan *p);

/* "full", "rmw", "rcw", "degraded", "noparity": for logs and metrics. */
const char *parity_plan_kind_name(enum parity_plan_kind kind);

#endif
