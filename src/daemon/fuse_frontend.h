/* fuse_frontend.h - a storage as one regular file, served over FUSE.
 *
 * The file at PATH reads and writes the storage's bytes (direct IO: no page
 * cache in between), fsync flushes every node that took writes, fallocate
 * punches holes and zeroes ranges. `losetup` turns it into /dev/loopN, which
 * can carry a filesystem. How it is built is in fuse_frontend.c.
 */
#ifndef DST_DAEMON_FUSE_FRONTEND_H
#define DST_DAEMON_FUSE_FRONTEND_H

#include <stddef.h>

#include "common/strbuf.h"

struct ev_loop;
struct dev;
struct fuse_frontend;
struct nbd_server_stats;

/* Mount the FUSE file for storage name at path (see fuse_path.h for which
 * paths are accepted). NULL with a one-line reason in err. */
struct fuse_frontend *fuse_frontend_new(struct ev_loop *loop, struct dev *dev, const char *name,
					const char *path, char *err, size_t errlen);

/* The canonical path it is mounted at. */
const char *fuse_frontend_path(const struct fuse_frontend *ff);

/* Stop taking requests, answer those in flight, unmount, then done(arg). */
void fuse_frontend_stop(struct fuse_frontend *ff, void (*done)(void *arg), void *arg);

/* Unmount if still mounted and free. Call with no request in flight (after
 * stop, or before the loop ever ran). */
void fuse_frontend_free(struct fuse_frontend *ff);

/* Add the file's IO to st (the storage's totals are its NBD server's and
 * its FUSE file's): requests by type, bytes, errors, in flight, latency. */
void fuse_frontend_add_stats(const struct fuse_frontend *ff, struct nbd_server_stats *st);

/* NAME/fuse and NAME/fuse_file/... attributes. */
void fuse_frontend_show(struct fuse_frontend *ff, struct strbuf *out, const char *name);

#endif
