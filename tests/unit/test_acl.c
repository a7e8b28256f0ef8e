/* test_acl.c - export access rules: CIDR[:ro|:rw] parsing and acl_check. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/un.h>

#include "common/acl.h"
#include "unit.h"

/* Parse s, expecting success; returns the rule formatted "addr/prefix:access". */
static const char *parse_ok(const char *s, struct acl_rule *r)
{
	static char buf[128];
	char err[256] = "";
	int rc = acl_parse_rule(s, r, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "acl_parse_rule(\"%s\") = %d: %s\n", s, rc, err);
		return "(error)";
	}
	acl_rule_format(r, buf, sizeof(buf));
	return buf;
}

/* Parse s, expecting -EINVAL with a message containing `why`. */
static bool parse_fails(const char *s, const char *why)
{
	struct acl_rule r;
	char err[256] = "";
	int rc = acl_parse_rule(s, &r, err, sizeof(err));
	if (rc != -EINVAL) {
		fprintf(stderr, "acl_parse_rule(\"%s\") = %d, expected -EINVAL\n", s, rc);
		return false;
	}
	if (!strstr(err, why)) {
		fprintf(stderr, "acl_parse_rule(\"%s\"): message \"%s\" lacks \"%s\"\n", s, err,
			why);
		return false;
	}
	return true;
}

static struct sockaddr_storage v4(const char *a)
{
	struct sockaddr_storage ss = {0};
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	sin->sin_family = AF_INET;
	sin->sin_port = htons(12345);
	if (inet_pton(AF_INET, a, &sin->sin_addr) != 1)
		fprintf(stderr, "bad test address %s\n", a);
	return ss;
}

static struct sockaddr_storage v6(const char *a)
{
	struct sockaddr_storage ss = {0};
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(12345);
	if (inet_pton(AF_INET6, a, &sin6->sin6_addr) != 1)
		fprintf(stderr, "bad test address %s\n", a);
	return ss;
}

static enum acl_access check4(const struct acl *acl, const char *a)
{
	struct sockaddr_storage ss = v4(a);
	return acl_check(acl, (struct sockaddr *)&ss);
}

static enum acl_access check6(const struct acl *acl, const char *a)
{
	struct sockaddr_storage ss = v6(a);
	return acl_check(acl, (struct sockaddr *)&ss);
}

static void add(struct acl *acl, const char *s)
{
	char err[256] = "";
	int rc = acl_add(acl, s, err, sizeof(err));
	if (rc)
		fprintf(stderr, "acl_add(\"%s\") = %d: %s\n", s, rc, err);
	CHECK_EQ(rc, 0);
}

TEST(parse_ipv4)
{
	struct acl_rule r;
	CHECK_STR(parse_ok("192.168.4.0/24", &r), "192.168.4.0/24:rw");
	CHECK_EQ(r.family, AF_INET);
	CHECK_EQ(r.prefix, 24);
	CHECK_EQ(r.access, ACL_RW);
	CHECK_STR(parse_ok("192.168.4.0/24:ro", &r), "192.168.4.0/24:ro");
	CHECK_EQ(r.access, ACL_RO);
	CHECK_STR(parse_ok("192.168.4.0/24:rw", &r), "192.168.4.0/24:rw");
	CHECK_EQ(r.access, ACL_RW);
	/* No prefix: one host. */
	CHECK_STR(parse_ok("10.0.0.5", &r), "10.0.0.5/32:rw");
	CHECK_STR(parse_ok("10.0.0.5:ro", &r), "10.0.0.5/32:ro");
	CHECK_STR(parse_ok("0.0.0.0/0", &r), "0.0.0.0/0:rw");
	CHECK_STR(parse_ok("10.1.2.3/32:ro", &r), "10.1.2.3/32:ro");
}

TEST(parse_ipv6)
{
	struct acl_rule r;
	CHECK_STR(parse_ok("fd00::/64", &r), "fd00::/64:rw");
	CHECK_EQ(r.family, AF_INET6);
	CHECK_EQ(r.prefix, 64);
	CHECK_STR(parse_ok("[fd00::/64]:ro", &r), "fd00::/64:ro");
	CHECK_EQ(r.access, ACL_RO);
	CHECK_STR(parse_ok("[fd00::/64]:rw", &r), "fd00::/64:rw");
	CHECK_STR(parse_ok("[fd00::/64]", &r), "fd00::/64:rw");
	CHECK_STR(parse_ok("::1", &r), "::1/128:rw");
	CHECK_STR(parse_ok("[::1]", &r), "::1/128:rw");
	CHECK_STR(parse_ok("[::1]:ro", &r), "::1/128:ro");
	/* Unbracketed with a suffix: the suffix is still recognised. */
	CHECK_STR(parse_ok("fe80::1/10:ro", &r), "fe80::1/10:ro");
	CHECK_STR(parse_ok("::/0", &r), "::/0:rw");
	CHECK_STR(parse_ok("2001:db8::/128", &r), "2001:db8::/128:rw");
}

