/* test_array_core.c - the storage core (split, fan-out, answer once, flush
 * bookkeeping, piece pool, live grow and shrink) over real memory devices
 * and over a fake device that completes inline or later, fails chosen
 * ranges, and records every piece it is given. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/uio.h>

#include "array/array.h"
#include "array/nodeconf.h"
#include "common/ev.h"
#include "common/strbuf.h"
#include "common/util.h"
#include "dev/dev.h"
#include "unit.h"

#define KiB (1024ull)
#define MiB (1024ull * KiB)
#define HZ  (DEV_EXT_HOLE | DEV_EXT_ZERO)

/* ---- the fake device ---- */

enum fake_mode {
	FAKE_INLINE, /* done() before submit() returns */
	FAKE_DEFER,  /* done() from deferred work, after the current batch */
	FAKE_TIMER,  /* done() from a timer, delay_ns later (all pending at once) */
	FAKE_HOLD,   /* done() only after fake_release() */
};

struct fake_rec {
	enum dev_op op;
	uint32_t flags;
	uint64_t off, len;
};

struct fake_fail {
	uint64_t off, len;
	int err;
};

struct fake {
	struct dev dev;
	struct ev_loop *loop;
	enum fake_mode mode;
	uint64_t delay_ns;
	uint8_t *data; /* backing store, dev.size bytes */
	struct fake_fail fail[4];
	size_t nfail;
	struct fake_rec *rec;
	size_t nrec, cap;
	struct dev_io *pend_head, *pend_tail;
	size_t pending, peak_pending;
	bool released; /* FAKE_HOLD: complete what is pending at the next chance */
	struct ev_deferred defer;
	struct ev_timer timer;
	int *destroyed; /* incremented by destroy */
	int lent;	/* DEV_F_BORROW reads not yet released (fake_lends) */
};

/* Pieces in flight over every fake device, and the most there ever were. */
static size_t fake_inflight_all, fake_inflight_peak;

static int fake_error(struct fake *f, const struct dev_io *io)
{
	if (io->op != DEV_FLUSH && (io->len > f->dev.size || io->off > f->dev.size - io->len))
		return EINVAL;
	for (size_t i = 0; i < f->nfail; i++) {
		const struct fake_fail *x = &f->fail[i];
		bool hit = io->op == DEV_FLUSH
			       ? x->len == 0
			       : io->off < x->off + x->len && x->off < io->off + io->len;
		if (hit)
			return x->err;
	}
	return 0;
}

static void fake_complete(struct fake *f, struct dev_io *io)
{
	int err = fake_error(f, io);
	if (!err && (io->flags & DEV_F_BORROW)) {
		io->iov[0].iov_base = f->data + io->off;
		io->iov[0].iov_len = io->len;
		io->iov_count = 1;
		f->lent++;
	} else if (!err) {
		switch (io->op) {
		case DEV_READ: memcpy(io->buf, f->data + io->off, io->len); break;
		case DEV_WRITE: memcpy(f->data + io->off, io->buf, io->len); break;
		case DEV_TRIM:
		case DEV_WRITE_ZEROES: memset(f->data + io->off, 0, io->len); break;
		case DEV_BLOCK_STATUS:
			io->ext[0] = (struct dev_extent){.len = io->len, .flags = 0};
			io->ext_count = 1;
			break;
		default: break;
		}
	}
	io->done(io, err);
}

static void fake_drain(struct fake *f)
{
	/* Take the whole list first: done() may submit more. */
	struct dev_io *io = f->pend_head;
	f->pend_head = f->pend_tail = NULL;
	while (io) {
		struct dev_io *next = io->dev_next;
		io->dev_next = NULL;
		f->pending--;
		fake_inflight_all--;
		fake_complete(f, io);
		io = next;
	}
}

static void fake_defer_fn(struct ev_deferred *d)
{
	fake_drain(container_of(d, struct fake, defer));
}

static void fake_timer_fn(struct ev_timer *t)
{
	fake_drain(container_of(t, struct fake, timer));
}

static void fake_submit(struct dev *d, struct dev_io *io)
{
	struct fake *f = container_of(d, struct fake, dev);
	if (f->nrec == f->cap) {
		f->cap = f->cap ? 2 * f->cap : 256;
		f->rec = realloc(f->rec, f->cap * sizeof(*f->rec));
	}
	f->rec[f->nrec++] = (struct fake_rec){io->op, io->flags, io->off, io->len};
	if (f->mode == FAKE_INLINE) {
		fake_complete(f, io);
		return;
	}
	io->dev_next = NULL;
	if (f->pend_tail)
		f->pend_tail->dev_next = io;
	else
		f->pend_head = io;
	f->pend_tail = io;
	if (++f->pending > f->peak_pending)
		f->peak_pending = f->pending;
	if (++fake_inflight_all > fake_inflight_peak)
		fake_inflight_peak = fake_inflight_all;
	if (f->mode == FAKE_DEFER || (f->mode == FAKE_HOLD && f->released))
		ev_defer(f->loop, &f->defer);
	else if (f->mode == FAKE_TIMER && !f->timer.armed)
		ev_timer_start(f->loop, &f->timer, f->delay_ns);
}

static void fake_destroy(struct dev *d)
{
	struct fake *f = container_of(d, struct fake, dev);
	CHECK_EQ(f->pending, 0);
	CHECK_EQ(f->lent, 0); /* nobody may still be sending from our memory */
	ev_defer_cancel(f->loop, &f->defer);
	ev_timer_stop(f->loop, &f->timer);
	if (f->destroyed)
		(*f->destroyed)++;
	free(f->data);
	free(f->rec);
	free(f->dev.desc);
	free(f);
}

static void fake_release_borrow(struct dev *d, struct dev_io *io)
{
	struct fake *f = container_of(d, struct fake, dev);
	CHECK(f->lent > 0);
	CHECK_EQ(io->iov_count, 1);
	f->lent--;
	io->iov_count = 0;
}

static const struct dev_ops fake_ops = {
    .kind = "fake",
    .submit = fake_submit,
    .destroy = fake_destroy,
    .release = fake_release_borrow,
};

/* The fake lends its memory for DEV_F_BORROW reads, as a mem or file node. */
static void fake_lends(struct fake *f)
{
	f->dev.caps |= DEV_CAP_BORROW;
}

static struct fake *fake_new(struct ev_loop *loop, uint64_t size, enum fake_mode mode)
{
	struct fake *f = calloc(1, sizeof(*f));
	f->dev.ops = &fake_ops;
	f->dev.loop = loop;
	f->dev.size = size;
	f->dev.caps = DEV_CAP_FLUSH | DEV_CAP_FUA | DEV_CAP_TRIM | DEV_CAP_ZERO;
	f->dev.min_block = 1;
	f->dev.desc = xasprintf("F: fake %llu", (unsigned long long)size);
	f->loop = loop;
	f->mode = mode;
	f->delay_ns = 2000000; /* 2 ms */
	f->data = calloc(1, size);
	f->defer.fn = fake_defer_fn;
	f->timer.fn = fake_timer_fn;
	return f;
}

static void fake_fail_range(struct fake *f, uint64_t off, uint64_t len, int err)
{
	f->fail[f->nfail++] = (struct fake_fail){off, len, err};
}

/* FAKE_HOLD: complete everything pending (and what comes later) from the loop. */
static void fake_release(struct fake *f)
{
	f->released = true;
	ev_defer(f->loop, &f->defer);
}

static size_t fake_count(const struct fake *f, enum dev_op op)
{
	size_t n = 0;
	for (size_t i = 0; i < f->nrec; i++)
		n += f->rec[i].op == op;
	return n;
}

static void fake_clear(struct fake *f)
{
	f->nrec = 0;
}

/* ---- running the loop ---- */

struct guard {
	struct ev_timer t;
	struct ev_loop *loop;
	bool (*cond)(void *);
	void *arg;
	uint64_t deadline;
	bool timed_out;
};

static void guard_fn(struct ev_timer *t)
{
	struct guard *g = container_of(t, struct guard, t);
	if (g->cond && g->cond(g->arg)) {
		ev_loop_break(g->loop);
	} else if (ev_now_ns() >= g->deadline) {
		g->timed_out = !!g->cond;
		ev_loop_break(g->loop);
	} else {
		ev_timer_start(g->loop, t, 100000); /* look again in 0.1 ms */
	}
}

/* Run the loop until cond(arg), or for ms milliseconds when cond is NULL.
 * False (and a failed check) if cond did not come true within ms. */
static bool run_until(struct ev_loop *loop, bool (*cond)(void *), void *arg, unsigned ms)
{
	if (cond && cond(arg))
		return true;
	struct guard g = {.loop = loop, .cond = cond, .arg = arg};
	g.t.fn = guard_fn;
	g.deadline = ev_now_ns() + (uint64_t)ms * 1000000;
	ev_timer_start(loop, &g.t, 0);
	ev_run(loop);
	ev_timer_stop(loop, &g.t);
	if (g.timed_out)
		fprintf(stderr, "run_until: timed out after %u ms\n", ms);
	CHECK(!g.timed_out);
	return !g.timed_out;
}

/* Count completions of requests submitted through the array. */
struct req {
	struct dev_io io;
	int done_calls;
	int err;
	struct counter *c;
};

struct counter {
	int submitted, done, errors, extra_calls;
};

static void req_done(struct dev_io *io, int err)
{
	struct req *r = container_of(io, struct req, io);
	if (++r->done_calls > 1)
		r->c->extra_calls++;
	r->err = err;
	r->c->done++;
	if (err)
		r->c->errors++;
}

static bool counter_all_done(void *arg)
{
	struct counter *c = arg;
	return c->done >= c->submitted;
}

static void req_init(struct req *r, struct counter *c, enum dev_op op, uint32_t flags, uint64_t off,
		     uint64_t len, void *buf)
{
	memset(r, 0, sizeof(*r));
	r->io = (struct dev_io){.op = op, .flags = flags, .off = off, .len = len, .buf = buf};
	r->io.done = req_done;
	r->err = -1;
	r->c = c;
	c->submitted++;
}

static void submit(struct dev *d, struct req *r, struct counter *c, enum dev_op op, uint32_t flags,
		   uint64_t off, uint64_t len, void *buf)
{
	req_init(r, c, op, flags, off, len, buf);
	dev_submit(d, &r->io);
}

/* Submit one request and wait for it; returns its errno (-1 if it never
 * completed). Checks done() ran exactly once. */
static int do_io(struct dev *d, enum dev_op op, uint32_t flags, uint64_t off, uint64_t len,
		 void *buf)
{
	struct counter c = {0};
	struct req r;
	submit(d, &r, &c, op, flags, off, len, buf);
	run_until(d->loop, counter_all_done, &c, 5000);
	CHECK_EQ(r.done_calls, 1);
	return r.err;
}

