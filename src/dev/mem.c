/* mem.c - "mem:SIZE": a sparse disk in RAM, for tests, demos and benchmarks.
 *
 * Data lives in 64 KiB chunks allocated on first write and found through a
 * two-level table whose second level is allocated lazily too, so an unwritten
 * 1 TiB disk costs 16 KiB of table. Small requests complete inline from
 * submit(), which the dev.h contract allows.
 *
 * Large reads and writes are copied by a worker thread, so that the copy
 * overlaps with the event loop's own socket copies (on two cores a single
 * thread doing both is what limits sequential IO). The loop thread still
 * does every table lookup and allocation and hands the worker a plan of
 * chunk pointers: the worker never touches the table. While any plan is in
 * flight, TRIM zeroes chunks in place instead of freeing them, so no plan
 * can point at freed memory.
 *
 * The NBD server's reads copy nothing here at all (DEV_F_BORROW): they get
 * pointers to the chunks, and the socket send does the one copy. Borrowed
 * chunks are protected from TRIM the same way until they are released.
 * Writes still take the worker: received into a buffer that is hot in the
 * cache, they are copied into the (cold) chunks off the event loop, which
 * measured faster than receiving straight into the chunks on the loop,
 * with streaming stores (copy_to_cold), which cut the worker's copy time
 * about in half. The loop signals the worker only when it sleeps, and the
 * worker wakes the loop only for the first of a batch of finished jobs.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/copy.h"
#include "common/ev.h"
#include "common/util.h"
#include "dev.h"

#define CHUNK_SHIFT 16
#define CHUNK_SIZE  (1ull << CHUNK_SHIFT)
#define CHUNK_MASK  (CHUNK_SIZE - 1)
/* A second-level table maps 8192 chunks (512 MiB) and is itself 64 KiB. */
#define L2_SHIFT      13
#define L2_ENTRIES    (1ull << L2_SHIFT)
#define L2_MASK	      (L2_ENTRIES - 1)
#define L2_SPAN_SHIFT (CHUNK_SHIFT + L2_SHIFT)
/* 256 TiB keeps the eagerly allocated top level at 4 MiB (of untouched,
 * lazily mapped calloc memory); nobody has that much RAM to fill anyway. */
#define MEM_MAX_SIZE (256ull << 40)

/* Requests at least this large go to the copy worker. */
#define OFFLOAD_MIN (256u << 10)
#define JOBS	    64
/* A job's plan: one chunk pointer (NULL: a hole) per chunk it touches. */
#define PLAN_MAX ((32u << 20) / CHUNK_SIZE + 1)

struct copy_job {
	struct dev_io *io;
	char *plan[PLAN_MAX];
	struct copy_job *next;
};

struct mem_dev {
	struct dev dev;
	uint64_t ntop;
	char ***top; /* top[i] is NULL or an L2 table of L2_ENTRIES chunk pointers */

	/* copy worker (started on first use) */
	bool worker_up;
	pthread_t worker;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
	bool idle; /* the worker sleeps on cond: submitting must signal it */
	struct copy_job *todo_head, *todo_tail, *done_head; /* under lock */
	struct copy_job jobs[JOBS], *free_jobs;		    /* loop thread only */
	unsigned jobs_in_flight;			    /* loop thread only */
	unsigned borrowed;				    /* reads not yet released */
	int efd;
	struct ev_io efd_w;
};

static char *chunk_get(const struct mem_dev *m, uint64_t ci)
{
	char **l2 = m->top[ci >> L2_SHIFT];
	return l2 ? l2[ci & L2_MASK] : NULL;
}

/* The only allocation on the IO path: a chunk (and perhaps its L2 table) on
 * first write. Returns NULL when memory runs out; the caller turns that into
 * ENOSPC, which is what the disk being "full" looks like to a client. The
 * chunk's contents are left uninitialised for the caller to fill. */
static char *chunk_new(struct mem_dev *m, uint64_t ci)
{
	char ***slot = &m->top[ci >> L2_SHIFT];
	if (!*slot) {
		*slot = calloc(L2_ENTRIES, sizeof(char *));
		if (!*slot)
			return NULL;
	}
	char *c = malloc(CHUNK_SIZE);
	(*slot)[ci & L2_MASK] = c;
	return c;
}

/* First byte past the L2 table containing byte offset off. */
static uint64_t l2_end(uint64_t off)
{
	return ((off >> L2_SPAN_SHIFT) + 1) << L2_SPAN_SHIFT;
}

