/* nbd.c - remote node device: requests on the wire.
 *
 * Our own NBD client, because a storage lives or dies by its per-request
 * cost on the node path: requests submitted during one loop turn leave in
 * one sendmsg (headers and write payloads gathered, no copy), and replies
 * are read in 256 KiB gulps and parsed many per recv; only a large read
 * payload is received straight into the caller's buffer. Each request owns
 * a slot from a fixed table (NBD_SLOTS); when they are all taken, further
 * IO waits in FIFO order, so nothing is allocated on the IO path.
 *
 * nbds:// nodes: the same, through GnuTLS records (at most 16 KiB each):
 * small requests are gathered into one record, large payloads are sent
 * from their own buffers, and bytes GnuTLS decrypted ahead are read again
 * from the loop, since epoll cannot announce them.
 *
 * The connection's life (connect, handshake, reconnect, timeouts) is in
 * nbd_conn.c. Requests stay on the active list, in issue order, until their
 * reply arrives: when a connection is lost they are all resent, in that
 * order, on the next one.
 *
 * Spliced payloads (DEV_F_PIPE, plaintext only): a read reply's payload
 * goes from the socket into a pipe the caller then owns, and a write's
 * from the caller's pipe into the socket, tee'd first so that the caller's
 * pipe still holds it for a resend. Neither passes through our memory.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/connect_timeout.h"
#include "common/log.h"
#include "common/pipepool.h"
#include "common/strbuf.h"
#include "common/util.h"
#include "nbd/proto.h"
#include "nbd/wire.h"
#include "nbd_int.h"

#define ZERO_BUF_SIZE (1u << 20)
#define BIG_PIECE     (1u << 30) /* TRIM / WRITE_ZEROES / CACHE per request */
/* A reply whose payload is smaller than this is gathered in rbuf rather
 * than received on its own: it batches with the replies behind it. */
#define DIRECT_MIN (64u << 10)

/* What a slot's current request is doing for its io. */
enum { STEP_MAIN, STEP_FLUSH_AFTER, STEP_ZERO_FILL };

static const void *zero_buf;

static void io_push(struct dev_io **head, struct dev_io **tail, struct dev_io *io)
{
	io->dev_next = NULL;
	if (*tail)
		(*tail)->dev_next = io;
	else
		*head = io;
	*tail = io;
}

static struct dev_io *io_pop(struct dev_io **head, struct dev_io **tail)
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

/* Finish io from a deferred step: for ios that never reach the wire, and
 * for failures decided by the connection code (never inside its stack). */
static void finish_later(struct nbd_dev *n, struct dev_io *io, int err)
{
	io->dev_scratch[0] = (uint64_t)err;
	io_push(&n->done_head, &n->done_tail, io);
	ev_defer(n->loop, &n->deliver_work);
}

static void deliver(struct ev_deferred *d)
{
	struct nbd_dev *n = container_of(d, struct nbd_dev, deliver_work);
	struct dev_io *io;
	while ((io = io_pop(&n->done_head, &n->done_tail))) {
		int err = (int)io->dev_scratch[0];
		n->completed++;
		if (err)
			n->failed++;
		io->done(io, err);
	}
}

/* ---- slots ---- */

static void active_append(struct nbd_dev *n, struct slot *s)
{
	s->next = NULL;
	s->prev = n->active_tail;
	if (n->active_tail)
		n->active_tail->next = s;
	else
		n->active_head = s;
	n->active_tail = s;
	s->sent = false;
	if (!n->unsent) {
		n->unsent = s;
		n->send_off = 0;
	}
	n->nactive++;
}

static void active_unlink(struct nbd_dev *n, struct slot *s)
{
	if (n->unsent == s) {
		n->unsent = s->next;
		n->send_off = 0;
	}
	if (s->prev)
		s->prev->next = s->next;
	else
		n->active_head = s->next;
	if (s->next)
		s->next->prev = s->prev;
	else
		n->active_tail = s->prev;
	s->prev = s->next = NULL;
	n->nactive--;
}

static void slot_free(struct nbd_dev *n, struct slot *s)
{
	s->io = NULL;
	s->next = n->free_slots;
	n->free_slots = s;
}

static bool piecewise(const struct slot *s)
{
	enum dev_op op = s->io->op;
	return s->step == STEP_ZERO_FILL ||
	       (s->step == STEP_MAIN &&
		(op == DEV_TRIM || op == DEV_WRITE_ZEROES || op == DEV_CACHE));
}

/* FUA on a node without it: a flush once the data is written. */
static bool needs_flush_after(const struct nbd_dev *n, const struct dev_io *io)
{
	return (io->flags & DEV_F_FUA) && !n->can_fua && n->can_flush &&
	       (io->op == DEV_WRITE || io->op == DEV_WRITE_ZEROES || io->op == DEV_TRIM);
}

static void one_extent(struct dev_io *io)
{
	io->ext[0].len = io->len;
	io->ext[0].flags = 0;
	io->ext_count = 1;
}

/* Fill s's next request from its io. Returns false when the io needs no
 * (more) requests; *err then says how it ends. What the node lacks is
 * emulated, so a storage can offer every command whatever its nodes are. */
