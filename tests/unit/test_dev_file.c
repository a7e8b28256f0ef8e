/* test_dev_file.c - the io_uring file device against real temp files: data, holes,
 * zeroing (and its write fallback on tmpfs), extents, deep queues, errors,
 * reads borrowed from the file's mapping, writes of cached pages done inline,
 * the claim of a read-write open. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "common/ev.h"
#include "common/strbuf.h"
#include "common/util.h"
#include "dev/dev.h"
#include "unit.h"

#define KiB (1024ull)
#define MiB (1024ull * KiB)
#define HZ  (DEV_EXT_HOLE | DEV_EXT_ZERO)

struct waiter {
	struct ev_loop *loop;
	int pending;
	int err; /* last error seen */
	int nerr;
	bool running;
};

static void io_done(struct dev_io *io, int err)
{
	struct waiter *w = io->priv;
	w->err = err;
	w->nerr += err != 0;
	if (--w->pending == 0 && w->running)
		ev_loop_break(w->loop);
}

struct timeout {
	struct ev_timer t;
	struct ev_loop *loop;
	bool fired;
};

static void on_timeout(struct ev_timer *t)
{
	struct timeout *to = container_of(t, struct timeout, t);
	to->fired = true;
	ev_loop_break(to->loop);
}

/* Run the loop until w has nothing pending, or 20 s pass (a failed test
 * beats a hung one). */
static void wait_all(struct waiter *w)
{
	if (!w->pending)
		return;
	struct timeout to = {.t = {.fn = on_timeout}, .loop = w->loop};
	ev_timer_start(w->loop, &to.t, 20ull * 1000000000);
	w->running = true;
	while (w->pending && !to.fired)
		ev_run(w->loop);
	w->running = false;
	ev_timer_stop(w->loop, &to.t);
	CHECK(!to.fired);
}

