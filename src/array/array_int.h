/* array_int.h - the storage core's insides: the pieces and the calls an
 * algorithm with redundancy (alg.h) uses to send them, shared by the core's
 * files (array.c, lend.c, migrate.c) and those algorithms. */
#ifndef DST_ARRAY_INT_H
#define DST_ARRAY_INT_H

#include <string.h>
#include <sys/uio.h>

#include "array.h"
#include "common/ev.h"

#define ARRAY_CHILDREN 4096u /* pieces in flight over all nodes */

struct array_child {
	struct dev_io io;
	struct dev_io *parent;
	struct array *a;
	size_t node;
	uint64_t start_ns;
	uint64_t flush_snapshot;       /* writes_done when a FLUSH piece was sent */
	struct array_child *next_free; /* also: held lists */
	bool busy;		       /* taken from the pool */
	bool lent;		       /* a read sent from its node's memory, not yet released */
	/* lend.c: a DEV_F_BORROW piece, its place in the request and the
	 * node's memory it was lent; the request's next lent piece. */
	uint64_t poff;
	struct iovec iov[DEV_BORROW_IOV];
	struct array_child *sib;
	bool mig_held;	 /* waits for the region a migration copies */
	uint8_t mig;	 /* MIG_DUP / MIG_ON_DST, see migrate.c */
	uint32_t mig_wr; /* a write counted in flight by migration mig_wr */
};

#define MIG_DUP	   1 /* a write behind the copy cursor: new node too, once old has it */
#define MIG_ON_DST 2 /* that second write, on the new node */

struct migration;

struct array {
	struct dev dev;
	struct ev_loop *loop;
	const struct alg_ops *alg;
	struct alg_geom geo;
	uint64_t chunk; /* geo.chunk */
	struct array_node *nodes;
	size_t n;
	struct array_child *children, *free_children;
	size_t nfree;			      /* pieces in free_children */
	struct dev_io *wait_head, *wait_tail; /* parents waiting for pieces */
	struct ev_deferred resume;
	/* a node being removed: it stays at nodes[n] until it drains */
	bool has_gone;
	void (*gone_done)(void *);
	void *gone_arg;
	struct ev_deferred reap;
	void *priv; /* the algorithm's own state (redundant algorithms) */
	struct ev_deferred drain_work;
	struct migration *mig; /* dst replace in progress */
};

/* array.c, for redundant algorithms */
struct array_child *array_child_get(struct array *a);
void array_child_put(struct array *a, struct array_child *c);
void array_send_piece(struct array *a, struct array_child *c, struct dev_io *p, size_t node,
		      enum dev_op op, uint64_t off, uint64_t len, void *buf);
void array_wait_push(struct array *a, struct dev_io *p, bool front);
/* Send a prepared piece to its node (or hold it: suspended, migrating). */
void array_dispatch(struct array *a, struct array_child *c);
/* Node i is on device dev now (spec says where): the old one is closed. */
void array_node_set_dev(struct array *a, size_t i, struct dev *dev, const char *spec);
/* A node's piece count went down: if it reached zero, a removal or a
 * suspend waiting for the node to drain goes on. */
void array_node_settled(struct array *a, size_t node);
/* Did the node lend piece io (a DEV_F_BORROW read that succeeded)? It then
 * stays in flight on the node until lend.c gives it back. */
static inline bool array_piece_lent(const struct dev_io *io, int err)
{
	return (io->flags & DEV_F_BORROW) && !err && io->iov_count;
}
/* lend.c: reads sent from the nodes' memory. */
void array_lend_prepare(struct array *a, struct array_child *c, struct dev_io *p);
void array_lend_done(struct array_child *c, struct dev_io *p);	    /* c was lent */
void array_lend_finish(struct array *a, struct dev_io *p, int err); /* before p->done */
void array_lend_release(struct dev *d, struct dev_io *p);
bool array_lend_can(struct dev *d, uint64_t off, uint64_t len);
/* The node must drain now: reads lent from its memory and not yet sent are
 * copied into their requests' buffers, and the node gets its memory back. */
void array_unlend_node(struct array *a, size_t node);
/* A remote node whose connection is not up (reconnecting, failed): a
 * redundant algorithm takes it out before IO finds out. */
static inline bool array_node_link_down(const struct array_node *nd)
{
	return !strcmp(nd->dev->ops->kind, "nbd") && strcmp(dev_nbd_state(nd->dev), "up") != 0;
}
static inline bool dev_op_writes(enum dev_op op)
{
	return op == DEV_WRITE || op == DEV_WRITE_ZEROES || op == DEV_TRIM;
}

/* migrate.c */
bool migrate_hold(struct array *a, struct array_child *c);
void migrate_node_event(struct array *a);
bool migrate_dup_ok(struct array *a);
void migrate_dup_start(struct array *a, struct array_child *c);
void migrate_dup_done(struct array *a, int err);
/* A write counted in flight (mig_wr) is over, on both nodes. */
void migrate_write_end(struct array *a, struct array_child *c);
void migrate_close(struct array *a);		 /* before the nodes are closed */
int array_migrating_node(const struct array *a); /* index, or -1 */
void migrate_free(struct array *a);		 /* after */
struct mx;
void migrate_metrics(struct array *a, struct mx *m, const char *name);

#endif
