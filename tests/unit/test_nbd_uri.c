/* test_nbd_uri.c - NBD URIs as nodes are named (nbd/uri.h): the good forms,
 * percent-decoding, and every bad form refused with a reason. */
#include <stdbool.h>
#include <stdlib.h>

#include "nbd/uri.h"
#include "unit.h"

/* Parse uri, which must succeed; prints the reason if it does not. */
static bool parse_ok(const char *uri, struct nbd_uri *u)
{
	char err[256] = "";
	int rc = nbd_uri_parse(uri, u, err, sizeof(err));
	if (rc != 0)
		fprintf(stderr, "unexpected failure for \"%s\": %s\n", uri, err);
	return rc == 0;
}

/* Parse uri, which must fail with a message; returns whether it did. The
 * message is copied to why (when not NULL). */
static bool parse_bad(const char *uri, char *why, size_t whylen)
{
	struct nbd_uri u;
	char err[256];
	memset(err, 0x55, sizeof(err));
	err[sizeof(err) - 1] = '\0';
	int rc = nbd_uri_parse(uri, &u, err, sizeof(err));
	if (rc == 0) {
		fprintf(stderr,
			"\"%s\" was accepted (host \"%s\" port \"%s\" socket \"%s\" "
			"export \"%s\")\n",
			uri, u.host, u.port, u.socket, u.export_name);
		return false;
	}
	/* A message was written: not the poison we filled err with. */
	bool msg = rc == -1 && err[0] && err[0] != 0x55 && strlen(err) < sizeof(err) - 1;
	if (!msg)
		fprintf(stderr, "\"%s\": rc %d, no message\n", uri, rc);
	if (why)
		snprintf(why, whylen, "%s", msg ? err : "");
	return msg;
}

TEST(tcp_host_only)
{
	struct nbd_uri u;
	CHECK(parse_ok("nbd://example.com", &u));
	CHECK(!u.tls);
	CHECK(!u.is_unix);
	CHECK_STR(u.host, "example.com");
	CHECK_STR(u.port, "10809");
	CHECK_STR(u.export_name, "");
	CHECK_STR(u.socket, "");

	/* A lone slash is the empty export too. */
	CHECK(parse_ok("nbd://10.1.2.3/", &u));
	CHECK_STR(u.host, "10.1.2.3");
	CHECK_STR(u.port, "10809");
	CHECK_STR(u.export_name, "");
}

TEST(tcp_port_export)
{
	struct nbd_uri u;
	CHECK(parse_ok("nbd://node7:10810/disk0", &u));
	CHECK_STR(u.host, "node7");
	CHECK_STR(u.port, "10810");
	CHECK_STR(u.export_name, "disk0");
	CHECK(!u.tls && !u.is_unix);

	/* The export is everything after the first slash: a second slash
	 * belongs to the name. */
	CHECK(parse_ok("nbd://h:1//abs/path", &u));
	CHECK_STR(u.port, "1");
	CHECK_STR(u.export_name, "/abs/path");

	/* Queries and fragments end the export name. */
	CHECK(parse_ok("nbd://h/exp?tls-certificates=/x#frag", &u));
	CHECK_STR(u.host, "h");
	CHECK_STR(u.export_name, "exp");
	CHECK(parse_ok("nbd://h:65535/e#f", &u));
	CHECK_STR(u.port, "65535");
	CHECK_STR(u.export_name, "e");
}

TEST(ipv6)
{
	struct nbd_uri u;
	CHECK(parse_ok("nbd://[::1]:10811/exp", &u));
	CHECK_STR(u.host, "::1");
	CHECK_STR(u.port, "10811");
	CHECK_STR(u.export_name, "exp");

	CHECK(parse_ok("nbd://[fe80::1%25eth0]", &u));
	CHECK_STR(u.host, "fe80::1%25eth0"); /* the host is not decoded */
	CHECK_STR(u.port, "10809");
	CHECK_STR(u.export_name, "");

	CHECK(parse_ok("nbd://[2001:db8::7]/", &u));
	CHECK_STR(u.host, "2001:db8::7");
	CHECK_STR(u.port, "10809");
}

