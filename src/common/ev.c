/* ev.c - epoll event loop with a sorted timer list and a deferred-work queue.
 *
 * Timers are few (per connection or per node, not per request), so a sorted
 * singly linked list beats a heap in simplicity. Deferred work runs after each
 * batch of epoll events: that is where replies get flushed in one writev and
 * io_uring submissions get pushed in one syscall.
 *
 * A loop asked to (ev_poll_soon) polls for a short while before it sleeps:
 * see "polling before sleeping" below for why and how long.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/resource.h>
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
	/* polling before sleeping: asked for this turn; the current window;
	 * time spent polling and working (decaying), for the budget; when the
	 * loop last woke; counters */
	bool poll_armed;
	uint64_t poll_window_ns, poll_holdoff_until_ns, poll_last_preempt_ns;
	long poll_nivcsw; /* the loop thread's involuntary switches, last seen */
	uint64_t poll_spent_ns, poll_busy_ns, busy_since_ns;
	struct ev_poll_stats poll;
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

/* ---- polling before sleeping ----
 *
 * Over loopback, a client's send runs the receive path of the server's
 * socket in the client's own context, the server's wake-up included: when
 * the server sleeps in epoll_wait, the client pays for waking it, a
 * wake-up of another, idle CPU (an IPI; in a VM an exit as well) on every
 * request that finds the server asleep. A server that keeps up with its
 * client easily sleeps between requests, so the faster it is, the more each
 * request costs its client: fio (4K QD32) against `dst export mem:` had to
 * wake dstd on about a fifth of its requests, against nbdkit (busier) on a
 * tenth (bench/client_cost.sh, bench/RESULTS.md).
 *
 * So a loop asked to (the NBD server asks whenever it queues a reply: the
 * client's next request is then likely on its way) first looks for events
 * without sleeping, for a while. The window adapts: a sleep that ends
 * within the bound after a poll that found nothing makes the next window
 * longer (polling a bit longer would have caught that event), a longer
 * sleep makes it shorter, down to no polling at all (a client that only
 * trickles requests costs nothing). Polling takes at most 1/POLL_BUDGET_DIV
 * of the time spent working (both decay), so that it never adds more than
 * that to the server's CPU per request.
 *
 * And polling only uses a CPU nobody else wants: a poll that finds itself
 * descheduled for a while (two of its clock readings POLL_PREEMPTED_NS
 * apart, and the thread's count of involuntary context switches moved: not
 * an interrupt, another task was given the CPU) stops there; the second
 * such poll within POLL_CONTENDED_NS means the CPU is wanted (a kernel
 * thread or a timer now and then is not: on an idle machine here that
 * happened ~3 times a second, hardly ever twice within 10 ms), and the loop
 * does not poll again for POLL_HOLDOFF_NS. Where processes outnumber CPUs
 * (a storage, its node exports and the client on two CPUs), polling would
 * only take time from the others. */
#define POLL_START_NS	  (8u * 1000)
#define POLL_BUDGET_DIV	  2
#define POLL_DECAY_NS	  (100u * 1000 * 1000)
#define POLL_PREEMPTED_NS (20u * 1000)
#define POLL_CONTENDED_NS (10u * 1000 * 1000)
#define POLL_HOLDOFF_NS	  (100u * 1000 * 1000)

void ev_poll_soon(struct ev_loop *loop)
{
	loop->poll_armed = true;
}

void ev_set_poll_max(struct ev_loop *loop, uint64_t ns)
{
	loop->poll.max_ns = ns;
	if (loop->poll_window_ns > ns)
		loop->poll_window_ns = ns;
}

void ev_poll_get_stats(const struct ev_loop *loop, struct ev_poll_stats *st)
{
	*st = loop->poll;
}

/* The loop's thread was switched out for another task since last asked. */
static bool poll_descheduled(struct ev_loop *loop)
{
	struct rusage ru;
	if (getrusage(RUSAGE_THREAD, &ru) < 0)
		return true;
	bool moved = ru.ru_nivcsw != loop->poll_nivcsw;
	loop->poll_nivcsw = ru.ru_nivcsw;
	return moved;
}

/* Poll within the window and the budget. Returns epoll_wait's result (0:
 * nothing came); *sleep_from is when the sleep that follows begins. */
static int poll_before_sleep(struct ev_loop *loop, struct epoll_event *evs, uint64_t *sleep_from)
{
	uint64_t now = ev_now_ns();
	loop->poll_busy_ns += now - loop->busy_since_ns;
	if (loop->poll_busy_ns > POLL_DECAY_NS) {
		loop->poll_busy_ns /= 2;
		loop->poll_spent_ns /= 2;
	}
	int n = 0;
	if (loop->poll_window_ns && now >= loop->poll_holdoff_until_ns &&
	    loop->poll_spent_ns * POLL_BUDGET_DIV <= loop->poll_busy_ns) {
		uint64_t end = now + loop->poll_window_ns, t = now, prev;
		bool preempted;
		do {
			prev = t;
			n = epoll_wait(loop->epfd, evs, EV_BATCH, 0);
			t = ev_now_ns();
			preempted = t - prev > POLL_PREEMPTED_NS && poll_descheduled(loop);
		} while (n == 0 && t < end && !preempted);
		loop->poll_spent_ns += t - now;
		loop->poll.ns += t - now;
		loop->poll.polls++;
		if (n > 0)
			loop->poll.hits++;
		if (preempted) {
			loop->poll.preempted++;
			if (t - loop->poll_last_preempt_ns < POLL_CONTENDED_NS) {
				loop->poll.holdoffs++;
				loop->poll_holdoff_until_ns = t + POLL_HOLDOFF_NS;
			}
			loop->poll_last_preempt_ns = t;
		}
		now = t;
	}
	*sleep_from = now;
	return n;
}

/* A sleep of slept_ns followed a poll that found nothing (or no poll). */
static void poll_adapt(struct ev_loop *loop, uint64_t slept_ns)
{
	uint64_t w = loop->poll_window_ns;
	if (slept_ns <= loop->poll.max_ns)
		w = w ? MIN(w * 2, loop->poll.max_ns) : MIN(POLL_START_NS, loop->poll.max_ns);
	else
		w = w / 2 >= POLL_START_NS / 2 ? w / 2 : 0;
	loop->poll_window_ns = w;
}

int ev_run(struct ev_loop *loop)
{
	struct epoll_event evs[EV_BATCH];
	loop->stop = false;
	loop->busy_since_ns = ev_now_ns();
	if (loop->poll.max_ns)
		poll_descheduled(loop); /* the count to compare with */
	while (!loop->stop) {
		run_deferred(loop);
		if (loop->stop)
			break;
		int timeout = next_timeout_ms(loop);
		bool poll = loop->poll_armed && loop->poll.max_ns && timeout != 0;
		loop->poll_armed = false;
		uint64_t sleep_from = 0;
		int n = poll ? poll_before_sleep(loop, evs, &sleep_from) : 0;
		if (n == 0) {
			n = epoll_wait(loop->epfd, evs, EV_BATCH, timeout);
			if (poll)
				poll_adapt(loop, ev_now_ns() - sleep_from);
		}
		if (loop->poll.max_ns)
			loop->busy_since_ns = ev_now_ns();
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
