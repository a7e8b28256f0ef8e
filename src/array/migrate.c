/* migrate.c - live migration of one node to a replacement (dst replace), as
 * pvmove or dm-clone do it, while the storage stays in use.
 *
 * The region-copy engine (regcopy.h) walks the node's range in regions
 * (1 MiB), a few at a time. Reads go to the old node until cutover. A
 * write to a region already copied goes to the old node and then to the
 * new one; a write to a region being copied waits for it; a write ahead of
 * the copy goes to the old node only (it will be copied). A region is read
 * only once the writes in flight to it are done, so the copy never carries
 * stale data over a newer write.
 *
 * Cutover: new pieces for the node are held, its requests in flight drain,
 * the new node is flushed, the config is switched (the commit hook, one
 * atomic save), then the running storage switches and the held pieces go
 * to the new node. The old node is closed, untouched. A redundant
 * algorithm's node moves the same way (the old node serves and stays in
 * sync until the switch); the algorithm is asked first and told after. A failure of the new
 * node, or an abort, leaves the old node in place with nothing lost.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array_int.h"
#include "common/event.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/strbuf.h"
#include "common/util.h"
#include "regcopy.h"

#define MIG_REGION (1u << 20)
#define MIG_SLOTS  4 /* regions copied at once: 4 MiB in flight, as a resync */

enum mig_phase { M_COPY, M_CUTOVER, M_FLUSH, M_ENDING };

struct migration;

/* One region being copied: read from the old node, written to the new. */
struct mig_slot {
	struct migration *g;
	struct regcopy_slot *rs;
	uint8_t *buf;
	struct dev_io io;
	bool busy;
};

struct migration {
	struct array *a;
	uint32_t id; /* counted writes name it (array_child.mig_wr) */
	size_t node;
	struct dev *dst;
	char *spec;
	struct migrate_hooks hooks;
	uint64_t total;
	enum mig_phase phase;
	struct regcopy rc;
	struct mig_slot slot[MIG_SLOTS];
	struct dev_io io; /* the cutover's flush of the new node */
	bool io_busy;
	unsigned dup_inflight;
	bool closing; /* the storage stops: IO in flight is waited for */
	struct array_child *held_head, *held_tail; /* held at cutover */
	uint64_t start_ns;
	int err;
	char why[256];
	struct ev_deferred work;
};

static void step(struct migration *g);

static void kick(struct migration *g)
{
	ev_defer(g->a->loop, &g->work);
}

bool migrate_hold(struct array *a, struct array_child *c)
{
	struct migration *g = a->mig;
	if (c->node != g->node || g->phase == M_ENDING)
		return false;
	if (g->phase == M_CUTOVER || g->phase == M_FLUSH) {
		c->mig_held = true;
		c->next_free = NULL;
		if (g->held_tail)
			g->held_tail->next_free = c;
		else
			g->held_head = c;
		g->held_tail = c;
		return true;
	}
	if (!dev_op_writes(c->io.op))
		return false;
	if (regcopy_hold(&g->rc, c->io.off, c->io.len, &c->io)) {
		c->mig_held = true; /* the engine gives it back (rc_release) */
		return true;
	}
	regcopy_write_start(&g->rc, c->io.off, c->io.len);
	c->mig_wr = g->id;
	if (regcopy_behind(&g->rc, c->io.off))
		c->mig = MIG_DUP;
	return false;
}

void migrate_write_end(struct array *a, struct array_child *c)
{
	uint32_t id = c->mig_wr;
	c->mig_wr = 0;
	if (a->mig && a->mig->id == id)
		regcopy_write_end(&a->mig->rc, c->io.off, c->io.len);
}

/* Pieces held at cutover go again, routed by the state as it is now. */
static void release_held(struct migration *g)
{
	struct array_child *c = g->held_head;
	g->held_head = g->held_tail = NULL;
	while (c) {
		struct array_child *next = c->next_free;
		c->next_free = NULL;
		c->mig_held = false;
		array_dispatch(g->a, c);
		c = next;
	}
}

