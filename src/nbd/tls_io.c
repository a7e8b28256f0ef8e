/* tls_io.c - our transport under GnuTLS, for non-blocking sockets on an
 * event loop. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/util.h"
#include "tls_int.h"

/* GnuTLS reads a record with two recv() calls (header, then body) and
 * writes each record with its own syscall; on a busy connection that is
 * most of the syscalls. So it reads from rx, which one recv() fills with as
 * much as the socket has, and, while corked, writes records into tx, which
 * one send() empties. Bytes left in rx are invisible to epoll:
 * tls_pending() counts them. */
#define TLS_RX_BUF (64u << 10)
#define TLS_TX_BUF (256u << 10)

struct tls_io {
	gnutls_session_t s;
	int fd;
	bool corked;
	uint8_t *rx, *tx;
	uint32_t rx_pos, rx_len, tx_pos, tx_len;
};

static ssize_t io_pull(gnutls_transport_ptr_t p, void *data, size_t len)
{
	struct tls_io *io = p;
	if (io->rx_pos == io->rx_len) {
		ssize_t r = recv(io->fd, io->rx, TLS_RX_BUF, 0);
		if (r <= 0) {
			if (r < 0)
				gnutls_transport_set_errno(io->s, errno);
			return r;
		}
		io->rx_pos = 0;
		io->rx_len = (uint32_t)r;
	}
	size_t take = MIN(len, (size_t)(io->rx_len - io->rx_pos));
	memcpy(data, io->rx + io->rx_pos, take);
	io->rx_pos += (uint32_t)take;
	return (ssize_t)take;
}

/* GnuTLS asks this before reading when it has a timeout to keep; we never
 * wait (the socket is non-blocking and our loop has the timers). */
static int io_pull_timeout(gnutls_transport_ptr_t p, unsigned ms)
{
	struct tls_io *io = p;
	if (io->rx_pos < io->rx_len)
		return 1;
	struct pollfd pfd = {.fd = io->fd, .events = POLLIN};
	return poll(&pfd, 1, 0);
}

/* Send what tx holds: 0 when it is empty, -1 with errno (EAGAIN too). */
static int tx_write(struct tls_io *io)
{
	while (io->tx_pos < io->tx_len) {
		ssize_t w = send(io->fd, io->tx + io->tx_pos, io->tx_len - io->tx_pos,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		io->tx_pos += (uint32_t)w;
	}
	io->tx_pos = io->tx_len = 0;
	return 0;
}

static ssize_t io_push(gnutls_transport_ptr_t p, const giovec_t *iov, int iovcnt)
{
	struct tls_io *io = p;
	size_t total = 0;
	for (int i = 0; i < iovcnt; i++)
		total += iov[i].iov_len;
	if (!io->corked && io->tx_pos == io->tx_len) {
		struct msghdr m = {.msg_iov = (struct iovec *)(uintptr_t)iov,
				   .msg_iovlen = (size_t)iovcnt};
		ssize_t w = sendmsg(io->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0)
			gnutls_transport_set_errno(io->s, errno);
		return w;
	}
	/* Behind what tx already holds, in order, whole or not at all. */
	if (io->tx_len + total > TLS_TX_BUF) {
		if (tx_write(io) < 0 && errno != EAGAIN) {
			gnutls_transport_set_errno(io->s, errno);
			return -1;
		}
		if (io->tx_pos > 0) {
			memmove(io->tx, io->tx + io->tx_pos, io->tx_len - io->tx_pos);
			io->tx_len -= io->tx_pos;
			io->tx_pos = 0;
		}
		if (io->tx_len + total > TLS_TX_BUF) {
			gnutls_transport_set_errno(io->s, EAGAIN);
			return -1;
		}
	}
	for (int i = 0; i < iovcnt; i++) {
		memcpy(io->tx + io->tx_len, iov[i].iov_base, iov[i].iov_len);
		io->tx_len += (uint32_t)iov[i].iov_len;
	}
	return (ssize_t)total;
}

void tls_cork(gnutls_session_t s)
{
	((struct tls_io *)gnutls_transport_get_ptr(s))->corked = true;
}

int tls_uncork(gnutls_session_t s)
{
	struct tls_io *io = gnutls_transport_get_ptr(s);
	io->corked = false;
	if (tx_write(io) == 0)
		return 0;
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return 1;
	tls_note_error(strerror(errno));
	if (errno == EPIPE)
		errno = ECONNRESET;
	return -1;
}

bool tls_tx_pending(gnutls_session_t s)
{
	struct tls_io *io = gnutls_transport_get_ptr(s);
	return io->tx_pos < io->tx_len;
}

bool tls_pending(gnutls_session_t s)
{
	struct tls_io *io = gnutls_transport_get_ptr(s);
	return io->rx_pos < io->rx_len || gnutls_record_check_pending(s) > 0;
}

void tls_io_attach(gnutls_session_t s, int fd)
{
	struct tls_io *io = xcalloc(1, sizeof(*io));
	io->s = s;
	io->fd = fd;
	io->rx = xmalloc(TLS_RX_BUF);
	io->tx = xmalloc(TLS_TX_BUF);
	gnutls_transport_set_ptr(s, io);
	gnutls_transport_set_pull_function(s, io_pull);
	gnutls_transport_set_pull_timeout_function(s, io_pull_timeout);
	gnutls_transport_set_vec_push_function(s, io_push);
}

void tls_io_free(gnutls_session_t s)
{
	struct tls_io *io = gnutls_transport_get_ptr(s);
	if (io) {
		free(io->rx);
		free(io->tx);
		free(io);
	}
	gnutls_transport_set_ptr(s, NULL);
}