static int run(struct dev *d, struct dev_io *io)
{
	struct waiter w = {.loop = d->loop, .pending = 1, .err = -1};
	io->done = io_done;
	io->priv = &w;
	dev_submit(d, io);
	wait_all(&w);
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

/* A sparse temp file of size bytes in dir (NULL: $TMPDIR or /tmp). */
static char *make_temp(const char *dir, uint64_t size)
{
	if (!dir)
		dir = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char *path = xasprintf("%s/dst-test-XXXXXX", dir);
	int fd = mkstemp(path);
	if (fd < 0 || ftruncate(fd, (off_t)size) < 0) {
		perror(path);
		if (fd >= 0)
			close(fd);
		free(path);
		return NULL;
	}
	close(fd);
	return path;
}

static void drop_temp(char *path)
{
	if (path)
		unlink(path);
	free(path);
}

static struct dev *open_file(struct ev_loop *loop, const char *path, bool ro)
{
	char err[512] = "";
	struct dev *d = dev_file_open(loop, path, ro, err, sizeof(err));
	if (!d)
		fprintf(stderr, "open: %s\n", err);
	CHECK(d != NULL);
	return d;
}

static int64_t blocks_of(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (int64_t)st.st_blocks : -1;
}

/* Everything a test needs: a loop, a temp file and the device on it. */
struct fixture {
	struct ev_loop *loop;
	char *path;
	struct dev *d;
};

static void teardown(struct fixture *fx)
{
	dev_destroy(fx->d);
	drop_temp(fx->path);
	ev_loop_free(fx->loop);
}

/* On failure everything is already torn down. */
static bool setup(struct fixture *fx, const char *dir, uint64_t size)
{
	fx->loop = ev_loop_new();
	fx->path = make_temp(dir, size);
	fx->d = fx->path ? open_file(fx->loop, fx->path, false) : NULL;
	if (!fx->d)
		teardown(fx);
	return fx->d != NULL;
}

TEST(open_errors)
{
	char err[512] = "";
	const char *missing = "/tmp/dst-no-such-dir/x.img";
	CHECK(dev_file_open(NULL, missing, false, err, sizeof(err)) == NULL);
	CHECK(strstr(err, missing) != NULL);
	CHECK(strstr(err, "No such file or directory") != NULL);

	char *path = make_temp(NULL, 0);
	if (!path)
		return;
	err[0] = 0;
	CHECK(dev_file_open(NULL, path, false, err, sizeof(err)) == NULL);
	CHECK(strstr(err, path) != NULL);
	CHECK(strstr(err, "empty") != NULL);
	drop_temp(path);

	err[0] = 0;
	CHECK(dev_file_open(NULL, "/tmp", false, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "/tmp") != NULL);
}

TEST(open_props)
{
	struct fixture fx;
	if (!setup(&fx, NULL, 3 * MiB + 5))
		return;
	struct dev *d = fx.d;
	char *abs = realpath(fx.path, NULL);
	char *want = xasprintf("L: %s", abs);
	CHECK_STR(d->desc, want);
	CHECK_STR(d->ops->kind, "file");
	CHECK_EQ(d->size, 3 * MiB + 5);
	CHECK_EQ(d->min_block, 1);
	uint32_t caps = DEV_CAP_FLUSH | DEV_CAP_FUA | DEV_CAP_TRIM | DEV_CAP_ZERO |
			DEV_CAP_FAST_ZERO | DEV_CAP_EXTENTS | DEV_CAP_MULTI_CONN | DEV_CAP_CACHE |
			DEV_CAP_BORROW;
	CHECK_EQ(d->caps, caps);
	free(want);
	free(abs);

	/* Read-only: reads work, anything that writes fails with EROFS. */
	struct dev *ro = open_file(fx.loop, fx.path, true);
	if (ro) {
		uint8_t buf[100];
		CHECK(ro->caps & DEV_CAP_READONLY);
		CHECK_EQ(do_rw(ro, DEV_READ, 0, 7, sizeof(buf), buf), 0);
		CHECK_EQ(do_rw(ro, DEV_WRITE, 0, 7, sizeof(buf), buf), EROFS);
		CHECK_EQ(do_rw(ro, DEV_TRIM, 0, 0, 4096, NULL), EROFS);
		CHECK_EQ(do_rw(ro, DEV_WRITE_ZEROES, 0, 0, 4096, NULL), EROFS);
		CHECK_EQ(do_rw(ro, DEV_FLUSH, 0, 0, 0, NULL), 0);
		dev_destroy(ro);
	}
	teardown(&fx);
}

TEST(round_trip_odd)
{
	struct fixture fx;
	if (!setup(&fx, NULL, 8 * MiB))
		return;
	struct dev *d = fx.d;
	static const struct {
		uint64_t off, len;
	} cases[] = {
	    {1, 1},
	    {4095, 2},
	    {65536 - 1000, 70001},
	    {MiB + 17, 3 * MiB + 3},
	    {8 * MiB - 4099, 4099},
	};
	int vfd = open(fx.path, O_RDONLY | O_CLOEXEC);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t off = cases[i].off, len = cases[i].len;
		uint64_t woff = off >= 100 ? off - 100 : 0;
		uint64_t wend = MIN(off + len + 100, d->size);
		uint8_t *src = malloc(len), *win = malloc(wend - woff), *chk = malloc(len);
		fill(src, len, (unsigned)i);
		CHECK_EQ(do_rw(d, DEV_WRITE, 0, off, len, src), 0);
		memset(win, 0xAA, wend - woff);
		CHECK_EQ(do_rw(d, DEV_READ, 0, woff, wend - woff, win), 0);
		CHECK(memcmp(win + (off - woff), src, len) == 0);
		CHECK(all_zero(win, off - woff));
		CHECK(all_zero(win + (off - woff) + len, wend - off - len));
		/* And it really is in the file. */
		CHECK_EQ(pread(vfd, chk, len, (off_t)off), (long long)len);
		CHECK(memcmp(chk, src, len) == 0);
		free(src);
		free(win);
		free(chk);
	}
	close(vfd);
	teardown(&fx);
}

TEST(unwritten_reads_zero)
{
	struct fixture fx;
	if (!setup(&fx, NULL, 64 * MiB))
		return;
	size_t n = 2 * MiB + 3;
	uint8_t *buf = malloc(n);
	memset(buf, 0xAA, n);
	CHECK_EQ(do_rw(fx.d, DEV_READ, 0, 40 * MiB + 1, n, buf), 0);
	CHECK(all_zero(buf, n));
	free(buf);
	teardown(&fx);
}

