/* csum_ctx.c - the dst:csum-4k context's spans, sums and extents (see
 * csum_ctx.h). */
#include "csum_ctx.h"

#include "common/crc32c.h"
#include "common/util.h"

void csum_ctx_span(uint64_t off, uint64_t len, uint64_t size, struct csum_span *s)
{
	s->off = off;
	s->aoff = off - off % CSUM_CTX_BLOCK;
	s->end = MIN(off + len, s->aoff + CSUM_CTX_CAP);
	uint64_t up =
	    s->end + (CSUM_CTX_BLOCK - 1) - (s->end + CSUM_CTX_BLOCK - 1) % CSUM_CTX_BLOCK;
	s->aend = MIN(up, MAX(size, s->end));
}

uint32_t csum_ctx_blocks(const struct csum_span *s)
{
	return (uint32_t)((s->aend - s->aoff + CSUM_CTX_BLOCK - 1) / CSUM_CTX_BLOCK);
}

uint32_t csum_ctx_sum_iov(const struct iovec *iov, uint32_t n, uint64_t len, uint32_t *out)
{
	uint32_t k = 0;	   /* sums written */
	uint32_t crc = 0;  /* of the block being summed across iovecs */
	uint64_t have = 0; /* its bytes so far */
	for (uint32_t i = 0; i < n && len; i++) {
		const uint8_t *p = iov[i].iov_base;
		uint64_t left = MIN((uint64_t)iov[i].iov_len, len);
		len -= left;
		while (left) {
			if (have == 0 && left >= CSUM_CTX_BLOCK) {
				/* Whole blocks in this iovec: the fast way. */
				uint64_t whole = left - left % CSUM_CTX_BLOCK;
				k += (uint32_t)crc32c_blocks(p, whole, CSUM_CTX_BLOCK, out + k);
				p += whole;
				left -= whole;
				continue;
			}
			uint64_t take = MIN(left, CSUM_CTX_BLOCK - have);
			crc = crc32c(crc, p, take);
			have += take;
			p += take;
			left -= take;
			if (have == CSUM_CTX_BLOCK) {
				out[k++] = crc;
				crc = 0;
				have = 0;
			}
		}
	}
	if (have) /* the short last block */
		out[k++] = crc;
	return k;
}

static uint8_t *put(uint8_t *w, uint64_t len, uint32_t status)
{
	be32_write(w, (uint32_t)len);
	be32_write(w + 4, status);
	return w + 8;
}

uint32_t csum_ctx_encode(const struct csum_span *s, const uint32_t *sums, bool req_one,
			 uint8_t *out)
{
	uint32_t nb = csum_ctx_blocks(s), n = 0;
	uint64_t pos = s->off; /* start of the extent being built */
	uint32_t status = sums[0];
	for (uint32_t b = 1; b < nb; b++) {
		uint64_t start = s->aoff + (uint64_t)b * CSUM_CTX_BLOCK;
		if (start >= s->end)
			break;
		if (sums[b] == status)
			continue;
		out = put(out, start - pos, status);
		n++;
		if (req_one)
			return n;
		pos = start;
		status = sums[b];
	}
	put(out, s->end - pos, status);
	return n + 1;
}
