/* ublk_abi.h - the kernel's ublk interface as dst uses it.
 *
 * <linux/ublk_cmd.h> of the build machine may be older than the kernel dst
 * runs on (Debian 12 ships 6.1's, which has neither user copy nor the
 * ioctl-encoded command numbers; ublk in Debian's kernels starts with 6.12).
 * The numbers below are the kernel's stable ABI, filled in where the header
 * lacks them.
 */
#ifndef DST_DAEMON_UBLK_ABI_H
#define DST_DAEMON_UBLK_ABI_H

#include <linux/ublk_cmd.h>
#include <sys/ioctl.h>

#ifndef UBLK_F_UNPRIVILEGED_DEV
#define UBLK_F_UNPRIVILEGED_DEV (1ULL << 5)
#endif
#ifndef UBLK_F_CMD_IOCTL_ENCODE
#define UBLK_F_CMD_IOCTL_ENCODE (1ULL << 6)
#endif
/* Data moves with pread/pwrite on /dev/ublkcN (Linux 6.5+). */
#ifndef UBLK_F_USER_COPY
#define UBLK_F_USER_COPY (1ULL << 7)
#endif

#define UBLK_CTRL_NR_GET_FEATURES 0x13

/* Control commands, ioctl-encoded (the only form kernels built without
 * CONFIG_BLKDEV_UBLK_LEGACY_OPCODES take). */
#define DST_UBLK_CMD(rw, nr)	rw('u', nr, struct ublksrv_ctrl_cmd)
#define DST_UBLK_GET_DEV_INFO	DST_UBLK_CMD(_IOR, UBLK_CMD_GET_DEV_INFO)
#define DST_UBLK_ADD_DEV	DST_UBLK_CMD(_IOWR, UBLK_CMD_ADD_DEV)
#define DST_UBLK_DEL_DEV	DST_UBLK_CMD(_IOWR, UBLK_CMD_DEL_DEV)
#define DST_UBLK_START_DEV	DST_UBLK_CMD(_IOWR, UBLK_CMD_START_DEV)
#define DST_UBLK_STOP_DEV	DST_UBLK_CMD(_IOWR, UBLK_CMD_STOP_DEV)
#define DST_UBLK_SET_PARAMS	DST_UBLK_CMD(_IOWR, UBLK_CMD_SET_PARAMS)
#define DST_UBLK_GET_PARAMS	DST_UBLK_CMD(_IOR, UBLK_CMD_GET_PARAMS)
#define DST_UBLK_START_RECOVERY DST_UBLK_CMD(_IOWR, UBLK_CMD_START_USER_RECOVERY)
#define DST_UBLK_END_RECOVERY	DST_UBLK_CMD(_IOWR, UBLK_CMD_END_USER_RECOVERY)
#define DST_UBLK_GET_FEATURES	DST_UBLK_CMD(_IOR, UBLK_CTRL_NR_GET_FEATURES)

/* IO commands on /dev/ublkcN, ioctl-encoded. */
#define DST_UBLK_IO_FETCH_REQ	     _IOWR('u', UBLK_IO_FETCH_REQ, struct ublksrv_io_cmd)
#define DST_UBLK_IO_COMMIT_AND_FETCH _IOWR('u', UBLK_IO_COMMIT_AND_FETCH_REQ, struct ublksrv_io_cmd)

/* User copy: the file offset on /dev/ublkcN of byte off of request
 * (q, tag): 25 bits of offset (32 MiB requests), 16 of tag, 12 of queue. */
#define DST_UBLK_BUF_BITS 25
#define DST_UBLK_TAG_BITS 16
static inline unsigned long long dst_ublk_user_off(unsigned q, unsigned tag, unsigned long long off)
{
	return UBLKSRV_IO_BUF_OFFSET +
	       (((unsigned long long)q << (DST_UBLK_BUF_BITS + DST_UBLK_TAG_BITS)) |
		((unsigned long long)tag << DST_UBLK_BUF_BITS) | off);
}

/* The per-queue descriptor arrays are mapped from /dev/ublkcN at offsets a
 * whole maximum-depth array apart. */
#define DST_UBLK_DESC_STRIDE(page)                                                      \
	((((unsigned long long)UBLK_MAX_QUEUE_DEPTH * sizeof(struct ublksrv_io_desc)) + \
	  (page)-1) /                                                                   \
	 (page) * (page))

#endif
