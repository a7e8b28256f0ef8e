/* test_regcopy.c - the region-copy engine (array/regcopy.h) under a fake
 * owner on a real event loop: every region picked copied once and in pick
 * order, the slots and ops->limit capping the copies at once, writes held
 * on a region being copied and let go in arrival order once it is done or
 * given up, a region with writes in flight copied only after they end,
 * regcopy_behind, go() turning false mid-pass, the rate limit's pace and a
 * new rate during a pause, progress, idleness, copies that complete inside
 * ops->copy, and regcopy_close. */
#include <stdbool.h>
#include <stdlib.h>

#include "array/regcopy.h"
#include "common/ev.h"
#include "common/util.h"
#include "unit.h"

#define KiB	  (1024ull)
#define MiB	  (1024ull * KiB)
#define NSLOT_MAX 8
#define NR_MAX	  1024
#define MS	  1000000ull

enum mode {
	M_MANUAL, /* the test completes each copy (done()) */
	M_INLINE, /* ops->copy calls regcopy_done before it returns */
	M_AUTO,	  /* a timer completes it delay_ns later */
};

struct rig;

struct auto_done {
	struct ev_timer t;
	struct rig *r;
	struct regcopy_slot *s;
};

struct rig {
	struct ev_loop *loop;
	struct regcopy rc;
	struct regcopy_ops ops;
	enum mode mode;
	uint64_t delay_ns;
	uint64_t region, nregions;
	bool want[NR_MAX]; /* pick gives these regions */
	bool go;
	unsigned limit;
	unsigned inflight[NR_MAX]; /* the test's writes started and not ended */
	/* Every ops->copy, in order, and when. */
	uint64_t copied[2 * NR_MAX];
	uint64_t copy_ns[2 * NR_MAX];
	unsigned ncopied, copies[NR_MAX];
	struct regcopy_slot *out[NSLOT_MAX]; /* by slot index: copying */
	unsigned nout, max_out;
	struct auto_done ad[NSLOT_MAX];
	struct dev_io *rel[64]; /* ops->release, in order */
	unsigned nrel;
	unsigned ended;
	uint64_t ended_ns;
	unsigned arg; /* for the run_until conditions */
};

static uint64_t op_pick(void *owner, uint64_t from)
{
	struct rig *r = owner;
	while (from < r->nregions && !r->want[from])
		from++;
	return from;
}

static bool op_go(void *owner)
{
	return ((struct rig *)owner)->go;
}

static unsigned op_limit(void *owner)
{
	return ((struct rig *)owner)->limit;
}

static void finish(struct rig *r, struct regcopy_slot *s)
{
	CHECK(r->out[s->index] == s);
	r->out[s->index] = NULL;
	r->nout--;
	regcopy_done(s, s->len);
}

static void auto_fire(struct ev_timer *t)
{
	struct auto_done *ad = container_of(t, struct auto_done, t);
	finish(ad->r, ad->s);
}

static void op_copy(void *owner, struct regcopy_slot *s)
{
	struct rig *r = owner;
	CHECK(s->r < r->nregions && r->want[s->r]);
	CHECK(s->index < NSLOT_MAX);
	/* The region's bytes, the last one short; no write in flight to it. */
	CHECK_EQ(s->off, s->r * r->region);
	CHECK_EQ(s->len, MIN(r->region, r->rc.size - s->off));
	CHECK_EQ(r->inflight[s->r], 0);
	CHECK(r->out[s->index] == NULL);
	for (unsigned k = 0; k < NSLOT_MAX; k++) /* no two slots on one region */
		CHECK(!r->out[k] || r->out[k]->r != s->r);
	if (r->ncopied < 2 * NR_MAX) {
		r->copied[r->ncopied] = s->r;
		r->copy_ns[r->ncopied] = ev_now_ns();
	}
	r->ncopied++;
	r->copies[s->r]++;
	r->out[s->index] = s;
	r->nout++;
	r->max_out = MAX(r->max_out, r->nout);
	CHECK(regcopy_copying(&r->rc));
	if (r->mode == M_INLINE) {
		finish(r, s);
	} else if (r->mode == M_AUTO) {
		struct auto_done *ad = &r->ad[s->index];
		ad->r = r;
		ad->s = s;
		ad->t.fn = auto_fire;
		ev_timer_start(r->loop, &ad->t, r->delay_ns);
	}
}

