/* test_proc.c - what /proc tells about other processes (common/proc.h): TCP
 * table lines (IPv4, IPv6, mapped addresses, the header), and, live, the
 * holder of a file's OFD lock (us, then a child) and the process at the
 * other end of a Unix and a TCP loopback connection. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/proc.h"
#include "unit.h"

static struct sockaddr_storage v4(const char *ip, unsigned port)
{
	struct sockaddr_storage ss = {0};
	struct sockaddr_in *s = (struct sockaddr_in *)&ss;
	s->sin_family = AF_INET;
	s->sin_port = htons((uint16_t)port);
	inet_pton(AF_INET, ip, &s->sin_addr);
	return ss;
}

static struct sockaddr_storage v6(const char *ip, unsigned port)
{
	struct sockaddr_storage ss = {0};
	struct sockaddr_in6 *s = (struct sockaddr_in6 *)&ss;
	s->sin6_family = AF_INET6;
	s->sin6_port = htons((uint16_t)port);
	inet_pton(AF_INET6, ip, &s->sin6_addr);
	return ss;
}

/* The kernel prints each 32-bit word of an address as a number in the
 * host's byte order; these lines are what a little-endian host shows. */
TEST(tcp_lines)
{
	struct sockaddr_storage l, r;
	uint64_t ino = 0;
	CHECK(!proc_parse_tcp_line("  sl  local_address rem_address   st tx_queue rx_queue tr "
				   "tm->when retrnsmt   uid  timeout inode\n",
				   &l, &r, &ino));
	CHECK(!proc_parse_tcp_line("", &l, &r, &ino));
	CHECK(!proc_parse_tcp_line("   0: 0100007F:1F90 garbage", &l, &r, &ino));
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	CHECK(proc_parse_tcp_line("   3: 0100007F:1F90 0100007F:A2B4 01 00000000:00000000 "
				  "00:00000000 00000000     0        0 123456 1 0000000000000000 "
				  "20 4 30 10 -1\n",
				  &l, &r, &ino));
	CHECK_EQ(ino, 123456);
	struct sockaddr_storage want = v4("127.0.0.1", 8080);
	CHECK(proc_same_addr(&l, &want));
	want = v4("127.0.0.1", 0xA2B4);
	CHECK(proc_same_addr(&r, &want));
	want = v4("127.0.0.2", 0xA2B4);
	CHECK(!proc_same_addr(&r, &want));

	CHECK(proc_parse_tcp_line("   1: 00000000000000000000000001000000:2A31 "
				  "0000000000000000FFFF00000100007F:C350 01 00000000:00000000 "
				  "02:0000A3E1 00000000  1000        0 987 2 0000000000000000 20 4 "
				  "1 10 -1\n",
				  &l, &r, &ino));
	CHECK_EQ(ino, 987);
	want = v6("::1", 0x2A31);
	CHECK(proc_same_addr(&l, &want));
	/* ::ffff:127.0.0.1 is 127.0.0.1 */
	want = v4("127.0.0.1", 50000);
	CHECK(proc_same_addr(&r, &want));
	want = v6("::ffff:127.0.0.1", 50000);
	CHECK(proc_same_addr(&r, &want));
#endif
}

TEST(same_addr)
{
	struct sockaddr_storage a = v4("10.0.0.1", 1), b = v4("10.0.0.1", 2);
	CHECK(!proc_same_addr(&a, &b));
	b = v6("::ffff:10.0.0.1", 1);
	CHECK(proc_same_addr(&a, &b));
	CHECK(proc_same_addr(&b, &a));
	b = v6("::1", 1);
	CHECK(!proc_same_addr(&a, &b));
}

TEST(comm_of_self)
{
	char comm[32];
	proc_comm(getpid(), comm, sizeof(comm));
	CHECK_STR(comm, "test_proc");
	proc_comm(-5, comm, sizeof(comm));
	CHECK_STR(comm, "");
}

static int lock_file(int fd)
{
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	return fcntl(fd, F_OFD_SETLK, &fl);
}

TEST(lock_holder)
{
	char path[] = "/tmp/dst-test-lock-XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	if (fd < 0)
		return;
	struct stat st;
	fstat(fd, &st);
	CHECK_EQ(proc_lock_holder(st.st_dev, st.st_ino), 0);
	CHECK_EQ(lock_file(fd), 0);
	CHECK_EQ(proc_lock_holder(st.st_dev, st.st_ino), getpid());
	close(fd);
	CHECK_EQ(proc_lock_holder(st.st_dev, st.st_ino), 0);

	/* A child holds it, through its own open of the file. */
	int pfd[2];
	CHECK_EQ(pipe(pfd), 0);
	pid_t child = fork();
	if (child == 0) {
		int cfd = open(path, O_RDWR);
		char c = lock_file(cfd) == 0 ? 'y' : 'n';
		if (write(pfd[1], &c, 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	char c = 0;
	CHECK_EQ(read(pfd[0], &c, 1), 1);
	CHECK_EQ(c, 'y');
	CHECK_EQ(proc_lock_holder(st.st_dev, st.st_ino), child);
	/* Ours now conflicts, even though the child's lock shows pid -1. */
	fd = open(path, O_RDWR);
	CHECK(lock_file(fd) < 0);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	/* kill -9 let go of it with the child's files. */
	CHECK_EQ(lock_file(fd), 0);
	close(fd);
	close(pfd[0]);
	close(pfd[1]);
	unlink(path);
}

TEST(socket_peers)
{
	int sp[2];
	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);

	/* A TCP loopback connection: both ends are ours. */
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	CHECK_EQ(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	CHECK_EQ(listen(lfd, 1), 0);
	getsockname(lfd, (struct sockaddr *)&a, &al);
	int cfd = socket(AF_INET, SOCK_STREAM, 0);
	CHECK_EQ(connect(cfd, (struct sockaddr *)&a, sizeof(a)), 0);
	int afd = accept(lfd, NULL, NULL);
	CHECK(afd >= 0);

	int fds[] = {sp[0], afd, lfd};
	pid_t pids[3];
	proc_socket_peers(fds, 3, pids);
	CHECK_EQ(pids[0], getpid());
	CHECK_EQ(pids[1], getpid());
	CHECK_EQ(pids[2], 0); /* a listener has nobody at the other end */
	close(afd);
	close(cfd);
	close(lfd);
	close(sp[0]);
	close(sp[1]);
}

UNIT_MAIN(T(tcp_lines), T(same_addr), T(comm_of_self), T(lock_holder), T(socket_peers))
