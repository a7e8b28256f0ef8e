/* ev.h - a small single-threaded event loop (epoll + timers + deferred work).
 *
 * Everything in a dst daemon runs on one loop: sockets, io_uring completion
 * eventfds, timers. Callbacks never block. Handlers are embedded in their
 * owner's struct and recovered with container_of(), so the loop allocates
 * nothing per event.
 */
#ifndef DST_EV_H
#define DST_EV_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>

struct ev_loop;

/* An fd watcher. `events` passed to fn are EPOLLIN/EPOLLOUT/EPOLLERR/EPOLLHUP. */
struct ev_io {
	int fd;
	uint32_t events; /* currently registered mask */
	void (*fn)(struct ev_io *w, uint32_t events);
};

/* A one-shot timer; re-arm from its callback for periodic work. */
struct ev_timer {
	uint64_t when_ns; /* CLOCK_MONOTONIC deadline */
	bool armed;
	void (*fn)(struct ev_timer *t);
	struct ev_timer *next;
};

/* Work run once, after the current batch of events (before the loop sleeps).
 * Used to batch reply writes and to complete IO outside the submitter's stack. */
struct ev_deferred {
	bool queued;
	void (*fn)(struct ev_deferred *d);
	struct ev_deferred *next;
};

struct ev_loop *ev_loop_new(void);
void ev_loop_free(struct ev_loop *loop);

/* Register/modify/remove an fd watcher. Return 0 or -errno. */
int ev_io_start(struct ev_loop *loop, struct ev_io *w, int fd, uint32_t events);
int ev_io_set(struct ev_loop *loop, struct ev_io *w, uint32_t events);
void ev_io_stop(struct ev_loop *loop, struct ev_io *w);

/* Arm a timer `delay_ns` from now (re-arming moves it). */
void ev_timer_start(struct ev_loop *loop, struct ev_timer *t, uint64_t delay_ns);
void ev_timer_stop(struct ev_loop *loop, struct ev_timer *t);

/* Queue deferred work; queuing twice before it runs runs it once. */
void ev_defer(struct ev_loop *loop, struct ev_deferred *d);

/* Take queued work back (before freeing its owner). */
void ev_defer_cancel(struct ev_loop *loop, struct ev_deferred *d);

/* Run until ev_loop_break(). Returns 0, or -errno if epoll itself failed. */
int ev_run(struct ev_loop *loop);
void ev_loop_break(struct ev_loop *loop);

uint64_t ev_now_ns(void);

/* Polling before sleeping (ev.c says why): once asked, the loop looks for
 * events without sleeping for a while before it next sleeps; an adaptive
 * window of at most max_ns, within a CPU budget. Off (max 0) by default. */
struct ev_poll_stats {
	uint64_t max_ns;    /* the bound; 0: off */
	uint64_t polls;	    /* times the loop polled before sleeping */
	uint64_t hits;	    /* ... and an event came: a sleep nobody had to end */
	uint64_t ns;	    /* time spent polling */
	uint64_t preempted; /* polls cut short: the CPU was given to another task */
	uint64_t holdoffs;  /* ... twice in a row: no polling for a while */
};
void ev_poll_soon(struct ev_loop *loop); /* for this turn; cheap */
void ev_set_poll_max(struct ev_loop *loop, uint64_t max_ns);
void ev_poll_get_stats(const struct ev_loop *loop, struct ev_poll_stats *st);

#endif
