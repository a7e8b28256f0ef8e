/* tls_int.h - what the TLS files share (tls_creds.c: credentials,
 * tls_io.c: our transport under GnuTLS, tls_session.c: sessions). Not for
 * use outside src/nbd. */
#ifndef DST_NBD_TLS_INT_H
#define DST_NBD_TLS_INT_H

#include <gnutls/gnutls.h>
#include <stdbool.h>

#include "tls.h"

struct tls_creds {
	bool server, psk;
	bool verify_peer; /* a server: of clients; a client: of its server */
	gnutls_psk_server_credentials_t psk_srv;
	gnutls_psk_client_credentials_t psk_cli;
	gnutls_certificate_credentials_t x509;
	gnutls_priority_t prio;
};

/* tls_io.c: the transport of a session on fd (see there); freed with it. */
void tls_io_attach(gnutls_session_t s, int fd);
void tls_io_free(gnutls_session_t s);

/* tls_session.c: what tls_last_error() says next. */
void tls_note_error(const char *msg);

#endif
