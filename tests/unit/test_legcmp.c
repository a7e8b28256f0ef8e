/* test_legcmp.c - the compare-and-fix engine of dst verify and of whole
 * resyncs (array/legcmp.c) over fake legs: by checksums, by data and by
 * both; differing runs found exactly, the device's short last block, sums
 * answered a few at a time, a leg that stops offering sums, a failing
 * target and source, fixing with only the differing runs written (split
 * at a leg's largest IO) from only the source's runs that differ. */
#include <errno.h>
#include <stdlib.h>

#include "alg/legcmp.h"
#include "array/array_int.h"
#include "common/crc32c.h"
#include "common/util.h"
#include "unit.h"

#define BLK	 DEV_CSUM_BLOCK
#define LEG_SIZE (64 * BLK + 1000) /* a short last block */

struct fleg {
	struct dev dev;
	uint8_t *data;
	uint32_t sums_per_reply; /* DEV_CSUM answers at most this many */
	bool csum_gone;		 /* DEV_CSUM fails with ENOTSUP */
	int fail;		 /* every IO fails with it */
	uint64_t reads, read_bytes, writes, write_bytes, csum_calls;
};

static void fleg_submit(struct dev *d, struct dev_io *io)
{
	struct fleg *f = container_of(d, struct fleg, dev);
	if (f->fail) {
		io->done(io, f->fail);
		return;
	}
	switch (io->op) {
	case DEV_READ:
		f->reads++;
		f->read_bytes += io->len;
		memcpy(io->buf, f->data + io->off, io->len);
		break;
	case DEV_WRITE:
		f->writes++;
		f->write_bytes += io->len;
		memcpy(f->data + io->off, io->buf, io->len);
		break;
	case DEV_CSUM: {
		f->csum_calls++;
		if (f->csum_gone) {
			io->done(io, ENOTSUP);
			return;
		}
		uint64_t end = MIN(io->off + io->len, d->size);
		uint32_t n = 0;
		for (uint64_t o = io->off; o < end && n < io->csum_max && n < f->sums_per_reply;
		     o += BLK, n++)
			io->csum[n] = crc32c(0, f->data + o, MIN(BLK, d->size - o));
		io->csum_count = n;
		break;
	}
	default: io->done(io, EOPNOTSUPP); return;
	}
	io->done(io, 0);
}

static void fleg_destroy(struct dev *d)
{
	(void)d;
}

static const struct dev_ops fleg_ops = {
    .kind = "fake", .submit = fleg_submit, .destroy = fleg_destroy};

struct rig {
	struct array a;
	struct array_node nodes[3];
	struct fleg leg[3];
	struct legcmp c;
	int done_err, done_calls;
};

static void on_done(struct legcmp *c, int err)
{
	struct rig *r = c->priv;
	r->done_err = err;
	r->done_calls++;
}

static void rig_init(struct rig *r, bool csum0, bool csum1, bool csum2)
{
	memset(r, 0, sizeof(*r));
	r->a.n = 3;
	r->a.nodes = r->nodes;
	bool csum[3] = {csum0, csum1, csum2};
	srand(11);
	for (int i = 0; i < 3; i++) {
		struct fleg *f = &r->leg[i];
		f->dev.ops = &fleg_ops;
		f->dev.size = LEG_SIZE;
		f->dev.caps = csum[i] ? DEV_CAP_CSUM : 0;
		f->data = xmalloc(LEG_SIZE);
		f->sums_per_reply = UINT32_MAX;
		r->nodes[i].dev = &f->dev;
	}
	for (size_t k = 0; k < LEG_SIZE; k++)
		r->leg[0].data[k] = (uint8_t)rand();
	memcpy(r->leg[1].data, r->leg[0].data, LEG_SIZE);
	memcpy(r->leg[2].data, r->leg[0].data, LEG_SIZE);
	legcmp_init(&r->c, &r->a, LEGCMP_MAX);
	r->c.done = on_done;
	r->c.priv = r;
}

static void rig_free(struct rig *r)
{
	legcmp_free(&r->c);
	for (int i = 0; i < 3; i++)
		free(r->leg[i].data);
}

static void stamp(struct rig *r, int leg, uint64_t off, uint64_t len)
{
	for (uint64_t k = 0; k < len; k++)
		r->leg[leg].data[off + k] ^= 0x5a;
}

