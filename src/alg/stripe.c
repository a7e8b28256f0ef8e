/* stripe.c - alg_stripe: chunks spread round-robin over equal nodes
 * (RAID-0, dm-stripe). Chunk k lives on node k % n at chunk k / n. */
#include <stdio.h>

#include "array/array.h"
#include "common/util.h"

static uint64_t stripe_layout(const struct array_node *nodes, size_t n, const struct alg_geom *geo,
			      char *err, size_t errlen)
{
	uint64_t chunk = geo->chunk;
	if (n == 0) {
		snprintf(err, errlen, "alg_stripe: no nodes; add some with dst add");
		return 0;
	}
	if (chunk < 4096 || (chunk & (chunk - 1))) {
		snprintf(err, errlen, "alg_stripe: chunk %llu: must be a power of two >= 4096",
			 (unsigned long long)chunk);
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if (nodes[i].size != nodes[0].size) {
			snprintf(err, errlen,
				 "alg_stripe: nodes must be of equal size: %s has %llu sectors, %s "
				 "has %llu (narrow with --size %llu)",
				 nodes[0].name, (unsigned long long)nodes[0].size, nodes[i].name,
				 (unsigned long long)nodes[i].size,
				 (unsigned long long)MIN(nodes[0].size, nodes[i].size));
			return 0;
		}
	}
	uint64_t per_node = nodes[0].size * 512 / chunk * chunk;
	if (per_node == 0) {
		snprintf(err, errlen, "alg_stripe: nodes are smaller than one chunk (%llu bytes)",
			 (unsigned long long)chunk);
		return 0;
	}
	return per_node * n;
}

static void stripe_map(const struct array_node *nodes, size_t n, uint64_t chunk, uint64_t off,
		       uint64_t len, struct alg_seg *seg)
{
	uint64_t k = off / chunk, in = off % chunk;
	seg->node = (size_t)(k % n);
	seg->node_off = (k / n) * chunk + in;
	seg->len = len < chunk - in ? len : chunk - in;
}

const struct alg_ops alg_stripe = {
    .name = "alg_stripe",
    .layout = stripe_layout,
    .map = stripe_map,
    .can_grow = false,
    .min_nodes = 1,
};