/* Direct IO on a node's device, bypassing the array. */
static int node_io(struct dev *d, enum dev_op op, uint64_t off, uint64_t len, void *buf)
{
	return do_io(d, op, 0, off, len, buf);
}

/* ---- building arrays ---- */

static struct dev *mem(struct ev_loop *loop, uint64_t bytes)
{
	char spec[64], err[256] = "";
	snprintf(spec, sizeof(spec), "mem:%llu", (unsigned long long)bytes);
	struct dev *d = dev_mem_open(loop, spec, err, sizeof(err));
	if (!d)
		fprintf(stderr, "%s: %s\n", spec, err);
	CHECK(d != NULL);
	return d;
}

/* Nodes end to end over devs[] (sizes from the devs), as dst names them. */
static struct array_node *nodes_over(struct dev **devs, size_t n)
{
	struct array_node *nodes = calloc(n, sizeof(*nodes));
	uint64_t start = 0;
	for (size_t i = 0; i < n; i++) {
		nodes[i].dev = devs[i];
		nodes[i].start = start;
		nodes[i].size = devs[i]->size / 512;
		nodes[i].spec = xasprintf("test-node-%zu", i);
		node_conf_name(start, nodes[i].name, sizeof(nodes[i].name));
		start += nodes[i].size;
	}
	return nodes;
}

static struct array *build(struct ev_loop *loop, const struct alg_ops *alg, uint64_t chunk,
			   struct dev **devs, size_t n)
{
	char err[256] = "";
	struct array *a = array_new(loop, alg, &(struct alg_geom){.chunk = chunk},
				    nodes_over(devs, n), n, err, sizeof(err));
	if (!a)
		fprintf(stderr, "array_new: %s\n", err);
	CHECK(a != NULL);
	return a;
}

static struct fake **fakes_new(struct ev_loop *loop, size_t n, uint64_t size, enum fake_mode mode,
			       struct dev **devs)
{
	struct fake **f = calloc(n, sizeof(*f));
	for (size_t i = 0; i < n; i++) {
		f[i] = fake_new(loop, size, mode);
		devs[i] = &f[i]->dev;
	}
	return f;
}

static void fill(uint8_t *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)((i >> 9) * 7 + i * 131 + seed * 29 + 1) | 1; /* never zero */
}

/* ---- data through linear and stripe ---- */

TEST(linear_write_lands)
{
	struct ev_loop *loop = ev_loop_new();
	/* Odd sizes: 1 MiB, 1.5 MiB + 512, 700 KiB. */
	uint64_t sz[3] = {MiB, 1536 * KiB + 512, 700 * KiB};
	struct dev *devs[3];
	for (int i = 0; i < 3; i++)
		devs[i] = mem(loop, sz[i]);
	struct array *a = build(loop, &alg_linear, 0, devs, 3);
	if (!a)
		return;
	struct dev *d = array_dev(a);
	CHECK_EQ(d->size, sz[0] + sz[1] + sz[2]);
	CHECK_EQ(array_node_count(a), 3);
	CHECK_STR(array_node_at(a, 1)->name, "n-2048");
	CHECK_STR(array_node_at(a, 2)->name, "n-5121");
	CHECK(array_node_at(a, 3) == NULL);

	/* From 1000 bytes before n-0's end to 5000 bytes into the last node. */
	uint64_t off = sz[0] - 1000, len = 1000 + sz[1] + 5000;
	uint8_t *src = malloc(len), *back = malloc(len);
	fill(src, len, 1);
	CHECK_EQ(do_io(d, DEV_WRITE, 0, off, len, src), 0);
	/* Each node holds its piece at the right node offset. */
	uint8_t *b0 = malloc(sz[1]);
	CHECK_EQ(node_io(devs[0], DEV_READ, sz[0] - 1000, 1000, b0), 0);
	CHECK(memcmp(b0, src, 1000) == 0);
	CHECK_EQ(node_io(devs[1], DEV_READ, 0, sz[1], b0), 0);
	CHECK(memcmp(b0, src + 1000, sz[1]) == 0);
	CHECK_EQ(node_io(devs[2], DEV_READ, 0, 5000, b0), 0);
	CHECK(memcmp(b0, src + 1000 + sz[1], 5000) == 0);
	/* ...and nothing else: the bytes around stay zero. */
	CHECK_EQ(node_io(devs[0], DEV_READ, 0, sz[0] - 1000, b0), 0);
	for (uint64_t i = 0; i < sz[0] - 1000; i++)
		if (b0[i]) {
			CHECK(!"n-0 written before the request");
			break;
		}
	CHECK_EQ(node_io(devs[2], DEV_READ, 5000, 1, b0), 0);
	CHECK_EQ(b0[0], 0);
	/* Read back through the array, whole and in odd slices. */
	memset(back, 0xAA, len);
	CHECK_EQ(do_io(d, DEV_READ, 0, off, len, back), 0);
	CHECK(memcmp(back, src, len) == 0);
	for (uint64_t s = 0; s < len; s += 77777) {
		uint64_t l = MIN(len - s, 333333);
		memset(back, 0, l);
		CHECK_EQ(do_io(d, DEV_READ, 0, off + s, l, back), 0);
		CHECK(memcmp(back, src + s, l) == 0);
	}
	/* The last byte of the device, and one past it. */
	uint8_t x = 0x42;
	CHECK_EQ(do_io(d, DEV_WRITE, 0, d->size - 1, 1, &x), 0);
	CHECK_EQ(node_io(devs[2], DEV_READ, sz[2] - 1, 1, b0), 0);
	CHECK_EQ(b0[0], 0x42);
	CHECK_EQ(do_io(d, DEV_WRITE, 0, d->size - 1, 2, src), ENOSPC);
	CHECK_EQ(do_io(d, DEV_READ, 0, d->size, 1, back), EINVAL);
	CHECK_EQ(do_io(d, DEV_READ, 0, UINT64_MAX, 1, back), EINVAL);
	/* Zero length completes at once. */
	CHECK_EQ(do_io(d, DEV_READ, 0, 5, 0, back), 0);
	/* Per-node counters. */
	CHECK_EQ(array_node_at(a, 1)->writes, 1);
	CHECK_EQ(array_node_at(a, 1)->write_bytes, sz[1]);
	CHECK_EQ(array_node_at(a, 0)->inflight, 0);
	/* WRITE_ZEROES across the first boundary. */
	CHECK_EQ(do_io(d, DEV_WRITE_ZEROES, 0, sz[0] - 10, 20, NULL), 0);
	CHECK_EQ(do_io(d, DEV_READ, 0, off, len, back), 0);
	CHECK(memcmp(back, src, 990) == 0);
	for (int i = 990; i < 1010; i++)
		CHECK_EQ(back[i], 0);
	CHECK(memcmp(back + 1010, src + 1010, len - 1010) == 0);
	free(src);
	free(back);
	free(b0);
	array_free(a);
	ev_loop_free(loop);
}

/* Where stripe byte `off` lives. */
static void stripe_where(uint64_t off, size_t n, uint64_t chunk, size_t *node, uint64_t *noff)
{
	uint64_t k = off / chunk;
	*node = (size_t)(k % n);
	*noff = (k / n) * chunk + off % chunk;
}

static void stripe_case(size_t n, uint64_t chunk, enum fake_mode mode)
{
	struct ev_loop *loop = ev_loop_new();
	uint64_t node_bytes = 16 * chunk + 512; /* the tail sector is unused */
	struct dev *devs[6];
	struct fake **f = NULL;
	if (mode == FAKE_INLINE && n % 2) {
		for (size_t i = 0; i < n; i++)
			devs[i] = mem(loop, node_bytes);
	} else {
		f = fakes_new(loop, n, node_bytes, mode, devs);
	}
	struct array *a = build(loop, &alg_stripe, chunk, devs, n);
	if (!a)
		return;
	struct dev *d = array_dev(a);
	CHECK_EQ(d->size, n * 16 * chunk);
	/* Many chunks, unaligned both ends. */
	uint64_t off = chunk / 2 + 3, len = d->size - chunk - 7;
	uint8_t *src = malloc(len), *back = malloc(len), *one = malloc(1);
	fill(src, len, (unsigned)n);
	CHECK_EQ(do_io(d, DEV_WRITE, 0, off, len, src), 0);
	memset(back, 0, len);
	CHECK_EQ(do_io(d, DEV_READ, 0, off, len, back), 0);
	CHECK(memcmp(back, src, len) == 0);
	/* Spot-check bytes on the nodes themselves. */
	for (uint64_t s = 0; s < len; s += len / 97 + 1) {
		size_t node;
		uint64_t noff;
		stripe_where(off + s, n, chunk, &node, &noff);
		CHECK_EQ(node_io(devs[node], DEV_READ, noff, 1, one), 0);
		if (one[0] != src[s]) {
			CHECK_EQ(one[0], src[s]);
			break;
		}
	}
	if (f) {
		/* No piece crosses a chunk, and pieces tile the request. */
		uint64_t total = 0;
		for (size_t i = 0; i < n; i++)
			for (size_t j = 0; j < f[i]->nrec; j++) {
				struct fake_rec *r = &f[i]->rec[j];
				if (r->op != DEV_WRITE)
					continue;
				total += r->len;
				CHECK(r->off / chunk == (r->off + r->len - 1) / chunk);
			}
		CHECK_EQ(total, len);
		free(f);
	}
	free(src);
	free(back);
	free(one);
	array_free(a);
	ev_loop_free(loop);
}

TEST(stripe_round_trip)
{
	stripe_case(1, 4 * KiB, FAKE_INLINE);
	stripe_case(3, 4 * KiB, FAKE_INLINE);
	stripe_case(5, 64 * KiB, FAKE_INLINE);
	stripe_case(3, 256 * KiB, FAKE_INLINE);
	stripe_case(4, 4 * KiB, FAKE_DEFER);
	stripe_case(2, 64 * KiB, FAKE_TIMER);
	stripe_case(6, 8 * KiB, FAKE_INLINE);
}

/* ---- errors: answered once, with the error ---- */

