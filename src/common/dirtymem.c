/* dirtymem.c - the kernel's dirty page cache counters, sampled cheaply, to
 * tell whether a buffered write can be done on the event loop without
 * being throttled. See dirtymem.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dirtymem.h"
#include "ev.h"
#include "log.h"

/* The value of the line "NAME VALUE" in text. */
static int field(const char *text, const char *name, uint64_t *out)
{
	size_t len = strlen(name);
	const char *p = text;
	while (*p) {
		if (strncmp(p, name, len) == 0 && p[len] == ' ') {
			char *end;
			errno = 0;
			unsigned long long v = strtoull(p + len + 1, &end, 10);
			if (errno || end == p + len + 1)
				return -EINVAL;
			*out = v;
			return 0;
		}
		const char *nl = strchr(p, '\n');
		if (!nl)
			break;
		p = nl + 1;
	}
	return -EINVAL;
}

int dirtymem_parse(const char *text, struct dirtymem *out)
{
	struct dirtymem m;
	if (field(text, "nr_dirty", &m.dirty) < 0 ||
	    field(text, "nr_writeback", &m.writeback) < 0 ||
	    field(text, "nr_dirty_background_threshold", &m.bg_thresh) < 0 ||
	    field(text, "nr_dirty_threshold", &m.thresh) < 0)
		return -EINVAL;
	*out = m;
	return 0;
}

/* The kernel's freerun ceiling (mm/page-writeback.c): below it no writer
 * is throttled, whatever the background flusher is doing. */
bool dirtymem_room(const struct dirtymem *m, uint64_t pages)
{
	uint64_t used = m->dirty + m->writeback + pages + DIRTYMEM_MARGIN_PAGES;
	return used < (m->bg_thresh + m->thresh) / 2;
}

bool dirtymem_room_now(uint64_t pages)
{
	static int fd = -2;
	static uint64_t sampled_ns;
	static bool ok;
	static struct dirtymem m;
	static bool warned;

	uint64_t now = ev_now_ns();
	if (fd == -2 || now - sampled_ns >= DIRTYMEM_PERIOD_NS) {
		if (fd == -2)
			fd = open("/proc/vmstat", O_RDONLY | O_CLOEXEC);
		char text[16384];
		ssize_t n = fd >= 0 ? pread(fd, text, sizeof(text) - 1, 0) : -1;
		ok = false;
		if (n > 0) {
			text[n] = '\0';
			ok = dirtymem_parse(text, &m) == 0;
		}
		if (!ok && !warned) {
			warned = true;
			log_info("/proc/vmstat has no dirty page counters: writes go through "
				 "the IO workers");
		}
		sampled_ns = now;
	}
	return ok && dirtymem_room(&m, pages);
}
