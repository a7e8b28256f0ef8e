/* tls.c - GnuTLS credentials and non-blocking sessions for NBD (see tls.h). */
#include <errno.h>
#include <gnutls/x509.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/util.h"
#include "tls.h"

/* PSK cipher suites are not in NORMAL; these are the ones nbdkit, qemu and
 * libnbd offer, so that every peer finds a common one. */
#define PRIO_PSK "NORMAL:+ECDHE-PSK:+DHE-PSK:+PSK"
/* A TLS 1.3 PSK (SHA-256) cannot use AES-256-GCM (SHA-384), so NORMAL's
 * next choice, ChaCha20, wins; where the CPU has AES instructions
 * AES-128-GCM is twice as fast here, so it goes first, in our order. */
#define PRIO_PSK_AES \
	"NORMAL:%SERVER_PRECEDENCE:-CHACHA20-POLY1305:+CHACHA20-POLY1305:+ECDHE-PSK:+DHE-PSK:+PSK"
#define PRIO_X509 "NORMAL"

struct tls_creds {
	bool server, psk, verify_peer;
	gnutls_psk_server_credentials_t psk_srv;
	gnutls_psk_client_credentials_t psk_cli;
	gnutls_certificate_credentials_t x509;
	gnutls_priority_t prio;
};

/* Our transport under GnuTLS. GnuTLS reads a record as two recv() calls
 * (header, then body) and writes each record with its own syscall; on a
 * busy connection that is most of the syscalls. So it reads from rx, which
 * one recv() fills with as much as the socket has, and, while corked,
 * writes records into tx, which one send() empties. Bytes left in rx are
 * invisible to epoll: tls_pending() counts them. */
#define TLS_RX_BUF (64u << 10)
#define TLS_TX_BUF (256u << 10)

struct tls_io {
	gnutls_session_t s;
	int fd;
	bool corked;
	uint8_t *rx, *tx;
	uint32_t rx_pos, rx_len, tx_pos, tx_len;
};

static char last_error[256];

int tls_mode_parse(const char *s, enum tls_mode *out)
{
	if (!strcmp(s, "off") || !strcmp(s, "no") || !strcmp(s, "0"))
		*out = TLS_OFF;
	else if (!strcmp(s, "on") || !strcmp(s, "yes") || !strcmp(s, "1"))
		*out = TLS_ON;
	else if (!strcmp(s, "require"))
		*out = TLS_REQUIRE;
	else
		return -1;
	return 0;
}

const char *tls_mode_name(enum tls_mode m)
{
	return m == TLS_REQUIRE ? "require" : m == TLS_ON ? "on" : "off";
}

const char *tls_creds_kind(const struct tls_creds *c)
{
	return c->psk ? "PSK" : "X.509";
}

/* ---- PSK files ---- */

static bool is_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strchr("0123456789abcdefABCDEF", s[i]))
			return false;
	return n > 0 && n % 2 == 0;
}

int tls_psk_file_check(const char *path, const char *username, char **user_out, char **key_hex,
		       char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	if (!f) {
		snprintf(err, errlen, "PSK file %s: %s", path, strerror(errno));
		return -1;
	}
	char line[1024];
	unsigned lineno = 0, users = 0;
	int rc = -1;
	bool found = false;
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		size_t len = strcspn(line, "\r\n");
		if (line[len] == '\0' && !feof(f)) {
			snprintf(err, errlen, "PSK file %s: line %u is too long", path, lineno);
			goto out;
		}
		line[len] = '\0';
		if (len == 0)
			continue;
		char *colon = strchr(line, ':');
		if (!colon || colon == line || !is_hex(colon + 1, strlen(colon + 1))) {
			snprintf(err, errlen,
				 "PSK file %s: line %u is not 'username:hexkey' (make one with "
				 "psktool -u NAME -p FILE)",
				 path, lineno);
			goto out;
		}
		*colon = '\0';
		users++;
		if (!found && (!username || !strcmp(line, username))) {
			found = true;
			if (user_out)
				*user_out = xstrdup(line);
			if (key_hex)
				*key_hex = xstrdup(colon + 1);
		}
	}
	if (ferror(f)) {
		snprintf(err, errlen, "PSK file %s: %s", path, strerror(errno));
		goto out;
	}
	if (users == 0) {
		snprintf(err, errlen, "PSK file %s: no 'username:hexkey' line in it", path);
		goto out;
	}
	if (!found) {
		snprintf(err, errlen, "PSK file %s: no key for user '%s'", path, username);
		goto out;
	}
	rc = 0;
