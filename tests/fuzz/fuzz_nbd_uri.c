/* fuzz_nbd_uri.c - the NBD URI parser (nbd_uri_parse), fed to it by
 * `dst add --remote URI` and by every storage config's node lines, and the
 * "R: host:port" description of a URI (nbd_uri_describe).
 *
 * Input: the URI (a C string; bytes after a NUL are ignored). */
#include "fuzz.h"
#include "nbd/uri.h"
#include "nbd/wire.h"

FUZZ_TARGET(nbd_uri)
{
	char *s = fuzz_cstr(data, size);
	struct nbd_uri *u = malloc(sizeof(*u));
	char err[256];
	err[0] = '\0';
	if (nbd_uri_parse(s, u, err, sizeof(err)) == 0) {
		FUZZ_ASSERT(memchr(u->host, '\0', sizeof(u->host)));
		FUZZ_ASSERT(memchr(u->port, '\0', sizeof(u->port)));
		FUZZ_ASSERT(memchr(u->socket, '\0', sizeof(u->socket)));
		FUZZ_ASSERT(memchr(u->export_name, '\0', sizeof(u->export_name)));
		if (u->is_unix) {
			FUZZ_ASSERT(u->socket[0] != '\0');
		} else {
			FUZZ_ASSERT(u->host[0] != '\0');
			long port = strtol(u->port, NULL, 10);
			FUZZ_ASSERT(port >= 1 && port <= 65535);
		}
	} else {
		FUZZ_ASSERT(err[0] != '\0');
	}
	char *d = nbd_uri_describe(s);
	FUZZ_ASSERT(d && !strncmp(d, "R: ", 3));
	free(d);
	free(u);
	free(s);
	return 0;
}
