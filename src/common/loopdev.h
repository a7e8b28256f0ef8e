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

/* The backing file of loop device dev ("/dev/loop3"), from sysfs, and the
 * st_dev of that file (from LOOP_GET_STATUS64). 0, or -errno (-ENXIO: the
 * device is not set up). */
int loop_status(const char *dev, char *file, size_t len, dev_t *file_dev);

/* NAME.loop: the loop device `dst attach` set up, and the st_dev of the FUSE
 * file it was set up over. A lazily detached mount's file has no path any
 * more (sysfs shows "/"), but the loop device keeps it, so its st_dev cannot
 * be reused: that is what recognises a stale loop device as ours. */
struct loop_record {
	char dev[32];
	dev_t file_dev;
};

/* What loop device dev is to the FUSE file at fuse_path (canonical);
 * file_dev is the st_dev it was set up over (0: unknown, LOOP_STALE is then
 * never answered). */
enum loop_state loop_check(const char *dev, dev_t file_dev, const char *fuse_path);

/* Loop devices over the FUSE file mounted at fuse_path now: up to max names
 * "/dev/loopN" into out; returns how many there are. */
size_t loop_devices_of(const char *fuse_path, char (*out)[32], size_t max);

/* NAME.loop, whatever state its device is in now (ask loop_check). */
bool loop_record_get(const char *name, struct loop_record *rec);
/* Write NAME.loop (atomically). 0 or -errno with a reason. */
int loop_record_set(const char *name, const struct loop_record *rec, char *err, size_t errlen);
void loop_record_clear(const char *name);

#endif
