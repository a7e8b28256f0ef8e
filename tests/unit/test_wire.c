/* test_wire.c - NBD option parsers and request validation (nbd/wire.h). */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "common/util.h"
#include "nbd/proto.h"
#include "nbd/wire.h"
#include "unit.h"

/* ---- a tiny builder for option payloads ---- */

struct buf {
	uint8_t b[8192];
	uint32_t len;
};

static void put16(struct buf *b, uint16_t v)
{
	be16_write(b->b + b->len, v);
	b->len += 2;
}

static void put32(struct buf *b, uint32_t v)
{
	be32_write(b->b + b->len, v);
	b->len += 4;
}

static void putbytes(struct buf *b, const void *p, uint32_t n)
{
	memcpy(b->b + b->len, p, n);
	b->len += n;
}

static void putstr(struct buf *b, const char *s)
{
	put32(b, (uint32_t)strlen(s));
	putbytes(b, s, (uint32_t)strlen(s));
}

/* GO/INFO payload: name, then n_info info requests. */
static struct buf go(const char *name, int n_info, const uint16_t *infos)
{
	struct buf b = {.len = 0};
	putstr(&b, name);
	put16(&b, (uint16_t)n_info);
	for (int i = 0; i < n_info; i++)
		put16(&b, infos[i]);
	return b;
}

/* LIST/SET_META_CONTEXT payload: export name, then the queries. */
static struct buf meta(const char *name, int n, const char *const *queries)
{
	struct buf b = {.len = 0};
	putstr(&b, name);
	put32(&b, (uint32_t)n);
	for (int i = 0; i < n; i++)
		putstr(&b, queries[i]);
	return b;
}

/* ---- NBD_OPT_GO / NBD_OPT_INFO ---- */

TEST(go_good)
{
	struct nbd_go_req r;
	struct buf b = go("disk0", 0, NULL);
	CHECK_EQ(nbd_parse_go(b.b, b.len, &r), 0);
	CHECK_EQ(r.name_len, 5);
	CHECK(r.name && memcmp(r.name, "disk0", 5) == 0);
	CHECK(!r.want_name && !r.want_desc && !r.want_block_size);

	uint16_t infos[] = {NBD_INFO_BLOCK_SIZE, NBD_INFO_NAME, NBD_INFO_EXPORT, 0x7777,
			    NBD_INFO_DESCRIPTION};
	b = go("", 5, infos);
	CHECK_EQ(nbd_parse_go(b.b, b.len, &r), 0);
	CHECK_EQ(r.name_len, 0);
	CHECK(r.want_name && r.want_desc && r.want_block_size);

	uint16_t bs[] = {NBD_INFO_BLOCK_SIZE};
	b = go("x", 1, bs);
	CHECK_EQ(nbd_parse_go(b.b, b.len, &r), 0);
	CHECK(!r.want_name && !r.want_desc && r.want_block_size);

	/* The longest name the spec allows. */
	char name[NBD_MAX_STRING + 1];
	memset(name, 'n', NBD_MAX_STRING);
	name[NBD_MAX_STRING] = '\0';
	b = go(name, 0, NULL);
	CHECK_EQ(nbd_parse_go(b.b, b.len, &r), 0);
	CHECK_EQ(r.name_len, NBD_MAX_STRING);
}

