/* fuzz.h - how a fuzz target is written.
 *
 *   FUZZ_TARGET(name) { ...use data[0..size)...; return 0; }
 *
 * defines int fuzz_NAME(const uint8_t *data, size_t size). `make fuzz`
 * builds each tests/fuzz/fuzz_NAME.c with clang and -DDST_LIBFUZZER, which
 * makes it libFuzzer's entry point too. The normal build links every target
 * into tests/unit/test_fuzz_replay.c, which feeds them the checked-in corpus
 * and the inputs that once crashed (tests/fuzz/regressions/NAME/), so a
 * regression is caught by `make check` without clang.
 *
 * A target checks what must hold with FUZZ_ASSERT: a broken promise aborts,
 * which libFuzzer reports like a crash and saves the input.
 */
#ifndef DST_FUZZ_H
#define DST_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef DST_LIBFUZZER
#define FUZZ_GLUE(name)                                               \
	int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size); \
	int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)  \
	{                                                             \
		return fuzz_##name(data, size);                       \
	}
#else
#define FUZZ_GLUE(name)
#endif

#define FUZZ_TARGET(name)                                              \
	int fuzz_##name(const uint8_t *data, size_t size);             \
	static int fuzz_body_##name(const uint8_t *data, size_t size); \
	int fuzz_##name(const uint8_t *data, size_t size)              \
	{                                                              \
		return fuzz_body_##name(data, size);                   \
	}                                                              \
	FUZZ_GLUE(name)                                                \
	static int fuzz_body_##name(const uint8_t *data, size_t size)

#define FUZZ_ASSERT(cond)                                                                      \
	do {                                                                                   \
		if (!(cond)) {                                                                 \
			fprintf(stderr, "%s:%d: FUZZ_ASSERT failed: %s\n", __FILE__, __LINE__, \
				#cond);                                                        \
			abort();                                                               \
		}                                                                              \
	} while (0)

/* A NUL-terminated copy of the input (for parsers of C strings); free it. */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

#endif
