/* proto.h - NBD wire constants (NetworkBlockDevice/nbd doc/proto.md).
 * All integers on the wire are big-endian. */
#ifndef DST_NBD_PROTO_H
#define DST_NBD_PROTO_H

#define NBD_MAGIC     0x4e42444d41474943ull /* "NBDMAGIC" */
#define NBD_IHAVEOPT  0x49484156454F5054ull
#define NBD_REP_MAGIC 0x0003e889045565a9ull

/* Handshake flags (server) and client flags. */
#define NBD_FLAG_FIXED_NEWSTYLE	  (1u << 0)
#define NBD_FLAG_NO_ZEROES	  (1u << 1)
#define NBD_FLAG_C_FIXED_NEWSTYLE (1u << 0)
#define NBD_FLAG_C_NO_ZEROES	  (1u << 1)

/* Options. */
#define NBD_OPT_EXPORT_NAME	  1
#define NBD_OPT_ABORT		  2
#define NBD_OPT_LIST		  3
#define NBD_OPT_STARTTLS	  5
#define NBD_OPT_INFO		  6
#define NBD_OPT_GO		  7
#define NBD_OPT_STRUCTURED_REPLY  8
#define NBD_OPT_LIST_META_CONTEXT 9
#define NBD_OPT_SET_META_CONTEXT  10
#define NBD_OPT_EXTENDED_HEADERS  11
/* dst's own option (outside the spec's numbers; other servers answer
 * ERR_UNSUP): a storage says who it is before GO, and a dst export settles
 * that storage's older connections first (fencing, see handshake.c).
 * Data: storage UUID (16), connection epoch (8), the node's start (8). */
#define NBD_OPT_DST_FENCE 0x44535446u /* "DSTF" */
#define NBD_DST_FENCE_LEN 32u

/* Option replies. */
#define NBD_REP_ACK		    1
#define NBD_REP_SERVER		    2
#define NBD_REP_INFO		    3
#define NBD_REP_META_CONTEXT	    4
#define NBD_REP_ERR(n)		    ((1u << 31) + (n))
#define NBD_REP_ERR_UNSUP	    NBD_REP_ERR(1)
#define NBD_REP_ERR_POLICY	    NBD_REP_ERR(2)
#define NBD_REP_ERR_INVALID	    NBD_REP_ERR(3)
#define NBD_REP_ERR_PLATFORM	    NBD_REP_ERR(4)
#define NBD_REP_ERR_TLS_REQD	    NBD_REP_ERR(5)
#define NBD_REP_ERR_UNKNOWN	    NBD_REP_ERR(6)
#define NBD_REP_ERR_SHUTDOWN	    NBD_REP_ERR(7)
#define NBD_REP_ERR_BLOCK_SIZE_REQD NBD_REP_ERR(8)
#define NBD_REP_ERR_TOO_BIG	    NBD_REP_ERR(9)

/* NBD_REP_INFO types. */
#define NBD_INFO_EXPORT	     0
#define NBD_INFO_NAME	     1
#define NBD_INFO_DESCRIPTION 2
#define NBD_INFO_BLOCK_SIZE  3

/* Transmission flags. */
#define NBD_FLAG_HAS_FLAGS	   (1u << 0)
#define NBD_FLAG_READ_ONLY	   (1u << 1)
#define NBD_FLAG_SEND_FLUSH	   (1u << 2)
#define NBD_FLAG_SEND_FUA	   (1u << 3)
#define NBD_FLAG_ROTATIONAL	   (1u << 4)
#define NBD_FLAG_SEND_TRIM	   (1u << 5)
#define NBD_FLAG_SEND_WRITE_ZEROES (1u << 6)
#define NBD_FLAG_SEND_DF	   (1u << 7)
#define NBD_FLAG_CAN_MULTI_CONN	   (1u << 8)
#define NBD_FLAG_SEND_RESIZE	   (1u << 9)
#define NBD_FLAG_SEND_CACHE	   (1u << 10)
#define NBD_FLAG_SEND_FAST_ZERO	   (1u << 11)

/* Requests. */
#define NBD_REQUEST_MAGIC    0x25609513u
#define NBD_REQUEST_SIZE     28
#define NBD_CMD_READ	     0
#define NBD_CMD_WRITE	     1
#define NBD_CMD_DISC	     2
#define NBD_CMD_FLUSH	     3
#define NBD_CMD_TRIM	     4
#define NBD_CMD_CACHE	     5
#define NBD_CMD_WRITE_ZEROES 6
#define NBD_CMD_BLOCK_STATUS 7

#define NBD_CMD_FLAG_FUA       (1u << 0)
#define NBD_CMD_FLAG_NO_HOLE   (1u << 1)
#define NBD_CMD_FLAG_DF	       (1u << 2)
#define NBD_CMD_FLAG_REQ_ONE   (1u << 3)
#define NBD_CMD_FLAG_FAST_ZERO (1u << 4)

/* Replies. */
#define NBD_SIMPLE_REPLY_MAGIC	    0x67446698u
#define NBD_SIMPLE_REPLY_SIZE	    16
#define NBD_STRUCTURED_REPLY_MAGIC  0x668e33efu
#define NBD_STRUCTURED_REPLY_SIZE   20
#define NBD_REPLY_FLAG_DONE	    (1u << 0)
#define NBD_REPLY_TYPE_NONE	    0
#define NBD_REPLY_TYPE_OFFSET_DATA  1
#define NBD_REPLY_TYPE_OFFSET_HOLE  2
#define NBD_REPLY_TYPE_BLOCK_STATUS 5
#define NBD_REPLY_TYPE_ERROR	    ((1u << 15) + 1)
#define NBD_REPLY_TYPE_ERROR_OFFSET ((1u << 15) + 2)

/* base:allocation */
#define NBD_STATE_HOLE (1u << 0)
#define NBD_STATE_ZERO (1u << 1)

/* Error numbers on the wire (fixed, not the host's errno values). */
#define NBD_EPERM     1
#define NBD_EIO	      5
#define NBD_ENOMEM    12
#define NBD_EINVAL    22
#define NBD_ENOSPC    28
#define NBD_EOVERFLOW 75
#define NBD_ENOTSUP   95
#define NBD_ESHUTDOWN 108

/* Our limits. */
/* The largest READ or WRITE served (advertised as the maximum block size;
 * nbdkit's too); larger ones are answered EINVAL. One buffer carries at most
 * NBD_MAX_PAYLOAD: a larger request goes to the device a piece at a time
 * (transmit.c). NBD_MAX_PAYLOAD is also the most a node is sent at once. */
#define NBD_MAX_BLOCK		    (64u << 20)
#define NBD_MAX_PAYLOAD		    (32u << 20)
#define NBD_PREF_BLOCK		    4096u
#define NBD_MAX_OPTION_LEN	    (64u << 10) /* larger options are refused (consumed) */
#define NBD_MAX_STRING		    4096u	/* spec: names MUST be <= 4096 bytes */
#define NBD_META_BASE_ALLOCATION    "base:allocation"
#define NBD_META_ID_BASE_ALLOCATION 1u
/* dst's own context (csum_ctx.h): each extent's status is the CRC32C of
 * the 4 KiB blocks in it. */
#define NBD_META_DST_CSUM    "dst:csum-4k"
#define NBD_META_ID_DST_CSUM 2u

#endif
