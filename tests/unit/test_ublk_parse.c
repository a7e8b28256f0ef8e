/* test_ublk_parse.c - the ublk frontend's pure parts: the config values
 * (ublk = auto|N, ublk-queues, ublk-depth) with their ranges and errors, and
 * the kernel ABI arithmetic dst fills in itself (ublk_abi.h): where a
 * request's bytes are on /dev/ublkcN for user copy, and where each queue's
 * descriptors are mapped. */
#include <string.h>

#include "daemon/ublk_abi.h"
#include "daemon/ublk_frontend.h"
#include "unit.h"

TEST(device_numbers)
{
	char err[200];
	uint32_t id = 0;
	CHECK_EQ(ublk_parse_id(NULL, &id, err, sizeof(err)), 0);
	CHECK_EQ(id, UBLK_ID_AUTO);
	CHECK_EQ(ublk_parse_id("auto", &id, err, sizeof(err)), 0);
	CHECK_EQ(id, UBLK_ID_AUTO);
	CHECK_EQ(ublk_parse_id("0", &id, err, sizeof(err)), 0);
	CHECK_EQ(id, 0);
	CHECK_EQ(ublk_parse_id("1048575", &id, err, sizeof(err)), 0);
	CHECK_EQ(id, 1048575);
	const char *bad[] = {"1048576", "-1", "x", "", "3x", "4294967295"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		id = 42;
		CHECK_EQ(ublk_parse_id(bad[i], &id, err, sizeof(err)), -1);
		CHECK_EQ(id, 42);
		CHECK(strstr(err, "expected auto or a device number 0..1048575") != NULL);
	}
}

TEST(queues_and_depth)
{
	char err[200];
	unsigned n = 0;
	CHECK_EQ(ublk_parse_queues(NULL, &n, err, sizeof(err)), 0);
	CHECK(n >= 1 && n <= 4);
	CHECK_EQ(n, ublk_default_queues());
	CHECK_EQ(ublk_parse_queues("64", &n, err, sizeof(err)), 0);
	CHECK_EQ(n, 64);
	CHECK_EQ(ublk_parse_queues("0", &n, err, sizeof(err)), -1);
	CHECK(strstr(err, "ublk-queues '0': expected 1..64") != NULL);
	CHECK_EQ(ublk_parse_queues("65", &n, err, sizeof(err)), -1);
	CHECK_EQ(ublk_parse_depth(NULL, &n, err, sizeof(err)), 0);
	CHECK_EQ(n, UBLK_DEFAULT_DEPTH);
	CHECK_EQ(ublk_parse_depth("1", &n, err, sizeof(err)), 0);
	CHECK_EQ(n, 1);
	CHECK_EQ(ublk_parse_depth("1025", &n, err, sizeof(err)), -1);
	CHECK(strstr(err, "ublk-depth '1025': expected 1..1024") != NULL);
	CHECK_EQ(ublk_parse_depth("many", &n, err, sizeof(err)), -1);
	uint32_t id;
	unsigned q, d;
	CHECK_EQ(ublk_parse_conf("3", "4", "1024", &id, &q, &d, err, sizeof(err)), 0);
	CHECK_EQ(id, 3);
	CHECK_EQ(q * d, 4096);
	CHECK_EQ(ublk_parse_conf(NULL, "64", "128", &id, &q, &d, err, sizeof(err)), -1);
	CHECK(strstr(err, "ublk-queues x ublk-depth is 8192: at most 4096 requests") != NULL);
	CHECK_EQ(ublk_parse_conf("x", NULL, NULL, &id, &q, &d, err, sizeof(err)), -1);
	CHECK(strstr(err, "ublk 'x'") != NULL);
}

TEST(user_copy_offsets)
{
	/* 25 bits of byte offset, then 16 of tag, then the queue, above 2 GiB */
	CHECK_EQ(dst_ublk_user_off(0, 0, 0), 0x80000000ull);
	CHECK_EQ(dst_ublk_user_off(0, 0, 4096), 0x80000000ull + 4096);
	CHECK_EQ(dst_ublk_user_off(0, 1, 0), 0x80000000ull + (1ull << 25));
	CHECK_EQ(dst_ublk_user_off(1, 0, 0), 0x80000000ull + (1ull << 41));
	CHECK_EQ(dst_ublk_user_off(3, 127, 512),
		 0x80000000ull + (3ull << 41) + (127ull << 25) + 512);
	/* the largest request of the deepest queue stays clear of the next tag */
	CHECK(dst_ublk_user_off(0, 0, (1u << 25) - 1) < dst_ublk_user_off(0, 1, 0));
}

TEST(descriptor_mapping_stride)
{
	/* A whole 4096-deep array of 24-byte descriptors, page-rounded. */
	CHECK_EQ(sizeof(struct ublksrv_io_desc), 24);
	CHECK_EQ(DST_UBLK_DESC_STRIDE(4096), 98304);
	CHECK_EQ(DST_UBLK_DESC_STRIDE(65536), 131072);
}

UNIT_MAIN(T(device_numbers), T(queues_and_depth), T(user_copy_offsets),
	  T(descriptor_mapping_stride))
