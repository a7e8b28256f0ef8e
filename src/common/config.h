/* config.h - storage and export configs: "key = value" lines in the state dir.
 *
 * A config is the source of truth for a daemon: written atomically (temp
 * file, fsync, rename, fsync dir) so a crash leaves the old or the new one,
 * never half of each. Keys may repeat (one "node" or "allow" line each).
 * Every config read is checked against the table of known keys
 * (conf_keys.h): values, and keys that take one line only.
 */
#ifndef DST_CONFIG_H
#define DST_CONFIG_H

#include <stddef.h>

struct conf_entry {
	char *key, *val;
	unsigned line;
};

struct conf {
	struct conf_entry *e;
	size_t n;
};

/* Parse text; on error return -EINVAL with "line N: reason" in err. */
int conf_parse(const char *text, struct conf *c, char *err, size_t errlen);
/* The same for len bytes read from a file: a NUL byte among them is an
 * error too ("line N: a NUL byte"), not the end of the text. */
int conf_parse_buf(const char *buf, size_t len, struct conf *c, char *err, size_t errlen);
/* Read and parse path: only a regular file (a FIFO, a device, a directory
 * is refused without being read), of at most 1 MiB. */
int conf_load(const char *path, struct conf *c, char *err, size_t errlen);
int conf_save(const char *path, const struct conf *c, char *err, size_t errlen);
void conf_free(struct conf *c);

const char *conf_get(const struct conf *c, const char *key);
/* i-th value of a repeated key, or NULL. */
const char *conf_get_nth(const struct conf *c, const char *key, size_t i);
size_t conf_count(const struct conf *c, const char *key);
void conf_set(struct conf *c, const char *key, const char *val); /* replace all */
void conf_add(struct conf *c, const char *key, const char *val); /* append */
void conf_del(struct conf *c, const char *key);
/* Replace the value of the i-th `key` line in place; -1 if there is none. */
int conf_replace_nth(struct conf *c, const char *key, size_t i, const char *val);

#endif