static void op_release(void *owner, struct dev_io *io)
{
	struct rig *r = owner;
	if (r->nrel < 64)
		r->rel[r->nrel] = io;
	r->nrel++;
}

static void op_ended(void *owner)
{
	struct rig *r = owner;
	r->ended++;
	r->ended_ns = ev_now_ns();
	CHECK(!regcopy_copying(&r->rc));
}

/* A rig over size bytes in regions of `region`, every region wanted. */
static struct rig *rig_new(uint64_t region, uint64_t size, unsigned nslots, enum mode mode)
{
	struct rig *r = xcalloc(1, sizeof(*r));
	r->loop = ev_loop_new();
	r->mode = mode;
	r->region = region;
	r->nregions = (size + region - 1) / region;
	CHECK(r->nregions <= NR_MAX);
	for (uint64_t k = 0; k < r->nregions; k++)
		r->want[k] = true;
	r->go = true;
	r->ops = (struct regcopy_ops){.pick = op_pick,
				      .go = op_go,
				      .copy = op_copy,
				      .release = op_release,
				      .ended = op_ended};
	regcopy_init(&r->rc, r->loop, &r->ops, r, region, size, nslots);
	return r;
}

static void rig_free(struct rig *r)
{
	for (unsigned k = 0; k < NSLOT_MAX; k++)
		ev_timer_stop(r->loop, &r->ad[k].t);
	regcopy_free(&r->rc);
	ev_loop_free(r->loop);
	free(r);
}

static unsigned nwanted(const struct rig *r)
{
	unsigned n = 0;
	for (uint64_t k = 0; k < r->nregions; k++)
		n += r->want[k];
	return n;
}

static void start(struct rig *r)
{
	regcopy_start(&r->rc, nwanted(r));
}

/* The test's own writes: held by the engine, or started (and counted). */
static bool write_begin(struct rig *r, uint64_t off, uint64_t len, struct dev_io *io)
{
	if (regcopy_hold(&r->rc, off, len, io))
		return true;
	for (uint64_t k = off / r->region; k <= (off + len - 1) / r->region; k++)
		r->inflight[k]++;
	regcopy_write_start(&r->rc, off, len);
	return false;
}

static void write_end(struct rig *r, uint64_t off, uint64_t len)
{
	for (uint64_t k = off / r->region; k <= (off + len - 1) / r->region; k++)
		r->inflight[k]--;
	regcopy_write_end(&r->rc, off, len);
}

/* Complete the copy of region rg (M_MANUAL). */
static void complete(struct rig *r, uint64_t rg)
{
	for (unsigned k = 0; k < NSLOT_MAX; k++)
		if (r->out[k] && r->out[k]->r == rg) {
			finish(r, r->out[k]);
			return;
		}
	fprintf(stderr, "complete: region %llu is not being copied\n", (unsigned long long)rg);
	CHECK(false);
}

/* ---- running the loop ---- */

struct guard {
	struct ev_timer t;
	struct rig *r;
	bool (*cond)(struct rig *);
	uint64_t deadline;
	bool timed_out;
};

static void guard_fn(struct ev_timer *t)
{
	struct guard *g = container_of(t, struct guard, t);
	if (g->cond && g->cond(g->r)) {
		ev_loop_break(g->r->loop);
	} else if (ev_now_ns() >= g->deadline) {
		g->timed_out = !!g->cond;
		ev_loop_break(g->r->loop);
	} else {
		ev_timer_start(g->r->loop, t, 100000); /* look again in 0.1 ms */
	}
}

/* Run the loop until cond(r), or for ms milliseconds when cond is NULL.
 * A failed check if cond did not come true within ms. */
static bool run_until(struct rig *r, bool (*cond)(struct rig *), unsigned ms)
{
	if (cond && cond(r))
		return true;
	struct guard g = {.r = r, .cond = cond, .deadline = ev_now_ns() + ms * MS};
	g.t.fn = guard_fn;
	ev_timer_start(r->loop, &g.t, 0);
	ev_run(r->loop);
	ev_timer_stop(r->loop, &g.t);
	if (g.timed_out)
		fprintf(stderr, "run_until: timed out after %u ms\n", ms);
	CHECK(!g.timed_out);
	return !g.timed_out;
}

static bool c_ended(struct rig *r)
{
	return r->ended > 0;
}

static bool c_nout(struct rig *r)
{
	return r->nout >= r->arg;
}

static bool c_nout_or_ended(struct rig *r)
{
	return r->nout >= 1 || r->ended;
}

