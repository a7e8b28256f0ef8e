/* test_iov.c - iovec list helpers: copying in at an offset, tails. */
#include <string.h>
#include <sys/uio.h>

#include "common/iov.h"
#include "unit.h"

TEST(copy_in)
{
	char a[3], b[5], c[2];
	struct iovec v[3] = {{a, sizeof(a)}, {b, sizeof(b)}, {c, sizeof(c)}};
	memset(a, '.', 3), memset(b, '.', 5), memset(c, '.', 2);
	iov_copy_in(v, 3, 2, "WXYZ", 4); /* spans a into b */
	CHECK(memcmp(a, "..W", 3) == 0);
	CHECK(memcmp(b, "XYZ..", 5) == 0);
	iov_copy_in(v, 3, 7, "1234", 4); /* the end of b, all of c, then dropped */
	CHECK(memcmp(b, "XYZ.1", 5) == 0);
	CHECK(memcmp(c, "23", 2) == 0);
	iov_copy_in(v, 3, 10, "!", 1); /* past the end: nothing */
	CHECK(memcmp(c, "23", 2) == 0);
}

TEST(tail)
{
	char a[3], b[5];
	struct iovec v[2] = {{a, sizeof(a)}, {b, sizeof(b)}}, out[2];
	CHECK_EQ(iov_tail(v, 2, 0, out), 2);
	CHECK(out[0].iov_base == a && out[0].iov_len == 3);
	CHECK_EQ(iov_tail(v, 2, 3, out), 1);
	CHECK(out[0].iov_base == b && out[0].iov_len == 5);
	CHECK_EQ(iov_tail(v, 2, 4, out), 1);
	CHECK(out[0].iov_base == b + 1 && out[0].iov_len == 4);
	CHECK_EQ(iov_tail(v, 2, 1, out), 2);
	CHECK(out[0].iov_base == a + 1 && out[0].iov_len == 2 && out[1].iov_base == b);
	CHECK_EQ(iov_tail(v, 2, 8, out), 0);
}

UNIT_MAIN(T(copy_in), T(tail))