static void run(struct rig *r, uint64_t off, uint64_t len, uint32_t legs, bool fix, bool csum)
{
	r->done_calls = 0;
	legcmp_start(&r->c, off, len, 0, legs, fix, csum);
	CHECK_EQ(r->done_calls, 1);
	for (int i = 0; i < 3; i++) /* each IO counted in flight on its node, and back */
		CHECK_EQ(r->nodes[i].inflight, 0);
}

/* The runs of leg i as "block+count,..." */
static const char *runs(struct rig *r, size_t i)
{
	static char buf[256];
	buf[0] = '\0';
	uint32_t b = 0, nb;
	while (legcmp_next_run(&r->c, i, &b, &nb)) {
		snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%s%u+%u", buf[0] ? "," : "",
			 b, nb);
		b += nb;
	}
	return buf;
}

TEST(same_by_checksums)
{
	struct rig r;
	rig_init(&r, true, true, true);
	run(&r, 0, LEG_SIZE, 0x6, false, true);
	CHECK_EQ(r.done_err, 0);
	CHECK_STR(runs(&r, 1), "");
	CHECK_STR(runs(&r, 2), "");
	CHECK_EQ(r.c.data_bytes, 0);
	CHECK_EQ(r.c.csum_bytes, 3ull * LEG_SIZE);
	CHECK_EQ(r.leg[0].reads + r.leg[1].reads + r.leg[2].reads, 0);
	rig_free(&r);
}

TEST(runs_found_exactly)
{
	struct rig r;
	rig_init(&r, true, true, false);
	stamp(&r, 1, 3 * BLK + 100, 1);	 /* one byte: block 3 */
	stamp(&r, 1, 10 * BLK, 3 * BLK); /* blocks 10-12 */
	stamp(&r, 1, LEG_SIZE - 1, 1);	 /* the short last block, 64 */
	stamp(&r, 2, 20 * BLK - 1, 2);	 /* blocks 19 and 20 */
	run(&r, 0, LEG_SIZE, 0x6, false, true);
	CHECK_STR(runs(&r, 1), "3+1,10+3,64+1");
	CHECK_STR(runs(&r, 2), "19+2");
	CHECK_EQ(r.c.leg[1].ndiff, 5);
	CHECK_EQ(r.c.leg[2].ndiff, 2);
	/* Leg 2 has no sums: it was read; legs 0 and 1 gave sums. */
	CHECK_EQ(r.c.data_bytes, LEG_SIZE);
	CHECK_EQ(r.c.csum_bytes, 2ull * LEG_SIZE);
	/* A piece in the middle: block numbers are the piece's. */
	run(&r, 8 * BLK, 8 * BLK, 0x2, false, true);
	CHECK_STR(runs(&r, 1), "2+3");
	rig_free(&r);
}

TEST(sums_a_few_at_a_time)
{
	struct rig r;
	rig_init(&r, true, true, true);
	r.leg[0].sums_per_reply = 5;
	r.leg[1].sums_per_reply = 1;
	stamp(&r, 1, 63 * BLK, 1);
	run(&r, 0, LEG_SIZE, 0x2, false, true);
	CHECK_STR(runs(&r, 1), "63+1");
	CHECK_EQ(r.leg[0].csum_calls, 13); /* 65 blocks, 5 a reply */
	CHECK_EQ(r.leg[1].csum_calls, 65);
	rig_free(&r);
}

TEST(by_data_bytes_compared)
{
	struct rig r;
	rig_init(&r, false, false, false);
	stamp(&r, 2, 7 * BLK, 1);
	run(&r, 0, LEG_SIZE, 0x6, false, true); /* csum asked, no leg gives it */
	CHECK_STR(runs(&r, 1), "");
	CHECK_STR(runs(&r, 2), "7+1");
	CHECK_EQ(r.c.csum_bytes, 0);
	CHECK_EQ(r.c.data_bytes, 3ull * LEG_SIZE);
	/* csum off: a leg that has sums is read too. */
	rig_free(&r);
	rig_init(&r, true, true, true);
	run(&r, 0, LEG_SIZE, 0x6, false, false);
	CHECK_EQ(r.c.csum_bytes, 0);
	CHECK_EQ(r.leg[1].csum_calls, 0);
	rig_free(&r);
}

