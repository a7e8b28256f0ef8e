/* parity_verify.c - dst verify of a parity storage (md's "check" and
 * "repair"): every row's parity recomputed from its data and compared,
 * 4 KiB block by block, with the parity its nodes hold; with --repair the
 * parity that differs is rewritten from the data (the data is the only
 * source there is: nothing says a data chunk is wrong).
 *
 * It walks the rows region by region on the region-copy engine, a few
 * regions at a time: a region being checked holds the writes to it and is
 * read only once the writes in flight to it are done, so a racing write is
 * never taken for a difference. Every node must be in sync: a node that goes
 * out stops the run, and a resync (its rows would be rewritten under it)
 * refuses it. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/event.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/strbuf.h"
#include "common/util.h"
#include "parity_int.h"

#define PV_SLOTS 4u
#define BLOCK	 4096u

enum pv_state { PV_IDLE, PV_RUNNING, PV_DONE, PV_ABORTED, PV_STOPPED };
static const char *const pv_state_name[] = {"idle", "running", "done", "aborted", "stopped"};

struct pv_slot {
	struct pverify *v;
	struct regcopy_slot *rs;
	uint64_t row, end;
	unsigned out;
	bool failed;
	uint32_t fix; /* parity roles rewritten in this row */
	struct dev_io io[PARITY_MAX_N];
	uint8_t *buf[PARITY_MAX_N];  /* the row as read, by role */
	uint8_t *calc[PARITY_MAX_M]; /* its parity as computed */
	uint8_t *arena;
};

struct pverify {
	struct parity *pa;
	struct regcopy rc;
	struct pv_slot slot[PV_SLOTS];
	enum pv_state state;
	bool repair;
	uint64_t r0, r1; /* regions [r0, r1) */
	uint64_t regions_checked, rows_checked, mismatch_blocks, mismatch_rows, repaired_blocks;
	uint64_t total_mismatch, total_repaired;
	uint64_t start_ns, end_ns;
	char reason[200];
};

static bool all_in_sync(const struct parity *pa)
{
	return parity_count(pa, 'A') == pa->n;
}

static void end_run(struct pverify *v, enum pv_state st, const char *why)
{
	if (v->state != PV_RUNNING)
		return;
	v->state = st;
	v->end_ns = ev_now_ns();
	snprintf(v->reason, sizeof(v->reason), "%s", why ? why : "");
	double s = (double)(v->end_ns - v->start_ns) / 1e9;
	if (st == PV_DONE) {
		log_info("verify: done in %.1f s: %" PRIu64 " rows, %" PRIu64
			 " parity blocks differ in %" PRIu64 " rows, %" PRIu64 " repaired",
			 s, v->rows_checked, v->mismatch_blocks, v->mismatch_rows,
			 v->repaired_blocks);
		event_fire("verify-done", NULL, NULL,
			   "%" PRIu64 " rows, %" PRIu64 " blocks differ, %" PRIu64 " repaired",
			   v->rows_checked, v->mismatch_blocks, v->repaired_blocks);
	} else {
		log_warn("verify: %s after %" PRIu64 " regions: %s", pv_state_name[st],
			 v->regions_checked, v->reason);
		event_fire("verify-stopped", NULL, NULL, "%s", v->reason);
	}
	regcopy_kick(&v->rc); /* go() says no: it lets go of its regions */
}

/* ---- one row ---- */

static void slot_row(struct pv_slot *s);

