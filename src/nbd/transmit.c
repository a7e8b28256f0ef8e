/* transmit.c - NBD transmission phase: parse requests, submit them to the
 * device, build replies as they complete (out of order, by cookie).
 *
 * Resources are taken before a request header is consumed: if no request
 * slot or buffer is free, the header stays in the input buffer and the
 * connection waits (backpressure) instead of failing or allocating.
 *
 * A READ or WRITE larger than one buffer (NBD_MAX_PAYLOAD, up to
 * NBD_MAX_BLOCK) is "pieced": it takes one buffer and goes to the device
 * one piece after the other. A WRITE reads its payload a piece at a time,
 * reading nothing more from its client while a piece is in the device; a
 * READ sends its reply's header with the first piece, then each piece once
 * the one before has gone out, nothing of other replies in between. The
 * client gets one reply. A piece of a READ that fails after the reply began
 * leaves no way to say so (the header said success): the connection is
 * closed, which the spec allows. Requests of one buffer or less never look
 * at any of this beyond piece_len.
 *
 * Spliced payloads: on a plaintext connection to a device that takes pipes
 * (a storage of remote nodes), a WRITE's payload of SPIPE_MIN..SPIPE_CAP
 * bytes is spliced from the socket into a pipe and handed to the device
 * there, and a READ of that size may be answered in a pipe that server.c
 * splices into the socket behind the reply's header. Neither is copied
 * through our memory; each still takes a buffer, which the device fills
 * when it cannot use the pipe (a request split over two nodes).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/pipepool.h"
#include "common/util.h"
#include "proto.h"
#include "server_int.h"

uint16_t tx_export_flags(const struct nbd_conn *c)
{
	const struct dev *d = c->srv->cfg.dev;
	uint16_t f = NBD_FLAG_HAS_FLAGS;
	if (c->access != ACL_RW || (d->caps & DEV_CAP_READONLY))
		f |= NBD_FLAG_READ_ONLY;
	if (d->caps & DEV_CAP_FLUSH)
		f |= NBD_FLAG_SEND_FLUSH;
	if (d->caps & DEV_CAP_FUA)
		f |= NBD_FLAG_SEND_FUA;
	if (d->caps & DEV_CAP_TRIM)
		f |= NBD_FLAG_SEND_TRIM;
	if (d->caps & DEV_CAP_ZERO) {
		f |= NBD_FLAG_SEND_WRITE_ZEROES;
		if (d->caps & DEV_CAP_FAST_ZERO)
			f |= NBD_FLAG_SEND_FAST_ZERO;
	}
	if (d->caps & DEV_CAP_CACHE)
		f |= NBD_FLAG_SEND_CACHE;
	if (d->caps & DEV_CAP_MULTI_CONN)
		f |= NBD_FLAG_CAN_MULTI_CONN;
	/* Reads are always answered in one chunk, so DF costs nothing. */
	if (c->structured)
		f |= NBD_FLAG_SEND_DF;
	return f;
}

static void fill_caps(const struct nbd_conn *c, struct nbd_conn_caps *caps)
{
	const struct dev *d = c->srv->cfg.dev;
	memset(caps, 0, sizeof(*caps));
	caps->size = d->size;
	caps->min_block = d->min_block;
	caps->readonly = c->access != ACL_RW || (d->caps & DEV_CAP_READONLY);
	caps->structured = c->structured;
	caps->base_alloc = c->base_alloc;
	caps->csum = c->csum;
	caps->can_trim = d->caps & DEV_CAP_TRIM;
	caps->can_zero = d->caps & DEV_CAP_ZERO;
	caps->can_fast_zero = d->caps & DEV_CAP_FAST_ZERO;
	caps->can_cache = d->caps & DEV_CAP_CACHE;
}

/* ---- replies ---- */

