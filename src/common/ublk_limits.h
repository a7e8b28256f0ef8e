/* ublk_limits.h - the ranges of a storage's ublk settings (config keys
 * ublk, ublk-queues, ublk-depth), one place for the command line that
 * checks them, the config key table and the daemon that uses them. */
#ifndef DST_COMMON_UBLK_LIMITS_H
#define DST_COMMON_UBLK_LIMITS_H

#define UBLK_MAX_ID	   1048575u /* /dev/ublkbN: the driver's minor numbers */
#define UBLK_MAX_QUEUES	   64u
#define UBLK_MAX_DEPTH	   1024u
#define UBLK_DEFAULT_DEPTH 128u
/* queues x depth: one io_uring entry per request slot */
#define UBLK_MAX_REQUESTS 4096u

#endif
