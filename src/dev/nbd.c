/* nbd.c - remote node: an NBD server reached through libnbd's async API,
 * driven by our event loop (no thread ever blocks on a node).
 *
 * libnbd forbids calling into a handle from its own callbacks, so completion
 * callbacks only park the io on a done list; the list is delivered from a
 * deferred step once libnbd has returned. A watchdog timer bounds connect
 * time and notices a node that stops answering (no completion for
 * io_timeout_s while requests are in flight): the socket is shut down, which
 * makes libnbd fail every in-flight request.
 */
#include <errno.h>
#include <libnbd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/ev.h"
#include "common/log.h"
#include "common/strbuf.h"
#include "common/util.h"
#include "dev.h"
#include "nbd/wire.h"

#define ZERO_BUF_SIZE (1u << 20)
#define WATCHDOG_NS   1000000000ull

enum nbd_state { ST_CONNECTING, ST_UP, ST_FAILED };

/* Per-io steps kept in io->dev_scratch[1] while in flight. */
enum { STEP_MAIN = 0, STEP_FLUSH_AFTER = 1, STEP_ZERO_FILL = 2 };

struct nbd_dev {
	struct dev dev;
	struct ev_loop *loop;
	struct nbd_handle *h;
	char *uri;
	enum nbd_state state;
	char error[512];
	struct ev_io w;
	bool watching;
	struct ev_timer watchdog;
	struct ev_deferred deliver;
	struct dev_io *done_head, *done_tail;
	struct dev_io *wait_head, *wait_tail; /* not yet sent: connecting, or ENOMEM */
	uint64_t inflight, last_progress_ns, connect_start_ns;
	struct dev_nbd_opts opts;
	dev_ready_fn ready;
	void *ready_arg;
	bool can_fua, can_flush, can_trim, can_zero, can_fast_zero, can_cache, can_extents;
	uint64_t sent, completed, failed;
};

static const void *zero_buf;

static void push(struct dev_io **head, struct dev_io **tail, struct dev_io *io)
{
	io->dev_next = NULL;
	if (*tail)
		(*tail)->dev_next = io;
	else
		*head = io;
	*tail = io;
}

static struct dev_io *pop(struct dev_io **head, struct dev_io **tail)
{
	struct dev_io *io = *head;
	if (io) {
		*head = io->dev_next;
		if (!*head)
			*tail = NULL;
		io->dev_next = NULL;
	}
	return io;
}

/* Finish io with err, from the deferred step (never inside libnbd). */
static void finish_later(struct nbd_dev *n, struct dev_io *io, int err)
{
	io->dev_scratch[0] = (uint64_t)err;
	push(&n->done_head, &n->done_tail, io);
	ev_defer(n->loop, &n->deliver);
}

static void check_handle(struct nbd_dev *n);

static void update_events(struct nbd_dev *n)
{
	if (!n->h || n->state == ST_FAILED)
		return;
	int fd = nbd_aio_get_fd(n->h);
	if (fd < 0)
		return;
	unsigned dir = (unsigned)nbd_aio_get_direction(n->h);
	uint32_t ev = 0;
	if (dir & LIBNBD_AIO_DIRECTION_READ)
		ev |= EPOLLIN;
	if (dir & LIBNBD_AIO_DIRECTION_WRITE)
		ev |= EPOLLOUT;
	if (!n->watching) {
		if (ev_io_start(n->loop, &n->w, fd, ev) == 0)
			n->watching = true;
	} else {
		ev_io_set(n->loop, &n->w, ev);
	}
}

static void fail_node(struct nbd_dev *n, const char *why)
{
	if (n->state == ST_FAILED)
		return;
	enum nbd_state was = n->state;
	n->state = ST_FAILED;
	snprintf(n->error, sizeof(n->error), "%s", why);
	log_warn("node %s: %s", n->uri, why);
	if (n->watching) {
		ev_io_stop(n->loop, &n->w);
		n->watching = false;
	}
	/* Make libnbd give up on everything in flight: its callbacks then
	 * park those ios on the done list with an error. */
	if (n->h) {
		int fd = nbd_aio_get_fd(n->h);
		if (fd >= 0)
			shutdown(fd, SHUT_RDWR);
		if (!nbd_aio_is_dead(n->h) && !nbd_aio_is_closed(n->h))
			nbd_aio_notify_read(n->h);
	}
	struct dev_io *io;
	while ((io = pop(&n->wait_head, &n->wait_tail)))
		finish_later(n, io, EIO);
	if (was == ST_CONNECTING && n->ready) {
		dev_ready_fn fn = n->ready;
		n->ready = NULL;
		fn(n->ready_arg, &n->dev, EIO, n->error);
	}
	ev_defer(n->loop, &n->deliver);
}

