/* mirror.c - alg_mirror: every leg holds the whole device (dm-raid1, md
 * raid1).
 *
 * Writes (and TRIM / WRITE_ZEROES) go to every live leg and are answered
 * when all of them have answered; reads go to the in-sync leg with the
 * fewest requests outstanding, and a read that fails is retried on another
 * leg. A leg that fails (EIO: remote legs fail fast while they reconnect)
 * is marked dead and IO goes on with the others; the storage fails IO only
 * when no in-sync leg is left.
 *
 * Write-intent bitmap (bitmap.h): before the first write to a clean region
 * is sent, its bit is set and the bitmap written with FUA; bits are cleared
 * by a sweep once a second for regions nobody wrote since the last sweep,
 * only while every leg is in sync, and only once a FLUSH of every leg has
 * made those writes durable (a leg may acknowledge a write it holds only in
 * a volatile cache, such as an export's page cache, and fail it at the next
 * FLUSH: that leg is then dead, and the region must still be dirty so that
 * its resync copies it). A leg that comes back is resynced: only
 * the regions whose bits are set are copied to it from an in-sync leg, a
 * few regions at a time (one with --resync-rate); a write to a region being
 * copied waits for it, and a region is copied only once the writes in
 * flight to it are done.
 *
 * Each leg carries a header (leghdr.h) with the storage's UUID and a
 * generation: a leg that comes back without our UUID is copied whole.
 * The data starts at 0 on every leg; the storage is as large as the
 * smallest leg without its header block.
 *
 * Parent requests keep their state in scratch[1] (req_state.h): pieces
 * outstanding, whether a leg failed under it, what it waits for, the first
 * error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array/array_int.h"
#include "array/bitmap.h"
#include "array/label.h"
#include "array/leghdr.h"
#include "array/req_state.h"
#include "array/wib.h"
#include "common/ev.h"
#include "common/event.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/strbuf.h"
#include "common/util.h"
#include "mirror_int.h"

#define NO_REGION UINT64_MAX
#define TICK_NS	  1000000000ull

static void mirror_submit(struct array *a, struct dev_io *p, bool resumed);

static bool write_like(enum dev_op op)
{
	return op == DEV_WRITE || op == DEV_WRITE_ZEROES || op == DEV_TRIM;
}

void mirror_queue(struct dev_io **h, struct dev_io **t, struct dev_io *p)
{
	p->dev_next = NULL;
	if (*t)
		(*t)->dev_next = p;
	else
		*h = p;
	*t = p;
}

static unsigned count_state(const struct mirror *m, char st);

/* degraded: the mirror was whole and a leg is out of sync; healthy: every
 * leg in sync again. Said on the change only. */
static void check_whole(struct mirror *m)
{
	unsigned in_sync = count_state(m, 'A');
	bool whole = in_sync == m->a->n;
	if (whole == m->whole)
		return;
	m->whole = whole;
	if (whole)
		event_fire("healthy", NULL, NULL, "all %zu legs in sync", m->a->n);
	else
		event_fire("degraded", NULL, NULL, "%u of %zu legs in sync", in_sync, m->a->n);
}

static unsigned count_state(const struct mirror *m, char st)
{
	unsigned c = 0;
	for (size_t i = 0; i < m->a->n; i++)
		c += m->state[i] == st;
	return c;
}

uint32_t mirror_legs_in(const struct mirror *m, const char *states)
{
	uint32_t mask = 0;
	for (size_t i = 0; i < m->a->n; i++)
		if (strchr(states, m->state[i]))
			mask |= 1u << i;
	return mask;
}

static char mirror_health(const struct array *a, size_t i)
{
	const struct mirror *m = a->priv;
	return i < a->n ? m->state[i] : '?';
}

/* ---- the bitmap file (wib.h) ---- */

/* Its header says which legs are in sync: after a crash of dstd, the right
 * leg is copied from. */
static void bm_header(void *owner, struct mbm_header *h)
{
	struct mirror *m = owner;
	h->nlegs = (uint32_t)MIN(m->a->n, (size_t)MBM_MAX_LEGS);
	for (uint32_t i = 0; i < h->nlegs; i++) {
		h->legs[i].in_sync = m->state[i] == 'A';
		snprintf(h->legs[i].spec, sizeof(h->legs[i].spec), "%s", m->a->nodes[i].spec);
	}
}

static void bm_kick(struct mirror *m)
{
	wib_kick(&m->bm);
}

/* p waits until the bitmap as it is now is on disk. */
static void bm_wait(struct mirror *m, struct dev_io *p)
{
	wib_wait(&m->bm, p);
}

/* A request waited for the bitmap: on to the legs, or its answer. */
static void bm_written(void *owner, struct dev_io *p, int err)
{
	struct mirror *m = owner;
	uint32_t mode = rq_low(p) & RQ_MODE_MASK;
	rq_set(p, rq_low(p) & ~RQ_MODE_MASK, rq_err(p));
	if (mode == RQ_MODE_FINISH)
		p->done(p, rq_err(p) ? rq_err(p) : err);
	else if (err)
		p->done(p, err);
	else
		mirror_submit(m->a, p, false);
}

/* ---- leg headers ---- */

static void hdr_done(struct dev_io *io, int err);
static void leg_failed(struct mirror *m, size_t leg, int err);
static void leg_checked(struct mirror *m, size_t leg);

/* A resync slot comparing (legcmp): it must finish before the legs are
 * closed, as it goes on with writes when its reads come back. */
static bool cmp_busy(const struct mirror *m)
{
	for (unsigned k = 0; k < m->nslots; k++)
		if (m->slots[k].st == SLOT_CMP)
			return true;
	return false;
}

static bool nothing_busy(const struct mirror *m)
{
	if (m->bm.busy || m->sweep_out || regcopy_copying(&m->sync) || verify_io_busy(m))
		return false;
	for (size_t i = 0; i < m->a->n; i++)
		if (m->hbusy[i] || m->hreading[i])
			return false;
	return true;
}

static void hdr_submit(struct mirror *m, size_t i, enum dev_op op)
{
	struct dev_io *io = &m->hio[i];
	memset(io, 0, sizeof(*io));
	io->op = op;
	io->flags = op == DEV_WRITE ? DEV_F_FUA : 0;
	const struct array_node *nd = &m->a->nodes[i];
	io->off = nd->label_off ? nd->label_off : leghdr_offset(nd->size * 512);
	io->len = LEGHDR_SIZE;
	io->buf = m->hbuf + i * LEGHDR_SIZE;
	io->done = hdr_done;
	io->priv = m;
	if (op == DEV_WRITE && nd->label_off) {
		struct node_label l;
		label_init(&l, m->uuid, nd->disk_id, nd->start, nd->size, nd->label_off,
			   "alg_mirror", m->name);
		l.gen = m->gen;
		l.flags = m->stop_clean ? LABEL_F_CLEAN : 0;
		label_encode(&l, io->buf);
	} else if (op == DEV_WRITE) {
		struct leg_header h = {.gen = m->gen, .leg_bytes = nd->size * 512};
		memcpy(h.uuid, m->uuid, 16);
		leghdr_encode(&h, io->buf);
	}
	if (op == DEV_WRITE) {
		m->wgen[i] = m->gen;
		m->hbusy[i] = true;
	} else {
		m->hreading[i] = true;
	}
	if (m->in_setup)
		m->setup_pending++;
	dev_submit(m->a->nodes[i].dev, io);
}

static void hdr_write(struct mirror *m, size_t i)
{
	if (m->hbusy[i])
		m->hagain[i] = true;
	else
		hdr_submit(m, i, DEV_WRITE);
}

static void hdr_write_insync(struct mirror *m)
{
	for (size_t i = 0; i < m->a->n; i++)
		if (m->state[i] == 'A')
			hdr_write(m, i);
}

