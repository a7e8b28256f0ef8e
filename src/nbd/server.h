/* server.h - the NBD server frontend: serves one struct dev to many clients.
 *
 * Listens on TCP and/or Unix sockets, runs the fixed-newstyle handshake and
 * the transmission phase on the daemon's event loop. Memory is bounded: a
 * fixed pool of request slots and a buffer pool sized at creation; when
 * either is spent, the server stops reading from clients (backpressure).
 */
#ifndef DST_NBD_SERVER_H
#define DST_NBD_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/ev.h"
#include "common/lathist.h"
#include "tls.h"

struct ev_loop;
struct dev;
struct acl;
struct nbd_server;
struct nbd_conn;

struct nbd_server_config {
	const char *name; /* export name clients may ask for ("" always works) */
	const char *desc; /* NBD_INFO_DESCRIPTION, may be NULL */
	struct dev *dev;
	bool readonly;	       /* every client read-only */
	const struct acl *acl; /* NULL or empty: loopback only; Unix sockets always allowed */
	size_t buf_budget;     /* bytes of IO buffers (default 128 MiB) */
	unsigned max_requests; /* request slots for all clients (default 1024) */
	/* Per-client limits (conn_limits.c): IO buffer bytes one client may
	 * hold (default: a quarter of buf_budget), and how long it may go
	 * without a byte in or out (0, the default: for ever). */
	size_t client_budget;
	unsigned idle_timeout_s;
	unsigned max_clients;	      /* at once (default 64) */
	unsigned handshake_timeout_s; /* default 30 */
	/* TLS_ON: clients may start TLS; TLS_REQUIRE: they must, before any
	 * option but ABORT is answered. tls_creds (server side) is needed
	 * unless TLS_OFF, and must outlive the server. */
	enum tls_mode tls;
	const struct tls_creds *tls_creds;
};

struct nbd_server_stats {
	uint64_t reads, writes, flushes, trims, zeroes, block_status, other;
	uint64_t bytes_read, bytes_written;
	uint64_t direct_reads; /* READs sent from the device's own memory */
	/* READ and WRITE payload bytes moved by splice (common/pipepool.h)
	 * between the client's socket and a node's, and those that passed
	 * through the daemon's memory. */
	uint64_t read_spliced, read_copied, write_spliced, write_copied;
	uint64_t errors;	    /* error replies sent */
	uint64_t read_ns, write_ns; /* summed device latency, for averages */
	/* The same latencies bucketed, for the metrics' histograms. */
	struct lathist read_lat, write_lat, flush_lat;
	uint64_t clients_total, clients_refused;
	uint64_t clients_tls; /* connections that completed a TLS handshake */
	unsigned clients;     /* connected now */
	unsigned inflight;    /* requests being served now */
	size_t buf_in_use, buf_peak, buf_budget;
	/* Closed for a limit: a handshake or idle timeout, or still in the
	 * handshake when the server was full. */
	uint64_t clients_dropped;
	/* The limits in effect (the config's, defaults filled in). */
	unsigned max_clients, handshake_timeout_s, idle_timeout_s;
	size_t client_budget;
	/* The daemon's event loop polling before it sleeps (common/ev.h). */
	struct ev_poll_stats poll;
};

/* Returns NULL with a reason in err. */
struct nbd_server *nbd_server_new(struct ev_loop *loop, const struct nbd_server_config *cfg,
				  char *err, size_t errlen);

/* "HOST:PORT" ("[::1]:10809", "127.0.0.1:10809", ":10809" for loopback). */
int nbd_server_listen_tcp(struct nbd_server *srv, const char *addr, int backlog, char *err,
			  size_t errlen);
int nbd_server_listen_unix(struct nbd_server *srv, const char *path, int backlog, char *err,
			   size_t errlen);

/* Serve fd, a connected stream socket whose peer skips the handshake and
 * speaks the transmission phase at once with simple replies (the kernel's
 * NBD client, handed its socket over netlink). Read-write unless the server
 * is read-only. On success the server owns fd and the connection is
 * returned; closed(arg), if not NULL, is called once when the connection
 * closes (the peer hung up, or the server closed it), unless
 * nbd_server_unwatch was called first. NULL with a reason on failure. */
struct nbd_conn *nbd_server_adopt(struct nbd_server *srv, int fd, const char *peer,
				  void (*closed)(void *arg), void *arg, char *err, size_t errlen);
/* No closed call for c any more (its watcher goes away). */
void nbd_server_unwatch(struct nbd_conn *c);

/* URIs of every listener, one per line, "nbd://127.0.0.1:10809" or
 * "nbd+unix:///?socket=/path". Valid until the server is freed. */
size_t nbd_server_uris(struct nbd_server *srv, const char **uris, size_t max);

/* Stop accepting, answer what is in flight, close clients, then call done.
 * Clients still busy after grace_s seconds are cut off. */
void nbd_server_shutdown(struct nbd_server *srv, unsigned grace_s, void (*done)(void *arg),
			 void *arg);
void nbd_server_free(struct nbd_server *srv);

void nbd_server_get_stats(const struct nbd_server *srv, struct nbd_server_stats *st);
/* Whether payloads are spliced between clients and nodes, and if not why
 * ("on", "off: ..."). */
const char *nbd_server_splice_desc(const struct nbd_server *srv, char *buf, size_t len);

/* A client using the server now: past its handshake, and neither gone nor
 * going (one that hung up, or sent DISC, whose close is not yet processed,
 * does not count). */
struct nbd_client_info {
	const char *peer; /* "127.0.0.1:41234", "[::1]:41234", "unix" */
	int fd;		  /* its socket: for asking who is at the other end */
	bool readonly;
};
/* Up to max of them into out (valid until the loop runs again); returns
 * how many there are in all. */
size_t nbd_server_clients(struct nbd_server *srv, struct nbd_client_info *out, size_t max);
/* "off", or the mode and the kind of credentials: "require (PSK)". */
const char *nbd_server_tls_desc(const struct nbd_server *srv, char *buf, size_t len);

#endif
