/* claim.c - claim a local disk for one writer, and name who has it when it
 * is taken (see claim.h).
 *
 * Naming the holder: an OFD lock shows pid -1 in F_OFD_GETLK and in
 * /proc/locks, so the holder of a file's lock is found through the
 * processes' fdinfo (proc.h); one we may not see, and the holder of a
 * block device (which nothing in /proc tells), through the configs of
 * our state dir: an export's disk, a storage's local nodes. Storage node
 * lines are read with the storage's own parser (array/nodeconf.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "array/nodeconf.h"
#include "claim.h"
#include "common/config.h"
#include "common/mountinfo.h"
#include "common/proc.h"
#include "common/state.h"
#include "common/who.h"

static bool same_disk(const char *path, const struct stat *disk)
{
	struct stat st;
	if (strncmp(path, "mem:", 4) == 0 || stat(path, &st) < 0)
		return false;
	if (S_ISBLK(disk->st_mode))
		return S_ISBLK(st.st_mode) && st.st_rdev == disk->st_rdev;
	return S_ISREG(st.st_mode) && st.st_dev == disk->st_dev && st.st_ino == disk->st_ino;
}

static bool conf_true(const struct conf *c, const char *key)
{
	const char *v = conf_get(c, key);
	return v && (!strcmp(v, "1") || !strcmp(v, "yes") || !strcmp(v, "true"));
}

/* Does NAME's config use disk read-write, claimed? What for ("node n-0")
 * into what ("" for an export's disk). */
static bool conf_uses(const char *name, const struct stat *disk, char *what, size_t len)
{
	char *path = state_path(name, ".conf");
	struct conf c;
	char err[256];
	int rc = conf_load(path, &c, err, sizeof(err));
	free(path);
	if (rc < 0)
		return false;
	bool found = false;
	const char *type = conf_get(&c, "type");
	what[0] = '\0';
	if (type && !strcmp(type, "export")) {
		const char *d = conf_get(&c, "disk");
		found = d && !conf_true(&c, "readonly") && !conf_true(&c, "shared") &&
			same_disk(d, disk);
	} else if (type && !strcmp(type, "storage")) {
		const char *line;
		for (size_t i = 0; !found && (line = conf_get_nth(&c, "node", i)); i++) {
			struct node_conf nc;
			if (node_conf_parse(line, &nc, err, sizeof(err)) < 0)
				continue;
			if (!nc.remote && same_disk(nc.spec, disk)) {
				char nn[32];
				node_conf_name(nc.start, nn, sizeof(nn));
				snprintf(what, len, "node %s", nn);
				found = true;
			}
			node_conf_free(&nc);
		}
		/* A replace under way: "NODE disk RATE SPEC", the new disk. */
		char node[32];
		int off = 0;
		const char *m = conf_get(&c, "migrate");
		if (!found && m && sscanf(m, "%31s disk %*s %n", node, &off) == 1 && off > 0 &&
		    same_disk(m + off, disk)) {
			snprintf(what, len, "new disk of %s in a replace", node);
			found = true;
		}
	}
	conf_free(&c);
	return found;
}

/* A running daemon of our state dir, not us, whose config claims disk. */
static pid_t state_user(const struct stat *disk, char *name, size_t len)
{
	DIR *d = opendir(state_dir());
	if (!d)
		return 0;
	pid_t pid = 0;
	struct dirent *e;
	char what[96];
	while (!pid && (e = readdir(d))) {
		size_t n = strlen(e->d_name);
		if (n <= 5 || n - 5 >= len || strcmp(e->d_name + n - 5, ".conf") != 0)
			continue;
		snprintf(name, len, "%.*s", (int)(n - 5), e->d_name);
		pid_t p = state_running_pid(name);
		if (p && p != getpid() && conf_uses(name, disk, what, sizeof(what)))
			pid = p;
	}
	closedir(d);
	return pid;
}

