/* test_array_map.c - the algorithms as pure functions (layout and map, checked
 * against simple reference models), alg_find, and node config lines. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "array/array.h"
#include "array/nodeconf.h"
#include "common/util.h"
#include "unit.h"

#define KiB (1024ull)
#define MiB (1024ull * KiB)

/* xorshift64*: deterministic, so a failure reproduces. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void)
{
	uint64_t x = rng_state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return x * 0x2545F4914F6CDD1Dull;
}
/* Uniform-ish in [lo, hi]. */
static uint64_t rnd_range(uint64_t lo, uint64_t hi)
{
	return lo + rnd() % (hi - lo + 1);
}

/* Nodes laid end to end from sector 0, named as dst names them. */
static void make_nodes(struct array_node *nodes, size_t n, const uint64_t *sizes)
{
	uint64_t start = 0;
	memset(nodes, 0, n * sizeof(*nodes));
	for (size_t i = 0; i < n; i++) {
		nodes[i].start = start;
		nodes[i].size = sizes[i];
		node_conf_name(start, nodes[i].name, sizeof(nodes[i].name));
		start += sizes[i];
	}
}

static uint64_t layout(const struct alg_ops *alg, const struct array_node *nodes, size_t n,
		       uint64_t chunk, char *err, size_t errlen)
{
	err[0] = '\0';
	return alg->layout(nodes, n, &(struct alg_geom){.chunk = chunk}, err, errlen);
}

/* ---- alg_find ---- */

TEST(find_names)
{
	CHECK(alg_find("linear") == &alg_linear);
	CHECK(alg_find("alg_linear") == &alg_linear);
	CHECK(alg_find("stripe") == &alg_stripe);
	CHECK(alg_find("alg_stripe") == &alg_stripe);
	CHECK(alg_find("mirror") == &alg_mirror);
	CHECK(alg_find("alg_mirror") == &alg_mirror);
	static const char *unknown[] = {"",	   "Mirror",	  "alg_mirror1", "Linear",
					"LINEAR",  "alg_",	  "alg_linearx", "linear ",
					" stripe", "alg_stripe2", "raid0"};
	for (size_t i = 0; i < ARRAY_SIZE(unknown); i++)
		CHECK(alg_find(unknown[i]) == NULL);
	CHECK_STR(alg_linear.name, "alg_linear");
	CHECK_STR(alg_stripe.name, "alg_stripe");
	CHECK(alg_linear.can_grow);
	CHECK(!alg_stripe.can_grow);
	CHECK(!alg_mirror.can_grow);
	CHECK_STR(alg_mirror.name, "alg_mirror");
	CHECK(alg_linear.layout && alg_linear.map && alg_stripe.layout && alg_stripe.map);
}

/* ---- alg_linear.layout ---- */

TEST(linear_layout_ok)
{
	struct array_node nodes[4];
	char err[256];
	uint64_t sizes[] = {800, 800, 1, 12345};
	make_nodes(nodes, 4, sizes);
	CHECK_EQ(layout(&alg_linear, nodes, 4, 0, err, sizeof(err)), (800 + 800 + 1 + 12345) * 512);
	CHECK_STR(err, "");
	CHECK_EQ(layout(&alg_linear, nodes, 1, 0, err, sizeof(err)), 800 * 512);
	/* The chunk is irrelevant to linear. */
	CHECK_EQ(layout(&alg_linear, nodes, 2, 12345, err, sizeof(err)), 1600 * 512);
	/* Big nodes: sizes in sectors times 512 must not be truncated. */
	uint64_t big[] = {1ull << 40, 1ull << 40}; /* 2 x 512 TiB */
	make_nodes(nodes, 2, big);
	CHECK_EQ(layout(&alg_linear, nodes, 2, 0, err, sizeof(err)), (2ull << 40) * 512);
}

TEST(linear_layout_gap)
{
	struct array_node nodes[3];
	char err[256];
	uint64_t sizes[] = {800, 800, 800};
	make_nodes(nodes, 3, sizes);
	/* A hole of 100 sectors between n-800's end (1600) and the third node. */
	nodes[2].start = 1700;
	node_conf_name(1700, nodes[2].name, sizeof(nodes[2].name));
	CHECK_EQ(layout(&alg_linear, nodes, 3, 0, err, sizeof(err)), 0);
	CHECK(strstr(err, "gap") != NULL);
	CHECK(strstr(err, "1600") != NULL);
	CHECK(strstr(err, "1700") != NULL);
	CHECK(strstr(err, "n-1700") != NULL);
	/* The first node not at 0 is a gap too. */
	make_nodes(nodes, 1, sizes);
	nodes[0].start = 8;
	snprintf(nodes[0].name, sizeof(nodes[0].name), "n-8");
	CHECK_EQ(layout(&alg_linear, nodes, 1, 0, err, sizeof(err)), 0);
	CHECK(strstr(err, "gap") != NULL);
	CHECK(strstr(err, "sector 0 ") != NULL);
	CHECK(strstr(err, "n-8") != NULL);
}

