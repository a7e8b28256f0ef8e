/* ublk_ctrl.c - control commands to the ublk driver (see ublk_ctrl.h). */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/ev.h"
#include "common/log.h"
#include "common/util.h"
#include "ublk_abi.h"
#include "ublk_ctrl.h"

#define CTRL_PATH "/dev/ublk-control"

struct ublk_ctrl {
	struct ev_loop *loop;
	int fd;
	int efd;
	struct ev_io efd_w;
	struct io_uring ring;
	bool ring_ok;
	/* the asynchronous command out */
	bool busy;
	struct ublksrv_ctrl_cmd cmd;
	void (*done)(void *arg, int res);
	void *arg;
};

static void on_answer(struct ev_io *w, uint32_t events)
{
	(void)events;
	struct ublk_ctrl *c = container_of(w, struct ublk_ctrl, efd_w);
	uint64_t v;
	if (read(c->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_warn("ublk: control eventfd: %s", strerror(errno));
	struct io_uring_cqe *cqe;
	while (io_uring_peek_cqe(&c->ring, &cqe) == 0) {
		int res = cqe->res;
		io_uring_cqe_seen(&c->ring, cqe);
		if (!c->busy)
			continue;
		c->busy = false;
		/* Last: done() may close c (one command is out at a time). */
		c->done(c->arg, res);
		return;
	}
}

struct ublk_ctrl *ublk_ctrl_open(struct ev_loop *loop, char *err, size_t errlen)
{
	int fd = open(CTRL_PATH, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		struct stat st;
		if (e == ENOENT && stat("/sys/module/ublk_drv", &st) < 0)
			snprintf(err, errlen,
				 "ublk: no ublk driver in this kernel (" CTRL_PATH
				 " is missing; modprobe ublk_drv)");
		else if (e == ENOENT)
			snprintf(err, errlen,
				 "ublk: " CTRL_PATH " is missing although ublk_drv is loaded "
				 "(no devtmpfs on /dev?)");
		else if (e == EACCES || e == EPERM)
			snprintf(err, errlen, "ublk: " CTRL_PATH ": %s (ublk needs root)",
				 strerror(e));
		else
			snprintf(err, errlen, "ublk: " CTRL_PATH ": %s", strerror(e));
		return NULL;
	}
	struct ublk_ctrl *c = xcalloc(1, sizeof(*c));
	c->loop = loop;
	c->fd = fd;
	c->efd = -1;
	int ret = io_uring_queue_init(4, &c->ring, IORING_SETUP_SQE128);
	if (ret < 0) {
		snprintf(err, errlen, "ublk: io_uring with 128-byte entries: %s", strerror(-ret));
		goto fail;
	}
	c->ring_ok = true;
	c->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (c->efd < 0 || io_uring_register_eventfd(&c->ring, c->efd) < 0) {
		snprintf(err, errlen, "ublk: control eventfd: %s", strerror(errno));
		goto fail;
	}
	c->efd_w.fn = on_answer;
	ret = ev_io_start(loop, &c->efd_w, c->efd, EPOLLIN);
	if (ret < 0) {
		snprintf(err, errlen, "ublk: epoll: %s", strerror(-ret));
		goto fail;
	}
	return c;
fail:
	ublk_ctrl_close(c);
	return NULL;
}

void ublk_ctrl_close(struct ublk_ctrl *c)
{
	if (!c)
		return;
	if (c->efd >= 0) {
		ev_io_stop(c->loop, &c->efd_w);
		close(c->efd);
	}
	/* An asynchronous command still out is answered to nobody. */
	if (c->ring_ok)
		io_uring_queue_exit(&c->ring);
	close(c->fd);
	free(c);
}

static int prep(struct ublk_ctrl *c, struct ublksrv_ctrl_cmd *cmd, uint32_t op, uint32_t dev_id,
		void *buf, uint32_t len, uint64_t data0, uint64_t tag)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&c->ring);
	if (!sqe)
		return -EBUSY;
	memset(sqe, 0, 2 * sizeof(*sqe)); /* a 128-byte entry */
	memset(cmd, 0, sizeof(*cmd));
	cmd->dev_id = dev_id;
	cmd->queue_id = (uint16_t)-1;
	cmd->addr = (uint64_t)(uintptr_t)buf;
	cmd->len = (uint16_t)len;
	cmd->data[0] = data0;
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->fd = c->fd;
	sqe->cmd_op = op;
	sqe->user_data = tag;
	memcpy(sqe->cmd, cmd, sizeof(*cmd));
	return 0;
}

int ublk_ctrl_sync(struct ublk_ctrl *c, uint32_t op, uint32_t dev_id, void *buf, uint32_t len,
		   uint64_t data0)
{
	if (c->busy)
		return -EBUSY;
	struct ublksrv_ctrl_cmd cmd;
	int ret = prep(c, &cmd, op, dev_id, buf, len, data0, 1);
	if (ret < 0)
		return ret;
	ret = io_uring_submit(&c->ring);
	if (ret < 0)
		return ret;
	struct io_uring_cqe *cqe;
	do
		ret = io_uring_wait_cqe(&c->ring, &cqe);
	while (ret == -EINTR);
	if (ret < 0)
		return ret;
	int res = cqe->res;
	io_uring_cqe_seen(&c->ring, cqe);
	return res;
}

int ublk_ctrl_async(struct ublk_ctrl *c, uint32_t op, uint32_t dev_id, void *buf, uint32_t len,
		    uint64_t data0, void (*done)(void *arg, int res), void *arg)
{
	if (c->busy)
		return -EBUSY;
	int ret = prep(c, &c->cmd, op, dev_id, buf, len, data0, 2);
	if (ret < 0)
		return ret;
	ret = io_uring_submit(&c->ring);
	if (ret < 0)
		return ret;
	c->busy = true;
	c->done = done;
	c->arg = arg;
	return 0;
}

bool ublk_ctrl_busy(const struct ublk_ctrl *c)
{
	return c->busy;
}
