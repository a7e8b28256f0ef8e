/* iov.h - small helpers over iovec lists: copy bytes into one at an
 * offset, and the part of one from an offset on. The server uses them to
 * receive write payloads straight into a device's memory. */
#ifndef DST_IOV_H
#define DST_IOV_H

#include <stddef.h>
#include <sys/uio.h>

/* Copy len bytes from src into the bytes of iov[0..cnt) starting at byte
 * `off` of the list; whatever does not fit is dropped. */
void iov_copy_in(const struct iovec *iov, unsigned cnt, size_t off, const void *src, size_t len);

/* The bytes of iov[0..cnt) from byte `from` to the end, as out[] (room for
 * cnt entries); returns how many entries (0 when nothing is left). */
int iov_tail(const struct iovec *iov, unsigned cnt, size_t from, struct iovec *out);

#endif
