/* migrate.c - live migration of one node to a replacement (dst replace), as
 * pvmove or dm-clone do it, while the storage stays in use.
 *
 * A background copy walks the node's range in regions (1 MiB). Reads go to
 * the old node until cutover. A write behind the copy cursor goes to the
 * old node and then to the new one; a write to the region being copied
 * waits for it; a write ahead of the copy goes to the old node only (it
 * will be copied). A region is read only once the writes in flight to it
 * are done, so the copy never carries stale data over a newer write.
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

#define MIG_REGION (1u << 20)
#define NO_REGION  UINT64_MAX

enum mig_phase { M_DRAIN, M_READ, M_WRITE, M_PAUSE, M_CUTOVER, M_FLUSH, M_ENDING };

struct migration {
	struct array *a;
	size_t node;
	struct dev *dst;
	char *spec;
	struct migrate_hooks hooks;
	uint64_t total, copied, cur, cur_len, rate;
	enum mig_phase phase;
	uint8_t *buf;
	struct dev_io io; /* the copy's read, then write; the cutover flush */
	bool io_busy;
	bool rate_wait; /* --rate: the pause after a region is not over */
	unsigned dup_inflight;
	bool closing; /* the storage stops: IO in flight is waited for */
	struct array_child *held_head, *held_tail;
	uint64_t start_ns;
	int err;
	char why[256];
	struct ev_deferred work;
	struct ev_timer timer;
};

static void step(struct migration *g);

static void kick(struct migration *g)
{
	ev_defer(g->a->loop, &g->work);
}

static bool overlaps(const struct array_child *c, uint64_t off, uint64_t len)
{
	return c->io.off < off + len && off < c->io.off + c->io.len;
}

bool migrate_hold(struct array *a, struct array_child *c)
{
	struct migration *g = a->mig;
	if (c->node != g->node || g->phase == M_ENDING)
		return false;
	bool hold =
	    g->phase == M_CUTOVER || g->phase == M_FLUSH ||
	    (dev_op_writes(c->io.op) && g->cur != NO_REGION && overlaps(c, g->cur, g->cur_len));
	if (hold) {
		c->mig_held = true;
		c->next_free = NULL;
		if (g->held_tail)
			g->held_tail->next_free = c;
		else
			g->held_head = c;
		g->held_tail = c;
		return true;
	}
	if (dev_op_writes(c->io.op) && c->io.off < g->copied)
		c->mig = MIG_DUP;
	return false;
}

/* Held pieces go again, routed by the state as it is now. */
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

/* Are writes in flight to the node's [off, off+len), on either node? */
static bool writes_in_flight(struct migration *g, uint64_t off, uint64_t len)
{
	struct array *a = g->a;
	for (unsigned i = 0; i < ARRAY_CHILDREN; i++) {
		const struct array_child *c = &a->children[i];
		if (c->busy && !c->mig_held && c->node == g->node && dev_op_writes(c->io.op) &&
		    overlaps(c, off, len))
			return true;
	}
	return false;
}