TEST(parse_errors)
{
	CHECK(parse_fails("10.0.0.0/33", "longer than 32"));
	CHECK(parse_fails("10.0.0.0/64:ro", "longer than 32"));
	CHECK(parse_fails("fd00::/129", "bad prefix length"));
	CHECK(parse_fails("10.0.0.0/", "bad prefix length"));
	CHECK(parse_fails("10.0.0.0/-1", "bad prefix length"));
	CHECK(parse_fails("10.0.0.0/x", "bad prefix length"));
	CHECK(parse_fails("10.0.0.0/24/8", "bad prefix length"));
	CHECK(parse_fails("10.0.0.0/ 8", "bad prefix length"));
	CHECK(parse_fails("garbage", "not an IPv4 or IPv6 address"));
	CHECK(parse_fails("", "not an IPv4 or IPv6 address"));
	CHECK(parse_fails("10.0.0.256", "not an IPv4 or IPv6 address"));
	CHECK(parse_fails("10.0.0", "not an IPv4 or IPv6 address"));
	CHECK(parse_fails("localhost", "not an IPv4 or IPv6 address"));
	CHECK(parse_fails("10.0.0.0/8:rx", "bad prefix length"));
	CHECK(parse_fails("10.0.0.0/8:", "bad prefix length"));
	CHECK(parse_fails("10.0.0.1:rx", "not an IPv4 or IPv6 address"));
	CHECK(parse_fails(":ro", "not an IPv4 or IPv6 address"));
	CHECK(parse_fails("[fd00::/64", "unbalanced"));
	CHECK(parse_fails("[fd00::]/64", "unbalanced"));
	CHECK(parse_fails("[10.0.0.1]x", "unbalanced"));
	char longs[300];
	memset(longs, '1', sizeof(longs) - 1);
	longs[sizeof(longs) - 1] = '\0';
	CHECK(parse_fails(longs, "too long"));

	/* acl_add refuses the same and leaves the list as it was. */
	struct acl acl = {0};
	char err[256];
	CHECK_EQ(acl_add(&acl, "10.0.0.0/40", err, sizeof(err)), -EINVAL);
	CHECK_EQ(acl.n, 0);
	add(&acl, "10.0.0.0/8");
	CHECK_EQ(acl_add(&acl, "nope", err, sizeof(err)), -EINVAL);
	CHECK_EQ(acl.n, 1);
	acl_free(&acl);
	CHECK_EQ(acl.n, 0);
	CHECK(acl.rules == NULL);
}

TEST(empty_is_loopback_only)
{
	struct acl acl = {0};
	CHECK_EQ(check4(&acl, "127.0.0.1"), ACL_RW);
	CHECK_EQ(check4(&acl, "127.1.2.3"), ACL_RW);
	CHECK_EQ(check4(&acl, "10.0.0.1"), ACL_DENY);
	CHECK_EQ(check4(&acl, "192.168.1.1"), ACL_DENY);
	CHECK_EQ(check4(&acl, "0.0.0.0"), ACL_DENY);
	CHECK_EQ(check4(&acl, "128.0.0.1"), ACL_DENY);
	CHECK_EQ(check6(&acl, "::1"), ACL_RW);
	CHECK_EQ(check6(&acl, "::2"), ACL_DENY);
	CHECK_EQ(check6(&acl, "::"), ACL_DENY);
	CHECK_EQ(check6(&acl, "fe80::1"), ACL_DENY);
	CHECK_EQ(check6(&acl, "::ffff:127.0.0.1"), ACL_RW);
	CHECK_EQ(check6(&acl, "::ffff:127.9.9.9"), ACL_RW);
	CHECK_EQ(check6(&acl, "::ffff:10.0.0.1"), ACL_DENY);
}