TEST(linear_layout_overlap)
{
	struct array_node nodes[3];
	char err[256];
	uint64_t sizes[] = {800, 800, 800};
	make_nodes(nodes, 3, sizes);
	nodes[1].start = 799; /* one sector over n-0 */
	snprintf(nodes[1].name, sizeof(nodes[1].name), "n-799");
	nodes[2].start = 1599;
	snprintf(nodes[2].name, sizeof(nodes[2].name), "n-1599");
	CHECK_EQ(layout(&alg_linear, nodes, 3, 0, err, sizeof(err)), 0);
	CHECK(strstr(err, "overlap") != NULL);
	CHECK(strstr(err, "n-799") != NULL);
	CHECK(strstr(err, "799-1598") != NULL); /* the node's own sectors */
	CHECK(strstr(err, "799)") != NULL);	/* where the one before ends */
	/* Two nodes at the same start. */
	make_nodes(nodes, 2, sizes);
	nodes[1].start = 0;
	CHECK_EQ(layout(&alg_linear, nodes, 2, 0, err, sizeof(err)), 0);
	CHECK(strstr(err, "overlap") != NULL);
}

TEST(linear_layout_empty)
{
	struct array_node nodes[3] = {0};
	char err[256];
	CHECK_EQ(layout(&alg_linear, nodes, 0, 0, err, sizeof(err)), 0);
	CHECK(strstr(err, "no nodes") != NULL);
	uint64_t sizes[] = {800, 0, 800};
	make_nodes(nodes, 3, sizes);
	CHECK_EQ(layout(&alg_linear, nodes, 3, 0, err, sizeof(err)), 0);
	CHECK(strstr(err, "n-800") != NULL);
	CHECK(strstr(err, "size 0") != NULL);
	/* A zero-size first node too. */
	sizes[0] = 0;
	make_nodes(nodes, 1, sizes);
	CHECK_EQ(layout(&alg_linear, nodes, 1, 0, err, sizeof(err)), 0);
	CHECK(strstr(err, "size 0") != NULL);
	/* A tiny err buffer is truncated, not overrun. */
	char tiny[8];
	memset(tiny, 'x', sizeof(tiny));
	CHECK_EQ(alg_linear.layout(nodes, 0, 0, tiny, 5), 0);
	CHECK_EQ(strlen(tiny), 4);
	CHECK_EQ(tiny[5], 'x');
}

/* ---- alg_linear.map ---- */

/* The reference: walk the nodes in order. */
static void linear_ref(const struct array_node *nodes, size_t n, uint64_t off, uint64_t len,
		       struct alg_seg *seg)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t s = nodes[i].start * 512, e = s + nodes[i].size * 512;
		if (off >= s && off < e) {
			seg->node = i;
			seg->node_off = off - s;
			seg->len = MIN(len, e - off);
			return;
		}
	}
	seg->node = SIZE_MAX;
}

static bool seg_eq(const struct alg_seg *a, const struct alg_seg *b)
{
	return a->node == b->node && a->node_off == b->node_off && a->len == b->len;
}

/* Split [off, off+len) the way the core does and check every piece. */
static int split_check(const struct alg_ops *alg, const struct array_node *nodes, size_t n,
		       uint64_t chunk, uint64_t off, uint64_t len,
		       void (*ref)(const struct array_node *, size_t, uint64_t, uint64_t, uint64_t,
				   struct alg_seg *))
{
	int bad = 0;
	while (len) {
		struct alg_seg got, want;
		alg->map(nodes, n, chunk, off, len, &got);
		ref(nodes, n, chunk, off, len, &want);
		if (!seg_eq(&got, &want) || got.len == 0 || got.len > len) {
			if (bad++ < 5)
				fprintf(stderr,
					"%s n=%zu chunk=%llu off=%llu len=%llu: got node %zu off "
					"%llu len %llu, want node %zu off %llu len %llu\n",
					alg->name, n, (unsigned long long)chunk,
					(unsigned long long)off, (unsigned long long)len, got.node,
					(unsigned long long)got.node_off,
					(unsigned long long)got.len, want.node,
					(unsigned long long)want.node_off,
					(unsigned long long)want.len);
			if (got.len == 0 || got.len > len)
				return bad;
		}
		off += got.len;
		len -= got.len;
	}
	return bad;
}

