/* dirtymem.h - is there room in the kernel's dirty page cache for a write
 * that must not wait? A buffered write past the kernel's dirty limits is
 * throttled (balance_dirty_pages sleeps the writer), which must never
 * happen on an event loop. The kernel lets writers run free while dirty
 * and writeback pages stay below the middle between its background and
 * its hard threshold (its "freerun ceiling"); this keeps a margin below
 * that. (A memory cgroup with a limit of its own has lower thresholds,
 * which /proc/vmstat does not show: there the kernel may throttle
 * sooner.) */
#ifndef DST_DIRTYMEM_H
#define DST_DIRTYMEM_H

#include <stdbool.h>
#include <stdint.h>

/* The /proc/vmstat counters that decide it, in pages. */
struct dirtymem {
	uint64_t dirty, writeback;
	uint64_t bg_thresh; /* nr_dirty_background_threshold */
	uint64_t thresh;    /* nr_dirty_threshold */
};

/* Parse /proc/vmstat text. Returns 0, or -EINVAL if a counter is missing. */
int dirtymem_parse(const char *text, struct dirtymem *out);

/* Is dirty + writeback memory below the freerun ceiling, with room for
 * `pages` more and DIRTYMEM_MARGIN_PAGES (what a fast writer dirties
 * between two samples: 64 MiB of 4 KiB pages)? */
#define DIRTYMEM_MARGIN_PAGES (16384u)
bool dirtymem_room(const struct dirtymem *m, uint64_t pages);

/* The same, from /proc/vmstat sampled at most every DIRTYMEM_PERIOD_NS
 * (reading it costs tens of microseconds; between samples a few hundred
 * MiB can be dirtied, which the margin in dirtymem_room covers). False
 * when /proc/vmstat cannot be read. Not thread-safe: one event loop. */
#define DIRTYMEM_PERIOD_NS (20u * 1000 * 1000)
bool dirtymem_room_now(uint64_t pages);

#endif
