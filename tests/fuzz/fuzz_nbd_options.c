/* fuzz_nbd_options.c - the server's handshake option parsers: the payload of
 * NBD_OPT_GO / NBD_OPT_INFO (nbd_parse_go) and of NBD_OPT_LIST_META_CONTEXT /
 * NBD_OPT_SET_META_CONTEXT (nbd_parse_meta).
 *
 * Input: one byte choosing the option (0 GO, 1 LIST_META, 2 SET_META), then
 * the option's payload, copied to a buffer of exactly its size so that any
 * read past it is caught. */
#include "fuzz.h"
#include "nbd/proto.h"
#include "nbd/wire.h"

static bool inside(const uint8_t *buf, uint32_t len, const char *p, uint32_t n)
{
	const uint8_t *q = (const uint8_t *)p;
	return q >= buf && n <= len && q - buf <= (ptrdiff_t)(len - n);
}

FUZZ_TARGET(nbd_options)
{
	if (size < 1 || size - 1 > NBD_MAX_OPTION_LEN)
		return 0;
	int which = data[0] % 3;
	uint32_t len = (uint32_t)(size - 1);
	uint8_t *buf = malloc(len ? len : 1);
	memcpy(buf, data + 1, len);
	if (which == 0) {
		struct nbd_go_req go;
		uint32_t e = nbd_parse_go(buf, len, &go);
		if (e == 0) {
			FUZZ_ASSERT(go.name_len <= NBD_MAX_STRING);
			FUZZ_ASSERT(inside(buf, len, go.name, go.name_len));
			FUZZ_ASSERT(!memchr(go.name, '\0', go.name_len));
		} else {
			FUZZ_ASSERT(e & (1u << 31)); /* an NBD_REP_ERR_* */
		}
	} else {
		bool is_list = which == 1;
		struct nbd_meta_req m;
		uint32_t e = nbd_parse_meta(buf, len, is_list, &m);
		if (e == 0) {
			FUZZ_ASSERT(m.name_len <= NBD_MAX_STRING);
			FUZZ_ASSERT(inside(buf, len, m.name, m.name_len));
			/* Every query takes at least its 4-byte length. */
			FUZZ_ASSERT((uint64_t)m.n_queries * 4 + 8 + m.name_len <= len);
			if (is_list && m.n_queries == 0)
				FUZZ_ASSERT(m.selects_base_alloc);
			if (m.n_queries == 0 && !is_list)
				FUZZ_ASSERT(!m.selects_base_alloc);
		} else {
			FUZZ_ASSERT(e & (1u << 31));
		}
	}
	free(buf);
	return 0;
}
