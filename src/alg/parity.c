/* parity.c - alg_parity: Reed-Solomon erasure coding over K data and M
 * parity nodes (RAID-5/6 and beyond), on nodes anywhere; the requests.
 *
 * Row r of the storage is chunk r of every node: K data chunks and M
 * parity chunks, the parity rotating over the nodes (parity_geom.h). The
 * code is ISA-L's (parity_code.h): any K chunks of a row give back the
 * others, so the storage survives the loss of any M nodes.
 *
 * Reads of a node that is in sync go to it, one piece per chunk; a chunk on
 * a missing node (dead, suspended, or not rebuilt yet there) is rebuilt
 * from K others of its row. A write is cut into row pieces; each piece is a
 * row operation that holds its row (writes to one row are ordered, rows in
 * parallel) and follows its plan (parity_plan.h): a whole row is encoded
 * and written at once; part of a row is read-modify-write or
 * reconstruct-write, whichever reads less; with nodes missing, a plan that
 * reads only what is there. A node that fails under an operation is taken
 * as missing and the operation planned again.
 *
 * No write hole: before the first write to a region of rows is sent, its
 * bit in the write-intent bitmap (wib.h) is on disk; the bit is swept only
 * once every node has flushed the region's writes. After a crash, the
 * regions whose bit is set are the only rows whose data and parity may
 * disagree (a write torn between its chunks): their parity is recomputed
 * from their data before a degraded read may use it (parity_sync.c), and
 * until then no read rebuilds a chunk from them. With every node there
 * that is enough: each torn row gets parity that matches its data again,
 * whose chunks hold old or new bytes of writes never acknowledged. A node
 * missing at the crash makes its chunk of a torn row unrecoverable: those
 * rows are counted as lost and their chunks on it read as EIO instead of
 * being rebuilt wrong (a parity log would close that, see the README).
 *
 * Memory: row operations and their buffers are allocated at set-up (at
 * most PARITY_BUDGET of buffers); requests wait for one, never fail for
 * want of one.
 *
 * Parent requests keep their state in the core's scratch space
 * (req_state.h): scratch[0] the bytes dispatched, scratch[1] the pieces and
 * row operations outstanding, flags, the first error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array/req_state.h"
#include "common/log.h"
#include "common/util.h"
#include "parity_int.h"

#define F_STARTED RQ_F_ALG /* a write counted in flight, being dispatched */

static bool write_like(enum dev_op op)
{
	return op == DEV_WRITE || op == DEV_WRITE_ZEROES;
}

unsigned parity_count(const struct parity *pa, char st)
{
	unsigned c = 0;
	for (unsigned i = 0; i < pa->n; i++)
		c += pa->state[i] == st;
	return c;
}

uint32_t parity_missing(const struct parity *pa, uint64_t row)
{
	uint64_t r = row / pa->rows_per_region;
	uint32_t miss = 0;
	for (unsigned i = 0; i < pa->n; i++) {
		if (pa->state[i] == 'D') {
			miss |= 1u << i;
		} else if (pa->state[i] == 'S') {
			/* Rebuilt where a pass rebuilding it has been;
			 * elsewhere current unless its region was written
			 * while it was out. */
			bool rebuilt =
			    (pa->sync_nodes & (1u << i)) &&
			    (pa->finishing ||
			     (pa->sync.running && regcopy_behind(&pa->sync, r * pa->region)));
			bool behind =
			    pa->full[i] || mbm_test(pa->bm.bits + SET_BEHIND * pa->bm.set_len, r);
			if (!rebuilt && behind)
				miss |= 1u << i;
		}
	}
	return miss;
}

/* Children the row operations may always get: direct pieces leave them. */
static unsigned reserve(const struct parity *pa)
{
	return pa->npops * (pa->n + 1);
}

/* ---- parents ---- */