TEST(read_past_eof_zero_fills)
{
	/* The file shrinks under the device: reads beyond the new end see zeroes. */
	struct fixture fx;
	if (!setup(&fx, NULL, MiB))
		return;
	size_t n = 256 * KiB;
	uint8_t *src = malloc(2 * n), *buf = malloc(2 * n);
	fill(src, 2 * n, 5);
	CHECK_EQ(do_rw(fx.d, DEV_WRITE, 0, n, 2 * n, src), 0);
	CHECK_EQ(truncate(fx.path, (off_t)(2 * n)), 0);
	memset(buf, 0xAA, 2 * n);
	CHECK_EQ(do_rw(fx.d, DEV_READ, 0, n, 2 * n, buf), 0);
	CHECK(memcmp(buf, src, n) == 0);
	CHECK(all_zero(buf + n, n));
	free(src);
	free(buf);
	teardown(&fx);
}

TEST(out_of_range)
{
	struct fixture fx;
	if (!setup(&fx, NULL, MiB))
		return;
	uint8_t buf[16];
	CHECK_EQ(do_rw(fx.d, DEV_READ, 0, MiB - 8, 16, buf), EINVAL);
	CHECK_EQ(do_rw(fx.d, DEV_WRITE, 0, UINT64_MAX - 4, 16, buf), EINVAL);
	CHECK_EQ(do_rw(fx.d, DEV_WRITE_ZEROES, 0, 4096, MiB, NULL), EINVAL);
	CHECK_EQ(do_rw(fx.d, DEV_READ, 0, MiB - 16, 16, buf), 0);
	CHECK_EQ(do_rw(fx.d, DEV_READ, 0, 0, 0, buf), 0);
	teardown(&fx);
}

/* Fill [0, 2 MiB) with data, then zero [zoff, zoff+zlen) with op/flags and
 * check the bytes. Returns st_blocks before and after the zeroing. */
static void zero_range(struct fixture *fx, enum dev_op op, uint32_t flags, uint64_t zoff,
		       uint64_t zlen, int want, int64_t *before, int64_t *after)
{
	size_t n = 2 * MiB;
	uint8_t *src = malloc(n), *buf = malloc(n);
	fill(src, n, 11);
	CHECK_EQ(do_rw(fx->d, DEV_WRITE, 0, 0, n, src), 0);
	CHECK_EQ(do_rw(fx->d, DEV_FLUSH, 0, 0, 0, NULL), 0);
	*before = blocks_of(fx->path);
	CHECK_EQ(do_rw(fx->d, op, flags, zoff, zlen, NULL), want);
	*after = blocks_of(fx->path);
	CHECK_EQ(do_rw(fx->d, DEV_READ, 0, 0, n, buf), 0);
	CHECK(memcmp(buf, src, zoff) == 0);
	if (want == 0)
		CHECK(all_zero(buf + zoff, zlen));
	else
		CHECK(memcmp(buf + zoff, src + zoff, zlen) == 0);
	CHECK(memcmp(buf + zoff + zlen, src + zoff + zlen, n - zoff - zlen) == 0);
	free(src);
	free(buf);
}

static bool is_hole_at(const char *path, uint64_t off)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	off_t h = lseek(fd, (off_t)off, SEEK_HOLE);
	close(fd);
	return h == (off_t)off;
}

TEST(trim_punches_hole)
{
	struct fixture fx;
	if (!setup(&fx, NULL, 4 * MiB))
		return;
	int64_t before, after;
	/* Unaligned ends: the file system zeroes the partial blocks. */
	zero_range(&fx, DEV_TRIM, 0, 1000, MiB + 5000, 0, &before, &after);
	CHECK(after < before);
	CHECK(is_hole_at(fx.path, 4096));
	zero_range(&fx, DEV_TRIM, DEV_F_FUA, 4096, 4096, 0, &before, &after);
	teardown(&fx);
}

TEST(write_zeroes_punch)
{
	struct fixture fx;
	if (!setup(&fx, NULL, 4 * MiB))
		return;
	int64_t before, after;
	zero_range(&fx, DEV_WRITE_ZEROES, 0, 333, MiB, 0, &before, &after);
	CHECK(after < before);
	CHECK(is_hole_at(fx.path, 4096));
	zero_range(&fx, DEV_WRITE_ZEROES, DEV_F_FUA | DEV_F_FAST_ZERO, 8192, 64 * KiB, 0, &before,
		   &after);
	CHECK(is_hole_at(fx.path, 8192));
	teardown(&fx);
}

