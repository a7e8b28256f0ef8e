/* test_dev_nbd.c - the remote node device (dev_nbd_open) against our own NBD
 * server, both on one event loop in this process: the server serves a
 * "mem:64M" disk on a Unix socket in a temporary directory.
 *
 * Between the server and its disk sits a "gate", a device of this test
 * that can hold IO (a node that hangs, requests left unanswered when the
 * server goes away) and logs the order requests reach the disk in. */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/ev.h"
#include "common/log.h"
#include "common/pipepool.h"
#include "common/strbuf.h"
#include "common/util.h"
#include "dev/dev.h"
#include "nbd/server.h"
#include "nbd/tls.h"
#include "unit.h"

#define KiB (1024ull)
#define MiB (1024ull * KiB)
#define MS  1000000ull /* ns */

/* What the node under test sits on (dev/nbd_int.h: NBD_SLOTS). */
#define SLOTS 512

/* ---- the gate ---- */

#define GATE_LOG 4096

struct gate {
	struct dev dev;
	struct dev *inner;
	bool closed;
	struct dev_io *held_head, *held_tail;
	unsigned held;
	/* What reached the inner device, in order. */
	unsigned nlog;
	uint64_t log_off[GATE_LOG];
	uint8_t log_op[GATE_LOG];
	uint64_t log_len[GATE_LOG];
	uint32_t log_flags[GATE_LOG];
};

static void gate_submit(struct dev *d, struct dev_io *io)
{
	struct gate *g = container_of(d, struct gate, dev);
	if (g->closed) {
		io->dev_next = NULL;
		if (g->held_tail)
			g->held_tail->dev_next = io;
		else
			g->held_head = io;
		g->held_tail = io;
		g->held++;
		return;
	}
	if (g->nlog < GATE_LOG) {
		g->log_off[g->nlog] = io->off;
		g->log_op[g->nlog] = (uint8_t)io->op;
		g->log_len[g->nlog] = io->len;
		g->log_flags[g->nlog] = io->flags;
		g->nlog++;
	}
	dev_submit(g->inner, io);
}

static void gate_destroy(struct dev *d)
{
	(void)d; /* the test owns the gate and its disk */
}

static const struct dev_ops gate_ops = {
    .kind = "gate", .submit = gate_submit, .destroy = gate_destroy};

static struct dev_io *gate_pop(struct gate *g)
{
	struct dev_io *io = g->held_head;
	if (io) {
		g->held_head = io->dev_next;
		if (!g->held_head)
			g->held_tail = NULL;
		io->dev_next = NULL;
		g->held--;
	}
	return io;
}

/* Let held IO through, in order, and everything after it. */
static void gate_open(struct gate *g)
{
	g->closed = false;
	struct dev_io *io;
	while ((io = gate_pop(g)))
		gate_submit(&g->dev, io);
}

/* Fail held IO (a server that died with it). */
static void gate_drop(struct gate *g, int err)
{
	struct dev_io *io;
	while ((io = gate_pop(g)))
		io->done(io, err);
}

/* ---- the environment: loop, disk, server, node ---- */

struct env {
	struct ev_loop *loop;
	struct dev *mem;
	struct gate gate;
	struct nbd_server *srv;
	bool srv_down; /* nbd_server_shutdown's done ran */
	char dir[128], sock[160], uri[256];
	char tcp_addr[64]; /* when set, servers listen on this TCP address, not the socket */

	struct dev *node;
	int ready_calls, ready_err;
	char ready_msg[512];
	struct dev *ready_dev;
	bool ready_inside_open;
	bool opening;

	struct ev_timer tick, later;
	void (*later_fn)(struct env *e);
	/* Distinct consecutive states of the node, sampled every tick. */
	const char *states[32];
	int nstates;

	int pending;	  /* requests of the test not yet done */
	uint32_t ext_max; /* BLOCK_STATUS extents to ask for (0: all of struct req's) */

	const struct tls_creds *srv_tls;    /* servers require TLS with these */
	const struct dev_nbd_opts *fc_opts; /* first_connect_fails's node options */
};

static void sample_state(struct env *e)
{
	if (!e->node)
		return;
	const char *s = dev_nbd_state(e->node);
	if (e->nstates && !strcmp(e->states[e->nstates - 1], s))
		return;
	if (e->nstates < (int)ARRAY_SIZE(e->states))
		e->states[e->nstates++] = s;
}

static void tick_fn(struct ev_timer *t)
{
	struct env *e = container_of(t, struct env, tick);
	sample_state(e);
	ev_loop_break(e->loop);
}

static void later_fn(struct ev_timer *t)
{
	struct env *e = container_of(t, struct env, later);
	e->later_fn(e);
}

/* Run the loop until cond(e) holds; false after timeout_ms. */
static bool run_until(struct env *e, bool (*cond)(struct env *), unsigned timeout_ms)
{
	uint64_t end = ev_now_ns() + timeout_ms * MS;
	for (;;) {
		sample_state(e);
		if (cond(e))
			return true;
		if (ev_now_ns() > end)
			return false;
		ev_timer_start(e->loop, &e->tick, 1 * MS);
		ev_run(e->loop);
		ev_timer_stop(e->loop, &e->tick);
	}
}

static bool never(struct env *e)
{
	return false;
}

/* Just run the loop for ms. */
static void run_for(struct env *e, unsigned ms)
{
	run_until(e, never, ms);
}

static struct env *env_new(const char *spec)
{
	struct env *e = xcalloc(1, sizeof(*e));
	log_init("test_dev_nbd", stderr, LOG_ERR);
	/* As dstd does: the server writes replies with writev, and a client
	 * that hung up must not kill the process. */
	signal(SIGPIPE, SIG_IGN);
	e->loop = ev_loop_new();
	e->tick.fn = tick_fn;
	e->later.fn = later_fn;
	char err[256] = "";
	e->mem = dev_mem_open(e->loop, spec, err, sizeof(err));
	if (!e->mem) {
		fprintf(stderr, "%s: %s\n", spec, err);
		abort();
	}
	e->gate.dev = *e->mem;
	e->gate.dev.ops = &gate_ops;
	e->gate.dev.caps &= ~DEV_CAP_BORROW; /* the gate does not pass memory through */
	e->gate.inner = e->mem;
	/* A Unix socket path must fit in sun_path. */
	const char *tmp = getenv("TMPDIR");
	if (!tmp || !*tmp || strlen(tmp) > 60)
		tmp = "/tmp";
	snprintf(e->dir, sizeof(e->dir), "%s/dst-nbd-XXXXXX", tmp);
	if (!mkdtemp(e->dir)) {
		perror("mkdtemp");
		abort();
	}
	snprintf(e->sock, sizeof(e->sock), "%s/node.sock", e->dir);
	snprintf(e->uri, sizeof(e->uri), "nbd+unix:///?socket=%s", e->sock);
	return e;
}

static bool server_start_cfg(struct env *e, const char *name, bool readonly)
{
	struct nbd_server_config cfg = {.name = name,
					.dev = &e->gate.dev,
					.readonly = readonly,
					.buf_budget = 64 * MiB,
					.tls = e->srv_tls ? TLS_REQUIRE : TLS_OFF,
					.tls_creds = e->srv_tls};
	char err[256] = "";
	e->srv_down = false;
	e->srv = nbd_server_new(e->loop, &cfg, err, sizeof(err));
	if (!e->srv) {
		fprintf(stderr, "nbd_server_new: %s\n", err);
		return false;
	}
	if ((e->tcp_addr[0] ? nbd_server_listen_tcp(e->srv, e->tcp_addr, 64, err, sizeof(err))
			    : nbd_server_listen_unix(e->srv, e->sock, 64, err, sizeof(err))) < 0) {
		fprintf(stderr, "listen: %s\n", err);
		nbd_server_free(e->srv);
		e->srv = NULL;
		return false;
	}
	return true;
}

static bool server_start_named(struct env *e, const char *name)
{
	return server_start_cfg(e, name, false);
}

static bool server_start(struct env *e)
{
	return server_start_named(e, "");
}

static void server_stop(struct env *e)
{
	nbd_server_free(e->srv);
	e->srv = NULL;
}

static void server_start_later(struct env *e)
{
	CHECK(server_start(e));
}

/* Start the server again in ms, from a timer on the loop. */
static void server_start_in(struct env *e, unsigned ms)
{
	e->later_fn = server_start_later;
	ev_timer_start(e->loop, &e->later, ms * MS);
}

static void server_down(void *arg)
{
	struct env *e = arg;
	e->srv_down = true;
}

static void on_ready(void *arg, struct dev *d, int err, const char *msg)
{
	struct env *e = arg;
	e->ready_calls++;
	e->ready_err = err;
	e->ready_dev = d;
	if (e->opening)
		e->ready_inside_open = true;
	snprintf(e->ready_msg, sizeof(e->ready_msg), "%s", msg ? msg : "");
}

static bool is_ready(struct env *e)
{
	return e->ready_calls > 0;
}

/* Open the node on e->uri (or uri); do not wait. */
static void node_open(struct env *e, const char *uri, const struct dev_nbd_opts *opts)
{
	e->ready_calls = 0;
	e->ready_err = -1;
	e->ready_msg[0] = '\0';
	e->nstates = 0;
	e->opening = true;
	e->node = dev_nbd_open(e->loop, uri ? uri : e->uri, opts, on_ready, e);
	e->opening = false;
}

/* Server and node up; false (with the reason printed) otherwise. */
static bool env_up(struct env *e, const struct dev_nbd_opts *opts)
{
	if (!server_start(e))
		return false;
	node_open(e, NULL, opts);
	if (!e->node || !run_until(e, is_ready, 5000) || e->ready_err) {
		fprintf(stderr, "node did not come up: err %d: %s\n", e->ready_err, e->ready_msg);
		return false;
	}
	return true;
}

