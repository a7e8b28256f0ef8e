/* server.c - NBD server: listeners, connection life, socket input/output,
 * request slots and the resource wait queue. Protocol logic lives in
 * handshake.c and transmit.c. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/event.h"
#include "common/log.h"
#include "common/pipepool.h"
#include "common/util.h"
#include "proto.h"
#include "server_int.h"

#define DEFAULT_BUF_BUDGET   (128u << 20)
#define DEFAULT_MAX_REQUESTS 1024u
#define DEFAULT_MAX_CLIENTS  64u
#define DEFAULT_HS_TIMEOUT   30u

static void conn_on_event(struct ev_io *w, uint32_t events);
static void conn_flush_deferred(struct ev_deferred *d);
static void conn_free_deferred(struct ev_deferred *d);
static void srv_kick(struct ev_deferred *d);
static void srv_shutdown_check(struct ev_deferred *d);

struct nbd_server *nbd_server_new(struct ev_loop *loop, const struct nbd_server_config *cfg,
				  char *err, size_t errlen)
{
	if (cfg->tls != TLS_OFF && !cfg->tls_creds) {
		snprintf(err, errlen,
			 "--tls %s needs credentials: --tls-psk FILE or --tls-certs DIR",
			 tls_mode_name(cfg->tls));
		return NULL;
	}
	struct nbd_server *srv = xcalloc(1, sizeof(*srv));
	srv->loop = loop;
	srv->cfg = *cfg;
	srv->name = xstrdup(cfg->name ? cfg->name : "");
	srv->desc = cfg->desc ? xstrdup(cfg->desc) : NULL;
	if (!srv->cfg.buf_budget)
		srv->cfg.buf_budget = DEFAULT_BUF_BUDGET;
	if (!srv->cfg.max_requests)
		srv->cfg.max_requests = DEFAULT_MAX_REQUESTS;
	if (!srv->cfg.max_clients)
		srv->cfg.max_clients = DEFAULT_MAX_CLIENTS;
	if (!srv->cfg.handshake_timeout_s)
		srv->cfg.handshake_timeout_s = DEFAULT_HS_TIMEOUT;
	/* Round the budget up to whole maximum-size blocks: one max request
	 * must always fit, or a client could wait forever. */
	size_t budget = srv->cfg.buf_budget;
	budget = (budget + NBD_MAX_PAYLOAD - 1) / NBD_MAX_PAYLOAD * NBD_MAX_PAYLOAD;
	srv->cfg.buf_budget = budget;
	/* One client alone must not hold every buffer (by not reading its
	 * replies, say): by default it gets a quarter. */
	if (!srv->cfg.client_budget)
		srv->cfg.client_budget = budget / 4;
	int rc = bufpool_init(&srv->pool, budget, NBD_MAX_PAYLOAD);
	if (rc < 0) {
		snprintf(err, errlen, "buffer pool of %zu MiB: %s", budget >> 20, strerror(-rc));
		free(srv->name);
		free(srv->desc);
		free(srv);
		return NULL;
	}
	srv->reqs = xcalloc(srv->cfg.max_requests, sizeof(*srv->reqs));
	for (unsigned i = srv->cfg.max_requests; i-- > 0;) {
		srv->reqs[i].next = srv->free_reqs;
		srv->free_reqs = &srv->reqs[i];
	}
	srv->free_count = srv->cfg.max_requests;
	srv->kick_work.fn = srv_kick;
	srv->shutdown_check.fn = srv_shutdown_check;
	return srv;
}

/* ---- listeners ---- */

static void on_accept(struct ev_io *w, uint32_t events);

static struct nbd_listener *add_listener(struct nbd_server *srv, int fd, char *uri, char *unix_path)
{
	srv->listeners = realloc(srv->listeners, (srv->n_listeners + 1) * sizeof(*srv->listeners));
	if (!srv->listeners)
		abort();
	/* Re-register earlier listeners: realloc may have moved their ev_io. */
	for (size_t i = 0; i < srv->n_listeners; i++) {
		struct nbd_listener *l = &srv->listeners[i];
		ev_io_stop(srv->loop, &l->w);
		ev_io_start(srv->loop, &l->w, l->w.fd, EPOLLIN);
		l->guard->w = &l->w;
	}
	struct nbd_listener *l = &srv->listeners[srv->n_listeners++];
	memset(l, 0, sizeof(*l));
	l->srv = srv;
	l->uri = uri;
	l->unix_path = unix_path;
	l->w.fn = on_accept;
	l->guard = xmalloc(sizeof(*l->guard));
	char what[200];
	snprintf(what, sizeof(what), "listener %s", uri);
	accept_guard_init(l->guard, srv->loop, what);
	ev_io_start(srv->loop, &l->w, fd, EPOLLIN);
	return l;
}