static int on_complete(void *user_data, int *error)
{
	struct dev_io *io = user_data;
	struct nbd_dev *n = (struct nbd_dev *)io->dev_scratch[0];
	int err = *error;
	/* A lost connection is an IO error to the layers above. */
	if (err == ENOTCONN || err == ECONNRESET || err == EPIPE || err == ESHUTDOWN)
		err = EIO;
	io->dev_scratch[0] = (uint64_t)err;
	push(&n->done_head, &n->done_tail, io);
	return 1;
}

static int on_extent(void *user_data, const char *ctx, uint64_t offset, uint32_t *entries,
		     size_t nr, int *error)
{
	struct dev_io *io = user_data;
	if (strcmp(ctx, LIBNBD_CONTEXT_BASE_ALLOCATION) != 0)
		return 0;
	uint32_t k = 0;
	/* nr counts 32-bit words: (length, flags) pairs take two each. */
	for (size_t i = 0; i + 1 < nr && k < io->ext_max; i += 2) {
		io->ext[k].len = entries[i];
		io->ext[k].flags = 0;
		if (entries[i + 1] & LIBNBD_STATE_HOLE)
			io->ext[k].flags |= DEV_EXT_HOLE;
		if (entries[i + 1] & LIBNBD_STATE_ZERO)
			io->ext[k].flags |= DEV_EXT_ZERO;
		k++;
	}
	io->ext_count = k;
	return 0;
}

/* Send io (or its current step). Returns false if libnbd refused it. */
static bool issue(struct nbd_dev *n, struct dev_io *io)
{
	nbd_completion_callback cb = {.callback = on_complete, .user_data = io};
	uint32_t fua = (io->flags & DEV_F_FUA) && n->can_fua ? LIBNBD_CMD_FLAG_FUA : 0;
	int64_t rc = 0;
	io->dev_scratch[0] = (uint64_t)(uintptr_t)n;
	if (io->dev_scratch[1] == STEP_FLUSH_AFTER) {
		rc = nbd_aio_flush(n->h, cb, 0);
		goto sent;
	}
	if (io->dev_scratch[1] >= STEP_ZERO_FILL) {
		/* scratch[1] - STEP_ZERO_FILL: bytes already zeroed by writes */
		uint64_t done = io->dev_scratch[1] - STEP_ZERO_FILL;
		uint64_t len = MIN((uint64_t)ZERO_BUF_SIZE, io->len - done);
		rc = nbd_aio_pwrite(n->h, zero_buf, len, io->off + done, cb, fua);
		goto sent;
	}
	switch (io->op) {
	case DEV_READ: rc = nbd_aio_pread(n->h, io->buf, io->len, io->off, cb, 0); break;
	case DEV_WRITE: rc = nbd_aio_pwrite(n->h, io->buf, io->len, io->off, cb, fua); break;
	case DEV_FLUSH:
		if (!n->can_flush)
			goto nothing;
		rc = nbd_aio_flush(n->h, cb, 0);
		break;
	case DEV_TRIM:
		if (!n->can_trim)
			goto nothing; /* trim is advisory */
		rc = nbd_aio_trim(n->h, io->len, io->off, cb, fua);
		break;
	case DEV_WRITE_ZEROES: {
		if (!n->can_zero || ((io->flags & DEV_F_FAST_ZERO) && !n->can_fast_zero)) {
			if (io->flags & DEV_F_FAST_ZERO) {
				finish_later(n, io, ENOTSUP);
				return true;
			}
			io->dev_scratch[1] = STEP_ZERO_FILL;
			return issue(n, io);
		}
		uint32_t f = fua;
		if (io->flags & DEV_F_NO_HOLE)
			f |= LIBNBD_CMD_FLAG_NO_HOLE;
		if (io->flags & DEV_F_FAST_ZERO)
			f |= LIBNBD_CMD_FLAG_FAST_ZERO;
		rc = nbd_aio_zero(n->h, io->len, io->off, cb, f);
		break;
	}
	case DEV_CACHE:
		if (!n->can_cache)
			goto nothing;
		rc = nbd_aio_cache(n->h, io->len, io->off, cb, 0);
		break;
	case DEV_BLOCK_STATUS:
		if (!n->can_extents || io->ext_max == 0) {
			io->ext[0].len = io->len;
			io->ext[0].flags = 0;
			io->ext_count = 1;
			goto nothing;
		}
		io->ext_count = 0;
		rc = nbd_aio_block_status(
		    n->h, MIN(io->len, (uint64_t)UINT32_MAX & ~4095u), io->off,
		    (nbd_extent_callback){.callback = on_extent, .user_data = io}, cb,
		    io->ext_max == 1 ? LIBNBD_CMD_FLAG_REQ_ONE : 0);
		break;
	}
sent:
	if (rc < 0)
		return false;
	n->sent++;
	return true;
nothing:
	finish_later(n, io, 0);
	return true;
}