TEST(go_malformed)
{
	struct nbd_go_req r;
	/* Shorter than the fixed fields. */
	for (uint32_t len = 0; len < 6; len++) {
		uint8_t z[6] = {0};
		CHECK_EQ(nbd_parse_go(z, len, &r), NBD_REP_ERR_INVALID);
	}
	/* Truncated anywhere inside a good payload. */
	uint16_t infos[] = {NBD_INFO_NAME, NBD_INFO_BLOCK_SIZE};
	struct buf b = go("disk0", 2, infos);
	for (uint32_t len = 0; len < b.len; len++)
		CHECK_EQ(nbd_parse_go(b.b, len, &r), NBD_REP_ERR_INVALID);
	/* Trailing bytes. */
	b = go("disk0", 0, NULL);
	b.b[b.len++] = 0;
	CHECK_EQ(nbd_parse_go(b.b, b.len, &r), NBD_REP_ERR_INVALID);

	/* Name length larger than the payload, and near UINT32_MAX (no wrap). */
	uint32_t lens[] = {7, 100, NBD_MAX_STRING + 1, 0x7fffffff, 0xfffffffa, 0xffffffff};
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		b = go("abcdef", 0, NULL);
		be32_write(b.b, lens[i]);
		CHECK_EQ(nbd_parse_go(b.b, b.len, &r), NBD_REP_ERR_INVALID);
	}
	/* A name longer than the spec's 4096, even if all there. */
	char big[NBD_MAX_STRING + 2];
	memset(big, 'n', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	b = go(big, 0, NULL);
	CHECK_EQ(nbd_parse_go(b.b, b.len, &r), NBD_REP_ERR_INVALID);

	/* Info count that does not match what follows: odd byte, too few, too many. */
	b = go("d", 1, infos);
	b.b[b.len++] = 0;
	CHECK_EQ(nbd_parse_go(b.b, b.len, &r), NBD_REP_ERR_INVALID);
	b = go("d", 2, infos);
	be16_write(b.b + 4 + 1, 3);
	CHECK_EQ(nbd_parse_go(b.b, b.len, &r), NBD_REP_ERR_INVALID);
	b = go("d", 2, infos);
	be16_write(b.b + 4 + 1, 1);
	CHECK_EQ(nbd_parse_go(b.b, b.len, &r), NBD_REP_ERR_INVALID);
	b = go("d", 0, NULL);
	be16_write(b.b + 4 + 1, 0xffff);
	CHECK_EQ(nbd_parse_go(b.b, b.len, &r), NBD_REP_ERR_INVALID);

	/* NUL inside the name. */
	b = go("ab", 0, NULL);
	b.b[5] = '\0';
	CHECK_EQ(nbd_parse_go(b.b, b.len, &r), NBD_REP_ERR_INVALID);
	b = go("a", 0, NULL);
	b.b[4] = '\0';
	CHECK_EQ(nbd_parse_go(b.b, b.len, &r), NBD_REP_ERR_INVALID);
}

/* ---- NBD_OPT_LIST_META_CONTEXT / NBD_OPT_SET_META_CONTEXT ---- */

TEST(meta_good)
{
	struct nbd_meta_req r;
	/* LIST with no queries: every context, i.e. base:allocation. */
	struct buf b = meta("disk0", 0, NULL);
	CHECK_EQ(nbd_parse_meta(b.b, b.len, true, &r), 0);
	CHECK_EQ(r.n_queries, 0);
	CHECK(r.selects_base_alloc);
	CHECK_EQ(r.name_len, 5);
	CHECK(memcmp(r.name, "disk0", 5) == 0);
	/* SET with no queries selects nothing. */
	CHECK_EQ(nbd_parse_meta(b.b, b.len, false, &r), 0);
	CHECK(!r.selects_base_alloc);

	const char *base[] = {"base:allocation"};
	b = meta("", 1, base);
	CHECK_EQ(nbd_parse_meta(b.b, b.len, false, &r), 0);
	CHECK_EQ(r.n_queries, 1);
	CHECK(r.selects_base_alloc);
	CHECK_EQ(nbd_parse_meta(b.b, b.len, true, &r), 0);
	CHECK(r.selects_base_alloc);

	/* "base:" is a LIST wildcard only. */
	const char *ns[] = {"base:"};
	b = meta("", 1, ns);
	CHECK_EQ(nbd_parse_meta(b.b, b.len, true, &r), 0);
	CHECK(r.selects_base_alloc);
	CHECK_EQ(nbd_parse_meta(b.b, b.len, false, &r), 0);
	CHECK(!r.selects_base_alloc);

	/* Unknown queries are not errors; they just select nothing. */
	const char *unknown[] = {"qemu:dirty-bitmap:x", "base:allocatio", "base:allocation2",
				 "BASE:ALLOCATION", ""};
	b = meta("", 5, unknown);
	CHECK_EQ(nbd_parse_meta(b.b, b.len, false, &r), 0);
	CHECK_EQ(r.n_queries, 5);
	CHECK(!r.selects_base_alloc);
	CHECK_EQ(nbd_parse_meta(b.b, b.len, true, &r), 0);
	CHECK(!r.selects_base_alloc);

	/* Mixed: one known among unknown ones. */
	const char *mixed[] = {"x:y", "base:allocation", "z"};
	b = meta("e", 3, mixed);
	CHECK_EQ(nbd_parse_meta(b.b, b.len, false, &r), 0);
	CHECK(r.selects_base_alloc);
	CHECK(!r.selects_csum);
}

