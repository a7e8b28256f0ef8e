/* regcopy.c - the region-copy engine (regcopy.h): slots, holds, drains,
 * pace and progress of a resync or a live migration. */
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "regcopy.h"

static void step(struct regcopy *rc);

static void work(struct ev_deferred *d)
{
	step(container_of(d, struct regcopy, work));
}

static void unpause(struct ev_timer *t)
{
	struct regcopy *rc = container_of(t, struct regcopy, timer);
	rc->paused = false;
	step(rc);
}

void regcopy_init(struct regcopy *rc, struct ev_loop *loop, const struct regcopy_ops *ops,
		  void *owner, uint64_t region, uint64_t size, unsigned nslots)
{
	memset(rc, 0, sizeof(*rc));
	rc->loop = loop;
	rc->ops = ops;
	rc->owner = owner;
	rc->region = region;
	rc->size = size;
	rc->nregions = (size + region - 1) / region;
	rc->wcount = xcalloc(rc->nregions ? rc->nregions : 1, sizeof(*rc->wcount));
	rc->nslots = nslots ? nslots : 1;
	rc->slots = xcalloc(rc->nslots, sizeof(*rc->slots));
	for (unsigned k = 0; k < rc->nslots; k++) {
		rc->slots[k].rc = rc;
		rc->slots[k].index = k;
		rc->slots[k].r = REGCOPY_NONE;
	}
	rc->work.fn = work;
	rc->timer.fn = unpause;
}

void regcopy_free(struct regcopy *rc)
{
	if (!rc->slots)
		return;
	ev_defer_cancel(rc->loop, &rc->work);
	ev_timer_stop(rc->loop, &rc->timer);
	free(rc->wcount);
	free(rc->slots);
	rc->wcount = NULL;
	rc->slots = NULL;
}

void regcopy_kick(struct regcopy *rc)
{
	if (!rc->closing)
		ev_defer(rc->loop, &rc->work);
}

void regcopy_start(struct regcopy *rc, uint64_t total)
{
	rc->running = true;
	rc->pos = 0;
	rc->total = total;
	rc->done = rc->bytes = 0;
	rc->start_ns = ev_now_ns();
	regcopy_kick(rc);
}

void regcopy_set_rate(struct regcopy *rc, uint64_t rate)
{
	rc->rate = rate;
	if (rc->paused) {
		/* The pause was computed from the old rate (at 4K/s a region
		 * waits minutes): start the next region under the new one. */
		ev_timer_stop(rc->loop, &rc->timer);
		rc->paused = false;
		regcopy_kick(rc);
	}
}

void regcopy_close(struct regcopy *rc)
{
	rc->closing = true;
	ev_defer_cancel(rc->loop, &rc->work);
	ev_timer_stop(rc->loop, &rc->timer);
}

static bool overlaps(const struct regcopy_slot *s, uint64_t r0, uint64_t r1)
{
	return s->st != RC_FREE && s->r >= r0 && s->r <= r1;
}

bool regcopy_hold(struct regcopy *rc, uint64_t off, uint64_t len, struct dev_io *io)
{
	if (!len || off >= rc->size)
		return false;
	uint64_t r0 = off / rc->region, r1 = MIN(off + len - 1, rc->size - 1) / rc->region;
	for (unsigned k = 0; k < rc->nslots; k++) {
		struct regcopy_slot *s = &rc->slots[k];
		if (!overlaps(s, r0, r1))
			continue;
		io->dev_next = NULL;
		if (s->wait_tail)
			s->wait_tail->dev_next = io;
		else
			s->wait_head = io;
		s->wait_tail = io;
		return true;
	}
	return false;
}

void regcopy_write_start(struct regcopy *rc, uint64_t off, uint64_t len)
{
	if (!len || off >= rc->size)
		return;
	uint64_t r1 = MIN(off + len - 1, rc->size - 1) / rc->region;
	for (uint64_t r = off / rc->region; r <= r1; r++)
		rc->wcount[r]++;
}

void regcopy_write_end(struct regcopy *rc, uint64_t off, uint64_t len)
{
	if (!len || off >= rc->size)
		return;
	uint64_t r0 = off / rc->region, r1 = MIN(off + len - 1, rc->size - 1) / rc->region;
	for (uint64_t r = r0; r <= r1; r++)
		rc->wcount[r]--;
	for (unsigned k = 0; k < rc->nslots; k++) {
		const struct regcopy_slot *s = &rc->slots[k];
		if (s->st == RC_DRAIN && s->r >= r0 && s->r <= r1 && !rc->wcount[s->r])
			regcopy_kick(rc);
	}
}

/* The slot lets its region go: the writes it held go on, in order. */
static void slot_free(struct regcopy_slot *s)
{
	struct regcopy *rc = s->rc;
	struct dev_io *list = s->wait_head;
	s->wait_head = s->wait_tail = NULL;
	s->st = RC_FREE;
	s->r = REGCOPY_NONE;
	while (list) {
		struct dev_io *io = list;
		list = io->dev_next;
		io->dev_next = NULL;
		rc->ops->release(rc->owner, io);
	}
}

