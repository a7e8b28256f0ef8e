/* wire.h - pure parsers and validators for NBD messages.
 *
 * No sockets here: these take bytes and return decisions, so they are unit
 * tested and fuzzed directly. The server (server.c) does the IO.
 */
#ifndef DST_NBD_WIRE_H
#define DST_NBD_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* NBD_OPT_INFO / NBD_OPT_GO payload. */
struct nbd_go_req {
	const char *name; /* not NUL-terminated; name_len bytes */
	uint32_t name_len;
	bool want_name, want_desc, want_block_size;
};
/* Returns 0, or an NBD_REP_ERR_* code when the payload is malformed. */
uint32_t nbd_parse_go(const uint8_t *data, uint32_t len, struct nbd_go_req *out);

/* NBD_OPT_LIST/SET_META_CONTEXT payload: which of our contexts it selects.
 * There are two: base:allocation and dst:csum-4k. A query selects one by
 * its exact name; for LIST a namespace alone ("base:", "dst:") selects the
 * contexts in it and an empty query list selects everything. Unknown names
 * select nothing. Returns 0 or NBD_REP_ERR_*. */
struct nbd_meta_req {
	const char *name;
	uint32_t name_len;
	uint32_t n_queries;
	bool selects_base_alloc;
	bool selects_csum; /* dst:csum-4k */
};
uint32_t nbd_parse_meta(const uint8_t *data, uint32_t len, bool is_list, struct nbd_meta_req *out);

/* A decoded request header. */
struct nbd_request {
	uint32_t magic;
	uint16_t flags;
	uint16_t type;
	uint64_t cookie;
	uint64_t offset;
	uint32_t length;
};
void nbd_decode_request(const uint8_t *buf, struct nbd_request *r);

/* What the connection negotiated, for request validation. */
struct nbd_conn_caps {
	uint64_t size;
	uint32_t min_block;
	bool readonly;
	bool structured;
	bool base_alloc; /* base:allocation context selected */
	bool csum;	 /* dst:csum-4k context selected */
	bool can_trim, can_zero, can_fast_zero, can_cache;
};

/* Validate a request with a good magic. Returns 0 when it may be executed,
 * or the NBD error number to reply with. A WRITE's payload must be consumed
 * whatever this says (the caller does that). */
uint32_t nbd_validate_request(const struct nbd_request *r, const struct nbd_conn_caps *c);

/* Does this request carry a payload of r->length bytes after the header? */
static inline bool nbd_request_has_payload(const struct nbd_request *r)
{
	return r->type == 1 /* NBD_CMD_WRITE */;
}

const char *nbd_cmd_name(uint16_t type);
const char *nbd_opt_name(uint32_t opt);
/* "R: host:port" as DST's sysfs showed remote nodes (the URI when it is
 * not nbd:// or nbds://); malloc'd. */
char *nbd_uri_describe(const char *uri);

/* Map a host errno to an NBD error number. */
uint32_t nbd_errno_to_wire(int err);
/* And back: an NBD error number to a host errno (unknown ones: EIO). */
int nbd_wire_to_errno(uint32_t err);

#endif
