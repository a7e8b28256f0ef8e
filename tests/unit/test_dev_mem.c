/* test_dev_mem.c - the "mem:SIZE" sparse memory device: data, holes, zeroing, extents. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/uio.h>

#include "common/ev.h"
#include "common/util.h"
#include "dev/dev.h"
#include "unit.h"

#define KiB   (1024ull)
#define MiB   (1024ull * KiB)
#define CHUNK (64 * KiB)
#define HZ    (DEV_EXT_HOLE | DEV_EXT_ZERO)

struct waiter {
	struct ev_loop *loop;
	int pending;
	int err;
	bool running;
};

static void io_done(struct dev_io *io, int err)
{
	struct waiter *w = io->priv;
	w->err = err;
	if (--w->pending == 0 && w->running)
		ev_loop_break(w->loop);
}

/* Submit one io and wait for it (the memory device completes inline, but the
 * test does not rely on that). Returns its errno. */
static int run(struct dev *d, struct dev_io *io)
{
	struct waiter w = {.loop = d->loop, .pending = 1, .err = -1};
	io->done = io_done;
	io->priv = &w;
	dev_submit(d, io);
	if (w.pending) {
		w.running = true;
		ev_run(d->loop);
	}
	return w.err;
}

static int do_rw(struct dev *d, enum dev_op op, uint32_t flags, uint64_t off, uint64_t len,
		 void *buf)
{
	struct dev_io io = {.op = op, .flags = flags, .off = off, .len = len, .buf = buf};
	return run(d, &io);
}

static int do_status(struct dev *d, uint64_t off, uint64_t len, struct dev_extent *ext,
		     uint32_t max, uint32_t *count)
{
	struct dev_io io = {
	    .op = DEV_BLOCK_STATUS, .off = off, .len = len, .ext = ext, .ext_max = max};
	int err = run(d, &io);
	*count = io.ext_count;
	return err;
}

static void fill(uint8_t *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 131 + seed * 7 + 1) | 1; /* never zero */
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

static struct dev *open_mem(struct ev_loop *loop, const char *spec)
{
	char err[256] = "";
	struct dev *d = dev_mem_open(loop, spec, err, sizeof(err));
	if (!d)
		fprintf(stderr, "open %s: %s\n", spec, err);
	return d;
}

TEST(open_errors)
{
	static const char *bad[] = {"mem:0", "mem:abc", "mem:1000", "mem:", "mem:-1G", "mem:1P"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char err[256] = "";
		struct dev *d = dev_mem_open(NULL, bad[i], err, sizeof(err));
		CHECK(d == NULL);
		CHECK(strstr(err, bad[i]) != NULL);
		dev_destroy(d);
	}
}

TEST(open_props)
{
	struct ev_loop *loop = ev_loop_new();
	struct dev *d = open_mem(loop, "mem:1G");
	CHECK(d != NULL);
	if (!d)
		return;
	CHECK_EQ(d->size, 1024 * MiB);
	CHECK_STR(d->desc, "M: mem:1G");
	CHECK_STR(d->ops->kind, "mem");
	CHECK_EQ(d->min_block, 1);
	uint32_t want = DEV_CAP_FLUSH | DEV_CAP_FUA | DEV_CAP_TRIM | DEV_CAP_ZERO |
			DEV_CAP_FAST_ZERO | DEV_CAP_EXTENTS | DEV_CAP_MULTI_CONN | DEV_CAP_CACHE |
			DEV_CAP_BORROW;
	CHECK_EQ(d->caps, want);
	dev_destroy(d);
	/* dev_open_local dispatches on the prefix. */
	char err[256];
	d = dev_open_local(loop, "mem:4M", false, err, sizeof(err));
	CHECK(d && d->size == 4 * MiB);
	dev_destroy(d);
	ev_loop_free(loop);
}

