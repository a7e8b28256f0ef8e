/* parity_sync.c - alg_parity's nodes and its resync: a node lost (IO error,
 * connection down, dst suspend) and back, the write-intent bitmap's sweep,
 * and the resync that makes rows whole again, on the region-copy engine
 * (regcopy.h):
 *
 *   - a node back after an absence gets its chunks rebuilt from the others
 *     in the regions written meanwhile (SET_BEHIND), a node on a new disk
 *     (dst replace of a dead node, dst resume onto a new device) in all;
 *   - after a crash, the regions that had writes in flight (SET_INFLIGHT,
 *     loaded as `stale`) get their parity recomputed from their data;
 *   - a new storage's rows all get parity (the initial sync), unless it was
 *     created with --assume-clean.
 *
 * A row is made whole by reading K chunks of it (its data chunks when its
 * parity is in doubt), decoding the chunks wanted and writing them. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/event.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/strbuf.h"
#include "common/util.h"
#include "parity_int.h"

#define TICK_NS	   1000000000ull
#define SYNC_SLOTS 4u
#define DEF_REGION (1u << 20) /* node bytes per bitmap bit, at least a chunk */

static uint8_t *set_bits(struct parity *pa, unsigned set)
{
	return wib_set(&pa->bm, set);
}

bool parity_node_error(int err)
{
	return err == EIO || err == ENOTCONN || err == ECONNRESET || err == ETIMEDOUT ||
	       err == ESHUTDOWN || err == EPIPE;
}

void parity_sync_kick(struct parity *pa)
{
	if (pa->sync.running)
		regcopy_kick(&pa->sync);
	else if (!pa->closing)
		ev_defer(pa->a->loop, &pa->sync_work);
}

/* degraded: the storage was whole and a node is out; healthy: all in sync
 * again. Said on the change only. */
static void parity_check_whole(struct parity *pa)
{
	unsigned in_sync = parity_count(pa, 'A');
	bool whole = in_sync == pa->n;
	if (whole == pa->whole)
		return;
	pa->whole = whole;
	if (whole)
		event_fire("healthy", NULL, NULL, "all %u nodes in sync", pa->n);
	else
		event_fire("degraded", NULL, NULL, "%u of %u nodes in sync", in_sync, pa->n);
}

/* Node i is out: a pass rebuilding it no longer does (the regions it did
 * may be written around it now; it is rebuilt again when it is back). */
static void node_out(struct parity *pa, size_t i)
{
	pa->state[i] = 'D';
	pa->sync_nodes &= ~(1u << i);
}

void parity_node_failed(struct parity *pa, size_t node, int err)
{
	if (pa->state[node] == 'D')
		return;
	struct array *a = pa->a;
	node_out(pa, node);
	log_warn("parity: node %s (%s) failed: %s; %u of %u nodes in sync, IO goes on degraded",
		 a->nodes[node].name, a->nodes[node].spec, strerror(err), parity_count(pa, 'A'),
		 pa->n);
	parity_check_whole(pa);
	wib_kick(&pa->bm); /* the header says it is out of sync */
	parity_sync_kick(pa);
}

/* A node is back (its connection, a resume): its chunks are rebuilt where
 * they are behind. */
static void node_back(struct parity *pa, size_t i, bool new_disk)
{
	struct array *a = pa->a;
	if (pa->state[i] != 'D' || pa->susp[i])
		return;
	pa->state[i] = 'S';
	pa->full[i] = pa->full[i] || new_disk;
	log_info("parity: node %s is back; rebuilding its chunks in %s", a->nodes[i].name,
		 pa->full[i] ? "every region" : "the regions written while it was out");
	parity_sync_kick(pa);
}

static void node_event(struct dev *d, int what, void *arg)
{
	struct parity *pa = arg;
	for (unsigned i = 0; i < pa->n; i++) {
		if (pa->a->nodes[i].dev != d)
			continue;
		if (what == DEV_EVENT_DOWN)
			parity_node_failed(pa, i, EIO);
		else
			node_back(pa, i, false);
	}
}

/* ---- the bitmap's header and sweep ---- */

static void bm_header(void *owner, struct mbm_header *h)
{
	struct parity *pa = owner;
	h->nlegs = pa->n;
	for (unsigned i = 0; i < pa->n; i++) {
		h->legs[i].in_sync = pa->state[i] == 'A';
		snprintf(h->legs[i].spec, sizeof(h->legs[i].spec), "%s", pa->a->nodes[i].spec);
	}
}