TEST(percent_decoding)
{
	struct nbd_uri u;
	CHECK(parse_ok("nbd://h/a%20b%2Fc%41%7e", &u));
	CHECK_STR(u.export_name, "a b/cA~");
	CHECK(parse_ok("nbd://h/%e2%82%AC", &u)); /* UTF-8 euro sign, mixed case */
	CHECK_STR(u.export_name, "\xe2\x82\xac");
	CHECK(parse_ok("nbd://h/100%25", &u));
	CHECK_STR(u.export_name, "100%");
	CHECK(parse_ok("nbd+unix:///my%20disk?socket=/run/a%20b/s%2esock", &u));
	CHECK_STR(u.export_name, "my disk");
	CHECK_STR(u.socket, "/run/a b/s.sock");
}

TEST(unix_socket)
{
	struct nbd_uri u;
	CHECK(parse_ok("nbd+unix:///exp?socket=/p", &u));
	CHECK(u.is_unix);
	CHECK(!u.tls);
	CHECK_STR(u.export_name, "exp");
	CHECK_STR(u.socket, "/p");
	CHECK_STR(u.host, "");

	CHECK(parse_ok("nbd+unix:///?socket=/run/dst/n.sock", &u));
	CHECK_STR(u.export_name, "");
	CHECK_STR(u.socket, "/run/dst/n.sock");

	/* No path at all, other parameters around socket=, the last wins. */
	CHECK(parse_ok("nbd+unix://?socket=rel.sock", &u));
	CHECK_STR(u.socket, "rel.sock");
	CHECK_STR(u.export_name, "");
	CHECK(parse_ok("nbd+unix:///e?x=1&socket=/a&y&socket=/b#frag", &u));
	CHECK_STR(u.export_name, "e");
	CHECK_STR(u.socket, "/b");

	/* The longest path sun_path takes: 107 bytes. */
	char uri[300], path[200];
	memset(path, 'p', 107);
	path[0] = '/';
	path[107] = '\0';
	snprintf(uri, sizeof(uri), "nbd+unix:///?socket=%s", path);
	CHECK(parse_ok(uri, &u));
	CHECK_STR(u.socket, path);
}

TEST(tls_forms)
{
	struct nbd_uri u;
	CHECK(parse_ok("nbds://secure:10900/e", &u));
	CHECK(u.tls);
	CHECK(!u.is_unix);
	CHECK_STR(u.host, "secure");
	CHECK_STR(u.port, "10900");
	CHECK_STR(u.export_name, "e");

	CHECK(parse_ok("nbds+unix:///e?socket=/s", &u));
	CHECK(u.tls);
	CHECK(u.is_unix);
	CHECK_STR(u.socket, "/s");

	CHECK(parse_ok("nbd://plain", &u));
	CHECK(!u.tls);
}

/* libnbd's and qemu's query parameters, and USER@ before the host. */
TEST(tls_query)
{
	struct nbd_uri u;
	CHECK(parse_ok("nbd://h/e", &u));
	CHECK(!nbd_uri_has_tls_params(&u));
	CHECK_EQ(u.tls_verify_peer, -1);

	CHECK(parse_ok("nbds://alice@127.0.0.1:10810/?tls-psk-file=/etc/keys.psk", &u));
	CHECK(u.tls);
	CHECK_STR(u.host, "127.0.0.1");
	CHECK_STR(u.port, "10810");
	CHECK_STR(u.export_name, "");
	CHECK_STR(u.tls_username, "alice");
	CHECK_STR(u.tls_psk_file, "/etc/keys.psk");
	CHECK_STR(u.tls_certificates, "");
	CHECK(nbd_uri_has_tls_params(&u));

	/* All of them, percent-decoded, in any order, with unknown ones
	 * ignored; tls-username= wins over USER@. */
	CHECK(parse_ok("nbds://bob@[::1]/disk%201?tls-priority=NORMAL&tls-certificates=/pki%2Fa"
		       "&tls-verify-peer=false&tls-username=carol&x",
		       &u));
	CHECK_STR(u.host, "::1");
	CHECK_STR(u.export_name, "disk 1");
	CHECK_STR(u.tls_certificates, "/pki/a");
	CHECK_STR(u.tls_username, "carol");
	CHECK_EQ(u.tls_verify_peer, 0);
	CHECK_STR(u.tls_psk_file, "");

	static const char *const yes[] = {"true", "1", "yes", "on", "TRUE"};
	for (size_t i = 0; i < 5; i++) {
		char uri[128];
		snprintf(uri, sizeof(uri), "nbds://h/?tls-verify-peer=%s", yes[i]);
		CHECK(parse_ok(uri, &u));
		CHECK_EQ(u.tls_verify_peer, 1);
	}

	/* The Unix forms take them too, beside socket=. */
	CHECK(parse_ok("nbds+unix:///e?tls-psk-file=/k&socket=/run/s.sock&tls-username=u", &u));
	CHECK(u.is_unix && u.tls);
	CHECK_STR(u.socket, "/run/s.sock");
	CHECK_STR(u.tls_psk_file, "/k");
	CHECK_STR(u.tls_username, "u");
	CHECK_STR(u.export_name, "e");

	/* A repeated parameter: the last wins, as in libnbd. */
	CHECK(parse_ok("nbds://h/?tls-psk-file=/a&tls-psk-file=/b", &u));
	CHECK_STR(u.tls_psk_file, "/b");
}

