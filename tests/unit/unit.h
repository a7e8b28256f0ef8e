/* unit.h - a minimal unit-test harness: CHECK macros and a test table.
 *
 * Each tests/unit/test_*.c defines its tests with TEST(name) and lists them
 * in UNIT_MAIN(...). The binary prints one line per failed check and a
 * closing "PASS name" / "FAIL name" per test; exit status is the number of
 * failed tests (tests/run.sh counts them).
 */
#ifndef DST_UNIT_H
#define DST_UNIT_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int unit_failed_checks;

#define CHECK(cond)                                                                              \
	do {                                                                                     \
		if (!(cond)) {                                                                   \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
			unit_failed_checks++;                                                    \
		}                                                                                \
	} while (0)

#define CHECK_EQ(a, b)                                                                       \
	do {                                                                                 \
		long long _a = (long long)(a), _b = (long long)(b);                          \
		if (_a != _b) {                                                              \
			fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %s (%lld != %lld)\n", \
				__FILE__, __LINE__, #a, #b, _a, _b);                         \
			unit_failed_checks++;                                                \
		}                                                                            \
	} while (0)

#define CHECK_STR(a, b)                                                                          \
	do {                                                                                     \
		const char *_a = (a), *_b = (b);                                                 \
		if (!_a || !_b || strcmp(_a, _b) != 0) {                                         \
			fprintf(stderr, "%s:%d: CHECK_STR failed: \"%s\" != \"%s\"\n", __FILE__, \
				__LINE__, _a ? _a : "(null)", _b ? _b : "(null)");               \
			unit_failed_checks++;                                                    \
		}                                                                                \
	} while (0)

#define TEST(name) static void name(void)

struct unit_test {
	const char *name;
	void (*fn)(void);
};

#define T(name)             \
	{                   \
#name, name \
	}

#define UNIT_MAIN(...)                                                           \
	int main(void)                                                           \
	{                                                                        \
		static const struct unit_test tests[] = {__VA_ARGS__};           \
		int failed = 0;                                                  \
		for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {  \
			int before = unit_failed_checks;                         \
			tests[i].fn();                                           \
			int bad = unit_failed_checks != before;                  \
			failed += bad;                                           \
			printf("%s %s\n", bad ? "FAIL" : "PASS", tests[i].name); \
		}                                                                \
		return failed;                                                   \
	}

#endif