static void sweep_done(struct dev_io *io, int err)
{
	struct parity *pa = io->priv;
	size_t i = (size_t)(io - pa->sweep_io);
	pa->sweep_out--;
	if (err) {
		pa->sweep_failed = true;
		if (!pa->closing && parity_node_error(err))
			parity_node_failed(pa, i, err); /* what it acknowledged may be lost */
	}
	if (pa->closing) {
		if (!pa->sweep_out)
			ev_loop_break(pa->a->loop);
		return;
	}
	if (pa->sweep_out)
		return;
	/* Every node that is there flushed: the regions nobody wrote since
	 * are whole on them (a node out keeps SET_BEHIND, not this). */
	bool cleared = false;
	if (!pa->sweep_failed) {
		uint8_t *inflight = set_bits(pa, SET_INFLIGHT);
		for (uint64_t r = mbm_next_set(pa->sweep, 0, pa->nregions); r < pa->nregions;
		     r = mbm_next_set(pa->sweep, r + 1, pa->nregions)) {
			if (!pa->sync.wcount[r] && !mbm_test(pa->stale, r)) {
				mbm_clear(inflight, r);
				cleared = true;
			}
		}
	}
	memset(pa->sweep, 0, pa->bm.set_len);
	pa->sweep_failed = false;
	if (cleared)
		wib_kick(&pa->bm);
}

static void sweep_flush(struct parity *pa)
{
	struct array *a = pa->a;
	pa->sweep_failed = false;
	pa->sweep_out = 0;
	for (unsigned i = 0; i < pa->n; i++)
		pa->sweep_out += pa->state[i] != 'D';
	for (unsigned i = 0; i < pa->n; i++) {
		if (pa->state[i] == 'D')
			continue;
		struct dev_io *io = &pa->sweep_io[i];
		memset(io, 0, sizeof(*io));
		io->op = DEV_FLUSH;
		io->done = sweep_done;
		io->priv = pa;
		dev_submit(a->nodes[i].dev, io);
	}
}

static void tick(struct ev_timer *t)
{
	struct parity *pa = container_of(t, struct parity, tick);
	struct array *a = pa->a;
	/* A node whose connection broke is out even before IO finds out. */
	for (unsigned i = 0; i < pa->n; i++)
		if (pa->state[i] != 'D' && array_node_link_down(&a->nodes[i]))
			parity_node_failed(pa, i, EIO);
	/* Sweep: regions nobody wrote for a whole tick are cleaned once a
	 * FLUSH of every node there made their writes durable. */
	if (!pa->sweep_out && !pa->sync.running) {
		bool any = false;
		const uint8_t *inflight = set_bits(pa, SET_INFLIGHT);
		for (uint64_t r = mbm_next_set(inflight, 0, pa->nregions); r < pa->nregions;
		     r = mbm_next_set(inflight, r + 1, pa->nregions)) {
			if (!pa->sync.wcount[r] && !mbm_test(pa->touched, r) &&
			    !mbm_test(pa->stale, r)) {
				mbm_set(pa->sweep, r);
				any = true;
			}
		}
		if (any)
			sweep_flush(pa);
	}
	memset(pa->touched, 0, pa->bm.set_len);
	ev_timer_start(a->loop, &pa->tick, TICK_NS);
}

/* ---- the resync ---- */

static uint32_t pass_nodes(const struct parity *pa)
{
	uint32_t mask = 0;
	for (unsigned i = 0; i < pa->n; i++)
		if (pa->state[i] == 'S')
			mask |= 1u << i;
	return mask;
}

static bool region_stale(const struct parity *pa, uint64_t r)
{
	return mbm_test(pa->stale, r);
}

static void slot_row(struct psync_slot *s);

