/* tls_opts.c - the TLS options of `dst export`, `dst start` (how a daemon
 * serves: --tls, --tls-psk, --tls-certs, --tls-verify-peer) and of
 * `dst create` / `dst add` (what a storage shows its nbds:// nodes:
 * --tls-psk, --tls-certs, --tls-username). Checked here by loading the
 * credentials for real, so that a bad file is one clear error and nothing
 * is written or started; saved in the config with absolute paths. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "common/config.h"
#include "nbd/tls.h"

static int absolute(const char *opt, const char *path, char *out)
{
	if (!realpath(path, out))
		return die("%s %s: %s", opt, path, strerror(errno));
	return 0;
}

int tls_opts_serve(struct conf *conf, const struct tls_opts *given)
{
	const struct tls_opts *t = given;
	if (!t->mode && !t->psk && !t->certs && !t->verify_peer)
		return 0;		  /* nothing said: the config stays as it is */
	enum tls_mode mode = TLS_REQUIRE; /* credentials alone mean TLS */
	if (t->mode && tls_mode_parse(t->mode, &mode) < 0)
		return die("--tls %s: expected off, on or require", t->mode);
	enum tls_mode had;
	const char *old = conf_get(conf, "tls");
	if (!t->mode && old && tls_mode_parse(old, &had) == 0 && had != TLS_OFF)
		mode = had; /* new credentials, same mode */
	if (mode == TLS_OFF && (t->psk || t->certs || t->verify_peer))
		return die("--tls off does not take --tls-psk, --tls-certs or --tls-verify-peer");
	if (t->psk && t->certs)
		return die("give one of --tls-psk and --tls-certs, not both");
	/* Only --tls given (dst start NAME --tls on): the credentials saved
	 * before still hold. */
	char abs[PATH_MAX] = "", err[512];
	bool verify = t->verify_peer;
	const char *psk = t->psk, *certs = t->certs;
	if (!psk && !certs) {
		const char *v = conf_get(conf, "tls-psk") ? conf_get(conf, "tls-psk")
							  : conf_get(conf, "tls-certs");
		if (v)
			snprintf(abs, sizeof(abs), "%s", v);
		psk = conf_get(conf, "tls-psk") ? abs : NULL;
		certs = !psk && v ? abs : NULL;
		verify = verify || conf_get(conf, "tls-verify-peer");
	} else if (absolute(psk ? "--tls-psk" : "--tls-certs", psk ? psk : certs, abs)) {
		return 1;
	} else {
		psk = psk ? abs : NULL;
		certs = certs ? abs : NULL;
	}
	if (mode != TLS_OFF && !psk && !certs)
		return die("--tls %s needs credentials: --tls-psk FILE (a psktool file) or "
			   "--tls-certs DIR (ca-cert.pem, server-cert.pem, server-key.pem)",
			   tls_mode_name(mode));
	if (mode != TLS_OFF) {
		struct tls_creds *c = tls_creds_server(psk, certs, verify, err, sizeof(err));
		if (!c)
			return die("%s", err);
		tls_creds_free(c);
	}
	char keep[PATH_MAX];
	snprintf(keep, sizeof(keep), "%s", abs);
	conf_del(conf, "tls");
	conf_del(conf, "tls-psk");
	conf_del(conf, "tls-certs");
	conf_del(conf, "tls-verify-peer");
	conf_set(conf, "tls", tls_mode_name(mode));
	if (mode == TLS_OFF)
		return 0;
	conf_set(conf, psk ? "tls-psk" : "tls-certs", keep);
	if (verify)
		conf_set(conf, "tls-verify-peer", "1");
	return 0;
}

int tls_opts_nodes(struct conf *conf, const struct tls_opts *t)
{
	if (!t->psk && !t->certs) {
		if (t->username)
			return die("--tls-username goes with --tls-psk FILE");
		return 0;
	}
	if (t->psk && t->certs)
		return die("give one of --tls-psk and --tls-certs, not both");
	if (t->username && !t->psk)
		return die("--tls-username goes with --tls-psk FILE");
	char abs[PATH_MAX], err[512];
	if (absolute(t->psk ? "--tls-psk" : "--tls-certs", t->psk ? t->psk : t->certs, abs))
		return 1;
	struct tls_creds *c = tls_creds_client(t->psk ? abs : NULL, t->username,
					       t->certs ? abs : NULL, err, sizeof(err));
	if (!c)
		return die("%s", err);
	tls_creds_free(c);
	conf_del(conf, "node-tls-psk");
	conf_del(conf, "node-tls-certs");
	conf_del(conf, "node-tls-username");
	conf_set(conf, t->psk ? "node-tls-psk" : "node-tls-certs", abs);
	if (t->username)
		conf_set(conf, "node-tls-username", t->username);
	return 0;
}