void migrate_node_event(struct array *a)
{
	struct migration *g = a->mig;
	if (g->phase == M_CUTOVER || g->phase == M_ENDING)
		kick(g);
}

int array_migrating_node(const struct array *a)
{
	return a->mig ? (int)a->mig->node : -1;
}

bool migrate_dup_ok(struct array *a)
{
	return a->mig->phase != M_ENDING && !a->mig->closing;
}

void migrate_dup_start(struct array *a, struct array_child *c)
{
	struct migration *g = a->mig;
	g->dup_inflight++;
	dev_submit(g->dst, &c->io);
}

/* End it: done (switched) or not (aborted, failed); the old node stays
 * unless done. Waits for everything that still uses the new node. */
static void end(struct migration *g, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void end(struct migration *g, int err, const char *fmt, ...)
{
	if (g->phase == M_ENDING)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(g->why, sizeof(g->why), fmt, ap);
	va_end(ap);
	g->err = err;
	g->phase = M_ENDING;
	release_held(g);      /* to the old node: M_ENDING holds nothing */
	regcopy_kick(&g->rc); /* it lets its held writes go, then ends */
	kick(g);
}

void migrate_dup_done(struct array *a, int err)
{
	struct migration *g = a->mig;
	g->dup_inflight--;
	if (g->closing)
		return;
	if (err && g->phase != M_ENDING)
		end(g, err, "the new node failed a write: %s", strerror(err));
	kick(g);
}

static void flush_done(struct dev_io *io, int err)
{
	struct migration *g = io->priv;
	g->io_busy = false;
	if (g->closing)
		return;
	if (err && g->phase == M_FLUSH)
		end(g, err, "the new node failed its flush: %s", strerror(err));
	kick(g);
}

static void copy_done(struct dev_io *io, int err)
{
	struct mig_slot *sl = io->priv;
	struct migration *g = sl->g;
	bool reading = io->op == DEV_READ;
	array_bg_count(&g->a->nodes[g->node].migrate, io->op, io->len, err);
	if (g->closing) {
		sl->busy = false;
		return;
	}
	if (!err && reading && g->phase == M_COPY) {
		io->op = DEV_WRITE;
		dev_submit(g->dst, io);
		return;
	}
	sl->busy = false;
	if (err) {
		end(g, err, "%s node failed during the copy: %s", reading ? "the old" : "the new",
		    strerror(err));
		regcopy_release(sl->rs);
		return;
	}
	if (g->phase != M_COPY) {
		regcopy_release(sl->rs);
		return;
	}
	/* Region copied: writes to it now go to both nodes. */
	regcopy_done(sl->rs, io->len);
}

/* ---- the engine's hooks ---- */

static uint64_t rc_pick(void *owner, uint64_t from)
{
	(void)owner;
	return from; /* every region, in order */
}

static bool rc_go(void *owner)
{
	struct migration *g = owner;
	return g->phase == M_COPY && !g->closing;
}

static void rc_copy(void *owner, struct regcopy_slot *rs)
{
	struct migration *g = owner;
	struct mig_slot *sl = &g->slot[rs->index];
	memset(&sl->io, 0, sizeof(sl->io));
	sl->io.op = DEV_READ;
	sl->io.off = rs->off;
	sl->io.len = rs->len;
	sl->io.buf = sl->buf;
	sl->io.done = copy_done;
	sl->io.priv = sl;
	sl->busy = true;
	dev_submit(g->a->nodes[g->node].dev, &sl->io);
}

static void rc_release(void *owner, struct dev_io *io)
{
	struct migration *g = owner;
	struct array_child *c = container_of(io, struct array_child, io);
	c->mig_held = false;
	array_dispatch(g->a, c);
}

/* Every region copied (cutover next), or the copy stopped (ending). */
static void rc_ended(void *owner)
{
	struct migration *g = owner;
	if (g->phase == M_COPY) {
		/* Cutover: hold new pieces, let the old ones finish (reads
		 * lent from the old node are copied out). */
		g->phase = M_CUTOVER;
		array_unlend_node(g->a, g->node);
	}
	kick(g);
}

static const struct regcopy_ops rc_ops = {
    .pick = rc_pick,
    .go = rc_go,
    .copy = rc_copy,
    .release = rc_release,
    .ended = rc_ended,
};

static bool slots_busy(const struct migration *g)
{
	for (unsigned k = 0; k < MIG_SLOTS; k++)
		if (g->slot[k].busy)
			return true;
	return false;
}

static void finish(struct migration *g)
{
	struct array *a = g->a;
	struct array_node *nd = &a->nodes[g->node];
	struct migrate_hooks hooks = g->hooks;
	double secs = (double)(ev_now_ns() - g->start_ns) / 1e9;
	char msg[512];
	int err = g->err;
	if (!err) {
		/* Switch: the old device goes, untouched; held pieces follow. */
		log_info("migration of %s to %s done: %llu bytes in %.1f s", nd->name, g->spec,
			 (unsigned long long)g->total, secs);
		event_fire("migration-done", nd->name, g->spec, "from %s: %llu bytes in %.1f s",
			   nd->spec, (unsigned long long)g->total, secs);
		array_node_set_dev(a, g->node, g->dst, g->spec);
		if (a->alg->moved)
			a->alg->moved(a, g->node);
		snprintf(msg, sizeof(msg), "%s now on %s (%llu bytes in %.1f s)", nd->name,
			 nd->spec, (unsigned long long)g->total, secs);
		g->dst = NULL;
	} else {
		log_warn("migration of %s to %s stopped: %s; the old node stays", nd->name, g->spec,
			 g->why);
		event_fire("migration-failed", nd->name, nd->spec, "to %s: %s", g->spec, g->why);
		snprintf(msg, sizeof(msg), "%s", g->why);
		dev_destroy(g->dst);
	}
	struct array_child *held = g->held_head;
	ev_defer_cancel(a->loop, &g->work);
	regcopy_free(&g->rc);
	for (unsigned k = 0; k < MIG_SLOTS; k++)
		free(g->slot[k].buf);
	free(g->spec);
	free(g);
	a->mig = NULL;
	while (held) { /* (none: ENDING and cutover release them first) */
		struct array_child *next = held->next_free;
		held->mig_held = false;
		array_dispatch(a, held);
		held = next;
	}
	if (hooks.ended)
		hooks.ended(hooks.arg, err, msg);
}

static void step(struct migration *g)
{
	struct array *a = g->a;
	struct array_node *nd = &a->nodes[g->node];
	if (g->closing)
		return;
	switch (g->phase) {
	case M_COPY: return; /* the engine's */
	case M_ENDING:
		if (g->rc.running || slots_busy(g) || g->io_busy || g->dup_inflight)
			return; /* they come back here */
		finish(g);
		return;
	case M_CUTOVER:
		if (nd->inflight || g->dup_inflight)
			return;
		g->phase = M_FLUSH;
		memset(&g->io, 0, sizeof(g->io));
		g->io.op = DEV_FLUSH;
		g->io.done = flush_done;
		g->io.priv = g;
		g->io_busy = true;
		dev_submit(g->dst, &g->io);
		return;
	case M_FLUSH: {
		if (g->io_busy)
			return;
		char err[256] = "";
		if (g->hooks.commit &&
		    g->hooks.commit(g->hooks.arg, nd->name, g->spec, err, sizeof(err)) < 0) {
			end(g, EIO, "cannot switch the config: %s", err);
			return;
		}
		g->err = 0;
		g->phase = M_ENDING;
		struct array_child *held = g->held_head;
		g->held_head = g->held_tail = NULL;
		finish(g); /* switches nd->dev */
		while (held) {
			struct array_child *next = held->next_free;
			held->next_free = NULL;
			held->mig_held = false;
			array_dispatch(a, held);
			held = next;
		}
		return;
	}
	}
}

static void work(struct ev_deferred *d)
{
	step(container_of(d, struct migration, work));
}

/* A dead node of a redundant storage is not copied (there is nothing to
 * read) but rebuilt: the config and the storage switch to the new device
 * at once, and the algorithm rebuilds its bytes from the other nodes. */
static int replace_dead(struct array *a, size_t i, struct dev *dst, const char *spec,
			const struct migrate_hooks *hooks, char *err, size_t errlen)
{
	struct array_node *nd = &a->nodes[i];
	if (nd->inflight) {
		snprintf(err, errlen, "%s still has %llu requests in flight; try again", nd->name,
			 (unsigned long long)nd->inflight);
		return -EBUSY;
	}
	char why[256] = "";
	if (hooks->commit && hooks->commit(hooks->arg, nd->name, spec, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "cannot switch the config: %s", why);
		return -EIO;
	}
	char old[512];
	snprintf(old, sizeof(old), "%s", nd->spec);
	array_node_set_dev(a, i, dst, spec);
	a->alg->replace_dead(a, i);
	log_info("%s (dead, was %s) replaced by %s: its bytes are rebuilt from the other nodes",
		 nd->name, old, spec);
	event_fire("node-replaced", nd->name, spec, "was %s; rebuilding", old);
	char msg[640];
	snprintf(msg, sizeof(msg),
		 "%s now on %s: rebuilding it from the other nodes (dst show: resync)", nd->name,
		 spec);
	if (hooks->ended)
		hooks->ended(hooks->arg, 0, msg);
	return 1;
}

int array_migrate_start(struct array *a, const char *name, struct dev *dst, const char *spec,
			uint64_t rate, const struct migrate_hooks *hooks, char *err, size_t errlen)
{
	int i = array_find_node(a, name);
	if (i < 0) {
		snprintf(err, errlen, "no node named %s", name);
		return -ENOENT;
	}
	struct array_node *nd = &a->nodes[i];
	if (a->mig) {
		snprintf(err, errlen, "a migration of %s is already running",
			 a->nodes[a->mig->node].name);
		return -EBUSY;
	}
	if (a->alg->migrate_check) {
		int rc = a->alg->migrate_check(a, (size_t)i, err, errlen);
		if (rc < 0)
			return rc;
	}
	if (nd->suspended) {
		snprintf(err, errlen, "%s is suspended; resume it first", nd->name);
		return -EBUSY;
	}
	uint64_t need = nd->size * 512;
	if (dst->size < need) {
		snprintf(err, errlen, "the new node has %llu sectors, fewer than the %llu of %s",
			 (unsigned long long)(dst->size / 512), (unsigned long long)nd->size,
			 nd->name);
		return -ENOSPC;
	}
	static uint32_t ids;
	if (a->alg->replace_dead && a->priv && a->alg->health(a, (size_t)i) == 'D')
		return replace_dead(a, (size_t)i, dst, spec, hooks, err, errlen);
	struct migration *g = xcalloc(1, sizeof(*g));
	g->a = a;
	g->id = ++ids ? ids : ++ids; /* never 0: that is "not counted" */
	g->node = (size_t)i;
	g->dst = dst;
	g->spec = xstrdup(spec);
	g->hooks = *hooks;
	g->total = need;
	g->phase = M_COPY;
	g->start_ns = ev_now_ns();
	g->work.fn = work;
	regcopy_init(&g->rc, a->loop, &rc_ops, g, MIG_REGION, need, MIG_SLOTS);
	regcopy_set_rate(&g->rc, rate);
	for (unsigned k = 0; k < MIG_SLOTS; k++) {
		g->slot[k].g = g;
		g->slot[k].rs = &g->rc.slots[k];
		g->slot[k].buf = xmalloc(MIG_REGION);
	}
	a->mig = g;
	log_info("migration of %s (%s) to %s starts: %llu bytes%s", nd->name, nd->spec, spec,
		 (unsigned long long)need, rate ? ", rate-limited" : "");
	event_fire("migration-started", nd->name, nd->spec, "to %s: %llu bytes", spec,
		   (unsigned long long)need);
	regcopy_start(&g->rc, g->rc.nregions);
	return 0;
}

int array_migrate_abort(struct array *a, const char *name, char *err, size_t errlen)
{
	struct migration *g = a->mig;
	if (!g || (name && array_find_node(a, name) != (int)g->node)) {
		snprintf(err, errlen, "no migration of %s is running", name ? name : "any node");
		return -ENOENT;
	}
	if (g->phase == M_FLUSH || g->phase == M_ENDING) {
		snprintf(err, errlen, "too late: the migration is %s",
			 g->phase == M_FLUSH ? "switching over" : "ending");
		return -EBUSY;
	}
	end(g, ECANCELED, "aborted");
	return 0;
}

void array_migrate_show(struct array *a, struct strbuf *out, const char *prefix)
{
	struct migration *g = a->mig;
	if (!g)
		return;
	char p[512];
#define ATTR(leaf) (snprintf(p, sizeof(p), "%s/migration/%s", prefix, leaf), p)
	uint64_t copied = g->phase == M_COPY ? g->rc.bytes : g->total;
	double s = (double)(ev_now_ns() - g->start_ns) / 1e9;
	double bps = s > 0 ? (double)copied / s : 0;
	sb_attr_str(out, ATTR("node"), "%s", a->nodes[g->node].name);
	sb_attr_str(out, ATTR("to"), "%s", g->spec ? g->spec : "");
	sb_attr_str(out, ATTR("state"), "%s",
		    g->phase == M_ENDING			   ? "ending"
		    : g->phase == M_CUTOVER || g->phase == M_FLUSH ? "switching"
								   : "copying");
	sb_attr_num(out, ATTR("copied"), copied);
	sb_attr_num(out, ATTR("total"), g->total);
	sb_attr_num(out, ATTR("percent"), g->total ? copied * 100 / g->total : 100);
	sb_attr_str(out, ATTR("mib_s"), "%.1f", bps / 1048576.0);
	sb_attr_num(out, ATTR("eta_s"),
		    bps > 0 ? (uint64_t)((double)(g->total - copied) / bps) : 0);
#undef ATTR
}

void migrate_metrics(struct array *a, struct mx *m, const char *name)
{
	struct migration *g = a->mig;
	struct mx_labels l;
	mx_labels_init(&l);
	mx_label(&l, "storage", name);
	mx_family(m, "dst_migration_running", MX_GAUGE,
		  "1 while a node is being migrated (dst replace).");
	mx_gauge(m, "dst_migration_running", &l, g != NULL);
	if (!g)
		return;
	mx_label(&l, "node", a->nodes[g->node].name);
	mx_label(&l, "to", g->spec ? g->spec : "");
	mx_family(m, "dst_migration_copied_bytes", MX_GAUGE,
		  "Bytes of the node the migration has copied to its replacement.");
	mx_gauge(m, "dst_migration_copied_bytes", &l, g->phase == M_COPY ? g->rc.bytes : g->total);
	mx_family(m, "dst_migration_size_bytes", MX_GAUGE, "Bytes the migration copies in all.");
	mx_gauge(m, "dst_migration_size_bytes", &l, g->total);
}

void migrate_close(struct array *a)
{
	struct migration *g = a->mig;
	if (!g)
		return;
	/* The storage stops mid-way: the old node stays (a restart begins
	 * the copy again). IO still in flight is answered when the nodes
	 * close; its callbacks see `closing` and start nothing. */
	g->closing = true;
	regcopy_close(&g->rc);
	ev_defer_cancel(a->loop, &g->work);
}

void migrate_free(struct array *a)
{
	struct migration *g = a->mig;
	if (!g)
		return;
	dev_destroy(g->dst);
	ev_defer_cancel(a->loop, &g->work);
	regcopy_free(&g->rc);
	for (unsigned k = 0; k < MIG_SLOTS; k++)
		free(g->slot[k].buf);
	free(g->spec);
	free(g);
	a->mig = NULL;
}