static void hdr_done(struct dev_io *io, int err)
{
	struct mirror *m = io->priv;
	size_t i = (size_t)(io - m->hio);
	if (io->op == DEV_READ) {
		m->hreading[i] = false;
		struct node_label h;
		const struct array_node *nd = &m->a->nodes[i];
		m->hfail[i] = err != 0;
		/* A labelled leg must carry its own label, not just our UUID. */
		m->hmatch[i] = !err && label_decode(io->buf, &h) &&
			       !memcmp(h.storage, m->uuid, 16) &&
			       (!nd->label_off || (!h.legacy && !memcmp(h.disk, nd->disk_id, 16)));
		m->hgen[i] = m->hmatch[i] ? h.gen : 0;
		m->hclean[i] = m->hmatch[i] && (h.flags & LABEL_F_CLEAN);
		if (m->hmatch[i] && h.gen > m->gen && m->in_setup)
			m->gen = h.gen;
		if (!m->in_setup && !err)
			leg_checked(m, i);
	} else {
		m->hbusy[i] = false;
		if (!err)
			m->lgen[i] = m->wgen[i];
		if (err && !m->in_setup) {
			leg_failed(m, i, err);
		} else if (err) {
			log_warn("mirror: leg %s: writing its header: %s", m->a->nodes[i].name,
				 strerror(err));
		}
		if (m->hagain[i] && !m->closing) {
			m->hagain[i] = false;
			hdr_submit(m, i, DEV_WRITE);
		}
	}
	if (m->in_setup && --m->setup_pending == 0)
		ev_loop_break(m->a->loop);
	if (m->closing && nothing_busy(m))
		ev_loop_break(m->a->loop);
}

/* ---- legs ---- */

static void leg_failed(struct mirror *m, size_t leg, int err)
{
	if (m->state[leg] == 'D' || m->closing)
		return;
	m->state[leg] = 'D';
	struct array *a = m->a;
	unsigned alive = count_state(m, 'A');
	if (alive == 0)
		m->last_good = (int)leg;
	log_warn("mirror: leg %s (%s) failed (%s); %u of %zu legs in sync%s", a->nodes[leg].name,
		 a->nodes[leg].spec, strerror(err), alive, a->n,
		 alive ? "" : ": IO fails until a leg is back");
	check_whole(m);
	bm_kick(m); /* the leg's state must be on disk before writes that missed it are answered */
	m->gen++;
	hdr_write_insync(m);
	verify_leg_lost(m, leg);
}

void mirror_leg_failed(struct mirror *m, size_t leg, int err)
{
	leg_failed(m, leg, err);
}

void mirror_release(struct mirror *m, struct dev_io **head, struct dev_io **tail)
{
	struct dev_io *list = *head;
	*head = *tail = NULL;
	while (list) {
		struct dev_io *p = list;
		list = p->dev_next;
		p->dev_next = NULL;
		mirror_submit(m->a, p, false);
	}
}

/* The in-sync leg with the fewest requests outstanding, or -1. */
static int pick_read_leg(struct array *a)
{
	struct mirror *m = a->priv;
	int best = -1;
	for (size_t i = 0; i < a->n; i++)
		if (m->state[i] == 'A' &&
		    (best < 0 || a->nodes[i].inflight < a->nodes[best].inflight))
			best = (int)i;
	return best;
}

bool mirror_leg_error(int err)
{
	return err == EIO || err == ENOTCONN || err == ECONNRESET || err == ETIMEDOUT ||
	       err == ESHUTDOWN || err == EPIPE;
}

/* ---- resync ----
 *
 * The region-copy engine (regcopy.h) walks the regions to copy, up to
 * nslots at once (one at a time would leave the legs idle for a round trip
 * per region: half of nbdcopy's speed), holds the writes to a region being
 * copied and starts its copy once the writes in flight to it are done.
 * Copying a region is the mirror's: read an in-sync leg, write the syncing
 * ones (or zero them, or compare checksums and fix what differs). */

static void sync_kick(struct mirror *m)
{
	if (m->sync.running)
		regcopy_kick(&m->sync);
	else
		ev_defer(m->a->loop, &m->sync_work);
}

static bool needs_full(const struct mirror *m)
{
	for (size_t i = 0; i < m->a->n; i++)
		if (m->state[i] == 'S' && m->full[i])
			return true;
	return false;
}

static void sync_finish(struct mirror *m)
{
	struct array *a = m->a;
	double s = (double)(ev_now_ns() - m->sync.start_ns) / 1e9;
	for (size_t i = 0; i < a->n; i++) {
		if (m->state[i] != 'S')
			continue;
		m->state[i] = 'A';
		m->full[i] = false;
		hdr_write(m, i);
		log_info("mirror: leg %s in sync again: %llu regions copied in %.1f s",
			 a->nodes[i].name, (unsigned long long)m->sync.done, s);
		event_fire("resync-done", a->nodes[i].name, a->nodes[i].spec,
			   "%llu regions copied in %.1f s", (unsigned long long)m->sync.done, s);
	}
	check_whole(m);
	bm_kick(m);
}

/* The slot is done with its region: writes that waited for it go on. */
static void slot_release(struct sync_slot *s)
{
	s->st = SLOT_IDLE;
	regcopy_release(s->rs);
}

/* The storage stops: a slot whose IO came back copies no more. */
static void slot_closing(struct mirror *m, struct sync_slot *s)
{
	s->st = SLOT_IDLE;
	s->rs->st = RC_FREE;
	if (nothing_busy(m))
		ev_loop_break(m->a->loop);
}

static void sync_read_done(struct dev_io *io, int err);
static void sync_write_done(struct dev_io *io, int err);
static void sync_status_done(struct dev_io *io, int err);

/* The region goes to every syncing leg: its bytes (DEV_WRITE, from the
 * slot's buffer) or zeroes. */
static void slot_write_targets(struct mirror *m, struct sync_slot *s, unsigned targets,
			       enum dev_op op, uint64_t off, uint64_t len)
{
	struct array *a = m->a;
	s->st = SLOT_WRITE;
	/* Count first: a memory leg answers inside dev_submit. */
	s->writes = targets;
	for (size_t i = 0; i < a->n; i++) {
		if (m->state[i] != 'S')
			continue;
		struct dev_io *w = &s->wr[i];
		memset(w, 0, sizeof(*w));
		w->op = op;
		w->off = off;
		w->len = len;
		w->buf = op == DEV_WRITE ? s->buf : NULL;
		w->done = sync_write_done;
		w->priv = s;
		dev_submit(a->nodes[i].dev, w);
	}
}
static void slot_read(struct mirror *m, struct sync_slot *s);

/* The slot's region asked of its source leg: its bytes (DEV_READ, into the
 * slot's buffer) or whether it is all zeroes (DEV_BLOCK_STATUS). */
static void slot_ask_source(struct mirror *m, struct sync_slot *s, enum slot_state st,
			    enum dev_op op, void (*done)(struct dev_io *, int))
{
	struct array *a = m->a;
	s->st = st;
	memset(&s->read, 0, sizeof(s->read));
	s->read.op = op;
	s->read.off = s->rs->off;
	s->read.len = s->rs->len;
	if (op == DEV_READ) {
		s->read.buf = s->buf;
	} else {
		s->read.ext = &s->ext;
		s->read.ext_max = 1;
	}
	s->read.done = done;
	s->read.priv = s;
	dev_submit(a->nodes[s->src].dev, &s->read);
}

/* A whole copy to legs that all give checksums compares before it copies:
 * a leg that is mostly alike (an old image of the leg put back, a disk
 * cloned before the mirror was made) gets only the blocks that differ. */
static bool csum_copy_ok(const struct mirror *m)
{
	if (!m->use_csum || !needs_full(m))
		return false;
	for (size_t i = 0; i < m->a->n; i++)
		if (m->state[i] == 'S' && !(m->a->nodes[i].dev->caps & DEV_CAP_CSUM))
			return false;
	return true;
}

static void cmp_done(struct legcmp *c, int err);
static void slot_copy(struct mirror *m, struct sync_slot *s);