int nbd_server_listen_tcp(struct nbd_server *srv, const char *addr, int backlog, char *err,
			  size_t errlen)
{
	char host[256], port[32];
	if (split_host_port(addr, host, sizeof(host), port, sizeof(port)) < 0) {
		snprintf(err, errlen, "listen %s: expected ADDR:PORT", addr);
		return -EINVAL;
	}
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
				 .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *res;
	int rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0) {
		snprintf(err, errlen, "listen %s: %s", addr, gai_strerror(rc));
		return -EINVAL;
	}
	int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "listen %s: socket: %s", addr, strerror(errno));
		freeaddrinfo(res);
		return -errno;
	}
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, backlog) < 0) {
		int e = errno;
		snprintf(err, errlen, "listen %s: %s", addr, strerror(e));
		close(fd);
		freeaddrinfo(res);
		return -e;
	}
	/* Name the real port (PORT may have been 0). */
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	getsockname(fd, (struct sockaddr *)&ss, &sl);
	char a[INET6_ADDRSTRLEN] = "";
	unsigned p = 0;
	char *uri;
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
		p = ntohs(s6->sin6_port);
		uri = xasprintf("nbd://[%s]:%u", a, p);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
		p = ntohs(s4->sin_port);
		uri = xasprintf("nbd://%s:%u", a, p);
	}
	freeaddrinfo(res);
	add_listener(srv, fd, uri, NULL);
	log_info("listening on %s", uri);
	return 0;
}

int nbd_server_listen_unix(struct nbd_server *srv, const char *path, int backlog, char *err,
			   size_t errlen)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "socket %s: path too long (max %zu)", path,
			 sizeof(sun.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	strcpy(sun.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket %s: %s", path, strerror(errno));
		return -errno;
	}
	struct stat st;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "socket %s: exists and is not a socket", path);
			close(fd);
			return -EEXIST;
		}
		/* A socket file nobody answers on is stale: replace it. */
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		bool alive =
		    probe >= 0 && connect(probe, (struct sockaddr *)&sun, sizeof(sun)) == 0;
		if (probe >= 0)
			close(probe);
		if (alive) {
			snprintf(err, errlen, "socket %s: Address already in use", path);
			close(fd);
			return -EADDRINUSE;
		}
		unlink(path);
	}
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 || listen(fd, backlog) < 0) {
		int e = errno;
		snprintf(err, errlen, "socket %s: %s", path, strerror(e));
		close(fd);
		return -e;
	}
	char *uri = xasprintf("nbd+unix:///?socket=%s", path);
	add_listener(srv, fd, uri, xstrdup(path));
	log_info("listening on %s", uri);
	return 0;
}

size_t nbd_server_uris(struct nbd_server *srv, const char **uris, size_t max)
{
	size_t n = 0;
	for (size_t i = 0; i < srv->n_listeners && n < max; i++)
		uris[n++] = srv->listeners[i].uri;
	return n;
}

static void format_peer(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN] = "?";
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)ss;
		inet_ntop(AF_INET, &s->sin_addr, a, sizeof(a));
		snprintf(buf, len, "%s:%u", a, ntohs(s->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)ss;
		inet_ntop(AF_INET6, &s->sin6_addr, a, sizeof(a));
		snprintf(buf, len, "[%s]:%u", a, ntohs(s->sin6_port));
	} else {
		snprintf(buf, len, "unix");
	}
}

static void hs_timeout(struct ev_timer *t)
{
	struct nbd_conn *c = container_of(t, struct nbd_conn, hs_timer);
	c->srv->st.clients_dropped++;
	conn_close(c, "handshake timed out");
}

static struct nbd_conn *conn_new(struct nbd_server *srv, int fd, const char *peer,
				 enum acl_access access)
{
	struct nbd_conn *c = xcalloc(1, sizeof(*c));
	c->srv = srv;
	c->fd = fd;
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	c->access = access;
	if (c->access == ACL_RW && srv->cfg.readonly)
		c->access = ACL_RO;
	c->rbuf = xmalloc(CONN_RBUF_SIZE);
	c->w.fn = conn_on_event;
	c->flush_work.fn = conn_flush_deferred;
	c->free_work.fn = conn_free_deferred;
	c->piece_work.fn = tx_piece_deferred;
	c->hs_timer.fn = hs_timeout;
	c->tls_read_work.fn = conn_tls_read_deferred;
	c->next = srv->conns;
	if (srv->conns)
		srv->conns->prev = c;
	srv->conns = c;
	srv->st.clients++;
	srv->st.clients_total++;
	return c;
}

