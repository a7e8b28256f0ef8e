/* ublk_queue.c - a ublk device's requests, served on the event loop (see
 * ublk_queue.h).
 *
 * Every tag of every queue has exactly one command out at a time: a FETCH
 * (or a COMMIT_AND_FETCH, which answers the tag's last request and fetches
 * its next) that completes when the kernel hands the tag a request. So one
 * ring of queues x depth entries never overflows, and no request waits in
 * the kernel for a command slot. The driver wants all of a queue's commands
 * from one task; here every queue has the same one, the loop thread, which
 * is all dst has: the queues still spread the kernel's side over its CPUs
 * (each CPU submits to its own queue without taking another's lock).
 *
 * User copy (UBLK_F_USER_COPY, Linux 6.5+) rather than the driver copying
 * into a buffer per tag: the driver would need queues x depth buffers of
 * the largest request (256 MiB for 2 x 128 x 1 MiB) held for the device's
 * life, where user copy lets a request take a buffer only while it is
 * served, from a bounded pool (UBLK_POOL), and lets a read go from the
 * storage's own memory (a memory node, a file's page cache: DEV_F_BORROW)
 * into the kernel's request with one copy and no buffer at all. The copy
 * in or out is a pread/pwrite of memory already in RAM on both sides: it
 * does not block. When the pool is spent, requests wait in order (FIFO)
 * for buffers to come back; nothing on the IO path allocates. (Zero copy,
 * UBLK_F_SUPPORT_ZERO_COPY, needs the request's pages registered as io_uring
 * fixed buffers for the IO that moves them, which dst's nodes, sockets
 * driven by its own NBD client, cannot take; 6.12 refuses the flag anyway.)
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "common/bufpool.h"
#include "common/ev.h"
#include "common/lathist.h"
#include "common/log.h"
#include "common/strbuf.h"
#include "common/util.h"
#include "dev/dev.h"
#include "nbd/server.h"
#include "ublk_abi.h"
#include "ublk_queue.h"

/* The buffer pool: what requests being served may hold at once. */
#define UBLK_POOL (32u << 20)
/* Copies at least this long go through the ring (IORING_OP_READ/WRITE on
 * /dev/ublkcN), which runs them in a kernel worker, in parallel with the
 * loop and with each other; shorter ones are a pread/pwrite on the loop,
 * cheaper than a round trip through the ring. */
#define UBLK_ASYNC_COPY (64u << 10)
/* user_data of a copy's SQE: the tag's index with this bit. */
#define COPY_BIT (1ull << 63)

enum tag_state {
	TAG_FETCHING, /* a command is out: the kernel has no request for it */
	TAG_OURS,     /* serving its request */
	TAG_GONE,     /* its command ended without a request: stopping */
};

struct ublk_tag {
	struct ublk_queues *q;
	uint16_t qid, tag;
	enum tag_state state;
	struct dev_io io;
	void *buf; /* from the pool while served */
	uint64_t start_ns;
	struct iovec iov[DEV_BORROW_IOV];
	struct ublk_tag *next; /* waiting for a buffer */
};

struct ublk_stats {
	uint64_t reads, writes, flushes, trims, zeroes, errors;
	uint64_t read_bytes, write_bytes, read_ns, write_ns;
	uint64_t direct_reads; /* reads copied from the storage's own memory */
	uint64_t buffer_waits; /* requests that waited for the pool */
	uint64_t async_copies; /* copies done by the ring (UBLK_ASYNC_COPY) */
	struct lathist read_lat, write_lat, flush_lat;
	unsigned busy_peak;
	uint64_t *per_queue; /* requests each queue brought */
};