TEST(write_zeroes_no_hole)
{
	struct fixture fx;
	if (!setup(&fx, NULL, 4 * MiB))
		return;
	int64_t before, after;
	zero_range(&fx, DEV_WRITE_ZEROES, DEV_F_NO_HOLE, 333, MiB, 0, &before, &after);
	CHECK(after >= before); /* still allocated */
	zero_range(&fx, DEV_WRITE_ZEROES, DEV_F_NO_HOLE | DEV_F_FUA, 4096, 4096, 0, &before,
		   &after);
	CHECK(after >= before);
	teardown(&fx);
}

/* tmpfs has no FALLOC_FL_ZERO_RANGE: NO_HOLE zeroing falls back to writing
 * zeroes, and refuses with ENOTSUP when asked to be fast. */
TEST(write_zeroes_fallback_tmpfs)
{
	struct statfs sfs;
	if (statfs("/dev/shm", &sfs) < 0 || sfs.f_type != TMPFS_MAGIC) {
		printf("skip: no tmpfs at /dev/shm\n");
		return;
	}
	struct fixture fx;
	if (!setup(&fx, "/dev/shm", 4 * MiB))
		return;
	int fd = open(fx.path, O_RDWR | O_CLOEXEC);
	bool has_zero_range =
	    fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 0, 4096) == 0;
	close(fd);
	int64_t before, after;
	/* Longer than the 1 MiB zero buffer, so it goes in pieces. */
	zero_range(&fx, DEV_WRITE_ZEROES, DEV_F_NO_HOLE, 100, MiB + 300 * KiB, 0, &before, &after);
	CHECK(after >= before);
	zero_range(&fx, DEV_WRITE_ZEROES, DEV_F_NO_HOLE | DEV_F_FUA, 5, 7, 0, &before, &after);
	if (!has_zero_range)
		zero_range(&fx, DEV_WRITE_ZEROES, DEV_F_NO_HOLE | DEV_F_FAST_ZERO, 4096, 4096,
			   ENOTSUP, &before, &after);
	/* Punching works on tmpfs. */
	zero_range(&fx, DEV_WRITE_ZEROES, DEV_F_FAST_ZERO, 0, MiB, 0, &before, &after);
	CHECK(after < before);
	teardown(&fx);
}

TEST(block_status)
{
	struct fixture fx;
	if (!setup(&fx, NULL, 16 * MiB))
		return;
	struct dev *d = fx.d;
	struct dev_extent ext[8];
	uint32_t cnt = 0;
	CHECK_EQ(do_status(d, 0, d->size, ext, 8, &cnt), 0);
	CHECK_EQ(cnt, 1);
	CHECK_EQ(ext[0].len, d->size);
	CHECK_EQ(ext[0].flags, HZ);

	uint8_t *buf = malloc(MiB);
	fill(buf, MiB, 2);
	CHECK_EQ(do_rw(d, DEV_WRITE, 0, 4 * MiB, MiB, buf), 0);
	free(buf);
	CHECK_EQ(do_status(d, 0, d->size, ext, 8, &cnt), 0);
	CHECK_EQ(cnt, 3);
	CHECK_EQ(ext[0].len, 4 * MiB);
	CHECK_EQ(ext[0].flags, HZ);
	CHECK_EQ(ext[1].len, MiB);
	CHECK_EQ(ext[1].flags, 0);
	CHECK_EQ(ext[2].len, 11 * MiB);
	CHECK_EQ(ext[2].flags, HZ);

	/* A prefix when ext_max is small; unaligned starts. */
	CHECK_EQ(do_status(d, 0, d->size, ext, 2, &cnt), 0);
	CHECK_EQ(cnt, 2);
	CHECK_EQ(ext[0].len + ext[1].len, 5 * MiB);
	CHECK_EQ(do_status(d, 4 * MiB + 7, 100, ext, 8, &cnt), 0);
	CHECK_EQ(cnt, 1);
	CHECK_EQ(ext[0].len, 100);
	CHECK_EQ(ext[0].flags, 0);
	CHECK_EQ(do_status(d, 3 * MiB + 1, MiB, ext, 1, &cnt), 0);
	CHECK_EQ(cnt, 1);
	CHECK_EQ(ext[0].len, MiB - 1);
	CHECK_EQ(ext[0].flags, HZ);

	CHECK_EQ(do_status(d, 0, 0, ext, 8, &cnt), EINVAL);
	teardown(&fx);
}

