/* uri.h - NBD URIs as nodes are named (the NBD URI standard's subset that
 * dst connects to): nbd://HOST[:PORT][/EXPORT], nbd+unix:///EXPORT?socket=PATH,
 * and their TLS forms nbds:// and nbds+unix://. Pure parsing, unit tested. */
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
};

/* Returns 0, or -1 with a one-line reason in err. */
int nbd_uri_parse(const char *uri, struct nbd_uri *out, char *err, size_t errlen);

#endif
