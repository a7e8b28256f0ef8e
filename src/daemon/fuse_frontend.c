/* fuse_frontend.c - the FUSE file frontend (see fuse_frontend.h).
 *
 * Design: libfuse's low-level session, driven by dstd's own epoll loop, with
 * no thread of its own. The /dev/fuse fd is non-blocking and watched by the
 * loop; each readable event reads requests with read(2) straight into a
 * request slot's buffer and hands them to fuse_session_process_buf(). Data
 * requests are submitted to the storage's device and answered later, from the
 * device's done() callback (the low-level API allows replying after the
 * handler returned), so many requests are in flight with no thread and no
 * lock. Why not libfuse's multi-threaded loop: dev_submit() and its
 * callbacks must run on the loop thread anyway, so worker threads would only
 * add a locked hand-off queue, an eventfd wake-up and context switches per
 * request, on machines where the loop thread, the kernel and the nodes
 * already share few cores.
 *
 * Memory: FF_SLOTS slots, each with a buffer of one header page plus
 * FF_MAX_IO bytes (FUSE's max_write and max_read), mapped and populated at
 * start-up. A request is read into a free slot's buffer at an offset that
 * puts a WRITE's payload on a page boundary, so a write goes to the device
 * from where the kernel put it (no copy), and a read's data is built in the
 * same buffer. When every slot is busy the loop stops reading /dev/fuse: the
 * kernel queues further requests (backpressure); nothing on the IO path
 * allocates. (libfuse itself allocates a small struct per request; that is
 * its business, and it answers ENOMEM by itself if that fails.)
 * max_background is raised to FF_SLOTS so that the kernel sends as many
 * asynchronous direct IO requests (what a loop device with direct IO issues)
 * as there are slots, instead of its default of 12.
 *
 * The file: the mount's root inode is the regular file itself (FUSE may
 * mount a file over a file). Opens get FOPEN_DIRECT_IO, so the page cache
 * never holds a second copy of what the loop device or a filesystem above
 * caches already. The size is the storage's size and cannot be changed
 * (truncate fails with EPERM; writes past the end get ENOSPC). fsync and
 * fdatasync become DEV_FLUSH (every node that took writes flushes); O_SYNC
 * or O_DSYNC opens write with FUA. fallocate PUNCH_HOLE becomes WRITE_ZEROES
 * (a punched range must read back as zeroes, which TRIM does not promise),
 * ZERO_RANGE becomes WRITE_ZEROES with NO_HOLE. Unaligned IO on a storage
 * whose nodes need aligned IO fails with EINVAL.
 */
#define FUSE_USE_VERSION 35
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <linux/falloc.h>
#include <linux/fuse.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/ev.h"
#include "common/lathist.h"
#include "common/log.h"
#include "common/mountinfo.h"
#include "common/util.h"
#include "dev/dev.h"
#include "fuse_frontend.h"
#include "fuse_path.h"
#include "nbd/server.h"

#define FF_SLOTS    64u
#define FF_MAX_IO   (1u << 20)
#define FF_HDR_ROOM 4096u
#define FF_SLOT_BUF (FF_HDR_ROOM + FF_MAX_IO)
/* In front of a WRITE's payload: the request header and the write header. */
#define FF_WRITE_HDR (sizeof(struct fuse_in_header) + sizeof(struct fuse_write_in))
/* Requests read per readable event, so nodes and clients get their turn. */
#define FF_BATCH 32
/* A punch or zero range goes to the storage in pieces of at most this: a
 * remote node takes at most 4 GiB - 1 in one NBD request. */
#define FF_ZERO_PIECE (1ull << 30)

struct fuse_frontend;

struct ff_slot {
	struct fuse_frontend *ff;
	struct dev_io io;
	fuse_req_t req;
	uint8_t *buf; /* FF_SLOT_BUF bytes; data at FF_HDR_ROOM */
	unsigned refs;
	uint64_t start_ns;
	uint64_t zero_end; /* WRITE_ZEROES: where the whole range ends */
	struct ff_slot *next;
};

