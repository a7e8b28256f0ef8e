/* ublk_opts.c - the ublk options of dst start and dst attach: --ublk [ID],
 * --ublk-queues N, --ublk-depth N (and start's --no-ublk), checked and saved
 * as the storage's config keys ublk, ublk-queues and ublk-depth; and
 * /dev/ublkbN, the device's path, as -f gives it. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "common/config.h"
#include "common/util.h"

/* A word that can only be meant as --ublk's ID: "auto" or digits. */
static bool id_word(const char *w)
{
	if (!strcmp(w, "auto"))
		return true;
	if (!*w)
		return false;
	for (const char *p = w; *p; p++)
		if (*p < '0' || *p > '9')
			return false;
	return true;
}

int ublk_opts_take(struct ublk_opts *u, int c, const char *arg, int argc, char **argv)
{
	switch (c) {
	case OPT_UBLK:
		u->id = arg ? arg : "auto";
		/* getopt gives an optional argument only as --ublk=ID; take
		 * --ublk ID too. The word may still be NAME (ublk_opts_name). */
		if (!arg && optind < argc && id_word(argv[optind])) {
			u->id = argv[optind];
			u->id_word = argv[optind++];
		}
		return 1;
	case OPT_NO_UBLK: u->no_ublk = true; return 1;
	case OPT_UBLK_QUEUES: u->queues = arg; return 1;
	case OPT_UBLK_DEPTH: u->depth = arg; return 1;
	}
	return 0;
}

const char *ublk_opts_name(struct ublk_opts *u, const char *cmd, int argc, char **argv)
{
	if (optind + 1 == argc)
		return argv[optind];
	if (optind == argc && u->id_word) {
		/* `dst start --ublk 3`: 3 is the storage, the device is auto. */
		const char *name = u->id_word;
		u->id = "auto";
		u->id_word = NULL;
		return name;
	}
	die("%s: expected exactly one NAME; see 'dst %s --help'", cmd, cmd);
	return NULL;
}

/* "--ublk-queues" with value v: a whole number in [min, max] into out. */
static int check_num(const char *opt, const char *v, uint64_t min, uint64_t max, char *out,
		     size_t len)
{
	uint64_t x;
	if (parse_u64(v, &x) < 0 || x < min || x > max)
		return die("%s '%s': expected a number from %llu to %llu", opt, v,
			   (unsigned long long)min, (unsigned long long)max);
	snprintf(out, len, "%llu", (unsigned long long)x);
	return 0;
}

int ublk_opts_check(struct ublk_opts *u, const char *cmd)
{
	if (u->id && u->no_ublk)
		return die("%s: --ublk and --no-ublk contradict each other", cmd);
	if (u->id && strcmp(u->id, "auto")) {
		uint64_t x;
		if (parse_u64(u->id, &x) < 0 || x > UBLK_MAX_ID)
			return die("--ublk '%s': expected auto or a device number from 0 to %u",
				   u->id, UBLK_MAX_ID);
		snprintf(u->id_buf, sizeof(u->id_buf), "%llu", (unsigned long long)x);
		u->id = u->id_buf;
	}
	if (u->queues && check_num("--ublk-queues", u->queues, 1, UBLK_MAX_QUEUES, u->queues_buf,
				   sizeof(u->queues_buf)))
		return 1;
	if (u->depth && check_num("--ublk-depth", u->depth, 1, UBLK_MAX_DEPTH, u->depth_buf,
				  sizeof(u->depth_buf)))
		return 1;
	if (u->queues)
		u->queues = u->queues_buf;
	if (u->depth)
		u->depth = u->depth_buf;
	return 0;
}

bool ublk_opts_given(const struct ublk_opts *u)
{
	return u->id || u->no_ublk || u->queues || u->depth;
}

int ublk_opts_save(struct conf *c, const struct ublk_opts *u, const char *name)
{
	if (u->no_ublk) {
		conf_del(c, "ublk");
		conf_del(c, "ublk-queues");
		conf_del(c, "ublk-depth");
	}
	if (u->id)
		conf_set(c, "ublk", u->id);
	if ((u->queues || u->depth) && !conf_get(c, "ublk"))
		return die("%s: '%s' is not served as a ublk device; give --ublk too",
			   u->queues ? "--ublk-queues" : "--ublk-depth", name);
	if (u->queues)
		conf_set(c, "ublk-queues", u->queues);
	if (u->depth)
		conf_set(c, "ublk-depth", u->depth);
	return 0;
}

int ublk_dev_path(const char *path, char *id, size_t len)
{
	static const char pre[] = "/dev/ublkb";
	if (strncmp(path, pre, sizeof(pre) - 1) != 0)
		return 0;
	uint64_t x;
	if (parse_u64(path + sizeof(pre) - 1, &x) < 0 || x > UBLK_MAX_ID)
		return -die("-f %s: expected /dev/ublkbN with N from 0 to %u", path, UBLK_MAX_ID);
	snprintf(id, len, "%llu", (unsigned long long)x);
	return 1;
}

bool print_ublk_device(const char *name, const char *prefix, char *out, size_t len)
{
	char dev[64], n[32] = "";
	if (ctl_show_attr(name, "ublk_device", dev, sizeof(dev)) < 0)
		return false;
	ctl_show_attr(name, "ublk_recoveries", n, sizeof(n));
	printf("%s%s%s\n", prefix, dev,
	       n[0] && strcmp(n, "0") ? " (taken back: its IO that waited goes on)" : "");
	if (out)
		snprintf(out, len, "%s", dev);
	return true;
}
