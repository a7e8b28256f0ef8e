/* handshake.c - NBD fixed-newstyle option haggling, server side.
 *
 * Consumes options from the connection's input buffer and queues replies.
 * Every malformed option gets an error reply and haggling goes on; only a
 * broken stream (bad magic, bad client flags) or EXPORT_NAME for an unknown
 * export closes the connection. A client refused by --allow gets
 * NBD_REP_ERR_POLICY for everything and never learns anything of the export.
 *
 * TLS (NBD_OPT_STARTTLS): with --tls on a client may start it; with
 * --tls require every option but STARTTLS and ABORT gets
 * NBD_REP_ERR_TLS_REQD until it has, and EXPORT_NAME (which cannot be
 * refused) closes the connection: nothing of the export, not even its name
 * or size, is told in plaintext. After the TLS handshake (server_tls.c)
 * haggling starts over, inside TLS.
 *
 * Fencing (NBD_OPT_DST_FENCE, dst's own option): a storage that reconnects
 * after a request timeout must never have a resent write overtaken by the
 * old copy of it, still unread on its old connection or still in the disk.
 * So a storage says who it is (its UUID) and which connection this is (an
 * epoch that only grows), and this server closes that storage's older
 * connections (what they have not read is dropped: the storage resends it)
 * and answers the option only once the requests they had in the device
 * have completed. A connection older than one already fenced in is refused.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/event.h"
#include "common/log.h"
#include "common/util.h"
#include "proto.h"
#include "server_int.h"

void hs_start(struct nbd_conn *c)
{
	uint8_t g[18];
	be64_write(g, NBD_MAGIC);
	be64_write(g + 8, NBD_IHAVEOPT);
	be16_write(g + 16, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
	c->phase = PH_CLIENT_FLAGS;
	conn_queue_bytes(c, g, sizeof(g));
}

static void reply(struct nbd_conn *c, uint32_t opt, uint32_t type, const void *data, uint32_t len)
{
	uint8_t h[20];
	be64_write(h, NBD_REP_MAGIC);
	be32_write(h + 8, opt);
	be32_write(h + 12, type);
	be32_write(h + 16, len);
	conn_queue_bytes(c, h, sizeof(h));
	if (len)
		conn_queue_bytes(c, data, len);
}

static void uuid_hex(const uint8_t *u, char out[33])
{
	for (int i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", u[i]);
}

static void reply_err(struct nbd_conn *c, uint32_t opt, uint32_t type, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void reply_err(struct nbd_conn *c, uint32_t opt, uint32_t type, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(msg))
		n = sizeof(msg) - 1;
	log_debug("client %s: option %s: %s", c->peer, nbd_opt_name(opt), msg);
	reply(c, opt, type, msg, (uint32_t)n);
}

static bool name_matches(const struct nbd_conn *c, const char *name, uint32_t len)
{
	const char *ours = c->srv->name;
	return len == 0 || (len == strlen(ours) && memcmp(name, ours, len) == 0);
}

static void send_info_export(struct nbd_conn *c, uint32_t opt)
{
	uint8_t b[12];
	be16_write(b, NBD_INFO_EXPORT);
	be64_write(b + 2, c->srv->cfg.dev->size);
	be16_write(b + 10, tx_export_flags(c));
	reply(c, opt, NBD_REP_INFO, b, sizeof(b));
}

static void send_info_string(struct nbd_conn *c, uint32_t opt, uint16_t type, const char *s)
{
	size_t len = strlen(s);
	uint8_t *b = xmalloc(2 + len);
	be16_write(b, type);
	memcpy(b + 2, s, len);
	reply(c, opt, NBD_REP_INFO, b, (uint32_t)(2 + len));
	free(b);
}

static void send_info_block_size(struct nbd_conn *c, uint32_t opt)
{
	uint8_t b[14];
	be16_write(b, NBD_INFO_BLOCK_SIZE);
	uint32_t min = c->srv->cfg.dev->min_block ? c->srv->cfg.dev->min_block : 1;
	be32_write(b + 2, min);
	be32_write(b + 6, MAX(NBD_PREF_BLOCK, min));
	be32_write(b + 10, NBD_MAX_BLOCK);
	reply(c, opt, NBD_REP_INFO, b, sizeof(b));
}

static void enter_transmission(struct nbd_conn *c)
{
	c->phase = PH_TRANSMISSION;
	ev_timer_stop(c->srv->loop, &c->hs_timer);
	/* A meta context set for another export name does not apply. */
	if ((c->base_alloc || c->csum) && c->meta_export &&
	    !name_matches(c, c->meta_export, (uint32_t)strlen(c->meta_export)))
		c->base_alloc = c->csum = false;
	log_info("client %s: ready (%s%s%s%s%s)", c->peer,
		 c->access == ACL_RO ? "read-only" : "read-write", c->tls ? ", TLS" : "",
		 c->structured ? ", structured replies" : "",
		 c->base_alloc ? ", base:allocation" : "", c->csum ? ", dst:csum-4k" : "");
	c->connect_said = true;
	event_fire("client-connect", NULL, NULL, "%s %s", c->peer,
		   c->access == ACL_RO ? "read-only" : "read-write");
}

