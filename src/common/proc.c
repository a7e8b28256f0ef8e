/* proc.c - lock holders, local socket peers and command names from /proc
 * (see proc.h). */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proc.h"
#include "util.h"

int proc_each_fd(int (*fn)(pid_t pid, int fd, const char *link, void *arg), void *arg)
{
	DIR *procd = opendir("/proc");
	if (!procd)
		return 0;
	int rc = 0;
	struct dirent *p;
	while (!rc && (p = readdir(procd))) {
		if (!isdigit((unsigned char)p->d_name[0]))
			continue;
		int pid = atoi(p->d_name);
		char dir[64];
		snprintf(dir, sizeof(dir), "/proc/%d/fd", pid);
		DIR *fdd = opendir(dir); /* EACCES: another user's process */
		if (!fdd)
			continue;
		struct dirent *f;
		while (!rc && (f = readdir(fdd))) {
			if (!isdigit((unsigned char)f->d_name[0]))
				continue;
			int fd = atoi(f->d_name);
			char link[96];
			snprintf(link, sizeof(link), "/proc/%d/fd/%d", pid, fd);
			rc = fn((pid_t)pid, fd, link, arg);
		}
		closedir(fdd);
	}
	closedir(procd);
	return rc;
}

struct lock_search {
	dev_t dev;
	ino_t ino;
	pid_t pid;
};

/* An open file of the one we look for: does its fdinfo list a lock? The
 * kernel shows there exactly the locks taken through this open file (an
 * OFD lock's owner is the open file; POSIX and flock ones name it too). */
static int lock_on_fd(pid_t pid, int fd, const char *link, void *arg)
{
	struct lock_search *ls = arg;
	struct stat st;
	if (stat(link, &st) < 0 || st.st_dev != ls->dev || st.st_ino != ls->ino)
		return 0;
	char path[128], buf[4096];
	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", (int)pid, fd);
	int f = open(path, O_RDONLY | O_CLOEXEC);
	if (f < 0)
		return 0;
	ssize_t n = read(f, buf, sizeof(buf) - 1);
	close(f);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	if (strncmp(buf, "lock:", 5) != 0 && !strstr(buf, "\nlock:"))
		return 0;
	ls->pid = pid;
	return 1;
}

pid_t proc_lock_holder(dev_t dev, ino_t ino)
{
	struct lock_search ls = {.dev = dev, .ino = ino};
	proc_each_fd(lock_on_fd, &ls);
	return ls.pid;
}

void proc_comm(pid_t pid, char *buf, size_t len)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	read_line_file(path, buf, len);
}

/* "0100007F" or 32 hex digits: the address words as the kernel printed them. */
static bool parse_hex_addr(const char *hex, unsigned port, struct sockaddr_storage *out)
{
	size_t n = strlen(hex);
	memset(out, 0, sizeof(*out));
	if (n != 8 && n != 32)
		return false;
	uint32_t w[4];
	for (size_t i = 0; i < n / 8; i++) {
		char word[9];
		memcpy(word, hex + 8 * i, 8);
		word[8] = '\0';
		w[i] = (uint32_t)strtoul(word, NULL, 16);
	}
	if (n == 8) {
		struct sockaddr_in *s = (struct sockaddr_in *)out;
		s->sin_family = AF_INET;
		s->sin_port = htons((uint16_t)port);
		memcpy(&s->sin_addr, &w[0], 4);
	} else {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)out;
		s->sin6_family = AF_INET6;
		s->sin6_port = htons((uint16_t)port);
		memcpy(&s->sin6_addr, w, 16);
	}
	return true;
}

bool proc_parse_tcp_line(const char *line, struct sockaddr_storage *local,
			 struct sockaddr_storage *remote, uint64_t *ino)
{
	char la[40], ra[40];
	unsigned lp, rp, state;
	/* sl: local rem st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode */
	if (sscanf(
		line,
		" %*u: %39[0-9A-Fa-f]:%x %39[0-9A-Fa-f]:%x %x %*x:%*x %*x:%*x %*x %*u %*d %" SCNu64,
		la, &lp, ra, &rp, &state, ino) != 6)
		return false;
	if (lp > 65535 || rp > 65535 || strlen(la) != strlen(ra))
		return false;
	return parse_hex_addr(la, lp, local) && parse_hex_addr(ra, rp, remote);
}