static void on_accept(struct ev_io *w, uint32_t events)
{
	struct nbd_listener *l = container_of(w, struct nbd_listener, w);
	struct nbd_server *srv = l->srv;
	for (int i = 0; i < 16; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd = accept_guard_accept(l->guard, w, (struct sockaddr *)&ss, &sl);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_warn("accept on %s: %s", l->uri, strerror(errno));
			return;
		}
		char peer[64];
		format_peer(&ss, peer, sizeof(peer));
		if (srv->shutting_down || !limits_may_accept(srv)) {
			log_warn("client %s: refused: %s", peer,
				 srv->shutting_down ? "shutting down"
						    : "too many clients (max-clients)");
			srv->st.clients_refused++;
			close(fd);
			continue;
		}
		static const struct acl loopback_only;
		enum acl_access access =
		    acl_check(srv->cfg.acl ? srv->cfg.acl : &loopback_only, (struct sockaddr *)&ss);
		if (ss.ss_family != AF_UNIX) {
			/* Keepalive: a client that vanished without a FIN (a
			 * network cut, a dead host) is noticed in about 25 s
			 * and its connection, with any IO it left, let go. */
			int one = 1, idle = 10, intvl = 5, cnt = 3;
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
			setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
			setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
			setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
		}
		struct nbd_conn *c = conn_new(srv, fd, peer, access);
		if (c->access == ACL_DENY) {
			srv->st.clients_refused++;
			log_warn("client %s: refused: address not allowed by --allow", peer);
		} else {
			log_info("client %s: connected (%s)", peer, acl_access_name(c->access));
		}
		ev_io_start(srv->loop, &c->w, fd, EPOLLIN);
		ev_timer_start(srv->loop, &c->hs_timer,
			       (uint64_t)srv->cfg.handshake_timeout_s * 1000000000ull);
		limits_conn_init(c);
		hs_start(c);
	}
}

struct nbd_conn *nbd_server_adopt(struct nbd_server *srv, int fd, const char *peer,
				  void (*closed)(void *arg), void *arg, char *err, size_t errlen)
{
	if (srv->shutting_down || srv->st.clients >= srv->cfg.max_clients) {
		snprintf(err, errlen, "%s: the NBD server %s", peer,
			 srv->shutting_down ? "is shutting down" : "has too many clients");
		return NULL;
	}
	if (set_nonblock(fd) < 0) {
		snprintf(err, errlen, "%s: %s", peer, strerror(errno));
		return NULL;
	}
	struct nbd_conn *c = conn_new(srv, fd, peer, ACL_RW);
	/* What the handshake would have ended with, for an old-style client
	 * that never negotiates: simple replies, no metadata contexts. */
	c->phase = PH_TRANSMISSION;
	int rc = ev_io_start(srv->loop, &c->w, fd, EPOLLIN);
	if (rc < 0) {
		snprintf(err, errlen, "%s: %s", peer, strerror(-rc));
		c->fd = -1;
		conn_close(c, NULL);
		return NULL;
	}
	c->closed = closed;
	c->closed_arg = arg;
	log_info("client %s: connected (%s, past the handshake)", peer, acl_access_name(c->access));
	return c;
}

void nbd_server_unwatch(struct nbd_conn *c)
{
	c->closed = NULL;
	c->closed_arg = NULL;
}

/* ---- connection life ---- */

static void conn_free(struct nbd_conn *c)
{
	struct nbd_server *srv = c->srv;
	ev_defer_cancel(srv->loop, &c->flush_work);
	ev_defer_cancel(srv->loop, &c->free_work);
	ev_defer_cancel(srv->loop, &c->piece_work);
	if (c->prev)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	srv->st.clients--;
	conn_tls_free(c);
	free(c->rbuf);
	free(c->hs_out);
	free(c->meta_export);
	bool fenced = c->fence_set;
	ev_defer_cancel(srv->loop, &c->fence_work);
	free(c);
	if (fenced)
		hs_fence_recheck(srv);
	if (srv->shutting_down)
		ev_defer(srv->loop, &srv->shutdown_check);
}

static void wait_remove(struct nbd_conn *c)
{
	struct nbd_server *srv = c->srv;
	if (!c->waiting)
		return;
	struct nbd_conn **pp = &srv->wait_head, *prev = NULL;
	while (*pp && *pp != c) {
		prev = *pp;
		pp = &(*pp)->wait_next;
	}
	if (*pp)
		*pp = c->wait_next;
	if (srv->wait_tail == c)
		srv->wait_tail = prev;
	c->waiting = false;
	c->wait_next = NULL;
}