static void linear_ref3(const struct array_node *nodes, size_t n, uint64_t chunk, uint64_t off,
			uint64_t len, struct alg_seg *seg)
{
	linear_ref(nodes, n, off, len, seg);
}

TEST(linear_map_every_byte)
{
	/* Small nodes (1, 2, 3, 1 sectors): every byte offset, to the end and
	 * for a handful of lengths. */
	struct array_node nodes[4];
	uint64_t sizes[] = {1, 2, 3, 1};
	make_nodes(nodes, 4, sizes);
	uint64_t total = 7 * 512;
	int bad = 0;
	for (uint64_t off = 0; off < total; off++) {
		struct alg_seg seg;
		alg_linear.map(nodes, 4, 0, off, total - off, &seg);
		/* Which node by hand: sectors 0 | 1-2 | 3-5 | 6. */
		uint64_t sec = off / 512;
		size_t want = sec < 1 ? 0 : sec < 3 ? 1 : sec < 6 ? 2 : 3;
		uint64_t nstart = nodes[want].start * 512, nend = nstart + nodes[want].size * 512;
		if (seg.node != want || seg.node_off != off - nstart || seg.len != nend - off)
			bad++;
		/* Length 1 is never clipped. */
		alg_linear.map(nodes, 4, 0, off, 1, &seg);
		if (seg.node != want || seg.node_off != off - nstart || seg.len != 1)
			bad++;
		/* Ending exactly at the node's end is not clipped; one more is. */
		alg_linear.map(nodes, 4, 0, off, nend - off, &seg);
		if (seg.len != nend - off)
			bad++;
		if (off + (nend - off) + 1 <= total) {
			alg_linear.map(nodes, 4, 0, off, nend - off + 1, &seg);
			if (seg.len != nend - off)
				bad++;
		}
		for (uint64_t len = 1; len <= total - off; len += 97)
			bad += split_check(&alg_linear, nodes, 4, 0, off, len, linear_ref3);
	}
	CHECK_EQ(bad, 0);
}

TEST(linear_map_boundaries)
{
	struct array_node nodes[3];
	uint64_t sizes[] = {800, 2048, 1};
	make_nodes(nodes, 3, sizes);
	struct alg_seg seg;
	/* Last byte of n-0. */
	alg_linear.map(nodes, 3, 0, 800 * 512 - 1, 4096, &seg);
	CHECK_EQ(seg.node, 0);
	CHECK_EQ(seg.node_off, 800 * 512 - 1);
	CHECK_EQ(seg.len, 1);
	/* First byte of n-800. */
	alg_linear.map(nodes, 3, 0, 800 * 512, 4096, &seg);
	CHECK_EQ(seg.node, 1);
	CHECK_EQ(seg.node_off, 0);
	CHECK_EQ(seg.len, 4096);
	/* A long request from inside n-800 clips at its end. */
	alg_linear.map(nodes, 3, 0, 1000 * 512 + 3, 1ull << 40, &seg);
	CHECK_EQ(seg.node, 1);
	CHECK_EQ(seg.node_off, 200 * 512 + 3);
	CHECK_EQ(seg.len, (2848 - 1000) * 512 - 3);
	/* The one-sector last node. */
	alg_linear.map(nodes, 3, 0, 2848 * 512 + 511, 1, &seg);
	CHECK_EQ(seg.node, 2);
	CHECK_EQ(seg.node_off, 511);
	CHECK_EQ(seg.len, 1);
	/* Nodes given out of start order are not this function's business
	 * (array_new sorts); a single node maps straight through. */
	alg_linear.map(nodes, 1, 0, 12345, 100, &seg);
	CHECK_EQ(seg.node, 0);
	CHECK_EQ(seg.node_off, 12345);
	CHECK_EQ(seg.len, 100);
}