static void simple_reply(struct nbd_req *r)
{
	be32_write(r->hdr, NBD_SIMPLE_REPLY_MAGIC);
	be32_write(r->hdr + 4, r->error);
	be64_write(r->hdr + 8, r->cookie);
	r->hdr_len = NBD_SIMPLE_REPLY_SIZE;
}

static void chunk_hdr(struct nbd_req *r, uint16_t type, uint32_t len)
{
	be32_write(r->hdr, NBD_STRUCTURED_REPLY_MAGIC);
	be16_write(r->hdr + 4, NBD_REPLY_FLAG_DONE);
	be16_write(r->hdr + 6, type);
	be64_write(r->hdr + 8, r->cookie);
	be32_write(r->hdr + 16, len);
	r->hdr_len = NBD_STRUCTURED_REPLY_SIZE;
}

/* Fill hdr/data for r according to its outcome, then queue it. */
void tx_queue_reply(struct nbd_conn *c, struct nbd_req *r)
{
	r->data = NULL;
	r->data_len = 0;
	bool chunked =
	    c->structured && (r->type == NBD_CMD_READ || r->type == NBD_CMD_BLOCK_STATUS);
	if (r->error) {
		c->srv->st.errors++;
		if (chunked) {
			chunk_hdr(r, NBD_REPLY_TYPE_ERROR, 6);
			be32_write(r->hdr + 20, r->error);
			be16_write(r->hdr + 24, 0); /* no message */
			r->hdr_len += 6;
		} else {
			simple_reply(r);
		}
	} else if (r->type == NBD_CMD_READ) {
		if (chunked) {
			chunk_hdr(r, NBD_REPLY_TYPE_OFFSET_DATA, 8 + r->length);
			be64_write(r->hdr + 20, r->offset);
			r->hdr_len += 8;
		} else {
			simple_reply(r);
		}
		/* NULL if borrowed: server.c sends io.iov; or spliced from r->pipe */
		r->data = r->pipe ? NULL : r->buf;
		r->data_len = r->piece_len;
	} else if (r->type == NBD_CMD_BLOCK_STATUS && r->csum_wire) {
		/* tx_csum.c built the chunks, headers and all. */
		r->hdr_len = 0;
		r->data = r->csum_wire;
		r->data_len = r->csum_wire_len;
	} else if (r->type == NBD_CMD_BLOCK_STATUS) {
		/* Extents were converted into wire form after the dev_extent array. */
		uint32_t n = r->io.ext_count;
		uint8_t *w =
		    (uint8_t *)r->buf + BLOCK_STATUS_MAX_EXTENTS * sizeof(struct dev_extent);
		chunk_hdr(r, NBD_REPLY_TYPE_BLOCK_STATUS, 4 + 8 * n);
		r->data = w;
		r->data_len = 4 + 8 * n;
	} else {
		simple_reply(r);
	}
	r->sent = 0;
	r->next = NULL;
	if (c->out_tail)
		c->out_tail->next = r;
	else
		c->out_head = r;
	c->out_tail = r;
	conn_want_flush(c);
	/* The client's next request is likely on its way: catch it without
	 * sleeping, so that its send need not wake us (common/ev.c). */
	ev_poll_soon(c->srv->loop);
}

void tx_reply_sent(struct nbd_conn *c, struct nbd_req *r)
{
	srv_req_put(c->srv, r);
}

/* Convert device extents into the wire's base:allocation payload at w: the
 * context id, then (length, flags) pairs clipped to the request and to
 * 32-bit lengths. Returns the number of pairs (>= 1). */