static int mem_read(struct mem_dev *m, uint64_t off, uint64_t len, char *buf)
{
	while (len) {
		uint64_t coff = off & CHUNK_MASK;
		uint64_t n = MIN(len, CHUNK_SIZE - coff);
		const char *c = chunk_get(m, off >> CHUNK_SHIFT);
		if (c)
			memcpy(buf, c + coff, n);
		else
			memset(buf, 0, n);
		buf += n;
		off += n;
		len -= n;
	}
	return 0;
}

_Static_assert(DEV_BORROW_MAX / CHUNK_SIZE + 1 <= DEV_BORROW_IOV, "a borrowed read's chunks");

/* What holes read as when a read borrows instead of copying. */
static const char zero_chunk[CHUNK_SIZE];

static int mem_borrow(struct mem_dev *m, struct dev_io *io)
{
	if (io->len > DEV_BORROW_MAX)
		return EINVAL;
	uint64_t off = io->off, left = io->len;
	uint32_t n = 0;
	for (; left; n++) {
		uint64_t coff = off & CHUNK_MASK;
		uint64_t take = MIN(left, CHUNK_SIZE - coff);
		const char *c = chunk_get(m, off >> CHUNK_SHIFT);
		io->iov[n].iov_base = (void *)(c ? c + coff : zero_chunk);
		io->iov[n].iov_len = take;
		off += take;
		left -= take;
	}
	io->iov_count = n;
	m->borrowed++;
	return 0;
}

static void mem_release(struct dev *d, struct dev_io *io)
{
	struct mem_dev *m = container_of(d, struct mem_dev, dev);
	m->borrowed--;
	io->iov_count = 0;
}

static int mem_write(struct mem_dev *m, uint64_t off, uint64_t len, const char *buf)
{
	while (len) {
		uint64_t ci = off >> CHUNK_SHIFT;
		uint64_t coff = off & CHUNK_MASK;
		uint64_t n = MIN(len, CHUNK_SIZE - coff);
		char *c = chunk_get(m, ci);
		if (!c) {
			c = chunk_new(m, ci);
			if (!c)
				return ENOSPC;
			/* Zero only what this write does not cover. */
			memset(c, 0, coff);
			memset(c + coff + n, 0, CHUNK_SIZE - coff - n);
		}
		memcpy(c + coff, buf, n);
		buf += n;
		off += n;
		len -= n;
	}
	return 0;
}

/* TRIM and WRITE_ZEROES. Chunks wholly inside the range are freed (the tail
 * chunk counts as whole when the range reaches the end of the disk), partly
 * covered ones are zeroed in place. With keep (NO_HOLE) the range stays
 * allocated instead, so BLOCK_STATUS reports it as data as NBD expects. */
static int mem_zero(struct mem_dev *m, uint64_t off, uint64_t len, bool keep)
{
	uint64_t end = off + len;
	while (off < end) {
		uint64_t ci = off >> CHUNK_SHIFT;
		char **l2 = m->top[ci >> L2_SHIFT];
		if (!l2 && !keep) {
			off = MIN(end, l2_end(off)); /* nothing allocated here at all */
			continue;
		}
		uint64_t cstart = ci << CHUNK_SHIFT;
		uint64_t cend = MIN(cstart + CHUNK_SIZE, m->dev.size);
		uint64_t n = MIN(end, cend) - off;
		char *c = l2 ? l2[ci & L2_MASK] : NULL;
		if (keep && !c) {
			c = chunk_new(m, ci);
			if (!c)
				return ENOSPC;
			memset(c, 0, CHUNK_SIZE);
		} else if (c && !keep && off == cstart && off + n == cend && !m->jobs_in_flight &&
			   !m->borrowed) {
			free(c);
			l2[ci & L2_MASK] = NULL;
		} else if (c) {
			memset(c + (off - cstart), 0, n);
		}
		off += n;
	}
	return 0;
}

static int mem_block_status(struct mem_dev *m, struct dev_io *io)
{
	if (!io->ext || !io->ext_max || !io->len)
		return EINVAL;
	uint64_t off = io->off, end = io->off + io->len;
	io->ext_count = 0;
	while (off < end) {
		uint64_t ci = off >> CHUNK_SHIFT;
		uint64_t n;
		uint32_t flags;
		if (!m->top[ci >> L2_SHIFT]) {
			n = MIN(end, l2_end(off)) - off;
			flags = DEV_EXT_HOLE | DEV_EXT_ZERO;
		} else {
			n = MIN(end, (ci + 1) << CHUNK_SHIFT) - off;
			flags = chunk_get(m, ci) ? 0 : DEV_EXT_HOLE | DEV_EXT_ZERO;
		}
		struct dev_extent *last = io->ext_count ? &io->ext[io->ext_count - 1] : NULL;
		if (last && last->flags == flags) {
			last->len += n;
		} else {
			if (io->ext_count == io->ext_max)
				break; /* a prefix of the range is all the contract asks */
			io->ext[io->ext_count++] = (struct dev_extent){.len = n, .flags = flags};
		}
		off += n;
	}
	return 0;
}

