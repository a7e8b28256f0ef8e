/* acl.c - CIDR rules for export access (see acl.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "util.h"

int acl_parse_rule(const char *s, struct acl_rule *out, char *err, size_t errlen)
{
	char buf[128];
	memset(out, 0, sizeof(*out));
	out->access = ACL_RW;
	if (strlen(s) >= sizeof(buf)) {
		snprintf(err, errlen, "--allow %.40s...: too long", s);
		return -EINVAL;
	}
	strcpy(buf, s);
	char *addr = buf;
	/* Access suffix: the last ":ro"/":rw" (IPv6 addresses contain colons,
	 * so a suffix is only taken when it is exactly one of those words). */
	char *colon = strrchr(buf, ':');
	if (colon && (!strcmp(colon, ":ro") || !strcmp(colon, ":rw"))) {
		out->access = colon[2] == 'o' ? ACL_RO : ACL_RW;
		*colon = '\0';
	}
	if (addr[0] == '[') {
		char *close = strchr(addr, ']');
		if (!close || close[1]) {
			snprintf(err, errlen, "--allow %s: unbalanced [ ]", s);
			return -EINVAL;
		}
		*close = '\0';
		addr++;
	}
	char *slash = strchr(addr, '/');
	long prefix = -1;
	if (slash) {
		*slash = '\0';
		uint64_t p;
		if (parse_u64(slash + 1, &p) < 0 || p > 128) {
			snprintf(err, errlen, "--allow %s: bad prefix length '%s'", s, slash + 1);
			return -EINVAL;
		}
		prefix = (long)p;
	}
	if (inet_pton(AF_INET, addr, out->addr) == 1) {
		out->family = AF_INET;
		if (prefix > 32) {
			snprintf(err, errlen, "--allow %s: IPv4 prefix longer than 32", s);
			return -EINVAL;
		}
		out->prefix = prefix < 0 ? 32 : (unsigned)prefix;
	} else if (inet_pton(AF_INET6, addr, out->addr) == 1) {
		out->family = AF_INET6;
		out->prefix = prefix < 0 ? 128 : (unsigned)prefix;
	} else {
		snprintf(err, errlen,
			 "--allow %s: '%s' is not an IPv4 or IPv6 address (expected CIDR[:ro|:rw])",
			 s, addr);
		return -EINVAL;
	}
	return 0;
}

int acl_add(struct acl *acl, const char *s, char *err, size_t errlen)
{
	struct acl_rule r;
	int rc = acl_parse_rule(s, &r, err, errlen);
	if (rc < 0)
		return rc;
	struct acl_rule *n = realloc(acl->rules, (acl->n + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	acl->rules = n;
	acl->rules[acl->n++] = r;
	return 0;
}

void acl_free(struct acl *acl)
{
	free(acl->rules);
	acl->rules = NULL;
	acl->n = 0;
}

static bool prefix_match(const uint8_t *a, const uint8_t *b, unsigned bits)
{
	unsigned bytes = bits / 8, rem = bits % 8;
	if (memcmp(a, b, bytes) != 0)
		return false;
	if (rem) {
		uint8_t mask = (uint8_t)(0xff << (8 - rem));
		if ((a[bytes] & mask) != (b[bytes] & mask))
			return false;
	}
	return true;
}

enum acl_access acl_check(const struct acl *acl, const struct sockaddr *sa)
{
	uint8_t addr[16];
	int family;
	if (sa->sa_family == AF_UNIX)
		return ACL_RW;
	if (sa->sa_family == AF_INET) {
		family = AF_INET;
		memcpy(addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a6)) {
			family = AF_INET;
			memcpy(addr, &a6->s6_addr[12], 4);
		} else {
			family = AF_INET6;
			memcpy(addr, a6->s6_addr, 16);
		}
	} else {
		return ACL_DENY;
	}
	if (acl->n == 0) {
		static const uint8_t v6_loop[16] = {[15] = 1};
		if (family == AF_INET)
			return addr[0] == 127 ? ACL_RW : ACL_DENY;
		return memcmp(addr, v6_loop, 16) == 0 ? ACL_RW : ACL_DENY;
	}
	int best = -1;
	enum acl_access access = ACL_DENY;
	for (size_t i = 0; i < acl->n; i++) {
		const struct acl_rule *r = &acl->rules[i];
		if (r->family != family || (int)r->prefix <= best)
			continue;
		if (prefix_match(addr, r->addr, r->prefix)) {
			best = (int)r->prefix;
			access = r->access;
		}
	}
	return access;
}

const char *acl_access_name(enum acl_access a)
{
	return a == ACL_RW ? "rw" : a == ACL_RO ? "ro" : "deny";
}

void acl_rule_format(const struct acl_rule *r, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];
	inet_ntop(r->family, r->addr, a, sizeof(a));
	snprintf(buf, len, "%s/%u:%s", a, r->prefix, acl_access_name(r->access));
}