static void fail_case(enum fake_mode mode, size_t failing, enum dev_op op)
{
	struct ev_loop *loop = ev_loop_new();
	struct dev *devs[2];
	struct fake **f = fakes_new(loop, 2, MiB, mode, devs);
	/* The failing node refuses its first 4K (for node 1) or last 4K (node 0). */
	fake_fail_range(f[failing], failing ? 0 : MiB - 4096, 4096, EIO);
	struct array *a = build(loop, &alg_linear, 0, devs, 2);
	if (!a)
		return;
	struct dev *d = array_dev(a);
	uint8_t *buf = malloc(64 * KiB);
	fill(buf, 64 * KiB, 5);
	struct counter c = {0};
	struct req r;
	/* 32K either side of the boundary. */
	submit(d, &r, &c, op, 0, MiB - 32 * KiB, 64 * KiB, buf);
	run_until(loop, counter_all_done, &c, 5000);
	run_until(loop, NULL, NULL, 20); /* anything late would show now */
	CHECK_EQ(r.done_calls, 1);
	CHECK_EQ(r.err, EIO);
	CHECK_EQ(c.extra_calls, 0);
	/* Both pieces were sent; the healthy one happened. */
	size_t healthy = !failing;
	CHECK_EQ(fake_count(f[0], op), 1);
	CHECK_EQ(fake_count(f[1], op), 1);
	if (op == DEV_WRITE) {
		uint8_t *node = healthy ? f[1]->data : f[0]->data + MiB - 32 * KiB;
		uint8_t *want = healthy ? buf + 32 * KiB : buf;
		CHECK(memcmp(node, want, 32 * KiB) == 0);
	}
	CHECK_EQ(array_node_at(a, failing)->errors, 1);
	CHECK_EQ(array_node_at(a, healthy)->errors, 0);
	/* A request wholly on the healthy node still works. */
	uint64_t hoff = healthy ? MiB + 100 * KiB : 0;
	CHECK_EQ(do_io(d, DEV_READ, 0, hoff, 4096, buf), 0);
	free(buf);
	free(f);
	array_free(a);
	ev_loop_free(loop);
}

TEST(error_answered_once)
{
	enum fake_mode modes[] = {FAKE_INLINE, FAKE_DEFER, FAKE_TIMER};
	for (size_t m = 0; m < 3; m++)
		for (size_t failing = 0; failing < 2; failing++) {
			fail_case(modes[m], failing, DEV_WRITE);
			fail_case(modes[m], failing, DEV_READ);
		}
}

TEST(error_first_wins)
{
	/* Three nodes, two fail with different errors: one answer, with the
	 * error of the piece that completed first. */
	struct ev_loop *loop = ev_loop_new();
	struct dev *devs[3];
	struct fake **f = fakes_new(loop, 3, MiB, FAKE_INLINE, devs);
	fake_fail_range(f[0], 0, MiB, EIO);
	fake_fail_range(f[2], 0, MiB, ENOSPC);
	struct array *a = build(loop, &alg_linear, 0, devs, 3);
	if (!a)
		return;
	uint8_t *buf = calloc(1, 3 * MiB);
	CHECK_EQ(do_io(array_dev(a), DEV_WRITE, 0, 0, 3 * MiB, buf), EIO);
	/* Make n-0 answer late: now n-4096's ENOSPC comes first. */
	f[0]->mode = FAKE_TIMER;
	CHECK_EQ(do_io(array_dev(a), DEV_WRITE, 0, 0, 3 * MiB, buf), ENOSPC);
	/* Every piece failing: still answered once. */
	fake_fail_range(f[1], 0, MiB, EIO);
	f[1]->mode = FAKE_DEFER;
	int e = do_io(array_dev(a), DEV_READ, 0, 100, 3 * MiB - 200, buf);
	CHECK(e == EIO || e == ENOSPC);
	free(buf);
	free(f);
	array_free(a);
	ev_loop_free(loop);
}

/* ---- flags passed down ---- */

TEST(fua_passed_down)
{
	struct ev_loop *loop = ev_loop_new();
	struct dev *devs[3];
	struct fake **f = fakes_new(loop, 3, MiB, FAKE_DEFER, devs);
	struct array *a = build(loop, &alg_linear, 0, devs, 3);
	if (!a)
		return;
	struct dev *d = array_dev(a);
	uint8_t *buf = calloc(1, 3 * MiB);
	CHECK_EQ(do_io(d, DEV_WRITE, DEV_F_FUA, 100, 3 * MiB - 200, buf), 0);
	for (int i = 0; i < 3; i++) {
		CHECK_EQ(f[i]->nrec, 1);
		CHECK_EQ(f[i]->rec[0].op, DEV_WRITE);
		CHECK_EQ(f[i]->rec[0].flags, DEV_F_FUA);
		fake_clear(f[i]);
	}
	/* Without FUA, none of them get it. */
	CHECK_EQ(do_io(d, DEV_WRITE, 0, 100, 3 * MiB - 200, buf), 0);
	for (int i = 0; i < 3; i++) {
		CHECK_EQ(f[i]->rec[0].flags, 0);
		fake_clear(f[i]);
	}
	/* WRITE_ZEROES keeps FUA, NO_HOLE and FAST_ZERO; TRIM keeps FUA. */
	uint32_t zf = DEV_F_FUA | DEV_F_NO_HOLE | DEV_F_FAST_ZERO;
	CHECK_EQ(do_io(d, DEV_WRITE_ZEROES, zf, MiB - 1, MiB + 2, NULL), 0);
	CHECK_EQ(do_io(d, DEV_TRIM, DEV_F_FUA, MiB - 1, MiB + 2, NULL), 0);
	for (int i = 0; i < 3; i++) {
		CHECK_EQ(f[i]->nrec, 2);
		CHECK_EQ(f[i]->rec[0].op, DEV_WRITE_ZEROES);
		CHECK_EQ(f[i]->rec[0].flags, zf);
		CHECK_EQ(f[i]->rec[1].op, DEV_TRIM);
		CHECK_EQ(f[i]->rec[1].flags, DEV_F_FUA);
	}
	/* They mapped like writes: n-2048 got all of its 1 MiB. */
	CHECK_EQ(f[1]->rec[0].off, 0);
	CHECK_EQ(f[1]->rec[0].len, MiB);
	CHECK_EQ(f[0]->rec[0].off, MiB - 1);
	CHECK_EQ(f[0]->rec[0].len, 1);
	CHECK_EQ(f[2]->rec[1].len, 1);
	free(buf);
	free(f);
	array_free(a);
	ev_loop_free(loop);
}

/* ---- flush bookkeeping ---- */

TEST(flush_reaches_written_nodes)
{
	struct ev_loop *loop = ev_loop_new();
	struct dev *devs[4];
	struct fake **f = fakes_new(loop, 4, MiB, FAKE_DEFER, devs);
	struct array *a = build(loop, &alg_linear, 0, devs, 4);
	if (!a)
		return;
	struct dev *d = array_dev(a);
	uint8_t buf[8192] = {1};
	/* Nothing written yet: a flush reaches nobody and still completes. */
	CHECK_EQ(do_io(d, DEV_FLUSH, 0, 0, 0, NULL), 0);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(f[i]->nrec, 0);
	/* Write n-0 and n-4096; read n-2048 (reads need no flush). */
	CHECK_EQ(do_io(d, DEV_WRITE, 0, 10, 100, buf), 0);
	CHECK_EQ(do_io(d, DEV_WRITE, 0, 2 * MiB + 5, 8192, buf), 0);
	CHECK_EQ(do_io(d, DEV_READ, 0, MiB + 5, 8192, buf), 0);
	for (int i = 0; i < 4; i++)
		fake_clear(f[i]);
	CHECK_EQ(do_io(d, DEV_FLUSH, 0, 0, 0, NULL), 0);
	CHECK_EQ(fake_count(f[0], DEV_FLUSH), 1);
	CHECK_EQ(fake_count(f[1], DEV_FLUSH), 0);
	CHECK_EQ(fake_count(f[2], DEV_FLUSH), 1);
	CHECK_EQ(fake_count(f[3], DEV_FLUSH), 0);
	/* A second flush with no writes in between reaches none. */
	for (int i = 0; i < 4; i++)
		fake_clear(f[i]);
	CHECK_EQ(do_io(d, DEV_FLUSH, 0, 0, 0, NULL), 0);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(f[i]->nrec, 0);
	/* TRIM and WRITE_ZEROES count as writes; a write over an edge dirties
	 * both sides. */
	CHECK_EQ(do_io(d, DEV_TRIM, 0, MiB - 512, 1024, NULL), 0);
	CHECK_EQ(do_io(d, DEV_WRITE_ZEROES, 0, 3 * MiB, 512, NULL), 0);
	for (int i = 0; i < 4; i++)
		fake_clear(f[i]);
	CHECK_EQ(do_io(d, DEV_FLUSH, 0, 0, 0, NULL), 0);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(fake_count(f[i], DEV_FLUSH), i == 2 ? 0 : 1);
	/* A failed write leaves nothing a flush must make durable: it does
	 * not make its node a flush target (a dead node would otherwise fail
	 * every later flush of the storage). */
	fake_fail_range(f[3], 0, 4096, EIO);
	CHECK_EQ(do_io(d, DEV_WRITE, 0, 3 * MiB, 100, buf), EIO);
	for (int i = 0; i < 4; i++)
		fake_clear(f[i]);
	f[3]->nfail = 0;
	CHECK_EQ(do_io(d, DEV_FLUSH, 0, 0, 0, NULL), 0);
	CHECK_EQ(fake_count(f[3], DEV_FLUSH), 0);
	CHECK_EQ(f[0]->nrec + f[1]->nrec + f[2]->nrec, 0);
	/* After a write that succeeds, it is a target again. */
	CHECK_EQ(do_io(d, DEV_WRITE, 0, 3 * MiB, 100, buf), 0);
	for (int i = 0; i < 4; i++)
		fake_clear(f[i]);
	CHECK_EQ(do_io(d, DEV_FLUSH, 0, 0, 0, NULL), 0);
	CHECK_EQ(fake_count(f[3], DEV_FLUSH), 1);
	/* A failed flush is answered with its error and leaves the node
	 * dirty: the next flush reaches it again. */
	CHECK_EQ(do_io(d, DEV_WRITE, 0, 0, 100, buf), 0);
	fake_fail_range(f[0], 0, 0, EIO); /* len 0: fail flushes */
	for (int i = 0; i < 4; i++)
		fake_clear(f[i]);
	CHECK_EQ(do_io(d, DEV_FLUSH, 0, 0, 0, NULL), EIO);
	CHECK_EQ(fake_count(f[0], DEV_FLUSH), 1);
	f[0]->nfail = 0;
	CHECK_EQ(do_io(d, DEV_FLUSH, 0, 0, 0, NULL), 0);
	CHECK_EQ(fake_count(f[0], DEV_FLUSH), 2);
	CHECK_EQ(do_io(d, DEV_FLUSH, 0, 0, 0, NULL), 0);
	CHECK_EQ(fake_count(f[0], DEV_FLUSH), 2);
	CHECK_EQ(array_node_at(a, 0)->flushes, 4); /* counted even when failed */
	free(f);
	array_free(a);
	ev_loop_free(loop);
}

