/* array.h - a storage: one device assembled from nodes by an algorithm.
 *
 * The core splits requests with a map-only algorithm's map(), or hands them
 * to an algorithm with redundancy (alg.h); it fans the pieces out, counts
 * them on their nodes and keeps the flush bookkeeping, suspension and live
 * migration.
 * Pieces come from a pool allocated up front: when it runs dry, requests
 * wait for pieces to come back instead of failing.
 */
#ifndef DST_ARRAY_H
#define DST_ARRAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alg.h"
#include "common/lathist.h"
#include "dev/dev.h"

struct array;
struct strbuf;

/* One node of a storage, named by its start sector as in DST's sysfs. */
struct array_node {
	char name[32]; /* "n-800" */
	char *spec;    /* a path, mem:SIZE, or an NBD URI */
	bool remote;
	uint64_t label_off; /* bytes: where its label (label.h) is; 0: unlabelled */
	uint8_t disk_id[16];
	uint64_t start, size; /* sectors (512 bytes) */
	struct dev *dev;
	bool removing;

	/* Flush bookkeeping: a FLUSH must reach every node where a write
	 * completed since the last flush that completed there. */
	uint64_t writes_done, flushed_upto;

	uint64_t reads, writes, read_bytes, write_bytes, read_ns, write_ns;
	uint64_t flushes, errors, inflight;
	uint64_t trims, zeroes;
	struct lathist read_lat, write_lat; /* the metrics' histograms */
	/* IO that is not the clients': a mirror's resync (from this leg, to
	 * it), a migration's copy (from this node, to its replacement, and
	 * the writes duplicated there), counted apart from the above. */
	struct array_bg_io {
		uint64_t reads, writes, zeroes, read_bytes, write_bytes, errors;
	} resync, migrate;

	/* Suspended (dst suspend): its pieces are held here, not sent. */
	bool suspended;
	uint64_t suspended_ns; /* since when */
	struct array_child *held_head, *held_tail;
	uint64_t held;
	void (*drained)(void *arg, uint64_t held); /* once inflight reaches 0 */
	void *drained_arg;
	bool drain_flushed; /* the FLUSH of its last writes at suspend was sent */
};

#define ARRAY_DEFAULT_CHUNK (64u << 10)

/* The one layout check (layout.c), for dst add and dstd alike: nodes in any
 * order; the storage size in bytes, or 0 with a reason. partial: the
 * storage is still being built (dst add), so fewer nodes than it needs to
 * start are fine; everything else is checked as at start. */
uint64_t array_layout_check(const struct alg_ops *alg, const struct array_node *nodes, size_t n,
			    const struct alg_geom *geo, bool partial, char *err, size_t errlen);

struct conf;
/* geom_conf.c: the geometry a storage's config gives (chunk, data, parity;
 * defaults where it gives none). -1 with a reason on a malformed value. */
int alg_geom_conf(const struct conf *conf, struct alg_geom *geo, char *err, size_t errlen);

/* Build the storage device over nodes whose devs are open and sized. Takes
 * ownership of nodes[] (and their devs). NULL with a reason on a bad layout. */
struct array *array_new(struct ev_loop *loop, const struct alg_ops *alg, const struct alg_geom *geo,
			struct array_node *nodes, size_t n, char *err, size_t errlen);
struct dev *array_dev(struct array *a);
void array_free(struct array *a);

size_t array_node_count(const struct array *a);
const struct array_node *array_node_at(const struct array *a, size_t i);
const struct alg_ops *array_alg(const struct array *a);
uint64_t array_chunk(const struct array *a);

/* Grow a running linear storage by one node at its end (takes ownership). */
int array_add_node(struct array *a, struct array_node *node, char *err, size_t errlen);
/* Remove the last node of a running linear storage: the storage shrinks at
 * once, and done(arg) runs when the node's in-flight IO has drained and it
 * is closed. */
int array_remove_last(struct array *a, const char *name, void (*done)(void *arg), void *arg,
		      char *err, size_t errlen);

/* Suspend node `name`: new pieces for it are held (a mirror leg is taken as
 * missing instead: the others go on and it is resynced on resume). done
 * runs once the node's requests in flight have completed, with the number
 * of requests held then. Returns 0 or -errno with a reason. */
int array_suspend(struct array *a, const char *name, void (*done)(void *arg, uint64_t held),
		  void *arg, char *err, size_t errlen);
/* Resume it: if dev is not NULL, it replaces the node's device (which is
 * closed) and spec; then held pieces are sent. Returns 0 or -errno. */
int array_resume(struct array *a, const char *name, struct dev *dev, const char *spec, char *err,
		 size_t errlen);
/* Node `name` is on a newly labelled disk (resume onto it, a migration's
 * cutover): the disk id its label carries. */
void array_set_disk_id(struct array *a, const char *name, const uint8_t id[16]);
/* Fail every held piece with EIO (the storage stops while suspended). */
void array_drop_held(struct array *a);
/* Index of the node called `name` (or with that spec), or -1. */
int array_find_node(const struct array *a, const char *name);

/* Live migration of node `name` to dst (dst replace). hooks.commit runs at
 * cutover with IO held and must switch the config (nonzero: the migration
 * is abandoned); hooks.ended runs once, when it is done or stopped. */
struct migrate_hooks {
	int (*commit)(void *arg, const char *node, const char *spec, char *err, size_t errlen);
	void (*ended)(void *arg, int err, const char *msg);
	void *arg;
};
/* 0: the copy runs; 1: node `name` was dead and its algorithm rebuilds it
 * on dst from the other nodes (the config and the storage switched at
 * once, hooks.ended already ran); -errno with a reason. */
int array_migrate_start(struct array *a, const char *name, struct dev *dst, const char *spec,
			uint64_t rate, const struct migrate_hooks *hooks, char *err, size_t errlen);
/* Stop it; the old node stays. name NULL: whichever node. */
int array_migrate_abort(struct array *a, const char *name, char *err, size_t errlen);
void array_migrate_show(struct array *a, struct strbuf *out, const char *prefix);

/* A redundant algorithm's set-up from the config (alg.h); call right after
 * array_new, before any IO. Nothing to do for map-only ones. */
int array_alg_setup(struct array *a, const struct alg_conf *conf, char *err, size_t errlen);
/* dst set on a running storage (alg.h's set): -ENOTSUP with a reason when
 * the algorithm has no such setting. */
int array_alg_set(struct array *a, const char *key, uint64_t val, char *err, size_t errlen);
/* dst verify (alg.h): -1 and a one-line reason if it cannot start. */
int array_verify_start(struct array *a, const struct verify_req *r, char *err, size_t errlen);
int array_verify_abort(struct array *a, char *err, size_t errlen);
/* The algorithm's own attributes (health, resync, verify) under prefix. */
void array_show_alg(struct array *a, struct strbuf *out, const char *prefix);

/* Attribute lines for every node, under "<prefix>/<node name>/". */
void array_show_nodes(struct array *a, struct strbuf *out, const char *prefix);
/* Count one background IO (resync or migration) on bg. */
void array_bg_count(struct array_bg_io *bg, enum dev_op op, uint64_t len, int err);

struct mx;
/* The nodes' metrics (and the mirror's, the migration's) for storage
 * `name`: families dst_node_*, dst_mirror_*, dst_resync_*, dst_migration_*. */
void array_metrics(struct array *a, struct mx *m, const char *name);

/* "0 [800] | 800 [800]" */
void array_nodes_line(const struct array *a, struct strbuf *out);

#endif
