/* array.c - the storage core: split, fan out, count, answer once.
 *
 * A parent request keeps its progress in its dev_io scratch space:
 * scratch[0] is how many bytes have been split off so far, scratch[1] packs
 * the number of pieces outstanding (low 32 bits) and the first error (high
 * 32 bits). While splitting, the core holds one extra "outstanding" so that
 * pieces completing inline cannot finish the parent under its feet.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "array_int.h"
#include "common/ev.h"
#include "common/log.h"
#include "common/pipepool.h"
#include "common/strbuf.h"
#include "common/util.h"

static inline uint32_t outstanding(const struct dev_io *p)
{
	return (uint32_t)p->dev_scratch[1];
}
static inline int first_err(const struct dev_io *p)
{
	return (int)(p->dev_scratch[1] >> 32);
}
static inline void set_state(struct dev_io *p, uint32_t out, int err)
{
	p->dev_scratch[1] = ((uint64_t)(uint32_t)err << 32) | out;
}

struct array_child *array_child_get(struct array *a)
{
	struct array_child *c = a->free_children;
	if (c) {
		a->free_children = c->next_free;
		a->nfree--;
	}
	return c;
}

void array_child_put(struct array *a, struct array_child *c)
{
	c->busy = false;
	c->lent = false;
	c->mig = 0;
	c->mig_held = false;
	c->mig_wr = 0;
	c->next_free = a->free_children;
	a->free_children = c;
	a->nfree++;
	if (a->wait_head)
		ev_defer(a->loop, &a->resume);
}

static void parent_put_ref(struct array *a, struct dev_io *p, int err)
{
	uint32_t out = outstanding(p) - 1;
	int e = first_err(p);
	if (err && !e)
		e = err;
	set_state(p, out, e);
	if (out == 0 && p->dev_scratch[0] >= p->len) {
		array_lend_finish(a, p, e);
		p->done(p, e);
	}
}

static void split(struct array *a, struct dev_io *p, bool resumed);

static void child_done(struct dev_io *io, int err)
{
	struct array_child *c = io->priv;
	struct array *a = c->a;
	struct array_node *node = &a->nodes[c->node];
	struct dev_io *p = c->parent;
	uint64_t ns = ev_now_ns() - c->start_ns;
	bool lent = array_piece_lent(io, err);
	if (io->op == DEV_READ && io->pipe) { /* the node answered in a pipe */
		if (!err && !p->pipe)
			p->pipe = io->pipe;
		else
			spipe_put(io->pipe);
		io->pipe = NULL;
	}
	if (c->mig == MIG_ON_DST) {
		/* The copy of a write on a migration's new node: the old node
		 * already answered for it; a failure here ends the migration. */
		c->mig = 0;
		array_bg_count(&node->migrate, io->op, io->len, err);
		migrate_dup_done(a, err);
		err = 0;
		goto finish;
	}
	if (!lent)
		node->inflight--;
	if (err)
		node->errors++;
	switch (io->op) {
	case DEV_READ:
		node->reads++;
		node->read_ns += ns;
		lathist_add(&node->read_lat, ns);
		if (!err)
			node->read_bytes += io->len;
		break;
	case DEV_WRITE:
		node->writes++;
		node->write_ns += ns;
		lathist_add(&node->write_lat, ns);
		if (!err)
			node->write_bytes += io->len;
		/* fall through */
	case DEV_TRIM:
	case DEV_WRITE_ZEROES:
		if (io->op == DEV_TRIM)
			node->trims++;
		else if (io->op == DEV_WRITE_ZEROES)
			node->zeroes++;
		/* Only a write that succeeded has something a FLUSH must make
		 * durable; counting failed ones would fail every later flush
		 * of a node that died. */
		if (!err)
			node->writes_done++;
		break;
	case DEV_FLUSH:
		node->flushes++;
		if (!err && c->flush_snapshot > node->flushed_upto)
			node->flushed_upto = c->flush_snapshot;
		break;
	case DEV_BLOCK_STATUS: p->ext_count = io->ext_count; break;
	default: break;
	}
	if (err)
		log_debug("node %s: %s at %llu+%llu failed: %s", node->name,
			  io->op == DEV_READ ? "read" : "io", (unsigned long long)io->off,
			  (unsigned long long)io->len, strerror(err));
	if (a->mig)
		migrate_node_event(a);
	if (c->mig == MIG_DUP && !err && a->mig && migrate_dup_ok(a)) {
		/* Behind the copy cursor: the new node gets it too. */
		c->mig = MIG_ON_DST;
		c->start_ns = ev_now_ns();
		migrate_dup_start(a, c);
		return;
	}
	c->mig = 0;
