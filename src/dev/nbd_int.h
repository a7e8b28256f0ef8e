/* nbd_int.h - internals of the remote node device, shared by nbd.c (requests
 * on the wire: slots, batched sends, batched receives) and nbd_conn.c (the
 * connection's life: connect, handshake, reconnect with backoff, timeouts).
 *
 * Node states (dev_nbd_state):
 *   connecting    first connection; IO waits
 *   up            requests flow
 *   reconnecting  connection lost; IO waits and is resent once back
 *   failed        first connection failed, or unreachable past io-timeout:
 *                 IO fails with EIO while reconnecting goes on
 *
 * With an identity check (dev_ident), every connection first reads the
 * node's label in a request of its own (the last slot, kept for it) and
 * sends nothing else until check() has taken it: only then is the node up
 * (or back). Meanwhile the phase is CONN_READY but nbd_node_verifying()
 * holds the other requests back.
 */
#ifndef DST_DEV_NBD_INT_H
#define DST_DEV_NBD_INT_H

#include <netdb.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "common/ev.h"
#include "dev.h"
#include "nbd/client_hs.h"
#include "nbd/tls.h"
#include "nbd/uri.h"

#define NBD_SLOTS	   512u		/* requests on the wire per node */
#define NBD_RBUF_SIZE	   (256u << 10) /* replies are read in batches this large */
#define NBD_MAX_IOV	   512u
#define NBD_WATCHDOG_NS	   (500 * 1000000ull)
#define NBD_BACKOFF_MIN_MS 100u
#define NBD_BACKOFF_MAX_MS 5000u

enum node_state { ST_CONNECTING, ST_UP, ST_RECONNECTING, ST_FAILED };
/* Where the current connection is. CONN_TLS: the TLS handshake that
 * follows STARTTLS (nbds:// nodes), between two parts of the NBD one. */
enum conn_phase { CONN_NONE, CONN_CONNECT, CONN_HANDSHAKE, CONN_TLS, CONN_READY };

/* One request on the wire (or queued for it). A dev_io may take several
 * requests in turn: FUA emulated by a flush, zeroes written as data, huge
 * trims in pieces; `progress` counts bytes already done. */
struct slot {
	struct dev_io *io;
	struct slot *prev, *next; /* the active list, in issue order */
	uint64_t cookie;	  /* index | generation << 32 */
	uint64_t off;		  /* this request */
	uint32_t len;
	uint16_t cmd, cflags;
	uint8_t step;
	bool sent;
	uint64_t progress;
	int err; /* first error chunk of a structured reply */
	const void *payload;
	struct spipe *pipe; /* a write's payload is here, not at payload */
	uint32_t payload_len;
	uint64_t sent_ns;
	uint8_t hdr[28];
};

struct nbd_dev {
	struct dev dev;
	struct ev_loop *loop;
	char *uri_str;
	struct nbd_uri uri;
	struct dev_nbd_opts opts;
	enum node_state state;
	enum conn_phase phase;
	char error[512]; /* the last thing that went wrong */

	/* The connection. */
	int fd;
	struct ev_io w;
	uint32_t wmask;
	struct nbd_hs hs;
	size_t hs_have, hs_out_sent;
	struct addrinfo *ai, *ai_next; /* TCP: addresses left to try */
	uint64_t attempt_start_ns;

	/* TLS (nbds://). Plaintext nodes only test `tls`; once it is set all
	 * IO goes through tls_sess. Small requests are gathered into
	 * tls_stage, one record for many; large payloads go 16 KiB at a time
	 * from their own buffer. */
	bool tls;
	bool tls_next; /* the handshake's plaintext is out: TLS starts */
	bool tls_want_write;
	struct tls_creds *own_tls; /* from the URI's query (dev.h) */
	gnutls_session_t tls_sess;
	uint8_t *tls_stage;
	uint32_t tls_stage_len;
	struct ev_deferred recv_work; /* GnuTLS holds bytes epoll cannot see */

	/* Negotiated. */
	bool structured, base_alloc;
	uint32_t base_alloc_id;
	bool csum; /* dst:csum-4k (asked for with opts.csum) */
	uint32_t csum_id;
	bool can_fua, can_flush, can_trim, can_zero, can_fast_zero, can_cache;

