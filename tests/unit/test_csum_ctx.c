/* test_csum_ctx.c - the dst:csum-4k context's pure parts: the span a
 * request covers (odd offsets and lengths, the cap, a short last block),
 * sums over scattered memory, and the extents: runs merging, holes,
 * REQ_ONE, a first extent inside a block. */
#include <stdlib.h>
#include <string.h>

#include "common/crc32c.h"
#include "common/util.h"
#include "nbd/csum_ctx.h"
#include "unit.h"

#define B CSUM_CTX_BLOCK

struct ext {
	uint32_t len, status;
};

static uint32_t decode(const uint8_t *w, uint32_t n, struct ext *e)
{
	for (uint32_t i = 0; i < n; i++) {
		e[i].len = be32_read(w + 8 * i);
		e[i].status = be32_read(w + 8 * i + 4);
	}
	return n;
}

TEST(span)
{
	struct csum_span s;
	csum_ctx_span(0, 3 * B, 100 * B, &s);
	CHECK_EQ(s.off, 0);
	CHECK_EQ(s.end, 3 * B);
	CHECK_EQ(s.aoff, 0);
	CHECK_EQ(s.aend, 3 * B);
	CHECK_EQ(csum_ctx_blocks(&s), 3);
	/* Odd offset and length: whole blocks around it. */
	csum_ctx_span(B + 100, 2 * B, 100 * B, &s);
	CHECK_EQ(s.aoff, B);
	CHECK_EQ(s.end, 3 * B + 100);
	CHECK_EQ(s.aend, 4 * B);
	CHECK_EQ(csum_ctx_blocks(&s), 3);
	/* The device's short last block. */
	csum_ctx_span(8 * B, B + 10, 9 * B + 10, &s);
	CHECK_EQ(s.aend, 9 * B + 10);
	CHECK_EQ(csum_ctx_blocks(&s), 2);
	csum_ctx_span(9 * B + 3, 5, 9 * B + 10, &s);
	CHECK_EQ(s.aoff, 9 * B);
	CHECK_EQ(s.aend, 9 * B + 10);
	CHECK_EQ(csum_ctx_blocks(&s), 1);
	/* The cap, counted from the block the request starts in. */
	csum_ctx_span(0, 1u << 30, 1ull << 40, &s);
	CHECK_EQ(s.end, CSUM_CTX_CAP);
	CHECK_EQ(csum_ctx_blocks(&s), CSUM_CTX_MAX_EXT);
	csum_ctx_span(B - 1, 1u << 30, 1ull << 40, &s);
	CHECK_EQ(s.end, CSUM_CTX_CAP);
	CHECK_EQ(csum_ctx_blocks(&s), CSUM_CTX_MAX_EXT);
	csum_ctx_span(5 * B, 1u << 30, 1ull << 40, &s);
	CHECK_EQ(s.end, 5 * B + CSUM_CTX_CAP);
}

TEST(sum_iov)
{
	static uint8_t buf[5 * B + 123];
	srand(3);
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)rand();
	uint32_t want[6], got[6];
	CHECK_EQ(crc32c_blocks(buf, sizeof(buf), B, want), 6);
	/* One iovec, then cut at odd places (blocks straddle them). */
	struct iovec one = {buf, sizeof(buf)};
	CHECK_EQ(csum_ctx_sum_iov(&one, 1, sizeof(buf), got), 6);
	CHECK(memcmp(got, want, sizeof(want)) == 0);
	size_t cuts[][3] = {
	    {1, 2, 3}, {B - 1, B + 1, 3 * B}, {B, 2 * B, 4 * B + 7}, {100, 4 * B, 4 * B + 1}};
	for (size_t c = 0; c < ARRAY_SIZE(cuts); c++) {
		struct iovec v[4] = {{buf, cuts[c][0]},
				     {buf + cuts[c][0], cuts[c][1] - cuts[c][0]},
				     {buf + cuts[c][1], cuts[c][2] - cuts[c][1]},
				     {buf + cuts[c][2], sizeof(buf) - cuts[c][2]}};
		memset(got, 0, sizeof(got));
		CHECK_EQ(csum_ctx_sum_iov(v, 4, sizeof(buf), got), 6);
		CHECK(memcmp(got, want, sizeof(want)) == 0);
	}
	/* len shorter than the iovecs: only that much. */
	CHECK_EQ(csum_ctx_sum_iov(&one, 1, 2 * B, got), 2);
	CHECK_EQ(got[1], want[1]);
	CHECK_EQ(csum_ctx_sum_iov(&one, 1, 10, got), 1);
	CHECK_EQ(got[0], crc32c(0, buf, 10));
}

