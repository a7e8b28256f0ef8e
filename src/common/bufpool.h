/* bufpool.h - the bounded IO buffer pool: a buddy allocator over one region.
 *
 * The region is mapped and touched once at start-up, so the IO path never
 * calls malloc and never fails for lack of memory: when the pool is spent,
 * bufpool_alloc returns NULL and the caller applies backpressure (stops
 * reading from its client) until a buffer comes back.
 */
#ifndef DST_BUFPOOL_H
#define DST_BUFPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BUFPOOL_MIN_SHIFT 12 /* 4 KiB: smallest block */

struct bufpool {
	uint8_t *base;
	size_t size;	     /* bytes, a multiple of the largest block */
	unsigned max_order;  /* largest block is MIN << max_order */
	uint8_t *order_of;   /* per min block: order+1 if it heads an allocated block, else 0 */
	uint32_t *free_head; /* per order: first free block index, or UINT32_MAX */
	uint32_t *links;     /* per min block: next (even) / prev (odd) free indices */
	uint8_t *is_free;    /* per min block: order+1 if it heads a free block */
	size_t in_use;	     /* bytes handed out */
	size_t peak;
};

/* Set up a pool of `size` bytes whose largest block is `max_block` bytes
 * (both powers of two times 4 KiB; size a multiple of max_block).
 * Returns 0 or -errno. */
int bufpool_init(struct bufpool *bp, size_t size, size_t max_block);
void bufpool_fini(struct bufpool *bp);

/* A block of at least len bytes (len <= max_block), or NULL if none is free. */
void *bufpool_alloc(struct bufpool *bp, size_t len);
void bufpool_free(struct bufpool *bp, void *p);

/* Would an allocation of len bytes succeed right now? */
bool bufpool_can_alloc(const struct bufpool *bp, size_t len);

#endif