TEST(export_name_length)
{
	/* 4096 bytes is the protocol's limit for a name: accepted; one more
	 * is refused. An escape counts as the one byte it decodes to. */
	size_t n = 4096;
	char *uri = malloc(n * 3 + 64);
	struct nbd_uri u;
	strcpy(uri, "nbd://h/");
	memset(uri + 8, 'x', n);
	uri[8 + n] = '\0';
	CHECK(parse_ok(uri, &u));
	CHECK_EQ(strlen(u.export_name), 4096);

	strcpy(uri, "nbd://h/");
	for (size_t i = 0; i < n; i++)
		memcpy(uri + 8 + 3 * i, "%41", 3);
	uri[8 + 3 * n] = '\0';
	CHECK(parse_ok(uri, &u));
	CHECK_EQ(strlen(u.export_name), 4096);
	CHECK_EQ(u.export_name[4095], 'A');

	strcpy(uri, "nbd://h/");
	memset(uri + 8, 'x', n + 1);
	uri[8 + n + 1] = '\0';
	char why[256];
	CHECK(parse_bad(uri, why, sizeof(why)));
	CHECK(strstr(why, "export") != NULL);
	free(uri);
}

static void check_bad(const char *uri, const char *word)
{
	char why[256] = "";
	bool bad = parse_bad(uri, why, sizeof(why));
	CHECK(bad);
	if (bad && word && !strstr(why, word)) {
		fprintf(stderr, "\"%s\": message \"%s\" does not mention \"%s\"\n", uri, why, word);
		CHECK(strstr(why, word) != NULL);
	}
}