finish:
	if (c->mig_wr)
		migrate_write_end(a, c);
	array_node_settled(a, c->node);
	if (a->alg->piece_done) {
		a->alg->piece_done(a, c, err);
		return;
	}
	if (lent) {
		array_lend_done(c, p);
		parent_put_ref(a, p, 0);
		return;
	}
	array_child_put(a, c);
	parent_put_ref(a, p, err);
}

void array_node_settled(struct array *a, size_t node)
{
	const struct array_node *nd = &a->nodes[node];
	if (nd->inflight)
		return;
	if (a->has_gone && node == a->n)
		ev_defer(a->loop, &a->reap);
	if (nd->drained)
		ev_defer(a->loop, &a->drain_work);
}

void array_send_piece(struct array *a, struct array_child *c, struct dev_io *p, size_t node,
		      enum dev_op op, uint64_t off, uint64_t len, void *buf)
{
	struct array_node *nd = &a->nodes[node];
	memset(&c->io, 0, sizeof(c->io));
	c->io.op = op;
	c->io.flags = p->flags & ~(DEV_F_BORROW | DEV_F_PIPE);
	/* A payload in a pipe goes on with a piece that is all of it. */
	if ((p->flags & DEV_F_PIPE) && op == p->op && len == p->len && buf == p->buf) {
		c->io.flags |= DEV_F_PIPE;
		c->io.pipe = op == DEV_WRITE ? p->pipe : NULL;
	}
	c->io.off = off;
	c->io.len = len;
	c->io.buf = buf;
	array_lend_prepare(a, c, p);
	c->io.done = child_done;
	c->io.priv = c;
	c->parent = p;
	c->a = a;
	c->node = node;
	c->start_ns = ev_now_ns();
	if (op == DEV_BLOCK_STATUS) {
		c->io.ext = p->ext;
		c->io.ext_max = p->ext_max;
	}
	if (op == DEV_FLUSH)
		c->flush_snapshot = nd->writes_done;
	c->busy = true;
	set_state(p, outstanding(p) + 1, first_err(p));
	array_dispatch(a, c);
}

/* A piece goes out to its node. */
static void node_submit(struct array_node *nd, struct array_child *c)
{
	nd->inflight++;
	c->start_ns = ev_now_ns();
	if ((c->io.flags & DEV_F_BORROW) && !dev_can_borrow(nd->dev, c->io.off, c->io.len)) {
		c->io.flags &= ~DEV_F_BORROW; /* into the parent's buf, as any read */
		if (!c->io.buf) {	      /* a caller that gave none (never the NBD server) */
			c->io.done(&c->io, EIO);
			return;
		}
	}
	dev_submit(nd->dev, &c->io);
}

void array_dispatch(struct array *a, struct array_child *c)
{
	struct array_node *nd = &a->nodes[c->node];
	if (a->mig && migrate_hold(a, c))
		return;
	if (nd->suspended) {
		c->next_free = NULL;
		if (nd->held_tail)
			nd->held_tail->next_free = c;
		else
			nd->held_head = c;
		nd->held_tail = c;
		nd->held++;
		return;
	}
	node_submit(nd, c);
}

static void wait_push(struct array *a, struct dev_io *p)
{
	p->dev_next = NULL;
	if (a->wait_tail)
		a->wait_tail->dev_next = p;
	else
		a->wait_head = p;
	a->wait_tail = p;
}

/* A request resumed from the head of the queue goes back to the head. */
static void wait_push_front(struct array *a, struct dev_io *p)
{
	p->dev_next = a->wait_head;
	a->wait_head = p;
	if (!a->wait_tail)
		a->wait_tail = p;
}