static void env_free(struct env *e)
{
	/* Let what the node and the server still have queued run out. */
	if (e->node)
		dev_destroy(e->node);
	CHECK_EQ(e->gate.held, 0);
	if (e->srv)
		nbd_server_free(e->srv);
	ev_timer_stop(e->loop, &e->later);
	dev_destroy(e->mem);
	ev_loop_free(e->loop);
	unlink(e->sock);
	if (rmdir(e->dir) < 0)
		fprintf(stderr, "rmdir %s: %m\n", e->dir);
	free(e);
}

/* ---- requests ---- */

struct req {
	struct dev_io io;
	struct env *e;
	int err;
	int done_calls;
	uint64_t done_ns;
	struct dev_extent ext[16];
};

static void req_done(struct dev_io *io, int err)
{
	struct req *r = io->priv;
	r->err = err;
	r->done_calls++;
	r->done_ns = ev_now_ns();
	r->e->pending--;
}

static void submit_to(struct env *e, struct dev *d, struct req *r, enum dev_op op, uint32_t flags,
		      uint64_t off, uint64_t len, void *buf)
{
	r->io = (struct dev_io){.op = op, .flags = flags, .off = off, .len = len, .buf = buf};
	r->io.done = req_done;
	r->io.priv = r;
	r->e = e;
	r->err = -1;
	r->done_calls = 0;
	if (op == DEV_BLOCK_STATUS) {
		r->io.ext = r->ext;
		r->io.ext_max = e->ext_max ? e->ext_max : ARRAY_SIZE(r->ext);
	}
	e->pending++;
	dev_submit(d, &r->io);
}

/* To the node. */
static void submit(struct env *e, struct req *r, enum dev_op op, uint32_t flags, uint64_t off,
		   uint64_t len, void *buf)
{
	submit_to(e, e->node, r, op, flags, off, len, buf);
}

static bool all_done(struct env *e)
{
	return e->pending == 0;
}

/* One request, waited for. Returns its errno (-1: no answer in time). */
static int do_io_to(struct env *e, struct dev *d, enum dev_op op, uint32_t flags, uint64_t off,
		    uint64_t len, void *buf)
{
	struct req r;
	submit_to(e, d, &r, op, flags, off, len, buf);
	if (!run_until(e, all_done, 10000)) {
		fprintf(stderr, "no answer to op %d at %llu+%llu\n", op, (unsigned long long)off,
			(unsigned long long)len);
		abort(); /* r is on this stack */
	}
	CHECK_EQ(r.done_calls, 1);
	return r.err;
}

static int do_io(struct env *e, enum dev_op op, uint32_t flags, uint64_t off, uint64_t len,
		 void *buf)
{
	return do_io_to(e, e->node, op, flags, off, len, buf);
}

static int do_status(struct env *e, uint64_t off, uint64_t len, uint32_t max,
		     struct dev_extent *ext, uint32_t *count)
{
	struct req r;
	e->ext_max = max;
	submit(e, &r, DEV_BLOCK_STATUS, 0, off, len, NULL);
	e->ext_max = 0;
	if (!run_until(e, all_done, 10000))
		abort();
	*count = r.io.ext_count;
	memcpy(ext, r.ext, sizeof(r.ext[0]) * MIN(*count, (uint32_t)ARRAY_SIZE(r.ext)));
	return r.err;
}

static void fill(uint8_t *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 131 + seed * 7 + 1) | 1; /* never zero */
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* A number from the node's `show` attributes ("N PREFIX/leaf V"). */
static long long show_num(struct dev *d, const char *leaf)
{
	struct strbuf sb;
	sb_init(&sb);
	d->ops->show(d, &sb, "n");
	char key[64];
	snprintf(key, sizeof(key), "N n/%s ", leaf);
	const char *p = sb.s ? strstr(sb.s, key) : NULL;
	long long v = p ? atoll(p + strlen(key)) : -1;
	sb_free(&sb);
	return v;
}

/* A string attribute of `show` ("S PREFIX/leaf V"), "" when absent. */
static const char *show_str(struct dev *d, const char *leaf)
{
	static char v[600];
	struct strbuf sb;
	sb_init(&sb);
	d->ops->show(d, &sb, "n");
	char key[64];
	snprintf(key, sizeof(key), "S n/%s ", leaf);
	const char *p = sb.s ? strstr(sb.s, key) : NULL;
	v[0] = '\0';
	if (p) {
		p += strlen(key);
		snprintf(v, sizeof(v), "%.*s", (int)strcspn(p, "\n"), p);
	}
	sb_free(&sb);
	return v;
}

static bool states_are(struct env *e, const char *const *want, int n)
{
	bool same = e->nstates == n;
	for (int i = 0; same && i < n; i++)
		same = !strcmp(e->states[i], want[i]);
	if (!same) {
		fprintf(stderr, "states:");
		for (int i = 0; i < e->nstates; i++)
			fprintf(stderr, " %s", e->states[i]);
		fprintf(stderr, " (expected");
		for (int i = 0; i < n; i++)
			fprintf(stderr, " %s", want[i]);
		fprintf(stderr, ")\n");
	}
	return same;
}

/* ---- tests ---- */

TEST(ready_once)
{
	struct env *e = env_new("mem:64M");
	CHECK(server_start(e));
	node_open(e, NULL, NULL);
	CHECK(e->node != NULL);
	if (!e->node) {
		env_free(e);
		return;
	}
	/* Never inside dev_nbd_open, even though the Unix connect is instant. */
	CHECK_EQ(e->ready_calls, 0);
	CHECK(!e->ready_inside_open);
	CHECK_STR(dev_nbd_state(e->node), "connecting");
	CHECK(run_until(e, is_ready, 5000));
	CHECK_EQ(e->ready_calls, 1);
	CHECK_EQ(e->ready_err, 0);
	CHECK_STR(e->ready_msg, "");
	CHECK(e->ready_dev == e->node);
	CHECK_STR(dev_nbd_state(e->node), "up");

	struct dev *d = e->node;
	CHECK_STR(d->ops->kind, "nbd");
	CHECK(d->loop == e->loop);
	CHECK_EQ(d->size, 64 * MiB);
	/* Everything a mem disk has comes through (or is emulated); a
	 * plaintext node takes spliced payloads. */
	uint32_t want = DEV_CAP_FLUSH | DEV_CAP_FUA | DEV_CAP_TRIM | DEV_CAP_ZERO |
			DEV_CAP_FAST_ZERO | DEV_CAP_EXTENTS | DEV_CAP_MULTI_CONN | DEV_CAP_CACHE |
			DEV_CAP_PIPE;
	CHECK_EQ(d->caps, want);
	CHECK_EQ(d->min_block, 1);
	CHECK_EQ(d->max_io, 32 * MiB);
	CHECK(d->desc != NULL);
	CHECK_EQ(show_num(d, "reconnects"), 0);

	/* Once is once. */
	run_for(e, 100);
	CHECK_EQ(e->ready_calls, 1);
	CHECK_STR(dev_nbd_state(e->node), "up");

	/* IO submitted before ready waits for it. */
	dev_destroy(e->node);
	node_open(e, NULL, NULL);
	uint8_t buf[4096], back[4096];
	fill(buf, sizeof(buf), 1);
	struct req w, r;
	submit(e, &w, DEV_WRITE, 0, 12345, sizeof(buf), buf);
	submit(e, &r, DEV_READ, 0, 12345, sizeof(back), back);
	CHECK_EQ(e->ready_calls, 0);
	CHECK(run_until(e, all_done, 5000));
	CHECK_EQ(e->ready_calls, 1);
	CHECK_EQ(w.err, 0);
	CHECK_EQ(r.err, 0);
	CHECK(!memcmp(buf, back, sizeof(buf)));
	env_free(e);
}

/* Many requests at once: more than the node's slots, so some wait. */
TEST(queue_depth)
{
	struct env *e = env_new("mem:64M");
	if (!env_up(e, NULL)) {
		CHECK(0);
		env_free(e);
		return;
	}
	enum { N = 600 };
	const uint64_t stride = 104729, maxlen = 96 * KiB; /* no overlaps */
	CHECK(N * stride + maxlen <= 64 * MiB);
	struct req *reqs = xcalloc(N, sizeof(*reqs));
	/* Mostly small, every 25th large enough to be received directly. */
	size_t len[N], pos[N + 1];
	pos[0] = 0;
	for (int i = 0; i < N; i++) {
		len[i] = i % 25 == 0 ? maxlen - (size_t)i : 1 + (size_t)(i * 7919ull % (16 * KiB));
		pos[i + 1] = pos[i] + len[i];
	}
	uint8_t *data = xmalloc(pos[N]), *back = xmalloc(pos[N]);
	for (int i = 0; i < N; i++)
		fill(data + pos[i], len[i], (unsigned)i);
	for (int i = 0; i < N; i++)
		submit(e, &reqs[i], DEV_WRITE, 0, i * stride, len[i], data + pos[i]);
	CHECK(run_until(e, all_done, 10000));
	int bad = 0;
	for (int i = 0; i < N; i++)
		bad += reqs[i].err != 0 || reqs[i].done_calls != 1;
	CHECK_EQ(bad, 0);

	memset(back, 0xAA, pos[N]);
	for (int i = 0; i < N; i++)
		submit(e, &reqs[i], DEV_READ, 0, i * stride, len[i], back + pos[i]);
	CHECK(run_until(e, all_done, 10000));
	bad = 0;
	for (int i = 0; i < N; i++) {
		bad += reqs[i].err != 0 || reqs[i].done_calls != 1;
		bad += memcmp(back + pos[i], data + pos[i], len[i]) != 0;
	}
	CHECK_EQ(bad, 0);

	/* The same data is on the server's disk. */
	uint8_t *p = xmalloc(maxlen);
	for (int i = 0; i < N; i += 37) {
		CHECK_EQ(do_io_to(e, e->mem, DEV_READ, 0, i * stride, len[i], p), 0);
		CHECK(!memcmp(p, data + pos[i], len[i]));
	}
	free(p);

	/* Reads and FUA writes mixed, all at once. */
	for (int i = 0; i < N; i++) {
		if (i % 2)
			submit(e, &reqs[i], DEV_READ, 0, i * stride, len[i], back + pos[i]);
		else
			submit(e, &reqs[i], DEV_WRITE, DEV_F_FUA, i * stride, len[i],
			       data + pos[i]);
	}
	CHECK(run_until(e, all_done, 10000));
	bad = 0;
	for (int i = 0; i < N; i++)
		bad += reqs[i].err != 0 || reqs[i].done_calls != 1 ||
		       memcmp(back + pos[i], data + pos[i], len[i]) != 0;
	CHECK_EQ(bad, 0);
	CHECK_STR(dev_nbd_state(e->node), "up");

	free(reqs);
	free(data);
	free(back);
	env_free(e);
}