static bool c_ncopied(struct rig *r)
{
	return r->ncopied >= r->arg;
}

/* Run until n copies are out. */
static void wait_out(struct rig *r, unsigned n)
{
	r->arg = n;
	run_until(r, c_nout, 1000);
}

/* M_MANUAL: complete copies as they come until the pass ends. */
static void drain_manual(struct rig *r)
{
	for (int guard = 0; !r->ended && guard < 4 * NR_MAX; guard++) {
		if (!run_until(r, c_nout_or_ended, 1000))
			break;
		for (unsigned k = 0; k < NSLOT_MAX; k++)
			if (r->out[k])
				finish(r, r->out[k]);
	}
	CHECK(r->ended);
}

/* The regions copied are exactly the wanted ones, once each, in order. */
static void check_copied_wanted(struct rig *r)
{
	unsigned i = 0;
	for (uint64_t k = 0; k < r->nregions; k++) {
		CHECK_EQ(r->copies[k], r->want[k] ? 1 : 0);
		if (r->want[k]) {
			CHECK(i < r->ncopied);
			if (i < r->ncopied)
				CHECK_EQ(r->copied[i], k);
			i++;
		}
	}
	CHECK_EQ(r->ncopied, i);
}

/* ---- tests ---- */

TEST(pass_copies_each_picked_region_once_in_order)
{
	/* 38 regions, the last one 1000 bytes; pick skips some. */
	struct rig *r = rig_new(4 * KiB, 37 * 4 * KiB + 1000, 4, M_AUTO);
	r->delay_ns = 200000;
	uint64_t bytes = 0;
	for (uint64_t k = 0; k < r->nregions; k++) {
		r->want[k] = k % 3 != 1 || k == 37;
		if (r->want[k])
			bytes += k == 37 ? 1000 : 4 * KiB;
	}
	CHECK(regcopy_idle(&r->rc));
	start(r);
	run_until(r, c_ended, 2000);
	check_copied_wanted(r);
	CHECK_EQ(r->ended, 1);
	CHECK_EQ(r->rc.total, nwanted(r));
	CHECK_EQ(r->rc.done, nwanted(r));
	CHECK_EQ(r->rc.bytes, bytes);
	CHECK_EQ(r->max_out, 4); /* the slots were all used, and no more */
	CHECK(regcopy_idle(&r->rc));
	CHECK(!regcopy_copying(&r->rc));
	/* Nothing more happens: no copy, no second ended(). */
	regcopy_kick(&r->rc);
	run_until(r, NULL, 5);
	CHECK_EQ(r->ended, 1);
	CHECK_EQ(r->ncopied, nwanted(r));
	/* A second pass copies them all again. */
	memset(r->copies, 0, sizeof(r->copies));
	r->ncopied = 0;
	r->ended = 0;
	start(r);
	run_until(r, c_ended, 2000);
	check_copied_wanted(r);
	CHECK_EQ(r->ended, 1);
	CHECK_EQ(r->rc.done, nwanted(r));
	rig_free(r);
}

TEST(limit_caps_copies_at_once)
{
	static const struct {
		unsigned nslots, limit, expect; /* limit 0: no ops->limit */
	} cases[] = {{4, 2, 2}, {4, 9, 4}, {3, 1, 1}, {3, 0, 3}, {1, 0, 1}, {6, 5, 5}};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rig *r = rig_new(4 * KiB, 40 * 4 * KiB, cases[i].nslots, M_AUTO);
		r->delay_ns = 300000;
		if (cases[i].limit) {
			r->ops.limit = op_limit;
			r->limit = cases[i].limit;
		}
		start(r);
		run_until(r, c_ended, 2000);
		if (r->max_out != cases[i].expect)
			fprintf(stderr, "case %zu: nslots %u limit %u: %u at once\n", i,
				cases[i].nslots, cases[i].limit, r->max_out);
		CHECK_EQ(r->max_out, cases[i].expect);
		check_copied_wanted(r);
		CHECK_EQ(r->ended, 1);
		rig_free(r);
	}
	/* A limit lowered mid-pass: no more than it from then on. */
	struct rig *r = rig_new(4 * KiB, 40 * 4 * KiB, 4, M_MANUAL);
	r->ops.limit = op_limit;
	r->limit = 4;
	start(r);
	wait_out(r, 4);
	r->limit = 1;
	for (uint64_t k = 0; k < 4; k++)
		complete(r, k);
	r->max_out = 0;
	drain_manual(r);
	CHECK_EQ(r->max_out, 1);
	check_copied_wanted(r);
	rig_free(r);
}

