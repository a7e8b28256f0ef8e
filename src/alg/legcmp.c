/* legcmp.c - compare a range of a mirror's legs with their source and fix
 * the blocks that differ (see legcmp.h). */
#include "legcmp.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "array/array_int.h"
#include "common/crc32c.h"
#include "common/util.h"

#define BLK DEV_CSUM_BLOCK

void legcmp_init(struct legcmp *c, struct array *a, uint64_t max)
{
	memset(c, 0, sizeof(*c));
	c->a = a;
	c->max = MIN(max, (uint64_t)LEGCMP_MAX);
	c->leg = xcalloc(a->n, sizeof(*c->leg));
	for (size_t i = 0; i < a->n; i++) {
		c->leg[i].sums = xcalloc(c->max / BLK + 1, sizeof(uint32_t));
		c->leg[i].diff = xcalloc(c->max / BLK + 1, 1);
	}
}

void legcmp_free(struct legcmp *c)
{
	for (size_t i = 0; c->leg && i < c->a->n; i++) {
		free(c->leg[i].sums);
		free(c->leg[i].diff);
		free(c->leg[i].buf);
	}
	free(c->leg);
	c->leg = NULL;
}

static bool in_run(const struct legcmp *c, size_t i)
{
	return (int)i == c->src || (c->legs & (1u << i));
}

/* The comparison's IO counts as in flight on its node, so that a suspend
 * waits for it before the node's disk may be swapped, and a migration's
 * cutover before the node's device is closed. */
static void leg_submit(struct legcmp *c, size_t i, struct dev_io *io)
{
	c->a->nodes[i].inflight++;
	dev_submit(c->a->nodes[i].dev, io);
}

/* io on leg i came back: counted (as resync IO where it is one), and no
 * longer in flight on the node. */
static void leg_answered(struct legcmp *c, size_t i, const struct dev_io *io, int err)
{
	struct array *a = c->a;
	if (c->resync)
		array_bg_count(&a->nodes[i].resync, io->op == DEV_CSUM ? DEV_READ : io->op,
			       io->op == DEV_CSUM ? 0 : io->len, err);
	a->nodes[i].inflight--;
	array_node_settled(a, i);
	if (a->mig)
		migrate_node_event(a);
}

static void ask_done(struct dev_io *io, int err);

/* Ask leg i for what it has not given yet: its sums, or its data. */
static void ask(struct legcmp *c, size_t i)
{
	struct legcmp_leg *l = &c->leg[i];
	struct dev_io *io = &l->io;
	memset(io, 0, sizeof(*io));
	if (l->data) {
		if (!l->buf)
			l->buf = xmalloc(c->max);
		io->op = DEV_READ;
		io->off = c->off;
		io->len = c->len;
		io->buf = l->buf;
	} else {
		io->op = DEV_CSUM;
		io->off = c->off + (uint64_t)l->got * BLK;
		io->len = c->len - (uint64_t)l->got * BLK;
		io->csum = l->sums + l->got;
		io->csum_max = c->nblk - l->got;
	}
	io->done = ask_done;
	io->priv = c;
	leg_submit(c, i, io);
}

static void compare(struct legcmp *c);

static void ask_done(struct dev_io *io, int err)
{
	struct legcmp *c = io->priv;
	struct legcmp_leg *l = container_of(io, struct legcmp_leg, io);
	size_t i = (size_t)(l - c->leg);
	leg_answered(c, i, io, err);
	if (err == ENOTSUP && io->op == DEV_CSUM) {
		/* It stopped offering sums (a reconnect reached another
		 * server): read it. */
		l->data = true;
		l->got = 0;
		ask(c, i);
		return;
	}
	if (err) {
		l->err = err;
	} else if (io->op == DEV_READ) {
		l->got = c->nblk; /* summed only if compared with sums (sums_of) */
		c->data_bytes += c->len;
	} else {
		uint32_t n = MIN(io->csum_count, c->nblk - l->got);
		c->csum_bytes += MIN((uint64_t)n * BLK, c->len - (uint64_t)l->got * BLK);
		l->got += n;
		if (n == 0) {
			l->err = EIO;
		} else if (l->got < c->nblk) {
			ask(c, i);
			return;
		}
	}
	if (--c->out == 0)
		compare(c);
}