TEST(flush_write_in_flight)
{
	struct ev_loop *loop = ev_loop_new();
	struct dev *devs[2];
	struct fake **f = fakes_new(loop, 2, MiB, FAKE_DEFER, devs);
	f[1]->mode = FAKE_HOLD;
	struct array *a = build(loop, &alg_linear, 0, devs, 2);
	if (!a)
		return;
	struct dev *d = array_dev(a);
	uint8_t buf[4096] = {7};

	/* A write to n-2048 is still in flight when a flush arrives: the flush
	 * need not wait for it (it was not complete when the flush came). */
	struct counter cw = {0}, cf = {0};
	struct req w, fl;
	submit(d, &w, &cw, DEV_WRITE, 0, MiB + 4096, 4096, buf);
	run_until(loop, NULL, NULL, 5);
	CHECK_EQ(cw.done, 0);
	submit(d, &fl, &cf, DEV_FLUSH, 0, 0, 0, NULL);
	run_until(loop, counter_all_done, &cf, 5000);
	CHECK_EQ(fl.err, 0);
	CHECK_EQ(fake_count(f[1], DEV_FLUSH), 0);
	/* The write completes afterwards: the next flush reaches n-2048. */
	fake_release(f[1]);
	run_until(loop, counter_all_done, &cw, 5000);
	CHECK_EQ(w.err, 0);
	CHECK_EQ(do_io(d, DEV_FLUSH, 0, 0, 0, NULL), 0);
	CHECK_EQ(fake_count(f[1], DEV_FLUSH), 1);
	CHECK_EQ(fake_count(f[0], DEV_FLUSH), 0);
	CHECK_EQ(do_io(d, DEV_FLUSH, 0, 0, 0, NULL), 0);
	CHECK_EQ(fake_count(f[1], DEV_FLUSH), 1);

	/* Now with the flush itself held at n-2048: a write there that is
	 * submitted and completes behind it is not covered by it. */
	CHECK_EQ(do_io(d, DEV_WRITE, 0, MiB, 10, buf), 0);
	f[1]->released = false;
	fake_clear(f[1]);
	memset(&cf, 0, sizeof(cf));
	memset(&cw, 0, sizeof(cw));
	submit(d, &fl, &cf, DEV_FLUSH, 0, 0, 0, NULL);
	submit(d, &w, &cw, DEV_WRITE, 0, MiB + 8192, 100, buf);
	run_until(loop, NULL, NULL, 5);
	CHECK_EQ(cf.done + cw.done, 0);
	CHECK_EQ(fake_count(f[1], DEV_FLUSH), 1);
	/* A second flush while the first is held goes to n-2048 as well. */
	struct counter cf2 = {0};
	struct req fl2;
	submit(d, &fl2, &cf2, DEV_FLUSH, 0, 0, 0, NULL);
	CHECK_EQ(fake_count(f[1], DEV_FLUSH), 2);
	fake_release(f[1]);
	run_until(loop, counter_all_done, &cf, 5000);
	run_until(loop, counter_all_done, &cw, 5000);
	run_until(loop, counter_all_done, &cf2, 5000);
	CHECK_EQ(fl.err, 0);
	CHECK_EQ(fl2.err, 0);
	CHECK_EQ(w.err, 0);
	fake_clear(f[1]);
	CHECK_EQ(do_io(d, DEV_FLUSH, 0, 0, 0, NULL), 0);
	CHECK_EQ(fake_count(f[1], DEV_FLUSH), 1);
	CHECK_EQ(fake_count(f[0], DEV_FLUSH), 0);
	free(f);
	array_free(a);
	ev_loop_free(loop);
}

TEST(flush_snapshot_exact)
{
	/* Order matters: flush F sent to n-0 (snapshot), then a write W on n-0
	 * completes, then F completes. F must not count W as flushed. */
	struct ev_loop *loop = ev_loop_new();
	struct dev *devs[1];
	struct fake **f = fakes_new(loop, 1, MiB, FAKE_HOLD, devs);
	struct array *a = build(loop, &alg_linear, 0, devs, 1);
	if (!a)
		return;
	struct dev *d = array_dev(a);
	uint8_t buf[16] = {1};
	f[0]->mode = FAKE_INLINE;
	CHECK_EQ(do_io(d, DEV_WRITE, 0, 0, 16, buf), 0);
	f[0]->mode = FAKE_HOLD;
	struct counter cf = {0}, cw = {0};
	struct req fl, w;
	submit(d, &fl, &cf, DEV_FLUSH, 0, 0, 0, NULL);
	submit(d, &w, &cw, DEV_WRITE, 0, 100, 16, buf);
	CHECK_EQ(f[0]->pending, 2);
	/* Complete W first, then F: take them off the queue by hand. */
	struct dev_io *fio = f[0]->pend_head, *wio = fio->dev_next;
	CHECK_EQ(fio->op, DEV_FLUSH);
	CHECK_EQ(wio->op, DEV_WRITE);
	f[0]->pend_head = f[0]->pend_tail = NULL;
	f[0]->pending = 0;
	fio->dev_next = wio->dev_next = NULL;
	fake_complete(f[0], wio);
	fake_complete(f[0], fio);
	CHECK_EQ(cw.done, 1);
	CHECK_EQ(cf.done, 1);
	f[0]->mode = FAKE_INLINE;
	fake_clear(f[0]);
	CHECK_EQ(do_io(d, DEV_FLUSH, 0, 0, 0, NULL), 0);
	CHECK_EQ(fake_count(f[0], DEV_FLUSH), 1);
	CHECK_EQ(do_io(d, DEV_FLUSH, 0, 0, 0, NULL), 0);
	CHECK_EQ(fake_count(f[0], DEV_FLUSH), 1);
	free(f);
	array_free(a);
	ev_loop_free(loop);
}

/* ---- the piece pool ---- */

static void pool_case(enum fake_mode mode)
{
	/* 64 requests of 100 chunks each over a 4K stripe: 6400 pieces, more
	 * than the pool's 4096. All complete, none fails. */
	enum { NREQ = 64, CHUNKS = 100 };
	const uint64_t chunk = 4096, rlen = CHUNKS * chunk;
	struct ev_loop *loop = ev_loop_new();
	struct dev *devs[4];
	struct fake **f = fakes_new(loop, 4, NREQ * rlen / 4 + chunk, mode, devs);
	struct array *a = build(loop, &alg_stripe, chunk, devs, 4);
	if (!a)
		return;
	struct dev *d = array_dev(a);
	CHECK(d->size >= NREQ * rlen);
	uint8_t *src = malloc(NREQ * rlen), *back = calloc(1, NREQ * rlen);
	fill(src, NREQ * rlen, 9);
	struct req *r = calloc(NREQ + 1, sizeof(*r));
	struct counter c = {0};
	fake_inflight_all = fake_inflight_peak = 0;
	for (int i = 0; i < NREQ; i++)
		submit(d, &r[i], &c, DEV_WRITE, 0, i * rlen, rlen, src + i * rlen);
	/* A flush queued behind them completes too, and reaches every node. */
	submit(d, &r[NREQ], &c, DEV_FLUSH, 0, 0, 0, NULL);
	if (mode == FAKE_HOLD) {
		/* Nothing completes: the pool is spent exactly. */
		size_t inflight = 0;
		for (int i = 0; i < 4; i++)
			inflight += f[i]->pending;
		CHECK_EQ(inflight, 4096);
		for (int i = 0; i < 4; i++)
			fake_release(f[i]);
	}
	run_until(loop, counter_all_done, &c, 20000);
	CHECK_EQ(c.done, NREQ + 1);
	CHECK_EQ(c.errors, 0);
	CHECK_EQ(c.extra_calls, 0);
	for (int i = 0; i <= NREQ; i++) {
		CHECK_EQ(r[i].done_calls, 1);
		CHECK_EQ(r[i].err, 0);
	}
	size_t pieces = 0;
	for (int i = 0; i < 4; i++)
		pieces += fake_count(f[i], DEV_WRITE);
	CHECK_EQ(pieces, NREQ * CHUNKS);
	/* The pool ran dry (so requests waited) and was never exceeded. */
	CHECK_EQ(fake_inflight_peak, 4096);
	for (int i = 0; i < 4; i++)
		CHECK(f[i]->peak_pending >= 1000);
	CHECK(memcmp(f[0]->data, src, chunk) == 0);
	/* Read it all back the same way. */
	memset(&c, 0, sizeof(c));
	for (int i = 0; i < NREQ; i++)
		submit(d, &r[i], &c, DEV_READ, 0, i * rlen, rlen, back + i * rlen);
	run_until(loop, counter_all_done, &c, 20000);
	CHECK_EQ(c.errors, 0);
	CHECK_EQ(c.extra_calls, 0);
	CHECK(memcmp(back, src, NREQ * rlen) == 0);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(array_node_at(a, i)->inflight, 0);
	free(src);
	free(back);
	free(r);
	free(f);
	array_free(a);
	ev_loop_free(loop);
}

TEST(pool_exhaustion)
{
	pool_case(FAKE_DEFER);
	pool_case(FAKE_TIMER);
	pool_case(FAKE_HOLD);
}

TEST(pool_one_huge_request)
{
	/* One request of 6400 pieces, more than the whole pool: it goes out in
	 * waves as pieces come back, and is answered once. Then a TRIM of the
	 * whole device the same way. */
	struct ev_loop *loop = ev_loop_new();
	struct dev *devs[4];
	struct fake **f = fakes_new(loop, 4, 6400 * KiB, FAKE_DEFER, devs);
	struct array *a = build(loop, &alg_stripe, 4096, devs, 4);
	if (!a)
		return;
	struct dev *d = array_dev(a);
	uint64_t len = 6400 * 4096;
	CHECK_EQ(d->size, len);
	uint8_t *src = malloc(len), *back = calloc(1, len);
	fill(src, len, 12);
	fake_inflight_all = fake_inflight_peak = 0;
	CHECK_EQ(do_io(d, DEV_WRITE, DEV_F_FUA, 0, len, src), 0);
	CHECK_EQ(fake_inflight_peak, 4096);
	CHECK_EQ(do_io(d, DEV_READ, 0, 0, len, back), 0);
	CHECK(memcmp(back, src, len) == 0);
	CHECK_EQ(do_io(d, DEV_TRIM, 0, 0, len, NULL), 0);
	for (int i = 0; i < 4; i++) {
		CHECK_EQ(fake_count(f[i], DEV_TRIM), 1600);
		CHECK_EQ(f[i]->data[12345], 0);
	}
	free(src);
	free(back);
	free(f);
	array_free(a);
	ev_loop_free(loop);
}