/* FLUSH: one piece per node holding writes not yet flushed. */
static void split_flush(struct array *a, struct dev_io *p, bool resumed)
{
	/* scratch[0] counts nodes visited, then is set to len to finish. */
	for (size_t i = (size_t)p->dev_scratch[0]; i < a->n; i++) {
		struct array_node *nd = &a->nodes[i];
		if (nd->writes_done > nd->flushed_upto || (p->flags & DEV_F_FUA)) {
			struct array_child *c = array_child_get(a);
			if (!c) {
				p->dev_scratch[0] = i;
				if (resumed)
					wait_push_front(a, p);
				else
					wait_push(a, p);
				return;
			}
			array_send_piece(a, c, p, i, DEV_FLUSH, 0, 0, NULL);
		}
	}
	p->dev_scratch[0] = p->len;
}

void array_wait_push(struct array *a, struct dev_io *p, bool front)
{
	if (front)
		wait_push_front(a, p);
	else
		wait_push(a, p);
}

static void split(struct array *a, struct dev_io *p, bool resumed)
{
	if (a->alg->submit) {
		a->alg->submit(a, p, resumed);
		return;
	}
	set_state(p, outstanding(p) + 1, first_err(p)); /* hold while splitting */
	if (p->op == DEV_FLUSH) {
		split_flush(a, p, resumed);
	} else {
		while (p->dev_scratch[0] < p->len) {
			uint64_t done = p->dev_scratch[0];
			if (p->off + p->len > a->dev.size) {
				/* The storage shrank while this request waited: what
				 * is past the end must not land on another node. */
				set_state(p, outstanding(p),
					  first_err(p) ? first_err(p)
					  : (p->op == DEV_WRITE || p->op == DEV_WRITE_ZEROES)
					      ? ENOSPC
					      : EINVAL);
				p->dev_scratch[0] = p->len;
				break;
			}
			struct array_child *c = array_child_get(a);
			if (!c) {
				if (resumed)
					wait_push_front(a, p);
				else
					wait_push(a, p);
				break;
			}
			struct alg_seg seg;
			a->alg->map(a->nodes, a->n, a->chunk, p->off + done, p->len - done, &seg);
			struct array_node *nd = &a->nodes[seg.node];
			if ((p->op == DEV_READ || p->op == DEV_WRITE) && nd->dev->max_io &&
			    seg.len > nd->dev->max_io)
				seg.len = nd->dev->max_io;
			if (p->op == DEV_BLOCK_STATUS)
				p->len = done + seg.len; /* answer for the first node only */
			p->dev_scratch[0] = done + seg.len;
			array_send_piece(a, c, p, seg.node, p->op, seg.node_off, seg.len,
					 p->buf ? (char *)p->buf + done : NULL);
		}
	}
	parent_put_ref(a, p, 0);
}

static void resume_waiting(struct ev_deferred *d)
{
	struct array *a = container_of(d, struct array, resume);
	while (a->wait_head && a->free_children) {
		struct dev_io *p = a->wait_head;
		a->wait_head = p->dev_next;
		if (!a->wait_head)
			a->wait_tail = NULL;
		p->dev_next = NULL;
		split(a, p, true);
		if (a->wait_head == p)
			break; /* still short of pieces (an algorithm may take them all at once) */
	}
}

/* Does a WRITE go to its node(s) in one piece, so that its pipe can? */
static bool pipe_whole(struct array *a, const struct dev_io *p)
{
	if (a->alg->submit)
		return a->alg->pipe_whole;
	struct alg_seg seg;
	a->alg->map(a->nodes, a->n, a->chunk, p->off, p->len, &seg);
	const struct dev *nd = a->nodes[seg.node].dev;
	return seg.len >= p->len && (!nd->max_io || p->len <= nd->max_io);
}