TEST(linear_map_random)
{
	/* 1..8 nodes of random sizes (1 sector .. 64 MiB), random ranges
	 * including whole-device ones. */
	int bad = 0;
	for (int round = 0; round < 400; round++) {
		size_t n = (size_t)rnd_range(1, 8);
		struct array_node nodes[8];
		uint64_t sizes[8];
		for (size_t i = 0; i < n; i++)
			sizes[i] = rnd() % 4 == 0 ? rnd_range(1, 8) : rnd_range(1, 131072);
		make_nodes(nodes, n, sizes);
		char err[256];
		uint64_t total = layout(&alg_linear, nodes, n, 0, err, sizeof(err));
		if (!total) {
			bad++;
			continue;
		}
		for (int k = 0; k < 200; k++) {
			uint64_t off = rnd() % total;
			uint64_t len;
			switch (rnd() % 4) {
			case 0: len = total - off; break;
			case 1: len = rnd_range(1, MIN(4096, total - off)); break;
			default: len = rnd_range(1, total - off); break;
			}
			bad += split_check(&alg_linear, nodes, n, 0, off, len, linear_ref3);
		}
		/* Whole device in one go: every node once, in order, whole. */
		uint64_t off = 0;
		for (size_t i = 0; i < n; i++) {
			struct alg_seg seg;
			alg_linear.map(nodes, n, 0, off, total - off, &seg);
			if (seg.node != i || seg.node_off != 0 || seg.len != sizes[i] * 512)
				bad++;
			off += seg.len;
		}
	}
	CHECK_EQ(bad, 0);
}

/* ---- alg_stripe.layout ---- */

TEST(stripe_layout)
{
	struct array_node nodes[6];
	char err[256];
	uint64_t sizes[] = {2048, 2048, 2048, 2048, 2048, 2048};
	make_nodes(nodes, 6, sizes);
	/* 1 MiB nodes, 64K chunks: n * 1 MiB. */
	for (size_t n = 1; n <= 6; n++) {
		CHECK_EQ(layout(&alg_stripe, nodes, n, 64 * KiB, err, sizeof(err)), n * MiB);
		CHECK_STR(err, "");
	}
	/* Node bytes are rounded down to whole chunks: 1 MiB + 100 sectors
	 * is 16 chunks of 64K plus a tail nobody uses. */
	uint64_t odd[] = {2148, 2148, 2148};
	make_nodes(nodes, 3, odd);
	CHECK_EQ(layout(&alg_stripe, nodes, 3, 64 * KiB, err, sizeof(err)), 3 * MiB);
	CHECK_EQ(layout(&alg_stripe, nodes, 3, 4 * KiB, err, sizeof(err)),
		 3 * (2148 * 512 / 4096 * 4096));
	/* Sweep: size = n * (node bytes rounded down to the chunk). */
	for (int round = 0; round < 200; round++) {
		size_t n = (size_t)rnd_range(1, 6);
		uint64_t chunk = 4096ull << rnd_range(0, 8);
		uint64_t s = rnd_range(chunk / 512, 65536);
		uint64_t ss[6] = {s, s, s, s, s, s};
		make_nodes(nodes, n, ss);
		CHECK_EQ(layout(&alg_stripe, nodes, n, chunk, err, sizeof(err)),
			 n * (s * 512 / chunk * chunk));
	}
}

TEST(stripe_layout_refused)
{
	struct array_node nodes[3] = {0};
	char err[256];
	uint64_t sizes[] = {2048, 2048, 2040};
	make_nodes(nodes, 3, sizes);
	CHECK_EQ(layout(&alg_stripe, nodes, 3, 64 * KiB, err, sizeof(err)), 0);
	CHECK(strstr(err, "equal size") != NULL);
	CHECK(strstr(err, "n-4096") != NULL); /* the odd one out */
	CHECK(strstr(err, "2040") != NULL);
	CHECK(strstr(err, "2048") != NULL);
	/* The first two alone are fine. */
	CHECK_EQ(layout(&alg_stripe, nodes, 2, 64 * KiB, err, sizeof(err)), 2 * MiB);

	/* Chunks that are not a power of two, or below 4K. */
	static const uint64_t bad_chunks[] = {
	    0, 1, 512, 2048, 3000, 4095, 4097, 12288, 65535, (64 * KiB) + 4096, 3 * MiB};
	for (size_t i = 0; i < ARRAY_SIZE(bad_chunks); i++) {
		CHECK_EQ(layout(&alg_stripe, nodes, 2, bad_chunks[i], err, sizeof(err)), 0);
		CHECK(strstr(err, "power of two") != NULL);
		char num[32];
		snprintf(num, sizeof(num), "%llu", (unsigned long long)bad_chunks[i]);
		CHECK(strstr(err, num) != NULL);
	}
	/* No nodes; nodes smaller than one chunk. */
	CHECK_EQ(layout(&alg_stripe, nodes, 0, 64 * KiB, err, sizeof(err)), 0);
	CHECK(strstr(err, "no nodes") != NULL);
	uint64_t small[] = {127, 127};
	make_nodes(nodes, 2, small);
	CHECK_EQ(layout(&alg_stripe, nodes, 2, 64 * KiB, err, sizeof(err)), 0);
	CHECK(strstr(err, "smaller than one chunk") != NULL);
	uint64_t zero[] = {0, 0};
	make_nodes(nodes, 2, zero);
	CHECK_EQ(layout(&alg_stripe, nodes, 2, 4096, err, sizeof(err)), 0);
	CHECK(err[0] != '\0');
}