struct ublk_queues {
	struct ev_loop *loop;
	struct dev *dev;
	uint32_t id;
	unsigned nq, depth;
	int cfd; /* /dev/ublkcN */
	const struct ublksrv_io_desc **desc;
	size_t desc_len;
	struct io_uring ring;
	bool ring_ok;
	int efd;
	struct ev_io efd_w;
	struct ev_deferred submit_d;
	struct ublk_tag *tags;
	struct bufpool pool;
	bool pool_ok;
	struct ublk_tag *wait_head, *wait_tail;
	unsigned busy;
	struct ev_deferred idle_d; /* idle() runs from here, off any stack of ours */
	void (*idle)(void *arg);
	void *idle_arg;
	struct ublk_stats st;
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void on_submit(struct ev_deferred *d)
{
	struct ublk_queues *q = container_of(d, struct ublk_queues, submit_d);
	int ret = io_uring_submit(&q->ring);
	if (ret < 0 && ret != -EINTR)
		log_err("ublk %u: io_uring_submit: %s", q->id, strerror(-ret));
}

/* FETCH (res < 0) or COMMIT_AND_FETCH with res as the request's result. */
/* An entry for tag t, which has nothing else in the ring. */
static struct io_uring_sqe *get_sqe(struct ublk_tag *t)
{
	struct ublk_queues *q = t->q;
	struct io_uring_sqe *sqe = io_uring_get_sqe(&q->ring);
	if (!sqe) {
		/* Cannot happen (one entry per tag); if it did, make room. */
		io_uring_submit(&q->ring);
		sqe = io_uring_get_sqe(&q->ring);
		if (!sqe)
			log_err("ublk %u: queue %u tag %u: no room in the ring", q->id, t->qid,
				t->tag);
	}
	ev_defer(q->loop, &q->submit_d);
	return sqe;
}

static void send_cmd(struct ublk_tag *t, bool commit, int res)
{
	struct ublk_queues *q = t->q;
	struct io_uring_sqe *sqe = get_sqe(t);
	if (!sqe) {
		t->state = TAG_GONE;
		return;
	}
	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->fd = q->cfd;
	sqe->cmd_op = commit ? DST_UBLK_IO_COMMIT_AND_FETCH : DST_UBLK_IO_FETCH_REQ;
	sqe->user_data = (uint64_t)(t - q->tags);
	struct ublksrv_io_cmd cmd = {.q_id = t->qid, .tag = t->tag, .result = res};
	memcpy(sqe->cmd, &cmd, sizeof(cmd));
	t->state = TAG_FETCHING;
}

static void run_idle(struct ev_deferred *d)
{
	struct ublk_queues *q = container_of(d, struct ublk_queues, idle_d);
	if (q->busy == 0 && q->idle) {
		void (*idle)(void *) = q->idle;
		q->idle = NULL;
		idle(q->idle_arg); /* may close q */
	}
}

static void become_idle(struct ublk_queues *q)
{
	if (q->busy == 0 && q->idle)
		ev_defer(q->loop, &q->idle_d);
}

static void start_io(struct ublk_tag *t);

/* Requests waiting for the pool, in order, as buffers come back. */
static void drain_waiting(struct ublk_queues *q)
{
	while (q->wait_head) {
		struct ublk_tag *t = q->wait_head;
		t->buf = bufpool_alloc(&q->pool, t->io.len);
		if (!t->buf)
			return;
		q->wait_head = t->next;
		if (!q->wait_head)
			q->wait_tail = NULL;
		start_io(t);
	}
}

static void answer(struct ublk_tag *t, int res)
{
	struct ublk_queues *q = t->q;
	if (res < 0)
		q->st.errors++;
	if (t->buf) {
		bufpool_free(&q->pool, t->buf);
		t->buf = NULL;
	}
	q->busy--;
	send_cmd(t, true, res);
	drain_waiting(q);
	become_idle(q);
}

static uint64_t user_off(const struct ublk_tag *t)
{
	return dst_ublk_user_off(t->qid, t->tag, 0);
}

/* A copy into (READ) or out of (WRITE) the kernel's request ended with n
 * bytes (or -errno): 0, or -EIO said. */
static int copied(struct ublk_tag *t, ssize_t n)
{
	struct ublk_queues *q = t->q;
	struct dev_io *io = &t->io;
	if (n == (ssize_t)io->len)
		return 0;
	log_err("ublk %u: queue %u tag %u: copying %llu bytes %s the request: %s", q->id, t->qid,
		t->tag, (unsigned long long)io->len, io->op == DEV_READ ? "into" : "from",
		n < 0 ? strerror((int)-n) : "short copy");
	return -EIO;
}

/* A read's data is in the kernel's request (n bytes of it, or -errno). */
static void read_copied(struct ublk_tag *t, ssize_t n)
{
	struct dev_io *io = &t->io;
	if (io->iov_count) {
		t->q->st.direct_reads++;
		dev_release(t->q->dev, io);
	}
	int res = copied(t, n);
	answer(t, res ? res : (int)io->len);
}

/* A read's data into the kernel's request: from the storage's memory
 * (borrowed) or the pool's buffer. */
static void copy_out(struct ublk_tag *t)
{
	struct ublk_queues *q = t->q;
	struct dev_io *io = &t->io;
	off_t off = (off_t)user_off(t);
	if (io->len >= UBLK_ASYNC_COPY) {
		struct io_uring_sqe *sqe = get_sqe(t);
		if (sqe) {
			if (io->iov_count)
				io_uring_prep_writev(sqe, q->cfd, io->iov, io->iov_count, off);
			else
				io_uring_prep_write(sqe, q->cfd, t->buf, (unsigned)io->len, off);
			sqe->user_data = COPY_BIT | (uint64_t)(t - q->tags);
			q->st.async_copies++;
			return;
		}
	}
	ssize_t n = io->iov_count ? pwritev(q->cfd, io->iov, (int)io->iov_count, off)
				  : pwrite(q->cfd, t->buf, io->len, off);
	read_copied(t, n < 0 ? -errno : n);
}

static void io_done(struct dev_io *io, int err)
{
	struct ublk_tag *t = io->priv;
	struct ublk_queues *q = t->q;
	uint64_t ns = now_ns() - t->start_ns;
	int res = err ? -err : 0;
	switch (io->op) {
	case DEV_READ:
		q->st.read_ns += ns;
		lathist_add(&q->st.read_lat, ns);
		if (!err) {
			copy_out(t); /* answers */
			return;
		}
		if (io->iov_count)
			dev_release(q->dev, io);
		break;
	case DEV_WRITE:
		q->st.write_ns += ns;
		lathist_add(&q->st.write_lat, ns);
		if (!err)
			res = (int)io->len;
		break;
	case DEV_FLUSH: lathist_add(&q->st.flush_lat, ns); break;
	default: break;
	}
	answer(t, res);
}

static void submit(struct ublk_tag *t)
{
	t->start_ns = now_ns();
	dev_submit(t->q->dev, &t->io);
}

/* A write's payload is in its buffer (n bytes of it, or -errno). */
static void write_copied(struct ublk_tag *t, ssize_t n)
{
	int res = copied(t, n);
	if (res)
		answer(t, res);
	else
		submit(t);
}

/* A request with its buffer (if it needs one): off to the storage, a
 * write once its payload is copied in. */
static void start_io(struct ublk_tag *t)
{
	struct ublk_queues *q = t->q;
	struct dev_io *io = &t->io;
	io->buf = t->buf;
	if (io->op != DEV_WRITE) {
		submit(t);
		return;
	}
	off_t off = (off_t)user_off(t);
	if (io->len >= UBLK_ASYNC_COPY) {
		struct io_uring_sqe *sqe = get_sqe(t);
		if (sqe) {
			io_uring_prep_read(sqe, q->cfd, t->buf, (unsigned)io->len, off);
			sqe->user_data = COPY_BIT | (uint64_t)(t - q->tags);
			q->st.async_copies++;
			return;
		}
	}
	ssize_t n = pread(q->cfd, t->buf, io->len, off);
	write_copied(t, n < 0 ? -errno : n);
}

/* The kernel handed tag t a request. */
static void take_request(struct ublk_tag *t)
{
	struct ublk_queues *q = t->q;
	const struct ublksrv_io_desc *d = &q->desc[t->qid][t->tag];
	uint32_t op_flags = __atomic_load_n(&d->op_flags, __ATOMIC_ACQUIRE);
	uint64_t off = d->start_sector << 9, len = (uint64_t)d->nr_sectors << 9;
	struct dev_io *io = &t->io;
	memset(io, 0, offsetof(struct dev_io, dev_next));
	io->off = off;
	io->len = len;
	io->done = io_done;
	io->priv = t;
	t->state = TAG_OURS;
	q->st.per_queue[t->qid]++;
	if (++q->busy > q->st.busy_peak)
		q->st.busy_peak = q->busy;
	uint32_t caps = q->dev->caps;
	switch (op_flags & 0xff) {
	case UBLK_IO_OP_READ:
		io->op = DEV_READ;
		q->st.reads++;
		q->st.read_bytes += len;
		break;
	case UBLK_IO_OP_WRITE:
		io->op = DEV_WRITE;
		if (op_flags & UBLK_IO_F_FUA)
			io->flags |= DEV_F_FUA;
		q->st.writes++;
		q->st.write_bytes += len;
		break;
	case UBLK_IO_OP_FLUSH:
		q->st.flushes++;
		if (!(caps & DEV_CAP_FLUSH)) {
			answer(t, 0);
			return;
		}
		io->op = DEV_FLUSH;
		io->off = io->len = 0;
		break;
	case UBLK_IO_OP_DISCARD:
		q->st.trims++;
		io->op = DEV_TRIM;
		break;
	case UBLK_IO_OP_WRITE_ZEROES:
		q->st.zeroes++;
		io->op = DEV_WRITE_ZEROES;
		if (op_flags & UBLK_IO_F_NOUNMAP)
			io->flags |= DEV_F_NO_HOLE;
		break;
	default: answer(t, -EOPNOTSUPP); return;
	}
	if (io->op != DEV_READ && io->op != DEV_WRITE) {
		start_io(t);
		return;
	}
	if (len == 0 || len > UBLK_MAX_IO) {
		answer(t, -EINVAL);
		return;
	}
	if (io->op == DEV_READ && dev_can_borrow(q->dev, off, len)) {
		io->flags |= DEV_F_BORROW;
		io->iov = t->iov;
		io->iov_count = 0;
	}
	t->buf = q->wait_head ? NULL : bufpool_alloc(&q->pool, len);
	if (!t->buf) {
		q->st.buffer_waits++;
		t->next = NULL;
		if (q->wait_tail)
			q->wait_tail->next = t;
		else
			q->wait_head = t;
		q->wait_tail = t;
		return;
	}
	start_io(t);
}

static void on_completions(struct ev_io *w, uint32_t events)
{
	(void)events;
	struct ublk_queues *q = container_of(w, struct ublk_queues, efd_w);
	uint64_t v;
	if (read(q->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_warn("ublk %u: eventfd: %s", q->id, strerror(errno));
	struct io_uring_cqe *cqe;
	while (io_uring_peek_cqe(&q->ring, &cqe) == 0) {
		uint64_t i = cqe->user_data & ~COPY_BIT;
		bool copy = cqe->user_data & COPY_BIT;
		int res = cqe->res;
		io_uring_cqe_seen(&q->ring, cqe);
		if (i >= (uint64_t)q->nq * q->depth)
			continue;
		struct ublk_tag *t = &q->tags[i];
		if (copy) {
			if (t->io.op == DEV_READ)
				read_copied(t, res);
			else
				write_copied(t, res);
			continue;
		}
		if (res == UBLK_IO_RES_OK) {
			take_request(t);
			continue;
		}
		t->state = TAG_GONE;
		/* ABORT: the device is stopping, or its queue is being torn
		 * down; anything else is the driver refusing the command. */
		if (res != UBLK_IO_RES_ABORT)
			log_err("ublk %u: queue %u tag %u: the driver refused its command: %s",
				q->id, t->qid, t->tag, strerror(-res));
	}
}

struct ublk_queues *ublk_queues_open(struct ev_loop *loop, struct dev *dev, uint32_t id,
				     unsigned queues, unsigned depth, char *err, size_t errlen)
{
	struct ublk_queues *q = xcalloc(1, sizeof(*q));
	q->loop = loop;
	q->dev = dev;
	q->id = id;
	q->nq = queues;
	q->depth = depth;
	q->cfd = q->efd = -1;
	q->submit_d.fn = on_submit;
	q->idle_d.fn = run_idle;
	char path[64];
	snprintf(path, sizeof(path), "/dev/ublkc%u", id);
	/* devtmpfs makes the node as the driver adds the device; a udev that
	 * renames or re-creates it may take a moment. */
	for (int i = 0; i < 50; i++) {
		q->cfd = open(path, O_RDWR | O_CLOEXEC);
		if (q->cfd >= 0 || errno != ENOENT)
			break;
		usleep(20000);
	}
	if (q->cfd < 0) {
		snprintf(err, errlen, "ublk: %s: %s", path, strerror(errno));
		goto fail;
	}
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	q->desc_len = (depth * sizeof(struct ublksrv_io_desc) + page - 1) / page * page;
	q->desc = xcalloc(queues, sizeof(*q->desc));
	for (unsigned i = 0; i < queues; i++) {
		void *m = mmap(NULL, q->desc_len, PROT_READ, MAP_SHARED | MAP_POPULATE, q->cfd,
			       (off_t)(UBLKSRV_CMD_BUF_OFFSET + i * DST_UBLK_DESC_STRIDE(page)));
		if (m == MAP_FAILED) {
			snprintf(err, errlen, "ublk: %s: mapping queue %u: %s", path, i,
				 strerror(errno));
			goto fail;
		}
		q->desc[i] = m;
	}
	unsigned entries = 1;
	while (entries < queues * depth)
		entries <<= 1;
	int ret = io_uring_queue_init(entries, &q->ring, 0);
	if (ret < 0) {
		snprintf(err, errlen, "ublk: io_uring_queue_init(%u): %s", entries, strerror(-ret));
		goto fail;
	}
	q->ring_ok = true;
	q->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (q->efd < 0 || io_uring_register_eventfd(&q->ring, q->efd) < 0) {
		snprintf(err, errlen, "ublk: eventfd: %s", strerror(errno));
		goto fail;
	}
	q->efd_w.fn = on_completions;
	ret = ev_io_start(loop, &q->efd_w, q->efd, EPOLLIN);
	if (ret < 0) {
		snprintf(err, errlen, "ublk: epoll: %s", strerror(-ret));
		close(q->efd);
		q->efd = -1;
		goto fail;
	}
	ret = bufpool_init(&q->pool, UBLK_POOL, UBLK_MAX_IO);
	if (ret < 0) {
		snprintf(err, errlen, "ublk: a %u MiB buffer pool: %s", UBLK_POOL >> 20,
			 strerror(-ret));
		goto fail;
	}
	q->pool_ok = true;
	q->tags = xcalloc((size_t)queues * depth, sizeof(*q->tags));
	q->st.per_queue = xcalloc(queues, sizeof(*q->st.per_queue));
	for (unsigned i = 0; i < queues; i++)
		for (unsigned k = 0; k < depth; k++) {
			struct ublk_tag *t = &q->tags[i * depth + k];
			t->q = q;
			t->qid = (uint16_t)i;
			t->tag = (uint16_t)k;
			send_cmd(t, false, -1);
		}
	/* Now: START_DEV and END_USER_RECOVERY wait until every tag fetched. */
	ev_defer_cancel(loop, &q->submit_d);
	ret = io_uring_submit(&q->ring);
	if (ret < 0) {
		snprintf(err, errlen, "ublk: sending the FETCH commands: %s", strerror(-ret));
		goto fail;
	}
	return q;
fail:
	ublk_queues_close(q);
	return NULL;
}

unsigned ublk_queues_busy(const struct ublk_queues *q)
{
	return q->busy;
}

void ublk_queues_when_idle(struct ublk_queues *q, void (*idle)(void *arg), void *arg)
{
	q->idle = idle;
	q->idle_arg = arg;
	become_idle(q);
}

void ublk_queues_close(struct ublk_queues *q)
{
	if (!q)
		return;
	ev_defer_cancel(q->loop, &q->submit_d);
	ev_defer_cancel(q->loop, &q->idle_d);
	if (q->efd >= 0) {
		ev_io_stop(q->loop, &q->efd_w);
		close(q->efd);
	}
	if (q->ring_ok)
		io_uring_queue_exit(&q->ring);
	for (unsigned i = 0; q->desc && i < q->nq; i++)
		if (q->desc[i])
			munmap((void *)q->desc[i], q->desc_len);
	free(q->desc);
	if (q->cfd >= 0)
		close(q->cfd);
	if (q->pool_ok)
		bufpool_fini(&q->pool);
	free(q->tags);
	free(q->st.per_queue);
	free(q);
}

void ublk_queues_add_stats(const struct ublk_queues *q, struct nbd_server_stats *st)
{
	st->reads += q->st.reads;
	st->writes += q->st.writes;
	st->flushes += q->st.flushes;
	st->trims += q->st.trims;
	st->zeroes += q->st.zeroes;
	st->bytes_read += q->st.read_bytes;
	st->bytes_written += q->st.write_bytes;
	st->direct_reads += q->st.direct_reads;
	st->errors += q->st.errors;
	st->read_ns += q->st.read_ns;
	st->write_ns += q->st.write_ns;
	st->inflight += q->busy;
	lathist_merge(&st->read_lat, &q->st.read_lat);
	lathist_merge(&st->write_lat, &q->st.write_lat);
	lathist_merge(&st->flush_lat, &q->st.flush_lat);
}

void ublk_queues_show(const struct ublk_queues *q, struct strbuf *out, const char *name)
{
	char p[256];
#define ATTR(leaf, v) (snprintf(p, sizeof(p), "%s/ublk_io/%s", name, leaf), sb_attr_num(out, p, v))
	ATTR("reads", q->st.reads);
	ATTR("writes", q->st.writes);
	ATTR("read_bytes", q->st.read_bytes);
	ATTR("write_bytes", q->st.write_bytes);
	ATTR("flushes", q->st.flushes);
	ATTR("discards", q->st.trims);
	ATTR("write_zeroes", q->st.zeroes);
	ATTR("errors", q->st.errors);
	ATTR("direct_reads", q->st.direct_reads);
	ATTR("buffer_waits", q->st.buffer_waits);
	ATTR("async_copies", q->st.async_copies);
	ATTR("in_flight", q->busy);
	ATTR("in_flight_peak", q->st.busy_peak);
	ATTR("buffer_pool_bytes", UBLK_POOL);
#undef ATTR
	struct strbuf line;
	sb_init(&line);
	for (unsigned i = 0; i < q->nq; i++)
		sb_printf(&line, "%s%llu", i ? " " : "", (unsigned long long)q->st.per_queue[i]);
	snprintf(p, sizeof(p), "%s/ublk_io/queue_requests", name);
	sb_attr_str(out, p, "%s", line.s);
	sb_free(&line);
}
