/* parity_geom.h - alg_parity's stripe geometry: where each chunk of a row
 * lives. Pure arithmetic (the IO plans on top are parity_plan.h): unit
 * tested in tests/unit/test_parity_geom.c.
 *
 * A parity storage has n = k + m nodes of equal size. Each node's usable
 * bytes are cut into chunks; row r is chunk r of every node (node offset
 * r * chunk) and holds k data chunks and m parity chunks. The storage's
 * bytes are the rows' data chunks in order: offset off is in row
 * off / (k * chunk), data chunk (off % (k * chunk)) / chunk.
 *
 * A chunk's role in its row is its index in the Reed-Solomon codeword:
 * data chunk i has role i, parity chunk j role k + j (parity_code.h takes
 * buffers by role). Placement rotates left by one node per row, as md's
 * left-symmetric RAID-5/6 does: role c of row r is on node
 * (c + n - r % n) % n. Row 0 has data on nodes 0..k-1 and parity on
 * k..n-1; every node holds parity in m of every n rows, so parity updates
 * spread over all nodes. */
#ifndef DST_ARRAY_PARITY_GEOM_H
#define DST_ARRAY_PARITY_GEOM_H

#include <stddef.h>
#include <stdint.h>

#define PARITY_MAX_N	 16u /* nodes (chunks per row); node masks are 16 bits */
#define PARITY_MAX_M	 3u
#define PARITY_MIN_K	 2u
#define PARITY_MAX_CHUNK (1u << 30) /* ISA-L takes lengths as int */

struct parity_geom {
	unsigned k, m, n;
	uint64_t chunk;
	uint64_t rows;	    /* node bytes / chunk */
	uint64_t row_bytes; /* storage bytes per row: k * chunk */
	uint64_t size;	    /* storage bytes: rows * k * chunk */
};

/* k data and m parity chunks per row of chunk bytes, on nodes of
 * node_bytes each (the tail short of a chunk is not used). 0, or -1 with a
 * one-line reason in err. */
int parity_geom_init(struct parity_geom *g, unsigned k, unsigned m, uint64_t chunk,
		     uint64_t node_bytes, char *err, size_t errlen);

/* Node of role c (data i: c = i; parity j: c = k + j) in row r, and the
 * inverse: the role node x has in row r. */
static inline unsigned parity_node(const struct parity_geom *g, uint64_t r, unsigned c)
{
	return (unsigned)((c + g->n - r % g->n) % g->n);
}

static inline unsigned parity_role(const struct parity_geom *g, uint64_t r, unsigned x)
{
	return (unsigned)((x + r % g->n) % g->n);
}

/* Node mask (bit x: node x) to role mask of row r (bit c: role c), and back. */
uint32_t parity_roles_of(const struct parity_geom *g, uint64_t r, uint32_t nodes);
uint32_t parity_nodes_of(const struct parity_geom *g, uint64_t r, uint32_t roles);

/* Where storage offset off is: the first piece of [off, off+len), up to the
 * end of its chunk. */
struct parity_loc {
	uint64_t row;
	unsigned data; /* data index (= role) in the row */
	unsigned node;
	uint64_t in;	   /* offset inside the chunk */
	uint64_t node_off; /* row * chunk + in */
	uint64_t len;	   /* min(len, chunk - in) */
};
void parity_map(const struct parity_geom *g, uint64_t off, uint64_t len, struct parity_loc *loc);

#endif
