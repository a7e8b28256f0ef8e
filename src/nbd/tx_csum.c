/* tx_csum.c - NBD_CMD_BLOCK_STATUS on a connection that selected dst's
 * dst:csum-4k context: read the blocks the request covers from the device,
 * sum each 4 KiB block (CRC32C), and answer a chunk of extents whose status
 * is the sum (csum_ctx.h), after base:allocation's chunk if that context is
 * selected too (the spec wants one chunk per selected context).
 *
 * One request covers at most CSUM_CTX_CAP (4 MiB) and goes to the device
 * as a sequence: base:allocation's DEV_BLOCK_STATUS if wanted, then reads
 * of at most TX_CSUM_PIECE each. A piece the device can lend (in the page
 * cache, a memory disk) is summed where it is, without a copy; any other is
 * read into the request's buffer (TX_CSUM_BUF: the piece, then room for the
 * sums and the reply). A failed read or status is an error reply.
 */
#include <errno.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "csum_ctx.h"
#include "proto.h"
#include "server_int.h"

/* The buffer: [0, PIECE) a piece's data, then the sums, base:allocation's
 * device extents, and the reply (both chunks). */
#define TX_CSUM_PIECE (TX_CSUM_BUF - (64u << 10))
#define TX_CSUM_SUMS  TX_CSUM_PIECE
#define TX_CSUM_EXT   (TX_CSUM_SUMS + CSUM_CTX_MAX_EXT * 4)
#define TX_CSUM_WIRE  (TX_CSUM_EXT + BLOCK_STATUS_MAX_EXTENTS * sizeof(struct dev_extent))
#define TX_CSUM_WIRE_MAX \
	(2 * (NBD_STRUCTURED_REPLY_SIZE + 4) + 8 * (BLOCK_STATUS_MAX_EXTENTS + CSUM_CTX_MAX_EXT))
_Static_assert(TX_CSUM_WIRE + TX_CSUM_WIRE_MAX <= TX_CSUM_BUF, "tx_csum buffer layout");
_Static_assert(TX_CSUM_PIECE % CSUM_CTX_BLOCK == 0, "pieces start at a block");
_Static_assert(TX_CSUM_PIECE <= DEV_BORROW_MAX, "a piece is one borrowed read");
_Static_assert(TX_CSUM_BUF <= NBD_MAX_PAYLOAD, "one pool buffer");

static void next(struct nbd_conn *c, struct nbd_req *r);

static uint8_t *chunk(struct nbd_req *r, uint8_t *w, bool done, uint32_t len)
{
	be32_write(w, NBD_STRUCTURED_REPLY_MAGIC);
	be16_write(w + 4, done ? NBD_REPLY_FLAG_DONE : 0);
	be16_write(w + 6, NBD_REPLY_TYPE_BLOCK_STATUS);
	be64_write(w + 8, r->cookie);
	be32_write(w + 16, len);
	return w + NBD_STRUCTURED_REPLY_SIZE;
}

/* Everything is summed: the csum chunk goes after base:allocation's (which
 * io_done already wrote at TX_CSUM_WIRE). */
static void finish(struct nbd_conn *c, struct nbd_req *r)
{
	uint8_t *buf = r->buf, *w = buf + TX_CSUM_WIRE;
	if (r->csum_wire_len) /* base:allocation's chunk is there */
		w += r->csum_wire_len;
	struct csum_span s;
	csum_ctx_span(r->offset, r->length, c->srv->cfg.dev->size, &s);
	uint8_t *p = w + NBD_STRUCTURED_REPLY_SIZE;
	be32_write(p, NBD_META_ID_DST_CSUM);
	uint32_t n = csum_ctx_encode(&s, (const uint32_t *)(buf + TX_CSUM_SUMS),
				     r->flags & NBD_CMD_FLAG_REQ_ONE, p + 4);
	chunk(r, w, true, 4 + 8 * n);
	r->csum_wire = buf + TX_CSUM_WIRE;
	r->csum_wire_len += NBD_STRUCTURED_REPLY_SIZE + 4 + 8 * n;
	tx_queue_reply(c, r);
}

