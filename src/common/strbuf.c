/* strbuf.c - growable strings (see strbuf.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"
#include "util.h"

void sb_init(struct strbuf *b)
{
	b->s = NULL;
	b->len = b->cap = 0;
}

void sb_free(struct strbuf *b)
{
	free(b->s);
	sb_init(b);
}

static void sb_reserve(struct strbuf *b, size_t extra)
{
	if (b->len + extra + 1 <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + extra + 1)
		cap *= 2;
	char *s = realloc(b->s, cap);
	if (!s)
		abort();
	b->s = s;
	b->cap = cap;
}

void sb_add(struct strbuf *b, const char *s, size_t len)
{
	sb_reserve(b, len);
	memcpy(b->s + b->len, s, len);
	b->len += len;
	b->s[b->len] = '\0';
}

static void sb_vprintf(struct strbuf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n <= 0)
		return;
	sb_reserve(b, (size_t)n);
	vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
}

void sb_printf(struct strbuf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	sb_vprintf(b, fmt, ap);
	va_end(ap);
}

void sb_attr_num(struct strbuf *b, const char *path, uint64_t v)
{
	sb_printf(b, "N %s %llu\n", path, (unsigned long long)v);
}

void sb_attr_str(struct strbuf *b, const char *path, const char *fmt, ...)
{
	sb_printf(b, "S %s ", path);
	va_list ap;
	va_start(ap, fmt);
	size_t start = b->len;
	sb_vprintf(b, fmt, ap);
	va_end(ap);
	/* One attribute per line: newlines in values would break the format. */
	for (size_t i = start; i < b->len; i++)
		if (b->s[i] == '\n')
			b->s[i] = ' ';
	sb_add(b, "\n", 1);
}
