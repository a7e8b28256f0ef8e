/* mirror_verify.c - dst verify: compare a running mirror's in-sync legs, piece by
 * piece, while it serves IO, and with --repair make them agree.
 *
 * A piece is a region, or 4 MiB of one (LEGCMP_MAX). A slot takes the
 * next piece and holds its region as a resync does: new writes to it
 * wait, the writes in flight drain, then legcmp.c compares the legs
 * (checksums from legs that give them, data from the others) and, with
 * repair, writes what differs from the source leg to the others. So a
 * write racing the comparison can never look like a mismatch.
 *
 * The source is the first leg, in the mirror's order, that is in sync:
 * with every leg in sync, the first node, which a new mirror's initial
 * sync copied to the others. Where legs disagree nothing says which is
 * right (a leg keeps no checksums of its own), so repair takes one leg
 * for the whole run and says which; if that leg is lost, the next one in
 * sync takes over, and the log says so.
 *
 * A leg lost during the run is left out of what remains (legs_lost); with
 * fewer than two legs in sync the run stops. The run's progress is kept in
 * a small file beside the bitmap (BITMAP.verify), written once a second
 * and at stop, so that a dstd restarted after a crash or a stop resumes
 * the run where it was (a piece or so is compared twice). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/ev.h"
#include "common/event.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/strbuf.h"
#include "common/util.h"
#include "mirror_int.h"

#define VSLOTS		8u    /* pieces compared at once without a rate limit */
#define MISMATCH_LOGGED 1000u /* lines per run; the rest are only counted */

enum vstate { V_IDLE, V_RUNNING, V_DONE, V_ABORTED, V_STOPPED };
static const char *const vstate_name[] = {"idle", "running", "done", "aborted", "stopped"};

enum vslot_state { VS_FREE, VS_DRAIN, VS_CMP };

struct vslot {
	struct verify *v;
	enum vslot_state st;
	uint64_t k; /* the piece */
	uint64_t r; /* its region */
	struct legcmp cmp;
	struct dev_io *wait_head, *wait_tail; /* writes to r */
};

struct verify {
	struct mirror *m;
	enum vstate state;
	bool repair;
	uint64_t off, end; /* the bytes to verify, block aligned */
	uint64_t unit;	   /* bytes of a piece */
	uint64_t k0, k1;   /* pieces [k0, k1) */
	uint64_t next;	   /* the next piece to take */
	uint64_t rate;
	bool paused;
	bool waiting; /* for a resync: fewer than two legs of the run in sync */
	struct ev_timer pause;
	struct ev_deferred work;
	int src;       /* the source leg of the last piece */
	uint32_t legs; /* legs in sync at the start, not lost since */
	uint64_t save_ns;
	char reason[256];
	/* this run */
	uint64_t pieces_done, mismatch_blocks, mismatch_ranges, repaired_blocks, legs_lost;
	uint64_t csum_bytes, data_bytes, bytes_done;
	uint64_t start_ns, end_ns;
	unsigned logged;
	struct vslot slot[VSLOTS];
	unsigned nslots; /* allocated (legcmp_init) */
	/* since the daemon started, for metrics */
	uint64_t total_pieces, total_mismatch, total_repaired;
};

static struct verify *get(struct mirror *m)
{
	if (!m->verify) {
		struct verify *v = xcalloc(1, sizeof(*v));
		v->m = m;
		v->src = -1;
		m->verify = v;
	}
	return m->verify;
}

/* The run's state file, beside the bitmap. */
static void state_file(const struct mirror *m, char *path, size_t len)
{
	snprintf(path, len, "%s.verify", m->bm.path);
}

static bool running(const struct verify *v)
{
	return v && v->state == V_RUNNING;
}

static unsigned busy_slots(const struct verify *v)
{
	unsigned n = 0;
	for (unsigned k = 0; k < v->nslots; k++)
		n += v->slot[k].st != VS_FREE;
	return n;
}

/* ---- the state file ---- */

