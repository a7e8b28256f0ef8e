/* iov.c - small helpers over iovec lists. */
#include "iov.h"

#include <string.h>

void iov_copy_in(const struct iovec *iov, unsigned cnt, size_t off, const void *src, size_t len)
{
	const char *p = src;
	for (unsigned i = 0; i < cnt && len; i++) {
		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		size_t take = iov[i].iov_len - off;
		if (take > len)
			take = len;
		memcpy((char *)iov[i].iov_base + off, p, take);
		p += take;
		len -= take;
		off = 0;
	}
}

int iov_tail(const struct iovec *iov, unsigned cnt, size_t from, struct iovec *out)
{
	int n = 0;
	for (unsigned i = 0; i < cnt; i++) {
		if (from >= iov[i].iov_len) {
			from -= iov[i].iov_len;
			continue;
		}
		out[n].iov_base = (char *)iov[i].iov_base + from;
		out[n].iov_len = iov[i].iov_len - from;
		n++;
		from = 0;
	}
	return n;
}
