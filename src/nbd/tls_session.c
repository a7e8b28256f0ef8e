/* tls_session.c - non-blocking TLS sessions for NBD connections: set-up,
 * the handshake step by step, record IO with read(2)/write(2) conventions,
 * and failures told as plainly as GnuTLS allows (see tls.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "tls_int.h"

static char last_error[256];

void tls_note_error(const char *msg)
{
	snprintf(last_error, sizeof(last_error), "%s", msg);
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
		if (c->verify_peer)
			gnutls_session_set_verify_cert(s, hostname, 0);
		if (hostname && !is_ip_address(hostname))
			gnutls_server_name_set(s, GNUTLS_NAME_DNS, hostname, strlen(hostname));
	}
	/* Our own timers bound the handshake (NBD's handshake timeout). */
	gnutls_handshake_set_timeout(s, 0);
	tls_io_attach(s, fd);
	*out = s;
	return 0;
}

void tls_session_free(gnutls_session_t s)
{
	if (!s)
		return;
	tls_io_free(s);
	gnutls_deinit(s);
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
