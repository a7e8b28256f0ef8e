/* strbuf.h - a growable string for building control replies and configs. */
#ifndef DST_STRBUF_H
#define DST_STRBUF_H

#include <stddef.h>
#include <stdint.h>

struct strbuf {
	char *s;
	size_t len, cap;
};

void sb_init(struct strbuf *b);
void sb_free(struct strbuf *b);
void sb_add(struct strbuf *b, const char *s, size_t len);
void sb_printf(struct strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Attribute lines of `dst show`, typed so the tool can print JSON too:
 * "N path value" for numbers, "S path value" for strings. */
void sb_attr_num(struct strbuf *b, const char *path, uint64_t v);
void sb_attr_str(struct strbuf *b, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
