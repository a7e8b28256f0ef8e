/* leghdr.h - the small header alg_mirror keeps on each of its legs, as DST
 * kept an "age" on its nodes: the storage's UUID and a generation counter
 * that grows each time the set of in-sync legs changes. A leg that comes
 * back without our UUID had its media replaced (or was never synced) and is
 * copied whole; one with our UUID only needs the regions the write-intent
 * bitmap names.
 *
 * The header is the last 4 KiB block of the leg (data starts at 0, so a leg
 * stays a plain image of the storage). Layout, big-endian: magic
 * "DSTMLEG1", UUID (16), generation (8), leg size in bytes (8), FNV-1a 64
 * checksum of the bytes before it (8). Pure code: unit tested. */
#ifndef DST_ARRAY_LEGHDR_H
#define DST_ARRAY_LEGHDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LEGHDR_SIZE  4096u
#define LEGHDR_MAGIC "DSTMLEG1"

struct leg_header {
	uint8_t uuid[16];
	uint64_t gen;
	uint64_t leg_bytes;
};

/* The 64-bit FNV-1a checksum the header (and label.h's label) carries. */
uint64_t leghdr_fnv1a(const uint8_t *p, size_t n);
/* Where the header of a leg of leg_bytes lives (0 if it is too small). */
uint64_t leghdr_offset(uint64_t leg_bytes);
void leghdr_encode(const struct leg_header *h, uint8_t *buf);
/* false when buf holds no valid header (never written, torn, foreign). */
bool leghdr_decode(const uint8_t *buf, struct leg_header *h);

/* 32 hex digits <-> 16 bytes. */
int uuid_parse(const char *s, uint8_t uuid[16]);
void uuid_format(const uint8_t uuid[16], char out[33]);
/* A fresh random UUID (getrandom). */
int uuid_generate(uint8_t uuid[16]);

#endif
