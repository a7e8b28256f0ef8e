/* frontend_limits.c - limit keys of a config into the NBD server's config
 * (see frontend_limits.h; what they do: nbd/conn_limits.c). */
#include <errno.h>
#include <stdio.h>

#include "common/util.h"
#include "frontend_limits.h"
#include "nbd/server.h"

/* key's value as a number in [min, max] (a size if is_size); 1 if it is
 * there, 0 if not, -EINVAL with a reason. */
static int get(const struct conf *conf, const char *key, bool is_size, uint64_t min, uint64_t max,
	       const char *what, uint64_t *out, char *err, size_t errlen)
{
	const char *v = conf_get(conf, key);
	if (!v)
		return 0;
	int rc = is_size ? parse_size(v, out) : parse_u64(v, out);
	if (rc < 0 || *out < min || *out > max) {
		snprintf(err, errlen, "%s '%s': expected %s", key, v, what);
		return -EINVAL;
	}
	return 1;
}

int frontend_limits(const struct conf *conf, struct nbd_server_config *cfg, char *err,
		    size_t errlen)
{
	uint64_t v;
	int rc;
	if ((rc = get(conf, "max-clients", false, 1, 65536, "a number of clients 1..65536", &v, err,
		      errlen)) < 0)
		return rc;
	if (rc)
		cfg->max_clients = (unsigned)v;
	if ((rc = get(conf, "client-budget", true, 4096, 64ull << 30, "a size from 4K to 64G", &v,
		      err, errlen)) < 0)
		return rc;
	if (rc)
		cfg->client_budget = v;
	if ((rc = get(conf, "handshake-timeout", false, 1, 3600, "seconds 1..3600", &v, err,
		      errlen)) < 0)
		return rc;
	if (rc)
		cfg->handshake_timeout_s = (unsigned)v;
	if ((rc = get(conf, "idle-timeout", false, 0, 604800, "seconds 0..604800 (0: none)", &v,
		      err, errlen)) < 0)
		return rc;
	if (rc)
		cfg->idle_timeout_s = (unsigned)v;
	return 0;
}