/* Compare (and fix) the slot's region from byte off on, one legcmp piece. */
static void cmp_piece(struct mirror *m, struct sync_slot *s, uint64_t off)
{
	uint64_t end = s->rs->off + s->rs->len;
	s->cmp.resync = true;
	s->cmp.done = cmp_done;
	s->cmp.priv = s;
	legcmp_start(&s->cmp, off, MIN((uint64_t)LEGCMP_MAX, end - off), s->src,
		     mirror_legs_in(m, "S"), true, true);
}

static void sync_region_done(struct mirror *m, struct sync_slot *s, uint64_t len);

static void cmp_done(struct legcmp *c, int err)
{
	struct sync_slot *s = c->priv;
	struct mirror *m = s->m;
	if (m->closing) {
		slot_closing(m, s);
		return;
	}
	for (size_t i = 0; i < m->a->n; i++) {
		const struct legcmp_leg *l = &c->leg[i];
		if (!(c->legs & (1u << i)))
			continue;
		if (l->err) {
			leg_failed(m, i, l->err);
			continue;
		}
		m->resync_bytes_same += c->len - MIN(c->len, (uint64_t)l->ndiff * DEV_CSUM_BLOCK);
	}
	m->resync_bytes_copied += c->fixed_bytes;
	if (err) {
		leg_failed(m, (size_t)s->src, err);
		slot_copy(m, s); /* the region again, from another leg if any */
		return;
	}
	if (count_state(m, 'S') == 0) {
		slot_release(s);
		return;
	}
	uint64_t next = c->off + c->len;
	if (next < s->rs->off + s->rs->len) {
		cmp_piece(m, s, next);
		return;
	}
	sync_region_done(m, s, next - s->rs->off);
}

/* Copy the slot's region from an in-sync leg. In a whole copy (a new
 * mirror's initial sync, new media) the source is first asked whether the
 * region is all zeroes: then the targets are zeroed (a hole on a sparse
 * disk) instead of being sent a region of zeroes. */
static void slot_copy(struct mirror *m, struct sync_slot *s)
{
	struct array *a = m->a;
	int src = pick_read_leg(a);
	if (src < 0) {
		slot_release(s); /* the engine asks go(), which stops the pass */
		return;
	}
	s->src = src;
	if (csum_copy_ok(m)) {
		s->st = SLOT_CMP;
		cmp_piece(m, s, s->rs->off);
		return;
	}
	if (!needs_full(m) || !(a->nodes[src].dev->caps & DEV_CAP_EXTENTS)) {
		slot_read(m, s);
		return;
	}
	slot_ask_source(m, s, SLOT_STATUS, DEV_BLOCK_STATUS, sync_status_done);
}

static void sync_status_done(struct dev_io *io, int err)
{
	struct sync_slot *s = io->priv;
	struct mirror *m = s->m;
	if (m->closing) {
		slot_closing(m, s);
		return;
	}
	bool zero =
	    !err && io->ext_count >= 1 && s->ext.len >= io->len && (s->ext.flags & DEV_EXT_ZERO);
	unsigned targets = count_state(m, 'S');
	if (!zero || targets == 0) {
		slot_read(m, s); /* (which also handles no target left) */
		return;
	}
	m->regions_zeroed++;
	slot_write_targets(m, s, targets, DEV_WRITE_ZEROES, io->off, io->len);
}

static void slot_read(struct mirror *m, struct sync_slot *s)
{
	/* A comparing slot whose pass stopped comparing (a target lost its
	 * checksums at a reconnect) copies from then on. */
	if (!s->buf)
		s->buf = xmalloc(m->region);
	slot_ask_source(m, s, SLOT_READ, DEV_READ, sync_read_done);
}

static void sync_read_done(struct dev_io *io, int err)
{
	struct sync_slot *s = io->priv;
	struct mirror *m = s->m;
	array_bg_count(&m->a->nodes[s->src].resync, io->op, io->len, err);
	if (m->closing) {
		slot_closing(m, s);
		return;
	}
	if (err) {
		leg_failed(m, (size_t)s->src, err);
		slot_copy(m, s); /* from another leg, if any */
		return;
	}
	unsigned targets = count_state(m, 'S');
	if (targets == 0) { /* every target died meanwhile */
		slot_release(s);
		return;
	}
	slot_write_targets(m, s, targets, DEV_WRITE, io->off, io->len);
}

static void sync_write_done(struct dev_io *io, int err)
{
	struct sync_slot *s = io->priv;
	struct mirror *m = s->m;
	size_t leg = (size_t)(io - s->wr);
	array_bg_count(&m->a->nodes[leg].resync, io->op, io->len, err);
	if (err)
		leg_failed(m, leg, err);
	else if (io->op == DEV_WRITE)
		m->resync_bytes_copied += io->len;
	if (--s->writes)
		return;
	if (m->closing) {
		slot_closing(m, s);
		return;
	}
	sync_region_done(m, s, io->len);
}

/* The slot's region is on every target: the next one. */
static void sync_region_done(struct mirror *m, struct sync_slot *s, uint64_t len)
{
	m->regions_resynced++;
	s->st = SLOT_IDLE;
	regcopy_done(s->rs, len);
}

/* ---- the engine's hooks ---- */

/* The next region of this pass to copy, from `from` on. */
static uint64_t sync_pick(void *owner, uint64_t from)
{
	struct mirror *m = owner;
	if (needs_full(m))
		return from < m->nregions ? from : m->nregions;
	return mbm_next_set(wib_set(&m->bm, 0), from, m->nregions);
}

static bool sync_go(void *owner)
{
	struct mirror *m = owner;
	return count_state(m, 'S') && count_state(m, 'A');
}

/* Comparisons hold no region buffer: more of them at once. */
static unsigned sync_limit(void *owner)
{
	struct mirror *m = owner;
	return csum_copy_ok(m) ? m->nslots : m->ncopy_slots;
}

static void sync_copy(void *owner, struct regcopy_slot *rs)
{
	struct mirror *m = owner;
	slot_copy(m, &m->slots[rs->index]);
}

static void sync_release(void *owner, struct dev_io *p)
{
	struct mirror *m = owner;
	mirror_submit(m->a, p, false);
}

static void sync_ended(void *owner)
{
	struct mirror *m = owner;
	if (sync_go(m)) {
		sync_finish(m);
		return;
	}
	const char *why = count_state(m, 'A') ? "no leg left to sync" : "no in-sync leg left";
	log_warn("mirror: resync stopped: %s", why);
	event_fire("resync-stopped", NULL, NULL, "%s", why);
}

static const struct regcopy_ops sync_ops = {
    .pick = sync_pick,
    .go = sync_go,
    .limit = sync_limit,
    .copy = sync_copy,
    .release = sync_release,
    .ended = sync_ended,
};

/* A new pass, if there are legs to sync and one to sync them from. */
static void sync_step(struct ev_deferred *d)
{
	struct mirror *m = container_of(d, struct mirror, sync_work);
	if (m->closing || m->sync.running || !sync_go(m))
		return;
	uint64_t total = needs_full(m) ? m->nregions : mbm_count(wib_set(&m->bm, 0), m->nregions);
	log_info("mirror: resync of %llu regions starts", (unsigned long long)total);
	for (size_t i = 0; i < m->a->n; i++)
		if (m->state[i] == 'S')
			event_fire("resync-started", m->a->nodes[i].name, m->a->nodes[i].spec,
				   "%llu regions to copy", (unsigned long long)total);
	regcopy_start(&m->sync, total);
}

/* ---- requests ---- */

static uint64_t piece_max(struct array *a)
{
	uint64_t mx = 32u << 20;
	for (size_t i = 0; i < a->n; i++)
		if (a->nodes[i].dev->max_io && a->nodes[i].dev->max_io < mx)
			mx = a->nodes[i].dev->max_io;
	return mx;
}