static void opt_go(struct nbd_conn *c, uint32_t opt, const uint8_t *data, uint32_t len)
{
	struct nbd_go_req go;
	uint32_t e = nbd_parse_go(data, len, &go);
	if (e) {
		reply_err(c, opt, e, "malformed %s option", nbd_opt_name(opt));
		return;
	}
	if (!name_matches(c, go.name, go.name_len)) {
		reply_err(c, opt, NBD_REP_ERR_UNKNOWN,
			  "no export named '%.*s' (this server has '%s')",
			  (int)MIN(go.name_len, 200u), go.name, c->srv->name);
		return;
	}
	send_info_export(c, opt);
	if (go.want_name)
		send_info_string(c, opt, NBD_INFO_NAME, c->srv->name);
	if (go.want_desc && c->srv->desc)
		send_info_string(c, opt, NBD_INFO_DESCRIPTION, c->srv->desc);
	/* Block sizes are sent even unasked: they are hints clients may use. */
	send_info_block_size(c, opt);
	reply(c, opt, NBD_REP_ACK, NULL, 0);
	if (opt == NBD_OPT_GO)
		enter_transmission(c);
}

/* One NBD_REP_META_CONTEXT: the context's id (0 in a LIST) and name. */
static void meta_context_reply(struct nbd_conn *c, uint32_t opt, uint32_t id, const char *name)
{
	uint8_t b[4 + 64];
	size_t n = strlen(name);
	be32_write(b, id);
	memcpy(b + 4, name, n);
	reply(c, opt, NBD_REP_META_CONTEXT, b, 4 + (uint32_t)n);
}

static void opt_meta(struct nbd_conn *c, uint32_t opt, const uint8_t *data, uint32_t len)
{
	bool is_list = opt == NBD_OPT_LIST_META_CONTEXT;
	if (!c->structured) {
		reply_err(c, opt, NBD_REP_ERR_INVALID,
			  "structured replies must be negotiated first");
		return;
	}
	struct nbd_meta_req m;
	uint32_t e = nbd_parse_meta(data, len, is_list, &m);
	if (e) {
		reply_err(c, opt, e, "malformed %s option", nbd_opt_name(opt));
		return;
	}
	if (!name_matches(c, m.name, m.name_len)) {
		reply_err(c, opt, NBD_REP_ERR_UNKNOWN, "no export named '%.*s'",
			  (int)MIN(m.name_len, 200u), m.name);
		return;
	}
	if (!is_list) {
		c->base_alloc = m.selects_base_alloc;
		c->csum = m.selects_csum;
		free(c->meta_export);
		c->meta_export = xmalloc(m.name_len + 1);
		memcpy(c->meta_export, m.name, m.name_len);
		c->meta_export[m.name_len] = '\0';
	}
	if (m.selects_base_alloc)
		meta_context_reply(c, opt, is_list ? 0 : NBD_META_ID_BASE_ALLOCATION,
				   NBD_META_BASE_ALLOCATION);
	if (m.selects_csum)
		meta_context_reply(c, opt, is_list ? 0 : NBD_META_ID_DST_CSUM, NBD_META_DST_CSUM);
	reply(c, opt, NBD_REP_ACK, NULL, 0);
}

