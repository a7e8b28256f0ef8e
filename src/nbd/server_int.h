/* server_int.h - NBD server internals shared by server.c (sockets, buffers,
 * connection life), handshake.c (option haggling) and transmit.c (requests
 * and replies). Not for use outside src/nbd. */
#ifndef DST_NBD_SERVER_INT_H
#define DST_NBD_SERVER_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "common/accept_guard.h"
#include "common/acl.h"
#include "common/bufpool.h"
#include "common/ev.h"
#include "dev/dev.h"
#include "server.h"
#include "wire.h"

#define CONN_RBUF_SIZE		 (128u << 10) /* holds the largest option we accept */
#define CONN_MAX_INFLIGHT	 256u	      /* per client, so one cannot take every slot */
#define BLOCK_STATUS_MAX_EXTENTS 128u
#define REQ_HDR_MAX		 32u
#define OUT_IOV_MAX		 64

struct nbd_conn;

/* One request slot: from header parsed to reply sent. */
struct nbd_req {
	struct nbd_conn *conn;
	struct dev_io io;
	uint16_t type, flags;
	uint64_t cookie, offset;
	uint32_t length;
	uint32_t error; /* wire error */
	uint64_t start_ns;
	void *buf;    /* from the buffer pool, or NULL */
	bool borrow;  /* a READ asking the device for its memory, not a copy */
	bool pipe_ok; /* a READ that may be answered in a pipe (DEV_F_PIPE) */
	/* A WRITE's payload arriving into (or in) a pipe, or a READ's reply
	 * payload the device answered in a pipe: spliced to the socket. */
	struct spipe *pipe;
	bool borrowed; /* ... and got it: io.iov until dev_release() */
	struct iovec borrow_iov[DEV_BORROW_IOV];
	uint32_t buf_len; /* what buf counts against its client's budget */
	/* A READ or WRITE larger than one buffer (NBD_MAX_PAYLOAD) goes to
	 * the device a piece at a time, through one buffer, and is answered
	 * once (transmit.c): piece_off/piece_len is the part in hand, the
	 * whole request when it is not pieced. A pieced READ's reply leaves
	 * piece by piece: `more` while pieces are to come (nothing queued
	 * behind it may go out before them), `held` while the next one is
	 * being read (nothing of it may go out either). */
	uint32_t piece_off, piece_len;
	bool pieced, more, held;
	/* BLOCK_STATUS with dst:csum-4k (tx_csum.c): bytes of the span summed
	 * so far, whether base:allocation's part is done, and the reply's
	 * chunks (NULL until built). */
	uint32_t csum_done;
	bool csum_alloc_done;
	const uint8_t *csum_wire;
	uint32_t csum_wire_len;
	uint8_t hdr[REQ_HDR_MAX];
	uint32_t hdr_len;
	const void *data; /* reply payload after hdr */
	uint32_t data_len;
	uint32_t sent;	      /* bytes of hdr+data written so far */
	struct nbd_req *next; /* free list or output queue */
};

/* PH_STARTTLS: the ACK to STARTTLS is on its way out in plaintext and
 * nothing is read; PH_TLS_HANDSHAKE: GnuTLS's handshake owns the socket. */
enum conn_phase {
	PH_GREETING,
	PH_CLIENT_FLAGS,
	PH_OPTIONS,
	PH_STARTTLS,
	PH_TLS_HANDSHAKE,
	PH_TRANSMISSION,
	PH_CLOSING
};
/* RX_PIECE_WAIT: a piece of a pieced WRITE is in the device; the rest of
 * its payload is read once it is done (nothing is read meanwhile).
 * RX_PIPE: a WRITE's payload is spliced from the socket into its pipe. */
enum rx_state { RX_HEADER, RX_PAYLOAD, RX_DISCARD, RX_PIECE_WAIT, RX_PIPE };