static void save(struct verify *v)
{
	/* Resume from the first piece not known to be done. */
	uint64_t low = v->next;
	for (unsigned k = 0; k < v->nslots; k++)
		if (v->slot[k].st != VS_FREE && v->slot[k].k < low)
			low = v->slot[k].k;
	char path[4200], tmp[4300], buf[1024];
	state_file(v->m, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	int n = snprintf(
	    buf, sizeof(buf),
	    "state=%s\noff=%" PRIu64 "\nend=%" PRIu64 "\nnext=%" PRIu64 "\nrepair=%d\nrate=%" PRIu64
	    "\ndone=%" PRIu64 "\nmismatch=%" PRIu64 "\nranges=%" PRIu64 "\nrepaired=%" PRIu64
	    "\nlegs_lost=%" PRIu64 "\nreason=%s\n",
	    vstate_name[v->state], v->off, v->end, low, v->repair, v->rate, v->pieces_done,
	    v->mismatch_blocks, v->mismatch_ranges, v->repaired_blocks, v->legs_lost, v->reason);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, buf, (size_t)n) != n || rename(tmp, path) < 0)
		log_warn("verify: %s: %s (a restart would not resume this run)", path,
			 strerror(errno));
	if (fd >= 0)
		close(fd);
	v->save_ns = ev_now_ns();
}

static bool load_num(const char *txt, const char *key, uint64_t *out)
{
	char k[64];
	snprintf(k, sizeof(k), "\n%s=", key);
	const char *p = strstr(txt, k);
	if (!p)
		return false;
	char *e;
	*out = strtoull(p + strlen(k), &e, 10);
	return *e == '\n';
}

/* ---- runs ---- */

static void step(struct ev_deferred *d);
static void pause_over(struct ev_timer *t);
static void cmp_done(struct legcmp *c, int err);

static uint32_t in_sync_mask(const struct mirror *m)
{
	return mirror_legs_in(m, "A");
}

/* In sync, or being brought back by a resync. */
static uint32_t live_mask(const struct mirror *m)
{
	return mirror_legs_in(m, "AS");
}

static int first_in_sync(const struct mirror *m)
{
	uint32_t mask = in_sync_mask(m);
	return mask ? __builtin_ctz(mask) : -1;
}

static void setup_slots(struct verify *v)
{
	struct mirror *m = v->m;
	v->work.fn = step;
	v->pause.fn = pause_over;
	if (v->nslots)
		return;
	for (unsigned k = 0; k < VSLOTS; k++) {
		struct vslot *s = &v->slot[k];
		s->v = v;
		legcmp_init(&s->cmp, m->a, MIN(m->region, (uint64_t)LEGCMP_MAX));
		s->cmp.done = cmp_done;
		s->cmp.priv = s;
	}
	v->nslots = VSLOTS;
}

static void begin(struct verify *v)
{
	struct mirror *m = v->m;
	setup_slots(v);
	v->unit = MIN(m->region, (uint64_t)LEGCMP_MAX);
	v->k0 = v->off / v->unit;
	v->k1 = (v->end + v->unit - 1) / v->unit;
	v->state = V_RUNNING;
	/* The legs in the run: those in sync, and those a resync is bringing
	 * back (a restart after a crash resyncs the dirty regions first). */
	v->legs = live_mask(m);
	v->waiting = false;
	v->src = first_in_sync(m);
	v->start_ns = ev_now_ns();
	v->end_ns = 0;
	v->paused = false;
	v->logged = 0;
	ev_defer(m->a->loop, &v->work);
}

