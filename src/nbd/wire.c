/* wire.c - NBD option and request parsing/validation (see wire.h). */
#include <errno.h>
#include <string.h>

#include "common/util.h"
#include "proto.h"
#include "wire.h"

uint32_t nbd_parse_go(const uint8_t *data, uint32_t len, struct nbd_go_req *out)
{
	memset(out, 0, sizeof(*out));
	if (len < 6)
		return NBD_REP_ERR_INVALID;
	uint32_t nlen = be32_read(data);
	if (nlen > NBD_MAX_STRING || nlen > len - 6)
		return NBD_REP_ERR_INVALID;
	out->name = (const char *)data + 4;
	out->name_len = nlen;
	uint32_t pos = 4 + nlen;
	uint16_t n_info = be16_read(data + pos);
	pos += 2;
	if ((uint64_t)n_info * 2 != len - pos)
		return NBD_REP_ERR_INVALID;
	for (uint16_t i = 0; i < n_info; i++, pos += 2) {
		switch (be16_read(data + pos)) {
		case NBD_INFO_NAME: out->want_name = true; break;
		case NBD_INFO_DESCRIPTION: out->want_desc = true; break;
		case NBD_INFO_BLOCK_SIZE: out->want_block_size = true; break;
		default: /* NBD_INFO_EXPORT is always sent; unknown ones are ignored */ break;
		}
	}
	if (memchr(out->name, '\0', nlen))
		return NBD_REP_ERR_INVALID;
	return 0;
}

uint32_t nbd_parse_meta(const uint8_t *data, uint32_t len, bool is_list, struct nbd_meta_req *out)
{
	memset(out, 0, sizeof(*out));
	if (len < 8)
		return NBD_REP_ERR_INVALID;
	uint32_t nlen = be32_read(data);
	if (nlen > NBD_MAX_STRING || nlen > len - 8)
		return NBD_REP_ERR_INVALID;
	out->name = (const char *)data + 4;
	out->name_len = nlen;
	uint32_t pos = 4 + nlen;
	out->n_queries = be32_read(data + pos);
	pos += 4;
	/* Each query is at least its 4-byte length. */
	if ((uint64_t)out->n_queries * 4 > len - pos)
		return NBD_REP_ERR_INVALID;
	static const char base[] = NBD_META_BASE_ALLOCATION;
	static const char csum[] = NBD_META_DST_CSUM;
	for (uint32_t i = 0; i < out->n_queries; i++) {
		if (len - pos < 4)
			return NBD_REP_ERR_INVALID;
		uint32_t qlen = be32_read(data + pos);
		pos += 4;
		if (qlen > NBD_MAX_STRING || qlen > len - pos)
			return NBD_REP_ERR_INVALID;
		const char *q = (const char *)data + pos;
		pos += qlen;
		if (qlen == strlen(base) && memcmp(q, base, qlen) == 0)
			out->selects_base_alloc = true;
		/* "base:" alone lists every base: context, for LIST only. */
		else if (is_list && qlen == 5 && memcmp(q, "base:", 5) == 0)
			out->selects_base_alloc = true;
		else if (qlen == strlen(csum) && memcmp(q, csum, qlen) == 0)
			out->selects_csum = true;
		/* And "dst:" every dst: one. */
		else if (is_list && qlen == 4 && memcmp(q, "dst:", 4) == 0)
			out->selects_csum = true;
	}
	if (pos != len)
		return NBD_REP_ERR_INVALID;
	if (is_list && out->n_queries == 0)
		out->selects_base_alloc = out->selects_csum = true;
	return 0;
}

void nbd_decode_request(const uint8_t *buf, struct nbd_request *r)
{
	r->magic = be32_read(buf);
	r->flags = be16_read(buf + 4);
	r->type = be16_read(buf + 6);
	r->cookie = be64_read(buf + 8);
	r->offset = be64_read(buf + 16);
	r->length = be32_read(buf + 24);
}

static bool in_range(const struct nbd_request *r, uint64_t size)
{
	return r->offset <= size && r->length <= size - r->offset;
}