/* ---- alg_stripe.map ---- */

static void stripe_ref(const struct array_node *nodes, size_t n, uint64_t chunk, uint64_t off,
		       uint64_t len, struct alg_seg *seg)
{
	uint64_t k = off / chunk, in = off - k * chunk;
	seg->node = (size_t)(k % n);
	seg->node_off = (k / n) * chunk + in;
	seg->len = MIN(len, chunk - in);
}

TEST(stripe_map_sweep)
{
	int bad = 0;
	for (size_t n = 1; n <= 6; n++) {
		for (uint64_t chunk = 4 * KiB; chunk <= MiB; chunk *= 2) {
			struct array_node nodes[6];
			/* 8 chunks and one sector per node. */
			uint64_t s = (8 * chunk + 512) / 512;
			uint64_t ss[6] = {s, s, s, s, s, s};
			make_nodes(nodes, n, ss);
			char err[256];
			uint64_t total = layout(&alg_stripe, nodes, n, chunk, err, sizeof(err));
			if (total != n * 8 * chunk) {
				bad++;
				continue;
			}
			/* Every chunk boundary, +-1 byte, and random ranges. */
			for (uint64_t k = 0; k < total / chunk; k++) {
				uint64_t b = k * chunk;
				bad += split_check(&alg_stripe, nodes, n, chunk, b, total - b,
						   stripe_ref);
				if (b)
					bad += split_check(&alg_stripe, nodes, n, chunk, b - 1, 2,
							   stripe_ref);
				bad += split_check(&alg_stripe, nodes, n, chunk, b + 1, chunk,
						   stripe_ref);
			}
			for (int i = 0; i < 300; i++) {
				uint64_t off = rnd() % total;
				uint64_t len = rnd() % 2
						   ? rnd_range(1, total - off)
						   : rnd_range(1, MIN(3 * chunk, total - off));
				bad +=
				    split_check(&alg_stripe, nodes, n, chunk, off, len, stripe_ref);
			}
			/* The whole device maps onto each node's first total/n bytes
			 * exactly once, and no segment crosses a chunk. */
			uint64_t per = total / n;
			uint8_t *seen = calloc(n, per / 4096);
			uint64_t off = 0;
			while (off < total) {
				struct alg_seg seg;
				alg_stripe.map(nodes, n, chunk, off, total - off, &seg);
				if (seg.len == 0 || seg.node >= n || seg.node_off + seg.len > per ||
				    off / chunk != (off + seg.len - 1) / chunk) {
					bad++;
					break;
				}
				for (uint64_t p = seg.node_off; p < seg.node_off + seg.len;
				     p += 4096)
					seen[seg.node * (per / 4096) + p / 4096]++;
				off += seg.len;
			}
			for (uint64_t i = 0; i < n * (per / 4096); i++)
				if (seen[i] != 1)
					bad++;
			free(seen);
		}
	}
	CHECK_EQ(bad, 0);
}

TEST(stripe_map_examples)
{
	struct array_node nodes[3];
	uint64_t ss[3] = {2048, 2048, 2048};
	make_nodes(nodes, 3, ss);
	struct alg_seg seg;
	uint64_t c = 64 * KiB;
	/* Chunk 0 -> n-0 at 0; chunk 1 -> n-2048 at 0; chunk 3 -> n-0 at 64K. */
	alg_stripe.map(nodes, 3, c, 10, 1 * MiB, &seg);
	CHECK_EQ(seg.node, 0);
	CHECK_EQ(seg.node_off, 10);
	CHECK_EQ(seg.len, c - 10);
	alg_stripe.map(nodes, 3, c, c, 100, &seg);
	CHECK_EQ(seg.node, 1);
	CHECK_EQ(seg.node_off, 0);
	CHECK_EQ(seg.len, 100);
	alg_stripe.map(nodes, 3, c, 3 * c + 5, c, &seg);
	CHECK_EQ(seg.node, 0);
	CHECK_EQ(seg.node_off, c + 5);
	CHECK_EQ(seg.len, c - 5);
	alg_stripe.map(nodes, 3, c, 3 * MiB - 1, 1, &seg);
	CHECK_EQ(seg.node, 2);
	CHECK_EQ(seg.node_off, MiB - 1);
	CHECK_EQ(seg.len, 1);
}