static void submit_or_wait(struct nbd_dev *n, struct dev_io *io)
{
	if (n->state == ST_FAILED) {
		finish_later(n, io, EIO);
		return;
	}
	if (n->state == ST_CONNECTING || n->wait_head) {
		push(&n->wait_head, &n->wait_tail, io);
		return;
	}
	if (n->inflight == 0)
		n->last_progress_ns = ev_now_ns();
	n->inflight++;
	if (!issue(n, io)) {
		int err = nbd_get_errno();
		n->inflight--;
		if (err == ENOMEM) {
			/* libnbd could not allocate: retry from the watchdog. */
			push(&n->wait_head, &n->wait_tail, io);
			return;
		}
		if (nbd_aio_is_dead(n->h) || nbd_aio_is_closed(n->h)) {
			/* The connection went away between events. */
			finish_later(n, io, EIO);
			check_handle(n);
			return;
		}
		log_warn("node %s: %s", n->uri, nbd_get_error());
		finish_later(n, io, err ? err : EIO);
		return;
	}
}

static void nbd_submit(struct dev *d, struct dev_io *io)
{
	struct nbd_dev *n = container_of(d, struct nbd_dev, dev);
	io->dev_scratch[1] = STEP_MAIN;
	submit_or_wait(n, io);
	update_events(n);
	if (n->done_head)
		ev_defer(n->loop, &n->deliver);
}

static void flush_waiting(struct nbd_dev *n)
{
	struct dev_io *head = n->wait_head;
	n->wait_head = n->wait_tail = NULL;
	while (head) {
		struct dev_io *io = head;
		head = io->dev_next;
		submit_or_wait(n, io);
	}
	update_events(n);
}

/* Hand completed ios back, or move them on to their next step. */
static void deliver(struct ev_deferred *d)
{
	struct nbd_dev *n = container_of(d, struct nbd_dev, deliver);
	struct dev_io *io;
	bool more = false;
	while ((io = pop(&n->done_head, &n->done_tail))) {
		int err = (int)io->dev_scratch[0];
		if (err)
			n->failed++;
		n->completed++;
		n->last_progress_ns = ev_now_ns();
		if (n->inflight)
			n->inflight--;
		if (!err && n->state == ST_UP) {
			/* Multi-step ops: FUA emulated by a flush, zeroes by writes. */
			if (io->op == DEV_WRITE && (io->flags & DEV_F_FUA) && !n->can_fua &&
			    io->dev_scratch[1] == STEP_MAIN && n->can_flush) {
				io->dev_scratch[1] = STEP_FLUSH_AFTER;
				submit_or_wait(n, io);
				more = true;
				continue;
			}
			if (io->dev_scratch[1] >= STEP_ZERO_FILL) {
				uint64_t done = io->dev_scratch[1] - STEP_ZERO_FILL;
				done += MIN((uint64_t)ZERO_BUF_SIZE, io->len - done);
				if (done < io->len) {
					io->dev_scratch[1] = STEP_ZERO_FILL + done;
					submit_or_wait(n, io);
					more = true;
					continue;
				}
			}
		}
		io->done(io, err);
	}
	if (more)
		update_events(n);
}