TEST(bad_forms)
{
	static const struct {
		const char *uri, *word; /* word: a part of the expected message */
	} cases[] = {
	    /* no host */
	    {"nbd://", "host"},
	    {"nbd:///exp", "host"},
	    {"nbd://:10809/exp", "host"},
	    {"nbd://?socket=/p", "host"},
	    {"nbds://", "host"},
	    {"nbd://[]:10809", "host"},
	    /* bad or empty port */
	    {"nbd://h:", "port"},
	    {"nbd://h:/exp", "port"},
	    {"nbd://h:abc", "port"},
	    {"nbd://h:10809x", "port"},
	    {"nbd://h:-1", "port"},
	    {"nbd://h:+1", "port"},
	    {"nbd://h:1:2", "port"},
	    {"nbd://h:12345678901234567", "port"},
	    {"nbd://[::1]:", "port"},
	    {"nbd://[::1]:x/e", "port"},
	    /* IPv6 brackets */
	    {"nbd://[::1", "IPv6"},
	    {"nbd://[::1/e", "IPv6"},
	    {"nbd://[::1]x", "junk"},
	    {"nbd://[::1]10809", "junk"},
	    {"nbd://[::1]]:1", "junk"},
	    /* nbd+unix */
	    {"nbd+unix:///exp", "socket"},
	    {"nbd+unix:///exp?sock=/p", "socket"},
	    {"nbd+unix:///exp?socket=", "socket"},
	    {"nbd+unix:///exp?xsocket=/p", "socket"},
	    {"nbds+unix:///", "socket"},
	    {"nbd+unix://host/exp?socket=/p", "host"},
	    {"nbd+unix://h?socket=/p", "host"},
	    {"nbd+unix://:1/?socket=/p", "host"},
	    /* bad escapes and NUL */
	    {"nbd://h/a%", "export"},
	    {"nbd://h/a%4", "export"},
	    {"nbd://h/a%g1", "export"},
	    {"nbd://h/a%1g", "export"},
	    {"nbd://h/a%%41", "export"},
	    {"nbd://h/a%00b", "export"},
	    {"nbd+unix:///a%zz?socket=/p", "export"},
	    {"nbd+unix:///?socket=/p%", "socket"},
	    {"nbd+unix:///?socket=/p%0", "socket"},
	    {"nbd+unix:///?socket=/p%00q", "socket"},
	    /* TLS parameters */
	    {"nbds://h/?tls-psk-file=", "tls-psk-file"},
	    {"nbds://h/?tls-psk-file", "tls-psk-file"},
	    {"nbds://h/?tls-certificates=/a%zz", "tls-certificates"},
	    {"nbds://h/?tls-username=a%00b", "tls-username"},
	    {"nbds://h/?tls-verify-peer=maybe", "tls-verify-peer"},
	    {"nbds://h/?tls-verify-peer=", "tls-verify-peer"},
	    {"nbds://h/?tls-verify-peer=truetrue", "tls-verify-peer"},
	    {"nbds://@h/", "user"},
	    {"nbds://a%zz@h/", "user"},
	    {"nbds://alice@/", "host"},
	    {"nbds://alice@:1/", "host"},
	    /* unknown scheme */
	    {"", "NBD URI"},
	    {"nbd:", "NBD URI"},
	    {"nbd:/h", "NBD URI"},
	    {"nbd:h", "NBD URI"},
	    {"http://h/e", "NBD URI"},
	    {"nbd+tcp://h", "NBD URI"},
	    {"nbd+vsock://1", "NBD URI"},
	    {"unix:///tmp/s", "NBD URI"},
	    {"/tmp/s", "NBD URI"},
	    {"h:10809", "NBD URI"},
	    {" nbd://h", "NBD URI"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_bad(cases[i].uri, cases[i].word);
}

TEST(bad_long_fields)
{
	/* sun_path holds 107 bytes and a NUL: 108 is too long. */
	char uri[6000], path[200];
	memset(path, 'p', 108);
	path[0] = '/';
	path[108] = '\0';
	snprintf(uri, sizeof(uri), "nbd+unix:///?socket=%s", path);
	check_bad(uri, "socket");

	/* A host name of 255 bytes fits, 256 does not. */
	char host[300];
	memset(host, 'h', 256);
	host[255] = '\0';
	struct nbd_uri u;
	snprintf(uri, sizeof(uri), "nbd://%s/e", host);
	CHECK(parse_ok(uri, &u));
	CHECK_EQ(strlen(u.host), 255);
	host[255] = 'h';
	host[256] = '\0';
	snprintf(uri, sizeof(uri), "nbd://%s/e", host);
	check_bad(uri, "host");
	snprintf(uri, sizeof(uri), "nbd://[%s]:1/e", host);
	check_bad(uri, "host");

	/* An over-long query is refused as a whole. */
	strcpy(uri, "nbd+unix:///?socket=/s&x=");
	size_t l = strlen(uri);
	memset(uri + l, 'q', 2000);
	uri[l + 2000] = '\0';
	check_bad(uri, "query");
}

/* Ports are 16 bits: a bigger number would reach some other port (the
 * resolver takes "99999" and connects to 99999 mod 65536 = 34463). */
TEST(bad_port_range)
{
	check_bad("nbd://h:65536", "port");
	check_bad("nbd://h:99999/e", "port");
	check_bad("nbd://[::1]:100000", "port");
}

TEST(error_buffer_small)
{
	/* A short error buffer gets a truncated, terminated message. */
	struct nbd_uri u;
	char err[8];
	memset(err, 'Z', sizeof(err));
	CHECK_EQ(nbd_uri_parse("ftp://x", &u, err, sizeof(err)), -1);
	CHECK_EQ(strlen(err), 7);
}

UNIT_MAIN(T(tcp_host_only), T(tcp_port_export), T(ipv6), T(percent_decoding), T(unix_socket),
	  T(tls_forms), T(tls_query), T(export_name_length), T(bad_forms), T(bad_long_fields),
	  T(bad_port_range), T(error_buffer_small))