/* An IPv4-mapped IPv6 address as the IPv4 one; anything else as it is. */
static void unmap(const struct sockaddr_storage *in, struct sockaddr_storage *out)
{
	*out = *in;
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)in;
	if (in->ss_family != AF_INET6 || !IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
		return;
	struct sockaddr_in *s4 = (struct sockaddr_in *)out;
	memset(out, 0, sizeof(*out));
	s4->sin_family = AF_INET;
	s4->sin_port = s6->sin6_port;
	memcpy(&s4->sin_addr, &s6->sin6_addr.s6_addr[12], 4);
}

bool proc_same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	struct sockaddr_storage x, y;
	unmap(a, &x);
	unmap(b, &y);
	if (x.ss_family != y.ss_family)
		return false;
	if (x.ss_family == AF_INET) {
		const struct sockaddr_in *p = (const struct sockaddr_in *)&x;
		const struct sockaddr_in *q = (const struct sockaddr_in *)&y;
		return p->sin_port == q->sin_port && p->sin_addr.s_addr == q->sin_addr.s_addr;
	}
	if (x.ss_family == AF_INET6) {
		const struct sockaddr_in6 *p = (const struct sockaddr_in6 *)&x;
		const struct sockaddr_in6 *q = (const struct sockaddr_in6 *)&y;
		return p->sin6_port == q->sin6_port &&
		       !memcmp(&p->sin6_addr, &q->sin6_addr, sizeof(p->sin6_addr));
	}
	return false;
}

struct peer_search {
	size_t n;
	const struct sockaddr_storage *ours, *theirs; /* [n] */
	uint64_t *ino;				      /* [n]: the client's socket */
	pid_t *pids;				      /* [n] */
	size_t left;				      /* inodes not yet owned */
};

/* The client's end of a connection to us is the TCP socket whose local
 * address is our peer's and whose remote address is ours. */
static void scan_tcp_table(const char *path, struct peer_search *ps)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return;
	char line[512];
	while (fgets(line, sizeof(line), f)) {
		struct sockaddr_storage l, r;
		uint64_t ino;
		if (!proc_parse_tcp_line(line, &l, &r, &ino) || !ino)
			continue;
		for (size_t i = 0; i < ps->n; i++) {
			if (!ps->ino[i] && ps->theirs[i].ss_family &&
			    proc_same_addr(&l, &ps->theirs[i]) &&
			    proc_same_addr(&r, &ps->ours[i])) {
				ps->ino[i] = ino;
				ps->left++;
			}
		}
	}
	fclose(f);
}

static int socket_on_fd(pid_t pid, int fd, const char *link, void *arg)
{
	struct peer_search *ps = arg;
	char target[64];
	ssize_t len = readlink(link, target, sizeof(target) - 1);
	if (len <= 0)
		return 0;
	target[len] = '\0';
	uint64_t ino;
	if (sscanf(target, "socket:[%" SCNu64 "]", &ino) != 1)
		return 0;
	for (size_t i = 0; i < ps->n; i++) {
		if (ps->ino[i] == ino && !ps->pids[i]) {
			ps->pids[i] = pid;
			ps->left--;
		}
	}
	return ps->left == 0;
}

void proc_socket_peers(const int *fds, size_t n, pid_t *pids)
{
	struct sockaddr_storage *ours = xcalloc(n ? n : 1, sizeof(*ours));
	struct sockaddr_storage *theirs = xcalloc(n ? n : 1, sizeof(*theirs));
	uint64_t *ino = xcalloc(n ? n : 1, sizeof(*ino));
	bool tcp = false;
	for (size_t i = 0; i < n; i++) {
		pids[i] = 0;
		socklen_t l1 = sizeof(ours[i]), l2 = sizeof(theirs[i]);
		if (getsockname(fds[i], (struct sockaddr *)&ours[i], &l1) < 0)
			continue;
		if (ours[i].ss_family == AF_UNIX) {
			struct ucred cred;
			socklen_t cl = sizeof(cred);
			if (getsockopt(fds[i], SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0)
				pids[i] = cred.pid;
		} else if (getpeername(fds[i], (struct sockaddr *)&theirs[i], &l2) == 0) {
			tcp = true;
		} else {
			theirs[i].ss_family = 0; /* not connected: nobody to look for */
		}
	}
	if (tcp) {
		struct peer_search ps = {
		    .n = n, .ours = ours, .theirs = theirs, .ino = ino, .pids = pids};
		scan_tcp_table("/proc/net/tcp", &ps);
		scan_tcp_table("/proc/net/tcp6", &ps);
		if (ps.left)
			proc_each_fd(socket_on_fd, &ps);
	}
	free(ours);
	free(theirs);
	free(ino);
}
