/* cmd_verify.c - `dst verify`: compare the legs of a running mirror while it
 * is in use, and with --repair make them agree. The daemon does the work
 * (alg/mirror_verify.c); this command starts it, aborts it, or with --wait
 * follows it to the end and says what it found. */
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "common/config.h"
#include "common/state.h"
#include "common/util.h"
#include "show.h"

static const char verify_help[] =
    "usage: dst verify NAME [--repair] [--rate BYTES/s] [--range START:LEN] [--wait]\n"
    "       dst verify NAME --abort\n"
    "\n"
    "Compare the legs of the running mirror NAME block by block (4 KiB) while the\n"
    "storage stays in use. Regions of up to 4 MiB are compared a few at a time;\n"
    "a write to a region being compared waits for it, so a write racing the\n"
    "comparison never looks like a mismatch. Legs that are dst exports answer\n"
    "with a CRC32C per block (their dst:csum-4k context): 4 bytes cross the\n"
    "network per 4 KiB block. Other legs (another NBD server, a local disk) are\n"
    "read, and where both legs were read the blocks are compared byte for byte.\n"
    "Every range that differs is logged, in NAME.log in the state dir:\n"
    "  verify: mismatch at offset O length L: NODE differs from SOURCE\n"
    "and the counts are in dst show NAME (verify/...), dst status and the metrics.\n"
    "\n"
    "  --repair        write the blocks that differ from the source leg to the\n"
    "                  others. The source is the first leg, in the mirror's order,\n"
    "                  that is in sync: with every leg in sync, the first node, the\n"
    "                  one a new mirror's initial sync copied to the others. Legs\n"
    "                  keep no checksums of their own, so where they disagree\n"
    "                  nothing tells which is right: repair takes one leg for the\n"
    "                  whole run, and says which (verify/source)\n"
    "  --rate BYTES/s  compare at most this many bytes per second (e.g. 100M), one\n"
    "                  region at a time, so foreground IO keeps priority\n"
    "  --range START:LEN\n"
    "                  only these bytes of the storage (sizes like 1G:512M)\n"
    "  --wait          draw the progress until the verify ends, then print what\n"
    "                  it found\n"
    "  --abort         stop a running verify\n"
    "\n"
    "A leg lost during the verify is left out of the rest of it; with fewer than\n"
    "two legs in sync it stops and says how to go on (--range). If dstd stops or\n"
    "dies meanwhile, the verify resumes when the storage starts again.\n"
    "\n"
    "A monthly scrub is left to a timer, for instance in root's crontab:\n"
    "  0 3 1 * *  dst verify NAME --wait --rate 200M\n"
    "\n"
    "Exit status: without --wait, 0 when the verify started. With --wait, 0 when\n"
    "it finished and no difference is left (none found, or all repaired), 3 when\n"
    "it found differences it did not repair, 1 when it could not start, was\n"
    "aborted or stopped.\n";

static bool parse_range(const char *s, uint64_t *off, uint64_t *len)
{
	const char *colon = strchr(s, ':');
	if (!colon || colon == s || !colon[1])
		return false;
	char *start = strndup(s, (size_t)(colon - s));
	bool ok = parse_size(start, off) == 0 && parse_size(colon + 1, len) == 0 && *len > 0;
	free(start);
	return ok;
}

/* One `show` of the running storage, parsed: every attribute of a poll
 * comes from the same moment. NULL (and *n 0) if the daemon is gone. */
struct snap {
	const char *name;
	struct attr *a;
	size_t n;
};

static bool snap_take(struct snap *s)
{
	char err[512];
	struct strbuf reply;
	attrs_free(s->a, s->n);
	s->a = NULL, s->n = 0;
	if (ctl_call(s->name, "show", &reply, err, sizeof(err)) < 0)
		return false;
	s->n = attrs_parse(reply.s, &s->a);
	sb_free(&reply);
	return true;
}

/* NAME/verify/leaf, or dflt. */
static const char *vattr(const struct snap *s, const char *leaf, const char *dflt)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/verify/%s", s->name, leaf);
	const char *v = attrs_get(s->a, s->n, path);
	return v ? v : dflt;
}

static unsigned long long vnum(const struct snap *s, const char *leaf)
{
	return strtoull(vattr(s, leaf, "0"), NULL, 10);
}

