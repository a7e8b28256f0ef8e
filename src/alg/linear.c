/* linear.c - alg_linear: nodes concatenated in start order, no gaps, no
 * overlaps (dm-linear over several targets). */
#include <stdio.h>

#include "array/array.h"

static uint64_t linear_layout(const struct array_node *nodes, size_t n, const struct alg_geom *geo,
			      char *err, size_t errlen)
{
	uint64_t next = 0;
	if (n == 0) {
		snprintf(err, errlen, "alg_linear: no nodes; add one with dst add");
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		if (nodes[i].size == 0) {
			snprintf(err, errlen, "node %s: size 0", nodes[i].name);
			return 0;
		}
		if (nodes[i].start > next) {
			snprintf(err, errlen,
				 "alg_linear: gap between sector %llu and %llu: no node covers it "
				 "(next node %s starts at %llu)",
				 (unsigned long long)next, (unsigned long long)nodes[i].start,
				 nodes[i].name, (unsigned long long)nodes[i].start);
			return 0;
		}
		if (nodes[i].start < next) {
			snprintf(
			    err, errlen,
			    "alg_linear: node %s (sectors %llu-%llu) overlaps node %s (sectors "
			    "%llu-%llu)",
			    nodes[i].name, (unsigned long long)nodes[i].start,
			    (unsigned long long)(nodes[i].start + nodes[i].size - 1),
			    nodes[i - 1].name, (unsigned long long)nodes[i - 1].start,
			    (unsigned long long)next - 1);
			return 0;
		}
		next = nodes[i].start + nodes[i].size;
	}
	return next * 512;
}

static void linear_map(const struct array_node *nodes, size_t n, uint64_t chunk, uint64_t off,
		       uint64_t len, struct alg_seg *seg)
{
	/* Binary search for the node holding `off`: nodes are sorted. */
	size_t lo = 0, hi = n;
	while (hi - lo > 1) {
		size_t mid = (lo + hi) / 2;
		if (nodes[mid].start * 512 <= off)
			lo = mid;
		else
			hi = mid;
	}
	uint64_t nstart = nodes[lo].start * 512, nend = nstart + nodes[lo].size * 512;
	seg->node = lo;
	seg->node_off = off - nstart;
	seg->len = len < nend - off ? len : nend - off;
}

const struct alg_ops alg_linear = {
    .name = "alg_linear",
    .layout = linear_layout,
    .map = linear_map,
    .can_grow = true,
    .min_nodes = 1,
};
