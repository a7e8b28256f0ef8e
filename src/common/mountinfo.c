/* mountinfo.c - parse /proc/self/mountinfo (see mountinfo.h).
 *
 * A line is "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [TAGS...] - FSTYPE SOURCE
 * SUPEROPTS"; the optional tags end at a lone "-", so fields after it are
 * found by looking for that separator, not by counting.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mountinfo.h"

void mountinfo_unescape(char *s)
{
	char *w = s;
	for (const char *r = s; *r;) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
		    r[3] >= '0' && r[3] <= '7') {
			*w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
			r += 4;
		} else {
			*w++ = *r++;
		}
	}
	*w = '\0';
}

static void copy_field(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src);
	mountinfo_unescape(dst);
}

bool mountinfo_parse_line(char *line, struct mount_entry *m)
{
	char *f[8];
	int n = 0;
	char *save = NULL;
	for (char *t = strtok_r(line, " \n", &save); t && n < 8; t = strtok_r(NULL, " \n", &save)) {
		if (n < 6) {
			f[n++] = t;
		} else if (!strcmp(t, "-")) {
			f[6] = strtok_r(NULL, " \n", &save);
			f[7] = f[6] ? strtok_r(NULL, " \n", &save) : NULL;
			n = 8;
		}
	}
	if (n != 8 || !f[6] || !f[7])
		return false;
	if (sscanf(f[2], "%u:%u", &m->major, &m->minor) != 2)
		return false;
	copy_field(m->mnt, sizeof(m->mnt), f[4]);
	copy_field(m->fstype, sizeof(m->fstype), f[6]);
	copy_field(m->source, sizeof(m->source), f[7]);
	return true;
}

int mountinfo_each(int (*fn)(const struct mount_entry *m, void *arg), void *arg)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return -errno;
	char *line = NULL;
	size_t cap = 0;
	int rc = 0;
	struct mount_entry *m = malloc(sizeof(*m));
	if (!m) {
		fclose(f);
		return -ENOMEM;
	}
	while (getline(&line, &cap, f) > 0) {
		if (mountinfo_parse_line(line, m) && (rc = fn(m, arg)) != 0)
			break;
	}
	free(m);
	free(line);
	fclose(f);
	return rc;
}

struct find_at {
	const char *path;
	struct mount_entry *out;
	bool found;
};

static int at_fn(const struct mount_entry *m, void *arg)
{
	struct find_at *fa = arg;
	/* Later lines are mounted on top of earlier ones: keep the last. */
	if (!strcmp(m->mnt, fa->path)) {
		*fa->out = *m;
		fa->found = true;
	}
	return 0;
}

bool mountinfo_at(const char *path, struct mount_entry *out)
{
	struct find_at fa = {.path = path, .out = out};
	mountinfo_each(at_fn, &fa);
	return fa.found;
}

struct find_dev {
	unsigned major, minor;
	const char *skip;
	struct mount_entry *out;
};

static int dev_fn(const struct mount_entry *m, void *arg)
{
	struct find_dev *fd = arg;
	if (m->major != fd->major || m->minor != fd->minor)
		return 0;
	if (fd->skip && !strcmp(m->mnt, fd->skip))
		return 0;
	*fd->out = *m;
	return 1;
}

bool mountinfo_of_dev(unsigned major, unsigned minor, const char *skip_mnt, struct mount_entry *out)
{
	struct find_dev fd = {.major = major, .minor = minor, .skip = skip_mnt, .out = out};
	return mountinfo_each(dev_fn, &fd) == 1;
}