static void finish(struct array *a, struct dev_io *p)
{
	struct parity *pa = a->priv;
	int err = rq_err(p);
	if (write_like(p->op)) {
		regcopy_write_end(&pa->sync, p->off, p->len);
		parity_verify_write(pa, p, false);
		if ((rq_low(p) & RQ_F_NODEFAIL) && !err) {
			/* A node missed this write: its region must be marked
			 * for it, and its failure durable, before the answer. */
			uint64_t r0 = p->off / pa->region, r1 = (p->off + p->len - 1) / pa->region;
			for (uint64_t r = r0; r <= r1; r++)
				mbm_set(wib_set(&pa->bm, SET_BEHIND), r);
			rq_set(p, RQ_MODE_FINISH, 0);
			wib_wait(&pa->bm, p);
			return;
		}
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

static void get_ref(struct dev_io *p)
{
	rq_set(p, rq_low(p) + 1, rq_err(p));
}

/* ---- row operations ---- */

static void pop_piece_marker(struct dev_io *io, int err)
{
	(void)io, (void)err; /* never called: marks a row operation's parent */
}

static struct pop *pop_get(struct parity *pa)
{
	struct pop *o = pa->free_pops;
	if (o)
		pa->free_pops = o->next;
	return o;
}

static void pop_run(struct pop *o);

/* The operation holds its row, or waits behind the one that does. */
static void pop_start(struct pop *o)
{
	struct parity *pa = o->pa;
	for (struct pop *h = pa->active; h; h = h->next) {
		if (h->row != o->row)
			continue;
		o->wnext = NULL;
		if (h->wait_tail)
			h->wait_tail->wnext = o;
		else
			h->wait_head = o;
		h->wait_tail = o;
		return;
	}
	o->next = pa->active;
	pa->active = o;
	pop_run(o);
}

/* Done: the row goes to the next operation waiting for it. */
static void pop_end(struct pop *o, int err)
{
	struct parity *pa = o->pa;
	struct array *a = pa->a;
	struct dev_io *p = o->p;
	for (struct pop **pp = &pa->active; *pp; pp = &(*pp)->next) {
		if (*pp == o) {
			*pp = o->next;
			break;
		}
	}
	struct pop *w = o->wait_head, *wt = o->wait_tail;
	if (o->failed && o->write)
		rq_set(p, rq_low(p) | RQ_F_NODEFAIL, rq_err(p));
	o->wait_head = o->wait_tail = NULL;
	o->p = NULL;
	o->next = pa->free_pops;
	pa->free_pops = o;
	if (a->wait_head)
		ev_defer(a->loop, &a->resume); /* a request may be waiting for it */
	if (w) {			       /* it holds the row now, and the queue behind it */
		w->wait_head = w->wnext;
		w->wait_tail = w->wnext ? wt : NULL;
		w->wnext = NULL;
		w->next = pa->active;
		pa->active = w;
		pop_run(w);
	}
	put_ref(a, p, err);
}

static void send(struct pop *o, unsigned node, enum dev_op op, uint64_t node_off, uint64_t len,
		 void *buf)
{
	struct array *a = o->pa->a;
	array_send_piece(a, array_child_get(a), &o->pio, node, op, node_off, len, buf);
}

static uint64_t pio_out(const struct pop *o)
{
	return (uint32_t)o->pio.dev_scratch[1];
}

static bool stale_row(const struct parity *pa, uint64_t row)
{
	uint64_t r = row / pa->rows_per_region;
	return mbm_test(pa->stale, r);
}

static void pop_reads_done(struct pop *o);
static void pop_writes_done(struct pop *o);

static void pop_run(struct pop *o)
{
	struct parity *pa = o->pa;
	const struct parity_geom *g = &pa->g;
	uint32_t missing = parity_missing(pa, o->row);
	o->failed = 0;
	o->writing = false;
	o->pio.dev_scratch[1] = 0;
	o->pio.flags = o->write ? (o->p->flags & DEV_F_FUA) : 0;
	if (o->write) {
		unsigned flags = stale_row(pa, o->row) ? PARITY_PLAN_STALE : 0;
		if (parity_write_plan(g, o->off, o->len, missing, flags, &o->plan) < 0) {
			/* (the same line each time: the log counts repeats) */
			log_warn("parity: a write to a row with more than %u of its chunks "
				 "missing fails (EIO)",
				 g->m);
			pop_end(o, EIO);
			return;
		}
		pa->plans[o->plan.kind]++;
		for (unsigned i = 0; i < o->plan.nreads; i++) {
			const struct parity_ext *e = &o->plan.reads[i];
			send(o, e->node, DEV_READ, e->node_off, e->len,
			     o->buf[e->role] + (e->in - o->plan.lo));
		}
	} else {
		if (parity_read_plan(g, o->off, o->len, missing, &o->rplan) < 0 ||
		    (o->rplan.kind == PARITY_READ_RECONSTRUCT && stale_row(pa, o->row))) {
			/* Too few nodes, or parity that may not match its data
			 * (a crash tore a write): no wrong bytes, an error. */
			pa->read_failures++;
			log_warn("parity: a read of a missing node's chunk fails (EIO): %s",
				 stale_row(pa, o->row)
				     ? "its row's parity may not match its data since a crash"
				     : "too few chunks of its row are left");
			pop_end(o, EIO);
			return;
		}
		uint8_t *dst = (uint8_t *)o->p->buf + o->poff;
		if (o->rplan.kind == PARITY_READ_DIRECT) {
			const struct parity_ext *e = &o->rplan.reads[0];
			send(o, e->node, DEV_READ, e->node_off, e->len, dst);
		} else {
			for (unsigned i = 0; i < o->rplan.nreads; i++) {
				const struct parity_ext *e = &o->rplan.reads[i];
				send(o, e->node, DEV_READ, e->node_off, e->len, o->buf[e->role]);
			}
		}
	}
	if (pio_out(o) == 0)
		pop_reads_done(o);
}

/* The plan's writes: data from the request, parity from the buffers. */
static void pop_write(struct pop *o)
{
	const struct parity_plan *pl = &o->plan;
	const uint8_t *data =
	    o->p->op == DEV_WRITE_ZEROES ? o->pa->zero : (const uint8_t *)o->p->buf + o->poff;
	o->writing = true;
	/* A node that went out since the plan was made (a failure, dst
	 * suspend) is written around: its chunk is as if that write failed,
	 * the parity written covers it. (Sent, it would wait for resume.) */
	uint32_t missing = parity_missing(o->pa, o->row);
	for (unsigned i = 0; i < pl->nwrites; i++) {
		const struct parity_ext *e = &pl->writes[i];
		if (missing & (1u << e->node)) {
			o->failed |= 1u << e->node;
			continue;
		}
		void *buf = e->role < o->pa->g.k ? (void *)(data + e->req_off)
						 : (void *)(o->buf[e->role] + (e->in - pl->lo));
		send(o, e->node, DEV_WRITE, e->node_off, e->len, buf);
	}
	if (pio_out(o) == 0)
		pop_writes_done(o);
}

static void pop_reads_done(struct pop *o)
{
	struct parity *pa = o->pa;
	if (o->failed) {
		/* A node died under the reads: plan again without it. */
		if (++o->tries > pa->n) {
			pop_end(o, EIO);
			return;
		}
		pop_run(o);
		return;
	}
	if (o->write) {
		const uint8_t *data =
		    o->p->op == DEV_WRITE_ZEROES ? pa->zero : (const uint8_t *)o->p->buf + o->poff;
		if (parity_plan_compute(&pa->g, &pa->code, &o->plan, data, o->buf) < 0) {
			pop_end(o, EIO);
			return;
		}
		pop_write(o);
		return;
	}
	if (o->rplan.kind == PARITY_READ_RECONSTRUCT) {
		if (parity_code_decode(&pa->code, o->rplan.src, 1u << o->rplan.role, o->buf,
				       o->rplan.len) < 0) {
			pop_end(o, EIO);
			return;
		}
		memcpy((uint8_t *)o->p->buf + o->poff, o->buf[o->rplan.role], o->rplan.len);
		pa->reconstructed++;
	}
	pop_end(o, 0);
}

/* The writes are answered: those that failed took their nodes out; the row
 * is whole enough if no more than M of its chunks are missing now. */
static void pop_writes_done(struct pop *o)
{
	struct parity *pa = o->pa;
	if (!o->failed) {
		pop_end(o, 0);
		return;
	}
	uint32_t missing = parity_missing(pa, o->row);
	pop_end(o, (unsigned)__builtin_popcount(missing) > pa->g.m ? EIO : 0);
}

static void pop_piece_done(struct array *a, struct array_child *c, int err)
{
	struct pop *o = container_of(c->parent, struct pop, pio);
	struct parity *pa = o->pa;
	if (err) {
		/* The node is taken out, whatever the error: the operation is
		 * planned again without it. */
		parity_node_failed(pa, c->node, err);
		o->failed |= 1u << c->node;
	}
	array_child_put(a, c);
	o->pio.dev_scratch[1]--;
	if (pio_out(o))
		return;
	if (o->writing)
		pop_writes_done(o);
	else
		pop_reads_done(o);
}

void parity_chunk_io(struct parity *pa, struct dev_io *io, enum dev_op op, uint64_t row, unsigned c,
		     uint8_t *buf, void (*done)(struct dev_io *, int), void *priv)
{
	memset(io, 0, sizeof(*io));
	io->op = op;
	io->off = row * pa->g.chunk;
	io->len = pa->g.chunk;
	io->buf = buf;
	io->done = done;
	io->priv = priv;
	dev_submit(pa->a->nodes[parity_node(&pa->g, row, c)].dev, io);
}

/* ---- requests ---- */

/* Start a row operation on the request's bytes [done, done+len). */
static void start_pop(struct parity *pa, struct pop *o, struct dev_io *p, uint64_t done,
		      uint64_t len)
{
	o->p = p;
	o->off = p->off + done;
	o->len = len;
	o->poff = done;
	o->row = o->off / pa->g.row_bytes;
	o->write = write_like(p->op);
	o->tries = 0;
	get_ref(p);
	pop_start(o);
}

static void submit_write(struct array *a, struct dev_io *p, bool resumed)
{
	struct parity *pa = a->priv;
	if (!(rq_low(p) & F_STARTED)) {
		if (regcopy_hold(&pa->sync, p->off, p->len, p) || parity_verify_hold(pa, p))
			return; /* the resync or the verify gives it back */
		uint64_t r0 = p->off / pa->region, r1 = (p->off + p->len - 1) / pa->region;
		bool degraded = parity_count(pa, 'A') < pa->n;
		if (!wib_durable(&pa->bm, SET_INFLIGHT, r0, r1) ||
		    (degraded && !wib_durable(&pa->bm, SET_BEHIND, r0, r1))) {
			for (uint64_t r = r0; r <= r1; r++) {
				mbm_set(wib_set(&pa->bm, SET_INFLIGHT), r);
				if (degraded)
					mbm_set(wib_set(&pa->bm, SET_BEHIND), r);
			}
			rq_set(p, RQ_MODE_BITS, 0);
			wib_wait(&pa->bm, p);
			return;
		}
		regcopy_write_start(&pa->sync, p->off, p->len);
		parity_verify_write(pa, p, true);
		for (uint64_t r = r0; r <= r1; r++) {
			mbm_set(pa->touched, r);
			if (pa->sweep_out)
				mbm_clear(pa->sweep, r); /* not flushed by the sweep's FLUSH */
		}
		p->dev_scratch[0] = 0;
		rq_set(p, F_STARTED | 1, 0); /* held while dispatching */
	}
	while (p->dev_scratch[0] < p->len) {
		uint64_t done = p->dev_scratch[0];
		struct pop *o = pop_get(pa);
		if (!o) {
			array_wait_push(a, p, resumed);
			return;
		}
		uint64_t len = parity_write_piece(&pa->g, p->off + done, p->len - done);
		p->dev_scratch[0] = done + len;
		start_pop(pa, o, p, done, len);
	}
	put_ref(a, p, 0);
}

static void submit_read(struct array *a, struct dev_io *p, bool resumed)
{
	struct parity *pa = a->priv;
	if (!(rq_low(p) & F_STARTED)) {
		p->dev_scratch[0] = 0;
		rq_set(p, F_STARTED | 1, 0);
	}
	while (p->dev_scratch[0] < p->len) {
		uint64_t done = p->dev_scratch[0];
		struct parity_loc loc;
		parity_map(&pa->g, p->off + done, p->len - done, &loc);
		if (parity_missing(pa, loc.row) & (1u << loc.node)) {
			struct pop *o = p->buf ? pop_get(pa) : NULL;
			if (!p->buf) {
				/* A caller that gave no buffer (never the NBD
				 * server): nowhere to rebuild into. */
				p->dev_scratch[0] = p->len;
				put_ref(a, p, EIO);
				return;
			}
			if (!o) {
				array_wait_push(a, p, resumed);
				return;
			}
			p->dev_scratch[0] = done + loc.len;
			start_pop(pa, o, p, done, loc.len);
			continue;
		}
		if (a->nfree <= reserve(pa)) {
			array_wait_push(a, p, resumed);
			return;
		}
		uint64_t len = loc.len;
		struct dev *nd = a->nodes[loc.node].dev;
		if (nd->max_io && len > nd->max_io)
			len = nd->max_io;
		p->dev_scratch[0] = done + len;
		array_send_piece(a, array_child_get(a), p, loc.node, DEV_READ, loc.node_off, len,
				 p->buf ? (char *)p->buf + done : NULL);
	}
	put_ref(a, p, 0);
}

static void submit_flush(struct array *a, struct dev_io *p, bool resumed)
{
	struct parity *pa = a->priv;
	if (a->nfree < reserve(pa) + pa->n) {
		array_wait_push(a, p, resumed);
		return;
	}
	rq_set(p, 1, 0);
	for (unsigned i = 0; i < pa->n; i++) {
		struct array_node *nd = &a->nodes[i];
		if (pa->state[i] != 'D' &&
		    (nd->writes_done > nd->flushed_upto || (p->flags & DEV_F_FUA)))
			array_send_piece(a, array_child_get(a), p, i, DEV_FLUSH, 0, 0, NULL);
	}
	put_ref(a, p, 0);
}

void parity_submit(struct array *a, struct dev_io *p, bool resumed)
{
	struct parity *pa = a->priv;
	if (pa->n - parity_count(pa, 'A') - parity_count(pa, 'S') > pa->g.m) {
		p->done(p, EIO); /* more nodes dead than the code can stand */
		return;
	}
	switch (p->op) {
	case DEV_FLUSH: submit_flush(a, p, resumed); return;
	case DEV_WRITE_ZEROES:
		if (p->flags & DEV_F_FAST_ZERO) {
			/* Zeroes are written, with their parity: not fast. */
			p->done(p, ENOTSUP);
			return;
		}
		/* fall through */
	case DEV_WRITE: submit_write(a, p, resumed); return;
	case DEV_READ: submit_read(a, p, resumed); return;
	case DEV_BLOCK_STATUS:
		/* Nodes' extents say nothing of the storage's rows: all data. */
		if (p->ext_max) {
			p->ext[0].len = p->len;
			p->ext[0].flags = 0;
			p->ext_count = 1;
		}
		p->done(p, 0);
		return;
	case DEV_TRIM: /* advisory: a trimmed chunk would no longer match its parity */
	case DEV_CACHE: p->done(p, 0); return;
	default: p->done(p, EOPNOTSUPP); return;
	}
}

/* A piece sent for a request itself (a direct read, a flush), or for a
 * row operation. */
static void parity_piece_done(struct array *a, struct array_child *c, int err)
{
	if (c->parent->done == pop_piece_marker) {
		pop_piece_done(a, c, err);
		return;
	}
	struct parity *pa = a->priv;
	struct dev_io *p = c->parent;
	if (array_piece_lent(&c->io, err)) {
		array_lend_done(c, p); /* in flight on its node until released */
		put_ref(a, p, 0);
		return;
	}
	if (err && parity_node_error(err)) {
		parity_node_failed(pa, c->node, err);
		if (c->io.op == DEV_READ && p->buf) {
			/* Read it again from the others, as a row operation:
			 * the piece is the chunk's bytes it asked for. */
			struct pop *o = pop_get(pa);
			if (o) {
				uint64_t done = (uint64_t)((char *)c->io.buf - (char *)p->buf);
				array_child_put(a, c);
				start_pop(pa, o, p, done, c->io.len);
				put_ref(a, p, 0);
				return;
			}
		} else if (c->io.op == DEV_FLUSH) {
			err = 0; /* the node is out; the others have flushed */
		}
	}
	array_child_put(a, c);
	put_ref(a, p, err);
}

/* A request waited for the bitmap: on to its writes, or its answer. */
void parity_bm_written(void *owner, struct dev_io *p, int err)
{
	struct parity *pa = owner;
	uint32_t mode = rq_low(p) & RQ_MODE_MASK;
	rq_set(p, rq_low(p) & ~RQ_MODE_MASK, rq_err(p));
	if (mode == RQ_MODE_FINISH)
		p->done(p, rq_err(p) ? rq_err(p) : err);
	else if (err)
		p->done(p, err);
	else
		parity_submit(pa->a, p, false);
}

/* ---- set-up ---- */

static uint64_t parity_layout(const struct array_node *nodes, size_t n, const struct alg_geom *geo,
			      char *err, size_t errlen)
{
	struct parity_geom g;
	if (!geo->data || !geo->parity) {
		snprintf(err, errlen,
			 "alg_parity: the config has no data and parity counts "
			 "(dst create NAME --alg parity --data K --parity M)");
		return 0;
	}
	if (n != geo->data + geo->parity) {
		snprintf(err, errlen,
			 "alg_parity with --data %u --parity %u needs %u nodes (it has %zu)%s",
			 geo->data, geo->parity, geo->data + geo->parity, n,
			 n < geo->data + geo->parity ? "; add them with dst add" : "");
		return 0;
	}
	if (geo->chunk > PARITY_CHUNK_MAX) {
		snprintf(err, errlen,
			 "alg_parity: chunk %llu: at most %u KiB (a row operation holds a whole "
			 "row in memory)",
			 (unsigned long long)geo->chunk, PARITY_CHUNK_MAX >> 10);
		return 0;
	}
	if (n > MBM_MAX_LEGS) {
		snprintf(err, errlen, "alg_parity: at most %u nodes (--data + --parity)",
			 MBM_MAX_LEGS);
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if (nodes[i].size != nodes[0].size) {
			snprintf(err, errlen,
				 "alg_parity: nodes must be of equal size: %s has %llu sectors, %s "
				 "has %llu (narrow with --size %llu)",
				 nodes[0].name, (unsigned long long)nodes[0].size, nodes[i].name,
				 (unsigned long long)nodes[i].size,
				 (unsigned long long)MIN(nodes[0].size, nodes[i].size));
			return 0;
		}
	}
	if (parity_geom_init(&g, geo->data, geo->parity, geo->chunk, n ? nodes[0].size * 512 : 0,
			     err, errlen) < 0)
		return 0;
	return g.size;
}

static int parity_setup(struct array *a, const struct alg_conf *conf, char *err, size_t errlen)
{
	struct parity *pa = xcalloc(1, sizeof(*pa));
	pa->a = a;
	pa->n = (unsigned)a->n;
	if (parity_geom_init(&pa->g, a->geo.data, a->geo.parity, a->geo.chunk,
			     a->nodes[0].size * 512, err, errlen) < 0 ||
	    parity_code_init(&pa->code, pa->g.k, pa->g.m) < 0) {
		if (!err[0])
			snprintf(err, errlen, "alg_parity: cannot set up the code");
		free(pa);
		return -1;
	}
	/* Row operations: each a row's worth of chunk buffers, n of them. */
	uint64_t per = (uint64_t)pa->n * pa->g.chunk;
	pa->npops = (unsigned)MAX(4, MIN(64, PARITY_BUDGET / per));
	pa->arena = xmalloc(per * pa->npops);
	pa->pops = xcalloc(pa->npops, sizeof(*pa->pops));
	for (unsigned i = pa->npops; i-- > 0;) {
		struct pop *o = &pa->pops[i];
		o->pa = pa;
		o->pio.done = pop_piece_marker;
		for (unsigned c = 0; c < pa->n; c++)
			o->buf[c] = pa->arena + per * i + pa->g.chunk * c;
		o->next = pa->free_pops;
		pa->free_pops = o;
	}
	pa->zero = xcalloc(1, pa->g.row_bytes);
	a->priv = pa;
	if (parity_sync_setup(pa, conf, err, errlen) < 0)
		return -1; /* the core frees it (alg free) */
	return parity_verify_setup(pa);
}

static void parity_close(struct array *a)
{
	parity_verify_close(a->priv);
	parity_sync_close(a->priv);
}

static void parity_free(struct array *a)
{
	struct parity *pa = a->priv;
	if (!pa)
		return;
	parity_verify_free(pa);
	parity_sync_free(pa);
	free(pa->arena);
	free(pa->pops);
	free((void *)pa->zero);
	free(pa);
	a->priv = NULL;
}

static char parity_health(const struct array *a, size_t i)
{
	const struct parity *pa = a->priv;
	return i < pa->n ? pa->state[i] : '?';
}

static void parity_show(struct array *a, struct strbuf *out, const char *prefix)
{
	parity_sync_show(a->priv, out, prefix);
	parity_verify_show(a->priv, out, prefix);
}

const struct alg_ops alg_parity = {
    .name = "alg_parity",
    .layout = parity_layout,
    .can_grow = false,
    .min_nodes = 3,
    .max_nodes = MBM_MAX_LEGS,
    .redundant = true,
    .health_attr = "health",
    .setup = parity_setup,
    .submit = parity_submit,
    .piece_done = parity_piece_done,
    .suspend = parity_suspend,
    .resume = parity_resume,
    .moved = parity_moved,
    .migrate_check = parity_migrate_check,
    .replace_dead = parity_replace_dead,
    .close = parity_close,
    .free = parity_free,
    .health = parity_health,
    .show = parity_show,
    .metrics = parity_metrics,
    .set = parity_set,
    .verify_start = parity_verify_start,
    .verify_abort = parity_verify_abort,
};