/* ---- node config lines ---- */

static bool parse_fails(const char *line, const char *needle)
{
	struct node_conf nc;
	char err[512] = "";
	int rc = node_conf_parse(line, &nc, err, sizeof(err));
	bool ok = rc == -EINVAL && strstr(err, needle) != NULL && nc.spec == NULL;
	if (!ok)
		fprintf(stderr,
			"node_conf_parse(\"%s\") = %d \"%s\", expected -EINVAL with \"%s\"\n", line,
			rc, err, needle);
	if (rc == 0)
		node_conf_free(&nc);
	return ok;
}

TEST(nodeconf_parse)
{
	struct node_conf nc;
	char err[256] = "";
	CHECK_EQ(
	    node_conf_parse("remote start=800 size=800 nbd://kano:1025/", &nc, err, sizeof(err)),
	    0);
	CHECK(nc.remote);
	CHECK_EQ(nc.start, 800);
	CHECK_EQ(nc.size, 800);
	CHECK_STR(nc.spec, "nbd://kano:1025/");
	node_conf_free(&nc);
	CHECK(nc.spec == NULL);
	node_conf_free(&nc); /* twice is harmless */

	CHECK_EQ(node_conf_parse("disk start=0 size=800 /srv/disk0.img", &nc, err, sizeof(err)), 0);
	CHECK(!nc.remote);
	CHECK_EQ(nc.start, 0);
	CHECK_STR(nc.spec, "/srv/disk0.img");
	node_conf_free(&nc);

	/* size is optional (0 = whatever the node has), keys in any order,
	 * tabs and runs of blanks between fields. */
	CHECK_EQ(node_conf_parse("disk\tsize=16  start=4096\t \tmem:1G", &nc, err, sizeof(err)), 0);
	CHECK_EQ(nc.start, 4096);
	CHECK_EQ(nc.size, 16);
	CHECK_STR(nc.spec, "mem:1G");
	node_conf_free(&nc);
	CHECK_EQ(node_conf_parse("remote start=7 nbd+unix:///?socket=/tmp/a.sock", &nc, err,
				 sizeof(err)),
		 0);
	CHECK_EQ(nc.start, 7);
	CHECK_EQ(nc.size, 0);
	CHECK_STR(nc.spec, "nbd+unix:///?socket=/tmp/a.sock");
	node_conf_free(&nc);
	/* The largest sector numbers. */
	CHECK_EQ(
	    node_conf_parse("disk start=18446744073709551615 size=1 /x", &nc, err, sizeof(err)), 0);
	CHECK_EQ(nc.start, UINT64_MAX);
	node_conf_free(&nc);
	/* A labelled node: its label's offset and its disk id. */
	CHECK_EQ(node_conf_parse("disk start=0 size=2040 label=1044480 "
				 "id=00112233445566778899aabbccddeeff /srv/d.img",
				 &nc, err, sizeof(err)),
		 0);
	CHECK_EQ(nc.label, 1044480);
	CHECK(nc.id[0] == 0x00 && nc.id[1] == 0x11 && nc.id[15] == 0xff);
	CHECK_STR(nc.spec, "/srv/d.img");
	char *again = node_conf_format(&nc);
	CHECK_STR(again, "disk start=0 size=2040 label=1044480 id=00112233445566778899aabbccddeeff "
			 "/srv/d.img");
	free(again);
	node_conf_free(&nc);
}

TEST(nodeconf_spaces)
{
	/* The spec comes last, so it may hold spaces, tabs and '='. */
	struct node_conf nc;
	char err[256];
	CHECK_EQ(
	    node_conf_parse("disk start=0 size=8 /srv/my disks/disk 0.img", &nc, err, sizeof(err)),
	    0);
	CHECK_STR(nc.spec, "/srv/my disks/disk 0.img");
	node_conf_free(&nc);
	CHECK_EQ(node_conf_parse("disk start=0 /a\tb/size=3 c", &nc, err, sizeof(err)), 0);
	CHECK_STR(nc.spec, "/a\tb/size=3 c");
	CHECK_EQ(nc.size, 0);
	node_conf_free(&nc);
}

