/* devlink.c - the stable name of a storage's block device: /dev/dst/NAME,
 * a symlink to the /dev/loopN that `dst attach` got (which changes from
 * boot to boot), so that fstab and scripts can name the storage. Where
 * /dev/dst cannot be made (/dev read-only) it is /run/dst/NAME;
 * $DST_DEV_DIR overrides both (tests). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "common/util.h"

/* A directory only we (and root) may change: nobody else can swap the
 * link that fstab trusts for another device. */
static bool dir_ours(const char *dir)
{
	struct stat st;
	return lstat(dir, &st) == 0 && S_ISDIR(st.st_mode) &&
	       (st.st_uid == geteuid() || st.st_uid == 0) && !(st.st_mode & 022) &&
	       access(dir, W_OK) == 0;
}

/* The directory of the links, made if needed; NULL when none can be. */
static const char *devlink_dir(bool create)
{
	const char *env = getenv("DST_DEV_DIR");
	static const char *const dirs[] = {"/dev/dst", "/run/dst"};
	if (env && *env) {
		if (create)
			mkdir(env, 0755);
		return dir_ours(env) ? env : NULL;
	}
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		if (create)
			mkdir(dirs[i], 0755);
		if (dir_ours(dirs[i]))
			return dirs[i];
	}
	return NULL;
}

int devlink_set(const char *name, const char *dev, char *path, size_t len)
{
	const char *dir = devlink_dir(true);
	if (!dir)
		return -EACCES;
	char tmp[PATH_MAX];
	snprintf(path, len, "%s/%s", dir, name);
	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name);
	unlink(tmp);
	/* Made aside, then renamed over: never a moment without a link. */
	if (symlink(dev, tmp) < 0)
		return -errno;
	if (rename(tmp, path) < 0) {
		int e = errno;
		unlink(tmp);
		return -e;
	}
	return 0;
}

void devlink_clear(const char *name, const char *dev)
{
	const char *dir = devlink_dir(false);
	if (!dir)
		return;
	char path[PATH_MAX], target[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	ssize_t n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return;
	target[n] = '\0';
	/* Only our link to this device: never another storage's. */
	if (!dev || !strcmp(target, dev))
		unlink(path);
}