static void finish(struct legcmp *c, int err)
{
	c->done(c, err);
}

static void write_more(struct legcmp *c);

/* A free one of the run IOs (wio), set up for blocks [b, b+*nb) of leg i
 * (*nb cut to the leg's largest IO), with buf the piece's bytes; NULL if
 * all are out. The caller submits it; wout counts it. */
static struct dev_io *run_io(struct legcmp *c, size_t i, enum dev_op op, uint32_t b, uint32_t *nb,
			     const uint8_t *buf, void (*done)(struct dev_io *, int))
{
	struct dev_io *io = NULL;
	for (unsigned k = 0; k < LEGCMP_WRITES && !io; k++)
		if (!c->wio[k].priv)
			io = &c->wio[k];
	if (!io)
		return NULL;
	struct dev *d = c->a->nodes[i].dev;
	uint64_t mx = d->max_io ? d->max_io : c->max;
	if ((uint64_t)*nb * BLK > mx)
		*nb = (uint32_t)MAX(1, mx / BLK);
	uint64_t o = (uint64_t)b * BLK;
	memset(io, 0, sizeof(*io));
	io->op = op;
	io->off = c->off + o;
	io->len = MIN((uint64_t)*nb * BLK, c->len - o);
	io->buf = (void *)(buf + o);
	io->done = done;
	io->priv = c;
	c->wio_leg[io - c->wio] = i; /* (dev_scratch is the device's) */
	c->wout++;
	return io;
}

static void write_done(struct dev_io *io, int err)
{
	struct legcmp *c = io->priv;
	size_t i = c->wio_leg[io - c->wio];
	io->priv = NULL; /* free again */
	leg_answered(c, i, io, err);
	if (err)
		c->leg[i].err = err;
	else
		c->fixed_bytes += io->len;
	c->wout--;
	write_more(c);
}

/* Send the next runs of differing blocks, from the source's data, until
 * LEGCMP_WRITES are out; finish when all are written. */
static void write_more(struct legcmp *c)
{
	struct array *a = c->a;
	const uint8_t *src = c->leg[c->src].buf;
	if (c->writing)
		return; /* a write answered inside dev_submit: the loop below goes on */
	c->writing = true;
	while (c->wout < LEGCMP_WRITES && c->wleg < a->n) {
		size_t i = c->wleg;
		uint32_t b = c->wblk, nb;
		if (!(c->legs & (1u << i)) || c->leg[i].err || !legcmp_next_run(c, i, &b, &nb)) {
			c->wleg++;
			c->wblk = 0;
			continue;
		}
		struct dev_io *w = run_io(c, i, DEV_WRITE, b, &nb, src, write_done);
		if (!w)
			break;
		c->wblk = b + nb;
		leg_submit(c, i, w);
	}
	c->writing = false;
	if (c->wout == 0 && c->wleg >= a->n)
		finish(c, 0);
}

static void read_more(struct legcmp *c);

/* A leg read as data is compared byte for byte with another read one; its
 * blocks are summed only to be compared with a leg that gave sums. */
static void sums_of(struct legcmp *c, struct legcmp_leg *l)
{
	if (l->data && !l->summed) {
		crc32c_blocks(l->buf, c->len, BLK, l->sums);
		l->summed = true;
	}
}

