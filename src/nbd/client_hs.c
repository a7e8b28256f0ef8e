/* client_hs.c - client side of the NBD handshake (see client_hs.h). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "client_hs.h"
#include "common/util.h"
#include "proto.h"
#include "wire.h"

#define NBD_OLDSTYLE_MAGIC 0x00420281861253ull

enum {
	HS_GREETING,
	HS_REPLY_HDR,
	HS_REPLY_DATA,
	HS_EXPORT_NAME_REPLY,
	HS_TLS, /* the driver's TLS handshake */
	HS_DONE,
	HS_FAILED,
};

static enum nbd_hs_status fail(struct nbd_hs *hs, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(hs->error, sizeof(hs->error), fmt, ap);
	va_end(ap);
	hs->state = HS_FAILED;
	hs->need = 0;
	return NBD_HS_ERROR;
}

static void put(struct nbd_hs *hs, const void *p, size_t n)
{
	memcpy(hs->out + hs->out_len, p, n);
	hs->out_len += n;
}

static void put32(struct nbd_hs *hs, uint32_t v)
{
	uint8_t b[4];
	be32_write(b, v);
	put(hs, b, 4);
}

static void put16(struct nbd_hs *hs, uint16_t v)
{
	uint8_t b[2];
	be16_write(b, v);
	put(hs, b, 2);
}

static void option_header(struct nbd_hs *hs, uint32_t opt, uint32_t len)
{
	uint8_t b[8];
	be64_write(b, NBD_IHAVEOPT);
	put(hs, b, 8);
	put32(hs, opt);
	put32(hs, len);
	hs->cur_opt = opt;
	hs->state = HS_REPLY_HDR;
	hs->need = 20;
}

static void send_structured_reply(struct nbd_hs *hs)
{
	option_header(hs, NBD_OPT_STRUCTURED_REPLY, 0);
}

/* base:allocation if extents are wanted, dst:csum-4k if checksums are. */
static void send_set_meta(struct nbd_hs *hs)
{
	const uint32_t blen = sizeof(NBD_META_BASE_ALLOCATION) - 1;
	const uint32_t clen = sizeof(NBD_META_DST_CSUM) - 1;
	uint32_t n = hs->want_extents + hs->want_csum;
	uint32_t qlen = (hs->want_extents ? 4 + blen : 0) + (hs->want_csum ? 4 + clen : 0);
	option_header(hs, NBD_OPT_SET_META_CONTEXT, 4 + hs->export_len + 4 + qlen);
	put32(hs, hs->export_len);
	put(hs, hs->export_name, hs->export_len);
	put32(hs, n);
	if (hs->want_extents) {
		put32(hs, blen);
		put(hs, NBD_META_BASE_ALLOCATION, blen);
	}
	if (hs->want_csum) {
		put32(hs, clen);
		put(hs, NBD_META_DST_CSUM, clen);
	}
}

static void send_go(struct nbd_hs *hs)
{
	option_header(hs, NBD_OPT_GO, 4 + hs->export_len + 2 + 2 * 2);
	put32(hs, hs->export_len);
	put(hs, hs->export_name, hs->export_len);
	put16(hs, 2);
	put16(hs, NBD_INFO_BLOCK_SIZE);
	put16(hs, NBD_INFO_DESCRIPTION); /* a dst storage names what it holds */
}

/* Before GO: the fence, if wanted and not asked yet. */
static void send_go_or_fence(struct nbd_hs *hs)
{
	if (hs->want_fence && hs->cur_opt != NBD_OPT_DST_FENCE) {
		option_header(hs, NBD_OPT_DST_FENCE, NBD_DST_FENCE_LEN);
		put(hs, hs->fence, NBD_DST_FENCE_LEN);
		return;
	}
	send_go(hs);
}

static void send_export_name(struct nbd_hs *hs)
{
	option_header(hs, NBD_OPT_EXPORT_NAME, hs->export_len);
	put(hs, hs->export_name, hs->export_len);
	hs->state = HS_EXPORT_NAME_REPLY;
	hs->need = hs->no_zeroes ? 10 : 134;
}

/* After STRUCTURED_REPLY or SET_META_CONTEXT is settled: the next option. */
static void next_after(struct nbd_hs *hs, uint32_t opt)
{
	if (opt == NBD_OPT_STRUCTURED_REPLY && hs->structured &&
	    (hs->want_extents || hs->want_csum))
		send_set_meta(hs);
	else
		send_go_or_fence(hs);
}

static const char *rep_err_name(uint32_t type)
{
	switch (type) {
	case NBD_REP_ERR_UNSUP: return "not supported";
	case NBD_REP_ERR_POLICY: return "access denied by the server's policy";
	case NBD_REP_ERR_INVALID: return "invalid request";
	case NBD_REP_ERR_PLATFORM: return "not supported on the server's platform";
	case NBD_REP_ERR_TLS_REQD: return "the server requires TLS";
	case NBD_REP_ERR_UNKNOWN: return "no such export";
	case NBD_REP_ERR_SHUTDOWN: return "the server is shutting down";
	case NBD_REP_ERR_BLOCK_SIZE_REQD: return "the server requires block size negotiation";
	case NBD_REP_ERR_TOO_BIG: return "request too big";
	default: return "error";
	}
}

