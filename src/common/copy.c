/* copy.c - copy_to_cold(): non-temporal copies on x86-64, memcpy elsewhere. */
#include "copy.h"

#include <stdint.h>
#include <string.h>

#if defined(__x86_64__)
#include <emmintrin.h>

/* Below this the fence and the alignment fix-ups cost more than the
 * cache misses they save. */
#define NT_MIN 4096u

void copy_to_cold(void *dst, const void *src, size_t n)
{
	if (n < NT_MIN) {
		memcpy(dst, src, n);
		return;
	}
	char *d = dst;
	const char *s = src;
	size_t head = (16 - ((uintptr_t)d & 15)) & 15; /* streaming stores need 16-byte alignment */
	memcpy(d, s, head);
	d += head;
	s += head;
	n -= head;
	for (; n >= 64; d += 64, s += 64, n -= 64) {
		__m128i a = _mm_loadu_si128((const __m128i *)s);
		__m128i b = _mm_loadu_si128((const __m128i *)(s + 16));
		__m128i c = _mm_loadu_si128((const __m128i *)(s + 32));
		__m128i e = _mm_loadu_si128((const __m128i *)(s + 48));
		_mm_stream_si128((__m128i *)d, a);
		_mm_stream_si128((__m128i *)(d + 16), b);
		_mm_stream_si128((__m128i *)(d + 32), c);
		_mm_stream_si128((__m128i *)(d + 48), e);
	}
	memcpy(d, s, n);
	_mm_sfence(); /* streaming stores are weakly ordered */
}
#else
void copy_to_cold(void *dst, const void *src, size_t n)
{
	memcpy(dst, src, n);
}
#endif
