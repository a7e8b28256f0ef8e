/* test_dev_nbd_proto.c - the remote node device against a scripted NBD
 * server of this test, on the same event loop: replies our own server never
 * sends (several chunks per read, holes, error chunks, other meta contexts,
 * replies out of order, bytes trickling in) and protocol violations, after
 * which the node must reconnect and resend. */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/ev.h"
#include "common/log.h"
#include "common/strbuf.h"
#include "common/util.h"
#include "dev/dev.h"
#include "nbd/proto.h"
#include "unit.h"

#define KiB	  (1024ull)
#define MiB	  (1024ull * KiB)
#define MS	  1000000ull
#define DISK_SIZE (4 * MiB)
#define CTX_ID	  0x51u /* our base:allocation context id */
#define CSUM_ID	  0x77u /* its dst:csum-4k context id */

/* ---- the scripted server ---- */

struct fake_req {
	uint16_t flags, type;
	uint64_t cookie, off;
	uint32_t len;
	const uint8_t *payload;
};

struct fake;
/* Answer (or not) a request; `payload` is valid during the call only. */
typedef void (*fake_handler)(struct fake *f, const struct fake_req *r);

enum { F_NONE, F_FLAGS, F_OPTS, F_TX };

#define FAKE_BUF_SIZE (8 * MiB) /* input and output buffers */

struct fake {
	struct ev_loop *loop;
	int lfd, cfd;
	struct ev_io lw, cw;
	int phase;
	uint8_t *in;
	size_t inlen;
	uint8_t *out;
	size_t outlen, outoff;
	bool want_out;

	/* What it offers. */
	bool structured, base_alloc, silent, close_after_greeting;
	bool csum;	 /* offers dst:csum-4k when asked */
	bool asked_csum; /* the last SET_META_CONTEXT asked for it */
	bool deaf;	 /* stop reading once the next handshake is done */
	bool deaf_now;
	unsigned go_refusals; /* answer this many GOs with ERR_SHUTDOWN */
	fake_handler handler;
	uint8_t *disk;

	/* Trickle: at most this many bytes a millisecond (0: all at once). */
	size_t trickle;
	struct ev_timer trickle_timer;

	/* What happened. */
	unsigned conns, requests, discs;
	uint16_t last_flags;
	struct fake_req held[64];
	uint8_t held_payload[64][4096];
	unsigned nheld;
	int mode; /* test-specific */
};

static void fake_flush(struct fake *f);

static void fake_want_out(struct fake *f, bool want)
{
	if (f->cfd < 0 || want == f->want_out)
		return;
	f->want_out = want;
	ev_io_set(f->loop, &f->cw, EPOLLIN | (want ? EPOLLOUT : 0));
}

static void fake_trickle(struct ev_timer *t)
{
	struct fake *f = container_of(t, struct fake, trickle_timer);
	fake_flush(f);
}

