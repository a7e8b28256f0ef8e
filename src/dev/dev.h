/* dev.h - the one asynchronous block device interface of dst.
 *
 * Every piece of storage is a `struct dev`: a local file or block device, a
 * sparse memory disk, a remote NBD node, a whole storage (array). A frontend
 * (the NBD server) drives any of them the same way: fill a `struct dev_io`,
 * submit it, get `done` called once with 0 or a positive errno.
 *
 * Contract:
 *  - submit() never blocks and never fails synchronously: errors arrive
 *    through done(). It allocates nothing on the IO path.
 *  - done() runs on the submitter's event loop thread. It may run before
 *    submit() returns (a memory disk completes inline), so callers must
 *    finish their own bookkeeping before submitting.
 *  - The caller owns io and buf until done() runs.
 */
#ifndef DST_DEV_H
#define DST_DEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ev_loop;
struct dev;
struct spipe;
struct iovec;
struct strbuf;
struct tls_creds;

enum dev_op {
	DEV_READ,
	DEV_WRITE,
	DEV_FLUSH,	  /* everything completed before it reaches stable storage */
	DEV_TRIM,	  /* may deallocate; later reads return zeroes or old data */
	DEV_WRITE_ZEROES, /* range reads as zeroes afterwards */
	DEV_CACHE,	  /* prefetch hint; may be a no-op */
	DEV_BLOCK_STATUS, /* fill io->ext with allocation extents of the range */
	DEV_CSUM,	  /* fill io->csum with a checksum of each 4 KiB block */
};

/* io->flags */
#define DEV_F_FUA	(1u << 0) /* write reaches stable storage before done() */
#define DEV_F_NO_HOLE	(1u << 1) /* WRITE_ZEROES must leave the range allocated */
#define DEV_F_FAST_ZERO (1u << 2) /* WRITE_ZEROES: fail with ENOTSUP if it would be slow */
/* READ without a copy, on a device with DEV_CAP_BORROW, for io->len <=
 * DEV_BORROW_MAX: instead of filling io->buf the device points
 * io->iov[0..iov_count) (DEV_BORROW_IOV entries, the caller's) at its own
 * memory holding the data. That memory stays valid (its contents may
 * change under later writes) until the caller hands it back with
 * dev_release(), which it must do before the device is destroyed; until
 * then the read counts as in flight on the device. (A storage whose node
 * must drain copies the bytes into io->buf and points iov there instead:
 * DEV_CAP_BORROW_BUF.) */
#define DEV_F_BORROW   (1u << 3)
#define DEV_BORROW_MAX (1u << 20)
#define DEV_BORROW_IOV 32u
/* The payload in a pipe (common/pipepool.h), on a device with
 * DEV_CAP_PIPE, for io->len in [SPIPE_MIN, SPIPE_CAP]:
 *  - READ: the device may answer by pointing io->pipe (NULL at submit) at
 *    a pipe from the pool holding the io->len bytes, never copying them
 *    into memory; the caller then owns it (splices it on, spipe_put). Or
 *    it answers in io->buf as any read (io->pipe left NULL).
 *  - WRITE: io->pipe holds the io->len bytes and io->buf has room for
 *    them but holds nothing. The device takes the bytes without consuming
 *    the pipe (tee), as often as it has to send them; the caller keeps the
 *    pipe until done(). A device without DEV_CAP_PIPE gets them copied
 *    into io->buf first (dev_submit), so anything may be handed one. */
#define DEV_F_PIPE (1u << 4)

/* dev->caps */
#define DEV_CAP_FLUSH	   (1u << 0)
#define DEV_CAP_FUA	   (1u << 1)
#define DEV_CAP_TRIM	   (1u << 2)
#define DEV_CAP_ZERO	   (1u << 3)
#define DEV_CAP_FAST_ZERO  (1u << 4) /* can zero quickly (punch/zero-range) */
#define DEV_CAP_EXTENTS	   (1u << 5) /* BLOCK_STATUS gives real holes */
#define DEV_CAP_MULTI_CONN (1u << 6) /* flush on one user flushes all */
#define DEV_CAP_READONLY   (1u << 7)
#define DEV_CAP_CACHE	   (1u << 8)
#define DEV_CAP_BORROW	   (1u << 9) /* takes DEV_F_BORROW reads */
/* With DEV_CAP_BORROW: a DEV_F_BORROW read may still be answered in io->buf
 * (iov_count left 0, nothing to release), so the caller provides buf too;
 * and iov may be moved into buf while the caller sends from it (the caller
 * gathers io->iov afresh for each send). A storage lends what its node
 * lends, but the node a read finally reaches may not lend (a suspended
 * node resumed on a remote disk), and a node may have to drain first. */
