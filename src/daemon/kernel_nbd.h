/* kernel_nbd.h - a storage as the kernel's /dev/nbdN, attached over netlink.
 *
 * Where the kernel has the nbd driver, `dst start NAME -f /dev/nbdN` hands it
 * one end of a socketpair through the nbd generic netlink family; the other
 * end is a connection of the storage's own NBD server that starts in the
 * transmission phase (the kernel does no handshake). A daemon that starts
 * and finds the device still connected for its storage (it was killed with
 * the filesystem mounted) takes it back. How and why in kernel_nbd.c.
 */
#ifndef DST_DAEMON_KERNEL_NBD_H
#define DST_DAEMON_KERNEL_NBD_H

#include <stddef.h>

#include "common/strbuf.h"

struct dev;
struct ev_loop;
struct nbd_server;
struct kernel_nbd;

/* Attach srv (serving dev) as path ("/dev/nbdN") for storage name. A device
 * still connected for this storage (its daemon was killed) is taken back:
 * it gets a new connection and resends what it had in flight. If the
 * connection is lost later, the device waits up to dead_timeout_s seconds
 * for the next one (and is given one at once). NULL with a one-line reason
 * in err: no nbd driver, the device used by something else... */
struct kernel_nbd *kernel_nbd_new(struct ev_loop *loop, struct nbd_server *srv, struct dev *dev,
				  const char *name, const char *path, unsigned dead_timeout_s,
				  char *err, size_t errlen);

/* The dead connection timeout of a device set up without a storage's
 * nbd-reconnect-timeout. */
#define NBD_RECONNECT_DEFAULT_S 300

/* dst set: a new dead connection timeout for the connected device. 0, or -1
 * with a reason. */
int kernel_nbd_set_reconnect_timeout(struct kernel_nbd *k, unsigned seconds, char *err,
				     size_t errlen);

/* Tell the kernel to let go of the device (its requests in flight fail). */
void kernel_nbd_disconnect(struct kernel_nbd *k);

/* Disconnect if still connected, and free. */
void kernel_nbd_free(struct kernel_nbd *k);

/* NAME/nbd_device, NAME/nbd_reconnects */
void kernel_nbd_show(struct kernel_nbd *k, struct strbuf *out, const char *name);

#endif