TEST(flush_fua_cache)
{
	struct fixture fx;
	if (!setup(&fx, NULL, MiB))
		return;
	uint8_t buf[4096];
	fill(buf, sizeof(buf), 1);
	CHECK_EQ(do_rw(fx.d, DEV_WRITE, DEV_F_FUA, 4096 + 3, sizeof(buf), buf), 0);
	CHECK_EQ(do_rw(fx.d, DEV_FLUSH, 0, 0, 0, NULL), 0);
	CHECK_EQ(do_rw(fx.d, DEV_CACHE, 0, 0, MiB, NULL), 0);
	uint8_t back[4096];
	CHECK_EQ(do_rw(fx.d, DEV_READ, 0, 4096 + 3, sizeof(back), back), 0);
	CHECK(memcmp(buf, back, sizeof(buf)) == 0);
	teardown(&fx);
}

/* More requests in flight than the ring (256 SQEs, 512 CQEs) holds, so the
 * wait FIFO is used; every write has its own pattern and is read back. */
TEST(many_in_flight)
{
	enum { N = 1500, SZ = 4096 };
	struct fixture fx;
	if (!setup(&fx, NULL, (uint64_t)N * SZ * 2))
		return;
	struct dev_io *ios = calloc(N, sizeof(*ios));
	uint8_t *data = malloc((size_t)N * SZ), *back = malloc((size_t)N * SZ);
	fill(data, (size_t)N * SZ, 8);
	for (int i = 0; i < N; i++)
		data[(size_t)i * SZ] = (uint8_t)i; /* tell the blocks apart */

	struct waiter w = {.loop = fx.loop, .pending = N};
	for (int i = 0; i < N; i++) {
		/* Every other block, in a scrambled order. */
		uint64_t blk = ((uint64_t)i * 7919) % N;
		ios[i] = (struct dev_io){.op = DEV_WRITE,
					 .off = blk * 2 * SZ + (uint64_t)(i % 3),
					 .len = SZ,
					 .buf = data + (size_t)i * SZ,
					 .flags = i % 50 == 0 ? DEV_F_FUA : 0,
					 .done = io_done,
					 .priv = &w};
		dev_submit(fx.d, &ios[i]);
	}
	wait_all(&w);
	CHECK_EQ(w.nerr, 0);

	/* Reads, with a flush and a cache hint mixed in. */
	struct dev_io extra[2] = {
	    {.op = DEV_FLUSH, .done = io_done, .priv = &w},
	    {.op = DEV_CACHE, .off = 0, .len = fx.d->size, .done = io_done, .priv = &w},
	};
	w = (struct waiter){.loop = fx.loop, .pending = N + 2};
	memset(back, 0, (size_t)N * SZ);
	for (int i = 0; i < N; i++) {
		ios[i].op = DEV_READ;
		ios[i].flags = 0;
		ios[i].buf = back + (size_t)i * SZ;
		dev_submit(fx.d, &ios[i]);
		if (i == N / 2)
			dev_submit(fx.d, &extra[0]);
	}
	dev_submit(fx.d, &extra[1]);
	wait_all(&w);
	CHECK_EQ(w.nerr, 0);
	CHECK(memcmp(data, back, (size_t)N * SZ) == 0);
	free(ios);
	free(data);
	free(back);
	teardown(&fx);
}

/* destroy() from inside done(): the contract allows it once nothing is in
 * flight, and the device must not touch itself afterwards. */
static void done_and_destroy(struct dev_io *io, int err)
{
	struct fixture *fx = io->priv;
	CHECK_EQ(err, 0);
	dev_destroy(fx->d);
	fx->d = NULL;
	ev_loop_break(fx->loop);
}