/* A whole option reply (header fields in hs, data in d[0..len)). */
static enum nbd_hs_status option_reply(struct nbd_hs *hs, const uint8_t *d, uint32_t len)
{
	uint32_t type = hs->rep_type, opt = hs->cur_opt;
	if (type & (1u << 31) && opt == NBD_OPT_STARTTLS)
		return fail(hs, "the server does not do TLS (STARTTLS: %s); use nbd:// for it",
			    rep_err_name(type));
	if (type == NBD_REP_ERR_TLS_REQD)
		return fail(hs,
			    "export '%.200s': the server requires TLS; use nbds:// (or "
			    "nbds+unix://) for it",
			    hs->export_name);
	if (type & (1u << 31)) {
		if (opt == NBD_OPT_STRUCTURED_REPLY || opt == NBD_OPT_SET_META_CONTEXT) {
			next_after(hs, opt); /* optional features: go on without */
			return NBD_HS_MORE;
		}
		if (opt == NBD_OPT_DST_FENCE && type != NBD_REP_ERR_POLICY) {
			send_go(hs); /* not a dst export: no fencing */
			return NBD_HS_MORE;
		}
		if (opt == NBD_OPT_GO && type == NBD_REP_ERR_UNSUP) {
			send_export_name(hs);
			return NBD_HS_MORE;
		}
		/* The message is the server's words: printable ASCII only. */
		char msg[256];
		size_t n = 0;
		for (uint32_t i = 0; i < len && n + 1 < sizeof(msg); i++)
			msg[n++] = d[i] >= 0x20 && d[i] < 0x7f ? (char)d[i] : '?';
		msg[n] = '\0';
		/* (A long name is cut so that the reason always fits.) */
		return fail(hs, "export '%.200s': %s%s%s%s", hs->export_name, rep_err_name(type),
			    n ? " (" : "", msg, n ? ")" : "");
	}
	switch (opt) {
	case NBD_OPT_STARTTLS:
		if (type != NBD_REP_ACK || len)
			return fail(hs, "unexpected reply %u to STARTTLS", type);
		hs->tls = true;
		hs->state = HS_TLS, hs->need = 0;
		return NBD_HS_TLS;
	case NBD_OPT_STRUCTURED_REPLY:
		if (type != NBD_REP_ACK)
			return fail(hs, "unexpected reply %u to STRUCTURED_REPLY", type);
		hs->structured = true;
		next_after(hs, opt);
		return NBD_HS_MORE;
	case NBD_OPT_SET_META_CONTEXT:
		if (type == NBD_REP_META_CONTEXT) {
			if (len < 4)
				return fail(hs, "short META_CONTEXT reply");
			const size_t ql = sizeof(NBD_META_BASE_ALLOCATION) - 1;
			const size_t cl = sizeof(NBD_META_DST_CSUM) - 1;
			if (len - 4 == ql && !memcmp(d + 4, NBD_META_BASE_ALLOCATION, ql)) {
				hs->base_alloc = true;
				hs->base_alloc_id = be32_read(d);
			} else if (hs->want_csum && len - 4 == cl &&
				   !memcmp(d + 4, NBD_META_DST_CSUM, cl)) {
				hs->csum = true;
				hs->csum_id = be32_read(d);
			}
			hs->state = HS_REPLY_HDR, hs->need = 20;
			return NBD_HS_MORE;
		}
		if (type != NBD_REP_ACK)
			return fail(hs, "unexpected reply %u to SET_META_CONTEXT", type);
		send_go_or_fence(hs);
		return NBD_HS_MORE;
	case NBD_OPT_DST_FENCE:
		if (type != NBD_REP_ACK)
			return fail(hs, "unexpected reply %u to DST_FENCE", type);
		hs->fenced = true;
		send_go(hs);
		return NBD_HS_MORE;
	case NBD_OPT_GO:
		if (type == NBD_REP_INFO) {
			if (len < 2)
				return fail(hs, "short INFO reply");
			uint16_t info = be16_read(d);
			if (info == NBD_INFO_EXPORT) {
				if (len != 12)
					return fail(hs, "bad INFO_EXPORT length %u", len);
				hs->size = be64_read(d + 2);
				hs->tflags = be16_read(d + 10);
				hs->have_export = true;
			} else if (info == NBD_INFO_BLOCK_SIZE) {
				if (len != 14)
					return fail(hs, "bad INFO_BLOCK_SIZE length %u", len);
				hs->min_block = be32_read(d + 2);
				hs->pref_block = be32_read(d + 6);
				hs->max_block = be32_read(d + 10);
			} else if (info == NBD_INFO_DESCRIPTION) {
				/* The server's words: printable ASCII only, cut. */
				size_t n = 0;
				for (uint32_t i = 2; i < len && n + 1 < sizeof(hs->description);
				     i++)
					hs->description[n++] =
					    d[i] >= 0x20 && d[i] < 0x7f ? (char)d[i] : '?';
				hs->description[n] = '\0';
			} /* other INFO types: nothing we need */
			hs->state = HS_REPLY_HDR, hs->need = 20;
			return NBD_HS_MORE;
		}
		if (type != NBD_REP_ACK)
			return fail(hs, "unexpected reply %u to GO", type);
		if (!hs->have_export)
			return fail(hs, "server finished GO without the export's size");
		hs->state = HS_DONE, hs->need = 0;
		return NBD_HS_DONE;
	default: return fail(hs, "reply to an option we did not send");
	}
}

