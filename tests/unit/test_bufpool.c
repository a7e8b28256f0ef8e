/* test_bufpool.c - the buddy allocator behind the IO buffer budget: size
 * classes, splitting and merging, exhaustion, accounting, and a randomized
 * run checked against a model. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "common/bufpool.h"
#include "unit.h"

#define KiB (1024ull)
#define MiB (1024ull * KiB)
#define MIN ((size_t)1 << BUFPOOL_MIN_SHIFT)

/* The block size bufpool hands out for len: the next power of two >= 4 KiB. */
static size_t class_of(size_t len)
{
	size_t c = MIN;
	while (c < len)
		c <<= 1;
	return c;
}

static bool aligned_in(const struct bufpool *bp, const void *p, size_t block)
{
	const uint8_t *q = p;
	if (q < bp->base || q + block > bp->base + bp->size)
		return false;
	return ((size_t)(q - bp->base) % block) == 0;
}

TEST(bad_init_args)
{
	struct bufpool bp;
	CHECK_EQ(bufpool_init(&bp, 1 * MiB, 0), -EINVAL);		    /* max_block 0 */
	CHECK_EQ(bufpool_init(&bp, 1 * MiB, 3 * MIN), -EINVAL);		    /* not a power of two */
	CHECK_EQ(bufpool_init(&bp, 1 * MiB, 2 * KiB), -EINVAL);		    /* below 4 KiB */
	CHECK_EQ(bufpool_init(&bp, 64 * KiB, 128 * KiB), -EINVAL);	    /* size < max_block */
	CHECK_EQ(bufpool_init(&bp, 96 * KiB + 4 * KiB, 32 * KiB), -EINVAL); /* not a multiple */
	CHECK_EQ(bufpool_init(&bp, 0, 4 * KiB), -EINVAL);
	/* A failed init leaves a pool that fini accepts. */
	bufpool_fini(&bp);
	CHECK(bp.base == NULL);

	/* The smallest legal pool: one 4 KiB block. */
	CHECK_EQ(bufpool_init(&bp, MIN, MIN), 0);
	CHECK_EQ(bp.max_order, 0);
	void *p = bufpool_alloc(&bp, 1);
	CHECK(p != NULL);
	CHECK(bufpool_alloc(&bp, 1) == NULL);
	CHECK(bufpool_alloc(&bp, MIN + 1) == NULL);
	bufpool_free(&bp, p);
	bufpool_free(&bp, NULL); /* no-op */
	CHECK_EQ(bp.in_use, 0);
	bufpool_fini(&bp);
}

TEST(every_size_class)
{
	struct bufpool bp;
	size_t max = 1 * MiB;
	CHECK_EQ(bufpool_init(&bp, 4 * MiB, max), 0);
	CHECK_EQ(bp.max_order, 8);
	CHECK_EQ(bp.size, 4 * MiB);
	for (size_t c = MIN; c <= max; c <<= 1) {
		/* Exactly the class size, one byte over the previous one, 0 (as 1). */
		size_t lens[] = {c, c / 2 + 1, c == MIN ? 0 : c - 1, c == MIN ? 1 : c / 2 + 4096};
		for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
			size_t want = class_of(lens[i] ? lens[i] : 1);
			CHECK_EQ(want, c);
			CHECK(bufpool_can_alloc(&bp, lens[i]));
			uint8_t *p = bufpool_alloc(&bp, lens[i]);
			CHECK(p != NULL);
			if (!p)
				continue;
			CHECK(aligned_in(&bp, p, c));
			CHECK_EQ(bp.in_use, c);
			/* The whole block is ours to write. */
			memset(p, 0xa5, c);
			bufpool_free(&bp, p);
			CHECK_EQ(bp.in_use, 0);
		}
	}
	/* Larger than the largest block: never. */
	CHECK(!bufpool_can_alloc(&bp, max + 1));
	CHECK(bufpool_alloc(&bp, max + 1) == NULL);
	CHECK(bufpool_alloc(&bp, SIZE_MAX) == NULL);
	CHECK_EQ(bp.in_use, 0);
	bufpool_fini(&bp);
}

