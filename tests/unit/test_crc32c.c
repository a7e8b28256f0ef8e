/* test_crc32c.c - CRC32C against its published check value and a bitwise
 * reference, on both implementations (the CPU's instruction and the table),
 * whole buffers and per-block sums with short last blocks. */
#include <stdlib.h>

#include "common/crc32c.h"
#include "unit.h"

/* One bit at a time, straight from the definition. */
static uint32_t ref(const uint8_t *p, size_t len)
{
	uint32_t c = 0xffffffffu;
	while (len--) {
		c ^= *p++;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
	}
	return ~c;
}

static void check_all(void)
{
	CHECK_EQ(crc32c(0, "123456789", 9), 0xe3069283u);
	CHECK_EQ(crc32c(0, "", 0), 0);
	/* Continuing a sum is the sum of the whole. */
	CHECK_EQ(crc32c(crc32c(0, "1234", 4), "56789", 5), 0xe3069283u);
	static uint8_t buf[3 * 4096 * 3 + 777];
	srand(7);
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)rand();
	size_t lens[] = {
	    1, 7, 8, 9, 4095, 4096, 4097, 3 * 4096, 3 * 4096 + 1, 5 * 4096 + 13, sizeof(buf)};
	for (size_t t = 0; t < sizeof(lens) / sizeof(lens[0]); t++) {
		size_t len = lens[t];
		CHECK_EQ(crc32c(0, buf + 1, len - 1), ref(buf + 1, len - 1));
		uint32_t out[32];
		size_t n = crc32c_blocks(buf, len, 4096, out);
		CHECK_EQ(n, (len + 4095) / 4096);
		for (size_t k = 0; k < n; k++) {
			size_t l = len - k * 4096 < 4096 ? len - k * 4096 : 4096;
			CHECK_EQ(out[k], ref(buf + k * 4096, l));
		}
	}
	/* Blocks of zeroes: every block has the same sum. */
	static uint8_t zero[4 * 4096];
	uint32_t z[4];
	CHECK_EQ(crc32c_blocks(zero, sizeof(zero), 4096, z), 4);
	CHECK_EQ(z[0], ref(zero, 4096));
	CHECK(z[0] == z[1] && z[1] == z[2] && z[2] == z[3]);
	/* Another block size. */
	uint32_t o[3];
	CHECK_EQ(crc32c_blocks(buf, 1000, 512, o), 2);
	CHECK_EQ(o[1], ref(buf + 512, 488));
}

TEST(native)
{
	check_all();
}

TEST(table)
{
	crc32c_force_table();
	CHECK_STR(crc32c_impl(), "table");
	check_all();
}

UNIT_MAIN(T(native), T(table))