static void sync_io_done(struct dev_io *io, int err)
{
	struct psync_slot *s = io->priv;
	struct parity *pa = s->pa;
	struct array *a = pa->a;
	size_t node = parity_node(&pa->g, s->row, (unsigned)(io - s->io));
	array_bg_count(&a->nodes[node].resync, io->op, io->len, err);
	if (err) {
		s->failed = true;
		if (!pa->closing)
			parity_node_failed(pa, node, err);
	}
	if (--s->out)
		return;
	s->busy = false;
	if (pa->closing) {
		ev_loop_break(a->loop); /* parity_sync_close waits for it */
		return;
	}
	if (io->op == DEV_READ && !s->failed) {
		/* Sources in: decode the wanted chunks and write them. */
		const struct parity_geom *g = &pa->g;
		if (parity_code_decode(&pa->code, s->src, s->targets, s->buf, g->chunk) < 0) {
			s->failed = true;
		} else {
			s->out = (unsigned)__builtin_popcount(s->targets);
			s->busy = true;
			for (unsigned c = 0; c < g->n; c++) {
				if (s->targets & (1u << c))
					parity_chunk_io(pa, &s->io[c], DEV_WRITE, s->row, c,
							s->buf[c], sync_io_done, s);
			}
			return;
		}
	}
	if (!s->failed) {
		if (s->targets & ~((1u << pa->g.k) - 1))
			pa->rows_recomputed++;
		if (s->targets & ((1u << pa->g.k) - 1))
			pa->rows_rebuilt++;
	}
	/* A failed row is done again (without the node that failed), or
	 * given up when the node it was for is gone. */
	if (!s->failed)
		s->row++;
	s->failed = false;
	slot_row(s);
}

/* Make rows whole from s->row on, one at a time; then the region is done. */
static void slot_row(struct psync_slot *s)
{
	struct parity *pa = s->pa;
	const struct parity_geom *g = &pa->g;
	uint64_t region = s->rs->r;
	bool stale = region_stale(pa, region);
	for (; s->row < s->end; s->row++) {
		uint64_t row = s->row;
		uint32_t targets = 0, avail = 0;
		for (unsigned c = 0; c < g->n; c++) {
			unsigned x = parity_node(g, row, c);
			char st = pa->state[x];
			if (st == 'D')
				continue;
			bool behind = pa->full[x] || mbm_test(set_bits(pa, SET_BEHIND), region);
			if (st == 'S' && behind && !(stale && c < g->k))
				targets |= 1u << c; /* rebuilt */
			else if (stale && c >= g->k)
				targets |= 1u << c; /* parity recomputed */
			else if (st == 'A' || !behind || stale)
				avail |= 1u << c;
		}
		if (!targets)
			continue;
		/* Sources: K chunks, data first; when the parity is in doubt,
		 * every data chunk and nothing else. */
		uint32_t src = 0;
		unsigned nsrc = 0;
		for (unsigned c = 0; c < g->n && nsrc < g->k; c++) {
			if (!(avail & (1u << c)) || (stale && c >= g->k))
				continue;
			src |= 1u << c;
			nsrc++;
		}
		if (nsrc < g->k) {
			/* A data chunk of a row whose parity is in doubt is
			 * out: nothing can rebuild it; reads of it fail. A
			 * node rebuilt here would miss the row: this pass
			 * cannot say it is in sync. */
			if (stale) {
				pa->rows_lost++;
				mbm_set(pa->lost, region);
			} else {
				pa->pass_short = true;
			}
			continue;
		}
		s->targets = targets;
		s->src = src;
		s->out = nsrc;
		s->busy = true;
		for (unsigned c = 0; c < g->n; c++)
			if (src & (1u << c))
				parity_chunk_io(pa, &s->io[c], DEV_READ, row, c, s->buf[c],
						sync_io_done, s);
		return;
	}
	/* The region is whole: its parity is trusted again, unless a row of
	 * it could not be recomputed. */
	if (!mbm_test(pa->lost, region))
		mbm_clear(pa->stale, region);
	pa->regions_resynced++;
	/* Counted (and paced by --resync-rate) in bytes of one node. */
	regcopy_done(s->rs, (s->end - region * pa->rows_per_region) * g->chunk);
}

static uint64_t sync_pick(void *owner, uint64_t from)
{
	struct parity *pa = owner;
	uint64_t r = mbm_next_set(pa->stale, from, pa->nregions);
	uint32_t pass = pass_nodes(pa);
	for (unsigned i = 0; pass && i < pa->n; i++)
		if ((pass & (1u << i)) && pa->full[i])
			return from;
	if (pass)
		r = MIN(r, mbm_next_set(set_bits(pa, SET_BEHIND), from, pa->nregions));
	return r;
}

