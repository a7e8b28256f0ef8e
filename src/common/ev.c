/* ev.c - epoll event loop with a sorted timer list and a deferred-work queue.
 *
 * Timers are few (per connection or per node, not per request), so a sorted
 * singly linked list beats a heap in simplicity. Deferred work runs after each
 * batch of epoll events: that is where replies get flushed in one writev and
 * io_uring submissions get pushed in one syscall.
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "ev.h"
#include "util.h"

#define EV_BATCH 128

struct ev_loop {
	int epfd;
	bool stop;
	struct ev_timer *timers; /* sorted by when_ns */
	struct ev_deferred *defer_head, *defer_tail;
};

uint64_t ev_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

struct ev_loop *ev_loop_new(void)
{
	struct ev_loop *loop = xcalloc(1, sizeof(*loop));
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0) {
		free(loop);
		return NULL;
	}
	return loop;
}

void ev_loop_free(struct ev_loop *loop)
{
	if (!loop)
		return;
	close(loop->epfd);
	free(loop);
}

int ev_io_start(struct ev_loop *loop, struct ev_io *w, int fd, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = w};
	w->fd = fd;
	w->events = events;
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -errno;
	return 0;
}

int ev_io_set(struct ev_loop *loop, struct ev_io *w, uint32_t events)
{
	if (w->events == events)
		return 0;
	struct epoll_event ev = {.events = events, .data.ptr = w};
	if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, w->fd, &ev) < 0)
		return -errno;
	w->events = events;
	return 0;
}

void ev_io_stop(struct ev_loop *loop, struct ev_io *w)
{
	if (w->fd >= 0)
		epoll_ctl(loop->epfd, EPOLL_CTL_DEL, w->fd, NULL);
	w->events = 0;
}

void ev_timer_stop(struct ev_loop *loop, struct ev_timer *t)
{
	if (!t->armed)
		return;
	for (struct ev_timer **pp = &loop->timers; *pp; pp = &(*pp)->next) {
		if (*pp == t) {
			*pp = t->next;
			break;
		}
	}
	t->armed = false;
	t->next = NULL;
}

void ev_timer_start(struct ev_loop *loop, struct ev_timer *t, uint64_t delay_ns)
{
	ev_timer_stop(loop, t);
	t->when_ns = ev_now_ns() + delay_ns;
	struct ev_timer **pp = &loop->timers;
	while (*pp && (*pp)->when_ns <= t->when_ns)
		pp = &(*pp)->next;
	t->next = *pp;
	*pp = t;
	t->armed = true;
}

void ev_defer(struct ev_loop *loop, struct ev_deferred *d)
{
	if (d->queued)
		return;
	d->queued = true;
	d->next = NULL;
	if (loop->defer_tail)
		loop->defer_tail->next = d;
	else
		loop->defer_head = d;
	loop->defer_tail = d;
}

void ev_defer_cancel(struct ev_loop *loop, struct ev_deferred *d)
{
	if (!d->queued)
		return;
	struct ev_deferred *prev = NULL;
	for (struct ev_deferred *p = loop->defer_head; p; prev = p, p = p->next) {
		if (p != d)
			continue;
		if (prev)
			prev->next = d->next;
		else
			loop->defer_head = d->next;
		if (loop->defer_tail == d)
			loop->defer_tail = prev;
		break;
	}
	d->queued = false;
	d->next = NULL;
}

void ev_loop_break(struct ev_loop *loop)
{
	loop->stop = true;
}

/* Run deferred work until none is left; work may queue more work. */
static void run_deferred(struct ev_loop *loop)
{
	while (loop->defer_head) {
		struct ev_deferred *d = loop->defer_head;
		loop->defer_head = d->next;
		if (!loop->defer_head)
			loop->defer_tail = NULL;
		d->queued = false;
		d->next = NULL;
		d->fn(d);
	}
}

static void run_timers(struct ev_loop *loop)
{
	uint64_t now = ev_now_ns();
	while (loop->timers && loop->timers->when_ns <= now) {
		struct ev_timer *t = loop->timers;
		loop->timers = t->next;
		t->next = NULL;
		t->armed = false;
		t->fn(t);
	}
}

static int next_timeout_ms(struct ev_loop *loop)
{
	if (loop->defer_head)
		return 0;
	if (!loop->timers)
		return -1;
	uint64_t now = ev_now_ns();
	if (loop->timers->when_ns <= now)
		return 0;
	/* Round up so we never wake just before the deadline and spin. */
	uint64_t ms = (loop->timers->when_ns - now + 999999) / 1000000;
	return ms > 60000 ? 60000 : (int)ms;
}

int ev_run(struct ev_loop *loop)
{
	struct epoll_event evs[EV_BATCH];
	loop->stop = false;
	while (!loop->stop) {
		run_deferred(loop);
		if (loop->stop)
			break;
		int n = epoll_wait(loop->epfd, evs, EV_BATCH, next_timeout_ms(loop));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (int i = 0; i < n; i++) {
			struct ev_io *w = evs[i].data.ptr;
			w->fn(w, evs[i].events);
		}
		run_timers(loop);
	}
	return 0;
}