TEST(encode_merge)
{
	uint8_t w[8 * CSUM_CTX_MAX_EXT];
	struct ext e[CSUM_CTX_MAX_EXT];
	struct csum_span s;
	/* Sums A A B C C C: three extents. */
	uint32_t sums[] = {7, 7, 9, 5, 5, 5};
	csum_ctx_span(0, 6 * B, 6 * B, &s);
	uint32_t n = decode(w, csum_ctx_encode(&s, sums, false, w), e);
	CHECK_EQ(n, 3);
	CHECK_EQ(e[0].len, 2 * B);
	CHECK_EQ(e[0].status, 7);
	CHECK_EQ(e[1].len, B);
	CHECK_EQ(e[1].status, 9);
	CHECK_EQ(e[2].len, 3 * B);
	CHECK_EQ(e[2].status, 5);
	/* REQ_ONE: the first run only. */
	n = decode(w, csum_ctx_encode(&s, sums, true, w), e);
	CHECK_EQ(n, 1);
	CHECK_EQ(e[0].len, 2 * B);
	CHECK_EQ(e[0].status, 7);
	/* All different: one per block. */
	uint32_t diff[] = {1, 2, 3, 4};
	csum_ctx_span(0, 4 * B, 4 * B, &s);
	n = decode(w, csum_ctx_encode(&s, diff, false, w), e);
	CHECK_EQ(n, 4);
	for (uint32_t i = 0; i < 4; i++)
		CHECK(e[i].len == B && e[i].status == i + 1);
}

TEST(encode_odd)
{
	uint8_t w[8 * CSUM_CTX_MAX_EXT];
	struct ext e[CSUM_CTX_MAX_EXT];
	struct csum_span s;
	/* From inside block 1 to inside block 3: a first extent to block 1's
	 * end with block 1's sum, a last one cut at the request's end. */
	uint32_t sums[] = {11, 12, 13};
	csum_ctx_span(B + 100, 2 * B, 10 * B, &s);
	CHECK_EQ(csum_ctx_blocks(&s), 3);
	uint32_t n = decode(w, csum_ctx_encode(&s, sums, false, w), e);
	CHECK_EQ(n, 3);
	CHECK_EQ(e[0].len, B - 100);
	CHECK_EQ(e[0].status, 11);
	CHECK_EQ(e[1].len, B);
	CHECK_EQ(e[1].status, 12);
	CHECK_EQ(e[2].len, 100);
	CHECK_EQ(e[2].status, 13);
	/* Within one block. */
	csum_ctx_span(B + 100, 50, 10 * B, &s);
	n = decode(w, csum_ctx_encode(&s, sums, false, w), e);
	CHECK_EQ(n, 1);
	CHECK_EQ(e[0].len, 50);
	CHECK_EQ(e[0].status, 11);
	/* The odd first block merges with an equal next one. */
	uint32_t same[] = {4, 4, 6};
	csum_ctx_span(B - 1, 2 * B + 1, 3 * B, &s);
	n = decode(w, csum_ctx_encode(&s, same, false, w), e);
	CHECK_EQ(n, 2);
	CHECK_EQ(e[0].len, B + 1);
	CHECK_EQ(e[1].len, B);
	CHECK_EQ(e[1].status, 6);
	/* REQ_ONE at an odd offset: to the block's end. */
	csum_ctx_span(B + 100, 2 * B, 10 * B, &s);
	n = decode(w, csum_ctx_encode(&s, sums, true, w), e);
	CHECK_EQ(n, 1);
	CHECK_EQ(e[0].len, B - 100);
}

TEST(encode_holes_and_short_end)
{
	/* A device of 10 blocks and 300 bytes: zeroes, data, zeroes, and a
	 * short last block of data. The zero runs are one extent each. */
	uint64_t size = 10 * B + 300;
	uint8_t *dev = calloc(1, size);
	memset(dev + 3 * B, 0xab, B);
	memset(dev + 10 * B, 0xcd, 300);
	struct iovec v = {dev, size};
	uint32_t sums[11];
	CHECK_EQ(csum_ctx_sum_iov(&v, 1, size, sums), 11);
	uint32_t zero = crc32c(0, dev, B);
	CHECK_EQ(sums[0], zero);
	CHECK_EQ(sums[10], crc32c(0, dev + 10 * B, 300));
	struct csum_span s;
	csum_ctx_span(0, size, size, &s);
	uint8_t w[8 * CSUM_CTX_MAX_EXT];
	struct ext e[CSUM_CTX_MAX_EXT];
	uint32_t n = decode(w, csum_ctx_encode(&s, sums, false, w), e);
	CHECK_EQ(n, 4);
	CHECK(e[0].len == 3 * B && e[0].status == zero);
	CHECK(e[1].len == B && e[1].status == crc32c(0, dev + 3 * B, B));
	CHECK(e[2].len == 6 * B && e[2].status == zero);
	CHECK(e[3].len == 300 && e[3].status == sums[10]);
	/* Asked from inside the short last block. */
	csum_ctx_span(10 * B + 7, 200, size, &s);
	CHECK_EQ(csum_ctx_blocks(&s), 1);
	n = decode(w, csum_ctx_encode(&s, sums + 10, false, w), e);
	CHECK(n == 1 && e[0].len == 200 && e[0].status == sums[10]);
	free(dev);
}

UNIT_MAIN(T(span), T(sum_iov), T(encode_merge), T(encode_odd), T(encode_holes_and_short_end))