static bool sync_go(void *owner)
{
	struct parity *pa = owner;
	if (pa->finishing)
		return false;
	/* Rebuilt chunks come from nodes in sync: K of them. */
	if (pa->closing || parity_count(pa, 'A') < pa->g.k)
		return false;
	return pass_nodes(pa) || mbm_next_set(pa->stale, 0, pa->nregions) < pa->nregions;
}

static void sync_copy(void *owner, struct regcopy_slot *rs)
{
	struct parity *pa = owner;
	struct psync_slot *s = &pa->slots[rs->index];
	s->row = rs->r * pa->rows_per_region;
	s->end = MIN(s->row + pa->rows_per_region, pa->g.rows);
	s->failed = false;
	slot_row(s);
}

static void sync_release(void *owner, struct dev_io *p)
{
	struct parity *pa = owner;
	parity_submit(pa->a, p, false);
}

static void flush_done(struct dev_io *io, int err);
static void pass_done(struct parity *pa);

static void sync_ended(void *owner)
{
	struct parity *pa = owner;
	struct array *a = pa->a;
	bool complete =
	    pa->sync.done >= pa->sync.total && !pa->pass_short && parity_count(pa, 'A') >= pa->g.k;
	if (!complete) {
		log_warn("parity: resync stopped after %llu of %llu regions: %u of %u nodes in "
			 "sync, %u needed to rebuild from",
			 (unsigned long long)pa->sync.done, (unsigned long long)pa->sync.total,
			 parity_count(pa, 'A'), pa->n, pa->g.k);
		event_fire("resync-stopped", NULL, NULL, "%llu of %llu regions",
			   (unsigned long long)pa->sync.done, (unsigned long long)pa->sync.total);
		return;
	}
	/* What the rebuilt nodes were given is made durable before they are
	 * said to be in sync (the bitmap's header says so from then on);
	 * meanwhile they are taken as rebuilt everywhere. */
	pa->finishing = true;
	pa->flush_out = 0;
	for (unsigned i = 0; i < pa->n; i++)
		pa->flush_out += pa->state[i] == 'S' && (pa->sync_nodes & (1u << i));
	if (!pa->flush_out) {
		pass_done(pa);
		return;
	}
	unsigned out = pa->flush_out;
	for (unsigned i = 0; i < pa->n && out; i++) {
		if (pa->state[i] != 'S' || !(pa->sync_nodes & (1u << i)))
			continue;
		out--;
		struct dev_io *io = &pa->flush_io[i];
		memset(io, 0, sizeof(*io));
		io->op = DEV_FLUSH;
		io->done = flush_done;
		io->priv = pa;
		dev_submit(a->nodes[i].dev, io);
	}
}

static void flush_done(struct dev_io *io, int err)
{
	struct parity *pa = io->priv;
	size_t i = (size_t)(io - pa->flush_io);
	if (err && !pa->closing)
		parity_node_failed(pa, i, err); /* rebuilt again when it is back */
	if (--pa->flush_out)
		return;
	if (pa->closing) {
		ev_loop_break(pa->a->loop);
		return;
	}
	pass_done(pa);
}

/* The pass's nodes are rebuilt and flushed: in sync. */
static void pass_done(struct parity *pa)
{
	struct array *a = pa->a;
	double secs = (double)(ev_now_ns() - pa->sync.start_ns) / 1e9;
	pa->finishing = false;
	for (unsigned i = 0; i < pa->n; i++) {
		if (pa->state[i] != 'S' || !(pa->sync_nodes & (1u << i)))
			continue;
		pa->state[i] = 'A';
		pa->full[i] = false;
		log_info("parity: node %s in sync again: %llu regions in %.1f s", a->nodes[i].name,
			 (unsigned long long)pa->sync.done, secs);
		event_fire("resync-done", a->nodes[i].name, a->nodes[i].spec,
			   "%llu regions in %.1f s", (unsigned long long)pa->sync.done, secs);
	}
	pa->sync_nodes = 0;
	if (parity_count(pa, 'A') == pa->n)
		memset(set_bits(pa, SET_BEHIND), 0, pa->bm.set_len);
	if (pa->rows_lost)
		log_warn("parity: %llu rows could not get their parity back (a data chunk on a "
			 "node that is out); reads of their missing chunks fail until it is back",
			 (unsigned long long)pa->rows_lost);
	parity_check_whole(pa);
	wib_kick(&pa->bm);
	if (pass_nodes(pa) & ~pa->sync_nodes)
		parity_sync_kick(pa); /* nodes back during the pass */
}