static void array_submit(struct dev *d, struct dev_io *p)
{
	struct array *a = container_of(d, struct array, dev);
	if (p->op == DEV_READ)
		p->pipe = NULL;
	if ((p->flags & DEV_F_PIPE) && p->op == DEV_WRITE && p->len && p->off < a->dev.size &&
	    p->len <= a->dev.size - p->off && !pipe_whole(a, p)) {
		/* Split over nodes: the pieces are sent from its bytes. */
		p->flags &= ~DEV_F_PIPE;
		if (!dev_pipe_to_buf(p))
			return;
	}
	p->dev_scratch[0] = 0;
	set_state(p, 0, 0);
	p->dev_next = NULL;
	p->dev_link = NULL; /* lend.c: no piece lent yet */
	if (p->op != DEV_FLUSH && (p->off > a->dev.size || p->len > a->dev.size - p->off)) {
		/* The frontend checks ranges; this guards against a shrink race. */
		set_state(p, 1, 0);
		p->dev_scratch[0] = p->len;
		parent_put_ref(a, p, p->op == DEV_WRITE ? ENOSPC : EINVAL);
		return;
	}
	if (p->len == 0 && p->op != DEV_FLUSH) {
		p->done(p, 0);
		return;
	}
	if (p->op == DEV_FLUSH)
		p->len = UINT64_MAX; /* progress marker: split_flush sets scratch[0] to it */
	/* Keep arrival order: nobody overtakes a request already waiting. */
	if (a->wait_head) {
		wait_push(a, p);
		return;
	}
	split(a, p, false);
}

static void free_node(struct array_node *nd)
{
	dev_destroy(nd->dev);
	free(nd->spec);
}

static void array_destroy(struct dev *d)
{
	array_free(container_of(d, struct array, dev));
}

static const struct dev_ops array_ops = {
    .kind = "array",
    .submit = array_submit,
    .destroy = array_destroy,
    .release = array_lend_release,
    .can_borrow = array_lend_can,
};

static void compute_caps(struct array *a)
{
	/* The storage offers what the core can always provide (nodes emulate
	 * what they lack); fast zero only if every node has it. The flush
	 * bookkeeping is shared by all frontend connections: multi-conn. */
	uint32_t caps = DEV_CAP_FLUSH | DEV_CAP_FUA | DEV_CAP_TRIM | DEV_CAP_ZERO | DEV_CAP_CACHE |
			DEV_CAP_EXTENTS | DEV_CAP_MULTI_CONN | DEV_CAP_FAST_ZERO;
	bool lends = false, pipes = false;
	uint32_t min_block = 1;
	for (size_t i = 0; i < a->n; i++) {
		const struct dev *nd = a->nodes[i].dev;
		if (!(nd->caps & DEV_CAP_FAST_ZERO))
			caps &= ~DEV_CAP_FAST_ZERO;
		if (nd->caps & DEV_CAP_READONLY)
			caps |= DEV_CAP_READONLY;
		if (nd->min_block > min_block)
			min_block = nd->min_block;
		lends |= (nd->caps & DEV_CAP_BORROW) != 0;
		pipes |= (nd->caps & DEV_CAP_PIPE) != 0;
	}
	/* Payloads in pipes are passed to nodes that take them (the others
	 * get the bytes copied out: dev_submit), unless the algorithm needs
	 * the bytes itself. */
	if (pipes && (!a->alg->submit || a->alg->pipe_whole))
		caps |= DEV_CAP_PIPE;
	/* Reads of local nodes are lent through (lend.c). */
	if (lends)
		caps |= DEV_CAP_BORROW | DEV_CAP_BORROW_BUF;
	a->dev.caps = caps;
	a->dev.min_block = min_block;
}

static void reap_node(struct ev_deferred *d);

static int cmp_start(const void *x, const void *y)
{
	const struct array_node *a = x, *b = y;
	return a->start < b->start ? -1 : a->start > b->start;
}

/* A suspended node's own FLUSH (see drain_check): by name, since the node
 * array may move (a live add) while it is out. */
struct drain_flush {
	struct dev_io io;
	struct array *a;
	uint64_t snapshot;
	char name[32];
};

static void drain_flush_done(struct dev_io *io, int err)
{
	struct drain_flush *df = io->priv;
	struct array *a = df->a;
	int i = array_find_node(a, df->name);
	if (i >= 0) {
		struct array_node *nd = &a->nodes[i];
		nd->inflight--;
		nd->flushes++;
		if (err) {
			nd->errors++;
			log_warn(
			    "node %s: the flush of its last writes as it was suspended failed: "
			    "%s (the next flush after resume tries again)",
			    nd->name, strerror(err));
		} else if (df->snapshot > nd->flushed_upto) {
			nd->flushed_upto = df->snapshot;
		}
		array_node_settled(a, (size_t)i);
	}
	free(df);
}