TEST(meta_csum)
{
	struct nbd_meta_req r;
	/* LIST with no queries: both contexts. */
	struct buf b = meta("disk0", 0, NULL);
	CHECK_EQ(nbd_parse_meta(b.b, b.len, true, &r), 0);
	CHECK(r.selects_base_alloc && r.selects_csum);
	CHECK_EQ(nbd_parse_meta(b.b, b.len, false, &r), 0);
	CHECK(!r.selects_base_alloc && !r.selects_csum);

	/* The exact name selects it alone, for LIST and SET. */
	const char *one[] = {"dst:csum-4k"};
	b = meta("", 1, one);
	for (int list = 0; list < 2; list++) {
		CHECK_EQ(nbd_parse_meta(b.b, b.len, list, &r), 0);
		CHECK(r.selects_csum);
		CHECK(!r.selects_base_alloc);
	}
	/* "dst:" lists it (LIST only); "base:" does not. */
	const char *ns[] = {"dst:"};
	b = meta("", 1, ns);
	CHECK_EQ(nbd_parse_meta(b.b, b.len, true, &r), 0);
	CHECK(r.selects_csum && !r.selects_base_alloc);
	CHECK_EQ(nbd_parse_meta(b.b, b.len, false, &r), 0);
	CHECK(!r.selects_csum);
	const char *bns[] = {"base:"};
	b = meta("", 1, bns);
	CHECK_EQ(nbd_parse_meta(b.b, b.len, true, &r), 0);
	CHECK(!r.selects_csum && r.selects_base_alloc);

	/* Both by name. */
	const char *both[] = {"base:allocation", "x:y", "dst:csum-4k"};
	b = meta("e", 3, both);
	CHECK_EQ(nbd_parse_meta(b.b, b.len, false, &r), 0);
	CHECK(r.selects_csum && r.selects_base_alloc);

	/* Near misses select nothing. */
	const char *near[] = {"dst:csum-4", "dst:csum-4k ", "DST:CSUM-4K", "dst:csum-8k", "dst"};
	b = meta("", 5, near);
	for (int list = 0; list < 2; list++) {
		CHECK_EQ(nbd_parse_meta(b.b, b.len, list, &r), 0);
		CHECK(!r.selects_csum && !r.selects_base_alloc);
	}
}

TEST(meta_malformed)
{
	struct nbd_meta_req r;
	for (uint32_t len = 0; len < 8; len++) {
		uint8_t z[8] = {0};
		CHECK_EQ(nbd_parse_meta(z, len, true, &r), NBD_REP_ERR_INVALID);
	}
	/* Truncated anywhere. */
	const char *q[] = {"base:allocation", "x:y"};
	struct buf b = meta("disk0", 2, q);
	for (uint32_t len = 0; len < b.len; len++) {
		CHECK_EQ(nbd_parse_meta(b.b, len, true, &r), NBD_REP_ERR_INVALID);
		CHECK_EQ(nbd_parse_meta(b.b, len, false, &r), NBD_REP_ERR_INVALID);
	}
	/* Trailing bytes after the last query. */
	b = meta("disk0", 2, q);
	b.b[b.len++] = 'x';
	CHECK_EQ(nbd_parse_meta(b.b, b.len, false, &r), NBD_REP_ERR_INVALID);
	b = meta("disk0", 0, NULL);
	put32(&b, 0);
	CHECK_EQ(nbd_parse_meta(b.b, b.len, true, &r), NBD_REP_ERR_INVALID);

	/* Export name length overflow. */
	uint32_t bad[] = {100, NBD_MAX_STRING + 1, 0xfffffff8, 0xffffffff};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		b = meta("disk0", 0, NULL);
		be32_write(b.b, bad[i]);
		CHECK_EQ(nbd_parse_meta(b.b, b.len, true, &r), NBD_REP_ERR_INVALID);
	}
	/* Query count larger than what follows (and huge). */
	uint32_t counts[] = {3, 1000, 0x40000000, 0xffffffff};
	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		b = meta("", 2, q);
		be32_write(b.b + 4, counts[i]);
		CHECK_EQ(nbd_parse_meta(b.b, b.len, false, &r), NBD_REP_ERR_INVALID);
	}
	/* Query length overflow: past the end, past 4096, near UINT32_MAX. */
	uint32_t qlens[] = {16, 1000, NBD_MAX_STRING + 1, 0xfffffff0, 0xffffffff};
	for (size_t i = 0; i < sizeof(qlens) / sizeof(qlens[0]); i++) {
		const char *one[] = {"base:allocation"};
		b = meta("", 1, one);
		be32_write(b.b + 8, qlens[i]);
		CHECK_EQ(nbd_parse_meta(b.b, b.len, false, &r), NBD_REP_ERR_INVALID);
	}
	/* A query of 4097 bytes that is all there. */
	char big[NBD_MAX_STRING + 2];
	memset(big, 'q', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	const char *bq[] = {big};
	b = meta("", 1, bq);
	CHECK_EQ(nbd_parse_meta(b.b, b.len, false, &r), NBD_REP_ERR_INVALID);
}

/* ---- requests ---- */