struct nbd_conn {
	struct nbd_server *srv;
	struct ev_io w;
	struct ev_timer hs_timer;
	struct ev_deferred flush_work;
	struct ev_deferred free_work; /* a closed conn is freed from here only */
	int fd;
	char peer[64];
	enum conn_phase phase;
	enum acl_access access;
	/* client-connect fired (common/event.h): client-disconnect will be */
	bool connect_said;
	/* nbd_server_adopt's watcher: told once when the connection closes */
	void (*closed)(void *arg);
	void *closed_arg;
	bool dead;	 /* socket gone; free once inflight drops to 0 */
	bool rx_stopped; /* DISC, shutdown or fatal input: read no more */
	bool waiting;	 /* on the server's resource wait queue */
	bool no_zeroes, structured, base_alloc;
	bool csum;	   /* dst:csum-4k selected */
	char *meta_export; /* export name the meta context was set for */

	/* TLS. Plaintext connections only test `tls`; once it is set every
	 * byte goes through tls_sess. Small replies are gathered into
	 * tls_stage so that one record (and one syscall) carries many. */
	bool tls;
	bool tls_want_write; /* handshake: which way GnuTLS waits */
	bool tls_refused;    /* told TLS_REQD (logged once) */
	gnutls_session_t tls_sess;
	uint8_t *tls_stage;
	uint32_t tls_stage_len;
	struct ev_deferred tls_read_work; /* GnuTLS holds bytes epoll cannot see */

	/* input */
	uint8_t *rbuf;
	uint32_t rstart, rend;
	enum rx_state rx;
	struct nbd_req *rx_req;	       /* write whose payload is arriving */
	struct ev_deferred piece_work; /* transmit.c: a piece is done */
	struct nbd_req *piece_failed;  /* a pieced READ whose later piece failed */
	uint32_t rx_got;
	uint32_t lowat; /* SO_RCVLOWAT set on fd (0: never set, 1: the default) */
	/* After a spliced payload, read one request header at a time: the
	 * next write's payload is then still in the socket to be spliced. */
	bool hdr_only;
	bool gather_pipe;     /* conn_out_gather stopped at a spliced payload */
	uint64_t rx_discard;  /* payload bytes left to throw away */
	uint32_t discard_opt; /* option whose oversized data is being discarded */

	/* output: handshake bytes first, then replies in completion order */
	uint8_t *hs_out;
	uint32_t hs_len, hs_sent, hs_cap;
	struct nbd_req *out_head, *out_tail;

	unsigned inflight;
	struct nbd_conn *prev, *next; /* server's list */
	struct nbd_conn *wait_next;   /* server's wait queue */

	/* conn_limits.c. A paused client is also `waiting` (so that nothing
	 * reads from it) but not on the server's queue: it waits for its own
	 * requests, replies or handshake replies to drain. */
	bool paused;
	unsigned in_dev;  /* requests in the device now (of inflight) */
	size_t buf_bytes; /* IO buffers held, against cfg.client_budget */
	uint64_t accepted_ns, last_active_ns;
	struct ev_timer idle_timer;
	struct ev_deferred resume_work;

	/* handshake.c: a storage's connection (NBD_OPT_DST_FENCE): who, and
	 * whether its haggling waits for older connections to settle. */
	bool fence_set, fence_wait;
	uint8_t fence_id[16];
	uint64_t fence_epoch, fence_start;
	struct ev_deferred fence_work;
};

struct nbd_listener {
	struct ev_io w;
	struct accept_guard *guard; /* apart: listeners move on realloc */
	struct nbd_server *srv;
	char *uri;
	char *unix_path; /* unlinked on free */
};

struct nbd_server {
	struct ev_loop *loop;
	struct nbd_server_config cfg;
	char *name, *desc;
	struct nbd_listener *listeners;
	size_t n_listeners;
	struct nbd_conn *conns;
	struct nbd_conn *wait_head, *wait_tail;
	struct ev_deferred kick_work;
	struct nbd_conn *kicking; /* the waiter being resumed: it goes first */

	struct bufpool pool;
	struct nbd_req *reqs, *free_reqs;
	unsigned free_count;

	bool shutting_down;
	void (*shutdown_done)(void *);
	void *shutdown_arg;
	struct ev_timer shutdown_timer;
	struct ev_deferred shutdown_check;

	struct nbd_server_stats st;
};

