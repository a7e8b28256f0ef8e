/* config.c - parse and atomically write "key = value" configs (config.h). */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf_keys.h"
#include "config.h"
#include "strbuf.h"
#include "util.h"

static void push(struct conf *c, const char *k, size_t klen, const char *v, size_t vlen,
		 unsigned line)
{
	struct conf_entry *e = realloc(c->e, (c->n + 1) * sizeof(*e));
	if (!e)
		abort();
	c->e = e;
	e = &c->e[c->n++];
	e->key = xmalloc(klen + 1);
	memcpy(e->key, k, klen);
	e->key[klen] = '\0';
	e->val = xmalloc(vlen + 1);
	memcpy(e->val, v, vlen);
	e->val[vlen] = '\0';
	e->line = line;
}

/* The newest entry against the table of keys: its value, and no second
 * line for a key that takes one. */
static int check_entry(const struct conf *c, const struct conf_entry *e, char *err, size_t errlen)
{
	char why[200];
	if (conf_key_check(e->key, e->val, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "line %u: %s", e->line, why);
		return -EINVAL;
	}
	if (conf_key_multi(e->key))
		return 0;
	for (size_t i = 0; i + 1 < c->n; i++) {
		if (!strcmp(c->e[i].key, e->key)) {
			snprintf(err, errlen, "line %u: %s given twice (first on line %u)", e->line,
				 e->key, c->e[i].line);
			return -EINVAL;
		}
	}
	return 0;
}

int conf_parse(const char *text, struct conf *c, char *err, size_t errlen)
{
	c->e = NULL;
	c->n = 0;
	unsigned line = 0;
	for (const char *p = text; *p;) {
		line++;
		const char *eol = strchr(p, '\n');
		const char *end = eol ? eol : p + strlen(p);
		const char *s = p;
		p = eol ? eol + 1 : end;
		while (s < end && isspace((unsigned char)*s))
			s++;
		const char *e = end;
		while (e > s && isspace((unsigned char)e[-1]))
			e--;
		if (s == e || *s == '#')
			continue;
		const char *eq = memchr(s, '=', (size_t)(e - s));
		if (!eq) {
			snprintf(err, errlen, "line %u: expected 'key = value'", line);
			conf_free(c);
			return -EINVAL;
		}
		const char *ke = eq;
		while (ke > s && isspace((unsigned char)ke[-1]))
			ke--;
		if (ke == s) {
			snprintf(err, errlen, "line %u: missing key before '='", line);
			conf_free(c);
			return -EINVAL;
		}
		for (const char *k = s; k < ke; k++) {
			if (!isalnum((unsigned char)*k) && *k != '_' && *k != '-' && *k != '.') {
				snprintf(err, errlen, "line %u: bad character '%c' in key", line,
					 *k);
				conf_free(c);
				return -EINVAL;
			}
		}
		const char *v = eq + 1;
		while (v < e && isspace((unsigned char)*v))
			v++;
		push(c, s, (size_t)(ke - s), v, (size_t)(e - v), line);
		if (check_entry(c, &c->e[c->n - 1], err, errlen) < 0) {
			conf_free(c);
			return -EINVAL;
		}
	}
	return 0;
}

int conf_parse_buf(const char *buf, size_t len, struct conf *c, char *err, size_t errlen)
{
	c->e = NULL;
	c->n = 0;
	/* Text stops at a NUL: what follows would be dropped unseen. */
	const char *nul = len ? memchr(buf, '\0', len) : NULL;
	if (nul) {
		unsigned line = 1;
		for (const char *p = buf; p < nul; p++)
			line += *p == '\n';
		snprintf(err, errlen, "line %u: a NUL byte (a config is text)", line);
		return -EINVAL;
	}
	char *text = xmalloc(len + 1);
	if (len)
		memcpy(text, buf, len);
	text[len] = '\0';
	int rc = conf_parse(text, c, err, errlen);
	free(text);
	return rc;
}

/* A config is a small regular file; anything else (a FIFO that would
 * block the reader for ever, a device, a directory) is refused unread. */
#define CONF_MAX_BYTES (1u << 20)

int conf_load(const char *path, struct conf *c, char *err, size_t errlen)
{
	c->e = NULL;
	c->n = 0;
	struct stat st;
	int fd = -1;
	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
		goto not_regular;
	/* O_NONBLOCK: should a FIFO be put there after the stat, open and
	 * read still return at once. */
	fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "%s: %s", path, strerror(e));
		return -e;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		goto not_regular;
	if (st.st_size > CONF_MAX_BYTES) {
		snprintf(err, errlen, "%s: %lld bytes: too large for a config (at most %u)", path,
			 (long long)st.st_size, CONF_MAX_BYTES);
		close(fd);
		return -EFBIG;
	}
	struct strbuf b;
	sb_init(&b);
	char chunk[4096];
	ssize_t n;
	while (b.len <= CONF_MAX_BYTES && (n = read(fd, chunk, sizeof(chunk))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			snprintf(err, errlen, "%s: %s", path, strerror(e));
			close(fd);
			sb_free(&b);
			return -e;
		}
		sb_add(&b, chunk, (size_t)n);
	}
	close(fd);
	int rc;
	if (b.len > CONF_MAX_BYTES) {
		snprintf(err, errlen, "%s: too large for a config (at most %u bytes)", path,
			 CONF_MAX_BYTES);
		rc = -EFBIG;
	} else {
		char perr[300];
		rc = conf_parse_buf(b.s, b.len, c, perr, sizeof(perr));
		if (rc < 0)
			snprintf(err, errlen, "%s: %s", path, perr);
	}
	sb_free(&b);
	return rc;