static void pv_io_done(struct dev_io *io, int err)
{
	struct pv_slot *s = io->priv;
	struct pverify *v = s->v;
	struct parity *pa = v->pa;
	unsigned role = (unsigned)(io - s->io);
	size_t node = parity_node(&pa->g, s->row, role);
	array_bg_count(&pa->a->nodes[node].resync, io->op, io->len, err);
	if (err) {
		s->failed = true;
		if (!pa->closing && parity_node_error(err))
			parity_node_failed(pa, node, err);
	}
	if (--s->out)
		return;
	if (pa->closing) {
		ev_loop_break(pa->a->loop);
		return;
	}
	if (s->failed) {
		end_run(v, PV_STOPPED,
			"a node failed during the run; dst verify again once it is "
			"back in sync");
		regcopy_release(s->rs);
		return;
	}
	if (io->op == DEV_WRITE) {
		s->row++;
		slot_row(s);
		return;
	}
	/* The row is in: its parity as it should be, block by block. */
	const struct parity_geom *g = &pa->g;
	const uint8_t *data[PARITY_MAX_N];
	for (unsigned c = 0; c < g->k; c++)
		data[c] = s->buf[c];
	parity_code_encode(&pa->code, data, s->calc, g->chunk);
	s->fix = 0;
	uint64_t row_blocks = 0;
	for (unsigned j = 0; j < g->m; j++) {
		uint64_t diff = 0;
		for (uint64_t b = 0; b < g->chunk; b += BLOCK) {
			uint64_t len = MIN((uint64_t)BLOCK, g->chunk - b);
			diff += memcmp(s->calc[j] + b, s->buf[g->k + j] + b, len) != 0;
		}
		if (!diff)
			continue;
		unsigned x = parity_node(g, s->row, g->k + j);
		row_blocks += diff;
		log_warn("verify: mismatch at row %" PRIu64 " (offset %" PRIu64 " length %" PRIu64
			 "): %" PRIu64 " blocks of parity %u on %s differ from the data%s",
			 s->row, s->row * g->row_bytes, g->row_bytes, diff, j, pa->a->nodes[x].name,
			 v->repair ? " (repaired)" : "");
		s->fix |= 1u << j;
	}
	v->rows_checked++;
	if (row_blocks) {
		v->mismatch_rows++;
		v->mismatch_blocks += row_blocks;
		v->total_mismatch += row_blocks;
		event_fire("verify-mismatch", NULL, NULL, "row %" PRIu64 ": %" PRIu64 " blocks",
			   s->row, row_blocks);
	}
	if (!v->repair || !s->fix) {
		s->row++;
		slot_row(s);
		return;
	}
	v->repaired_blocks += row_blocks;
	v->total_repaired += row_blocks;
	s->out = (unsigned)__builtin_popcount(s->fix);
	for (unsigned j = 0; j < g->m; j++) {
		if (s->fix & (1u << j))
			parity_chunk_io(pa, &s->io[g->k + j], DEV_WRITE, s->row, g->k + j,
					s->calc[j], pv_io_done, s);
	}
}

/* Read every chunk of s->row; past the region's last row, it is done. */
static void slot_row(struct pv_slot *s)
{
	struct pverify *v = s->v;
	struct parity *pa = v->pa;
	const struct parity_geom *g = &pa->g;
	if (s->row >= s->end) {
		v->regions_checked++;
		regcopy_done(s->rs, (s->end - s->rs->r * pa->rows_per_region) * g->row_bytes);
		return;
	}
	s->out = g->n;
	s->failed = false;
	for (unsigned c = 0; c < g->n; c++)
		parity_chunk_io(pa, &s->io[c], DEV_READ, s->row, c, s->buf[c], pv_io_done, s);
}

/* ---- the engine's hooks ---- */

static uint64_t pv_pick(void *owner, uint64_t from)
{
	struct pverify *v = owner;
	return from < v->r0 ? v->r0 : from < v->r1 ? from : v->pa->nregions;
}

static bool pv_go(void *owner)
{
	struct pverify *v = owner;
	if (v->state == PV_RUNNING && !all_in_sync(v->pa))
		end_run(v, PV_STOPPED, "a node went out of sync; dst verify again once it is back");
	return v->state == PV_RUNNING && !v->pa->closing;
}

static void pv_copy(void *owner, struct regcopy_slot *rs)
{
	struct pverify *v = owner;
	struct pv_slot *s = &v->slot[rs->index];
	s->row = rs->r * v->pa->rows_per_region;
	s->end = MIN(s->row + v->pa->rows_per_region, v->pa->g.rows);
	slot_row(s);
}

static void pv_release(void *owner, struct dev_io *p)
{
	struct pverify *v = owner;
	parity_submit(v->pa->a, p, false);
}

static void pv_ended(void *owner)
{
	struct pverify *v = owner;
	end_run(v, PV_DONE, NULL);
}

