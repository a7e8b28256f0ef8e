/* fuzz_nbd_server.c - our NBD server as a client on the network meets it:
 * a byte stream into a real connection, through the handshake
 * (handshake.c) into the transmission phase (transmit.c), against a 1 MiB
 * memory disk, on the daemon's own event loop, in this process.
 *
 * Three servers run on one loop: a read-write one on a Unix socket, a
 * read-only one, and one on TCP loopback whose --allow rule refuses
 * loopback. For each input, a client connects, sends the stream in pieces of
 * a chosen size while it reads and throws away whatever comes back, then
 * shuts its side down. The input is done when the server has closed the
 * connection and freed it, and then no request slot or buffer may be left
 * in use; a server that keeps it longer than 20 s is a hang, reported as a
 * crash. The read-write server gives each client only 256 KiB of buffers,
 * so that its own limits (conn_limits.c) are hit all the time.
 *
 * Input: one byte of settings (bits 0-1: which server, 2 the read-only one,
 * 3 the refusing one; bits 2-4: the size of the pieces the first KiB is
 * sent in, 1 byte to 64 KiB), then the client's bytes. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/acl.h"
#include "common/ev.h"
#include "common/log.h"
#include "common/util.h"
#include "dev/dev.h"
#include "fuzz.h"
#include "nbd/server.h"

#define HANG_NS (20ull * 1000000000ull)

static struct {
	bool ready;
	struct ev_loop *loop;
	struct dev *dev;
	struct acl deny_loopback;
	struct nbd_server *srv[3];
	char dir[64];
	char sock[2][128];
	int tcp_port;
} F;

/* One connection's client side. */
struct client {
	struct ev_io w;
	struct ev_timer tick;
	struct nbd_server *srv;
	const uint8_t *out;
	size_t out_len, sent, piece;
	bool closed;
	uint64_t start_ns;
};

static struct nbd_server *server(int i, const char *name, bool ro, const struct acl *acl,
				 size_t client_budget)
{
	struct nbd_server_config cfg = {
	    .name = name,
	    .desc = "fuzzed",
	    .dev = F.dev,
	    .readonly = ro,
	    .acl = acl,
	    .buf_budget = 32u << 20,
	    .client_budget = client_budget,
	};
	char err[256];
	struct nbd_server *s = nbd_server_new(F.loop, &cfg, err, sizeof(err));
	FUZZ_ASSERT(s);
	int rc = i < 2 ? nbd_server_listen_unix(s, F.sock[i], 64, err, sizeof(err))
		       : nbd_server_listen_tcp(s, "127.0.0.1:0", 64, err, sizeof(err));
	if (rc < 0)
		fprintf(stderr, "fuzz_nbd_server: %s\n", err);
	FUZZ_ASSERT(rc == 0);
	return s;
}

/* Clients reach the Unix listeners by their paths: those go at exit. */
static void cleanup(void)
{
	for (int i = 0; i < 2; i++)
		unlink(F.sock[i]);
	rmdir(F.dir);
}

static void setup(void)
{
	char err[256];
	/* The server logs every client; at this rate only errors matter. */
	log_init("fuzz", stderr, LOG_ERR);
	signal(SIGPIPE, SIG_IGN);
	F.loop = ev_loop_new();
	F.dev = dev_mem_open(F.loop, "mem:1M", err, sizeof(err));
	FUZZ_ASSERT(F.dev);
	const char *tmp = getenv("TMPDIR");
	if (!tmp || !*tmp || strlen(tmp) > 40)
		tmp = "/tmp";
	snprintf(F.dir, sizeof(F.dir), "%s/dst-fuzz-XXXXXX", tmp);
	FUZZ_ASSERT(mkdtemp(F.dir));
	for (int i = 0; i < 2; i++)
		snprintf(F.sock[i], sizeof(F.sock[i]), "%s/%d.sock", F.dir, i);
	FUZZ_ASSERT(acl_add(&F.deny_loopback, "192.0.2.0/24", err, sizeof(err)) == 0);
	/* A small client budget: reads of the 1 MiB disk make the client wait
	 * for its own requests (conn_limits.c) all the time. */
	F.srv[0] = server(0, "disk", false, NULL, 256u << 10);
	F.srv[1] = server(1, "", true, NULL, 0);
	F.srv[2] = server(2, "disk", false, &F.deny_loopback, 0);
	const char *uri;
	FUZZ_ASSERT(nbd_server_uris(F.srv[2], &uri, 1) == 1);
	F.tcp_port = atoi(strrchr(uri, ':') + 1);
	atexit(cleanup);
	F.ready = true;
}

