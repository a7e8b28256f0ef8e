/* nbd_conn.c - the life of a remote node's connection: non-blocking
 * connect (every address of a TCP host in turn), the handshake (driven by
 * the pure nbd/client_hs.c), the first `ready`, and after that: losing the
 * connection, reconnecting with capped exponential backoff and jitter, and
 * the two timeouts a node has.
 *
 *  - request timeout: a request unanswered that long (and nothing at all
 *    received meanwhile) means the node hangs: drop the connection and
 *    reconnect; TCP_USER_TIMEOUT and keepalive notice a peer that vanished
 *    without a FIN.
 *  - io timeout: how long IO waits for a node that is unreachable. Past it
 *    IO fails with EIO (state failed) until the node is back; 0 waits
 *    forever (multipath's queue_if_no_path).
 *
 * The first connection is not retried: a storage must not start, nor a node
 * be added, on an address that does not answer; the caller hears why.
 *
 * nbds:// nodes: STARTTLS is the first option; when the server takes it,
 * the TLS handshake runs here, non-blocking (CONN_TLS), and the rest of the
 * NBD handshake and all requests go through TLS. Every reconnect does it
 * again on its new socket. A handshake that fails (a wrong key, a server
 * certificate our CA did not sign) fails the attempt with the reason.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/event.h"
#include "common/log.h"
#include "common/util.h"
#include "nbd/proto.h"
#include "nbd/wire.h"
#include "nbd_int.h"

#define NS_PER_S  1000000000ull
#define NS_PER_MS 1000000ull

void nbd_conn_close(struct nbd_dev *n)
{
	if (n->tls_sess) {
		if (n->tls) {
			gnutls_bye(n->tls_sess, GNUTLS_SHUT_WR); /* never waits */
			tls_uncork(n->tls_sess);
		}
		tls_session_free(n->tls_sess);
		n->tls_sess = NULL;
	}
	n->tls = false;
	n->tls_stage_len = 0;
	ev_defer_cancel(n->loop, &n->recv_work);
	if (n->fd >= 0) {
		ev_io_stop(n->loop, &n->w);
		close(n->fd);
		n->fd = -1;
	}
	n->wmask = 0;
	n->phase = CONN_NONE;
	ev_defer_cancel(n->loop, &n->send_work);
	nbd_node_verify_cancel(n);
}

static void schedule_retry(struct nbd_dev *n)
{
	/* Backoff doubles from 100 ms to 5 s; +-25% jitter so that the nodes
	 * of many storages do not reconnect in lockstep. */
	n->backoff_ms = n->backoff_ms ? MIN(n->backoff_ms * 2, (uint64_t)NBD_BACKOFF_MAX_MS)
				      : NBD_BACKOFF_MIN_MS;
	n->rand_state = n->rand_state * 1103515245u + 12345u;
	uint64_t jitter = (n->rand_state >> 16) % (n->backoff_ms / 2 + 1);
	uint64_t delay = n->backoff_ms - n->backoff_ms / 4 + jitter;
	ev_timer_start(n->loop, &n->retry, delay * NS_PER_MS);
}