/* 8 MiB reads and writes: payloads far bigger than the receive buffer. */
TEST(large_io)
{
	struct env *e = env_new("mem:64M");
	if (!env_up(e, NULL)) {
		CHECK(0);
		env_free(e);
		return;
	}
	const size_t big = 8 * MiB;
	const uint64_t off = 5 * MiB + 4097;
	uint8_t *src = xmalloc(big), *win = xmalloc(big + 8192);
	fill(src, big, 77);
	CHECK_EQ(do_io(e, DEV_WRITE, 0, off, big, src), 0);
	memset(win, 0xAA, big + 8192);
	CHECK_EQ(do_io(e, DEV_READ, 0, off - 4096, big + 8192, win), 0);
	CHECK(all_zero(win, 4096));
	CHECK(!memcmp(win + 4096, src, big));
	CHECK(all_zero(win + 4096 + big, 4096));
	free(win);

	/* Four at once, two over holes; and one of the largest size (max_io). */
	uint8_t *b[4];
	struct req r[4];
	for (int i = 0; i < 4; i++) {
		b[i] = xmalloc(big);
		memset(b[i], 0xAA, big);
		submit(e, &r[i], DEV_READ, 0, i < 2 ? off : 40 * MiB + i * big / 2, big, b[i]);
	}
	CHECK(run_until(e, all_done, 10000));
	for (int i = 0; i < 4; i++) {
		CHECK_EQ(r[i].err, 0);
		CHECK(i < 2 ? !memcmp(b[i], src, big) : all_zero(b[i], big));
		free(b[i]);
	}
	uint8_t *max = xmalloc(e->node->max_io);
	memset(max, 0xAA, e->node->max_io);
	CHECK_EQ(do_io(e, DEV_READ, 0, 0, e->node->max_io, max), 0);
	CHECK(all_zero(max, off));
	CHECK(!memcmp(max + off, src, big));
	CHECK(all_zero(max + off + big, e->node->max_io - off - big));
	free(max);

	/* A read past the end is refused by the server, and the node goes on. */
	uint8_t small[512];
	CHECK_EQ(do_io(e, DEV_READ, 0, 64 * MiB - 256, 512, small), EINVAL);
	CHECK_EQ(do_io(e, DEV_WRITE, 0, 64 * MiB, 1, small), ENOSPC);
	CHECK_EQ(do_io(e, DEV_READ, 0, 64 * MiB - 512, 512, small), 0);
	CHECK_STR(dev_nbd_state(e->node), "up");
	free(src);
	env_free(e);
}

#define CHUNK (64 * KiB) /* the mem disk's allocation unit */
#define HZ    (DEV_EXT_HOLE | DEV_EXT_ZERO)

TEST(commands)
{
	struct env *e = env_new("mem:64M");
	if (!env_up(e, NULL)) {
		CHECK(0);
		env_free(e);
		return;
	}
	size_t n = 4 * CHUNK;
	uint8_t *src = xmalloc(n), *buf = xmalloc(n);
	fill(src, n, 3);
	CHECK_EQ(do_io(e, DEV_WRITE, DEV_F_FUA, 0, n, src), 0);
	CHECK_EQ(do_io(e, DEV_FLUSH, 0, 0, 0, NULL), 0);
	CHECK_EQ(do_io(e, DEV_CACHE, 0, 0, n, NULL), 0);

	struct dev_extent ext[16];
	uint32_t cnt = 0;
	CHECK_EQ(do_status(e, 0, 16 * MiB, 16, ext, &cnt), 0);
	CHECK_EQ(cnt, 2);
	CHECK_EQ(ext[0].len, n);
	CHECK_EQ(ext[0].flags, 0);
	CHECK_EQ(ext[1].len, 16 * MiB - n);
	CHECK_EQ(ext[1].flags, HZ);

	/* TRIM from inside chunk 0 to inside chunk 3: 1 and 2 are freed. */
	uint64_t zoff = 1000, zlen = 3 * CHUNK + 5000 - zoff;
	CHECK_EQ(do_io(e, DEV_TRIM, 0, zoff, zlen, NULL), 0);
	CHECK_EQ(do_io(e, DEV_READ, 0, 0, n, buf), 0);
	CHECK(!memcmp(buf, src, zoff));
	CHECK(all_zero(buf + zoff, zlen));
	CHECK(!memcmp(buf + zoff + zlen, src + zoff + zlen, n - zoff - zlen));
	CHECK_EQ(do_status(e, 0, n, 16, ext, &cnt), 0);
	CHECK_EQ(cnt, 3);
	CHECK_EQ(ext[0].len, CHUNK);
	CHECK_EQ(ext[0].flags, 0);
	CHECK_EQ(ext[1].len, 2 * CHUNK);
	CHECK_EQ(ext[1].flags, HZ);
	CHECK_EQ(ext[2].len, CHUNK);
	CHECK_EQ(ext[2].flags, 0);
	/* One extent asked for (REQ_ONE): the first. */
	CHECK_EQ(do_status(e, CHUNK + 10, n, 1, ext, &cnt), 0);
	CHECK_EQ(cnt, 1);
	CHECK_EQ(ext[0].len, 2 * CHUNK - 10);
	CHECK_EQ(ext[0].flags, HZ);

	/* WRITE_ZEROES: punching, with NO_HOLE, with FAST_ZERO and FUA. */
	CHECK_EQ(do_io(e, DEV_WRITE, 0, 0, n, src), 0);
	CHECK_EQ(do_io(e, DEV_WRITE_ZEROES, 0, zoff, zlen, NULL), 0);
	CHECK_EQ(do_io(e, DEV_READ, 0, 0, n, buf), 0);
	CHECK(!memcmp(buf, src, zoff));
	CHECK(all_zero(buf + zoff, zlen));
	CHECK_EQ(do_status(e, 0, n, 16, ext, &cnt), 0);
	CHECK_EQ(cnt, 3);
	CHECK_EQ(ext[1].flags, HZ);

	CHECK_EQ(do_io(e, DEV_WRITE, 0, 0, n, src), 0);
	CHECK_EQ(do_io(e, DEV_WRITE_ZEROES, DEV_F_NO_HOLE, zoff, zlen, NULL), 0);
	CHECK_EQ(do_io(e, DEV_READ, 0, 0, n, buf), 0);
	CHECK(all_zero(buf + zoff, zlen));
	CHECK(!memcmp(buf + zoff + zlen, src + zoff + zlen, n - zoff - zlen));
	CHECK_EQ(do_status(e, 0, n, 16, ext, &cnt), 0);
	CHECK_EQ(cnt, 1);
	CHECK_EQ(ext[0].len, n);
	CHECK_EQ(ext[0].flags, 0);

	CHECK_EQ(do_io(e, DEV_WRITE, 0, 0, n, src), 0);
	CHECK_EQ(do_io(e, DEV_WRITE_ZEROES, DEV_F_FAST_ZERO | DEV_F_FUA, zoff, zlen, NULL), 0);
	CHECK_EQ(do_io(e, DEV_READ, 0, 0, n, buf), 0);
	CHECK(all_zero(buf + zoff, zlen));
	CHECK_EQ(do_io(e, DEV_TRIM, DEV_F_FUA, 0, n, NULL), 0);
	CHECK_EQ(do_status(e, 0, 64 * MiB, 16, ext, &cnt), 0);
	CHECK_EQ(cnt, 1);
	CHECK_EQ(ext[0].len, 64 * MiB);
	CHECK_EQ(ext[0].flags, HZ);

	/* The node's errors are the server's: out of range. */
	CHECK_EQ(do_io(e, DEV_TRIM, 0, 64 * MiB - 10, 20, NULL), EINVAL);
	CHECK_EQ(do_io(e, DEV_WRITE_ZEROES, 0, 64 * MiB, 1, NULL), ENOSPC);
	CHECK_EQ(do_status(e, 64 * MiB, 4096, 16, ext, &cnt), EINVAL);
	CHECK_EQ(do_io(e, DEV_FLUSH, 0, 0, 0, NULL), 0);
	free(src);
	free(buf);
	env_free(e);
}

/* What the node's server lacks is emulated: FUA by a flush after the
 * write, WRITE_ZEROES by writing zeroes, TRIM and CACHE by nothing. */