TEST(nodeconf_round_trip)
{
	static const struct node_conf cases[] = {
	    {true, 800, 800, "nbd://kano:1025/", 0, {0}},
	    {false, 0, 800, "/srv/disk0.img", 0, {0}},
	    {false, 0, 0, "mem:64M", 0, {0}},
	    {false, 123456789012ull, 1, "/path with  two  spaces/and\ttab", 0, {0}},
	    {true, 1, UINT64_MAX, "nbd+unix:///export?socket=/run/dst/a b.sock", 0, {0}},
	    {false, UINT64_MAX, UINT64_MAX, "/=/start=5", 0, {0}},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char *line = node_conf_format(&cases[i]);
		struct node_conf nc;
		char err[256] = "";
		CHECK_EQ(node_conf_parse(line, &nc, err, sizeof(err)), 0);
		CHECK_EQ(nc.remote, cases[i].remote);
		CHECK_EQ(nc.start, cases[i].start);
		CHECK(nc.size == cases[i].size);
		CHECK_STR(nc.spec, cases[i].spec);
		/* And formatting the parsed one gives the same line. */
		char *again = node_conf_format(&nc);
		CHECK_STR(again, line);
		free(again);
		free(line);
		node_conf_free(&nc);
	}
	char *line = node_conf_format(&cases[0]);
	CHECK_STR(line, "remote start=800 size=800 nbd://kano:1025/");
	free(line);
	line = node_conf_format(&cases[1]);
	CHECK_STR(line, "disk start=0 size=800 /srv/disk0.img");
	free(line);
}

TEST(nodeconf_errors)
{
	/* Unknown or missing kind. */
	CHECK(parse_fails("local start=0 /x", "expected 'remote' or 'disk'"));
	CHECK(parse_fails("disks start=0 /x", "expected 'remote' or 'disk'"));
	CHECK(parse_fails("remot start=0 nbd://a", "expected 'remote' or 'disk'"));
	CHECK(parse_fails("REMOTE start=0 nbd://a", "expected 'remote' or 'disk'"));
	CHECK(parse_fails("", "expected 'remote' or 'disk'"));
	CHECK(parse_fails("start=0 /x", "expected 'remote' or 'disk'"));
	/* Missing start. */
	CHECK(parse_fails("disk size=8 /x", "missing start=SECTOR"));
	CHECK(parse_fails("remote nbd://kano:1025", "missing start=SECTOR"));
	/* Missing spec. */
	CHECK(parse_fails("disk start=0 size=8", "missing the disk path"));
	CHECK(parse_fails("remote start=0   ", "missing the URI"));
	CHECK(parse_fails("disk", "missing the disk path"));
	/* Bad numbers, named with the key. */
	CHECK(parse_fails("disk start=abc /x", "start 'abc' is not a number"));
	CHECK(parse_fails("disk start=0 size=-1 /x", "size '-1' is not a number"));
	CHECK(parse_fails("disk start=12k /x", "start '12k' is not a number"));
	CHECK(parse_fails("disk start=0 size=0x10 /x", "size '0x10' is not a number"));
	CHECK(parse_fails("disk start=18446744073709551616 /x", "is not a number"));
	CHECK(parse_fails("disk start= /x", "bad start"));
	CHECK(parse_fails("disk start=0 size= /x", "bad size"));
	CHECK(parse_fails("disk start=000000000000000000000000000000000000001 /x", "bad start"));
	/* Labels: an offset in whole 4 KiB blocks, with the disk id. */
	CHECK(parse_fails("disk start=0 label=4096 /x", "label= and id= go together"));
	CHECK(parse_fails("disk start=0 id=00112233445566778899aabbccddeeff /x",
			  "label= and id= go together"));
	CHECK(parse_fails("disk start=0 label=4000 id=00112233445566778899aabbccddeeff /x",
			  "not a positive multiple of 4096"));
	CHECK(parse_fails("disk start=0 label=0 id=00112233445566778899aabbccddeeff /x",
			  "not a positive multiple of 4096"));
	CHECK(parse_fails("disk start=0 label=4096 id=0011 /x", "is not 32 hex digits"));
	CHECK(parse_fails("disk start=0 label=4096 id=00112233445566778899aabbccddeefg /x",
			  "is not 32 hex digits"));
	CHECK(parse_fails("disk start=0 label=x id=00112233445566778899aabbccddeeff /x",
			  "label 'x' is not a number of bytes"));
	/* The line is quoted in the message. */
	CHECK(parse_fails("disk start=x /srv/d.img", "node 'disk start=x /srv/d.img'"));
}

TEST(nodeconf_name)
{
	char b[32];
	node_conf_name(0, b, sizeof(b));
	CHECK_STR(b, "n-0");
	node_conf_name(800, b, sizeof(b));
	CHECK_STR(b, "n-800");
	node_conf_name(UINT64_MAX, b, sizeof(b));
	CHECK_STR(b, "n-18446744073709551615");
	/* It fits struct array_node's name. */
	struct array_node nd;
	CHECK(sizeof(nd.name) > strlen("n-18446744073709551615"));
	char small[4];
	node_conf_name(12345, small, sizeof(small));
	CHECK_STR(small, "n-1");
}