TEST(pool_exhaustion_with_errors)
{
	/* Requests that wait for pieces and have pieces fail meanwhile are
	 * still answered once each, with the error only where it belongs. */
	enum { NREQ = 64, CHUNKS = 100 };
	const uint64_t chunk = 4096, rlen = CHUNKS * chunk;
	struct ev_loop *loop = ev_loop_new();
	struct dev *devs[4];
	struct fake **f = fakes_new(loop, 4, NREQ * rlen / 4, FAKE_DEFER, devs);
	/* Node 2's chunk 1000 is device chunk 4002: request 40 (chunks 4000-4099). */
	fake_fail_range(f[2], 1000 * chunk + 10, 1, EIO);
	struct array *a = build(loop, &alg_stripe, chunk, devs, 4);
	if (!a)
		return;
	struct dev *d = array_dev(a);
	uint8_t *src = calloc(1, NREQ * rlen);
	struct req *r = calloc(NREQ, sizeof(*r));
	struct counter c = {0};
	for (int i = 0; i < NREQ; i++)
		submit(d, &r[i], &c, DEV_WRITE, 0, i * rlen, rlen, src + i * rlen);
	run_until(loop, counter_all_done, &c, 20000);
	CHECK_EQ(c.extra_calls, 0);
	CHECK_EQ(c.errors, 1);
	for (int i = 0; i < NREQ; i++) {
		CHECK_EQ(r[i].done_calls, 1);
		CHECK_EQ(r[i].err, i == 40 ? EIO : 0);
	}
	free(src);
	free(r);
	free(f);
	array_free(a);
	ev_loop_free(loop);
}

TEST(tree_of_storages)
{
	/* A storage is a device, so it can be a node: linear over two
	 * stripes over memory devices. */
	struct ev_loop *loop = ev_loop_new();
	struct dev *leaves[4];
	for (int i = 0; i < 4; i++)
		leaves[i] = mem(loop, MiB);
	struct array *s0 = build(loop, &alg_stripe, 64 * KiB, leaves, 2);
	struct array *s1 = build(loop, &alg_stripe, 4 * KiB, leaves + 2, 2);
	if (!s0 || !s1)
		return;
	struct dev *inner[2] = {array_dev(s0), array_dev(s1)};
	struct array *top = build(loop, &alg_linear, 0, inner, 2);
	if (!top)
		return;
	struct dev *d = array_dev(top);
	CHECK_EQ(d->size, 4 * MiB);
	uint8_t *src = malloc(3 * MiB), *back = calloc(1, 3 * MiB);
	fill(src, 3 * MiB, 21);
	CHECK_EQ(do_io(d, DEV_WRITE, DEV_F_FUA, MiB / 2 + 1, 3 * MiB, src), 0);
	CHECK_EQ(do_io(d, DEV_READ, 0, MiB / 2 + 1, 3 * MiB, back), 0);
	CHECK(memcmp(back, src, 3 * MiB) == 0);
	CHECK_EQ(do_io(d, DEV_FLUSH, 0, 0, 0, NULL), 0);
	/* Byte 2 MiB of the top is byte 0 of s1, which is leaf 2's byte 0. */
	uint8_t b;
	CHECK_EQ(node_io(leaves[2], DEV_READ, 0, 1, &b), 0);
	CHECK_EQ(b, src[2 * MiB - (MiB / 2 + 1)]);
	/* Byte 2 MiB + 4 KiB is s1's chunk 1: leaf 3's byte 0. */
	CHECK_EQ(node_io(leaves[3], DEV_READ, 0, 1, &b), 0);
	CHECK_EQ(b, src[2 * MiB + 4 * KiB - (MiB / 2 + 1)]);
	free(src);
	free(back);
	array_free(top); /* closes s0 and s1, which close the leaves */
	ev_loop_free(loop);
}

/* ---- block status ---- */

TEST(block_status_first_node)
{
	struct ev_loop *loop = ev_loop_new();
	struct dev *devs[2] = {mem(loop, 4 * MiB), mem(loop, 4 * MiB)};
	struct array *a = build(loop, &alg_linear, 0, devs, 2);
	if (!a)
		return;
	struct dev *d = array_dev(a);
	uint8_t *buf = malloc(MiB);
	fill(buf, MiB, 3);
	/* Data in n-0's second MiB and n-8192's first. */
	CHECK_EQ(do_io(d, DEV_WRITE, 0, MiB, MiB, buf), 0);
	CHECK_EQ(do_io(d, DEV_WRITE, 0, 4 * MiB, MiB, buf), 0);
	struct dev_extent ext[8];
	struct counter c = {0};
	struct req r = {0};
	r.io = (struct dev_io){.op = DEV_BLOCK_STATUS,
			       .off = 0,
			       .len = 8 * MiB,
			       .ext = ext,
			       .ext_max = 8,
			       .done = req_done};
	r.c = &c;
	c.submitted = 1;
	dev_submit(d, &r.io);
	run_until(loop, counter_all_done, &c, 5000);
	CHECK_EQ(r.err, 0);
	CHECK_EQ(r.done_calls, 1);
	CHECK(r.io.ext_count >= 1);
	/* The answer covers n-0 only: hole, data, hole. */
	CHECK_EQ(r.io.ext_count, 3);
	CHECK_EQ(ext[0].len, MiB);
	CHECK_EQ(ext[0].flags, HZ);
	CHECK_EQ(ext[1].len, MiB);
	CHECK_EQ(ext[1].flags, 0);
	CHECK_EQ(ext[2].len, 2 * MiB);
	CHECK_EQ(ext[2].flags, HZ);
	/* From inside n-8192: node-relative answers map straight back. */
	memset(&c, 0, sizeof(c));
	r.io = (struct dev_io){.op = DEV_BLOCK_STATUS,
			       .off = 4 * MiB + 512 * KiB,
			       .len = 2 * MiB,
			       .ext = ext,
			       .ext_max = 8,
			       .done = req_done};
	c.submitted = 1;
	r.done_calls = 0;
	dev_submit(d, &r.io);
	run_until(loop, counter_all_done, &c, 5000);
	CHECK_EQ(r.err, 0);
	CHECK_EQ(r.done_calls, 1);
	CHECK_EQ(r.io.ext_count, 2);
	CHECK_EQ(ext[0].len, 512 * KiB);
	CHECK_EQ(ext[0].flags, 0);
	CHECK_EQ(ext[1].len, 3 * MiB / 2);
	CHECK_EQ(ext[1].flags, HZ);
	free(buf);
	array_free(a);
	ev_loop_free(loop);
}

TEST(block_status_fake)
{
	/* Over a stripe: one chunk's worth, from the node that holds it. */
	struct ev_loop *loop = ev_loop_new();
	struct dev *devs[3];
	struct fake **f = fakes_new(loop, 3, MiB, FAKE_DEFER, devs);
	struct array *a = build(loop, &alg_stripe, 64 * KiB, devs, 3);
	if (!a)
		return;
	struct dev_extent ext[4];
	struct counter c = {.submitted = 1};
	struct req r = {.c = &c};
	r.io = (struct dev_io){.op = DEV_BLOCK_STATUS,
			       .off = 64 * KiB + 100,
			       .len = MiB,
			       .ext = ext,
			       .ext_max = 4,
			       .done = req_done};
	dev_submit(array_dev(a), &r.io);
	run_until(loop, counter_all_done, &c, 5000);
	CHECK_EQ(r.err, 0);
	CHECK_EQ(r.done_calls, 1);
	CHECK(r.io.ext_count >= 1);
	CHECK_EQ(ext[0].len, 64 * KiB - 100);
	CHECK_EQ(f[0]->nrec + f[2]->nrec, 0);
	CHECK_EQ(f[1]->nrec, 1);
	CHECK_EQ(f[1]->rec[0].op, DEV_BLOCK_STATUS);
	CHECK_EQ(f[1]->rec[0].off, 100);
	CHECK_EQ(f[1]->rec[0].len, 64 * KiB - 100);
	free(f);
	array_free(a);
	ev_loop_free(loop);
}

/* ---- live grow ---- */

static struct array_node node_for(struct dev *dev, uint64_t start)
{
	struct array_node nd = {0};
	nd.dev = dev;
	nd.start = start;
	nd.size = dev->size / 512;
	nd.spec = xasprintf("added-%llu", (unsigned long long)start);
	node_conf_name(start, nd.name, sizeof(nd.name));
	return nd;
}

TEST(add_node_grows_linear)
{
	struct ev_loop *loop = ev_loop_new();
	struct dev *devs[2] = {mem(loop, MiB), mem(loop, MiB)};
	struct array *a = build(loop, &alg_linear, 0, devs, 2);
	if (!a)
		return;
	struct dev *d = array_dev(a);
	char err[256];
	uint8_t *buf = malloc(MiB), *back = malloc(MiB);
	fill(buf, MiB, 8);
	CHECK_EQ(do_io(d, DEV_WRITE, 0, MiB, MiB, buf), 0);

	/* A gap (start 4097 instead of 4096) is refused and changes nothing. */
	struct dev *extra = mem(loop, 2 * MiB);
	struct array_node nd = node_for(extra, 4097);
	err[0] = '\0';
	CHECK_EQ(array_add_node(a, &nd, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "gap") != NULL);
	CHECK_EQ(array_node_count(a), 2);
	CHECK_EQ(d->size, 2 * MiB);
	/* An overlap too. */
	free(nd.spec);
	nd = node_for(extra, 4000);
	CHECK_EQ(array_add_node(a, &nd, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "overlap") != NULL);
	CHECK_EQ(d->size, 2 * MiB);
	/* IO beyond the old end is refused before the grow... */
	CHECK_EQ(do_io(d, DEV_WRITE, 0, 2 * MiB, 4096, buf), ENOSPC);
	/* ...and works after. */
	free(nd.spec);
	nd = node_for(extra, 4096);
	CHECK_EQ(array_add_node(a, &nd, err, sizeof(err)), 0);
	CHECK_EQ(array_node_count(a), 3);
	CHECK_EQ(d->size, 4 * MiB);
	CHECK_STR(array_node_at(a, 2)->name, "n-4096");
	CHECK_EQ(do_io(d, DEV_WRITE, 0, 2 * MiB - 100, MiB, buf), 0);
	CHECK_EQ(node_io(extra, DEV_READ, 0, MiB - 100, back), 0);
	CHECK(memcmp(back, buf + 100, MiB - 100) == 0);
	/* Old data still there. */
	CHECK_EQ(do_io(d, DEV_READ, 0, MiB, MiB - 100, back), 0);
	CHECK(memcmp(back, buf, MiB - 100) == 0);
	/* The nodes line shows the new node. */
	struct strbuf sb;
	sb_init(&sb);
	array_nodes_line(a, &sb);
	CHECK_STR(sb.s, "sectors (start [size]): 0 [2048] | 2048 [2048] | 4096 [4096]");
	sb_free(&sb);
	free(buf);
	free(back);
	array_free(a);
	ev_loop_free(loop);
}