TEST(emulated_commands)
{
	struct env *e = env_new("mem:64M");
	e->gate.dev.caps = DEV_CAP_FLUSH; /* what the server offers */
	if (!env_up(e, NULL)) {
		CHECK(0);
		env_free(e);
		return;
	}
	struct dev *d = e->node;
	CHECK_EQ(d->caps, DEV_CAP_FLUSH | DEV_CAP_FUA | DEV_CAP_TRIM | DEV_CAP_ZERO |
			      DEV_CAP_CACHE | DEV_CAP_EXTENTS | DEV_CAP_PIPE);
	struct gate *g = &e->gate;
	const size_t n = 3 * MiB + 5;
	const uint64_t off = 100;
	uint8_t *src = xmalloc(n), *buf = xmalloc(n);
	fill(src, n, 8);

	g->nlog = 0;
	CHECK_EQ(do_io(e, DEV_WRITE, DEV_F_FUA, off, n, src), 0);
	CHECK_EQ(g->nlog, 2);
	CHECK(g->log_op[0] == DEV_WRITE && g->log_off[0] == off && g->log_len[0] == n);
	CHECK_EQ(g->log_flags[0] & DEV_F_FUA, 0);
	CHECK_EQ(g->log_op[1], DEV_FLUSH);

	/* Trim and cache are advisory: done without asking the node. */
	g->nlog = 0;
	CHECK_EQ(do_io(e, DEV_TRIM, 0, off, n, NULL), 0);
	CHECK_EQ(do_io(e, DEV_TRIM, DEV_F_FUA, off, n, NULL), 0);
	CHECK_EQ(do_io(e, DEV_CACHE, 0, 0, MiB, NULL), 0);
	CHECK_EQ(g->nlog, 0);
	CHECK_EQ(do_io(e, DEV_READ, 0, off, n, buf), 0);
	CHECK(!memcmp(buf, src, n));

	/* Zeroes written as data, 1 MiB at a time; FUA adds a flush. */
	g->nlog = 0;
	CHECK_EQ(do_io(e, DEV_WRITE_ZEROES, DEV_F_FUA, off, n, NULL), 0);
	CHECK_EQ(g->nlog, 5);
	for (unsigned i = 0; i < 4 && i < g->nlog; i++) {
		CHECK_EQ(g->log_op[i], DEV_WRITE);
		CHECK_EQ(g->log_off[i], off + i * MiB);
		CHECK_EQ(g->log_len[i], i < 3 ? MiB : 5);
		CHECK_EQ(g->log_flags[i] & DEV_F_FUA, 0);
	}
	CHECK_EQ(g->log_op[4], DEV_FLUSH);
	memset(buf, 0xAA, n);
	CHECK_EQ(do_io(e, DEV_READ, 0, off, n, buf), 0);
	CHECK(all_zero(buf, n));

	g->nlog = 0;
	CHECK_EQ(do_io(e, DEV_WRITE, 0, off, n, src), 0);
	CHECK_EQ(do_io(e, DEV_WRITE_ZEROES, DEV_F_NO_HOLE, off + 1, 10, NULL), 0);
	CHECK_EQ(g->nlog, 2);
	CHECK(g->log_op[1] == DEV_WRITE && g->log_off[1] == off + 1 && g->log_len[1] == 10);
	CHECK_EQ(do_io(e, DEV_READ, 0, off, 20, buf), 0);
	CHECK(buf[0] == src[0] && all_zero(buf + 1, 10) && !memcmp(buf + 11, src + 11, 9));

	/* FAST_ZERO cannot be faked. */
	g->nlog = 0;
	CHECK_EQ(do_io(e, DEV_WRITE_ZEROES, DEV_F_FAST_ZERO, off, n, NULL), ENOTSUP);
	CHECK_EQ(g->nlog, 0);
	CHECK_EQ(do_io(e, DEV_FLUSH, 0, 0, 0, NULL), 0);
	CHECK(g->nlog == 1 && g->log_op[0] == DEV_FLUSH);
	free(src);
	free(buf);
	env_free(e);

	/* A server with WRITE_ZEROES but not FAST_ZERO; no flush at all. */
	e = env_new("mem:64M");
	e->gate.dev.caps = DEV_CAP_ZERO;
	if (!env_up(e, NULL)) {
		CHECK(0);
		env_free(e);
		return;
	}
	CHECK_EQ(e->node->caps & (DEV_CAP_FAST_ZERO | DEV_CAP_MULTI_CONN), 0);
	g = &e->gate;
	g->nlog = 0;
	CHECK_EQ(do_io(e, DEV_WRITE_ZEROES, DEV_F_FAST_ZERO, 0, 4096, NULL), ENOTSUP);
	CHECK_EQ(do_io(e, DEV_WRITE_ZEROES, DEV_F_FUA, 0, 4096, NULL), 0);
	CHECK_EQ(do_io(e, DEV_FLUSH, 0, 0, 0, NULL), 0);
	uint8_t b[16];
	CHECK_EQ(do_io(e, DEV_WRITE, DEV_F_FUA, 0, sizeof(b), b), 0);
	CHECK_EQ(g->nlog, 2);
	CHECK(g->log_op[0] == DEV_WRITE_ZEROES && g->log_len[0] == 4096);
	CHECK(g->log_op[1] == DEV_WRITE);
	env_free(e);
}

/* Ranges over 4 GiB: TRIM, WRITE_ZEROES and CACHE go in 1 GiB pieces,
 * BLOCK_STATUS asks for what fits in 32 bits. */
TEST(big_ranges)
{
	struct env *e = env_new("mem:5G");
	if (!env_up(e, NULL)) {
		CHECK(0);
		env_free(e);
		return;
	}
	const uint64_t GiB = 1024 * MiB, len = 4 * GiB + GiB / 2;
	struct gate *g = &e->gate;
	CHECK_EQ(e->node->size, 5 * GiB);
	uint8_t src[4096], buf[4096];
	fill(src, sizeof(src), 11);
	CHECK_EQ(do_io(e, DEV_WRITE, 0, 5 * GiB - 4096, 4096, src), 0);
	CHECK_EQ(do_io(e, DEV_READ, 0, 5 * GiB - 4096, 4096, buf), 0);
	CHECK(!memcmp(src, buf, sizeof(buf)));

	static const enum dev_op ops[] = {DEV_TRIM, DEV_WRITE_ZEROES, DEV_CACHE};
	for (size_t k = 0; k < ARRAY_SIZE(ops); k++) {
		g->nlog = 0;
		CHECK_EQ(do_io(e, ops[k], DEV_F_FUA, GiB / 2, len, NULL), 0);
		CHECK_EQ(g->nlog, 5);
		for (unsigned i = 0; i < g->nlog && i < 5; i++) {
			CHECK_EQ(g->log_op[i], ops[k]);
			CHECK_EQ(g->log_off[i], GiB / 2 + i * GiB);
			CHECK_EQ(g->log_len[i], i < 4 ? GiB : GiB / 2);
			if (ops[k] != DEV_CACHE)
				CHECK_EQ(g->log_flags[i] & DEV_F_FUA, DEV_F_FUA);
		}
	}
	CHECK_EQ(do_io(e, DEV_READ, 0, 5 * GiB - 4096, 4096, buf), 0);
	CHECK(all_zero(buf, sizeof(buf)));

	struct dev_extent ext[16];
	uint32_t cnt = 0;
	g->nlog = 0;
	CHECK_EQ(do_status(e, 0, 5 * GiB, 16, ext, &cnt), 0);
	CHECK_EQ(g->nlog, 1);
	CHECK(g->log_len[0] < 4 * GiB && g->log_len[0] >= 4 * GiB - 4096);
	CHECK_EQ(cnt, 1);
	CHECK(ext[0].len > 0 && ext[0].len <= g->log_len[0]);
	CHECK_EQ(ext[0].flags, HZ);
	env_free(e);
}

TEST(readonly_server)
{
	struct env *e = env_new("mem:64M");
	CHECK(server_start_cfg(e, "", true));
	node_open(e, NULL, NULL);
	CHECK(run_until(e, is_ready, 5000));
	CHECK_EQ(e->ready_err, 0);
	CHECK(e->node->caps & DEV_CAP_READONLY);
	uint8_t b[512];
	CHECK_EQ(do_io(e, DEV_READ, 0, 0, sizeof(b), b), 0);
	CHECK_EQ(do_io(e, DEV_WRITE, 0, 0, sizeof(b), b), EPERM);
	CHECK_EQ(do_io(e, DEV_WRITE_ZEROES, 0, 0, sizeof(b), NULL), EPERM);
	CHECK_EQ(do_io(e, DEV_TRIM, 0, 0, sizeof(b), NULL), EPERM);
	CHECK_STR(dev_nbd_state(e->node), "up");
	env_free(e);
}

static bool error_says_fewer(struct env *e)
{
	return strstr(show_str(e->node, "error"), "fewer") != NULL;
}

static bool error_says_read_only(struct env *e)
{
	return strstr(show_str(e->node, "error"), "read-only") != NULL;
}

/* The node must come back as it was: not smaller, not read-only. Until it
 * does, it stays reconnecting and IO waits. */