uint32_t tx_encode_alloc(const struct nbd_req *r, const struct dev_extent *ext, uint32_t count,
			 uint8_t *w)
{
	be32_write(w, NBD_META_ID_BASE_ALLOCATION);
	uint64_t left = r->length;
	uint32_t n = 0;
	for (uint32_t i = 0; i < count && left; i++) {
		uint64_t len = MIN(ext[i].len, left);
		if (len > 0xfffff000u)
			len = 0xfffff000u; /* keep it 4 KiB aligned and under 4 GiB */
		if (!len)
			break;
		uint32_t flags = 0;
		if (ext[i].flags & DEV_EXT_HOLE)
			flags |= NBD_STATE_HOLE;
		if (ext[i].flags & DEV_EXT_ZERO)
			flags |= NBD_STATE_ZERO;
		be32_write(w + 4 + 8 * n, (uint32_t)len);
		be32_write(w + 8 + 8 * n, flags);
		n++;
		left -= len;
		if (len < ext[i].len)
			break;
	}
	if (n == 0) { /* the device said nothing useful: report data */
		be32_write(w + 4, r->length);
		be32_write(w + 8, 0);
		n = 1;
	}
	return n;
}

static void encode_extents(struct nbd_req *r)
{
	uint8_t *w = (uint8_t *)r->buf + BLOCK_STATUS_MAX_EXTENTS * sizeof(struct dev_extent);
	r->io.ext_count = tx_encode_alloc(r, r->buf, r->io.ext_count, w);
}

static void submit(struct nbd_conn *c, struct nbd_req *r);

/* A piece of a pieced request is done. True when the request goes on (the
 * next piece is on its way); false when it is over, for io_done to answer. */
static bool piece_done(struct nbd_conn *c, struct nbd_req *r, int err)
{
	uint32_t end = r->piece_off + r->piece_len;
	if (r->type == NBD_CMD_WRITE) {
		if (c->dead || end == r->length)
			return false;
		if (err) {
			/* Answer now; what is left of the payload is skipped. */
			c->rx = RX_DISCARD;
			c->rx_discard = r->length - end;
			ev_defer(c->srv->loop, &c->piece_work);
			return false;
		}
		r->piece_off = end;
		r->piece_len = MIN(r->length - end, NBD_MAX_PAYLOAD);
		c->rx_req = r;
		c->rx_got = 0;
		c->rx = RX_PAYLOAD;
		ev_defer(c->srv->loop, &c->piece_work); /* read on, from the loop */
		return true;
	}
	if (!r->held) { /* the first piece: the reply begins with it */
		r->more = !err && !c->dead;
		return false;
	}
	/* A later piece: its reply is at the head of the output. */
	r->held = false;
	if (c->dead) { /* conn_close left it to us */
		srv_req_put(c->srv, r);
		return true;
	}
	if (err) {
		/* Close from the loop: this may run under conn_out_consumed. */
		log_warn("client %s: READ at %llu+%u: %s after its reply began: closing the "
			 "connection",
			 c->peer, (unsigned long long)r->offset, r->length, strerror(err));
		c->srv->st.errors++;
		r->held = true;
		c->piece_failed = r;
		ev_defer(c->srv->loop, &c->piece_work);
		return true;
	}
	r->data = r->buf;
	r->data_len = r->piece_len;
	r->sent = 0;
	r->more = end < r->length;
	conn_want_flush(c);
	return true;
}

void tx_piece_sent(struct nbd_conn *c, struct nbd_req *r)
{
	r->piece_off += r->piece_len;
	r->piece_len = MIN(r->length - r->piece_off, NBD_MAX_PAYLOAD);
	r->hdr_len = 0;
	r->data_len = 0;
	r->sent = 0;
	r->held = true;
	uint64_t start = r->start_ns;
	submit(c, r);
	r->start_ns = start;
}

void tx_piece_deferred(struct ev_deferred *d)
{
	struct nbd_conn *c = container_of(d, struct nbd_conn, piece_work);
	struct nbd_req *failed = c->piece_failed;
	if (failed) {
		c->piece_failed = NULL;
		failed->held = false;
		if (c->dead) /* conn_close left it to us */
			srv_req_put(c->srv, failed);
		else
			conn_close(c,
				   "closed: a piece of a large READ failed after its reply began");
		return;
	}
	if (!c->dead && conn_process(c))
		conn_update_events(c);
}

