/* bitmap.h - alg_mirror's write-intent bitmap, as md keeps one: a bit per
 * region (default 1 MiB) that is set, and made durable, before the first
 * write to a clean region is sent to the legs, and cleared lazily once every
 * leg has the region. The file (NAME.bitmap in the state dir) also records
 * which legs were in sync, so that after a crash of dstd the right leg is
 * copied from. Pure encoding and bit operations: unit tested.
 *
 * File layout (integers big-endian):
 *   0    magic "DSTMBM01"
 *   8    region size in bytes
 *   16   number of regions
 *   24   number of legs (nodes; <= MBM_MAX_LEGS)
 *   32   per leg, 256 bytes: state byte (1 in sync, 0 not), then its spec
 *        (path or URI), NUL-padded
 *   4096 the bits, LSB first, padded to a multiple of 4096 bytes
 */
#ifndef DST_ARRAY_BITMAP_H
#define DST_ARRAY_BITMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MBM_MAGIC	   "DSTMBM01"
#define MBM_HEADER	   4096u
#define MBM_MAX_LEGS	   15u /* (4096 - 32) / 256: nodes the header can list */
#define MIRROR_MAX_LEGS	   8u
#define MBM_LEG_SLOT	   256u
#define MBM_DEFAULT_REGION (1u << 20)

struct mbm_leg {
	bool in_sync;
	char spec[MBM_LEG_SLOT - 1];
};

struct mbm_header {
	uint64_t region, nregions;
	uint32_t nlegs;
	struct mbm_leg legs[MBM_MAX_LEGS];
};

static inline bool mbm_test(const uint8_t *bits, uint64_t i)
{
	return bits[i >> 3] & (1u << (i & 7));
}
static inline void mbm_set(uint8_t *bits, uint64_t i)
{
	bits[i >> 3] |= (uint8_t)(1u << (i & 7));
}
static inline void mbm_clear(uint8_t *bits, uint64_t i)
{
	bits[i >> 3] &= (uint8_t) ~(1u << (i & 7));
}

/* Bytes of the bits part for n regions (a multiple of 4096). */
size_t mbm_bits_size(uint64_t nregions);
/* Bits set among the first n. */
uint64_t mbm_count(const uint8_t *bits, uint64_t n);
/* Are bits [first, last] all set? */
bool mbm_all_set(const uint8_t *bits, uint64_t first, uint64_t last);
/* The first set bit >= from (< n), or n. */
uint64_t mbm_next_set(const uint8_t *bits, uint64_t from, uint64_t n);

/* Encode h into buf[MBM_HEADER]. */
void mbm_header_encode(const struct mbm_header *h, uint8_t *buf);
/* Decode; -1 with a reason when it is not a bitmap of ours. */
int mbm_header_decode(const uint8_t *buf, size_t len, struct mbm_header *h, char *err,
		      size_t errlen);

#endif
