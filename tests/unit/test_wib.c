/* test_wib.c - the write-intent bitmap file (array/wib.h) on real temp
 * files: a fresh file, bits written and loaded again with the same and
 * another geometry, files that are not a bitmap refused, requests that
 * wait for their bits to be on disk (and for the next write when their
 * bits came after the one in flight), a failed write, the header's node
 * list, two independent sets, and close waiting for a write in flight.
 * The file device is wrapped by a gate that can hold a write or fail it,
 * so that what happens while a write is in flight is deterministic. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "array/wib.h"
#include "common/ev.h"
#include "common/util.h"
#include "dev/dev.h"
#include "unit.h"

#define KiB (1024ull)
#define MS  1000000ull
#define NR  100 /* regions */
#define RG  (64 * KiB)

/* ---- the gate: between the bitmap and its file device ---- */

struct gate {
	struct dev dev;
	struct dev *inner;
	struct ev_loop *loop;
	bool hold;	      /* keep writes until gate_open() */
	int fail;	      /* complete writes with it instead (deferred) */
	bool break_on_submit; /* stop the loop when a write comes */
	struct dev_io *held;
	void (*done)(struct dev_io *, int); /* the bitmap's, while in flight */
	void *priv;
	unsigned submits, landed;
	uint32_t flags; /* of the last write */
	struct ev_deferred fail_work;
};

static void gate_done(struct dev_io *io, int err)
{
	struct gate *g = io->priv;
	io->done = g->done;
	io->priv = g->priv;
	g->landed++;
	io->done(io, err);
}

static void gate_forward(struct gate *g, struct dev_io *io)
{
	dev_submit(g->inner, io);
}

static void gate_fail_now(struct ev_deferred *d)
{
	struct gate *g = container_of(d, struct gate, fail_work);
	struct dev_io *io = g->held;
	g->held = NULL;
	io->done(io, g->fail);
}

static void gate_submit(struct dev *d, struct dev_io *io)
{
	struct gate *g = container_of(d, struct gate, dev);
	CHECK(g->held == NULL); /* one write of the file at a time */
	g->submits++;
	g->flags = io->flags;
	g->done = io->done;
	g->priv = io->priv;
	io->done = gate_done;
	io->priv = g;
	if (g->break_on_submit)
		ev_loop_break(g->loop);
	if (g->fail) {
		g->held = io;
		ev_defer(g->loop, &g->fail_work);
	} else if (g->hold) {
		g->held = io;
	} else {
		gate_forward(g, io);
	}
}

static void gate_destroy(struct dev *d)
{
	(void)d;
}

static const struct dev_ops gate_ops = {
    .kind = "gate", .submit = gate_submit, .destroy = gate_destroy};

/* Let the held write go to the file. */
static void gate_open(struct gate *g)
{
	struct dev_io *io = g->held;
	CHECK(io != NULL);
	g->held = NULL;
	if (io)
		gate_forward(g, io);
}

/* ---- the owner ---- */

struct req {
	struct dev_io io;
	unsigned set;
	uint64_t r; /* the bit it waits for */
	unsigned written;
	int err;
	bool durable, on_disk; /* at written() */
	unsigned order;
};

struct own {
	struct ev_loop *loop;
	char dir[256], path[300];
	struct wib w;
	bool open;
	struct gate gate;
	struct mbm_header hdr; /* what header() says */
	unsigned header_calls;
	unsigned nwritten;
};

static bool disk_bit(struct own *o, unsigned set, uint64_t r);

static void on_header(void *owner, struct mbm_header *h)
{
	struct own *o = owner;
	o->header_calls++;
	CHECK_EQ(h->region, o->w.region);
	CHECK_EQ(h->nregions, o->w.nregions);
	h->nlegs = o->hdr.nlegs;
	memcpy(h->legs, o->hdr.legs, sizeof(h->legs));
}

static void on_written(void *owner, struct dev_io *p, int err)
{
	struct own *o = owner;
	struct req *q = container_of(p, struct req, io);
	q->written++;
	q->err = err;
	q->order = o->nwritten++;
	q->durable = wib_durable(&o->w, q->set, q->r, q->r);
	q->on_disk = disk_bit(o, q->set, q->r);
}

