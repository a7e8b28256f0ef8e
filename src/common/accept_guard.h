/* accept_guard.h - accept(2) on a listener without spinning at the
 * descriptor limit.
 *
 * A listener watched level-triggered whose accept fails with EMFILE or
 * ENFILE stays readable: the loop would call accept again at once, for
 * ever, and log each failure. The guard keeps one spare descriptor per
 * process: at EMFILE it gives it up, accepts the waiting connection,
 * closes it (the client sees its connection end instead of hanging in the
 * backlog) and takes the spare back. When even that fails (ENFILE, or the
 * spare is gone), it stops watching the listener for a short back-off.
 * Either way it logs once per episode (at most one in 10 s), and once when
 * accepting works again.
 */
#ifndef DST_ACCEPT_GUARD_H
#define DST_ACCEPT_GUARD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "ev.h"

struct accept_guard {
	struct ev_loop *loop;
	struct ev_io *w; /* the listener's watcher (set on every accept) */
	struct ev_timer pause;
	char what[120]; /* "control socket PATH", "listener URI" for logs */
	bool episode;	/* at the limit now: logged once, not again */
	bool logged;	/* ... and this episode was (not within QUIET_NS) */
	uint64_t last_log_ns;
	uint64_t dropped; /* connections closed at once during the episode */
	uint32_t events;  /* what to watch again after a pause */
};

/* what names the listener in log lines. Opens the process's spare
 * descriptor the first time. */
void accept_guard_init(struct accept_guard *g, struct ev_loop *loop, const char *what);

/* accept4(w->fd, ..., SOCK_NONBLOCK | SOCK_CLOEXEC). Returns the new fd,
 * or -1 with errno: EAGAIN when there is nothing (more) to take now,
 * including when a connection was dropped or the listener paused at the
 * descriptor limit; other errors are the caller's to log. */
int accept_guard_accept(struct accept_guard *g, struct ev_io *w, struct sockaddr *sa,
			socklen_t *sl);

/* Before the listener's watcher goes away. */
void accept_guard_stop(struct accept_guard *g);

#endif
