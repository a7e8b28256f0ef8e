/* ublk_queue.h - the IO side of a ublk device: its queues' requests served
 * from the storage's device, on the event loop.
 *
 * One io_uring carries every queue's commands (FETCH_REQ, then one
 * COMMIT_AND_FETCH_REQ per request answered); its completions wake the loop
 * through an eventfd, as a file node's do. Data moves by user copy: a
 * write's payload is read from /dev/ublkcN into a pooled buffer and goes
 * from there to the storage; a read's data is written into the kernel's
 * request from wherever the storage has it (its own memory when it lends,
 * else the pooled buffer). How and why in ublk_queue.c.
 */
#ifndef DST_DAEMON_UBLK_QUEUE_H
#define DST_DAEMON_UBLK_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dev;
struct ev_loop;
struct nbd_server_stats;
struct strbuf;
struct ublk_queues;

/* The largest request the device takes (its max_io_buf_bytes). */
#define UBLK_MAX_IO (1u << 20)

/* Open /dev/ublkcID, map its queues' request descriptors and send a FETCH
 * for every tag, so that the kernel may hand out requests (after START_DEV
 * or END_USER_RECOVERY). NULL with a one-line reason. */
struct ublk_queues *ublk_queues_open(struct ev_loop *loop, struct dev *dev, uint32_t id,
				     unsigned queues, unsigned depth, char *err, size_t errlen);

/* Requests the storage is serving now (taken from the kernel, not yet
 * answered). When it drops to 0, idle(arg) runs (once per call). */
unsigned ublk_queues_busy(const struct ublk_queues *q);
void ublk_queues_when_idle(struct ublk_queues *q, void (*idle)(void *arg), void *arg);

/* Close the ring and /dev/ublkcN (the kernel cancels the FETCHes still
 * out). Only with no request busy. */
void ublk_queues_close(struct ublk_queues *q);

void ublk_queues_add_stats(const struct ublk_queues *q, struct nbd_server_stats *st);
/* NAME/ublk_io/... attributes */
void ublk_queues_show(const struct ublk_queues *q, struct strbuf *out, const char *name);

#endif
