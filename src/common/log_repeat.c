/* log_repeat.c - suppression of repeated log lines (see log_repeat.h). Only
 * the last message is remembered: cheap, and enough for the floods that
 * matter (one failure repeated); interleaved repeats are written as they
 * are. */
#include <string.h>

#include "log_repeat.h"

bool log_repeat_check(struct log_repeat *r, int lvl, const char *msg, uint64_t now_ns,
		      unsigned long *repeated, int *repeated_lvl)
{
	*repeated = 0;
	*repeated_lvl = lvl;
	bool same =
	    r->have && r->last_lvl == lvl && strncmp(r->last, msg, sizeof(r->last) - 1) == 0;
	if (same && now_ns - r->since_ns < LOG_REPEAT_WINDOW_NS) {
		r->count++;
		return false;
	}
	*repeated = r->count;
	*repeated_lvl = r->last_lvl;
	r->count = 0;
	r->have = true;
	r->last_lvl = lvl;
	r->since_ns = now_ns;
	if (!same) {
		strncpy(r->last, msg, sizeof(r->last) - 1);
		r->last[sizeof(r->last) - 1] = '\0';
	}
	return true;
}

unsigned long log_repeat_take(struct log_repeat *r, int *lvl)
{
	unsigned long n = r->count;
	*lvl = r->last_lvl;
	r->count = 0;
	/* The next copy is written: its reader has not seen it since. */
	r->have = false;
	return n;
}
