/* bench/relay.c - what moving bytes through one extra process costs on this
 * machine, with no NBD at all: the ceiling under any 2-hop storage.
 *
 * Three processes on loopback TCP, as in the storage benchmark: a source
 * writes 1 MiB messages, a relay forwards them, a sink reads and discards.
 * The relay either copies (read into a buffer, write it out: what a storage
 * daemon or a proxy does) or splices (socket -> pipe -> socket, no copy
 * through user memory). "direct" leaves the relay out: source -> sink, one
 * hop, the ceiling of a single export.
 *
 * Two more paths give the ceiling under a 2-leg mirror, every byte sent
 * twice: "copy2" writes what it reads to two sinks, "tee" splices it into
 * a pipe, duplicates it into a second with tee(2), and splices each to one
 * of two sinks.
 *
 *   relay direct|copy|splice|copy2|tee [GiB]     (default 4 GiB)
 *
 * Prints one line: mode, MiB/s, and CPU seconds per GiB of all three.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MSG (1u << 20)

static void die(const char *what)
{
	fprintf(stderr, "relay: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* A listening socket on 127.0.0.1 and a free port chosen by the kernel. */
static int listen_any(int *port)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 1) < 0 ||
	    getsockname(s, (struct sockaddr *)&a, &len) < 0)
		die("listen on 127.0.0.1");
	*port = ntohs(a.sin_port);
	return s;
}

static int connect_to(int port)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof(a)) < 0)
		die("connect to 127.0.0.1");
	return s;
}

static void write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w <= 0)
			die("write");
		p += w;
		n -= (size_t)w;
	}
}

static void source(int fd, uint64_t total)
{
	char *buf = malloc(MSG);
	if (!buf)
		die("malloc");
	for (size_t i = 0; i < MSG; i++)
		buf[i] = (char)(i * 31 + 7);
	for (uint64_t sent = 0; sent < total; sent += MSG)
		write_all(fd, buf, MSG);
	exit(0);
}

static void sink(int fd)
{
	char *buf = malloc(MSG);
	if (!buf)
		die("malloc");
	while (read(fd, buf, MSG) > 0)
		;
	exit(0);
}

static void relay_copy(int in, int out)
{
	char *buf = malloc(MSG);
	ssize_t n;
	if (!buf)
		die("malloc");
	while ((n = read(in, buf, MSG)) > 0)
		write_all(out, buf, (size_t)n);
}

static void relay_splice(int in, int out)
{
	int p[2];
	if (pipe(p) < 0)
		die("pipe");
	fcntl(p[1], F_SETPIPE_SZ, MSG); /* as big as an unprivileged process may */
	for (;;) {
		ssize_t n = splice(in, NULL, p[1], NULL, MSG, SPLICE_F_MOVE);
		if (n < 0)
			die("splice from the socket");
		if (n == 0)
			return;
		while (n > 0) {
			ssize_t w = splice(p[0], NULL, out, NULL, (size_t)n, SPLICE_F_MOVE);
			if (w <= 0)
				die("splice to the socket");
			n -= w;
		}
	}
}

static void relay_copy2(int in, int out, int out2)
{
	char *buf = malloc(MSG);
	ssize_t n;
	if (!buf)
		die("malloc");
	while ((n = read(in, buf, MSG)) > 0) {
		write_all(out, buf, (size_t)n);
		write_all(out2, buf, (size_t)n);
	}
}

static void splice_all(int from, int to, ssize_t n)
{
	while (n > 0) {
		ssize_t w = splice(from, NULL, to, NULL, (size_t)n, SPLICE_F_MOVE);
		if (w <= 0)
			die("splice to the socket");
		n -= w;
	}
}

static void relay_tee(int in, int out, int out2)
{
	int p[2], q[2];
	if (pipe(p) < 0 || pipe(q) < 0)
		die("pipe");
	fcntl(p[1], F_SETPIPE_SZ, MSG);
	fcntl(q[1], F_SETPIPE_SZ, MSG);
	for (;;) {
		ssize_t n = splice(in, NULL, p[1], NULL, MSG, SPLICE_F_MOVE);
		if (n < 0)
			die("splice from the socket");
		if (n == 0)
			return;
		if (tee(p[0], q[1], (size_t)n, 0) != n)
			die("tee");
		splice_all(p[0], out, n);
		splice_all(q[0], out2, n);
	}
}

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double cpu_seconds(int who)
{
	struct rusage ru;
	getrusage(who, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	bool direct = !strcmp(mode, "direct"), copy = !strcmp(mode, "copy");
	bool copy2 = !strcmp(mode, "copy2"), teed = !strcmp(mode, "tee");
	if (!direct && !copy && !copy2 && !teed && strcmp(mode, "splice")) {
		fprintf(stderr, "usage: relay direct|copy|splice|copy2|tee [GiB]\n");
		return 2;
	}
	uint64_t total = (uint64_t)(argc > 2 ? atoi(argv[2]) : 4) << 30;
	signal(SIGPIPE, SIG_IGN);

	int sink_port, relay_port;
	int ls = listen_any(&sink_port);
	pid_t sink_pid = fork();
	if (sink_pid == 0) {
		int fd = accept(ls, NULL, NULL);
		if (fd < 0)
			die("accept");
		sink(fd);
	}
	int to_sink = connect_to(sink_port);
	pid_t sink2_pid = 0;
	int to_sink2 = -1;
	if (copy2 || teed) { /* the second leg */
		sink2_pid = fork();
		if (sink2_pid == 0) {
			/* Not ours: held here, the first leg would never see EOF. */
			close(to_sink);
			int fd = accept(ls, NULL, NULL);
			if (fd < 0)
				die("accept");
			sink(fd);
		}
		to_sink2 = connect_to(sink_port);
	}
	close(ls);

	double t0 = now(), cpu0 = cpu_seconds(RUSAGE_SELF);
	pid_t source_pid;
	if (direct) {
		source_pid = fork();
		if (source_pid == 0)
			source(to_sink, total);
		close(to_sink);
	} else {
		int lr = listen_any(&relay_port);
		source_pid = fork();
		if (source_pid == 0)
			source(connect_to(relay_port), total);
		int from_source = accept(lr, NULL, NULL);
		if (from_source < 0)
			die("accept");
		close(lr);
		if (copy)
			relay_copy(from_source, to_sink);
		else if (copy2)
			relay_copy2(from_source, to_sink, to_sink2);
		else if (teed)
			relay_tee(from_source, to_sink, to_sink2);
		else
			relay_splice(from_source, to_sink);
		close(to_sink);
		if (to_sink2 >= 0)
			close(to_sink2);
	}
	waitpid(source_pid, NULL, 0);
	waitpid(sink_pid, NULL, 0);
	if (sink2_pid)
		waitpid(sink2_pid, NULL, 0);
	double secs = now() - t0;
	double cpu = cpu_seconds(RUSAGE_SELF) - cpu0 + cpu_seconds(RUSAGE_CHILDREN);
	double gib = (double)total / (1u << 30);
	printf("%-7s %7.0f MiB/s  cpu %5.2f s/GiB\n", mode, gib * 1024 / secs, cpu / gib);
	return 0;
}