TEST(node_came_back_different)
{
	struct env *e = env_new("mem:64M");
	if (!env_up(e, NULL)) {
		CHECK(0);
		env_free(e);
		return;
	}
	uint8_t data[4096], back[4096];
	fill(data, sizeof(data), 21);
	e->nstates = 0;
	sample_state(e);
	server_stop(e);
	e->gate.dev.size = 32 * MiB;
	server_start_in(e, 50);
	struct req w;
	submit(e, &w, DEV_WRITE, 0, 40 * MiB, sizeof(data), data);
	CHECK(run_until(e, error_says_fewer, 3000));
	run_for(e, 250); /* another attempt or so */
	CHECK_STR(dev_nbd_state(e->node), "reconnecting");
	CHECK_EQ(w.done_calls, 0);
	CHECK_EQ(show_num(e->node, "waiting"), 1);
	CHECK(show_num(e->node, "down_for") >= 0);
	e->gate.dev.size = 64 * MiB;
	CHECK(run_until(e, all_done, 5000));
	CHECK_EQ(w.err, 0);
	CHECK_STR(dev_nbd_state(e->node), "up");
	CHECK_EQ(show_num(e->node, "reconnects"), 1);
	CHECK_STR(show_str(e->node, "error"), ""); /* not shown when up */

	/* Back read-only. */
	server_stop(e);
	CHECK(server_start_cfg(e, "", true));
	submit(e, &w, DEV_WRITE, 0, 40 * MiB + 4096, sizeof(data), data);
	CHECK(run_until(e, error_says_read_only, 3000));
	run_for(e, 250);
	CHECK_STR(dev_nbd_state(e->node), "reconnecting");
	CHECK_EQ(w.done_calls, 0);
	server_stop(e);
	CHECK(server_start(e));
	CHECK(run_until(e, all_done, 5000));
	CHECK_EQ(w.err, 0);
	CHECK_EQ(show_num(e->node, "reconnects"), 2);
	static const char *const want[] = {"up", "reconnecting", "up", "reconnecting", "up"};
	CHECK(states_are(e, want, 5));
	CHECK_EQ(do_io(e, DEV_READ, 0, 40 * MiB, sizeof(back), back), 0);
	CHECK(!memcmp(back, data, sizeof(back)));
	CHECK_EQ(do_io(e, DEV_READ, 0, 40 * MiB + 4096, sizeof(back), back), 0);
	CHECK(!memcmp(back, data, sizeof(back)));
	env_free(e);
}

/* Reads just under and over the size that is received straight into the
 * caller's buffer, many at once: replies straddle the receive buffer. */
TEST(reply_sizes)
{
	struct env *e = env_new("mem:64M");
	if (!env_up(e, NULL)) {
		CHECK(0);
		env_free(e);
		return;
	}
	static const size_t sizes[] = {1, 4095, 40000, 65535, 65536, 65537, 131072 + 7};
	enum { PER = 60 };
	const size_t nreq = ARRAY_SIZE(sizes) * PER;
	const uint64_t stride = 140000;
	CHECK(nreq * stride <= 64 * MiB);
	uint8_t *disk = xmalloc(nreq * stride), *back = xmalloc(nreq * stride);
	fill(disk, nreq * stride, 31);
	CHECK_EQ(do_io(e, DEV_WRITE, 0, 0, nreq * stride / 2, disk), 0);
	CHECK_EQ(do_io(e, DEV_WRITE, 0, nreq * stride / 2, nreq * stride - nreq * stride / 2,
		       disk + nreq * stride / 2),
		 0);
	struct req *reqs = xcalloc(nreq, sizeof(*reqs));
	memset(back, 0xAA, nreq * stride);
	for (size_t i = 0; i < nreq; i++) {
		size_t len = sizes[i % ARRAY_SIZE(sizes)];
		uint64_t off = i * stride + i % 13;
		submit(e, &reqs[i], DEV_READ, 0, off, len, back + off);
	}
	CHECK(run_until(e, all_done, 10000));
	int bad = 0;
	for (size_t i = 0; i < nreq; i++) {
		size_t len = sizes[i % ARRAY_SIZE(sizes)];
		uint64_t off = i * stride + i % 13;
		bad += reqs[i].err != 0 || memcmp(back + off, disk + off, len) != 0;
	}
	CHECK_EQ(bad, 0);
	free(reqs);
	free(disk);
	free(back);
	env_free(e);
}

/* Write N distinct patterns at stride, all at once, without waiting. */
static void submit_writes(struct env *e, struct req *reqs, int n, uint8_t *data, uint64_t stride,
			  size_t len)
{
	for (int i = 0; i < n; i++) {
		fill(data + i * len, len, (unsigned)i + 1000);
		submit(e, &reqs[i], DEV_WRITE, 0, i * stride, len, data + i * len);
	}
}

static void check_written(struct env *e, int n, const uint8_t *data, uint64_t stride, size_t len)
{
	uint8_t *b = xmalloc(len);
	int bad = 0;
	for (int i = 0; i < n; i++) {
		memset(b, 0xAA, len);
		bad += do_io(e, DEV_READ, 0, i * stride, len, b) != 0;
		bad += memcmp(b, data + i * len, len) != 0;
	}
	CHECK_EQ(bad, 0);
	free(b);
}

static bool is_reconnecting(struct env *e)
{
	return !strcmp(dev_nbd_state(e->node), "reconnecting");
}

static bool is_failed(struct env *e)
{
	return !strcmp(dev_nbd_state(e->node), "failed");
}

static bool is_up(struct env *e)
{
	return !strcmp(dev_nbd_state(e->node), "up");
}

static bool is_not_up(struct env *e)
{
	return !is_up(e);
}

static bool server_is_down(struct env *e)
{
	return e->srv_down;
}

/* The server goes away with requests queued on the node (not yet sent);
 * a new one comes up on the same socket a bit later. */
TEST(reconnect_queued)
{
	struct env *e = env_new("mem:64M");
	if (!env_up(e, NULL)) {
		CHECK(0);
		env_free(e);
		return;
	}
	enum { N = 700 };
	const size_t len = 4096 + 3;
	const uint64_t stride = 90001;
	struct req *reqs = xcalloc(N, sizeof(*reqs));
	uint8_t *data = xmalloc(N * len);
	e->nstates = 0;
	sample_state(e);
	submit_writes(e, reqs, N, data, stride, len);
	nbd_server_free(e->srv);
	e->srv = NULL;
	server_start_in(e, 300);
	uint64_t t0 = ev_now_ns();
	CHECK(run_until(e, all_done, 10000));
	uint64_t took = (ev_now_ns() - t0) / MS;
	int bad = 0;
	for (int i = 0; i < N; i++)
		bad += reqs[i].err != 0 || reqs[i].done_calls != 1;
	CHECK_EQ(bad, 0);
	CHECK(took >= 250);
	static const char *const want[] = {"up", "reconnecting", "up"};
	CHECK(states_are(e, want, 3));
	CHECK_EQ(show_num(e->node, "reconnects"), 1);
	check_written(e, N, data, stride, len);
	free(reqs);
	free(data);
	env_free(e);
}

/* The server shuts down while it has requests of the node in its disk
 * (held by the gate, never answered). They are resent, in the order they
 * were issued, to the next server on the same socket. */
TEST(reconnect_in_flight)
{
	struct env *e = env_new("mem:64M");
	if (!env_up(e, NULL)) {
		CHECK(0);
		env_free(e);
		return;
	}
	enum { N = 600 };
	const size_t len = 8192;
	const uint64_t stride = 100000;
	struct req *reqs = xcalloc(N, sizeof(*reqs));
	uint8_t *data = xmalloc(N * len);
	e->gate.closed = true;
	e->nstates = 0;
	sample_state(e);
	submit_writes(e, reqs, N, data, stride, len);
	/* The server takes up to 256 requests of one client at a time. */
	run_for(e, 200);
	CHECK(e->gate.held > 0);
	CHECK_EQ(e->pending, N);
	unsigned held = e->gate.held;
	nbd_server_shutdown(e->srv, 0, server_down, e);
	CHECK(run_until(e, is_reconnecting, 5000));
	/* The old server's disk gives up on what it held; nothing of it
	 * reached the node. */
	gate_drop(&e->gate, EIO);
	CHECK(run_until(e, server_is_down, 5000));
	nbd_server_free(e->srv);
	e->srv = NULL;
	CHECK_EQ(e->pending, N);

	e->gate.nlog = 0;
	e->gate.closed = false;
	server_start_in(e, 200);
	CHECK(run_until(e, all_done, 10000));
	int bad = 0;
	for (int i = 0; i < N; i++)
		bad += reqs[i].err != 0 || reqs[i].done_calls != 1;
	CHECK_EQ(bad, 0);
	static const char *const want[] = {"up", "reconnecting", "up"};
	CHECK(states_are(e, want, 3));
	CHECK_EQ(show_num(e->node, "reconnects"), 1);
	/* resent counts what was on the wire (the server may have seen it),
	 * not the requests that were still waiting for a slot or the socket. */
	CHECK(show_num(e->node, "resent") >= (long long)held);
	CHECK(show_num(e->node, "resent") <= SLOTS);

	/* The new server saw every write once, in issue order. */
	CHECK_EQ(e->gate.nlog, N);
	int order = 0;
	for (unsigned i = 0; i < e->gate.nlog && i < N; i++)
		order += e->gate.log_op[i] != DEV_WRITE || e->gate.log_off[i] != i * stride;
	CHECK_EQ(order, 0);
	check_written(e, N, data, stride, len);
	free(reqs);
	free(data);
	env_free(e);
}

/* A node that hangs: no reply for request_timeout_s drops the connection;
 * the requests are resent on a new one. */
