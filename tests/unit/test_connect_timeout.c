/* test_connect_timeout.c - DST_CONNECT_TIMEOUT: taken when valid, the
 * default otherwise. */
#include <stdlib.h>

#include "common/connect_timeout.h"
#include "unit.h"

static unsigned with(const char *v, unsigned dflt)
{
	if (v)
		setenv("DST_CONNECT_TIMEOUT", v, 1);
	else
		unsetenv("DST_CONNECT_TIMEOUT");
	return connect_timeout_s(dflt);
}

TEST(values)
{
	CHECK_EQ(with(NULL, 30), 30);
	CHECK_EQ(with("", 30), 30);
	CHECK_EQ(with("5", 30), 5);
	CHECK_EQ(with("1", 10), 1);
	CHECK_EQ(with("3600", 10), 3600);
	/* Out of range or not a number: the default (said once on stderr). */
	CHECK_EQ(with("0", 30), 30);
	CHECK_EQ(with("3601", 30), 30);
	CHECK_EQ(with("abc", 10), 10);
	CHECK_EQ(with("5s", 10), 10);
	CHECK_EQ(with("-1", 10), 10);
	CHECK_EQ(with("99999999999999999999", 10), 10);
	unsetenv("DST_CONNECT_TIMEOUT");
}

UNIT_MAIN(T(values))
