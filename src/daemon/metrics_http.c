/* metrics_http.c - GET /metrics over HTTP with libmicrohttpd, on the
 * daemon's event loop (see metrics_http.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/ev.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/util.h"
#include "metrics_http.h"

/* Scrapers are few: a handful of connections, dropped when idle. */
#define MH_MAX_CONNECTIONS 16u
#define MH_IDLE_TIMEOUT_S  10u

struct metrics_http {
	struct ev_loop *loop;
	struct MHD_Daemon *mhd;
	struct ev_io w;	     /* libmicrohttpd's epoll fd */
	struct ev_timer tmo; /* its next timeout */
	metrics_gen_fn gen;
	void *arg;
	char *url;
};

static void mh_logger(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	size_t n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = '\0';
	log_warn("metrics http: %s", msg);
}

static enum MHD_Result answer(struct MHD_Connection *conn, unsigned status, const char *type,
			      const char *body, size_t len)
{
	struct MHD_Response *r =
	    MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	enum MHD_Result rc = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	struct metrics_http *h = cls;
	static const char text[] = "text/plain; charset=utf-8";
	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD)) {
		static const char m[] = "only GET /metrics here\n";
		return answer(conn, MHD_HTTP_METHOD_NOT_ALLOWED, text, m, sizeof(m) - 1);
	}
	if (strcmp(url, "/metrics")) {
		static const char m[] = "not found: the metrics are at /metrics\n";
		return answer(conn, MHD_HTTP_NOT_FOUND, text, m, sizeof(m) - 1);
	}
	const char *accept = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Accept");
	bool om = accept && strstr(accept, "application/openmetrics-text");
	struct strbuf b;
	sb_init(&b);
	h->gen(h->arg, om, &b);
	enum MHD_Result rc =
	    answer(conn, MHD_HTTP_OK, om ? MX_CONTENT_TYPE_OM : MX_CONTENT_TYPE_PROM,
		   b.s ? b.s : "", b.len);
	sb_free(&b);
	return rc;
}

/* After anything libmicrohttpd did: when it wants to run again. */
static void rearm(struct metrics_http *h)
{
	MHD_UNSIGNED_LONG_LONG ms;
	if (MHD_get_timeout(h->mhd, &ms) == MHD_YES)
		ev_timer_start(h->loop, &h->tmo, (uint64_t)ms * 1000000ull);
	else
		ev_timer_stop(h->loop, &h->tmo);
}

static void on_events(struct ev_io *w, uint32_t events)
{
	struct metrics_http *h = container_of(w, struct metrics_http, w);
	MHD_run(h->mhd);
	rearm(h);
}

static void on_timeout(struct ev_timer *t)
{
	struct metrics_http *h = container_of(t, struct metrics_http, tmo);
	MHD_run(h->mhd);
	rearm(h);
}

/* addr as a socket address: a bare port is on 127.0.0.1. */
static int resolve(const char *addr, struct sockaddr_storage *ss, char *err, size_t errlen)
{
	char host[256], port[16];
	const char *p = addr;
	if (strchr(addr, ':')) {
		if (split_host_port(addr, host, sizeof(host), port, sizeof(port)) < 0)
			goto bad;
		p = port;
	} else {
		host[0] = '\0'; /* a bare PORT */
	}
	uint64_t pn;
	if (parse_u64(p, &pn) < 0 || pn > 65535)
		goto bad;
	snprintf(port, sizeof(port), "%llu", (unsigned long long)pn);
	if (!host[0])
		snprintf(host, sizeof(host), "127.0.0.1");
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
				 .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *res;
	int rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0) {
		snprintf(err, errlen, "metrics-listen %s: %s", addr, gai_strerror(rc));
		return -EINVAL;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);
	return 0;
bad:
	snprintf(err, errlen, "metrics-listen %s: expected PORT or ADDR:PORT", addr);
	return -EINVAL;
}

struct metrics_http *metrics_http_start(struct ev_loop *loop, const char *addr, metrics_gen_fn gen,
					void *arg, char *err, size_t errlen)
{
	struct sockaddr_storage ss = {0};
	if (resolve(addr, &ss, err, errlen) < 0)
		return NULL;
	struct metrics_http *h = xcalloc(1, sizeof(*h));
	h->loop = loop;
	h->gen = gen;
	h->arg = arg;
	h->w.fn = on_events;
	h->tmo.fn = on_timeout;
	bool v6 = ss.ss_family == AF_INET6;
	uint16_t port = v6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
			   : ntohs(((struct sockaddr_in *)&ss)->sin_port);
	/* MHD_USE_EPOLL without a thread of its own: we poll its epoll fd. */
	unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG | (v6 ? MHD_USE_IPv6 : 0);
	errno = 0;
	h->mhd = MHD_start_daemon(
	    flags, port, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
	    MHD_OPTION_CONNECTION_LIMIT, MH_MAX_CONNECTIONS, MHD_OPTION_CONNECTION_TIMEOUT,
	    MH_IDLE_TIMEOUT_S, MHD_OPTION_EXTERNAL_LOGGER, mh_logger, h, MHD_OPTION_END);
	if (!h->mhd) {
		snprintf(err, errlen, "metrics-listen %s: cannot listen: %s", addr,
			 errno ? strerror(errno) : "libmicrohttpd failed");
		free(h);
		return NULL;
	}
	const union MHD_DaemonInfo *fi = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	const union MHD_DaemonInfo *pi = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_BIND_PORT);
	if (!fi || ev_io_start(loop, &h->w, fi->epoll_fd, EPOLLIN) < 0) {
		snprintf(err, errlen, "metrics-listen %s: cannot watch libmicrohttpd's epoll fd",
			 addr);
		MHD_stop_daemon(h->mhd);
		free(h);
		return NULL;
	}
	char a[INET6_ADDRSTRLEN] = "";
	if (v6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, a, sizeof(a));
	else
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, a, sizeof(a));
	h->url = xasprintf("http://%s%s%s:%u/metrics", v6 ? "[" : "", a, v6 ? "]" : "",
			   pi ? (unsigned)pi->port : (unsigned)port);
	rearm(h);
	log_info("metrics: serving %s", h->url);
	return h;
}

const char *metrics_http_url(const struct metrics_http *h)
{
	return h->url;
}

void metrics_http_stop(struct metrics_http *h)
{
	if (!h)
		return;
	ev_timer_stop(h->loop, &h->tmo);
	ev_io_stop(h->loop, &h->w);
	MHD_stop_daemon(h->mhd);
	free(h->url);
	free(h);
}