TEST(round_trip_odd)
{
	struct ev_loop *loop = ev_loop_new();
	struct dev *d = open_mem(loop, "mem:2G");
	if (!d)
		return;
	/* Odd offsets and lengths crossing chunk boundaries, and one crossing
	 * the 512 MiB line between second-level tables. */
	static const struct {
		uint64_t off, len;
	} cases[] = {
	    {1, 1},
	    {CHUNK - 1000, 70001},
	    {3 * CHUNK + 17, 5 * CHUNK + 3},
	    {512 * MiB - 777, 200001},
	    {2048 * MiB - 4099, 4099},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t off = cases[i].off, len = cases[i].len;
		/* Read back a window with 100 bytes of margin each side. */
		uint64_t woff = off >= 100 ? off - 100 : 0;
		uint64_t wend = MIN(off + len + 100, d->size);
		uint8_t *src = malloc(len), *win = malloc(wend - woff);
		fill(src, len, (unsigned)i);
		CHECK_EQ(do_rw(d, DEV_WRITE, 0, off, len, src), 0);
		memset(win, 0xAA, wend - woff);
		CHECK_EQ(do_rw(d, DEV_READ, 0, woff, wend - woff, win), 0);
		CHECK(memcmp(win + (off - woff), src, len) == 0);
		CHECK(all_zero(win, off - woff));
		CHECK(all_zero(win + (off - woff) + len, wend - off - len));
		free(src);
		free(win);
		/* Overwriting keeps neighbours intact. */
		uint8_t b = 0x5A;
		CHECK_EQ(do_rw(d, DEV_WRITE, 0, off, 1, &b), 0);
		uint8_t r[2] = {0};
		if (off + 2 <= d->size) {
			CHECK_EQ(do_rw(d, DEV_READ, 0, off, 2, r), 0);
			CHECK_EQ(r[0], 0x5A);
			CHECK(len == 1 ? r[1] == 0 : r[1] != 0);
		}
	}
	dev_destroy(d);
	ev_loop_free(loop);
}

TEST(unwritten_reads_zero)
{
	struct ev_loop *loop = ev_loop_new();
	struct dev *d = open_mem(loop, "mem:1T");
	if (!d)
		return;
	size_t n = 3 * CHUNK + 5;
	uint8_t *buf = malloc(n);
	memset(buf, 0xAA, n);
	CHECK_EQ(do_rw(d, DEV_READ, 0, 700 * 1024 * MiB + 3, n, buf), 0);
	CHECK(all_zero(buf, n));
	/* An allocated chunk's unwritten bytes read as zeroes too. */
	uint8_t b = 1;
	CHECK_EQ(do_rw(d, DEV_WRITE, 0, 5 * CHUNK + 100, 1, &b), 0);
	memset(buf, 0xAA, n);
	CHECK_EQ(do_rw(d, DEV_READ, 0, 5 * CHUNK, CHUNK, buf), 0);
	CHECK(all_zero(buf, 100));
	CHECK_EQ(buf[100], 1);
	CHECK(all_zero(buf + 101, CHUNK - 101));
	free(buf);
	dev_destroy(d);
	ev_loop_free(loop);
}

TEST(out_of_range)
{
	struct ev_loop *loop = ev_loop_new();
	struct dev *d = open_mem(loop, "mem:1M");
	if (!d)
		return;
	uint8_t buf[16];
	CHECK_EQ(do_rw(d, DEV_READ, 0, MiB - 8, 16, buf), EINVAL);
	CHECK_EQ(do_rw(d, DEV_WRITE, 0, UINT64_MAX - 4, 16, buf), EINVAL);
	CHECK_EQ(do_rw(d, DEV_TRIM, 0, 0, MiB + 1, NULL), EINVAL);
	CHECK_EQ(do_rw(d, DEV_READ, 0, MiB - 16, 16, buf), 0);
	dev_destroy(d);
	ev_loop_free(loop);
}