/* The run is over (done, aborted, stopped) once its slots are free. */
static void end_run(struct verify *v, enum vstate st, const char *why)
{
	struct mirror *m = v->m;
	v->state = st;
	v->end_ns = ev_now_ns();
	ev_timer_stop(m->a->loop, &v->pause);
	snprintf(v->reason, sizeof(v->reason), "%s", why ? why : "");
	double s = (double)(v->end_ns - v->start_ns) / 1e9;
	char sum[512];
	snprintf(sum, sizeof(sum),
		 "%" PRIu64 " of %" PRIu64 " regions checked in %.1f s, %" PRIu64
		 " blocks differ in %" PRIu64 " ranges, %" PRIu64 " repaired",
		 v->pieces_done, v->k1 - v->k0, s, v->mismatch_blocks, v->mismatch_ranges,
		 v->repaired_blocks);
	if (st == V_DONE) {
		log_info("verify: done: %s", sum);
		event_fire("verify-done", NULL, NULL, "%s", sum);
		if (v->mismatch_blocks > v->repaired_blocks)
			event_fire("verify-mismatch", NULL, NULL,
				   "%" PRIu64 " blocks differ between the legs, not repaired",
				   v->mismatch_blocks - v->repaired_blocks);
	} else if (st == V_ABORTED) {
		log_info("verify: aborted: %s", sum);
		event_fire("verify-stopped", NULL, NULL, "aborted: %s", sum);
	} else {
		log_warn("verify: stopped: %s: %s", why, sum);
		event_fire("verify-stopped", NULL, NULL, "%s: %s", why, sum);
	}
	save(v);
}

/* The slot's piece is done: the writes that waited go on. */
static void slot_free(struct vslot *s)
{
	s->st = VS_FREE;
	mirror_release(s->v->m, &s->wait_head, &s->wait_tail);
}

static void log_mismatches(struct verify *v, struct legcmp *c)
{
	struct array *a = v->m->a;
	for (size_t i = 0; i < a->n; i++) {
		const struct legcmp_leg *l = &c->leg[i];
		if (!(c->legs & (1u << i)) || !l->ndiff)
			continue;
		v->mismatch_blocks += l->ndiff;
		v->total_mismatch += l->ndiff;
		bool fixed = c->fix && !l->err;
		if (fixed) {
			v->repaired_blocks += l->ndiff;
			v->total_repaired += l->ndiff;
		}
		uint32_t b = 0, nb;
		while (legcmp_next_run(c, i, &b, &nb)) {
			v->mismatch_ranges++;
			uint64_t o = (uint64_t)b * DEV_CSUM_BLOCK;
			uint64_t len = MIN((uint64_t)nb * DEV_CSUM_BLOCK, c->len - o);
			if (v->logged < MISMATCH_LOGGED)
				log_warn("verify: mismatch at offset %" PRIu64 " length %" PRIu64
					 ": %s differs from %s%s",
					 c->off + o, len, a->nodes[i].name, a->nodes[c->src].name,
					 fixed ? " (repaired)" : "");
			else if (v->logged == MISMATCH_LOGGED)
				log_warn("verify: more mismatches: counted, not logged");
			v->logged++;
			b += nb;
		}
	}
}

static void cmp_done(struct legcmp *c, int err)
{
	struct vslot *s = c->priv;
	struct verify *v = s->v;
	struct mirror *m = v->m;
	if (m->closing) {
		s->st = VS_FREE; /* its piece is compared again at the next start */
		if (!verify_io_busy(m))
			ev_loop_break(m->a->loop);
		return;
	}
	struct array *a = m->a;
	v->csum_bytes += c->csum_bytes;
	v->data_bytes += c->data_bytes;
	/* Legs whose IO failed: lost to the mirror (and to this run). */
	for (size_t i = 0; i < a->n; i++) {
		int e = (int)i == c->src ? err : ((c->legs & (1u << i)) ? c->leg[i].err : 0);
		if (!e)
			continue;
		if (mirror_leg_error(e)) {
			mirror_leg_failed(m, i, e);
		} else if (running(v)) {
			char why[256];
			snprintf(why, sizeof(why), "%s: %s", a->nodes[i].name, strerror(e));
			end_run(v, V_STOPPED, why);
		}
	}
	if (err) {
		/* The source failed: the piece again, from the next source. */
		if (running(v) && first_in_sync(m) >= 0) {
			s->st = VS_DRAIN;
			ev_defer(a->loop, &v->work);
			return;
		}
		slot_free(s);
		ev_defer(a->loop, &v->work);
		return;
	}
	log_mismatches(v, c);
	v->pieces_done++;
	v->total_pieces++;
	v->bytes_done += c->len;
	slot_free(s);
	if (running(v) && v->rate) {
		v->paused = true;
		ev_timer_start(a->loop, &v->pause, c->len * 1000000000ull / v->rate);
	}
	ev_defer(a->loop, &v->work);
}