static void io_done(struct dev_io *io, int err)
{
	struct nbd_req *r = io->priv;
	struct nbd_conn *c = r->conn;
	struct nbd_server_stats *st = &c->srv->st;
	uint64_t ns = ev_now_ns() - r->start_ns;
	c->in_dev--;
	if (r->pieced && piece_done(c, r, err))
		return;
	r->error = nbd_errno_to_wire(err);
	switch (r->type) {
	case NBD_CMD_READ:
		st->reads++;
		st->read_ns += ns;
		lathist_add(&st->read_lat, ns);
		if (!err)
			st->bytes_read += r->length;
		if (io->pipe && !err) { /* the payload is in a pipe: spliced out */
			r->pipe = io->pipe;
			st->read_spliced += r->length;
		} else {
			if (io->pipe)
				spipe_put(io->pipe);
			if (!err)
				st->read_copied += r->length;
		}
		io->pipe = NULL;
		/* A storage may answer in the buffer after all. */
		r->borrowed = r->borrow && !err && io->iov_count;
		if (r->borrowed)
			st->direct_reads++;
		break;
	case NBD_CMD_WRITE:
		st->writes++;
		st->write_ns += ns;
		lathist_add(&st->write_lat, ns);
		if (!err)
			st->bytes_written += r->length;
		if (!err && r->pipe && !r->pipe->copied)
			st->write_spliced += r->length;
		else if (!err)
			st->write_copied += r->length;
		spipe_put(r->pipe); /* the device has the payload: pipe and */
		r->pipe = NULL;
		/* buffer go back early. */
		limits_buf_given_back(c, r);
		srv_buf_free(c->srv, r->buf);
		r->buf = NULL;
		break;
	case NBD_CMD_FLUSH:
		st->flushes++;
		lathist_add(&st->flush_lat, ns);
		break;
	case NBD_CMD_TRIM: st->trims++; break;
	case NBD_CMD_WRITE_ZEROES: st->zeroes++; break;
	case NBD_CMD_BLOCK_STATUS:
		st->block_status++;
		if (!err)
			encode_extents(r);
		break;
	default: st->other++; break;
	}
	if (err && err != ENOTSUP)
		log_debug("client %s: %s at %llu+%u: %s", c->peer, nbd_cmd_name(r->type),
			  (unsigned long long)r->offset, r->length, strerror(err));
	if (c->dead) {
		srv_req_put(c->srv, r);
		return;
	}
	tx_queue_reply(c, r);
}

static void submit(struct nbd_conn *c, struct nbd_req *r)
{
	struct dev_io *io = &r->io;
	io->flags = 0;
	if (r->flags & NBD_CMD_FLAG_FUA)
		io->flags |= DEV_F_FUA;
	if (r->flags & NBD_CMD_FLAG_NO_HOLE)
		io->flags |= DEV_F_NO_HOLE;
	if (r->flags & NBD_CMD_FLAG_FAST_ZERO)
		io->flags |= DEV_F_FAST_ZERO;
	io->off = r->offset + r->piece_off;
	io->len = r->piece_len;
	io->buf = r->buf;
	io->pipe = NULL;
	if (r->pipe_ok)
		io->flags |= DEV_F_PIPE;
	if (r->type == NBD_CMD_WRITE && r->pipe) {
		io->flags |= DEV_F_PIPE;
		io->pipe = r->pipe;
	}
	if (r->borrow) {
		io->flags |= DEV_F_BORROW;
		io->iov = r->borrow_iov;
		io->iov_count = 0;
	}
	io->done = io_done;
	io->priv = r;
	switch (r->type) {
	case NBD_CMD_READ: io->op = DEV_READ; break;
	case NBD_CMD_WRITE: io->op = DEV_WRITE; break;
	case NBD_CMD_FLUSH: io->op = DEV_FLUSH; break;
	case NBD_CMD_TRIM: io->op = DEV_TRIM; break;
	case NBD_CMD_WRITE_ZEROES: io->op = DEV_WRITE_ZEROES; break;
	case NBD_CMD_CACHE: io->op = DEV_CACHE; break;
	case NBD_CMD_BLOCK_STATUS:
		if (c->csum) { /* its own sequence of device requests */
			tx_csum_submit(c, r);
			return;
		}
		io->op = DEV_BLOCK_STATUS;
		io->ext = r->buf;
		io->ext_max = (r->flags & NBD_CMD_FLAG_REQ_ONE) ? 1 : BLOCK_STATUS_MAX_EXTENTS;
		io->ext_count = 0;
		break;
	}
	r->start_ns = ev_now_ns();
	c->in_dev++;
	dev_submit(c->srv->cfg.dev, io);
}