TEST(request_timeout)
{
	struct env *e = env_new("mem:64M");
	struct dev_nbd_opts opts = {.request_timeout_s = 1, .fence = true};
	memset(opts.fence_id, 0x5a, 16);
	if (!env_up(e, &opts)) {
		CHECK(0);
		env_free(e);
		return;
	}
	CHECK_STR(show_str(e->node, "fencing"), "yes");
	enum { N = 8 };
	const size_t len = 1000;
	const uint64_t stride = 1 * MiB;
	struct req reqs[N];
	uint8_t data[N * 1000];
	e->gate.closed = true;
	e->nstates = 0;
	sample_state(e);
	uint64_t t0 = ev_now_ns();
	submit_writes(e, reqs, N, data, stride, len);
	run_for(e, 100);
	CHECK_EQ(e->gate.held, N);
	/* The watchdog looks every 500 ms: the connection goes 1 to 1.5 s
	 * later (with slack for slow runs), and the node dials again. */
	CHECK(run_until(e, is_not_up, 3000));
	uint64_t took = (ev_now_ns() - t0) / MS;
	if (took < 1000 || took >= 3000)
		fprintf(stderr, "dropped after %llu ms\n", (unsigned long long)took);
	CHECK(took >= 1000 && took < 3000);
	/* The server fences: the new connection is answered only once the old
	 * one's requests, still in the disk, are done. None is resent early. */
	run_for(e, 700);
	CHECK(!is_up(e));
	CHECK_EQ(e->gate.held, N);
	gate_open(&e->gate);
	CHECK(run_until(e, is_up, 3000));
	CHECK(run_until(e, all_done, 5000));
	for (int i = 0; i < N; i++)
		CHECK_EQ(reqs[i].err, 0);
	CHECK_STR(dev_nbd_state(e->node), "up");
	CHECK_EQ(show_num(e->node, "reconnects"), 1);
	CHECK_EQ(show_num(e->node, "resent"), N);
	check_written(e, N, data, stride, len);
	env_free(e);
}

/* The same hang on a node that does not fence (no fence asked for here,
 * as with another NBD server): the live connection is kept, the requests
 * wait and complete, nothing is resent, the stall is counted. */
TEST(request_timeout_unfenced)
{
	struct env *e = env_new("mem:64M");
	struct dev_nbd_opts opts = {.request_timeout_s = 1};
	if (!env_up(e, &opts)) {
		CHECK(0);
		env_free(e);
		return;
	}
	enum { N = 4 };
	const size_t len = 1000;
	const uint64_t stride = 1 * MiB;
	struct req reqs[N];
	uint8_t data[N * 1000];
	e->gate.closed = true;
	submit_writes(e, reqs, N, data, stride, len);
	run_for(e, 2500);
	CHECK_STR(dev_nbd_state(e->node), "up");
	CHECK_EQ(show_num(e->node, "reconnects"), 0);
	CHECK_EQ(show_num(e->node, "stalls"), 1);
	CHECK_EQ(e->gate.held, N);
	gate_open(&e->gate);
	CHECK(run_until(e, all_done, 5000));
	for (int i = 0; i < N; i++)
		CHECK_EQ(reqs[i].err, 0);
	CHECK_EQ(show_num(e->node, "resent"), 0);
	check_written(e, N, data, stride, len);
	env_free(e);
}

/* Unreachable past io_timeout_s: IO fails with EIO (state failed) until
 * the node is back. */
TEST(io_timeout)
{
	struct env *e = env_new("mem:64M");
	struct dev_nbd_opts opts = {.io_timeout_s = 1};
	if (!env_up(e, &opts)) {
		CHECK(0);
		env_free(e);
		return;
	}
	enum { N = 10 };
	struct req reqs[N];
	uint8_t data[N * 512];
	e->nstates = 0;
	sample_state(e);
	nbd_server_free(e->srv);
	e->srv = NULL;
	uint64_t t0 = ev_now_ns();
	submit_writes(e, reqs, N, data, 4096, 512);
	CHECK(run_until(e, all_done, 5000));
	for (int i = 0; i < N; i++) {
		CHECK_EQ(reqs[i].err, EIO);
		CHECK_EQ(reqs[i].done_calls, 1);
		uint64_t after = (reqs[i].done_ns - t0) / MS;
		/* 1 to 1.5 s (the watchdog looks every 500 ms), with slack. */
		if (after < 1000 || after > 2500)
			fprintf(stderr, "request %d failed after %llu ms\n", i,
				(unsigned long long)after);
		CHECK(after >= 1000 && after <= 2500);
	}
	CHECK(is_failed(e));

	/* While failed, IO fails at once (but not inside submit). */
	uint8_t b[512];
	struct req r;
	submit(e, &r, DEV_READ, 0, 0, sizeof(b), b);
	CHECK_EQ(r.done_calls, 0);
	uint64_t t1 = ev_now_ns();
	CHECK(run_until(e, all_done, 1000));
	CHECK_EQ(r.err, EIO);
	CHECK((ev_now_ns() - t1) / MS < 500);

	/* The node comes back: up again, IO works. */
	CHECK(server_start(e));
	CHECK(run_until(e, is_up, 8000));
	static const char *const want[] = {"up", "reconnecting", "failed", "up"};
	CHECK(states_are(e, want, 4));
	fill(data, 512, 5);
	CHECK_EQ(do_io(e, DEV_WRITE, 0, 777, 512, data), 0);
	CHECK_EQ(do_io(e, DEV_READ, 0, 777, 512, b), 0);
	CHECK(!memcmp(b, data, 512));
	env_free(e);
}

/* The first connection is not retried: ready says why, once, from the loop. */
static void first_connect_fails(struct env *e, const char *uri, int want_err, const char *word)
{
	node_open(e, uri, e->fc_opts);
	CHECK(e->node != NULL);
	if (!e->node)
		return;
	CHECK_EQ(e->ready_calls, 0);
	CHECK(!e->ready_inside_open);
	uint8_t b[512];
	struct req r;
	submit(e, &r, DEV_READ, 0, 0, sizeof(b), b);
	CHECK(run_until(e, is_ready, 5000));
	CHECK_EQ(e->ready_calls, 1);
	CHECK_EQ(e->ready_err, want_err);
	if (!strstr(e->ready_msg, word))
		fprintf(stderr, "%s: message \"%s\" lacks \"%s\"\n", uri, e->ready_msg, word);
	CHECK(strstr(e->ready_msg, word) != NULL);
	CHECK_STR(dev_nbd_state(e->node), "failed");
	CHECK(run_until(e, all_done, 1000));
	CHECK_EQ(r.err, EIO);
	/* No retries, no second ready. */
	run_for(e, 150);
	CHECK_EQ(e->ready_calls, 1);
	CHECK_STR(dev_nbd_state(e->node), "failed");
	submit(e, &r, DEV_WRITE, 0, 0, sizeof(b), b);
	CHECK(run_until(e, all_done, 1000));
	CHECK_EQ(r.err, EIO);
	dev_destroy(e->node);
	e->node = NULL;
}

TEST(first_connect_no_server)
{
	struct env *e = env_new("mem:64M");
	/* No socket file at all. */
	first_connect_fails(e, NULL, EIO, strerror(ENOENT));

	/* A socket file nobody listens on. */
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	CHECK(strlen(e->sock) < sizeof(sun.sun_path));
	memcpy(sun.sun_path, e->sock, MIN(strlen(e->sock) + 1, sizeof(sun.sun_path) - 1));
	CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0);
	close(fd);
	first_connect_fails(e, NULL, EIO, strerror(ECONNREFUSED));
	unlink(e->sock);

	/* A server without that export. */
	CHECK(server_start_named(e, "disk"));
	char uri[300];
	snprintf(uri, sizeof(uri), "nbd+unix:///nosuch?socket=%s", e->sock);
	first_connect_fails(e, uri, EIO, "no such export");
	CHECK(strstr(e->ready_msg, "nosuch") != NULL);
	/* ...and with it. */
	snprintf(uri, sizeof(uri), "nbd+unix:///disk?socket=%s", e->sock);
	node_open(e, uri, NULL);
	CHECK(run_until(e, is_ready, 5000));
	CHECK_EQ(e->ready_err, 0);
	CHECK_EQ(e->node->size, 64 * MiB);
	env_free(e);
}

static bool is_connecting(struct env *e)
{
	return e->node && !strcmp(dev_nbd_state(e->node), "connecting");
}

/* keep_trying without fail_fast (a linear node not up at boot): ready says
 * it is not there, then IO waits; when the server comes, the IO goes out
 * built from what the handshake said (the FUA write reaches the disk as
 * FUA, not stripped for want of known caps). */