static void opt_list(struct nbd_conn *c, uint32_t opt, uint32_t len)
{
	if (len) {
		reply_err(c, opt, NBD_REP_ERR_INVALID, "LIST takes no data");
		return;
	}
	const char *name = c->srv->name, *desc = c->srv->desc;
	size_t nlen = strlen(name), dlen = desc ? strlen(desc) : 0;
	uint8_t *b = xmalloc(4 + nlen + dlen);
	be32_write(b, (uint32_t)nlen);
	memcpy(b + 4, name, nlen);
	if (dlen)
		memcpy(b + 4 + nlen, desc, dlen);
	reply(c, opt, NBD_REP_SERVER, b, (uint32_t)(4 + nlen + dlen));
	free(b);
	reply(c, opt, NBD_REP_ACK, NULL, 0);
}

static bool tls_missing(const struct nbd_conn *c)
{
	return c->srv->cfg.tls == TLS_REQUIRE && !c->tls;
}

/* EXPORT_NAME has no error reply: an unknown name can only be answered by
 * closing. The reply is size, flags and (unless NO_ZEROES) 124 zero bytes. */
static bool opt_export_name(struct nbd_conn *c, const uint8_t *data, uint32_t len)
{
	if (c->access == ACL_DENY) {
		conn_close(c, "closed: refused client asked for an export");
		return false;
	}
	if (tls_missing(c)) {
		log_warn("client %s: refused: asked for the export without TLS, which this "
			 "server requires",
			 c->peer);
		conn_close(c, NULL);
		return false;
	}
	if (len > NBD_MAX_STRING || !name_matches(c, (const char *)data, len)) {
		log_warn("client %s: EXPORT_NAME for unknown export '%.*s'", c->peer,
			 (int)MIN(len, 200u), (const char *)data);
		conn_close(c, NULL);
		return false;
	}
	uint8_t b[10 + 124] = {0};
	be64_write(b, c->srv->cfg.dev->size);
	be16_write(b + 8, tx_export_flags(c));
	conn_queue_bytes(c, b, c->no_zeroes ? 10 : sizeof(b));
	enter_transmission(c);
	return true;
}

/* STARTTLS: ACK in plaintext, then the TLS handshake once the ACK is out. */
static bool opt_starttls(struct nbd_conn *c, uint32_t opt, uint32_t len)
{
	if (c->srv->cfg.tls == TLS_OFF) {
		reply_err(c, opt, NBD_REP_ERR_UNSUP, "TLS is not enabled on this server");
		return true;
	}
	if (c->tls) {
		reply_err(c, opt, NBD_REP_ERR_INVALID, "TLS is already on");
		return true;
	}
	if (len) {
		reply_err(c, opt, NBD_REP_ERR_INVALID, "STARTTLS takes no data");
		return true;
	}
	reply(c, opt, NBD_REP_ACK, NULL, 0);
	/* A client waits for the ACK before its first TLS byte, so bytes
	 * already here were sent in plaintext after STARTTLS: injected by
	 * someone in the middle, to be taken as if they came through TLS. */
	if (c->rstart != c->rend) {
		log_warn("client %s: refused: plaintext data after STARTTLS", c->peer);
		conn_close(c, NULL);
		return false;
	}
	c->phase = PH_STARTTLS;
	conn_update_events(c);
	return true;
}

