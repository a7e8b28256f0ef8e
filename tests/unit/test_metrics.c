/* test_metrics.c - the latency histogram's buckets (every bound on both
 * sides) and the exposition writer: counter naming in each format, label
 * escaping, cumulative histogram lines. */
#include <stdlib.h>

#include "common/lathist.h"
#include "common/metrics.h"
#include "unit.h"

/* Which bucket one latency lands in. */
static int bucket_of(uint64_t ns)
{
	struct lathist h = {0};
	lathist_add(&h, ns);
	for (unsigned i = 0; i < LATHIST_BUCKETS; i++)
		if (h.count[i])
			return (int)i;
	return -1;
}

TEST(lathist_bounds)
{
	CHECK_EQ(bucket_of(0), 0);
	CHECK_EQ(bucket_of(1000), 0);
	CHECK_EQ(bucket_of(1001), 1);
	for (unsigned i = 1; i < LATHIST_FINITE; i++) {
		/* Up to and including the bound: bucket i; one more: i + 1. */
		CHECK_EQ(bucket_of(lathist_bound_ns(i)), i);
		CHECK_EQ(bucket_of(lathist_bound_ns(i) + 1), i + 1);
		CHECK_EQ(bucket_of(lathist_bound_ns(i - 1) + 1), i);
	}
	CHECK_EQ(bucket_of(UINT64_MAX), LATHIST_FINITE);
	struct lathist h = {0}, g = {0};
	lathist_add(&h, 5000);
	lathist_add(&h, 7000);
	lathist_add(&g, 1);
	lathist_merge(&h, &g);
	CHECK_EQ(lathist_total(&h), 3);
	CHECK_EQ(h.sum_ns, 12001);
}

TEST(counter_names)
{
	struct strbuf b;
	sb_init(&b);
	struct mx m = {.out = &b};
	mx_family(&m, "dst_x_bytes", MX_COUNTER, "Bytes.");
	mx_counter(&m, "dst_x_bytes", NULL, 7);
	mx_eof(&m);
	CHECK_STR(b.s, "# HELP dst_x_bytes_total Bytes.\n# TYPE dst_x_bytes_total counter\n"
		       "dst_x_bytes_total 7\n");
	sb_free(&b);
	m.om = true;
	mx_family(&m, "dst_x_bytes", MX_COUNTER, "Bytes.");
	mx_counter(&m, "dst_x_bytes", NULL, 7);
	mx_eof(&m);
	CHECK_STR(b.s, "# HELP dst_x_bytes Bytes.\n# TYPE dst_x_bytes counter\n"
		       "dst_x_bytes_total 7\n# EOF\n");
	sb_free(&b);
}

TEST(label_escaping)
{
	struct mx_labels l;
	mx_labels_init(&l);
	mx_label(&l, "storage", "a\"b\\c\nd");
	mx_label(&l, "node", "n-0");
	CHECK_STR(l.s, "storage=\"a\\\"b\\\\c\\nd\",node=\"n-0\"");
	/* A value too long for the buffer is cut, the quotes stay. */
	char big[3000];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	mx_labels_init(&l);
	mx_label(&l, "spec", big);
	CHECK(l.len < sizeof(l.s));
	CHECK(l.s[l.len - 1] == '"');
	CHECK(!strncmp(l.s, "spec=\"xxx", 9));
}

TEST(histogram_lines)
{
	struct strbuf b;
	sb_init(&b);
	struct mx m = {.out = &b};
	struct lathist h = {0};
	lathist_add(&h, 900);	      /* le 0.000001 */
	lathist_add(&h, 3000);	      /* le 0.000004 */
	lathist_add(&h, 60000000000); /* +Inf */
	struct mx_labels l;
	mx_labels_init(&l);
	mx_label(&l, "op", "read");
	mx_histogram(&m, "h", &l, &h);
	CHECK(strstr(b.s, "h_bucket{op=\"read\",le=\"0.000001\"} 1\n"));
	CHECK(strstr(b.s, "h_bucket{op=\"read\",le=\"0.000002\"} 1\n"));
	CHECK(strstr(b.s, "h_bucket{op=\"read\",le=\"0.000004\"} 2\n"));
	CHECK(strstr(b.s, "h_bucket{op=\"read\",le=\"16.777216\"} 2\n"));
	CHECK(strstr(b.s, "h_bucket{op=\"read\",le=\"+Inf\"} 3\n"));
	CHECK(strstr(b.s, "h_sum{op=\"read\"} 60.000003900\n"));
	CHECK(strstr(b.s, "h_count{op=\"read\"} 3\n"));
	sb_free(&b);
	mx_histogram(&m, "h", NULL, &h);
	CHECK(strstr(b.s, "h_bucket{le=\"+Inf\"} 3\n"));
	CHECK(strstr(b.s, "h_count 3\n"));
	sb_free(&b);
}

UNIT_MAIN(T(lathist_bounds), T(counter_names), T(label_escaping), T(histogram_lines))
