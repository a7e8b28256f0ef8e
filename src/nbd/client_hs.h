/* client_hs.h - the client side of the NBD fixed-newstyle handshake as a
 * pure state machine: fed whole messages, it says what to send next and,
 * at the end, what the export is. No sockets here, so it is unit tested and
 * fuzzed directly; dev/nbd.c moves the bytes.
 *
 * Options sent, one at a time: STARTTLS first when TLS is wanted (the
 * driver then runs the TLS handshake and everything after goes through
 * TLS), STRUCTURED_REPLY, SET_META_CONTEXT base:allocation (when structured
 * replies were accepted; with dst:csum-4k too when checksums are wanted), DST_FENCE when a fence is
 * wanted (a dst export settles the storage's older connections before it answers; other servers say
 * it is unsupported), then GO asking for block sizes and the export's description (a dst storage's
 * names the storages it holds). A server without GO gets the old EXPORT_NAME. */
#ifndef DST_NBD_CLIENT_HS_H
#define DST_NBD_CLIENT_HS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NBD_HS_GREETING_SIZE 18u
#define NBD_HS_MAX_REPLY     (64u << 10) /* longer option replies are refused */

/* NBD_HS_TLS: the server took STARTTLS: send hs->out, run the TLS
 * handshake, then call nbd_hs_tls_done() and go on through TLS. */
enum nbd_hs_status { NBD_HS_MORE, NBD_HS_DONE, NBD_HS_ERROR, NBD_HS_TLS };

struct nbd_hs {
	/* What we ask for (nbd_hs_init). */
	char export_name[4097];
	uint32_t export_len;
	bool want_extents;
	bool want_tls;	 /* set after nbd_hs_init: STARTTLS first, or fail */
	bool want_fence; /* set after nbd_hs_init, with fence[] (proto.h) */
	/* Set after nbd_hs_init: ask for dst:csum-4k too (a dst export then
	 * checksums the data on every BLOCK_STATUS: mirror legs only). */
	bool want_csum;
	uint8_t fence[32];

	/* Progress. */
	int state;
	uint32_t cur_opt, rep_type, rep_len;
	bool fixed, no_zeroes;
	size_t need;		/* feed exactly this many bytes next */
	uint8_t out[8192 + 64]; /* what to send before feeding more */
	size_t out_len;

	/* Results, valid on NBD_HS_DONE. */
	uint64_t size;
	uint16_t tflags;			   /* NBD_FLAG_* transmission flags */
	uint32_t min_block, pref_block, max_block; /* 0 when not told */
	bool structured;
	bool base_alloc; /* base:allocation context selected */
	uint32_t base_alloc_id;
	bool csum; /* dst:csum-4k context selected */
	uint32_t csum_id;
	bool have_export;
	char description[1024]; /* NBD_INFO_DESCRIPTION, if the server gave one */
	bool tls;		/* STARTTLS was accepted */
	bool fenced;		/* DST_FENCE was accepted */

	char error[512]; /* on NBD_HS_ERROR */
};

/* Start a handshake for export_name (NULL: ""); hs->need is the greeting. */
void nbd_hs_init(struct nbd_hs *hs, const char *export_name, bool want_extents);

/* Feed exactly hs->need bytes. Afterwards send hs->out[0..out_len) (it may be
 * empty), then feed hs->need bytes again, until DONE or ERROR. */
enum nbd_hs_status nbd_hs_feed(struct nbd_hs *hs, const uint8_t *in, size_t len);

/* The TLS handshake after NBD_HS_TLS succeeded: haggling goes on (in TLS);
 * send hs->out and feed hs->need bytes as before. */
enum nbd_hs_status nbd_hs_tls_done(struct nbd_hs *hs);

#endif