static void finish(struct array *a, struct dev_io *p)
{
	struct mirror *m = a->priv;
	int err = rq_err(p);
	if (write_like(p->op)) {
		uint64_t r0 = p->off / m->region, r1 = (p->off + p->len - 1) / m->region;
		regcopy_write_end(&m->sync, p->off, p->len);
		verify_writes_done(m, r0, r1);
	}
	if ((rq_low(p) & RQ_F_NODEFAIL) && !err && p->op != DEV_READ) {
		/* A leg missed this write: its failure must be durable first,
		 * or a crash now could copy from the wrong leg. */
		rq_set(p, RQ_MODE_FINISH, 0);
		bm_wait(m, p);
		return;
	}
	if (p->op == DEV_READ)
		array_lend_finish(a, p, err);
	p->done(p, err);
}

static void put_ref(struct array *a, struct dev_io *p, int err)
{
	if (rq_put(p, err))
		finish(a, p);
}

static void submit_write(struct array *a, struct dev_io *p, bool resumed)
{
	struct mirror *m = a->priv;
	uint64_t r0 = p->off / m->region, r1 = (p->off + p->len - 1) / m->region;
	if (regcopy_hold(&m->sync, p->off, p->len, p) || verify_holds(m, p))
		return;
	if (!wib_durable(&m->bm, 0, r0, r1)) {
		for (uint64_t r = r0; r <= r1; r++)
			mbm_set(wib_set(&m->bm, 0), r);
		rq_set(p, RQ_MODE_BITS, 0);
		bm_wait(m, p);
		return;
	}
	uint64_t mx = piece_max(a);
	unsigned live = count_state(m, 'A') + count_state(m, 'S');
	uint64_t need = (p->len + mx - 1) / mx * live;
	if (a->nfree < need) {
		array_wait_push(a, p, resumed);
		return;
	}
	regcopy_write_start(&m->sync, p->off, p->len);
	for (uint64_t r = r0; r <= r1; r++) {
		mbm_set(m->touched, r);
		if (m->sweep_out)
			mbm_clear(m->sweep, r); /* not flushed by the sweep's FLUSH */
	}
	rq_set(p, 1, 0); /* held while sending */
	for (uint64_t done = 0; done < p->len;) {
		uint64_t len = MIN(mx, p->len - done);
		for (size_t i = 0; i < a->n; i++)
			if (m->state[i] == 'A' || m->state[i] == 'S')
				array_send_piece(a, array_child_get(a), p, i, p->op, p->off + done,
						 len, p->buf ? (char *)p->buf + done : NULL);
		done += len;
	}
	put_ref(a, p, 0);
}

static void submit_read(struct array *a, struct dev_io *p, bool resumed)
{
	int leg = pick_read_leg(a);
	uint64_t mx = p->op == DEV_READ ? piece_max(a) : p->len;
	if (a->nfree < (p->len + mx - 1) / mx) {
		array_wait_push(a, p, resumed);
		return;
	}
	rq_set(p, 1, 0);
	for (uint64_t done = 0; done < p->len;) {
		uint64_t len = MIN(mx, p->len - done);
		array_send_piece(a, array_child_get(a), p, (size_t)leg, p->op, p->off + done, len,
				 p->buf ? (char *)p->buf + done : NULL);
		done += len;
	}
	put_ref(a, p, 0);
}

static void submit_flush(struct array *a, struct dev_io *p, bool resumed)
{
	struct mirror *m = a->priv;
	unsigned live = count_state(m, 'A') + count_state(m, 'S');
	if (a->nfree < live) {
		array_wait_push(a, p, resumed);
		return;
	}
	rq_set(p, 1, 0);
	for (size_t i = 0; i < a->n; i++)
		if (m->state[i] == 'A' || m->state[i] == 'S')
			array_send_piece(a, array_child_get(a), p, i, DEV_FLUSH, 0, 0, NULL);
	put_ref(a, p, 0);
}

static void mirror_submit(struct array *a, struct dev_io *p, bool resumed)
{
	struct mirror *m = a->priv;
	if (count_state(m, 'A') == 0) {
		p->done(p, EIO);
		return;
	}
	if (p->op == DEV_FLUSH)
		submit_flush(a, p, resumed);
	else if (write_like(p->op))
		submit_write(a, p, resumed);
	else
		submit_read(a, p, resumed);
}

static void mirror_child_done(struct array *a, struct array_child *c, int err)
{
	struct mirror *m = a->priv;
	struct dev_io *p = c->parent;
	size_t leg = c->node;
	if (array_piece_lent(&c->io, err)) {
		array_lend_done(c, p); /* in flight on its leg until released */
		put_ref(a, p, 0);
		return;
	}
	if (err && mirror_leg_error(err)) {
		leg_failed(m, leg, err);
		if (c->io.op == DEV_READ || c->io.op == DEV_BLOCK_STATUS || c->io.op == DEV_CACHE) {
			int alt = pick_read_leg(a);
			if (alt >= 0) {
				/* Same piece, another leg, into the buffer. */
				struct dev_io io = c->io;
				memset(&c->io, 0, sizeof(c->io));
				c->io.op = io.op, c->io.flags = io.flags & ~DEV_F_BORROW;
				c->io.off = io.off;
				c->io.len = io.len, c->io.buf = io.buf, c->io.ext = io.ext;
				c->io.ext_max = io.ext_max, c->io.done = io.done, c->io.priv = c;
				c->node = (size_t)alt;
				c->start_ns = ev_now_ns();
				a->nodes[alt].inflight++;
				dev_submit(a->nodes[alt].dev, &c->io);
				return;
			}
		} else {
			rq_set(p, rq_low(p) | RQ_F_NODEFAIL, rq_err(p));
		}
		if (count_state(m, 'A'))
			err = 0; /* the others have it */
	}
	array_child_put(a, c);
	put_ref(a, p, err);
}

/* ---- suspend ---- */

static void leg_event(struct dev *d, int what, void *arg);

static int mirror_suspend(struct array *a, size_t leg, char *err, size_t errlen)
{
	struct mirror *m = a->priv;
	if (m->state[leg] == 'A' && count_state(m, 'A') == 1) {
		snprintf(err, errlen,
			 "%s is the only leg in sync: suspending it would stop the storage's IO",
			 a->nodes[leg].name);
		return -EBUSY;
	}
	/* Taken as missing: writes go on to the others and are marked in the
	 * bitmap; resume resyncs them. */
	m->susp[leg] = true;
	if (m->state[leg] != 'D') {
		m->state[leg] = 'D';
		log_info("mirror: leg %s suspended; %u of %zu legs in sync", a->nodes[leg].name,
			 count_state(m, 'A'), a->n);
		check_whole(m);
		bm_kick(m);
		m->gen++;
		hdr_write_insync(m);
		verify_leg_lost(m, leg);
	}
	return 0;
}

static void mirror_resume(struct array *a, size_t leg, bool new_dev)
{
	struct mirror *m = a->priv;
	m->susp[leg] = false;
	a->nodes[leg].dev->event = leg_event;
	a->nodes[leg].dev->event_arg = m;
	log_info("mirror: leg %s resumed%s; checking its header", a->nodes[leg].name,
		 new_dev ? " on a new device" : "");
	if (!m->hreading[leg])
		hdr_submit(m, leg, DEV_READ); /* leg_checked decides: dirty or whole copy */
}

/* A remote leg's connection went down or came back: act at once, so a leg
 * whose disk was swapped between two ticks is never read before its header
 * is checked. */
static void leg_event(struct dev *d, int what, void *arg)
{
	struct mirror *m = arg;
	struct array *a = m->a;
	for (size_t i = 0; i < a->n; i++) {
		if (a->nodes[i].dev != d)
			continue;
		if (what == DEV_EVENT_DOWN)
			leg_failed(m, i, EIO);
		else if (m->state[i] == 'D' && !m->hreading[i] && !m->susp[i])
			hdr_submit(m, i, DEV_READ);
	}
}

