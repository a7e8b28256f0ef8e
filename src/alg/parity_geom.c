/* parity_geom.c - alg_parity's stripe geometry (see parity_geom.h). */
#include "parity_geom.h"

#include <stdio.h>

int parity_geom_init(struct parity_geom *g, unsigned k, unsigned m, uint64_t chunk,
		     uint64_t node_bytes, char *err, size_t errlen)
{
	if (k < PARITY_MIN_K) {
		snprintf(err, errlen,
			 "alg_parity: --data %u: a stripe needs at least %u data chunks (for one, "
			 "use alg_mirror)",
			 k, PARITY_MIN_K);
		return -1;
	}
	if (m < 1 || m > PARITY_MAX_M) {
		snprintf(err, errlen, "alg_parity: --parity %u: expected 1, 2 or 3 parity chunks",
			 m);
		return -1;
	}
	if (k + m > PARITY_MAX_N) {
		snprintf(err, errlen,
			 "alg_parity: --data %u --parity %u: %u nodes per stripe, at most %u", k, m,
			 k + m, PARITY_MAX_N);
		return -1;
	}
	if (chunk < 4096 || chunk > PARITY_MAX_CHUNK || (chunk & (chunk - 1))) {
		snprintf(err, errlen,
			 "alg_parity: chunk %llu: expected a power of two from 4K to 1G",
			 (unsigned long long)chunk);
		return -1;
	}
	if (node_bytes < chunk) {
		snprintf(err, errlen,
			 "alg_parity: nodes of %llu bytes are smaller than one chunk (%llu bytes)",
			 (unsigned long long)node_bytes, (unsigned long long)chunk);
		return -1;
	}
	g->k = k;
	g->m = m;
	g->n = k + m;
	g->chunk = chunk;
	g->rows = node_bytes / chunk;
	g->row_bytes = k * chunk;
	g->size = g->rows * g->row_bytes;
	return 0;
}

uint32_t parity_roles_of(const struct parity_geom *g, uint64_t r, uint32_t nodes)
{
	uint32_t roles = 0;
	for (unsigned x = 0; x < g->n; x++)
		if (nodes & (1u << x))
			roles |= 1u << parity_role(g, r, x);
	return roles;
}

uint32_t parity_nodes_of(const struct parity_geom *g, uint64_t r, uint32_t roles)
{
	uint32_t nodes = 0;
	for (unsigned c = 0; c < g->n; c++)
		if (roles & (1u << c))
			nodes |= 1u << parity_node(g, r, c);
	return nodes;
}

void parity_map(const struct parity_geom *g, uint64_t off, uint64_t len, struct parity_loc *loc)
{
	uint64_t in_row = off % g->row_bytes;
	loc->row = off / g->row_bytes;
	loc->data = (unsigned)(in_row / g->chunk);
	loc->node = parity_node(g, loc->row, loc->data);
	loc->in = in_row % g->chunk;
	loc->node_off = loc->row * g->chunk + loc->in;
	loc->len = len < g->chunk - loc->in ? len : g->chunk - loc->in;
}
