/* crc32c.c - CRC32C with the CPU's instruction when it has one, a table
 * otherwise (see crc32c.h). */
#include "crc32c.h"

#include <stdbool.h>
#include <string.h>

#define POLY 0x82f63b78u /* Castagnoli, reflected */

static uint32_t table[256];
static int hw = -1; /* -1: not probed yet */

static void init(void)
{
	if (hw >= 0)
		return;
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ POLY : c >> 1;
		table[i] = c;
	}
#if defined(__x86_64__)
	__builtin_cpu_init();
	hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
#else
	hw = 0;
#endif
}

/* The raw register (no pre/post inversion) over len bytes. */
static uint32_t sw_update(uint32_t c, const uint8_t *p, size_t len)
{
	while (len--)
		c = table[(c ^ *p++) & 0xff] ^ (c >> 8);
	return c;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t hw_update(uint32_t c, const uint8_t *p,
							    size_t len)
{
	uint64_t c64 = c;
	for (; len >= 8; p += 8, len -= 8) {
		uint64_t v;
		memcpy(&v, p, 8);
		c64 = __builtin_ia32_crc32di(c64, v);
	}
	c = (uint32_t)c64;
	for (; len; p++, len--)
		c = __builtin_ia32_crc32qi(c, *p);
	return c;
}

/* Three whole blocks at once: three independent dependency chains keep
 * the instruction's pipeline full (latency 3, throughput 1 per cycle). */
__attribute__((target("sse4.2"))) static void hw_three(const uint8_t *p, size_t block,
						       uint32_t out[3])
{
	uint64_t a = 0xffffffffu, b = 0xffffffffu, c = 0xffffffffu;
	const uint8_t *p1 = p + block, *p2 = p + 2 * block;
	size_t i = 0;
	for (; i + 8 <= block; i += 8) {
		uint64_t x, y, z;
		memcpy(&x, p + i, 8);
		memcpy(&y, p1 + i, 8);
		memcpy(&z, p2 + i, 8);
		a = __builtin_ia32_crc32di(a, x);
		b = __builtin_ia32_crc32di(b, y);
		c = __builtin_ia32_crc32di(c, z);
	}
	uint32_t ra = (uint32_t)a, rb = (uint32_t)b, rc = (uint32_t)c;
	for (; i < block; i++) {
		ra = __builtin_ia32_crc32qi(ra, p[i]);
		rb = __builtin_ia32_crc32qi(rb, p1[i]);
		rc = __builtin_ia32_crc32qi(rc, p2[i]);
	}
	out[0] = ~ra, out[1] = ~rb, out[2] = ~rc;
}
#endif

static uint32_t update(uint32_t c, const uint8_t *p, size_t len)
{
#if defined(__x86_64__)
	if (hw)
		return hw_update(c, p, len);
#endif
	return sw_update(c, p, len);
}

uint32_t crc32c(uint32_t crc, const void *buf, size_t len)
{
	init();
	return ~update(~crc, buf, len);
}

size_t crc32c_blocks(const void *buf, size_t len, size_t block, uint32_t *out)
{
	init();
	const uint8_t *p = buf;
	size_t n = 0;
#if defined(__x86_64__)
	if (hw) {
		for (; len >= 3 * block; p += 3 * block, len -= 3 * block, n += 3)
			hw_three(p, block, out + n);
	}
#endif
	for (; len; n++) {
		size_t l = len < block ? len : block;
		out[n] = ~update(0xffffffffu, p, l);
		p += l;
		len -= l;
	}
	return n;
}

void crc32c_force_table(void)
{
	init();
	hw = 0;
}

const char *crc32c_impl(void)
{
	init();
	return hw ? "sse4.2" : "table";
}