static void mirror_leg_moved(struct array *a, size_t leg)
{
	struct mirror *m = a->priv;
	a->nodes[leg].dev->event = leg_event;
	a->nodes[leg].dev->event_arg = m;
	/* The copy may have carried an older header block: stamp it. */
	hdr_write(m, leg);
	log_info("mirror: leg %s moved to %s", a->nodes[leg].name, a->nodes[leg].spec);
}

/* ---- housekeeping ---- */

/* A dead leg answered again and its header was read. */
static void leg_checked(struct mirror *m, size_t i)
{
	struct array *a = m->a;
	if (m->state[i] != 'D')
		return;
	if (m->hmatch[i] && m->hgen[i] < m->lgen[i]) {
		/* Ours, but older than what we last wrote on it: an old image
		 * of the leg put back. It missed more than the bitmap says. */
		log_warn("mirror: leg %s came back with generation %llu, older than its %llu: "
			 "copying it whole",
			 a->nodes[i].name, (unsigned long long)m->hgen[i],
			 (unsigned long long)m->lgen[i]);
		m->hmatch[i] = false;
	}
	if (!m->hmatch[i]) {
		if (count_state(m, 'A') == 0) {
			log_err("mirror: leg %s came back without this storage's header and no leg "
				"is in sync: nothing to copy from",
				a->nodes[i].name);
			return;
		}
		m->state[i] = 'S';
		m->full[i] = true;
		log_warn("mirror: leg %s came back without this storage's header (new or replaced "
			 "media): copying it whole",
			 a->nodes[i].name);
	} else if (count_state(m, 'A') == 0) {
		if ((int)i != m->last_good)
			return; /* only the last leg in sync has the latest data */
		m->state[i] = 'A';
		m->gen++;
		hdr_write_insync(m);
		log_info("mirror: leg %s is back; it was the last in sync", a->nodes[i].name);
		check_whole(m);
		bm_kick(m);
		if (count_state(m, 'S') && !m->sync.running)
			sync_kick(m); /* a resync its loss stopped goes on */
		return;
	} else {
		m->state[i] = 'S';
		log_info("mirror: leg %s is back; resyncing %llu dirty regions", a->nodes[i].name,
			 (unsigned long long)mbm_count(wib_set(&m->bm, 0), m->nregions));
	}
	if (!m->sync.running)
		sync_kick(m);
}

static void sweep_done(struct dev_io *io, int err)
{
	struct mirror *m = io->priv;
	size_t i = (size_t)(io - m->sweep_io);
	m->sweep_out--;
	if (m->closing) {
		/* mirror_close waits for this (or the nodes being closed answer
		 * it): the bits stay as they are; its own FLUSH (legs_flushed)
		 * needs to know that one failed. */
		if (err) {
			m->sweep_failed = true;
			if (mirror_leg_error(err) && m->state[i] == 'A') {
				/* Recorded on the others' headers (mirror_close):
				 * the next start must not copy from it. */
				m->state[i] = 'D';
				log_warn("mirror: leg %s failed its flush at stop (%s)",
					 m->a->nodes[i].name, strerror(err));
			}
		}
		if (nothing_busy(m))
			ev_loop_break(m->a->loop);
		return;
	}
	if (err) {
		m->sweep_failed = true;
		if (mirror_leg_error(err))
			leg_failed(m, i, err); /* what it acknowledged may be lost */
		else
			log_warn("mirror: leg %s: flush: %s", m->a->nodes[i].name, strerror(err));
	}
	if (m->sweep_out)
		return;
	/* Only while every leg is still in sync: a leg that failed meanwhile
	 * may lack those writes, and its resync needs their bits. */
	bool cleared = false;
	if (!m->sweep_failed && count_state(m, 'A') == m->a->n) {
		for (uint64_t r = mbm_next_set(m->sweep, 0, m->nregions); r < m->nregions;
		     r = mbm_next_set(m->sweep, r + 1, m->nregions)) {
			if (!m->sync.wcount[r]) {
				mbm_clear(wib_set(&m->bm, 0), r);
				cleared = true;
			}
		}
	}
	memset(m->sweep, 0, m->bm.set_len);
	m->sweep_failed = false;
	if (cleared)
		bm_kick(m);
}

/* A FLUSH of every leg for the sweep: the regions marked in m->sweep are
 * cleaned when all of them succeed. */
static void sweep_flush(struct mirror *m)
{
	struct array *a = m->a;
	m->sweep_out = (unsigned)a->n;
	m->sweep_failed = false;
	for (size_t i = 0; i < a->n; i++) {
		struct dev_io *io = &m->sweep_io[i];
		memset(io, 0, sizeof(*io));
		io->op = DEV_FLUSH;
		io->done = sweep_done;
		io->priv = m;
		dev_submit(a->nodes[i].dev, io);
	}
}

static void tick(struct ev_timer *t)
{
	struct mirror *m = container_of(t, struct mirror, tick);
	struct array *a = m->a;
	/* A leg whose connection broke is dead even before IO finds out. */
	for (size_t i = 0; i < a->n; i++)
		if (m->state[i] != 'D' && array_node_link_down(&a->nodes[i]))
			leg_failed(m, i, EIO);
	/* Dead remote legs that reconnected come back: their header first. */
	for (size_t i = 0; i < a->n; i++)
		if (m->state[i] == 'D' && !m->hreading[i] && !m->susp[i] &&
		    !strcmp(a->nodes[i].dev->ops->kind, "nbd") &&
		    !strcmp(dev_nbd_state(a->nodes[i].dev), "up"))
			hdr_submit(m, i, DEV_READ);
	/* Sweep: regions nobody wrote for a whole tick are cleaned once a
	 * FLUSH of every leg has made their writes durable (sweep_done). */
	if (count_state(m, 'A') == a->n && !m->sync.running && !m->sweep_out) {
		bool any = false;
		for (uint64_t r = mbm_next_set(wib_set(&m->bm, 0), 0, m->nregions); r < m->nregions;
		     r = mbm_next_set(wib_set(&m->bm, 0), r + 1, m->nregions)) {
			if (!m->sync.wcount[r] && !mbm_test(m->touched, r)) {
				mbm_set(m->sweep, r);
				any = true;
			}
		}
		if (any)
			sweep_flush(m);
	}
	memset(m->touched, 0, m->bm.set_len);
	verify_tick(m);
	ev_timer_start(a->loop, &m->tick, TICK_NS);
}

static void mirror_show(struct array *a, struct strbuf *out, const char *prefix)
{
	struct mirror *m = a->priv;
	if (!m)
		return;
	char p[512];
#define ATTR(leaf) (snprintf(p, sizeof(p), "%s/%s", prefix, leaf), p)
	char letters[MIRROR_MAX_LEGS + 1];
	for (size_t i = 0; i < a->n; i++)
		letters[i] = m->state[i];
	letters[a->n] = '\0';
	sb_attr_str(out, ATTR("health"), "%s", letters);
	uint64_t dirty = mbm_count(wib_set(&m->bm, 0), m->nregions);
	/* Regions every leg has: all when in sync; while a resync runs, those
	 * not still to copy; with a dead leg, those it did not miss. */
	uint64_t behind = 0;
	if (m->sync.running)
		behind = m->sync.total > m->sync.done ? m->sync.total - m->sync.done : 0;
	else if (count_state(m, 'A') != a->n)
		behind = needs_full(m) ? m->nregions : dirty;
	sb_attr_str(out, ATTR("sync"), "%llu/%llu regions",
		    (unsigned long long)(m->nregions - behind), (unsigned long long)m->nregions);
	sb_attr_num(out, ATTR("region_size"), m->region);
	sb_attr_num(out, ATTR("resync/rate"), m->sync.rate);
	sb_attr_num(out, ATTR("bitmap/dirty"), dirty);
	sb_attr_num(out, ATTR("resync/regions_copied"), m->regions_resynced);
	sb_attr_num(out, ATTR("resync/regions_zeroed"), m->regions_zeroed);
	sb_attr_num(out, ATTR("resync/bytes_same"), m->resync_bytes_same);
	sb_attr_num(out, ATTR("resync/bytes_copied"), m->resync_bytes_copied);
	sb_attr_str(out, ATTR("csum"), "%s", m->use_csum ? "on" : "off");
	if (m->sync.running) {
		const struct regcopy *rc = &m->sync;
		sb_attr_str(out, ATTR("resync/progress"), "%llu/%llu regions",
			    (unsigned long long)rc->done, (unsigned long long)rc->total);
		sb_attr_num(out, ATTR("resync/percent"),
			    rc->total ? rc->done * 100 / rc->total : 100);
		sb_attr_str(out, ATTR("resync/mib_s"), "%.1f", regcopy_mib_s(rc));
		sb_attr_num(out, ATTR("resync/eta_s"), regcopy_eta_s(rc));
	}
#undef ATTR
	verify_show(m, out, prefix);
}

