/* bufpool.c - buddy allocator for IO buffers (see bufpool.h for why).
 *
 * Blocks are indexed in units of the 4 KiB minimum block. Free lists are
 * doubly linked through two side arrays, so a buddy can be unlinked in O(1)
 * when it merges; nothing is stored inside the buffers themselves.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "bufpool.h"

#define NIL UINT32_MAX

static size_t nblocks(const struct bufpool *bp)
{
	return bp->size >> BUFPOOL_MIN_SHIFT;
}

static void list_push(struct bufpool *bp, unsigned order, uint32_t b)
{
	uint32_t head = bp->free_head[order];
	bp->links[2 * b] = head;
	bp->links[2 * b + 1] = NIL;
	if (head != NIL)
		bp->links[2 * head + 1] = b;
	bp->free_head[order] = b;
	bp->is_free[b] = (uint8_t)(order + 1);
}

static void list_del(struct bufpool *bp, unsigned order, uint32_t b)
{
	uint32_t next = bp->links[2 * b], prev = bp->links[2 * b + 1];
	if (prev != NIL)
		bp->links[2 * prev] = next;
	else
		bp->free_head[order] = next;
	if (next != NIL)
		bp->links[2 * next + 1] = prev;
	bp->is_free[b] = 0;
}

static bool is_pow2(size_t x)
{
	return x && !(x & (x - 1));
}

int bufpool_init(struct bufpool *bp, size_t size, size_t max_block)
{
	memset(bp, 0, sizeof(*bp));
	size_t min = (size_t)1 << BUFPOOL_MIN_SHIFT;
	if (!is_pow2(max_block) || max_block < min || size < max_block || size % max_block)
		return -EINVAL;
	unsigned order = 0;
	while ((min << order) < max_block)
		order++;
	bp->max_order = order;
	bp->size = size;
	/* MAP_POPULATE: the memory is really ours from the start. */
	bp->base = mmap(NULL, size, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (bp->base == MAP_FAILED) {
		bp->base = NULL;
		return -ENOMEM;
	}
	size_t n = nblocks(bp);
	bp->order_of = calloc(n, 1);
	bp->is_free = calloc(n, 1);
	bp->links = calloc(2 * n, sizeof(uint32_t));
	bp->free_head = calloc(order + 1, sizeof(uint32_t));
	if (!bp->order_of || !bp->is_free || !bp->links || !bp->free_head) {
		bufpool_fini(bp);
		return -ENOMEM;
	}
	for (unsigned o = 0; o <= order; o++)
		bp->free_head[o] = NIL;
	size_t per_max = (size_t)1 << order;
	for (size_t b = n; b >= per_max; b -= per_max)
		list_push(bp, order, (uint32_t)(b - per_max));
	return 0;
}

void bufpool_fini(struct bufpool *bp)
{
	if (bp->base)
		munmap(bp->base, bp->size);
	free(bp->order_of);
	free(bp->is_free);
	free(bp->links);
	free(bp->free_head);
	memset(bp, 0, sizeof(*bp));
}

static int order_for(const struct bufpool *bp, size_t len)
{
	unsigned o = 0;
	while (((size_t)1 << (BUFPOOL_MIN_SHIFT + o)) < len) {
		if (++o > bp->max_order)
			return -1;
	}
	return (int)o;
}

bool bufpool_can_alloc(const struct bufpool *bp, size_t len)
{
	int want = order_for(bp, len ? len : 1);
	if (want < 0)
		return false;
	for (unsigned o = (unsigned)want; o <= bp->max_order; o++)
		if (bp->free_head[o] != NIL)
			return true;
	return false;
}

void *bufpool_alloc(struct bufpool *bp, size_t len)
{
	int want = order_for(bp, len ? len : 1);
	if (want < 0)
		return NULL;
	unsigned o = (unsigned)want;
	while (o <= bp->max_order && bp->free_head[o] == NIL)
		o++;
	if (o > bp->max_order)
		return NULL;
	uint32_t b = bp->free_head[o];
	list_del(bp, o, b);
	/* Split down, returning upper halves to the free lists. */
	while (o > (unsigned)want) {
		o--;
		list_push(bp, o, b + ((uint32_t)1 << o));
	}
	bp->order_of[b] = (uint8_t)(o + 1);
	bp->in_use += (size_t)1 << (BUFPOOL_MIN_SHIFT + o);
	if (bp->in_use > bp->peak)
		bp->peak = bp->in_use;
	return bp->base + ((size_t)b << BUFPOOL_MIN_SHIFT);
}

void bufpool_free(struct bufpool *bp, void *p)
{
	if (!p)
		return;
	uint32_t b = (uint32_t)(((uint8_t *)p - bp->base) >> BUFPOOL_MIN_SHIFT);
	unsigned o = bp->order_of[b] - 1u;
	bp->order_of[b] = 0;
	bp->in_use -= (size_t)1 << (BUFPOOL_MIN_SHIFT + o);
	while (o < bp->max_order) {
		uint32_t buddy = b ^ ((uint32_t)1 << o);
		if (bp->is_free[buddy] != o + 1)
			break;
		list_del(bp, o, buddy);
		b &= ~((uint32_t)1 << o);
		o++;
	}
	list_push(bp, o, b);
}