struct ff_stats {
	uint64_t reads, writes, read_bytes, write_bytes, flushes, zeroes, errors;
	uint64_t read_ns, write_ns;
	struct lathist read_lat, write_lat, flush_lat;
	uint64_t backpressure; /* times every slot was busy and reading stopped */
	unsigned inflight_peak;
};

struct fuse_frontend {
	struct ev_loop *loop;
	struct dev *dev;
	char *name, *path;
	struct fuse_session *se;
	struct ev_io w;
	bool watching; /* w is registered */
	bool paused;   /* out of slots: not reading */
	bool mounted;
	bool gone; /* unmounted from outside, or the connection was aborted */
	bool stopping;
	uint8_t *region;
	size_t region_len;
	struct ff_slot *slots, *free_slots;
	unsigned inflight;
	struct ff_slot *rx; /* the slot whose buffer holds the request being handled */
	unsigned open_files;
	mode_t mode;
	uid_t uid;
	gid_t gid;
	struct timespec born;
	struct ff_stats st;
	void (*stop_done)(void *);
	void *stop_arg;
	struct ev_deferred finish;
};

/* ---- libfuse messages go to our log ---- */

/* The last error libfuse reported, for the start-up error line. */
static char ff_last_msg[256];

static void ff_log(enum fuse_log_level level, const char *fmt, va_list ap)
{
	char msg[512];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	size_t n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = '\0';
	if (level <= FUSE_LOG_ERR) {
		snprintf(ff_last_msg, sizeof(ff_last_msg), "%.255s", msg);
		log_err("libfuse: %s", msg);
	} else if (level <= FUSE_LOG_NOTICE) {
		log_info("libfuse: %s", msg);
	} else {
		log_debug("libfuse: %s", msg);
	}
}

/* ---- slots ---- */

static void ff_resume(struct fuse_frontend *ff);

static struct ff_slot *slot_get(struct fuse_frontend *ff)
{
	struct ff_slot *s = ff->free_slots;
	if (!s)
		return NULL;
	ff->free_slots = s->next;
	s->next = NULL;
	s->refs = 1;
	s->req = NULL;
	return s;
}

static void slot_unref(struct ff_slot *s)
{
	struct fuse_frontend *ff = s->ff;
	if (--s->refs)
		return;
	s->next = ff->free_slots;
	ff->free_slots = s;
	if (ff->paused)
		ff_resume(ff);
}

/* The slot of the request being handled, kept until its IO completes. */
static struct ff_slot *slot_hold(struct fuse_frontend *ff, fuse_req_t req)
{
	struct ff_slot *s = ff->rx;
	s->refs++;
	s->req = req;
	s->start_ns = ev_now_ns();
	if (++ff->inflight > ff->st.inflight_peak)
		ff->st.inflight_peak = ff->inflight;
	return s;
}

/* ---- the file's attributes ---- */

static void fill_stat(struct fuse_frontend *ff, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = FUSE_ROOT_ID;
	st->st_mode = S_IFREG | ff->mode;
	st->st_nlink = 1;
	st->st_uid = ff->uid;
	st->st_gid = ff->gid;
	st->st_size = (off_t)ff->dev->size;
	st->st_blksize = 4096;
	st->st_blocks = (blkcnt_t)(ff->dev->size / 512);
	st->st_atim = st->st_mtim = st->st_ctim = ff->born;
}

/* Attributes may be cached this long: the size changes only when a linear
 * storage grows or shrinks while running. */
#define FF_ATTR_TIMEOUT 1.0

static void ff_init(void *userdata, struct fuse_conn_info *conn)
{
	struct fuse_frontend *ff = userdata;
	conn->max_write = FF_MAX_IO;
	conn->max_background = FF_SLOTS;
	conn->congestion_threshold = FF_SLOTS * 3 / 4;
	/* Requests are read into our slot buffers by read(2): no splicing,
	 * and no page cache of ours to keep coherent. */
	conn->want &= ~(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE |
			FUSE_CAP_WRITEBACK_CACHE);
	if (conn->capable & FUSE_CAP_ASYNC_DIO)
		conn->want |= FUSE_CAP_ASYNC_DIO;
	log_info("FUSE file %s: kernel FUSE %u.%u, max_write %u, max_background %u", ff->path,
		 conn->proto_major, conn->proto_minor, conn->max_write, conn->max_background);
}