static void own_init(struct own *o)
{
	memset(o, 0, sizeof(*o));
	o->loop = ev_loop_new();
	const char *base = getenv("TMPDIR");
	snprintf(o->dir, sizeof(o->dir), "%s/dst-test-wib.XXXXXX", base && *base ? base : "/tmp");
	CHECK(mkdtemp(o->dir) != NULL);
	snprintf(o->path, sizeof(o->path), "%s/bitmap", o->dir);
	o->hdr.nlegs = 2;
	snprintf(o->hdr.legs[0].spec, sizeof(o->hdr.legs[0].spec), "/srv/disk0.img");
	snprintf(o->hdr.legs[1].spec, sizeof(o->hdr.legs[1].spec), "nbd://host1/disk");
	o->hdr.legs[0].in_sync = true;
}

/* Open o->path with this geometry; the hooks are set. */
static int own_open(struct own *o, uint64_t region, uint64_t nregions, unsigned nsets, bool *loaded,
		    struct mbm_header *h, bool *same, char *err, size_t errlen)
{
	int rc = wib_open(&o->w, o->loop, o->path, region, nregions, nsets, loaded, h, same, err,
			  errlen);
	o->w.header = on_header;
	o->w.written = on_written;
	o->w.owner = o;
	o->open = true;
	return rc;
}

static void own_close(struct own *o)
{
	if (!o->open)
		return;
	if (o->w.dev == &o->gate.dev)
		o->w.dev = o->gate.inner;
	wib_free(&o->w);
	o->open = false;
}

/* Written once synchronously, then running on the loop behind the gate. */
static void own_start(struct own *o)
{
	char err[512] = "";
	CHECK_EQ(wib_write_sync(&o->w, err, sizeof(err)), 0);
	CHECK_EQ(wib_start_async(&o->w, err, sizeof(err)), 0);
	if (err[0])
		fprintf(stderr, "%s\n", err);
	memset(&o->gate, 0, sizeof(o->gate));
	o->gate.dev.ops = &gate_ops;
	o->gate.dev.loop = o->loop;
	o->gate.dev.size = o->w.dev ? o->w.dev->size : 0;
	o->gate.inner = o->w.dev;
	o->gate.loop = o->loop;
	o->gate.fail_work.fn = gate_fail_now;
	o->w.dev = &o->gate.dev;
}

static void own_free(struct own *o)
{
	own_close(o);
	unlink(o->path);
	rmdir(o->dir);
	ev_loop_free(o->loop);
}