/* Does c still wait for an older connection of its storage to settle? */
static bool fence_pending(const struct nbd_conn *c)
{
	for (const struct nbd_conn *o = c->srv->conns; o; o = o->next)
		if (o != c && o->fence_set && !memcmp(o->fence_id, c->fence_id, 16) &&
		    o->fence_epoch < c->fence_epoch)
			return true;
	return false;
}

static void fence_resume(struct ev_deferred *d)
{
	struct nbd_conn *c = container_of(d, struct nbd_conn, fence_work);
	if (!c->dead)
		conn_process(c);
}

void hs_fence_recheck(struct nbd_server *srv)
{
	for (struct nbd_conn *c = srv->conns; c; c = c->next) {
		if (!c->fence_wait || c->dead || fence_pending(c))
			continue;
		c->fence_wait = false;
		log_info("client %s: the storage's older connections have settled: it goes on",
			 c->peer);
		reply(c, NBD_OPT_DST_FENCE, NBD_REP_ACK, NULL, 0);
		c->fence_work.fn = fence_resume;
		ev_defer(srv->loop, &c->fence_work);
	}
}

static void opt_fence(struct nbd_conn *c, uint32_t opt, const uint8_t *d, uint32_t len)
{
	if (len != NBD_DST_FENCE_LEN) {
		reply_err(c, opt, NBD_REP_ERR_INVALID, "DST_FENCE takes %u bytes",
			  NBD_DST_FENCE_LEN);
		return;
	}
	char id[33];
	uuid_hex(d, id);
	uint64_t epoch = be64_read(d + 16);
	for (const struct nbd_conn *o = c->srv->conns; o; o = o->next) {
		if (o != c && o->fence_set && !o->dead && !memcmp(o->fence_id, d, 16) &&
		    o->fence_epoch > epoch) {
			log_warn("client %s: refused: storage %s has a newer connection (%s, "
				 "epoch %llu > %llu)",
				 c->peer, id, o->peer, (unsigned long long)o->fence_epoch,
				 (unsigned long long)epoch);
			reply_err(c, opt, NBD_REP_ERR_POLICY,
				  "storage %s has a newer connection to this export", id);
			return;
		}
	}
	memcpy(c->fence_id, d, 16);
	c->fence_epoch = epoch;
	c->fence_start = be64_read(d + 24);
	c->fence_set = true;
	for (struct nbd_conn *o = c->srv->conns; o; o = o->next) {
		if (o == c || !o->fence_set || o->dead || memcmp(o->fence_id, d, 16) ||
		    o->fence_epoch >= epoch)
			continue;
		char why[320];
		snprintf(why, sizeof(why),
			 "fenced: storage %s reconnected from %s; %u requests of this "
			 "connection finish in the disk, what it did not read is dropped",
			 id, c->peer, o->in_dev);
		conn_close(o, why);
	}
	if (fence_pending(c)) {
		c->fence_wait = true;
		log_info("client %s: storage %s: waits for its older connections to settle",
			 c->peer, id);
		return;
	}
	reply(c, opt, NBD_REP_ACK, NULL, 0);
}

