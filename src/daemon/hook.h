/* hook.h - the --on-event program (config keys on-event, on-event-timeout):
 * run for every event (common/event.h), as mdadm --monitor --program and
 * DRBD's handlers are:
 *
 *   PROGRAM EVENT NAME [NODE]
 *
 * with DST_EVENT, DST_KIND, DST_NAME, DST_NODE, DST_NODE_SPEC, DST_DETAIL
 * and DST_STATE_DIR in its environment, stdin /dev/null, stdout and stderr
 * the daemon's log. It runs beside the event loop (posix_spawn, reaped
 * through a pidfd), one at a time, in the order the events came: the rest
 * wait in a bounded queue (what overflows is dropped and logged). One that
 * runs longer than the timeout is killed with its process group; a
 * non-zero exit is logged. */
#ifndef DST_HOOK_H
#define DST_HOOK_H

#include <stddef.h>

#include "common/event.h"

struct ev_loop;
struct conf;
struct hook;

#define HOOK_QUEUE_MAX	   64
#define HOOK_TIMEOUT_S_DEF 30

/* From the config: NULL with *err empty when there is no on-event key;
 * NULL with a reason on a bad on-event-timeout. */
struct hook *hook_new(struct ev_loop *loop, const struct conf *conf, char *err, size_t errlen);
/* An event_sink_fn: queue ev for the program. */
void hook_event(void *arg, const struct dst_event *ev);
/* A hook still running is left to finish (it is not waited for). */
void hook_free(struct hook *h);

#endif
