/* conf_keys.h - the config keys dst knows, in one table (conf_keys.c): which
 * may repeat and what each value must be. conf_parse checks every config it
 * reads against it, so dst and dstd refuse the same things, with the file,
 * line and key named. Keys not in the table are let through (unchecked). */
#ifndef DST_CONF_KEYS_H
#define DST_CONF_KEYS_H

#include <stdbool.h>
#include <stddef.h>

/* Check one line's key and value: 0, or -EINVAL with "KEY 'VALUE':
 * expected ..." in err. */
int conf_key_check(const char *key, const char *val, char *err, size_t errlen);

/* May key appear on more than one line (node, allow, listen, socket)?
 * Unknown keys may (nothing reads them). */
bool conf_key_multi(const char *key);

#endif