static struct nbd_req *take_slot(struct nbd_conn *c)
{
	struct nbd_server *srv = c->srv;
	/* Strict FIFO: someone already waiting goes first. (The per-client
	 * limits were checked before: conn_limits.c.) */
	if (srv->wait_head && srv->wait_head != c && srv->kicking != c)
		return NULL;
	struct nbd_req *r = srv_req_get(srv);
	if (!r)
		return NULL;
	r->conn = c;
	c->inflight++;
	srv->st.inflight++;
	return r;
}

/* A spliced payload the pipe cannot take whole (it came in more pieces
 * than the pipe has slots): what it has goes into the buffer, and the
 * rest is read there as any payload. False if the connection was closed. */
bool tx_pipe_to_copy(struct nbd_conn *c, struct nbd_req *r)
{
	if (spipe_unload(&r->pipe, r->buf) < 0) {
		conn_close(c, "splice: a write payload's pipe failed");
		return false;
	}
	c->rx = RX_PAYLOAD;
	c->hdr_only = false;
	return true;
}

/* Finish a write whose payload has fully arrived. */
static void payload_complete(struct nbd_conn *c)
{
	struct nbd_req *r = c->rx_req;
	c->rx_req = NULL;
	/* A pieced write reads no more until this piece is in (piece_done). */
	c->rx = r->piece_off + r->piece_len < r->length ? RX_PIECE_WAIT : RX_HEADER;
	conn_set_lowat(c, 0); /* headers are small: any byte is worth a wake-up */
	submit(c, r);
}

