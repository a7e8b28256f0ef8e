/* json_out.c - a small streaming JSON writer for the --json output of dst
 * show, stat and status: commas, escaping and indentation in one place. */
#include <math.h>
#include <stdlib.h>

#include "show.h"

void jw_init(struct jw *w, FILE *f, bool pretty)
{
	*w = (struct jw){.f = f, .pretty = pretty};
}

/* Before any value or key: the comma and the line break it needs. */
static void before(struct jw *w)
{
	if (w->after_key) {
		w->after_key = false;
		return;
	}
	if (w->depth > 0) {
		if (w->need_comma[w->depth])
			fputc(',', w->f);
		if (w->pretty)
			fprintf(w->f, "\n%*s", w->depth * 2, "");
		w->need_comma[w->depth] = true;
	}
}

static void put_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch == '\n')
			fputs("\\n", f);
		else if (ch == '\t')
			fputs("\\t", f);
		else if (ch < 0x20 || ch == 0x7f)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

void jw_key(struct jw *w, const char *key)
{
	before(w);
	put_string(w->f, key);
	fputs(w->pretty ? ": " : ":", w->f);
	w->after_key = true;
}

static void open_(struct jw *w, char c)
{
	before(w);
	fputc(c, w->f);
	if (w->depth + 1 >= JW_MAX_DEPTH)
		abort(); /* our documents are a few levels deep */
	w->depth++;
	w->need_comma[w->depth] = false;
	w->closer[w->depth] = c == '{' ? '}' : ']';
}

void jw_obj(struct jw *w)
{
	open_(w, '{');
}

void jw_arr(struct jw *w)
{
	open_(w, '[');
}

void jw_end(struct jw *w)
{
	bool had = w->need_comma[w->depth];
	char c = w->closer[w->depth];
	w->depth--;
	if (w->pretty && had)
		fprintf(w->f, "\n%*s", w->depth * 2, "");
	fputc(c, w->f);
}

void jw_str(struct jw *w, const char *s)
{
	before(w);
	put_string(w->f, s ? s : "");
}

void jw_u64(struct jw *w, uint64_t v)
{
	before(w);
	fprintf(w->f, "%llu", (unsigned long long)v);
}

void jw_dbl(struct jw *w, double v)
{
	before(w);
	if (isfinite(v))
		fprintf(w->f, "%.3f", v);
	else
		fputs("null", w->f);
}

void jw_bool(struct jw *w, bool v)
{
	before(w);
	fputs(v ? "true" : "false", w->f);
}

void jw_null(struct jw *w)
{
	before(w);
	fputs("null", w->f);
}

void jw_raw(struct jw *w, const char *num)
{
	before(w);
	fputs(num, w->f);
}

void jw_done(struct jw *w)
{
	fputc('\n', w->f);
}