/* Where io was released (its index in r->rel), -1 if never; once only. */
static int rel_pos(const struct rig *r, const struct dev_io *io)
{
	int pos = -1;
	for (unsigned i = 0; i < r->nrel && i < 64; i++)
		if (r->rel[i] == io) {
			CHECK(pos < 0);
			pos = (int)i;
		}
	return pos;
}

TEST(writes_held_on_a_region_being_copied)
{
	const uint64_t RG = 64 * KiB;
	struct rig *r = rig_new(RG, 16 * RG, 2, M_MANUAL);
	struct dev_io w[8];
	memset(w, 0, sizeof(w));
	start(r);
	wait_out(r, 2); /* regions 0 and 1 */
	CHECK_EQ(r->copied[0], 0);
	CHECK_EQ(r->copied[1], 1);
	CHECK(write_begin(r, 100, 512, &w[0]));		    /* region 0 */
	CHECK(write_begin(r, 2 * RG - 10, 20, &w[1]));	    /* regions 1 and 2 */
	CHECK(write_begin(r, RG - 1, 1, &w[2]));	    /* region 0's last byte */
	CHECK(!write_begin(r, 5 * RG, 4096, &w[3]));	    /* region 5: not picked yet */
	CHECK(!write_begin(r, 2 * RG, RG, &w[4]));	    /* region 2: not picked yet */
	CHECK(write_begin(r, 0, 16 * RG, &w[5]));	    /* everything */
	CHECK(!regcopy_hold(&r->rc, 16 * RG, 4096, &w[6])); /* past the end */
	CHECK(!regcopy_hold(&r->rc, 0, 0, &w[6]));	    /* nothing */
	CHECK(!regcopy_idle(&r->rc));
	CHECK(!regcopy_behind(&r->rc, 0));
	CHECK(!regcopy_behind(&r->rc, RG));
	run_until(r, NULL, 3);
	CHECK_EQ(r->nrel, 0); /* held until the copy is done */

	complete(r, 0); /* its writes go on at once, in arrival order */
	CHECK(r->nrel == 2 || r->nrel == 3);
	CHECK_EQ(rel_pos(r, &w[0]), 0);
	CHECK_EQ(rel_pos(r, &w[2]), 1);
	CHECK_EQ(rel_pos(r, &w[1]), -1); /* region 1's */
	CHECK(regcopy_behind(&r->rc, 0));
	CHECK(regcopy_behind(&r->rc, RG - 1));
	CHECK(!regcopy_behind(&r->rc, RG));
	/* A write to the region just copied is not held again. */
	CHECK(!write_begin(r, 0, 4096, &w[7]));
	write_end(r, 0, 4096);

	complete(r, 1);
	CHECK_EQ(r->nrel, 4);
	CHECK(rel_pos(r, &w[1]) >= 2);
	CHECK(rel_pos(r, &w[5]) >= 2); /* on whichever slot it waited */
	CHECK(regcopy_behind(&r->rc, RG));

	/* Region 2 waits for the write the test started on it; 3 copies. */
	run_until(r, NULL, 3);
	CHECK_EQ(r->ncopied, 3);
	CHECK_EQ(r->copied[2], 3);
	CHECK_EQ(r->copies[2], 0);
	write_end(r, 2 * RG, RG);
	r->arg = 4;
	run_until(r, c_ncopied, 1000);
	CHECK_EQ(r->copied[3], 2);

	/* Given up (regcopy_release): its writes go on, not counted as done. */
	CHECK(write_begin(r, 3 * RG + 7, 9, &w[6]));
	uint64_t done = r->rc.done, bytes = r->rc.bytes;
	struct regcopy_slot *s = NULL;
	for (unsigned k = 0; k < NSLOT_MAX; k++)
		if (r->out[k] && r->out[k]->r == 3)
			s = r->out[k];
	CHECK(s != NULL);
	if (s) {
		r->out[s->index] = NULL;
		r->nout--;
		regcopy_release(s);
	}
	CHECK_EQ(r->nrel, 5);
	CHECK_EQ(rel_pos(r, &w[6]), 4);
	CHECK_EQ(r->rc.done, done);
	CHECK_EQ(r->rc.bytes, bytes);
	CHECK(!write_begin(r, 3 * RG, 1, NULL)); /* region 3 holds no more */
	write_end(r, 3 * RG, 1);

	write_end(r, 5 * RG, 4096);
	drain_manual(r);
	CHECK_EQ(r->ended, 1);
	CHECK_EQ(r->rc.done, 15); /* every region but the one given up */
	for (uint64_t k = 0; k < 16; k++)
		CHECK_EQ(r->copies[k], 1);
	CHECK_EQ(r->nrel, 5);
	CHECK(regcopy_idle(&r->rc));
	rig_free(r);
}