static const struct regcopy_ops pv_ops = {
    .pick = pv_pick,
    .go = pv_go,
    .copy = pv_copy,
    .release = pv_release,
    .ended = pv_ended,
};

/* ---- control ---- */

/* At set-up: writes are counted in flight for it from the first one on. */
int parity_verify_setup(struct parity *pa)
{
	struct pverify *v = xcalloc(1, sizeof(*v));
	v->pa = pa;
	const struct parity_geom *g = &pa->g;
	regcopy_init(&v->rc, pa->a->loop, &pv_ops, v, pa->region, g->size, PV_SLOTS);
	for (unsigned k = 0; k < PV_SLOTS; k++) {
		struct pv_slot *s = &v->slot[k];
		s->v = v;
		s->rs = &v->rc.slots[k];
		s->arena = xmalloc((g->n + g->m) * g->chunk);
		for (unsigned c = 0; c < g->n; c++)
			s->buf[c] = s->arena + c * g->chunk;
		for (unsigned j = 0; j < g->m; j++)
			s->calc[j] = s->arena + (g->n + j) * g->chunk;
	}
	pa->verify = v;
	return 0;
}

int parity_verify_start(struct array *a, const struct verify_req *r, char *err, size_t errlen)
{
	struct parity *pa = a->priv;
	struct pverify *v = pa->verify;
	if (v->state == PV_RUNNING) {
		snprintf(err, errlen,
			 "a verify is already running; dst verify NAME --abort stops it");
		return -1;
	}
	if (a->mig) {
		snprintf(err, errlen, "a node is being replaced (dst replace): verify after it");
		return -1;
	}
	if (!all_in_sync(pa) || pa->sync.running) {
		snprintf(err, errlen, "every node must be in sync (%u of %u are%s): %s",
			 parity_count(pa, 'A'), pa->n, pa->sync.running ? ", a resync runs" : "",
			 pa->sync.running ? "wait for the resync" : "resume or replace the others");
		return -1;
	}
	uint64_t size = a->dev.size;
	uint64_t len = r->len ? r->len : (r->off < size ? size - r->off : 0);
	if (r->off >= size || len > size - r->off) {
		snprintf(err, errlen,
			 "range %" PRIu64 ":%" PRIu64 " is not inside the storage (%" PRIu64
			 " bytes)",
			 r->off, len, size);
		return -1;
	}
	v->r0 = r->off / pa->region;
	v->r1 = (r->off + len + pa->region - 1) / pa->region;
	v->repair = r->repair;
	v->regions_checked = v->rows_checked = v->mismatch_blocks = v->mismatch_rows = 0;
	v->repaired_blocks = 0;
	v->reason[0] = '\0';
	v->state = PV_RUNNING;
	v->start_ns = ev_now_ns();
	v->end_ns = 0;
	regcopy_set_rate(&v->rc, r->rate);
	log_info("verify: %s of %" PRIu64 " regions (rows %" PRIu64 "-%" PRIu64 ") starts%s",
		 v->repair ? "repair" : "check", v->r1 - v->r0, v->r0 * pa->rows_per_region,
		 MIN(v->r1 * pa->rows_per_region, pa->g.rows) - 1,
		 r->rate ? " with a rate limit" : "");
	event_fire("verify-started", NULL, NULL, "%" PRIu64 " regions%s", v->r1 - v->r0,
		   v->repair ? ", repair" : "");
	regcopy_start(&v->rc, v->r1 - v->r0);
	return 0;
}

int parity_verify_abort(struct array *a, char *err, size_t errlen)
{
	struct parity *pa = a->priv;
	if (!pa->verify || pa->verify->state != PV_RUNNING) {
		snprintf(err, errlen, "no verify is running");
		return -1;
	}
	end_run(pa->verify, PV_ABORTED, "aborted by dst verify --abort");
	return 0;
}

bool parity_verify_hold(struct parity *pa, struct dev_io *p)
{
	return pa->verify && regcopy_hold(&pa->verify->rc, p->off, p->len, p);
}