/* Tell whoever suspended a node that it has drained. Before that, a node
 * that took writes since its last flush is flushed: what it acknowledged
 * is then on its disk before anyone swaps that disk, and a FLUSH of the
 * storage while it is suspended has nothing to wait for on it (its new
 * writes are held, not done), so fsync and a filesystem's journal go on
 * with the other nodes. */
static void drain_check(struct ev_deferred *d)
{
	struct array *a = container_of(d, struct array, drain_work);
	for (size_t i = 0; i < a->n; i++) {
		struct array_node *nd = &a->nodes[i];
		if (nd->drained && nd->inflight == 0 && !nd->drain_flushed &&
		    nd->writes_done > nd->flushed_upto && (nd->dev->caps & DEV_CAP_FLUSH)) {
			nd->drain_flushed = true;
			struct drain_flush *df = xcalloc(1, sizeof(*df));
			df->a = a;
			df->snapshot = nd->writes_done;
			snprintf(df->name, sizeof(df->name), "%s", nd->name);
			df->io.op = DEV_FLUSH;
			df->io.done = drain_flush_done;
			df->io.priv = df;
			nd->inflight++;
			dev_submit(nd->dev, &df->io);
			continue;
		}
		if (nd->drained && nd->inflight == 0) {
			void (*fn)(void *, uint64_t) = nd->drained;
			nd->drained = NULL;
			fn(nd->drained_arg, nd->held);
		}
	}
}

void array_node_set_dev(struct array *a, size_t i, struct dev *dev, const char *spec)
{
	struct array_node *nd = &a->nodes[i];
	dev_destroy(nd->dev);
	nd->dev = dev;
	if (spec != nd->spec) {
		free(nd->spec);
		nd->spec = xstrdup(spec);
	}
	nd->remote = !strcmp(dev->ops->kind, "nbd");
	/* What was flushed on the old device says nothing of the new (a
	 * migration's cutover flushed it). */
	nd->flushed_upto = nd->writes_done;
	compute_caps(a);
}

int array_find_node(const struct array *a, const char *name)
{
	for (size_t i = 0; i < a->n; i++)
		if (!strcmp(a->nodes[i].name, name) || !strcmp(a->nodes[i].spec, name))
			return (int)i;
	return -1;
}

int array_suspend(struct array *a, const char *name, void (*done)(void *arg, uint64_t held),
		  void *arg, char *err, size_t errlen)
{
	int i = array_find_node(a, name);
	if (i < 0) {
		snprintf(err, errlen, "no node named %s", name);
		return -ENOENT;
	}
	struct array_node *nd = &a->nodes[i];
	if (nd->suspended) {
		snprintf(err, errlen, "%s is already suspended", nd->name);
		return -EALREADY;
	}
	if (a->mig && array_migrating_node(a) == i) {
		snprintf(err, errlen, "%s is being migrated; abort it (dst replace --abort) first",
			 nd->name);
		return -EBUSY;
	}
	if (a->alg->suspend) {
		int rc = a->alg->suspend(a, (size_t)i, err, errlen);
		if (rc < 0)
			return rc;
	}
	nd->suspended = true;
	nd->suspended_ns = ev_now_ns();
	nd->held = 0;
	nd->drained = done;
	nd->drained_arg = arg;
	nd->drain_flushed = false;
	array_unlend_node(a, (size_t)i);
	ev_defer(a->loop, &a->drain_work);
	return 0;
}

void array_set_disk_id(struct array *a, const char *name, const uint8_t id[16])
{
	int i = array_find_node(a, name);
	if (i >= 0)
		memcpy(a->nodes[i].disk_id, id, 16);
}

int array_resume(struct array *a, const char *name, struct dev *dev, const char *spec, char *err,
		 size_t errlen)
{
	int i = array_find_node(a, name);
	if (i < 0) {
		snprintf(err, errlen, "no node named %s", name);
		return -ENOENT;
	}
	struct array_node *nd = &a->nodes[i];
	if (!nd->suspended) {
		snprintf(err, errlen, "%s is not suspended", nd->name);
		return -EINVAL;
	}
	if (nd->inflight) {
		snprintf(err, errlen, "%s still has %llu requests in flight; try again", nd->name,
			 (unsigned long long)nd->inflight);
		return -EBUSY;
	}
	if (dev) {
		if (dev->size < nd->size * 512) {
			snprintf(err, errlen,
				 "the new node has %llu sectors, fewer than the %llu of %s",
				 (unsigned long long)(dev->size / 512),
				 (unsigned long long)nd->size, nd->name);
			return -ENOSPC;
		}
		array_node_set_dev(a, (size_t)i, dev, spec);
	}
	nd->suspended = false;
	nd->drained = NULL;
	if (a->alg->resume)
		a->alg->resume(a, (size_t)i, dev != NULL);
	struct array_child *c = nd->held_head;
	nd->held_head = nd->held_tail = NULL;
	nd->held = 0;
	while (c) {
		struct array_child *next = c->next_free;
		c->next_free = NULL;
		node_submit(nd, c);
		c = next;
	}
	return 0;
}

