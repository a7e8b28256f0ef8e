/* server_tls.c - the TLS side of a server connection: the handshake that
 * follows NBD_OPT_STARTTLS on our non-blocking socket, and sending queued
 * output as TLS records.
 *
 * Once TLS is on, server.c reads through tls_recv() and calls
 * conn_tls_flush() instead of writev(); nothing else in the server knows.
 * Two things differ from a plain socket:
 *  - GnuTLS may hold decrypted bytes that epoll will never announce, so
 *    after each read, and whenever reading may resume, we look at
 *    gnutls_record_check_pending() and read again from the loop.
 *  - A record is at most 16 KiB. Replies smaller than that are copied into
 *    one staging buffer so that one record carries many; larger payloads
 *    are encrypted from their own buffer, 16 KiB at a time. While we
 *    encrypt, the session is corked (tls_io.c): the records leave together,
 *    in one syscall per 256 KiB rather than one each.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "server_int.h"

void conn_tls_read_deferred(struct ev_deferred *d)
{
	struct nbd_conn *c = container_of(d, struct nbd_conn, tls_read_work);
	if (!c->dead && c->tls && !c->rx_stopped && !c->waiting)
		conn_read(c);
}

void conn_tls_check_pending(struct nbd_conn *c)
{
	if (c->rx_stopped || c->waiting || !tls_pending(c->tls_sess))
		return;
	/* A full input buffer is read again once it is parsed, not before
	 * (or this would spin). */
	bool room = c->rend < CONN_RBUF_SIZE || c->rstart > 0 ||
		    (c->rx == RX_PAYLOAD && c->rstart == c->rend && c->rx_req);
	if (room)
		ev_defer(c->srv->loop, &c->tls_read_work);
}

void conn_tls_start(struct nbd_conn *c)
{
	char err[256];
	if (tls_session_new(c->srv->cfg.tls_creds, c->fd, NULL, &c->tls_sess, err, sizeof(err)) <
	    0) {
		log_warn("client %s: %s", c->peer, err);
		conn_close(c, NULL);
		return;
	}
	c->phase = PH_TLS_HANDSHAKE;
	conn_tls_handshake(c);
}

void conn_tls_handshake(struct nbd_conn *c)
{
	char err[512];
	int rc = tls_handshake_step(c->tls_sess, c->srv->cfg.tls_creds, &c->tls_want_write, err,
				    sizeof(err));
	if (rc < 0) {
		log_warn("client %s: refused: %s", c->peer, err);
		conn_close(c, NULL);
		return;
	}
	if (rc > 0) {
		conn_update_events(c);
		return;
	}
	c->tls = true;
	c->tls_stage = xmalloc(TLS_RECORD_MAX);
	c->srv->st.clients_tls++;
	/* What was negotiated in plaintext could have been tampered with:
	 * the spec has the client start over, and so do we. */
	c->structured = false;
	c->base_alloc = false;
	c->csum = false;
	free(c->meta_export);
	c->meta_export = NULL;
	c->phase = PH_OPTIONS;
	char *desc = gnutls_session_get_desc(c->tls_sess);
	const char *user = gnutls_psk_server_get_username(c->tls_sess);
	log_info("client %s: TLS on, %s%s%s %s", c->peer, tls_creds_kind(c->srv->cfg.tls_creds),
		 user ? " user " : "", user ? user : "", desc ? desc : "");
	gnutls_free(desc);
	conn_update_events(c);
	/* The first options may have come with the handshake's last bytes. */
	ev_defer(c->srv->loop, &c->tls_read_work);
}

/* Records go out gathered: corked while we encrypt what is queued, then
 * sent in as few syscalls as the socket allows. */
static void tls_flush_records(struct nbd_conn *c);

void conn_tls_flush(struct nbd_conn *c)
{
	tls_cork(c->tls_sess);
	tls_flush_records(c);
	if (c->dead)
		return;
	if (tls_uncork(c->tls_sess) < 0)
		conn_close(c, errno == ECONNRESET ? "disconnected" : tls_last_error());
}

static void tls_flush_records(struct nbd_conn *c)
{
	while (!c->dead) {
		if (c->tls_stage_len == 0) {
			struct iovec iov[OUT_IOV_MAX];
			int n = conn_out_gather(c, iov, OUT_IOV_MAX);
			if (n == 0)
				return;
			if (iov[0].iov_len >= TLS_RECORD_MAX) {
				/* Straight from the payload. After EAGAIN the same
				 * bytes are offered again: the queue only grows at
				 * its tail, so the head is what it was. */
				ssize_t w = tls_send(c->tls_sess, iov[0].iov_base, TLS_RECORD_MAX);
				if (w < 0)
					goto error;
				conn_out_consumed(c, (size_t)w);
				continue;
			}
			uint32_t fill = 0;
			for (int i = 0; i < n && fill < TLS_RECORD_MAX; i++) {
				size_t take = MIN(iov[i].iov_len, (size_t)(TLS_RECORD_MAX - fill));
				memcpy(c->tls_stage + fill, iov[i].iov_base, take);
				fill += (uint32_t)take;
			}
			/* The staged bytes are ours now: the replies they came
			 * from may go (and give back their buffers). */
			conn_out_consumed(c, fill);
			c->tls_stage_len = fill;
		}
		ssize_t w = tls_send(c->tls_sess, c->tls_stage, c->tls_stage_len);
		if (w < 0)
			goto error;
		c->tls_stage_len -= (uint32_t)w;
		if (c->tls_stage_len)
			memmove(c->tls_stage, c->tls_stage + w, c->tls_stage_len);
	}
	return;
error:
	if (errno == EAGAIN || errno == EINTR)
		return;
	conn_close(c, errno == ECONNRESET ? "disconnected" : tls_last_error());
}

void conn_tls_close(struct nbd_conn *c)
{
	/* A polite close_notify if the socket takes it now; never waits. */
	if (c->tls) {
		gnutls_bye(c->tls_sess, GNUTLS_SHUT_WR);
		tls_uncork(c->tls_sess);
	}
	ev_defer_cancel(c->srv->loop, &c->tls_read_work);
}

void conn_tls_free(struct nbd_conn *c)
{
	ev_defer_cancel(c->srv->loop, &c->tls_read_work);
	tls_session_free(c->tls_sess);
	c->tls_sess = NULL;
	free(c->tls_stage);
	c->tls_stage = NULL;
}