TEST(region_with_writes_in_flight_waits_for_them)
{
	const uint64_t RG = 4 * KiB;
	struct rig *r = rig_new(RG, 8 * RG, 1, M_MANUAL);
	struct dev_io w[2];
	memset(w, 0, sizeof(w));
	/* Two writes to region 2, one across regions 4 and 5. */
	CHECK(!write_begin(r, 2 * RG + 100, 50, NULL));
	CHECK(!write_begin(r, 2 * RG, RG, NULL));
	CHECK(!write_begin(r, 5 * RG - 1, 2, NULL));
	start(r);
	wait_out(r, 1);
	complete(r, 0);
	wait_out(r, 1);
	complete(r, 1);
	/* Region 2 is picked (it holds new writes) but not copied. */
	run_until(r, NULL, 10);
	CHECK_EQ(r->ncopied, 2);
	CHECK_EQ(r->nout, 0);
	CHECK(!regcopy_copying(&r->rc));
	CHECK(!regcopy_idle(&r->rc));
	CHECK(!regcopy_behind(&r->rc, 2 * RG));
	CHECK(write_begin(r, 2 * RG + 4000, 10, &w[0]));
	write_end(r, 2 * RG + 100, 50); /* one of two ends: still waits */
	run_until(r, NULL, 5);
	CHECK_EQ(r->ncopied, 2);
	write_end(r, 2 * RG, RG); /* the last: copied without a kick */
	wait_out(r, 1);
	CHECK_EQ(r->copied[2], 2);
	CHECK_EQ(r->nrel, 0);
	complete(r, 2);
	CHECK_EQ(r->nrel, 1);
	CHECK(r->rel[0] == &w[0]);
	wait_out(r, 1);
	complete(r, 3);
	/* Region 4 waits for the write across 4 and 5; then 4, then 5. */
	run_until(r, NULL, 5);
	CHECK_EQ(r->ncopied, 4);
	write_end(r, 5 * RG - 1, 2);
	wait_out(r, 1);
	CHECK_EQ(r->copied[4], 4);
	drain_manual(r);
	check_copied_wanted(r);
	CHECK_EQ(r->ended, 1);
	CHECK(regcopy_idle(&r->rc));
	rig_free(r);
}

TEST(behind_only_regions_copied)
{
	const uint64_t RG = 4 * KiB;
	struct rig *r = rig_new(RG, 6 * RG, 2, M_MANUAL);
	for (uint64_t k = 0; k < 6; k++) /* no pass: nothing behind */
		CHECK(!regcopy_behind(&r->rc, k * RG));
	start(r);
	wait_out(r, 2);
	for (uint64_t k = 0; k < 6; k++) /* 0 and 1 being copied, the rest ahead */
		CHECK(!regcopy_behind(&r->rc, k * RG + 5));
	complete(r, 1);
	CHECK(regcopy_behind(&r->rc, RG));
	CHECK(regcopy_behind(&r->rc, 2 * RG - 1));
	CHECK(!regcopy_behind(&r->rc, 0));
	CHECK(!regcopy_behind(&r->rc, 2 * RG));
	wait_out(r, 2);
	CHECK(!regcopy_behind(&r->rc, 2 * RG));
	complete(r, 0);
	CHECK(regcopy_behind(&r->rc, 0));
	CHECK(!regcopy_behind(&r->rc, 2 * RG));
	drain_manual(r);
	for (uint64_t k = 0; k < 6; k++)
		CHECK(regcopy_behind(&r->rc, k * RG));
	/* A new pass starts from the beginning: nothing behind it yet. */
	r->ended = 0;
	start(r);
	for (uint64_t k = 0; k < 6; k++)
		CHECK(!regcopy_behind(&r->rc, k * RG));
	r->go = false;
	regcopy_kick(&r->rc);
	run_until(r, c_ended, 1000);
	rig_free(r);
}

