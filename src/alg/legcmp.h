/* legcmp.h - compare a range of a mirror's legs with one of them (the
 * source), block by block, and optionally make the others agree with it.
 *
 * The engine of dst verify (mirror_verify.c) and of a whole resync that copies
 * only what differs (mirror.c). A leg that answers DEV_CSUM (a dst export:
 * dst:csum-4k) gives a CRC32C per 4 KiB block, and only 4 bytes per block
 * cross the network; any other leg is read and its blocks summed here.
 * Where both sides of a comparison were read, the blocks are compared
 * byte for byte. Fixing writes only the runs of blocks that differ, from
 * the source's data (read for just those runs).
 *
 * The caller holds the range: no write to it may be in flight or start
 * while a comparison runs. Memory is allocated by legcmp_init only. */
#ifndef DST_ARRAY_LEGCMP_H
#define DST_ARRAY_LEGCMP_H

#include <stdbool.h>
#include <stdint.h>

#include "dev/dev.h"

struct array;

/* The largest range one comparison takes. */
#define LEGCMP_MAX (4u << 20)
/* Fixing writes in flight at once. */
#define LEGCMP_WRITES 8u

struct legcmp_leg {
	struct dev_io io;
	uint32_t *sums; /* one per block */
	uint8_t *buf;	/* max bytes, allocated the first time the leg is read */
	uint8_t *diff;	/* per block: differs from the source */
	uint32_t got;	/* blocks answered: their sums, or their data read */
	uint32_t ndiff;
	bool data;   /* read as data (no DEV_CAP_CSUM, or it stopped answering) */
	bool summed; /* data read and summed into sums (only when compared with sums) */
	int err;     /* its IO failed: left out of this comparison */
};

struct legcmp {
	struct array *a;
	struct legcmp_leg *leg; /* one per node of the array */
	uint64_t max;		/* the largest range it takes */
	uint64_t off, len;	/* off is block aligned */
	uint32_t nblk;
	int src;
	uint32_t legs; /* compared with the source: a mask of node indexes */
	bool fix, csum;
	bool resync;   /* count the IO as resync IO on the nodes */
	unsigned out;  /* reads and sums in flight */
	unsigned wout; /* writes in flight */
	size_t wleg;   /* fixing: where the next run is looked for */
	uint32_t wblk;
	struct dev_io wio[LEGCMP_WRITES];
	size_t wio_leg[LEGCMP_WRITES]; /* the leg each write goes to */
	bool writing;		       /* inside write_more or read_more */
	int rerr;		       /* a read of the source's runs failed */
	/* What the last comparison moved: bytes compared by checksum and read
	 * as data, and bytes written to fix. */
	uint64_t csum_bytes, data_bytes, fixed_bytes;
	void (*done)(struct legcmp *c, int err); /* err: the source failed */
	void *priv;
};

/* For an array of a->n nodes (at most 32), ranges of at most max bytes
 * (at most LEGCMP_MAX). */
void legcmp_init(struct legcmp *c, struct array *a, uint64_t max);
void legcmp_free(struct legcmp *c);

/* Compare [off, off+len) (len <= c->max) of the legs in mask `legs`
 * with leg src; with csum, legs with DEV_CAP_CSUM are asked for sums
 * instead of data; with fix, blocks that differ are written from src.
 * done() is called once, maybe before this returns (a memory leg answers
 * at once): the caller sets its own state first. */
void legcmp_start(struct legcmp *c, uint64_t off, uint64_t len, int src, uint32_t legs, bool fix,
		  bool csum);

/* After done(): the next run of blocks of leg i that differed, from block
 * *b on. False when there is none. */
bool legcmp_next_run(const struct legcmp *c, size_t i, uint32_t *b, uint32_t *nb);

#endif
