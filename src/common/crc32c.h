/* crc32c.h - CRC32C (Castagnoli), the checksum of dst's verify and of its
 * dst:csum-4k NBD metadata context.
 *
 * With SSE4.2 the CPU's crc32 instruction does the work; per-block sums
 * run three blocks side by side, so the instruction's latency is hidden
 * (each block's sum is independent: no combining step). Without it a
 * table does, at a tenth of the speed. */
#ifndef DST_CRC32C_H
#define DST_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* The standard CRC32C of buf, continuing crc (0 to start):
 * crc32c(0, "123456789", 9) == 0xe3069283. */
uint32_t crc32c(uint32_t crc, const void *buf, size_t len);

/* One CRC32C per block of `block` bytes of buf[0..len), into out[]: block
 * k covers buf[k*block, min((k+1)*block, len)) (the last may be short).
 * Returns the number of sums written: ceil(len / block). */
size_t crc32c_blocks(const void *buf, size_t len, size_t block, uint32_t *out);

/* "sse4.2" or "table": what crc32c() runs on this CPU (dst show). */
const char *crc32c_impl(void);

/* Tests: use the table even where the CPU has the instruction. */
void crc32c_force_table(void);

#endif
