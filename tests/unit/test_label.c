/* test_label.c - node labels (array/label.h): round trip, where they go,
 * what a torn or foreign block decodes as, and every answer of the
 * identity check. */
#include <stdlib.h>
#include <string.h>

#include "array/label.h"
#include "array/leghdr.h"
#include "unit.h"

static struct node_label sample(void)
{
	struct node_label l = {
	    .flags = LABEL_F_CLEAN, .start = 800, .size = 792, .gen = 7, .offset = 409600};
	memset(l.storage, 0xab, 16);
	memset(l.disk, 0x5c, 16);
	snprintf(l.alg, sizeof(l.alg), "alg_linear");
	snprintf(l.name, sizeof(l.name), "st");
	return l;
}

static struct label_expect expect_of(const struct node_label *l)
{
	struct label_expect e = {.start = l->start, .name = "st"};
	memcpy(e.storage, l->storage, 16);
	memcpy(e.disk, l->disk, 16);
	return e;
}

TEST(round_trip)
{
	uint8_t blk[LABEL_SIZE];
	struct node_label l = sample(), d;
	label_encode(&l, blk);
	CHECK(!memcmp(blk, LABEL_MAGIC, 8));
	CHECK(label_decode(blk, &d));
	CHECK(!memcmp(d.storage, l.storage, 16) && !memcmp(d.disk, l.disk, 16));
	CHECK_EQ(d.start, 800);
	CHECK_EQ(d.size, 792);
	CHECK_EQ(d.gen, 7);
	CHECK_EQ(d.offset, 409600);
	CHECK_EQ(d.flags, LABEL_F_CLEAN);
	CHECK_STR(d.alg, "alg_linear");
	CHECK_STR(d.name, "st");
	CHECK(!d.legacy);
	/* Everything after the checksum is zero. */
	for (size_t i = 168; i < LABEL_SIZE; i++)
		if (blk[i])
			CHECK(!"nonzero tail");
}

TEST(long_names_are_cut)
{
	uint8_t blk[LABEL_SIZE];
	struct node_label l = sample(), d;
	memset(l.name, 'x', 64);
	l.name[64] = '\0';
	label_encode(&l, blk);
	CHECK(label_decode(blk, &d));
	CHECK_EQ(strlen(d.name), 64);
}

TEST(torn_and_foreign_blocks)
{
	uint8_t blk[LABEL_SIZE];
	struct node_label l = sample(), d;
	label_encode(&l, blk);
	for (size_t i = 0; i < 168; i += 13) { /* any flipped byte is caught */
		blk[i] ^= 0x40;
		CHECK(!label_decode(blk, &d));
		blk[i] ^= 0x40;
	}
	CHECK(label_decode(blk, &d));
	memset(blk, 0, sizeof(blk));
	CHECK(!label_decode(blk, &d));
	CHECK(label_block_blank(blk));
	blk[4095] = 1;
	CHECK(!label_block_blank(blk));
	memcpy(blk, "EFI PART", 8);
	CHECK(!label_decode(blk, &d));
}

TEST(legacy_leg_header)
{
	uint8_t blk[LABEL_SIZE];
	struct leg_header h = {.gen = 42, .leg_bytes = 1 << 20};
	memset(h.uuid, 0x11, 16);
	leghdr_encode(&h, blk);
	struct node_label d;
	CHECK(label_decode(blk, &d));
	CHECK(d.legacy);
	CHECK_EQ(d.gen, 42);
	CHECK(d.storage[0] == 0x11 && d.storage[15] == 0x11);
}

TEST(offset_for_disk)
{
	CHECK_EQ(label_offset_for_disk(1 << 20), (1 << 20) - 4096);
	CHECK_EQ(label_offset_for_disk((1 << 20) + 1000), (1 << 20) - 4096); /* whole blocks */
	CHECK_EQ(label_offset_for_disk(8192), 4096);
	CHECK_EQ(label_offset_for_disk(8191), 0); /* no room for data and a label */
	CHECK_EQ(label_offset_for_disk(0), 0);
}

TEST(check_answers)
{
	uint8_t blk[LABEL_SIZE];
	char why[256];
	struct node_label l = sample();
	struct label_expect e = expect_of(&l);
	label_encode(&l, blk);
	CHECK_EQ(label_check(&e, blk, why, sizeof(why)), 0);

	memset(blk, 0, sizeof(blk));
	CHECK_EQ(label_check(&e, blk, why, sizeof(why)), -1);
	CHECK_STR(why, "no label: a blank disk");
	blk[100] = 7;
	CHECK_EQ(label_check(&e, blk, why, sizeof(why)), -1);
	CHECK_STR(why, "no label: the disk holds other data");

	struct node_label other = l;
	memset(other.storage, 0xcd, 16);
	snprintf(other.name, sizeof(other.name), "backup");
	label_encode(&other, blk);
	CHECK_EQ(label_check(&e, blk, why, sizeof(why)), -1);
	CHECK(strstr(why, "label of storage backup") != NULL);
	CHECK(strstr(why, "node n-800") != NULL);

	other = l;
	other.start = 0;
	label_encode(&other, blk);
	CHECK_EQ(label_check(&e, blk, why, sizeof(why)), -1);
	CHECK(strstr(why, "label of node n-0 of this storage") != NULL);

	other = l;
	other.disk[3] ^= 1;
	label_encode(&other, blk);
	CHECK_EQ(label_check(&e, blk, why, sizeof(why)), -1);
	CHECK(strstr(why, "a former disk of this node") != NULL);

	struct leg_header h = {.gen = 1};
	memcpy(h.uuid, l.storage, 16);
	leghdr_encode(&h, blk);
	CHECK_EQ(label_check(&e, blk, why, sizeof(why)), -1);
	CHECK(strstr(why, "old leg header") != NULL);
}

UNIT_MAIN(T(round_trip), T(long_names_are_cut), T(torn_and_foreign_blocks), T(legacy_leg_header),
	  T(offset_for_disk), T(check_answers))
