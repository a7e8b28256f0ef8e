/* claim.h - a local disk opened read-write has one writer (issue 15:
 * nothing is ever served from the wrong disk).
 *
 * dev_file_open_flags(DEV_OPEN_CLAIM) claims the disk at open, and the
 * claim lasts as long as the device: a block device is opened with O_EXCL,
 * so the kernel refuses it while it is mounted or opened exclusively by
 * anyone else (another dst, mkfs, a RAID or device mapper), and refuses
 * them in turn; a regular file gets an OFD write lock over the whole file,
 * which belongs to the open file description, so two opens conflict even
 * inside one process, and it goes with the last close, kill -9 included.
 * Both are taken once at open and cost nothing on the IO path.
 *
 * When the claim fails, the reason names the holder: the dst export or
 * storage (and node) of our state dir that uses the disk, else the process
 * holding the file's lock, else the mount point, else "another process".
 */
#ifndef DST_DEV_CLAIM_H
#define DST_DEV_CLAIM_H

#include <stddef.h>
#include <sys/stat.h>

/* Lock the regular file open read-write on fd (st its fstat) for us alone.
 * 0; -1 with errno EBUSY and the reason in err when someone holds it: "PATH:
 * in use by dstd 4242 (export e1)"; 1 with the reason in err when this file
 * system takes no locks (NFS without its lock manager: ENOLCK), so that
 * the caller may go on without the claim. */
int claim_file(int fd, const char *path, const struct stat *st, char *err, size_t errlen);

/* An exclusive open (O_EXCL) of the block device path failed with EBUSY:
 * the reason into err, "PATH: in use by ..." or "PATH: in use: mounted on
 * /mnt". */
void claim_busy_bdev(const char *path, char *err, size_t errlen);

#endif