/* Every leg has answered: mark the blocks that differ, then fix them. */
static void compare(struct legcmp *c)
{
	struct array *a = c->a;
	struct legcmp_leg *s = &c->leg[c->src];
	if (s->err) {
		finish(c, s->err);
		return;
	}
	/* The source's diff: the blocks any leg needs from it. */
	memset(s->diff, 0, c->nblk);
	bool any = false;
	for (size_t i = 0; i < a->n; i++) {
		struct legcmp_leg *l = &c->leg[i];
		if (!(c->legs & (1u << i)) || l->err)
			continue;
		bool bytes = l->data && s->data;
		if (!bytes) {
			sums_of(c, l);
			sums_of(c, s);
		}
		for (uint32_t b = 0; b < c->nblk; b++) {
			uint64_t o = (uint64_t)b * BLK;
			bool d = bytes ? memcmp(l->buf + o, s->buf + o, MIN(BLK, c->len - o)) != 0
				       : l->sums[b] != s->sums[b];
			l->diff[b] = d;
			if (d) {
				l->ndiff++;
				s->diff[b] = 1;
				any = true;
			}
		}
	}
	if (!c->fix || !any) {
		finish(c, 0);
		return;
	}
	c->wleg = 0;
	c->wblk = 0;
	if (s->data) {
		write_more(c);
		return;
	}
	/* The source gave sums: read just the runs that differ (1% of the
	 * blocks scattered over a piece is 1% read, not the span). */
	if (!s->buf)
		s->buf = xmalloc(c->max);
	c->rerr = 0;
	read_more(c);
}

static void run_read_done(struct dev_io *io, int err)
{
	struct legcmp *c = io->priv;
	io->priv = NULL; /* free again */
	leg_answered(c, (size_t)c->src, io, err);
	if (err && !c->rerr)
		c->rerr = err;
	else if (!err)
		c->data_bytes += io->len;
	c->wout--;
	read_more(c);
}

/* Read the source's differing runs into its buffer, LEGCMP_WRITES at a
 * time, then write them (write_more). */
static void read_more(struct legcmp *c)
{
	struct legcmp_leg *s = &c->leg[c->src];
	if (c->writing)
		return; /* a read answered inside dev_submit: the loop below goes on */
	c->writing = true;
	while (c->wout < LEGCMP_WRITES && !c->rerr && c->wblk < c->nblk) {
		uint32_t b = c->wblk, nb;
		if (!legcmp_next_run(c, (size_t)c->src, &b, &nb)) {
			c->wblk = c->nblk;
			break;
		}
		struct dev_io *r =
		    run_io(c, (size_t)c->src, DEV_READ, b, &nb, s->buf, run_read_done);
		if (!r)
			break;
		c->wblk = b + nb;
		leg_submit(c, (size_t)c->src, r);
	}
	c->writing = false;
	if (c->wout || (c->wblk < c->nblk && !c->rerr))
		return;
	if (c->rerr) {
		s->err = c->rerr;
		finish(c, c->rerr);
		return;
	}
	c->wleg = 0;
	c->wblk = 0;
	write_more(c);
}

void legcmp_start(struct legcmp *c, uint64_t off, uint64_t len, int src, uint32_t legs, bool fix,
		  bool csum)
{
	struct array *a = c->a;
	c->off = off;
	c->len = len;
	c->nblk = (uint32_t)((len + BLK - 1) / BLK);
	c->src = src;
	c->legs = legs & ~(1u << src);
	c->fix = fix;
	c->csum = csum;
	c->csum_bytes = c->data_bytes = c->fixed_bytes = 0;
	c->wout = 0;
	c->writing = false;
	c->rerr = 0;
	for (unsigned k = 0; k < LEGCMP_WRITES; k++)
		c->wio[k].priv = NULL;
	c->out = 0;
	for (size_t i = 0; i < a->n; i++) {
		struct legcmp_leg *l = &c->leg[i];
		l->got = 0;
		l->summed = false;
		l->ndiff = 0;
		l->err = 0;
		l->data = !csum || !(a->nodes[i].dev->caps & DEV_CAP_CSUM);
		if (in_run(c, i))
			c->out++;
	}
	/* Count first: a memory leg answers inside dev_submit. */
	unsigned n = c->out;
	for (size_t i = 0; i < a->n && n; i++)
		if (in_run(c, i)) {
			n--;
			ask(c, i);
		}
}

bool legcmp_next_run(const struct legcmp *c, size_t i, uint32_t *b, uint32_t *nb)
{
	const struct legcmp_leg *l = &c->leg[i];
	uint32_t k = *b;
	while (k < c->nblk && !l->diff[k])
		k++;
	if (k >= c->nblk)
		return false;
	uint32_t e = k;
	while (e < c->nblk && l->diff[e])
		e++;
	*b = k;
	*nb = e - k;
	return true;
}