static bool prepare(struct nbd_dev *n, struct slot *s, int *err)
{
	struct dev_io *io = s->io;
	uint16_t fua = (io->flags & DEV_F_FUA) && n->can_fua ? NBD_CMD_FLAG_FUA : 0;
	uint64_t left = io->len - s->progress;
	s->payload = NULL;
	s->pipe = NULL;
	s->payload_len = 0;
	s->cflags = 0;
	s->off = io->off + s->progress;
	*err = 0;
	if (s->step == STEP_FLUSH_AFTER) {
		s->cmd = NBD_CMD_FLUSH, s->off = 0, s->len = 0;
	} else if (s->step == STEP_ZERO_FILL) {
		s->cmd = NBD_CMD_WRITE;
		s->len = (uint32_t)MIN(left, (uint64_t)ZERO_BUF_SIZE);
		s->payload = zero_buf, s->payload_len = s->len, s->cflags = fua;
	} else {
		switch (io->op) {
		case DEV_READ: s->cmd = NBD_CMD_READ, s->len = (uint32_t)io->len; break;
		case DEV_WRITE:
			s->cmd = NBD_CMD_WRITE, s->len = (uint32_t)io->len;
			s->payload = io->buf, s->payload_len = s->len, s->cflags = fua;
			if ((io->flags & DEV_F_PIPE) && n->spipe && !n->tls)
				s->pipe = io->pipe, s->payload = NULL;
			break;
		case DEV_FLUSH:
			if (!n->can_flush)
				return false;
			s->cmd = NBD_CMD_FLUSH, s->off = 0, s->len = 0;
			break;
		case DEV_TRIM:
			if (!n->can_trim)
				return false; /* trim is advisory */
			s->cmd = NBD_CMD_TRIM, s->cflags = fua;
			s->len = (uint32_t)MIN(left, (uint64_t)BIG_PIECE);
			break;
		case DEV_WRITE_ZEROES:
			if (!n->can_zero || ((io->flags & DEV_F_FAST_ZERO) && !n->can_fast_zero)) {
				if (io->flags & DEV_F_FAST_ZERO) {
					*err = ENOTSUP;
					return false;
				}
				s->step = STEP_ZERO_FILL;
				return prepare(n, s, err);
			}
			s->cmd = NBD_CMD_WRITE_ZEROES, s->cflags = fua;
			if (io->flags & DEV_F_NO_HOLE)
				s->cflags |= NBD_CMD_FLAG_NO_HOLE;
			if (io->flags & DEV_F_FAST_ZERO)
				s->cflags |= NBD_CMD_FLAG_FAST_ZERO;
			s->len = (uint32_t)MIN(left, (uint64_t)BIG_PIECE);
			break;
		case DEV_CACHE:
			if (!n->can_cache)
				return false;
			s->cmd = NBD_CMD_CACHE;
			s->len = (uint32_t)MIN(left, (uint64_t)BIG_PIECE);
			break;
		case DEV_BLOCK_STATUS:
			if (!n->base_alloc || io->ext_max == 0) {
				one_extent(io);
				return false;
			}
			s->cmd = NBD_CMD_BLOCK_STATUS;
			s->len = (uint32_t)MIN(io->len, (uint64_t)(UINT32_MAX & ~4095u));
			if (io->ext_max == 1)
				s->cflags = NBD_CMD_FLAG_REQ_ONE;
			io->ext_count = 0;
			break;
		case DEV_CSUM:
			/* Extents of dst:csum-4k, expanded to one sum per block
			 * (csum_chunk); a prefix of the range is enough. */
			if (!n->csum || io->csum_max == 0) {
				*err = ENOTSUP;
				return false;
			}
			s->cmd = NBD_CMD_BLOCK_STATUS;
			s->len =
			    (uint32_t)MIN(MIN(io->len, (uint64_t)io->csum_max * DEV_CSUM_BLOCK),
					  (uint64_t)(UINT32_MAX & ~4095u));
			io->csum_count = 0;
			break;
		}
	}
	s->cookie = ((uint64_t)++n->gen << 32) | (uint64_t)(s - n->slots);
	be32_write(s->hdr, NBD_REQUEST_MAGIC);
	be16_write(s->hdr + 4, s->cflags);
	be16_write(s->hdr + 6, s->cmd);
	be64_write(s->hdr + 8, s->cookie);
	be64_write(s->hdr + 16, s->off);
	be32_write(s->hdr + 24, s->len);
	s->err = 0;
	return true;
}

void nbd_node_kick_send(struct nbd_dev *n)
{
	if (n->phase == CONN_READY && n->unsent)
		ev_defer(n->loop, &n->send_work);
}

/* Put io on the wire in slot s (or finish it if it needs no request). */
static void start_io(struct nbd_dev *n, struct slot *s, struct dev_io *io)
{
	s->io = io;
	s->step = STEP_MAIN;
	s->progress = 0;
	int err;
	if (!prepare(n, s, &err)) {
		slot_free(n, s);
		finish_later(n, io, err);
		return;
	}
	n->sent++;
	active_append(n, s);
	nbd_node_kick_send(n);
}

/* Freed slots go to the ios waiting for one, oldest first. A node never
 * up yet keeps them all waiting: a request is built from what the node
 * can do (FUA, flush, trim), which only its handshake tells. */
static void pump_waiters(struct nbd_dev *n)
{
	while (n->free_slots && n->wait_head && n->state != ST_FAILED && !n->never_up) {
		struct slot *s = n->free_slots;
		n->free_slots = s->next;
		start_io(n, s, io_pop(&n->wait_head, &n->wait_tail));
	}
}

/* The label read goes first on a new connection, ahead of the requests
 * to resend, and alone until it is answered (gather, do_send). */
void nbd_node_verify_start(struct nbd_dev *n)
{
	struct slot *s = n->vslot;
	const struct dev_ident *id = n->opts.ident;
	memset(&n->vio, 0, sizeof(n->vio));
	n->vio.op = DEV_READ;
	n->vio.off = id->off;
	n->vio.len = id->len;
	n->vio.buf = n->vbuf;
	s->io = &n->vio;
	s->step = STEP_MAIN;
	s->progress = 0;
	int err;
	prepare(n, s, &err);
	s->sent = false;
	s->prev = NULL;
	s->next = n->active_head;
	if (n->active_head)
		n->active_head->prev = s;
	else
		n->active_tail = s;
	n->active_head = s;
	n->unsent = s;
	n->send_off = 0;
	n->nactive++;
	nbd_node_kick_send(n);
}

void nbd_node_verify_cancel(struct nbd_dev *n)
{
	if (!n->vslot || !nbd_node_verifying(n))
		return;
	active_unlink(n, n->vslot);
	n->vslot->io = NULL;
}

/* Until the label is taken, nothing but its read goes out. */
static bool may_send(const struct nbd_dev *n)
{
	return n->unsent && (!nbd_node_verifying(n) || n->unsent == n->vslot);
}

static void nbd_submit(struct dev *d, struct dev_io *io)
{
	struct nbd_dev *n = container_of(d, struct nbd_dev, dev);
	if (n->state == ST_FAILED) {
		finish_later(n, io, EIO);
		return;
	}
	struct slot *s = n->free_slots;
	if (!s || n->wait_head || n->never_up) {
		io_push(&n->wait_head, &n->wait_tail, io);
		return;
	}
	n->free_slots = s->next;
	start_io(n, s, io);
}

