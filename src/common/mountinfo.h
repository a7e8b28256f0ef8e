/* mountinfo.h - what is mounted where, from /proc/self/mountinfo.
 *
 * The FUSE frontend needs it to tell its own stale mount (left by a killed
 * daemon) from someone else's, and `dst stop` / `dst detach` to refuse while
 * the storage's loop device or FUSE file is mounted somewhere.
 */
#ifndef DST_MOUNTINFO_H
#define DST_MOUNTINFO_H

#include <limits.h>
#include <stdbool.h>

/* The type and source prefix of dst's own FUSE mounts ("fuse.dst", "dst:NAME"):
 * how a mount left by a killed daemon is known to be dst's. */
#define DST_FUSE_SUBTYPE "dst"
#define DST_FUSE_FSTYPE	 "fuse." DST_FUSE_SUBTYPE

struct mount_entry {
	unsigned major, minor; /* st_dev of the mounted filesystem */
	char mnt[PATH_MAX];    /* mount point, unescaped */
	char fstype[64];       /* "ext4", "fuse.dst" */
	char source[PATH_MAX]; /* "/dev/loop0", "dst:NAME" */
};

/* Call fn for each mount, in mount order; stop early when fn returns
 * non-zero and return that. 0 after the last one, -errno if the table
 * cannot be read. */
int mountinfo_each(int (*fn)(const struct mount_entry *m, void *arg), void *arg);

/* The topmost mount whose mount point is path (absolute, canonical). */
bool mountinfo_at(const char *path, struct mount_entry *out);

/* The first mount of the filesystem major:minor whose mount point is not
 * skip_mnt (may be NULL). */
bool mountinfo_of_dev(unsigned major, unsigned minor, const char *skip_mnt,
		      struct mount_entry *out);

/* Split one mountinfo line (modified) into m; false if it is not one. */
bool mountinfo_parse_line(char *line, struct mount_entry *m);

/* Unescape the octal escapes (\040 for a space...) mountinfo uses, in place. */
void mountinfo_unescape(char *s);

#endif
