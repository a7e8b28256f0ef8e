/* alg.h - the interface between the storage core and its algorithms.
 *
 * As device-mapper's targets and SPDK's raid modules do, every algorithm
 * talks to the core the same way, and the core names none of them.
 *
 * A map-only algorithm (alg_linear, alg_stripe) gives layout() and map():
 * the core splits each request at the segments map() returns, one node per
 * segment, and answers it once with the first error.
 *
 * An algorithm with redundancy (alg_mirror) gives submit() instead: it gets
 * the whole request and decides its pieces (one leg, every leg, data plus
 * parity, reads to reconstruct), sends them with array_send_piece() and is
 * told of each piece's completion by piece_done(); it answers the request
 * itself. It is also told when a node is suspended, resumed or moved by a
 * live migration, and is asked before a node may be migrated. The core
 * keeps the piece pool and the requests waiting for it, the flush
 * bookkeeping, each node's counters, suspension and migration.
 */
#ifndef DST_ALG_H
#define DST_ALG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct array;
struct array_child;
struct array_node;
struct dev_io;
struct mx;
struct strbuf;

/* A piece of a request on one node (map-only algorithms). */
struct alg_seg {
	size_t node;	   /* index into nodes[] */
	uint64_t node_off; /* bytes, within the node */
	uint64_t len;	   /* bytes, <= the requested length */
};

/* The shape an algorithm lays its nodes out in, from the storage's config. */
struct alg_geom {
	uint64_t chunk;	       /* bytes: alg_stripe's, alg_parity's chunk */
	unsigned data, parity; /* alg_parity: data and parity chunks per row */
};

/* What a redundant algorithm is set up with, from the storage's config. */
struct alg_conf {
	const char *bitmap_path; /* its write-intent bitmap file (created if missing) */
	uint64_t region;	 /* bytes per bit, a power of two; 0: the default */
	uint64_t resync_rate;	 /* bytes/s a resync may use; 0: no limit */
	uint8_t uuid[16];	 /* the storage's, stamped on every node */
	const char *name;	 /* the storage's, in labels */
	/* The nodes of a new storage are taken as consistent instead of
	 * being made so (a mirror's initial sync). */
	bool assume_clean;
	/* csum = off: never ask nodes for checksums (dst:csum-4k). */
	bool no_csum;
};

/* dst verify: compare the redundancy from offset off for len bytes (len 0:
 * to the end), at rate bytes/s (0: no limit); with repair, fix what
 * differs. */
struct verify_req {
	uint64_t off, len, rate;
	bool repair;
};

struct alg_ops {
	const char *name; /* "alg_linear" */
	/* Check the layout; return the storage size in bytes, or 0 with a reason. */
	uint64_t (*layout)(const struct array_node *nodes, size_t n, const struct alg_geom *geo,
			   char *err, size_t errlen);
	/* Map-only: map the start of [off, off+len) to one segment. */
	void (*map)(const struct array_node *nodes, size_t n, uint64_t chunk, uint64_t off,
		    uint64_t len, struct alg_seg *seg);
	/* May a node be added to / removed from a running storage? */
	bool can_grow;
	unsigned min_nodes; /* to start */
	unsigned max_nodes; /* 0: no limit */
	/* Redundant: a node that fails is taken as missing and IO goes on, so
	 * remote nodes fail fast while they reconnect, are tried again for
	 * ever, and may ask for checksums (dst:csum-4k). */
	bool redundant;
	/* A redundant algorithm whose every READ or WRITE piece covers its
	 * whole request (the mirror's): a payload in a pipe (DEV_F_PIPE) is
	 * passed to its nodes as it is. Map-only algorithms pass it to a
	 * request that falls on one node; others get its bytes copied out. */
	bool pipe_whole;
	/* What `dst show` calls one node's health letter ("leg"), and what
	 * messages call a node ("leg"; NULL: "node"). */
	const char *health_attr;
	const char *node_word;

	/* ---- redundant algorithms; NULL in map-only ones ---- */
	/* Right after the core is built, before any IO. */
	int (*setup)(struct array *a, const struct alg_conf *conf, char *err, size_t errlen);
	/* A request (resumed: it was waiting for pieces, and must go back to
	 * the head of the queue if it waits again). */
	void (*submit)(struct array *a, struct dev_io *p, bool resumed);
	/* A piece sent with array_send_piece answered; the core has counted
	 * it on its node. The algorithm puts the piece back. */
	void (*piece_done)(struct array *a, struct array_child *c, int err);
	/* Node i is being suspended (refuse with -errno and a reason), was
	 * resumed (new_dev: on another device), or a live migration moved it
	 * to a new device. */
	int (*suspend)(struct array *a, size_t i, char *err, size_t errlen);
	void (*resume)(struct array *a, size_t i, bool new_dev);
	void (*moved)(struct array *a, size_t i);
	/* May node i be migrated now? -errno and a reason if not. */
	int (*migrate_check)(struct array *a, size_t i, char *err, size_t errlen);
	/* dst replace of a dead node (health D): the core has put the new
	 * device in its place; the algorithm rebuilds it from the others.
	 * NULL: a dead node cannot be replaced (it is migrated, read whole). */
	int (*replace_dead)(struct array *a, size_t i);
	/* The storage stops: quiet everything before the nodes close. */
	void (*close)(struct array *a);
	void (*free)(struct array *a); /* after the nodes are closed */
	/* Node i's health letter: A in sync, S syncing, D dead. */
	char (*health)(const struct array *a, size_t i);
	void (*show)(struct array *a, struct strbuf *out, const char *prefix);
	void (*metrics)(struct array *a, struct mx *m, const char *name);
	/* dst set on a running storage: key "resync-rate" (bytes/s) or "csum"
	 * (on/off). -ENOTSUP for a key the algorithm has not. */
	int (*set)(struct array *a, const char *key, uint64_t val, char *err, size_t errlen);
	int (*verify_start)(struct array *a, const struct verify_req *r, char *err, size_t errlen);
	int (*verify_abort)(struct array *a, char *err, size_t errlen);
};

extern const struct alg_ops alg_linear, alg_stripe, alg_mirror, alg_parity;

/* alg_registry.c: "linear", "alg_linear", ...; NULL if unknown. */
const struct alg_ops *alg_find(const char *name);
/* "linear, stripe or mirror": the names, for messages and --help. */
const char *alg_names(void);

#endif
