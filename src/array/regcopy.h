/* regcopy.h - the region-copy engine: a redundant algorithm's resync and
 * the core's live migration (dst replace) both walk a device region by
 * region, a few regions at a time, while it serves IO.
 *
 * The engine owns what they share: which regions are being copied, the
 * writes they hold, the writes in flight per region, the pace and the
 * progress. A region picked by a slot holds new writes to it (they wait on
 * the slot) and is copied only once the writes in flight to it are done,
 * so a copy never carries stale bytes over a newer write. What copying one
 * region means (read a leg and write the others, reconstruct a node's
 * chunks from parity, move a node's bytes to its replacement) is the
 * owner's, through regcopy_ops.
 */
#ifndef DST_REGCOPY_H
#define DST_REGCOPY_H

#include <stdbool.h>
#include <stdint.h>

#include "common/ev.h"
#include "dev/dev.h"

#define REGCOPY_NONE UINT64_MAX

enum regcopy_state { RC_FREE, RC_DRAIN, RC_COPY };

struct regcopy;

struct regcopy_slot {
	struct regcopy *rc;
	unsigned index; /* in rc->slots: for the owner's per-slot state */
	enum regcopy_state st;
	uint64_t r;			      /* the region, REGCOPY_NONE when free */
	uint64_t off, len;		      /* its bytes (the last region may be short) */
	struct dev_io *wait_head, *wait_tail; /* writes held, in order */
};

struct regcopy_ops {
	/* The next region to copy at or after `from`; >= nregions: none. */
	uint64_t (*pick)(void *owner, uint64_t from);
	/* May the pass go on? false: nothing more is picked, drained slots
	 * are let go, and ended() runs once the copies in flight are over. */
	bool (*go)(void *owner);
	/* Slots that may copy at once now (NULL: all). */
	unsigned (*limit)(void *owner);
	/* The slot's region is drained: copy it, then regcopy_done(). */
	void (*copy)(void *owner, struct regcopy_slot *s);
	/* A write the engine held goes on. */
	void (*release)(void *owner, struct dev_io *io);
	/* The pass is over: nothing left to pick (or go() said no) and no
	 * slot busy. */
	void (*ended)(void *owner);
};

struct regcopy {
	struct ev_loop *loop;
	const struct regcopy_ops *ops;
	void *owner;
	uint64_t region, size, nregions; /* bytes per region; the device's bytes */
	uint16_t *wcount;		 /* writes in flight per region */
	struct regcopy_slot *slots;
	unsigned nslots;
	uint64_t rate; /* bytes/s; 0: no limit (with one, one region at a time) */
	bool running, paused, closing;
	uint64_t pos; /* the next region a slot may pick */
	/* This pass: regions to copy, copied, bytes copied, since when. */
	uint64_t total, done, bytes, start_ns;
	struct ev_deferred work;
	struct ev_timer timer;
};

void regcopy_init(struct regcopy *rc, struct ev_loop *loop, const struct regcopy_ops *ops,
		  void *owner, uint64_t region, uint64_t size, unsigned nslots);
void regcopy_free(struct regcopy *rc);
/* A new pass over `total` regions, from region 0 on. */
void regcopy_start(struct regcopy *rc, uint64_t total);
/* Look again (a drained region, a slot free, go() changed): deferred. */
void regcopy_kick(struct regcopy *rc);
void regcopy_set_rate(struct regcopy *rc, uint64_t rate);
/* The storage stops: nothing starts any more; copies in flight finish. */
void regcopy_close(struct regcopy *rc);

/* A write of [off, off+len): held (queued on the slot copying a region it
 * touches: true), or not. One that is sent is counted in flight from
 * write_start to write_end. */
bool regcopy_hold(struct regcopy *rc, uint64_t off, uint64_t len, struct dev_io *io);
void regcopy_write_start(struct regcopy *rc, uint64_t off, uint64_t len);
void regcopy_write_end(struct regcopy *rc, uint64_t off, uint64_t len);
/* The slot's region is copied (bytes counted as copied; the next region
 * comes after the rate's pause), or given up (release: not counted). */
void regcopy_done(struct regcopy_slot *s, uint64_t bytes);
void regcopy_release(struct regcopy_slot *s);

bool regcopy_copying(const struct regcopy *rc); /* a slot's IO is out */
bool regcopy_idle(const struct regcopy *rc);	/* nothing in flight, nothing held */
/* Is region r behind the pass (copied, not waiting or being copied)? */
bool regcopy_behind(const struct regcopy *rc, uint64_t off);
/* Seconds left at this pass's speed; 0 if unknown. */
uint64_t regcopy_eta_s(const struct regcopy *rc);
double regcopy_mib_s(const struct regcopy *rc);

#endif