	/* Requests. */
	struct slot *slots;
	struct slot *free_slots;		/* singly linked through next */
	struct slot *active_head, *active_tail; /* issue order */
	struct slot *unsent;			/* first active slot not fully sent */
	size_t send_off;			/* bytes of `unsent` already sent */
	bool send_blocked;			/* socket full: wait for EPOLLOUT */
	struct dev_io *wait_head, *wait_tail;	/* no free slot yet */
	struct dev_io *done_head, *done_tail;	/* finished without the wire */
	struct ev_deferred send_work, deliver_work, ready_work;
	uint32_t gen;
	unsigned nactive;
	struct iovec iov[NBD_MAX_IOV];

	/* Receiving: replies parsed out of rbuf; large payloads go straight
	 * into the caller's buffer. */
	uint8_t *rbuf;
	size_t rpos, rlen;
	size_t rneed; /* bytes the partial reply at rpos needs in all */
	uint8_t *direct;
	size_t direct_left;
	struct slot *direct_slot;
	bool direct_then_done;
	/* A read payload spliced from the socket into a pipe (DEV_F_PIPE):
	 * pipe_left bytes to come, into direct_slot's io->pipe. After one,
	 * only a reply header is read at a time (hdr_only), so that the next
	 * payload is still in the socket to be spliced, not read ahead. */
	size_t pipe_left;
	bool hdr_only;

	/* Spliced writes: a payload is tee'd from its request's pipe into
	 * spipe and spliced from there into the socket; spipe holds what of
	 * it has not left yet. NULL on a TLS node, or when no pipe was to be
	 * had: writes are copied. */
	struct spipe *spipe;
	bool gather_pipe; /* gather() stopped at a spliced payload */
	uint64_t spliced_bytes, copied_bytes;

	/* Timing and counters. */
	struct ev_timer watchdog, retry;
	uint64_t backoff_ms;
	uint64_t down_since_ns, last_rx_ns, last_tx_ns;
	uint64_t sent, completed, failed, reconnects, resent;
	unsigned lost_on_wire; /* requests sent (or half sent) when the connection went */
	unsigned attempts;
	bool given_up; /* the first connection failed: no retries */
	bool never_up; /* keep_trying: not connected yet, size and caps unknown */
	bool answered; /* this attempt heard an NBD server: something is there */
	uint32_t rand_state;

	dev_ready_fn ready;
	void *ready_arg;
	int ready_err;

	/* Identity check (opts.ident). */
	struct slot *vslot; /* slots[NBD_SLOTS], only for the label read */
	struct dev_io vio;
	uint8_t *vbuf;
	char refusal[256]; /* why the last check refused the node ("": it did not) */

	/* Fencing (opts.fence): did this connection's server take it? */
	bool fenced;
	bool stall_said; /* an unfenced node's stall was logged */
	uint64_t stalls;
};

/* nbd.c */
void nbd_node_kick_send(struct nbd_dev *n);
/* recv(2) / send(2), or through TLS once it is on; errors as errno, and
 * nbd_node_io_error() words them. */
ssize_t nbd_node_recv(struct nbd_dev *n, void *buf, size_t len);
ssize_t nbd_node_send(struct nbd_dev *n, const void *buf, size_t len);
const char *nbd_node_io_error(const struct nbd_dev *n, int err);
void nbd_node_on_io(struct ev_io *w, uint32_t events); /* phase READY */
void nbd_node_requeue_all(struct nbd_dev *n);
/* Up for the first time (keep_trying): the ios that waited go out. */
void nbd_node_first_up(struct nbd_dev *n);	    /* connection lost */
void nbd_node_fail_all(struct nbd_dev *n, int err); /* io-timeout, first connect */
void nbd_node_update_events(struct nbd_dev *n);
void nbd_node_verify_start(struct nbd_dev *n);	/* send the label read */
void nbd_node_verify_cancel(struct nbd_dev *n); /* the connection goes */
static inline bool nbd_node_verifying(const struct nbd_dev *n)
{
	return n->vslot->io != NULL; /* the label read is out, alone */
}

/* nbd_conn.c */
void nbd_conn_start(struct nbd_dev *n);
void nbd_conn_lost(struct nbd_dev *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void nbd_conn_on_event(struct ev_io *w, uint32_t events);
void nbd_conn_watchdog(struct ev_timer *t);
void nbd_conn_retry(struct ev_timer *t);
void nbd_conn_close(struct nbd_dev *n);
void nbd_conn_verified(struct nbd_dev *n, int err); /* the label read came back */

#endif