static const struct nbd_conn_caps caps_full = {
    .size = 8ull << 30,
    .min_block = 1,
    .readonly = false,
    .structured = true,
    .base_alloc = true,
    .can_trim = true,
    .can_zero = true,
    .can_fast_zero = true,
    .can_cache = true,
};

static struct nbd_request req(uint16_t type, uint16_t flags, uint64_t off, uint32_t len)
{
	struct nbd_request r = {.magic = NBD_REQUEST_MAGIC,
				.flags = flags,
				.type = type,
				.cookie = 0x1234,
				.offset = off,
				.length = len};
	return r;
}

static uint32_t v(const struct nbd_conn_caps *c, uint16_t type, uint16_t flags, uint64_t off,
		  uint32_t len)
{
	struct nbd_request r = req(type, flags, off, len);
	return nbd_validate_request(&r, c);
}

TEST(decode_request)
{
	uint8_t b[NBD_REQUEST_SIZE];
	be32_write(b, NBD_REQUEST_MAGIC);
	be16_write(b + 4, NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_NO_HOLE);
	be16_write(b + 6, NBD_CMD_WRITE_ZEROES);
	be64_write(b + 8, 0x0102030405060708ull);
	be64_write(b + 16, 0xfffffffffffff000ull);
	be32_write(b + 24, 0x80000000u);
	struct nbd_request r;
	nbd_decode_request(b, &r);
	CHECK_EQ(r.magic, NBD_REQUEST_MAGIC);
	CHECK_EQ(r.flags, NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_NO_HOLE);
	CHECK_EQ(r.type, NBD_CMD_WRITE_ZEROES);
	CHECK(r.cookie == 0x0102030405060708ull);
	CHECK(r.offset == 0xfffffffffffff000ull);
	CHECK_EQ(r.length, 0x80000000u);
	CHECK(nbd_request_has_payload(&(struct nbd_request){.type = NBD_CMD_WRITE}));
	CHECK(!nbd_request_has_payload(&(struct nbd_request){.type = NBD_CMD_READ}));
	CHECK(!nbd_request_has_payload(&(struct nbd_request){.type = NBD_CMD_WRITE_ZEROES}));
}

TEST(valid_requests)
{
	const struct nbd_conn_caps *c = &caps_full;
	uint64_t end = c->size;
	CHECK_EQ(v(c, NBD_CMD_READ, 0, 0, 4096), 0);
	CHECK_EQ(v(c, NBD_CMD_READ, 0, 1, 1), 0);
	CHECK_EQ(v(c, NBD_CMD_READ, 0, end - 512, 512), 0); /* up to the last byte */
	CHECK_EQ(v(c, NBD_CMD_READ, NBD_CMD_FLAG_DF, 0, 4096), 0);
	CHECK_EQ(v(c, NBD_CMD_READ, 0, 0, NBD_MAX_PAYLOAD), 0);
	CHECK_EQ(v(c, NBD_CMD_READ, 0, 0, NBD_MAX_BLOCK), 0); /* served in pieces */
	CHECK_EQ(v(c, NBD_CMD_WRITE, 0, 0, 4096), 0);
	CHECK_EQ(v(c, NBD_CMD_WRITE, NBD_CMD_FLAG_FUA, end - 1, 1), 0);
	CHECK_EQ(v(c, NBD_CMD_WRITE, 0, 0, NBD_MAX_PAYLOAD), 0);
	CHECK_EQ(v(c, NBD_CMD_WRITE, 0, 0, NBD_MAX_PAYLOAD + 1), 0);
	CHECK_EQ(v(c, NBD_CMD_WRITE, 0, 0, NBD_MAX_BLOCK), 0);
	CHECK_EQ(v(c, NBD_CMD_FLUSH, 0, 0, 0), 0);
	CHECK_EQ(v(c, NBD_CMD_TRIM, 0, 0, 1u << 31), 0); /* no payload: no size limit */
	CHECK_EQ(v(c, NBD_CMD_TRIM, NBD_CMD_FLAG_FUA, 4096, 4096), 0);
	CHECK_EQ(v(c, NBD_CMD_WRITE_ZEROES, 0, 0, 0xffffffffu), 0);
	CHECK_EQ(v(c, NBD_CMD_WRITE_ZEROES, NBD_CMD_FLAG_NO_HOLE | NBD_CMD_FLAG_FUA, 0, 4096), 0);
	CHECK_EQ(v(c, NBD_CMD_WRITE_ZEROES, NBD_CMD_FLAG_FAST_ZERO, 0, 4096), 0);
	CHECK_EQ(v(c, NBD_CMD_CACHE, 0, 0, 1u << 30), 0);
	CHECK_EQ(v(c, NBD_CMD_BLOCK_STATUS, 0, 0, 1u << 30), 0);
	CHECK_EQ(v(c, NBD_CMD_BLOCK_STATUS, NBD_CMD_FLAG_REQ_ONE, 0, 4096), 0);
	CHECK_EQ(v(c, NBD_CMD_DISC, 0, 0, 0), 0);
	/* DISC carries no range: whatever is in offset/length is ignored. */
	CHECK_EQ(v(c, NBD_CMD_DISC, 0, 123, 456), 0);
}

