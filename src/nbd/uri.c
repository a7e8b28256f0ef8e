/* uri.c - parse the NBD URIs a node may be given (see uri.h). */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/util.h"

#include "uri.h"

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decode src[0..len) into dst[dstlen]; -1 on a bad escape, a NUL
 * byte or overflow. */
static int decode(const char *src, size_t len, char *dst, size_t dstlen)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		int c = (unsigned char)src[i];
		if (c == '%') {
			int hi = i + 1 < len ? hexval(src[i + 1]) : -1;
			int lo = i + 2 < len ? hexval(src[i + 2]) : -1;
			if (hi < 0 || lo < 0)
				return -1;
			c = hi * 16 + lo;
			i += 2;
		}
		if (c == 0 || o + 1 >= dstlen)
			return -1;
		dst[o++] = (char)c;
	}
	dst[o] = '\0';
	return 0;
}

/* "true"/"false" and the other spellings libnbd takes; -1 if none. */
static int parse_bool(const char *v)
{
	static const char *const yes[] = {"true", "1", "yes", "on"}, *const no[] = {"false", "0",
										    "no", "off"};
	for (size_t i = 0; i < 4; i++) {
		if (!strcasecmp(v, yes[i]))
			return 1;
		if (!strcasecmp(v, no[i]))
			return 0;
	}
	return -1;
}

/* The query's parameters we know; a repeated one: the last wins. */
static int parse_query(const char *q, struct nbd_uri *out, char *err, size_t errlen)
{
	static const struct {
		const char *name;
		size_t off, size;
	} params[] = {
	    {"socket", offsetof(struct nbd_uri, socket), sizeof(out->socket)},
	    {"tls-psk-file", offsetof(struct nbd_uri, tls_psk_file), sizeof(out->tls_psk_file)},
	    {"tls-certificates", offsetof(struct nbd_uri, tls_certificates),
	     sizeof(out->tls_certificates)},
	    {"tls-username", offsetof(struct nbd_uri, tls_username), sizeof(out->tls_username)},
	};
	while (*q) {
		size_t len = strcspn(q, "&");
		const char *eq = memchr(q, '=', len);
		size_t nlen = eq ? (size_t)(eq - q) : len;
		const char *v = eq ? eq + 1 : q + len;
		size_t vlen = (size_t)(q + len - v);
		for (size_t i = 0; i < sizeof(params) / sizeof(params[0]); i++) {
			if (strlen(params[i].name) != nlen || strncmp(q, params[i].name, nlen))
				continue;
			char *dst = (char *)out + params[i].off;
			if (!vlen || decode(v, vlen, dst, params[i].size) < 0) {
				snprintf(err, errlen, "%s: empty, invalid or too long",
					 params[i].name);
				return -1;
			}
		}
		if (nlen == 15 && !strncmp(q, "tls-verify-peer", 15)) {
			char b[8];
			if (decode(v, vlen, b, sizeof(b)) < 0 ||
			    (out->tls_verify_peer = parse_bool(b)) < 0) {
				snprintf(err, errlen,
					 "tls-verify-peer=%.*s: expected true or false",
					 (int)MIN(vlen, 64), v);
				return -1;
			}
		}
		/* Others (tls-priority, tls-hostname...) do not change how we
		 * connect: ignored, as libnbd ignores those it does not know. */
		q += len;
		if (*q == '&')
			q++;
	}
	return 0;
}

int nbd_uri_parse(const char *uri, struct nbd_uri *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	out->tls_verify_peer = -1;
	const char *p;
	if (!strncmp(uri, "nbd://", 6)) {
		p = uri + 6;
	} else if (!strncmp(uri, "nbds://", 7)) {
		p = uri + 7, out->tls = true;
	} else if (!strncmp(uri, "nbd+unix://", 11)) {
		p = uri + 11, out->is_unix = true;
	} else if (!strncmp(uri, "nbds+unix://", 12)) {
		p = uri + 12, out->is_unix = true, out->tls = true;
	} else {
		snprintf(err, errlen,
			 "not an NBD URI (expected nbd://HOST[:PORT][/EXPORT] or "
			 "nbd+unix:///[EXPORT]?socket=PATH)");
		return -1;
	}
	size_t auth_len = strcspn(p, "/?#");
	const char *path = p + auth_len;
	size_t path_len = strcspn(path, "?#");
	const char *query = path[path_len] == '?' ? path + path_len + 1 : "";
	char qbuf[1024];
	size_t qlen = strcspn(query, "#");
	if (qlen >= sizeof(qbuf)) {
		snprintf(err, errlen, "query too long");
		return -1;
	}
	memcpy(qbuf, query, qlen);
	qbuf[qlen] = '\0';

	/* The export name is the path without its leading slash. */
	if (path_len > 0 &&
	    decode(path + 1, path_len - 1, out->export_name, sizeof(out->export_name)) < 0) {
		snprintf(err, errlen, "export name is invalid or longer than 4096 bytes");
		return -1;
	}
	if (parse_query(qbuf, out, err, errlen) < 0)
		return -1;
	/* USER@ before the host: the TLS user name (tls-username= wins). */
	const char *at = memchr(p, '@', auth_len);
	if (at) {
		char user[sizeof(out->tls_username)];
		if (at == p || decode(p, (size_t)(at - p), user, sizeof(user)) < 0) {
			snprintf(err, errlen, "bad user name before '@'");
			return -1;
		}
		if (!out->tls_username[0])
			memcpy(out->tls_username, user, sizeof(user));
		auth_len -= (size_t)(at + 1 - p);
		p = at + 1;
	}
	if (out->is_unix) {
		if (auth_len != 0) {
			snprintf(err, errlen,
				 "nbd+unix:// takes no host (nbd+unix:///?socket=PATH)");
			return -1;
		}
		if (!out->socket[0]) {
			snprintf(err, errlen, "nbd+unix:// needs ?socket=PATH");
			return -1;
		}
		return 0;
	}
	if (auth_len == 0) {
		snprintf(err, errlen, "no host in URI");
		return -1;
	}
	const char *host = p, *port = NULL;
	size_t host_len;
	if (*p == '[') {
		const char *close = memchr(p, ']', auth_len);
		if (!close) {
			snprintf(err, errlen, "unterminated [IPv6] address");
			return -1;
		}
		host = p + 1;
		host_len = (size_t)(close - host);
		if (close + 1 < p + auth_len) {
			if (close[1] != ':') {
				snprintf(err, errlen, "junk after [IPv6] address");
				return -1;
			}
			port = close + 2;
		}
	} else {
		const char *colon = memchr(p, ':', auth_len);
		host_len = colon ? (size_t)(colon - p) : auth_len;
		if (colon)
			port = colon + 1;
	}
	if (host_len == 0 || host_len >= sizeof(out->host)) {
		snprintf(err, errlen, "bad host in URI");
		return -1;
	}
	memcpy(out->host, host, host_len);
	size_t port_len = port ? (size_t)(p + auth_len - port) : 0;
	if (port) {
		if (port_len == 0 || port_len >= sizeof(out->port) ||
		    strspn(port, "0123456789") < port_len) {
			snprintf(err, errlen, "bad port in URI");
			return -1;
		}
		memcpy(out->port, port, port_len);
		long pn = strtol(out->port, NULL, 10);
		if (pn < 1 || pn > 65535) {
			snprintf(err, errlen, "bad port in URI: %s is not in 1-65535", out->port);
			return -1;
		}
	} else {
		strcpy(out->port, "10809");
	}
	return 0;
}