void conn_close(struct nbd_conn *c, const char *why)
{
	if (c->dead)
		return;
	if (why)
		log_info("client %s: %s", c->peer, why);
	if (c->connect_said)
		event_fire("client-disconnect", NULL, NULL, "%s%s%s", c->peer, why ? ": " : "",
			   why ? why : "");
	c->dead = true;
	c->rx_stopped = true;
	ev_io_stop(c->srv->loop, &c->w);
	ev_timer_stop(c->srv->loop, &c->hs_timer);
	conn_tls_close(c);
	close(c->fd);
	c->fd = -1;
	wait_remove(c);
	limits_conn_close(c);
	/* Replies that can no longer be sent give their slots back now. */
	while (c->out_head) {
		struct nbd_req *r = c->out_head;
		c->out_head = r->next;
		if (!r->held) /* else its piece is in the device: io_done puts it */
			tx_reply_sent(c, r);
	}
	c->out_tail = NULL;
	/* A write whose payload was arriving will never complete. */
	if (c->rx_req) {
		struct nbd_req *r = c->rx_req;
		c->rx_req = NULL;
		tx_reply_sent(c, r);
	}
	/* Callers up the stack may still look at c: it is freed later, from
	 * the loop, once no IO of its is in the device. */
	ev_defer(c->srv->loop, &c->free_work);
	if (c->closed) {
		void (*closed)(void *) = c->closed;
		c->closed = NULL;
		closed(c->closed_arg);
	}
}

static void conn_free_deferred(struct ev_deferred *d)
{
	struct nbd_conn *c = container_of(d, struct nbd_conn, free_work);
	if (c->dead && c->inflight == 0)
		conn_free(c);
}

/* Called when an in-flight request of a dead connection finished. */
static void conn_maybe_free(struct nbd_conn *c)
{
	if (c->dead && c->inflight == 0)
		ev_defer(c->srv->loop, &c->free_work);
}

void conn_update_events(struct nbd_conn *c)
{
	if (c->dead)
		return;
	uint32_t ev = 0;
	if (c->phase == PH_TLS_HANDSHAKE) {
		ev = c->tls_want_write ? EPOLLOUT : EPOLLIN;
	} else {
		if (!c->rx_stopped && !c->waiting && c->phase != PH_STARTTLS &&
		    c->rx != RX_PIECE_WAIT)
			ev |= EPOLLIN;
		if (conn_out_pending(c))
			ev |= EPOLLOUT;
	}
	ev_io_set(c->srv->loop, &c->w, ev);
	if (c->tls && (ev & EPOLLIN))
		conn_tls_check_pending(c);
}

void conn_queue_bytes(struct nbd_conn *c, const void *p, uint32_t len)
{
	if (c->hs_len + len > c->hs_cap) {
		uint32_t cap = c->hs_cap ? c->hs_cap : 1024;
		while (cap < c->hs_len + len)
			cap *= 2;
		c->hs_out = realloc(c->hs_out, cap);
		if (!c->hs_out)
			abort();
		c->hs_cap = cap;
	}
	memcpy(c->hs_out + c->hs_len, p, len);
	c->hs_len += len;
	conn_want_flush(c);
}

void conn_want_flush(struct nbd_conn *c)
{
	ev_defer(c->srv->loop, &c->flush_work);
}

/* Replies that may go out now: not a pieced READ waiting for its next piece. */
static inline bool out_ready(const struct nbd_conn *c)
{
	return c->out_head && !c->out_head->held;
}

bool conn_out_pending(const struct nbd_conn *c)
{
	return c->hs_sent < c->hs_len || out_ready(c) ||
	       (c->tls && (c->tls_stage_len || tls_tx_pending(c->tls_sess)));
}

/* The queued output as iovecs: handshake bytes, then replies in order. */
int conn_out_gather(struct nbd_conn *c, struct iovec *iov, int max)
{
	int n = 0;
	c->gather_pipe = false;
	if (c->hs_sent < c->hs_len) {
		iov[n].iov_base = c->hs_out + c->hs_sent;
		iov[n++].iov_len = c->hs_len - c->hs_sent;
	}
	for (struct nbd_req *r = c->out_head; r && !r->held; r = r->next) {
		uint32_t parts = 1 + (r->borrowed ? r->io.iov_count : 1);
		if (n + (int)parts > max)
			break;
		uint32_t skip = r->sent;
		if (skip < r->hdr_len) {
			iov[n].iov_base = r->hdr + skip;
			iov[n++].iov_len = r->hdr_len - skip;
			skip = 0;
		} else {
			skip -= r->hdr_len;
		}
		if (r->pipe) { /* the payload is spliced after this (conn_flush) */
			c->gather_pipe = true;
			break;
		}
		if (r->borrowed) { /* the payload is the device's own memory */
			for (uint32_t i = 0; i < r->io.iov_count; i++) {
				size_t len = r->io.iov[i].iov_len;
				if (skip >= len) {
					skip -= (uint32_t)len;
					continue;
				}
				iov[n].iov_base = (char *)r->io.iov[i].iov_base + skip;
				iov[n++].iov_len = len - skip;
				skip = 0;
			}
		} else if (r->data_len > skip) {
			iov[n].iov_base = (char *)r->data + skip;
			iov[n++].iov_len = r->data_len - skip;
		}
		if (r->more) /* its next piece goes before anything else */
			break;
	}
	return n;
}

