/* tls_creds.c - TLS credentials from files: psktool key files and X.509
 * directories as nbdkit, qemu and libnbd name them (see tls.h), checked so
 * that a bad file is one clear error; and the cipher priorities. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "tls_int.h"

/* PSK cipher suites are not in NORMAL; these are the ones nbdkit, qemu and
 * libnbd offer, so that every peer finds a common one. */
#define PRIO_PSK "NORMAL:+ECDHE-PSK:+DHE-PSK:+PSK"
/* A TLS 1.3 PSK (SHA-256) cannot use AES-256-GCM (SHA-384), so NORMAL's
 * next choice, ChaCha20, wins; where the CPU has AES instructions
 * AES-128-GCM is twice as fast here, so it goes first, in our order. */
#define PRIO_PSK_AES \
	"NORMAL:%SERVER_PRECEDENCE:-CHACHA20-POLY1305:+CHACHA20-POLY1305:+ECDHE-PSK:+DHE-PSK:+PSK"
#define PRIO_X509 "NORMAL"

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
	bool need_ca = c->verify_peer;
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
	return tls_creds_client_verify(psk_file, username, certs_dir, true, err, errlen);
}

struct tls_creds *tls_creds_client_verify(const char *psk_file, const char *username,
					  const char *certs_dir, bool verify_server, char *err,
					  size_t errlen)
{
	struct tls_creds *c = creds_new(false, psk_file, certs_dir, err, errlen);
	if (!c)
		return NULL;
	c->verify_peer = verify_server;
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