/* Worker: copy between the io's buffer and the planned chunks. */
static void run_job(struct copy_job *j)
{
	struct dev_io *io = j->io;
	uint64_t off = io->off, len = io->len;
	char *buf = io->buf;
	for (unsigned k = 0; len; k++) {
		uint64_t coff = off & CHUNK_MASK;
		uint64_t n = MIN(len, CHUNK_SIZE - coff);
		if (io->op == DEV_WRITE)
			copy_to_cold(j->plan[k] + coff, buf, n);
		else if (j->plan[k])
			memcpy(buf, j->plan[k] + coff, n);
		else
			memset(buf, 0, n);
		buf += n;
		off += n;
		len -= n;
	}
}

static void *worker_main(void *arg)
{
	struct mem_dev *m = arg;
	pthread_mutex_lock(&m->lock);
	for (;;) {
		while (!m->todo_head && !m->stop) {
			m->idle = true;
			pthread_cond_wait(&m->cond, &m->lock);
			m->idle = false;
		}
		if (!m->todo_head)
			break;
		struct copy_job *j = m->todo_head;
		m->todo_head = j->next;
		if (!m->todo_head)
			m->todo_tail = NULL;
		pthread_mutex_unlock(&m->lock);
		run_job(j);
		pthread_mutex_lock(&m->lock);
		j->next = m->done_head;
		m->done_head = j;
		/* The loop takes the whole list per wake-up: only the job that
		 * makes it non-empty needs to wake it (and not under the lock,
		 * which the woken loop wants straight away). */
		if (!j->next) {
			pthread_mutex_unlock(&m->lock);
			uint64_t one = 1;
			if (write(m->efd, &one, sizeof(one)) < 0) {
				/* the counter cannot overflow at our rate */
			}
			pthread_mutex_lock(&m->lock);
		}
	}
	pthread_mutex_unlock(&m->lock);
	return NULL;
}

/* Loop thread: finished jobs come back through the eventfd. */
static void on_jobs_done(struct ev_io *w, uint32_t events)
{
	struct mem_dev *m = container_of(w, struct mem_dev, efd_w);
	uint64_t cnt;
	if (read(m->efd, &cnt, sizeof(cnt)) < 0) {
		/* EAGAIN: a previous wake-up already took them */
	}
	pthread_mutex_lock(&m->lock);
	struct copy_job *j = m->done_head;
	m->done_head = NULL;
	pthread_mutex_unlock(&m->lock);
	while (j) {
		struct copy_job *next = j->next;
		struct dev_io *io = j->io;
		j->next = m->free_jobs;
		m->free_jobs = j;
		m->jobs_in_flight--;
		io->done(io, 0);
		j = next;
	}
}

static bool worker_start(struct mem_dev *m)
{
	m->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (m->efd < 0)
		return false;
	pthread_mutex_init(&m->lock, NULL);
	pthread_cond_init(&m->cond, NULL);
	if (pthread_create(&m->worker, NULL, worker_main, m) != 0) {
		close(m->efd);
		pthread_mutex_destroy(&m->lock);
		pthread_cond_destroy(&m->cond);
		return false;
	}
	m->efd_w.fn = on_jobs_done;
	ev_io_start(m->dev.loop, &m->efd_w, m->efd, EPOLLIN);
	for (unsigned i = 0; i < JOBS; i++) {
		m->jobs[i].next = m->free_jobs;
		m->free_jobs = &m->jobs[i];
	}
	m->worker_up = true;
	return true;
}

/* Plan a large read or write for the worker; false: do it inline (no free
 * job, no worker, or a write that could not get its chunks). */
