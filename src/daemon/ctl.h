/* ctl.h - the daemon's control socket (NAME.ctl, mode 0600).
 *
 * Protocol: the client sends one line "COMMAND [ARGS...]\n"; the daemon
 * answers "ok\n" or "error: MESSAGE\n", then any body, then closes. Replies
 * may come later than the request (a drain, a migration step), so a handler
 * gets a ctl_req it answers with ctl_reply() whenever it is ready.
 *
 * At most CTL_MAX_CONNS connections are open at once; past that a client
 * gets "error: too many control connections" and is closed. A client that
 * has not sent its whole line within 5 s is closed.
 */
#ifndef DST_DAEMON_CTL_H
#define DST_DAEMON_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/strbuf.h"

#define CTL_MAX_CONNS 32

struct ev_loop;
struct ctl;
struct ctl_req;

/* argv[0] is the command; argv is valid until the handler returns. */
typedef void (*ctl_handler)(void *arg, struct ctl_req *req, int argc, char **argv);

struct ctl *ctl_start(struct ev_loop *loop, const char *path, ctl_handler fn, void *arg, char *err,
		      size_t errlen);
void ctl_stop(struct ctl *ctl);
/* Let members of group gid in too (--ctl-group): the socket becomes group
 * gid, mode 0660, and peers in gid (primary or supplementary) are let in
 * besides root and our own user. 0, or -errno with a reason. */
int ctl_allow_group(struct ctl *ctl, gid_t gid, char *err, size_t errlen);

/* Answer: ok with body (may be NULL), or an error message. Frees req. */
void ctl_reply(struct ctl_req *req, const char *body);
void ctl_reply_error(struct ctl_req *req, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
