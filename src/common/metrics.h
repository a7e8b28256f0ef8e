/* metrics.h - writing Prometheus / OpenMetrics text exposition.
 *
 * One writer for both formats: Prometheus text 0.0.4 (what `dst metrics`
 * prints and Prometheus asks for by default) and OpenMetrics 1.0 (asked
 * for by Accept header or `dst metrics --openmetrics`). They differ in how
 * a counter's family is named in its HELP and TYPE lines (foo_total in
 * 0.0.4, foo in OpenMetrics; the samples are foo_total in both) and in
 * OpenMetrics' closing "# EOF", which the caller adds once at the very
 * end (mx_eof). Every sample of a family must follow its mx_family line.
 *
 * Labels are built with mx_labels: a fixed buffer, values escaped.
 */
#ifndef DST_METRICS_H
#define DST_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "lathist.h"
#include "strbuf.h"

struct mx {
	struct strbuf *out;
	bool om; /* OpenMetrics 1.0; else Prometheus text 0.0.4 */
};

enum mx_type { MX_COUNTER, MX_GAUGE, MX_HISTOGRAM };

/* HELP and TYPE of family name (for a counter: without "_total"). */
void mx_family(struct mx *m, const char *name, enum mx_type type, const char *help);

/* A label set: `key="value",...` with value escaped. */
struct mx_labels {
	char s[1024];
	size_t len;
};
void mx_labels_init(struct mx_labels *l);
void mx_label(struct mx_labels *l, const char *key, const char *value);
/* A copy of base with one more label. */
struct mx_labels mx_labels_with(const struct mx_labels *base, const char *key, const char *value);

/* A counter's sample: name_total{labels} v. */
void mx_counter(struct mx *m, const char *name, const struct mx_labels *l, uint64_t v);
/* A gauge's sample: name{labels} v. */
void mx_gauge(struct mx *m, const char *name, const struct mx_labels *l, uint64_t v);
void mx_gauge_f(struct mx *m, const char *name, const struct mx_labels *l, double v);
/* A histogram's samples: name_bucket{labels,le=...} (cumulative, +Inf
 * last), name_sum (seconds), name_count. */
void mx_histogram(struct mx *m, const char *name, const struct mx_labels *l,
		  const struct lathist *h);
/* OpenMetrics' "# EOF" (nothing in 0.0.4). */
void mx_eof(struct mx *m);

/* Content types to serve each format with. */
#define MX_CONTENT_TYPE_PROM "text/plain; version=0.0.4; charset=utf-8"
#define MX_CONTENT_TYPE_OM   "application/openmetrics-text; version=1.0.0; charset=utf-8"

#endif
