/* bitmap.c - write-intent bitmap encoding and bit operations (bitmap.h). */
#include <stdio.h>
#include <string.h>

#include "bitmap.h"
#include "common/util.h"

size_t mbm_bits_size(uint64_t nregions)
{
	size_t bytes = (size_t)((nregions + 7) / 8);
	return (bytes + 4095) & ~(size_t)4095;
}

uint64_t mbm_count(const uint8_t *bits, uint64_t n)
{
	uint64_t c = 0;
	for (uint64_t i = 0; i < n / 8; i++)
		c += (uint64_t)__builtin_popcount(bits[i]);
	for (uint64_t i = n & ~7ull; i < n; i++)
		c += mbm_test(bits, i);
	return c;
}

bool mbm_all_set(const uint8_t *bits, uint64_t first, uint64_t last)
{
	for (uint64_t i = first; i <= last; i++)
		if (!mbm_test(bits, i))
			return false;
	return true;
}

uint64_t mbm_next_set(const uint8_t *bits, uint64_t from, uint64_t n)
{
	uint64_t i = from;
	while (i < n) {
		if ((i & 7) == 0 && bits[i >> 3] == 0) {
			i += 8; /* skip clean bytes whole */
			continue;
		}
		if (mbm_test(bits, i))
			return i;
		i++;
	}
	return n;
}

void mbm_header_encode(const struct mbm_header *h, uint8_t *buf)
{
	memset(buf, 0, MBM_HEADER);
	memcpy(buf, MBM_MAGIC, 8);
	be64_write(buf + 8, h->region);
	be64_write(buf + 16, h->nregions);
	be32_write(buf + 24, h->nlegs);
	for (uint32_t i = 0; i < h->nlegs && i < MBM_MAX_LEGS; i++) {
		uint8_t *slot = buf + 32 + i * MBM_LEG_SLOT;
		slot[0] = h->legs[i].in_sync;
		snprintf((char *)slot + 1, MBM_LEG_SLOT - 1, "%s", h->legs[i].spec);
	}
}

int mbm_header_decode(const uint8_t *buf, size_t len, struct mbm_header *h, char *err,
		      size_t errlen)
{
	memset(h, 0, sizeof(*h));
	if (len < MBM_HEADER || memcmp(buf, MBM_MAGIC, 8) != 0) {
		snprintf(err, errlen, "not a dst mirror bitmap (bad magic)");
		return -1;
	}
	h->region = be64_read(buf + 8);
	h->nregions = be64_read(buf + 16);
	h->nlegs = be32_read(buf + 24);
	if (h->region < 4096 || (h->region & (h->region - 1)) || h->nlegs > MBM_MAX_LEGS ||
	    h->nregions == 0 || h->nregions > (1ull << 40)) {
		snprintf(err, errlen, "corrupt mirror bitmap header");
		return -1;
	}
	for (uint32_t i = 0; i < h->nlegs; i++) {
		const uint8_t *slot = buf + 32 + i * MBM_LEG_SLOT;
		h->legs[i].in_sync = slot[0] == 1;
		memcpy(h->legs[i].spec, slot + 1, MBM_LEG_SLOT - 2);
		h->legs[i].spec[MBM_LEG_SLOT - 2] = '\0';
	}
	return 0;
}