TEST(go_false_stops_the_pass)
{
	const uint64_t RG = 4 * KiB;
	struct rig *r = rig_new(RG, 16 * RG, 3, M_MANUAL);
	struct dev_io w[3];
	memset(w, 0, sizeof(w));
	CHECK(!write_begin(r, RG + 10, 10, NULL)); /* region 1 will drain */
	start(r);
	wait_out(r, 2); /* 0 and 2 copy, 1 waits for its write */
	run_until(r, NULL, 3);
	CHECK_EQ(r->ncopied, 2);
	CHECK_EQ(r->copied[0], 0);
	CHECK_EQ(r->copied[1], 2);
	CHECK(write_begin(r, RG, 512, &w[0])); /* held by the draining slot */
	CHECK(write_begin(r, 0, 512, &w[1]));  /* held by the copying one */

	r->go = false;
	regcopy_kick(&r->rc);
	run_until(r, NULL, 5);
	CHECK_EQ(r->ncopied, 2); /* nothing new picked */
	CHECK_EQ(r->ended, 0);	 /* copies in flight */
	CHECK(regcopy_copying(&r->rc));
	write_end(r, RG + 10, 10); /* region 1 drained: still not copied */
	run_until(r, NULL, 5);
	CHECK_EQ(r->ncopied, 2);
	CHECK_EQ(r->ended, 0);

	complete(r, 0);
	CHECK(r->nrel >= 1);
	CHECK(r->rel[0] == &w[1]);
	run_until(r, NULL, 5);
	CHECK_EQ(r->ended, 0); /* region 2 still copies */
	complete(r, 2);
	run_until(r, c_ended, 1000);
	CHECK_EQ(r->nrel, 2); /* the drained slot let its write go */
	CHECK(r->rel[1] == &w[0]);
	CHECK_EQ(r->ncopied, 2);
	CHECK_EQ(r->rc.done, 2);
	CHECK(!regcopy_copying(&r->rc));
	CHECK(regcopy_idle(&r->rc));
	regcopy_kick(&r->rc);
	run_until(r, NULL, 5);
	CHECK_EQ(r->ended, 1);
	CHECK_EQ(r->ncopied, 2);
	CHECK(!write_begin(r, RG, 512, &w[2])); /* no region holds writes any more */
	write_end(r, RG, 512);
	rig_free(r);

	/* Nothing copying, one slot draining: it is let go at once. */
	r = rig_new(RG, 16 * RG, 2, M_MANUAL);
	CHECK(!write_begin(r, 0, 1, NULL));
	start(r);
	wait_out(r, 1); /* region 1 copies, 0 waits */
	complete(r, 1);
	wait_out(r, 1); /* region 2 */
	complete(r, 2);
	CHECK(write_begin(r, 0, 1, &w[0]));
	r->go = false;
	regcopy_kick(&r->rc);
	run_until(r, c_ended, 1000);
	CHECK_EQ(r->nrel, 1);
	CHECK(r->rel[0] == &w[0]);
	CHECK_EQ(r->copies[0], 0);
	write_end(r, 0, 1);
	run_until(r, NULL, 5);
	CHECK_EQ(r->ended, 1);
	CHECK_EQ(r->copies[0], 0);
	rig_free(r);
}

TEST(go_false_under_a_rate_ends_without_the_pause)
{
	/* At 4 KiB/s a 32 KiB region is followed by 8 s of pause: a pass
	 * told to stop ends when its copy is over, not 8 s later. */
	const uint64_t RG = 32 * KiB;
	struct rig *r = rig_new(RG, 8 * RG, 2, M_MANUAL);
	regcopy_set_rate(&r->rc, 4 * KiB);
	start(r);
	wait_out(r, 1);
	r->go = false;
	regcopy_kick(&r->rc);
	run_until(r, NULL, 3);
	CHECK_EQ(r->ended, 0); /* its copy is out */
	uint64_t t0 = ev_now_ns();
	complete(r, 0);
	run_until(r, c_ended, 500);
	CHECK_EQ(r->ended, 1);
	CHECK(r->ended && r->ended_ns - t0 < 100 * MS);
	CHECK_EQ(r->ncopied, 1);
	CHECK_EQ(r->rc.done, 1);
	rig_free(r);
}

