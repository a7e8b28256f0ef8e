/* show.h - what `dst show`, `dst stat` and `dst status` share: the attribute
 * lines a daemon (or a stopped one's config) gives, and a small JSON writer
 * for their --json output. */
#ifndef DST_CLI_SHOW_H
#define DST_CLI_SHOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/strbuf.h"

/* One attribute line "N|S path value" as dstd sends it. */
struct attr {
	char type; /* 'N' (a number) or 'S' (a string) */
	char *path, *val;
};
size_t attrs_parse(const char *text, struct attr **out);
void attrs_free(struct attr *a, size_t n);
/* The value of path, or NULL. */
const char *attrs_get(const struct attr *a, size_t n, const char *path);

/* Attributes of NAME: live from its daemon, else from its config (state
 * "stopped"). When its daemon runs but does not answer, -2 with the reason
 * in err (nothing is added); -1 when NAME is unknown (said unless quiet). */
int show_gather(const char *name, struct strbuf *out, bool quiet, char *err, size_t errlen);
/* Every name with a config in the state dir, sorted (malloc'd; free each
 * and the array). */
size_t show_all_names(char ***out);

/* ---- JSON writer (json_out.c) ----
 * Values are written in order; the writer puts the commas and, when
 * pretty, the newlines and indentation. Inside an object every value is
 * preceded by jw_key. */
#define JW_MAX_DEPTH 16
struct jw {
	FILE *f;
	bool pretty;
	int depth;
	bool need_comma[JW_MAX_DEPTH]; /* per level: a value was written */
	char closer[JW_MAX_DEPTH];     /* per level: '}' or ']' */
	bool after_key;
};
void jw_init(struct jw *w, FILE *f, bool pretty);
void jw_key(struct jw *w, const char *key);
void jw_obj(struct jw *w); /* { */
void jw_arr(struct jw *w); /* [ */
void jw_end(struct jw *w); /* } or ] */
void jw_str(struct jw *w, const char *s);
void jw_u64(struct jw *w, uint64_t v);
void jw_dbl(struct jw *w, double v); /* non-finite values as null */
void jw_bool(struct jw *w, bool v);
void jw_null(struct jw *w);
/* A number given as text (already checked to be one), written as it is. */
void jw_raw(struct jw *w, const char *num);
/* Ends the document with a newline. */
void jw_done(struct jw *w);

/* `dst stat --json`: the rates between samples a and b of NAME's
 * attributes, secs apart, as one JSON line (stat_json.c). */
void stat_print_json(const char *name, const struct attr *a, size_t na, const struct attr *b,
		     size_t nb, double secs);

int cmd_status(int argc, char **argv);

#endif
