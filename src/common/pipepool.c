/* pipepool.c - the pool of pipes payloads are spliced through (pipepool.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "pipepool.h"

static struct spipe *free_list;
static unsigned made, in_use;
static bool refused;	    /* the system would not make one: stop asking */
static const char *refusal; /* why, for dst show */
static int null_fd = -1;
static struct spipe *scratch; /* spipe_copy_out's, never in the pool */

static struct spipe *make(void)
{
	int fds[2];
	/* DST_SPLICE=0: copy everything (to measure what splicing gains). */
	const char *env = getenv("DST_SPLICE");
	if (!refused && env && !strcmp(env, "0")) {
		refused = true;
		refusal = "DST_SPLICE=0";
	}
	if (refused || pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0) {
		if (!refused) {
			log_warn("splice: cannot make a pipe (%s): payloads are copied",
				 strerror(errno));
			refusal = "the system gives no more pipes";
		}
		refused = true;
		return NULL;
	}
	/* A payload of SPIPE_CAP must fit whole: the sender fills it before
	 * anyone drains it. Unprivileged, pipe-max-size and pipe-user-pages
	 * may refuse; then nothing is spliced. */
	if (fcntl(fds[1], F_SETPIPE_SZ, (int)SPIPE_CAP) < (int)SPIPE_CAP) {
		log_warn("splice: cannot size a pipe to %u bytes (%s): payloads are copied",
			 SPIPE_CAP, strerror(errno));
		close(fds[0]);
		close(fds[1]);
		refused = true;
		refusal = "the system will not size a pipe to 1 MiB";
		return NULL;
	}
	struct spipe *p = xcalloc(1, sizeof(*p));
	p->rfd = fds[0];
	p->wfd = fds[1];
	return p;
}

struct spipe *spipe_get(void)
{
	struct spipe *p = free_list;
	if (p) {
		free_list = p->next;
	} else {
		if (made >= SPIPE_MAX || !(p = make()))
			return NULL;
		made++;
	}
	p->next = NULL;
	p->len = 0;
	p->copied = false;
	in_use++;
	return p;
}

void spipe_put(struct spipe *p)
{
	if (!p)
		return;
	spipe_drop(p);
	p->next = free_list;
	free_list = p;
	in_use--;
}

void spipe_drop(struct spipe *p)
{
	if (null_fd < 0)
		null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	while (p->len) {
		ssize_t r = -1;
		if (null_fd >= 0)
			r = splice(p->rfd, NULL, null_fd, NULL, p->len, SPLICE_F_NONBLOCK);
		if (r <= 0) { /* no /dev/null to splice to: read it away */
			char sink[4096];
			r = read(p->rfd, sink, MIN(sizeof(sink), (size_t)p->len));
		}
		if (r <= 0) {
			/* Only a bug can get here; a pipe that lies about
			 * its contents must not carry another payload. */
			log_err("splice: a pipe would not give back %u bytes: %s", p->len,
				strerror(errno));
			abort();
		}
		p->len -= (uint32_t)r;
	}
}

ssize_t spipe_from_fd(struct spipe *p, int fd, size_t len)
{
	ssize_t r = splice(fd, NULL, p->wfd, NULL, len, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
	if (r > 0)
		p->len += (uint32_t)r;
	return r;
}

ssize_t spipe_to_fd(struct spipe *p, int fd, size_t len, bool more)
{
	unsigned flags = SPLICE_F_NONBLOCK | SPLICE_F_MOVE | (more ? SPLICE_F_MORE : 0);
	ssize_t r = splice(p->rfd, NULL, fd, NULL, len, flags);
	if (r > 0)
		p->len -= (uint32_t)r;
	return r;
}

ssize_t spipe_from_buf(struct spipe *p, const void *buf, size_t len)
{
	ssize_t r = write(p->wfd, buf, len);
	if (r > 0)
		p->len += (uint32_t)r;
	return r;
}

int spipe_to_buf(struct spipe *p, void *buf, size_t len)
{
	size_t got = 0;
	while (got < len) {
		ssize_t r = read(p->rfd, (char *)buf + got, len - got);
		if (r <= 0) {
			if (r == 0)
				errno = EIO;
			else if (errno == EINTR)
				continue;
			return -1;
		}
		got += (size_t)r;
		p->len -= (uint32_t)r;
	}
	return 0;
}

ssize_t spipe_unload(struct spipe **pp, void *buf)
{
	uint32_t got = (*pp)->len;
	if (spipe_to_buf(*pp, buf, got) < 0)
		return -1;
	spipe_put(*pp);
	*pp = NULL;
	return got;
}

bool spipe_full_for(int fd)
{
	int queued = 0;
	return ioctl(fd, FIONREAD, &queued) == 0 && queued > 0;
}

int spipe_tee(struct spipe *src, struct spipe *dst)
{
	while (dst->len < src->len) {
		/* tee always starts at src's head: only an empty dst can
		 * take all of it, in one call or several that each fit. */
		ssize_t r = tee(src->rfd, dst->wfd, src->len - dst->len, SPLICE_F_NONBLOCK);
		if (r <= 0) {
			if (r < 0 && errno == EINTR)
				continue;
			if (r == 0)
				errno = EAGAIN;
			return -1;
		}
		dst->len += (uint32_t)r;
		if (dst->len < src->len) {
			/* A second tee would duplicate the head again. */
			errno = EAGAIN;
			return -1;
		}
	}
	return 0;
}

int spipe_copy_out(struct spipe *src, void *buf)
{
	if (!scratch && !(scratch = make()))
		return -1;
	uint32_t want = src->len;
	src->copied = true;
	if (spipe_tee(src, scratch) < 0) {
		int e = errno;
		spipe_drop(scratch);
		errno = e;
		return -1;
	}
	return spipe_to_buf(scratch, buf, want);
}

const char *spipe_refusal(void)
{
	return made ? NULL : refusal;
}

void spipe_counts(unsigned *m, unsigned *u)
{
	*m = made;
	*u = in_use;
}