out:
	if (rc < 0 && found) {
		if (user_out) {
			free(*user_out);
			*user_out = NULL;
		}
		if (key_hex) {
			free(*key_hex);
			*key_hex = NULL;
		}
	}
	fclose(f);
	return rc;
}

/* ---- X.509 directories ---- */

/* DIR/NAME if it exists (and is readable), else NULL; required ones that
 * are missing are an error. */
static char *cert_file(const char *dir, const char *name, bool required, int *rc, char *err,
		       size_t errlen)
{
	char *p = xasprintf("%s/%s", dir, name);
	if (access(p, R_OK) == 0)
		return p;
	if (required || errno != ENOENT) {
		snprintf(err, errlen, "--tls-certs %s: %s: %s", dir, name, strerror(errno));
		*rc = -1;
	}
	free(p);
	return NULL;
}

static int load_ca(struct tls_creds *c, const char *dir, const char *ca, char *err, size_t errlen)
{
	int n = gnutls_certificate_set_x509_trust_file(c->x509, ca, GNUTLS_X509_FMT_PEM);
	if (n < 0) {
		snprintf(err, errlen, "--tls-certs %s: ca-cert.pem: %s", dir, gnutls_strerror(n));
		return -1;
	}
	if (n == 0) {
		snprintf(err, errlen, "--tls-certs %s: ca-cert.pem holds no certificate", dir);
		return -1;
	}
	return 0;
}

static int load_key_pair(struct tls_creds *c, const char *dir, const char *who, char *err,
			 size_t errlen)
{
	int rc = 0;
	char cn[32], kn[32];
	snprintf(cn, sizeof(cn), "%s-cert.pem", who);
	snprintf(kn, sizeof(kn), "%s-key.pem", who);
	bool required = !strcmp(who, "server");
	char *cert = cert_file(dir, cn, required, &rc, err, errlen);
	char *key = rc == 0 ? cert_file(dir, kn, required || cert, &rc, err, errlen) : NULL;
	if (rc == 0 && key && !cert) {
		snprintf(err, errlen, "--tls-certs %s: %s without %s", dir, kn, cn);
		rc = -1;
	}
	if (rc == 0 && cert) {
		int g =
		    gnutls_certificate_set_x509_key_file(c->x509, cert, key, GNUTLS_X509_FMT_PEM);
		if (g < 0) {
			snprintf(err, errlen, "--tls-certs %s: %s / %s: %s", dir, cn, kn,
				 gnutls_strerror(g));
			rc = -1;
		}
	}
	free(cert);
	free(key);
	return rc;
}

static int x509_load(struct tls_creds *c, const char *dir, char *err, size_t errlen)
{
	int rc = 0, g;
	if ((g = gnutls_certificate_allocate_credentials(&c->x509)) < 0) {
		snprintf(err, errlen, "TLS: %s", gnutls_strerror(g));
		return -1;
	}
	/* A client must be able to check its server; a server needs the CA
	 * only to check its clients. */
	bool need_ca = !c->server || c->verify_peer;
	char *ca = cert_file(dir, "ca-cert.pem", need_ca, &rc, err, errlen);
	if (rc == 0 && ca)
		rc = load_ca(c, dir, ca, err, errlen);
	free(ca);
	if (rc == 0) {
		char *crl = cert_file(dir, "ca-crl.pem", false, &rc, err, errlen);
		if (crl && (g = gnutls_certificate_set_x509_crl_file(c->x509, crl,
								     GNUTLS_X509_FMT_PEM)) < 0) {
			snprintf(err, errlen, "--tls-certs %s: ca-crl.pem: %s", dir,
				 gnutls_strerror(g));
			rc = -1;
		}
		free(crl);
	}
	if (rc == 0)
		rc = load_key_pair(c, dir, c->server ? "server" : "client", err, errlen);
	if (rc == 0 && c->server)
		gnutls_certificate_set_known_dh_params(c->x509, GNUTLS_SEC_PARAM_MEDIUM);
	return rc;
}