TEST(destroy_from_done)
{
	struct fixture fx;
	if (!setup(&fx, NULL, MiB))
		return;
	uint8_t buf[512];
	struct dev_io io = {.op = DEV_READ,
			    .off = 512,
			    .len = sizeof(buf),
			    .buf = buf,
			    .done = done_and_destroy,
			    .priv = &fx};
	dev_submit(fx.d, &io);
	ev_run(fx.loop);
	CHECK(fx.d == NULL);
	teardown(&fx);
}

/* Borrowed reads: cached pages are lent straight from the file's mapping
 * and see later writes; pages that are not cached (here: past an end the
 * file was cut to) are not lent, so a send never waits for the disk. */
TEST(borrowed_read)
{
	struct fixture fx;
	if (!setup(&fx, NULL, 4 * MiB))
		return;
	CHECK(fx.d->caps & DEV_CAP_BORROW);
	uint8_t *src = malloc(MiB);
	fill(src, MiB, 21);
	CHECK_EQ(do_rw(fx.d, DEV_WRITE, 0, 5000, MiB, src), 0);
	CHECK(dev_can_borrow(fx.d, 5000, MiB)); /* just written: cached */
	struct iovec iov[DEV_BORROW_IOV];
	struct dev_io io = {
	    .op = DEV_READ, .flags = DEV_F_BORROW, .off = 5000, .len = MiB, .iov = iov};
	CHECK_EQ(run(fx.d, &io), 0);
	CHECK_EQ(io.iov_count, 1);
	CHECK_EQ(iov[0].iov_len, MiB);
	CHECK(memcmp(iov[0].iov_base, src, MiB) == 0);
	/* A write while it is lent shows through the mapping. */
	CHECK_EQ(do_rw(fx.d, DEV_WRITE, 0, 5000, 100, src + 200), 0);
	CHECK(memcmp(iov[0].iov_base, src + 200, 100) == 0);
	dev_release(fx.d, &io);

	CHECK(!dev_can_borrow(fx.d, 0, DEV_BORROW_MAX + 1)); /* too long */
	CHECK(!dev_can_borrow(fx.d, 4 * MiB - 10, 20));	     /* past the end */
	CHECK_EQ(truncate(fx.path, (off_t)(2 * MiB)), 0);
	CHECK(!dev_can_borrow(fx.d, 3 * MiB, 4096)); /* gone from the cache */
	CHECK(dev_can_borrow(fx.d, 5000, 4096));     /* still cached */
	free(src);
	teardown(&fx);
}

/* Submit a write and say whether it was done before dev_submit returned
 * (on the loop, no ring); then wait for it. *err gets its result. */
static bool write_was_inline(struct dev *d, uint32_t flags, uint64_t off, uint64_t len, void *buf,
			     int *err)
{
	struct waiter w = {.loop = d->loop, .pending = 1, .err = -1};
	struct dev_io io = {.op = DEV_WRITE,
			    .flags = flags,
			    .off = off,
			    .len = len,
			    .buf = buf,
			    .done = io_done,
			    .priv = &w};
	dev_submit(d, &io);
	bool inline_done = w.pending == 0;
	wait_all(&w);
	*err = w.err;
	return inline_done;
}

static uint64_t inline_count(struct dev *d)
{
	struct strbuf b;
	sb_init(&b);
	d->ops->show(d, &b, "f");
	const char *p = strstr(b.s ? b.s : "", "N f/io/inline_writes ");
	uint64_t v = p ? strtoull(p + strlen("N f/io/inline_writes "), NULL, 10) : UINT64_MAX;
	sb_free(&b);
	return v;
}

/* Does the file device write cached pages of files in dir inline? On
 * local disk file systems and tmpfs it does (file.c). */
static bool fs_inline(const char *path)
{
	struct statfs sf;
	if (statfs(path, &sf) < 0)
		return false;
	switch ((unsigned long)sf.f_type) {
	case EXT4_SUPER_MAGIC: /* also ext2 and ext3 */
	case XFS_SUPER_MAGIC:
	case BTRFS_SUPER_MAGIC:
	case F2FS_SUPER_MAGIC:
	case TMPFS_MAGIC: return true;
	default: return false;
	}
}

