/* uri.h - NBD URIs as nodes are named (the NBD URI standard's subset that
 * dst connects to): nbd://[USER@]HOST[:PORT][/EXPORT],
 * nbd+unix:///EXPORT?socket=PATH, and their TLS forms nbds:// and
 * nbds+unix://. The query parameters libnbd and qemu take for TLS are
 * read too: tls-psk-file=FILE, tls-certificates=DIR, tls-username=NAME (or
 * USER@ before the host), tls-verify-peer=true|false; others are ignored,
 * as libnbd does. Pure parsing, unit tested. */
#ifndef DST_NBD_URI_H
#define DST_NBD_URI_H

#include <stdbool.h>
#include <stddef.h>

struct nbd_uri {
	bool tls;
	bool is_unix;
	char host[256];	  /* TCP: name or address, without IPv6 brackets */
	char port[16];	  /* TCP: default "10809" */
	char socket[108]; /* Unix: path (sun_path size) */
	char export_name[4097];
	/* TLS query parameters ("" or -1 when not given). */
	char tls_psk_file[1024];
	char tls_certificates[1024];
	char tls_username[256];
	int tls_verify_peer; /* -1, 0 or 1 */
};

/* Does the URI name TLS credentials or settings of its own? */
static inline bool nbd_uri_has_tls_params(const struct nbd_uri *u)
{
	return u->tls_psk_file[0] || u->tls_certificates[0] || u->tls_username[0] ||
	       u->tls_verify_peer >= 0;
}

/* Returns 0, or -1 with a one-line reason in err. */
int nbd_uri_parse(const char *uri, struct nbd_uri *out, char *err, size_t errlen);

#endif