void migrate_node_event(struct array *a)
{
	struct migration *g = a->mig;
	if (g->phase == M_DRAIN || g->phase == M_CUTOVER || g->phase == M_ENDING)
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
	g->cur = NO_REGION;
	ev_timer_stop(g->a->loop, &g->timer);
	release_held(g); /* to the old node: M_ENDING holds nothing */
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

static void copy_done(struct dev_io *io, int err)
{
	struct migration *g = io->priv;
	g->io_busy = false;
	array_bg_count(&g->a->nodes[g->node].migrate, io->op, io->len, err);
	if (g->closing)
		return;
	if (g->phase == M_ENDING) {
		kick(g);
		return;
	}
	if (err) {
		end(g, err, "%s node failed during the copy: %s",
		    g->phase == M_READ ? "the old" : "the new", strerror(err));
		return;
	}
	if (g->phase == M_READ) {
		g->phase = M_WRITE;
		io->op = DEV_WRITE;
		g->io_busy = true;
		dev_submit(g->dst, io);
		return;
	}
	if (g->phase == M_FLUSH) {
		kick(g);
		return;
	}
	/* Region copied: writes to it now go to both nodes. */
	g->copied = g->cur + g->cur_len;
	g->cur = NO_REGION;
	release_held(g);
	g->phase = M_PAUSE;
	if (g->rate) {
		g->rate_wait = true;
		ev_timer_start(g->a->loop, &g->timer, g->cur_len * 1000000000ull / g->rate);
	} else {
		kick(g);
	}
}

static void submit_io(struct migration *g, enum dev_op op, struct dev *d)
{
	memset(&g->io, 0, sizeof(g->io));
	g->io.op = op;
	g->io.off = g->cur;
	g->io.len = op == DEV_FLUSH ? 0 : g->cur_len;
	g->io.buf = g->buf;
	g->io.done = copy_done;
	g->io.priv = g;
	g->io_busy = true;
	dev_submit(d, &g->io);
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
		dev_destroy(nd->dev);
		nd->dev = g->dst;
		free(nd->spec);
		nd->spec = g->spec;
		nd->remote = !strcmp(g->dst->ops->kind, "nbd");
		nd->flushed_upto = nd->writes_done; /* the cutover flushed it */
		if (a->alg->moved)
			a->alg->moved(a, g->node);
		snprintf(msg, sizeof(msg), "%s now on %s (%llu bytes in %.1f s)", nd->name,
			 nd->spec, (unsigned long long)g->total, secs);
		g->spec = NULL;
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
	ev_timer_stop(a->loop, &g->timer);
	free(g->spec);
	free(g->buf);
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
	case M_ENDING:
		if (g->io_busy || g->dup_inflight)
			return; /* they come back here */
		finish(g);
		return;
	case M_PAUSE:
		if (g->rate_wait)
			return; /* the rate timer brings us back */
		if (g->copied >= g->total) {
			/* Cutover: hold new pieces, let the old ones finish
			 * (reads lent from the old node are copied out). */
			g->phase = M_CUTOVER;
			array_unlend_node(a, g->node);
			step(g);
			return;
		}
		g->cur = g->copied;
		g->cur_len = MIN((uint64_t)MIG_REGION, g->total - g->copied);
		g->phase = M_DRAIN;
		/* fall through */
	case M_DRAIN:
		if (writes_in_flight(g, g->cur, g->cur_len))
			return; /* migrate_node_event brings us back */
		g->phase = M_READ;
		submit_io(g, DEV_READ, nd->dev);
		return;
	case M_CUTOVER:
		if (nd->inflight || g->dup_inflight)
			return;
		g->phase = M_FLUSH;
		g->cur = 0;
		submit_io(g, DEV_FLUSH, g->dst);
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
	case M_READ:
	case M_WRITE: return;
	}
}

static void work(struct ev_deferred *d)
{
	step(container_of(d, struct migration, work));
}

static void timer(struct ev_timer *t)
{
	struct migration *g = container_of(t, struct migration, timer);
	g->rate_wait = false;
	step(g);
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
	struct migration *g = xcalloc(1, sizeof(*g));
	g->a = a;
	g->node = (size_t)i;
	g->dst = dst;
	g->spec = xstrdup(spec);
	g->hooks = *hooks;
	g->total = need;
	g->rate = rate;
	g->cur = NO_REGION;
	g->buf = xmalloc(MIG_REGION);
	g->phase = M_PAUSE;
	g->start_ns = ev_now_ns();
	g->work.fn = work;
	g->timer.fn = timer;
	a->mig = g;
	log_info("migration of %s (%s) to %s starts: %llu bytes%s", nd->name, nd->spec, spec,
		 (unsigned long long)need, rate ? ", rate-limited" : "");
	event_fire("migration-started", nd->name, nd->spec, "to %s: %llu bytes", spec,
		   (unsigned long long)need);
	kick(g);
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
	double s = (double)(ev_now_ns() - g->start_ns) / 1e9;
	double bps = s > 0 ? (double)g->copied / s : 0;
	sb_attr_str(out, ATTR("node"), "%s", a->nodes[g->node].name);
	sb_attr_str(out, ATTR("to"), "%s", g->spec ? g->spec : "");
	sb_attr_str(out, ATTR("state"), "%s",
		    g->phase == M_ENDING			   ? "ending"
		    : g->phase == M_CUTOVER || g->phase == M_FLUSH ? "switching"
								   : "copying");
	sb_attr_num(out, ATTR("copied"), g->copied);
	sb_attr_num(out, ATTR("total"), g->total);
	sb_attr_num(out, ATTR("percent"), g->total ? g->copied * 100 / g->total : 100);
	sb_attr_str(out, ATTR("mib_s"), "%.1f", bps / 1048576.0);
	sb_attr_num(out, ATTR("eta_s"),
		    bps > 0 ? (uint64_t)((double)(g->total - g->copied) / bps) : 0);
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
	mx_gauge(m, "dst_migration_copied_bytes", &l, g->copied);
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
	ev_timer_stop(a->loop, &g->timer);
	ev_defer_cancel(a->loop, &g->work);
}

void migrate_free(struct array *a)
{
	struct migration *g = a->mig;
	if (!g)
		return;
	dev_destroy(g->dst);
	ev_defer_cancel(a->loop, &g->work);
	free(g->spec);
	free(g->buf);
	free(g);
	a->mig = NULL;
}