static void became_ready(struct nbd_dev *n)
{
	struct nbd_handle *h = n->h;
	int64_t size = nbd_get_size(h);
	if (size <= 0) {
		fail_node(n, "node reports no size");
		return;
	}
	n->dev.size = (uint64_t)size;
	n->can_fua = nbd_can_fua(h) == 1;
	n->can_flush = nbd_can_flush(h) == 1;
	n->can_trim = nbd_can_trim(h) == 1;
	n->can_zero = nbd_can_zero(h) == 1;
	n->can_fast_zero = nbd_can_fast_zero(h) == 1;
	n->can_cache = nbd_can_cache(h) == 1;
	n->can_extents = nbd_can_meta_context(h, LIBNBD_CONTEXT_BASE_ALLOCATION) == 1;
	bool ro = nbd_is_read_only(h) == 1;
	/* We emulate what the node lacks, so the storage can offer it all. */
	n->dev.caps = DEV_CAP_FLUSH | DEV_CAP_FUA | DEV_CAP_TRIM | DEV_CAP_ZERO | DEV_CAP_CACHE |
		      DEV_CAP_EXTENTS;
	if (n->can_fast_zero)
		n->dev.caps |= DEV_CAP_FAST_ZERO;
	if (nbd_can_multi_conn(h) == 1)
		n->dev.caps |= DEV_CAP_MULTI_CONN;
	if (ro)
		n->dev.caps |= DEV_CAP_READONLY;
	int64_t min = nbd_get_block_size(h, LIBNBD_SIZE_MINIMUM);
	int64_t max = nbd_get_block_size(h, LIBNBD_SIZE_MAXIMUM);
	n->dev.min_block = min > 0 ? (uint32_t)min : 1;
	n->dev.max_io = max > 0 ? (uint32_t)MIN(max, (int64_t)(32u << 20)) : (32u << 20);
	n->state = ST_UP;
	n->last_progress_ns = ev_now_ns();
	log_info("node %s: up, %lld bytes%s", n->uri, (long long)size, ro ? ", read-only" : "");
	if (n->ready) {
		dev_ready_fn fn = n->ready;
		n->ready = NULL;
		fn(n->ready_arg, &n->dev, 0, NULL);
	}
	flush_waiting(n);
}

static void check_handle(struct nbd_dev *n)
{
	if (n->state == ST_FAILED)
		return;
	if (nbd_aio_is_dead(n->h) || nbd_aio_is_closed(n->h)) {
		const char *e = nbd_get_error();
		fail_node(n, e && *e ? dev_nbd_error_cause(e) : "connection closed");
		return;
	}
	if (n->state == ST_CONNECTING && nbd_aio_is_ready(n->h))
		became_ready(n);
}

static void on_event(struct ev_io *w, uint32_t events)
{
	struct nbd_dev *n = container_of(w, struct nbd_dev, w);
	int rc = 0;
	unsigned dir = (unsigned)nbd_aio_get_direction(n->h);
	if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && (dir & LIBNBD_AIO_DIRECTION_READ))
		rc = nbd_aio_notify_read(n->h);
	else if ((events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) && (dir & LIBNBD_AIO_DIRECTION_WRITE))
		rc = nbd_aio_notify_write(n->h);
	if (rc < 0 || n->state == ST_CONNECTING || nbd_aio_is_dead(n->h) || nbd_aio_is_closed(n->h))
		check_handle(n);
	update_events(n);
	if (n->done_head)
		ev_defer(n->loop, &n->deliver);
}

static void on_watchdog(struct ev_timer *t)
{
	struct nbd_dev *n = container_of(t, struct nbd_dev, watchdog);
	uint64_t now = ev_now_ns();
	if (n->state == ST_FAILED && n->ready) {
		dev_ready_fn fn = n->ready;
		n->ready = NULL;
		fn(n->ready_arg, &n->dev, EIO, n->error);
		return;
	}
	if (n->state == ST_CONNECTING) {
		check_handle(n); /* it may have got there inside dev_nbd_open */
		if (n->state != ST_CONNECTING) {
			if (n->state == ST_UP)
				ev_timer_start(n->loop, &n->watchdog, WATCHDOG_NS);
			return;
		}
		update_events(n);
	}
	if (n->state == ST_CONNECTING &&
	    now - n->connect_start_ns > (uint64_t)n->opts.connect_timeout_s * 1000000000ull) {
		char why[128];
		snprintf(why, sizeof(why), "connect: timed out after %u s",
			 n->opts.connect_timeout_s);
		fail_node(n, why);
	} else if (n->state == ST_UP && n->inflight &&
		   now - n->last_progress_ns > (uint64_t)n->opts.io_timeout_s * 1000000000ull) {
		char why[160];
		snprintf(why, sizeof(why), "no reply for %u s with %llu requests in flight",
			 n->opts.io_timeout_s, (unsigned long long)n->inflight);
		fail_node(n, why);
	} else if (n->state == ST_UP && n->wait_head) {
		flush_waiting(n); /* retry after ENOMEM */
	}
	if (n->state != ST_FAILED)
		ev_timer_start(n->loop, &n->watchdog, WATCHDOG_NS);
}