void array_drop_held(struct array *a)
{
	for (size_t i = 0; i < a->n; i++) {
		struct array_node *nd = &a->nodes[i];
		struct array_child *c = nd->held_head;
		nd->held_head = nd->held_tail = NULL;
		nd->held = 0;
		while (c) {
			struct array_child *next = c->next_free;
			nd->inflight++; /* child_done takes it back */
			c->io.done(&c->io, EIO);
			c = next;
		}
	}
}

struct array *array_new(struct ev_loop *loop, const struct alg_ops *alg, const struct alg_geom *geo,
			struct array_node *nodes, size_t n, char *err, size_t errlen)
{
	qsort(nodes, n, sizeof(*nodes), cmp_start);
	uint64_t size = array_layout_check(alg, nodes, n, geo, false, err, errlen);
	if (!size)
		return NULL;
	struct array *a = xcalloc(1, sizeof(*a));
	a->dev.ops = &array_ops;
	a->dev.loop = loop;
	a->dev.size = size;
	a->dev.desc = xasprintf("%s over %zu nodes", alg->name, n);
	a->loop = loop;
	a->alg = alg;
	a->geo = *geo;
	a->chunk = geo->chunk;
	a->nodes = nodes;
	a->n = n;
	a->children = xcalloc(ARRAY_CHILDREN, sizeof(*a->children));
	for (unsigned i = ARRAY_CHILDREN; i-- > 0;)
		array_child_put(a, &a->children[i]);
	a->resume.fn = resume_waiting;
	a->reap.fn = reap_node;
	a->drain_work.fn = drain_check;
	compute_caps(a);
	return a;
}

struct dev *array_dev(struct array *a)
{
	return &a->dev;
}

void array_free(struct array *a)
{
	if (!a)
		return;
	ev_defer_cancel(a->loop, &a->resume);
	ev_defer_cancel(a->loop, &a->reap);
	ev_defer_cancel(a->loop, &a->drain_work);
	/* Quiet the migration and the algorithm first: closing the nodes
	 * answers whatever they still hold, and those callbacks must start
	 * nothing. */
	migrate_close(a);
	if (a->priv && a->alg->close)
		a->alg->close(a);
	for (size_t i = 0; i < a->n; i++)
		free_node(&a->nodes[i]);
	if (a->has_gone)
		free_node(&a->nodes[a->n]);
	migrate_free(a);
	if (a->priv && a->alg->free)
		a->alg->free(a);
	free(a->nodes);
	free(a->children);
	free(a->dev.desc);
	free(a);
}

size_t array_node_count(const struct array *a)
{
	return a->n;
}

const struct array_node *array_node_at(const struct array *a, size_t i)
{
	return i < a->n ? &a->nodes[i] : NULL;
}

const struct alg_ops *array_alg(const struct array *a)
{
	return a->alg;
}

uint64_t array_chunk(const struct array *a)
{
	return a->chunk;
}

int array_add_node(struct array *a, struct array_node *node, char *err, size_t errlen)
{
	if (!a->alg->can_grow) {
		snprintf(err, errlen, "%s cannot grow while running: its layout would change",
			 a->alg->name);
		return -EINVAL;
	}
	if (a->has_gone) {
		snprintf(err, errlen, "node %s is still being removed; try again",
			 a->nodes[a->n].name);
		return -EBUSY;
	}
	struct array_node *nodes = xcalloc(a->n + 1, sizeof(*nodes));
	memcpy(nodes, a->nodes, a->n * sizeof(*nodes));
	nodes[a->n] = *node;
	uint64_t size = array_layout_check(a->alg, nodes, a->n + 1, &a->geo, false, err, errlen);
	if (!size) {
		free(nodes);
		return -EINVAL;
	}
	/* Pieces in flight point at nodes by index, so moving the array is safe. */
	free(a->nodes);
	a->nodes = nodes;
	a->n++;
	a->dev.size = size;
	compute_caps(a);
	return 0;
}