/* Send what is queued: all the socket takes, or one trickle's worth. */
static void fake_flush(struct fake *f)
{
	if (f->cfd < 0) {
		f->outlen = f->outoff = 0;
		return;
	}
	while (f->outoff < f->outlen) {
		size_t n = f->outlen - f->outoff;
		if (f->trickle && n > f->trickle)
			n = f->trickle;
		ssize_t r = send(f->cfd, f->out + f->outoff, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (r < 0) {
			if (errno == EAGAIN)
				break;
			f->outoff = f->outlen; /* the client is gone */
			break;
		}
		f->outoff += (size_t)r;
		if (f->trickle)
			break;
	}
	if (f->outoff == f->outlen)
		f->outlen = f->outoff = 0;
	bool more = f->outoff < f->outlen;
	if (f->trickle && more)
		ev_timer_start(f->loop, &f->trickle_timer, 1 * MS);
	fake_want_out(f, more && !f->trickle);
}

static void out(struct fake *f, const void *p, size_t n)
{
	if (f->outlen + n > FAKE_BUF_SIZE) {
		fprintf(stderr, "fake server: output buffer full\n");
		abort();
	}
	memcpy(f->out + f->outlen, p, n);
	f->outlen += n;
	if (!f->trickle || !f->trickle_timer.armed)
		fake_flush(f);
}

static void out16(struct fake *f, uint16_t v)
{
	uint8_t b[2];
	be16_write(b, v);
	out(f, b, 2);
}

static void out32(struct fake *f, uint32_t v)
{
	uint8_t b[4];
	be32_write(b, v);
	out(f, b, 4);
}

static void out64(struct fake *f, uint64_t v)
{
	uint8_t b[8];
	be64_write(b, v);
	out(f, b, 8);
}

static void opt_reply(struct fake *f, uint32_t opt, uint32_t type, const void *d, uint32_t len)
{
	out64(f, NBD_REP_MAGIC);
	out32(f, opt);
	out32(f, type);
	out32(f, len);
	if (len)
		out(f, d, len);
}

static void simple(struct fake *f, uint64_t cookie, uint32_t err, const void *data, uint32_t len)
{
	out32(f, NBD_SIMPLE_REPLY_MAGIC);
	out32(f, err);
	out64(f, cookie);
	if (len)
		out(f, data, len);
}

static void chunk_hdr(struct fake *f, uint16_t flags, uint16_t type, uint64_t cookie, uint32_t len)
{
	out32(f, NBD_STRUCTURED_REPLY_MAGIC);
	out16(f, flags);
	out16(f, type);
	out64(f, cookie);
	out32(f, len);
}

static void data_chunk(struct fake *f, const struct fake_req *r, bool done, uint64_t off,
		       uint32_t len)
{
	chunk_hdr(f, done ? NBD_REPLY_FLAG_DONE : 0, NBD_REPLY_TYPE_OFFSET_DATA, r->cookie,
		  8 + len);
	out64(f, off);
	out(f, f->disk + off, len);
}

static void hole_chunk(struct fake *f, const struct fake_req *r, bool done, uint64_t off,
		       uint32_t len)
{
	chunk_hdr(f, done ? NBD_REPLY_FLAG_DONE : 0, NBD_REPLY_TYPE_OFFSET_HOLE, r->cookie, 12);
	out64(f, off);
	out32(f, len);
}

static void error_chunk(struct fake *f, const struct fake_req *r, bool done, uint32_t err,
			const char *msg)
{
	uint16_t mlen = (uint16_t)strlen(msg);
	chunk_hdr(f, done ? NBD_REPLY_FLAG_DONE : 0, NBD_REPLY_TYPE_ERROR, r->cookie, 6u + mlen);
	out32(f, err);
	out16(f, mlen);
	out(f, msg, mlen);
}

static void none_chunk(struct fake *f, const struct fake_req *r)
{
	chunk_hdr(f, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_NONE, r->cookie, 0);
}

/* A BLOCK_STATUS chunk for context id with n (length, flags) pairs. */
static void status_chunk(struct fake *f, const struct fake_req *r, bool done, uint32_t id,
			 const uint32_t *pairs, unsigned n)
{
	chunk_hdr(f, done ? NBD_REPLY_FLAG_DONE : 0, NBD_REPLY_TYPE_BLOCK_STATUS, r->cookie,
		  4 + 8 * n);
	out32(f, id);
	for (unsigned i = 0; i < 2 * n; i++)
		out32(f, pairs[i]);
}

/* What a plain, correct server answers. */
static void answer(struct fake *f, const struct fake_req *r)
{
	switch (r->type) {
	case NBD_CMD_READ:
		if (f->structured)
			data_chunk(f, r, true, r->off, r->len);
		else
			simple(f, r->cookie, 0, f->disk + r->off, r->len);
		return;
	case NBD_CMD_WRITE: memcpy(f->disk + r->off, r->payload, r->len); break;
	case NBD_CMD_TRIM:
	case NBD_CMD_WRITE_ZEROES: memset(f->disk + r->off, 0, r->len); break;
	case NBD_CMD_BLOCK_STATUS: {
		uint32_t pair[2] = {r->len, 0};
		status_chunk(f, r, true, CTX_ID, pair, 1);
		return;
	}
	default: break;
	}
	simple(f, r->cookie, 0, NULL, 0);
}

static void fake_close_conn(struct fake *f)
{
	if (f->cfd < 0)
		return;
	ev_io_stop(f->loop, &f->cw);
	close(f->cfd);
	f->cfd = -1;
	f->phase = F_NONE;
	f->inlen = 0;
	f->outlen = f->outoff = 0;
	f->want_out = false;
	f->deaf_now = false;
	ev_timer_stop(f->loop, &f->trickle_timer);
}

static void handle_option(struct fake *f, uint32_t opt, const uint8_t *d, uint32_t len)
{
	switch (opt) {
	case NBD_OPT_STRUCTURED_REPLY:
		if (f->structured)
			opt_reply(f, opt, NBD_REP_ACK, NULL, 0);
		else
			opt_reply(f, opt, NBD_REP_ERR_UNSUP, NULL, 0);
		return;
	case NBD_OPT_SET_META_CONTEXT:
		if (f->base_alloc) {
			uint8_t b[4 + 15];
			be32_write(b, CTX_ID);
			memcpy(b + 4, NBD_META_BASE_ALLOCATION, 15);
			opt_reply(f, opt, NBD_REP_META_CONTEXT, b, sizeof(b));
		}
		f->asked_csum = memmem(d, len, NBD_META_DST_CSUM, 11) != NULL;
		if (f->csum && f->asked_csum) {
			uint8_t b[4 + 11];
			be32_write(b, CSUM_ID);
			memcpy(b + 4, NBD_META_DST_CSUM, 11);
			opt_reply(f, opt, NBD_REP_META_CONTEXT, b, sizeof(b));
		}
		opt_reply(f, opt, NBD_REP_ACK, NULL, 0);
		return;
	case NBD_OPT_GO: {
		if (f->go_refusals) {
			f->go_refusals--;
			opt_reply(f, opt, NBD_REP_ERR_SHUTDOWN, "restarting", 10);
			return;
		}
		uint8_t b[12];
		be16_write(b, NBD_INFO_EXPORT);
		be64_write(b + 2, DISK_SIZE);
		be16_write(b + 10, NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA |
				       NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES);
		opt_reply(f, opt, NBD_REP_INFO, b, sizeof(b));
		opt_reply(f, opt, NBD_REP_ACK, NULL, 0);
		f->phase = F_TX;
		if (f->deaf)
			f->deaf = false, f->deaf_now = true;
		return;
	}
	case NBD_OPT_DST_FENCE: /* as a dst export: this fake has one connection */
		opt_reply(f, opt, len == NBD_DST_FENCE_LEN ? NBD_REP_ACK : NBD_REP_ERR_INVALID,
			  NULL, 0);
		return;
	default: opt_reply(f, opt, NBD_REP_ERR_UNSUP, NULL, 0); return;
	}
}

/* Take whole messages out of the input. */
static void fake_process(struct fake *f)
{
	size_t pos = 0;
	while (f->cfd >= 0) {
		const uint8_t *p = f->in + pos;
		size_t avail = f->inlen - pos;
		if (f->phase == F_FLAGS) {
			if (avail < 4)
				break;
			pos += 4;
			f->phase = F_OPTS;
		} else if (f->phase == F_OPTS) {
			if (avail < 16)
				break;
			uint32_t len = be32_read(p + 12);
			if (avail < 16 + (size_t)len)
				break;
			pos += 16 + len;
			handle_option(f, be32_read(p + 8), p + 16, len);
		} else if (f->phase == F_TX) {
			if (avail < NBD_REQUEST_SIZE)
				break;
			struct fake_req r = {.flags = be16_read(p + 4),
					     .type = be16_read(p + 6),
					     .cookie = be64_read(p + 8),
					     .off = be64_read(p + 16),
					     .len = be32_read(p + 24)};
			size_t need = NBD_REQUEST_SIZE + (r.type == NBD_CMD_WRITE ? r.len : 0);
			if (avail < need)
				break;
			r.payload = p + NBD_REQUEST_SIZE;
			pos += need;
			if (r.type == NBD_CMD_DISC) {
				f->discs++;
				fake_close_conn(f);
				break;
			}
			f->requests++;
			f->last_flags = r.flags;
			f->handler(f, &r);
		} else {
			break;
		}
	}
	if (f->cfd < 0)
		return;
	memmove(f->in, f->in + pos, f->inlen - pos);
	f->inlen -= pos;
}

static void fake_on_conn(struct ev_io *w, uint32_t events)
{
	struct fake *f = container_of(w, struct fake, cw);
	if (events & EPOLLOUT)
		fake_flush(f);
	if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		return;
	ssize_t r = recv(f->cfd, f->in + f->inlen, FAKE_BUF_SIZE - f->inlen, 0);
	if (r == 0 || (r < 0 && errno != EAGAIN)) {
		fake_close_conn(f);
		return;
	}
	if (r > 0) {
		f->inlen += (size_t)r;
		fake_process(f);
	}
	if (f->deaf_now && f->cfd >= 0)
		ev_io_set(f->loop, &f->cw, 0); /* hung: reads nothing more */
}

static void greet(struct fake *f)
{
	out64(f, NBD_MAGIC);
	out64(f, NBD_IHAVEOPT);
	out16(f, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
	f->phase = F_FLAGS;
}

static void fake_on_accept(struct ev_io *w, uint32_t events)
{
	struct fake *f = container_of(w, struct fake, lw);
	int fd = accept4(f->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	fake_close_conn(f); /* one client at a time: a new one replaces the old */
	f->cfd = fd;
	f->conns++;
	ev_io_start(f->loop, &f->cw, fd, EPOLLIN);
	if (!f->silent)
		greet(f);
	if (f->close_after_greeting)
		fake_close_conn(f);
}

/* ---- the test environment ---- */

struct env {
	struct ev_loop *loop;
	struct fake f;
	char dir[128], sock[160], uri[256];
	struct dev *node;
	int ready_calls, ready_err;
	char ready_msg[512];
	bool opening, ready_inside_open;
	struct ev_timer tick;
	int pending;
	uint32_t ext_max; /* BLOCK_STATUS extents to ask for (0: all of struct req's) */
};

static void tick_fn(struct ev_timer *t)
{
	struct env *e = container_of(t, struct env, tick);
	ev_loop_break(e->loop);
}

static bool run_until(struct env *e, bool (*cond)(struct env *), unsigned timeout_ms)
{
	uint64_t end = ev_now_ns() + timeout_ms * MS;
	for (;;) {
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

static void run_for(struct env *e, unsigned ms)
{
	run_until(e, never, ms);
}

static void on_ready(void *arg, struct dev *d, int err, const char *msg)
{
	struct env *e = arg;
	e->ready_calls++;
	e->ready_err = err;
	if (e->opening)
		e->ready_inside_open = true;
	snprintf(e->ready_msg, sizeof(e->ready_msg), "%s", msg ? msg : "");
}

static bool is_ready(struct env *e)
{
	return e->ready_calls > 0;
}

static struct env *env_new(void)
{
	struct env *e = xcalloc(1, sizeof(*e));
	log_init("test_dev_nbd_proto", stderr, LOG_ERR);
	/* As dstd does: the server writes replies with writev, and a client
	 * that hung up must not kill the process. */
	signal(SIGPIPE, SIG_IGN);
	e->loop = ev_loop_new();
	e->tick.fn = tick_fn;
	const char *tmp = getenv("TMPDIR");
	if (!tmp || !*tmp || strlen(tmp) > 60)
		tmp = "/tmp";
	snprintf(e->dir, sizeof(e->dir), "%s/dst-nbdp-XXXXXX", tmp);
	if (!mkdtemp(e->dir)) {
		perror("mkdtemp");
		abort();
	}
	snprintf(e->sock, sizeof(e->sock), "%s/fake.sock", e->dir);
	snprintf(e->uri, sizeof(e->uri), "nbd+unix:///?socket=%s", e->sock);

	struct fake *f = &e->f;
	f->loop = e->loop;
	f->cfd = -1;
	f->structured = f->base_alloc = true;
	f->handler = answer;
	f->in = xmalloc(FAKE_BUF_SIZE);
	f->out = xmalloc(FAKE_BUF_SIZE);
	f->disk = xmalloc(DISK_SIZE);
	for (size_t i = 0; i < DISK_SIZE; i++)
		f->disk[i] = (uint8_t)(i * 7 + i / 4096 + 1);
	f->lw.fn = fake_on_accept;
	f->cw.fn = fake_on_conn;
	f->trickle_timer.fn = fake_trickle;
	f->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	memcpy(sun.sun_path, e->sock, MIN(strlen(e->sock) + 1, sizeof(sun.sun_path) - 1));
	if (f->lfd < 0 || bind(f->lfd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    listen(f->lfd, 16) < 0) {
		perror("fake server");
		abort();
	}
	ev_io_start(e->loop, &f->lw, f->lfd, EPOLLIN);
	return e;
}

static bool node_up(struct env *e, const struct dev_nbd_opts *opts)
{
	e->ready_calls = 0;
	e->opening = true;
	e->node = dev_nbd_open(e->loop, e->uri, opts, on_ready, e);
	e->opening = false;
	if (!run_until(e, is_ready, 5000) || e->ready_err) {
		fprintf(stderr, "node not up: %d %s\n", e->ready_err, e->ready_msg);
		return false;
	}
	return true;
}

static void env_free(struct env *e)
{
	if (e->node)
		dev_destroy(e->node);
	struct fake *f = &e->f;
	fake_close_conn(f);
	ev_io_stop(e->loop, &f->lw);
	close(f->lfd);
	free(f->in);
	free(f->out);
	free(f->disk);
	ev_loop_free(e->loop);
	unlink(e->sock);
	rmdir(e->dir);
	free(e);
}

struct req {
	struct dev_io io;
	struct env *e;
	int err, done_calls;
	struct dev_extent ext[8];
	uint32_t csum[2048];
};

static void req_done(struct dev_io *io, int err)
{
	struct req *r = io->priv;
	r->err = err;
	r->done_calls++;
	r->e->pending--;
}

static void submit(struct env *e, struct req *r, enum dev_op op, uint64_t off, uint64_t len,
		   void *buf)
{
	memset(r, 0, sizeof(*r));
	r->io = (struct dev_io){.op = op, .off = off, .len = len, .buf = buf};
	r->io.done = req_done;
	r->io.priv = r;
	r->e = e;
	r->err = -1;
	if (op == DEV_BLOCK_STATUS) {
		r->io.ext = r->ext;
		r->io.ext_max = e->ext_max ? e->ext_max : ARRAY_SIZE(r->ext);
	}
	if (op == DEV_CSUM) {
		r->io.csum = r->csum;
		r->io.csum_max = e->ext_max ? e->ext_max : ARRAY_SIZE(r->csum);
	}
	e->pending++;
	dev_submit(e->node, &r->io);
}

static bool all_done(struct env *e)
{
	return e->pending == 0;
}

static int do_io(struct env *e, enum dev_op op, uint64_t off, uint64_t len, void *buf)
{
	struct req r;
	submit(e, &r, op, off, len, buf);
	if (!run_until(e, all_done, 5000)) {
		fprintf(stderr, "no answer to op %d at %llu\n", op, (unsigned long long)off);
		abort();
	}
	CHECK_EQ(r.done_calls, 1);
	return r.err;
}

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

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* ---- tests ---- */

/* A read answered in pieces: data for the second half (large: received
 * directly), a hole, data for the first quarter, then NONE with DONE. */
static void answer_in_pieces(struct fake *f, const struct fake_req *r)
{
	if (r->type != NBD_CMD_READ) {
		answer(f, r);
		return;
	}
	uint32_t q = r->len / 4, h = r->len / 2;
	data_chunk(f, r, false, r->off + h, r->len - h);
	hole_chunk(f, r, false, r->off + q, h - q);
	data_chunk(f, r, false, r->off, q);
	none_chunk(f, r);
}

TEST(read_in_chunks)
{
	struct env *e = env_new();
	e->f.handler = answer_in_pieces;
	if (!node_up(e, NULL)) {
		CHECK(0);
		env_free(e);
		return;
	}
	static const uint32_t lens[] = {8, 4096, 100000, 300001};
	enum { N = 12 };
	struct req r[N];
	uint8_t *buf[N];
	for (int i = 0; i < N; i++) {
		uint32_t len = lens[i % 4];
		buf[i] = xmalloc(len);
		memset(buf[i], 0xAA, len);
		submit(e, &r[i], DEV_READ, (uint64_t)i * 310000 + 3, len, buf[i]);
	}
	CHECK(run_until(e, all_done, 5000));
	for (int i = 0; i < N; i++) {
		uint32_t len = lens[i % 4], q = len / 4, h = len / 2;
		const uint8_t *d = e->f.disk + (uint64_t)i * 310000 + 3;
		CHECK_EQ(r[i].err, 0);
		CHECK(!memcmp(buf[i], d, q));
		CHECK(all_zero(buf[i] + q, h - q));
		CHECK(!memcmp(buf[i] + h, d + h, len - h));
		free(buf[i]);
	}
	CHECK_EQ(show_num(e->node, "reconnects"), 0);
	env_free(e);
}

/* Requests held, then answered last first. */
static void hold_then_reverse(struct fake *f, const struct fake_req *r)
{
	f->held[f->nheld] = *r;
	if (r->type == NBD_CMD_WRITE)
		memcpy(f->held_payload[f->nheld], r->payload, r->len);
	f->held[f->nheld].payload = f->held_payload[f->nheld];
	if (++f->nheld < (unsigned)f->mode)
		return;
	while (f->nheld)
		answer(f, &f->held[--f->nheld]);
}

TEST(out_of_order)
{
	struct env *e = env_new();
	e->f.handler = hold_then_reverse;
	e->f.mode = 6;
	if (!node_up(e, NULL)) {
		CHECK(0);
		env_free(e);
		return;
	}
	uint8_t w[2][4096], rb[4][4096];
	struct req r[6];
	memset(w, 0x5C, sizeof(w));
	submit(e, &r[0], DEV_WRITE, 0, 4096, w[0]);
	submit(e, &r[1], DEV_READ, 8192, 4096, rb[0]);
	submit(e, &r[2], DEV_READ, 12288, 4096, rb[1]);
	submit(e, &r[3], DEV_WRITE, 16384, 4096, w[1]);
	submit(e, &r[4], DEV_READ, 20480, 4096, rb[2]);
	submit(e, &r[5], DEV_READ, 24576, 100, rb[3]);
	CHECK(run_until(e, all_done, 5000));
	for (int i = 0; i < 6; i++)
		CHECK_EQ(r[i].err, 0);
	CHECK(!memcmp(rb[0], e->f.disk + 8192, 4096));
	CHECK(!memcmp(rb[1], e->f.disk + 12288, 4096));
	CHECK(!memcmp(rb[2], e->f.disk + 20480, 4096));
	CHECK(!memcmp(rb[3], e->f.disk + 24576, 100));
	CHECK(!memcmp(e->f.disk, w[0], 4096));
	CHECK(!memcmp(e->f.disk + 16384, w[1], 4096));
	env_free(e);
}

/* Error replies, by offset (in KiB). */
static void answer_errors(struct fake *f, const struct fake_req *r)
{
	unsigned k = (unsigned)(r->off / 4096);
	if (r->type == NBD_CMD_READ) {
		switch (k) {
		case 0: error_chunk(f, r, true, NBD_EPERM, "denied"); return;
		case 1:
			data_chunk(f, r, false, r->off, r->len);
			error_chunk(f, r, true, NBD_EIO, "disk on fire");
			return;
		case 2: {
			/* ERROR_OFFSET: error, message, the offset it is about. */
			chunk_hdr(f, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_ERROR_OFFSET, r->cookie,
				  4 + 2 + 3 + 8);
			out32(f, NBD_EINVAL);
			out16(f, 3);
			out(f, "bad", 3);
			out64(f, r->off + 10);
			return;
		}
		case 3:
			error_chunk(f, r, false, NBD_ENOSPC, "");
			error_chunk(f, r, true, NBD_EPERM, "second");
			return;
		case 4: error_chunk(f, r, true, 0, "zero is no error"); return;
		case 5: error_chunk(f, r, true, 12345, "unknown number"); return;
		case 6: simple(f, r->cookie, NBD_EOVERFLOW, NULL, 0); return;
		}
	} else if (r->type == NBD_CMD_WRITE) {
		switch (k) {
		case 0: simple(f, r->cookie, NBD_ENOSPC, NULL, 0); return;
		case 1: error_chunk(f, r, true, NBD_EOVERFLOW, "too big"); return;
		case 2: none_chunk(f, r); return;
		}
	}
	answer(f, r);
}

TEST(error_replies)
{
	struct env *e = env_new();
	e->f.handler = answer_errors;
	if (!node_up(e, NULL)) {
		CHECK(0);
		env_free(e);
		return;
	}
	uint8_t b[4096];
	CHECK_EQ(do_io(e, DEV_READ, 0, sizeof(b), b), EPERM);
	CHECK_EQ(do_io(e, DEV_READ, 4096, sizeof(b), b), EIO);
	CHECK_EQ(do_io(e, DEV_READ, 8192, sizeof(b), b), EINVAL);
	CHECK_EQ(do_io(e, DEV_READ, 12288, sizeof(b), b), ENOSPC); /* the first error */
	CHECK_EQ(do_io(e, DEV_READ, 16384, sizeof(b), b), EIO);
	CHECK_EQ(do_io(e, DEV_READ, 20480, sizeof(b), b), EIO);
	CHECK_EQ(do_io(e, DEV_READ, 24576, sizeof(b), b), EOVERFLOW);
	CHECK_EQ(do_io(e, DEV_WRITE, 0, sizeof(b), b), ENOSPC);
	CHECK_EQ(do_io(e, DEV_WRITE, 4096, sizeof(b), b), EOVERFLOW);
	CHECK_EQ(do_io(e, DEV_WRITE, 8192, sizeof(b), b), 0);
	CHECK_EQ(do_io(e, DEV_FLUSH, 0, 0, NULL), 0);
	/* Errors are answers: the connection stays. */
	CHECK_EQ(do_io(e, DEV_READ, 1 * MiB, sizeof(b), b), 0);
	CHECK(!memcmp(b, e->f.disk + MiB, sizeof(b)));
	CHECK_EQ(show_num(e->node, "reconnects"), 0);
	CHECK_STR(dev_nbd_state(e->node), "up");
	env_free(e);
}

static void answer_status(struct fake *f, const struct fake_req *r)
{
	if (r->type != NBD_CMD_BLOCK_STATUS) {
		answer(f, r);
		return;
	}
	static const uint32_t other[] = {10, 0, 20, 3, 30, 0};
	static const uint32_t ours[] = {
	    1000, NBD_STATE_HOLE | NBD_STATE_ZERO, 3000, 0, 5000, NBD_STATE_ZERO};
	switch (f->mode) {
	case 0: /* another context first, then ours in two chunks */
		status_chunk(f, r, false, 99, other, 3);
		status_chunk(f, r, false, CTX_ID, ours, 2);
		status_chunk(f, r, true, CTX_ID, ours + 4, 1);
		return;
	case 1: /* ours with no extent at all */ status_chunk(f, r, true, CTX_ID, NULL, 0); return;
	case 2: /* only another context's */ status_chunk(f, r, true, 98, other, 3); return;
	}
}

TEST(block_status_chunks)
{
	struct env *e = env_new();
	e->f.handler = answer_status;
	if (!node_up(e, NULL)) {
		CHECK(0);
		env_free(e);
		return;
	}
	struct req r;
	submit(e, &r, DEV_BLOCK_STATUS, 4096, 9000, NULL);
	CHECK(run_until(e, all_done, 5000));
	CHECK_EQ(r.err, 0);
	CHECK_EQ(r.io.ext_count, 3);
	CHECK_EQ(r.ext[0].len, 1000);
	CHECK_EQ(r.ext[0].flags, DEV_EXT_HOLE | DEV_EXT_ZERO);
	CHECK_EQ(r.ext[1].len, 3000);
	CHECK_EQ(r.ext[1].flags, 0);
	CHECK_EQ(r.ext[2].len, 5000);
	CHECK_EQ(r.ext[2].flags, DEV_EXT_ZERO);
	CHECK_EQ(e->f.last_flags & NBD_CMD_FLAG_REQ_ONE, 0);

	/* One extent wanted: REQ_ONE asked, one kept whatever comes. */
	e->ext_max = 1;
	submit(e, &r, DEV_BLOCK_STATUS, 4096, 9000, NULL);
	e->ext_max = 0;
	CHECK(run_until(e, all_done, 5000));
	CHECK_EQ(r.err, 0);
	CHECK_EQ(e->f.last_flags & NBD_CMD_FLAG_REQ_ONE, NBD_CMD_FLAG_REQ_ONE);
	CHECK_EQ(r.io.ext_count, 1);
	CHECK_EQ(r.ext[0].len, 1000);

	/* Nothing usable said: one data extent over the range. */
	for (int mode = 1; mode <= 2; mode++) {
		e->f.mode = mode;
		submit(e, &r, DEV_BLOCK_STATUS, 4096, 9000, NULL);
		CHECK(run_until(e, all_done, 5000));
		CHECK_EQ(r.err, 0);
		CHECK_EQ(r.io.ext_count, 1);
		CHECK_EQ(r.ext[0].len, 9000);
		CHECK_EQ(r.ext[0].flags, 0);
	}
	CHECK_EQ(show_num(e->node, "reconnects"), 0);
	env_free(e);
}

/* dst:csum-4k as a dst export answers it: base:allocation's chunk, then
 * the sums of the disk's blocks from r->off merged into runs; or, by mode,
 * a malformed one. */
enum { CS_GOOD, CS_UNALIGNED, CS_EMPTY, CS_PAST, CS_NO_CHUNK, CS_CSUM_FIRST, CS_END };
static void answer_csum(struct fake *f, const struct fake_req *r)
{
	if (r->type != NBD_CMD_BLOCK_STATUS) {
		answer(f, r);
		return;
	}
	uint32_t base[2] = {r->len, 0};
	if (f->mode != CS_CSUM_FIRST)
		status_chunk(f, r, f->mode == CS_NO_CHUNK, CTX_ID, base, 1);
	if (f->mode == CS_NO_CHUNK)
		return;
	static uint32_t sums[DISK_SIZE / 4096], pairs[2 * (DISK_SIZE / 4096)];
	uint64_t end = r->off + r->len;
	uint32_t nb = (uint32_t)((end - r->off + 4095) / 4096), n = 0;
	crc32c_blocks(f->disk + r->off, MIN(nb * 4096ull, DISK_SIZE - r->off), 4096, sums);
	for (uint32_t b = 0; b < nb; b++) {
		uint64_t bend = MIN(r->off + (b + 1) * 4096ull, end);
		if (n && pairs[2 * n - 1] == sums[b])
			pairs[2 * n - 2] += (uint32_t)(bend - (r->off + b * 4096ull));
		else
			pairs[2 * n] = (uint32_t)(bend - (r->off + b * 4096ull)),
				  pairs[2 * n + 1] = sums[b], n++;
	}
	switch (f->mode) {
	case CS_UNALIGNED: pairs[0] = 1000; break;
	case CS_EMPTY: pairs[0] = 0; break;
	case CS_PAST: pairs[2 * n - 2] += 4096; break;
	default: break;
	}
	status_chunk(f, r, f->mode != CS_CSUM_FIRST, CSUM_ID, pairs, n);
	if (f->mode == CS_CSUM_FIRST)
		status_chunk(f, r, true, CTX_ID, base, 1);
}

static bool show_has(struct dev *d, const char *line)
{
	struct strbuf sb;
	sb_init(&sb);
	d->ops->show(d, &sb, "n");
	bool has = sb.s && strstr(sb.s, line);
	sb_free(&sb);
	return has;
}

TEST(csum_context)
{
	struct env *e = env_new();
	e->f.handler = answer_csum;
	e->f.csum = true;
	/* A block repeated: runs merge on the wire and expand again here. */
	memset(e->f.disk + 8 * 4096, 0, 3 * 4096);
	struct dev_nbd_opts o = {.csum = true};
	if (!node_up(e, &o)) {
		CHECK(0);
		env_free(e);
		return;
	}
	CHECK(e->f.asked_csum);
	CHECK(e->node->caps & DEV_CAP_CSUM);
	CHECK(show_has(e->node, "S n/csum dst:csum-4k\n"));
	static uint32_t want[DISK_SIZE / 4096];
	crc32c_blocks(e->f.disk, DISK_SIZE, 4096, want);

	struct req r;
	/* From block 4 over 20 blocks and a bit: 21 sums. */
	submit(e, &r, DEV_CSUM, 4 * 4096, 20 * 4096 + 100, NULL);
	CHECK(run_until(e, all_done, 5000));
	CHECK_EQ(r.err, 0);
	CHECK_EQ(r.io.csum_count, 21);
	for (uint32_t i = 0; i < 21; i++)
		CHECK_EQ(r.csum[i], want[4 + i]);
	CHECK_EQ(r.csum[4], r.csum[6]); /* the zero blocks 8..10 */
	CHECK_EQ(e->f.last_flags, 0);

	/* csum_max caps the request. */
	e->ext_max = 3;
	submit(e, &r, DEV_CSUM, 0, 100 * 4096, NULL);
	e->ext_max = 0;
	CHECK(run_until(e, all_done, 5000));
	CHECK_EQ(r.err, 0);
	CHECK_EQ(r.io.csum_count, 3);
	CHECK(r.csum[0] == want[0] && r.csum[2] == want[2]);

	/* The chunks in the other order. */
	e->f.mode = CS_CSUM_FIRST;
	submit(e, &r, DEV_CSUM, 0, 8 * 4096, NULL);
	CHECK(run_until(e, all_done, 5000));
	CHECK_EQ(r.err, 0);
	CHECK_EQ(r.io.csum_count, 8);
	CHECK_EQ(r.csum[7], want[7]);

	/* BLOCK_STATUS ignores the csum chunk. */
	e->f.mode = CS_GOOD;
	submit(e, &r, DEV_BLOCK_STATUS, 0, 8 * 4096, NULL);
	CHECK(run_until(e, all_done, 5000));
	CHECK_EQ(r.err, 0);
	CHECK_EQ(r.io.ext_count, 1);
	CHECK_EQ(r.ext[0].len, 8 * 4096);

	/* Malformed replies: EIO, and the connection stays. */
	for (int m = CS_UNALIGNED; m <= CS_NO_CHUNK; m++) {
		e->f.mode = m;
		submit(e, &r, DEV_CSUM, 4096, 16 * 4096, NULL);
		CHECK(run_until(e, all_done, 5000));
		if (r.err != EIO)
			fprintf(stderr, "csum mode %d: err %d\n", m, r.err);
		CHECK_EQ(r.err, EIO);
	}
	CHECK_EQ(show_num(e->node, "reconnects"), 0);

	/* The node comes back as a server without it: the cap goes, and
	 * DEV_CSUM fails with ENOTSUP without asking. */
	e->f.mode = CS_GOOD;
	e->f.csum = false;
	fake_close_conn(&e->f);
	for (int i = 0; i < 5000 && show_num(e->node, "reconnects") < 1; i++)
		run_for(e, 1);
	CHECK_EQ(show_num(e->node, "reconnects"), 1);
	CHECK(!(e->node->caps & DEV_CAP_CSUM));
	CHECK(show_has(e->node, "S n/csum none"));
	unsigned before = e->f.requests;
	CHECK_EQ(do_io(e, DEV_CSUM, 0, 4096, NULL), ENOTSUP);
	CHECK_EQ(e->f.requests, before);
	/* And back as a dst export: the cap is back. */
	e->f.csum = true;
	fake_close_conn(&e->f);
	for (int i = 0; i < 5000 && show_num(e->node, "reconnects") < 2; i++)
		run_for(e, 1);
	CHECK(e->node->caps & DEV_CAP_CSUM);
	submit(e, &r, DEV_CSUM, 0, 4096, NULL);
	CHECK(run_until(e, all_done, 5000));
	CHECK_EQ(r.err, 0);
	CHECK_EQ(r.csum[0], want[0]);
	env_free(e);
}

/* Not asked for (not a mirror leg): not negotiated even where offered, and
 * nothing shown; asked of a server without it: no cap, ENOTSUP. */
TEST(csum_not_asked_or_offered)
{
	struct env *e = env_new();
	e->f.handler = answer_csum;
	e->f.csum = true;
	if (!node_up(e, NULL)) {
		CHECK(0);
		env_free(e);
		return;
	}
	CHECK(!e->f.asked_csum);
	CHECK(!(e->node->caps & DEV_CAP_CSUM));
	CHECK(!show_has(e->node, "n/csum"));
	CHECK_EQ(do_io(e, DEV_CSUM, 0, 4096, NULL), ENOTSUP);
	dev_destroy(e->node);
	e->node = NULL;

	e->f.csum = false;
	struct dev_nbd_opts o = {.csum = true};
	if (!node_up(e, &o)) {
		CHECK(0);
		env_free(e);
		return;
	}
	CHECK(e->f.asked_csum);
	CHECK(!(e->node->caps & DEV_CAP_CSUM));
	CHECK(show_has(e->node, "S n/csum none"));
	CHECK_EQ(do_io(e, DEV_CSUM, 0, 4096, NULL), ENOTSUP);
	env_free(e);
}

/* Without structured replies or base:allocation: simple replies only, and
 * BLOCK_STATUS answered by the node itself. */
TEST(plain_server)
{
	for (int structured = 0; structured < 2; structured++) {
		struct env *e = env_new();
		e->f.structured = structured;
		e->f.base_alloc = false;
		if (!node_up(e, NULL)) {
			CHECK(0);
			env_free(e);
			return;
		}
		uint8_t *b = xmalloc(MiB);
		CHECK_EQ(do_io(e, DEV_READ, 5, MiB, b), 0);
		CHECK(!memcmp(b, e->f.disk + 5, MiB));
		CHECK_EQ(do_io(e, DEV_READ, 7, 100, b), 0);
		CHECK(!memcmp(b, e->f.disk + 7, 100));
		memset(b, 0x11, 5000);
		CHECK_EQ(do_io(e, DEV_WRITE, 3 * MiB, 5000, b), 0);
		CHECK(e->f.disk[3 * MiB] == 0x11 && e->f.disk[3 * MiB + 4999] == 0x11);
		unsigned before = e->f.requests;
		struct req r;
		submit(e, &r, DEV_BLOCK_STATUS, 0, DISK_SIZE, NULL);
		CHECK(run_until(e, all_done, 5000));
		CHECK_EQ(r.err, 0);
		CHECK_EQ(r.io.ext_count, 1);
		CHECK_EQ(r.ext[0].len, DISK_SIZE);
		CHECK_EQ(r.ext[0].flags, 0);
		CHECK_EQ(e->f.requests, before);
		free(b);
		env_free(e);
	}
}

/* Bytes arriving a few at a time: the handshake, replies split anywhere. */
TEST(trickle)
{
	struct env *e = env_new();
	e->f.trickle = 13;
	e->f.handler = answer_in_pieces;
	if (!node_up(e, NULL)) {
		CHECK(0);
		env_free(e);
		return;
	}
	uint8_t b[3][3000];
	struct req r[3];
	for (int i = 0; i < 3; i++)
		submit(e, &r[i], DEV_READ, 1000 + i * 5000, 1000 + i * 1000, b[i]);
	CHECK(run_until(e, all_done, 5000));
	for (int i = 0; i < 3; i++) {
		uint32_t len = 1000 + i * 1000, q = len / 4, h = len / 2;
		const uint8_t *d = e->f.disk + 1000 + i * 5000;
		CHECK_EQ(r[i].err, 0);
		CHECK(!memcmp(b[i], d, q) && all_zero(b[i] + q, h - q));
		CHECK(!memcmp(b[i] + h, d + h, len - h));
	}
	/* A large payload trickled in 4093-byte steps. */
	e->f.trickle = 4093;
	uint8_t *big = xmalloc(200000);
	CHECK_EQ(do_io(e, DEV_READ, 77, 200000, big), 0);
	CHECK(!memcmp(big + 100000, e->f.disk + 77 + 100000, 100000));
	CHECK(!memcmp(big, e->f.disk + 77, 50000));
	free(big);
	CHECK_EQ(show_num(e->node, "reconnects"), 0);
	env_free(e);
}

/* Protocol violations: the node drops the connection, reconnects and
 * resends; the new connection answers properly. */
enum {
	V_COOKIE = 1,	  /* reply to a cookie we never sent */
	V_SLOT,		  /* cookie with a slot index out of range */
	V_MAGIC,	  /* no reply magic at all */
	V_CHUNK_TYPE,	  /* an informational chunk type nobody knows */
	V_DATA_BEFORE,	  /* data chunk starting before the read */
	V_DATA_AFTER,	  /* data chunk running past its end */
	V_HOLE_LEN,	  /* hole chunk of the wrong size */
	V_HOLE_OUTSIDE,	  /* hole past the read */
	V_NONE_PAYLOAD,	  /* NONE with a payload */
	V_STATUS_ON_READ, /* extents for a read */
	V_ERROR_MSG_LEN,  /* error message longer than its chunk */
	V_HUGE_CHUNK,	  /* a chunk larger than anything we take */
	V_CUT_PAYLOAD,	  /* the connection drops in the middle of a payload */
	V_END
};

static void answer_badly_once(struct fake *f, const struct fake_req *r)
{
	int v = f->mode;
	if (!v || r->type != NBD_CMD_READ) {
		answer(f, r);
		return;
	}
	f->mode = 0; /* once */
	switch (v) {
	case V_COOKIE: simple(f, r->cookie ^ (0xdeadull << 40), 0, f->disk, r->len); return;
	case V_SLOT: simple(f, r->cookie | 0xffffff, 0, f->disk, r->len); return;
	case V_MAGIC:
		out32(f, 0x12345678);
		out32(f, 0);
		out64(f, r->cookie);
		return;
	case V_CHUNK_TYPE:
		chunk_hdr(f, NBD_REPLY_FLAG_DONE, 0x42, r->cookie, 4);
		out32(f, 0);
		return;
	case V_DATA_BEFORE: data_chunk(f, r, true, r->off - 1, r->len); return;
	case V_DATA_AFTER: data_chunk(f, r, true, r->off + 1, r->len); return;
	case V_HOLE_LEN:
		chunk_hdr(f, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_OFFSET_HOLE, r->cookie, 11);
		out64(f, r->off);
		out16(f, 1);
		out(f, "x", 1);
		return;
	case V_HOLE_OUTSIDE: hole_chunk(f, r, true, r->off + r->len, 1); return;
	case V_NONE_PAYLOAD:
		chunk_hdr(f, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_NONE, r->cookie, 4);
		out32(f, 0);
		return;
	case V_STATUS_ON_READ: {
		uint32_t pair[2] = {r->len, 0};
		status_chunk(f, r, true, CTX_ID, pair, 1);
		return;
	}
	case V_ERROR_MSG_LEN:
		chunk_hdr(f, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_ERROR, r->cookie, 8);
		out32(f, NBD_EIO);
		out16(f, 100);
		out16(f, 0);
		return;
	case V_HUGE_CHUNK: {
		const uint32_t len = 300 * 1024;
		chunk_hdr(f, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_ERROR, r->cookie, len);
		out32(f, NBD_EIO);
		out16(f, 0);
		static uint8_t zeros[300 * 1024];
		out(f, zeros, len - 6);
		return;
	}
	case V_CUT_PAYLOAD:
		chunk_hdr(f, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_OFFSET_DATA, r->cookie,
			  8 + r->len);
		out64(f, r->off);
		out(f, f->disk + r->off, r->len / 3);
		fake_close_conn(f);
		return;
	}
}

TEST(protocol_violations)
{
	struct env *e = env_new();
	e->f.handler = answer_badly_once;
	if (!node_up(e, NULL)) {
		CHECK(0);
		env_free(e);
		return;
	}
	const uint32_t len = 200000; /* large: payloads are received directly */
	uint8_t *b = xmalloc(len);
	for (int v = 1; v < V_END; v++) {
		e->f.mode = v;
		memset(b, 0xAA, len);
		uint64_t off = 4096 + (uint64_t)v * 1000;
		int err = do_io(e, DEV_READ, off, len, b);
		if (err || memcmp(b, e->f.disk + off, len))
			fprintf(stderr, "violation %d: err %d\n", v, err);
		CHECK_EQ(err, 0);
		CHECK(!memcmp(b, e->f.disk + off, len));
		CHECK_EQ(e->f.mode, 0); /* the violation was sent */
		CHECK_EQ(show_num(e->node, "reconnects"), v);
		CHECK_STR(dev_nbd_state(e->node), "up");
		/* A small read right after, on the new connection. */
		CHECK_EQ(do_io(e, DEV_READ, 0, 100, b), 0);
		CHECK(!memcmp(b, e->f.disk, 100));
	}
	CHECK_EQ(e->f.conns, V_END);
	free(b);
	env_free(e);
}

/* Answers ESHUTDOWN to a read and waits for the client to disconnect, as
 * a server that is going away does (the client MUST then disconnect). */
static void answer_shutting_down(struct fake *f, const struct fake_req *r)
{
	if (f->mode && r->type == NBD_CMD_READ) {
		f->mode = 0;
		error_chunk(f, r, true, NBD_ESHUTDOWN, "server shutting down");
		return;
	}
	answer(f, r);
}

TEST(eshutdown_reply)
{
	struct env *e = env_new();
	e->f.handler = answer_shutting_down;
	if (!node_up(e, NULL)) {
		CHECK(0);
		env_free(e);
		return;
	}
	e->f.mode = 1;
	uint8_t b[4096];
	struct req r;
	submit(e, &r, DEV_READ, 8192, sizeof(b), b);
	CHECK(run_until(e, all_done, 3000));
	/* The node disconnects (soft: NBD_CMD_DISC) and, like any node going
	 * away, it comes back and the read is answered. */
	if (r.err)
		fprintf(stderr, "read failed with %s; %u disconnect requests\n", strerror(r.err),
			e->f.discs);
	CHECK_EQ(r.err, 0);
	CHECK_EQ(e->f.discs, 1);
	CHECK(e->f.conns >= 2);
	env_free(e);
}

/* A server that accepts but never greets: the first attempt times out. */
TEST(handshake_timeout)
{
	struct env *e = env_new();
	e->f.silent = true;
	struct dev_nbd_opts opts = {.connect_timeout_s = 1};
	e->opening = true;
	e->node = dev_nbd_open(e->loop, e->uri, &opts, on_ready, e);
	e->opening = false;
	CHECK_EQ(e->ready_calls, 0);
	uint64_t t0 = ev_now_ns();
	CHECK(run_until(e, is_ready, 4000));
	uint64_t took = (ev_now_ns() - t0) / MS;
	CHECK(took >= 1000 && took < 3000);
	CHECK_EQ(e->ready_err, EIO);
	CHECK(strstr(e->ready_msg, "handshake") && strstr(e->ready_msg, "timed out"));
	CHECK_STR(dev_nbd_state(e->node), "failed");
	run_for(e, 200); /* not retried */
	CHECK_EQ(e->f.conns, 1);
	CHECK_EQ(e->ready_calls, 1);
	env_free(e);
}

/* A server that hangs up right after its greeting. */
TEST(handshake_dropped)
{
	struct env *e = env_new();
	e->f.close_after_greeting = true;
	e->opening = true;
	e->node = dev_nbd_open(e->loop, e->uri, NULL, on_ready, e);
	e->opening = false;
	CHECK(run_until(e, is_ready, 2000));
	CHECK_EQ(e->ready_err, EIO);
	CHECK(!strncmp(e->ready_msg, "handshake: ", 11));
	CHECK_STR(dev_nbd_state(e->node), "failed");
	env_free(e);
}

static bool is_up(struct env *e)
{
	return !strcmp(dev_nbd_state(e->node), "up");
}

/* After a drop, the server refuses GO twice (restarting) and then takes the
 * node back; a read waiting meanwhile is answered. */
TEST(reconnect_refused_then_ok)
{
	struct env *e = env_new();
	if (!node_up(e, NULL)) {
		CHECK(0);
		env_free(e);
		return;
	}
	e->f.go_refusals = 2;
	fake_close_conn(&e->f);
	uint8_t b[512];
	struct req r;
	submit(e, &r, DEV_READ, 512, sizeof(b), b);
	CHECK(run_until(e, all_done, 5000));
	CHECK_EQ(r.err, 0);
	CHECK(!memcmp(b, e->f.disk + 512, sizeof(b)));
	CHECK_EQ(e->f.go_refusals, 0);
	CHECK_EQ(e->f.conns, 4);
	CHECK(is_up(e));
	CHECK_EQ(show_num(e->node, "reconnects"), 1);
	env_free(e);
}

/* A node process that hangs and stops reading its socket while a large
 * write is half sent: the request timeout must notice it like any other
 * hang, drop the connection and resend (here to a server that reads; it
 * fences, so the resend is safe). */
TEST(request_timeout_unread)
{
	struct env *e = env_new();
	struct dev_nbd_opts opts = {.request_timeout_s = 1, .fence = true};
	if (!node_up(e, &opts)) {
		CHECK(0);
		env_free(e);
		return;
	}
	/* Reconnect once so that the next connection is the deaf one. */
	e->f.deaf = true;
	fake_close_conn(&e->f);
	CHECK(run_until(e, is_up, 2000));
	run_for(e, 20);
	CHECK(e->f.deaf_now);
	const size_t len = 3 * MiB;
	uint8_t *b = xmalloc(len);
	memset(b, 0x3C, len);
	struct req r;
	uint64_t t0 = ev_now_ns();
	submit(e, &r, DEV_WRITE, 0, len, b);
	bool done = run_until(e, all_done, 3000);
	if (!done)
		fprintf(stderr,
			"a write half sent to a node that stopped reading: no answer, no "
			"timeout after %llu ms (state %s, %lld reconnects)\n",
			(unsigned long long)((ev_now_ns() - t0) / MS), dev_nbd_state(e->node),
			show_num(e->node, "reconnects"));
	CHECK(done);
	if (!done) {
		/* Unstick it so that the test can end cleanly. */
		fake_close_conn(&e->f);
		CHECK(run_until(e, all_done, 5000));
	}
	CHECK_EQ(r.err, 0);
	CHECK(e->f.disk[0] == 0x3C && e->f.disk[len - 1] == 0x3C);
	free(b);
	env_free(e);
}

UNIT_MAIN(T(read_in_chunks), T(out_of_order), T(error_replies), T(block_status_chunks),
	  T(csum_context), T(csum_not_asked_or_offered), T(plain_server), T(trickle),
	  T(protocol_violations), T(eshutdown_reply), T(handshake_timeout), T(handshake_dropped),
	  T(reconnect_refused_then_ok), T(request_timeout_unread))
