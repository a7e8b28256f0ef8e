/* ublk_frontend.h - a storage as the kernel's ublk block device /dev/ublkbN.
 *
 * Requests reach this daemon through io_uring (ublk_queue.h) with no FUSE
 * file, loop device or socket in between, on several queues. The device is
 * made with user recovery: when the daemon dies (kill -9, a crash, an
 * upgrade) the device stays and its IO waits; the daemon that starts next
 * for the same storage takes it back, and the requests the dead one had
 * taken are sent again. How and why in ublk_frontend.c.
 */
#ifndef DST_DAEMON_UBLK_FRONTEND_H
#define DST_DAEMON_UBLK_FRONTEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/ublk_limits.h"

struct dev;
struct ev_loop;
struct nbd_server_stats;
struct strbuf;
struct ublk_frontend;

#define UBLK_ID_AUTO UINT32_MAX
/* Online CPUs, at most 4: one queue per CPU submitting. */
unsigned ublk_default_queues(void);

/* Parse the config's ublk (auto or an id), ublk-queues, ublk-depth values
 * (NULL: the default). 0, or -1 with a reason. */
int ublk_parse_id(const char *v, uint32_t *id, char *err, size_t errlen);
int ublk_parse_queues(const char *v, unsigned *n, char *err, size_t errlen);
int ublk_parse_depth(const char *v, unsigned *n, char *err, size_t errlen);
/* All three, and queues x depth within UBLK_MAX_REQUESTS. */
int ublk_parse_conf(const char *id_v, const char *queues_v, const char *depth_v, uint32_t *id,
		    unsigned *queues, unsigned *depth, char *err, size_t errlen);

/* Serve dev as ublk device id (UBLK_ID_AUTO: the one this storage had, or
 * any free one) for storage name. A device left by a dead daemon of this
 * storage is taken back; a stale one that never started is deleted and
 * made again. ready(arg, u, NULL) runs from the loop once /dev/ublkbN is
 * there, or ready(arg, u, reason) if it could not be (the kernel's devices
 * are then as they were; free u, but not from inside ready). NULL with a
 * one-line reason if it failed at once (nothing changed). */
typedef void (*ublk_ready_fn)(void *arg, struct ublk_frontend *u, const char *err);
struct ublk_frontend *ublk_frontend_start(struct ev_loop *loop, struct dev *dev, const char *name,
					  uint32_t id, unsigned queues, unsigned depth,
					  ublk_ready_fn ready, void *arg, char *err, size_t errlen);

/* A storage started without ublk: if a ublk device of its (left by a
 * daemon that died) is still there, say so in the log, since IO on it
 * waits until the storage is started with ublk again. Quiet where there is
 * no ublk (or no right to ask). */
void ublk_warn_stale(struct ev_loop *loop, const char *name);

/* Stop the device (its requests in flight are answered first; what is
 * still open on it then fails), delete it, then done(arg). */
void ublk_frontend_stop(struct ublk_frontend *u, void (*done)(void *arg), void *arg);

/* Free. A device still running is left to the kernel, quiesced, for the
 * next daemon to take back (as if this one had died). */
void ublk_frontend_free(struct ublk_frontend *u);

/* /dev/ublkbN */
const char *ublk_frontend_path(const struct ublk_frontend *u);

void ublk_frontend_add_stats(const struct ublk_frontend *u, struct nbd_server_stats *st);
/* NAME/ublk_device, NAME/ublk_id, NAME/ublk_queues, ... */
void ublk_frontend_show(const struct ublk_frontend *u, struct strbuf *out, const char *name);

#endif