/* The reply to s's request is complete. */
static void slot_complete(struct nbd_dev *n, struct slot *s, int err)
{
	struct dev_io *io = s->io;
	active_unlink(n, s);
	if (s == n->vslot) {
		s->io = NULL;
		nbd_conn_verified(n, err);
		return;
	}
	if (!err) {
		bool more = false;
		if (piecewise(s)) {
			s->progress += s->len;
			more = s->progress < io->len;
		}
		if (!more && s->step != STEP_FLUSH_AFTER && needs_flush_after(n, io)) {
			s->step = STEP_FLUSH_AFTER;
			more = true;
		}
		if (more) {
			if (prepare(n, s, &err)) {
				active_append(n, s);
				nbd_node_kick_send(n);
				return;
			}
		}
	}
	if (io->op == DEV_READ && io->pipe && err) {
		spipe_put(io->pipe); /* its bytes are not the answer */
		io->pipe = NULL;
	}
	if (!err && (io->op == DEV_READ || io->op == DEV_WRITE)) {
		if (io->op == DEV_READ ? io->pipe != NULL : s->pipe != NULL)
			n->spliced_bytes += io->len;
		else
			n->copied_bytes += io->len;
	}
	if (!err && io->op == DEV_BLOCK_STATUS && io->ext_count == 0)
		one_extent(io);
	if (io->op == DEV_CSUM && !err && io->csum_count == 0) {
		/* A reply without our context's chunk: the server (after a
		 * reconnect, maybe another one) does not offer it any more,
		 * or got it wrong. */
		if (n->csum)
			log_warn("node %s: BLOCK_STATUS at %llu+%llu answered without its "
				 "dst:csum-4k chunk",
				 n->uri_str, (unsigned long long)io->off,
				 (unsigned long long)io->len);
		err = n->csum ? EIO : ENOTSUP;
	} else if (io->op == DEV_CSUM && err && !n->csum) {
		err = ENOTSUP; /* resent to a server that no longer offers it */
	}
	slot_free(n, s);
	n->completed++;
	if (err)
		n->failed++;
	pump_waiters(n);
	io->done(io, err);
}

void nbd_node_first_up(struct nbd_dev *n)
{
	pump_waiters(n);
}

/* A read's payload half spliced into its pipe is read again, whole. */
static void drop_read_pipe(struct dev_io *io)
{
	if (io->op == DEV_READ && io->pipe) {
		spipe_put(io->pipe);
		io->pipe = NULL;
	}
}

void nbd_node_requeue_all(struct nbd_dev *n)
{
	for (struct slot *s = n->active_head; s; s = s->next) {
		s->sent = false;
		s->err = 0;
		drop_read_pipe(s->io);
		if (s->cmd == NBD_CMD_BLOCK_STATUS && s->io->op == DEV_CSUM)
			s->io->csum_count = 0;
		else if (s->cmd == NBD_CMD_BLOCK_STATUS)
			s->io->ext_count = 0;
	}
	n->unsent = n->active_head;
	n->send_off = 0;
	n->send_blocked = false;
	n->rpos = n->rlen = 0;
	n->direct_left = 0;
	n->direct_slot = NULL;
	n->pipe_left = 0;
	n->hdr_only = false;
	if (n->spipe)
		spipe_drop(n->spipe); /* a payload half sent: tee'd again */
}

void nbd_node_fail_all(struct nbd_dev *n, int err)
{
	struct slot *s;
	while ((s = n->active_head)) {
		struct dev_io *io = s->io;
		active_unlink(n, s);
		slot_free(n, s);
		drop_read_pipe(io);
		finish_later(n, io, err);
	}
	struct dev_io *io;
	while ((io = io_pop(&n->wait_head, &n->wait_tail)))
		finish_later(n, io, err);
}

/* ---- sending ---- */

void nbd_node_update_events(struct nbd_dev *n)
{
	if (n->fd < 0)
		return;
	uint32_t want = EPOLLIN;
	if (n->phase == CONN_CONNECT)
		want = EPOLLOUT;
	else if (n->phase == CONN_HANDSHAKE && n->hs_out_sent < n->hs.out_len)
		want = EPOLLOUT;
	else if (n->phase == CONN_TLS)
		want = n->tls_want_write ? EPOLLOUT : EPOLLIN;
	else if (n->phase == CONN_READY && n->send_blocked)
		want |= EPOLLOUT;
	if (want != n->wmask) {
		ev_io_set(n->loop, &n->w, want);
		n->wmask = want;
	}
}

ssize_t nbd_node_recv(struct nbd_dev *n, void *buf, size_t len)
{
	if (!n->tls)
		return recv(n->fd, buf, len, 0);
	return tls_recv(n->tls_sess, buf, len);
}

