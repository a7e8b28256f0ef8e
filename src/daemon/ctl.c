/* ctl.c - control socket server (see ctl.h). Only the daemon's own user (or
 * root) may talk to it: the socket is 0600 and peers are checked with
 * SO_PEERCRED as well, in case the state dir is shared. With --ctl-group,
 * members of that group too: the socket is 0660 and the peer's groups
 * (SO_PEERGROUPS) are checked. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/accept_guard.h"
#include "common/ev.h"
#include "common/log.h"
#include "common/util.h"
#include "ctl.h"
#include "ctl_line.h"

/* A client has this long to send its whole line, and a stalled reader this
 * long to take its answer: an idle connection must not hold one of the few
 * slots (the loop itself never waits on anyone: every socket is
 * non-blocking). */
#define CTL_LINE_TIMEOUT_NS  (5ull * 1000000000)
#define CTL_WRITE_TIMEOUT_NS (30ull * 1000000000)

struct ctl {
	struct ev_loop *loop;
	struct ev_io w;
	struct accept_guard guard;
	unsigned nreqs;
	bool full_logged; /* "too many" said once until the count drops */
	char *path;
	ctl_handler fn;
	void *arg;
	struct ctl_req *reqs;
	bool group_ok; /* members of group may talk to us too */
	gid_t group;
};

struct ctl_req {
	struct ctl *ctl;
	struct ev_io w;
	struct ev_timer timer; /* line not yet whole, or answer not yet taken */
	char line[CTL_MAX_LINE];
	size_t got;
	bool answered;
	struct strbuf out;
	size_t sent;
	struct ctl_req *next;
};

static void req_free(struct ctl_req *r)
{
	struct ctl *ctl = r->ctl;
	for (struct ctl_req **pp = &ctl->reqs; *pp; pp = &(*pp)->next) {
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	}
	if (r->w.fd >= 0) {
		ev_io_stop(ctl->loop, &r->w);
		close(r->w.fd);
	}
	ev_timer_stop(ctl->loop, &r->timer);
	sb_free(&r->out);
	free(r);
	ctl->nreqs--;
	if (ctl->nreqs < CTL_MAX_CONNS / 2)
		ctl->full_logged = false;
}

static void req_on_timer(struct ev_timer *t)
{
	struct ctl_req *r = container_of(t, struct ctl_req, timer);
	log_debug("control: closing a connection that %s",
		  r->answered ? "does not read its answer" : "did not send its line in time");
	req_free(r);
}

static void req_write(struct ctl_req *r)
{
	while (r->sent < r->out.len) {
		ssize_t n = write(r->w.fd, r->out.s + r->sent, r->out.len - r->sent);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR) {
				ev_io_set(r->ctl->loop, &r->w, EPOLLOUT);
				if (!r->timer.armed)
					ev_timer_start(r->ctl->loop, &r->timer,
						       CTL_WRITE_TIMEOUT_NS);
				return;
			}
			break;
		}
		r->sent += (size_t)n;
	}
	req_free(r);
}

static void req_on_event(struct ev_io *w, uint32_t events)
{
	struct ctl_req *r = container_of(w, struct ctl_req, w);
	if (r->answered) {
		req_write(r);
		return;
	}
	ssize_t n = read(w->fd, r->line + r->got, sizeof(r->line) - 1 - r->got);
	if (n <= 0) {
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		req_free(r);
		return;
	}
	r->got += (size_t)n;
	char *argv[CTL_MAX_ARGS + 1];
	int argc;
	const char *why;
	enum ctl_line_status st =
	    ctl_line_parse(r->line, r->got, sizeof(r->line), &argc, argv, &why);
	if (st == CTL_LINE_MORE)
		return;
	/* Wait for nothing more from the client while the handler works
	 * (which may take as long as it must: no timer then). */
	ev_io_set(r->ctl->loop, &r->w, 0);
	ev_timer_stop(r->ctl->loop, &r->timer);
	if (st == CTL_LINE_ERROR) {
		ctl_reply_error(r, "%s", why);
		return;
	}
	log_debug("control: %s", argv[0]);
	r->ctl->fn(r->ctl->arg, r, argc, argv);
}

#ifndef SO_PEERGROUPS
#define SO_PEERGROUPS 59 /* Linux 4.13; older headers lack it */
#endif

/* Is the peer on fd (primary group gid) a member of group? */
static bool peer_in_group(int fd, gid_t gid, gid_t group)
{
	if (gid == group)
		return true;
	gid_t groups[256];
	socklen_t len = sizeof(groups);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0)
		return false; /* more than 256 groups, or an old kernel: no */
	for (size_t i = 0; i < len / sizeof(gid_t); i++)
		if (groups[i] == group)
			return true;
	return false;
}