#define DEV_CAP_BORROW_BUF (1u << 10)
/* Answers DEV_CSUM where the data is (a dst export's dst:csum-4k context):
 * 4 bytes cross the network per block instead of the block. */
#define DEV_CAP_CSUM (1u << 11)
/* Takes DEV_F_PIPE reads and writes (a remote node on a plaintext socket,
 * a storage that passes them to such nodes). */
#define DEV_CAP_PIPE (1u << 12)

/* DEV_CSUM: the block the checksums are of, and their kind. A checksum is
 * the CRC32C (Castagnoli, as iSCSI and ext4 use it) of one block, aligned
 * to DEV_CSUM_BLOCK from the device's start; the device's last block may be
 * short, and its checksum is of the bytes there. */
#define DEV_CSUM_BLOCK 4096u

/* One allocation extent, as NBD base:allocation reports it. */
#define DEV_EXT_HOLE (1u << 0) /* not allocated */
#define DEV_EXT_ZERO (1u << 1) /* reads as zeroes */
struct dev_extent {
	uint64_t len;
	uint32_t flags;
};

struct dev_io {
	enum dev_op op;
	uint32_t flags;	   /* DEV_F_* */
	uint64_t off;	   /* bytes */
	uint64_t len;	   /* bytes (TRIM/WRITE_ZEROES may exceed 4 GiB... in principle) */
	void *buf;	   /* READ/WRITE data, len bytes */
	struct iovec *iov; /* DEV_F_BORROW reads: where the data is */
	uint32_t iov_count;
	struct spipe *pipe; /* DEV_F_PIPE: where the payload is */

	/* DEV_BLOCK_STATUS: the caller provides ext[ext_max]; the device fills
	 * ext_count >= 1 extents covering a prefix of [off, off+len). */
	struct dev_extent *ext;
	uint32_t ext_max;
	uint32_t ext_count;

	/* DEV_CSUM: off is a multiple of DEV_CSUM_BLOCK; the caller provides
	 * csum[csum_max]; the device fills csum_count >= 1 checksums, of the
	 * blocks from off on (a prefix of the range: the caller asks again for
	 * the rest). */
	uint32_t *csum;
	uint32_t csum_max;
	uint32_t csum_count;

	void (*done)(struct dev_io *io, int err); /* err: 0 or positive errno */
	void *priv;				  /* the submitter's */

	/* Owned by the device while the io is in flight (queues, retries),
	 * and while a DEV_F_BORROW read is not released. */
	struct dev_io *dev_next;
	void *dev_link;
	uint64_t dev_scratch[2];
};

struct dev_ops {
	const char *kind; /* "file", "mem", "nbd", "array" */
	void (*submit)(struct dev *d, struct dev_io *io);
	/* Release everything; only called with no IO in flight. */
	void (*destroy)(struct dev *d);
	/* DEV_CAP_BORROW devices: a DEV_F_BORROW read's memory is given back. */
	void (*release)(struct dev *d, struct dev_io *io);
	/* Optional, DEV_CAP_BORROW devices: can a read of len bytes at off be
	 * borrowed now? (Without it, always.) A file says yes only when the
	 * range is in the page cache, so that sending it never waits for the
	 * disk on the event loop. */
	bool (*can_borrow)(struct dev *d, uint64_t off, uint64_t len);
	/* Optional: extra `dst show` attributes (sb_attr_*) under prefix. */
	void (*show)(struct dev *d, struct strbuf *out, const char *prefix);
};

struct dev {
	const struct dev_ops *ops;
	struct ev_loop *loop;
	uint64_t size;	    /* bytes */
	uint32_t caps;	    /* DEV_CAP_* */
	uint32_t min_block; /* smallest IO it takes unaligned-free: 1 or 512 */
	uint32_t max_io;    /* largest READ/WRITE it takes in one piece; 0: no limit */
	char *desc;	    /* human description, e.g. "L: /srv/disk0.img" */