void nbd_hs_init(struct nbd_hs *hs, const char *export_name, bool want_extents)
{
	memset(hs, 0, sizeof(*hs));
	if (export_name) {
		size_t n = strnlen(export_name, sizeof(hs->export_name) - 1);
		memcpy(hs->export_name, export_name, n);
		hs->export_len = (uint32_t)n;
	}
	hs->want_extents = want_extents;
	hs->state = HS_GREETING;
	hs->need = NBD_HS_GREETING_SIZE;
}

enum nbd_hs_status nbd_hs_feed(struct nbd_hs *hs, const uint8_t *in, size_t len)
{
	hs->out_len = 0;
	if (hs->state == HS_FAILED)
		return NBD_HS_ERROR;
	if (hs->state == HS_DONE)
		return NBD_HS_DONE;
	if (len != hs->need)
		return fail(hs, "internal: fed %zu bytes, expected %zu", len, hs->need);
	switch (hs->state) {
	case HS_GREETING: {
		if (be64_read(in) != NBD_MAGIC)
			return fail(hs, "not an NBD server (bad greeting magic)");
		uint64_t m = be64_read(in + 8);
		if (m == NBD_OLDSTYLE_MAGIC)
			return fail(hs, "old-style NBD servers are not supported");
		if (m != NBD_IHAVEOPT)
			return fail(hs, "not an NBD server (bad newstyle magic)");
		uint16_t flags = be16_read(in + 16);
		hs->fixed = flags & NBD_FLAG_FIXED_NEWSTYLE;
		hs->no_zeroes = flags & NBD_FLAG_NO_ZEROES;
		uint32_t cflags = (hs->fixed ? NBD_FLAG_C_FIXED_NEWSTYLE : 0) |
				  (hs->no_zeroes ? NBD_FLAG_C_NO_ZEROES : 0);
		put32(hs, cflags);
		if (hs->want_tls) {
			/* STARTTLS first, so that no option is told in plaintext. */
			if (!hs->fixed)
				return fail(hs, "the server cannot do TLS (not fixed newstyle)");
			option_header(hs, NBD_OPT_STARTTLS, 0);
			return NBD_HS_MORE;
		}
		/* Only fixed newstyle servers may be asked anything but the
		 * export: the others would drop us on an unknown option. */
		if (hs->fixed)
			send_structured_reply(hs);
		else
			send_export_name(hs);
		return NBD_HS_MORE;
	}
	case HS_REPLY_HDR:
		if (be64_read(in) != NBD_REP_MAGIC)
			return fail(hs, "bad option reply magic");
		if (be32_read(in + 8) != hs->cur_opt)
			return fail(hs, "reply to option %s while %s was asked",
				    nbd_opt_name(be32_read(in + 8)), nbd_opt_name(hs->cur_opt));
		hs->rep_type = be32_read(in + 12);
		hs->rep_len = be32_read(in + 16);
		if (hs->rep_len > NBD_HS_MAX_REPLY)
			return fail(hs, "option reply of %u bytes is too long", hs->rep_len);
		if (hs->rep_len == 0)
			return option_reply(hs, in, 0);
		hs->state = HS_REPLY_DATA;
		hs->need = hs->rep_len;
		return NBD_HS_MORE;
	case HS_REPLY_DATA: return option_reply(hs, in, (uint32_t)len);
	case HS_TLS: return fail(hs, "internal: fed during the TLS handshake");
	case HS_EXPORT_NAME_REPLY:
		hs->size = be64_read(in);
		hs->tflags = be16_read(in + 8);
		hs->have_export = true;
		hs->state = HS_DONE, hs->need = 0;
		return NBD_HS_DONE;
	}
	return fail(hs, "internal: bad state");
}

enum nbd_hs_status nbd_hs_tls_done(struct nbd_hs *hs)
{
	hs->out_len = 0;
	if (hs->state != HS_TLS)
		return fail(hs, "internal: TLS done outside the TLS step");
	send_structured_reply(hs);
	return NBD_HS_MORE;
}
