/* ctl_line.c - split a control request line into words (see ctl_line.h). */
#include <string.h>

#include "ctl_line.h"

enum ctl_line_status ctl_line_parse(char *buf, size_t len, size_t cap, int *argc, char **argv,
				    const char **why)
{
	*argc = 0;
	argv[0] = NULL;
	char *nl = memchr(buf, '\n', len);
	/* A NUL would end the words early and hide the rest of the line:
	 * refuse it rather than run a different command than was sent. */
	if (memchr(buf, '\0', nl ? (size_t)(nl - buf) : len)) {
		*why = "NUL byte in command";
		return CTL_LINE_ERROR;
	}
	if (!nl) {
		if (len + 1 >= cap) {
			*why = "command line too long";
			return CTL_LINE_ERROR;
		}
		return CTL_LINE_MORE;
	}
	*nl = '\0';
	int n = 0;
	for (char *p = buf;;) {
		p += strspn(p, " \t");
		if (!*p)
			break;
		/* Refuse rather than drop words: a shortened command (a path
		 * cut at a space) must not run as if it were whole. */
		if (n == CTL_MAX_ARGS) {
			*why = "too many words in command";
			return CTL_LINE_ERROR;
		}
		argv[n++] = p;
		p += strcspn(p, " \t");
		if (*p)
			*p++ = '\0';
	}
	argv[n] = NULL;
	*argc = n;
	if (n == 0) {
		*why = "empty command";
		return CTL_LINE_ERROR;
	}
	return CTL_LINE_OK;
}
