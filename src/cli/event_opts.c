/* event_opts.c - --on-event and --on-event-timeout on dst's command line
 * (see cli.h). The program is checked here and saved by its full path: the
 * daemon runs it from another directory, and a typo should fail now, not at
 * the first node loss. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "common/config.h"
#include "common/util.h"

bool event_opts_take(struct event_opts *e, int c, const char *arg)
{
	switch (c) {
	case OPT_ON_EVENT: e->program = arg; return true;
	case OPT_ON_EVENT_TIMEOUT: e->timeout = arg; return true;
	default: return false;
	}
}

static bool executable(const char *path)
{
	struct stat sb;
	return stat(path, &sb) == 0 && S_ISREG(sb.st_mode) && access(path, X_OK) == 0;
}

/* PROGRAM's full path in *out (malloc'd), from PATH when it has no '/'. */
static int resolve(const char *prog, char **out)
{
	if (strchr(prog, '/')) {
		char buf[PATH_MAX];
		if (!realpath(prog, buf))
			return die("--on-event %s: %s", prog, strerror(errno));
		if (!executable(buf))
			return die("--on-event %s: not an executable file", prog);
		*out = xstrdup(buf);
		return 0;
	}
	const char *path = getenv("PATH");
	char *dirs = xstrdup(path ? path : "/usr/bin:/bin");
	char *save = NULL;
	for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		char *cand = xasprintf("%s/%s", d[0] ? d : ".", prog);
		if (executable(cand) && cand[0] == '/') {
			*out = cand;
			free(dirs);
			return 0;
		}
		free(cand);
	}
	free(dirs);
	return die("--on-event %s: no such program in PATH", prog);
}

int event_opts_save(struct conf *conf, const struct event_opts *e)
{
	if (e->timeout) {
		uint64_t x;
		if (parse_u64(e->timeout, &x) < 0 || x > 86400)
			return die("--on-event-timeout %s: expected 0 to 86400 seconds (0: never)",
				   e->timeout);
		conf_set(conf, "on-event-timeout", e->timeout);
	}
	if (!e->program)
		return 0;
	if (!e->program[0]) {
		conf_del(conf, "on-event");
		return 0;
	}
	char *full;
	if (resolve(e->program, &full))
		return 1;
	conf_set(conf, "on-event", full);
	free(full);
	return 0;
}