/* n bytes of the queue are gone: replies wholly sent give their slots back. */
void conn_out_consumed(struct nbd_conn *c, size_t n)
{
	size_t left = n;
	if (c->hs_sent < c->hs_len) {
		size_t take = MIN(left, (size_t)(c->hs_len - c->hs_sent));
		c->hs_sent += (uint32_t)take;
		left -= take;
		if (c->hs_sent == c->hs_len)
			c->hs_sent = c->hs_len = 0;
	}
	while (left && c->out_head) {
		struct nbd_req *r = c->out_head;
		size_t total = r->hdr_len + r->data_len;
		size_t take = MIN(left, total - r->sent);
		r->sent += (uint32_t)take;
		left -= take;
		if (r->sent == total && r->more) {
			tx_piece_sent(c, r);
			break;
		}
		if (r->sent == total) {
			c->out_head = r->next;
			if (!c->out_head)
				c->out_tail = NULL;
			tx_reply_sent(c, r);
		}
	}
	limits_sent(c);
}

/* A send failed: false when the socket is only full (wait for room), true
 * when the connection is closed. */
static bool send_broke(struct nbd_conn *c)
{
	if (errno == EAGAIN || errno == EINTR)
		return false;
	conn_close(c, errno == EPIPE || errno == ECONNRESET ? "disconnected" : strerror(errno));
	return true;
}

/* Write as much queued output as the socket takes, in one sendmsg (and a
 * splice for a read's payload in a pipe). */
static void conn_flush(struct nbd_conn *c)
{
	if (c->tls) {
		conn_tls_flush(c);
	} else {
		while (!c->dead && (c->hs_sent < c->hs_len || out_ready(c))) {
			struct nbd_req *h = c->out_head;
			if (c->hs_sent == c->hs_len && h->pipe && h->sent >= h->hdr_len) {
				/* A read's payload, from its pipe. */
				ssize_t w = spipe_to_fd(h->pipe, c->fd,
							h->hdr_len + h->data_len - h->sent, false);
				if (w < 0) {
					if (send_broke(c))
						return;
					break;
				}
				conn_out_consumed(c, (size_t)w);
				continue;
			}
			struct iovec iov[OUT_IOV_MAX];
			int n = conn_out_gather(c, iov, OUT_IOV_MAX);
			/* A spliced payload follows the last header: one segment. */
			struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)n};
			ssize_t w =
			    sendmsg(c->fd, &msg, MSG_NOSIGNAL | (c->gather_pipe ? MSG_MORE : 0));
			if (w < 0) {
				if (send_broke(c))
					return;
				break;
			}
			conn_out_consumed(c, (size_t)w);
			if ((size_t)w < 65536 && (c->hs_sent < c->hs_len || out_ready(c)))
				continue; /* socket may still have room; EAGAIN tells */
		}
	}
	if (c->dead)
		return;
	if (c->phase == PH_STARTTLS && !conn_out_pending(c)) {
		conn_tls_start(c);
		return;
	}
	if (c->phase == PH_CLOSING && !conn_out_pending(c) && !c->inflight) {
		conn_close(c, NULL);
		return;
	}
	conn_update_events(c);
}

static void conn_flush_deferred(struct ev_deferred *d)
{
	struct nbd_conn *c = container_of(d, struct nbd_conn, flush_work);
	if (!c->dead)
		conn_flush(c);
}

/* Parse what is buffered; true if the conn is still usable. */
bool conn_process(struct nbd_conn *c)
{
	limits_activity(c);
	if (c->phase == PH_TRANSMISSION)
		return tx_process(c);
	if (c->phase == PH_CLOSING || c->phase == PH_STARTTLS || c->phase == PH_TLS_HANDSHAKE)
		return true;
	return hs_process(c);
}

/* read(2), or through TLS once it is on: the plaintext path pays one
 * predictable branch. */
static inline ssize_t conn_recv(struct nbd_conn *c, void *buf, size_t len)
{
	if (!c->tls)
		return read(c->fd, buf, len);
	return tls_recv(c->tls_sess, buf, len);
}

static const char *recv_error(const struct nbd_conn *c)
{
	return c->tls && errno == EPROTO ? tls_last_error() : strerror(errno);
}

