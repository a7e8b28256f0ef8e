/* loopdev.h - loop devices over a storage's FUSE file.
 *
 * `dst attach` runs losetup and records the device it got in NAME.loop in
 * the state dir; `dst detach`, `dst stop` and `dst show` read it back. A
 * record is only trusted as far as the kernel confirms it: the loop device
 * must still be backed by the FUSE file, and by the file of the mount that is
 * there now (a daemon killed with -9 leaves its loop device bound to the dead
 * mount's file: "stale"). So dst never touches a loop device someone else set
 * up since.
 */
#ifndef DST_LOOPDEV_H
#define DST_LOOPDEV_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

enum loop_state {
	LOOP_NONE,  /* not set up, or over another file */
	LOOP_LIVE,  /* over the FUSE file mounted at the path now */
	LOOP_STALE, /* over an earlier mount at the path, now dead or detached */
};

/* The backing file of loop device dev ("/dev/loop3"), from sysfs. 0, or
 * -errno (-ENXIO: the device is not set up). */
int loop_backing_file(const char *dev, char *file, size_t len);

/* The st_dev of the file loop device dev is backed by (LOOP_GET_STATUS64).
 * The kernel stats the file for it: never call this from the daemon that
 * serves the file (it would wait for itself). -ENOTCONN for the file of a
 * dead FUSE mount. */
int loop_file_dev(const char *dev, dev_t *file_dev);

/* NAME.loop: the loop device `dst attach` set up, and the st_dev of the FUSE
 * file it was set up over. */
struct loop_record {
	char dev[32];
	dev_t file_dev;
};

/* What loop device dev is to the storage whose FUSE file is mounted at
 * live_path (canonical; NULL if the storage is not running):
 *  - LOOP_LIVE if it is backed by live_path (a detached mount's file shows
 *    as "/" in sysfs, so this is the file mounted there now);
 *  - with may_stat, LOOP_STALE if it is backed by the file recorded in
 *    file_dev, or by the file of a dead FUSE mount (which cannot be stat'ed
 *    any more): a daemon killed with -9 left it;
 *  - LOOP_NONE otherwise (not set up, or over something else). */
enum loop_state loop_check(const char *dev, dev_t file_dev, const char *live_path, bool may_stat);

/* Loop devices over the FUSE file mounted at fuse_path now: up to max names
 * "/dev/loopN" into out; returns how many there are. */
size_t loop_devices_of(const char *fuse_path, char (*out)[32], size_t max);

/* NAME.loop, whatever state its device is in now (ask loop_check). */
bool loop_record_get(const char *name, struct loop_record *rec);
/* Write NAME.loop (atomically). 0 or -errno with a reason. */
int loop_record_set(const char *name, const struct loop_record *rec, char *err, size_t errlen);
void loop_record_clear(const char *name);

#endif