TEST(first_connect_waits)
{
	struct env *e = env_new("mem:64M");
	struct dev_nbd_opts opts = {.keep_trying = true, .min_size = 64 * MiB};
	node_open(e, NULL, &opts);
	CHECK(run_until(e, is_ready, 5000));
	CHECK_EQ(e->ready_err, EIO);
	CHECK(!dev_nbd_answered(e->node));
	CHECK_STR(dev_nbd_state(e->node), "connecting");
	static uint8_t data[4096], b[4096];
	fill(data, sizeof(data), 9);
	struct req w, r;
	submit(e, &w, DEV_WRITE, DEV_F_FUA, 8192, sizeof(data), data);
	submit(e, &r, DEV_READ, 0, 8192, sizeof(b), b);
	run_for(e, 300);
	CHECK_EQ(w.done_calls, 0);
	CHECK_EQ(r.done_calls, 0);
	CHECK_EQ(show_num(e->node, "waiting"), 2);
	server_start_in(e, 100);
	CHECK(run_until(e, all_done, 8000));
	CHECK_EQ(w.err, 0);
	CHECK_EQ(r.err, 0);
	CHECK(!memcmp(b, data, sizeof(b)));
	CHECK_STR(dev_nbd_state(e->node), "up");
	bool fua = false;
	for (unsigned i = 0; i < e->gate.nlog; i++)
		if (e->gate.log_op[i] == DEV_WRITE && e->gate.log_off[i] == 8192)
			fua = e->gate.log_flags[i] & DEV_F_FUA;
	CHECK(fua);
	CHECK_EQ(e->ready_calls, 1); /* up later is an event, not a second ready */
	dev_destroy(e->node);
	e->node = NULL;
	server_stop(e);

	/* A server too small for the node when it first answers: refused,
	 * still connecting, IO still waiting. */
	opts.min_size = 128 * MiB;
	node_open(e, NULL, &opts);
	CHECK(run_until(e, is_ready, 5000));
	submit(e, &r, DEV_READ, 0, 0, sizeof(b), b);
	CHECK(server_start(e));
	run_for(e, 600);
	CHECK(is_connecting(e));
	CHECK_EQ(r.done_calls, 0);
	const char *why = show_str(e->node, "error");
	CHECK(strstr(why, "has 67108864 bytes but the storage expects 134217728") != NULL);
	dev_destroy(e->node); /* fails the read */
	e->node = NULL;
	CHECK(run_until(e, all_done, 1000));
	CHECK_EQ(r.err, EIO);

	/* A server that answers but has no such export: not waited for. */
	char uri[300];
	snprintf(uri, sizeof(uri), "nbd+unix:///nosuch?socket=%s", e->sock);
	node_open(e, uri, &opts);
	CHECK(run_until(e, is_ready, 5000));
	CHECK_EQ(e->ready_err, EIO);
	CHECK(dev_nbd_answered(e->node));
	CHECK_STR(dev_nbd_state(e->node), "failed");
	CHECK_EQ(do_io(e, DEV_READ, 0, 0, sizeof(b), b), EIO);
	env_free(e);
}

TEST(first_connect_bad_uri)
{
	struct env *e = env_new("mem:64M");
	first_connect_fails(e, "nbd+unix:///exp", EINVAL, "socket");
	first_connect_fails(e, "nbds+unix:///?socket=/nonexistent", EINVAL, "TLS");
	first_connect_fails(e, "http://h/", EINVAL, "NBD URI");
	env_free(e);
}

/* Destroying a node that is reconnecting (nothing in flight) is clean. */
TEST(destroy_while_reconnecting)
{
	struct env *e = env_new("mem:64M");
	if (!env_up(e, NULL)) {
		CHECK(0);
		env_free(e);
		return;
	}
	nbd_server_free(e->srv);
	e->srv = NULL;
	CHECK(run_until(e, is_reconnecting, 2000));
	run_for(e, 200); /* a retry or two */
	CHECK_STR(dev_nbd_state(e->node), "reconnecting");
	dev_destroy(e->node);
	e->node = NULL;
	run_for(e, 200); /* no timer of the node may fire now */

	/* Destroyed before ready: ready is never called. */
	CHECK(server_start(e));
	node_open(e, NULL, NULL);
	dev_destroy(e->node);
	e->node = NULL;
	run_for(e, 100);
	CHECK_EQ(e->ready_calls, 0);
	env_free(e);
}

TEST(error_cause)
{
	CHECK_STR(dev_nbd_error_cause("nbd_connect_uri: connect: Connection refused"),
		  "connect: Connection refused");
	CHECK_STR(dev_nbd_error_cause("connect: Connection refused"),
		  "connect: Connection refused");
	CHECK_STR(dev_nbd_error_cause("nbd_pread"), "nbd_pread");
	CHECK_STR(dev_nbd_error_cause(NULL), "unknown error");
}

/* Over TCP: "localhost" may name ::1 before 127.0.0.1, where the server
 * is: the node tries each address in turn. Then a restart on the port. */
TEST(tcp)
{
	struct env *e = env_new("mem:64M");
	snprintf(e->tcp_addr, sizeof(e->tcp_addr), "127.0.0.1:0");
	CHECK(server_start(e));
	const char *uris[2] = {NULL, NULL};
	CHECK_EQ(nbd_server_uris(e->srv, uris, 2), 1);
	const char *colon = uris[0] ? strrchr(uris[0], ':') : NULL;
	CHECK(colon != NULL);
	if (!colon) {
		env_free(e);
		return;
	}
	unsigned port = (unsigned)atoi(colon + 1);
	CHECK(port > 0);
	snprintf(e->tcp_addr, sizeof(e->tcp_addr), "127.0.0.1:%u", port);
	char uri[128];
	snprintf(uri, sizeof(uri), "nbd://localhost:%u/", port);
	node_open(e, uri, NULL);
	CHECK(run_until(e, is_ready, 5000));
	CHECK_EQ(e->ready_err, 0);
	if (e->ready_err) {
		fprintf(stderr, "%s: %s\n", uri, e->ready_msg);
		env_free(e);
		return;
	}
	char desc[64];
	snprintf(desc, sizeof(desc), "R: localhost:%u", port);
	CHECK_STR(e->node->desc, desc);
	const size_t n = MiB + 3;
	uint8_t *src = xmalloc(n), *back = xmalloc(n);
	fill(src, n, 41);
	CHECK_EQ(do_io(e, DEV_WRITE, 0, 999, n, src), 0);
	CHECK_EQ(do_io(e, DEV_READ, 0, 999, n, back), 0);
	CHECK(!memcmp(src, back, n));

	/* The server restarts on the same port; IO meanwhile waits. */
	e->nstates = 0;
	sample_state(e);
	server_stop(e);
	server_start_in(e, 200);
	struct req r;
	memset(back, 0, n);
	submit(e, &r, DEV_READ, 0, 999, n, back);
	CHECK(run_until(e, all_done, 5000));
	CHECK_EQ(r.err, 0);
	CHECK(!memcmp(src, back, n));
	static const char *const want[] = {"up", "reconnecting", "up"};
	CHECK(states_are(e, want, 3));
	dev_destroy(e->node);
	e->node = NULL;

	/* Nobody on the port: refused, said once. */
	server_stop(e);
	snprintf(uri, sizeof(uri), "nbd://127.0.0.1:%u", port);
	node_open(e, uri, NULL);
	CHECK_EQ(e->ready_calls, 0);
	CHECK(run_until(e, is_ready, 5000));
	CHECK_EQ(e->ready_err, EIO);
	CHECK(strstr(e->ready_msg, strerror(ECONNREFUSED)) != NULL);
	CHECK_STR(dev_nbd_state(e->node), "failed");
	free(src);
	free(back);
	env_free(e);
}

/* ---- TLS ---- */

/* A psktool-style file in the env's dir: one user, a key from seed. */
static char *psk_file(struct env *e, const char *name, const char *user, unsigned seed)
{
	char *path = xasprintf("%s/%s", e->dir, name);
	FILE *f = fopen(path, "w");
	CHECK(f != NULL);
	fprintf(f, "%s:", user);
	for (int i = 0; i < 32; i++)
		fprintf(f, "%02x", (seed * 131u + (unsigned)i * 7u) & 0xff);
	fprintf(f, "\n");
	fclose(f);
	return path;
}

/* nbds+unix:// against our server with --tls require, both on one loop:
 * IO of every size through TLS records, then the server goes away with
 * writes queued and comes back: the node does STARTTLS and the TLS
 * handshake again, and every write lands once. */
TEST(tls)
{
	struct env *e = env_new("mem:64M");
	char err[256] = "";
	char *keys = psk_file(e, "keys.psk", "alice", 1);
	struct tls_creds *srv = tls_creds_server(keys, NULL, false, err, sizeof(err));
	struct tls_creds *cli = tls_creds_client(keys, NULL, NULL, err, sizeof(err));
	CHECK(srv && cli);
	if (!srv || !cli) {
		fprintf(stderr, "credentials: %s\n", err);
		env_free(e);
		return;
	}
	e->srv_tls = srv;
	snprintf(e->uri, sizeof(e->uri), "nbds+unix:///?socket=%s", e->sock);
	struct dev_nbd_opts opts = {.tls = cli};
	if (!env_up(e, &opts)) {
		CHECK(0);
		goto out;
	}
	CHECK_STR(show_str(e->node, "tls"), "PSK");
	/* Through TLS nothing can be spliced: payloads are copied. */
	CHECK(!(e->node->caps & DEV_CAP_PIPE));
	CHECK_STR(show_str(e->node, "splice"), "no (TLS: payloads are copied)");
	/* Larger than a record, over holes, and many small ones at once. */
	const size_t big = 8 * MiB + 4097;
	uint8_t *src = xmalloc(big), *back = xmalloc(big);
	fill(src, big, 5);
	CHECK_EQ(do_io(e, DEV_WRITE, 0, 3 * MiB + 1, big, src), 0);
	CHECK_EQ(do_io(e, DEV_READ, 0, 3 * MiB + 1, big, back), 0);
	CHECK(!memcmp(src, back, big));
	free(src);
	free(back);
	enum { N = 700 };
	const size_t len = 4096 + 3;
	const uint64_t stride = 90001;
	struct req *reqs = xcalloc(N, sizeof(*reqs));
	uint8_t *data = xmalloc(N * len);
	submit_writes(e, reqs, N, data, stride, len);
	CHECK(run_until(e, all_done, 10000));
	check_written(e, N, data, stride, len);

	/* Gone with writes queued, back 300 ms later: TLS again. */
	e->nstates = 0;
	sample_state(e);
	submit_writes(e, reqs, N, data, stride + 1, len);
	nbd_server_free(e->srv);
	e->srv = NULL;
	server_start_in(e, 300);
	CHECK(run_until(e, all_done, 10000));
	int bad = 0;
	for (int i = 0; i < N; i++)
		bad += reqs[i].err != 0 || reqs[i].done_calls != 1;
	CHECK_EQ(bad, 0);
	static const char *const want[] = {"up", "reconnecting", "up"};
	CHECK(states_are(e, want, 3));
	CHECK_EQ(show_num(e->node, "reconnects"), 1);
	check_written(e, N, data, stride + 1, len);
	struct nbd_server_stats st;
	nbd_server_get_stats(e->srv, &st);
	CHECK(st.clients_tls >= 1);
	free(reqs);
	free(data);
out:
	unlink(keys);
	env_free(e);
	tls_creds_free(srv);
	tls_creds_free(cli);
	free(keys);
}