TEST(unix_and_other_families)
{
	struct acl acl = {0};
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	CHECK_EQ(acl_check(&acl, (struct sockaddr *)&sun), ACL_RW);
	/* Even with rules that would deny every IP client. */
	add(&acl, "10.0.0.0/8:ro");
	CHECK_EQ(acl_check(&acl, (struct sockaddr *)&sun), ACL_RW);
	struct sockaddr other = {.sa_family = AF_UNSPEC};
	CHECK_EQ(acl_check(&acl, &other), ACL_DENY);
	acl_free(&acl);
}

TEST(longest_prefix_wins)
{
	struct acl acl = {0};
	add(&acl, "10.0.0.0/8:ro");
	add(&acl, "10.0.0.5:rw");
	add(&acl, "10.1.0.0/16:rw");
	add(&acl, "10.1.2.0/24:ro");
	CHECK_EQ(acl.n, 4);
	CHECK_EQ(check4(&acl, "10.0.0.5"), ACL_RW);
	CHECK_EQ(check4(&acl, "10.0.0.6"), ACL_RO);
	CHECK_EQ(check4(&acl, "10.200.0.1"), ACL_RO);
	CHECK_EQ(check4(&acl, "10.1.9.9"), ACL_RW);
	CHECK_EQ(check4(&acl, "10.1.2.3"), ACL_RO);
	CHECK_EQ(check4(&acl, "11.0.0.1"), ACL_DENY);
	/* With rules, loopback is no longer implicit. */
	CHECK_EQ(check4(&acl, "127.0.0.1"), ACL_DENY);
	CHECK_EQ(check6(&acl, "::1"), ACL_DENY);
	/* v4-mapped clients match IPv4 rules. */
	CHECK_EQ(check6(&acl, "::ffff:10.0.0.5"), ACL_RW);
	CHECK_EQ(check6(&acl, "::ffff:10.0.0.7"), ACL_RO);
	acl_free(&acl);

	/* Order does not matter: the broader rule after the narrower one. */
	add(&acl, "192.168.4.80/32:ro");
	add(&acl, "192.168.4.0/24:rw");
	add(&acl, "0.0.0.0/0:ro");
	CHECK_EQ(check4(&acl, "192.168.4.80"), ACL_RO);
	CHECK_EQ(check4(&acl, "192.168.4.81"), ACL_RW);
	CHECK_EQ(check4(&acl, "8.8.8.8"), ACL_RO);
	CHECK_EQ(check6(&acl, "2001:db8::1"), ACL_DENY); /* no IPv6 rule */
	acl_free(&acl);

	/* Prefixes that are not byte-aligned. */
	add(&acl, "172.16.0.0/12");
	CHECK_EQ(check4(&acl, "172.16.0.1"), ACL_RW);
	CHECK_EQ(check4(&acl, "172.31.255.255"), ACL_RW);
	CHECK_EQ(check4(&acl, "172.32.0.0"), ACL_DENY);
	CHECK_EQ(check4(&acl, "172.15.255.255"), ACL_DENY);
	acl_free(&acl);

	/* IPv6. */
	add(&acl, "[fd00::/8]:ro");
	add(&acl, "[fd00:1::/32]:rw");
	add(&acl, "::1");
	CHECK_EQ(check6(&acl, "fd12::1"), ACL_RO);
	CHECK_EQ(check6(&acl, "fd00:1::9"), ACL_RW);
	CHECK_EQ(check6(&acl, "fd00:2::9"), ACL_RO);
	CHECK_EQ(check6(&acl, "fe00::1"), ACL_DENY);
	CHECK_EQ(check6(&acl, "::1"), ACL_RW);
	CHECK_EQ(check4(&acl, "127.0.0.1"), ACL_DENY); /* no IPv4 rule */
	acl_free(&acl);

	/* Host bits set in the rule's address are ignored beyond the prefix. */
	add(&acl, "10.9.9.9/8:ro");
	CHECK_EQ(check4(&acl, "10.0.0.1"), ACL_RO);
	acl_free(&acl);
}

TEST(names)
{
	CHECK_STR(acl_access_name(ACL_RW), "rw");
	CHECK_STR(acl_access_name(ACL_RO), "ro");
	CHECK_STR(acl_access_name(ACL_DENY), "deny");
}

UNIT_MAIN(T(parse_ipv4), T(parse_ipv6), T(parse_errors), T(empty_is_loopback_only),
	  T(unix_and_other_families), T(longest_prefix_wins), T(names))