/* Write [0, 4 chunks) then zero a range from mid chunk 0 to mid chunk 3. */
static void zero_case(enum dev_op op, uint32_t flags)
{
	struct ev_loop *loop = ev_loop_new();
	struct dev *d = open_mem(loop, "mem:16M");
	if (!d)
		return;
	size_t n = 4 * CHUNK;
	uint8_t *src = malloc(n), *buf = malloc(n);
	fill(src, n, 3);
	CHECK_EQ(do_rw(d, DEV_WRITE, 0, 0, n, src), 0);
	uint64_t zoff = 1000, zlen = 3 * CHUNK + 5000 - zoff;
	CHECK_EQ(do_rw(d, op, flags, zoff, zlen, NULL), 0);
	CHECK_EQ(do_rw(d, DEV_READ, 0, 0, n, buf), 0);
	CHECK(memcmp(buf, src, zoff) == 0);
	CHECK(all_zero(buf + zoff, zlen));
	CHECK(memcmp(buf + zoff + zlen, src + zoff + zlen, n - zoff - zlen) == 0);

	struct dev_extent ext[8];
	uint32_t cnt = 0;
	CHECK_EQ(do_status(d, 0, 4 * CHUNK, ext, 8, &cnt), 0);
	if (flags & DEV_F_NO_HOLE) {
		/* Everything stays allocated. */
		CHECK_EQ(cnt, 1);
		CHECK_EQ(ext[0].len, 4 * CHUNK);
		CHECK_EQ(ext[0].flags, 0);
	} else {
		/* Chunks 1 and 2 were wholly covered and are freed. */
		CHECK_EQ(cnt, 3);
		CHECK_EQ(ext[0].len, CHUNK);
		CHECK_EQ(ext[0].flags, 0);
		CHECK_EQ(ext[1].len, 2 * CHUNK);
		CHECK_EQ(ext[1].flags, HZ);
		CHECK_EQ(ext[2].len, CHUNK);
		CHECK_EQ(ext[2].flags, 0);
	}
	free(src);
	free(buf);
	dev_destroy(d);
	ev_loop_free(loop);
}

TEST(trim_reads_zero)
{
	zero_case(DEV_TRIM, 0);
}

TEST(write_zeroes_punch)
{
	zero_case(DEV_WRITE_ZEROES, 0);
	zero_case(DEV_WRITE_ZEROES, DEV_F_FAST_ZERO | DEV_F_FUA);
}

TEST(write_zeroes_no_hole)
{
	zero_case(DEV_WRITE_ZEROES, DEV_F_NO_HOLE);
	/* NO_HOLE on a never-written range allocates it. */
	struct ev_loop *loop = ev_loop_new();
	struct dev *d = open_mem(loop, "mem:16M");
	if (!d)
		return;
	CHECK_EQ(do_rw(d, DEV_WRITE_ZEROES, DEV_F_NO_HOLE, 2 * CHUNK, CHUNK, NULL), 0);
	struct dev_extent ext[4];
	uint32_t cnt = 0;
	CHECK_EQ(do_status(d, 0, 16 * MiB, ext, 4, &cnt), 0);
	CHECK_EQ(cnt, 3);
	CHECK_EQ(ext[0].len, 2 * CHUNK);
	CHECK_EQ(ext[0].flags, HZ);
	CHECK_EQ(ext[1].len, CHUNK);
	CHECK_EQ(ext[1].flags, 0);
	CHECK_EQ(ext[2].len, 16 * MiB - 3 * CHUNK);
	CHECK_EQ(ext[2].flags, HZ);
	dev_destroy(d);
	ev_loop_free(loop);
}

TEST(trim_tail_chunk)
{
	/* 1000 KiB: the last chunk is partial; trimming to the end frees it. */
	struct ev_loop *loop = ev_loop_new();
	struct dev *d = open_mem(loop, "mem:1000K");
	if (!d)
		return;
	uint64_t size = 1000 * KiB, last = size / CHUNK * CHUNK;
	uint8_t buf[512];
	fill(buf, sizeof(buf), 9);
	CHECK_EQ(do_rw(d, DEV_WRITE, 0, size - 512, 512, buf), 0);
	struct dev_extent ext[4];
	uint32_t cnt = 0;
	CHECK_EQ(do_status(d, last, size - last, ext, 4, &cnt), 0);
	CHECK_EQ(cnt, 1);
	CHECK_EQ(ext[0].flags, 0);
	CHECK_EQ(do_rw(d, DEV_TRIM, 0, last, size - last, NULL), 0);
	CHECK_EQ(do_status(d, 0, size, ext, 4, &cnt), 0);
	CHECK_EQ(cnt, 1);
	CHECK_EQ(ext[0].len, size);
	CHECK_EQ(ext[0].flags, HZ);
	dev_destroy(d);
	ev_loop_free(loop);
}