static unsigned sync_limit(void *owner)
{
	return ((struct parity *)owner)->nslots;
}

static const struct regcopy_ops sync_ops = {
    .pick = sync_pick,
    .go = sync_go,
    .limit = sync_limit,
    .copy = sync_copy,
    .release = sync_release,
    .ended = sync_ended,
};

/* A new pass, if a node is behind or parity is in doubt. */
static void sync_step(struct ev_deferred *d)
{
	struct parity *pa = container_of(d, struct parity, sync_work);
	if (pa->closing || pa->sync.running || pa->finishing || !sync_go(pa))
		return;
	pa->sync_nodes = pass_nodes(pa);
	pa->pass_short = false;
	/* Rows found lost are counted again by this pass (their node may be
	 * back). */
	pa->rows_lost = 0;
	memset(pa->lost, 0, pa->bm.set_len);
	uint64_t total = 0;
	for (uint64_t r = sync_pick(pa, 0); r < pa->nregions; r = sync_pick(pa, r + 1))
		total++;
	log_info("parity: resync of %llu regions starts (%s)", (unsigned long long)total,
		 pa->sync_nodes ? "rebuilding nodes" : "recomputing parity");
	for (unsigned i = 0; i < pa->n; i++)
		if (pa->sync_nodes & (1u << i))
			event_fire("resync-started", pa->a->nodes[i].name, pa->a->nodes[i].spec,
				   "%llu regions to rebuild", (unsigned long long)total);
	regcopy_start(&pa->sync, total);
}

/* ---- suspend, resume, replace ---- */

int parity_suspend(struct array *a, size_t i, char *err, size_t errlen)
{
	struct parity *pa = a->priv;
	unsigned out = pa->n - parity_count(pa, 'A');
	if (pa->state[i] == 'A' && out + 1 > pa->g.m) {
		snprintf(err, errlen,
			 "%s: %u of %u nodes are out already; one more and rows could not be "
			 "rebuilt",
			 a->nodes[i].name, out, pa->n);
		return -EBUSY;
	}
	/* Its chunks are read from the others and written around it (the
	 * regions marked behind) until resume. */
	pa->susp[i] = true;
	if (pa->state[i] != 'D') {
		node_out(pa, i);
		log_info("parity: node %s suspended; %u of %u nodes in sync, IO goes on degraded",
			 a->nodes[i].name, parity_count(pa, 'A'), pa->n);
		parity_check_whole(pa);
		wib_kick(&pa->bm);
	}
	return 0;
}

void parity_resume(struct array *a, size_t i, bool new_dev)
{
	struct parity *pa = a->priv;
	pa->susp[i] = false;
	a->nodes[i].dev->event = node_event;
	a->nodes[i].dev->event_arg = pa;
	node_back(pa, i, new_dev);
}

void parity_moved(struct array *a, size_t i)
{
	struct parity *pa = a->priv;
	a->nodes[i].dev->event = node_event;
	a->nodes[i].dev->event_arg = pa;
	wib_kick(&pa->bm); /* its spec, in the header */
	log_info("parity: node %s moved to %s", a->nodes[i].name, a->nodes[i].spec);
}

int parity_migrate_check(struct array *a, size_t i, char *err, size_t errlen)
{
	struct parity *pa = a->priv;
	if (pa->state[i] == 'D')
		return 0; /* replaced: rebuilt on the new node (parity_replace_dead) */
	if (parity_verify_running(pa)) {
		snprintf(err, errlen,
			 "a dst verify is running: wait for it or stop it (dst verify NAME "
			 "--abort)");
		return -EBUSY;
	}
	if (pa->sync.running) {
		/* Its writes go to the nodes' devices, not through the copy. */
		snprintf(err, errlen, "a resync is running: wait for it (dst show NAME: resync)");
		return -EBUSY;
	}
	if (pa->state[i] != 'A') {
		snprintf(err, errlen, "node %s is not in sync (%c): wait for its resync",
			 a->nodes[i].name, pa->state[i]);
		return -EBUSY;
	}
	return 0;
}

/* dst replace of a dead node: the new disk is in place (the core switched
 * the device); rebuild every chunk of it. */