static void mirror_metrics(struct array *a, struct mx *mx, const char *name)
{
	struct mirror *m = a->priv;
	if (!m)
		return;
	struct mx_labels l;
	mx_labels_init(&l);
	mx_label(&l, "storage", name);
	static const struct {
		char letter;
		const char *word;
	} health[] = {{'A', "in_sync"}, {'S', "syncing"}, {'D', "dead"}};
	mx_family(mx, "dst_mirror_leg_health", MX_GAUGE,
		  "Health of a mirror leg: 1 for the state it is in (in_sync, syncing, dead).");
	for (size_t i = 0; i < a->n; i++) {
		struct mx_labels ll = mx_labels_with(&l, "node", a->nodes[i].name);
		for (size_t k = 0; k < ARRAY_SIZE(health); k++) {
			struct mx_labels hl = mx_labels_with(&ll, "health", health[k].word);
			mx_gauge(mx, "dst_mirror_leg_health", &hl, m->state[i] == health[k].letter);
		}
	}
	uint64_t dirty = mbm_count(wib_set(&m->bm, 0), m->nregions);
	uint64_t behind = 0; /* as mirror_show counts it */
	if (m->sync.running)
		behind = m->sync.total > m->sync.done ? m->sync.total - m->sync.done : 0;
	else if (count_state(m, 'A') != a->n)
		behind = needs_full(m) ? m->nregions : dirty;
	mx_family(mx, "dst_mirror_regions", MX_GAUGE, "Regions of the mirror's bitmap.");
	mx_gauge(mx, "dst_mirror_regions", &l, m->nregions);
	mx_family(mx, "dst_mirror_regions_in_sync", MX_GAUGE,
		  "Regions every leg holds (all of them when the mirror is in sync).");
	mx_gauge(mx, "dst_mirror_regions_in_sync", &l, m->nregions - behind);
	mx_family(mx, "dst_mirror_regions_dirty", MX_GAUGE,
		  "Regions marked in the write-intent bitmap.");
	mx_gauge(mx, "dst_mirror_regions_dirty", &l, dirty);
	mx_family(mx, "dst_mirror_region_size_bytes", MX_GAUGE, "Size of one region.");
	mx_gauge(mx, "dst_mirror_region_size_bytes", &l, m->region);
	mx_family(mx, "dst_resync_running", MX_GAUGE, "1 while a resync pass runs.");
	mx_gauge(mx, "dst_resync_running", &l, m->sync.running);
	mx_family(mx, "dst_resync_pass_regions", MX_GAUGE,
		  "Regions the current (or last) resync pass has to copy.");
	mx_gauge(mx, "dst_resync_pass_regions", &l, m->sync.total);
	mx_family(mx, "dst_resync_done_regions", MX_GAUGE,
		  "Regions the current (or last) resync pass has copied.");
	mx_gauge(mx, "dst_resync_done_regions", &l, m->sync.done);
	mx_family(mx, "dst_resync_done_bytes", MX_GAUGE,
		  "Bytes the current (or last) resync pass has copied.");
	mx_gauge(mx, "dst_resync_done_bytes", &l, m->sync.bytes);
	mx_family(mx, "dst_resync_regions_copied", MX_COUNTER,
		  "Regions copied by resyncs since the daemon started.");
	mx_counter(mx, "dst_resync_regions_copied", &l, m->regions_resynced);
	mx_family(mx, "dst_resync_regions_zeroed", MX_COUNTER,
		  "Of those, regions zero on the source, zeroed on the target instead of copied.");
	mx_counter(mx, "dst_resync_regions_zeroed", &l, m->regions_zeroed);
	mx_family(mx, "dst_resync_same_bytes", MX_COUNTER,
		  "Bytes of target legs whole resyncs found identical by checksum and did not "
		  "move.");
	mx_counter(mx, "dst_resync_same_bytes", &l, m->resync_bytes_same);
	mx_family(mx, "dst_resync_copied_bytes", MX_COUNTER,
		  "Bytes resyncs wrote to target legs since the daemon started.");
	mx_counter(mx, "dst_resync_copied_bytes", &l, m->resync_bytes_copied);
	verify_metrics(m, mx, name);
}

/* ---- set-up and tear-down ---- */

static uint64_t mirror_layout(const struct array_node *nodes, size_t n, const struct alg_geom *geo,
			      char *err, size_t errlen)
{
	if (n < 2) {
		snprintf(err, errlen,
			 "alg_mirror needs at least 2 legs (it has %zu); add one with "
			 "dst add",
			 n);
		return 0;
	}
	uint64_t size = UINT64_MAX;
	for (size_t i = 0; i < n; i++) {
		uint64_t data = leghdr_offset(nodes[i].size * 512);
		if (!data) {
			snprintf(err, errlen, "alg_mirror: leg %s is too small (%llu sectors)",
				 nodes[i].name, (unsigned long long)nodes[i].size);
			return 0;
		}
		size = MIN(size, data); /* the smallest leg wins */
	}
	return size;
}

/* What the bitmap file said (wib_open): which legs were in sync. */
static void load(struct mirror *m, bool loaded, const struct mbm_header *h, bool same_geometry)
{
	struct array *a = m->a;
	if (!loaded) { /* no bitmap yet: check_headers tells a new mirror */
		for (size_t i = 0; i < a->n; i++)
			m->state[i] = 'A';
		m->fresh = true;
		return;
	}
	if (!same_geometry)
		log_warn("mirror %s: region size or device size changed; legs not known to be in "
			 "sync are copied whole",
			 m->bm.path);
	/* Which legs were in sync; the source is settled with the legs'
	 * headers (check_headers). */
	for (size_t i = 0; i < a->n; i++) {
		m->state[i] = 'S';
		m->full[i] = true;
		for (uint32_t k = 0; k < h->nlegs; k++) {
			if (strcmp(h->legs[k].spec, a->nodes[i].spec) != 0)
				continue;
			m->full[i] = !same_geometry;
			if (h->legs[k].in_sync)
				m->state[i] = 'A';
		}
	}
}

/* A mirror that has run, started where its bitmap file is not (moved to
 * another host, or the file lost): if its legs' labels say it stopped
 * cleanly, they are alike; if not, writes may have been in flight when it
 * went, and no bitmap says where: the leg with the newest generation is
 * copied whole to the others. */
static void no_bitmap_here(struct mirror *m)
{
	struct array *a = m->a;
	int best = -1;
	bool clean = true;
	for (size_t i = 0; i < a->n; i++) {
		if (m->hfail[i] || !m->hmatch[i])
			continue;
		clean = clean && m->hclean[i];
		if (best < 0 || m->hgen[i] > m->hgen[best])
			best = (int)i;
	}
	if (clean || best < 0) {
		log_info("mirror %s: no bitmap file here; the legs' labels say the mirror stopped "
			 "cleanly: nothing to resync",
			 m->bm.path);
		return;
	}
	for (size_t i = 0; i < a->n; i++) {
		if ((int)i == best || m->hfail[i])
			continue;
		m->state[i] = 'S';
		m->full[i] = true;
	}
	log_warn("mirror %s: no bitmap file here and the mirror did not stop cleanly (its "
		 "labels say so): copying %s (generation %llu) whole to the other legs",
		 m->bm.path, a->nodes[best].name, (unsigned long long)m->hgen[best]);
}

