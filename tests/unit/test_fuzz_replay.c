/* test_fuzz_replay.c - every fuzz target (tests/fuzz/fuzz_*.c) run on its
 * checked-in seed corpus (tests/fuzz/corpus/NAME/) and on every input that
 * once crashed it (tests/fuzz/regressions/NAME/), in the normal build: under
 * `make check` that is ASan+UBSan, so a fixed bug that comes back is caught
 * without clang or libFuzzer. A target that aborts ends this test with it;
 * the last "replay" line says which input did it.
 *
 * Inputs are read from $DST_FUZZ_DIR, default tests/fuzz (tests/run.sh runs
 * from the top of the tree). */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "unit.h"

#define TARGETS(X) \
	X(nbd_options) X(nbd_request) X(nbd_server) X(nbd_client_hs) X(nbd_uri) X(conf) X(ctl_line)

#define DECLARE(name) int fuzz_##name(const uint8_t *data, size_t size);
TARGETS(DECLARE)

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Feed every file of dir to fn, in name order; -1 if dir cannot be read. */
static int replay_dir(const char *dir, int (*fn)(const uint8_t *, size_t))
{
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	char **names = NULL;
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		names = realloc(names, (n + 1) * sizeof(*names));
		names[n++] = strdup(de->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof(*names), by_name);
	int count = 0;
	for (size_t i = 0; i < n; i++) {
		char path[4096];
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		FILE *f = fopen(path, "rb");
		if (!f) {
			fprintf(stderr, "%s: %s\n", path, strerror(errno));
			unit_failed_checks++;
			continue;
		}
		struct stat st;
		fstat(fileno(f), &st);
		size_t len = (size_t)st.st_size;
		/* An exactly sized buffer, as libFuzzer gives: reads past the end
		 * are caught by ASan here too. */
		uint8_t *buf = malloc(len ? len : 1);
		if (len && fread(buf, 1, len, f) != len) {
			fprintf(stderr, "%s: short read\n", path);
			unit_failed_checks++;
		} else {
			printf("replay %s\n", path);
			fflush(stdout);
			fn(buf, len);
			count++;
		}
		free(buf);
		fclose(f);
		free(names[i]);
	}
	free(names);
	return count;
}

static void replay(const char *name, int (*fn)(const uint8_t *, size_t))
{
	const char *top = getenv("DST_FUZZ_DIR");
	if (!top || !*top)
		top = "tests/fuzz";
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/corpus/%s", top, name);
	int seeds = replay_dir(dir, fn);
	if (seeds <= 0)
		fprintf(stderr, "%s: no seed corpus (run from the top of the tree)\n", dir);
	CHECK(seeds > 0);
	/* Not every target has ever crashed: no directory is fine. */
	snprintf(dir, sizeof(dir), "%s/regressions/%s", top, name);
	replay_dir(dir, fn);
}

#define TEST_TARGET(name)                   \
	TEST(name)                          \
	{                                   \
		replay(#name, fuzz_##name); \
	}
TARGETS(TEST_TARGET)

#define ENTRY(name) T(name),
UNIT_MAIN(TARGETS(ENTRY))
