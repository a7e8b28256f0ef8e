/* ctl_line.h - the control socket's request line, parsed without sockets so
 * that it is unit tested and fuzzed directly; ctl.c does the IO.
 *
 * A request is one line "COMMAND [ARGS...]\n": words separated by spaces or
 * tabs, at most CTL_MAX_ARGS of them, in at most CTL_MAX_LINE bytes with
 * the newline. Whatever follows the newline is ignored.
 */
#ifndef DST_DAEMON_CTL_LINE_H
#define DST_DAEMON_CTL_LINE_H

#include <stddef.h>

#define CTL_MAX_LINE 4096
#define CTL_MAX_ARGS 32

enum ctl_line_status {
	CTL_LINE_MORE,	/* no newline yet: read more */
	CTL_LINE_OK,	/* argv[0..argc) set, argv[argc] = NULL */
	CTL_LINE_ERROR, /* *why says what is wrong; answer it and close */
};

/* buf[0..len) is what the client has sent so far; buf has room for cap
 * bytes (cap <= CTL_MAX_LINE). On OK, the words are NUL-terminated in place
 * in buf and argv (CTL_MAX_ARGS + 1 entries) points at them. */
enum ctl_line_status ctl_line_parse(char *buf, size_t len, size_t cap, int *argc, char **argv,
				    const char **why);

#endif