/* Read every leg's header: legs without our UUID are copied whole; a
 * mirror where no leg has it is new. Then stamp the in-sync legs. */
static int check_headers(struct mirror *m, char *err, size_t errlen)
{
	struct array *a = m->a;
	m->in_setup = true;
	for (size_t i = 0; i < a->n; i++)
		hdr_submit(m, i, DEV_READ);
	if (m->setup_pending)
		ev_run(a->loop);
	for (size_t i = 0; i < a->n; i++)
		m->lgen[i] = m->hgen[i];
	/* Legs that cannot be reached start dead; they are checked and
	 * resynced when they answer. But the data must come from a leg that
	 * had it: one the bitmap says was in sync. */
	unsigned reachable = 0, insync = 0, insync_reachable = 0, down = 0;
	for (size_t i = 0; i < a->n; i++) {
		reachable += !m->hfail[i];
		insync += m->state[i] == 'A';
		insync_reachable += m->state[i] == 'A' && !m->hfail[i];
		down += m->hfail[i];
	}
	if (!reachable) {
		snprintf(err, errlen, "no leg of the mirror can be reached");
		return -1;
	}
	if (down && !insync_reachable) {
		snprintf(err, errlen, "%s: starting from the legs that answer could serve old data",
			 insync ? "the legs that were in sync when the mirror stopped cannot be "
				  "reached"
				: "a leg cannot be reached and none is known to be in sync");
		return -1;
	}
	for (size_t i = 0; i < a->n; i++) {
		if (!m->hfail[i])
			continue;
		m->state[i] = 'D';
		log_warn("mirror: leg %s cannot be reached: starting without it", a->nodes[i].name);
	}
	int first = -1;
	for (size_t i = 0; i < a->n; i++)
		if (m->hmatch[i] && first < 0)
			first = (int)i;
	if (first < 0 && down) {
		snprintf(err, errlen, "a new mirror needs every leg at its first start");
		return -1;
	}
	/* New: no leg has run in this mirror yet (no header, or only the
	 * labels dst add wrote, generation 0), and no bitmap. */
	bool fresh = first < 0;
	if (m->fresh && !fresh) {
		fresh = true;
		for (size_t i = 0; i < a->n; i++)
			if (!m->hfail[i] && (!m->hmatch[i] || m->hgen[i] != 0))
				fresh = false;
	}
	if (fresh && down) {
		snprintf(err, errlen, "a new mirror needs every leg at its first start");
		return -1;
	}
	if (fresh) {
		/* The legs may hold different bytes: until the others have
		 * the first leg's, only it serves reads. */
		for (size_t i = 0; i < a->n; i++) {
			bool src = i == 0 || m->assume_clean;
			m->state[i] = src ? 'A' : 'S';
			m->full[i] = !src;
		}
		memset(wib_set(&m->bm, 0), 0, m->bm.set_len);
		if (m->assume_clean)
			log_info("mirror: a new mirror, its legs taken as identical "
				 "(--assume-clean)");
		else
			log_info(
			    "mirror: a new mirror: copying %s to the other legs (initial sync)",
			    a->nodes[0].name);
	} else {
		if (m->fresh)
			no_bitmap_here(m);
		for (size_t i = 0; i < a->n; i++) {
			if (m->hfail[i])
				continue;
			if (m->hmatch[i] && m->hgen[i] == 0) {
				/* Labelled by dst add and never in sync since: the
				 * initial sync (or its whole copy) did not finish. */
				m->state[i] = 'S';
				m->full[i] = true;
				log_warn("mirror: leg %s was never in sync: it is copied whole",
					 a->nodes[i].name);
				continue;
			}
			if (m->hmatch[i])
				continue;
			m->state[i] = 'S';
			m->full[i] = true;
			log_warn("mirror: leg %s has no header of this storage (new or replaced "
				 "media): it is copied whole",
				 a->nodes[i].name);
		}
		if (count_state(m, 'A') == 0) {
			/* Every leg was lost before dstd stopped: the one lost
			 * last has every acknowledged write, and its header the
			 * highest generation (each loss bumps it on the legs
			 * still in sync). */
			int best = first;
			for (size_t i = 0; i < a->n; i++)
				if (m->hmatch[i] && m->hgen[i] > m->hgen[best])
					best = (int)i;
			m->state[best] = 'A';
			m->full[best] = false;
			log_warn("mirror: no leg was in sync when dstd stopped; %s has the newest "
				 "generation (%llu) and is taken as the source",
				 a->nodes[best].name, (unsigned long long)m->hgen[best]);
		}
		int primary = -1;
		for (size_t i = 0; i < a->n && primary < 0; i++)
			if (m->state[i] == 'A')
				primary = (int)i;
		uint64_t dirty = mbm_count(wib_set(&m->bm, 0), m->nregions);
		if (dirty && primary >= 0) {
			/* dstd stopped with writes maybe half done: until the
			 * dirty regions are copied from the primary, only it
			 * serves reads. */
			for (size_t i = 0; i < a->n; i++)
				if ((int)i != primary && m->state[i] == 'A')
					m->state[i] = 'S';
			log_warn("mirror %s: %llu dirty regions: resyncing them from %s",
				 m->bm.path, (unsigned long long)dirty, a->nodes[primary].name);
		}
	}
	m->gen++;
	for (size_t i = 0; i < a->n; i++)
		if (m->state[i] == 'A')
			hdr_submit(m, i, DEV_WRITE);
	if (m->setup_pending)
		ev_run(a->loop);
	m->in_setup = false;
	check_whole(m);
	for (size_t i = 0; i < a->n; i++) {
		if (m->state[i] == 'A' && m->hio[i].op == DEV_WRITE && m->hbusy[i]) {
			snprintf(err, errlen, "leg %s: header write did not finish",
				 a->nodes[i].name);
			return -1;
		}
	}
	return 0;
}

static int mirror_set(struct array *a, const char *key, uint64_t val, char *err, size_t errlen)
{
	struct mirror *m = a->priv;
	if (!strcmp(key, "csum")) {
		m->use_csum = val != 0;
		return 0;
	}
	if (strcmp(key, "resync-rate") != 0) {
		snprintf(err, errlen, "alg_mirror has no setting %s", key);
		return -ENOTSUP;
	}
	regcopy_set_rate(&m->sync, val);
	return 0;
}