/* This attempt did not get us a connection. */
static void attempt_failed(struct nbd_dev *n, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void attempt_failed(struct nbd_dev *n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(n->error, sizeof(n->error), fmt, ap);
	va_end(ap);
	nbd_conn_close(n);
	if (n->ai) {
		freeaddrinfo(n->ai);
		n->ai = n->ai_next = NULL;
	}
	if (n->state == ST_CONNECTING) {
		n->ready_err = EIO;
		ev_defer(n->loop, &n->ready_work);
		if (n->opts.keep_trying && !n->opts.fail_fast && !n->answered) {
			/* Not up yet (at boot, before its host): IO waits for
			 * it under io-timeout, as for a node reconnecting. */
			n->state = ST_RECONNECTING;
			n->never_up = true;
			n->down_since_ns = ev_now_ns();
			n->attempts = 1;
			log_warn("node %s: %s; dialing on, IO to it waits", n->uri_str, n->error);
			schedule_retry(n);
			return;
		}
		n->state = ST_FAILED;
		nbd_node_fail_all(n, EIO);
		if (n->opts.keep_trying) {
			n->never_up = true;
			n->down_since_ns = ev_now_ns();
			log_warn("node %s: %s; dialing on", n->uri_str, n->error);
			schedule_retry(n);
			return;
		}
		n->given_up = true;
		ev_timer_stop(n->loop, &n->watchdog);
		return;
	}
	/* Say it once when it starts failing, then now and then. */
	if (n->attempts == 1 || n->attempts % 20 == 0)
		log_warn("node %s: reconnect attempt %u: %s", n->uri_str, n->attempts, n->error);
	schedule_retry(n);
}

static void tune_tcp(struct nbd_dev *n)
{
	int one = 1;
	setsockopt(n->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(n->fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	int idle = 10, intvl = 5, cnt = 3;
	setsockopt(n->fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(n->fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	setsockopt(n->fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	/* Data unacknowledged this long kills the connection (a peer that
	 * vanished while we were sending). */
	unsigned ut = n->opts.request_timeout_s * 1000;
	setsockopt(n->fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ut, sizeof(ut));
}

/* Connection epochs only grow, also across restarts of the daemon: the
 * wall clock's seconds at the first connection, then one more each time. */
static uint64_t next_epoch(void)
{
	static uint64_t epoch;
	if (!epoch)
		epoch = (uint64_t)time(NULL) << 24;
	return ++epoch;
}

static void connected(struct nbd_dev *n)
{
	if (!n->uri.is_unix)
		tune_tcp(n);
	if (n->ai) {
		freeaddrinfo(n->ai);
		n->ai = n->ai_next = NULL;
	}
	n->phase = CONN_HANDSHAKE;
	nbd_hs_init(&n->hs, n->uri.export_name, true);
	n->hs.want_tls = n->uri.tls;
	n->hs.want_csum = n->opts.csum;
	if (n->opts.fence) {
		n->hs.want_fence = true;
		memcpy(n->hs.fence, n->opts.fence_id, 16);
		be64_write(n->hs.fence + 16, next_epoch());
		be64_write(n->hs.fence + 24, n->opts.fence_start);
	}
	n->tls_next = false;
	n->hs_have = n->hs_out_sent = 0;
	nbd_node_update_events(n);
}

static int watch(struct nbd_dev *n, uint32_t events)
{
	int rc = ev_io_start(n->loop, &n->w, n->fd, events);
	if (rc == 0)
		n->wmask = events;
	return rc;
}

/* Connect to the next address that takes a connection; when none is
 * left, this attempt failed. */
static void try_connect(struct nbd_dev *n)
{
	int last_err = ECONNREFUSED;
	for (;;) {
		struct sockaddr_un sun;
		const struct sockaddr *sa;
		socklen_t salen;
		int family;
		if (n->uri.is_unix) {
			memset(&sun, 0, sizeof(sun));
			sun.sun_family = AF_UNIX;
			snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", n->uri.socket);
			sa = (const struct sockaddr *)&sun, salen = sizeof(sun), family = AF_UNIX;
		} else {
			struct addrinfo *ai = n->ai_next;
			if (!ai) {
				attempt_failed(n, "connect: %s", strerror(last_err));
				return;
			}
			n->ai_next = ai->ai_next;
			sa = ai->ai_addr, salen = ai->ai_addrlen, family = ai->ai_family;
		}
		n->fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (n->fd < 0) {
			attempt_failed(n, "socket: %s", strerror(errno));
			return;
		}
		int rc = connect(n->fd, sa, salen);
		if (rc == 0 || errno == EINPROGRESS) {
			if (watch(n, rc == 0 ? EPOLLIN : EPOLLOUT) < 0) {
				attempt_failed(n, "epoll: %s", strerror(errno));
				return;
			}
			if (rc == 0)
				connected(n);
			else
				n->phase = CONN_CONNECT;
			return;
		}
		last_err = errno;
		close(n->fd);
		n->fd = -1;
		if (n->uri.is_unix) {
			attempt_failed(n, "connect: %s", strerror(last_err));
			return;
		}
	}
}

void nbd_conn_start(struct nbd_dev *n)
{
	n->attempts++;
	n->attempt_start_ns = ev_now_ns();
	n->answered = false;
	if (!n->uri.is_unix) {
		/* Names resolve through the system resolver, which may block;
		 * nodes are normally given as addresses or /etc/hosts names. */
		struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
		if (n->ai)
			freeaddrinfo(n->ai);
		n->ai = NULL;
		int rc = getaddrinfo(n->uri.host, n->uri.port, &hints, &n->ai);
		if (rc != 0) {
			n->ai = NULL;
			attempt_failed(n, "resolve %s: %s", n->uri.host, gai_strerror(rc));
			return;
		}
		n->ai_next = n->ai;
	}
	try_connect(n);
}

static void went_up(struct nbd_dev *n);

static void handshake_done(struct nbd_dev *n)
{
	struct nbd_hs *hs = &n->hs;
	bool ro = hs->tflags & NBD_FLAG_READ_ONLY;
	bool first = n->state == ST_CONNECTING || n->never_up;
	if (n->never_up && hs->size < n->opts.min_size) {
		attempt_failed(n, "has %llu bytes but the storage expects %llu",
			       (unsigned long long)hs->size, (unsigned long long)n->opts.min_size);
		return;
	}
	if (!first) {
		/* The same node must come back, not a smaller or read-only one. */
		if (hs->size < n->dev.size) {
			attempt_failed(n, "the node came back with %llu bytes, fewer than its %llu",
				       (unsigned long long)hs->size,
				       (unsigned long long)n->dev.size);
			return;
		}
		if (ro && !(n->dev.caps & DEV_CAP_READONLY)) {
			attempt_failed(n, "the node came back read-only");
			return;
		}
	}
	n->structured = hs->structured;
	n->base_alloc = hs->base_alloc;
	n->base_alloc_id = hs->base_alloc_id;
	n->csum = hs->csum;
	n->csum_id = hs->csum_id;
	n->can_flush = hs->tflags & NBD_FLAG_SEND_FLUSH;
	n->can_fua = hs->tflags & NBD_FLAG_SEND_FUA;
	n->can_trim = hs->tflags & NBD_FLAG_SEND_TRIM;
	n->can_zero = hs->tflags & NBD_FLAG_SEND_WRITE_ZEROES;
	n->can_fast_zero = hs->tflags & NBD_FLAG_SEND_FAST_ZERO;
	n->can_cache = hs->tflags & NBD_FLAG_SEND_CACHE;
	n->phase = CONN_READY;
	n->rpos = n->rlen = n->rneed = 0;
	n->last_rx_ns = n->last_tx_ns = ev_now_ns();
	n->fenced = hs->fenced;
	n->stall_said = false;
	const struct dev_ident *id = n->opts.ident;
	if (!id) {
		went_up(n);
		return;
	}
	if (hs->size < id->off + id->len) {
		attempt_failed(n, "too small (%llu bytes) to hold its label at %llu",
			       (unsigned long long)hs->size, (unsigned long long)id->off);
		return;
	}
	nbd_node_verify_start(n);
	nbd_node_update_events(n);
}

void nbd_conn_verified(struct nbd_dev *n, int err)
{
	if (err) {
		attempt_failed(n, "reading its label: %s", strerror(err));
		return;
	}
	char why[256];
	const struct dev_ident *id = n->opts.ident;
	if (id->check(id->arg, n->vbuf, why, sizeof(why)) < 0) {
		if (strcmp(why, n->refusal) != 0) {
			snprintf(n->refusal, sizeof(n->refusal), "%s", why);
			log_warn("node %s: not used: %s", n->uri_str, why);
			event_fire("label-mismatch", NULL, n->uri_str, "%s", why);
		}
		attempt_failed(n, "%s", why);
		return;
	}
	if (n->refusal[0])
		log_info("node %s: its label is right again", n->uri_str);
	n->refusal[0] = '\0';
	went_up(n);
}

/* The connection is ready (and the node's label taken): requests flow. */
static void went_up(struct nbd_dev *n)
{
	struct nbd_hs *hs = &n->hs;
	bool ro = hs->tflags & NBD_FLAG_READ_ONLY;
	bool first = n->state == ST_CONNECTING || n->never_up;
	n->backoff_ms = 0;
	unsigned attempts = n->attempts;
	n->attempts = 0;
	bool was_connecting = n->state == ST_CONNECTING;
	if (first) {
		n->never_up = false;
		n->dev.size = hs->size;
		/* What the node lacks is emulated (nbd.c), so the storage can
		 * offer all of it; only FAST_ZERO cannot be faked. */
		n->dev.caps = DEV_CAP_FLUSH | DEV_CAP_FUA | DEV_CAP_TRIM | DEV_CAP_ZERO |
			      DEV_CAP_CACHE | DEV_CAP_EXTENTS;
		if (n->can_fast_zero)
			n->dev.caps |= DEV_CAP_FAST_ZERO;
		if (hs->tflags & NBD_FLAG_CAN_MULTI_CONN)
			n->dev.caps |= DEV_CAP_MULTI_CONN;
		if (ro)
			n->dev.caps |= DEV_CAP_READONLY;
		if (n->spipe && !n->tls)
			n->dev.caps |= DEV_CAP_PIPE;
		n->dev.min_block = hs->min_block ? hs->min_block : 1;
		n->dev.max_io =
		    hs->max_block ? MIN(hs->max_block, NBD_MAX_PAYLOAD) : NBD_MAX_PAYLOAD;
		n->state = ST_UP;
		log_info("node %s: up, %llu bytes%s%s%s", n->uri_str, (unsigned long long)hs->size,
			 ro ? ", read-only" : "", n->tls ? ", TLS " : "",
			 n->tls ? tls_creds_kind(n->opts.tls) : "");
		if (was_connecting) {
			ev_defer(n->loop, &n->ready_work);
		} else {
			/* keep_trying: up at last, after `ready` said it was not */
			n->down_since_ns = 0;
			n->error[0] = '\0';
			event_fire("node-back", NULL, n->uri_str,
				   "up at last (it was down at start)");
			nbd_node_first_up(n);
			if (n->dev.event)
				n->dev.event(&n->dev, DEV_EVENT_UP, n->dev.event_arg);
		}
	} else {
		double down = (double)(ev_now_ns() - n->down_since_ns) / 1e9;
		log_info("node %s: back after %.1f s (%u attempts); resending %u requests, sending "
			 "%u that waited",
			 n->uri_str, down, attempts, n->lost_on_wire,
			 n->nactive > n->lost_on_wire ? n->nactive - n->lost_on_wire : 0);
		n->reconnects++;
		n->resent += n->lost_on_wire;
		n->lost_on_wire = 0;
		n->state = ST_UP;
		n->down_since_ns = 0;
		n->error[0] = '\0';
		event_fire("node-back", NULL, n->uri_str, "back after %.1f s (%u attempts)", down,
			   attempts);
		if (n->dev.event)
			n->dev.event(&n->dev, DEV_EVENT_UP, n->dev.event_arg);
	}
	/* Checksums as this connection's server offers them: a node that
	 * came back as another server (an nbdkit) may not any more. */
	bool had = n->dev.caps & DEV_CAP_CSUM;
	if (n->csum)
		n->dev.caps |= DEV_CAP_CSUM;
	else
		n->dev.caps &= ~DEV_CAP_CSUM;
	if (n->opts.csum && (first || had != n->csum))
		log_info("node %s: %s", n->uri_str,
			 n->csum ? "offers checksums (dst:csum-4k)"
				 : "offers no checksums (no dst:csum-4k): verify reads its data");
	nbd_node_update_events(n);
	nbd_node_kick_send(n);
}

static void handshake_io(struct nbd_dev *n);

/* One step of the TLS handshake; when it is done, haggling goes on. */
static void tls_step(struct nbd_dev *n)
{
	char err[512];
	int rc = tls_handshake_step(n->tls_sess, n->opts.tls, &n->tls_want_write, err, sizeof(err));
	if (rc > 0) {
		nbd_node_update_events(n);
		return;
	}
	if (rc < 0) {
		attempt_failed(n, "%s", err);
		return;
	}
	n->tls = true;
	if (!n->tls_stage)
		n->tls_stage = xmalloc(TLS_RECORD_MAX);
	n->phase = CONN_HANDSHAKE;
	n->hs_have = n->hs_out_sent = 0;
	if (nbd_hs_tls_done(&n->hs) == NBD_HS_ERROR) {
		attempt_failed(n, "%s", n->hs.error);
		return;
	}
	handshake_io(n);
}

static void start_tls(struct nbd_dev *n)
{
	char err[256];
	/* The certificate must be for the host we asked for (X.509). */
	const char *host = n->uri.is_unix ? NULL : n->uri.host;
	if (tls_session_new(n->opts.tls, n->fd, host, &n->tls_sess, err, sizeof(err)) < 0) {
		attempt_failed(n, "%s", err);
		return;
	}
	n->phase = CONN_TLS;
	tls_step(n);
}

static void handshake_io(struct nbd_dev *n)
{
	for (;;) {
		while (n->hs_out_sent < n->hs.out_len) {
			ssize_t r = nbd_node_send(n, n->hs.out + n->hs_out_sent,
						  n->hs.out_len - n->hs_out_sent);
			if (r < 0) {
				if (errno == EAGAIN || errno == EINTR) {
					nbd_node_update_events(n);
					return;
				}
				attempt_failed(n, "handshake: send: %s",
					       nbd_node_io_error(n, errno));
				return;
			}
			n->hs_out_sent += (size_t)r;
		}
		if (n->tls_next) {
			n->tls_next = false;
			start_tls(n);
			return;
		}
		size_t need = n->hs.need;
		ssize_t r = nbd_node_recv(n, n->rbuf + n->hs_have, need - n->hs_have);
		if (r == 0) {
			attempt_failed(n, "handshake: the server closed the connection");
			return;
		}
		if (r < 0) {
			if (errno == EAGAIN || errno == EINTR) {
				nbd_node_update_events(n);
				return;
			}
			attempt_failed(n, "handshake: %s", nbd_node_io_error(n, errno));
			return;
		}
		n->answered = true; /* an NBD server is there, right or wrong */
		n->hs_have += (size_t)r;
		if (n->hs_have < need)
			continue;
		n->hs_have = 0;
		n->hs_out_sent = 0;
		enum nbd_hs_status st = nbd_hs_feed(&n->hs, n->rbuf, need);
		if (st == NBD_HS_ERROR) {
			attempt_failed(n, "%s", n->hs.error);
			return;
		}
		if (st == NBD_HS_TLS) {
			/* What hs->out holds goes first, in plaintext. */
			n->tls_next = true;
			continue;
		}
		if (st == NBD_HS_DONE) {
			handshake_done(n);
			return;
		}
	}
}

void nbd_conn_on_event(struct ev_io *w, uint32_t events)
{
	struct nbd_dev *n = container_of(w, struct nbd_dev, w);
	switch (n->phase) {
	case CONN_CONNECT: {
		int err = 0;
		socklen_t len = sizeof(err);
		if (getsockopt(n->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err == 0) {
			connected(n);
			return;
		}
		nbd_conn_close(n);
		if (n->ai_next) {
			try_connect(n);
			return;
		}
		attempt_failed(n, "connect: %s", strerror(err));
		return;
	}
	case CONN_HANDSHAKE: handshake_io(n); return;
	case CONN_TLS: tls_step(n); return;
	case CONN_READY: nbd_node_on_io(w, events); return;
	case CONN_NONE: return;
	}
}

void nbd_conn_lost(struct nbd_dev *n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(n->error, sizeof(n->error), fmt, ap);
	va_end(ap);
	if (n->state != ST_UP && nbd_node_verifying(n)) {
		/* Lost while its label was being read: this attempt failed. */
		char why[sizeof(n->error)];
		snprintf(why, sizeof(why), "%s", n->error);
		attempt_failed(n, "%s", why);
		return;
	}
	nbd_conn_close(n);
	/* Those the node may have seen are resent; the others just go. */
	n->lost_on_wire = 0;
	for (struct slot *s = n->active_head; s && s != n->unsent; s = s->next)
		n->lost_on_wire++;
	if (n->unsent && n->send_off)
		n->lost_on_wire++;
	nbd_node_requeue_all(n);
	bool was_up = n->state == ST_UP;
	if (n->state == ST_UP && n->opts.fail_fast) {
		n->state = ST_FAILED;
		n->down_since_ns = ev_now_ns();
		log_warn("node %s: %s; reconnecting (%u requests fail meanwhile)", n->uri_str,
			 n->error, n->nactive);
		n->lost_on_wire = 0;
		nbd_node_fail_all(n, EIO);
	} else if (n->state == ST_UP) {
		n->state = ST_RECONNECTING;
		n->down_since_ns = ev_now_ns();
		log_warn("node %s: %s; reconnecting (%u requests to resend)", n->uri_str, n->error,
			 n->lost_on_wire);
	}
	/* The first try at once: a node that restarted is back quickly. */
	n->backoff_ms = 0;
	n->attempts = 0;
	ev_timer_start(n->loop, &n->retry, 0);
	if (was_up)
		event_fire("node-lost", NULL, n->uri_str, "%s", n->error);
	if (was_up && n->dev.event)
		n->dev.event(&n->dev, DEV_EVENT_DOWN, n->dev.event_arg);
}

void nbd_conn_retry(struct ev_timer *t)
{
	struct nbd_dev *n = container_of(t, struct nbd_dev, retry);
	if (n->phase == CONN_NONE && !n->given_up)
		nbd_conn_start(n);
}

void nbd_conn_watchdog(struct ev_timer *t)
{
	struct nbd_dev *n = container_of(t, struct nbd_dev, watchdog);
	uint64_t now = ev_now_ns();
	if ((n->phase == CONN_CONNECT || n->phase == CONN_HANDSHAKE || n->phase == CONN_TLS) &&
	    now - n->attempt_start_ns > n->opts.connect_timeout_s * NS_PER_S) {
		attempt_failed(n, "%s: timed out after %u s",
			       n->phase == CONN_CONNECT ? "connect"
			       : n->phase == CONN_TLS	? "TLS handshake"
							: "handshake",
			       n->opts.connect_timeout_s);
	}
	if (n->given_up)
		return;
	/* A node hangs when nothing came back for the request timeout while
	 * the oldest request was on the wire that long, or while a request
	 * could not even be sent for that long (the node stopped reading). */
	uint64_t rt = n->opts.request_timeout_s * NS_PER_S;
	struct slot *oldest = n->active_head;
	bool waiting = oldest && (oldest->sent ? now - oldest->sent_ns > rt
					       : n->send_blocked && now - n->last_tx_ns > rt);
	if (n->phase == CONN_READY && waiting && now - n->last_rx_ns > rt) {
		if (n->fenced || n->opts.fail_fast || n->state != ST_UP) {
			nbd_conn_lost(n, "no reply for %u s (%u requests in flight)",
				      n->opts.request_timeout_s, n->nactive);
		} else if (!n->stall_said) {
			/* (A mirror leg, fail_fast, is dropped instead: the
			 * mirror resends nothing to it, it resyncs it.) */
			n->stall_said = true;
			n->stalls++;
			log_warn("node %s: no reply for %u s (%u requests in flight); not "
				 "reconnecting: the node does not fence (not a dst export), so a "
				 "resent write could be overtaken by the old one. Waiting for it",
				 n->uri_str, n->opts.request_timeout_s, n->nactive);
		}
	} else if (n->stall_said && now - n->last_rx_ns <= rt) {
		n->stall_said = false;
		log_info("node %s: answering again", n->uri_str);
	}
	/* (down_since may be later than `now`: set by conn_lost just above.) */
	if (n->state == ST_RECONNECTING && n->opts.io_timeout_s && now > n->down_since_ns &&
	    now - n->down_since_ns > n->opts.io_timeout_s * NS_PER_S) {
		n->state = ST_FAILED;
		log_warn("node %s: unreachable for %u s (io-timeout): its IO fails until it is "
			 "back (%s)",
			 n->uri_str, n->opts.io_timeout_s, n->error);
		nbd_node_fail_all(n, EIO);
	}
	ev_timer_start(n->loop, &n->watchdog, NBD_WATCHDOG_NS);
}