int parity_replace_dead(struct array *a, size_t i)
{
	struct parity *pa = a->priv;
	pa->susp[i] = false;
	pa->full[i] = true;
	a->nodes[i].dev->event = node_event;
	a->nodes[i].dev->event_arg = pa;
	node_out(pa, i);
	node_back(pa, i, true);
	wib_kick(&pa->bm);
	return 0;
}

int parity_set(struct array *a, const char *key, uint64_t val, char *err, size_t errlen)
{
	struct parity *pa = a->priv;
	if (strcmp(key, "resync-rate") != 0) {
		snprintf(err, errlen, "alg_parity has no setting %s", key);
		return -ENOTSUP;
	}
	regcopy_set_rate(&pa->sync, val);
	return 0;
}

/* ---- dst show, metrics ---- */

void parity_sync_show(struct parity *pa, struct strbuf *out, const char *prefix)
{
	char p[512];
#define ATTR(leaf) (snprintf(p, sizeof(p), "%s/%s", prefix, leaf), p)
	char letters[PARITY_MAX_N + 1];
	for (unsigned i = 0; i < pa->n; i++)
		letters[i] = pa->state[i];
	letters[pa->n] = '\0';
	sb_attr_str(out, ATTR("health"), "%s", letters);
	sb_attr_num(out, ATTR("parity/data"), pa->g.k);
	sb_attr_num(out, ATTR("parity/parity"), pa->g.m);
	sb_attr_num(out, ATTR("parity/chunk"), pa->g.chunk);
	sb_attr_str(out, ATTR("parity/code"), "%s", parity_code_name(&pa->code));
	sb_attr_num(out, ATTR("parity/stale_regions"), mbm_count(pa->stale, pa->nregions));
	sb_attr_num(out, ATTR("parity/behind_regions"),
		    mbm_count(set_bits(pa, SET_BEHIND), pa->nregions));
	sb_attr_num(out, ATTR("parity/lost_rows"), pa->rows_lost);
	static const char *const kind[] = {"full", "rmw", "rcw", "degraded", "noparity"};
	for (unsigned k = 0; k < 5; k++) {
		char leaf[64];
		snprintf(leaf, sizeof(leaf), "parity/plans/%s", kind[k]);
		sb_attr_num(out, ATTR(leaf), pa->plans[k]);
	}
	sb_attr_num(out, ATTR("parity/reconstructed_reads"), pa->reconstructed);
	sb_attr_num(out, ATTR("parity/failed_reads"), pa->read_failures);
	sb_attr_num(out, ATTR("region_size"), pa->rows_per_region * pa->g.chunk);
	sb_attr_num(out, ATTR("bitmap/dirty"), mbm_count(set_bits(pa, SET_INFLIGHT), pa->nregions));
	sb_attr_num(out, ATTR("resync/rate"), pa->sync.rate);
	sb_attr_num(out, ATTR("resync/regions_copied"), pa->regions_resynced);
	sb_attr_num(out, ATTR("resync/rows_rebuilt"), pa->rows_rebuilt);
	sb_attr_num(out, ATTR("resync/rows_recomputed"), pa->rows_recomputed);
	if (pa->sync.running) {
		const struct regcopy *rc = &pa->sync;
		sb_attr_str(out, ATTR("resync/progress"), "%llu/%llu regions",
			    (unsigned long long)rc->done, (unsigned long long)rc->total);
		sb_attr_num(out, ATTR("resync/percent"),
			    rc->total ? rc->done * 100 / rc->total : 100);
		sb_attr_str(out, ATTR("resync/mib_s"), "%.1f", regcopy_mib_s(rc));
		sb_attr_num(out, ATTR("resync/eta_s"), regcopy_eta_s(rc));
	}
#undef ATTR
}