/* While a large write payload arrives, the kernel is asked not to wake us
 * before a good piece of it is there (SO_RCVLOWAT): each wake-up then moves
 * a few hundred KiB in one read, instead of whatever trickled in since the
 * last one. On 1 MiB writes that took reads per request from ~2.5 to ~1,
 * and context switches and server CPU per byte down by 10-15%. The mark
 * never exceeds what the client still owes for this payload, so nothing
 * waits for bytes that are not coming; EOF and errors wake us regardless;
 * the idle timeout looks at bytes held back this way (conn_limits.c). */
#define RX_LOWAT_MAX (256u << 10)
#define RX_LOWAT_MIN (64u << 10) /* below this the syscall costs more than it saves */

void conn_set_lowat(struct nbd_conn *c, uint32_t owed)
{
	uint32_t v = owed >= RX_LOWAT_MIN && !c->tls ? MIN(owed, RX_LOWAT_MAX) : 1;
	if (v == c->lowat || (v == 1 && c->lowat <= 1))
		return;
	int iv = (int)v;
	if (setsockopt(c->fd, SOL_SOCKET, SO_RCVLOWAT, &iv, sizeof(iv)) == 0)
		c->lowat = v;
}

/* More of a write's payload spliced into its pipe. */
static void read_pipe(struct nbd_conn *c, struct nbd_req *r)
{
	ssize_t n = spipe_from_fd(r->pipe, c->fd, r->piece_len - c->rx_got);
	if (n > 0) {
		c->rx_got += (uint32_t)n;
		conn_process(c);
		return;
	}
	if (n == 0) {
		conn_close(c, "disconnected in the middle of a write payload");
		return;
	}
	if (errno == EAGAIN) {
		/* The socket has bytes the pipe will not take: it is full
		 * (slots, not bytes). The rest is copied, on the next wake. */
		if (spipe_full_for(c->fd))
			tx_pipe_to_copy(c, r);
		return;
	}
	if (errno != EINTR)
		conn_close(c, recv_error(c));
}

void conn_read(struct nbd_conn *c)
{
	if (c->rx == RX_PIPE && c->rstart == c->rend && c->rx_req) {
		read_pipe(c, c->rx_req);
		return;
	}
	/* Large write payloads go straight from the socket into their buffer. */
	if (c->rx == RX_PAYLOAD && c->rstart == c->rend && c->rx_req) {
		struct nbd_req *r = c->rx_req;
		ssize_t n = conn_recv(c, (char *)r->buf + c->rx_got, r->piece_len - c->rx_got);
		if (n > 0) {
			c->rx_got += (uint32_t)n;
			conn_process(c);
			if (c->tls && !c->dead)
				conn_tls_check_pending(c);
			return;
		}
		if (n == 0) {
			conn_close(c, "disconnected in the middle of a write payload");
			return;
		}
		if (errno != EAGAIN && errno != EINTR)
			conn_close(c, recv_error(c));
		return;
	}
	if (c->rstart == c->rend) {
		c->rstart = c->rend = 0;
	} else if (c->rend == CONN_RBUF_SIZE && c->rstart > 0) {
		memmove(c->rbuf, c->rbuf + c->rstart, c->rend - c->rstart);
		c->rend -= c->rstart;
		c->rstart = 0;
	}
	if (c->rend == CONN_RBUF_SIZE) {
		/* Full and unparseable: only possible if processing is blocked. */
		conn_update_events(c);
		return;
	}
	uint32_t room = CONN_RBUF_SIZE - c->rend, have = c->rend - c->rstart;
	if (c->hdr_only && c->rx == RX_HEADER && have < NBD_REQUEST_SIZE)
		room = MIN(room, NBD_REQUEST_SIZE - have); /* see hdr_only */
	ssize_t n = conn_recv(c, c->rbuf + c->rend, room);
	if (n == 0) {
		bool mid = c->rstart != c->rend || c->rx != RX_HEADER;
		conn_close(c, c->phase != PH_TRANSMISSION ? "disconnected during handshake"
			      : mid ? "disconnected in the middle of a request"
				    : "disconnected");
		return;
	}
	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			conn_close(c, recv_error(c));
		return;
	}
	c->rend += (uint32_t)n;
	conn_process(c);
	if (c->tls && !c->dead)
		conn_tls_check_pending(c);
}

static void conn_on_event(struct ev_io *w, uint32_t events)
{
	struct nbd_conn *c = container_of(w, struct nbd_conn, w);
	if (c->phase == PH_TLS_HANDSHAKE) {
		conn_tls_handshake(c);
		return;
	}
	if (events & EPOLLOUT)
		conn_flush(c);
	if (c->dead)
		return;
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		if (c->rx_stopped || c->waiting || c->phase == PH_STARTTLS) {
			if (events & (EPOLLHUP | EPOLLERR))
				conn_close(c, "disconnected");
			return;
		}
		conn_read(c);
	}
}

