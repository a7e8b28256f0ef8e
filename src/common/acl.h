/* acl.h - per-address access rules of an export node: CIDR -> rw | ro.
 *
 * As DST's export node did, a client is let in read-write or read-only by its
 * address. The longest matching prefix wins, so "10.0.0.0/8:ro" plus
 * "10.0.0.5:rw" does what it says. An empty list means loopback only.
 */
#ifndef DST_ACL_H
#define DST_ACL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

enum acl_access { ACL_DENY, ACL_RO, ACL_RW };

struct acl_rule {
	int family; /* AF_INET or AF_INET6 */
	uint8_t addr[16];
	unsigned prefix;
	enum acl_access access;
};

struct acl {
	struct acl_rule *rules;
	size_t n;
};

/* Parse "CIDR[:ro|:rw]" (IPv6 in brackets when a suffix follows:
 * "[fd00::/64]:ro"). Returns 0, or -EINVAL with a reason in err. */
int acl_parse_rule(const char *s, struct acl_rule *out, char *err, size_t errlen);
int acl_add(struct acl *acl, const char *s, char *err, size_t errlen);
void acl_free(struct acl *acl);

/* What the client at this address may do. AF_UNIX peers are local: rw. */
enum acl_access acl_check(const struct acl *acl, const struct sockaddr *sa);

/* "rw"/"ro"/"deny" and a printable rule. */
const char *acl_access_name(enum acl_access a);
void acl_rule_format(const struct acl_rule *r, char *buf, size_t len);

#endif
