/* ublk_ctrl.h - control commands to the kernel's ublk driver.
 *
 * /dev/ublk-control takes its commands as io_uring URING_CMDs (32-byte
 * commands, so a ring of 128-byte SQEs). The driver runs every control
 * command in a kernel worker, so one may wait for as long as it likes: a
 * command that needs this daemon to serve IO meanwhile (START_DEV reads the
 * partition table through the new device; STOP_DEV and END_USER_RECOVERY
 * wait for requests in flight) is sent asynchronously and answered through
 * the event loop; the quick ones are sent and waited for.
 */
#ifndef DST_DAEMON_UBLK_CTRL_H
#define DST_DAEMON_UBLK_CTRL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ev_loop;
struct ublk_ctrl;

/* Open /dev/ublk-control. NULL with a one-line reason: no ublk driver,
 * not root, an io_uring without URING_CMD. */
struct ublk_ctrl *ublk_ctrl_open(struct ev_loop *loop, char *err, size_t errlen);
void ublk_ctrl_close(struct ublk_ctrl *c);

/* One command (DST_UBLK_* of ublk_abi.h) for device dev_id, with buf[len]
 * as its in/out buffer and data0 as its inline argument; the kernel's
 * answer: >= 0, or -errno. Not while an asynchronous one is out. */
int ublk_ctrl_sync(struct ublk_ctrl *c, uint32_t op, uint32_t dev_id, void *buf, uint32_t len,
		   uint64_t data0);

/* The same answered later: done(arg, res) runs on the loop. One at a
 * time; buf must live until then. 0, or -errno if it could not be sent. */
int ublk_ctrl_async(struct ublk_ctrl *c, uint32_t op, uint32_t dev_id, void *buf, uint32_t len,
		    uint64_t data0, void (*done)(void *arg, int res), void *arg);

/* A command still out. */
bool ublk_ctrl_busy(const struct ublk_ctrl *c);

#endif
