/* conn_limits.c - what one client may take of the NBD server, and for how
 * long. server.c, handshake.c and transmit.c call in here at a few points;
 * the limits themselves are in the server's config (server.h).
 *
 * - max-clients: a full server closes new clients at accept, with a log
 *   line, unless some client is still in its handshake: then the oldest of
 *   those is dropped to let the newcomer in. Clients that connect and then
 *   trickle bytes or send nothing (slowloris) would otherwise keep everyone
 *   out until their handshake timeout; this way they only keep out each
 *   other, and a real client, whose handshake takes a few round trips, is
 *   only dropped if max-clients others connect during them (a connection
 *   flood, which is for a firewall). Clients in the transmission phase are
 *   never dropped for a newcomer.
 * - Per client: at most CONN_MAX_INFLIGHT requests and client_budget bytes
 *   of IO buffers (one request always fits when it holds none, however
 *   large). A client over them is paused: it reads nothing until one of its
 *   own requests finishes. It is not put on the server's wait queue, which
 *   is strictly first come first served: a client that stopped reading its
 *   replies would sit at its head for ever and hold up every other client.
 * - Handshake replies: a client that sends options faster than it reads
 *   the replies is paused once 64 KiB wait for it. Replies are larger than
 *   options (an unknown one of 16 bytes gets 56; an INFO of 26 asking for
 *   the description gets the disk's path), so a client that never read
 *   them made us queue without end: 100 MiB a second on loopback.
 * - idle_timeout_s: a client that neither sent nor read a byte for that
 *   long, with nothing of its own in the device, is closed, with whatever it
 *   held. That covers clients that stopped mid-request or stopped reading
 *   their replies. Checked lazily by a timer that IO never re-arms.
 * (The handshake timeout is server.c's hs_timer.)
 */
#include <sys/ioctl.h>

#include "common/log.h"
#include "common/util.h"
#include "server_int.h"

#define NS_PER_S	1000000000ull
#define CONN_HS_OUT_MAX (64u << 10)

static void idle_check(struct ev_timer *t);
static void resume_deferred(struct ev_deferred *d);

/* The server is full: drop the oldest client still in its handshake, if
 * there is one. True if one was dropped. */
static bool make_room(struct nbd_server *srv)
{
	struct nbd_conn *oldest = NULL;
	for (struct nbd_conn *c = srv->conns; c; c = c->next) {
		/* hs_timer runs from accept to the end of the handshake. */
		if (!c->dead && c->hs_timer.armed &&
		    (!oldest || c->accepted_ns < oldest->accepted_ns))
			oldest = c;
	}
	if (!oldest)
		return false;
	srv->st.clients_dropped++;
	conn_close(oldest,
		   "dropped: still in its handshake while the server is full (max-clients)");
	return true;
}

bool limits_may_accept(struct nbd_server *srv)
{
	return srv->st.clients < srv->cfg.max_clients || make_room(srv);
}

void limits_conn_init(struct nbd_conn *c)
{
	c->accepted_ns = c->last_active_ns = ev_now_ns();
	c->idle_timer.fn = idle_check;
	c->resume_work.fn = resume_deferred;
	if (c->srv->cfg.idle_timeout_s)
		ev_timer_start(c->srv->loop, &c->idle_timer,
			       (uint64_t)c->srv->cfg.idle_timeout_s * NS_PER_S);
}

void limits_conn_close(struct nbd_conn *c)
{
	ev_timer_stop(c->srv->loop, &c->idle_timer);
	ev_defer_cancel(c->srv->loop, &c->resume_work);
	c->paused = false;
}

static void idle_check(struct ev_timer *t)
{
	struct nbd_conn *c = container_of(t, struct nbd_conn, idle_timer);
	uint64_t limit = (uint64_t)c->srv->cfg.idle_timeout_s * NS_PER_S;
	uint64_t idle = ev_now_ns() - c->last_active_ns;
	/* Bytes of a payload may be waiting under the receive low-water mark,
	 * which no wake-up announced: a client sending slowly is not idle. */
	int queued = 0;
	if (idle >= limit && c->lowat > 1 && !c->waiting && !c->rx_stopped &&
	    ioctl(c->fd, FIONREAD, &queued) == 0 && queued > 0) {
		conn_read(c);
		if (c->dead)
			return;
		idle = ev_now_ns() - c->last_active_ns;
	}
	/* A handshake has its own timeout; IO in the device is the device's
	 * business (io-timeout), not the client's. */
	if (c->phase >= PH_TRANSMISSION && !c->in_dev && idle >= limit) {
		c->srv->st.clients_dropped++;
		conn_close(c, "closed: idle timeout");
		return;
	}
	ev_timer_start(c->srv->loop, t, idle < limit ? limit - idle : limit);
}

void limits_activity(struct nbd_conn *c)
{
	c->last_active_ns = ev_now_ns();
}

static void pause_conn(struct nbd_conn *c)
{
	c->paused = true;
	c->waiting = true;
	conn_update_events(c);
}

static void resume_deferred(struct ev_deferred *d)
{
	struct nbd_conn *c = container_of(d, struct nbd_conn, resume_work);
	if (c->dead || !c->paused)
		return;
	c->paused = false;
	c->waiting = false;
	if (conn_process(c))
		conn_update_events(c);
}

/* Something of c's own came back: let it try again (from the loop, not from
 * under the caller). */
static void release(struct nbd_conn *c)
{
	if (c->paused && !c->dead)
		ev_defer(c->srv->loop, &c->resume_work);
}

void limits_sent(struct nbd_conn *c)
{
	c->last_active_ns = ev_now_ns();
	if (c->phase < PH_TRANSMISSION && c->hs_len - c->hs_sent <= CONN_HS_OUT_MAX)
		release(c);
}

bool limits_hs_backlog(struct nbd_conn *c)
{
	if (c->hs_len - c->hs_sent <= CONN_HS_OUT_MAX)
		return false;
	pause_conn(c);
	return true;
}

bool limits_over(struct nbd_conn *c, size_t need)
{
	if (c->inflight < CONN_MAX_INFLIGHT &&
	    (!need || !c->buf_bytes || c->buf_bytes + need <= c->srv->cfg.client_budget))
		return false;
	pause_conn(c);
	return true;
}

void limits_buf_taken(struct nbd_conn *c, struct nbd_req *r, size_t len)
{
	r->buf_len = (uint32_t)len;
	c->buf_bytes += len;
}

/* r's buffer (if any) or its slot is about to go back. */
void limits_buf_given_back(struct nbd_conn *c, struct nbd_req *r)
{
	c->buf_bytes -= r->buf_len;
	r->buf_len = 0;
	if (c->phase >= PH_TRANSMISSION)
		release(c);
}