/* server.c */
void conn_close(struct nbd_conn *c, const char *why);
void conn_queue_bytes(struct nbd_conn *c, const void *p, uint32_t len);
void conn_want_flush(struct nbd_conn *c);
void conn_update_events(struct nbd_conn *c);
struct nbd_req *srv_req_get(struct nbd_server *srv);
void srv_req_put(struct nbd_server *srv, struct nbd_req *req);
void srv_req_unget(struct nbd_server *srv, struct nbd_req *req);
void srv_buf_free(struct nbd_server *srv, void *buf);
void srv_wait(struct nbd_conn *c);
void srv_maybe_finish_shutdown(struct nbd_server *srv);
bool conn_process(struct nbd_conn *c); /* parse what is buffered; false if closed */

/* handshake.c: consume what it can from rbuf; false if the conn was closed. */
void hs_start(struct nbd_conn *c);
bool hs_process(struct nbd_conn *c);
/* A connection is gone for good: connections fenced on it may go on. */
void hs_fence_recheck(struct nbd_server *srv);

/* server_tls.c: the TLS side of a connection. */
void conn_tls_start(struct nbd_conn *c); /* the ACK to STARTTLS has left */
void conn_tls_handshake(struct nbd_conn *c);
/* Send queued output through TLS as far as the socket takes it. */
void conn_tls_flush(struct nbd_conn *c);
void conn_tls_close(struct nbd_conn *c);
void conn_tls_free(struct nbd_conn *c);
/* After reading or when reading may resume: look again at bytes GnuTLS
 * already decrypted, which no epoll event will announce. */
void conn_tls_check_pending(struct nbd_conn *c);
void conn_tls_read_deferred(struct ev_deferred *d);

/* server.c: the queue of output, as iovecs, and taking sent bytes off it. */
int conn_out_gather(struct nbd_conn *c, struct iovec *iov, int max);
void conn_out_consumed(struct nbd_conn *c, size_t n);
bool conn_out_pending(const struct nbd_conn *c);
void conn_read(struct nbd_conn *c);
/* Wake for input only once this much of a payload (at most) is there. */
void conn_set_lowat(struct nbd_conn *c, uint32_t owed);
bool tx_pipe_to_copy(struct nbd_conn *c, struct nbd_req *r); /* transmit.c */

/* transmit.c */
bool tx_process(struct nbd_conn *c);
/* The piece of a pieced READ's reply at the head of the output has all
 * gone out: read the next one. */
void tx_piece_sent(struct nbd_conn *c, struct nbd_req *r);
void tx_piece_deferred(struct ev_deferred *d);
void tx_reply_sent(struct nbd_conn *c, struct nbd_req *req);
uint16_t tx_export_flags(const struct nbd_conn *c);
void tx_queue_reply(struct nbd_conn *c, struct nbd_req *r);
uint32_t tx_encode_alloc(const struct nbd_req *r, const struct dev_extent *ext, uint32_t count,
			 uint8_t *w);

/* tx_csum.c: BLOCK_STATUS on a connection with dst:csum-4k selected. Its
 * request buffer: TX_CSUM_BUF bytes (1 MiB, see tx_csum.c). */
#define TX_CSUM_BUF (1u << 20)
void tx_csum_submit(struct nbd_conn *c, struct nbd_req *r);

/* conn_limits.c: what one client may take, and for how long. */
bool limits_may_accept(struct nbd_server *srv); /* may drop a slow handshake */
void limits_conn_init(struct nbd_conn *c);
void limits_conn_close(struct nbd_conn *c);
void limits_activity(struct nbd_conn *c);	   /* bytes came in (or were processed) */
void limits_sent(struct nbd_conn *c);		   /* bytes went out */
bool limits_hs_backlog(struct nbd_conn *c);	   /* true: too many replies queued, paused */
bool limits_over(struct nbd_conn *c, size_t need); /* true: over its own limits, paused */
void limits_buf_taken(struct nbd_conn *c, struct nbd_req *r, size_t len);
void limits_buf_given_back(struct nbd_conn *c, struct nbd_req *r);

#endif