TEST(flags_refused)
{
	const struct nbd_conn_caps *c = &caps_full;
	/* Flags that belong to another command. */
	CHECK_EQ(v(c, NBD_CMD_READ, NBD_CMD_FLAG_NO_HOLE, 0, 512), NBD_EINVAL);
	CHECK_EQ(v(c, NBD_CMD_READ, NBD_CMD_FLAG_REQ_ONE, 0, 512), NBD_EINVAL);
	CHECK_EQ(v(c, NBD_CMD_READ, NBD_CMD_FLAG_FAST_ZERO, 0, 512), NBD_EINVAL);
	CHECK_EQ(v(c, NBD_CMD_WRITE, NBD_CMD_FLAG_DF, 0, 512), NBD_EINVAL);
	CHECK_EQ(v(c, NBD_CMD_WRITE, NBD_CMD_FLAG_NO_HOLE, 0, 512), NBD_EINVAL);
	CHECK_EQ(v(c, NBD_CMD_TRIM, NBD_CMD_FLAG_NO_HOLE, 0, 512), NBD_EINVAL);
	CHECK_EQ(v(c, NBD_CMD_TRIM, NBD_CMD_FLAG_FAST_ZERO, 0, 512), NBD_EINVAL);
	CHECK_EQ(v(c, NBD_CMD_WRITE_ZEROES, NBD_CMD_FLAG_DF, 0, 512), NBD_EINVAL);
	CHECK_EQ(v(c, NBD_CMD_WRITE_ZEROES, NBD_CMD_FLAG_REQ_ONE, 0, 512), NBD_EINVAL);
	CHECK_EQ(v(c, NBD_CMD_BLOCK_STATUS, NBD_CMD_FLAG_DF, 0, 512), NBD_EINVAL);
	CHECK_EQ(v(c, NBD_CMD_FLUSH, NBD_CMD_FLAG_NO_HOLE, 0, 0), NBD_EINVAL);
	CHECK_EQ(v(c, NBD_CMD_CACHE, NBD_CMD_FLAG_DF, 0, 512), NBD_EINVAL);
	CHECK_EQ(v(c, NBD_CMD_DISC, NBD_CMD_FLAG_REQ_ONE, 0, 0), NBD_EINVAL);
	/* Unknown flag bits on every command. */
	for (uint16_t t = NBD_CMD_READ; t <= NBD_CMD_BLOCK_STATUS; t++) {
		CHECK_EQ(v(c, t, 1u << 5, 0, 512), NBD_EINVAL);
		CHECK_EQ(v(c, t, 0x8000, 0, 512), NBD_EINVAL);
	}
	/* DF needs structured replies; FAST_ZERO needs SEND_FAST_ZERO. */
	struct nbd_conn_caps simple = caps_full;
	simple.structured = false;
	simple.base_alloc = false;
	CHECK_EQ(v(&simple, NBD_CMD_READ, NBD_CMD_FLAG_DF, 0, 512), NBD_EINVAL);
	CHECK_EQ(v(&simple, NBD_CMD_READ, 0, 0, 512), 0);
	struct nbd_conn_caps nofast = caps_full;
	nofast.can_fast_zero = false;
	CHECK_EQ(v(&nofast, NBD_CMD_WRITE_ZEROES, NBD_CMD_FLAG_FAST_ZERO, 0, 512), NBD_EINVAL);
	CHECK_EQ(v(&nofast, NBD_CMD_WRITE_ZEROES, NBD_CMD_FLAG_NO_HOLE, 0, 512), 0);
	/* FUA is accepted on every command (we always send SEND_FUA). */
	for (uint16_t t = NBD_CMD_READ; t <= NBD_CMD_BLOCK_STATUS; t++)
		CHECK_EQ(v(c, t, NBD_CMD_FLAG_FUA, 0, t == NBD_CMD_FLUSH ? 0 : 512), 0);
}