static void io_done(struct dev_io *io, int err)
{
	struct nbd_req *r = io->priv;
	struct nbd_conn *c = r->conn;
	struct dev *d = c->srv->cfg.dev;
	uint8_t *buf = r->buf;
	c->in_dev--;
	if (io->op == DEV_READ && !err) {
		uint32_t *sums = (uint32_t *)(buf + TX_CSUM_SUMS) + r->csum_done / CSUM_CTX_BLOCK;
		if (io->iov_count) { /* lent: summed in place, then given back */
			if (!c->dead)
				csum_ctx_sum_iov(io->iov, io->iov_count, io->len, sums);
			dev_release(d, io);
			io->iov_count = 0;
		} else if (!c->dead) {
			struct iovec v = {buf, io->len};
			csum_ctx_sum_iov(&v, 1, io->len, sums);
		}
		r->csum_done += (uint32_t)io->len;
	} else if (io->op == DEV_BLOCK_STATUS && !err && !c->dead) {
		uint8_t *w = buf + TX_CSUM_WIRE;
		uint32_t n = tx_encode_alloc(r, (const struct dev_extent *)(buf + TX_CSUM_EXT),
					     io->ext_count, w + NBD_STRUCTURED_REPLY_SIZE);
		chunk(r, w, false, 4 + 8 * n);
		r->csum_wire_len = NBD_STRUCTURED_REPLY_SIZE + 4 + 8 * n;
		r->csum_alloc_done = true;
	}
	if (c->dead) {
		srv_req_put(c->srv, r);
		return;
	}
	if (err) {
		log_debug("client %s: BLOCK_STATUS (dst:csum-4k) at %llu+%u: %s of %llu+%llu: %s",
			  c->peer, (unsigned long long)r->offset, r->length,
			  io->op == DEV_READ ? "read" : "block status", (unsigned long long)io->off,
			  (unsigned long long)io->len, strerror(err));
		c->srv->st.block_status++;
		r->error = nbd_errno_to_wire(err);
		r->csum_wire = NULL;
		tx_queue_reply(c, r);
		return;
	}
	next(c, r);
}

static void next(struct nbd_conn *c, struct nbd_req *r)
{
	struct dev *d = c->srv->cfg.dev;
	struct dev_io *io = &r->io;
	memset(io, 0, offsetof(struct dev_io, done));
	io->done = io_done;
	io->priv = r;
	if (c->base_alloc && !r->csum_alloc_done) {
		io->op = DEV_BLOCK_STATUS;
		io->off = r->offset;
		io->len = r->length;
		io->ext = (struct dev_extent *)((uint8_t *)r->buf + TX_CSUM_EXT);
		io->ext_max = (r->flags & NBD_CMD_FLAG_REQ_ONE) ? 1 : BLOCK_STATUS_MAX_EXTENTS;
	} else {
		struct csum_span s;
		csum_ctx_span(r->offset, r->length, d->size, &s);
		uint64_t left = s.aend - s.aoff - r->csum_done;
		if (!left) {
			c->srv->st.block_status++;
			finish(c, r);
			return;
		}
		io->op = DEV_READ;
		io->off = s.aoff + r->csum_done;
		io->len = MIN(left, (uint64_t)TX_CSUM_PIECE);
		io->buf = r->buf;
		if (dev_can_borrow(d, io->off, io->len)) {
			io->flags = DEV_F_BORROW;
			io->iov = r->borrow_iov;
		}
	}
	c->in_dev++;
	dev_submit(d, io);
}

void tx_csum_submit(struct nbd_conn *c, struct nbd_req *r)
{
	r->start_ns = ev_now_ns();
	r->csum_done = 0;
	r->csum_alloc_done = false;
	r->csum_wire_len = 0;
	next(c, r);
}