/* Handle one complete option; false if the connection was closed. */
static bool handle_option(struct nbd_conn *c, uint32_t opt, const uint8_t *data, uint32_t len)
{
	if (opt == NBD_OPT_EXPORT_NAME)
		return opt_export_name(c, data, len);
	if (opt == NBD_OPT_ABORT) {
		reply(c, opt, NBD_REP_ACK, NULL, 0);
		c->phase = PH_CLOSING;
		c->rx_stopped = true;
		conn_want_flush(c);
		return true;
	}
	if (c->access == ACL_DENY) {
		reply_err(c, opt, NBD_REP_ERR_POLICY, "access denied: address %s is not allowed",
			  c->peer);
		return true;
	}
	if (c->srv->shutting_down) {
		reply_err(c, opt, NBD_REP_ERR_SHUTDOWN, "server is shutting down");
		return true;
	}
	if (opt == NBD_OPT_STARTTLS)
		return opt_starttls(c, opt, len);
	if (tls_missing(c)) {
		if (!c->tls_refused)
			log_warn("client %s: refused: it did not start TLS, which this server "
				 "requires (option %s)",
				 c->peer, nbd_opt_name(opt));
		c->tls_refused = true;
		reply_err(c, opt, NBD_REP_ERR_TLS_REQD,
			  "this server requires TLS: send NBD_OPT_STARTTLS first");
		return true;
	}
	switch (opt) {
	case NBD_OPT_LIST: opt_list(c, opt, len); break;
	case NBD_OPT_INFO:
	case NBD_OPT_GO: opt_go(c, opt, data, len); break;
	case NBD_OPT_STRUCTURED_REPLY:
		if (len) {
			reply_err(c, opt, NBD_REP_ERR_INVALID, "STRUCTURED_REPLY takes no data");
		} else {
			c->structured = true;
			reply(c, opt, NBD_REP_ACK, NULL, 0);
		}
		break;
	case NBD_OPT_LIST_META_CONTEXT:
	case NBD_OPT_SET_META_CONTEXT: opt_meta(c, opt, data, len); break;
	case NBD_OPT_DST_FENCE: opt_fence(c, opt, data, len); break;
	default:
		reply_err(c, opt, NBD_REP_ERR_UNSUP, "option %u (%s) is not supported", opt,
			  nbd_opt_name(opt));
		break;
	}
	return true;
}

bool hs_process(struct nbd_conn *c)
{
	while (!c->dead && !c->rx_stopped && !c->fence_wait) {
		uint32_t avail = c->rend - c->rstart;
		uint8_t *p = c->rbuf + c->rstart;

		if (limits_hs_backlog(c))
			return true; /* replies pile up: wait for the client to read */
		if (c->rx == RX_DISCARD) {
			uint32_t take = (uint32_t)MIN((uint64_t)avail, c->rx_discard);
			c->rstart += take;
			c->rx_discard -= take;
			if (c->rx_discard)
				return true;
			c->rx = RX_HEADER;
			reply_err(c, c->discard_opt, NBD_REP_ERR_TOO_BIG,
				  "option data too large (max %u)", NBD_MAX_OPTION_LEN);
			continue;
		}
		if (c->phase == PH_CLIENT_FLAGS) {
			if (avail < 4)
				return true;
			uint32_t flags = be32_read(p);
			c->rstart += 4;
			if (!(flags & NBD_FLAG_C_FIXED_NEWSTYLE) ||
			    (flags & ~(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES))) {
				conn_close(
				    c, "closed: bad client flags (not a fixed-newstyle client)");
				return false;
			}
			c->no_zeroes = flags & NBD_FLAG_C_NO_ZEROES;
			c->phase = PH_OPTIONS;
			continue;
		}
		if (c->phase != PH_OPTIONS)
			return true;
		if (avail < 16)
			return true;
		if (be64_read(p) != NBD_IHAVEOPT) {
			conn_close(c, "closed: bad option magic");
			return false;
		}
		uint32_t opt = be32_read(p + 8), len = be32_read(p + 12);
		if (len > NBD_MAX_OPTION_LEN) {
			if (opt == NBD_OPT_EXPORT_NAME) {
				conn_close(c, "closed: oversized EXPORT_NAME");
				return false;
			}
			c->rstart += 16;
			c->rx = RX_DISCARD;
			c->rx_discard = len;
			c->discard_opt = opt;
			continue;
		}
		if (avail < 16 + len)
			return true;
		c->rstart += 16 + len;
		if (!handle_option(c, opt, p + 16, len))
			return false;
		if (c->phase == PH_TRANSMISSION)
			return tx_process(c);
	}
	return !c->dead;
}