static void pause_over(struct ev_timer *t)
{
	struct verify *v = container_of(t, struct verify, pause);
	v->paused = false;
	ev_defer(v->m->a->loop, &v->work);
}

/* Compare the drained slot's piece. */
static void slot_compare(struct verify *v, struct vslot *s)
{
	struct mirror *m = v->m;
	int src = first_in_sync(m);
	if (src != v->src && src >= 0 && v->src >= 0)
		log_warn("verify: %s is the source from offset %" PRIu64 " on (%s is lost)",
			 m->a->nodes[src].name, s->k * v->unit, m->a->nodes[v->src].name);
	v->src = src;
	uint64_t off = MAX(s->k * v->unit, v->off);
	uint64_t end = MIN((s->k + 1) * v->unit, v->end);
	s->st = VS_CMP;
	legcmp_start(&s->cmp, off, end - off, src, in_sync_mask(m) & v->legs, v->repair,
		     m->use_csum);
}

static void step(struct ev_deferred *d)
{
	struct verify *v = container_of(d, struct verify, work);
	struct mirror *m = v->m;
	if (m->closing)
		return;
	if (running(v) && __builtin_popcount(v->legs & live_mask(m)) < 2)
		end_run(v, V_STOPPED, "fewer than two legs in sync");
	if (!running(v)) {
		/* Pieces drained for a run that ended are let go. */
		for (unsigned k = 0; k < v->nslots; k++)
			if (v->slot[k].st == VS_DRAIN)
				slot_free(&v->slot[k]);
		return;
	}
	for (unsigned k = 0; k < v->nslots; k++) {
		struct vslot *s = &v->slot[k];
		if (s->st == VS_DRAIN && !m->sync.wcount[s->r])
			slot_compare(v, s);
	}
	unsigned busy = busy_slots(v);
	/* A leg of the run is being resynced and fewer than two are in sync:
	 * wait for it (tick looks again every second). */
	bool wait = __builtin_popcount(v->legs & in_sync_mask(m)) < 2;
	if (wait != v->waiting) {
		v->waiting = wait;
		if (wait)
			log_info("verify: waits for the resync of a leg (fewer than two legs in "
				 "sync)");
		else
			log_info("verify: goes on, %d legs in sync",
				 __builtin_popcount(v->legs & in_sync_mask(m)));
	}
	unsigned room = wait ? 0 : v->rate ? (busy || v->paused ? 0 : 1) : v->nslots - busy;
	for (unsigned k = 0; k < v->nslots && room && v->next < v->k1; k++) {
		struct vslot *s = &v->slot[k];
		if (s->st != VS_FREE)
			continue;
		s->k = v->next++;
		s->r = s->k * v->unit / m->region;
		s->st = VS_DRAIN; /* from here, new writes to r wait */
		room--;
		busy++;
		if (!m->sync.wcount[s->r])
			slot_compare(v, s);
	}
	if (!busy_slots(v) && v->next >= v->k1 && running(v) && !wait)
		end_run(v, V_DONE, NULL);
}

/* ---- the mirror's hooks ---- */

bool verify_holds(struct mirror *m, struct dev_io *p)
{
	struct verify *v = m->verify;
	if (!v)
		return false;
	uint64_t r0 = p->off / m->region, r1 = (p->off + p->len - 1) / m->region;
	for (unsigned k = 0; k < v->nslots; k++) {
		struct vslot *s = &v->slot[k];
		if (s->st != VS_FREE && s->r >= r0 && s->r <= r1) {
			mirror_queue(&s->wait_head, &s->wait_tail, p);
			return true;
		}
	}
	return false;
}