static void client_close(struct client *cl)
{
	ev_io_stop(F.loop, &cl->w);
	close(cl->w.fd);
	cl->closed = true;
	ev_timer_start(F.loop, &cl->tick, 0);
}

static void client_event(struct ev_io *w, uint32_t events)
{
	struct client *cl = container_of(w, struct client, w);
	if ((events & EPOLLOUT) && cl->sent < cl->out_len) {
		/* Small pieces reach the parsers' partial states; past the
		 * first KiB they would only make the input slow. */
		size_t piece = cl->sent < 1024 ? cl->piece : 65536;
		size_t n = MIN(piece, cl->out_len - cl->sent);
		ssize_t k = send(w->fd, cl->out + cl->sent, n, MSG_NOSIGNAL);
		if (k > 0)
			cl->sent += (size_t)k;
		else if (k < 0 && errno != EAGAIN && errno != EINTR)
			cl->sent = cl->out_len; /* the server is gone: read what is left */
		if (cl->sent == cl->out_len) {
			shutdown(w->fd, SHUT_WR);
			ev_io_set(F.loop, w, EPOLLIN);
		}
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		static uint8_t sink[1 << 16];
		for (;;) {
			ssize_t k = recv(w->fd, sink, sizeof(sink), 0);
			if (k > 0)
				continue;
			if (k < 0 && (errno == EAGAIN || errno == EINTR))
				break;
			client_close(cl);
			return;
		}
	}
}

/* After the client saw the server close: wait until the connection is freed. */
static void client_tick(struct ev_timer *t)
{
	struct client *cl = container_of(t, struct client, tick);
	struct nbd_server_stats st;
	nbd_server_get_stats(cl->srv, &st);
	if (st.clients == 0) {
		/* The connection is gone: so must be every request slot and
		 * buffer it held. */
		FUZZ_ASSERT(st.inflight == 0);
		FUZZ_ASSERT(st.buf_in_use == 0);
		ev_loop_break(F.loop);
		return;
	}
	if (ev_now_ns() - cl->start_ns > HANG_NS) {
		fprintf(stderr, "fuzz_nbd_server: connection not freed after 20 s\n");
		abort();
	}
	ev_timer_start(F.loop, t, 0);
}

/* A watchdog while the connection is open. */
static void watchdog(struct ev_timer *t)
{
	fprintf(stderr, "fuzz_nbd_server: server kept the connection open for 20 s\n");
	abort();
}

FUZZ_TARGET(nbd_server)
{
	static const size_t pieces[] = {1, 3, 16, 28, 100, 512, 4096, 65536};
	if (size < 1)
		return 0;
	if (!F.ready)
		setup();
	int which = data[0] & 3;
	if (which == 0)
		which = 1; /* the read-write server gets half of the inputs */
	which--;
	struct client cl = {
	    .srv = F.srv[which],
	    .out = data + 1,
	    .out_len = size - 1,
	    .piece = pieces[(data[0] >> 2) & 7],
	    .start_ns = ev_now_ns(),
	};
	cl.w.fn = client_event;
	cl.tick.fn = client_tick;
	int fd;
	if (which < 2) {
		struct sockaddr_un sun = {.sun_family = AF_UNIX};
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		FUZZ_ASSERT(fd >= 0);
		snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", F.sock[which]);
		FUZZ_ASSERT(connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0);
	} else {
		struct sockaddr_in sin = {.sin_family = AF_INET,
					  .sin_port = htons((uint16_t)F.tcp_port),
					  .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		FUZZ_ASSERT(fd >= 0);
		/* Small pieces must not wait for delayed ACKs (40 ms each). */
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		FUZZ_ASSERT(connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0);
	}
	set_nonblock(fd);
	if (cl.out_len == 0)
		shutdown(fd, SHUT_WR);
	ev_io_start(F.loop, &cl.w, fd, cl.out_len ? EPOLLIN | EPOLLOUT : EPOLLIN);
	struct ev_timer dog = {.fn = watchdog};
	ev_timer_start(F.loop, &dog, HANG_NS);
	ev_run(F.loop);
	ev_timer_stop(F.loop, &dog);
	ev_timer_stop(F.loop, &cl.tick);
	FUZZ_ASSERT(cl.closed);
	return 0;
}