not_regular:
	if (fd >= 0)
		close(fd);
	snprintf(err, errlen, "%s: not a regular file (%s)", path,
		 S_ISFIFO(st.st_mode)			      ? "a FIFO"
		 : S_ISDIR(st.st_mode)			      ? "a directory"
		 : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device"
		 : S_ISSOCK(st.st_mode)			      ? "a socket"
							      : "of another type");
	return -EINVAL;
}

int conf_save(const char *path, const struct conf *c, char *err, size_t errlen)
{
	/* A value that would not read back the same must not be written. */
	for (size_t i = 0; i < c->n; i++) {
		const char *v = c->e[i].val;
		size_t len = strlen(v);
		if (strchr(v, '\n') || strchr(v, '\r') ||
		    (len && (isspace((unsigned char)v[0]) || isspace((unsigned char)v[len - 1])))) {
			snprintf(err, errlen,
				 "%s '%s': values may not contain line breaks or start or end with "
				 "spaces",
				 c->e[i].key, v);
			return -EINVAL;
		}
	}
	struct strbuf b;
	sb_init(&b);
	sb_printf(&b, "# written by dst; edit with the dst tool\n");
	for (size_t i = 0; i < c->n; i++)
		sb_printf(&b, "%s = %s\n", c->e[i].key, c->e[i].val);
	char *tmp = xasprintf("%s.tmp.%d", path, (int)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int rc = 0;
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	rc = write_all(fd, b.s, b.len);
	if (rc == 0 && fsync(fd) < 0)
		rc = -errno;
	close(fd);
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -errno;
	if (rc < 0) {
		snprintf(err, errlen, "writing %s: %s", path, strerror(-rc));
		unlink(tmp);
		goto out;
	}
	/* The rename itself must survive a crash too. */
	char *dir = xstrdup(path);
	int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	free(dir);
out:
	free(tmp);
	sb_free(&b);
	return rc;
}

void conf_free(struct conf *c)
{
	for (size_t i = 0; i < c->n; i++) {
		free(c->e[i].key);
		free(c->e[i].val);
	}
	free(c->e);
	c->e = NULL;
	c->n = 0;
}

const char *conf_get_nth(const struct conf *c, const char *key, size_t i)
{
	for (size_t j = 0; j < c->n; j++)
		if (strcmp(c->e[j].key, key) == 0 && i-- == 0)
			return c->e[j].val;
	return NULL;
}

const char *conf_get(const struct conf *c, const char *key)
{
	return conf_get_nth(c, key, 0);
}

size_t conf_count(const struct conf *c, const char *key)
{
	size_t n = 0;
	for (size_t j = 0; j < c->n; j++)
		n += strcmp(c->e[j].key, key) == 0;
	return n;
}

void conf_del(struct conf *c, const char *key)
{
	size_t k = 0;
	for (size_t j = 0; j < c->n; j++) {
		if (strcmp(c->e[j].key, key) == 0) {
			free(c->e[j].key);
			free(c->e[j].val);
		} else {
			c->e[k++] = c->e[j];
		}
	}
	c->n = k;
}

int conf_replace_nth(struct conf *c, const char *key, size_t i, const char *val)
{
	for (size_t j = 0; j < c->n; j++) {
		if (strcmp(c->e[j].key, key) != 0)
			continue;
		if (i-- == 0) {
			free(c->e[j].val);
			c->e[j].val = xstrdup(val);
			return 0;
		}
	}
	return -1;
}

void conf_add(struct conf *c, const char *key, const char *val)
{
	push(c, key, strlen(key), val, strlen(val), 0);
}

void conf_set(struct conf *c, const char *key, const char *val)
{
	for (size_t j = 0; j < c->n; j++) {
		if (strcmp(c->e[j].key, key) == 0) {
			free(c->e[j].val);
			c->e[j].val = xstrdup(val);
			/* drop later duplicates */
			for (size_t k = j + 1; k < c->n;) {
				if (strcmp(c->e[k].key, key) == 0) {
					free(c->e[k].key);
					free(c->e[k].val);
					memmove(&c->e[k], &c->e[k + 1],
						(c->n - k - 1) * sizeof(*c->e));
					c->n--;
				} else {
					k++;
				}
			}
			return;
		}
	}
	conf_add(c, key, val);
}
