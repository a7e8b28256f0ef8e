/* fuzz_nbd_client_hs.c - the client side of the NBD handshake (nbd_hs_feed),
 * as a remote node's connection runs it against whatever server answers.
 *
 * Input: one byte of settings (bit 0: ask for base:allocation; bits 1-2: the
 * export name: "", "disk", or 4096 bytes, the longest allowed), then the
 * server's bytes. They are fed as the state machine asks, hs->need at a
 * time, each piece copied to a buffer of exactly that size. */
#include "fuzz.h"
#include "nbd/client_hs.h"

FUZZ_TARGET(nbd_client_hs)
{
	if (size < 1)
		return 0;
	static char long_name[4097];
	if (!long_name[0])
		memset(long_name, 'n', sizeof(long_name) - 1);
	const char *names[] = {NULL, "", "disk", long_name};
	struct nbd_hs *hs = malloc(sizeof(*hs));
	nbd_hs_init(hs, names[(data[0] >> 1) & 3], data[0] & 1);
	size_t pos = 1;
	enum nbd_hs_status st = NBD_HS_MORE;
	while (st == NBD_HS_MORE) {
		FUZZ_ASSERT(hs->need > 0 && hs->need <= NBD_HS_MAX_REPLY);
		if (size - pos < hs->need)
			break;
		size_t n = hs->need;
		uint8_t *piece = malloc(n);
		memcpy(piece, data + pos, n);
		pos += n;
		st = nbd_hs_feed(hs, piece, n);
		free(piece);
		FUZZ_ASSERT(hs->out_len <= sizeof(hs->out));
	}
	if (st == NBD_HS_DONE) {
		FUZZ_ASSERT(hs->have_export);
		FUZZ_ASSERT(hs->need == 0);
		FUZZ_ASSERT(nbd_hs_feed(hs, data, 0) == NBD_HS_DONE);
	} else if (st == NBD_HS_ERROR) {
		FUZZ_ASSERT(hs->error[0] != '\0');
		FUZZ_ASSERT(memchr(hs->error, '\0', sizeof(hs->error)));
		FUZZ_ASSERT(nbd_hs_feed(hs, data, 0) == NBD_HS_ERROR);
	} else {
		/* Fed the wrong amount, it must refuse, not read past. */
		uint8_t one = 0;
		if (hs->need != 1)
			FUZZ_ASSERT(nbd_hs_feed(hs, &one, 1) == NBD_HS_ERROR);
	}
	free(hs);
	return 0;
}