void parity_verify_write(struct parity *pa, struct dev_io *p, bool start)
{
	if (!pa->verify)
		return;
	if (start)
		regcopy_write_start(&pa->verify->rc, p->off, p->len);
	else
		regcopy_write_end(&pa->verify->rc, p->off, p->len);
}

bool parity_verify_running(const struct parity *pa)
{
	return pa->verify && pa->verify->state == PV_RUNNING;
}

static bool busy(const struct pverify *v)
{
	for (unsigned k = 0; k < PV_SLOTS; k++)
		if (v->slot[k].out)
			return true;
	return false;
}

void parity_verify_close(struct parity *pa)
{
	struct pverify *v = pa->verify;
	if (!v)
		return;
	if (v->state == PV_RUNNING) {
		v->state = PV_STOPPED;
		snprintf(v->reason, sizeof(v->reason), "the storage stopped");
	}
	regcopy_close(&v->rc);
	while (busy(v))
		ev_run(pa->a->loop);
}

void parity_verify_free(struct parity *pa)
{
	struct pverify *v = pa->verify;
	if (!v)
		return;
	regcopy_free(&v->rc);
	for (unsigned k = 0; k < PV_SLOTS; k++)
		free(v->slot[k].arena);
	free(v);
	pa->verify = NULL;
}

void parity_verify_show(struct parity *pa, struct strbuf *out, const char *prefix)
{
	struct pverify *v = pa->verify;
	char p[512];
#define ATTR(leaf) (snprintf(p, sizeof(p), "%s/verify/%s", prefix, leaf), p)
	sb_attr_str(out, ATTR("state"), "%s", v ? pv_state_name[v->state] : "idle");
	if (!v)
		return;
	uint64_t total = v->r1 - v->r0;
	sb_attr_str(out, ATTR("progress"), "%" PRIu64 "/%" PRIu64 " regions", v->regions_checked,
		    total);
	sb_attr_num(out, ATTR("percent"), total ? MIN(100, v->regions_checked * 100 / total) : 100);
	sb_attr_num(out, ATTR("regions_checked"), v->regions_checked);
	sb_attr_num(out, ATTR("rows_checked"), v->rows_checked);
	sb_attr_num(out, ATTR("mismatch_blocks"), v->mismatch_blocks);
	sb_attr_num(out, ATTR("mismatch_ranges"), v->mismatch_rows);
	sb_attr_num(out, ATTR("repaired_blocks"), v->repaired_blocks);
	sb_attr_num(out, ATTR("repair"), v->repair);
	sb_attr_str(out, ATTR("method"), "parity");
	sb_attr_num(out, ATTR("rate"), v->rc.rate);
	if (v->reason[0])
		sb_attr_str(out, ATTR("reason"), "%s", v->reason);
	uint64_t now = v->end_ns ? v->end_ns : ev_now_ns();
	double s = (double)(now - v->start_ns) / 1e9;
	sb_attr_str(out, ATTR("seconds"), "%.1f", s);
	sb_attr_str(out, ATTR("mib_s"), "%.1f", s > 0 ? (double)v->rc.bytes / 1048576.0 / s : 0);
	if (v->state == PV_RUNNING)
		sb_attr_num(out, ATTR("eta_s"), regcopy_eta_s(&v->rc));
#undef ATTR
}

void parity_verify_metrics(struct parity *pa, struct mx *mx, const struct mx_labels *l)
{
	struct pverify *v = pa->verify;
	mx_family(mx, "dst_verify_running", MX_GAUGE, "1 while a dst verify runs.");
	mx_gauge(mx, "dst_verify_running", l, v && v->state == PV_RUNNING);
	mx_family(mx, "dst_verify_mismatch_blocks", MX_COUNTER,
		  "4 KiB blocks dst verify found different (of a parity storage: parity that "
		  "does not match its row's data).");
	mx_counter(mx, "dst_verify_mismatch_blocks", l, v ? v->total_mismatch : 0);
	mx_family(mx, "dst_verify_repaired_blocks", MX_COUNTER,
		  "Of those, blocks dst verify --repair rewrote.");
	mx_counter(mx, "dst_verify_repaired_blocks", l, v ? v->total_repaired : 0);
}
