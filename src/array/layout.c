/* layout.c - the one check of a storage's layout, for `dst add` (before a
 * node goes into the config) and dstd (before a storage starts or grows):
 * what one refuses the other refuses, with the same words. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "common/util.h"

static int cmp_start(const void *x, const void *y)
{
	const struct array_node *a = x, *b = y;
	return a->start < b->start ? -1 : a->start > b->start;
}

uint64_t array_layout_check(const struct alg_ops *alg, const struct array_node *nodes, size_t n,
			    const struct alg_geom *geo, bool partial, char *err, size_t errlen)
{
	/* Offsets are bytes in 64 bits: every node must end below 2^64 bytes
	 * (a start near 2^64 sectors would wrap around to sector 0). */
	for (size_t i = 0; i < n; i++) {
		uint64_t s = nodes[i].start, z = nodes[i].size;
		if (z > UINT64_MAX / 512 || s > UINT64_MAX / 512 - z) {
			snprintf(err, errlen,
				 "node %s: sectors %llu+%llu end past 2^64 bytes, the largest "
				 "device there can be",
				 nodes[i].name, (unsigned long long)s, (unsigned long long)z);
			return 0;
		}
	}
	/* A storage being built may have fewer nodes than it needs to start
	 * (a mirror's first leg, a parity storage's first K+M-1 nodes): check
	 * the ones it has, each as if the missing ones were like the first. */
	size_t m = n, need = geo->data ? geo->data + geo->parity : alg->min_nodes;
	if (partial && n > 0 && n < need)
		m = need;
	struct array_node *sorted = xcalloc(m ? m : 1, sizeof(*sorted));
	memcpy(sorted, nodes, n * sizeof(*sorted));
	for (size_t i = n; i < m; i++)
		sorted[i] = nodes[0];
	qsort(sorted, m, sizeof(*sorted), cmp_start);
	uint64_t size = alg->layout(sorted, m, geo, err, errlen);
	free(sorted);
	return size;
}