bool tx_process(struct nbd_conn *c)
{
	struct nbd_server *srv = c->srv;
	while (!c->dead) {
		uint32_t avail = c->rend - c->rstart;
		uint8_t *p = c->rbuf + c->rstart;

		if (c->rx == RX_PAYLOAD || c->rx == RX_PIPE) {
			struct nbd_req *r = c->rx_req;
			uint32_t take = MIN(avail, r->piece_len - c->rx_got);
			if (c->rx == RX_PAYLOAD) {
				memcpy((char *)r->buf + c->rx_got, p, take);
			} else if (take && spipe_from_buf(r->pipe, p, take) != (ssize_t)take) {
				/* (what was read ahead goes into the pipe first) */
				if (!tx_pipe_to_copy(c, r))
					return false;
				continue;
			}
			c->rstart += take;
			c->rx_got += take;
			if (c->rx_got < r->piece_len) {
				conn_set_lowat(c, r->piece_len - c->rx_got);
				return true;
			}
			payload_complete(c);
			continue;
		}
		if (c->rx == RX_DISCARD) {
			uint32_t take = (uint32_t)MIN((uint64_t)avail, c->rx_discard);
			c->rstart += take;
			c->rx_discard -= take;
			if (c->rx_discard)
				return true;
			c->rx = RX_HEADER;
			continue;
		}
		if (c->rx == RX_PIECE_WAIT)
			return true;
		if (c->rx_stopped || srv->shutting_down) {
			if (srv->shutting_down && !c->rx_stopped) {
				c->rx_stopped = true;
				c->phase = PH_CLOSING;
				conn_want_flush(c);
			}
			return true;
		}
		if (avail < NBD_REQUEST_SIZE)
			return true;

		struct nbd_request rq;
		nbd_decode_request(p, &rq);
		if (rq.magic != NBD_REQUEST_MAGIC) {
			conn_close(c, "closed: bad request magic (stream out of sync)");
			return false;
		}
		if (rq.type == NBD_CMD_DISC) {
			c->rstart += NBD_REQUEST_SIZE;
			c->rx_stopped = true;
			c->phase = PH_CLOSING;
			conn_want_flush(c);
			log_info("client %s: disconnect requested", c->peer);
			return true;
		}
		struct nbd_conn_caps caps;
		fill_caps(c, &caps);
		uint32_t err = nbd_validate_request(&rq, &caps);
		size_t need = 0;
		if (!err) {
			if (rq.type == NBD_CMD_READ || rq.type == NBD_CMD_WRITE)
				need = MIN(rq.length, NBD_MAX_PAYLOAD); /* pieced beyond */
			else if (rq.type == NBD_CMD_BLOCK_STATUS && c->csum)
				need = TX_CSUM_BUF;
			else if (rq.type == NBD_CMD_BLOCK_STATUS)
				need =
				    BLOCK_STATUS_MAX_EXTENTS * (sizeof(struct dev_extent) + 8) + 4;
		}
		/* This client's own limits first: over them it waits for its
		 * own requests, holding up nobody else. */
		if (limits_over(c, need))
			return true;

		struct nbd_req *r = take_slot(c);
		if (!r) {
			srv_wait(c);
			return true;
		}
		r->type = rq.type;
		r->flags = rq.flags;
		r->cookie = rq.cookie;
		r->offset = rq.offset;
		r->length = rq.length;
		r->piece_len = rq.length;
		if (need && rq.length > need && rq.type != NBD_CMD_BLOCK_STATUS) {
			r->pieced = true;
			r->piece_len = (uint32_t)need;
		}
		/* A READ the device can answer from its own memory takes no
		 * buffer, unless the device may fall back on one. */
		r->borrow = rq.type == NBD_CMD_READ && !err && !r->pieced &&
			    dev_can_borrow(srv->cfg.dev, rq.offset, rq.length);
		if (r->borrow && !(srv->cfg.dev->caps & DEV_CAP_BORROW_BUF)) {
			limits_buf_taken(c, r, need); /* counts as the buffer it saves */
		} else if (need) {
			r->buf = bufpool_alloc(&srv->pool, need);
			if (!r->buf) {
				srv_req_unget(srv, r);
				srv_wait(c);
				return true;
			}
			limits_buf_taken(c, r, need);
		}
		/* Payloads to splice: large enough, plaintext, a device that
		 * takes pipes; a WRITE that finds no pipe free is copied. */
		bool splice = !err && !c->tls && !r->pieced && rq.length >= SPIPE_MIN &&
			      rq.length <= SPIPE_CAP && (srv->cfg.dev->caps & DEV_CAP_PIPE);
		r->pipe_ok = splice && rq.type == NBD_CMD_READ;
		if (splice && rq.type == NBD_CMD_WRITE)
			r->pipe = spipe_get();
		c->hdr_only = r->pipe != NULL;
		c->rstart += NBD_REQUEST_SIZE;

		if (err) {
			log_debug("client %s: %s at %llu+%u flags 0x%x refused: error %u", c->peer,
				  nbd_cmd_name(rq.type), (unsigned long long)rq.offset, rq.length,
				  rq.flags, err);
			r->error = err;
			/* A refused write's payload is still on the wire: skip it. */
			if (rq.type == NBD_CMD_WRITE && rq.length) {
				c->rx = RX_DISCARD;
				c->rx_discard = rq.length;
			}
			tx_queue_reply(c, r);
			continue;
		}
		if (rq.type == NBD_CMD_WRITE) {
			c->rx_req = r;
			c->rx_got = 0;
			c->rx = r->pipe ? RX_PIPE : RX_PAYLOAD;
			continue;
		}
		submit(c, r);
	}
	return false;
}
