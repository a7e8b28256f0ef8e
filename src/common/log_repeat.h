/* log_repeat.h - the suppression of repeated log lines: the same message at
 * the same level, again within a window, is counted instead of written; the
 * count is said ("last message repeated N times") before the next different
 * line or the first copy after the window. A daemon that hits the same wall
 * over and over (a full descriptor table, a node refusing every retry) then
 * writes two lines per window instead of one per attempt. */
#ifndef DST_LOG_REPEAT_H
#define DST_LOG_REPEAT_H

#include <stdbool.h>
#include <stdint.h>

#define LOG_REPEAT_WINDOW_NS (10 * 1000000000ull)
#define LOG_REPEAT_MAX	     2048 /* longer messages are compared by this prefix */

struct log_repeat {
	char last[LOG_REPEAT_MAX];
	int last_lvl;
	bool have;
	unsigned long count; /* copies suppressed since the last written one */
	uint64_t since_ns;   /* when the last written copy went out */
};

/* A message at level lvl is about to be written at now_ns. Returns false if
 * it is to be suppressed (counted). True: write it, and if *repeated is
 * nonzero, first say that the last message was repeated that many times
 * (at level *repeated_lvl). */
bool log_repeat_check(struct log_repeat *r, int lvl, const char *msg, uint64_t now_ns,
		      unsigned long *repeated, int *repeated_lvl);

/* What is suppressed and not yet said (at exit, at a log reopen): returns
 * the count and forgets it. */
unsigned long log_repeat_take(struct log_repeat *r, int *lvl);

#endif
