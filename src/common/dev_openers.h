/* dev_openers.h - which processes have a device node open, from /proc.
 *
 * `dst stop` and `dst detach` must not take a block device (loop, kernel
 * NBD, ublk) away from under a process that has it open (fio, dd, a VM):
 * the kernel would fail that process's IO. Mounts and holders show in
 * mountinfo and sysfs; a plain open() shows only in /proc/PID/fd. Like
 * proc.h, this walks every process's open files: for refusals only, never
 * on the IO path, and what /proc hides from us is not found.
 */
#ifndef DST_DEV_OPENERS_H
#define DST_DEV_OPENERS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* The processes (each once, up to max of them into pids) with an open fd on
 * the device node rdev: a block device when block, else a character device.
 * skip (0: none) is left out, as is the caller itself. Returns how many
 * were found, which may be more than max. */
size_t dev_openers(dev_t rdev, bool block, pid_t skip, pid_t *pids, size_t max);

#endif
