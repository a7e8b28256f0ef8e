/* frontend_limits.h - the NBD server's limits as config keys, the same for
 * an export and a storage (dst export and dst start save them; dst checks
 * them with this code before it does):
 *
 *   max-clients N          connections at once, 1..65536 (default 64)
 *   client-budget SIZE     IO buffer bytes one client may hold, 4K..64G
 *                          (default: a quarter of the buffer budget)
 *   handshake-timeout S    seconds a client may take to finish its
 *                          handshake, 1..3600 (default 30)
 *   idle-timeout S         seconds a client may go without a byte in or
 *                          out, 0..604800 (default 0: for ever)
 */
#ifndef DST_DAEMON_FRONTEND_LIMITS_H
#define DST_DAEMON_FRONTEND_LIMITS_H

#include <stddef.h>

#include "common/config.h"

struct nbd_server_config;

/* Set cfg's limits from conf (keys not there are left alone). 0, or
 * -EINVAL with a reason naming the key. */
int frontend_limits(const struct conf *conf, struct nbd_server_config *cfg, char *err,
		    size_t errlen);

#endif