TEST(block_status)
{
	struct ev_loop *loop = ev_loop_new();
	struct dev *d = open_mem(loop, "mem:1T");
	if (!d)
		return;
	struct dev_extent ext[8];
	uint32_t cnt = 0;
	/* Fresh: one hole over everything (crossing many empty L2 tables). */
	CHECK_EQ(do_status(d, 0, d->size, ext, 8, &cnt), 0);
	CHECK_EQ(cnt, 1);
	CHECK_EQ(ext[0].len, d->size);
	CHECK_EQ(ext[0].flags, HZ);

	/* Data in two adjacent chunks reports as one merged extent. */
	uint8_t b[2] = {1, 2};
	CHECK_EQ(do_rw(d, DEV_WRITE, 0, MiB + CHUNK - 1, 2, b), 0);
	CHECK_EQ(do_status(d, 0, 4 * MiB, ext, 8, &cnt), 0);
	CHECK_EQ(cnt, 3);
	CHECK_EQ(ext[0].len, MiB);
	CHECK_EQ(ext[0].flags, HZ);
	CHECK_EQ(ext[1].len, 2 * CHUNK);
	CHECK_EQ(ext[1].flags, 0);
	CHECK_EQ(ext[2].len, 3 * MiB - 2 * CHUNK);
	CHECK_EQ(ext[2].flags, HZ);

	/* Unaligned range starting inside a data chunk. */
	CHECK_EQ(do_status(d, MiB + 10, 100, ext, 8, &cnt), 0);
	CHECK_EQ(cnt, 1);
	CHECK_EQ(ext[0].len, 100);
	CHECK_EQ(ext[0].flags, 0);

	/* ext_max limits the answer to a prefix. */
	CHECK_EQ(do_status(d, 0, 4 * MiB, ext, 2, &cnt), 0);
	CHECK_EQ(cnt, 2);
	CHECK_EQ(ext[0].len + ext[1].len, MiB + 2 * CHUNK);
	CHECK_EQ(do_status(d, MiB + 3, d->size - MiB - 3, ext, 1, &cnt), 0);
	CHECK_EQ(cnt, 1);
	CHECK_EQ(ext[0].len, 2 * CHUNK - 3);
	CHECK_EQ(ext[0].flags, 0);

	/* Bad requests. */
	CHECK_EQ(do_status(d, 0, 0, ext, 8, &cnt), EINVAL);
	CHECK_EQ(do_status(d, 0, MiB, ext, 0, &cnt), EINVAL);
	dev_destroy(d);
	ev_loop_free(loop);
}

TEST(flush_fua_cache)
{
	struct ev_loop *loop = ev_loop_new();
	struct dev *d = open_mem(loop, "mem:1M");
	if (!d)
		return;
	uint8_t buf[4096];
	fill(buf, sizeof(buf), 1);
	CHECK_EQ(do_rw(d, DEV_WRITE, DEV_F_FUA, 4096, sizeof(buf), buf), 0);
	CHECK_EQ(do_rw(d, DEV_FLUSH, 0, 0, 0, NULL), 0);
	CHECK_EQ(do_rw(d, DEV_CACHE, 0, 0, MiB, NULL), 0);
	CHECK_EQ(do_rw(d, DEV_TRIM, DEV_F_FUA, 0, 4096, NULL), 0);
	dev_destroy(d);
	ev_loop_free(loop);
}

TEST(many_in_flight)
{
	/* Completion is inline, so this mostly checks that callbacks that
	 * count down work the same way they do for the file device. */
	struct ev_loop *loop = ev_loop_new();
	struct dev *d = open_mem(loop, "mem:64M");
	if (!d)
		return;
	enum { N = 300, SZ = 4096 + 3 };
	static struct dev_io ios[N];
	uint8_t *data = malloc((size_t)N * SZ), *back = malloc((size_t)N * SZ);
	fill(data, (size_t)N * SZ, 4);
	struct waiter w = {.loop = loop, .pending = N, .err = -1};
	for (int i = 0; i < N; i++) {
		ios[i] = (struct dev_io){.op = DEV_WRITE,
					 .off = (uint64_t)i * 100003,
					 .len = SZ,
					 .buf = data + (size_t)i * SZ,
					 .done = io_done,
					 .priv = &w};
		dev_submit(d, &ios[i]);
	}
	CHECK_EQ(w.pending, 0);
	CHECK_EQ(w.err, 0);
	w.pending = N;
	for (int i = 0; i < N; i++) {
		ios[i].op = DEV_READ;
		ios[i].buf = back + (size_t)i * SZ;
		dev_submit(d, &ios[i]);
	}
	CHECK_EQ(w.pending, 0);
	CHECK(memcmp(data, back, (size_t)N * SZ) == 0);
	free(data);
	free(back);
	dev_destroy(d);
	ev_loop_free(loop);
}

