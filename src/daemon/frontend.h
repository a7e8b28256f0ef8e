/* frontend.h - what every service does with its NBD server: open the
 * listeners its config names, and report them and their counters. */
#ifndef DST_DAEMON_FRONTEND_H
#define DST_DAEMON_FRONTEND_H

#include <stddef.h>

#include "common/config.h"
#include "common/strbuf.h"

struct nbd_server;

/* Listen on every "listen" (TCP) and "socket" (Unix) of conf; with neither,
 * on default_tcp if given, else on default_sock. 0 or -errno with a reason. */
int frontend_listen(struct nbd_server *srv, const struct conf *conf, int backlog,
		    const char *default_tcp, const char *default_sock, char *err, size_t errlen);

/* NAME/uri (one per listener), then the client, io and mem counters. */
void frontend_show(struct nbd_server *srv, struct strbuf *out, const char *name);

#endif