void verify_writes_done(struct mirror *m, uint64_t r0, uint64_t r1)
{
	struct verify *v = m->verify;
	if (!v)
		return;
	for (unsigned k = 0; k < v->nslots; k++) {
		const struct vslot *s = &v->slot[k];
		if (s->st == VS_DRAIN && s->r >= r0 && s->r <= r1 && !m->sync.wcount[s->r]) {
			ev_defer(m->a->loop, &v->work);
			return;
		}
	}
}

bool verify_io_busy(const struct mirror *m)
{
	const struct verify *v = m->verify;
	for (unsigned k = 0; v && k < v->nslots; k++)
		if (v->slot[k].st == VS_CMP)
			return true;
	return false;
}

void verify_leg_lost(struct mirror *m, size_t leg)
{
	struct verify *v = m->verify;
	if (!running(v) || !(v->legs & (1u << leg)))
		return;
	v->legs &= ~(1u << leg);
	v->legs_lost++;
	uint64_t at = v->next * v->unit;
	log_warn("verify: leg %s lost: left out of the rest of the run (from about offset %" PRIu64
		 ")",
		 m->a->nodes[leg].name, at);
	if (__builtin_popcount(v->legs & live_mask(m)) < 2) {
		char why[256];
		snprintf(why, sizeof(why),
			 "fewer than two legs in sync (%s lost); to go on later: dst verify "
			 "--range %" PRIu64 ":%" PRIu64,
			 m->a->nodes[leg].name, at, v->end - at);
		end_run(v, V_STOPPED, why);
	}
	ev_defer(m->a->loop, &v->work);
}

void verify_tick(struct mirror *m)
{
	struct verify *v = m->verify;
	if (running(v) && ev_now_ns() - v->save_ns >= 1000000000ull)
		save(v);
	if (running(v) && v->waiting)
		ev_defer(m->a->loop, &v->work);
}

void verify_load(struct mirror *m)
{
	char path[4200], txt[2048];
	state_file(m, path, sizeof(path));
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t n = read(fd, txt + 1, sizeof(txt) - 2);
	close(fd);
	if (n <= 0)
		return;
	txt[0] = '\n';
	txt[n + 1] = '\0';
	struct verify *v = get(m);
	uint64_t off, end, next, repair, rate;
	if (!load_num(txt, "off", &off) || !load_num(txt, "end", &end) ||
	    !load_num(txt, "next", &next) || !load_num(txt, "repair", &repair) ||
	    !load_num(txt, "rate", &rate) || end > m->a->dev.size || off >= end) {
		log_warn("verify: %s: unreadable: the last run is not resumed", path);
		return;
	}
	v->off = off, v->end = end, v->repair = repair != 0, v->rate = rate;
	load_num(txt, "done", &v->pieces_done);
	load_num(txt, "mismatch", &v->mismatch_blocks);
	load_num(txt, "ranges", &v->mismatch_ranges);
	load_num(txt, "repaired", &v->repaired_blocks);
	load_num(txt, "legs_lost", &v->legs_lost);
	const char *st = strstr(txt, "\nstate=");
	const char *rs = strstr(txt, "\nreason=");
	if (rs) {
		rs += 8;
		size_t l = strcspn(rs, "\n");
		snprintf(v->reason, sizeof(v->reason), "%.*s", (int)MIN(l, sizeof(v->reason) - 1),
			 rs);
	}
	enum vstate was = V_IDLE;
	for (int s = V_RUNNING; st && s <= V_STOPPED; s++)
		if (!strncmp(st + 7, vstate_name[s], strlen(vstate_name[s])))
			was = (enum vstate)s;
	if (was != V_RUNNING) {
		v->state = was; /* the last run's result, for dst show */
		return;
	}
	begin(v);
	v->next = next > v->k0 && next <= v->k1 ? next : v->k0;
	v->pieces_done = v->next - v->k0; /* those after it are compared again */
	log_info("verify: resumed at region %" PRIu64 " of %" PRIu64 "%s", v->next - v->k0,
		 v->k1 - v->k0, v->repair ? " (repair)" : "");
}