/* ---- credentials ---- */

/* Does the CPU have AES instructions (x86 "aes", arm64 "aes" flags)? */
static bool cpu_has_aes(void)
{
	static int known = -1;
	if (known >= 0)
		return known;
	known = 0;
	FILE *f = fopen("/proc/cpuinfo", "re");
	if (!f)
		return false;
	char line[4096];
	while (!known && fgets(line, sizeof(line), f))
		if ((!strncmp(line, "flags", 5) || !strncmp(line, "Features", 8)) &&
		    (strstr(line, " aes ") || strstr(line, " aes\n")))
			known = 1;
	fclose(f);
	return known;
}

static struct tls_creds *creds_new(bool server, const char *psk_file, const char *certs_dir,
				   char *err, size_t errlen)
{
	if (!!psk_file == !!certs_dir) {
		snprintf(err, errlen,
			 "TLS needs credentials: give exactly one of --tls-psk FILE "
			 "or --tls-certs DIR");
		return NULL;
	}
	struct tls_creds *c = xcalloc(1, sizeof(*c));
	c->server = server;
	c->psk = psk_file != NULL;
	const char *prio = !c->psk ? PRIO_X509 : cpu_has_aes() ? PRIO_PSK_AES : PRIO_PSK;
	int g = gnutls_priority_init(&c->prio, prio, NULL);
	if (g < 0) {
		snprintf(err, errlen, "TLS priority %s: %s", prio, gnutls_strerror(g));
		c->prio = NULL;
		tls_creds_free(c);
		return NULL;
	}
	return c;
}

struct tls_creds *tls_creds_server(const char *psk_file, const char *certs_dir, bool verify_peer,
				   char *err, size_t errlen)
{
	struct tls_creds *c = creds_new(true, psk_file, certs_dir, err, errlen);
	if (!c)
		return NULL;
	c->verify_peer = verify_peer;
	if (c->psk) {
		if (verify_peer) {
			snprintf(err, errlen,
				 "--tls-verify-peer is for X.509 (--tls-certs): with "
				 "PSK every client proves its key anyway");
			goto fail;
		}
		if (tls_psk_file_check(psk_file, NULL, NULL, NULL, err, errlen) < 0)
			goto fail;
		int g = gnutls_psk_allocate_server_credentials(&c->psk_srv);
		if (g >= 0)
			g = gnutls_psk_set_server_credentials_file(c->psk_srv, psk_file);
		if (g < 0) {
			snprintf(err, errlen, "PSK file %s: %s", psk_file, gnutls_strerror(g));
			goto fail;
		}
		gnutls_psk_set_server_known_dh_params(c->psk_srv, GNUTLS_SEC_PARAM_MEDIUM);
		return c;
	}
	if (x509_load(c, certs_dir, err, errlen) < 0)
		goto fail;
	return c;
fail:
	tls_creds_free(c);
	return NULL;
}

struct tls_creds *tls_creds_client(const char *psk_file, const char *username,
				   const char *certs_dir, char *err, size_t errlen)
{
	struct tls_creds *c = creds_new(false, psk_file, certs_dir, err, errlen);
	if (!c)
		return NULL;
	if (c->psk) {
		char *user = NULL, *key = NULL;
		if (tls_psk_file_check(psk_file, username, &user, &key, err, errlen) < 0)
			goto fail;
		int g = gnutls_psk_allocate_client_credentials(&c->psk_cli);
		if (g >= 0) {
			gnutls_datum_t k = {(unsigned char *)key, (unsigned)strlen(key)};
			g = gnutls_psk_set_client_credentials(c->psk_cli, user, &k,
							      GNUTLS_PSK_KEY_HEX);
		}
		free(user);
		free(key);
		if (g < 0) {
			snprintf(err, errlen, "PSK file %s: %s", psk_file, gnutls_strerror(g));
			goto fail;
		}
		return c;
	}
	if (x509_load(c, certs_dir, err, errlen) < 0)
		goto fail;
	return c;
fail:
	tls_creds_free(c);
	return NULL;
}