void regcopy_release(struct regcopy_slot *s)
{
	struct regcopy *rc = s->rc;
	slot_free(s);
	regcopy_kick(rc);
}

void regcopy_done(struct regcopy_slot *s, uint64_t bytes)
{
	struct regcopy *rc = s->rc;
	rc->done++;
	rc->bytes += bytes;
	slot_free(s);
	/* A pass told to stop (go() false) ends now, not after a pause for
	 * a region it will not copy (at a low rate, minutes). */
	if (rc->rate && !rc->closing && rc->ops->go(rc->owner)) {
		/* Rate limit: foreground IO keeps priority. */
		rc->paused = true;
		ev_timer_start(rc->loop, &rc->timer, bytes * 1000000000ull / rc->rate);
	} else {
		regcopy_kick(rc);
	}
}

bool regcopy_copying(const struct regcopy *rc)
{
	for (unsigned k = 0; k < rc->nslots; k++)
		if (rc->slots[k].st == RC_COPY)
			return true;
	return false;
}

bool regcopy_idle(const struct regcopy *rc)
{
	for (unsigned k = 0; k < rc->nslots; k++)
		if (rc->slots[k].st != RC_FREE || rc->slots[k].wait_head)
			return false;
	for (uint64_t r = 0; r < rc->nregions; r++)
		if (rc->wcount[r])
			return false;
	return true;
}

bool regcopy_behind(const struct regcopy *rc, uint64_t off)
{
	uint64_t r = off / rc->region;
	if (r >= rc->pos)
		return false;
	for (unsigned k = 0; k < rc->nslots; k++)
		if (rc->slots[k].st != RC_FREE && rc->slots[k].r == r)
			return false;
	return true;
}

double regcopy_mib_s(const struct regcopy *rc)
{
	double s = (double)(ev_now_ns() - rc->start_ns) / 1e9;
	return s > 0 ? (double)rc->bytes / 1048576.0 / s : 0;
}

uint64_t regcopy_eta_s(const struct regcopy *rc)
{
	double s = (double)(ev_now_ns() - rc->start_ns) / 1e9;
	if (!rc->done || s <= 0)
		return 0;
	/* At this pass's time per region: what a region's bytes are (a
	 * region of the storage, or of one node) is the owner's. */
	uint64_t left = rc->total > rc->done ? rc->total - rc->done : 0;
	return (uint64_t)((double)left * s / (double)rc->done);
}

/* Start what can start: drained slots copy, free slots take the next
 * regions; the pass ends when nothing is left to pick or in flight. */
static void step(struct regcopy *rc)
{
	if (rc->closing || !rc->running)
		return;
	if (!rc->ops->go(rc->owner)) {
		if (regcopy_copying(rc))
			return; /* their regcopy_done / release come back here */
		for (unsigned k = 0; k < rc->nslots; k++)
			if (rc->slots[k].st == RC_DRAIN)
				slot_free(&rc->slots[k]);
		ev_timer_stop(rc->loop, &rc->timer);
		rc->paused = false;
		rc->running = false;
		rc->ops->ended(rc->owner);
		return;
	}
	for (unsigned k = 0; k < rc->nslots; k++) {
		struct regcopy_slot *s = &rc->slots[k];
		if (s->st == RC_DRAIN && !rc->wcount[s->r]) {
			s->st = RC_COPY;
			rc->ops->copy(rc->owner, s);
			if (!rc->running || rc->closing)
				return;
		}
	}
	/* With a rate limit, one region at a time and a pause after each. */
	unsigned busy = 0;
	for (unsigned k = 0; k < rc->nslots; k++)
		busy += rc->slots[k].st != RC_FREE;
	unsigned limit = rc->ops->limit ? MIN(rc->ops->limit(rc->owner), rc->nslots) : rc->nslots;
	unsigned room = rc->rate ? (busy || rc->paused ? 0 : 1) : busy < limit ? limit - busy : 0;
	for (unsigned k = 0; k < limit && room; k++) {
		struct regcopy_slot *s = &rc->slots[k];
		if (s->st != RC_FREE)
			continue;
		uint64_t r = rc->ops->pick(rc->owner, rc->pos);
		if (r >= rc->nregions)
			break;
		rc->pos = r + 1;
		s->r = r; /* from here, new writes to r wait */
		s->off = r * rc->region;
		s->len = MIN(rc->region, rc->size - s->off);
		s->st = RC_DRAIN;
		room--;
		busy++;
		if (!rc->wcount[r]) {
			s->st = RC_COPY;
			rc->ops->copy(rc->owner, s);
			if (!rc->running || rc->closing)
				return;
		}
		/* else: regcopy_write_end kicks us once they are done */
	}
	if (!busy && !rc->paused && rc->ops->pick(rc->owner, rc->pos) >= rc->nregions) {
		rc->running = false;
		rc->ops->ended(rc->owner);
	}
}
