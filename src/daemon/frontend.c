/* frontend.c - listeners, TLS and counters of a service's NBD server. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/acl.h"
#include "common/metrics.h"
#include "common/pipepool.h"
#include "common/util.h"
#include "frontend.h"
#include "nbd/server.h"

int frontend_listen(struct nbd_server *srv, const struct conf *conf, int backlog,
		    const char *default_tcp, const char *default_sock, char *err, size_t errlen)
{
	size_t n_listen = conf_count(conf, "listen"), n_sock = conf_count(conf, "socket");
	int rc;
	for (size_t i = 0; i < n_listen; i++)
		if ((rc = nbd_server_listen_tcp(srv, conf_get_nth(conf, "listen", i), backlog, err,
						errlen)) < 0)
			return rc;
	for (size_t i = 0; i < n_sock; i++)
		if ((rc = nbd_server_listen_unix(srv, conf_get_nth(conf, "socket", i), backlog, err,
						 errlen)) < 0)
			return rc;
	if (n_listen + n_sock > 0)
		return 0;
	if (default_tcp)
		return nbd_server_listen_tcp(srv, default_tcp, backlog, err, errlen);
	return nbd_server_listen_unix(srv, default_sock, backlog, err, errlen);
}

int frontend_allow(const struct conf *conf, struct acl *acl, char *err, size_t errlen)
{
	for (size_t i = 0; conf_get_nth(conf, "allow", i); i++)
		if (acl_add(acl, conf_get_nth(conf, "allow", i), err, errlen) < 0)
			return -EINVAL;
	return 0;
}

void frontend_show_allow(const struct acl *acl, struct strbuf *out, const char *name)
{
	char p[256];
	snprintf(p, sizeof(p), "%s/allow", name);
	if (acl->n == 0) {
		sb_attr_str(out, p, "loopback only (127.0.0.0/8, ::1):rw");
		return;
	}
	for (size_t i = 0; i < acl->n; i++) {
		char r[80];
		acl_rule_format(&acl->rules[i], r, sizeof(r));
		sb_attr_str(out, p, "%s", r);
	}
}

int frontend_tls(const struct conf *conf, int *mode, struct tls_creds **creds, char *err,
		 size_t errlen)
{
	const char *m = conf_get(conf, "tls"), *psk = conf_get(conf, "tls-psk"),
		   *certs = conf_get(conf, "tls-certs"), *vp = conf_get(conf, "tls-verify-peer");
	enum tls_mode tm = psk || certs ? TLS_REQUIRE : TLS_OFF;
	*creds = NULL;
	if (m && tls_mode_parse(m, &tm) < 0) {
		snprintf(err, errlen, "tls '%s': expected off, on or require", m);
		return -EINVAL;
	}
	*mode = tm;
	if (tm == TLS_OFF)
		return 0;
	bool verify = vp && (!strcmp(vp, "1") || !strcmp(vp, "yes") || !strcmp(vp, "true"));
	*creds = tls_creds_server(psk, certs, verify, err, errlen);
	return *creds ? 0 : -EINVAL;
}

void frontend_show(struct nbd_server *srv, struct strbuf *out, const char *name)
{
	struct nbd_server_stats st;
	nbd_server_get_stats(srv, &st);
	frontend_show_stats(srv, &st, out, name);
}

void frontend_show_stats(struct nbd_server *srv, const struct nbd_server_stats *stats,
			 struct strbuf *out, const char *name)
{
	struct nbd_server_stats st = *stats;
	char p[256];
#define PATH(leaf) (snprintf(p, sizeof(p), "%s/%s", name, leaf), p)
	const char *uris[16];
	size_t n = nbd_server_uris(srv, uris, 16);
	for (size_t i = 0; i < n; i++)
		sb_attr_str(out, PATH("uri"), "%s", uris[i]);
	char tls[64];
	sb_attr_str(out, PATH("tls"), "%s", nbd_server_tls_desc(srv, tls, sizeof(tls)));
	sb_attr_num(out, PATH("clients"), st.clients);
	sb_attr_num(out, PATH("clients_total"), st.clients_total);
	sb_attr_num(out, PATH("clients_refused"), st.clients_refused);
	sb_attr_num(out, PATH("clients_tls"), st.clients_tls);
	sb_attr_num(out, PATH("io/reads"), st.reads);
	sb_attr_num(out, PATH("io/writes"), st.writes);
	sb_attr_num(out, PATH("io/read_bytes"), st.bytes_read);
	sb_attr_num(out, PATH("io/write_bytes"), st.bytes_written);
	sb_attr_num(out, PATH("io/direct_reads"), st.direct_reads);
	/* Payloads moved between sockets by splice, or through our memory. */
	char splice[128];
	sb_attr_str(out, PATH("splice/state"), "%s",
		    nbd_server_splice_desc(srv, splice, sizeof(splice)));
	sb_attr_num(out, PATH("splice/read_spliced_bytes"), st.read_spliced);
	sb_attr_num(out, PATH("splice/read_copied_bytes"), st.read_copied);
	sb_attr_num(out, PATH("splice/write_spliced_bytes"), st.write_spliced);
	sb_attr_num(out, PATH("splice/write_copied_bytes"), st.write_copied);
	unsigned made, taken;
	spipe_counts(&made, &taken);
	sb_attr_num(out, PATH("splice/pipes"), made);
	sb_attr_num(out, PATH("splice/pipes_in_use"), taken);
	sb_attr_num(out, PATH("io/flushes"), st.flushes);
	sb_attr_num(out, PATH("io/trims"), st.trims);
	sb_attr_num(out, PATH("io/zeroes"), st.zeroes);
	sb_attr_num(out, PATH("io/errors"), st.errors);
	sb_attr_num(out, PATH("io/inflight"), st.inflight);
	sb_attr_num(out, PATH("io/read_ns"), st.read_ns);
	sb_attr_num(out, PATH("io/write_ns"), st.write_ns);
	sb_attr_num(out, PATH("mem/buffer_budget"), st.buf_budget);
	sb_attr_num(out, PATH("mem/buffer_in_use"), st.buf_in_use);
	sb_attr_num(out, PATH("mem/buffer_peak"), st.buf_peak);
	sb_attr_num(out, PATH("mem/client_budget"), st.client_budget);
	/* Limits (frontend_limits.h) and the clients they closed. */
	sb_attr_num(out, PATH("limits/max_clients"), st.max_clients);
	sb_attr_num(out, PATH("limits/handshake_timeout"), st.handshake_timeout_s);
	sb_attr_num(out, PATH("limits/idle_timeout"), st.idle_timeout_s);
	sb_attr_num(out, PATH("clients_dropped"), st.clients_dropped);
	/* The loop's polling before it sleeps (common/ev.c): hits are requests
	 * whose clients did not have to wake the daemon. */
	sb_attr_num(out, PATH("poll/max_us"), st.poll.max_ns / 1000);
	sb_attr_num(out, PATH("poll/polls"), st.poll.polls);
	sb_attr_num(out, PATH("poll/hits"), st.poll.hits);
	sb_attr_num(out, PATH("poll/ns"), st.poll.ns);
	sb_attr_num(out, PATH("poll/preempted"), st.poll.preempted);
	sb_attr_num(out, PATH("poll/holdoffs"), st.poll.holdoffs);