TEST(split_and_merge)
{
	struct bufpool bp;
	size_t max = 256 * KiB;
	CHECK_EQ(bufpool_init(&bp, max, max), 0); /* one max block: every split shows */
	size_t n = max / MIN;
	void **p = calloc(n, sizeof(*p));
	/* Break the only block into 4 KiB pieces. */
	for (size_t i = 0; i < n; i++) {
		p[i] = bufpool_alloc(&bp, MIN);
		CHECK(p[i] != NULL);
	}
	CHECK_EQ(bp.in_use, max);
	CHECK(bufpool_alloc(&bp, 1) == NULL);
	CHECK(!bufpool_can_alloc(&bp, 1));
	/* Every piece distinct and together they tile the region. */
	bool *seen = calloc(n, 1);
	for (size_t i = 0; i < n; i++) {
		if (!p[i])
			continue;
		CHECK(aligned_in(&bp, p[i], MIN));
		size_t idx = (size_t)((uint8_t *)p[i] - bp.base) / MIN;
		CHECK(!seen[idx]);
		seen[idx] = true;
	}
	/* Free every other one: no merging possible, max block still unavailable. */
	for (size_t i = 0; i < n; i += 2)
		bufpool_free(&bp, p[i]);
	CHECK(bufpool_can_alloc(&bp, MIN));
	CHECK(!bufpool_can_alloc(&bp, 2 * MIN));
	CHECK(bufpool_alloc(&bp, 2 * MIN) == NULL);
	/* Free the rest, in reverse: everything merges back into one max block. */
	for (size_t i = n - 1; i < n; i -= 2)
		bufpool_free(&bp, p[i]);
	CHECK_EQ(bp.in_use, 0);
	CHECK(bufpool_can_alloc(&bp, max));
	void *big = bufpool_alloc(&bp, max);
	CHECK(big == bp.base);
	bufpool_free(&bp, big);

	/* Mixed sizes: 4K, 8K, 16K ... then free in a scrambled order. */
	void *q[7];
	size_t total = 0;
	for (int i = 0; i < 6; i++) {
		q[i] = bufpool_alloc(&bp, MIN << i);
		CHECK(q[i] != NULL);
		total += MIN << i;
	}
	q[6] = bufpool_alloc(&bp, MIN); /* fills the last 4K hole: 4+4+8+...+128 = 256 */
	CHECK(q[6] != NULL);
	total += MIN;
	CHECK_EQ(total, max);
	CHECK_EQ(bp.in_use, max);
	CHECK(bufpool_alloc(&bp, 1) == NULL);
	int order[] = {3, 0, 6, 5, 1, 4, 2};
	for (int i = 0; i < 7; i++)
		bufpool_free(&bp, q[order[i]]);
	CHECK_EQ(bp.in_use, 0);
	big = bufpool_alloc(&bp, max);
	CHECK(big != NULL);
	bufpool_free(&bp, big);

	free(seen);
	free(p);
	bufpool_fini(&bp);
}

TEST(exhaustion_and_can_alloc)
{
	struct bufpool bp;
	size_t max = 64 * KiB, size = 4 * max;
	CHECK_EQ(bufpool_init(&bp, size, max), 0);
	void *big[4];
	for (int i = 0; i < 4; i++) {
		CHECK(bufpool_can_alloc(&bp, max));
		big[i] = bufpool_alloc(&bp, max);
		CHECK(big[i] != NULL);
	}
	for (size_t len = 0; len <= max; len = len ? len * 2 : 1) {
		CHECK(!bufpool_can_alloc(&bp, len));
		CHECK(bufpool_alloc(&bp, len) == NULL);
	}
	CHECK_EQ(bp.in_use, size);
	/* One max block back: everything up to max fits again, once. */
	bufpool_free(&bp, big[2]);
	CHECK(bufpool_can_alloc(&bp, max));
	CHECK(bufpool_can_alloc(&bp, 1));
	void *small = bufpool_alloc(&bp, 100);
	CHECK(small != NULL);
	CHECK(!bufpool_can_alloc(&bp, max));	/* split now */
	CHECK(bufpool_can_alloc(&bp, max / 2)); /* the upper half is free */
	CHECK(bufpool_alloc(&bp, max) == NULL);
	bufpool_free(&bp, small);
	CHECK(bufpool_can_alloc(&bp, max));
	bufpool_free(&bp, big[0]);
	bufpool_free(&bp, big[1]);
	bufpool_free(&bp, big[3]);
	CHECK_EQ(bp.in_use, 0);
	bufpool_fini(&bp);
}