TEST(add_node_while_io_in_flight)
{
	/* Pieces in flight refer to nodes by index: growing (which moves the
	 * node table) under them is safe. */
	struct ev_loop *loop = ev_loop_new();
	struct dev *devs[2];
	struct fake **f = fakes_new(loop, 2, MiB, FAKE_HOLD, devs);
	struct array *a = build(loop, &alg_linear, 0, devs, 2);
	if (!a)
		return;
	struct dev *d = array_dev(a);
	uint8_t *buf = malloc(2 * MiB);
	fill(buf, 2 * MiB, 4);
	struct counter c = {0};
	struct req r;
	submit(d, &r, &c, DEV_WRITE, 0, 0, 2 * MiB, buf);
	char err[256];
	struct fake *g = fake_new(loop, MiB, FAKE_INLINE);
	struct array_node nd = node_for(&g->dev, 4096);
	CHECK_EQ(array_add_node(a, &nd, err, sizeof(err)), 0);
	fake_release(f[0]);
	fake_release(f[1]);
	run_until(loop, counter_all_done, &c, 5000);
	CHECK_EQ(r.err, 0);
	CHECK_EQ(array_node_at(a, 0)->writes, 1);
	CHECK_EQ(array_node_at(a, 1)->writes, 1);
	CHECK_EQ(array_node_at(a, 0)->inflight, 0);
	CHECK(memcmp(f[1]->data, buf + MiB, MiB) == 0);
	free(buf);
	free(f);
	array_free(a);
	ev_loop_free(loop);
}

TEST(add_node_refused_stripe)
{
	struct ev_loop *loop = ev_loop_new();
	struct dev *devs[2] = {mem(loop, MiB), mem(loop, MiB)};
	struct array *a = build(loop, &alg_stripe, 64 * KiB, devs, 2);
	if (!a)
		return;
	struct dev *extra = mem(loop, MiB);
	struct array_node nd = node_for(extra, 4096);
	char err[256] = "";
	CHECK(array_add_node(a, &nd, err, sizeof(err)) < 0);
	CHECK(strstr(err, "alg_stripe") != NULL);
	CHECK(strstr(err, "cannot grow") != NULL);
	CHECK_EQ(array_node_count(a), 2);
	CHECK_EQ(array_dev(a)->size, 2 * MiB);
	/* Refused: the node is still ours. */
	dev_destroy(extra);
	free(nd.spec);
	/* Nor can a node leave it. */
	CHECK(array_remove_last(a, "n-2048", NULL, NULL, err, sizeof(err)) < 0);
	CHECK(strstr(err, "alg_stripe") != NULL);
	CHECK_EQ(array_node_count(a), 2);
	array_free(a);
	ev_loop_free(loop);
}

/* ---- live shrink ---- */

static void count_call(void *arg)
{
	(*(int *)arg)++;
}

static bool int_positive(void *arg)
{
	return *(int *)arg > 0;
}

TEST(remove_last)
{
	struct ev_loop *loop = ev_loop_new();
	struct dev *devs[3];
	struct fake **f = fakes_new(loop, 3, MiB, FAKE_DEFER, devs);
	int destroyed = 0;
	f[2]->destroyed = &destroyed;
	f[2]->mode = FAKE_HOLD;
	struct array *a = build(loop, &alg_linear, 0, devs, 3);
	if (!a)
		return;
	struct dev *d = array_dev(a);
	char err[256];

	/* A middle node: refused, with why and which node could go. */
	err[0] = '\0';
	CHECK_EQ(array_remove_last(a, "n-2048", NULL, NULL, err, sizeof(err)), -EBUSY);
	CHECK(strstr(err, "n-2048") != NULL);
	CHECK(strstr(err, "last node") != NULL);
	CHECK(strstr(err, "n-4096") != NULL);
	CHECK(strstr(err, "hole") != NULL);
	CHECK(array_remove_last(a, "n-0", NULL, NULL, err, sizeof(err)) < 0);
	CHECK(array_remove_last(a, "nope", NULL, NULL, err, sizeof(err)) < 0);
	CHECK_EQ(array_node_count(a), 3);
	CHECK_EQ(d->size, 3 * MiB);

	/* A write to the last node is in flight (held) when it goes. */
	uint8_t *buf = malloc(8192);
	fill(buf, 8192, 2);
	struct counter c = {0};
	struct req r;
	submit(d, &r, &c, DEV_WRITE, 0, 2 * MiB - 4096, 8192, buf);
	run_until(loop, NULL, NULL, 5);
	CHECK_EQ(c.done, 0);
	int gone = 0;
	CHECK_EQ(array_remove_last(a, "n-4096", count_call, &gone, err, sizeof(err)), 0);
	/* The device shrinks at once. */
	CHECK_EQ(array_node_count(a), 2);
	CHECK_EQ(d->size, 2 * MiB);
	CHECK(array_node_at(a, 2) == NULL);
	CHECK_EQ(do_io(d, DEV_WRITE, 0, 2 * MiB, 512, buf), ENOSPC);
	CHECK_EQ(do_io(d, DEV_READ, 0, 2 * MiB - 1, 2, buf), EINVAL);
	CHECK_EQ(do_io(d, DEV_READ, 0, 2 * MiB - 4096, 4096, buf), 0);
	/* Nothing new may start while it drains. */
	CHECK_EQ(array_remove_last(a, "n-2048", NULL, NULL, err, sizeof(err)), -EBUSY);
	CHECK(strstr(err, "still being removed") != NULL);
	struct fake *g = fake_new(loop, MiB, FAKE_INLINE);
	struct array_node nd = node_for(&g->dev, 4096);
	CHECK_EQ(array_add_node(a, &nd, err, sizeof(err)), -EBUSY);
	CHECK(strstr(err, "n-4096") != NULL);
	/* Still draining: done has not run, the node is not closed. */
	run_until(loop, NULL, NULL, 10);
	CHECK_EQ(gone, 0);
	CHECK_EQ(destroyed, 0);
	CHECK_EQ(c.done, 0);
	/* Its IO finishes: the request completes, then done runs once. */
	fake_release(f[2]);
	run_until(loop, int_positive, &gone, 5000);
	CHECK_EQ(c.done, 1);
	CHECK_EQ(r.err, 0);
	CHECK_EQ(gone, 1);
	CHECK_EQ(destroyed, 1);
	run_until(loop, NULL, NULL, 10);
	CHECK_EQ(gone, 1);

	/* Now the node can come back (the same slot, a new device). */
	CHECK_EQ(array_add_node(a, &nd, err, sizeof(err)), 0);
	CHECK_EQ(d->size, 3 * MiB);
	CHECK_EQ(do_io(d, DEV_WRITE, 0, 3 * MiB - 512, 512, buf), 0);
	/* Removing with nothing in flight: done runs from the loop, once. */
	gone = 0;
	CHECK_EQ(array_remove_last(a, "n-4096", count_call, &gone, err, sizeof(err)), 0);
	run_until(loop, int_positive, &gone, 5000);
	run_until(loop, NULL, NULL, 5);
	CHECK_EQ(gone, 1);
	/* Down to two, then one; the only node cannot go. */
	gone = 0;
	CHECK_EQ(array_remove_last(a, "n-2048", count_call, &gone, err, sizeof(err)), 0);
	run_until(loop, int_positive, &gone, 5000);
	CHECK_EQ(d->size, MiB);
	CHECK_EQ(array_remove_last(a, "n-0", NULL, NULL, err, sizeof(err)), -EBUSY);
	CHECK(strstr(err, "only node") != NULL);
	CHECK_EQ(do_io(d, DEV_READ, 0, 0, 4096, buf), 0);
	free(buf);
	free(f);
	array_free(a);
	ev_loop_free(loop);
}

TEST(remove_last_free_while_draining)
{
	/* array_free while a removed node still drains must close it too. */
	struct ev_loop *loop = ev_loop_new();
	struct dev *devs[2];
	struct fake **f = fakes_new(loop, 2, MiB, FAKE_DEFER, devs);
	int destroyed = 0;
	f[1]->destroyed = &destroyed;
	f[0]->destroyed = &destroyed;
	struct array *a = build(loop, &alg_linear, 0, devs, 2);
	if (!a)
		return;
	char err[256];
	int gone = 0;
	CHECK_EQ(array_remove_last(a, "n-2048", count_call, &gone, err, sizeof(err)), 0);
	array_free(a); /* before the loop ran the reap */
	CHECK_EQ(destroyed, 2);
	CHECK_EQ(gone, 0);
	free(f);
	ev_loop_free(loop);
}

TEST(remove_last_caps)
{
	/* The storage's caps follow its nodes: a read-only last node makes
	 * it read-only; once that node is gone, it is writable again. */
	struct ev_loop *loop = ev_loop_new();
	struct dev *devs[2];
	struct fake **f = fakes_new(loop, 2, MiB, FAKE_INLINE, devs);
	f[1]->dev.caps |= DEV_CAP_READONLY;
	struct array *a = build(loop, &alg_linear, 0, devs, 2);
	if (!a)
		return;
	CHECK(array_dev(a)->caps & DEV_CAP_READONLY);
	char err[256];
	int gone = 0;
	CHECK_EQ(array_remove_last(a, "n-2048", count_call, &gone, err, sizeof(err)), 0);
	run_until(loop, int_positive, &gone, 5000);
	CHECK(!(array_dev(a)->caps & DEV_CAP_READONLY));
	free(f);
	array_free(a);
	ev_loop_free(loop);
}

