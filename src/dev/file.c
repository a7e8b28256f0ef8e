/* file.c - a regular file or block device as a dst device, IO through io_uring.
 *
 * One ring per device. Requests become SQEs that are pushed to the kernel in
 * one io_uring_submit() per loop iteration (an ev_defer callback), which is
 * what keeps small random IO cheap. Completions raise an eventfd watched by
 * the event loop. Requests that find no free SQE, or would take the number
 * in flight past what the completion ring holds, wait on a FIFO linked
 * through io->dev_next, so submit() never fails and never blocks.
 *
 * Writes of pages already in the page cache are the exception: while dirty
 * memory is low they are plain pwrite(2)s on the event loop (write_inline),
 * since io_uring would hand them to a kernel worker anyway.
 *
 * A request may take several steps (the rest of a short read, zeroes written
 * by hand where fallocate cannot, a datasync for FUA); its progress lives in
 * io->dev_scratch, so the device allocates nothing per request.
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <limits.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <unistd.h>

#include "claim.h"
#include "common/dirtymem.h"
#include "common/ev.h"
#include "common/log.h"
#include "common/strbuf.h"
#include "common/util.h"
#include "dev.h"

#define RING_DEPTH    256
#define ZERO_BUF_SIZE (1u << 20)
/* The kernel moves at most ~2 GiB per read/write and an SQE length is 32
 * bits, so longer requests go in pieces. */
#define ASYNC_MIN_PIECE (128u << 10)
#define MAX_PIECE	(1u << 30)

/* io->dev_scratch[1]: the step an io is at. [0]: bytes of that step done. */
enum step {
	STEP_RW,      /* READ/WRITE data */
	STEP_FALLOC,  /* TRIM/WRITE_ZEROES via fallocate */
	STEP_ZWRITE,  /* WRITE_ZEROES by writing the zero buffer */
	STEP_SYNC,    /* FLUSH, or the FUA tail of TRIM/WRITE_ZEROES */
	STEP_FADVISE, /* CACHE */
};
#define IO_STEP(io) ((io)->dev_scratch[1])
#define IO_DONE(io) ((io)->dev_scratch[0])

struct file_dev {
	struct dev dev;
	int fd;
	int efd;
	bool bdev;
	struct io_uring ring;
	unsigned inflight; /* SQEs prepared and not yet completed */
	unsigned max_inflight;
	struct dev_io *wait_head, *wait_tail;
	struct ev_io efd_w;
	struct ev_deferred submit_d;
	struct ev_timer retry_t;
	void *zeroes; /* ZERO_BUF_SIZE zero bytes for the WRITE_ZEROES fallback */
	/* The whole file mapped read-only (NULL if it could not be): reads
	 * of cached pages are borrowed from it, so the socket send copies
	 * straight from the page cache. */
	char *map;
	const char *claim;	/* what keeps other writers out (claim.h), for dst show */
	bool inline_ok;		/* the file system's writes are memory copies */
	bool cachestat_ok;	/* cachestat(2) works here (else mincore) */
	bool stable_pages;	/* a write waits for its page's writeback */
	uint64_t inline_writes; /* done on the loop by write_inline() */
	/* destroy() from inside a done() we called: finish it when we unwind. */
	int busy;
	bool dying;
};

static void file_free(struct file_dev *f);

static void wait_push(struct file_dev *f, struct dev_io *io)
{
	io->dev_next = NULL;
	if (f->wait_tail)
		f->wait_tail->dev_next = io;
	else
		f->wait_head = io;
	f->wait_tail = io;
}

static struct dev_io *wait_pop(struct file_dev *f)
{
	struct dev_io *io = f->wait_head;
	f->wait_head = io->dev_next;
	if (!f->wait_head)
		f->wait_tail = NULL;
	io->dev_next = NULL;
	return io;
}