/* The first connection fails, with the reason, when the key is wrong, when
 * the server does not do TLS, and when it wants TLS from a plaintext node. */
TEST(tls_refused)
{
	struct env *e = env_new("mem:64M");
	char err[256] = "", tls_uri[300];
	char *keys = psk_file(e, "keys.psk", "alice", 1);
	char *other = psk_file(e, "other.psk", "alice", 2);
	struct tls_creds *srv = tls_creds_server(keys, NULL, false, err, sizeof(err));
	struct tls_creds *wrong = tls_creds_client(other, NULL, NULL, err, sizeof(err));
	CHECK(srv && wrong);
	snprintf(tls_uri, sizeof(tls_uri), "nbds+unix:///?socket=%s", e->sock);
	struct dev_nbd_opts opts = {.tls = wrong};
	e->srv_tls = srv;
	CHECK(server_start(e));
	e->fc_opts = &opts;
	first_connect_fails(e, tls_uri, EIO, "wrong PSK");
	e->fc_opts = NULL;
	first_connect_fails(e, NULL, EIO, "requires TLS");
	server_stop(e);
	e->srv_tls = NULL;
	CHECK(server_start(e));
	e->fc_opts = &opts;
	first_connect_fails(e, tls_uri, EIO, "does not do TLS");
	e->fc_opts = NULL;
	first_connect_fails(e, tls_uri, EINVAL, "credentials");
	unlink(keys);
	unlink(other);
	env_free(e);
	tls_creds_free(srv);
	tls_creds_free(wrong);
	free(keys);
	free(other);
}

/* ---- spliced payloads (DEV_F_PIPE) ---- */

/* A write whose payload is in a pipe: the pipe still holds it after. */
static void submit_pipe_write(struct env *e, struct req *r, uint64_t off, const uint8_t *data,
			      size_t len, uint8_t *room)
{
	struct spipe *p = spipe_get();
	CHECK(p != NULL);
	CHECK_EQ(spipe_from_buf(p, data, len), (long long)len);
	r->io = (struct dev_io){.op = DEV_WRITE, .flags = DEV_F_PIPE, .off = off, .len = len};
	r->io.buf = room; /* has room, holds nothing */
	r->io.pipe = p;
	r->io.done = req_done;
	r->io.priv = r;
	r->e = e;
	r->err = -1;
	r->done_calls = 0;
	e->pending++;
	dev_submit(e->node, &r->io);
}

TEST(spliced_payloads)
{
	struct env *e = env_new("mem:64M");
	if (!env_up(e, NULL)) {
		CHECK(0);
		env_free(e);
		return;
	}
	CHECK(e->node->caps & DEV_CAP_PIPE);
	CHECK_STR(show_str(e->node, "splice"), "yes");
	const size_t len = SPIPE_CAP;
	uint8_t *src = xmalloc(len), *room = xmalloc(len), *back = xmalloc(len);
	fill(src, len, 91);
	memset(room, 0x5A, len);
	struct req w;
	submit_pipe_write(e, &w, 3 * MiB, src, len, room);
	CHECK(run_until(e, all_done, 10000));
	CHECK_EQ(w.err, 0);
	CHECK_EQ(w.io.pipe->len, len); /* tee'd, not consumed */
	for (size_t i = 0; i < len; i++)
		if (room[i] != 0x5A) {
			CHECK(!"the node copied a spliced payload into the buffer");
			break;
		}
	spipe_put(w.io.pipe);
	CHECK_EQ(do_io(e, DEV_READ, 0, 3 * MiB, len, back), 0);
	CHECK(!memcmp(back, src, len));
	CHECK_EQ(show_num(e->node, "spliced_bytes"), (long long)len);

	/* A read asked for a pipe gets one holding the bytes, nothing in buf. */
	for (size_t rl = SPIPE_MIN; rl <= len; rl *= 4) {
		struct req r;
		memset(back, 0xAA, len);
		submit(e, &r, DEV_READ, DEV_F_PIPE, 3 * MiB, rl, back);
		CHECK(run_until(e, all_done, 10000));
		CHECK_EQ(r.err, 0);
		CHECK(r.io.pipe != NULL);
		if (!r.io.pipe)
			continue;
		CHECK_EQ(r.io.pipe->len, rl);
		CHECK_EQ(back[0], 0xAA);
		CHECK_EQ(spipe_to_buf(r.io.pipe, back, rl), 0);
		CHECK(!memcmp(back, src, rl));
		spipe_put(r.io.pipe);
	}
	/* Below SPIPE_MIN it is copied, and says so. */
	long long copied = show_num(e->node, "copied_bytes");
	struct req r;
	submit(e, &r, DEV_READ, DEV_F_PIPE, 3 * MiB, 4096, back);
	CHECK(run_until(e, all_done, 10000));
	CHECK_EQ(r.err, 0);
	CHECK(r.io.pipe == NULL);
	CHECK(!memcmp(back, src, 4096));
	CHECK_EQ(show_num(e->node, "copied_bytes"), copied + 4096);
	/* A read past the end fails and hands back no pipe. */
	submit(e, &r, DEV_READ, DEV_F_PIPE, 64 * MiB - 64 * KiB, 128 * KiB, back);
	CHECK(run_until(e, all_done, 10000));
	CHECK_EQ(r.err, EINVAL);
	CHECK(r.io.pipe == NULL);
	unsigned made, in_use;
	spipe_counts(&made, &in_use);
	CHECK_EQ(in_use, 1); /* the node's own, to send from */
	free(src);
	free(room);
	free(back);
	env_free(e);
	spipe_counts(&made, &in_use);
	CHECK_EQ(in_use, 0);
}

/* Spliced writes on the wire when the connection goes are resent whole
 * from their pipes, and spliced reads are read again. */
TEST(spliced_resend)
{
	struct env *e = env_new("mem:64M");
	if (!env_up(e, NULL)) {
		CHECK(0);
		env_free(e);
		return;
	}
	enum { N = 12 };
	const size_t len = 512 * KiB;
	uint8_t *data = xmalloc(N * len), *room = xmalloc(len), *back = xmalloc(len);
	struct req w[N], r[N];
	e->gate.closed = true;
	for (int i = 0; i < N; i++) {
		fill(data + i * len, len, 300 + (unsigned)i);
		submit_pipe_write(e, &w[i], (uint64_t)i * MiB, data + i * len, len, room);
	}
	run_for(e, 200);
	CHECK(e->gate.held > 0);
	nbd_server_shutdown(e->srv, 0, server_down, e);
	CHECK(run_until(e, is_reconnecting, 5000));
	gate_drop(&e->gate, EIO);
	CHECK(run_until(e, server_is_down, 5000));
	nbd_server_free(e->srv);
	e->srv = NULL;
	CHECK_EQ(e->pending, N);
	e->gate.closed = false;
	server_start_in(e, 200);
	CHECK(run_until(e, all_done, 10000));
	for (int i = 0; i < N; i++) {
		CHECK_EQ(w[i].err, 0);
		CHECK_EQ(w[i].done_calls, 1);
		spipe_put(w[i].io.pipe);
	}
	CHECK(show_num(e->node, "resent") > 0);
	check_written(e, N, data, MiB, len);

	/* Reads in pipes, the connection lost under them. */
	e->gate.closed = true;
	for (int i = 0; i < N; i++)
		submit(e, &r[i], DEV_READ, DEV_F_PIPE, (uint64_t)i * MiB, len, room);
	run_for(e, 200);
	nbd_server_shutdown(e->srv, 0, server_down, e);
	CHECK(run_until(e, is_reconnecting, 5000));
	gate_drop(&e->gate, EIO);
	CHECK(run_until(e, server_is_down, 5000));
	nbd_server_free(e->srv);
	e->srv = NULL;
	e->gate.closed = false;
	server_start_in(e, 200);
	CHECK(run_until(e, all_done, 10000));
	for (int i = 0; i < N; i++) {
		CHECK_EQ(r[i].err, 0);
		CHECK(r[i].io.pipe && r[i].io.pipe->len == len);
		if (!r[i].io.pipe)
			continue;
		CHECK_EQ(spipe_to_buf(r[i].io.pipe, back, len), 0);
		CHECK(!memcmp(back, data + i * len, len));
		spipe_put(r[i].io.pipe);
	}
	free(data);
	free(room);
	free(back);
	env_free(e);
}

UNIT_MAIN(T(ready_once), T(queue_depth), T(large_io), T(commands), T(emulated_commands),
	  T(big_ranges), T(readonly_server), T(node_came_back_different), T(reply_sizes),
	  T(reconnect_queued), T(reconnect_in_flight), T(request_timeout),
	  T(request_timeout_unfenced), T(io_timeout), T(first_connect_no_server),
	  T(first_connect_waits), T(first_connect_bad_uri), T(destroy_while_reconnecting),
	  T(error_cause), T(tcp), T(tls), T(tls_refused), T(spliced_payloads), T(spliced_resend))
