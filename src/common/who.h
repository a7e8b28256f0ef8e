/* who.h - name a process in an error message: a dst daemon of our state dir
 * by what it runs ("dstd 4242 (storage st)"), anything else by its command
 * name ("qemu-io, pid 1234"). For refusals only: it reads /proc and the
 * state dir. */
#ifndef DST_WHO_H
#define DST_WHO_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct who {
	pid_t pid;
	char comm[32]; /* command name, "" if unknown */
	char name[68]; /* the dst export or storage it runs, "" if none of ours */
	char type[16]; /* its config's type: "export", "storage" */
};

/* What pid is. False if pid is 0 or gone. */
bool who_is(pid_t pid, struct who *w);

/* The daemon of our state dir whose pid is pid: its name, true. */
bool who_daemon(pid_t pid, char *name, size_t len);

/* The words after "in use by", into buf: "dstd 4242 (storage st, DETAIL)"
 * for a daemon of ours (detail may be NULL), "dstd 4242" for one of
 * another state dir, "another process (qemu-io, pid 1234)", or "another
 * process" when w is NULL or says nothing. */
const char *who_format(const struct who *w, const char *detail, char *buf, size_t len);

#endif