TEST(unknown_or_unnegotiated_commands)
{
	const struct nbd_conn_caps *c = &caps_full;
	CHECK_EQ(v(c, 8, 0, 0, 512), NBD_EINVAL); /* RESIZE: not offered */
	CHECK_EQ(v(c, 42, 0, 0, 512), NBD_EINVAL);
	CHECK_EQ(v(c, 0xffff, 0, 0, 512), NBD_EINVAL);
	struct nbd_conn_caps none = caps_full;
	none.can_trim = none.can_zero = none.can_fast_zero = none.can_cache = false;
	CHECK_EQ(v(&none, NBD_CMD_TRIM, 0, 0, 512), NBD_EINVAL);
	CHECK_EQ(v(&none, NBD_CMD_WRITE_ZEROES, 0, 0, 512), NBD_EINVAL);
	CHECK_EQ(v(&none, NBD_CMD_CACHE, 0, 0, 512), NBD_EINVAL);
	/* BLOCK_STATUS needs structured replies and base:allocation. */
	struct nbd_conn_caps bs = caps_full;
	bs.base_alloc = false;
	CHECK_EQ(v(&bs, NBD_CMD_BLOCK_STATUS, 0, 0, 512), NBD_EINVAL);
	bs.base_alloc = true;
	bs.structured = false;
	CHECK_EQ(v(&bs, NBD_CMD_BLOCK_STATUS, 0, 0, 512), NBD_EINVAL);
	bs.base_alloc = false;
	CHECK_EQ(v(&bs, NBD_CMD_BLOCK_STATUS, 0, 0, 512), NBD_EINVAL);
	/* ... or dst:csum-4k alone. */
	bs.structured = true;
	bs.csum = true;
	CHECK_EQ(v(&bs, NBD_CMD_BLOCK_STATUS, 0, 0, 512), 0);
	CHECK_EQ(v(&bs, NBD_CMD_BLOCK_STATUS, NBD_CMD_FLAG_REQ_ONE, 100, 5000), 0);
	bs.structured = false;
	CHECK_EQ(v(&bs, NBD_CMD_BLOCK_STATUS, 0, 0, 512), NBD_EINVAL);
}

TEST(lengths_and_ranges)
{
	const struct nbd_conn_caps *c = &caps_full;
	uint64_t end = c->size;
	/* Zero length on a ranged command. */
	CHECK_EQ(v(c, NBD_CMD_READ, 0, 0, 0), NBD_EINVAL);
	CHECK_EQ(v(c, NBD_CMD_WRITE, 0, 0, 0), NBD_EINVAL);
	CHECK_EQ(v(c, NBD_CMD_TRIM, 0, 0, 0), NBD_EINVAL);
	CHECK_EQ(v(c, NBD_CMD_WRITE_ZEROES, 0, 0, 0), NBD_EINVAL);
	CHECK_EQ(v(c, NBD_CMD_CACHE, 0, 0, 0), NBD_EINVAL);
	CHECK_EQ(v(c, NBD_CMD_BLOCK_STATUS, 0, 0, 0), NBD_EINVAL);
	/* Past the end: writes get ENOSPC, the rest EINVAL. */
	CHECK_EQ(v(c, NBD_CMD_WRITE, 0, end - 511, 512), NBD_ENOSPC);
	CHECK_EQ(v(c, NBD_CMD_WRITE, 0, end, 1), NBD_ENOSPC);
	CHECK_EQ(v(c, NBD_CMD_WRITE_ZEROES, 0, end - 4096, 8192), NBD_ENOSPC);
	CHECK_EQ(v(c, NBD_CMD_READ, 0, end - 511, 512), NBD_EINVAL);
	CHECK_EQ(v(c, NBD_CMD_READ, 0, end, 1), NBD_EINVAL);
	CHECK_EQ(v(c, NBD_CMD_READ, 0, end + 4096, 4096), NBD_EINVAL);
	CHECK_EQ(v(c, NBD_CMD_TRIM, 0, end, 4096), NBD_EINVAL);
	CHECK_EQ(v(c, NBD_CMD_CACHE, 0, end, 4096), NBD_EINVAL);
	CHECK_EQ(v(c, NBD_CMD_BLOCK_STATUS, 0, end, 4096), NBD_EINVAL);
	/* offset + length would wrap around 2^64: still out of range. */
	CHECK_EQ(v(c, NBD_CMD_READ, 0, UINT64_MAX, 1), NBD_EINVAL);
	CHECK_EQ(v(c, NBD_CMD_READ, 0, UINT64_MAX - 511, 1024), NBD_EINVAL);
	CHECK_EQ(v(c, NBD_CMD_WRITE, 0, UINT64_MAX - 511, 1024), NBD_ENOSPC);
	CHECK_EQ(v(c, NBD_CMD_TRIM, 0, UINT64_MAX - 4095, 8192), NBD_EINVAL);
	CHECK_EQ(v(c, NBD_CMD_WRITE_ZEROES, 0, UINT64_MAX, 0xffffffffu), NBD_ENOSPC);
	/* An export of the largest size still catches the wrap. */
	struct nbd_conn_caps huge = caps_full;
	huge.size = UINT64_MAX;
	CHECK_EQ(v(&huge, NBD_CMD_READ, 0, UINT64_MAX - 10, 10), 0);
	CHECK_EQ(v(&huge, NBD_CMD_READ, 0, UINT64_MAX - 10, 11), NBD_EINVAL); /* ends at 2^64 */
	CHECK_EQ(v(&huge, NBD_CMD_READ, 0, UINT64_MAX, 1), NBD_EINVAL);
	/* Over the maximum block size: the spec's EINVAL, before the range
	 * check. */
	CHECK_EQ(v(c, NBD_CMD_READ, 0, 0, NBD_MAX_BLOCK + 1), NBD_EINVAL);
	CHECK_EQ(v(c, NBD_CMD_WRITE, 0, 0, NBD_MAX_BLOCK + 1), NBD_EINVAL);
	CHECK_EQ(v(c, NBD_CMD_READ, 0, 0, 0xffffffffu), NBD_EINVAL);
	CHECK_EQ(v(c, NBD_CMD_WRITE, 0, end, 0xffffffffu), NBD_EINVAL);
	/* FLUSH takes no range. */
	CHECK_EQ(v(c, NBD_CMD_FLUSH, 0, 4096, 0), NBD_EINVAL);
	CHECK_EQ(v(c, NBD_CMD_FLUSH, 0, 0, 4096), NBD_EINVAL);
	CHECK_EQ(v(c, NBD_CMD_FLUSH, 0, end + 1, 1), NBD_EINVAL);
	/* An empty export: nothing is in range. */
	struct nbd_conn_caps empty = caps_full;
	empty.size = 0;
	CHECK_EQ(v(&empty, NBD_CMD_READ, 0, 0, 1), NBD_EINVAL);
	CHECK_EQ(v(&empty, NBD_CMD_WRITE, 0, 0, 1), NBD_ENOSPC);
	CHECK_EQ(v(&empty, NBD_CMD_FLUSH, 0, 0, 0), 0);
}