TEST(sums_stop_then_data)
{
	struct rig r;
	rig_init(&r, true, true, true);
	r.leg[1].csum_gone = true;
	stamp(&r, 1, 30 * BLK, BLK);
	run(&r, 0, LEG_SIZE, 0x2, false, true);
	CHECK_EQ(r.done_err, 0);
	CHECK_STR(runs(&r, 1), "30+1");
	CHECK_EQ(r.leg[1].read_bytes, LEG_SIZE);
	rig_free(&r);
}

TEST(failing_legs)
{
	struct rig r;
	rig_init(&r, true, true, true);
	r.leg[2].fail = EIO;
	stamp(&r, 1, 0, 1);
	run(&r, 0, LEG_SIZE, 0x6, true, true);
	CHECK_EQ(r.done_err, 0);
	CHECK_EQ(r.c.leg[2].err, EIO);
	CHECK_EQ(r.c.leg[1].err, 0);
	CHECK(memcmp(r.leg[0].data, r.leg[1].data, LEG_SIZE) == 0);
	r.leg[2].fail = 0;
	r.leg[0].fail = ECONNRESET;
	run(&r, 0, LEG_SIZE, 0x6, true, true);
	CHECK_EQ(r.done_err, ECONNRESET);
	CHECK_EQ(r.leg[1].writes + r.leg[2].writes, 1); /* the first run's only */
	rig_free(&r);
}

TEST(fix_writes_only_what_differs)
{
	struct rig r;
	rig_init(&r, true, true, true);
	stamp(&r, 1, 5 * BLK, 1);
	stamp(&r, 1, 40 * BLK, 6 * BLK);
	stamp(&r, 2, LEG_SIZE - 10, 10);
	r.leg[2].dev.max_io = 2 * BLK;
	run(&r, 0, LEG_SIZE, 0x6, true, true);
	CHECK_EQ(r.done_err, 0);
	CHECK(memcmp(r.leg[0].data, r.leg[1].data, LEG_SIZE) == 0);
	CHECK(memcmp(r.leg[0].data, r.leg[2].data, LEG_SIZE) == 0);
	CHECK_EQ(r.leg[1].writes, 2); /* block 5; blocks 40-45 in one */
	CHECK_EQ(r.leg[1].write_bytes, 7 * BLK);
	CHECK_EQ(r.leg[2].writes, 1);
	CHECK_EQ(r.leg[2].write_bytes, 1000); /* the short last block */
	CHECK_EQ(r.c.fixed_bytes, 7 * BLK + 1000);
	/* The source read only the runs that differ: block 5, blocks 40-45,
	 * the short last block; one read each. */
	CHECK_EQ(r.leg[0].read_bytes, 7 * BLK + 1000);
	CHECK_EQ(r.leg[0].reads, 3);
	/* A second run finds nothing. */
	run(&r, 0, LEG_SIZE, 0x6, true, true);
	CHECK_STR(runs(&r, 1), "");
	CHECK_STR(runs(&r, 2), "");
	/* Runs longer than a leg's largest IO are split. */
	stamp(&r, 2, 0, 5 * BLK);
	run(&r, 0, LEG_SIZE, 0x4, true, true);
	CHECK_EQ(r.leg[2].writes, 1 + 3);
	CHECK(memcmp(r.leg[0].data, r.leg[2].data, LEG_SIZE) == 0);
	rig_free(&r);
}

TEST(fix_from_a_source_read_as_data)
{
	struct rig r;
	rig_init(&r, false, true, true);
	stamp(&r, 1, 9 * BLK, BLK);
	run(&r, 0, LEG_SIZE, 0x2, true, true);
	CHECK(memcmp(r.leg[0].data, r.leg[1].data, LEG_SIZE) == 0);
	CHECK_EQ(r.leg[0].reads, 1); /* read once, for its sums and the fix */
	rig_free(&r);
}

UNIT_MAIN(T(same_by_checksums), T(runs_found_exactly), T(sums_a_few_at_a_time),
	  T(by_data_bytes_compared), T(sums_stop_then_data), T(failing_legs),
	  T(fix_writes_only_what_differs), T(fix_from_a_source_read_as_data))