/* The file as it is on disk: set `set`'s bit r. */
static bool disk_bit(struct own *o, unsigned set, uint64_t r)
{
	int fd = open(o->path, O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	if (fd < 0)
		return false;
	uint8_t byte = 0;
	off_t at = (off_t)(MBM_HEADER + set * mbm_bits_size(o->w.nregions) + r / 8);
	ssize_t n = pread(fd, &byte, 1, at);
	close(fd);
	return n == 1 && (byte & (1u << (r & 7)));
}

/* The header on disk. */
static int disk_header(struct own *o, struct mbm_header *h)
{
	uint8_t buf[MBM_HEADER];
	int fd = open(o->path, O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	if (fd < 0)
		return -1;
	ssize_t n = pread(fd, buf, sizeof(buf), 0);
	close(fd);
	char why[128];
	int rc = mbm_header_decode(buf, (size_t)MAX(n, 0), h, why, sizeof(why));
	if (rc < 0)
		fprintf(stderr, "disk_header: %s\n", why);
	return rc;
}

static void check_same_header(const struct mbm_header *a, const struct mbm_header *b)
{
	CHECK_EQ(a->nlegs, b->nlegs);
	for (uint32_t i = 0; i < a->nlegs && i < MBM_MAX_LEGS; i++) {
		CHECK_EQ(a->legs[i].in_sync, b->legs[i].in_sync);
		CHECK_STR(a->legs[i].spec, b->legs[i].spec);
	}
}

static void req_init(struct req *q, unsigned set, uint64_t r)
{
	memset(q, 0, sizeof(*q));
	q->set = set;
	q->r = r;
	q->err = -1;
}

/* ---- running the loop ---- */

struct guard {
	struct ev_timer t;
	struct own *o;
	bool (*cond)(struct own *);
	uint64_t deadline;
	bool timed_out;
};

static void guard_fn(struct ev_timer *t)
{
	struct guard *g = container_of(t, struct guard, t);
	if (g->cond && g->cond(g->o)) {
		ev_loop_break(g->o->loop);
	} else if (ev_now_ns() >= g->deadline) {
		g->timed_out = !!g->cond;
		ev_loop_break(g->o->loop);
	} else {
		ev_timer_start(g->o->loop, t, 100000);
	}
}

/* Run the loop until cond(o), or for ms milliseconds when cond is NULL. */
static void run_until(struct own *o, bool (*cond)(struct own *), unsigned ms)
{
	if (cond && cond(o))
		return;
	struct guard g = {.o = o, .cond = cond, .deadline = ev_now_ns() + ms * MS};
	g.t.fn = guard_fn;
	ev_timer_start(o->loop, &g.t, 0);
	ev_run(o->loop);
	ev_timer_stop(o->loop, &g.t);
	if (g.timed_out)
		fprintf(stderr, "run_until: timed out after %u ms\n", ms);
	CHECK(!g.timed_out);
}

static unsigned want; /* for the conditions */

static bool c_written(struct own *o)
{
	return o->nwritten >= want;
}

static bool c_submits(struct own *o)
{
	return o->gate.submits >= want;
}

static bool c_landed(struct own *o)
{
	return o->gate.landed >= want;
}

/* ---- tests ---- */

TEST(fresh_file_written_and_loaded_again)
{
	struct own o;
	own_init(&o);
	bool loaded = true, same = true;
	struct mbm_header h;
	char err[512] = "";
	CHECK_EQ(own_open(&o, RG, NR, 1, &loaded, &h, &same, err, sizeof(err)), 0);
	CHECK(!loaded);
	CHECK(!same);
	CHECK_EQ(mbm_count(wib_set(&o.w, 0), NR), 0);
	mbm_set(wib_set(&o.w, 0), 3);
	mbm_set(wib_set(&o.w, 0), 64);
	mbm_set(wib_set(&o.w, 0), NR - 1);
	CHECK(!wib_durable(&o.w, 0, 3, 3)); /* marked, not on disk yet */
	CHECK_EQ(wib_write_sync(&o.w, err, sizeof(err)), 0);
	CHECK(wib_durable(&o.w, 0, 3, 3));
	CHECK(wib_durable(&o.w, 0, NR - 1, NR - 1));
	CHECK(!wib_durable(&o.w, 0, 3, 4)); /* 4 is not marked */
	CHECK(disk_bit(&o, 0, 64));
	CHECK(!disk_bit(&o, 0, 65));
	own_close(&o);

	/* The same geometry: loaded, the bits taken, on disk. */
	CHECK_EQ(own_open(&o, RG, NR, 1, &loaded, &h, &same, err, sizeof(err)), 0);
	CHECK(loaded);
	CHECK(same);
	CHECK_EQ(h.region, RG);
	CHECK_EQ(h.nregions, NR);
	check_same_header(&h, &o.hdr);
	CHECK_EQ(mbm_count(wib_set(&o.w, 0), NR), 3);
	CHECK(mbm_test(wib_set(&o.w, 0), 3));
	CHECK(mbm_test(wib_set(&o.w, 0), 64));
	CHECK(mbm_test(wib_set(&o.w, 0), NR - 1));
	CHECK(wib_durable(&o.w, 0, 64, 64));
	own_close(&o);

	/* Another region size, another count: loaded, but not ours to take. */
	CHECK_EQ(own_open(&o, 2 * RG, NR, 1, &loaded, &h, &same, err, sizeof(err)), 0);
	CHECK(loaded);
	CHECK(!same);
	CHECK_EQ(h.region, RG); /* what the file says */
	CHECK_EQ(mbm_count(wib_set(&o.w, 0), NR), 0);
	CHECK(!wib_durable(&o.w, 0, 3, 3));
	own_close(&o);
	CHECK_EQ(own_open(&o, RG, NR + 1, 1, &loaded, &h, &same, err, sizeof(err)), 0);
	CHECK(loaded);
	CHECK(!same);
	CHECK_EQ(mbm_count(wib_set(&o.w, 0), NR + 1), 0);
	own_close(&o);

	/* An empty file is a fresh one. */
	unlink(o.path);
	int fd = open(o.path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	close(fd);
	CHECK_EQ(own_open(&o, RG, NR, 1, &loaded, &h, &same, err, sizeof(err)), 0);
	CHECK(!loaded);
	own_close(&o);
	own_free(&o);
}

/* wib_open of o.path with these bytes in it fails naming the path. */
static void check_refused(struct own *o, const void *bytes, size_t len)
{
	unlink(o->path);
	int fd = open(o->path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	CHECK_EQ(write(fd, bytes, len), (long long)len);
	close(fd);
	bool loaded, same;
	struct mbm_header h;
	char err[512] = "";
	CHECK_EQ(own_open(o, RG, NR, 1, &loaded, &h, &same, err, sizeof(err)), -1);
	if (!strstr(err, o->path))
		fprintf(stderr, "refused without the path: %s\n", err);
	CHECK(strstr(err, o->path) != NULL);
	CHECK(strlen(err) > strlen(o->path) + 2); /* and why */
	own_close(o);
}

TEST(garbage_file_refused)
{
	struct own o;
	own_init(&o);
	static uint8_t junk[3 * 4096];
	srand(7);
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)rand();
	check_refused(&o, junk, sizeof(junk));
	check_refused(&o, "hello", 5);
	/* The right magic, a nonsense region size. */
	struct mbm_header h = {.region = 1000, .nregions = NR};
	static uint8_t img[MBM_HEADER + 4096];
	mbm_header_encode(&h, img);
	check_refused(&o, img, sizeof(img));
	/* A directory that is not there. */
	snprintf(o.path, sizeof(o.path), "%s/no-such-dir/bitmap", o.dir);
	bool loaded, same;
	char err[512] = "";
	CHECK_EQ(own_open(&o, RG, NR, 1, &loaded, &h, &same, err, sizeof(err)), -1);
	CHECK(strstr(err, o.path) != NULL);
	own_close(&o);
	snprintf(o.path, sizeof(o.path), "%s/bitmap", o.dir);
	own_free(&o);
}

TEST(waiters_answered_once_their_bits_are_on_disk)
{
	struct own o;
	own_init(&o);
	bool loaded, same;
	struct mbm_header h;
	char err[512] = "";
	CHECK_EQ(own_open(&o, RG, NR, 1, &loaded, &h, &same, err, sizeof(err)), 0);
	own_start(&o);
	unsigned hc = o.header_calls;
	struct req a, b;
	req_init(&a, 0, 5);
	req_init(&b, 0, 6);
	mbm_set(wib_set(&o.w, 0), 5);
	mbm_set(wib_set(&o.w, 0), 6);
	wib_wait(&o.w, &a.io);
	wib_wait(&o.w, &b.io);
	CHECK_EQ(o.nwritten, 0); /* never inline */
	CHECK(!wib_durable(&o.w, 0, 5, 6));
	want = 2;
	run_until(&o, c_written, 2000);
	CHECK_EQ(a.written, 1);
	CHECK_EQ(b.written, 1);
	CHECK_EQ(a.err, 0);
	CHECK_EQ(b.err, 0);
	CHECK_EQ(a.order, 0); /* in the order they came */
	CHECK_EQ(b.order, 1);
	CHECK(a.durable && b.durable);
	CHECK(a.on_disk && b.on_disk);
	CHECK_EQ(o.gate.submits, 1); /* one write carried both */
	CHECK(o.gate.flags & DEV_F_FUA);
	CHECK(o.header_calls > hc);
	CHECK(wib_durable(&o.w, 0, 5, 6));
	/* Nothing else happens: no answer twice, no write without cause. */
	run_until(&o, NULL, 10);
	CHECK_EQ(a.written, 1);
	CHECK_EQ(b.written, 1);
	CHECK_EQ(o.gate.submits, 1);

	/* A bit cleared: wib_kick writes it (no waiter). */
	mbm_clear(wib_set(&o.w, 0), 5);
	wib_kick(&o.w);
	want = 2;
	run_until(&o, c_landed, 2000);
	CHECK(!disk_bit(&o, 0, 5));
	CHECK(disk_bit(&o, 0, 6));
	CHECK(!wib_durable(&o.w, 0, 5, 5));
	own_free(&o);
}

TEST(bits_set_during_a_write_wait_for_the_next)
{
	struct own o;
	own_init(&o);
	bool loaded, same;
	struct mbm_header h;
	char err[512] = "";
	CHECK_EQ(own_open(&o, RG, NR, 1, &loaded, &h, &same, err, sizeof(err)), 0);
	own_start(&o);
	o.gate.hold = true;
	struct req a, b, c;
	req_init(&a, 0, 1);
	req_init(&b, 0, 2);
	req_init(&c, 0, 1); /* waits after bit 2 was set: for the write carrying it */
	mbm_set(wib_set(&o.w, 0), 1);
	wib_wait(&o.w, &a.io);
	want = 1;
	run_until(&o, c_submits, 2000); /* the first write is in flight */
	mbm_set(wib_set(&o.w, 0), 2);
	wib_wait(&o.w, &b.io);
	wib_wait(&o.w, &c.io);
	run_until(&o, NULL, 5);
	CHECK_EQ(o.nwritten, 0);
	CHECK_EQ(o.gate.submits, 1);

	gate_open(&o.gate); /* the first lands: a only */
	want = 1;
	run_until(&o, c_written, 2000);
	CHECK_EQ(a.written, 1);
	CHECK_EQ(a.err, 0);
	CHECK(a.durable && a.on_disk);
	CHECK(!wib_durable(&o.w, 0, 2, 2)); /* not in that write */
	CHECK(!disk_bit(&o, 0, 2));
	want = 2;
	run_until(&o, c_submits, 2000); /* the second, held */
	run_until(&o, NULL, 5);
	CHECK_EQ(b.written, 0);
	CHECK_EQ(c.written, 0);

	gate_open(&o.gate);
	want = 3;
	run_until(&o, c_written, 2000);
	CHECK_EQ(b.written, 1);
	CHECK_EQ(c.written, 1);
	CHECK_EQ(b.err, 0);
	CHECK_EQ(c.err, 0);
	CHECK(b.durable && b.on_disk);
	CHECK(b.order < c.order);
	CHECK(wib_durable(&o.w, 0, 1, 2));
	run_until(&o, NULL, 10);
	CHECK_EQ(o.gate.submits, 2); /* no third write */
	CHECK_EQ(a.written + b.written + c.written, 3);
	own_free(&o);
}

TEST(failed_write_fails_its_waiters)
{
	struct own o;
	own_init(&o);
	bool loaded, same;
	struct mbm_header h;
	char err[512] = "";
	CHECK_EQ(own_open(&o, RG, NR, 1, &loaded, &h, &same, err, sizeof(err)), 0);
	own_start(&o);
	o.gate.fail = EIO;
	struct req a, b;
	req_init(&a, 0, 7);
	req_init(&b, 0, 7);
	mbm_set(wib_set(&o.w, 0), 7);
	wib_wait(&o.w, &a.io);
	want = 1;
	run_until(&o, c_written, 2000);
	CHECK_EQ(a.written, 1);
	CHECK_EQ(a.err, EIO);
	CHECK(!a.durable);
	CHECK(!wib_durable(&o.w, 0, 7, 7));
	o.gate.fail = 0; /* the next write goes through */
	wib_wait(&o.w, &b.io);
	want = 2;
	run_until(&o, c_written, 2000);
	CHECK_EQ(b.written, 1);
	CHECK_EQ(b.err, 0);
	CHECK(b.durable && b.on_disk);
	CHECK_EQ(a.written, 1);
	own_free(&o);
}

TEST(header_node_list_round_trips)
{
	struct own o;
	own_init(&o);
	o.hdr.nlegs = MBM_MAX_LEGS;
	for (uint32_t i = 0; i < MBM_MAX_LEGS; i++) {
		o.hdr.legs[i].in_sync = i % 3 != 0;
		snprintf(o.hdr.legs[i].spec, sizeof(o.hdr.legs[i].spec),
			 "nbd+unix:///leg%u?socket=/run/dst/n%u.sock", i, i);
	}
	/* The longest spec a slot holds. */
	memset(o.hdr.legs[4].spec, 'x', sizeof(o.hdr.legs[4].spec) - 1);
	o.hdr.legs[4].spec[sizeof(o.hdr.legs[4].spec) - 1] = '\0';
	bool loaded, same;
	struct mbm_header h;
	char err[512] = "";
	CHECK_EQ(own_open(&o, RG, NR, 1, &loaded, &h, &same, err, sizeof(err)), 0);
	CHECK_EQ(wib_write_sync(&o.w, err, sizeof(err)), 0);
	CHECK_EQ(disk_header(&o, &h), 0);
	CHECK_EQ(h.region, RG);
	CHECK_EQ(h.nregions, NR);
	check_same_header(&h, &o.hdr);
	own_close(&o);
	CHECK_EQ(own_open(&o, RG, NR, 1, &loaded, &h, &same, err, sizeof(err)), 0);
	CHECK(loaded && same);
	check_same_header(&h, &o.hdr);

	/* The async writes carry the list as header() says it then. */
	own_start(&o);
	o.hdr.nlegs = 3;
	o.hdr.legs[0].in_sync = false;
	o.hdr.legs[1].in_sync = true;
	snprintf(o.hdr.legs[2].spec, sizeof(o.hdr.legs[2].spec), "/dev/replaced");
	wib_kick(&o.w);
	want = 1;
	run_until(&o, c_landed, 2000);
	CHECK_EQ(disk_header(&o, &h), 0);
	check_same_header(&h, &o.hdr);
	own_free(&o);
}

TEST(two_sets_are_independent)
{
	struct own o;
	own_init(&o);
	bool loaded, same;
	struct mbm_header h;
	char err[512] = "";
	CHECK_EQ(own_open(&o, RG, NR, 2, &loaded, &h, &same, err, sizeof(err)), 0);
	mbm_set(wib_set(&o.w, 0), 1);
	mbm_set(wib_set(&o.w, 0), 2);
	mbm_set(wib_set(&o.w, 1), 2);
	mbm_set(wib_set(&o.w, 1), 50);
	CHECK_EQ(wib_write_sync(&o.w, err, sizeof(err)), 0);
	CHECK(wib_durable(&o.w, 0, 1, 2));
	CHECK(!wib_durable(&o.w, 0, 50, 50));
	CHECK(wib_durable(&o.w, 1, 50, 50));
	CHECK(!wib_durable(&o.w, 1, 1, 1));
	own_close(&o);

	CHECK_EQ(own_open(&o, RG, NR, 2, &loaded, &h, &same, err, sizeof(err)), 0);
	CHECK(loaded && same);
	CHECK_EQ(mbm_count(wib_set(&o.w, 0), NR), 2);
	CHECK_EQ(mbm_count(wib_set(&o.w, 1), NR), 2);
	CHECK(mbm_test(wib_set(&o.w, 0), 1) && mbm_test(wib_set(&o.w, 0), 2));
	CHECK(mbm_test(wib_set(&o.w, 1), 2) && mbm_test(wib_set(&o.w, 1), 50));

	/* A change to set 1 alone, written on the loop. */
	own_start(&o);
	struct req a;
	req_init(&a, 1, 70);
	mbm_clear(wib_set(&o.w, 1), 2);
	mbm_set(wib_set(&o.w, 1), 70);
	wib_wait(&o.w, &a.io);
	want = 1;
	run_until(&o, c_written, 2000);
	CHECK(a.durable && a.on_disk);
	CHECK(!wib_durable(&o.w, 0, 70, 70));
	CHECK(!disk_bit(&o, 1, 2));
	CHECK(disk_bit(&o, 0, 2));
	CHECK(disk_bit(&o, 0, 1));
	CHECK(!disk_bit(&o, 0, 70));
	CHECK(disk_bit(&o, 1, 50));
	own_close(&o);

	/* One set's file opened with two: not the geometry it was written in. */
	unlink(o.path);
	CHECK_EQ(own_open(&o, RG, NR, 1, &loaded, &h, &same, err, sizeof(err)), 0);
	mbm_set(wib_set(&o.w, 0), 9);
	CHECK_EQ(wib_write_sync(&o.w, err, sizeof(err)), 0);
	own_close(&o);
	CHECK_EQ(own_open(&o, RG, NR, 2, &loaded, &h, &same, err, sizeof(err)), 0);
	CHECK(loaded);
	CHECK(!same);
	CHECK_EQ(mbm_count(wib_set(&o.w, 1), NR), 0);
	own_free(&o);
}

TEST(close_waits_for_the_write_in_flight)
{
	struct own o;
	own_init(&o);
	bool loaded, same;
	struct mbm_header h;
	char err[512] = "";
	CHECK_EQ(own_open(&o, RG, NR, 1, &loaded, &h, &same, err, sizeof(err)), 0);
	own_start(&o);
	o.gate.break_on_submit = true;
	struct req a;
	req_init(&a, 0, 33);
	mbm_set(wib_set(&o.w, 0), 33);
	wib_wait(&o.w, &a.io);
	want = 1;
	run_until(&o, c_submits, 2000);
	CHECK_EQ(o.gate.landed, 0); /* sent to the file, not back yet */
	wib_close(&o.w);
	CHECK_EQ(o.gate.landed, 1);
	CHECK(disk_bit(&o, 0, 33));
	own_free(&o);
}

UNIT_MAIN(T(fresh_file_written_and_loaded_again), T(garbage_file_refused),
	  T(waiters_answered_once_their_bits_are_on_disk),
	  T(bits_set_during_a_write_wait_for_the_next), T(failed_write_fails_its_waiters),
	  T(header_node_list_round_trips), T(two_sets_are_independent),
	  T(close_waits_for_the_write_in_flight))
