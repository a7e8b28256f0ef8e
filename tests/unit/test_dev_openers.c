/* test_dev_openers.c - who has a device node open (common/dev_openers.h),
 * live: a child holding /dev/full open (on two fds, counted once), the
 * caller itself and a skipped pid left out, nobody once the child is gone. */
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/dev_openers.h"
#include "unit.h"

static bool has(const pid_t *pids, size_t n, pid_t pid)
{
	for (size_t i = 0; i < n; i++)
		if (pids[i] == pid)
			return true;
	return false;
}

static size_t count(const pid_t *pids, size_t n, pid_t pid)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		k += pids[i] == pid;
	return k;
}

TEST(finds_a_child_holding_a_device_open)
{
	struct stat st;
	CHECK(stat("/dev/full", &st) == 0 && S_ISCHR(st.st_mode));
	int ready[2];
	CHECK(pipe(ready) == 0);
	pid_t child = fork();
	if (child == 0) {
		int a = open("/dev/full", O_RDONLY), b = open("/dev/full", O_WRONLY);
		char c = a >= 0 && b >= 0 ? 'y' : 'n';
		if (write(ready[1], &c, 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	close(ready[1]);
	char c = 0;
	CHECK(read(ready[0], &c, 1) == 1 && c == 'y');
	close(ready[0]);

	/* We hold it too: never named, we are the one asking. */
	int mine = open("/dev/full", O_RDONLY);
	CHECK(mine >= 0);
	pid_t pids[64];
	size_t n = dev_openers(st.st_rdev, false, 0, pids, 64);
	CHECK(n >= 1 && n <= 64);
	CHECK(has(pids, n, child));
	CHECK_EQ(count(pids, n, child), 1);
	CHECK(!has(pids, n, getpid()));
	/* Not a block device of that number; and the skipped pid is left out. */
	CHECK(!has(pids, dev_openers(st.st_rdev, true, 0, pids, 64), child));
	n = dev_openers(st.st_rdev, false, child, pids, 64);
	CHECK(!has(pids, n, child));
	/* Only max are stored; all are counted. */
	CHECK(dev_openers(st.st_rdev, false, 0, pids, 0) >= 1);

	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	n = dev_openers(st.st_rdev, false, 0, pids, 64);
	CHECK(!has(pids, n, child));
	close(mine);
}

TEST(nobody_has_an_unused_number_open)
{
	pid_t pids[4];
	CHECK_EQ(dev_openers(makedev(4095, 1048575), true, 0, pids, 4), 0);
}

UNIT_MAIN(T(finds_a_child_holding_a_device_open), T(nobody_has_an_unused_number_open))
