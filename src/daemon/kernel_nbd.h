/* kernel_nbd.h - a storage as the kernel's /dev/nbdN, attached over netlink.
 *
 * Where the kernel has the nbd driver, `dst start NAME -f /dev/nbdN` hands it
 * one end of a socketpair through the nbd generic netlink family; the other
 * end is a connection of the storage's own NBD server that starts in the
 * transmission phase (the kernel does no handshake). How and why in
 * kernel_nbd.c.
 */
#ifndef DST_DAEMON_KERNEL_NBD_H
#define DST_DAEMON_KERNEL_NBD_H

#include <stddef.h>

#include "common/strbuf.h"

struct dev;
struct nbd_server;
struct kernel_nbd;

/* Attach srv (serving dev) as path ("/dev/nbdN") for storage name. NULL
 * with a one-line reason in err: no nbd driver, the device busy... */
struct kernel_nbd *kernel_nbd_new(struct nbd_server *srv, struct dev *dev, const char *name,
				  const char *path, char *err, size_t errlen);

/* Tell the kernel to let go of the device (its requests in flight fail). */
void kernel_nbd_disconnect(struct kernel_nbd *k);

/* Disconnect if still connected, and free. */
void kernel_nbd_free(struct kernel_nbd *k);

/* NAME/nbd_device */
void kernel_nbd_show(struct kernel_nbd *k, struct strbuf *out, const char *name);

#endif