void parity_metrics(struct array *a, struct mx *mx, const char *name)
{
	struct parity *pa = a->priv;
	struct mx_labels l;
	mx_labels_init(&l);
	mx_label(&l, "storage", name);
	mx_family(mx, "dst_parity_nodes_in_sync", MX_GAUGE, "Nodes of the storage in sync (A).");
	mx_gauge(mx, "dst_parity_nodes_in_sync", &l, parity_count(pa, 'A'));
	mx_family(mx, "dst_parity_nodes", MX_GAUGE, "Nodes of the storage (data + parity).");
	mx_gauge(mx, "dst_parity_nodes", &l, pa->n);
	mx_family(mx, "dst_parity_stale_regions", MX_GAUGE,
		  "Regions whose parity is being recomputed after a crash.");
	mx_gauge(mx, "dst_parity_stale_regions", &l, mbm_count(pa->stale, pa->nregions));
	mx_family(mx, "dst_parity_behind_regions", MX_GAUGE,
		  "Regions written while a node was out (rebuilt on it when it is back).");
	mx_gauge(mx, "dst_parity_behind_regions", &l,
		 mbm_count(set_bits(pa, SET_BEHIND), pa->nregions));
	mx_family(mx, "dst_parity_lost_rows", MX_GAUGE,
		  "Rows whose chunk on a missing node cannot be rebuilt (a crash tore a write "
		  "while degraded).");
	mx_gauge(mx, "dst_parity_lost_rows", &l, pa->rows_lost);
	mx_family(mx, "dst_parity_reconstructed_reads", MX_COUNTER,
		  "Reads of a missing node's chunk, rebuilt from the others.");
	mx_counter(mx, "dst_parity_reconstructed_reads", &l, pa->reconstructed);
	mx_family(mx, "dst_parity_write_plans", MX_COUNTER,
		  "Row writes by how their parity was computed: full (a whole row), rmw "
		  "(read-modify-write), rcw (reconstruct-write), degraded, noparity.");
	static const char *const kind[] = {"full", "rmw", "rcw", "degraded", "noparity"};
	for (unsigned k = 0; k < 5; k++) {
		struct mx_labels kl = mx_labels_with(&l, "plan", kind[k]);
		mx_counter(mx, "dst_parity_write_plans", &kl, pa->plans[k]);
	}
	parity_verify_metrics(pa, mx, &l);
	mx_family(mx, "dst_resync_running", MX_GAUGE, "1 while a resync pass runs.");
	mx_gauge(mx, "dst_resync_running", &l, pa->sync.running);
	mx_family(mx, "dst_resync_pass_regions", MX_GAUGE,
		  "Regions the current (or last) resync pass has to copy.");
	mx_gauge(mx, "dst_resync_pass_regions", &l, pa->sync.total);
	mx_family(mx, "dst_resync_done_regions", MX_GAUGE,
		  "Regions the current (or last) resync pass has copied.");
	mx_gauge(mx, "dst_resync_done_regions", &l, pa->sync.done);
}

/* ---- set-up and tear-down ---- */

/* Every row's parity is in doubt (a new storage, a bitmap of another
 * geometry): every region is recomputed, and says so in the bitmap file
 * until it is, so that a crash meanwhile does not forget it. */
static void all_stale(struct parity *pa)
{
	for (uint64_t r = 0; r < pa->nregions; r++) {
		mbm_set(pa->stale, r);
		mbm_set(set_bits(pa, SET_INFLIGHT), r);
	}
}

