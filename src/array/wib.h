/* wib.h - a write-intent bitmap file that is durable before the writes it
 * covers: the bits of a redundant algorithm (alg_parity; bitmap.h has the
 * file's layout and the bit operations), kept in memory as wanted and as
 * on disk, and written with FUA while the storage runs. A request that
 * needs its bits on disk waits with wib_wait and goes on through the
 * owner's written() once a write of the file that carries them is done.
 *
 * The file holds `nsets` bitmaps of `nregions` bits one after the other,
 * after the 4 KiB header (which also says which nodes were in sync).
 */
#ifndef DST_WIB_H
#define DST_WIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bitmap.h"
#include "common/ev.h"
#include "dev/dev.h"

#define WIB_MAX_SETS 2u

struct wib {
	struct ev_loop *loop;
	char *path;
	int fd;		 /* synchronous writes at start and stop */
	struct dev *dev; /* the same file, for writes while running */
	uint64_t region, nregions;
	unsigned nsets;
	size_t set_len; /* bytes of one set (mbm_bits_size) */
	uint8_t *bits;	/* nsets sets: what we want on disk */
	uint8_t *pbits; /* what is on disk */
	uint8_t *img;	/* header + sets, being written */
	size_t img_len;
	bool busy, again, closing;
	struct dev_io io;
	struct dev_io *cur_head, *cur_tail;   /* wait for the write in flight */
	struct dev_io *next_head, *next_tail; /* wait for the one after it */
	struct ev_deferred work;
	/* The header's node list (which nodes are in sync), filled at every
	 * write; a request that waited, with the write's error. */
	void (*header)(void *owner, struct mbm_header *h);
	void (*written)(void *owner, struct dev_io *p, int err);
	void *owner;
};

/* Open (create) the file; *loaded says whether it had a bitmap, whose
 * header goes to *h, and whose sets are taken when its geometry is ours
 * (*same). -1 with a reason on a file that is not a bitmap of ours. */
int wib_open(struct wib *w, struct ev_loop *loop, const char *path, uint64_t region,
	     uint64_t nregions, unsigned nsets, bool *loaded, struct mbm_header *h, bool *same,
	     char *err, size_t errlen);
/* Write it now and wait (start, stop); then it is written with FUA. */
int wib_write_sync(struct wib *w, char *err, size_t errlen);
int wib_start_async(struct wib *w, char *err, size_t errlen);
void wib_close(struct wib *w); /* waits for a write in flight */
void wib_free(struct wib *w);

static inline uint8_t *wib_set(struct wib *w, unsigned set)
{
	return w->bits + set * w->set_len;
}
/* Are regions r0..r1 of set marked, and on disk? */
bool wib_durable(const struct wib *w, unsigned set, uint64_t r0, uint64_t r1);
/* p waits until the bits as they are now are on disk. */
void wib_wait(struct wib *w, struct dev_io *p);
/* The bits changed (cleared): write them when convenient. */
void wib_kick(struct wib *w);

#endif