ssize_t nbd_node_send(struct nbd_dev *n, const void *buf, size_t len)
{
	if (!n->tls)
		return send(n->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	return tls_send(n->tls_sess, buf, len);
}

const char *nbd_node_io_error(const struct nbd_dev *n, int err)
{
	return n->tls && err == EPROTO ? tls_last_error() : strerror(err);
}

static void sent_bytes(struct nbd_dev *n, size_t r)
{
	uint64_t now = ev_now_ns();
	while (r > 0) {
		struct slot *s = n->unsent;
		size_t left = sizeof(s->hdr) + s->payload_len - n->send_off;
		if (r < left) {
			n->send_off += r;
			return;
		}
		r -= left;
		s->sent = true;
		s->sent_ns = now;
		n->unsent = s->next;
		n->send_off = 0;
	}
}

/* What is unsent, as iovecs in n->iov: headers and write payloads. */
static unsigned gather(struct nbd_dev *n)
{
	unsigned cnt = 0;
	n->gather_pipe = false;
	size_t skip = n->send_off;
	for (struct slot *s = n->unsent; s && cnt + 2 <= NBD_MAX_IOV; s = s->next) {
		if (s != n->vslot && nbd_node_verifying(n))
			break;
		if (skip < sizeof(s->hdr)) {
			n->iov[cnt].iov_base = s->hdr + skip;
			n->iov[cnt++].iov_len = sizeof(s->hdr) - skip;
			skip = 0;
		} else {
			skip -= sizeof(s->hdr);
		}
		if (s->pipe) { /* its payload is spliced (send_pipe) */
			n->gather_pipe = true;
			break;
		}
		if (s->payload_len) {
			n->iov[cnt].iov_base = (uint8_t *)(uintptr_t)s->payload + skip;
			n->iov[cnt++].iov_len = s->payload_len - skip;
			skip = 0;
		}
	}
	return cnt;
}

/* The same through TLS: one record at a time. Bytes copied into the stage
 * count as sent (the slot may be answered only after they leave, and is
 * resent if the connection goes first). After EAGAIN the same record is
 * offered again, as GnuTLS wants: the stage does not change, and a large
 * payload at the head of the queue is still there. */
static void do_send_tls(struct nbd_dev *n)
{
	tls_cork(n->tls_sess);
	while (n->phase == CONN_READY && (may_send(n) || n->tls_stage_len)) {
		ssize_t r;
		if (n->tls_stage_len == 0) {
			unsigned cnt = gather(n);
			if (n->iov[0].iov_len >= TLS_RECORD_MAX) {
				r = tls_send(n->tls_sess, n->iov[0].iov_base, TLS_RECORD_MAX);
				if (r < 0)
					goto error;
				n->last_tx_ns = ev_now_ns();
				sent_bytes(n, (size_t)r);
				continue;
			}
			uint32_t fill = 0;
			for (unsigned i = 0; i < cnt && fill < TLS_RECORD_MAX; i++) {
				size_t take =
				    MIN(n->iov[i].iov_len, (size_t)(TLS_RECORD_MAX - fill));
				memcpy(n->tls_stage + fill, n->iov[i].iov_base, take);
				fill += (uint32_t)take;
			}
			sent_bytes(n, fill);
			n->tls_stage_len = fill;
		}
		r = tls_send(n->tls_sess, n->tls_stage, n->tls_stage_len);
		if (r < 0)
			goto error;
		n->last_tx_ns = ev_now_ns();
		n->tls_stage_len -= (uint32_t)r;
		if (n->tls_stage_len)
			memmove(n->tls_stage, n->tls_stage + r, n->tls_stage_len);
	}
	if (n->phase != CONN_READY)
		return;
	/* The gathered records leave now, or when the socket has room. */
	int rc = tls_uncork(n->tls_sess);
	if (rc < 0) {
		nbd_conn_lost(n, "send: %s", nbd_node_io_error(n, errno));
		return;
	}
	n->send_blocked = rc > 0;
	nbd_node_update_events(n);
	return;
error:
	if (errno == EAGAIN || errno == EINTR) {
		if (tls_uncork(n->tls_sess) < 0) {
			nbd_conn_lost(n, "send: %s", nbd_node_io_error(n, errno));
			return;
		}
		n->send_blocked = true;
		nbd_node_update_events(n);
		return;
	}
	nbd_conn_lost(n, "send: %s", nbd_node_io_error(n, errno));
}

/* The payload of s, a spliced write whose header is out: tee'd from the
 * caller's pipe into ours once, then spliced into the socket as it takes
 * it. The caller's pipe keeps the bytes: a resend tees them again. False
 * when the socket is full or the connection lost. */
static bool send_pipe(struct nbd_dev *n, struct slot *s)
{
	if (n->spipe->len == 0 && n->send_off != sizeof(s->hdr)) {
		nbd_conn_lost(n, "splice: lost track of a write payload");
		return false;
	}
	if (n->spipe->len == 0 && spipe_tee(s->pipe, n->spipe) < 0) {
		/* Only a pipe that lies about its room gets here: send a copy. */
		log_warn("node %s: splice: tee of a %u-byte write payload: %s; copying it",
			 n->uri_str, s->payload_len, strerror(errno));
		spipe_drop(n->spipe);
		if (spipe_copy_out(s->pipe, s->io->buf) < 0) {
			nbd_conn_lost(n, "splice: a write payload's pipe: %s", strerror(errno));
			return false;
		}
		s->pipe = NULL;
		s->payload = s->io->buf;
		return true;
	}
	ssize_t r = spipe_to_fd(n->spipe, n->fd, n->spipe->len, s->next != NULL);
	if (r < 0) {
		if (errno == EINTR)
			return true;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			n->send_blocked = true;
			return false;
		}
		nbd_conn_lost(n, "send: %s", strerror(errno));
		return false;
	}
	n->last_tx_ns = ev_now_ns();
	sent_bytes(n, (size_t)r);
	return true;
}

static void do_send(struct nbd_dev *n)
{
	n->send_blocked = false;
	if (n->tls) {
		do_send_tls(n);
		return;
	}
	while (may_send(n) && n->phase == CONN_READY) {
		struct slot *u = n->unsent;
		if (u->pipe && n->send_off >= sizeof(u->hdr)) {
			if (!send_pipe(n, u))
				break;
			continue;
		}
		unsigned cnt = gather(n);
		struct msghdr msg = {.msg_iov = n->iov, .msg_iovlen = cnt};
		/* A spliced payload follows the last header: one segment. */
		int more = n->gather_pipe ? MSG_MORE : 0;
		ssize_t r = sendmsg(n->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT | more);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				n->send_blocked = true;
				break;
			}
			nbd_conn_lost(n, "send: %s", strerror(errno));
			return;
		}
		n->last_tx_ns = ev_now_ns();
		sent_bytes(n, (size_t)r);
	}
	nbd_node_update_events(n);
}

static void send_deferred(struct ev_deferred *d)
{
	struct nbd_dev *n = container_of(d, struct nbd_dev, send_work);
	if (!n->send_blocked)
		do_send(n);
}

/* ---- receiving ---- */

static struct slot *lookup(struct nbd_dev *n, uint64_t cookie)
{
	uint64_t idx = cookie & 0xffffffffu;
	if (idx > NBD_SLOTS) /* slots[NBD_SLOTS]: the label read */
		return NULL;
	struct slot *s = &n->slots[idx];
	return s->io && s->sent && s->cookie == cookie ? s : NULL;
}

/* Can the read payload of s, len bytes, go into a pipe? Then it has one. */
static bool pipe_payload(struct nbd_dev *n, struct slot *s, size_t len)
{
	struct dev_io *io = s->io;
	if (!(io->flags & DEV_F_PIPE) || io->op != DEV_READ || n->tls || len != io->len ||
	    len < SPIPE_MIN || len > SPIPE_CAP || io->pipe)
		return false;
	io->pipe = spipe_get();
	return io->pipe != NULL;
}

/* The len payload bytes of s go into its io's pipe: what rbuf holds now
 * (a copy, of what was read ahead), the rest spliced from the socket. */
static void start_pipe(struct nbd_dev *n, struct slot *s, size_t len, bool done)
{
	struct spipe *p = s->io->pipe;
	size_t c = MIN(n->rlen - n->rpos, len);
	if (c && spipe_from_buf(p, n->rbuf + n->rpos, c) != (ssize_t)c) {
		nbd_conn_lost(n, "splice: a read payload's pipe: %s", strerror(errno));
		return;
	}
	n->rpos += c;
	if (c < len) {
		n->pipe_left = len - c;
		n->direct_slot = s;
		n->direct_then_done = done;
	} else if (done) {
		slot_complete(n, s, s->err);
	}
}