	/* Optional, set by the device's owner: told at once when a remote
	 * node's connection is lost (DEV_EVENT_DOWN) and when it is back
	 * (DEV_EVENT_UP), so that it never trusts a node that came back
	 * without noticing it had gone (its disk may have been replaced). */
	void (*event)(struct dev *d, int what, void *arg);
	void *event_arg;
};

#define DEV_EVENT_DOWN 1
#define DEV_EVENT_UP   2

/* A DEV_F_PIPE write to a device that needs its bytes: copied into
 * io->buf, the pipe left as it was (dev.c). False: the copy failed and io
 * is done with EIO. */
bool dev_pipe_to_buf(struct dev_io *io);

static inline void dev_submit(struct dev *d, struct dev_io *io)
{
	if ((io->flags & DEV_F_PIPE) && !(d->caps & DEV_CAP_PIPE)) {
		io->flags &= ~DEV_F_PIPE;
		if (io->op == DEV_WRITE && io->pipe && !dev_pipe_to_buf(io))
			return;
	}
	d->ops->submit(d, io);
}

static inline bool dev_can_borrow(struct dev *d, uint64_t off, uint64_t len)
{
	return (d->caps & DEV_CAP_BORROW) && len <= DEV_BORROW_MAX &&
	       (!d->ops->can_borrow || d->ops->can_borrow(d, off, len));
}

static inline void dev_release(struct dev *d, struct dev_io *io)
{
	d->ops->release(d, io);
}

void dev_destroy(struct dev *d);

/* Constructors. On failure return NULL and write a one-line reason
 * (with the path and strerror) into err[errlen]. */

/* "mem:SIZE" sparse memory disk (SIZE as parse_size). */
struct dev *dev_mem_open(struct ev_loop *loop, const char *spec, char *err, size_t errlen);

/* How a local disk is opened (dev_open_local_flags, dev_file_open_flags). */
#define DEV_OPEN_READONLY (1u << 0) /* never claimed */
/* Read-write and ours alone (dev/claim.h): a block device is opened with
 * O_EXCL, a regular file gets an OFD write lock. If someone else has it,
 * the open fails with errno EBUSY and err naming the holder. */
#define DEV_OPEN_CLAIM (1u << 1)

/* A regular file or block device, IO through io_uring. dev_file_open
 * claims nothing (the mirror's bitmap file, which only its storage opens). */
struct dev *dev_file_open(struct ev_loop *loop, const char *path, bool readonly, char *err,
			  size_t errlen);
struct dev *dev_file_open_flags(struct ev_loop *loop, const char *path, unsigned flags, char *err,
				size_t errlen);
/* A file device's claim, as dst show says it ("exclusive (OFD lock)",
 * "none (read-only)"...); NULL for any other device. */
const char *dev_file_claim(struct dev *d);

/* A node's identity check (array/label.h): before a connection to a
 * remote node carries any request, len bytes at off are read through it
 * and check() says whether this is the right disk (0) or not (-1 and a
 * one-line reason). A refusal drops the connection and counts as the node
 * being unreachable: it is retried, and IO waits under io-timeout. */
struct dev_ident {
	uint64_t off;
	uint32_t len;
	int (*check)(void *arg, const uint8_t *buf, char *why, size_t whylen);
	void *arg;
};

/* A remote node: an NBD server (nbd://HOST[:PORT][/EXPORT],
 * nbd+unix:///[EXPORT]?socket=PATH) reached by our own NBD client on the
 * caller's loop. Connecting is asynchronous: `ready` is called once (never
 * inside dev_nbd_open), with err 0 when the node is up (size and caps known)
 * or an errno and a message; IO submitted before that waits.
 *
 * Once up, a node survives its connection: a broken connection, or a
 * request unanswered for request_timeout_s, closes it and reconnects with
 * capped exponential backoff; requests in flight are resent in their
 * original order once it is back. IO waits while the node is unreachable,
 * at most io_timeout_s (0: forever), then fails with EIO until it is back. */
