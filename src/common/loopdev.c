/* loopdev.c - loop devices over a FUSE file, and the NAME.loop record (see
 * loopdev.h). Only reads: sysfs, and LOOP_GET_STATUS64 on a read-only open. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "config.h"
#include "loopdev.h"
#include "state.h"

int loop_backing_file(const char *dev, char *file, size_t len)
{
	const char *base = strrchr(dev, '/');
	base = base ? base + 1 : dev;
	if (strncmp(base, "loop", 4) != 0)
		return -EINVAL;
	char p[128];
	snprintf(p, sizeof(p), "/sys/block/%.32s/loop/backing_file", base);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ENXIO : -errno;
	ssize_t n = read(fd, file, len - 1);
	int e = errno;
	close(fd);
	if (n < 0)
		return -e;
	file[n] = '\0';
	if (n > 0 && file[n - 1] == '\n')
		file[--n] = '\0';
	return 0;
}

int loop_file_dev(const char *dev, dev_t *file_dev)
{
	int fd = open(dev, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct loop_info64 info;
	int rc = ioctl(fd, LOOP_GET_STATUS64, &info);
	int e = errno;
	close(fd);
	if (rc < 0)
		return -e;
	*file_dev = (dev_t)info.lo_device;
	return 0;
}

enum loop_state loop_check(const char *dev, dev_t file_dev, const char *live_path, bool may_stat)
{
	char file[4096];
	if (loop_backing_file(dev, file, sizeof(file)) < 0)
		return LOOP_NONE;
	if (live_path && !strcmp(file, live_path))
		return LOOP_LIVE;
	if (!may_stat || !file_dev)
		return LOOP_NONE;
	dev_t fdev;
	int rc = loop_file_dev(dev, &fdev);
	if (rc == 0)
		return fdev == file_dev ? LOOP_STALE : LOOP_NONE;
	/* The device number dst recorded is still set up, over a file that
	 * cannot be stat'ed because its FUSE connection is dead. */
	if (rc == -ENOTCONN || rc == -ECONNABORTED)
		return LOOP_STALE;
	return LOOP_NONE;
}

size_t loop_devices_of(const char *fuse_path, char (*out)[32], size_t max)
{
	DIR *d = opendir("/sys/block");
	if (!d)
		return 0;
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, "loop", 4) != 0)
			continue;
		char dev[32];
		snprintf(dev, sizeof(dev), "/dev/%.20s", de->d_name);
		if (loop_check(dev, 0, fuse_path, false) != LOOP_LIVE)
			continue;
		if (n < max)
			snprintf(out[n], sizeof(out[n]), "%s", dev);
		n++;
	}
	closedir(d);
	return n;
}

bool loop_record_get(const char *name, struct loop_record *rec)
{
	char *p = state_path(name, ".loop");
	struct conf c;
	char err[256];
	int rc = conf_load(p, &c, err, sizeof(err));
	free(p);
	if (rc < 0)
		return false;
	const char *v = conf_get(&c, "loop"), *f = conf_get(&c, "file-dev");
	unsigned maj, min;
	bool ok = v && strlen(v) < sizeof(rec->dev) && f && sscanf(f, "%u:%u", &maj, &min) == 2;
	if (ok) {
		snprintf(rec->dev, sizeof(rec->dev), "%s", v);
		rec->file_dev = makedev(maj, min);
	}
	conf_free(&c);
	return ok;
}

int loop_record_set(const char *name, const struct loop_record *rec, char *err, size_t errlen)
{
	struct conf c = {0};
	char f[32];
	snprintf(f, sizeof(f), "%u:%u", major(rec->file_dev), minor(rec->file_dev));
	conf_set(&c, "loop", rec->dev);
	conf_set(&c, "file-dev", f);
	char *p = state_path(name, ".loop");
	int rc = conf_save(p, &c, err, errlen);
	free(p);
	conf_free(&c);
	return rc;
}

void loop_record_clear(const char *name)
{
	char *p = state_path(name, ".loop");
	unlink(p);
	free(p);
}