TEST(accounting)
{
	struct bufpool bp;
	CHECK_EQ(bufpool_init(&bp, 1 * MiB, 256 * KiB), 0);
	CHECK_EQ(bp.in_use, 0);
	CHECK_EQ(bp.peak, 0);
	void *a = bufpool_alloc(&bp, 5000); /* 8 KiB */
	CHECK_EQ(bp.in_use, 8 * KiB);
	void *b = bufpool_alloc(&bp, 100 * KiB); /* 128 KiB */
	CHECK_EQ(bp.in_use, 136 * KiB);
	CHECK_EQ(bp.peak, 136 * KiB);
	bufpool_free(&bp, a);
	CHECK_EQ(bp.in_use, 128 * KiB);
	CHECK_EQ(bp.peak, 136 * KiB); /* peak stays */
	void *c = bufpool_alloc(&bp, 1);
	CHECK_EQ(bp.in_use, 132 * KiB);
	CHECK_EQ(bp.peak, 136 * KiB);
	void *d = bufpool_alloc(&bp, 256 * KiB);
	CHECK_EQ(bp.in_use, 388 * KiB);
	CHECK_EQ(bp.peak, 388 * KiB);
	bufpool_free(&bp, b);
	bufpool_free(&bp, c);
	bufpool_free(&bp, d);
	CHECK_EQ(bp.in_use, 0);
	CHECK_EQ(bp.peak, 388 * KiB);
	bufpool_fini(&bp);
}

/* ---- randomized, against a model ---- */

struct live {
	uint8_t *p;
	size_t block;
	uint8_t tag;
};

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
	/* xorshift64*: deterministic, so a failure reproduces. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ull;
}

/* Model: an owner map of the region in 4 KiB units. */
static void model_mark(uint16_t *owner, const struct bufpool *bp, const struct live *l, uint16_t id,
		       bool *overlap)
{
	size_t first = (size_t)(l->p - bp->base) / MIN;
	for (size_t i = 0; i < l->block / MIN; i++) {
		if (id && owner[first + i])
			*overlap = true;
		owner[first + i] = id;
	}
}

