/* fuse_path.h - decide whether the FUSE frontend may mount over PATH.
 *
 * The rule (so that mounting never hides anybody's data):
 *  - PATH missing: create it, an empty regular file (mode 0600);
 *  - PATH an empty regular file: use it (dst's own mount point left from an
 *    earlier run, or one the user made with touch);
 *  - PATH a dead FUSE mount of dst ("Transport endpoint is not connected",
 *    left by a daemon that was killed): detach it lazily, then as above;
 *  - anything else is refused with the reason: a file with data in it, a
 *    directory, a device, a symlink, a live mount (dst's or not), another
 *    program's dead FUSE mount.
 * dst never deletes PATH: like a mount point directory it stays after stop.
 */
#ifndef DST_DAEMON_FUSE_PATH_H
#define DST_DAEMON_FUSE_PATH_H

#include <stddef.h>

/* Check and prepare path. On success 0 and the canonical path (symlinks in
 * its directory resolved, as mountinfo shows it) in canon; else -errno with
 * a one-line reason naming the path. */
int fuse_path_prepare(const char *path, char *canon, size_t canon_len, char *err, size_t errlen);

#endif
