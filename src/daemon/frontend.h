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

struct acl;
/* The config's "allow" rules (CIDR[:ro|:rw], repeatable) into acl; none
 * leaves it empty, which lets only loopback clients in (acl.h). 0, or
 * -EINVAL with a reason naming the rule. */
int frontend_allow(const struct conf *conf, struct acl *acl, char *err, size_t errlen);
/* NAME/allow, one line per rule (or the loopback-only default). */
void frontend_show_allow(const struct acl *acl, struct strbuf *out, const char *name);

struct tls_creds;
/* The config's TLS for serving: tls (off|on|require; require when only
 * credentials are given), tls-psk or tls-certs, tls-verify-peer. *creds is
 * NULL when off. 0, or -EINVAL with a reason naming the file. */
int frontend_tls(const struct conf *conf, int *mode, struct tls_creds **creds, char *err,
		 size_t errlen);

/* NAME/uri (one per listener), NAME/tls, then the client, io and mem
 * counters. */
void frontend_show(struct nbd_server *srv, struct strbuf *out, const char *name);
/* The same with the counters given (a storage's: its NBD server's and its
 * FUSE file's, summed). */
struct nbd_server_stats;
void frontend_show_stats(struct nbd_server *srv, const struct nbd_server_stats *st,
			 struct strbuf *out, const char *name);

struct mx;
/* The counters as metrics families dst_KIND_* (KIND "storage" or
 * "export"), labelled KIND="name": bytes, ops by type, errors, in flight,
 * latency histograms, clients and connections. */
void frontend_metrics(const struct nbd_server_stats *st, struct mx *m, const char *kind,
		      const char *name);

#endif
