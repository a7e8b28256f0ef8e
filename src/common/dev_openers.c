/* dev_openers.c - processes with a device node open (see dev_openers.h). */
#include <sys/stat.h>
#include <unistd.h>

#include "dev_openers.h"
#include "proc.h"

struct opener_search {
	dev_t rdev;
	mode_t type; /* S_IFBLK or S_IFCHR */
	pid_t skip, self, last;
	pid_t *pids;
	size_t max, n;
};

static int opener_fd(pid_t pid, int fd, const char *link, void *arg)
{
	struct opener_search *s = arg;
	struct stat st;
	(void)fd;
	/* The walk goes process by process: last is one already counted. */
	if (pid == s->skip || pid == s->self || pid == s->last)
		return 0;
	if (stat(link, &st) < 0 || (st.st_mode & S_IFMT) != s->type || st.st_rdev != s->rdev)
		return 0;
	s->last = pid;
	if (s->n < s->max)
		s->pids[s->n] = pid;
	s->n++;
	return 0;
}

size_t dev_openers(dev_t rdev, bool block, pid_t skip, pid_t *pids, size_t max)
{
	struct opener_search s = {
	    .rdev = rdev,
	    .type = block ? S_IFBLK : S_IFCHR,
	    .skip = skip,
	    .self = getpid(),
	    .pids = pids,
	    .max = max,
	};
	proc_each_fd(opener_fd, &s);
	return s.n;
}