static void ff_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fuse_frontend *ff = fuse_req_userdata(req);
	struct stat st;
	fill_stat(ff, &st);
	fuse_reply_attr(req, &st, FF_ATTR_TIMEOUT);
}

static void ff_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	struct fuse_frontend *ff = fuse_req_userdata(req);
	if ((to_set & FUSE_SET_ATTR_SIZE) && (uint64_t)attr->st_size != ff->dev->size) {
		/* The size is the storage's: truncating would not free anything,
		 * and O_TRUNC must not look like it erased the storage. */
		fuse_reply_err(req, EPERM);
		return;
	}
	/* Owner and mode live as long as the mount; times are not kept. */
	if (to_set & FUSE_SET_ATTR_MODE)
		ff->mode = attr->st_mode & 07777;
	if (to_set & FUSE_SET_ATTR_UID)
		ff->uid = attr->st_uid;
	if (to_set & FUSE_SET_ATTR_GID)
		ff->gid = attr->st_gid;
	struct stat st;
	fill_stat(ff, &st);
	fuse_reply_attr(req, &st, FF_ATTR_TIMEOUT);
}

static void ff_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fuse_frontend *ff = fuse_req_userdata(req);
	if ((fi->flags & O_ACCMODE) != O_RDONLY && (ff->dev->caps & DEV_CAP_READONLY)) {
		fuse_reply_err(req, EROFS);
		return;
	}
	fi->direct_io = 1;
	fi->keep_cache = 0;
	fi->noflush = 1; /* close(2) need not wait for us: fsync is the barrier */
	ff->open_files++;
	fuse_reply_open(req, fi);
}

static void ff_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fuse_frontend *ff = fuse_req_userdata(req);
	if (ff->open_files)
		ff->open_files--;
	fuse_reply_err(req, 0);
}

static void ff_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fuse_reply_err(req, 0);
}

/* ---- data ---- */

static void submit(struct ff_slot *s, enum dev_op op, uint32_t flags, uint64_t off, uint64_t len,
		   void *buf);

static void ff_io_done(struct dev_io *io, int err)
{
	struct ff_slot *s = io->priv;
	struct fuse_frontend *ff = s->ff;
	uint64_t ns = ev_now_ns() - s->start_ns;
	uint64_t next = io->off + io->len;
	if (!err && io->op == DEV_WRITE_ZEROES && next < s->zero_end) {
		/* The next piece; done() may run again before this returns. */
		submit(s, DEV_WRITE_ZEROES, io->flags, next, MIN(s->zero_end - next, FF_ZERO_PIECE),
		       NULL);
		return;
	}
	/* Counted as the NBD server counts: every request by its type, its
	 * bytes only when it succeeded. */
	switch (io->op) {
	case DEV_READ:
		ff->st.reads++;
		ff->st.read_ns += ns;
		lathist_add(&ff->st.read_lat, ns);
		if (!err)
			ff->st.read_bytes += io->len;
		break;
	case DEV_WRITE:
		ff->st.writes++;
		ff->st.write_ns += ns;
		lathist_add(&ff->st.write_lat, ns);
		if (!err)
			ff->st.write_bytes += io->len;
		break;
	case DEV_FLUSH:
		ff->st.flushes++;
		lathist_add(&ff->st.flush_lat, ns);
		break;
	default: ff->st.zeroes++; break;
	}
	if (err) {
		ff->st.errors++;
		fuse_reply_err(s->req, err);
	} else if (io->op == DEV_READ) {
		fuse_reply_buf(s->req, io->buf, io->len);
	} else if (io->op == DEV_WRITE) {
		fuse_reply_write(s->req, io->len);
	} else {
		fuse_reply_err(s->req, 0);
	}
	s->req = NULL;
	ff->inflight--;
	if (ff->stopping && !ff->inflight)
		ev_defer(ff->loop, &ff->finish);
	slot_unref(s);
}

static void submit(struct ff_slot *s, enum dev_op op, uint32_t flags, uint64_t off, uint64_t len,
		   void *buf)
{
	struct dev_io *io = &s->io;
	memset(io, 0, sizeof(*io));
	io->op = op;
	io->flags = flags;
	io->off = off;
	io->len = len;
	io->buf = buf;
	io->done = ff_io_done;
	io->priv = s;
	dev_submit(s->ff->dev, io);
}