TEST(rate_paces_one_region_at_a_time)
{
	/* 8 regions of 32 KiB at 1 MiB/s: 31.25 ms after each, 250 ms. */
	const uint64_t RG = 32 * KiB, N = 8, RATE = MiB;
	struct rig *r = rig_new(RG, N * RG, 4, M_AUTO);
	r->delay_ns = 0;
	regcopy_set_rate(&r->rc, RATE);
	uint64_t t0 = ev_now_ns();
	start(r);
	run_until(r, c_ended, 2000);
	uint64_t expect = N * RG * 1000000000ull / RATE;
	uint64_t took = r->ended_ns - t0;
	fprintf(stderr, "rate: %llu regions of %llu B at %llu B/s: %.1f ms (%.1f expected)\n",
		(unsigned long long)N, (unsigned long long)RG, (unsigned long long)RATE,
		(double)took / 1e6, (double)expect / 1e6);
	CHECK(took >= expect - MS);
	CHECK(took <= expect + 150 * MS);
	CHECK_EQ(r->max_out, 1);
	check_copied_wanted(r);
	for (unsigned i = 1; i < r->ncopied && i < N; i++) /* a pause between regions */
		CHECK(r->copy_ns[i] - r->copy_ns[i - 1] >= RG * 1000000000ull / RATE - MS);
	CHECK_EQ(r->ended, 1);
	rig_free(r);

	/* A kick while the one region copies starts no second one. */
	r = rig_new(RG, N * RG, 4, M_MANUAL);
	regcopy_set_rate(&r->rc, 1024 * MiB);
	CHECK(!write_begin(r, 5 * RG, 1, NULL));
	start(r);
	wait_out(r, 1);
	regcopy_kick(&r->rc);
	write_end(r, 5 * RG, 1);
	run_until(r, NULL, 5);
	CHECK_EQ(r->nout, 1);
	drain_manual(r);
	CHECK_EQ(r->max_out, 1);
	check_copied_wanted(r);
	rig_free(r);
}

TEST(new_rate_while_paused_restarts_at_once)
{
	/* At 4 KiB/s a 32 KiB region pauses 8 s: a new rate must not wait. */
	const uint64_t RG = 32 * KiB;
	struct rig *r = rig_new(RG, 6 * RG, 2, M_AUTO);
	regcopy_set_rate(&r->rc, 4 * KiB);
	start(r);
	r->arg = 1;
	run_until(r, c_ncopied, 1000);
	run_until(r, NULL, 20);
	CHECK_EQ(r->ncopied, 1);
	CHECK_EQ(r->rc.done, 1);
	uint64_t t0 = ev_now_ns();
	regcopy_set_rate(&r->rc, 64 * MiB); /* 0.5 ms a region */
	run_until(r, c_ended, 1000);
	CHECK(r->ended_ns - t0 < 200 * MS);
	CHECK_EQ(r->max_out, 1);
	check_copied_wanted(r);

	/* No limit any more: the slots copy at once again. */
	memset(r->copies, 0, sizeof(r->copies));
	r->ncopied = r->ended = 0;
	r->max_out = 0;
	r->delay_ns = 300000;
	regcopy_set_rate(&r->rc, 4 * KiB);
	start(r);
	r->arg = 1;
	run_until(r, c_ncopied, 1000);
	run_until(r, NULL, 20);
	CHECK_EQ(r->ncopied, 1);
	t0 = ev_now_ns();
	regcopy_set_rate(&r->rc, 0);
	run_until(r, c_ended, 1000);
	CHECK(r->ended_ns - t0 < 200 * MS);
	CHECK_EQ(r->max_out, 2);
	check_copied_wanted(r);
	rig_free(r);
}

