/* test_ctl_line.c - the control socket's request line (daemon/ctl_line.h). */
#include <string.h>

#include "daemon/ctl_line.h"
#include "unit.h"

struct parsed {
	char buf[CTL_MAX_LINE];
	char *argv[CTL_MAX_ARGS + 1];
	int argc;
	const char *why;
	enum ctl_line_status st;
};

static void parse(struct parsed *p, const char *in, size_t len)
{
	memset(p, 0, sizeof(*p));
	memcpy(p->buf, in, len);
	p->why = NULL;
	p->st = ctl_line_parse(p->buf, len, sizeof(p->buf), &p->argc, p->argv, &p->why);
}

#define PARSE(p, lit) parse(p, lit, sizeof(lit) - 1)

TEST(words)
{
	struct parsed p;
	PARSE(&p, "show\n");
	CHECK_EQ(p.st, CTL_LINE_OK);
	CHECK_EQ(p.argc, 1);
	CHECK_STR(p.argv[0], "show");
	CHECK(p.argv[1] == NULL);

	PARSE(&p, " \tsuspend  n-0\t\n");
	CHECK_EQ(p.st, CTL_LINE_OK);
	CHECK_EQ(p.argc, 2);
	CHECK_STR(p.argv[0], "suspend");
	CHECK_STR(p.argv[1], "n-0");

	/* What follows the newline is not part of the command. */
	PARSE(&p, "stop\nshow\n");
	CHECK_EQ(p.st, CTL_LINE_OK);
	CHECK_EQ(p.argc, 1);
	CHECK_STR(p.argv[0], "stop");
}

TEST(incomplete)
{
	struct parsed p;
	PARSE(&p, "sho");
	CHECK_EQ(p.st, CTL_LINE_MORE);
	PARSE(&p, "");
	CHECK_EQ(p.st, CTL_LINE_MORE);
}

TEST(errors)
{
	struct parsed p;
	PARSE(&p, "\n");
	CHECK_EQ(p.st, CTL_LINE_ERROR);
	CHECK_STR(p.why, "empty command");
	PARSE(&p, "  \t \n");
	CHECK_EQ(p.st, CTL_LINE_ERROR);

	/* A NUL would have hidden "stop" behind "show": refused at once,
	 * even before the newline arrives. */
	PARSE(&p, "show\0stop\n");
	CHECK_EQ(p.st, CTL_LINE_ERROR);
	CHECK_STR(p.why, "NUL byte in command");
	PARSE(&p, "show\0");
	CHECK_EQ(p.st, CTL_LINE_ERROR);
	/* After the newline it does not matter. */
	PARSE(&p, "show\n\0");
	CHECK_EQ(p.st, CTL_LINE_OK);

	/* Too long: a full buffer without a newline. */
	char big[CTL_MAX_LINE];
	memset(big, 'a', sizeof(big));
	parse(&p, big, CTL_MAX_LINE - 2);
	CHECK_EQ(p.st, CTL_LINE_MORE);
	parse(&p, big, CTL_MAX_LINE - 1);
	CHECK_EQ(p.st, CTL_LINE_ERROR);
	CHECK_STR(p.why, "command line too long");
}

TEST(max_words)
{
	struct parsed p;
	char line[256] = "";
	for (int i = 0; i < CTL_MAX_ARGS; i++)
		strcat(line, i ? " w" : "w");
	strcat(line, "\n");
	parse(&p, line, strlen(line));
	CHECK_EQ(p.st, CTL_LINE_OK);
	CHECK_EQ(p.argc, CTL_MAX_ARGS);
	CHECK(p.argv[CTL_MAX_ARGS] == NULL);

	/* One more word is refused, not dropped: "add-node" with a path of
	 * many spaces must not run with half of it. */
	line[strlen(line) - 1] = '\0';
	strcat(line, " extra\n");
	parse(&p, line, strlen(line));
	CHECK_EQ(p.st, CTL_LINE_ERROR);
	CHECK_STR(p.why, "too many words in command");
	/* Trailing blanks are not words. */
	PARSE(&p, "a b c    \t\n");
	CHECK_EQ(p.argc, 3);
}

UNIT_MAIN(T(words), T(incomplete), T(errors), T(max_words))