/* ---- request slots and the wait queue ---- */

struct nbd_req *srv_req_get(struct nbd_server *srv)
{
	struct nbd_req *r = srv->free_reqs;
	if (!r)
		return NULL;
	srv->free_reqs = r->next;
	srv->free_count--;
	memset(r, 0, sizeof(*r));
	return r;
}

/* Undo srv_req_get for a request that could not get its buffer: nothing
 * was freed that a waiter could use, so nobody is woken (waking them would
 * only bring this connection straight back here: a busy loop). */
void srv_req_unget(struct nbd_server *srv, struct nbd_req *r)
{
	r->next = srv->free_reqs;
	srv->free_reqs = r;
	srv->free_count++;
	r->conn->inflight--;
	srv->st.inflight--;
}

void srv_buf_free(struct nbd_server *srv, void *buf)
{
	bufpool_free(&srv->pool, buf);
	if (srv->wait_head)
		ev_defer(srv->loop, &srv->kick_work);
}

void srv_req_put(struct nbd_server *srv, struct nbd_req *r)
{
	struct nbd_conn *c = r->conn;
	if (c)
		limits_buf_given_back(c, r);
	if (r->buf)
		bufpool_free(&srv->pool, r->buf);
	r->buf = NULL;
	if (r->borrowed)
		dev_release(srv->cfg.dev, &r->io);
	r->borrowed = false;
	spipe_put(r->pipe);
	r->pipe = NULL;
	r->next = srv->free_reqs;
	srv->free_reqs = r;
	srv->free_count++;
	if (srv->wait_head)
		ev_defer(srv->loop, &srv->kick_work);
	if (c) {
		c->inflight--;
		srv->st.inflight--;
		if (c->dead)
			conn_maybe_free(c);
		else if (c->phase == PH_CLOSING || (c->rx_stopped && srv->shutting_down))
			conn_want_flush(c);
	}
}

/* Park c until a slot or buffer frees up; it stops reading meanwhile. */
void srv_wait(struct nbd_conn *c)
{
	struct nbd_server *srv = c->srv;
	if (!c->waiting) {
		c->waiting = true;
		c->wait_next = NULL;
		if (srv->kicking == c) {
			/* Resumed from the head and still short: it keeps its place,
			 * or small requests could overtake a large one for ever. */
			c->wait_next = srv->wait_head;
			srv->wait_head = c;
			if (!srv->wait_tail)
				srv->wait_tail = c;
		} else if (srv->wait_tail) {
			srv->wait_tail->wait_next = c;
			srv->wait_tail = c;
		} else {
			srv->wait_head = srv->wait_tail = c;
		}
	}
	conn_update_events(c);
}

/* Resources came back: let waiting connections go on, oldest first. */
static void srv_kick(struct ev_deferred *d)
{
	struct nbd_server *srv = container_of(d, struct nbd_server, kick_work);
	while (srv->wait_head) {
		struct nbd_conn *c = srv->wait_head;
		srv->wait_head = c->wait_next;
		if (!srv->wait_head)
			srv->wait_tail = NULL;
		c->waiting = false;
		c->wait_next = NULL;
		srv->kicking = c;
		conn_process(c);
		srv->kicking = NULL;
		if (!c->dead)
			conn_update_events(c);
		/* Still short: keep FIFO order. (Paused at its own limits
		 * instead, it is off the queue: go on with the others.) */
		if (!c->dead && c->waiting && !c->paused)
			break;
	}
}

/* ---- shutdown ---- */

static void srv_shutdown_check(struct ev_deferred *d)
{
	srv_maybe_finish_shutdown(container_of(d, struct nbd_server, shutdown_check));
}

void srv_maybe_finish_shutdown(struct nbd_server *srv)
{
	if (!srv->shutting_down || srv->conns)
		return;
	ev_timer_stop(srv->loop, &srv->shutdown_timer);
	void (*done)(void *) = srv->shutdown_done;
	srv->shutdown_done = NULL;
	if (done)
		done(srv->shutdown_arg);
}

static void shutdown_timeout(struct ev_timer *t)
{
	struct nbd_server *srv = container_of(t, struct nbd_server, shutdown_timer);
	for (struct nbd_conn *c = srv->conns, *next; c; c = next) {
		next = c->next;
		conn_close(c, "cut off: shutdown grace period over");
	}
	/* Conns with IO still in the device are freed when it returns. */
	srv_maybe_finish_shutdown(srv);
}