static int mirror_setup(struct array *a, const struct alg_conf *mc, char *err, size_t errlen)
{
	if (a->n > MIRROR_MAX_LEGS) {
		snprintf(err, errlen, "alg_mirror: at most %u legs", MIRROR_MAX_LEGS);
		return -1;
	}
	struct mirror *m = xcalloc(1, sizeof(*m));
	m->a = a;
	m->region = mc->region ? mc->region : MBM_DEFAULT_REGION;
	m->nregions = (a->dev.size + m->region - 1) / m->region;
	size_t bits_len = mbm_bits_size(m->nregions);
	m->touched = xcalloc(1, bits_len);
	m->sweep = xcalloc(1, bits_len);
	m->sweep_io = xcalloc(a->n, sizeof(*m->sweep_io));
	m->state = xcalloc(a->n, 1);
	m->full = xcalloc(a->n, sizeof(*m->full));
	m->nslots = (unsigned)MAX(1, MIN(SYNC_SLOTS_MAX, SYNC_CMP_INFLIGHT / m->region));
	m->ncopy_slots = (unsigned)MAX(1, MIN(m->nslots, SYNC_INFLIGHT / m->region));
	m->slots = xcalloc(m->nslots, sizeof(*m->slots));
	regcopy_init(&m->sync, a->loop, &sync_ops, m, m->region, a->dev.size, m->nslots);
	regcopy_set_rate(&m->sync, mc->resync_rate);
	for (unsigned k = 0; k < m->nslots; k++) {
		m->slots[k].m = m;
		m->slots[k].rs = &m->sync.slots[k];
		m->slots[k].wr = xcalloc(a->n, sizeof(*m->slots[k].wr));
		if (k < m->ncopy_slots)
			m->slots[k].buf = xmalloc(m->region);
		legcmp_init(&m->slots[k].cmp, a, MIN(m->region, (uint64_t)LEGCMP_MAX));
	}
	m->hio = xcalloc(a->n, sizeof(*m->hio));
	m->hbuf = xcalloc(a->n, LEGHDR_SIZE);
	m->hbusy = xcalloc(a->n, sizeof(bool));
	m->hagain = xcalloc(a->n, sizeof(bool));
	m->hreading = xcalloc(a->n, sizeof(bool));
	m->hmatch = xcalloc(a->n, sizeof(bool));
	m->hfail = xcalloc(a->n, sizeof(bool));
	m->whole = true; /* a mirror that starts with a leg out says so */
	m->hgen = xcalloc(a->n, sizeof(*m->hgen));
	m->hclean = xcalloc(a->n, sizeof(bool));
	m->lgen = xcalloc(a->n, sizeof(*m->lgen));
	m->wgen = xcalloc(a->n, sizeof(*m->wgen));
	m->susp = xcalloc(a->n, sizeof(bool));
	memcpy(m->uuid, mc->uuid, 16);
	snprintf(m->name, sizeof(m->name), "%s", mc->name ? mc->name : "");
	m->assume_clean = mc->assume_clean;
	m->use_csum = !mc->no_csum;
	m->last_good = -1;
	m->bm.fd = -1;
	m->sync_work.fn = sync_step;
	m->tick.fn = tick;
	a->priv = m;
	bool loaded, same;
	struct mbm_header h;
	if (wib_open(&m->bm, a->loop, mc->bitmap_path, m->region, m->nregions, 1, &loaded, &h,
		     &same, err, errlen) < 0)
		return -1;
	m->bm.header = bm_header;
	m->bm.written = bm_written;
	m->bm.owner = m;
	load(m, loaded, &h, same);
	if (check_headers(m, err, errlen) < 0 || wib_write_sync(&m->bm, err, errlen) < 0 ||
	    wib_start_async(&m->bm, err, errlen) < 0)
		return -1;
	ev_timer_start(a->loop, &m->tick, TICK_NS);
	for (size_t i = 0; i < a->n; i++) {
		a->nodes[i].dev->event = leg_event;
		a->nodes[i].dev->event_arg = m;
	}
	if (count_state(m, 'S'))
		sync_kick(m);
	verify_load(m);
	return 0;
}

/* At a clean stop: a FLUSH of every leg, waited for. True if all succeeded:
 * what they acknowledged is durable, and the bitmap may say so. */
static bool legs_flushed(struct mirror *m)
{
	sweep_flush(m);
	if (m->sweep_out)
		ev_run(m->a->loop);
	bool ok = !m->sweep_failed;
	m->sweep_failed = false;
	return ok;
}

static void mirror_close(struct array *a)
{
	struct mirror *m = a->priv;
	if (!m)
		return;
	m->closing = true;
	m->bm.closing = true; /* a write in flight lands; what waits for it, waits */
	ev_timer_stop(a->loop, &m->tick);
	regcopy_close(&m->sync);
	ev_defer_cancel(a->loop, &m->bm.work);
	ev_defer_cancel(a->loop, &m->sync_work);
	/* A bitmap write in flight (a local file: it lands) must finish
	 * before the final one, and a sweep's FLUSH before legs_flushed uses
	 * sweep_io again: either may end the loop run while the other is
	 * still out. Comparisons (a verify's, a resync's) finish too: they go
	 * on writing when their reads come back, and the legs close next. */
	verify_close(m);
	while (m->bm.busy || m->sweep_out || verify_io_busy(m) || cmp_busy(m))
		ev_run(a->loop);
	/* A clean stop with every leg in sync leaves nothing to resync, once
	 * a FLUSH of every leg made their writes durable (a leg that
	 * acknowledged a write into a volatile cache may still fail it). */
	bool idle =
	    !m->sync.running && regcopy_idle(&m->sync) && !m->bm.cur_head && !m->bm.next_head;
	bool clean = m->bm.fd >= 0 && idle && count_state(m, 'A') == a->n;
	if (clean && !legs_flushed(m)) {
		log_warn("mirror: a leg failed its flush at stop: the bitmap keeps its dirty "
			 "regions, resynced at the next start");
		clean = false;
		if (count_state(m, 'A') < a->n && count_state(m, 'A') > 0) {
			m->gen++;
			hdr_write_insync(m);
			if (!nothing_busy(m))
				ev_run(a->loop);
		}
	}
	if (clean) {
		char err[256];
		memset(wib_set(&m->bm, 0), 0, m->bm.set_len);
		if (wib_write_sync(&m->bm, err, sizeof(err)) < 0)
			log_warn("mirror: %s", err);
		/* And on the legs: started elsewhere without this bitmap, the
		 * mirror knows it needs no resync. */
		m->stop_clean = true;
		for (size_t i = 0; i < a->n; i++)
			if (a->nodes[i].label_off && !m->hbusy[i])
				hdr_submit(m, i, DEV_WRITE);
		if (!nothing_busy(m))
			ev_run(a->loop);
	}
	for (size_t i = 0; i < a->n; i++)
		a->nodes[i].dev->event = NULL;
}

static void mirror_free(struct array *a)
{
	struct mirror *m = a->priv;
	if (!m)
		return;
	wib_free(&m->bm);
	free(m->touched);
	free(m->sweep);
	free(m->sweep_io);
	regcopy_free(&m->sync);
	free(m->state);
	free(m->full);
	for (unsigned k = 0; m->slots && k < m->nslots; k++) {
		free(m->slots[k].wr);
		free(m->slots[k].buf);
		legcmp_free(&m->slots[k].cmp);
	}
	verify_free(m);
	free(m->slots);
	free(m->hio);
	free(m->hbuf);
	free(m->hbusy);
	free(m->hagain);
	free(m->hreading);
	free(m->hmatch);
	free(m->hfail);
	free(m->hgen);
	free(m->hclean);
	free(m->lgen);
	free(m->wgen);
	free(m->susp);
	free(m);
	a->priv = NULL;
}

/* A leg moves (dst replace) as a linear node does: the old leg stays in
 * sync and serves until the new one has everything. */
static int mirror_migrate_check(struct array *a, size_t i, char *err, size_t errlen)
{
	struct mirror *m = a->priv;
	if (m->state[i] != 'A') {
		snprintf(err, errlen, "mirror leg %s is not in sync (%c): wait for its resync",
			 a->nodes[i].name, m->state[i]);
		return -EBUSY;
	}
	if (verify_running(m)) {
		/* Its repairs go to the old leg, behind the copy. */
		snprintf(err, errlen,
			 "a dst verify is running: wait for it or stop it (dst verify NAME "
			 "--abort)");
		return -EBUSY;
	}
	return 0;
}

const struct alg_ops alg_mirror = {
    .name = "alg_mirror",
    .layout = mirror_layout,
    .can_grow = false,
    .min_nodes = 2,
    .max_nodes = MIRROR_MAX_LEGS,
    .redundant = true,
    .pipe_whole = true,
    .health_attr = "leg",
    .node_word = "leg",
    .setup = mirror_setup,
    .submit = mirror_submit,
    .piece_done = mirror_child_done,
    .suspend = mirror_suspend,
    .resume = mirror_resume,
    .moved = mirror_leg_moved,
    .migrate_check = mirror_migrate_check,
    .close = mirror_close,
    .free = mirror_free,
    .health = mirror_health,
    .show = mirror_show,
    .metrics = mirror_metrics,
    .set = mirror_set,
    .verify_start = mirror_verify_start,
    .verify_abort = mirror_verify_abort,
};