/* Writes of cached pages are pwrite(2)s done at once; the others (pages not
 * cached, FUA, more than 1 MiB) take the ring. Either way the bytes land. */
TEST(inline_writes)
{
	struct fixture fx;
	if (!setup(&fx, NULL, 8 * MiB))
		return;
	if (!fs_inline(fx.path)) {
		/* Another file system (NFS, overlayfs...): never inline. */
		uint8_t b[4096] = {1};
		int err;
		CHECK_EQ(do_rw(fx.d, DEV_WRITE, 0, 0, 4096, b), 0);
		CHECK(!write_was_inline(fx.d, 0, 0, 4096, b, &err));
		CHECK_EQ(err, 0);
		CHECK_EQ(inline_count(fx.d), 0);
		fprintf(stderr,
			"inline_writes: %s is not on a local file system; checked that "
			"writes take the ring\n",
			fx.path);
		teardown(&fx);
		return;
	}
	uint8_t *src = malloc(4 * MiB), *back = malloc(4 * MiB);
	fill(src, 4 * MiB, 5);
	int err;
	/* A new sparse file has nothing cached: the first write goes through
	 * the ring, and leaves its pages cached. */
	CHECK(!write_was_inline(fx.d, 0, 4096, 64 * KiB, src, &err));
	CHECK_EQ(err, 0);
	CHECK_EQ(inline_count(fx.d), 0);
	CHECK(write_was_inline(fx.d, 0, 4096 + 100, 1000, src + 1, &err));
	CHECK_EQ(err, 0);
	CHECK_EQ(inline_count(fx.d), 1);
	CHECK(!write_was_inline(fx.d, DEV_F_FUA, 4096, 4096, src, &err)); /* needs the disk */
	CHECK_EQ(err, 0);
	/* A whole MiB of cached pages is one inline write; two are not. */
	CHECK_EQ(do_rw(fx.d, DEV_WRITE, 0, 2 * MiB, 2 * MiB, src), 0); /* now cached */
	CHECK(write_was_inline(fx.d, 0, 2 * MiB + 77, MiB, src + 77, &err));
	CHECK_EQ(err, 0);
	CHECK(!write_was_inline(fx.d, 0, 2 * MiB, 2 * MiB, src, &err));
	CHECK_EQ(err, 0);
	CHECK(write_was_inline(fx.d, 0, 2 * MiB + 5, 3, src + 9, &err));
	CHECK_EQ(inline_count(fx.d), 3);

	/* What landed, read back through the ring and through the file. */
	uint8_t *want = calloc(1, 8 * MiB);
	memcpy(want + 4096, src, 64 * KiB);
	memcpy(want + 4096 + 100, src + 1, 1000);
	memcpy(want + 4096, src, 4096);
	memcpy(want + 2 * MiB, src, 2 * MiB);
	memcpy(want + 2 * MiB + 5, src + 9, 3);
	CHECK_EQ(do_rw(fx.d, DEV_READ, 0, 0, 4 * MiB, back), 0);
	CHECK(memcmp(back, want, 4 * MiB) == 0);
	int fd = open(fx.path, O_RDONLY);
	CHECK(fd >= 0);
	CHECK_EQ(pread(fd, back, 4 * MiB, 2 * MiB), 4 * MiB);
	CHECK(memcmp(back, want + 2 * MiB, 4 * MiB) == 0);
	close(fd);
	free(want);
	free(back);
	free(src);
	teardown(&fx);
}

/* An inline write that stops short (here: the file size limit cuts it)
 * leaves the rest to the ring, which reports the error: nothing is
 * answered as written that was not. */
