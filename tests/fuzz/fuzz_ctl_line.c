/* fuzz_ctl_line.c - the control socket's request line (ctl_line_parse), as
 * ctl.c runs it: after every read, on everything received so far.
 *
 * Input: the bytes a client sends. The first byte sets how many arrive per
 * read (1 to 256), to reach the states in between. */
#include "daemon/ctl_line.h"
#include "fuzz.h"

FUZZ_TARGET(ctl_line)
{
	if (size < 1)
		return 0;
	size_t step = (size_t)data[0] + 1;
	const uint8_t *in = data + 1;
	size_t left = size - 1, got = 0;
	char *buf = malloc(CTL_MAX_LINE);
	enum ctl_line_status st = CTL_LINE_MORE;
	int argc = -1;
	char *argv[CTL_MAX_ARGS + 1];
	const char *why = NULL;
	/* ctl.c reads at most until one byte before the end of its buffer. */
	while (st == CTL_LINE_MORE && left > 0) {
		size_t n = step;
		if (n > left)
			n = left;
		if (n > CTL_MAX_LINE - 1 - got)
			n = CTL_MAX_LINE - 1 - got;
		FUZZ_ASSERT(n > 0);
		memcpy(buf + got, in, n);
		in += n, left -= n, got += n;
		st = ctl_line_parse(buf, got, CTL_MAX_LINE, &argc, argv, &why);
	}
	if (st == CTL_LINE_OK) {
		FUZZ_ASSERT(argc >= 1 && argc <= CTL_MAX_ARGS && argv[argc] == NULL);
		for (int i = 0; i < argc; i++) {
			FUZZ_ASSERT(argv[i] >= buf && argv[i] < buf + got);
			size_t l = strlen(argv[i]);
			FUZZ_ASSERT(l > 0 && argv[i] + l < buf + got);
			FUZZ_ASSERT(!strpbrk(argv[i], " \t\n"));
			if (i)
				FUZZ_ASSERT(argv[i] > argv[i - 1]);
		}
	} else if (st == CTL_LINE_ERROR) {
		FUZZ_ASSERT(why && why[0]);
	} else {
		FUZZ_ASSERT(got < CTL_MAX_LINE - 1 && !memchr(buf, '\n', got));
	}
	free(buf);
	return 0;
}