static bool misaligned(const struct fuse_frontend *ff, uint64_t off, uint64_t len)
{
	uint32_t b = ff->dev->min_block;
	return b > 1 && ((off % b) || (len % b));
}

static void ff_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct fuse_frontend *ff = fuse_req_userdata(req);
	uint64_t dsize = ff->dev->size;
	if (off < 0 || (uint64_t)off >= dsize || !size) {
		fuse_reply_buf(req, NULL, 0); /* end of file */
		return;
	}
	uint64_t len = MIN((uint64_t)size, dsize - (uint64_t)off);
	len = MIN(len, (uint64_t)FF_MAX_IO);
	if (misaligned(ff, (uint64_t)off, len)) {
		ff->st.errors++;
		fuse_reply_err(req, EINVAL);
		return;
	}
	struct ff_slot *s = slot_hold(ff, req);
	submit(s, DEV_READ, 0, (uint64_t)off, len, s->buf + FF_HDR_ROOM);
}

static void ff_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	struct fuse_frontend *ff = fuse_req_userdata(req);
	uint64_t dsize = ff->dev->size;
	if (!size) {
		fuse_reply_write(req, 0);
		return;
	}
	if (ff->dev->caps & DEV_CAP_READONLY) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if (off < 0 || (uint64_t)off >= dsize) {
		/* The file cannot grow past the storage. */
		ff->st.errors++;
		fuse_reply_err(req, ENOSPC);
		return;
	}
	/* A write that runs past the end is cut there: a short write. */
	uint64_t len = MIN((uint64_t)size, dsize - (uint64_t)off);
	len = MIN(len, (uint64_t)FF_MAX_IO);
	if (misaligned(ff, (uint64_t)off, len)) {
		ff->st.errors++;
		fuse_reply_err(req, EINVAL);
		return;
	}
	struct ff_slot *s = slot_hold(ff, req);
	void *data = (void *)buf;
	if ((const uint8_t *)buf < s->buf || (const uint8_t *)buf + len > s->buf + FF_SLOT_BUF) {
		/* Not in our buffer (a libfuse that copied it): keep a copy. */
		memcpy(s->buf + FF_HDR_ROOM, buf, len);
		data = s->buf + FF_HDR_ROOM;
	}
	uint32_t flags = (fi->flags & (O_SYNC | O_DSYNC)) ? DEV_F_FUA : 0;
	submit(s, DEV_WRITE, flags, (uint64_t)off, len, data);
}

static void ff_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct fuse_frontend *ff = fuse_req_userdata(req);
	struct ff_slot *s = slot_hold(ff, req);
	submit(s, DEV_FLUSH, 0, 0, 0, NULL);
}

