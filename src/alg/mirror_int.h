/* mirror_int.h - alg_mirror's state, shared by mirror.c (the legs, the
 * bitmap, resync) and mirror_verify.c (dst verify), which compares the legs
 * region by region under the same rules: a region being compared holds
 * the writes to it, as one being resynced does. */
#ifndef DST_MIRROR_INT_H
#define DST_MIRROR_INT_H

#include "array/array_int.h"
#include "array/regcopy.h"
#include "array/wib.h"
#include "legcmp.h"

/* Bytes of regions a resync copies at once (at least one region), and
 * compares at once where the legs give checksums (legcmp.h): more, as a
 * comparison mostly waits for the legs to sum their blocks. */
#define SYNC_INFLIGHT	  (4u << 20)
#define SYNC_CMP_INFLIGHT (16u << 20)
#define SYNC_SLOTS_MAX	  16u

/* What a resync slot's IO is doing. SLOT_CMP: a whole copy between legs
 * that give checksums (legcmp.h): only the blocks that differ are copied. */
enum slot_state { SLOT_IDLE, SLOT_STATUS, SLOT_READ, SLOT_WRITE, SLOT_CMP };

/* The mirror's side of one region-copy slot (regcopy.h) of a resync. */
struct sync_slot {
	struct mirror *m;
	struct regcopy_slot *rs; /* the engine's: region, held writes */
	enum slot_state st;
	int src;
	unsigned writes; /* to target legs, outstanding */
	uint8_t *buf;	 /* one region (slots that copy) */
	struct dev_io read;
	struct dev_extent ext; /* a whole copy asks first whether the region is zero */
	struct dev_io *wr;     /* one per leg */
	struct legcmp cmp;     /* SLOT_CMP: the piece being compared */
};

struct mirror {
	struct array *a;
	struct wib bm; /* the write-intent bitmap file: its one set */
	uint64_t region, nregions;
	uint8_t *touched;	 /* written since the last sweep */
	uint8_t *sweep;		 /* to clear once the sweep's FLUSH of every leg is done */
	struct dev_io *sweep_io; /* that FLUSH, one per leg */
	unsigned sweep_out;	 /* of those, outstanding */
	bool sweep_failed;	 /* one failed: clear nothing */
	char *state;		 /* per leg: 'A' in sync, 'S' syncing, 'D' dead */
	bool *full;		 /* per leg: needs every region, not just dirty ones */
	int last_good;		 /* the last leg in sync, when none is */
	bool whole;		 /* every leg in sync, as the last event said */
	bool closing;

	/* resync: the engine walks the regions and counts writes in flight
	 * per region (sync.wcount) */
	struct regcopy sync;
	uint64_t regions_resynced;
	uint64_t regions_zeroed; /* of those: zero on the source, zeroed, not copied */
	/* Bytes of target legs a resync found identical by checksum (not
	 * moved), and bytes it wrote to them. */
	uint64_t resync_bytes_same, resync_bytes_copied;
	bool use_csum; /* csum = on: ask legs that offer it for checksums */
	struct sync_slot *slots;
	unsigned nslots; /* for comparisons; the first ncopy_slots copy too */
	unsigned ncopy_slots;
	struct ev_deferred sync_work; /* a new pass may start */
	struct ev_timer tick;

	/* leg headers: labels (label.h) on labelled legs, else the older
	 * header (leghdr.h) */
	uint8_t uuid[16];
	char name[65];
	uint64_t gen;
	struct dev_io *hio;   /* one per leg */
	uint8_t *hbuf;	      /* LEGHDR_SIZE per leg */
	bool *hbusy, *hagain; /* a write in flight; another one wanted after it */
	bool *hreading;
	bool *hmatch;	 /* the last header read carries our UUID */
	bool *hfail;	 /* the last header read failed: the leg is unreachable */
	uint64_t *hgen;	 /* and its generation */
	uint64_t *lgen;	 /* the generation last stamped on (or read from) each leg */
	uint64_t *wgen;	 /* the generation a header write in flight stamps */
	bool *susp;	 /* dst suspend: dead on purpose, not taken back by tick */
	bool fresh;	 /* no bitmap file at start */
	bool *hclean;	 /* the last label read says the mirror stopped cleanly */
	bool stop_clean; /* labels written now say so (a clean stop) */
	bool assume_clean;
	unsigned setup_pending;
	bool in_setup;

	struct verify *verify; /* dst verify, running or last run */
};

/* mirror.c, for mirror_verify.c */
/* The legs whose state letter is one of states ("A", "AS"): a mask. */
uint32_t mirror_legs_in(const struct mirror *m, const char *states);
void mirror_leg_failed(struct mirror *m, size_t leg, int err);
/* An error that says the leg is gone (not one about the request). */
bool mirror_leg_error(int err);
/* A write waits on a queue (a region being copied or compared holds it);
 * released, the queue's writes go on, in order. */
void mirror_queue(struct dev_io **head, struct dev_io **tail, struct dev_io *p);
void mirror_release(struct mirror *m, struct dev_io **head, struct dev_io **tail);

/* mirror_verify.c, for mirror.c */
struct verify;
/* A write to [off, off+len) must wait: queued, true. */
bool verify_holds(struct mirror *m, struct dev_io *p);
/* Writes in flight to regions r0..r1 finished: a drained comparison may start. */
void verify_writes_done(struct mirror *m, uint64_t r0, uint64_t r1);
bool verify_io_busy(const struct mirror *m);
void verify_leg_lost(struct mirror *m, size_t leg);
void verify_tick(struct mirror *m);
/* At set-up: a verify that was running when dstd stopped goes on. */
void verify_load(struct mirror *m);
void verify_close(struct mirror *m);
void verify_free(struct mirror *m);
void verify_show(struct mirror *m, struct strbuf *out, const char *prefix);
bool verify_running(const struct mirror *m); /* a leg may not be replaced meanwhile */
/* alg.h's verify_start and verify_abort. */
int mirror_verify_start(struct array *a, const struct verify_req *r, char *err, size_t errlen);
int mirror_verify_abort(struct array *a, char *err, size_t errlen);
void verify_metrics(struct mirror *m, struct mx *mx, const char *name);

#endif
