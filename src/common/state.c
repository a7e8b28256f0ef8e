/* state.c - state dir paths, name rules and pid-file locking (state.h). */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "state.h"
#include "util.h"

const char *state_dir(void)
{
	static char *dir;
	if (dir)
		return dir;
	const char *env = getenv("DST_STATE_DIR");
	if (env && *env)
		dir = xstrdup(env);
	else if (geteuid() == 0)
		dir = xstrdup("/var/lib/dst");
	else if ((env = getenv("XDG_RUNTIME_DIR")) && *env)
		dir = xasprintf("%s/dst", env);
	else
		dir = xasprintf("/tmp/dst-%d", (int)geteuid());
	return dir;
}

int state_dir_ensure(char *err, size_t errlen)
{
	const char *dir = state_dir();
	char *tmp = xstrdup(dir);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		mkdir(tmp, 0755);
		*p = '/';
	}
	free(tmp);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		int e = errno;
		snprintf(err, errlen, "state dir %s: %s", dir, strerror(e));
		return -e;
	}
	struct stat st;
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "state dir %s: not a directory", dir);
		return -ENOTDIR;
	}
	return 0;
}

char *state_path(const char *name, const char *suffix)
{
	return xasprintf("%s/%s%s", state_dir(), name, suffix);
}

bool state_name_valid(const char *name, char *err, size_t errlen)
{
	size_t n = strlen(name);
	if (n == 0 || n > 64) {
		snprintf(err, errlen, "name '%s': must be 1 to 64 characters", name);
		return false;
	}
	if (name[0] == '.' || name[0] == '-') {
		snprintf(err, errlen, "name '%s': must not start with '.' or '-'", name);
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)name[i];
		if (!isalnum(ch) && ch != '.' && ch != '_' && ch != '-') {
			snprintf(err, errlen,
				 "name '%s': only letters, digits, '.', '_' and '-' allowed", name);
			return false;
		}
	}
	return true;
}

pid_t state_running_pid(const char *name)
{
	char *path = state_path(name, ".pid");
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	free(path);
	if (fd < 0)
		return 0;
	pid_t pid = 0;
	if (flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK) {
		char buf[32] = {0};
		if (pread(fd, buf, sizeof(buf) - 1, 0) > 0)
			pid = (pid_t)atoi(buf);
		if (pid <= 0)
			pid = 1; /* locked but pid not written yet: running all the same */
	}
	close(fd);
	return pid;
}

int state_pidfile_acquire(const char *name, char *err, size_t errlen)
{
	char *path = state_path(name, ".pid");
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "%s: %s", path, strerror(e));
		free(path);
		return -e;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		char buf[32] = {0};
		if (pread(fd, buf, sizeof(buf) - 1, 0) < 0)
			buf[0] = '\0';
		snprintf(err, errlen, "'%s' is already running (pid %d)", name, atoi(buf));
		close(fd);
		free(path);
		return -EBUSY;
	}
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)n, 0) != n) {
		int e = errno;
		snprintf(err, errlen, "%s: %s", path, strerror(e));
		close(fd);
		free(path);
		return -e;
	}
	free(path);
	return fd;
}
