/* test_mirror_meta.c - alg_mirror's on-disk metadata: write-intent bitmap
 * bit operations and file header, and the per-leg header with its UUID. */
#include <stdlib.h>
#include <string.h>

#include "array/bitmap.h"
#include "array/leghdr.h"
#include "unit.h"

TEST(bits_set_test_count)
{
	uint8_t bits[16] = {0};
	mbm_set(bits, 0);
	mbm_set(bits, 7);
	mbm_set(bits, 8);
	mbm_set(bits, 127);
	CHECK(mbm_test(bits, 0) && mbm_test(bits, 7) && mbm_test(bits, 8) && mbm_test(bits, 127));
	CHECK(!mbm_test(bits, 1) && !mbm_test(bits, 126));
	CHECK_EQ(mbm_count(bits, 128), 4);
	CHECK_EQ(mbm_count(bits, 8), 2); /* 0 and 7 */
	CHECK_EQ(mbm_count(bits, 9), 3); /* partial last byte counted bit by bit */
	mbm_clear(bits, 7);
	CHECK(!mbm_test(bits, 7));
	CHECK_EQ(mbm_count(bits, 128), 3);
}

TEST(bits_ranges)
{
	uint8_t bits[16] = {0};
	for (int i = 10; i <= 20; i++)
		mbm_set(bits, (uint64_t)i);
	CHECK(mbm_all_set(bits, 10, 20));
	CHECK(mbm_all_set(bits, 15, 15));
	CHECK(!mbm_all_set(bits, 9, 20));
	CHECK(!mbm_all_set(bits, 10, 21));
	CHECK_EQ(mbm_next_set(bits, 0, 128), 10);
	CHECK_EQ(mbm_next_set(bits, 15, 128), 15);
	CHECK_EQ(mbm_next_set(bits, 21, 128), 128); /* none: n */
	mbm_set(bits, 100);
	CHECK_EQ(mbm_next_set(bits, 21, 128), 100); /* skips clean bytes */
	CHECK_EQ(mbm_next_set(bits, 21, 100), 100); /* bound is exclusive */
}

TEST(bits_size)
{
	CHECK_EQ(mbm_bits_size(1), 4096);
	CHECK_EQ(mbm_bits_size(4096 * 8), 4096);
	CHECK_EQ(mbm_bits_size(4096 * 8 + 1), 8192);
}

TEST(bitmap_header_round_trip)
{
	struct mbm_header h = {.region = 1u << 20, .nregions = 2048, .nlegs = 2};
	h.legs[0].in_sync = true;
	strcpy(h.legs[0].spec, "nbd://127.0.0.1:10809");
	strcpy(h.legs[1].spec, "/srv/leg1.img");
	uint8_t buf[MBM_HEADER];
	mbm_header_encode(&h, buf);
	struct mbm_header d;
	char err[128];
	CHECK_EQ(mbm_header_decode(buf, sizeof(buf), &d, err, sizeof(err)), 0);
	CHECK_EQ(d.region, 1u << 20);
	CHECK_EQ(d.nregions, 2048);
	CHECK_EQ(d.nlegs, 2);
	CHECK(d.legs[0].in_sync && !d.legs[1].in_sync);
	CHECK_STR(d.legs[0].spec, "nbd://127.0.0.1:10809");
	CHECK_STR(d.legs[1].spec, "/srv/leg1.img");
}

TEST(bitmap_header_rejects)
{
	uint8_t buf[MBM_HEADER] = {0};
	struct mbm_header d;
	char err[128] = "";
	CHECK_EQ(mbm_header_decode(buf, sizeof(buf), &d, err, sizeof(err)), -1);
	CHECK(strstr(err, "magic") != NULL);
	struct mbm_header h = {.region = 3000, .nregions = 10, .nlegs = 2}; /* not a power of 2 */
	mbm_header_encode(&h, buf);
	CHECK_EQ(mbm_header_decode(buf, sizeof(buf), &d, err, sizeof(err)), -1);
	h.region = 4096;
	h.nlegs = MBM_MAX_LEGS + 1;
	mbm_header_encode(&h, buf);
	CHECK_EQ(mbm_header_decode(buf, sizeof(buf), &d, err, sizeof(err)), -1);
	h.nlegs = 2;
	mbm_header_encode(&h, buf);
	CHECK_EQ(mbm_header_decode(buf, 100, &d, err, sizeof(err)), -1); /* short */
	CHECK_EQ(mbm_header_decode(buf, sizeof(buf), &d, err, sizeof(err)), 0);
}

TEST(leg_header_round_trip)
{
	struct leg_header h = {.gen = 42, .leg_bytes = 64u << 20};
	CHECK_EQ(uuid_generate(h.uuid), 0);
	uint8_t buf[LEGHDR_SIZE];
	leghdr_encode(&h, buf);
	struct leg_header d;
	CHECK(leghdr_decode(buf, &d));
	CHECK(!memcmp(d.uuid, h.uuid, 16));
	CHECK_EQ(d.gen, 42);
	CHECK_EQ(d.leg_bytes, 64u << 20);
	/* A torn or foreign block is no header. */
	buf[30] ^= 1;
	CHECK(!leghdr_decode(buf, &d));
	memset(buf, 0, sizeof(buf));
	CHECK(!leghdr_decode(buf, &d));
}

TEST(leg_header_offset)
{
	CHECK_EQ(leghdr_offset(64u << 20), (64u << 20) - 4096);
	CHECK_EQ(leghdr_offset((64u << 20) + 1000), (64u << 20) - 4096); /* last whole block */
	CHECK_EQ(leghdr_offset(8192), 4096);
	CHECK_EQ(leghdr_offset(8191), 0); /* too small for data and header */
}

TEST(uuid_text)
{
	uint8_t u[16], v[16];
	char s[33];
	CHECK_EQ(uuid_generate(u), 0);
	uuid_format(u, s);
	CHECK_EQ(strlen(s), 32);
	CHECK_EQ(uuid_parse(s, v), 0);
	CHECK(!memcmp(u, v, 16));
	CHECK_EQ(uuid_parse("2c0899ef1c2a0c34dc9e5bb6261b96a4", v), 0);
	CHECK_EQ(v[0], 0x2c);
	CHECK_EQ(v[15], 0xa4);
	CHECK_EQ(uuid_parse("2c0899ef1c2a0c34dc9e5bb6261b96a", v), -1);	  /* short */
	CHECK_EQ(uuid_parse("2c0899ef1c2a0c34dc9e5bb6261b96a4a", v), -1); /* long */
	CHECK_EQ(uuid_parse("zz0899ef1c2a0c34dc9e5bb6261b96a4", v), -1);  /* not hex */
	CHECK_EQ(uuid_parse(" c0899ef1c2a0c34dc9e5bb6261b96a4", v), -1);  /* sscanf would skip */
}

UNIT_MAIN(T(bits_set_test_count), T(bits_ranges), T(bits_size), T(bitmap_header_round_trip),
	  T(bitmap_header_rejects), T(leg_header_round_trip), T(leg_header_offset), T(uuid_text))