TEST(readonly)
{
	struct nbd_conn_caps c = caps_full;
	c.readonly = true;
	CHECK_EQ(v(&c, NBD_CMD_WRITE, 0, 0, 4096), NBD_EPERM);
	CHECK_EQ(v(&c, NBD_CMD_WRITE, NBD_CMD_FLAG_FUA, 0, 4096), NBD_EPERM);
	CHECK_EQ(v(&c, NBD_CMD_TRIM, 0, 0, 4096), NBD_EPERM);
	CHECK_EQ(v(&c, NBD_CMD_WRITE_ZEROES, 0, 0, 4096), NBD_EPERM);
	/* EPERM before the range check: a read-only client never learns ENOSPC. */
	CHECK_EQ(v(&c, NBD_CMD_WRITE, 0, c.size, 4096), NBD_EPERM);
	/* Reads, flushes and the rest go on. */
	CHECK_EQ(v(&c, NBD_CMD_READ, 0, 0, 4096), 0);
	CHECK_EQ(v(&c, NBD_CMD_FLUSH, 0, 0, 0), 0);
	CHECK_EQ(v(&c, NBD_CMD_CACHE, 0, 0, 4096), 0);
	CHECK_EQ(v(&c, NBD_CMD_BLOCK_STATUS, 0, 0, 4096), 0);
	CHECK_EQ(v(&c, NBD_CMD_DISC, 0, 0, 0), 0);
	/* Bad flags are still EINVAL, and so is oversize. */
	CHECK_EQ(v(&c, NBD_CMD_WRITE, NBD_CMD_FLAG_DF, 0, 4096), NBD_EINVAL);
	CHECK_EQ(v(&c, NBD_CMD_WRITE, 0, 0, NBD_MAX_BLOCK + 1), NBD_EINVAL);
}