/* A borrowed read of off+len: the iovs, joined, against want. */
static void check_borrow(struct dev *d, uint64_t off, uint64_t len, const uint8_t *want,
			 struct dev_io *io, struct iovec *iov)
{
	*io = (struct dev_io){
	    .op = DEV_READ, .flags = DEV_F_BORROW, .off = off, .len = len, .iov = iov};
	CHECK_EQ(run(d, io), 0);
	CHECK(io->iov_count >= 1 && io->iov_count <= DEV_BORROW_IOV);
	uint64_t at = 0;
	for (uint32_t i = 0; i < io->iov_count; i++) {
		CHECK(at + iov[i].iov_len <= len);
		if (at + iov[i].iov_len > len)
			break;
		CHECK(memcmp(iov[i].iov_base, want + at, iov[i].iov_len) == 0);
		at += iov[i].iov_len;
	}
	CHECK_EQ(at, len);
}

/* DEV_F_BORROW: pointers into the disk instead of a copy; holes read as
 * zeroes; a TRIM while a read is borrowed zeroes in place instead of
 * freeing (ASan would see a freed chunk read), and frees once released. */
TEST(borrowed_read)
{
	struct ev_loop *loop = ev_loop_new();
	struct dev *d = open_mem(loop, "mem:4M");
	CHECK(d->caps & DEV_CAP_BORROW);
	uint8_t *data = calloc(1, 2 * MiB);
	fill(data, MiB, 3);
	CHECK_EQ(do_rw(d, DEV_WRITE, 0, 0, MiB, data), 0);
	struct iovec iov[DEV_BORROW_IOV], iov2[DEV_BORROW_IOV];
	struct dev_io io, io2;
	check_borrow(d, 0, MiB, data, &io, iov);
	CHECK_EQ(io.iov_count, MiB / CHUNK);
	dev_release(d, &io);
	check_borrow(d, 777, MiB, data + 777, &io, iov); /* unaligned, into the hole */
	CHECK_EQ(io.iov_count, MiB / CHUNK + 1);
	dev_release(d, &io);
	check_borrow(d, MiB + 5, 3 * CHUNK, data + MiB + 5, &io, iov); /* all hole */
	dev_release(d, &io);

	check_borrow(d, CHUNK, CHUNK, data + CHUNK, &io, iov);
	check_borrow(d, 0, 4 * CHUNK, data, &io2, iov2); /* two borrowed at once */
	CHECK_EQ(do_rw(d, DEV_TRIM, 0, 0, 4 * CHUNK, NULL), 0);
	CHECK(all_zero(iov[0].iov_base, CHUNK)); /* zeroed, still readable */
	struct dev_extent ext[4];
	uint32_t n = 0;
	CHECK_EQ(do_status(d, 0, 4 * CHUNK, ext, 4, &n), 0);
	CHECK(n >= 1 && !(ext[0].flags & DEV_EXT_HOLE)); /* kept while borrowed */
	dev_release(d, &io);
	dev_release(d, &io2);
	CHECK_EQ(do_rw(d, DEV_TRIM, 0, 0, 4 * CHUNK, NULL), 0);
	CHECK_EQ(do_status(d, 0, 4 * CHUNK, ext, 4, &n), 0);
	CHECK(n >= 1 && ext[0].flags == HZ && ext[0].len == 4 * CHUNK); /* freed now */

	io = (struct dev_io){.op = DEV_READ,
			     .flags = DEV_F_BORROW,
			     .off = 0,
			     .len = DEV_BORROW_MAX + 4096,
			     .iov = iov};
	CHECK_EQ(run(d, &io), EINVAL); /* too long to borrow: the caller's error */
	free(data);
	dev_destroy(d);
	ev_loop_free(loop);
}

UNIT_MAIN(T(borrowed_read), T(open_errors), T(open_props), T(round_trip_odd),
	  T(unwritten_reads_zero), T(out_of_range), T(trim_reads_zero), T(write_zeroes_punch),
	  T(write_zeroes_no_hole), T(trim_tail_chunk), T(block_status), T(flush_fua_cache),
	  T(many_in_flight))