void verify_close(struct mirror *m)
{
	struct verify *v = m->verify;
	if (!v)
		return;
	ev_defer_cancel(m->a->loop, &v->work);
	ev_timer_stop(m->a->loop, &v->pause);
	if (running(v))
		save(v); /* resumed at the next start */
}

void verify_free(struct mirror *m)
{
	struct verify *v = m->verify;
	if (!v)
		return;
	for (unsigned k = 0; k < v->nslots; k++)
		legcmp_free(&v->slot[k].cmp);
	free(v);
	m->verify = NULL;
}

bool verify_running(const struct mirror *m)
{
	return running(m->verify);
}

/* ---- control ---- */

int mirror_verify_start(struct array *a, const struct verify_req *r, char *err, size_t errlen)
{
	struct mirror *m = a->priv;
	struct verify *v = m->verify;
	if (running(v)) {
		snprintf(err, errlen,
			 "a verify is already running (%" PRIu64 "%%); dst verify NAME --abort "
			 "stops it",
			 v->k1 > v->k0 ? v->pieces_done * 100 / (v->k1 - v->k0) : 0);
		return -1;
	}
	if (a->mig) {
		snprintf(err, errlen, "a node is being replaced (dst replace): verify after it");
		return -1;
	}
	if (__builtin_popcount(in_sync_mask(m)) < 2) {
		snprintf(err, errlen,
			 "fewer than two legs are in sync: nothing to compare (dst "
			 "show NAME says which legs are)");
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
	v = get(m);
	v->off = r->off / DEV_CSUM_BLOCK * DEV_CSUM_BLOCK;
	v->end = MIN((r->off + len + DEV_CSUM_BLOCK - 1) / DEV_CSUM_BLOCK * DEV_CSUM_BLOCK, size);
	v->repair = r->repair;
	v->rate = r->rate;
	v->pieces_done = v->mismatch_blocks = v->mismatch_ranges = v->repaired_blocks = 0;
	v->legs_lost = v->csum_bytes = v->data_bytes = v->bytes_done = 0;
	v->reason[0] = '\0';
	begin(v);
	v->next = v->k0;
	log_info("verify: %s of %" PRIu64 " regions (bytes %" PRIu64 "-%" PRIu64 ") starts%s",
		 v->repair ? "repair" : "check", v->k1 - v->k0, v->off, v->end - 1,
		 v->rate ? " with a rate limit" : "");
	if (v->repair)
		log_info("verify: repair makes the other legs agree with %s, the first leg in "
			 "sync (the one a new mirror's initial sync copied from)",
			 a->nodes[v->src].name);
	event_fire("verify-started", NULL, NULL, "%" PRIu64 " regions%s", v->k1 - v->k0,
		   v->repair ? ", repair" : "");
	save(v);
	return 0;
}

int mirror_verify_abort(struct array *a, char *err, size_t errlen)
{
	struct mirror *m = a->priv;
	if (!running(m->verify)) {
		snprintf(err, errlen, "no verify is running");
		return -1;
	}
	end_run(m->verify, V_ABORTED, "aborted by dst verify --abort");
	ev_defer(a->loop, &m->verify->work);
	return 0;
}

/* ---- dst show, metrics ---- */

void verify_show(struct mirror *m, struct strbuf *out, const char *prefix)
{
	struct verify *v = m->verify;
	char p[512];
#define ATTR(leaf) (snprintf(p, sizeof(p), "%s/verify/%s", prefix, leaf), p)
	sb_attr_str(out, ATTR("state"), "%s", v ? vstate_name[v->state] : "idle");
	if (!v || v->state == V_IDLE)
		return;
	uint64_t total = v->k1 - v->k0;
	sb_attr_str(out, ATTR("progress"), "%" PRIu64 "/%" PRIu64 " regions", v->pieces_done,
		    total);
	sb_attr_num(out, ATTR("percent"), total ? MIN(100, v->pieces_done * 100 / total) : 100);
	sb_attr_str(out, ATTR("range"), "%" PRIu64 ":%" PRIu64, v->off, v->end - v->off);
	sb_attr_num(out, ATTR("regions_checked"), v->pieces_done);
	sb_attr_num(out, ATTR("mismatch_blocks"), v->mismatch_blocks);
	sb_attr_num(out, ATTR("mismatch_ranges"), v->mismatch_ranges);
	sb_attr_num(out, ATTR("repaired_blocks"), v->repaired_blocks);
	sb_attr_num(out, ATTR("repair"), v->repair);
	if (v->repair && v->src >= 0)
		sb_attr_str(out, ATTR("source"), "%s", m->a->nodes[v->src].name);
	sb_attr_str(out, ATTR("method"), "%s",
		    v->csum_bytes && v->data_bytes ? "checksums+data"
		    : v->csum_bytes		   ? "checksums"
		    : v->data_bytes		   ? "data"
						   : "none yet");
	sb_attr_num(out, ATTR("csum_bytes"), v->csum_bytes);
	sb_attr_num(out, ATTR("data_bytes"), v->data_bytes);
	sb_attr_str(out, ATTR("crc32c"), "%s", crc32c_impl());
	sb_attr_num(out, ATTR("legs_lost"), v->legs_lost);
	sb_attr_num(out, ATTR("rate"), v->rate);
	if (v->reason[0])
		sb_attr_str(out, ATTR("reason"), "%s", v->reason);
	uint64_t now = v->end_ns ? v->end_ns : ev_now_ns();
	double s = v->start_ns ? (double)(now - v->start_ns) / 1e9 : 0;
	sb_attr_str(out, ATTR("seconds"), "%.1f", s);
	sb_attr_str(out, ATTR("mib_s"), "%.1f", s > 0 ? (double)v->bytes_done / 1048576.0 / s : 0);
	if (running(v) && v->bytes_done && s > 0) {
		uint64_t left = total > v->pieces_done ? total - v->pieces_done : 0;
		sb_attr_num(out, ATTR("eta_s"),
			    (uint64_t)((double)left * (double)v->unit * s / (double)v->bytes_done));
	}
#undef ATTR
}

void verify_metrics(struct mirror *m, struct mx *mx, const char *name)
{
	struct verify *v = m->verify;
	struct mx_labels l;
	mx_labels_init(&l);
	mx_label(&l, "storage", name);
	mx_family(mx, "dst_verify_running", MX_GAUGE, "1 while a dst verify runs.");
	mx_gauge(mx, "dst_verify_running", &l, running(v));
	mx_family(mx, "dst_verify_regions_checked", MX_COUNTER,
		  "Regions dst verify compared since the daemon started.");
	mx_counter(mx, "dst_verify_regions_checked", &l, v ? v->total_pieces : 0);
	mx_family(mx, "dst_verify_mismatch_blocks", MX_COUNTER,
		  "4 KiB blocks of a leg dst verify found different from the source leg.");
	mx_counter(mx, "dst_verify_mismatch_blocks", &l, v ? v->total_mismatch : 0);
	mx_family(mx, "dst_verify_repaired_blocks", MX_COUNTER,
		  "Of those, blocks dst verify --repair rewrote.");
	mx_counter(mx, "dst_verify_repaired_blocks", &l, v ? v->total_repaired : 0);
	mx_family(mx, "dst_verify_last_mismatch_blocks", MX_GAUGE,
		  "Blocks that differ, found by the current or last verify run.");
	mx_gauge(mx, "dst_verify_last_mismatch_blocks", &l, v ? v->mismatch_blocks : 0);
}
