/* test_util.c - size and number parsing, size formatting, state names,
 * copy_to_cold. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "common/copy.h"
#include "common/state.h"
#include "common/util.h"
#include "unit.h"

#define KiB (1024ull)
#define MiB (1024ull * KiB)
#define GiB (1024ull * MiB)
#define TiB (1024ull * GiB)

/* parse_size result, or a negative errno; *out untouched on error. */
static long long size_of(const char *s)
{
	uint64_t v = 0xdeadbeef;
	int rc = parse_size(s, &v);
	if (rc < 0) {
		if (v != 0xdeadbeef)
			fprintf(stderr, "parse_size(\"%s\") failed but wrote %llu\n", s,
				(unsigned long long)v);
		return rc;
	}
	return (long long)v;
}

static long long u64_of(const char *s)
{
	uint64_t v = 0xdeadbeef;
	int rc = parse_u64(s, &v);
	if (rc < 0)
		return rc;
	return (long long)v;
}

TEST(parse_size_units)
{
	CHECK_EQ(size_of("0"), 0);
	CHECK_EQ(size_of("4096"), 4096);
	CHECK_EQ(size_of("512B"), 512);
	CHECK_EQ(size_of("512b"), 512);
	CHECK_EQ(size_of("1K"), KiB);
	CHECK_EQ(size_of("64k"), 64 * KiB);
	CHECK_EQ(size_of("64KiB"), 64 * KiB);
	CHECK_EQ(size_of("64KB"), 64 * KiB);
	CHECK_EQ(size_of("64Ki"), 64 * KiB);
	CHECK_EQ(size_of("1M"), MiB);
	CHECK_EQ(size_of("128m"), 128 * MiB);
	CHECK_EQ(size_of("1MiB"), MiB);
	CHECK_EQ(size_of("1MB"), MiB); /* binary, whatever the spelling */
	CHECK_EQ(size_of("2G"), 2 * GiB);
	CHECK_EQ(size_of("2GiB"), 2 * GiB);
	CHECK_EQ(size_of("1T"), TiB);
	CHECK_EQ(size_of("3TiB"), 3 * TiB);
	CHECK_EQ(size_of("1P"), 1024 * TiB);
	CHECK_EQ(size_of("007K"), 7 * KiB);
	/* The largest values that fit. */
	CHECK(size_of("16777215T") == (long long)(16777215ull * TiB));
	uint64_t v;
	CHECK_EQ(parse_size("18446744073709551615", &v), 0);
	CHECK(v == UINT64_MAX);
	CHECK_EQ(parse_size("17179869183G", &v), 0);
	CHECK(v == 17179869183ull * GiB);
}

TEST(parse_size_errors)
{
	/* Overflow: in the number itself, or once the unit is applied. */
	CHECK_EQ(size_of("18446744073709551616"), -ERANGE);
	CHECK_EQ(size_of("99999999999999999999999"), -ERANGE);
	CHECK_EQ(size_of("16777216T"), -ERANGE);
	CHECK_EQ(size_of("17179869184G"), -ERANGE);
	CHECK_EQ(size_of("18014398509481984K"), -ERANGE);
	CHECK_EQ(size_of("16384P"), -ERANGE);
	/* Garbage, signs, blanks, fractions, unknown units. */
	const char *bad[] = {"",     "K",      "abc",	"-1",	"-1K",	"+5",  " 5",	 "\t5",
			     "5 ",   "5 K",    "1.5G",	"1,5G", "0x10", "1e3", "10X",	 "10KK",
			     "10iB", "10KiBB", "10KBi", "10Bi", "1GB2", "5\n", "10 KiB", "K5"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		long long r = size_of(bad[i]);
		if (r != -EINVAL)
			fprintf(stderr, "parse_size(\"%s\") = %lld, expected -EINVAL\n", bad[i], r);
		CHECK_EQ(r, -EINVAL);
	}
	uint64_t v;
	CHECK_EQ(parse_size(NULL, &v), -EINVAL);
}

TEST(parse_u64_cases)
{
	CHECK_EQ(u64_of("0"), 0);
	CHECK_EQ(u64_of("1"), 1);
	CHECK_EQ(u64_of("65535"), 65535);
	CHECK_EQ(u64_of("000123"), 123);
	uint64_t v;
	CHECK_EQ(parse_u64("18446744073709551615", &v), 0);
	CHECK(v == UINT64_MAX);
	CHECK_EQ(u64_of("18446744073709551616"), -ERANGE);
	CHECK_EQ(u64_of("123456789012345678901234567890"), -ERANGE);
	const char *bad[] = {"",   "-1",   "+1",  " 1",	 "\t1", "1 ",
			     "1K", "0x1f", "1.0", "abc", "1-",	"--1"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		long long r = u64_of(bad[i]);
		if (r != -EINVAL)
			fprintf(stderr, "parse_u64(\"%s\") = %lld, expected -EINVAL\n", bad[i], r);
		CHECK_EQ(r, -EINVAL);
	}
	CHECK_EQ(parse_u64(NULL, &v), -EINVAL);
}

