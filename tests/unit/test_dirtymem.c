/* test_dirtymem.c - /proc/vmstat parsing and the room test that decides
 * whether a buffered write may be done on the event loop. */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "common/dirtymem.h"
#include "unit.h"

/* Lines as the kernel prints them, with look-alike names around the ones
 * that count: a prefix match would take the wrong counter. */
static const char vmstat[] = "nr_free_pages 5000000\n"
			     "nr_dirty_threshold 1219924\n"
			     "nr_dirty 129\n"
			     "nr_writeback_temp 7\n"
			     "nr_writeback 3\n"
			     "nr_dirtied 123456789\n"
			     "nr_dirty_background_threshold 609217\n"
			     "pgpgin 1\n";

TEST(parse_counters)
{
	struct dirtymem m = {0};
	CHECK_EQ(dirtymem_parse(vmstat, &m), 0);
	CHECK_EQ(m.dirty, 129);
	CHECK_EQ(m.writeback, 3);
	CHECK_EQ(m.bg_thresh, 609217);
	CHECK_EQ(m.thresh, 1219924);
}

TEST(parse_missing_or_bad)
{
	struct dirtymem m = {.dirty = 42};
	CHECK_EQ(dirtymem_parse("nr_dirty 1\nnr_writeback 2\n", &m), -EINVAL);
	CHECK_EQ(dirtymem_parse("nr_dirty_threshold 5\nnr_writeback 2\n"
				"nr_dirty_background_threshold 9\n",
				&m),
		 -EINVAL); /* no nr_dirty of its own */
	CHECK_EQ(dirtymem_parse("nr_dirty x\nnr_writeback 2\nnr_dirty_threshold 5\n"
				"nr_dirty_background_threshold 9\n",
				&m),
		 -EINVAL);
	CHECK_EQ(dirtymem_parse("", &m), -EINVAL);
	CHECK_EQ(m.dirty, 42); /* untouched on failure */
	/* The last line may lack its newline. */
	CHECK_EQ(dirtymem_parse("nr_dirty 1\nnr_writeback 2\nnr_dirty_threshold 5\n"
				"nr_dirty_background_threshold 9",
				&m),
		 0);
	CHECK_EQ(m.bg_thresh, 9);
	CHECK_EQ(m.thresh, 5);
}

/* Room is what is left below the kernel's freerun ceiling, the middle of
 * the two thresholds, less the margin. */
TEST(room)
{
	struct dirtymem m = {
	    .dirty = 1000, .writeback = 500, .bg_thresh = 100000, .thresh = 200000};
	uint64_t ceiling = 150000;
	uint64_t free_pages = ceiling - m.dirty - m.writeback - DIRTYMEM_MARGIN_PAGES;
	CHECK(dirtymem_room(&m, 256));
	CHECK(dirtymem_room(&m, free_pages - 1));
	CHECK(!dirtymem_room(&m, free_pages));
	/* Above the background threshold (the flusher is at work) writers
	 * still run free up to the ceiling. */
	m.dirty = m.bg_thresh + 1000;
	CHECK(dirtymem_room(&m, 256));
	/* Pages under writeback count: they hold the writer up just the same. */
	m.dirty = 1000;
	m.writeback = ceiling;
	CHECK(!dirtymem_room(&m, 1));
	/* A machine whose ceiling is below the margin never writes inline. */
	struct dirtymem tiny = {.bg_thresh = DIRTYMEM_MARGIN_PAGES / 2,
				.thresh = DIRTYMEM_MARGIN_PAGES};
	CHECK(!dirtymem_room(&tiny, 1));
}

/* This machine's own counters parse (the sampler depends on it). */
TEST(parse_this_machine)
{
	int fd = open("/proc/vmstat", O_RDONLY);
	if (fd < 0)
		return; /* no procfs here: nothing to check */
	char text[16384];
	ssize_t n = read(fd, text, sizeof(text) - 1);
	close(fd);
	CHECK(n > 0);
	text[n > 0 ? n : 0] = '\0';
	struct dirtymem m;
	CHECK_EQ(dirtymem_parse(text, &m), 0);
	CHECK(m.bg_thresh > 0);
}

UNIT_MAIN(T(parse_counters), T(parse_missing_or_bad), T(room), T(parse_this_machine))