TEST(remove_last_with_waiting_request)
{
	/* A request that was accepted but is still waiting for pool pieces
	 * when the node it addresses is removed must not be sent to another
	 * node. n-0's device is larger than the node (narrowed, as --size
	 * does), so an out-of-range piece would even "succeed" there. */
	struct ev_loop *loop = ev_loop_new();
	struct fake *f0 = fake_new(loop, 4 * MiB, FAKE_HOLD), *f1 = fake_new(loop, MiB, FAKE_HOLD);
	struct array_node *nodes = calloc(2, sizeof(*nodes));
	nodes[0] = node_for(&f0->dev, 0);
	nodes[0].size = 2048; /* 1 MiB of its 4 */
	nodes[1] = node_for(&f1->dev, 2048);
	char err[256] = "";
	struct array *a =
	    array_new(loop, &alg_linear, &(struct alg_geom){0}, nodes, 2, err, sizeof(err));
	CHECK(a != NULL);
	if (!a)
		return;
	struct dev *d = array_dev(a);
	CHECK_EQ(d->size, 2 * MiB);
	/* Spend the pool on n-0, then a write to n-2048 waits. */
	enum { FILLERS = 4096 };
	struct req *r = calloc(FILLERS + 1, sizeof(*r));
	uint8_t *buf = calloc(1, 4096);
	struct counter c = {0}, cw = {0};
	for (int i = 0; i < FILLERS; i++)
		submit(d, &r[i], &c, DEV_WRITE, 0, (uint64_t)i * 256, 256, buf);
	CHECK_EQ(f0->pending, FILLERS);
	memset(buf, 0x5A, 4096);
	submit(d, &r[FILLERS], &cw, DEV_WRITE, 0, MiB + 4096, 4096, buf);
	CHECK_EQ(f1->pending, 0);
	/* Remove n-2048 (nothing in flight there), then let n-0 go on. */
	int gone = 0;
	CHECK_EQ(array_remove_last(a, "n-2048", count_call, &gone, err, sizeof(err)), 0);
	fake_release(f0);
	run_until(loop, counter_all_done, &c, 5000);
	run_until(loop, counter_all_done, &cw, 5000);
	CHECK_EQ(gone, 1);
	CHECK_EQ(r[FILLERS].done_calls, 1);
	/* It must fail (the range is gone), and n-0 must not have been given
	 * anything beyond its 1 MiB. */
	CHECK(r[FILLERS].err != 0);
	size_t beyond = 0;
	for (size_t i = 0; i < f0->nrec; i++)
		if (f0->rec[i].off + f0->rec[i].len > MiB)
			beyond++;
	CHECK_EQ(beyond, 0);
	free(buf);
	free(r);
	array_free(a);
	ev_loop_free(loop);
}

/* ---- odd devices ---- */

TEST(max_io_split)
{
	/* A node that takes at most 64K per READ/WRITE gets it in pieces. */
	struct ev_loop *loop = ev_loop_new();
	struct dev *devs[2];
	struct fake **f = fakes_new(loop, 2, MiB, FAKE_DEFER, devs);
	f[1]->dev.max_io = 64 * KiB;
	struct array *a = build(loop, &alg_linear, 0, devs, 2);
	if (!a)
		return;
	uint8_t *buf = malloc(MiB), *back = malloc(MiB);
	fill(buf, MiB, 6);
	CHECK_EQ(do_io(array_dev(a), DEV_WRITE, 0, MiB / 2, MiB, buf), 0);
	CHECK_EQ(fake_count(f[0], DEV_WRITE), 1);
	CHECK_EQ(fake_count(f[1], DEV_WRITE), 8);
	for (size_t i = 0; i < f[1]->nrec; i++)
		CHECK(f[1]->rec[i].len <= 64 * KiB);
	CHECK_EQ(do_io(array_dev(a), DEV_READ, 0, MiB / 2, MiB, back), 0);
	CHECK(memcmp(buf, back, MiB) == 0);
	free(buf);
	free(back);
	free(f);
	array_free(a);
	ev_loop_free(loop);
}

TEST(new_refuses_bad_layout)
{
	struct ev_loop *loop = ev_loop_new();
	struct dev *devs[2] = {mem(loop, MiB), mem(loop, 2 * MiB)};
	struct array_node *nodes = nodes_over(devs, 2);
	char err[256] = "";
	CHECK(array_new(loop, &alg_stripe, &(struct alg_geom){.chunk = 64 * KiB}, nodes, 2, err,
			sizeof(err)) == NULL);
	CHECK(strstr(err, "equal size") != NULL);
	/* Refused: nodes[] is still the caller's. Linear takes them, given in
	 * any order (array_new sorts by start). */
	struct array_node t = nodes[0];
	nodes[0] = nodes[1];
	nodes[1] = t;
	struct array *a =
	    array_new(loop, &alg_linear, &(struct alg_geom){0}, nodes, 2, err, sizeof(err));
	CHECK(a != NULL);
	if (!a)
		return;
	CHECK_STR(array_node_at(a, 0)->name, "n-0");
	CHECK_EQ(array_dev(a)->size, 3 * MiB);
	CHECK(array_alg(a) == &alg_linear);
	CHECK_STR(array_dev(a)->ops->kind, "array");
	CHECK(array_dev(a)->caps & DEV_CAP_FLUSH);
	CHECK(array_dev(a)->caps & DEV_CAP_FUA);
	CHECK(array_dev(a)->caps & DEV_CAP_FAST_ZERO); /* both mem nodes have it */
	array_free(a);
	ev_loop_free(loop);
}

/* ---- reads lent by a node ---- */

static void count_drained(void *arg, uint64_t held)
{
	(void)held;
	(*(int *)arg)++;
}

/* A borrowed read through the array: req with a buffer to fall back on. */
static void submit_borrow(struct dev *d, struct req *r, struct counter *c, struct iovec *iov,
			  uint64_t off, uint64_t len, void *buf)
{
	req_init(r, c, DEV_READ, DEV_F_BORROW, off, len, buf);
	r->io.iov = iov;
	dev_submit(d, &r->io);
}

TEST(borrow_lends_node_memory)
{
	struct ev_loop *loop = ev_loop_new();
	struct dev *devs[2];
	struct fake **f = fakes_new(loop, 2, MiB, FAKE_DEFER, devs);
	int destroyed = 0;
	f[1]->destroyed = &destroyed;
	fill(f[1]->data, MiB, 5);
	struct array *a = build(loop, &alg_linear, 0, devs, 2);
	if (!a)
		return;
	struct dev *d = array_dev(a);
	/* No node lends: neither does the storage. */
	CHECK(!(d->caps & DEV_CAP_BORROW));
	CHECK(!dev_can_borrow(d, 0, 4096));
	array_free(a);
	free(f);
	destroyed = 0;

	f = fakes_new(loop, 2, MiB, FAKE_DEFER, devs);
	f[1]->destroyed = &destroyed;
	fill(f[1]->data, MiB, 5);
	fake_lends(f[0]);
	fake_lends(f[1]);
	a = build(loop, &alg_linear, 0, devs, 2);
	if (!a)
		return;
	d = array_dev(a);
	CHECK((d->caps & (DEV_CAP_BORROW | DEV_CAP_BORROW_BUF)) ==
	      (DEV_CAP_BORROW | DEV_CAP_BORROW_BUF));
	/* Any range inside the storage, up to DEV_BORROW_MAX. */
	CHECK(dev_can_borrow(d, MiB - 4096, 4096));
	CHECK(dev_can_borrow(d, MiB, MiB));
	CHECK(dev_can_borrow(d, MiB - 4096, 8192));
	CHECK(!dev_can_borrow(d, 0, 2 * MiB));
	CHECK(!dev_can_borrow(d, 2 * MiB - 1, 2));
	CHECK(!dev_can_borrow(d, 0, 0));

	/* The reply is the node's own memory; the fallback buffer is untouched,
	 * and the read stays in flight on its node until it is released. */
	uint8_t *buf = malloc(8192);
	memset(buf, 0xAA, 8192);
	struct iovec iov[DEV_BORROW_IOV];
	struct counter c = {0};
	struct req r;
	submit_borrow(d, &r, &c, iov, MiB + 4096, 8192, buf);
	run_until(loop, counter_all_done, &c, 5000);
	CHECK_EQ(r.err, 0);
	CHECK_EQ(r.io.iov_count, 1);
	CHECK(iov[0].iov_base == f[1]->data + 4096);
	CHECK_EQ(iov[0].iov_len, 8192);
	CHECK_EQ(buf[0], 0xAA);
	CHECK_EQ(buf[8191], 0xAA);
	CHECK_EQ(f[1]->lent, 1);
	CHECK_EQ(array_node_at(a, 1)->inflight, 1);
	CHECK_EQ(array_node_at(a, 1)->reads, 1);

	/* Released: the node has its memory back. */
	dev_release(d, &r.io);
	CHECK_EQ(r.io.iov_count, 0);
	CHECK_EQ(f[1]->lent, 0);
	CHECK_EQ(array_node_at(a, 1)->inflight, 0);

	/* A suspend does not wait for a lent read that is not sent yet (a
	 * client that does not read its replies would hold it for ever): the
	 * bytes move into the request's buffer, the reply is sent from there,
	 * and the node drains at once. */
	submit_borrow(d, &r, &c, iov, MiB + 4096, 8192, buf);
	run_until(loop, counter_all_done, &c, 5000);
	CHECK_EQ(f[1]->lent, 1);
	char err[256] = "";
	int drained = 0;
	CHECK_EQ(array_suspend(a, "n-2048", count_drained, &drained, err, sizeof(err)), 0);
	CHECK_EQ(f[1]->lent, 0);
	CHECK_EQ(array_node_at(a, 1)->inflight, 0);
	CHECK_EQ(r.io.iov_count, 1);
	CHECK(iov[0].iov_base == buf);
	CHECK_EQ(iov[0].iov_len, 8192);
	CHECK(memcmp(buf, f[1]->data + 4096, 8192) == 0);
	run_until(loop, int_positive, &drained, 5000);
	dev_release(d, &r.io); /* the frontend's release, later: nothing left to do */
	CHECK_EQ(r.io.iov_count, 0);
	CHECK_EQ(f[1]->lent, 0);
	CHECK_EQ(array_resume(a, "n-2048", NULL, NULL, err, sizeof(err)), 0);

	/* Only a request that came with a buffer can be moved: one without
	 * holds the suspend until it is released. */
	submit_borrow(d, &r, &c, iov, MiB, 4096, NULL);
	run_until(loop, counter_all_done, &c, 5000);
	CHECK_EQ(r.io.iov_count, 1);
	drained = 0;
	CHECK_EQ(array_suspend(a, "n-2048", count_drained, &drained, err, sizeof(err)), 0);
	run_until(loop, NULL, NULL, 10);
	CHECK_EQ(drained, 0);
	CHECK_EQ(f[1]->lent, 1);
	dev_release(d, &r.io);
	run_until(loop, int_positive, &drained, 5000);
	CHECK_EQ(f[1]->lent, 0);
	CHECK_EQ(array_resume(a, "n-2048", NULL, NULL, err, sizeof(err)), 0);

	/* Removing the node: the same, and the node is closed at once. */
	memset(buf, 0, 8192);
	submit_borrow(d, &r, &c, iov, 2 * MiB - 512, 512, buf);
	run_until(loop, counter_all_done, &c, 5000);
	CHECK_EQ(r.io.iov_count, 1);
	CHECK(iov[0].iov_base == f[1]->data + MiB - 512);
	uint8_t want[512];
	memcpy(want, f[1]->data + MiB - 512, 512);
	int gone = 0;
	CHECK_EQ(array_remove_last(a, "n-2048", count_call, &gone, err, sizeof(err)), 0);
	run_until(loop, int_positive, &gone, 5000);
	CHECK_EQ(destroyed, 1);
	CHECK(iov[0].iov_base == buf);
	CHECK(memcmp(buf, want, 512) == 0);
	CHECK(!dev_can_borrow(d, MiB, 4096)); /* past the end now */
	dev_release(d, &r.io);
	free(buf);
	free(f);
	array_free(a);
	ev_loop_free(loop);
}