TEST(inline_write_cut_short)
{
	struct fixture fx;
	if (!setup(&fx, NULL, 4 * MiB))
		return;
	if (!fs_inline(fx.path)) {
		teardown(&fx); /* no inline writes there: inline_writes checked that */
		return;
	}
	uint8_t *src = malloc(MiB);
	fill(src, MiB, 8);
	uint8_t *zero = calloc(1, 4 * MiB);
	CHECK_EQ(do_rw(fx.d, DEV_WRITE, 0, 0, 4 * MiB, zero), 0); /* cache it */
	free(zero);
	struct rlimit old;
	CHECK_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
	void (*old_sig)(int) = signal(SIGXFSZ, SIG_IGN);
	struct rlimit lim = {.rlim_cur = 2 * MiB, .rlim_max = old.rlim_max};
	CHECK_EQ(setrlimit(RLIMIT_FSIZE, &lim), 0);
	int err;
	bool was_inline = write_was_inline(fx.d, 0, 2 * MiB - 4096, 64 * KiB, src, &err);
	setrlimit(RLIMIT_FSIZE, &old);
	signal(SIGXFSZ, old_sig);
	CHECK(!was_inline);
	CHECK_EQ(err, EFBIG);
	CHECK_EQ(inline_count(fx.d), 0);
	/* The part below the limit was written. */
	uint8_t back[4096];
	CHECK_EQ(do_rw(fx.d, DEV_READ, 0, 2 * MiB - 4096, 4096, back), 0);
	CHECK(memcmp(back, src, 4096) == 0);
	free(src);
	teardown(&fx);
}

/* Kernels before 6.5 have no cachestat(2): the same checks through
 * mincore(2), the path DST_FILE_MINCORE forces. */
TEST(cached_by_mincore)
{
	setenv("DST_FILE_MINCORE", "1", 1);
	borrowed_read();
	inline_writes();
	unsetenv("DST_FILE_MINCORE");
}

/* A read-write open with DEV_OPEN_CLAIM has the file to itself (an OFD
 * lock: two opens in one process conflict as two processes would);
 * read-only and unclaimed opens are let in; closing frees it. */
TEST(claim)
{
	struct ev_loop *loop = ev_loop_new();
	char *path = make_temp(NULL, 1 * MiB);
	char err[512] = "";
	struct dev *a = dev_file_open_flags(loop, path, DEV_OPEN_CLAIM, err, sizeof(err));
	CHECK(a != NULL);
	if (!a) {
		drop_temp(path);
		ev_loop_free(loop);
		return;
	}
	CHECK_STR(dev_file_claim(a), "exclusive (OFD lock)");

	errno = 0;
	CHECK(dev_file_open_flags(loop, path, DEV_OPEN_CLAIM, err, sizeof(err)) == NULL);
	CHECK_EQ(errno, EBUSY);
	char want[600];
	snprintf(want, sizeof(want), "%s: in use by another process (test_dev_file, pid %d)", path,
		 (int)getpid());
	CHECK_STR(err, want);
	/* dev_open_local claims read-write opens too. */
	CHECK(dev_open_local(loop, path, false, err, sizeof(err)) == NULL);

	struct dev *ro = dev_open_local(loop, path, true, err, sizeof(err));
	CHECK(ro != NULL);
	CHECK_STR(ro ? dev_file_claim(ro) : NULL, "none (read-only)");
	struct dev *shared = dev_file_open(loop, path, false, err, sizeof(err));
	CHECK(shared != NULL);
	CHECK_STR(shared ? dev_file_claim(shared) : NULL, "none (shared)");
	dev_destroy(ro);
	dev_destroy(shared);

	dev_destroy(a);
	a = dev_open_local(loop, path, false, err, sizeof(err));
	CHECK(a != NULL);
	dev_destroy(a);

	/* A memory disk is private: nothing to claim. */
	struct dev *m1 = dev_open_local_flags(loop, "mem:1M", DEV_OPEN_CLAIM, err, sizeof(err));
	struct dev *m2 = dev_open_local_flags(loop, "mem:1M", DEV_OPEN_CLAIM, err, sizeof(err));
	CHECK(m1 && m2);
	CHECK(m1 && dev_file_claim(m1) == NULL);
	dev_destroy(m1);
	dev_destroy(m2);
	drop_temp(path);
	ev_loop_free(loop);
}

UNIT_MAIN(T(claim), T(cached_by_mincore), T(borrowed_read), T(inline_writes),
	  T(inline_write_cut_short), T(open_errors), T(open_props), T(round_trip_odd),
	  T(unwritten_reads_zero), T(read_past_eof_zero_fills), T(out_of_range),
	  T(trim_punches_hole), T(write_zeroes_punch), T(write_zeroes_no_hole),
	  T(write_zeroes_fallback_tmpfs), T(block_status), T(flush_fua_cache), T(many_in_flight),
	  T(destroy_from_done))