static void random_run(size_t size, size_t max, unsigned steps, uint64_t seed)
{
	struct bufpool bp;
	rng_state = seed;
	CHECK_EQ(bufpool_init(&bp, size, max), 0);
	size_t nmin = size / MIN;
	uint16_t *owner = calloc(nmin, sizeof(*owner));
	size_t cap = nmin; /* at most one live block per 4 KiB */
	struct live *live = calloc(cap, sizeof(*live));
	size_t nlive = 0, model_in_use = 0, model_peak = 0;
	unsigned bad = 0, fails = 0;
	for (unsigned s = 0; s < steps && bad < 5; s++) {
		bool do_alloc = nlive == 0 || (rnd() % 100) < 55;
		if (do_alloc) {
			/* Skewed to small sizes, sometimes the max, sometimes odd lengths. */
			unsigned shift = (unsigned)(rnd() % (bp.max_order + 1));
			size_t len = (MIN << shift) - (rnd() % 2 ? rnd() % (MIN << shift) / 2 : 0);
			bool can = bufpool_can_alloc(&bp, len);
			uint8_t *p = bufpool_alloc(&bp, len);
			if ((p != NULL) != can) {
				fprintf(stderr, "step %u: can_alloc(%zu)=%d but alloc gave %p\n", s,
					len, can, (void *)p);
				bad++;
			}
			if (!p) {
				fails++;
				/* NULL only if no free run of that class exists in the model:
				 * check no aligned block of the class is entirely free. */
				size_t block = class_of(len), per = block / MIN;
				for (size_t b = 0; b < nmin; b += per) {
					size_t k = 0;
					while (k < per && !owner[b + k])
						k++;
					if (k == per) {
						fprintf(stderr,
							"step %u: alloc(%zu) NULL with a free "
							"aligned block at %zu\n",
							s, len, b * MIN);
						bad++;
						break;
					}
				}
				continue;
			}
			struct live l = {.p = p, .block = class_of(len), .tag = (uint8_t)(s | 1)};
			if (!aligned_in(&bp, p, l.block)) {
				fprintf(stderr, "step %u: block %p (%zu) misaligned or outside\n",
					s, (void *)p, l.block);
				bad++;
				continue;
			}
			bool overlap = false;
			model_mark(owner, &bp, &l, (uint16_t)(nlive + 1), &overlap);
			if (overlap) {
				fprintf(stderr, "step %u: block at %zu overlaps a live one\n", s,
					(size_t)(p - bp.base));
				bad++;
			}
			for (size_t k = 0; k < l.block; k += 512) /* cheap stamp, checked on free */
				p[k] = l.tag;
			p[l.block - 1] = l.tag;
			live[nlive++] = l;
			model_in_use += l.block;
			if (model_in_use > model_peak)
				model_peak = model_in_use;
		} else {
			size_t i = (size_t)(rnd() % nlive);
			struct live l = live[i];
			/* Nobody wrote over it while it was live. */
			for (size_t k = 0; k <= l.block; k += 512)
				if (l.p[k < l.block ? k : l.block - 1] != l.tag) {
					fprintf(stderr, "step %u: block at %zu corrupted\n", s,
						(size_t)(l.p - bp.base));
					bad++;
					break;
				}
			bool dummy = false;
			model_mark(owner, &bp, &l, 0, &dummy);
			bufpool_free(&bp, l.p);
			model_in_use -= l.block;
			/* Keep owner ids equal to position+1: move the last one here. */
			live[i] = live[--nlive];
			if (i < nlive)
				model_mark(owner, &bp, &live[i], (uint16_t)(i + 1), &dummy);
		}
		if (bp.in_use != model_in_use || bp.peak != model_peak) {
			fprintf(stderr, "step %u: in_use %zu peak %zu, model %zu %zu\n", s,
				bp.in_use, bp.peak, model_in_use, model_peak);
			bad++;
		}
	}
	CHECK_EQ(bad, 0);
	CHECK(fails > 0); /* the run did reach exhaustion */
	/* Free everything: every max block is allocatable again. */
	while (nlive)
		bufpool_free(&bp, live[--nlive].p);
	CHECK_EQ(bp.in_use, 0);
	size_t nmax = size / max;
	void **big = calloc(nmax, sizeof(*big));
	for (size_t i = 0; i < nmax; i++) {
		big[i] = bufpool_alloc(&bp, max);
		CHECK(big[i] != NULL);
	}
	CHECK(bufpool_alloc(&bp, 1) == NULL);
	for (size_t i = 0; i < nmax; i++)
		bufpool_free(&bp, big[i]);
	free(big);
	free(live);
	free(owner);
	bufpool_fini(&bp);
}

TEST(random_small_pool)
{
	random_run(256 * KiB, 64 * KiB, 20000, 1);
}

TEST(random_one_block)
{
	random_run(512 * KiB, 512 * KiB, 20000, 42);
}

TEST(random_many_blocks)
{
	random_run(8 * MiB, 1 * MiB, 50000, 0xdeadbeef);
}

UNIT_MAIN(T(bad_init_args), T(every_size_class), T(split_and_merge), T(exhaustion_and_can_alloc),
	  T(accounting), T(random_small_pool), T(random_one_block), T(random_many_blocks))