#undef PATH
}

/* A counter family's two series, op="read" and op="write". */
static void by_read_write(struct mx *m, const char *family, const struct mx_labels *l,
			  uint64_t reads, uint64_t writes)
{
	struct mx_labels o = mx_labels_with(l, "op", "read");
	mx_counter(m, family, &o, reads);
	o = mx_labels_with(l, "op", "write");
	mx_counter(m, family, &o, writes);
}

void frontend_metrics(const struct nbd_server_stats *st, struct mx *m, const char *kind,
		      const char *name)
{
	char f[96];
	struct mx_labels l, o;
	mx_labels_init(&l);
	mx_label(&l, kind, name);
	/* dst_storage_... or dst_export_...: the family F(leaf) */
#define F(leaf) (snprintf(f, sizeof(f), "dst_%s_%s", kind, leaf), f)
	mx_family(m, F("read_bytes"), MX_COUNTER, "Bytes read by clients.");
	mx_counter(m, f, &l, st->bytes_read);
	mx_family(m, F("written_bytes"), MX_COUNTER, "Bytes written by clients.");
	mx_counter(m, f, &l, st->bytes_written);
	mx_family(m, F("ops"), MX_COUNTER,
		  "Client requests answered, by op (read, write, flush, trim, write_zeroes, "
		  "block_status, other).");
	static const char *const ops[] = {"read",	  "write",	  "flush", "trim",
					  "write_zeroes", "block_status", "other"};
	const uint64_t counts[] = {st->reads,  st->writes,	 st->flushes, st->trims,
				   st->zeroes, st->block_status, st->other};
	for (size_t i = 0; i < ARRAY_SIZE(ops); i++) {
		o = mx_labels_with(&l, "op", ops[i]);
		mx_counter(m, f, &o, counts[i]);
	}
	mx_family(m, F("spliced_bytes"), MX_COUNTER,
		  "Read and write payload bytes moved between client and node sockets by "
		  "splice, by op (read, write).");
	by_read_write(m, f, &l, st->read_spliced, st->write_spliced);
	mx_family(m, F("copied_bytes"), MX_COUNTER,
		  "Read and write payload bytes that passed through the daemon's memory, by op "
		  "(read, write).");
	by_read_write(m, f, &l, st->read_copied, st->write_copied);
	mx_family(m, F("errors"), MX_COUNTER, "Error replies sent to clients.");
	mx_counter(m, f, &l, st->errors);
	mx_family(m, F("inflight_requests"), MX_GAUGE, "Client requests being served now.");
	mx_gauge(m, f, &l, st->inflight);
	mx_family(m, F("request_duration_seconds"), MX_HISTOGRAM,
		  "Latency of client requests in the device, by op (read, write, flush).");
	o = mx_labels_with(&l, "op", "read");
	mx_histogram(m, f, &o, &st->read_lat);
	o = mx_labels_with(&l, "op", "write");
	mx_histogram(m, f, &o, &st->write_lat);
	o = mx_labels_with(&l, "op", "flush");
	mx_histogram(m, f, &o, &st->flush_lat);
	mx_family(m, F("clients"), MX_GAUGE, "NBD clients connected now.");
	mx_gauge(m, f, &l, st->clients);
	mx_family(m, F("connections"), MX_COUNTER, "NBD connections accepted.");
	mx_counter(m, f, &l, st->clients_total);
	mx_family(m, F("connections_refused"), MX_COUNTER,
		  "NBD connections refused (not allowed, or over the limit).");
	mx_counter(m, f, &l, st->clients_refused);
	mx_family(m, F("connections_dropped"), MX_COUNTER,
		  "NBD connections closed for a handshake or idle timeout.");
	mx_counter(m, f, &l, st->clients_dropped);
#undef F
}