uint32_t nbd_validate_request(const struct nbd_request *r, const struct nbd_conn_caps *c)
{
	uint16_t allowed = NBD_CMD_FLAG_FUA; /* valid on every command once SEND_FUA is sent */
	bool writes = false, ranged = true, needs_len = true;

	switch (r->type) {
	case NBD_CMD_READ:
		if (c->structured)
			allowed |= NBD_CMD_FLAG_DF;
		break;
	case NBD_CMD_WRITE: writes = true; break;
	case NBD_CMD_FLUSH: ranged = false; break;
	case NBD_CMD_TRIM:
		if (!c->can_trim)
			return NBD_EINVAL;
		writes = true;
		break;
	case NBD_CMD_WRITE_ZEROES:
		if (!c->can_zero)
			return NBD_EINVAL;
		allowed |= NBD_CMD_FLAG_NO_HOLE;
		if (c->can_fast_zero)
			allowed |= NBD_CMD_FLAG_FAST_ZERO;
		writes = true;
		break;
	case NBD_CMD_CACHE:
		if (!c->can_cache)
			return NBD_EINVAL;
		break;
	case NBD_CMD_BLOCK_STATUS:
		if (!c->structured || !(c->base_alloc || c->csum))
			return NBD_EINVAL;
		allowed |= NBD_CMD_FLAG_REQ_ONE;
		break;
	case NBD_CMD_DISC:
		ranged = false;
		needs_len = false;
		break;
	default: return NBD_EINVAL;
	}
	if (r->flags & ~allowed)
		return NBD_EINVAL;
	if (!ranged) {
		if (r->type == NBD_CMD_FLUSH && (r->offset || r->length))
			return NBD_EINVAL;
		return 0;
	}
	if (needs_len && r->length == 0)
		return NBD_EINVAL;
	/* Over the advertised maximum block size: the spec's EINVAL. */
	if ((r->type == NBD_CMD_READ || r->type == NBD_CMD_WRITE) && r->length > NBD_MAX_BLOCK)
		return NBD_EINVAL;
	if (writes && c->readonly)
		return NBD_EPERM;
	if (c->min_block > 1 && (r->offset % c->min_block || r->length % c->min_block))
		return NBD_EINVAL;
	if (!in_range(r, c->size))
		return (r->type == NBD_CMD_WRITE || r->type == NBD_CMD_WRITE_ZEROES) ? NBD_ENOSPC
										     : NBD_EINVAL;
	return 0;
}

const char *nbd_cmd_name(uint16_t type)
{
	static const char *names[] = {"READ", "WRITE", "DISC",	       "FLUSH",
				      "TRIM", "CACHE", "WRITE_ZEROES", "BLOCK_STATUS"};
	return type < ARRAY_SIZE(names) ? names[type] : "UNKNOWN";
}

const char *nbd_opt_name(uint32_t opt)
{
	static const char *names[] = {"?",
				      "EXPORT_NAME",
				      "ABORT",
				      "LIST",
				      "PEEK_EXPORT",
				      "STARTTLS",
				      "INFO",
				      "GO",
				      "STRUCTURED_REPLY",
				      "LIST_META_CONTEXT",
				      "SET_META_CONTEXT",
				      "EXTENDED_HEADERS"};
	if (opt == NBD_OPT_DST_FENCE)
		return "DST_FENCE";
	return opt < ARRAY_SIZE(names) ? names[opt] : "UNKNOWN";
}

uint32_t nbd_errno_to_wire(int err)
{
	switch (err) {
	case 0: return 0;
	case EPERM:
	case EROFS:
	case EACCES: return NBD_EPERM;
	case ENOMEM: return NBD_ENOMEM;
	case EINVAL: return NBD_EINVAL;
	case ENOSPC:
	case EDQUOT:
	case EFBIG: return NBD_ENOSPC;
	case EOVERFLOW: return NBD_EOVERFLOW;
	case ENOTSUP: return NBD_ENOTSUP;
	case ESHUTDOWN: return NBD_ESHUTDOWN;
	default: return NBD_EIO;
	}
}

char *nbd_uri_describe(const char *uri)
{
	const char *p = NULL;
	if (!strncmp(uri, "nbd://", 6))
		p = uri + 6;
	else if (!strncmp(uri, "nbds://", 7))
		p = uri + 7;
	if (p) {
		size_t len = strcspn(p, "/?");
		return xasprintf("R: %.*s", (int)len, p);
	}
	return xasprintf("R: %s", uri);
}

int nbd_wire_to_errno(uint32_t err)
{
	switch (err) {
	case 0: return 0;
	case NBD_EPERM: return EPERM;
	case NBD_ENOMEM: return ENOMEM;
	case NBD_EINVAL: return EINVAL;
	case NBD_ENOSPC: return ENOSPC;
	case NBD_EOVERFLOW: return EOVERFLOW;
	case NBD_ENOTSUP: return ENOTSUP;
	case NBD_ESHUTDOWN: return ESHUTDOWN;
	default: return EIO;
	}
}
