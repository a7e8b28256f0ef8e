/* fuse_path.c - may the FUSE frontend mount over PATH? (rules in fuse_path.h)
 *
 * Whether a dst FUSE mount found at PATH is dead is asked with statfs(2),
 * which always goes to the FUSE daemon: lstat(2) may be answered from
 * attributes the kernel still caches for a connection that died a moment
 * ago. The question is asked from a child process with a time limit, since a
 * mount served by a stopped (SIGSTOP) daemon would never answer.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/mountinfo.h"
#include "fuse_path.h"

#define PROBE_TIMEOUT_MS 3000

static const char *kind_of(mode_t m)
{
	if (S_ISDIR(m))
		return "a directory";
	if (S_ISBLK(m))
		return "a block device";
	if (S_ISCHR(m))
		return "a character device";
	if (S_ISLNK(m))
		return "a symbolic link";
	if (S_ISFIFO(m))
		return "a fifo";
	if (S_ISSOCK(m))
		return "a socket";
	return "not a regular file";
}

/* canon = realpath(dirname(path)) + "/" + basename(path): the final
 * component is not followed (it may be a dead mount, or not exist yet). */
static int canonicalize(const char *path, char *canon, size_t len, char *err, size_t errlen)
{
	if (path[0] != '/') {
		snprintf(err, errlen, "FUSE file %s: expected an absolute path", path);
		return -EINVAL;
	}
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", path);
	size_t n = strlen(dir);
	while (n > 1 && dir[n - 1] == '/')
		dir[--n] = '\0';
	char *slash = strrchr(dir, '/');
	char base[NAME_MAX + 1];
	snprintf(base, sizeof(base), "%s", slash + 1);
	if (!base[0] || !strcmp(base, ".") || !strcmp(base, "..")) {
		snprintf(err, errlen, "FUSE file %s: expected the path of a file", path);
		return -EINVAL;
	}
	char real[PATH_MAX] = "/";
	if (slash != dir) {
		*slash = '\0';
		if (!realpath(dir, real)) {
			int e = errno;
			snprintf(err, errlen, "FUSE file %s: directory %s: %s", path, dir,
				 strerror(e));
			return -e;
		}
	}
	if ((size_t)snprintf(canon, len, "%s%s%s", real, strcmp(real, "/") ? "/" : "", base) >=
	    len) {
		snprintf(err, errlen, "FUSE file %s: path too long", path);
		return -ENAMETOOLONG;
	}
	return 0;
}

/* statfs(path) in a child: 0 if the mount answers, -ENOTCONN (or another
 * -errno) if it does not, -ETIMEDOUT if it does not answer in time. */
static int probe_mount(const char *path)
{
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		struct statfs sf;
		_exit(statfs(path, &sf) == 0 ? 0 : (errno & 0x7f));
	}
	for (int waited = 0;; waited += 10) {
		int status;
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			return WIFEXITED(status) ? -WEXITSTATUS(status) : -EIO;
		if (r < 0 && errno != EINTR)
			return -errno;
		if (waited >= PROBE_TIMEOUT_MS) {
			kill(pid, SIGKILL);
			while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
				;
			return -ETIMEDOUT;
		}
		poll(NULL, 0, 10);
	}
}

/* Something is mounted at canon: refuse, or detach a dead dst mount. */
static int handle_mount(const char *canon, const struct mount_entry *m, char *err, size_t errlen)
{
	if (strcmp(m->fstype, DST_FUSE_FSTYPE) != 0) {
		snprintf(err, errlen,
			 "FUSE file %s: already a mount point (%s %s); refusing to mount over it",
			 canon, m->fstype, m->source);
		return -EBUSY;
	}
	const char *owner = strncmp(m->source, "dst:", 4) ? m->source : m->source + 4;
	int rc = probe_mount(canon);
	if (rc == 0) {
		snprintf(err, errlen,
			 "FUSE file %s: already the FUSE file of dst storage '%s', whose daemon "
			 "runs; choose another path",
			 canon, owner);
		return -EBUSY;
	}
	if (rc != -ENOTCONN && rc != -ECONNABORTED) {
		snprintf(err, errlen,
			 "FUSE file %s: the FUSE file of dst storage '%s' is there and does not "
			 "answer (%s); if its daemon is gone, detach it: umount -l %s",
			 canon, owner, strerror(-rc), canon);
		return -EBUSY;
	}
	if (umount2(canon, MNT_DETACH) < 0) {
		int e = errno;
		snprintf(err, errlen, "FUSE file %s: cannot detach the dead mount of '%s': %s",
			 canon, owner, strerror(e));
		return -e;
	}
	log_warn("FUSE file %s: detached the dead FUSE mount of '%s' (its daemon was killed)",
		 canon, owner);
	return 0;
}

int fuse_path_prepare(const char *path, char *canon, size_t canon_len, char *err, size_t errlen)
{
	int rc = canonicalize(path, canon, canon_len, err, errlen);
	if (rc < 0)
		return rc;
	struct mount_entry *m = malloc(sizeof(*m));
	if (!m) {
		snprintf(err, errlen, "FUSE file %s: out of memory", canon);
		return -ENOMEM;
	}
	/* Mounts may be stacked: peel dead dst ones off, a few at most. */
	for (int i = 0; rc == 0 && mountinfo_at(canon, m); i++) {
		if (i == 4) {
			snprintf(err, errlen, "FUSE file %s: still a mount point after %d detaches",
				 canon, i);
			rc = -EBUSY;
		} else {
			rc = handle_mount(canon, m, err, errlen);
		}
	}
	free(m);
	if (rc < 0)
		return rc;
	struct stat st;
	if (lstat(canon, &st) < 0) {
		int e = errno;
		if (e != ENOENT) {
			snprintf(err, errlen, "FUSE file %s: %s", canon, strerror(e));
			return -e;
		}
		int fd = open(canon, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0) {
			e = errno;
			snprintf(err, errlen, "FUSE file %s: cannot create it: %s", canon,
				 strerror(e));
			return -e;
		}
		close(fd);
		log_info("FUSE file %s: created", canon);
		return 0;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen,
			 "FUSE file %s: exists and is %s; expected a regular file (dst creates "
			 "it if it does not exist)",
			 canon, kind_of(st.st_mode));
		return -EEXIST;
	}
	if (st.st_size != 0) {
		snprintf(err, errlen,
			 "FUSE file %s: exists and holds %lld bytes; refusing to hide them under "
			 "the storage (remove it, or choose another path)",
			 canon, (long long)st.st_size);
		return -EEXIST;
	}
	return 0;
}