static void ff_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t length,
			 struct fuse_file_info *fi)
{
	struct fuse_frontend *ff = fuse_req_userdata(req);
	uint64_t dsize = ff->dev->size;
	if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) {
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	if (off < 0 || length <= 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	uint64_t end = (uint64_t)off + (uint64_t)length;
	if (end > dsize && !(mode & FALLOC_FL_KEEP_SIZE)) {
		fuse_reply_err(req, ENOSPC); /* it would grow the file */
		return;
	}
	if (!(mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE))) {
		/* Preallocation: every byte of the storage exists already. */
		fuse_reply_err(req, 0);
		return;
	}
	if ((uint64_t)off >= dsize) {
		fuse_reply_err(req, 0);
		return;
	}
	end = MIN(end, dsize);
	if (ff->dev->caps & DEV_CAP_READONLY) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if (!(ff->dev->caps & DEV_CAP_ZERO)) {
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	if (misaligned(ff, (uint64_t)off, end - (uint64_t)off)) {
		ff->st.errors++;
		fuse_reply_err(req, EINVAL);
		return;
	}
	struct ff_slot *s = slot_hold(ff, req);
	uint32_t flags = (mode & FALLOC_FL_ZERO_RANGE) ? DEV_F_NO_HOLE : 0;
	s->zero_end = end;
	submit(s, DEV_WRITE_ZEROES, flags, (uint64_t)off, MIN(end - (uint64_t)off, FF_ZERO_PIECE),
	       NULL);
}

static const struct fuse_lowlevel_ops ff_ops = {
    .init = ff_init,
    .getattr = ff_getattr,
    .setattr = ff_setattr,
    .open = ff_open,
    .read = ff_read,
    .write = ff_write,
    .flush = ff_flush,
    .release = ff_release,
    .fsync = ff_fsync,
    .fallocate = ff_fallocate,
};

/* ---- reading /dev/fuse on the loop ---- */

static void ff_watch(struct fuse_frontend *ff, uint32_t events)
{
	if (ff->watching)
		ev_io_set(ff->loop, &ff->w, events);
}

static void ff_resume(struct fuse_frontend *ff)
{
	ff->paused = false;
	if (!ff->stopping && !ff->gone)
		ff_watch(ff, EPOLLIN);
}

/* Stop watching /dev/fuse for good: a paused watcher (no events asked)
 * would still be woken by EPOLLERR once the connection is gone. */
static void ff_unwatch(struct fuse_frontend *ff)
{
	if (!ff->watching)
		return;
	ev_io_stop(ff->loop, &ff->w);
	ff->watching = false;
}

static void ff_lost(struct fuse_frontend *ff, const char *why)
{
	if (ff->gone)
		return;
	ff->gone = true;
	ff_unwatch(ff);
	if (ff->stopping)
		return;
	log_warn("FUSE file %s: %s; the storage is still served over NBD", ff->path, why);
}

static void ff_on_event(struct ev_io *w, uint32_t events)
{
	struct fuse_frontend *ff = container_of(w, struct fuse_frontend, w);
	if (events & (EPOLLERR | EPOLLHUP)) {
		/* /dev/fuse polls as an error once the connection is aborted. */
		ff_lost(ff, "unmounted from outside, or its FUSE connection was aborted");
		return;
	}
	for (int i = 0; i < FF_BATCH && !ff->gone && !ff->stopping; i++) {
		struct ff_slot *s = slot_get(ff);
		if (!s) {
			/* Every slot is busy: let the kernel hold the rest. */
			ff->paused = true;
			ff->st.backpressure++;
			ff_watch(ff, 0);
			return;
		}
		/* The payload of a WRITE lands on a page boundary. */
		uint8_t *at = s->buf + FF_HDR_ROOM - FF_WRITE_HDR;
		ssize_t n = read(w->fd, at, FF_WRITE_HDR + FF_MAX_IO);
		if (n < 0) {
			int e = errno;
			slot_unref(s);
			if (e == EINTR || e == ENOENT) /* ENOENT: interrupted before we read it */
				continue;
			if (e == EAGAIN)
				return;
			if (e == ENODEV)
				ff_lost(
				    ff,
				    "unmounted from outside, or its FUSE connection was aborted");
			else
				ff_lost(ff, strerror(e));
			return;
		}
		if ((size_t)n < sizeof(struct fuse_in_header)) {
			slot_unref(s);
			log_err("FUSE file %s: short read of %zd bytes from /dev/fuse", ff->path,
				n);
			continue;
		}
		struct fuse_buf fb = {.mem = at, .size = (size_t)n};
		ff->rx = s;
		fuse_session_process_buf(ff->se, &fb);
		ff->rx = NULL;
		slot_unref(s);
	}
}

/* ---- life ---- */

const char *fuse_frontend_path(const struct fuse_frontend *ff)
{
	return ff->path;
}

static void ff_unmount(struct fuse_frontend *ff)
{
	ff_unwatch(ff);
	if (!ff->mounted)
		return;
	/* Closes /dev/fuse first (so that unmounting cannot wait on us), then
	 * detaches the mount lazily: users that still hold the file open get
	 * ENOTCONN instead of hanging. */
	fuse_session_unmount(ff->se);
	ff->mounted = false;
	if (!ff->gone)
		log_info("FUSE file %s: unmounted", ff->path);
}

static void ff_finish(struct ev_deferred *d)
{
	struct fuse_frontend *ff = container_of(d, struct fuse_frontend, finish);
	if (ff->inflight)
		return; /* the last completion queues us again */
	ff_unmount(ff);
	void (*done)(void *) = ff->stop_done;
	ff->stop_done = NULL;
	if (done)
		done(ff->stop_arg);
}

void fuse_frontend_stop(struct fuse_frontend *ff, void (*done)(void *arg), void *arg)
{
	ff->stopping = true;
	ff->stop_done = done;
	ff->stop_arg = arg;
	ff_unwatch(ff);
	ev_defer(ff->loop, &ff->finish);
}

void fuse_frontend_free(struct fuse_frontend *ff)
{
	if (!ff)
		return;
	ev_defer_cancel(ff->loop, &ff->finish);
	ff_unmount(ff);
	if (ff->se)
		fuse_session_destroy(ff->se);
	if (ff->inflight) {
		/* The device still owns buffers: leaking them beats a crash. */
		log_err("FUSE file %s: freed with %u requests in flight", ff->path, ff->inflight);
	} else if (ff->region) {
		munmap(ff->region, ff->region_len);
		free(ff->slots);
	}
	free(ff->name);
	free(ff->path);
	free(ff);
}

/* /dev/fuse must be there and usable before libfuse tries, so that the
 * error says what is missing instead of libfuse's generic one. */
static int check_fuse_device(char *err, size_t errlen)
{
	int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		if (e == ENOENT)
			snprintf(err, errlen,
				 "FUSE is not available: /dev/fuse: %s (load the fuse kernel "
				 "module: modprobe fuse)",
				 strerror(e));
		else
			snprintf(err, errlen, "FUSE is not available: /dev/fuse: %s", strerror(e));
		return -e;
	}
	struct stat st;
	int rc = 0;
	if (fstat(fd, &st) < 0 || !S_ISCHR(st.st_mode)) {
		snprintf(err, errlen, "FUSE is not available: /dev/fuse is not a character device");
		rc = -ENODEV;
	}
	close(fd);
	return rc;
}