static void reap_node(struct ev_deferred *d)
{
	struct array *a = container_of(d, struct array, reap);
	if (!a->has_gone || a->nodes[a->n].inflight)
		return;
	free_node(&a->nodes[a->n]);
	a->has_gone = false;
	if (a->gone_done)
		a->gone_done(a->gone_arg);
}

int array_remove_last(struct array *a, const char *name, void (*done)(void *arg), void *arg,
		      char *err, size_t errlen)
{
	bool known = false;
	for (size_t i = 0; i < a->n; i++)
		known |= !strcmp(a->nodes[i].name, name);
	if (!known) {
		snprintf(err, errlen, "no node named %s", name);
		return -ENOENT;
	}
	int idx = array_find_node(a, name);
	if (idx >= 0 && a->nodes[idx].suspended) {
		snprintf(err, errlen, "%s is suspended with requests held: resume it first", name);
		return -EBUSY;
	}
	if (idx >= 0 && a->mig && array_migrating_node(a) == idx) {
		snprintf(err, errlen,
			 "%s is being migrated; abort it (dst replace --abort) or let it finish",
			 name);
		return -EBUSY;
	}
	if (strcmp(a->nodes[a->n - 1].name, name) != 0 || !a->alg->can_grow || a->n == 1 ||
	    a->has_gone) {
		if (a->has_gone)
			snprintf(err, errlen, "node %s is still being removed",
				 a->nodes[a->n].name);
		else if (a->alg->redundant)
			snprintf(err, errlen,
				 "cannot remove %s from a running %s storage: stop the storage "
				 "first, or move the node with dst replace",
				 name, a->alg->name);
		else if (!a->alg->can_grow)
			snprintf(err, errlen,
				 "cannot remove %s from a running %s storage: every node holds "
				 "chunks of the whole device; stop the storage first",
				 name, a->alg->name);
		else if (a->n == 1)
			snprintf(err, errlen,
				 "%s is the only node; stop or delete the storage instead", name);
		else
			snprintf(err, errlen,
				 "cannot remove %s from a running storage: only the last node in "
				 "linear order (%s) can go, or the device would get a hole",
				 name, a->nodes[a->n - 1].name);
		return -EBUSY;
	}
	/* In-flight pieces refer to the node by index; it keeps that index
	 * while it drains because new requests cannot reach it any more. */
	a->n--;
	a->dev.size = a->nodes[a->n - 1].start * 512 + a->nodes[a->n - 1].size * 512;
	a->has_gone = true;
	compute_caps(a);
	a->gone_done = done;
	a->gone_arg = arg;
	array_unlend_node(a, a->n);
	ev_defer(a->loop, &a->reap);
	return 0;
}