TEST(borrow_falls_back_to_buf)
{
	struct ev_loop *loop = ev_loop_new();
	struct dev *devs[2];
	struct fake **f = fakes_new(loop, 2, MiB, FAKE_DEFER, devs);
	fake_lends(f[0]);
	fill(f[0]->data, MiB, 6);
	fill(f[1]->data, MiB, 7);
	struct array *a = build(loop, &alg_linear, 0, devs, 2);
	if (!a)
		return;
	struct dev *d = array_dev(a);
	CHECK(d->caps & DEV_CAP_BORROW); /* n-0 lends, n-2048 does not */

	uint8_t *buf = malloc(2 * MiB);
	struct iovec iov[DEV_BORROW_IOV];
	struct counter c = {0};
	struct req r;
	/* Asked of a node that cannot lend: read into the buffer. */
	submit_borrow(d, &r, &c, iov, MiB + 100, 4096, buf);
	run_until(loop, counter_all_done, &c, 5000);
	CHECK_EQ(r.err, 0);
	CHECK_EQ(r.io.iov_count, 0);
	CHECK(memcmp(buf, f[1]->data + 100, 4096) == 0);
	/* Across both nodes: n-0's piece lent, n-2048's in its part of the
	 * buffer, in order. */
	submit_borrow(d, &r, &c, iov, MiB - 4096, 8192, buf);
	run_until(loop, counter_all_done, &c, 5000);
	CHECK_EQ(r.err, 0);
	CHECK_EQ(r.io.iov_count, 2);
	CHECK(iov[0].iov_base == f[0]->data + MiB - 4096);
	CHECK_EQ(iov[0].iov_len, 4096);
	CHECK(iov[1].iov_base == buf + 4096);
	CHECK_EQ(iov[1].iov_len, 4096);
	CHECK(memcmp(buf + 4096, f[1]->data, 4096) == 0);
	CHECK_EQ(f[0]->lent, 1);
	dev_release(d, &r.io);
	CHECK_EQ(f[0]->lent, 0);
	CHECK_EQ(array_node_at(a, 0)->inflight, 0);

	/* Held by a suspend, then the node is resumed on a disk that does not
	 * lend: the read is answered in the buffer. */
	char err[256] = "";
	int drained = 0;
	CHECK_EQ(array_suspend(a, "n-0", count_drained, &drained, err, sizeof(err)), 0);
	run_until(loop, int_positive, &drained, 5000);
	memset(buf, 0, 4096);
	submit_borrow(d, &r, &c, iov, 512, 4096, buf);
	run_until(loop, NULL, NULL, 10);
	CHECK_EQ(r.done_calls, 0);
	struct fake *g = fake_new(loop, MiB, FAKE_DEFER);
	fill(g->data, MiB, 8);
	CHECK_EQ(array_resume(a, "n-0", &g->dev, "other", err, sizeof(err)), 0);
	run_until(loop, counter_all_done, &c, 5000);
	CHECK_EQ(r.err, 0);
	CHECK_EQ(r.io.iov_count, 0);
	CHECK(memcmp(buf, g->data + 512, 4096) == 0);
	CHECK(!(d->caps & DEV_CAP_BORROW)); /* no node lends any more */
	free(buf);
	free(f);
	array_free(a);
	ev_loop_free(loop);
}

/* The bytes iov[0..n) point at, one after the other, into out. */
static size_t gather(const struct iovec *iov, uint32_t n, uint8_t *out)
{
	size_t len = 0;
	for (uint32_t i = 0; i < n; i++) {
		memcpy(out + len, iov[i].iov_base, iov[i].iov_len);
		len += iov[i].iov_len;
	}
	return len;
}

TEST(borrow_stripe_pieces)
{
	struct ev_loop *loop = ev_loop_new();
	struct dev *devs[4];
	struct fake **f = fakes_new(loop, 4, MiB, FAKE_DEFER, devs);
	for (int i = 0; i < 4; i++) {
		fake_lends(f[i]);
		fill(f[i]->data, MiB, 10 + (unsigned)i);
	}
	struct array *a = build(loop, &alg_stripe, 64 * KiB, devs, 4);
	if (!a)
		return;
	struct dev *d = array_dev(a);
	uint8_t *want = malloc(MiB), *buf = malloc(MiB), *got = malloc(MiB);
	struct iovec iov[DEV_BORROW_IOV];
	struct counter c = {0};
	struct req r;

	/* 1 MiB from 32 KiB: 17 pieces over the four nodes, every one lent,
	 * in order; the buffer is not written. */
	CHECK_EQ(do_io(d, DEV_READ, 0, 32 * KiB, MiB, want), 0);
	memset(buf, 0xAA, MiB);
	submit_borrow(d, &r, &c, iov, 32 * KiB, MiB, buf);
	run_until(loop, counter_all_done, &c, 5000);
	CHECK_EQ(r.err, 0);
	CHECK_EQ(r.io.iov_count, 17);
	CHECK(iov[0].iov_base == f[0]->data + 32 * KiB);
	CHECK(iov[1].iov_base == f[1]->data);
	CHECK_EQ(gather(iov, r.io.iov_count, got), MiB);
	CHECK(memcmp(got, want, MiB) == 0);
	CHECK_EQ(buf[0], 0xAA);
	CHECK_EQ(buf[MiB - 1], 0xAA);
	CHECK_EQ(f[0]->lent + f[1]->lent + f[2]->lent + f[3]->lent, 17);
	dev_release(d, &r.io);
	CHECK_EQ(f[0]->lent + f[1]->lent + f[2]->lent + f[3]->lent, 0);
	for (size_t i = 0; i < 4; i++)
		CHECK_EQ(array_node_at(a, i)->inflight, 0);

	/* A node that must drain while the reply waits: its pieces move into
	 * the buffer, the iov is laid out again with the same bytes. */
	CHECK_EQ(do_io(d, DEV_READ, 0, 0, MiB, want), 0);
	submit_borrow(d, &r, &c, iov, 0, MiB, buf);
	run_until(loop, counter_all_done, &c, 5000);
	CHECK_EQ(r.io.iov_count, 16);
	char err[256] = "";
	int drained = 0;
	CHECK_EQ(array_suspend(a, "n-2048", count_drained, &drained, err, sizeof(err)), 0);
	CHECK_EQ(f[1]->lent, 0);
	CHECK_EQ(f[0]->lent + f[2]->lent + f[3]->lent, 12);
	CHECK_EQ(gather(iov, r.io.iov_count, got), MiB);
	CHECK(memcmp(got, want, MiB) == 0);
	for (uint32_t i = 0; i < r.io.iov_count; i++)
		CHECK(!((uint8_t *)iov[i].iov_base >= f[1]->data &&
			(uint8_t *)iov[i].iov_base < f[1]->data + MiB));
	run_until(loop, int_positive, &drained, 5000);
	dev_release(d, &r.io);
	CHECK_EQ(f[0]->lent + f[2]->lent + f[3]->lent, 0);
	CHECK_EQ(array_resume(a, "n-2048", NULL, NULL, err, sizeof(err)), 0);

	/* A piece that fails: an error, nothing stays lent. */
	fake_fail_range(f[3], 0, 4096, EIO);
	submit_borrow(d, &r, &c, iov, 0, MiB, buf);
	run_until(loop, counter_all_done, &c, 5000);
	CHECK_EQ(r.err, EIO);
	CHECK_EQ(r.io.iov_count, 0);
	CHECK_EQ(f[0]->lent + f[1]->lent + f[2]->lent + f[3]->lent, 0);
	for (size_t i = 0; i < 4; i++)
		CHECK_EQ(array_node_at(a, i)->inflight, 0);
	free(f);
	array_free(a);

	/* More pieces than the iov holds (4 KiB chunks: 256 pieces): the
	 * bytes are copied into the buffer and every piece given back. */
	f = fakes_new(loop, 4, MiB, FAKE_DEFER, devs);
	for (int i = 0; i < 4; i++) {
		fake_lends(f[i]);
		fill(f[i]->data, MiB, 20 + (unsigned)i);
	}
	a = build(loop, &alg_stripe, 4 * KiB, devs, 4);
	if (!a)
		return;
	d = array_dev(a);
	CHECK_EQ(do_io(d, DEV_READ, 0, 0, MiB, want), 0);
	memset(buf, 0, MiB);
	submit_borrow(d, &r, &c, iov, 0, MiB, buf);
	run_until(loop, counter_all_done, &c, 5000);
	CHECK_EQ(r.err, 0);
	CHECK_EQ(r.io.iov_count, 0);
	CHECK(memcmp(buf, want, MiB) == 0);
	CHECK_EQ(f[0]->lent + f[1]->lent + f[2]->lent + f[3]->lent, 0);
	free(want);
	free(buf);
	free(got);
	free(f);
	array_free(a);
	ev_loop_free(loop);
}

UNIT_MAIN(T(linear_write_lands), T(stripe_round_trip), T(error_answered_once), T(error_first_wins),
	  T(fua_passed_down), T(flush_reaches_written_nodes), T(flush_write_in_flight),
	  T(flush_snapshot_exact), T(pool_exhaustion), T(pool_one_huge_request),
	  T(pool_exhaustion_with_errors), T(tree_of_storages), T(block_status_first_node),
	  T(block_status_fake), T(add_node_grows_linear), T(add_node_while_io_in_flight),
	  T(add_node_refused_stripe), T(remove_last), T(remove_last_free_while_draining),
	  T(remove_last_caps), T(remove_last_with_waiting_request), T(max_io_split),
	  T(new_refuses_bad_layout), T(borrow_lends_node_memory), T(borrow_falls_back_to_buf),
	  T(borrow_stripe_pieces))
