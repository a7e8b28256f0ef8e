/* geom_conf.c - a storage's geometry (chunk, data, parity) from its config,
 * read the same way by dst (to check a node before adding it) and dstd. */
#include <stdio.h>

#include "array.h"
#include "common/config.h"
#include "common/util.h"

int alg_geom_conf(const struct conf *conf, struct alg_geom *geo, char *err, size_t errlen)
{
	*geo = (struct alg_geom){.chunk = ARRAY_DEFAULT_CHUNK};
	const char *v;
	uint64_t x;
	if ((v = conf_get(conf, "chunk"))) {
		if (parse_size(v, &x) < 0) {
			snprintf(err, errlen, "chunk '%s': expected a size like 64K", v);
			return -1;
		}
		geo->chunk = x;
	}
	if ((v = conf_get(conf, "data"))) {
		if (parse_u64(v, &x) < 0 || x > 64) {
			snprintf(err, errlen, "data '%s': expected a number of data chunks", v);
			return -1;
		}
		geo->data = (unsigned)x;
	}
	if ((v = conf_get(conf, "parity"))) {
		if (parse_u64(v, &x) < 0 || x > 64) {
			snprintf(err, errlen, "parity '%s': expected a number of parity chunks", v);
			return -1;
		}
		geo->parity = (unsigned)x;
	}
	return 0;
}