static int wait_done(const char *name)
{
	bool tty = isatty(STDERR_FILENO);
	int last_pct = -1;
	struct snap s = {.name = name};
	for (;;) {
		if (!snap_take(&s)) {
			if (tty)
				fputc('\n', stderr);
			return die("'%s' stopped during the verify; 'dst start %s' resumes it",
				   name, name);
		}
		if (strcmp(vattr(&s, "state", ""), "running") != 0)
			break;
		unsigned long long pct = vnum(&s, "percent");
		if (tty || (int)pct / 10 != last_pct / 10) {
			char bar[41];
			for (unsigned i = 0; i < 40; i++)
				bar[i] = i < pct * 40 / 100 ? '#' : '.';
			bar[40] = '\0';
			fprintf(stderr, "%s[%s] %3llu%%  %s MiB/s  ETA %ss  %llu blocks differ%s",
				tty ? "\r" : "", bar, pct, vattr(&s, "mib_s", "?"),
				vattr(&s, "eta_s", "?"), vnum(&s, "mismatch_blocks"),
				tty ? "   " : "\n");
			last_pct = (int)pct;
		}
		poll(NULL, 0, 300);
	}
	if (tty)
		fputc('\n', stderr);
	const char *state = vattr(&s, "state", "");
	unsigned long long checked = vnum(&s, "regions_checked"), bad = vnum(&s, "mismatch_blocks");
	unsigned long long fixed = vnum(&s, "repaired_blocks");
	int rc = 0;
	if (strcmp(state, "done") != 0) {
		const char *reason = vattr(&s, "reason", "");
		rc = die("verify of '%s' %s%s%s after %llu regions", name, state,
			 reason[0] ? ": " : "", reason, checked);
	} else {
		printf("verify of '%s' done in %s s (%s): %llu regions, %llu blocks differ in %llu "
		       "ranges, %llu repaired\n",
		       name, vattr(&s, "seconds", ""), vattr(&s, "method", ""), checked, bad,
		       vnum(&s, "mismatch_ranges"), fixed);
		if (bad > fixed) {
			char *log = state_path(name, ".log");
			printf("the ranges are in the log: grep 'verify: mismatch' %s\n", log);
			free(log);
			rc = 3;
		}
	}
	attrs_free(s.a, s.n);
	return rc;
}

int cmd_verify(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"repair", no_argument, NULL, 'r'},
	    {"rate", required_argument, NULL, 'R'},
	    {"range", required_argument, NULL, 'g'},
	    {"wait", no_argument, NULL, 'w'},
	    {"abort", no_argument, NULL, 'a'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	const char *rate_s = NULL, *range_s = NULL;
	bool repair = false, wait = false, abort_it = false;
	int c;
	while ((c = getopt_long(argc, argv, "rR:g:wah", opts, NULL)) != -1) {
		switch (c) {
		case 'r': repair = true; break;
		case 'R': rate_s = optarg; break;
		case 'g': range_s = optarg; break;
		case 'w': wait = true; break;
		case 'a': abort_it = true; break;
		case 'h': return fputs(verify_help, stdout), 0;
		default: return bad_option("verify", argv);
		}
	}
	if (optind + 1 != argc)
		return die("verify: expected one storage NAME; see 'dst verify --help'");
	if (abort_it && (repair || rate_s || range_s || wait))
		return die("verify: --abort takes no other option");
	uint64_t rate = 0, off = 0, len = 0;
	if (rate_s && (parse_size(rate_s, &rate) < 0 || rate < 4096))
		return die("--rate %s: expected bytes per second, at least 4K (e.g. 100M)", rate_s);
	if (range_s && !parse_range(range_s, &off, &len))
		return die("--range %s: expected START:LEN, sizes like 1G:512M (LEN > 0)", range_s);
	const char *name = argv[optind];
	struct conf conf;
	if (storage_load(name, &conf))
		return 1;
	const char *alg = conf_get(&conf, "alg");
	bool mirror = alg && (!strcmp(alg, "alg_mirror") || !strcmp(alg, "mirror"));
	bool parity = alg && (!strcmp(alg, "alg_parity") || !strcmp(alg, "parity"));
	if (!mirror && !parity) {
		/* alg points into conf: free it after the message. */
		int rc = die("cannot verify '%s': it is %s; only a mirror's legs and a parity "
			     "storage's parity can be checked",
			     name, alg ? alg : "not a storage");
		conf_free(&conf);
		return rc;
	}
	conf_free(&conf);
	if (!state_running_pid(name))
		return die("cannot verify '%s': it is not running ('dst start %s' first)", name,
			   name);
	char *cmd = abort_it ? xasprintf("verify-abort")
			     : xasprintf("verify %llu %llu %llu %d", (unsigned long long)off,
					 (unsigned long long)len, (unsigned long long)rate, repair);
	char err[512];
	struct strbuf reply;
	int r = ctl_call(name, cmd, &reply, err, sizeof(err));
	free(cmd);
	if (r < 0)
		return die("cannot %s '%s': %s", abort_it ? "abort the verify of" : "verify", name,
			   err);
	sb_free(&reply);
	if (abort_it) {
		printf("aborted the verify of '%s'\n", name);
		return 0;
	}
	if (wait)
		return wait_done(name);
	printf("verifying '%s'%s; follow it with 'dst show %s' (verify/...)\n", name,
	       repair ? " with repair" : "", name);
	return 0;
}