void tls_creds_free(struct tls_creds *c)
{
	if (!c)
		return;
	if (c->psk_srv)
		gnutls_psk_free_server_credentials(c->psk_srv);
	if (c->psk_cli)
		gnutls_psk_free_client_credentials(c->psk_cli);
	if (c->x509)
		gnutls_certificate_free_credentials(c->x509);
	if (c->prio)
		gnutls_priority_deinit(c->prio);
	free(c);
}

/* ---- sessions ---- */

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
	snprintf(last_error, sizeof(last_error), "%s", strerror(errno));
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

void tls_session_free(gnutls_session_t s)
{
	if (!s)
		return;
	struct tls_io *io = gnutls_transport_get_ptr(s);
	gnutls_deinit(s);
	if (io) {
		free(io->rx);
		free(io->tx);
		free(io);
	}
}

static bool is_ip_address(const char *h)
{
	return strspn(h, "0123456789.") == strlen(h) || strchr(h, ':');
}

int tls_session_new(const struct tls_creds *c, int fd, const char *hostname, gnutls_session_t *out,
		    char *err, size_t errlen)
{
	gnutls_session_t s;
	int g = gnutls_init(&s, (c->server ? GNUTLS_SERVER : GNUTLS_CLIENT) | GNUTLS_NONBLOCK);
	if (g < 0) {
		snprintf(err, errlen, "TLS session: %s", gnutls_strerror(g));
		return -1;
	}
	g = gnutls_priority_set(s, c->prio);
	if (g >= 0) {
		if (c->psk)
			g = gnutls_credentials_set(
			    s, GNUTLS_CRD_PSK, c->server ? (void *)c->psk_srv : (void *)c->psk_cli);
		else
			g = gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, c->x509);
	}
	if (g < 0) {
		snprintf(err, errlen, "TLS session: %s", gnutls_strerror(g));
		gnutls_deinit(s);
		return -1;
	}
	if (!c->psk && c->server) {
		gnutls_certificate_server_set_request(s, c->verify_peer ? GNUTLS_CERT_REQUIRE
									: GNUTLS_CERT_IGNORE);
		if (c->verify_peer)
			gnutls_session_set_verify_cert(s, NULL, 0);
	} else if (!c->psk) {
		/* The server's certificate is checked during the handshake,
		 * which fails with a reason if it is not to be trusted. */
		gnutls_session_set_verify_cert(s, hostname, 0);
		if (hostname && !is_ip_address(hostname))
			gnutls_server_name_set(s, GNUTLS_NAME_DNS, hostname, strlen(hostname));
	}
	/* Our own timers bound the handshake (NBD's handshake timeout). */
	gnutls_handshake_set_timeout(s, 0);
	struct tls_io *io = xcalloc(1, sizeof(*io));
	io->s = s;
	io->fd = fd;
	io->rx = xmalloc(TLS_RX_BUF);
	io->tx = xmalloc(TLS_TX_BUF);
	gnutls_transport_set_ptr(s, io);
	gnutls_transport_set_pull_function(s, io_pull);
	gnutls_transport_set_pull_timeout_function(s, io_pull_timeout);
	gnutls_transport_set_vec_push_function(s, io_push);
	*out = s;
	return 0;
}

static bool psk_failure(int g, gnutls_alert_description_t alert)
{
	if (g == GNUTLS_E_DECRYPTION_FAILED || g == GNUTLS_E_INSUFFICIENT_CREDENTIALS ||
	    g == GNUTLS_E_NO_CIPHER_SUITES || g == GNUTLS_E_RECEIVED_ILLEGAL_PARAMETER)
		return true;
	return g == GNUTLS_E_FATAL_ALERT_RECEIVED &&
	       (alert == GNUTLS_A_DECRYPT_ERROR || alert == GNUTLS_A_UNKNOWN_PSK_IDENTITY ||
		alert == GNUTLS_A_BAD_RECORD_MAC || alert == GNUTLS_A_ILLEGAL_PARAMETER ||
		alert == GNUTLS_A_HANDSHAKE_FAILURE || alert == GNUTLS_A_INSUFFICIENT_SECURITY);
}