static void prep_step(struct file_dev *f, struct io_uring_sqe *sqe, struct dev_io *io)
{
	uint64_t done = IO_DONE(io);
	uint64_t left = io->len - done;
	unsigned piece = (unsigned)MIN(left, (uint64_t)MAX_PIECE);
	int mode;

	switch (IO_STEP(io)) {
	case STEP_RW:
		if (io->op == DEV_READ) {
			io_uring_prep_read(sqe, f->fd, (char *)io->buf + done, piece,
					   io->off + done);
		} else {
			io_uring_prep_write(sqe, f->fd, (char *)io->buf + done, piece,
					    io->off + done);
			if (io->flags & DEV_F_FUA)
				sqe->rw_flags = RWF_DSYNC;
		}
		/* A page-cache hit completes inline, so its copy would run on
		 * the event loop's thread; for large pieces hand it to the
		 * kernel's workers instead, so the copy overlaps with the
		 * loop's socket work (the loop is otherwise the bottleneck of
		 * sequential IO on two cores). Small ones stay inline: a
		 * worker hand-off costs more than a 4 KiB copy. */
		if (piece >= ASYNC_MIN_PIECE)
			sqe->flags |= IOSQE_ASYNC;
		break;
	case STEP_FALLOC:
		mode = FALLOC_FL_KEEP_SIZE;
		if (io->op == DEV_WRITE_ZEROES && (io->flags & DEV_F_NO_HOLE))
			mode |= FALLOC_FL_ZERO_RANGE;
		else
			mode |= FALLOC_FL_PUNCH_HOLE;
		io_uring_prep_fallocate(sqe, f->fd, mode, (off_t)io->off, (off_t)io->len);
		break;
	case STEP_ZWRITE:
		piece = (unsigned)MIN(left, (uint64_t)ZERO_BUF_SIZE);
		io_uring_prep_write(sqe, f->fd, f->zeroes, piece, io->off + done);
		break;
	case STEP_SYNC: io_uring_prep_fsync(sqe, f->fd, IORING_FSYNC_DATASYNC); break;
	case STEP_FADVISE:
		io_uring_prep_fadvise(sqe, f->fd, io->off + done, (off_t)piece,
				      POSIX_FADV_WILLNEED);
		break;
	}
	io_uring_sqe_set_data(sqe, io);
}

/* Get an SQE, pushing what is queued to the kernel first if the SQ is full. */
static struct io_uring_sqe *get_sqe(struct file_dev *f)
{
	if (f->inflight >= f->max_inflight)
		return NULL;
	struct io_uring_sqe *sqe = io_uring_get_sqe(&f->ring);
	if (!sqe) {
		io_uring_submit(&f->ring);
		sqe = io_uring_get_sqe(&f->ring);
	}
	return sqe;
}

/* Start (or continue) io at its current step. */
static void step(struct file_dev *f, struct dev_io *io)
{
	struct io_uring_sqe *sqe = f->wait_head ? NULL : get_sqe(f);
	if (!sqe) {
		wait_push(f, io); /* keeps order behind those already waiting */
		return;
	}
	prep_step(f, sqe, io);
	f->inflight++;
	ev_defer(f->dev.loop, &f->submit_d);
}

/* Move waiting requests into the ring while there is room. */
static void drain_waiting(struct file_dev *f)
{
	bool queued = false;
	while (f->wait_head) {
		struct io_uring_sqe *sqe = get_sqe(f);
		if (!sqe)
			break;
		prep_step(f, sqe, wait_pop(f));
		f->inflight++;
		queued = true;
	}
	if (queued)
		ev_defer(f->dev.loop, &f->submit_d);
}

static void submit_now(struct file_dev *f)
{
	if (!io_uring_sq_ready(&f->ring))
		return;
	int ret = io_uring_submit(&f->ring);
	/* Only transient trouble (EAGAIN/EBUSY: the kernel is short of memory or
	 * its completion backlog is full) leaves SQEs behind; they stay in the
	 * SQ and a short timer tries again, since nothing else might. */
	if (ret < 0 || io_uring_sq_ready(&f->ring)) {
		if (ret < 0 && ret != -EAGAIN && ret != -EBUSY && ret != -EINTR)
			log_warn("%s: io_uring_submit: %s", f->dev.desc, strerror(-ret));
		ev_timer_start(f->dev.loop, &f->retry_t, 1000000);
		return;
	}
	/* The SQ is empty again: requests that found it full can go now. */
	drain_waiting(f);
}

