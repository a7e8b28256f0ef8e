/* metrics.c - Prometheus / OpenMetrics text exposition (see metrics.h). */
#include <stdio.h>
#include <string.h>

#include "metrics.h"

static const char *type_name(enum mx_type t)
{
	switch (t) {
	case MX_COUNTER: return "counter";
	case MX_GAUGE: return "gauge";
	case MX_HISTOGRAM: return "histogram";
	}
	return "unknown";
}

void mx_family(struct mx *m, const char *name, enum mx_type type, const char *help)
{
	/* 0.0.4 names a counter by its sample (foo_total), OpenMetrics by
	 * its family (foo). HELP text has no backslash or newline here. */
	const char *suffix = type == MX_COUNTER && !m->om ? "_total" : "";
	sb_printf(m->out, "# HELP %s%s %s\n# TYPE %s%s %s\n", name, suffix, help, name, suffix,
		  type_name(type));
}

void mx_labels_init(struct mx_labels *l)
{
	l->s[0] = '\0';
	l->len = 0;
}

static void put(struct mx_labels *l, char c)
{
	if (l->len + 1 < sizeof(l->s)) {
		l->s[l->len++] = c;
		l->s[l->len] = '\0';
	}
}

void mx_label(struct mx_labels *l, const char *key, const char *value)
{
	/* Leave room for the closing quote: a value that does not fit is
	 * cut, never the syntax. */
	if (l->len + strlen(key) + 8 >= sizeof(l->s))
		return;
	if (l->len)
		put(l, ',');
	for (const char *k = key; *k; k++)
		put(l, *k);
	put(l, '=');
	put(l, '"');
	for (const char *v = value; *v && l->len + 4 < sizeof(l->s); v++) {
		if (*v == '\\' || *v == '"') {
			put(l, '\\');
			put(l, *v);
		} else if (*v == '\n') {
			put(l, '\\');
			put(l, 'n');
		} else {
			put(l, *v);
		}
	}
	put(l, '"');
}

struct mx_labels mx_labels_with(const struct mx_labels *base, const char *key, const char *value)
{
	struct mx_labels l = *base;
	mx_label(&l, key, value);
	return l;
}

static void sample_head(struct mx *m, const char *name, const char *suffix,
			const struct mx_labels *l)
{
	if (l && l->len)
		sb_printf(m->out, "%s%s{%s} ", name, suffix, l->s);
	else
		sb_printf(m->out, "%s%s ", name, suffix);
}

void mx_counter(struct mx *m, const char *name, const struct mx_labels *l, uint64_t v)
{
	sample_head(m, name, "_total", l);
	sb_printf(m->out, "%llu\n", (unsigned long long)v);
}

void mx_gauge(struct mx *m, const char *name, const struct mx_labels *l, uint64_t v)
{
	sample_head(m, name, "", l);
	sb_printf(m->out, "%llu\n", (unsigned long long)v);
}

void mx_gauge_f(struct mx *m, const char *name, const struct mx_labels *l, double v)
{
	sample_head(m, name, "", l);
	sb_printf(m->out, "%.6f\n", v);
}

void mx_histogram(struct mx *m, const char *name, const struct mx_labels *l,
		  const struct lathist *h)
{
	uint64_t cum = 0;
	char le[32];
	for (unsigned i = 0; i < LATHIST_BUCKETS; i++) {
		cum += h->count[i];
		if (i < LATHIST_FINITE)
			snprintf(le, sizeof(le), "%.6f", (double)lathist_bound_ns(i) / 1e9);
		else
			snprintf(le, sizeof(le), "+Inf");
		struct mx_labels bl = l ? *l : (struct mx_labels){.len = 0};
		if (!l)
			bl.s[0] = '\0';
		mx_label(&bl, "le", le);
		sample_head(m, name, "_bucket", &bl);
		sb_printf(m->out, "%llu\n", (unsigned long long)cum);
	}
	sample_head(m, name, "_sum", l);
	sb_printf(m->out, "%.9f\n", (double)h->sum_ns / 1e9);
	sample_head(m, name, "_count", l);
	sb_printf(m->out, "%llu\n", (unsigned long long)cum);
}

void mx_eof(struct mx *m)
{
	if (m->om)
		sb_printf(m->out, "# EOF\n");
}