static bool offload(struct mem_dev *m, struct dev_io *io, int *err)
{
	if (io->len < OFFLOAD_MIN || io->len > (32u << 20) || !m->dev.loop)
		return false;
	if (!m->worker_up && !worker_start(m))
		return false;
	struct copy_job *j = m->free_jobs;
	if (!j)
		return false;
	uint64_t off = io->off, end = io->off + io->len;
	unsigned k = 0;
	for (uint64_t ci = off >> CHUNK_SHIFT; (ci << CHUNK_SHIFT) < end; ci++, k++) {
		char *c = chunk_get(m, ci);
		if (!c && io->op == DEV_WRITE) {
			c = chunk_new(m, ci);
			if (!c) {
				*err = ENOSPC;
				return false;
			}
			memset(c, 0, CHUNK_SIZE); /* the worker fills what the write covers */
		}
		j->plan[k] = c;
	}
	m->free_jobs = j->next;
	m->jobs_in_flight++;
	j->io = io;
	j->next = NULL;
	pthread_mutex_lock(&m->lock);
	if (m->todo_tail)
		m->todo_tail->next = j;
	else
		m->todo_head = j;
	m->todo_tail = j;
	bool wake = m->idle;
	pthread_mutex_unlock(&m->lock);
	if (wake)
		pthread_cond_signal(&m->cond);
	return true;
}

static void mem_submit(struct dev *d, struct dev_io *io)
{
	struct mem_dev *m = container_of(d, struct mem_dev, dev);
	int err = 0;

	if (io->op != DEV_FLUSH && (io->len > d->size || io->off > d->size - io->len)) {
		io->done(io, EINVAL);
		return;
	}
	if (io->op == DEV_READ && (io->flags & DEV_F_BORROW)) {
		io->done(io, mem_borrow(m, io));
		return;
	}
	if ((io->op == DEV_READ || io->op == DEV_WRITE) && offload(m, io, &err))
		return;
	if (err) {
		io->done(io, err);
		return;
	}
	switch (io->op) {
	case DEV_READ: err = mem_read(m, io->off, io->len, io->buf); break;
	case DEV_WRITE: err = mem_write(m, io->off, io->len, io->buf); break;
	case DEV_TRIM: err = mem_zero(m, io->off, io->len, false); break;
	case DEV_WRITE_ZEROES:
		err = mem_zero(m, io->off, io->len, io->flags & DEV_F_NO_HOLE);
		break;
	case DEV_FLUSH:
	case DEV_CACHE: break;
	case DEV_BLOCK_STATUS: err = mem_block_status(m, io); break;
	default: err = EOPNOTSUPP; break;
	}
	io->done(io, err);
}

static void mem_destroy(struct dev *d)
{
	struct mem_dev *m = container_of(d, struct mem_dev, dev);
	if (m->worker_up) {
		pthread_mutex_lock(&m->lock);
		m->stop = true;
		pthread_cond_signal(&m->cond);
		pthread_mutex_unlock(&m->lock);
		pthread_join(m->worker, NULL);
		ev_io_stop(d->loop, &m->efd_w);
		close(m->efd);
		pthread_mutex_destroy(&m->lock);
		pthread_cond_destroy(&m->cond);
	}
	for (uint64_t i = 0; i < m->ntop; i++) {
		char **l2 = m->top[i];
		if (!l2)
			continue;
		for (uint64_t j = 0; j < L2_ENTRIES; j++)
			free(l2[j]);
		free(l2);
	}
	free(m->top);
	free(d->desc);
	free(m);
}

static const struct dev_ops mem_ops = {
    .kind = "mem",
    .submit = mem_submit,
    .destroy = mem_destroy,
    .release = mem_release,
};

struct dev *dev_mem_open(struct ev_loop *loop, const char *spec, char *err, size_t errlen)
{
	uint64_t size = 0;
	if (strncmp(spec, "mem:", 4) != 0 || parse_size(spec + 4, &size) < 0 || size == 0 ||
	    size % 512) {
		snprintf(err, errlen,
			 "%s: invalid size (want mem:SIZE, a multiple of 512, e.g. mem:1G)", spec);
		return NULL;
	}
	if (size > MEM_MAX_SIZE) {
		snprintf(err, errlen, "%s: size too large (at most 256T)", spec);
		return NULL;
	}
	struct mem_dev *m = xcalloc(1, sizeof(*m));
	m->ntop = ((size - 1) >> L2_SPAN_SHIFT) + 1;
	m->top = xcalloc(m->ntop, sizeof(*m->top));
	m->dev.ops = &mem_ops;
	m->dev.loop = loop;
	m->dev.size = size;
	m->dev.caps = DEV_CAP_FLUSH | DEV_CAP_FUA | DEV_CAP_TRIM | DEV_CAP_ZERO |
		      DEV_CAP_FAST_ZERO | DEV_CAP_EXTENTS | DEV_CAP_MULTI_CONN | DEV_CAP_CACHE |
		      DEV_CAP_BORROW;
	m->dev.min_block = 1;
	m->dev.desc = xasprintf("M: %s", spec);
	return &m->dev;
}