static void on_submit_deferred(struct ev_deferred *d)
{
	submit_now(container_of(d, struct file_dev, submit_d));
}

static void on_retry_timer(struct ev_timer *t)
{
	submit_now(container_of(t, struct file_dev, retry_t));
}

/* One CQE for io's current step: decide whether it is done, or what next. */
static void step_done(struct file_dev *f, struct dev_io *io, int res)
{
	if (res == -EINTR || res == -EAGAIN) {
		step(f, io);
		return;
	}
	switch (IO_STEP(io)) {
	case STEP_RW:
	case STEP_ZWRITE:
		if (res < 0) {
			io->done(io, -res);
			return;
		}
		if (res == 0) {
			if (io->op != DEV_READ) {
				io->done(io, EIO); /* a write that makes no progress */
				return;
			}
			/* End of file: the file shrank under us; read as zeroes. */
			memset((char *)io->buf + IO_DONE(io), 0, io->len - IO_DONE(io));
			io->done(io, 0);
			return;
		}
		IO_DONE(io) += (uint64_t)res;
		if (IO_DONE(io) < io->len) {
			step(f, io);
		} else if (IO_STEP(io) == STEP_ZWRITE && (io->flags & DEV_F_FUA)) {
			IO_STEP(io) = STEP_SYNC;
			step(f, io);
		} else {
			io->done(io, 0);
		}
		return;
	case STEP_FALLOC:
		if (res == -EOPNOTSUPP || res == -EINVAL) {
			/* No punch/zero-range here (or, for a block device, an
			 * unaligned range). Trim is advisory; zeroes are not. */
			if (io->op == DEV_TRIM) {
				io->done(io, 0);
			} else if (io->flags & DEV_F_FAST_ZERO) {
				io->done(io, ENOTSUP);
			} else {
				IO_STEP(io) = STEP_ZWRITE;
				IO_DONE(io) = 0;
				step(f, io);
			}
			return;
		}
		if (res < 0) {
			io->done(io, -res);
		} else if (io->flags & DEV_F_FUA) {
			IO_STEP(io) = STEP_SYNC;
			step(f, io);
		} else {
			io->done(io, 0);
		}
		return;
	case STEP_SYNC: io->done(io, res < 0 ? -res : 0); return;
	case STEP_FADVISE:
		/* A hint: errors do not matter, only moving on through the range. */
		IO_DONE(io) += MIN(io->len - IO_DONE(io), (uint64_t)MAX_PIECE);
		if (IO_DONE(io) < io->len)
			step(f, io);
		else
			io->done(io, 0);
		return;
	}
}