/* Past the cap a client gets one line and is closed: a best-effort write to
 * a fresh socket, whose buffer takes a line without blocking. */
static void refuse_full(struct ctl *ctl, int fd)
{
	static const char msg[] = "error: too many control connections; try again\n";
	ssize_t n = write(fd, msg, sizeof(msg) - 1);
	/* Take what the client already sent: closing a Unix socket with
	 * unread data resets it, and the client would not see our line. */
	char sink[CTL_MAX_LINE];
	for (int i = 0; i < 4 && (n = recv(fd, sink, sizeof(sink), MSG_DONTWAIT)) > 0; i++)
		;
	close(fd);
	if (!ctl->full_logged) {
		log_warn("control: %u connections open (the most allowed); closing new ones "
			 "until some end",
			 ctl->nreqs);
		ctl->full_logged = true;
	}
}

static void on_accept(struct ev_io *w, uint32_t events)
{
	struct ctl *ctl = container_of(w, struct ctl, w);
	/* A few at a time, so that a flood cannot starve the other sockets. */
	for (int i = 0; i < 16; i++) {
		int fd = accept_guard_accept(&ctl->guard, w, NULL, NULL);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_warn("control socket %s: accept: %s", ctl->path,
					 strerror(errno));
			return;
		}
		struct ucred cred;
		socklen_t len = sizeof(cred);
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
		    (cred.uid != 0 && cred.uid != geteuid() &&
		     !(ctl->group_ok && peer_in_group(fd, cred.gid, ctl->group)))) {
			log_warn("control: refused uid %d", (int)cred.uid);
			close(fd);
			continue;
		}
		if (ctl->nreqs >= CTL_MAX_CONNS) {
			refuse_full(ctl, fd);
			continue;
		}
		struct ctl_req *r = xcalloc(1, sizeof(*r));
		r->ctl = ctl;
		r->w.fn = req_on_event;
		r->timer.fn = req_on_timer;
		sb_init(&r->out);
		r->next = ctl->reqs;
		ctl->reqs = r;
		ctl->nreqs++;
		ev_io_start(ctl->loop, &r->w, fd, EPOLLIN);
		ev_timer_start(ctl->loop, &r->timer, CTL_LINE_TIMEOUT_NS);
	}
}

struct ctl *ctl_start(struct ev_loop *loop, const char *path, ctl_handler fn, void *arg, char *err,
		      size_t errlen)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "control socket %s: path too long", path);
		return NULL;
	}
	strcpy(sun.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "control socket: %s", strerror(errno));
		return NULL;
	}
	/* We hold the pid-file lock, so any socket left here is stale. */
	unlink(path);
	mode_t old = umask(0077);
	int rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (rc < 0 || listen(fd, 16) < 0) {
		snprintf(err, errlen, "control socket %s: %s", path, strerror(errno));
		close(fd);
		return NULL;
	}
	chmod(path, 0600);
	struct ctl *ctl = xcalloc(1, sizeof(*ctl));
	ctl->loop = loop;
	ctl->path = xstrdup(path);
	ctl->fn = fn;
	ctl->arg = arg;
	ctl->w.fn = on_accept;
	char what[sizeof(sun.sun_path) + 20];
	snprintf(what, sizeof(what), "control socket %s", path);
	accept_guard_init(&ctl->guard, loop, what);
	ev_io_start(loop, &ctl->w, fd, EPOLLIN);
	return ctl;
}

int ctl_allow_group(struct ctl *ctl, gid_t gid, char *err, size_t errlen)
{
	if (chown(ctl->path, (uid_t)-1, gid) < 0 || chmod(ctl->path, 0660) < 0) {
		int e = errno;
		snprintf(err, errlen, "control socket %s: group %d: %s", ctl->path, (int)gid,
			 strerror(e));
		return -e;
	}
	ctl->group_ok = true;
	ctl->group = gid;
	return 0;
}

void ctl_stop(struct ctl *ctl)
{
	if (!ctl)
		return;
	while (ctl->reqs)
		req_free(ctl->reqs);
	accept_guard_stop(&ctl->guard);
	ev_io_stop(ctl->loop, &ctl->w);
	close(ctl->w.fd);
	unlink(ctl->path);
	free(ctl->path);
	free(ctl);
}

void ctl_reply(struct ctl_req *r, const char *body)
{
	r->answered = true;
	sb_add(&r->out, "ok\n", 3);
	if (body)
		sb_add(&r->out, body, strlen(body));
	req_write(r);
}

void ctl_reply_error(struct ctl_req *r, const char *fmt, ...)
{
	r->answered = true;
	sb_add(&r->out, "error: ", 7);
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	sb_add(&r->out, msg, strlen(msg));
	sb_add(&r->out, "\n", 1);
	req_write(r);
}
