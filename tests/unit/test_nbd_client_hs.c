/* test_nbd_client_hs.c - the client side of the NBD handshake (nbd/client_hs.h)
 * fed canned server bytes: what it sends (byte for byte, as the protocol
 * says), what it concludes, how it fails, and a seeded robustness loop. */
#include <stdbool.h>
#include <stdlib.h>

#include "common/util.h"
#include "nbd/client_hs.h"
#include "nbd/proto.h"
#include "unit.h"

#define OLDSTYLE_MAGIC 0x00420281861253ull

/* ---- byte builders ---- */

struct bytes {
	uint8_t b[80000];
	size_t len;
};

static void put(struct bytes *b, const void *p, size_t n)
{
	memcpy(b->b + b->len, p, n);
	b->len += n;
}

static void put16(struct bytes *b, uint16_t v)
{
	be16_write(b->b + b->len, v);
	b->len += 2;
}

static void put32(struct bytes *b, uint32_t v)
{
	be32_write(b->b + b->len, v);
	b->len += 4;
}

static void put64(struct bytes *b, uint64_t v)
{
	be64_write(b->b + b->len, v);
	b->len += 8;
}

/* Server side. */
static void s_greeting(struct bytes *b, uint16_t flags)
{
	put64(b, NBD_MAGIC);
	put64(b, NBD_IHAVEOPT);
	put16(b, flags);
}

static void s_reply(struct bytes *b, uint32_t opt, uint32_t type, const void *data, uint32_t len)
{
	put64(b, NBD_REP_MAGIC);
	put32(b, opt);
	put32(b, type);
	put32(b, len);
	if (len)
		put(b, data, len);
}

static void s_ack(struct bytes *b, uint32_t opt)
{
	s_reply(b, opt, NBD_REP_ACK, NULL, 0);
}

static void s_err(struct bytes *b, uint32_t opt, uint32_t type, const char *msg)
{
	s_reply(b, opt, type, msg, msg ? (uint32_t)strlen(msg) : 0);
}

static void s_info_export(struct bytes *b, uint64_t size, uint16_t tflags)
{
	uint8_t d[12];
	be16_write(d, NBD_INFO_EXPORT);
	be64_write(d + 2, size);
	be16_write(d + 10, tflags);
	s_reply(b, NBD_OPT_GO, NBD_REP_INFO, d, sizeof(d));
}

static void s_info_block(struct bytes *b, uint32_t min, uint32_t pref, uint32_t max)
{
	uint8_t d[14];
	be16_write(d, NBD_INFO_BLOCK_SIZE);
	be32_write(d + 2, min);
	be32_write(d + 6, pref);
	be32_write(d + 10, max);
	s_reply(b, NBD_OPT_GO, NBD_REP_INFO, d, sizeof(d));
}

static void s_meta(struct bytes *b, uint32_t id, const char *name)
{
	uint8_t d[256];
	be32_write(d, id);
	memcpy(d + 4, name, strlen(name));
	s_reply(b, NBD_OPT_SET_META_CONTEXT, NBD_REP_META_CONTEXT, d, 4 + (uint32_t)strlen(name));
}

/* EXPORT_NAME's answer: size, flags, and 124 zeroes unless NO_ZEROES. */
static void s_export_name_reply(struct bytes *b, uint64_t size, uint16_t tflags, bool zeroes)
{
	put64(b, size);
	put16(b, tflags);
	if (zeroes) {
		memset(b->b + b->len, 0, 124);
		b->len += 124;
	}
}

/* Client side, as the spec lays it out. */
static void c_option(struct bytes *b, uint32_t opt, const struct bytes *data)
{
	put64(b, NBD_IHAVEOPT);
	put32(b, opt);
	put32(b, data ? (uint32_t)data->len : 0);
	if (data)
		put(b, data->b, data->len);
}

static void c_structured(struct bytes *b)
{
	c_option(b, NBD_OPT_STRUCTURED_REPLY, NULL);
}

static void c_set_meta(struct bytes *b, const char *name)
{
	static struct bytes d;
	d.len = 0;
	put32(&d, (uint32_t)strlen(name));
	put(&d, name, strlen(name));
	put32(&d, 1); /* one query */
	put32(&d, (uint32_t)strlen(NBD_META_BASE_ALLOCATION));
	put(&d, NBD_META_BASE_ALLOCATION, strlen(NBD_META_BASE_ALLOCATION));
	c_option(b, NBD_OPT_SET_META_CONTEXT, &d);
}

static void c_go(struct bytes *b, const char *name)
{
	static struct bytes d;
	d.len = 0;
	put32(&d, (uint32_t)strlen(name));
	put(&d, name, strlen(name));
	put16(&d, 2); /* two info requests */
	put16(&d, NBD_INFO_BLOCK_SIZE);
	put16(&d, NBD_INFO_DESCRIPTION);
	c_option(b, NBD_OPT_GO, &d);
}

static void c_export_name(struct bytes *b, const char *name)
{
	static struct bytes d;
	d.len = 0;
	put(&d, name, strlen(name));
	c_option(b, NBD_OPT_EXPORT_NAME, &d);
}

/* ---- driving ---- */

struct run {
	enum nbd_hs_status st;
	size_t fed;	   /* bytes of the server stream consumed */
	unsigned feeds;	   /* nbd_hs_feed calls */
	struct bytes sent; /* everything the client sent, in order */
	bool starved;	   /* the stream ended while it wanted more */
};

/* Feed the server stream to hs, hs->need bytes at a time, until DONE or
 * ERROR or the stream runs out. */
static void drive(struct nbd_hs *hs, const struct bytes *srv, struct run *r)
{
	memset(r, 0, sizeof(*r));
	r->st = NBD_HS_MORE;
	while (r->st == NBD_HS_MORE) {
		size_t need = hs->need;
		if (need == 0 || need > NBD_HS_MAX_REPLY) {
			fprintf(stderr, "asks for %zu bytes\n", need);
			CHECK(need > 0 && need <= NBD_HS_MAX_REPLY);
			return;
		}
		if (r->fed + need > srv->len) {
			r->starved = true;
			return;
		}
		r->st = nbd_hs_feed(hs, srv->b + r->fed, need);
		r->fed += need;
		r->feeds++;
		CHECK(hs->out_len <= sizeof(hs->out));
		put(&r->sent, hs->out, hs->out_len);
	}
}

static bool same_bytes(const struct bytes *got, const struct bytes *want, const char *what)
{
	if (got->len == want->len && !memcmp(got->b, want->b, got->len))
		return true;
	size_t i = 0;
	while (i < got->len && i < want->len && got->b[i] == want->b[i])
		i++;
	fprintf(stderr, "%s: client sent %zu bytes, expected %zu; first difference at %zu\n", what,
		got->len, want->len, i);
	return false;
}