int tls_handshake_step(gnutls_session_t s, const struct tls_creds *c, bool *want_write, char *err,
		       size_t errlen)
{
	int g = gnutls_handshake(s);
	if (g == GNUTLS_E_SUCCESS)
		return 0;
	if (g == GNUTLS_E_AGAIN || g == GNUTLS_E_INTERRUPTED ||
	    (g < 0 && !gnutls_error_is_fatal(g))) {
		*want_write = gnutls_record_get_direction(s) == 1;
		return 1;
	}
	gnutls_alert_description_t alert = gnutls_alert_get(s);
	/* Tell the peer why, if the socket takes it now, rather than just
	 * closing: its user then reads more than "connection closed". */
	if (g != GNUTLS_E_FATAL_ALERT_RECEIVED && g != GNUTLS_E_PREMATURE_TERMINATION &&
	    g != GNUTLS_E_PUSH_ERROR && g != GNUTLS_E_PULL_ERROR)
		gnutls_alert_send_appropriate(s, g);
	if (g == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR) {
		gnutls_datum_t out = {0};
		unsigned status = gnutls_session_get_verify_cert_status(s);
		if (gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &out,
								 0) == 0) {
			snprintf(err, errlen, "TLS handshake failed: the peer's certificate: %s",
				 (const char *)out.data);
			gnutls_free(out.data);
			size_t e = strlen(err);
			while (e > 0 && err[e - 1] == ' ')
				err[--e] = '\0';
		} else {
			snprintf(err, errlen, "TLS handshake failed: %s", gnutls_strerror(g));
		}
	} else if (g == GNUTLS_E_FATAL_ALERT_RECEIVED) {
		snprintf(err, errlen, "TLS handshake failed: the peer refused it (%s)",
			 gnutls_alert_get_name(alert));
	} else if (g == GNUTLS_E_PREMATURE_TERMINATION || g == GNUTLS_E_PUSH_ERROR ||
		   g == GNUTLS_E_PULL_ERROR) {
		snprintf(err, errlen, "TLS handshake failed: the peer closed the connection%s",
			 c->server && !c->psk ? " (does it trust our certificate?)" : "");
	} else if (g == GNUTLS_E_CERTIFICATE_REQUIRED) {
		snprintf(err, errlen,
			 "TLS handshake failed: the client showed no certificate signed by our CA "
			 "(ca-cert.pem; --tls-verify-peer)");
	} else {
		snprintf(err, errlen, "TLS handshake failed: %s", gnutls_strerror(g));
	}
	size_t n = strlen(err);
	if (c->psk && psk_failure(g, alert) && n < errlen)
		snprintf(err + n, errlen - n, " (wrong PSK key or username?)");
	else if (!c->psk && !c->server && g == GNUTLS_E_FATAL_ALERT_RECEIVED && n < errlen)
		snprintf(err + n, errlen - n, " (does the server want a client certificate?)");
	return -1;
}

static ssize_t map_error(ssize_t g)
{
	snprintf(last_error, sizeof(last_error), "%s", gnutls_strerror((int)g));
	switch (g) {
	case GNUTLS_E_AGAIN: errno = EAGAIN; break;
	case GNUTLS_E_INTERRUPTED: errno = EINTR; break;
	case GNUTLS_E_PREMATURE_TERMINATION:
	case GNUTLS_E_PUSH_ERROR:
	case GNUTLS_E_PULL_ERROR: errno = ECONNRESET; break;
	default: errno = EPROTO; break;
	}
	return -1;
}

ssize_t tls_recv(gnutls_session_t s, void *buf, size_t len)
{
	ssize_t g = gnutls_record_recv(s, buf, len);
	if (g >= 0)
		return g;
	if (g == GNUTLS_E_REHANDSHAKE || g == GNUTLS_E_WARNING_ALERT_RECEIVED) {
		/* Nothing for us: renegotiation is refused, warnings ignored. */
		errno = EAGAIN;
		return -1;
	}
	return map_error(g);
}

ssize_t tls_send(gnutls_session_t s, const void *buf, size_t len)
{
	ssize_t g = gnutls_record_send(s, buf, MIN(len, (size_t)TLS_RECORD_MAX));
	return g >= 0 ? g : map_error(g);
}

const char *tls_last_error(void)
{
	return last_error;
}