TEST(format_size_cases)
{
	char buf[32];
	CHECK_STR(format_size(0, buf, sizeof(buf)), "0 B");
	CHECK_STR(format_size(1, buf, sizeof(buf)), "1 B");
	CHECK_STR(format_size(1023, buf, sizeof(buf)), "1023 B");
	CHECK_STR(format_size(1024, buf, sizeof(buf)), "1.0 KiB");
	CHECK_STR(format_size(1536, buf, sizeof(buf)), "1.5 KiB");
	CHECK_STR(format_size(MiB, buf, sizeof(buf)), "1.0 MiB");
	CHECK_STR(format_size(3 * GiB / 2, buf, sizeof(buf)), "1.5 GiB");
	CHECK_STR(format_size(TiB, buf, sizeof(buf)), "1.0 TiB");
	CHECK_STR(format_size(1024 * TiB, buf, sizeof(buf)), "1.0 PiB");
	/* PiB is the largest unit. */
	CHECK_STR(format_size(1024 * 1024 * TiB, buf, sizeof(buf)), "1024.0 PiB");
	CHECK_STR(format_size(UINT64_MAX, buf, sizeof(buf)), "16384.0 PiB");
	/* Returns buf, and truncates to fit. */
	char small[4];
	CHECK(format_size(MiB, small, sizeof(small)) == small);
	CHECK_STR(small, "1.0");
}

TEST(round_trip)
{
	/* What format_size prints for whole units, parse_size reads back. */
	uint64_t sizes[] = {KiB, 64 * KiB, MiB, 512 * MiB, GiB, 7 * TiB};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		char buf[32], num[32];
		format_size(sizes[i], buf, sizeof(buf));
		/* "64.0 KiB" -> "64KiB" */
		char *dot = strchr(buf, '.'), *sp = strchr(buf, ' ');
		CHECK(dot && sp);
		if (!dot || !sp)
			continue;
		snprintf(num, sizeof(num), "%.*s%s", (int)(dot - buf), buf, sp + 1);
		uint64_t v;
		CHECK_EQ(parse_size(num, &v), 0);
		CHECK(v == sizes[i]);
	}
}

static bool name_ok(const char *n)
{
	char err[256] = "";
	bool ok = state_name_valid(n, err, sizeof(err));
	if (!ok && !err[0])
		fprintf(stderr, "state_name_valid(\"%s\"): false without a message\n", n);
	return ok;
}

TEST(state_names)
{
	CHECK(name_ok("storage"));
	CHECK(name_ok("s"));
	CHECK(name_ok("disk0.img-1025"));
	CHECK(name_ok("mem-10809"));
	CHECK(name_ok("A_b.c-9"));
	CHECK(name_ok("0"));
	CHECK(name_ok("x.")); /* a dot is fine after the first character */
	char n64[65];
	memset(n64, 'a', 64);
	n64[64] = '\0';
	CHECK(name_ok(n64));

	char n65[66];
	memset(n65, 'a', 65);
	n65[65] = '\0';
	CHECK(!name_ok(n65));
	CHECK(!name_ok(""));
	CHECK(!name_ok("."));
	CHECK(!name_ok(".."));
	CHECK(!name_ok(".hidden"));
	CHECK(!name_ok("-flag"));
	CHECK(!name_ok("a/b"));
	CHECK(!name_ok("../etc"));
	CHECK(!name_ok("a b"));
	CHECK(!name_ok("a:b"));
	CHECK(!name_ok("a\nb"));
	CHECK(!name_ok("caf\xc3\xa9"));
	CHECK(!name_ok("a*"));

	/* The reason names the problem. */
	char err[256];
	CHECK(!state_name_valid("a/b", err, sizeof(err)));
	CHECK(strstr(err, "only letters, digits") != NULL);
	CHECK(!state_name_valid("-x", err, sizeof(err)));
	CHECK(strstr(err, "must not start with") != NULL);
	CHECK(!state_name_valid("", err, sizeof(err)));
	CHECK(strstr(err, "1 to 64") != NULL);
}

TEST(byte_order)
{
	uint8_t b[8];
	be64_write(b, 0x0102030405060708ull);
	CHECK(b[0] == 1 && b[7] == 8);
	CHECK(be64_read(b) == 0x0102030405060708ull);
	be32_write(b, 0xa1b2c3d4u);
	CHECK(b[0] == 0xa1 && b[3] == 0xd4);
	CHECK_EQ(be32_read(b), 0xa1b2c3d4u);
	be16_write(b, 0xbeef);
	CHECK(b[0] == 0xbe && b[1] == 0xef);
	CHECK_EQ(be16_read(b), 0xbeef);
}

/* Every alignment of source and destination and lengths around the edges
 * of the streaming loop (64-byte blocks, 16-byte alignment, the 4 KiB
 * threshold): the copy is exact and writes nothing outside the range. */
TEST(copy_to_cold_exact)
{
	enum { MAXLEN = 3 * 4096 + 200, PAD = 64 };
	static uint8_t src[MAXLEN + PAD], dst[MAXLEN + 2 * PAD];
	const size_t lens[] = {0,    1,	   15,	 63,	    64,	       65,
			       4095, 4096, 4097, 4096 + 63, 8192 + 17, MAXLEN};
	for (size_t i = 0; i < sizeof(src); i++)
		src[i] = (uint8_t)(i * 31 + 7);
	for (size_t so = 0; so < 17; so++) {
		for (size_t doff = 0; doff < 17; doff++) {
			for (size_t k = 0; k < ARRAY_SIZE(lens); k++) {
				size_t n = lens[k];
				memset(dst, 0xee, sizeof(dst));
				copy_to_cold(dst + PAD + doff, src + so, n);
				CHECK(memcmp(dst + PAD + doff, src + so, n) == 0);
				for (size_t j = 0; j < PAD + doff; j++)
					CHECK(dst[j] == 0xee);
				for (size_t j = PAD + doff + n; j < sizeof(dst); j++)
					CHECK(dst[j] == 0xee);
			}
		}
	}
}

UNIT_MAIN(T(parse_size_units), T(parse_size_errors), T(parse_u64_cases), T(format_size_cases),
	  T(round_trip), T(state_names), T(byte_order), T(copy_to_cold_exact))