/* len payload bytes of s go to dst: what rbuf holds now, the rest straight
 * from the socket. Then, if `done`, the reply is complete. */
static void start_payload(struct nbd_dev *n, struct slot *s, uint8_t *dst, size_t len, bool done)
{
	n->hdr_only = false; /* replies that are not spliced: read in gulps */
	size_t c = MIN(n->rlen - n->rpos, len);
	memcpy(dst, n->rbuf + n->rpos, c);
	n->rpos += c;
	if (c < len) {
		n->direct = dst + c;
		n->direct_left = len - c;
		n->direct_slot = s;
		n->direct_then_done = done;
	} else if (done) {
		slot_complete(n, s, s->err);
	}
}

/* A dst:csum-4k chunk for a DEV_CSUM: each extent's status is the sum of
 * every block it touches. Extents run on from the request's offset (a
 * block's start), each ending at a block boundary, or at the device's end
 * (its short last block), or at the request's end; none is empty or goes
 * past the request. Anything else is the server's fault: EIO, said once
 * per reply with the node's name. */
static void csum_chunk(struct nbd_dev *n, struct slot *s, const uint8_t *p, uint32_t len)
{
	struct dev_io *io = s->io;
	if (io->csum_count || s->err)
		return; /* one chunk per context: a second one is ignored */
	uint64_t pos = s->off, end = s->off + s->len;
	uint32_t k = 0;
	const char *why = NULL;
	for (uint32_t i = 4; i + 8 <= len && k < io->csum_max; i += 8) {
		uint32_t elen = be32_read(p + i), sum = be32_read(p + i + 4);
		uint64_t eend = pos + elen;
		if (!elen) {
			why = "an empty extent";
			break;
		}
		if (eend > end) {
			why = "an extent past the request";
			break;
		}
		if (eend % DEV_CSUM_BLOCK && eend != n->dev.size && eend != end) {
			why = "an extent not ending at a block boundary";
			break;
		}
		/* Blocks [pos/B, ceil(eend/B)) relative to the request. */
		uint64_t first = (pos - s->off) / DEV_CSUM_BLOCK;
		uint64_t last = (eend - s->off + DEV_CSUM_BLOCK - 1) / DEV_CSUM_BLOCK;
		if (first != k) {
			why = "an extent starting inside a block";
			break;
		}
		for (uint64_t b = first; b < last && k < io->csum_max; b++)
			io->csum[k++] = sum;
		pos = eend;
	}
	if (!why && k == 0)
		why = "no extents";
	if (why) {
		log_warn("node %s: malformed dst:csum-4k reply to BLOCK_STATUS at %llu+%u: %s",
			 n->uri_str, (unsigned long long)s->off, s->len, why);
		s->err = EIO;
		io->csum_count = 0;
		return;
	}
	io->csum_count = k;
}

static void extents_chunk(struct nbd_dev *n, struct slot *s, const uint8_t *p, uint32_t len)
{
	struct dev_io *io = s->io;
	/* Each op reads its own context's chunk and ignores the other's. */
	if (io->op == DEV_CSUM) {
		if (n->csum && be32_read(p) == n->csum_id)
			csum_chunk(n, s, p, len);
		return;
	}
	if (be32_read(p) != n->base_alloc_id)
		return;
	for (uint32_t i = 4; i + 8 <= len && io->ext_count < io->ext_max; i += 8) {
		uint32_t st = be32_read(p + i + 4);
		struct dev_extent *e = &io->ext[io->ext_count++];
		e->len = be32_read(p + i);
		e->flags = ((st & NBD_STATE_HOLE) ? DEV_EXT_HOLE : 0) |
			   ((st & NBD_STATE_ZERO) ? DEV_EXT_ZERO : 0);
	}
}

/* One structured chunk other than OFFSET_DATA, wholly in p[0..len).
 * Returns false on a protocol violation (the connection is then lost). */
static bool small_chunk(struct nbd_dev *n, struct slot *s, uint16_t type, const uint8_t *p,
			uint32_t len)
{
	struct dev_io *io = s->io;
	switch (type) {
	case NBD_REPLY_TYPE_NONE: return len == 0;
	case NBD_REPLY_TYPE_OFFSET_HOLE: {
		if (len != 12 || s->cmd != NBD_CMD_READ)
			return false;
		uint64_t off = be64_read(p);
		uint32_t hlen = be32_read(p + 8);
		if (off < s->off || off - s->off > s->len || hlen > s->len - (off - s->off))
			return false;
		memset((uint8_t *)io->buf + (off - io->off), 0, hlen);
		return true;
	}
	case NBD_REPLY_TYPE_BLOCK_STATUS:
		if (len < 4 || (len - 4) % 8 || s->cmd != NBD_CMD_BLOCK_STATUS)
			return false;
		extents_chunk(n, s, p, len);
		return true;
	default:
		if (!(type & 0x8000))
			return false; /* unknown informational chunk: we cannot skip safely */
		if (len < 6 || 6u + be16_read(p + 4) > len)
			return false;
		if (!s->err) {
			s->err = nbd_wire_to_errno(be32_read(p));
			if (!s->err)
				s->err = EIO;
			log_debug("node %s: %s at %llu+%u: error %d: %.*s", n->uri_str,
				  nbd_cmd_name(s->cmd), (unsigned long long)s->off, s->len, s->err,
				  (int)be16_read(p + 4), (const char *)p + 6);
		}
		return true;
	}
}

/* The node answered ESHUTDOWN: it is going away. As the spec asks, a soft
 * disconnect (NBD_CMD_DISC, best effort), then the connection is made
 * again and the request resent, like any other lost connection. */
static void node_shutting_down(struct nbd_dev *n)
{
	uint8_t disc[NBD_REQUEST_SIZE] = {0};
	be32_write(disc, NBD_REQUEST_MAGIC);
	be16_write(disc + 6, NBD_CMD_DISC);
	/* Only between whole requests: a half-sent one would garble it. */
	if (n->send_off == 0 && n->tls_stage_len == 0)
		(void)nbd_node_send(n, disc, sizeof(disc));
	nbd_conn_lost(n, "the node is shutting down");
}