void nbd_server_shutdown(struct nbd_server *srv, unsigned grace_s, void (*done)(void *arg),
			 void *arg)
{
	srv->shutting_down = true;
	srv->shutdown_done = done;
	srv->shutdown_arg = arg;
	for (size_t i = 0; i < srv->n_listeners; i++) {
		accept_guard_stop(srv->listeners[i].guard);
		ev_io_stop(srv->loop, &srv->listeners[i].w);
		close(srv->listeners[i].w.fd);
		srv->listeners[i].w.fd = -1;
		if (srv->listeners[i].unix_path)
			unlink(srv->listeners[i].unix_path);
	}
	for (struct nbd_conn *c = srv->conns, *next; c; c = next) {
		next = c->next;
		if (c->phase != PH_TRANSMISSION) {
			conn_close(c, "closed: server shutting down");
			continue;
		}
		/* Finish a write whose payload is arriving; take nothing new. */
		if (c->rx == RX_HEADER)
			c->rx_stopped = true;
		c->phase = c->rx == RX_HEADER ? PH_CLOSING : c->phase;
		conn_want_flush(c);
	}
	srv->shutdown_timer.fn = shutdown_timeout;
	ev_timer_start(srv->loop, &srv->shutdown_timer, (uint64_t)grace_s * 1000000000ull);
	ev_defer(srv->loop, &srv->shutdown_check);
}

void nbd_server_free(struct nbd_server *srv)
{
	if (!srv)
		return;
	for (struct nbd_conn *c = srv->conns, *next; c; c = next) {
		next = c->next;
		conn_close(c, NULL);
		if (c->inflight == 0)
			conn_free(c); /* the loop will not run again to do it */
	}
	for (size_t i = 0; i < srv->n_listeners; i++) {
		struct nbd_listener *l = &srv->listeners[i];
		accept_guard_stop(l->guard);
		free(l->guard);
		if (l->w.fd >= 0) {
			ev_io_stop(srv->loop, &l->w);
			close(l->w.fd);
			if (l->unix_path)
				unlink(l->unix_path);
		}
		free(l->uri);
		free(l->unix_path);
	}
	ev_timer_stop(srv->loop, &srv->shutdown_timer);
	ev_defer_cancel(srv->loop, &srv->kick_work);
	ev_defer_cancel(srv->loop, &srv->shutdown_check);
	free(srv->listeners);
	bufpool_fini(&srv->pool);
	free(srv->reqs);
	free(srv->name);
	free(srv->desc);
	free(srv);
}

const char *nbd_server_tls_desc(const struct nbd_server *srv, char *buf, size_t len)
{
	if (srv->cfg.tls == TLS_OFF || !srv->cfg.tls_creds)
		snprintf(buf, len, "off");
	else
		snprintf(buf, len, "%s (%s)", tls_mode_name(srv->cfg.tls),
			 tls_creds_kind(srv->cfg.tls_creds));
	return buf;
}

const char *nbd_server_splice_desc(const struct nbd_server *srv, char *buf, size_t len)
{
	if (spipe_refusal()) {
		snprintf(buf, len, "off: %s: payloads are copied", spipe_refusal());
		return buf;
	}
	if (!(srv->cfg.dev->caps & DEV_CAP_PIPE))
		return "off: no node takes spliced payloads (local nodes, nodes over TLS, "
		       "alg_parity): payloads are copied";
	if (srv->cfg.tls == TLS_REQUIRE && srv->cfg.tls_creds)
		return "off: clients use TLS: payloads are copied";
	if (srv->cfg.tls == TLS_ON && srv->cfg.tls_creds)
		return "on for plaintext clients (TLS clients' payloads are copied)";
	return "on";
}

void nbd_server_get_stats(const struct nbd_server *srv, struct nbd_server_stats *st)
{
	*st = srv->st;
	st->buf_in_use = srv->pool.in_use;
	st->buf_peak = srv->pool.peak;
	st->buf_budget = srv->pool.size;
	st->max_clients = srv->cfg.max_clients;
	st->handshake_timeout_s = srv->cfg.handshake_timeout_s;
	st->idle_timeout_s = srv->cfg.idle_timeout_s;
	st->client_budget = srv->cfg.client_budget;
	ev_poll_get_stats(srv->loop, &st->poll);
}

size_t nbd_server_clients(struct nbd_server *srv, struct nbd_client_info *out, size_t max)
{
	size_t n = 0;
	for (struct nbd_conn *c = srv->conns; c; c = c->next) {
		if (c->dead || c->rx_stopped || c->phase != PH_TRANSMISSION)
			continue;
		/* A hang-up may be waiting in the socket, not yet seen by the
		 * loop (a storage that has just stopped): it is not a user. */
		struct pollfd p = {.fd = c->fd, .events = POLLRDHUP};
		if (poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)))
			continue;
		if (n < max)
			out[n] = (struct nbd_client_info){
			    .peer = c->peer, .fd = c->fd, .readonly = c->access != ACL_RW};
		n++;
	}
	return n;
}