static void nbd_destroy(struct dev *d)
{
	struct nbd_dev *n = container_of(d, struct nbd_dev, dev);
	if (n->watching)
		ev_io_stop(n->loop, &n->w);
	ev_timer_stop(n->loop, &n->watchdog);
	ev_defer_cancel(n->loop, &n->deliver);
	if (n->h)
		nbd_close(n->h);
	/* Nothing may be in flight, but ios parked for delivery still get it. */
	struct dev_io *io;
	while ((io = pop(&n->done_head, &n->done_tail)))
		io->done(io, EIO);
	while ((io = pop(&n->wait_head, &n->wait_tail)))
		io->done(io, EIO);
	free(n->uri);
	free(n->dev.desc);
	free(n);
}

static void nbd_show(struct dev *d, struct strbuf *out, const char *prefix)
{
	struct nbd_dev *n = container_of(d, struct nbd_dev, dev);
	char p[512];
	snprintf(p, sizeof(p), "%s/state", prefix);
	sb_attr_str(out, p, "%s", dev_nbd_state(d));
	snprintf(p, sizeof(p), "%s/uri", prefix);
	sb_attr_str(out, p, "%s", n->uri);
	if (n->state == ST_FAILED) {
		snprintf(p, sizeof(p), "%s/error", prefix);
		sb_attr_str(out, p, "%s", n->error);
	}
}

static const struct dev_ops nbd_ops = {
    .kind = "nbd",
    .submit = nbd_submit,
    .destroy = nbd_destroy,
    .show = nbd_show,
};

const char *dev_nbd_error_cause(const char *e)
{
	if (e && !strncmp(e, "nbd_", 4)) {
		const char *colon = strstr(e, ": ");
		if (colon)
			return colon + 2;
	}
	return e ? e : "unknown error";
}

const char *dev_nbd_state(struct dev *d)
{
	struct nbd_dev *n = container_of(d, struct nbd_dev, dev);
	switch (n->state) {
	case ST_CONNECTING: return "connecting";
	case ST_UP: return "up";
	default: return "failed";
	}
}

struct dev *dev_nbd_open(struct ev_loop *loop, const char *uri, const struct dev_nbd_opts *opts,
			 dev_ready_fn ready, void *arg)
{
	if (!zero_buf) {
		void *z = calloc(1, ZERO_BUF_SIZE);
		if (!z)
			abort();
		zero_buf = z;
	}
	struct nbd_dev *n = xcalloc(1, sizeof(*n));
	n->dev.ops = &nbd_ops;
	n->dev.loop = loop;
	n->dev.min_block = 1;
	n->dev.max_io = 32u << 20;
	n->dev.desc = nbd_uri_describe(uri);
	n->loop = loop;
	n->uri = xstrdup(uri);
	n->ready = ready;
	n->ready_arg = arg;
	n->opts.connect_timeout_s = opts && opts->connect_timeout_s ? opts->connect_timeout_s : 10;
	n->opts.io_timeout_s = opts && opts->io_timeout_s ? opts->io_timeout_s : 30;
	n->w.fn = on_event;
	n->watchdog.fn = on_watchdog;
	n->deliver.fn = deliver;
	n->state = ST_CONNECTING;
	n->connect_start_ns = ev_now_ns();

	n->h = nbd_create();
	if (!n->h) {
		snprintf(n->error, sizeof(n->error), "%s", nbd_get_error());
		n->state = ST_FAILED;
	} else {
		nbd_set_pread_initialize(n->h, false); /* our buffers need no scrubbing */
		nbd_add_meta_context(n->h, LIBNBD_CONTEXT_BASE_ALLOCATION);
		if (nbd_aio_connect_uri(n->h, uri) < 0) {
			snprintf(n->error, sizeof(n->error), "%s",
				 dev_nbd_error_cause(nbd_get_error()));
			n->state = ST_FAILED;
		} else {
			update_events(n);
		}
	}
	/* `ready` must never run inside this call: whatever the connection
	 * already reached is looked at from the timer, immediately. */
	ev_timer_start(loop, &n->watchdog, 0);
	return &n->dev;
}
