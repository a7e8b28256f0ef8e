/* label.h - the label every node of a storage carries, as LVM PV labels and
 * md superblocks do: which storage the disk belongs to, which place in the
 * layout it holds, and which disk it is. A node is used only when its
 * label says it is that node, so a blank disk, another storage's disk or
 * another node of the same storage answering at a node's address is never
 * read or written as that node.
 *
 * Where: one 4 KiB block after the node's data, at a byte offset the
 * storage's config keeps per node (`label=`). `dst add` puts it in the last
 * whole 4 KiB block of the disk and gives the node the bytes before it, so
 * the data starts at 0 and a node stays a plain image of its part of the
 * storage; a mirror leg's label sits where its leg header always was (the
 * last 4 KiB block of the leg). Keeping the offset in the config, not
 * deriving it from the disk's size, lets a disk grow under a node.
 *
 * Layout, big-endian: magic "DSTLABL1", version (4), flags (4), storage
 * UUID (16), disk id (16: random, new each time a disk is labelled, so two
 * disks are never alike), start and size of the node (8 + 8, sectors), a
 * mirror's generation (8), the label's own offset (8), the algorithm (16,
 * NUL padded), the storage's name (64, NUL padded), then an FNV-1a 64
 * checksum of the bytes before it (8). The rest of the block is zero.
 * A mirror leg header of the older format ("DSTMLEG1", leghdr.h) decodes as
 * a legacy label: storage UUID and generation only. Pure code: unit tested.
 */
#ifndef DST_ARRAY_LABEL_H
#define DST_ARRAY_LABEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LABEL_SIZE  4096u
#define LABEL_MAGIC "DSTLABL1"

/* flags: the mirror stopped cleanly with every leg in sync (a mirror
 * started elsewhere, without its bitmap file, then needs no resync). */
#define LABEL_F_CLEAN 1u

struct node_label {
	uint32_t flags;
	uint8_t storage[16];
	uint8_t disk[16];
	uint64_t start, size; /* sectors */
	uint64_t gen;
	uint64_t offset; /* bytes: where this label was written */
	char alg[16];
	char name[65];
	bool legacy; /* an old mirror leg header: storage and gen only */
};

/* What a node's config says its label must be. */
struct label_expect {
	uint8_t storage[16];
	uint8_t disk[16];
	uint64_t start;
	const char *name; /* the storage's, for messages */
};

/* The offset `dst add` gives a label on a disk of disk_bytes (its last
 * whole 4 KiB block), or 0 when the disk is too small to hold data too. */
uint64_t label_offset_for_disk(uint64_t disk_bytes);

/* The label of node (start, size) on disk `disk`, at byte offset, of
 * storage `storage` called name, with algorithm alg; gen and flags 0. */
void label_init(struct node_label *l, const uint8_t storage[16], const uint8_t disk[16],
		uint64_t start, uint64_t size, uint64_t offset, const char *alg, const char *name);
void label_encode(const struct node_label *l, uint8_t *block);
/* false when block holds no label (blank, torn, other data). */
bool label_decode(const uint8_t *block, struct node_label *l);
/* Is every byte of the block zero (a blank disk, never labelled)? */
bool label_block_blank(const uint8_t *block);

/* Is block the label e expects? 0 if so; otherwise -1 and one line saying
 * what the disk is instead ("blank: no label", "label of storage X (node
 * n-0)", "label of node n-800 of this storage", "a former disk of this
 * node"), for `dst show` and the log. */
int label_check(const struct label_expect *e, const uint8_t *block, char *why, size_t whylen);

#endif
