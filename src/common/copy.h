/* copy.h - copying into memory that nobody will read soon. */
#ifndef DST_COPY_H
#define DST_COPY_H

#include <stddef.h>

/* memcpy for a destination that is cold and will stay so (a write landing
 * in a RAM disk's chunks). On x86-64 large copies use non-temporal stores:
 * no read-for-ownership of each destination line and no eviction of the
 * hot source, which measured about twice as fast as memcpy into cold
 * memory. Ends with a store fence, so the data is visible to whichever
 * thread is told about it next. Any alignment and length. */
void copy_to_cold(void *dst, const void *src, size_t n);

#endif
