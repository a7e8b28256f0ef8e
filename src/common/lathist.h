/* lathist.h - a latency histogram cheap enough for every request.
 *
 * Fixed log2-spaced buckets: bucket i counts latencies up to 2^i
 * microseconds (1 us .. ~16.8 s), the last one everything slower. Adding
 * one is a division by a constant, a count of leading zeros and an
 * increment: no lock, no allocation, so it can sit on the IO path. The
 * metrics exposition turns the buckets into a cumulative histogram.
 */
#ifndef DST_LATHIST_H
#define DST_LATHIST_H

#include <stdint.h>

#define LATHIST_FINITE	25u /* buckets with a bound: 1 us << 0 .. 1 us << 24 */
#define LATHIST_BUCKETS (LATHIST_FINITE + 1u)

struct lathist {
	uint64_t count[LATHIST_BUCKETS]; /* per bucket, not cumulative */
	uint64_t sum_ns;
};

/* Upper bound of bucket i < LATHIST_FINITE, in nanoseconds. */
static inline uint64_t lathist_bound_ns(unsigned i)
{
	return 1000ull << i;
}

static inline void lathist_add(struct lathist *h, uint64_t ns)
{
	unsigned i = 0;
	/* ns <= 1000 << i  <=>  (ns - 1) / 1000 < 1 << i */
	if (ns > 1000) {
		i = 64u - (unsigned)__builtin_clzll((ns - 1) / 1000);
		if (i > LATHIST_FINITE)
			i = LATHIST_FINITE;
	}
	h->count[i]++;
	h->sum_ns += ns;
}

static inline uint64_t lathist_total(const struct lathist *h)
{
	uint64_t n = 0;
	for (unsigned i = 0; i < LATHIST_BUCKETS; i++)
		n += h->count[i];
	return n;
}

/* into += from (a storage's NBD and FUSE frontends, summed). */
static inline void lathist_merge(struct lathist *into, const struct lathist *from)
{
	for (unsigned i = 0; i < LATHIST_BUCKETS; i++)
		into->count[i] += from->count[i];
	into->sum_ns += from->sum_ns;
}

#endif