/* Who pid is, as the words after "in use by": "dstd 4242 (storage st, node
 * n-0)", into buf. */
static void holder_words(pid_t pid, const struct stat *disk, char *buf, size_t len)
{
	struct who w;
	char what[96] = "";
	if (!who_is(pid, &w)) {
		who_format(NULL, NULL, buf, len);
		return;
	}
	if (w.name[0])
		conf_uses(w.name, disk, what, sizeof(what));
	who_format(&w, what[0] ? what : NULL, buf, len);
}

int claim_file(int fd, const char *path, const struct stat *st, char *err, size_t errlen)
{
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
	if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
		return 0;
	int e = errno;
	if (e != EAGAIN && e != EACCES) {
		/* ENOLCK: NFS without its lock manager. Nobody holds it. */
		snprintf(err, errlen, "%s: cannot lock it: %s", path, strerror(e));
		return 1;
	}
	char name[68], by[256];
	pid_t pid = proc_lock_holder(st->st_dev, st->st_ino);
	if (!pid)
		pid = state_user(st, name, sizeof(name));
	holder_words(pid, st, by, sizeof(by));
	snprintf(err, errlen, "%s: in use by %s", path, by);
	errno = EBUSY;
	return -1;
}

/* A partition of the block device dev that is mounted: its mount point. */
static bool partition_mounted(dev_t dev, struct mount_entry *m)
{
	char dir[64];
	snprintf(dir, sizeof(dir), "/sys/dev/block/%u:%u", major(dev), minor(dev));
	DIR *d = opendir(dir);
	if (!d)
		return false;
	bool found = false;
	struct dirent *e;
	while (!found && (e = readdir(d))) {
		char p[64 + sizeof(e->d_name) + 8], buf[32] = "";
		unsigned ma, mi;
		snprintf(p, sizeof(p), "%s/%s/dev", dir, e->d_name);
		FILE *f = e->d_name[0] != '.' ? fopen(p, "re") : NULL;
		if (!f)
			continue;
		if (fgets(buf, sizeof(buf), f) && sscanf(buf, "%u:%u", &ma, &mi) == 2)
			found = mountinfo_of_dev(ma, mi, NULL, m);
		fclose(f);
	}
	closedir(d);
	return found;
}

/* The first holder the kernel lists (a device mapper or RAID device). */
static bool held_by(dev_t dev, char *buf, size_t len)
{
	char dir[80];
	snprintf(dir, sizeof(dir), "/sys/dev/block/%u:%u/holders", major(dev), minor(dev));
	DIR *d = opendir(dir);
	if (!d)
		return false;
	bool found = false;
	struct dirent *e;
	while (!found && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(buf, len, "%s", e->d_name);
		found = true;
	}
	closedir(d);
	return found;
}

void claim_busy_bdev(const char *path, char *err, size_t errlen)
{
	struct stat st;
	struct mount_entry *m = malloc(sizeof(*m));
	char name[68], by[256];
	pid_t pid;
	if (stat(path, &st) < 0 || !S_ISBLK(st.st_mode)) {
		snprintf(err, errlen, "%s: in use (%s)", path, strerror(EBUSY));
	} else if ((pid = state_user(&st, name, sizeof(name))) != 0) {
		holder_words(pid, &st, by, sizeof(by));
		snprintf(err, errlen, "%s: in use by %s", path, by);
	} else if (m && (mountinfo_of_dev(major(st.st_rdev), minor(st.st_rdev), NULL, m) ||
			 partition_mounted(st.st_rdev, m))) {
		snprintf(err, errlen, "%s: in use: %s is mounted on %s", path, m->source, m->mnt);
	} else if (held_by(st.st_rdev, by, sizeof(by))) {
		snprintf(err, errlen, "%s: in use: held by %s (device mapper, RAID...)", path, by);
	} else {
		snprintf(err, errlen, "%s: in use by another process (it is open exclusively)",
			 path);
	}
	free(m);
	errno = EBUSY;
}