static int map_slots(struct fuse_frontend *ff, char *err, size_t errlen)
{
	ff->region_len = (size_t)FF_SLOTS * FF_SLOT_BUF;
	/* Populated now, so the IO path never takes a page fault that could
	 * fail for want of memory. */
	void *p = mmap(NULL, ff->region_len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (p == MAP_FAILED) {
		snprintf(err, errlen, "FUSE file %s: %zu MiB of request buffers: %s", ff->path,
			 ff->region_len >> 20, strerror(errno));
		return -ENOMEM;
	}
	ff->region = p;
	ff->slots = xcalloc(FF_SLOTS, sizeof(*ff->slots));
	for (unsigned i = FF_SLOTS; i-- > 0;) {
		struct ff_slot *s = &ff->slots[i];
		s->ff = ff;
		s->buf = ff->region + (size_t)i * FF_SLOT_BUF;
		s->next = ff->free_slots;
		ff->free_slots = s;
	}
	return 0;
}

struct fuse_frontend *fuse_frontend_new(struct ev_loop *loop, struct dev *dev, const char *name,
					const char *path, char *err, size_t errlen)
{
	char canon[PATH_MAX];
	if (check_fuse_device(err, errlen) < 0)
		return NULL;
	if (fuse_path_prepare(path, canon, sizeof(canon), err, errlen) < 0)
		return NULL;
	fuse_set_log_func(ff_log);
	struct fuse_frontend *ff = xcalloc(1, sizeof(*ff));
	ff->loop = loop;
	ff->dev = dev;
	ff->name = xstrdup(name);
	ff->path = xstrdup(canon);
	ff->mode = 0600;
	ff->uid = geteuid();
	ff->gid = getegid();
	clock_gettime(CLOCK_REALTIME, &ff->born);
	ff->finish.fn = ff_finish;
	ff->w.fd = -1;
	ff->w.fn = ff_on_event;
	if (map_slots(ff, err, errlen) < 0)
		goto fail;

	/* fsname and subtype make the mount "dst:NAME" of type fuse.dst in
	 * mountinfo: how a stale mount is recognised as ours after a crash. */
	char *opts = xasprintf("fsname=dst:%s,subtype=%s", name, DST_FUSE_SUBTYPE);
	char *argv[] = {"dstd", "-o", opts, NULL};
	struct fuse_args args = FUSE_ARGS_INIT(3, argv);
	ff_last_msg[0] = '\0';
	ff->se = fuse_session_new(&args, &ff_ops, sizeof(ff_ops), ff);
	fuse_opt_free_args(&args);
	free(opts);
	if (!ff->se) {
		snprintf(err, errlen, "FUSE file %s: cannot set up the FUSE session: %s", ff->path,
			 ff_last_msg[0] ? ff_last_msg : "libfuse failed");
		goto fail;
	}
	if (fuse_session_mount(ff->se, ff->path) != 0) {
		snprintf(err, errlen, "FUSE file %s: mount failed: %s", ff->path,
			 ff_last_msg[0] ? ff_last_msg : "libfuse failed");
		goto fail;
	}
	ff->mounted = true;
	int fd = fuse_session_fd(ff->se);
	if (set_nonblock(fd) < 0 || ev_io_start(loop, &ff->w, fd, EPOLLIN) < 0) {
		snprintf(err, errlen, "FUSE file %s: cannot watch /dev/fuse: %s", ff->path,
			 strerror(errno));
		goto fail;
	}
	ff->watching = true;
	log_info("FUSE file %s: mounted (%llu bytes, %u slots of %u KiB)", ff->path,
		 (unsigned long long)dev->size, FF_SLOTS, FF_MAX_IO >> 10);
	return ff;
fail:
	fuse_frontend_free(ff);
	return NULL;
}

void fuse_frontend_show(struct fuse_frontend *ff, struct strbuf *out, const char *name)
{
	char p[256];
#define PATH(leaf) (snprintf(p, sizeof(p), "%s/%s", name, leaf), p)
	sb_attr_str(out, PATH("fuse"), "%s", ff->path);
	sb_attr_str(out, PATH("fuse_file/state"), "%s",
		    ff->mounted ? (ff->gone ? "lost" : "mounted") : "unmounted");
	sb_attr_num(out, PATH("fuse_file/open"), ff->open_files);
	sb_attr_num(out, PATH("fuse_file/io/reads"), ff->st.reads);
	sb_attr_num(out, PATH("fuse_file/io/writes"), ff->st.writes);
	sb_attr_num(out, PATH("fuse_file/io/read_bytes"), ff->st.read_bytes);
	sb_attr_num(out, PATH("fuse_file/io/write_bytes"), ff->st.write_bytes);
	sb_attr_num(out, PATH("fuse_file/io/flushes"), ff->st.flushes);
	sb_attr_num(out, PATH("fuse_file/io/zeroes"), ff->st.zeroes);
	sb_attr_num(out, PATH("fuse_file/io/errors"), ff->st.errors);
	sb_attr_num(out, PATH("fuse_file/io/inflight"), ff->inflight);
	sb_attr_num(out, PATH("fuse_file/io/inflight_peak"), ff->st.inflight_peak);
	sb_attr_num(out, PATH("fuse_file/io/backpressure"), ff->st.backpressure);
	sb_attr_num(out, PATH("fuse_file/io/read_ns"), ff->st.read_ns);
	sb_attr_num(out, PATH("fuse_file/io/write_ns"), ff->st.write_ns);
	sb_attr_num(out, PATH("fuse_file/mem/buffers"), ff->region_len);
#undef PATH
}

void fuse_frontend_add_stats(const struct fuse_frontend *ff, struct nbd_server_stats *st)
{
	st->reads += ff->st.reads;
	st->writes += ff->st.writes;
	st->bytes_read += ff->st.read_bytes;
	st->bytes_written += ff->st.write_bytes;
	st->flushes += ff->st.flushes;
	st->zeroes += ff->st.zeroes;
	st->errors += ff->st.errors;
	st->read_ns += ff->st.read_ns;
	st->write_ns += ff->st.write_ns;
	st->inflight += ff->inflight;
	lathist_merge(&st->read_lat, &ff->st.read_lat);
	lathist_merge(&st->write_lat, &ff->st.write_lat);
	lathist_merge(&st->flush_lat, &ff->st.flush_lat);
}
