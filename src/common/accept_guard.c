/* accept_guard.c - accept without spinning at the descriptor limit
 * (accept_guard.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "accept_guard.h"
#include "log.h"
#include "util.h"

/* How long a listener rests when no descriptor at all can be had. */
#define PAUSE_NS (250ull * 1000000)
/* A listener that flaps at the limit (a descriptor freed, taken, the limit
 * again) logs one episode in this long, not one per flap. */
#define QUIET_NS (10ull * 1000000000)

/* One spare for the whole process: the loop is single-threaded, and one is
 * enough to take one connection off a backlog at a time. */
static int spare = -1;

static void spare_open(void)
{
	if (spare < 0)
		spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static void on_pause_end(struct ev_timer *t)
{
	struct accept_guard *g = container_of(t, struct accept_guard, pause);
	spare_open();
	if (g->w && g->w->fd >= 0)
		ev_io_set(g->loop, g->w, g->events ? g->events : EPOLLIN);
}

void accept_guard_init(struct accept_guard *g, struct ev_loop *loop, const char *what)
{
	memset(g, 0, sizeof(*g));
	g->loop = loop;
	g->pause.fn = on_pause_end;
	snprintf(g->what, sizeof(g->what), "%s", what);
	spare_open();
}

static void episode_begin(struct accept_guard *g, int e)
{
	if (g->episode)
		return;
	g->episode = true;
	uint64_t now = ev_now_ns();
	g->logged = !g->last_log_ns || now - g->last_log_ns >= QUIET_NS;
	if (!g->logged)
		return;
	g->last_log_ns = now;
	g->dropped = 0;
	log_warn("%s: accept: %s; closing new connections until descriptors free up", g->what,
		 strerror(e));
}

int accept_guard_accept(struct accept_guard *g, struct ev_io *w, struct sockaddr *sa, socklen_t *sl)
{
	g->w = w;
	int fd = accept4(w->fd, sa, sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd >= 0) {
		if (g->episode && g->logged) {
			log_info("%s: accepting again (%llu connections closed at the "
				 "descriptor limit)",
				 g->what, (unsigned long long)g->dropped);
		}
		g->episode = false;
		return fd;
	}
	int e = errno;
	if (e != EMFILE && e != ENFILE && e != ENOBUFS && e != ENOMEM) {
		errno = e;
		return -1;
	}
	episode_begin(g, e);
	if (spare >= 0) {
		close(spare);
		spare = -1;
		int victim = accept4(w->fd, NULL, NULL, SOCK_CLOEXEC);
		if (victim >= 0) {
			close(victim);
			g->dropped++;
		}
		spare_open();
		if (victim >= 0 && spare >= 0) {
			errno = EAGAIN;
			return -1;
		}
	}
	/* No descriptor to be had at all: stop watching the listener for a
	 * while rather than be woken for it in a tight loop. */
	g->events = w->events ? w->events : EPOLLIN;
	ev_io_set(g->loop, w, 0);
	ev_timer_start(g->loop, &g->pause, PAUSE_NS);
	errno = EAGAIN;
	return -1;
}

void accept_guard_stop(struct accept_guard *g)
{
	ev_timer_stop(g->loop, &g->pause);
	g->w = NULL;
}
