/* tls.h - TLS for NBD connections (NBD_OPT_STARTTLS), with GnuTLS: the
 * credentials a server or a client loads from files, and the few calls our
 * non-blocking connections need (a session on an fd, a handshake step,
 * record send/recv with read(2)/write(2) conventions).
 *
 * Credentials, as nbdkit, qemu and libnbd name them:
 *  - PSK: a psktool file, one "username:hexkey" line per client; a server
 *    lets in every user of the file, a client uses one (its username, or
 *    the first line's).
 *  - X.509: a directory with ca-cert.pem, and server-cert.pem +
 *    server-key.pem (server) or, optionally, client-cert.pem +
 *    client-key.pem (client). A client always checks the server's
 *    certificate against ca-cert.pem (and the host name, for TCP); a server
 *    checks clients' certificates only when asked to (verify_peer).
 */
#ifndef DST_NBD_TLS_H
#define DST_NBD_TLS_H

#include <gnutls/gnutls.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* How a server treats TLS: not offered, offered, or demanded before
 * anything of the export is told (the spec's NOTLS, SELECTIVETLS with no
 * TLS-only export, FORCEDTLS). */
enum tls_mode { TLS_OFF, TLS_ON, TLS_REQUIRE };

/* "off", "on", "require"; 0 or -1. */
int tls_mode_parse(const char *s, enum tls_mode *out);
const char *tls_mode_name(enum tls_mode m);

struct tls_creds;

/* Server credentials from exactly one of psk_file and certs_dir. NULL with
 * a one-line reason (naming the file) in err. */
struct tls_creds *tls_creds_server(const char *psk_file, const char *certs_dir, bool verify_peer,
				   char *err, size_t errlen);
/* Client credentials from exactly one of psk_file (username NULL: the file's
 * first) and certs_dir. */
struct tls_creds *tls_creds_client(const char *psk_file, const char *username,
				   const char *certs_dir, char *err, size_t errlen);
/* The same; with verify_server false (libnbd's tls-verify-peer=false), an
 * X.509 server's certificate is not checked and ca-cert.pem may be absent. */
struct tls_creds *tls_creds_client_verify(const char *psk_file, const char *username,
					  const char *certs_dir, bool verify_server, char *err,
					  size_t errlen);
void tls_creds_free(struct tls_creds *c);
/* "PSK" or "X.509", for logs. */
const char *tls_creds_kind(const struct tls_creds *c);

/* Check a psktool file: readable, and every line "username:hexkey". With
 * username, that user must be in it, and *key_hex (if not NULL) gets its key
 * (malloc'd); without, the first line's name and key. 0, or -1 with a reason. */
int tls_psk_file_check(const char *path, const char *username, char **user_out, char **key_hex,
		       char *err, size_t errlen);

/* A non-blocking session on fd. hostname (client, X.509): the name or
 * address the server's certificate must be for; NULL checks the chain only. */
int tls_session_new(const struct tls_creds *c, int fd, const char *hostname, gnutls_session_t *out,
		    char *err, size_t errlen);

/* One step of the handshake: 0 when it is done; 1 when it must wait for the
 * socket (*want_write says which way); -1 when it failed, with a reason that
 * says why as plainly as GnuTLS lets us (a certificate that is not trusted,
 * a wrong PSK...). */
int tls_handshake_step(gnutls_session_t s, const struct tls_creds *c, bool *want_write, char *err,
		       size_t errlen);

/* Record IO with the conventions of read(2)/write(2): bytes, 0 at the end of
 * the stream (recv), or -1 with errno EAGAIN, EINTR, ECONNRESET or EPROTO;
 * tls_last_error() then says what GnuTLS reported. A send that returned
 * EAGAIN must be repeated with the same data (GnuTLS keeps the record). */
ssize_t tls_recv(gnutls_session_t s, void *buf, size_t len);
ssize_t tls_send(gnutls_session_t s, const void *buf, size_t len);
const char *tls_last_error(void);
void tls_session_free(gnutls_session_t s);

/* Bytes read ahead that epoll will not announce: read again before
 * waiting for the socket. */
bool tls_pending(gnutls_session_t s);

/* Between tls_cork() and tls_uncork() records are gathered (up to 256 KiB)
 * and leave in few syscalls. tls_uncork sends them: 0 when all are out, 1
 * when some wait for the socket (EPOLLOUT, then tls_uncork again), -1
 * with errno on error. tls_tx_pending: some wait. */
void tls_cork(gnutls_session_t s);
int tls_uncork(gnutls_session_t s);
bool tls_tx_pending(gnutls_session_t s);

/* The largest plaintext one record carries: what one tls_send takes. */
#define TLS_RECORD_MAX 16384u

#endif