/* Parse every complete reply in rbuf. Returns the bytes still needed for
 * the next one (0 when switching to a direct payload or after an error). */
static size_t parse(struct nbd_dev *n)
{
	while (n->phase == CONN_READY && !n->direct_left && !n->pipe_left) {
		size_t avail = n->rlen - n->rpos;
		const uint8_t *p = n->rbuf + n->rpos;
		if (avail < 4)
			return 4;
		uint32_t magic = be32_read(p);
		if (magic == NBD_SIMPLE_REPLY_MAGIC) {
			if (avail < NBD_SIMPLE_REPLY_SIZE)
				return NBD_SIMPLE_REPLY_SIZE;
			struct slot *s = lookup(n, be64_read(p + 8));
			if (!s) {
				nbd_conn_lost(n, "protocol error: reply to no request of ours");
				return 0;
			}
			uint32_t err = be32_read(p + 4);
			bool data = s->cmd == NBD_CMD_READ && err == 0;
			if (data && avail < NBD_SIMPLE_REPLY_SIZE + s->len && s->len < DIRECT_MIN)
				return NBD_SIMPLE_REPLY_SIZE + s->len;
			if (nbd_wire_to_errno(err) == ESHUTDOWN) {
				node_shutting_down(n);
				return 0;
			}
			n->rpos += NBD_SIMPLE_REPLY_SIZE;
			if (data && pipe_payload(n, s, s->len))
				start_pipe(n, s, s->len, true);
			else if (data)
				start_payload(n, s, s->io->buf, s->len, true);
			else {
				n->hdr_only = false;
				slot_complete(n, s, nbd_wire_to_errno(err));
			}
			continue;
		}
		if (magic != NBD_STRUCTURED_REPLY_MAGIC || !n->structured) {
			nbd_conn_lost(n, "protocol error: bad reply magic 0x%08x", magic);
			return 0;
		}
		if (avail < NBD_STRUCTURED_REPLY_SIZE)
			return NBD_STRUCTURED_REPLY_SIZE;
		uint16_t flags = be16_read(p + 4), type = be16_read(p + 6);
		uint32_t len = be32_read(p + 16);
		struct slot *s = lookup(n, be64_read(p + 8));
		if (!s) {
			nbd_conn_lost(n, "protocol error: reply to no request of ours");
			return 0;
		}
		bool done = flags & NBD_REPLY_FLAG_DONE;
		if (s->cmd == NBD_CMD_READ && s->io->pipe &&
		    (type == NBD_REPLY_TYPE_OFFSET_DATA || type == NBD_REPLY_TYPE_OFFSET_HOLE)) {
			/* The pipe has the whole read: this chunk overlaps it. */
			nbd_conn_lost(n, "protocol error: overlapping chunks in a read reply");
			return 0;
		}
		if (type == NBD_REPLY_TYPE_OFFSET_DATA) {
			if (avail < NBD_STRUCTURED_REPLY_SIZE + 8)
				return NBD_STRUCTURED_REPLY_SIZE + 8;
			uint64_t off = be64_read(p + 20);
			uint32_t dlen = len - 8;
			if (len < 8 || s->cmd != NBD_CMD_READ || off < s->off ||
			    off - s->off > s->len || dlen > s->len - (off - s->off)) {
				nbd_conn_lost(n, "protocol error: data chunk outside its read");
				return 0;
			}
			size_t whole = NBD_STRUCTURED_REPLY_SIZE + (size_t)len;
			if (avail < whole && dlen < DIRECT_MIN)
				return whole;
			n->rpos += NBD_STRUCTURED_REPLY_SIZE + 8;
			if (off == s->off && pipe_payload(n, s, dlen))
				start_pipe(n, s, dlen, done);
			else
				start_payload(n, s, (uint8_t *)s->io->buf + (off - s->io->off),
					      dlen, done);
			continue;
		}
		if (len > NBD_RBUF_SIZE - NBD_STRUCTURED_REPLY_SIZE) {
			nbd_conn_lost(n, "protocol error: reply chunk of %u bytes", len);
			return 0;
		}
		if (avail < NBD_STRUCTURED_REPLY_SIZE + len)
			return NBD_STRUCTURED_REPLY_SIZE + len;
		n->rpos += NBD_STRUCTURED_REPLY_SIZE + len;
		n->hdr_only = false;
		if (!small_chunk(n, s, type, p + NBD_STRUCTURED_REPLY_SIZE, len)) {
			nbd_conn_lost(n, "protocol error: bad reply chunk (type %u, %u bytes)",
				      type, len);
			return 0;
		}
		if (s->err == ESHUTDOWN) {
			node_shutting_down(n);
			return 0;
		}
		if (done)
			slot_complete(n, s, s->err);
	}
	return 0;
}