static bool has(const char *s, const char *word)
{
	if (strstr(s, word))
		return true;
	fprintf(stderr, "\"%s\" does not mention \"%s\"\n", s, word);
	return false;
}

#define TFLAGS                                                                               \
	(NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA | NBD_FLAG_SEND_TRIM | \
	 NBD_FLAG_SEND_WRITE_ZEROES | NBD_FLAG_SEND_DF | NBD_FLAG_CAN_MULTI_CONN)

static struct bytes srv, want;
static struct run run;
static struct nbd_hs hs;

/* A fixed-newstyle, NO_ZEROES server that accepts everything. */
TEST(happy_path)
{
	nbd_hs_init(&hs, "disk0", true);
	CHECK_EQ(hs.need, NBD_HS_GREETING_SIZE);
	CHECK_EQ(hs.need, 18);
	srv.len = 0;
	s_greeting(&srv, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
	s_ack(&srv, NBD_OPT_STRUCTURED_REPLY);
	s_meta(&srv, 7, NBD_META_BASE_ALLOCATION);
	s_ack(&srv, NBD_OPT_SET_META_CONTEXT);
	s_info_export(&srv, 1ull << 30, TFLAGS);
	{ /* an INFO type we did not ask for is skipped */
		uint8_t d[7] = {0, NBD_INFO_NAME, 'd', 'i', 's', 'k', '0'};
		s_reply(&srv, NBD_OPT_GO, NBD_REP_INFO, d, sizeof(d));
	}
	{ /* the description is kept, its unprintable bytes replaced */
		uint8_t d[8] = {0, NBD_INFO_DESCRIPTION, 'd', 's', 't', '\n', ' ', 'x'};
		s_reply(&srv, NBD_OPT_GO, NBD_REP_INFO, d, sizeof(d));
	}
	s_info_block(&srv, 512, 4096, 32u << 20);
	s_ack(&srv, NBD_OPT_GO);
	drive(&hs, &srv, &run);
	CHECK_EQ(run.st, NBD_HS_DONE);
	CHECK_EQ(run.fed, srv.len);
	CHECK_EQ(hs.need, 0);

	want.len = 0;
	put32(&want, NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
	c_structured(&want);
	c_set_meta(&want, "disk0");
	c_go(&want, "disk0");
	CHECK(same_bytes(&run.sent, &want, "happy path"));

	CHECK(hs.fixed);
	CHECK(hs.no_zeroes);
	CHECK(hs.structured);
	CHECK(hs.base_alloc);
	CHECK_EQ(hs.base_alloc_id, 7);
	CHECK(hs.have_export);
	CHECK_EQ(hs.size, 1ull << 30);
	CHECK_EQ(hs.tflags, TFLAGS);
	CHECK_EQ(hs.min_block, 512);
	CHECK_EQ(hs.pref_block, 4096);
	CHECK_EQ(hs.max_block, 32u << 20);
	CHECK_STR(hs.description, "dst? x");

	/* Done is done: more feeding changes nothing and sends nothing. */
	uint8_t junk[20] = {0};
	CHECK_EQ(nbd_hs_feed(&hs, junk, sizeof(junk)), NBD_HS_DONE);
	CHECK_EQ(hs.out_len, 0);
	CHECK_EQ(hs.size, 1ull << 30);
}

/* The same, message by message: what goes out after each reply. */
TEST(happy_path_steps)
{
	nbd_hs_init(&hs, NULL, true);
	CHECK_EQ(hs.export_len, 0);
	srv.len = 0;
	s_greeting(&srv, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
	CHECK_EQ(nbd_hs_feed(&hs, srv.b, srv.len), NBD_HS_MORE);
	want.len = 0;
	put32(&want, 3);
	c_structured(&want);
	CHECK_EQ(hs.out_len, 4 + 16);
	CHECK(hs.out_len == want.len && !memcmp(hs.out, want.b, want.len));
	CHECK_EQ(hs.need, 20);

	srv.len = 0;
	s_ack(&srv, NBD_OPT_STRUCTURED_REPLY);
	CHECK_EQ(nbd_hs_feed(&hs, srv.b, srv.len), NBD_HS_MORE);
	want.len = 0;
	c_set_meta(&want, "");
	CHECK_EQ(hs.out_len, 16 + 4 + 0 + 4 + 4 + 15);
	CHECK(hs.out_len == want.len && !memcmp(hs.out, want.b, want.len));
	CHECK_EQ(hs.need, 20);

	/* A META_CONTEXT reply: header, then its 19 bytes of data. */
	srv.len = 0;
	s_meta(&srv, 0x01020304, NBD_META_BASE_ALLOCATION);
	CHECK_EQ(nbd_hs_feed(&hs, srv.b, 20), NBD_HS_MORE);
	CHECK_EQ(hs.out_len, 0);
	CHECK_EQ(hs.need, 19);
	CHECK_EQ(nbd_hs_feed(&hs, srv.b + 20, 19), NBD_HS_MORE);
	CHECK_EQ(hs.out_len, 0);
	CHECK_EQ(hs.need, 20);
	CHECK(hs.base_alloc);
	CHECK_EQ(hs.base_alloc_id, 0x01020304);

	srv.len = 0;
	s_ack(&srv, NBD_OPT_SET_META_CONTEXT);
	CHECK_EQ(nbd_hs_feed(&hs, srv.b, srv.len), NBD_HS_MORE);
	want.len = 0;
	c_go(&want, "");
	CHECK_EQ(hs.out_len, 16 + 4 + 0 + 2 + 2 * 2);
	CHECK(hs.out_len == want.len && !memcmp(hs.out, want.b, want.len));

	srv.len = 0;
	s_info_export(&srv, 12345, NBD_FLAG_HAS_FLAGS | NBD_FLAG_READ_ONLY);
	CHECK_EQ(nbd_hs_feed(&hs, srv.b, 20), NBD_HS_MORE);
	CHECK_EQ(hs.need, 12);
	CHECK_EQ(nbd_hs_feed(&hs, srv.b + 20, 12), NBD_HS_MORE);
	CHECK_EQ(hs.need, 20);
	srv.len = 0;
	s_ack(&srv, NBD_OPT_GO);
	CHECK_EQ(nbd_hs_feed(&hs, srv.b, 20), NBD_HS_DONE);
	CHECK_EQ(hs.out_len, 0);
	CHECK_EQ(hs.size, 12345);
	CHECK_EQ(hs.tflags, NBD_FLAG_HAS_FLAGS | NBD_FLAG_READ_ONLY);
	CHECK_EQ(hs.min_block, 0); /* not told */
	CHECK_EQ(hs.pref_block, 0);
	CHECK_EQ(hs.max_block, 0);
}

/* Contexts other than base:allocation are not taken for it. */
TEST(meta_other_contexts)
{
	nbd_hs_init(&hs, "e", true);
	srv.len = 0;
	s_greeting(&srv, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
	s_ack(&srv, NBD_OPT_STRUCTURED_REPLY);
	s_meta(&srv, 3, "qemu:dirty-bitmap:x");
	s_meta(&srv, 4, "base:allocatio");
	s_meta(&srv, 5, "base:allocationX");
	s_ack(&srv, NBD_OPT_SET_META_CONTEXT);
	s_info_export(&srv, 4096, NBD_FLAG_HAS_FLAGS);
	s_ack(&srv, NBD_OPT_GO);
	drive(&hs, &srv, &run);
	CHECK_EQ(run.st, NBD_HS_DONE);
	CHECK(hs.structured);
	CHECK(!hs.base_alloc);

	/* Not asking for extents: no SET_META_CONTEXT at all. */
	nbd_hs_init(&hs, "e", false);
	srv.len = 0;
	s_greeting(&srv, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
	s_ack(&srv, NBD_OPT_STRUCTURED_REPLY);
	s_info_export(&srv, 4096, NBD_FLAG_HAS_FLAGS);
	s_ack(&srv, NBD_OPT_GO);
	drive(&hs, &srv, &run);
	CHECK_EQ(run.st, NBD_HS_DONE);
	want.len = 0;
	put32(&want, NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
	c_structured(&want);
	c_go(&want, "e");
	CHECK(same_bytes(&run.sent, &want, "no extents"));
	CHECK(hs.structured);
	CHECK(!hs.base_alloc);
}

/* Checksums wanted: SET_META_CONTEXT asks for base:allocation and
 * dst:csum-4k; each context keeps its own id; a server that grants only
 * base:allocation leaves csum off; a server that offers dst:csum-4k to a
 * client that did not ask is not believed. */
TEST(meta_csum)
{
	static struct bytes d;
	d.len = 0;
	put32(&d, 1);
	put(&d, "e", 1);
	put32(&d, 2);
	put32(&d, (uint32_t)strlen(NBD_META_BASE_ALLOCATION));
	put(&d, NBD_META_BASE_ALLOCATION, strlen(NBD_META_BASE_ALLOCATION));
	put32(&d, (uint32_t)strlen(NBD_META_DST_CSUM));
	put(&d, NBD_META_DST_CSUM, strlen(NBD_META_DST_CSUM));
	for (int granted = 0; granted < 2; granted++) {
		nbd_hs_init(&hs, "e", true);
		hs.want_csum = true;
		srv.len = 0;
		s_greeting(&srv, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
		s_ack(&srv, NBD_OPT_STRUCTURED_REPLY);
		s_meta(&srv, 1, NBD_META_BASE_ALLOCATION);
		if (granted)
			s_meta(&srv, 2, NBD_META_DST_CSUM);
		s_ack(&srv, NBD_OPT_SET_META_CONTEXT);
		s_info_export(&srv, 4096, NBD_FLAG_HAS_FLAGS);
		s_ack(&srv, NBD_OPT_GO);
		drive(&hs, &srv, &run);
		CHECK_EQ(run.st, NBD_HS_DONE);
		want.len = 0;
		put32(&want, NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
		c_structured(&want);
		c_option(&want, NBD_OPT_SET_META_CONTEXT, &d);
		c_go(&want, "e");
		CHECK(same_bytes(&run.sent, &want, "csum wanted"));
		CHECK(hs.base_alloc);
		CHECK_EQ(hs.base_alloc_id, 1);
		CHECK_EQ(hs.csum, granted);
		if (granted)
			CHECK_EQ(hs.csum_id, 2);
	}

	/* Not asked for: not taken even if offered. */
	nbd_hs_init(&hs, "e", true);
	srv.len = 0;
	s_greeting(&srv, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
	s_ack(&srv, NBD_OPT_STRUCTURED_REPLY);
	s_meta(&srv, 2, NBD_META_DST_CSUM);
	s_meta(&srv, 1, NBD_META_BASE_ALLOCATION);
	s_ack(&srv, NBD_OPT_SET_META_CONTEXT);
	s_info_export(&srv, 4096, NBD_FLAG_HAS_FLAGS);
	s_ack(&srv, NBD_OPT_GO);
	drive(&hs, &srv, &run);
	CHECK_EQ(run.st, NBD_HS_DONE);
	CHECK(hs.base_alloc && !hs.csum);

	/* Structured replies refused: neither context, straight to GO. */
	nbd_hs_init(&hs, "e", true);
	hs.want_csum = true;
	srv.len = 0;
	s_greeting(&srv, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
	s_err(&srv, NBD_OPT_STRUCTURED_REPLY, NBD_REP_ERR_UNSUP, "");
	s_info_export(&srv, 4096, NBD_FLAG_HAS_FLAGS);
	s_ack(&srv, NBD_OPT_GO);
	drive(&hs, &srv, &run);
	CHECK_EQ(run.st, NBD_HS_DONE);
	CHECK(!hs.csum && !hs.base_alloc);
}

/* Structured replies refused: no SET_META_CONTEXT, straight to GO. */
TEST(structured_refused)
{
	nbd_hs_init(&hs, "disk0", true);
	srv.len = 0;
	s_greeting(&srv, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
	s_err(&srv, NBD_OPT_STRUCTURED_REPLY, NBD_REP_ERR_UNSUP, "no structured replies here");
	s_info_export(&srv, 8192, NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH);
	s_ack(&srv, NBD_OPT_GO);
	drive(&hs, &srv, &run);
	CHECK_EQ(run.st, NBD_HS_DONE);
	CHECK_EQ(run.fed, srv.len);
	want.len = 0;
	put32(&want, NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
	c_structured(&want);
	c_go(&want, "disk0");
	CHECK(same_bytes(&run.sent, &want, "structured refused"));
	CHECK(!hs.structured);
	CHECK(!hs.base_alloc);
	CHECK_EQ(hs.size, 8192);
	CHECK_EQ(hs.tflags, NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH);

	/* Any error to it (here POLICY, no message) is the same. */
	nbd_hs_init(&hs, "disk0", true);
	srv.len = 0;
	s_greeting(&srv, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
	s_err(&srv, NBD_OPT_STRUCTURED_REPLY, NBD_REP_ERR_POLICY, NULL);
	s_info_export(&srv, 8192, NBD_FLAG_HAS_FLAGS);
	s_ack(&srv, NBD_OPT_GO);
	drive(&hs, &srv, &run);
	CHECK_EQ(run.st, NBD_HS_DONE);
	CHECK(same_bytes(&run.sent, &want, "structured refused by policy"));
}

/* SET_META_CONTEXT refused: go on without base:allocation. */
TEST(meta_refused)
{
	nbd_hs_init(&hs, "d", true);
	srv.len = 0;
	s_greeting(&srv, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
	s_ack(&srv, NBD_OPT_STRUCTURED_REPLY);
	s_err(&srv, NBD_OPT_SET_META_CONTEXT, NBD_REP_ERR_INVALID, "nope");
	s_info_export(&srv, 1, NBD_FLAG_HAS_FLAGS);
	s_ack(&srv, NBD_OPT_GO);
	drive(&hs, &srv, &run);
	CHECK_EQ(run.st, NBD_HS_DONE);
	want.len = 0;
	put32(&want, NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
	c_structured(&want);
	c_set_meta(&want, "d");
	c_go(&want, "d");
	CHECK(same_bytes(&run.sent, &want, "meta refused"));
	CHECK(hs.structured);
	CHECK(!hs.base_alloc);
	CHECK_EQ(hs.size, 1);
}

/* GO unknown to the server: EXPORT_NAME, whose reply is 10 bytes with
 * NO_ZEROES and 134 without. */
static void go_unsupported(bool no_zeroes)
{
	uint16_t gflags = NBD_FLAG_FIXED_NEWSTYLE | (no_zeroes ? NBD_FLAG_NO_ZEROES : 0);
	nbd_hs_init(&hs, "old", true);
	srv.len = 0;
	s_greeting(&srv, gflags);
	s_err(&srv, NBD_OPT_STRUCTURED_REPLY, NBD_REP_ERR_UNSUP, NULL);
	s_err(&srv, NBD_OPT_GO, NBD_REP_ERR_UNSUP, "unknown option");
	size_t before_reply = srv.len;
	s_export_name_reply(&srv, 3ull << 40, NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_TRIM, !no_zeroes);
	CHECK_EQ(srv.len - before_reply, no_zeroes ? 10 : 134);
	drive(&hs, &srv, &run);
	CHECK_EQ(run.st, NBD_HS_DONE);
	CHECK_EQ(run.fed, srv.len);
	want.len = 0;
	put32(&want, NBD_FLAG_C_FIXED_NEWSTYLE | (no_zeroes ? NBD_FLAG_C_NO_ZEROES : 0));
	c_structured(&want);
	c_go(&want, "old");
	c_export_name(&want, "old");
	CHECK(same_bytes(&run.sent, &want, no_zeroes ? "GO unsup, no zeroes" : "GO unsup"));
	CHECK_EQ(hs.size, 3ull << 40);
	CHECK_EQ(hs.tflags, NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_TRIM);
	CHECK(hs.have_export);
	CHECK(!hs.structured);

	/* The reply is asked for in one piece of the right size. */
	nbd_hs_init(&hs, "old", true);
	srv.len = before_reply;
	drive(&hs, &srv, &run);
	CHECK(run.starved);
	CHECK_EQ(hs.need, no_zeroes ? 10 : 134);
}

TEST(go_unsupported_no_zeroes)
{
	go_unsupported(true);
}

TEST(go_unsupported_zeroes)
{
	go_unsupported(false);
}

/* With structured replies accepted and then GO unknown, the fallback keeps
 * what was negotiated. */
TEST(go_unsupported_after_meta)
{
	nbd_hs_init(&hs, "x", true);
	srv.len = 0;
	s_greeting(&srv, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
	s_ack(&srv, NBD_OPT_STRUCTURED_REPLY);
	s_meta(&srv, 9, NBD_META_BASE_ALLOCATION);
	s_ack(&srv, NBD_OPT_SET_META_CONTEXT);
	s_err(&srv, NBD_OPT_GO, NBD_REP_ERR_UNSUP, NULL);
	s_export_name_reply(&srv, 4096, NBD_FLAG_HAS_FLAGS, false);
	drive(&hs, &srv, &run);
	CHECK_EQ(run.st, NBD_HS_DONE);
	CHECK(hs.structured && hs.base_alloc);
	CHECK_EQ(hs.base_alloc_id, 9);
	CHECK_EQ(hs.size, 4096);
}

/* A newstyle server that is not "fixed" may not be asked anything: the
 * client goes straight to EXPORT_NAME. */
TEST(not_fixed_newstyle)
{
	nbd_hs_init(&hs, "legacy", true);
	srv.len = 0;
	s_greeting(&srv, 0);
	s_export_name_reply(&srv, 1ull << 20, NBD_FLAG_HAS_FLAGS, true);
	drive(&hs, &srv, &run);
	CHECK_EQ(run.st, NBD_HS_DONE);
	CHECK_EQ(run.feeds, 2);
	CHECK_EQ(run.fed, 18 + 134);
	want.len = 0;
	put32(&want, 0);
	c_export_name(&want, "legacy");
	CHECK(same_bytes(&run.sent, &want, "not fixed"));
	CHECK(!hs.fixed);
	CHECK(!hs.structured);
	CHECK_EQ(hs.size, 1ull << 20);

	/* Not fixed but NO_ZEROES: the client says NO_ZEROES, reply is 10. */
	nbd_hs_init(&hs, "", true);
	srv.len = 0;
	s_greeting(&srv, NBD_FLAG_NO_ZEROES);
	s_export_name_reply(&srv, 77, NBD_FLAG_HAS_FLAGS, false);
	drive(&hs, &srv, &run);
	CHECK_EQ(run.st, NBD_HS_DONE);
	CHECK_EQ(run.fed, 18 + 10);
	want.len = 0;
	put32(&want, NBD_FLAG_C_NO_ZEROES);
	c_export_name(&want, "");
	CHECK(same_bytes(&run.sent, &want, "not fixed, no zeroes"));
	CHECK_EQ(hs.size, 77);
}

/* Run the stream, expecting it to fail with a message containing word. */
static void expect_error(const char *word, const char *what)
{
	drive(&hs, &srv, &run);
	if (run.st != NBD_HS_ERROR)
		fprintf(stderr, "%s: status %d, expected an error\n", what, run.st);
	CHECK_EQ(run.st, NBD_HS_ERROR);
	CHECK_EQ(hs.need, 0);
	CHECK(hs.error[0] != '\0');
	CHECK(has(hs.error, word));
	/* An error is final. */
	uint8_t b[20] = {0};
	CHECK_EQ(nbd_hs_feed(&hs, b, 20), NBD_HS_ERROR);
	CHECK_EQ(hs.out_len, 0);
}

/* The greeting and the first reply header of a fixed server. */
static void fixed_start(const char *name)
{
	nbd_hs_init(&hs, name, true);
	srv.len = 0;
	s_greeting(&srv, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
}

/* A fixed server past STRUCTURED_REPLY and SET_META_CONTEXT, now at GO. */
static void at_go(const char *name)
{
	fixed_start(name);
	s_ack(&srv, NBD_OPT_STRUCTURED_REPLY);
	s_ack(&srv, NBD_OPT_SET_META_CONTEXT);
}

TEST(bad_greetings)
{
	nbd_hs_init(&hs, "e", true);
	srv.len = 0;
	put64(&srv, 0x4e42444d41474944ull); /* "NBDMAGID" */
	put64(&srv, NBD_IHAVEOPT);
	put16(&srv, 3);
	expect_error("magic", "bad magic");
	CHECK_EQ(run.sent.len, 0);

	nbd_hs_init(&hs, "e", true);
	srv.len = 0;
	put64(&srv, NBD_MAGIC);
	put64(&srv, OLDSTYLE_MAGIC);
	put16(&srv, 0);
	expect_error("old-style", "oldstyle");
	CHECK_EQ(run.sent.len, 0);

	nbd_hs_init(&hs, "e", true);
	srv.len = 0;
	put64(&srv, NBD_MAGIC);
	put64(&srv, NBD_REP_MAGIC);
	put16(&srv, 3);
	expect_error("magic", "bad newstyle magic");
	CHECK_EQ(run.sent.len, 0);

	/* An HTTP server, say. */
	nbd_hs_init(&hs, "e", true);
	srv.len = 0;
	put(&srv, "HTTP/1.1 400 Bad", 16);
	put16(&srv, 0x0d0a);
	expect_error("not an NBD server", "http");
}

TEST(bad_reply_headers)
{
	/* Bad option reply magic. */
	fixed_start("e");
	put64(&srv, NBD_REP_MAGIC ^ 1);
	put32(&srv, NBD_OPT_STRUCTURED_REPLY);
	put32(&srv, NBD_REP_ACK);
	put32(&srv, 0);
	expect_error("magic", "bad reply magic");

	/* A reply to another option than the one asked. */
	fixed_start("e");
	s_ack(&srv, NBD_OPT_GO);
	expect_error("while", "reply to another option");
	CHECK(has(hs.error, "GO"));
	CHECK(has(hs.error, "STRUCTURED_REPLY"));

	at_go("e");
	s_ack(&srv, NBD_OPT_STRUCTURED_REPLY);
	expect_error("while", "reply to an earlier option");

	/* Replies longer than NBD_HS_MAX_REPLY are refused at the header;
	 * exactly that long is taken. */
	fixed_start("e");
	s_ack(&srv, NBD_OPT_STRUCTURED_REPLY);
	put64(&srv, NBD_REP_MAGIC);
	put32(&srv, NBD_OPT_SET_META_CONTEXT);
	put32(&srv, NBD_REP_META_CONTEXT);
	put32(&srv, NBD_HS_MAX_REPLY + 1);
	expect_error("too long", "over-long reply");

	fixed_start("e");
	s_ack(&srv, NBD_OPT_STRUCTURED_REPLY);
	put64(&srv, NBD_REP_MAGIC);
	put32(&srv, NBD_OPT_SET_META_CONTEXT);
	put32(&srv, NBD_REP_META_CONTEXT);
	put32(&srv, 0xffffffffu);
	expect_error("too long", "4 GiB reply");

	fixed_start("e");
	s_ack(&srv, NBD_OPT_STRUCTURED_REPLY);
	{
		static uint8_t big[NBD_HS_MAX_REPLY];
		memset(big, 'm', sizeof(big));
		be32_write(big, 5);
		s_reply(&srv, NBD_OPT_SET_META_CONTEXT, NBD_REP_META_CONTEXT, big, sizeof(big));
	}
	s_ack(&srv, NBD_OPT_SET_META_CONTEXT);
	s_info_export(&srv, 1, NBD_FLAG_HAS_FLAGS);
	s_ack(&srv, NBD_OPT_GO);
	drive(&hs, &srv, &run);
	CHECK_EQ(run.st, NBD_HS_DONE);
	CHECK(!hs.base_alloc);
}

/* Error replies to GO end the handshake with the export's name, what the
 * error means and the server's own words. */
TEST(go_errors)
{
	at_go("disk9");
	s_err(&srv, NBD_OPT_GO, NBD_REP_ERR_UNKNOWN, "export 'disk9' not found");
	expect_error("no such export", "ERR_UNKNOWN");
	CHECK(has(hs.error, "disk9"));
	CHECK(has(hs.error, "not found"));

	at_go("disk9");
	s_err(&srv, NBD_OPT_GO, NBD_REP_ERR_UNKNOWN, NULL);
	expect_error("no such export", "ERR_UNKNOWN without a message");
	CHECK(has(hs.error, "disk9"));
	CHECK(!strchr(hs.error, '('));

	at_go("disk9");
	s_err(&srv, NBD_OPT_GO, NBD_REP_ERR_POLICY, "go away");
	expect_error("policy", "ERR_POLICY");
	CHECK(has(hs.error, "go away"));

	at_go("disk9");
	s_err(&srv, NBD_OPT_GO, NBD_REP_ERR_TLS_REQD, "TLS first");
	expect_error("requires TLS", "ERR_TLS_REQD");

	at_go("disk9");
	s_err(&srv, NBD_OPT_GO, NBD_REP_ERR_SHUTDOWN, NULL);
	expect_error("shutting down", "ERR_SHUTDOWN");

	at_go("disk9");
	s_err(&srv, NBD_OPT_GO, NBD_REP_ERR_BLOCK_SIZE_REQD, NULL);
	expect_error("block size", "ERR_BLOCK_SIZE_REQD");

	at_go("disk9");
	s_err(&srv, NBD_OPT_GO, NBD_REP_ERR(77), "odd");
	expect_error("error", "unknown error type");
	CHECK(has(hs.error, "odd"));

	/* The server's words are printable ASCII only when shown. */
	at_go("disk9");
	s_err(&srv, NBD_OPT_GO, NBD_REP_ERR_INVALID, "bad\n\x1b[31mred\xff");
	expect_error("invalid", "control characters");
	CHECK(has(hs.error, "bad??[31mred?"));

	/* A long message is cut, not overflowed. */
	at_go("disk9");
	{
		static char msg[5000];
		memset(msg, 'w', sizeof(msg) - 1);
		s_err(&srv, NBD_OPT_GO, NBD_REP_ERR_POLICY, msg);
	}
	expect_error("policy", "long message");
	CHECK(strlen(hs.error) < sizeof(hs.error));
}

/* A long (but valid: up to 4096 bytes) export name must not push the
 * reason out of the error message. */
TEST(go_error_long_export_name)
{
	static char name[701];
	memset(name, 'n', sizeof(name) - 1);
	at_go(name);
	s_err(&srv, NBD_OPT_GO, NBD_REP_ERR_UNKNOWN, "not here");
	expect_error("no such export", "ERR_UNKNOWN, 700-byte export name");
}

TEST(go_bad_info)
{
	/* ACK without INFO_EXPORT: no size, no export. */
	at_go("e");
	s_info_block(&srv, 1, 4096, 1 << 20);
	s_ack(&srv, NBD_OPT_GO);
	expect_error("size", "GO without INFO_EXPORT");
	CHECK(!hs.have_export);

	static const uint32_t bad_export_lens[] = {2, 10, 11, 13, 20};
	for (size_t i = 0; i < ARRAY_SIZE(bad_export_lens); i++) {
		uint8_t d[32] = {0};
		be16_write(d, NBD_INFO_EXPORT);
		at_go("e");
		s_reply(&srv, NBD_OPT_GO, NBD_REP_INFO, d, bad_export_lens[i]);
		expect_error("INFO_EXPORT length", "bad INFO_EXPORT length");
	}
	static const uint32_t bad_block_lens[] = {2, 12, 13, 15, 26};
	for (size_t i = 0; i < ARRAY_SIZE(bad_block_lens); i++) {
		uint8_t d[32] = {0};
		be16_write(d, NBD_INFO_BLOCK_SIZE);
		at_go("e");
		s_reply(&srv, NBD_OPT_GO, NBD_REP_INFO, d, bad_block_lens[i]);
		expect_error("INFO_BLOCK_SIZE length", "bad INFO_BLOCK_SIZE length");
	}
	/* Too short to say which INFO it is. */
	for (uint32_t len = 0; len < 2; len++) {
		uint8_t d[2] = {0};
		at_go("e");
		s_reply(&srv, NBD_OPT_GO, NBD_REP_INFO, d, len);
		expect_error("short INFO", "INFO of 0 or 1 byte");
	}
	/* A reply type GO does not have. */
	at_go("e");
	s_reply(&srv, NBD_OPT_GO, NBD_REP_SERVER, "abcd", 4);
	expect_error("unexpected reply", "REP_SERVER to GO");
}

TEST(other_bad_replies)
{
	/* STRUCTURED_REPLY answered with something that is not ACK. */
	fixed_start("e");
	s_reply(&srv, NBD_OPT_STRUCTURED_REPLY, NBD_REP_INFO, "\0\0", 2);
	expect_error("STRUCTURED_REPLY", "INFO to STRUCTURED_REPLY");

	/* META_CONTEXT too short for its id; a type it does not have. */
	fixed_start("e");
	s_ack(&srv, NBD_OPT_STRUCTURED_REPLY);
	s_reply(&srv, NBD_OPT_SET_META_CONTEXT, NBD_REP_META_CONTEXT, "abc", 3);
	expect_error("short META_CONTEXT", "short META_CONTEXT");

	fixed_start("e");
	s_ack(&srv, NBD_OPT_STRUCTURED_REPLY);
	s_reply(&srv, NBD_OPT_SET_META_CONTEXT, NBD_REP_INFO, "\0\0", 2);
	expect_error("SET_META_CONTEXT", "INFO to SET_META_CONTEXT");
}

TEST(wrong_feed_size)
{
	uint8_t b[64] = {0};
	nbd_hs_init(&hs, "e", true);
	CHECK_EQ(nbd_hs_feed(&hs, b, 17), NBD_HS_ERROR);
	CHECK(has(hs.error, "fed 17 bytes, expected 18"));
	CHECK_EQ(hs.need, 0);
	CHECK_EQ(hs.out_len, 0);

	nbd_hs_init(&hs, "e", true);
	CHECK_EQ(nbd_hs_feed(&hs, b, 19), NBD_HS_ERROR);

	/* Mid-way: a header wanted, a few bytes more given. */
	nbd_hs_init(&hs, "e", true);
	srv.len = 0;
	s_greeting(&srv, NBD_FLAG_FIXED_NEWSTYLE);
	CHECK_EQ(nbd_hs_feed(&hs, srv.b, srv.len), NBD_HS_MORE);
	srv.len = 0;
	s_ack(&srv, NBD_OPT_STRUCTURED_REPLY);
	put32(&srv, 0);
	CHECK_EQ(nbd_hs_feed(&hs, srv.b, 24), NBD_HS_ERROR);
	CHECK(has(hs.error, "expected 20"));
	CHECK_EQ(nbd_hs_feed(&hs, srv.b, 20), NBD_HS_ERROR);

	/* Zero bytes to a fresh handshake. */
	nbd_hs_init(&hs, "e", true);
	CHECK_EQ(nbd_hs_feed(&hs, b, 0), NBD_HS_ERROR);
}

TEST(long_export_name)
{
	/* The longest name the protocol allows goes out whole in every
	 * option; longer ones are cut at 4096 bytes by nbd_hs_init. */
	static char name[5000];
	memset(name, 'L', 4096);
	name[4096] = '\0';
	nbd_hs_init(&hs, name, true);
	CHECK_EQ(hs.export_len, 4096);
	srv.len = 0;
	s_greeting(&srv, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
	s_ack(&srv, NBD_OPT_STRUCTURED_REPLY);
	s_ack(&srv, NBD_OPT_SET_META_CONTEXT);
	s_err(&srv, NBD_OPT_GO, NBD_REP_ERR_UNSUP, NULL);
	s_export_name_reply(&srv, 1, NBD_FLAG_HAS_FLAGS, false);
	drive(&hs, &srv, &run);
	CHECK_EQ(run.st, NBD_HS_DONE);
	want.len = 0;
	put32(&want, NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
	c_structured(&want);
	c_set_meta(&want, name);
	c_go(&want, name);
	c_export_name(&want, name);
	CHECK(same_bytes(&run.sent, &want, "4096-byte name"));

	memset(name, 'L', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	nbd_hs_init(&hs, name, false);
	CHECK_EQ(hs.export_len, 4096);
	CHECK_EQ(strlen(hs.export_name), 4096);
}

/* ---- robustness ---- */

static uint32_t rng_state;

static uint32_t rnd(void)
{
	/* xorshift32: deterministic for a given seed. */
	uint32_t x = rng_state;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return rng_state = x;
}

static uint32_t pick(const uint32_t *v, size_t n)
{
	return v[rnd() % n];
}

/* Bytes that look like what a server might send when `need` are asked
 * for: mostly well-formed headers with odd fields, sometimes noise. */
static void gen(uint8_t *b, size_t need, unsigned step, const struct nbd_hs *h)
{
	for (size_t i = 0; i < need; i++)
		b[i] = (uint8_t)rnd();
	if (rnd() % 16 == 0)
		return; /* pure noise */
	static const uint32_t types[] = {NBD_REP_ACK,
					 NBD_REP_ACK,
					 NBD_REP_INFO,
					 NBD_REP_INFO,
					 NBD_REP_INFO,
					 NBD_REP_META_CONTEXT,
					 NBD_REP_SERVER,
					 NBD_REP_ERR_UNSUP,
					 NBD_REP_ERR_UNSUP,
					 NBD_REP_ERR_POLICY,
					 NBD_REP_ERR_UNKNOWN,
					 NBD_REP_ERR(99),
					 NBD_REP_ERR_TLS_REQD,
					 0,
					 77};
	static const uint32_t opts[] = {NBD_OPT_STRUCTURED_REPLY,
					NBD_OPT_SET_META_CONTEXT,
					NBD_OPT_GO,
					NBD_OPT_EXPORT_NAME,
					0,
					12345};
	static const uint32_t lens[] = {0,
					0,
					0,
					1,
					2,
					3,
					4,
					11,
					12,
					12,
					13,
					14,
					14,
					15,
					19,
					100,
					NBD_HS_MAX_REPLY,
					NBD_HS_MAX_REPLY + 1};
	if (step == 0 && need == NBD_HS_GREETING_SIZE) {
		be64_write(b, rnd() % 8 ? NBD_MAGIC : rnd());
		uint32_t m = rnd() % 10;
		be64_write(b + 8, m < 8 ? NBD_IHAVEOPT : m == 8 ? OLDSTYLE_MAGIC : rnd());
		be16_write(b + 16, (uint16_t)(rnd() % 4 ? rnd() % 4 : rnd()));
		return;
	}
	if (need == 20) {
		be64_write(b, rnd() % 10 ? NBD_REP_MAGIC : rnd());
		be32_write(b + 8, rnd() % 8 ? h->cur_opt : pick(opts, ARRAY_SIZE(opts)));
		be32_write(b + 12, pick(types, ARRAY_SIZE(types)));
		be32_write(b + 16, rnd() % 8 ? pick(lens, ARRAY_SIZE(lens)) : rnd() % 64);
		return;
	}
	/* Reply data (or an EXPORT_NAME answer): a plausible INFO type or
	 * meta context first. */
	if (need >= 2)
		be16_write(b, (uint16_t)(rnd() % 5 ? rnd() % 4 : rnd()));
	if (need == 19 && rnd() % 2)
		memcpy(b + 4, NBD_META_BASE_ALLOCATION, 15);
}

/* What the client sends is always whole options (after 4 bytes of client
 * flags in answer to the greeting). */
static bool well_formed_output(const struct nbd_hs *h, unsigned step)
{
	const uint8_t *p = h->out;
	size_t len = h->out_len;
	if (len == 0)
		return true;
	if (step == 0) {
		if (len < 4 || be32_read(p) & ~3u)
			return false;
		p += 4, len -= 4;
	}
	if (len < 16 || be64_read(p) != NBD_IHAVEOPT || be32_read(p + 12) != len - 16)
		return false;
	uint32_t opt = be32_read(p + 8);
	return opt == NBD_OPT_EXPORT_NAME || opt == NBD_OPT_STRUCTURED_REPLY ||
	       opt == NBD_OPT_SET_META_CONTEXT || opt == NBD_OPT_GO;
}

/* nbds://: STARTTLS is the first option; its ACK hands over to the
 * driver's TLS handshake (NBD_HS_TLS), after which haggling starts with
 * STRUCTURED_REPLY as usual. */
TEST(starttls)
{
	nbd_hs_init(&hs, "disk0", true);
	hs.want_tls = true;
	srv.len = 0;
	s_greeting(&srv, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
	CHECK_EQ(nbd_hs_feed(&hs, srv.b, srv.len), NBD_HS_MORE);
	want.len = 0;
	put32(&want, NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
	c_option(&want, NBD_OPT_STARTTLS, NULL);
	CHECK(hs.out_len == want.len && !memcmp(hs.out, want.b, want.len));
	CHECK_EQ(hs.need, 20);
	srv.len = 0;
	s_ack(&srv, NBD_OPT_STARTTLS);
	CHECK_EQ(nbd_hs_feed(&hs, srv.b, srv.len), NBD_HS_TLS);
	CHECK_EQ(hs.out_len, 0);
	CHECK_EQ(hs.need, 0);
	CHECK(hs.tls);
	/* Fed before the TLS step is done: an error, not a hang. */
	struct nbd_hs copy = hs;
	CHECK_EQ(nbd_hs_feed(&copy, srv.b, 0), NBD_HS_ERROR);

	CHECK_EQ(nbd_hs_tls_done(&hs), NBD_HS_MORE);
	want.len = 0;
	c_structured(&want);
	CHECK(hs.out_len == want.len && !memcmp(hs.out, want.b, want.len));
	srv.len = 0;
	s_ack(&srv, NBD_OPT_STRUCTURED_REPLY);
	s_ack(&srv, NBD_OPT_SET_META_CONTEXT);
	s_info_export(&srv, 4096, TFLAGS);
	s_ack(&srv, NBD_OPT_GO);
	drive(&hs, &srv, &run);
	CHECK_EQ(run.st, NBD_HS_DONE);
	CHECK_EQ(hs.size, 4096);
	/* nbd_hs_tls_done outside the TLS step is refused. */
	CHECK_EQ(nbd_hs_tls_done(&hs), NBD_HS_ERROR);
}

/* A server that will not do TLS, or cannot, ends an nbds:// handshake: no
 * falling back to plaintext. A plaintext client told TLS_REQD is told to
 * use nbds://. */
TEST(starttls_refused)
{
	static const uint32_t errs[] = {NBD_REP_ERR_UNSUP, NBD_REP_ERR_POLICY, NBD_REP_ERR_INVALID};
	for (size_t i = 0; i < ARRAY_SIZE(errs); i++) {
		fixed_start("e");
		hs.want_tls = true;
		s_err(&srv, NBD_OPT_STARTTLS, errs[i], "no TLS here");
		expect_error("does not do TLS", "STARTTLS refused");
	}
	nbd_hs_init(&hs, "e", true);
	hs.want_tls = true;
	srv.len = 0;
	s_greeting(&srv, NBD_FLAG_NO_ZEROES);
	expect_error("cannot do TLS", "not fixed newstyle");

	fixed_start("e");
	hs.want_tls = true;
	s_reply(&srv, NBD_OPT_STARTTLS, NBD_REP_ACK, "x", 1);
	expect_error("STARTTLS", "an ACK with data");

	at_go("e");
	s_err(&srv, NBD_OPT_GO, NBD_REP_ERR_TLS_REQD, NULL);
	expect_error("nbds://", "TLS_REQD to a plaintext client");
}

TEST(robustness)
{
	static uint8_t buf[NBD_HS_MAX_REPLY + 64];
	enum { RUNS = 20000, MAX_STEPS = 64 };
	unsigned done = 0, errors = 0, forced = 0, deepest = 0, bad = 0;
	for (unsigned i = 0; i < RUNS && bad < 5; i++) {
		rng_state = 0x9e3779b9u ^ (i * 2654435761u);
		if (!rng_state)
			rng_state = 1;
		char name[24];
		size_t nlen = rnd() % sizeof(name);
		for (size_t k = 0; k < nlen; k++)
			name[k] = (char)('a' + rnd() % 26);
		name[nlen] = '\0';
		nbd_hs_init(&hs, name, rnd() % 2);
		enum nbd_hs_status st = NBD_HS_MORE;
		unsigned step = 0;
		for (; st == NBD_HS_MORE && step < MAX_STEPS + 3; step++) {
			size_t need = hs.need;
			if (need == 0 || need > NBD_HS_MAX_REPLY) {
				fprintf(stderr, "run %u step %u: asks for %zu bytes\n", i, step,
					need);
				bad++;
				break;
			}
			if (step < MAX_STEPS)
				gen(buf, need, step, &hs);
			else
				memset(buf, 0, need); /* a server gone silly: must end */
			st = nbd_hs_feed(&hs, buf, need);
			if (hs.out_len > sizeof(hs.out) || !well_formed_output(&hs, step)) {
				fprintf(stderr, "run %u step %u: bad output (%zu bytes)\n", i, step,
					hs.out_len);
				bad++;
				break;
			}
		}
		if (st == NBD_HS_MORE) {
			if (step >= MAX_STEPS + 3)
				fprintf(stderr, "run %u: no end after %u steps\n", i, step);
			bad++;
			continue;
		}
		if (step > MAX_STEPS)
			forced++;
		if (step > deepest)
			deepest = step;
		if (hs.need != 0 || hs.out_len != 0) {
			fprintf(stderr, "run %u: ended with need %zu out %zu\n", i, hs.need,
				hs.out_len);
			bad++;
		}
		if (st == NBD_HS_ERROR) {
			errors++;
			if (!hs.error[0] || strnlen(hs.error, sizeof(hs.error)) == sizeof(hs.error))
				bad++;
		} else {
			done++;
			if (!hs.have_export)
				bad++;
		}
	}
	CHECK_EQ(bad, 0);
	/* The generator reaches both ends, and deep into the handshake. */
	CHECK(done > 100);
	CHECK(errors > 100);
	CHECK(deepest >= 6);
	printf("robustness: %u done, %u errors, %u forced to end, deepest %u steps\n", done, errors,
	       forced, deepest);
}

/* A storage's fence (NBD_OPT_DST_FENCE) goes after SET_META_CONTEXT and
 * before GO: a dst export acks it, another server says it is unsupported
 * (the client goes on unfenced), and a refusal by policy (a newer
 * connection of the storage holds the export) fails the handshake. */
static void fence_start(void)
{
	nbd_hs_init(&hs, "disk0", true);
	hs.want_fence = true;
	for (int i = 0; i < 32; i++)
		hs.fence[i] = (uint8_t)(0xa0 + i);
	srv.len = 0;
	s_greeting(&srv, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
	s_ack(&srv, NBD_OPT_STRUCTURED_REPLY);
	s_meta(&srv, 7, NBD_META_BASE_ALLOCATION);
	s_ack(&srv, NBD_OPT_SET_META_CONTEXT);
}

static void fence_want(bool go)
{
	want.len = 0;
	put32(&want, NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
	c_structured(&want);
	c_set_meta(&want, "disk0");
	struct bytes f = {.len = 0};
	put(&f, hs.fence, 32);
	c_option(&want, NBD_OPT_DST_FENCE, &f);
	if (go)
		c_go(&want, "disk0");
}

TEST(fence)
{
	fence_start();
	s_ack(&srv, NBD_OPT_DST_FENCE);
	s_info_export(&srv, 1ull << 20, TFLAGS);
	s_ack(&srv, NBD_OPT_GO);
	drive(&hs, &srv, &run);
	CHECK_EQ(run.st, NBD_HS_DONE);
	CHECK(hs.fenced);
	fence_want(true);
	CHECK(same_bytes(&run.sent, &want, "fence acked"));

	fence_start();
	s_err(&srv, NBD_OPT_DST_FENCE, NBD_REP_ERR_UNSUP, "option 1146311750 is not supported");
	s_info_export(&srv, 1ull << 20, TFLAGS);
	s_ack(&srv, NBD_OPT_GO);
	drive(&hs, &srv, &run);
	CHECK_EQ(run.st, NBD_HS_DONE);
	CHECK(!hs.fenced);
	fence_want(true);
	CHECK(same_bytes(&run.sent, &want, "fence unsupported"));

	fence_start();
	s_err(&srv, NBD_OPT_DST_FENCE, NBD_REP_ERR_POLICY, "storage x has a newer connection");
	drive(&hs, &srv, &run);
	CHECK_EQ(run.st, NBD_HS_ERROR);
	CHECK(has(hs.error, "newer connection"));
	fence_want(false);
	CHECK(same_bytes(&run.sent, &want, "fence refused"));

	/* Not asked for: no fence option at all (the happy path's bytes). */
	nbd_hs_init(&hs, "disk0", true);
	CHECK(!hs.want_fence);
}

UNIT_MAIN(T(fence), T(happy_path), T(happy_path_steps), T(meta_other_contexts), T(meta_csum),
	  T(structured_refused), T(meta_refused), T(go_unsupported_no_zeroes),
	  T(go_unsupported_zeroes), T(go_unsupported_after_meta), T(not_fixed_newstyle),
	  T(bad_greetings), T(bad_reply_headers), T(go_errors), T(go_error_long_export_name),
	  T(go_bad_info), T(other_bad_replies), T(wrong_feed_size), T(long_export_name),
	  T(starttls), T(starttls_refused), T(robustness))