static void on_eventfd(struct ev_io *w, uint32_t events)
{
	struct file_dev *f = container_of(w, struct file_dev, efd_w);
	uint64_t v;
	if (read(f->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_warn("%s: read eventfd: %s", f->dev.desc, strerror(errno));

	f->busy++;
	struct io_uring_cqe *cqe;
	while (!f->dying && io_uring_peek_cqe(&f->ring, &cqe) == 0) {
		struct dev_io *io = io_uring_cqe_get_data(cqe);
		int res = cqe->res;
		io_uring_cqe_seen(&f->ring, cqe);
		f->inflight--;
		step_done(f, io, res);
	}
	f->busy--;
	if (f->dying) {
		if (!f->busy)
			file_free(f);
		return;
	}
	drain_waiting(f);
}

/* SEEK_DATA/SEEK_HOLE, synchronously: it only consults file system
 * metadata, normally cached, and NBD clients ask rarely. */
static int file_block_status(struct file_dev *f, struct dev_io *io)
{
	if (!io->ext || !io->ext_max || !io->len)
		return EINVAL;
	uint64_t off = io->off, end = io->off + io->len;
	io->ext_count = 0;
	while (off < end && io->ext_count < io->ext_max) {
		off_t data = lseek(f->fd, (off_t)off, SEEK_DATA);
		if (data < 0 && errno == ENXIO) {
			data = (off_t)end; /* a hole up to end of file */
		} else if (data < 0) {
			if (io->ext_count)
				break;
			/* Cannot tell: everything is data, which is always true. */
			io->ext[0] = (struct dev_extent){.len = end - off, .flags = 0};
			io->ext_count = 1;
			return 0;
		}
		if ((uint64_t)data > off) {
			uint64_t hend = MIN((uint64_t)data, end);
			io->ext[io->ext_count++] = (struct dev_extent){
			    .len = hend - off, .flags = DEV_EXT_HOLE | DEV_EXT_ZERO};
			off = hend;
			if (off >= end || io->ext_count == io->ext_max)
				break;
		}
		off_t hole = lseek(f->fd, (off_t)off, SEEK_HOLE);
		uint64_t dend = hole < 0 ? end : MIN((uint64_t)hole, end);
		if (dend <= off)
			dend = end; /* should not happen; never loop forever */
		io->ext[io->ext_count++] = (struct dev_extent){.len = dend - off, .flags = 0};
		off = dend;
	}
	return 0;
}

#define PAGE 4096u
/* The longest range range_cached() looks at (its page flags are one stack
 * array): the longest borrowed read, and the longest write done inline. */
#define CACHED_MAX (1u << 20)
_Static_assert(DEV_BORROW_MAX <= CACHED_MAX, "borrowed reads are checked by range_cached");

/* cachestat(2) (Linux 6.5) counts the cached pages of a range folio by
 * folio: 0.15 us for 1 MiB here, where mincore(2) looks each page up (5 us,
 * 2.5% of the server's CPU on 1 MiB writes). Older kernels, and files the
 * caller may not ask about (EPERM), fall back to mincore. The number is
 * the same on every architecture. */
#ifndef __NR_cachestat
#define __NR_cachestat 451
#endif
struct cachestat_range_ {
	uint64_t off, len;
};
struct cachestat_ {
	uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted;
};

/* Is every page of [off, off+len) (len <= CACHED_MAX) in the page cache?
 * Then copying to or from it never waits for the disk. (A page evicted
 * between this and the copy is read again by it: a rare, short wait.)
 * For a write to a device that needs stable pages, none may be under
 * writeback either, as far as cachestat tells: such a write would wait
 * until that IO is done. */
static bool range_cached(struct file_dev *f, uint64_t off, uint64_t len, bool for_write)
{
	if (!f->map || len == 0 || len > CACHED_MAX || len > f->dev.size || off > f->dev.size - len)
		return false;
	uint64_t start = off & ~(uint64_t)(PAGE - 1);
	uint64_t span = off + len - start;
	uint64_t pages = (span + PAGE - 1) / PAGE;
	if (f->cachestat_ok) {
		struct cachestat_range_ r = {.off = off, .len = len};
		struct cachestat_ cs;
		if (syscall(__NR_cachestat, f->fd, &r, &cs, 0) == 0)
			return cs.nr_cache == pages &&
			       !(for_write && f->stable_pages && cs.nr_writeback);
		f->cachestat_ok = false;
	}
	unsigned char vec[CACHED_MAX / PAGE + 2];
	if (mincore(f->map + start, span, vec) < 0)
		return false;
	for (uint64_t i = 0; i < pages; i++)
		if (!(vec[i] & 1))
			return false;
	return true;
}

static bool file_can_borrow(struct dev *d, uint64_t off, uint64_t len)
{
	return len <= DEV_BORROW_MAX &&
	       range_cached(container_of(d, struct file_dev, dev), off, len, false);
}

/* A write of cached pages (at most CACHED_MAX), while dirty memory is below
 * the point where the kernel throttles writers (dirtymem.h), on a local file
 * system, is a copy into the page cache that neither reads the disk nor is
 * throttled: pwrite(2) it here, on the event loop. Through io_uring the
 * same write would be handed to a kernel worker thread (ext4 and most file
 * systems cannot do a buffered write without possibly blocking, so io_uring
 * punts it), and that hand-off costs several times the copy of a 4 KiB
 * write. Returns false when the write, or the rest of it (from IO_DONE),
 * must take the ring instead; otherwise io is done. */
static bool write_inline(struct file_dev *f, struct dev_io *io)
{
	if (!f->inline_ok || (io->flags & DEV_F_FUA) ||
	    !dirtymem_room_now((io->len + PAGE - 1) / PAGE) ||
	    !range_cached(f, io->off, io->len, true))
		return false;
	const char *p = io->buf;
	uint64_t off = io->off, left = io->len;
	while (left) {
		ssize_t n = pwrite(f->fd, p, left, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			/* A short write said why only now (no space for a hole's
			 * block, an IO error): let the ring write the rest and
			 * report it as usual. */
			IO_DONE(io) = io->len - left;
			return false;
		}
		p += n;
		off += (uint64_t)n;
		left -= (uint64_t)n;
	}
	f->inline_writes++;
	io->done(io, 0);
	return true;
}

/* Nothing to do: the mapping lives as long as the device, which the caller
 * does not destroy with a read still borrowed. */
static void file_release(struct dev *d, struct dev_io *io)
{
	io->iov_count = 0;
}

static void file_submit(struct dev *d, struct dev_io *io)
{
	struct file_dev *f = container_of(d, struct file_dev, dev);

	if (io->op != DEV_FLUSH && (io->len > d->size || io->off > d->size - io->len)) {
		io->done(io, EINVAL);
		return;
	}
	if (io->flags & DEV_F_BORROW) {
		if (io->op != DEV_READ || !f->map || io->len > DEV_BORROW_MAX) {
			io->done(io, EINVAL);
			return;
		}
		io->iov[0].iov_base = f->map + io->off;
		io->iov[0].iov_len = io->len;
		io->iov_count = 1;
		io->done(io, 0);
		return;
	}
	IO_DONE(io) = 0;
	switch (io->op) {
	case DEV_READ: IO_STEP(io) = STEP_RW; break;
	case DEV_WRITE:
	case DEV_TRIM:
	case DEV_WRITE_ZEROES:
		if (d->caps & DEV_CAP_READONLY) {
			io->done(io, EROFS);
			return;
		}
		if (io->op == DEV_WRITE && write_inline(f, io))
			return;
		IO_STEP(io) = io->op == DEV_WRITE ? STEP_RW : STEP_FALLOC;
		break;
	case DEV_FLUSH: IO_STEP(io) = STEP_SYNC; break;
	case DEV_CACHE: IO_STEP(io) = STEP_FADVISE; break;
	case DEV_BLOCK_STATUS: io->done(io, file_block_status(f, io)); return;
	default: io->done(io, EOPNOTSUPP); return;
	}
	if (io->len == 0 && io->op != DEV_FLUSH) {
		io->done(io, 0);
		return;
	}
	step(f, io);
}

static void file_free(struct file_dev *f)
{
	ev_io_stop(f->dev.loop, &f->efd_w);
	ev_timer_stop(f->dev.loop, &f->retry_t);
	io_uring_queue_exit(&f->ring);
	close(f->efd);
	if (f->map)
		munmap(f->map, f->dev.size);
	close(f->fd);
	free(f->zeroes);
	free(f->dev.desc);
	free(f);
}

static void file_destroy(struct dev *d)
{
	struct file_dev *f = container_of(d, struct file_dev, dev);
	if (f->busy) {
		f->dying = true; /* called from a done() of ours; free on the way out */
		return;
	}
	file_free(f);
}

/* A local file is always up; whether writes of cached pages may be done
 * on the loop, and how many were, shows which write path runs (dst show). */
static void file_show(struct dev *d, struct strbuf *out, const char *prefix)
{
	struct file_dev *f = container_of(d, struct file_dev, dev);
	char p[512];
	snprintf(p, sizeof(p), "%s/state", prefix);
	sb_attr_str(out, p, "up");
	snprintf(p, sizeof(p), "%s/inline", prefix);
	sb_attr_str(out, p, "%s",
		    !f->inline_ok     ? "off (not a local file system)"
		    : f->stable_pages ? "on, but not over pages under writeback (stable pages)"
				      : "on");
	snprintf(p, sizeof(p), "%s/io/inline_writes", prefix);
	sb_attr_num(out, p, f->inline_writes);
	snprintf(p, sizeof(p), "%s/claim", prefix);
	sb_attr_str(out, p, "%s", f->claim);
}

static const struct dev_ops file_ops = {
    .kind = "file",
    .submit = file_submit,
    .destroy = file_destroy,
    .release = file_release,
    .can_borrow = file_can_borrow,
    .show = file_show,
};

const char *dev_file_claim(struct dev *d)
{
	return d->ops == &file_ops ? container_of(d, struct file_dev, dev)->claim : NULL;
}

/* Is a buffered write of cached pages of this file a copy into memory? On a
 * block device and on local disk file systems it is. On NFS, CIFS or FUSE
 * it may wait for a server (a FUSE file system without a writeback cache
 * writes through), and on overlayfs the first write copies the whole file
 * up: those go through the ring always. */
static bool fs_writes_in_memory(int fd, bool bdev, bool *tmpfs)
{
	struct statfs sf;
	*tmpfs = false;
	if (bdev)
		return true;
	if (fstatfs(fd, &sf) < 0)
		return false;
	switch ((unsigned long)sf.f_type) {
	case TMPFS_MAGIC: *tmpfs = true; return true;
	case EXT4_SUPER_MAGIC: /* also ext2 and ext3 */
	case XFS_SUPER_MAGIC:
	case BTRFS_SUPER_MAGIC:
	case F2FS_SUPER_MAGIC: return true;
	default: return false;
	}
}

/* Does the block device under the file (or the device itself) need its
 * pages stable while they are written back (integrity data, checksums)?
 * Then a write to a page under writeback waits for that IO. The device's
 * queue says; a partition's is its disk's. When it cannot be told (btrfs
 * answers stat with an anonymous device), assume it does. */
static bool needs_stable_pages(const struct stat *st, bool bdev)
{
	dev_t dev = bdev ? st->st_rdev : st->st_dev;
	static const char *const where[] = {"/sys/dev/block/%u:%u/queue/stable_writes",
					    "/sys/dev/block/%u:%u/../queue/stable_writes"};
	for (size_t i = 0; i < ARRAY_SIZE(where); i++) {
		char path[96], c = 0;
		snprintf(path, sizeof(path), where[i], major(dev), minor(dev));
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		ssize_t n = read(fd, &c, 1);
		close(fd);
		if (n == 1 && (c == '0' || c == '1'))
			return c == '1';
	}
	return true;
}

static int ring_init(struct io_uring *ring)
{
	/* SUBMIT_ALL (5.18): one bad SQE must not strand the ones behind it. */
	int ret = io_uring_queue_init(RING_DEPTH, ring, IORING_SETUP_SUBMIT_ALL);
	if (ret == -EINVAL)
		ret = io_uring_queue_init(RING_DEPTH, ring, 0);
	return ret;
}

struct dev *dev_file_open(struct ev_loop *loop, const char *path, bool readonly, char *err,
			  size_t errlen)
{
	return dev_file_open_flags(loop, path, readonly ? DEV_OPEN_READONLY : 0, err, errlen);
}

struct dev *dev_file_open_flags(struct ev_loop *loop, const char *path, unsigned flags, char *err,
				size_t errlen)
{
	bool readonly = flags & DEV_OPEN_READONLY;
	bool claim = !readonly && (flags & DEV_OPEN_CLAIM);
	/* O_EXCL without O_CREAT claims a block device and is ignored for
	 * anything else; a regular file is locked below. */
	int fd = open(path, (readonly ? O_RDONLY : O_RDWR) | (claim ? O_EXCL : 0) | O_CLOEXEC);
	if (fd < 0 && claim && errno == EBUSY) {
		claim_busy_bdev(path, err, errlen);
		return NULL;
	}
	if (fd < 0) {
		snprintf(err, errlen, "%s: open: %s", path, strerror(errno));
		return NULL;
	}
	struct stat st;
	if (fstat(fd, &st) < 0) {
		snprintf(err, errlen, "%s: stat: %s", path, strerror(errno));
		close(fd);
		return NULL;
	}
	uint64_t size;
	bool bdev = S_ISBLK(st.st_mode);
	if (bdev) {
		if (ioctl(fd, BLKGETSIZE64, &size) < 0) {
			snprintf(err, errlen, "%s: BLKGETSIZE64: %s", path, strerror(errno));
			close(fd);
			return NULL;
		}
	} else if (S_ISREG(st.st_mode)) {
		size = (uint64_t)st.st_size;
	} else {
		snprintf(err, errlen, "%s: not a regular file or block device", path);
		close(fd);
		return NULL;
	}
	if (size == 0) {
		snprintf(err, errlen, "%s: %s is empty; create it with truncate -s SIZE", path,
			 bdev ? "device" : "file");
		close(fd);
		return NULL;
	}
	const char *claimed = !claim ? (readonly ? "none (read-only)" : "none (shared)")
			      : bdev ? "exclusive (O_EXCL)"
				     : "exclusive (OFD lock)";
	int rc = claim && !bdev ? claim_file(fd, path, &st, err, errlen) : 0;
	if (rc < 0) {
		int e = errno;
		close(fd);
		errno = e; /* EBUSY: the caller may tell the user how to share */
		return NULL;
	}
	if (rc > 0) {
		/* Serving it beats refusing a disk that worked before. */
		log_warn("%s; serving it unclaimed", err);
		claimed = "none (the file system has no locks)";
	}

	struct file_dev *f = xcalloc(1, sizeof(*f));
	f->fd = fd;
	f->bdev = bdev;
	f->claim = claimed;
	bool tmpfs;
	f->inline_ok = fs_writes_in_memory(fd, bdev, &tmpfs);
	f->stable_pages = f->inline_ok && !tmpfs && needs_stable_pages(&st, bdev);
	/* DST_FILE_MINCORE=1: the path of kernels without cachestat (tests). */
	f->cachestat_ok = !getenv("DST_FILE_MINCORE");
	f->efd = -1;
	int ret = ring_init(&f->ring);
	if (ret < 0) {
		snprintf(err, errlen, "%s: io_uring_queue_init: %s", path, strerror(-ret));
		close(fd);
		free(f);
		return NULL;
	}
	f->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (f->efd < 0) {
		snprintf(err, errlen, "%s: eventfd: %s", path, strerror(errno));
		goto fail;
	}
	ret = io_uring_register_eventfd(&f->ring, f->efd);
	if (ret < 0) {
		snprintf(err, errlen, "%s: io_uring_register_eventfd: %s", path, strerror(-ret));
		goto fail;
	}
	f->efd_w.fn = on_eventfd;
	ret = ev_io_start(loop, &f->efd_w, f->efd, EPOLLIN);
	if (ret < 0) {
		snprintf(err, errlen, "%s: epoll: %s", path, strerror(-ret));
		goto fail;
	}
	/* Never more in flight than the completion ring holds: past that the
	 * kernel would have to buffer completions for us. */
	f->max_inflight = f->ring.cq.ring_entries;
	f->submit_d.fn = on_submit_deferred;
	f->retry_t.fn = on_retry_timer;
	/* calloc of this size is fresh zero pages from mmap: cheap until used. */
	f->zeroes = xcalloc(1, ZERO_BUF_SIZE);

	char *abs = realpath(path, NULL);
	f->dev.ops = &file_ops;
	f->dev.loop = loop;
	f->dev.size = size;
	f->dev.caps = DEV_CAP_FLUSH | DEV_CAP_FUA | DEV_CAP_TRIM | DEV_CAP_ZERO |
		      DEV_CAP_FAST_ZERO | DEV_CAP_EXTENTS | DEV_CAP_MULTI_CONN | DEV_CAP_CACHE |
		      (readonly ? DEV_CAP_READONLY : 0);
	/* Only the kernel reads the mapping (sendmsg copying from it), so a
	 * file cut short under us makes that send fail with EFAULT and the
	 * client's connection close; no SIGBUS can reach us. */
	void *map = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	if (map != MAP_FAILED) {
		f->map = map;
		f->dev.caps |= DEV_CAP_BORROW;
	}
	f->dev.min_block = 1;
	f->dev.desc = xasprintf("L: %s", abs ? abs : path);
	free(abs);
	return &f->dev;

fail:
	io_uring_queue_exit(&f->ring);
	if (f->efd >= 0)
		close(f->efd);
	close(fd);
	free(f);
	return NULL;
}