TEST(min_block_alignment)
{
	struct nbd_conn_caps c = caps_full;
	c.min_block = 512;
	CHECK_EQ(v(&c, NBD_CMD_READ, 0, 512, 1024), 0);
	CHECK_EQ(v(&c, NBD_CMD_READ, 0, 1, 512), NBD_EINVAL);
	CHECK_EQ(v(&c, NBD_CMD_READ, 0, 512, 511), NBD_EINVAL);
	CHECK_EQ(v(&c, NBD_CMD_WRITE, 0, 256, 512), NBD_EINVAL);
	CHECK_EQ(v(&c, NBD_CMD_WRITE, 0, 0, 513), NBD_EINVAL);
	CHECK_EQ(v(&c, NBD_CMD_TRIM, 0, 100, 512), NBD_EINVAL);
	CHECK_EQ(v(&c, NBD_CMD_WRITE_ZEROES, 0, 0, 100), NBD_EINVAL);
	CHECK_EQ(v(&c, NBD_CMD_BLOCK_STATUS, 0, 0, 100), NBD_EINVAL);
	CHECK_EQ(v(&c, NBD_CMD_FLUSH, 0, 0, 0), 0);
	/* Misaligned and out of range: alignment is reported first. */
	CHECK_EQ(v(&c, NBD_CMD_WRITE, 0, c.size + 1, 512), NBD_EINVAL);
	/* min_block 1 (or 0): anything goes. */
	c.min_block = 1;
	CHECK_EQ(v(&c, NBD_CMD_WRITE, 0, 3, 5), 0);
	c.min_block = 0;
	CHECK_EQ(v(&c, NBD_CMD_WRITE, 0, 3, 5), 0);
}

TEST(errno_mapping)
{
	CHECK_EQ(nbd_errno_to_wire(0), 0);
	CHECK_EQ(nbd_errno_to_wire(EPERM), NBD_EPERM);
	CHECK_EQ(nbd_errno_to_wire(EACCES), NBD_EPERM);
	CHECK_EQ(nbd_errno_to_wire(EROFS), NBD_EPERM);
	CHECK_EQ(nbd_errno_to_wire(EIO), NBD_EIO);
	CHECK_EQ(nbd_errno_to_wire(ENOMEM), NBD_ENOMEM);
	CHECK_EQ(nbd_errno_to_wire(EINVAL), NBD_EINVAL);
	CHECK_EQ(nbd_errno_to_wire(ENOSPC), NBD_ENOSPC);
	CHECK_EQ(nbd_errno_to_wire(EDQUOT), NBD_ENOSPC);
	CHECK_EQ(nbd_errno_to_wire(EFBIG), NBD_ENOSPC);
	CHECK_EQ(nbd_errno_to_wire(EOVERFLOW), NBD_EOVERFLOW);
	CHECK_EQ(nbd_errno_to_wire(ENOTSUP), NBD_ENOTSUP);
	CHECK_EQ(nbd_errno_to_wire(EOPNOTSUPP), NBD_ENOTSUP);
	CHECK_EQ(nbd_errno_to_wire(ESHUTDOWN), NBD_ESHUTDOWN);
	/* Everything else is an IO error. */
	CHECK_EQ(nbd_errno_to_wire(ENOENT), NBD_EIO);
	CHECK_EQ(nbd_errno_to_wire(EBADF), NBD_EIO);
	CHECK_EQ(nbd_errno_to_wire(ETIMEDOUT), NBD_EIO);
	CHECK_EQ(nbd_errno_to_wire(12345), NBD_EIO);
	/* The wire numbers are the spec's fixed values. */
	CHECK_EQ(NBD_EPERM, 1);
	CHECK_EQ(NBD_EIO, 5);
	CHECK_EQ(NBD_ENOMEM, 12);
	CHECK_EQ(NBD_EINVAL, 22);
	CHECK_EQ(NBD_ENOSPC, 28);
	CHECK_EQ(NBD_EOVERFLOW, 75);
	CHECK_EQ(NBD_ENOTSUP, 95);
	CHECK_EQ(NBD_ESHUTDOWN, 108);
}

TEST(names)
{
	CHECK_STR(nbd_cmd_name(NBD_CMD_READ), "READ");
	CHECK_STR(nbd_cmd_name(NBD_CMD_BLOCK_STATUS), "BLOCK_STATUS");
	CHECK_STR(nbd_cmd_name(8), "UNKNOWN");
	CHECK_STR(nbd_cmd_name(0xffff), "UNKNOWN");
	CHECK_STR(nbd_opt_name(NBD_OPT_GO), "GO");
	CHECK_STR(nbd_opt_name(NBD_OPT_SET_META_CONTEXT), "SET_META_CONTEXT");
	CHECK_STR(nbd_opt_name(NBD_OPT_EXTENDED_HEADERS), "EXTENDED_HEADERS");
	CHECK_STR(nbd_opt_name(12), "UNKNOWN");
	CHECK_STR(nbd_opt_name(0xffffffffu), "UNKNOWN");
}

UNIT_MAIN(T(go_good), T(go_malformed), T(meta_good), T(meta_csum), T(meta_malformed),
	  T(decode_request), T(valid_requests), T(flags_refused),
	  T(unknown_or_unnegotiated_commands), T(lengths_and_ranges), T(readonly),
	  T(min_block_alignment), T(errno_mapping), T(names))