/* ---- array_layout_check: the one check for dst add and dstd ---- */

TEST(layout_check_wrap)
{
	struct array_node nodes[2];
	uint64_t sizes[] = {800, 800};
	char err[256];
	make_nodes(nodes, 2, sizes);
	/* A start near 2^64 sectors would wrap around to sector 0. */
	nodes[1].start = UINT64_MAX - 100;
	node_conf_name(nodes[1].start, nodes[1].name, sizeof(nodes[1].name));
	CHECK_EQ(array_layout_check(&alg_linear, nodes, 2, &(struct alg_geom){.chunk = 0}, false,
				    err, sizeof(err)),
		 0);
	CHECK(strstr(err, "2^64") != NULL);
	CHECK(strstr(err, nodes[1].name) != NULL);
	/* In sectors it fits, in bytes it does not. */
	nodes[1].start = UINT64_MAX / 512 - 799;
	CHECK_EQ(array_layout_check(&alg_linear, nodes, 2, &(struct alg_geom){.chunk = 0}, true,
				    err, sizeof(err)),
		 0);
	CHECK(strstr(err, "2^64") != NULL);
	/* The last byte that can be: a gap then, not a wrap. */
	nodes[1].start = UINT64_MAX / 512 - 800;
	CHECK_EQ(array_layout_check(&alg_linear, nodes, 2, &(struct alg_geom){.chunk = 0}, true,
				    err, sizeof(err)),
		 0);
	CHECK(strstr(err, "gap") != NULL);
	/* A size alone too big for 64-bit bytes. */
	make_nodes(nodes, 1, sizes);
	nodes[0].size = UINT64_MAX / 256;
	CHECK_EQ(array_layout_check(&alg_stripe, nodes, 1, &(struct alg_geom){.chunk = 65536},
				    false, err, sizeof(err)),
		 0);
	CHECK(strstr(err, "2^64") != NULL);
}

TEST(layout_check_order_and_partial)
{
	struct array_node nodes[2];
	uint64_t sizes[] = {800, 1600};
	char err[256] = "";
	make_nodes(nodes, 2, sizes);
	/* Any order: the check sorts a copy, the caller's array is untouched. */
	struct array_node t = nodes[0];
	nodes[0] = nodes[1];
	nodes[1] = t;
	CHECK_EQ(array_layout_check(&alg_linear, nodes, 2, &(struct alg_geom){.chunk = 0}, false,
				    err, sizeof(err)),
		 2400 * 512);
	CHECK_EQ(nodes[0].start, 800);
	/* A mirror's first leg: fine while building, not to start. */
	make_nodes(nodes, 1, sizes);
	nodes[0].size = 16384;
	CHECK(array_layout_check(&alg_mirror, nodes, 1, &(struct alg_geom){.chunk = 0}, true, err,
				 sizeof(err)) > 0);
	CHECK_EQ(array_layout_check(&alg_mirror, nodes, 1, &(struct alg_geom){.chunk = 0}, false,
				    err, sizeof(err)),
		 0);
	CHECK(strstr(err, "at least 2 legs") != NULL);
	/* ... but a first leg too small for its header is refused either way. */
	nodes[0].size = 2;
	CHECK_EQ(array_layout_check(&alg_mirror, nodes, 1, &(struct alg_geom){.chunk = 0}, true,
				    err, sizeof(err)),
		 0);
	CHECK(strstr(err, "too small") != NULL);
	/* No nodes at all is never fine to start. */
	CHECK_EQ(array_layout_check(&alg_linear, nodes, 0, &(struct alg_geom){.chunk = 0}, false,
				    err, sizeof(err)),
		 0);
	CHECK(strstr(err, "no nodes") != NULL);
}

UNIT_MAIN(T(find_names), T(linear_layout_ok), T(linear_layout_gap), T(linear_layout_overlap),
	  T(linear_layout_empty), T(linear_map_every_byte), T(linear_map_boundaries),
	  T(linear_map_random), T(stripe_layout), T(stripe_layout_refused), T(stripe_map_sweep),
	  T(stripe_map_examples), T(nodeconf_parse), T(nodeconf_spaces), T(nodeconf_round_trip),
	  T(nodeconf_errors), T(nodeconf_name), T(layout_check_wrap),
	  T(layout_check_order_and_partial))
