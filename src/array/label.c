/* label.c - a node's label: encoding, decoding and the identity check
 * (label.h). */
#include <stdio.h>
#include <string.h>

#include "common/util.h"
#include "label.h"
#include "leghdr.h"

#define OFF_VERSION 8
#define OFF_FLAGS   12
#define OFF_STORAGE 16
#define OFF_DISK    32
#define OFF_START   48
#define OFF_SIZE    56
#define OFF_GEN	    64
#define OFF_SELF    72
#define OFF_ALG	    80
#define OFF_NAME    96
#define OFF_SUM	    160
#define VERSION	    1u

uint64_t label_offset_for_disk(uint64_t disk_bytes)
{
	/* The block an older mirror leg header takes, for a leg of that size. */
	return leghdr_offset(disk_bytes);
}

void label_init(struct node_label *l, const uint8_t storage[16], const uint8_t disk[16],
		uint64_t start, uint64_t size, uint64_t offset, const char *alg, const char *name)
{
	memset(l, 0, sizeof(*l));
	memcpy(l->storage, storage, 16);
	memcpy(l->disk, disk, 16);
	l->start = start;
	l->size = size;
	l->offset = offset;
	snprintf(l->alg, sizeof(l->alg), "%s", alg);
	snprintf(l->name, sizeof(l->name), "%s", name);
}

void label_encode(const struct node_label *l, uint8_t *block)
{
	memset(block, 0, LABEL_SIZE);
	memcpy(block, LABEL_MAGIC, 8);
	be32_write(block + OFF_VERSION, VERSION);
	be32_write(block + OFF_FLAGS, l->flags);
	memcpy(block + OFF_STORAGE, l->storage, 16);
	memcpy(block + OFF_DISK, l->disk, 16);
	be64_write(block + OFF_START, l->start);
	be64_write(block + OFF_SIZE, l->size);
	be64_write(block + OFF_GEN, l->gen);
	be64_write(block + OFF_SELF, l->offset);
	memcpy(block + OFF_ALG, l->alg, strnlen(l->alg, 15));
	memcpy(block + OFF_NAME, l->name, strnlen(l->name, 64));
	be64_write(block + OFF_SUM, leghdr_fnv1a(block, OFF_SUM));
}

bool label_decode(const uint8_t *block, struct node_label *l)
{
	memset(l, 0, sizeof(*l));
	if (!memcmp(block, LEGHDR_MAGIC, 8)) {
		struct leg_header h;
		if (!leghdr_decode(block, &h))
			return false;
		memcpy(l->storage, h.uuid, 16);
		l->gen = h.gen;
		l->legacy = true;
		return true;
	}
	if (memcmp(block, LABEL_MAGIC, 8) != 0 ||
	    be64_read(block + OFF_SUM) != leghdr_fnv1a(block, OFF_SUM))
		return false;
	/* A later version may add fields; what is here keeps its meaning. */
	if (be32_read(block + OFF_VERSION) < VERSION)
		return false;
	l->flags = be32_read(block + OFF_FLAGS);
	memcpy(l->storage, block + OFF_STORAGE, 16);
	memcpy(l->disk, block + OFF_DISK, 16);
	l->start = be64_read(block + OFF_START);
	l->size = be64_read(block + OFF_SIZE);
	l->gen = be64_read(block + OFF_GEN);
	l->offset = be64_read(block + OFF_SELF);
	memcpy(l->alg, block + OFF_ALG, 15);
	memcpy(l->name, block + OFF_NAME, 64);
	l->alg[15] = l->name[64] = '\0';
	return true;
}

bool label_block_blank(const uint8_t *block)
{
	for (size_t i = 0; i < LABEL_SIZE; i++)
		if (block[i])
			return false;
	return true;
}

int label_check(const struct label_expect *e, const uint8_t *block, char *why, size_t whylen)
{
	struct node_label l;
	if (!label_decode(block, &l)) {
		snprintf(why, whylen, "%s",
			 label_block_blank(block) ? "no label: a blank disk"
						  : "no label: the disk holds other data");
		return -1;
	}
	char nn[32];
	snprintf(nn, sizeof(nn), "n-%llu", (unsigned long long)l.start);
	if (memcmp(l.storage, e->storage, 16) != 0) {
		char u[33];
		uuid_format(l.storage, u);
		if (l.legacy)
			snprintf(why, whylen, "foreign: a mirror leg header of storage %s", u);
		else
			snprintf(why, whylen, "foreign: label of storage %s (%s, node %s)",
				 l.name[0] ? l.name : "?", u, nn);
		return -1;
	}
	if (l.legacy) {
		snprintf(why, whylen, "an old leg header of this storage, not this node's label");
		return -1;
	}
	if (l.start != e->start) {
		snprintf(why, whylen,
			 "label of node %s of this storage: the same disk as that node", nn);
		return -1;
	}
	if (memcmp(l.disk, e->disk, 16) != 0) {
		snprintf(why, whylen,
			 "a former disk of this node (its label has another disk id): replaced "
			 "since, or an old copy");
		return -1;
	}
	return 0;
}
