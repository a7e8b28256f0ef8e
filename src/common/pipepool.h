/* pipepool.h - pipes through which payloads are spliced, and their pool.
 *
 * A storage in the middle of two sockets need not copy what passes through
 * it: splice(2) moves a read reply's payload from a node's socket into a
 * pipe and from the pipe into the client's socket, and a write's the other
 * way, as page references, never through the daemon's memory. tee(2)
 * duplicates a pipe's contents without consuming them, which gives a
 * mirror's legs the same payload and keeps a write's bytes for a resend
 * until its node answers.
 *
 * Pipes are few and bounded (SPIPE_MAX, each SPIPE_CAP bytes), made on
 * first use and kept: a request that finds none free, or a system that
 * will not make them, takes the copying path instead. Nothing on the IO
 * path fails for want of a pipe.
 *
 * Everything here runs on the daemon's one event loop.
 */
#ifndef DST_PIPEPOOL_H
#define DST_PIPEPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SPIPE_CAP (1u << 20) /* the largest payload a pipe carries */
#define SPIPE_MAX 64u	     /* pipes at most, in all */
/* Smaller payloads are copied: two splices and a pipe cost more than
 * copying a few pages. */
#define SPIPE_MIN (64u << 10)

struct spipe {
	int rfd, wfd;
	uint32_t len; /* bytes in it */
	/* Its bytes were copied out (spipe_copy_out) for a device that
	 * needed them: the payload was not spliced all the way. */
	bool copied;
	struct spipe *next;
};

/* A free pipe, empty, or NULL when all SPIPE_MAX are taken or the system
 * refuses a new one (fds, pipe-user-pages limits). */
struct spipe *spipe_get(void);
/* Give it back; what it still holds is dropped. */
void spipe_put(struct spipe *p);
/* Empty it (its pages go, nothing is copied). */
void spipe_drop(struct spipe *p);

/* Nonblocking moves; each returns bytes moved (> 0), 0 at EOF of fd, or -1
 * with errno (EAGAIN: nothing to move now). fd is a nonblocking socket. */
ssize_t spipe_from_fd(struct spipe *p, int fd, size_t len);
/* more: further bytes follow at once (MSG_MORE on the last segment too). */
ssize_t spipe_to_fd(struct spipe *p, int fd, size_t len, bool more);
/* Bytes already in memory (what was read ahead of a payload) go in first:
 * a copy, but a small one. */
ssize_t spipe_from_buf(struct spipe *p, const void *buf, size_t len);
/* Consume len bytes into buf (the pipe holds them). 0 or -1 with errno. */
int spipe_to_buf(struct spipe *p, void *buf, size_t len);
/* A payload being spliced in gives up its pipe: all the pipe holds moves
 * into buf, the pipe goes back, *pp is NULL. Returns the bytes moved, or
 * -1 with errno (*pp then left as it was). */
ssize_t spipe_unload(struct spipe **pp, void *buf);
/* spipe_from_fd said EAGAIN: is it the pipe that is full (fd still has
 * bytes: the payload came in more pieces than the pipe has slots), rather
 * than fd that is empty? */
bool spipe_full_for(int fd);

/* dst gets all of src's bytes too, src keeps them. dst must be empty.
 * 0, or -1 with errno (a short tee is EAGAIN: dst had no room). */
int spipe_tee(struct spipe *src, struct spipe *dst);
/* Copy src's bytes into buf without consuming them (through a scratch
 * pipe): for a device that needs the bytes of a payload it was handed in a
 * pipe. 0, or -1 with errno. */
int spipe_copy_out(struct spipe *src, void *buf);

/* Why no pipe could be made at all ("DST_SPLICE=0", ...), or NULL. */
const char *spipe_refusal(void);
/* How many pipes are made, and taken now. */
void spipe_counts(unsigned *made, unsigned *in_use);

#endif
