/* fuzz_nbd_request.c - the server's request decoder and validator
 * (nbd_decode_request + nbd_validate_request), checked against what the
 * transmission phase relies on once a request is accepted: it is within the
 * export, a READ or WRITE fits one buffer, nothing writes a read-only
 * export, and only known commands with flags they may carry get through.
 *
 * Input: a 28-byte request header, then what the connection negotiated:
 * 8 bytes export size, 4 bytes minimum block, 1 byte of capability bits
 * (missing bytes are zero). */
#include "common/util.h"
#include "fuzz.h"
#include "nbd/proto.h"
#include "nbd/wire.h"

FUZZ_TARGET(nbd_request)
{
	uint8_t in[NBD_REQUEST_SIZE + 13] = {0};
	memcpy(in, data, MIN(size, sizeof(in)));
	struct nbd_request r;
	nbd_decode_request(in, &r);
	FUZZ_ASSERT(r.magic == be32_read(in) && r.type == be16_read(in + 6));

	struct nbd_conn_caps c = {0};
	const uint8_t *k = in + NBD_REQUEST_SIZE;
	c.size = be64_read(k);
	c.min_block = be32_read(k + 8);
	uint8_t bits = k[12];
	c.readonly = bits & 1;
	c.structured = bits & 2;
	c.base_alloc = bits & 4;
	c.can_trim = bits & 8;
	c.can_zero = bits & 16;
	c.can_fast_zero = bits & 32;
	c.can_cache = bits & 64;

	uint32_t e = nbd_validate_request(&r, &c);
	if (e) {
		FUZZ_ASSERT(e == NBD_EINVAL || e == NBD_EPERM || e == NBD_ENOSPC);
		return 0;
	}
	FUZZ_ASSERT(r.type <= NBD_CMD_BLOCK_STATUS);
	bool writes =
	    r.type == NBD_CMD_WRITE || r.type == NBD_CMD_TRIM || r.type == NBD_CMD_WRITE_ZEROES;
	FUZZ_ASSERT(!(writes && c.readonly));
	if (r.type == NBD_CMD_READ || r.type == NBD_CMD_WRITE)
		FUZZ_ASSERT(r.length > 0 && r.length <= NBD_MAX_BLOCK);
	if (r.type != NBD_CMD_FLUSH && r.type != NBD_CMD_DISC) {
		FUZZ_ASSERT(r.offset <= c.size && r.length <= c.size - r.offset);
		if (c.min_block > 1)
			FUZZ_ASSERT(r.offset % c.min_block == 0 && r.length % c.min_block == 0);
	}
	if (r.type == NBD_CMD_FLUSH)
		FUZZ_ASSERT(r.offset == 0 && r.length == 0);
	FUZZ_ASSERT(r.type != NBD_CMD_TRIM || c.can_trim);
	FUZZ_ASSERT(r.type != NBD_CMD_WRITE_ZEROES || c.can_zero);
	FUZZ_ASSERT(r.type != NBD_CMD_CACHE || c.can_cache);
	FUZZ_ASSERT(r.type != NBD_CMD_BLOCK_STATUS || (c.structured && c.base_alloc));
	FUZZ_ASSERT(!(r.flags & NBD_CMD_FLAG_DF) || (r.type == NBD_CMD_READ && c.structured));
	FUZZ_ASSERT(!(r.flags & NBD_CMD_FLAG_FAST_ZERO) ||
		    (r.type == NBD_CMD_WRITE_ZEROES && c.can_fast_zero));
	FUZZ_ASSERT(!(r.flags & ~0x1fu));
	return 0;
}