struct dev_nbd_opts {
	unsigned connect_timeout_s; /* one connect + handshake attempt; 0: 10 */
	unsigned request_timeout_s; /* 0: 30 */
	unsigned io_timeout_s;	    /* 0: wait forever */
	/* A mirror leg: IO fails at once while the node is unreachable (the
	 * other legs carry on), and reconnecting goes on meanwhile. */
	bool fail_fast;
	/* The first connection too is retried: `ready` reports its failure,
	 * then the node keeps dialing and reports DEV_EVENT_UP when it first
	 * answers. With fail_fast (a mirror leg down at start) its IO fails
	 * meanwhile; without (a linear or stripe node not up yet at boot) IO
	 * waits for it as during a reconnect, at most io_timeout_s. */
	bool keep_trying;
	/* keep_trying: bytes the node must have when it first answers (the
	 * size the storage's layout gives it); a smaller one is refused. */
	uint64_t min_size;
	/* Client credentials for nbds:// and nbds+unix:// URIs (must outlive
	 * the device); a TLS URI without them fails to open. A URI with TLS
	 * query parameters (tls-psk-file=, tls-certificates=, tls-username=,
	 * tls-verify-peer=) gets credentials of its own, made from them and,
	 * for what it does not say, from the files these were made of (read
	 * at open only). */
	const struct tls_creds *tls;
	const char *tls_psk, *tls_certs, *tls_username;
	/* Checked on every connection (must outlive the device); NULL: none. */
	const struct dev_ident *ident;
	/* Who the storage is, said on every connection (NBD_OPT_DST_FENCE):
	 * a dst export then settles the storage's older connections before it
	 * serves this one, so a request timeout may reconnect and resend. A
	 * node that does not fence (another NBD server) is not reconnected
	 * on a request timeout while its connection lives: the old request
	 * could still land after its resent copy and a newer write. */
	bool fence;
	uint8_t fence_id[16];
	uint64_t fence_start;
	/* Ask for dst:csum-4k too (a mirror leg): granted, the node has
	 * DEV_CAP_CSUM and answers DEV_CSUM. Only where verify or resync
	 * needs it: a dst export with it selected checksums the data of
	 * every BLOCK_STATUS, base:allocation's too. Each reconnect asks
	 * again; a node that no longer offers it loses the cap, and DEV_CSUM
	 * fails with ENOTSUP (the caller reads the data instead). */
	bool csum;
};
typedef void (*dev_ready_fn)(void *arg, struct dev *d, int err, const char *msg);
struct dev *dev_nbd_open(struct ev_loop *loop, const char *uri, const struct dev_nbd_opts *opts,
			 dev_ready_fn ready, void *arg);
/* libnbd prefixes its errors with its function name ("nbd_connect_uri:
 * connect: ..."); the user wants the cause after it. */
const char *dev_nbd_error_cause(const char *libnbd_error);
/* "connecting", "up", "reconnecting", "failed"; "foreign" while the node
 * answers but its identity check refuses it. */
const char *dev_nbd_state(struct dev *d);
/* Times its connection was made again after it was lost. */
uint64_t dev_nbd_reconnects(struct dev *d);
/* After `ready` reported a failed first connection: whether an NBD
 * server answered it (it is there, but would not serve as this node: TLS,
 * export name, label, size), rather than nothing being there yet. */
bool dev_nbd_answered(struct dev *d);
/* The export's description from the last handshake ("" if none): a dst
 * storage's says which storages it holds. */
const char *dev_nbd_description(struct dev *d);
/* dst set: new timeouts for a remote node, from its next check on (a wait
 * already running is measured against the new io-timeout). */
void dev_nbd_set_timeouts(struct dev *d, unsigned io_timeout_s, unsigned request_timeout_s);
/* The storage stops: a node that is not up fails the IO waiting for it at
 * once instead of holding it until io-timeout, and stops reconnecting. */
void dev_nbd_stop(struct dev *d);

/* Dispatch on the spec: "mem:..." or a path. A disk opened read-write is
 * claimed (DEV_OPEN_CLAIM); a mem: disk is private memory, never claimed. */
struct dev *dev_open_local(struct ev_loop *loop, const char *spec, bool readonly, char *err,
			   size_t errlen);
/* The same with DEV_OPEN_* flags: without DEV_OPEN_CLAIM a read-write disk
 * is shared with whoever else writes it (dst export --shared). */
struct dev *dev_open_local_flags(struct ev_loop *loop, const char *spec, unsigned flags, char *err,
				 size_t errlen);

#endif
