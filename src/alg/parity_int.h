/* parity_int.h - alg_parity's state, shared by parity.c (requests: row
 * operations, reads that reconstruct, writes that keep parity) and
 * parity_sync.c (nodes lost and back, the bitmap's sweep, the resync that
 * rebuilds a node's chunks and recomputes parity after a crash). */
#ifndef DST_PARITY_INT_H
#define DST_PARITY_INT_H

#include "array/array_int.h"
#include "array/regcopy.h"
#include "array/wib.h"
#include "parity_code.h"
#include "parity_geom.h"
#include "parity_plan.h"

/* The bitmap file's two sets, a bit per region of rows. */
#define SET_INFLIGHT 0u /* writes may be in flight: parity may not match (swept) */
#define SET_BEHIND   1u /* written while a node was out: rebuild its chunks there */

#define PARITY_BUDGET	 (32u << 20) /* bytes of row buffers */
#define PARITY_CHUNK_MAX (1u << 20)  /* a row's buffers stay within the budget's reach */

struct parity;

/* One row operation: a piece of a write (plan, reads, compute, writes) or
 * a read of a chunk on a missing node (reads of k others, decode). Holds
 * its row: operations on one row run one after the other. Pieces are sent
 * with array_send_piece with `pio` as their parent. */
struct pop {
	struct parity *pa;
	struct dev_io pio; /* the pieces' parent: counts them */
	struct dev_io *p;  /* the request */
	uint64_t off, len; /* storage bytes, inside one row */
	uint64_t poff;	   /* where they are in the request's buffer */
	uint64_t row;
	bool write;
	bool writing; /* the plan's writes are out */
	unsigned tries;
	struct parity_plan plan;
	struct parity_read_plan rplan;
	uint8_t *buf[PARITY_MAX_N];	   /* chunk bytes each, by role */
	uint32_t failed;		   /* nodes that failed under it */
	struct pop *next;		   /* free list, active list */
	struct pop *wait_head, *wait_tail; /* waiting for its row */
	struct pop *wnext;
};

/* One region-copy slot of the resync: row by row through its region. */
struct psync_slot {
	struct parity *pa;
	struct regcopy_slot *rs;
	uint64_t row, end;		/* the row being made whole, the region's end */
	uint32_t src;			/* roles read */
	uint32_t targets;		/* roles rebuilt and written */
	unsigned out;			/* IO outstanding */
	struct dev_io io[PARITY_MAX_N]; /* by role */
	uint8_t *buf[PARITY_MAX_N];
	uint8_t *arena;
	bool busy;
	bool failed;
};

struct parity {
	struct array *a;
	struct parity_geom g;
	struct parity_code code;
	unsigned n;
	char state[PARITY_MAX_N]; /* A in sync, S being rebuilt, D dead or suspended */
	bool susp[PARITY_MAX_N];  /* dst suspend: dead on purpose */
	bool full[PARITY_MAX_N];  /* S: every region is rebuilt, not only behind ones */
	bool whole;		  /* every node in sync, as the last event said */
	bool closing;
	bool ready; /* set up: the resync and the bitmap run */

	/* the bitmap: a region is rows_per_region whole rows */
	uint64_t rows_per_region, region, nregions; /* region: storage bytes */
	struct wib bm;
	uint8_t *touched; /* written since the last sweep */
	uint8_t *sweep;	  /* to clear once the sweep's FLUSH of every node is done */
	uint8_t *stale;	  /* parity may be wrong: dirty at start, not recomputed yet */
	uint8_t *lost;	  /* stale with a data chunk missing: its chunks cannot be rebuilt */
	struct dev_io sweep_io[PARITY_MAX_N];
	unsigned sweep_out;
	bool sweep_failed;

	/* row operations */
	struct pop *pops, *free_pops, *active;
	unsigned npops;
	uint8_t *arena;			      /* their buffers */
	struct dev_io *wait_head, *wait_tail; /* requests waiting for an operation */
	const uint8_t *zero;		      /* a row of zeroes (WRITE_ZEROES) */

	/* resync */
	struct regcopy sync;
	struct psync_slot *slots;
	unsigned nslots;
	uint32_t sync_nodes; /* the nodes this pass rebuilds */
	bool finishing;	     /* the pass is over, its nodes being flushed */
	bool pass_short;     /* a row it should have rebuilt had too few sources */
	unsigned flush_out;
	struct dev_io flush_io[PARITY_MAX_N];
	struct ev_deferred sync_work;
	struct ev_timer tick;
	uint64_t regions_resynced, rows_rebuilt, rows_recomputed, rows_lost;

	struct pverify *verify; /* dst verify (parity_verify.c) */

	/* counters */
	uint64_t plans[5]; /* by enum parity_plan_kind */
	uint64_t reconstructed, read_failures;
};

/* parity.c, for parity_sync.c and parity_verify.c */
/* The whole chunk of role c in row `row`, read into or written from buf, on
 * its node's device (a resync's or a verify's IO: not a piece of the core). */
void parity_chunk_io(struct parity *pa, struct dev_io *io, enum dev_op op, uint64_t row, unsigned c,
		     uint8_t *buf, void (*done)(struct dev_io *, int), void *priv);
void parity_submit(struct array *a, struct dev_io *p, bool resumed);
/* Nodes that a row's IO may not use: dead ones, and those being rebuilt
 * whose region is not rebuilt yet. */
uint32_t parity_missing(const struct parity *pa, uint64_t row);
unsigned parity_count(const struct parity *pa, char st);

/* A request that waited for the bitmap goes on (wib.h's written). */
void parity_bm_written(void *owner, struct dev_io *p, int err);

/* parity_sync.c, for parity.c */
void parity_node_failed(struct parity *pa, size_t node, int err);
bool parity_node_error(int err);
void parity_sync_kick(struct parity *pa);
void parity_sync_show(struct parity *pa, struct strbuf *out, const char *prefix);
int parity_sync_setup(struct parity *pa, const struct alg_conf *conf, char *err, size_t errlen);
void parity_sync_close(struct parity *pa);
void parity_sync_free(struct parity *pa);
/* parity_verify.c: dst verify; a write held by a region it checks, and
 * counted in flight there (start) and done (!start). */
struct mx_labels;
int parity_verify_setup(struct parity *pa);
int parity_verify_start(struct array *a, const struct verify_req *r, char *err, size_t errlen);
int parity_verify_abort(struct array *a, char *err, size_t errlen);
bool parity_verify_hold(struct parity *pa, struct dev_io *p);
void parity_verify_write(struct parity *pa, struct dev_io *p, bool start);
bool parity_verify_running(const struct parity *pa);
void parity_verify_close(struct parity *pa);
void parity_verify_free(struct parity *pa);
void parity_verify_show(struct parity *pa, struct strbuf *out, const char *prefix);
void parity_verify_metrics(struct parity *pa, struct mx *mx, const struct mx_labels *l);

/* alg.h's hooks that are about nodes and the resync */
int parity_suspend(struct array *a, size_t i, char *err, size_t errlen);
void parity_resume(struct array *a, size_t i, bool new_dev);
void parity_moved(struct array *a, size_t i);
int parity_migrate_check(struct array *a, size_t i, char *err, size_t errlen);
int parity_replace_dead(struct array *a, size_t i);
void parity_metrics(struct array *a, struct mx *m, const char *name);
int parity_set(struct array *a, const char *key, uint64_t val, char *err, size_t errlen);

#endif