void array_show_nodes(struct array *a, struct strbuf *out, const char *prefix)
{
	char p[512];
	for (size_t i = 0; i < a->n; i++) {
		struct array_node *nd = &a->nodes[i];
#define NP(leaf) (snprintf(p, sizeof(p), "%s/%s/%s", prefix, nd->name, leaf), p)
		sb_attr_str(out, NP("type"), "%s", nd->dev->desc);
		if (a->alg->health && a->priv)
			sb_attr_str(out, NP(a->alg->health_attr), "%c", a->alg->health(a, i));
		sb_attr_num(out, NP("size"), nd->size);
		sb_attr_num(out, NP("start"), nd->start);
		if (nd->suspended) {
			sb_attr_str(out, NP("suspended"), "yes");
			sb_attr_num(out, NP("suspended_for"),
				    (ev_now_ns() - nd->suspended_ns) / 1000000000ull);
			sb_attr_num(out, NP("held"), nd->held);
		}
		if (nd->dev->ops->show) {
			snprintf(p, sizeof(p), "%s/%s", prefix, nd->name);
			nd->dev->ops->show(nd->dev, out, p);
		} else {
			sb_attr_str(out, NP("state"), "up");
		}
		sb_attr_num(out, NP("io/reads"), nd->reads);
		sb_attr_num(out, NP("io/writes"), nd->writes);
		sb_attr_num(out, NP("io/read_bytes"), nd->read_bytes);
		sb_attr_num(out, NP("io/write_bytes"), nd->write_bytes);
		sb_attr_num(out, NP("io/flushes"), nd->flushes);
		sb_attr_num(out, NP("io/errors"), nd->errors);
		sb_attr_num(out, NP("io/inflight"), nd->inflight);
		sb_attr_num(out, NP("io/read_ns"), nd->read_ns);
		sb_attr_num(out, NP("io/write_ns"), nd->write_ns);
		/* Background IO, apart from the clients'. */
		if (a->alg->redundant) {
			sb_attr_num(out, NP("io/resync_reads"), nd->resync.reads);
			sb_attr_num(out, NP("io/resync_writes"), nd->resync.writes);
			sb_attr_num(out, NP("io/resync_read_bytes"), nd->resync.read_bytes);
			sb_attr_num(out, NP("io/resync_write_bytes"), nd->resync.write_bytes);
			sb_attr_num(out, NP("io/resync_zeroes"), nd->resync.zeroes);
			sb_attr_num(out, NP("io/resync_errors"), nd->resync.errors);
		}
		/* Only for a node that is or was migrated: dst show is long enough. */
		const struct array_bg_io *mg = &nd->migrate;
		if (!mg->reads && !mg->writes && !mg->errors && array_migrating_node(a) != (int)i)
			continue;
		sb_attr_num(out, NP("io/migrate_reads"), nd->migrate.reads);
		sb_attr_num(out, NP("io/migrate_writes"), nd->migrate.writes);
		sb_attr_num(out, NP("io/migrate_read_bytes"), nd->migrate.read_bytes);
		sb_attr_num(out, NP("io/migrate_write_bytes"), nd->migrate.write_bytes);
		sb_attr_num(out, NP("io/migrate_errors"), nd->migrate.errors);
#undef NP
	}
}

void array_bg_count(struct array_bg_io *bg, enum dev_op op, uint64_t len, int err)
{
	if (err) {
		bg->errors++;
		return;
	}
	switch (op) {
	case DEV_READ:
		bg->reads++;
		bg->read_bytes += len;
		break;
	case DEV_WRITE:
		bg->writes++;
		bg->write_bytes += len;
		break;
	case DEV_WRITE_ZEROES: bg->zeroes++; break;
	default: break;
	}
}

void array_nodes_line(const struct array *a, struct strbuf *out)
{
	sb_printf(out, "sectors (start [size]): ");
	for (size_t i = 0; i < a->n; i++)
		sb_printf(out, "%s%llu [%llu]", i ? " | " : "",
			  (unsigned long long)a->nodes[i].start,
			  (unsigned long long)a->nodes[i].size);
}

/* ---- the algorithm's own settings and commands ---- */

int array_alg_setup(struct array *a, const struct alg_conf *conf, char *err, size_t errlen)
{
	if (!a->alg->setup)
		return 0;
	return a->alg->setup(a, conf, err, errlen);
}

int array_alg_set(struct array *a, const char *key, uint64_t val, char *err, size_t errlen)
{
	if (!a->alg->set || !a->priv) {
		snprintf(err, errlen, "%s has no setting %s", a->alg->name, key);
		return -ENOTSUP;
	}
	return a->alg->set(a, key, val, err, errlen);
}

int array_verify_start(struct array *a, const struct verify_req *r, char *err, size_t errlen)
{
	if (!a->alg->verify_start || !a->priv) {
		snprintf(err, errlen, "dst verify compares a mirror's legs; %s has none",
			 a->alg->name);
		return -1;
	}
	return a->alg->verify_start(a, r, err, errlen);
}

int array_verify_abort(struct array *a, char *err, size_t errlen)
{
	if (!a->alg->verify_abort || !a->priv) {
		snprintf(err, errlen, "no verify is running");
		return -1;
	}
	return a->alg->verify_abort(a, err, errlen);
}

void array_show_alg(struct array *a, struct strbuf *out, const char *prefix)
{
	if (a->alg->show && a->priv)
		a->alg->show(a, out, prefix);
}
