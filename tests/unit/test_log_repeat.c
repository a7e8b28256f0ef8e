/* test_log_repeat.c - repeated log lines: the suppression logic on its own
 * (window, levels, counts), and log_msg writing a flood to a file as the
 * first copy, one "repeated" line and the next message. */
#include <stdlib.h>

#include "common/log.h"
#include "common/log_repeat.h"
#include "unit.h"

#define SEC 1000000000ull

TEST(first_and_different_lines_are_written)
{
	struct log_repeat r = {0};
	unsigned long rep;
	int lvl;
	CHECK(log_repeat_check(&r, LOG_WARN, "a", 1 * SEC, &rep, &lvl));
	CHECK_EQ(rep, 0);
	CHECK(log_repeat_check(&r, LOG_WARN, "b", 1 * SEC, &rep, &lvl));
	CHECK_EQ(rep, 0);
	CHECK(log_repeat_check(&r, LOG_WARN, "a", 1 * SEC, &rep, &lvl));
	CHECK_EQ(rep, 0);
}

TEST(repeats_are_counted_and_said_before_the_next_line)
{
	struct log_repeat r = {0};
	unsigned long rep;
	int lvl;
	CHECK(log_repeat_check(&r, LOG_ERR, "accept: Too many open files", 5 * SEC, &rep, &lvl));
	for (int i = 0; i < 10000; i++)
		CHECK(!log_repeat_check(&r, LOG_ERR, "accept: Too many open files",
					5 * SEC + (uint64_t)i * 1000, &rep, &lvl));
	CHECK(log_repeat_check(&r, LOG_INFO, "node back", 6 * SEC, &rep, &lvl));
	CHECK_EQ(rep, 10000);
	CHECK_EQ(lvl, LOG_ERR); /* said at the level of the repeated line */
	CHECK(!log_repeat_check(&r, LOG_INFO, "node back", 6 * SEC + 1, &rep, &lvl));
}

TEST(the_same_text_at_another_level_is_another_line)
{
	struct log_repeat r = {0};
	unsigned long rep;
	int lvl;
	CHECK(log_repeat_check(&r, LOG_WARN, "x", 0, &rep, &lvl));
	CHECK(log_repeat_check(&r, LOG_ERR, "x", 1, &rep, &lvl));
	CHECK_EQ(rep, 0);
}

TEST(after_the_window_the_line_is_written_again_with_the_count)
{
	struct log_repeat r = {0};
	unsigned long rep;
	int lvl;
	uint64_t t = 100 * SEC;
	CHECK(log_repeat_check(&r, LOG_WARN, "refused", t, &rep, &lvl));
	CHECK(!log_repeat_check(&r, LOG_WARN, "refused", t + SEC, &rep, &lvl));
	CHECK(!log_repeat_check(&r, LOG_WARN, "refused", t + LOG_REPEAT_WINDOW_NS - 1, &rep, &lvl));
	CHECK(log_repeat_check(&r, LOG_WARN, "refused", t + LOG_REPEAT_WINDOW_NS, &rep, &lvl));
	CHECK_EQ(rep, 2);
	/* A new window starts there. */
	CHECK(
	    !log_repeat_check(&r, LOG_WARN, "refused", t + LOG_REPEAT_WINDOW_NS + SEC, &rep, &lvl));
	CHECK(log_repeat_check(&r, LOG_WARN, "refused", t + 2 * LOG_REPEAT_WINDOW_NS, &rep, &lvl));
	CHECK_EQ(rep, 1);
}

TEST(take_says_what_is_pending_once)
{
	struct log_repeat r = {0};
	unsigned long rep;
	int lvl;
	CHECK(log_repeat_check(&r, LOG_WARN, "m", 0, &rep, &lvl));
	CHECK(!log_repeat_check(&r, LOG_WARN, "m", 1, &rep, &lvl));
	CHECK(!log_repeat_check(&r, LOG_WARN, "m", 2, &rep, &lvl));
	CHECK_EQ(log_repeat_take(&r, &lvl), 2);
	CHECK_EQ(lvl, LOG_WARN);
	CHECK_EQ(log_repeat_take(&r, &lvl), 0);
	/* After a take (a reopened log), the message is written again. */
	CHECK(log_repeat_check(&r, LOG_WARN, "m", 3, &rep, &lvl));
	CHECK_EQ(rep, 0);
}

/* Lines of f that contain needle. */
static int count_lines(FILE *f, const char *needle)
{
	char line[4096];
	int n = 0;
	rewind(f);
	while (fgets(line, sizeof(line), f))
		n += strstr(line, needle) != NULL;
	return n;
}

TEST(log_msg_writes_a_flood_as_three_lines)
{
	FILE *f = tmpfile();
	CHECK(f != NULL);
	if (!f)
		return;
	log_init("test_log_repeat", f, LOG_INFO);
	for (int i = 0; i < 5000; i++)
		log_warn("accept on %s: %s", "127.0.0.1:1234", "Too many open files");
	log_info("node %s: back", "n-0");
	log_debug("not written at LOG_INFO");
	CHECK_EQ(count_lines(f, ""), 3);
	CHECK_EQ(count_lines(f, "warning: accept on 127.0.0.1:1234: Too many open files"), 1);
	CHECK_EQ(count_lines(f, "warning: last message repeated 4999 times"), 1);
	CHECK_EQ(count_lines(f, "info: node n-0: back"), 1);
	/* A pending count is said by log_flush_repeats, once. */
	log_info("node %s: back", "n-0");
	log_flush_repeats();
	log_flush_repeats();
	CHECK_EQ(count_lines(f, "info: last message repeated 1 time"), 1);
	CHECK_EQ(count_lines(f, ""), 4);
	log_init("test_log_repeat", stderr, LOG_INFO);
	fclose(f);
}

UNIT_MAIN(T(first_and_different_lines_are_written),
	  T(repeats_are_counted_and_said_before_the_next_line),
	  T(the_same_text_at_another_level_is_another_line),
	  T(after_the_window_the_line_is_written_again_with_the_count),
	  T(take_says_what_is_pending_once), T(log_msg_writes_a_flood_as_three_lines))
