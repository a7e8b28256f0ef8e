/* csum_ctx.h - the dst:csum-4k metadata context, pure parts: which blocks
 * a BLOCK_STATUS request covers, their sums taken from scattered memory,
 * and the sums turned into the reply's extents. No IO here (tx_csum.c
 * does it), so all of it is unit tested (tests/unit/test_csum_ctx.c).
 *
 * The context: each extent's 32-bit status is the CRC32C of the 4 KiB
 * blocks in it, blocks aligned from the device's start (the last one may be
 * short: its sum is of the bytes there). Consecutive blocks with the same
 * sum are one extent, so a hole or a zeroed range is one extent. A request
 * at an offset inside a block gets a first extent up to the block's end
 * whose status is the sum of that whole block.
 */
#ifndef DST_NBD_CSUM_CTX_H
#define DST_NBD_CSUM_CTX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define CSUM_CTX_BLOCK 4096u
/* The most one reply covers (the spec lets it cover a prefix: the client
 * asks again for the rest). 4 MiB: the server checksums it in pieces of
 * one borrowed read (DEV_BORROW_MAX) through a 1 MiB buffer, so its
 * request buffer does not grow with the cap; the cap bounds the reply's
 * extents (1024, 8 KiB) and the time one request holds the event loop
 * (about 0.3 ms of CRC32C with SSE4.2). */
#define CSUM_CTX_CAP	 (4u << 20)
#define CSUM_CTX_MAX_EXT (CSUM_CTX_CAP / CSUM_CTX_BLOCK)

/* The reply covers [off, end) of a request [off, off+len) on a device of
 * `size` bytes (off+len <= size); its sums are of the blocks [aoff, aend):
 * aoff is off rounded down to a block, aend end rounded up (or the
 * device's end). */
struct csum_span {
	uint64_t off, end;
	uint64_t aoff, aend;
};
void csum_ctx_span(uint64_t off, uint64_t len, uint64_t size, struct csum_span *s);
/* Blocks (sums) of a span: ceil((aend - aoff) / block), at most
 * CSUM_CTX_MAX_EXT. */
uint32_t csum_ctx_blocks(const struct csum_span *s);

/* One sum per 4 KiB block of the len bytes spread over iov[0..n) (the
 * last block may be short; blocks may straddle iovecs) into out[].
 * Returns the number of sums: ceil(len / 4096). */
uint32_t csum_ctx_sum_iov(const struct iovec *iov, uint32_t n, uint64_t len, uint32_t *out);

/* The reply's descriptors for span s from sums[csum_ctx_blocks(s)]:
 * (length, status) pairs, big-endian, 8 bytes each, into out (room for
 * CSUM_CTX_MAX_EXT). With req_one exactly one. Returns how many (>= 1). */
uint32_t csum_ctx_encode(const struct csum_span *s, const uint32_t *sums, bool req_one,
			 uint8_t *out);

#endif