int parity_sync_setup(struct parity *pa, const struct alg_conf *conf, char *err, size_t errlen)
{
	struct array *a = pa->a;
	uint64_t region = conf->region ? conf->region : DEF_REGION;
	pa->rows_per_region = MAX(1, region / pa->g.chunk);
	pa->region = pa->rows_per_region * pa->g.row_bytes;
	pa->nregions = (pa->g.rows + pa->rows_per_region - 1) / pa->rows_per_region;
	bool loaded, same;
	struct mbm_header h;
	if (wib_open(&pa->bm, a->loop, conf->bitmap_path, pa->rows_per_region * pa->g.chunk,
		     pa->nregions, 2, &loaded, &h, &same, err, errlen) < 0)
		return -1;
	pa->bm.header = bm_header;
	pa->bm.written = parity_bm_written;
	pa->bm.owner = pa;
	size_t len = pa->bm.set_len;
	pa->touched = xcalloc(1, len);
	pa->sweep = xcalloc(1, len);
	pa->stale = xcalloc(1, len);
	pa->lost = xcalloc(1, len);
	for (unsigned i = 0; i < pa->n; i++)
		pa->state[i] = 'A';
	if (!loaded) {
		/* A new storage: its rows get parity, unless its nodes are
		 * known to hold it already (or only zeroes). */
		if (!conf->assume_clean) {
			all_stale(pa);
			log_info("parity: a new storage: every row's parity is computed (the "
				 "initial sync); IO may go on meanwhile");
		}
	} else {
		/* Nodes the bitmap does not list in sync are behind. */
		for (unsigned i = 0; i < pa->n; i++) {
			bool listed = false, in_sync = false;
			for (uint32_t k = 0; k < h.nlegs; k++) {
				if (strcmp(h.legs[k].spec, a->nodes[i].spec) != 0)
					continue;
				listed = true;
				in_sync = h.legs[k].in_sync;
			}
			if (!in_sync) {
				pa->state[i] = 'S';
				pa->full[i] = !listed || !same;
			}
		}
		if (same) {
			memcpy(pa->stale, set_bits(pa, SET_INFLIGHT), len);
			uint64_t stale = mbm_count(pa->stale, pa->nregions);
			if (stale)
				log_warn(
				    "parity: %llu regions had writes in flight when the storage "
				    "stopped: their parity is recomputed before a missing "
				    "chunk is rebuilt from them",
				    (unsigned long long)stale);
		} else {
			log_warn("parity: the bitmap's geometry changed: every row's parity is "
				 "recomputed");
			all_stale(pa);
		}
	}
	pa->whole = parity_count(pa, 'A') == pa->n;
	if (wib_write_sync(&pa->bm, err, errlen) < 0 || wib_start_async(&pa->bm, err, errlen) < 0)
		return -1;
	pa->nslots = SYNC_SLOTS;
	pa->slots = xcalloc(pa->nslots, sizeof(*pa->slots));
	regcopy_init(&pa->sync, a->loop, &sync_ops, pa, pa->region, pa->g.size, pa->nslots);
	regcopy_set_rate(&pa->sync, conf->resync_rate);
	for (unsigned k = 0; k < pa->nslots; k++) {
		struct psync_slot *s = &pa->slots[k];
		s->pa = pa;
		s->rs = &pa->sync.slots[k];
		s->arena = xmalloc(pa->n * pa->g.chunk);
		for (unsigned c = 0; c < pa->n; c++)
			s->buf[c] = s->arena + c * pa->g.chunk;
	}
	pa->sync_work.fn = sync_step;
	pa->tick.fn = tick;
	ev_timer_start(a->loop, &pa->tick, TICK_NS);
	for (unsigned i = 0; i < pa->n; i++) {
		a->nodes[i].dev->event = node_event;
		a->nodes[i].dev->event_arg = pa;
	}
	pa->ready = true;
	if (sync_go(pa))
		parity_sync_kick(pa);
	return 0;
}

static bool sync_busy(const struct parity *pa)
{
	for (unsigned k = 0; k < pa->nslots; k++)
		if (pa->slots[k].busy)
			return true;
	return false;
}

void parity_sync_close(struct parity *pa)
{
	struct array *a = pa->a;
	if (!pa->ready)
		return;
	pa->closing = true;
	ev_timer_stop(a->loop, &pa->tick);
	ev_defer_cancel(a->loop, &pa->sync_work);
	regcopy_close(&pa->sync);
	/* IO of the resync and the sweep finishes before the nodes close. */
	while (sync_busy(pa) || pa->sweep_out || pa->flush_out)
		ev_run(a->loop);
	/* A clean stop: every node there flushed, nothing in flight, no
	 * parity in doubt: the bitmap's in-flight set may be cleared. */
	bool idle = regcopy_idle(&pa->sync) && !pa->sync.running &&
		    mbm_next_set(pa->stale, 0, pa->nregions) >= pa->nregions && !pa->bm.busy &&
		    !pa->bm.cur_head && !pa->bm.next_head;
	if (idle) {
		sweep_flush(pa);
		while (pa->sweep_out)
			ev_run(a->loop);
		if (!pa->sweep_failed)
			memset(set_bits(pa, SET_INFLIGHT), 0, pa->bm.set_len);
	}
	wib_close(&pa->bm);
	char err[256];
	if (wib_write_sync(&pa->bm, err, sizeof(err)) < 0)
		log_warn("parity: %s", err);
	for (unsigned i = 0; i < pa->n; i++)
		a->nodes[i].dev->event = NULL;
}

void parity_sync_free(struct parity *pa)
{
	regcopy_free(&pa->sync);
	for (unsigned k = 0; pa->slots && k < pa->nslots; k++)
		free(pa->slots[k].arena);
	free(pa->slots);
	free(pa->touched);
	free(pa->sweep);
	free(pa->stale);
	free(pa->lost);
	wib_free(&pa->bm);
}