TEST(progress_and_idle)
{
	const uint64_t RG = 64 * KiB, N = 1000;
	struct rig *r = rig_new(RG, N * RG, 1, M_MANUAL);
	struct dev_io w;
	CHECK(regcopy_idle(&r->rc));
	CHECK(!write_begin(r, 900 * RG, 10, NULL));
	CHECK(!regcopy_idle(&r->rc)); /* a write in flight */
	uint64_t t_before = ev_now_ns();
	start(r);
	uint64_t t_after = ev_now_ns();
	CHECK_EQ(r->rc.total, N);
	CHECK_EQ(r->rc.done, 0);
	CHECK_EQ(regcopy_eta_s(&r->rc), 0); /* no speed yet */
	wait_out(r, 1);
	CHECK(regcopy_copying(&r->rc));
	CHECK(write_begin(r, 0, 1, &w));
	complete(r, 0);
	CHECK(!regcopy_copying(&r->rc));
	wait_out(r, 1);
	complete(r, 1);
	run_until(r, NULL, 20);
	CHECK_EQ(r->rc.done, 2);
	CHECK_EQ(r->rc.bytes, 2 * RG);
	/* Measured from regcopy_start: s between these two bounds. */
	uint64_t t_lo = ev_now_ns();
	double mib = regcopy_mib_s(&r->rc);
	uint64_t eta = regcopy_eta_s(&r->rc);
	uint64_t t_hi = ev_now_ns();
	double s_lo = (double)(t_lo - t_after) / 1e9, s_hi = (double)(t_hi - t_before) / 1e9;
	double mb = 2.0 * (double)RG / MiB;
	CHECK(mib >= mb / s_hi * 0.999 && mib <= mb / s_lo * 1.001);
	/* 998 regions left at 2 regions per s: about 10 s. */
	double left = (double)(N - 2);
	CHECK(eta >= (uint64_t)(left * s_lo / 2.0) && eta <= (uint64_t)(left * s_hi / 2.0) + 1);
	CHECK(eta >= 5);

	/* Stop: the slot in flight finishes, then idle once the write ends. */
	wait_out(r, 1);
	r->go = false;
	complete(r, 2);
	run_until(r, c_ended, 1000);
	CHECK_EQ(r->rc.done, 3);
	CHECK(!regcopy_idle(&r->rc));
	write_end(r, 900 * RG, 10);
	CHECK(regcopy_idle(&r->rc));
	rig_free(r);
}

TEST(copy_completing_inline)
{
	const uint64_t RG = 4 * KiB;
	struct rig *r = rig_new(RG, 29 * RG + 1, 3, M_INLINE);
	for (uint64_t k = 0; k < r->nregions; k++)
		r->want[k] = k % 4 != 3;
	CHECK(!write_begin(r, 5 * RG, 1, NULL)); /* region 5 waits for it */
	start(r);
	run_until(r, NULL, 5);
	CHECK_EQ(r->copies[5], 0);
	CHECK_EQ(r->ended, 0);
	CHECK_EQ(r->ncopied, nwanted(r) - 1);
	write_end(r, 5 * RG, 1);
	run_until(r, c_ended, 1000);
	CHECK_EQ(r->copies[5], 1);
	for (uint64_t k = 0; k < r->nregions; k++)
		CHECK_EQ(r->copies[k], r->want[k] ? 1 : 0);
	CHECK_EQ(r->ended, 1);
	CHECK_EQ(r->rc.done, nwanted(r));
	CHECK_EQ(r->rc.bytes, (nwanted(r) - 1) * RG + 1); /* region 29: 1 byte */
	CHECK(regcopy_idle(&r->rc));
	run_until(r, NULL, 3);
	CHECK_EQ(r->ended, 1);

	/* Inline copies in order, with a rate: one at a time. */
	memset(r->copies, 0, sizeof(r->copies));
	r->ncopied = r->ended = 0;
	regcopy_set_rate(&r->rc, 256 * MiB);
	start(r);
	run_until(r, c_ended, 1000);
	check_copied_wanted(r);
	CHECK_EQ(r->ended, 1);
	rig_free(r);
}

TEST(close_lets_copies_finish_and_starts_nothing)
{
	const uint64_t RG = 4 * KiB;
	struct rig *r = rig_new(RG, 8 * RG, 2, M_MANUAL);
	struct dev_io w;
	start(r);
	wait_out(r, 2);
	CHECK(write_begin(r, 0, 1, &w));
	regcopy_close(&r->rc);
	complete(r, 0);
	CHECK_EQ(r->nrel, 1); /* its held write goes on */
	CHECK(r->rel[0] == &w);
	regcopy_kick(&r->rc);
	run_until(r, NULL, 5);
	CHECK_EQ(r->ncopied, 2);
	complete(r, 1);
	run_until(r, NULL, 5);
	CHECK_EQ(r->ncopied, 2);
	CHECK(!regcopy_copying(&r->rc));
	CHECK(regcopy_idle(&r->rc));
	rig_free(r);
}

UNIT_MAIN(T(pass_copies_each_picked_region_once_in_order), T(limit_caps_copies_at_once),
	  T(writes_held_on_a_region_being_copied), T(region_with_writes_in_flight_waits_for_them),
	  T(behind_only_regions_copied), T(go_false_stops_the_pass),
	  T(go_false_under_a_rate_ends_without_the_pause), T(rate_paces_one_region_at_a_time),
	  T(new_rate_while_paused_restarts_at_once), T(progress_and_idle),
	  T(copy_completing_inline), T(close_lets_copies_finish_and_starts_nothing))