static bool recv_failed(struct nbd_dev *n, ssize_t r)
{
	if (r == 0) {
		nbd_conn_lost(n, "the node closed the connection");
		return true;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		return false;
	nbd_conn_lost(n, "receive: %s", nbd_node_io_error(n, errno));
	return true;
}

/* More of a read payload into its pipe. False: wait for the socket (or
 * the connection is lost). */
static bool recv_pipe(struct nbd_dev *n)
{
	struct slot *s = n->direct_slot;
	struct dev_io *io = s->io;
	ssize_t r = spipe_from_fd(io->pipe, n->fd, n->pipe_left);
	if (r < 0 && errno == EAGAIN) {
		/* Nothing to move: the socket is empty, or the pipe is full
		 * (a payload in more pieces than the pipe has slots). Then
		 * the rest is copied, behind what the pipe has. */
		if (!spipe_full_for(n->fd))
			return false;
		ssize_t got = spipe_unload(&io->pipe, io->buf);
		if (got < 0) {
			nbd_conn_lost(n, "splice: a read payload's pipe: %s", strerror(errno));
			return false;
		}
		n->direct = (uint8_t *)io->buf + got;
		n->direct_left = n->pipe_left;
		n->pipe_left = 0;
		return true;
	}
	if (r <= 0) {
		recv_failed(n, r);
		return false;
	}
	n->last_rx_ns = ev_now_ns();
	n->pipe_left -= (size_t)r;
	if (n->pipe_left)
		return true;
	n->direct_slot = NULL;
	n->hdr_only = true;
	if (n->direct_then_done)
		slot_complete(n, s, s->err);
	parse(n);
	return true;
}

static void do_recv(struct nbd_dev *n)
{
	/* Bounded rounds: a fast node must not starve the loop's other fds. */
	for (int round = 0; round < 16 && n->phase == CONN_READY; round++) {
		if (n->pipe_left) {
			if (!recv_pipe(n))
				return;
			continue;
		}
		if (n->direct_left) {
			ssize_t r = nbd_node_recv(n, n->direct, n->direct_left);
			if (r <= 0) {
				recv_failed(n, r);
				return;
			}
			n->last_rx_ns = ev_now_ns();
			n->direct += r;
			n->direct_left -= (size_t)r;
			if (n->direct_left)
				continue;
			struct slot *s = n->direct_slot;
			n->direct_slot = NULL;
			if (n->direct_then_done)
				slot_complete(n, s, s->err);
			parse(n);
			continue;
		}
		/* Keep the partial reply at the front so the next one fits. */
		if (n->rpos == n->rlen) {
			n->rpos = n->rlen = 0;
		} else if (n->rpos > 0 &&
			   (n->rlen - n->rpos < 4096 || n->rpos + n->rneed > NBD_RBUF_SIZE)) {
			memmove(n->rbuf, n->rbuf + n->rpos, n->rlen - n->rpos);
			n->rlen -= n->rpos;
			n->rpos = 0;
		}
		size_t space = NBD_RBUF_SIZE - n->rlen;
		if (n->hdr_only) {
			/* Read no further than the next reply's header: its
			 * payload may go to a pipe. */
			size_t have = n->rlen - n->rpos;
			size_t want =
			    MAX(n->rneed, (size_t)(n->structured ? NBD_STRUCTURED_REPLY_SIZE + 8
								 : NBD_SIMPLE_REPLY_SIZE));
			if (want > have)
				space = MIN(space, want - have);
		}
		ssize_t r = nbd_node_recv(n, n->rbuf + n->rlen, space);
		if (r <= 0) {
			recv_failed(n, r);
			return;
		}
		n->last_rx_ns = ev_now_ns();
		n->rlen += (size_t)r;
		n->rneed = parse(n);
		/* (TLS gives one record a call: only EAGAIN says it is drained.) */
		if ((size_t)r < space && !n->direct_left && !n->tls)
			return; /* drained: epoll tells us when there is more */
	}
	/* Out of rounds with bytes GnuTLS already holds: no epoll event
	 * will come for them, so the loop reads them next. */
	if (n->tls && n->phase == CONN_READY && tls_pending(n->tls_sess))
		ev_defer(n->loop, &n->recv_work);
}

static void recv_deferred(struct ev_deferred *d)
{
	struct nbd_dev *n = container_of(d, struct nbd_dev, recv_work);
	if (n->phase == CONN_READY)
		do_recv(n);
}

void nbd_node_on_io(struct ev_io *w, uint32_t events)
{
	struct nbd_dev *n = container_of(w, struct nbd_dev, w);
	if ((events & EPOLLOUT) && n->send_blocked)
		do_send(n);
	if (n->phase == CONN_READY && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		do_recv(n);
	if (n->phase == CONN_READY)
		nbd_node_update_events(n);
}

/* ---- the device ---- */

static void nbd_destroy(struct dev *d)
{
	struct nbd_dev *n = container_of(d, struct nbd_dev, dev);
	nbd_conn_close(n);
	ev_timer_stop(n->loop, &n->watchdog);
	ev_timer_stop(n->loop, &n->retry);
	ev_defer_cancel(n->loop, &n->send_work);
	ev_defer_cancel(n->loop, &n->ready_work);
	/* Nothing should be in flight; whatever is still here gets an answer,
	 * now (failing them queues the deferred delivery: take it back after). */
	nbd_node_fail_all(n, EIO);
	deliver(&n->deliver_work);
	ev_defer_cancel(n->loop, &n->deliver_work);
	if (n->ai)
		freeaddrinfo(n->ai);
	spipe_put(n->spipe);
	free(n->rbuf);
	free(n->tls_stage);
	free(n->slots);
	free(n->vbuf);
	free(n->uri_str);
	free(n->dev.desc);
	tls_creds_free(n->own_tls);
	free(n);
}

static void nbd_show(struct dev *d, struct strbuf *out, const char *prefix)
{
	struct nbd_dev *n = container_of(d, struct nbd_dev, dev);
	char p[512];
#define ATTR(leaf) (snprintf(p, sizeof(p), "%s/%s", prefix, leaf), p)
	sb_attr_str(out, ATTR("state"), "%s", dev_nbd_state(d));
	sb_attr_str(out, ATTR("uri"), "%s", n->uri_str);
	if (n->uri.tls)
		sb_attr_str(out, ATTR("tls"), "%s",
			    n->opts.tls ? tls_creds_kind(n->opts.tls) : "no credentials");
	if (n->opts.fence)
		sb_attr_str(out, ATTR("fencing"), "%s",
			    n->state != ST_UP ? "?"
			    : n->fenced	      ? "yes"
					      : "no (not a dst export: a request timeout does not "
						"reconnect a live connection)");
	if (n->opts.csum) /* a mirror leg: can verify compare sums here? */
		sb_attr_str(out, ATTR("csum"), "%s",
			    n->state != ST_UP ? "?"
			    : n->csum	      ? NBD_META_DST_CSUM
					      : "none (verify and resync read its data)");
	if (n->stalls)
		sb_attr_num(out, ATTR("stalls"), n->stalls);
	sb_attr_num(out, ATTR("reconnects"), n->reconnects);
	sb_attr_num(out, ATTR("resent"), n->resent);
	if (n->uri.tls)
		sb_attr_str(out, ATTR("splice"), "no (TLS: payloads are copied)");
	else if (n->spipe)
		sb_attr_str(out, ATTR("splice"), "yes");
	else
		sb_attr_str(out, ATTR("splice"), "no (%s: payloads are copied)",
			    spipe_refusal() ? spipe_refusal() : "no pipe to be had");
	sb_attr_num(out, ATTR("spliced_bytes"), n->spliced_bytes);
	sb_attr_num(out, ATTR("copied_bytes"), n->copied_bytes);
	if (n->state != ST_UP) {
		if (n->error[0])
			sb_attr_str(out, ATTR("error"), "%s", n->error);
		if (n->down_since_ns)
			sb_attr_num(out, ATTR("down_for"),
				    (ev_now_ns() - n->down_since_ns) / 1000000000ull);
		unsigned waiting = n->nactive;
		for (struct dev_io *io = n->wait_head; io; io = io->dev_next)
			waiting++;
		sb_attr_num(out, ATTR("waiting"), waiting);
	}
#undef ATTR
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
	if (n->refusal[0] && n->state != ST_UP)
		return "foreign";
	switch (n->state) {
	case ST_CONNECTING: return "connecting";
	case ST_UP: return "up";
	case ST_RECONNECTING: return n->never_up ? "connecting" : "reconnecting";
	default: return "failed";
	}
}

uint64_t dev_nbd_reconnects(struct dev *d)
{
	return container_of(d, struct nbd_dev, dev)->reconnects;
}

bool dev_nbd_answered(struct dev *d)
{
	struct nbd_dev *n = container_of(d, struct nbd_dev, dev);
	return n->answered;
}

const char *dev_nbd_description(struct dev *d)
{
	struct nbd_dev *n = container_of(d, struct nbd_dev, dev);
	return n->hs.description;
}

void dev_nbd_set_timeouts(struct dev *d, unsigned io_timeout_s, unsigned request_timeout_s)
{
	struct nbd_dev *n = container_of(d, struct nbd_dev, dev);
	n->opts.io_timeout_s = io_timeout_s;
	if (request_timeout_s)
		n->opts.request_timeout_s = request_timeout_s;
}

void dev_nbd_stop(struct dev *d)
{
	struct nbd_dev *n = container_of(d, struct nbd_dev, dev);
	if (n->state == ST_UP || n->given_up)
		return;
	n->given_up = true;
	n->state = ST_FAILED;
	ev_timer_stop(n->loop, &n->retry);
	nbd_conn_close(n);
	log_info("node %s: the storage stops; the %u requests waiting for it fail", n->uri_str,
		 n->nactive);
	nbd_node_fail_all(n, EIO);
}

static void report_ready(struct ev_deferred *d)
{
	struct nbd_dev *n = container_of(d, struct nbd_dev, ready_work);
	if (!n->ready)
		return;
	dev_ready_fn fn = n->ready;
	n->ready = NULL;
	fn(n->ready_arg, &n->dev, n->ready_err, n->ready_err ? n->error : NULL);
}

/* Credentials of the node's own, from its URI's TLS parameters: its files
 * replace the storage's; a user name or tls-verify-peer alone applies to
 * the storage's files. Plaintext URIs ignore them, as libnbd does. */
static struct tls_creds *uri_creds(struct nbd_dev *n, char *err, size_t errlen)
{
	const struct nbd_uri *u = &n->uri;
	const char *psk = u->tls_psk_file[0] ? u->tls_psk_file : NULL;
	const char *certs = u->tls_certificates[0] ? u->tls_certificates : NULL;
	const char *user = u->tls_username[0] ? u->tls_username : NULL;
	if (!psk && !certs) {
		psk = n->opts.tls_psk;
		certs = n->opts.tls_certs;
		if (!user)
			user = n->opts.tls_username;
	}
	if (!psk && !certs) {
		snprintf(err, errlen,
			 "TLS (nbds://) needs credentials: tls-psk-file= or tls-certificates= in "
			 "the URI, or the storage's (dst create or dst add --tls-psk FILE or "
			 "--tls-certs DIR)");
		return NULL;
	}
	char e[256];
	struct tls_creds *c =
	    tls_creds_client_verify(psk, user, certs, u->tls_verify_peer != 0, e, sizeof(e));
	if (!c)
		snprintf(err, errlen, "credentials from the URI: %s", e);
	else
		n->opts.tls = c;
	return c;
}

struct dev *dev_nbd_open(struct ev_loop *loop, const char *uri, const struct dev_nbd_opts *opts,
			 dev_ready_fn ready, void *arg)
{
	if (!zero_buf)
		zero_buf = xcalloc(1, ZERO_BUF_SIZE);
	struct nbd_dev *n = xcalloc(1, sizeof(*n));
	n->dev.ops = &nbd_ops;
	n->dev.loop = loop;
	n->dev.min_block = 1;
	n->dev.max_io = NBD_MAX_PAYLOAD;
	n->dev.desc = nbd_uri_describe(uri);
	n->loop = loop;
	n->uri_str = xstrdup(uri);
	n->fd = -1;
	n->ready = ready;
	n->ready_arg = arg;
	if (opts)
		n->opts = *opts;
	if (!n->opts.connect_timeout_s)
		n->opts.connect_timeout_s = connect_timeout_s(10);
	if (!n->opts.request_timeout_s)
		n->opts.request_timeout_s = 30;
	n->rbuf = xmalloc(NBD_RBUF_SIZE);
	n->slots = xcalloc(NBD_SLOTS + 1, sizeof(*n->slots));
	n->vslot = &n->slots[NBD_SLOTS]; /* never on the free list */
	if (n->opts.ident)
		n->vbuf = xmalloc(n->opts.ident->len);
	for (unsigned i = NBD_SLOTS; i-- > 0;)
		slot_free(n, &n->slots[i]);
	n->w.fn = nbd_conn_on_event;
	n->watchdog.fn = nbd_conn_watchdog;
	n->retry.fn = nbd_conn_retry;
	n->send_work.fn = send_deferred;
	n->deliver_work.fn = deliver;
	n->ready_work.fn = report_ready;
	n->recv_work.fn = recv_deferred;
	n->state = ST_CONNECTING;

	char err[300];
	if (nbd_uri_parse(uri, &n->uri, err, sizeof(err)) < 0) {
		snprintf(n->error, sizeof(n->error), "%s", err);
	} else if (n->uri.tls && nbd_uri_has_tls_params(&n->uri) &&
		   !(n->own_tls = uri_creds(n, err, sizeof(err)))) {
		snprintf(n->error, sizeof(n->error), "%s", err);
	} else if (n->uri.tls && !n->opts.tls) {
		snprintf(n->error, sizeof(n->error),
			 "TLS (nbds://) needs the storage's credentials: dst create or dst add "
			 "--tls-psk FILE or --tls-certs DIR");
	} else {
		if (!n->uri.tls)
			n->spipe = spipe_get(); /* NULL: writes are copied */
		nbd_conn_start(n);
		ev_timer_start(loop, &n->watchdog, NBD_WATCHDOG_NS);
		return &n->dev;
	}
	n->state = ST_FAILED;
	n->ready_err = EINVAL;
	ev_defer(loop, &n->ready_work);
	return &n->dev;
}
