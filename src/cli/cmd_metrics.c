/* cmd_metrics.c - `dst metrics`: the metrics of every running daemon in the
 * state dir (or those named) as one Prometheus text exposition, for a
 * look, a script, or node_exporter's textfile collector (--textfile).
 *
 * Each daemon answers the control command `metrics` with its own families;
 * here they are merged so that each family's HELP and TYPE appear once,
 * with the samples of every daemon under them (both formats want a
 * family's samples together). A daemon that is not running shows as
 * dst_up{name="X",type="..."} 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "common/config.h"
#include "common/metrics.h"
#include "common/state.h"
#include "common/util.h"
#include "show.h"

static const char metrics_help[] =
    "usage: dst metrics [NAME...] [--openmetrics] [--textfile PATH]\n"
    "\n"
    "Print the metrics of every storage and export in the state dir (or of those\n"
    "named) in the Prometheus text exposition format: bytes, requests by type,\n"
    "errors, requests in flight and latency histograms of each storage, export and\n"
    "node, node states, reconnects, a mirror's legs and resync, a migration.\n"
    "Families are merged: each HELP and TYPE line appears once. A storage or\n"
    "export whose daemon is not running shows as dst_up{name=\"NAME\",...} 0.\n"
    "\n"
    "  --openmetrics     OpenMetrics 1.0 text instead (ends with # EOF)\n"
    "  --textfile PATH   write it to PATH instead of stdout, atomically (a\n"
    "                    temporary file renamed over PATH), for node_exporter's\n"
    "                    textfile collector; e.g. every minute from cron:\n"
    "                    * * * * * dst metrics --textfile\n"
    "                    /var/lib/node_exporter/textfile/dst.prom\n"
    "\n"
    "Prometheus can also scrape a daemon directly: dst start/export\n"
    "--metrics-listen ADDR:PORT serves GET /metrics over HTTP.\n";

/* One metric family as merged so far. */
struct family {
	char *name;	   /* as its HELP/TYPE lines name it */
	char *help, *type; /* those lines, with their newline */
	struct strbuf samples;
};

struct merged {
	struct family *f;
	size_t n;
};

static char *dupn(const char *s, size_t len)
{
	char *d = xmalloc(len + 1);
	memcpy(d, s, len);
	d[len] = '\0';
	return d;
}

static struct family *family_get(struct merged *m, const char *name, size_t len)
{
	for (size_t i = 0; i < m->n; i++)
		if (strlen(m->f[i].name) == len && !strncmp(m->f[i].name, name, len))
			return &m->f[i];
	m->f = realloc(m->f, (m->n + 1) * sizeof(*m->f));
	if (!m->f)
		abort();
	struct family *f = &m->f[m->n++];
	memset(f, 0, sizeof(*f));
	f->name = dupn(name, len);
	sb_init(&f->samples);
	return f;
}

/* A daemon's exposition, line by line, into m. */
static void merge(struct merged *m, const char *text)
{
	struct family *cur = NULL;
	for (const char *p = text; p && *p;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) + 1 : strlen(p);
		bool help = !strncmp(p, "# HELP ", 7), type = !strncmp(p, "# TYPE ", 7);
		if (help || type) {
			const char *name = p + 7;
			size_t nlen = strcspn(name, " \n");
			cur = family_get(m, name, nlen);
			char **slot = help ? &cur->help : &cur->type;
			if (!*slot)
				*slot = dupn(p, len);
		} else if (p[0] != '#' && p[0] != '\n' && cur) {
			sb_add(&cur->samples, p, len);
		}
		/* (other comments, # EOF among them, are dropped) */
		p += len;
	}
}

static void up_zero(struct merged *m, const char *name)
{
	struct conf c;
	char err[256];
	char *path = state_path(name, ".conf");
	const char *type = "unknown";
	bool loaded = conf_load(path, &c, err, sizeof(err)) == 0;
	if (loaded && conf_get(&c, "type"))
		type = conf_get(&c, "type");
	struct strbuf b;
	sb_init(&b);
	struct mx x = {.out = &b};
	struct mx_labels l;
	mx_labels_init(&l);
	mx_label(&l, "name", name);
	mx_label(&l, "type", type);
	mx_gauge(&x, "dst_up", &l, 0);
	sb_add(&family_get(m, "dst_up", 6)->samples, b.s, b.len);
	sb_free(&b);
	if (loaded)
		conf_free(&c);
	free(path);
}

/* Write text to path atomically: a temporary file beside it, renamed. */
static int write_textfile(const char *path, const char *text, size_t len)
{
	char *tmp = xasprintf("%s.tmp.%d", path, (int)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		int e = errno;
		free(tmp);
		return die("--textfile %s: %s", path, strerror(e));
	}
	int rc = write_all(fd, text, len);
	if (rc == 0 && fsync(fd) < 0)
		rc = -errno;
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -errno;
	if (rc < 0) {
		unlink(tmp);
		free(tmp);
		return die("--textfile %s: %s", path, strerror(-rc));
	}
	free(tmp);
	return 0;
}

int metrics_listen_check(const char *a)
{
	if (!strcmp(a, "off"))
		return 0;
	const char *colon = strrchr(a, ':');
	const char *port = colon ? colon + 1 : a;
	uint64_t p;
	if (parse_u64(port, &p) < 0 || p > 65535 || (colon && a[0] == '[' && colon[-1] != ']'))
		return die("--metrics-listen %s: expected PORT or ADDR:PORT with PORT 0..65535", a);
	return 0;
}

int cmd_metrics(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"openmetrics", no_argument, NULL, 'o'},
	    {"textfile", required_argument, NULL, 't'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	bool om = false;
	const char *textfile = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "ot:h", opts, NULL)) != -1) {
		switch (c) {
		case 'o': om = true; break;
		case 't': textfile = optarg; break;
		case 'h': return fputs(metrics_help, stdout), 0;
		default: return bad_option("metrics", argv);
		}
	}
	/* A daemon that does not answer in time is a finding, not a hang. */
	ctl_set_timeout(CTL_READ_TIMEOUT_S);
	char err[512];
	char **names;
	size_t n;
	if (optind < argc) {
		n = (size_t)(argc - optind);
		names = xcalloc(n, sizeof(*names));
		for (size_t i = 0; i < n; i++) {
			const char *name = argv[optind + (int)i];
			if (!state_name_valid(name, err, sizeof(err)))
				return die("%s", err);
			char *path = state_path(name, ".conf");
			bool known = access(path, F_OK) == 0;
			free(path);
			if (!known)
				return die("no storage or export named '%s' (state dir %s)", name,
					   state_dir());
			names[i] = xstrdup(name);
		}
	} else {
		n = show_all_names(&names);
	}
	struct merged m = {0};
	struct strbuf head;
	sb_init(&head);
	struct mx hx = {.out = &head, .om = om};
	mx_family(&hx, "dst_up", MX_GAUGE, "1 if the storage or export's daemon is running.");
	merge(&m, head.s);
	sb_free(&head);
	int status = 0;
	for (size_t i = 0; i < n; i++) {
		struct strbuf reply;
		sb_init(&reply);
		if (!state_running_pid(names[i])) {
			up_zero(&m, names[i]);
		} else if (ctl_call(names[i], om ? "metrics openmetrics" : "metrics", &reply, err,
				    sizeof(err)) == 0) {
			merge(&m, reply.s);
		} else {
			/* It stopped meanwhile, or does not answer. */
			fprintf(stderr, "dst: metrics of '%s': %s\n", names[i], err);
			up_zero(&m, names[i]);
		}
		sb_free(&reply);
		free(names[i]);
	}
	free(names);
	struct strbuf out;
	sb_init(&out);
	for (size_t i = 0; i < m.n; i++) {
		struct family *f = &m.f[i];
		if (f->help)
			sb_add(&out, f->help, strlen(f->help));
		if (f->type)
			sb_add(&out, f->type, strlen(f->type));
		if (f->samples.len)
			sb_add(&out, f->samples.s, f->samples.len);
		free(f->name);
		free(f->help);
		free(f->type);
		sb_free(&f->samples);
	}
	free(m.f);
	struct mx ox = {.out = &out, .om = om};
	mx_eof(&ox);
	if (textfile)
		status = write_textfile(textfile, out.s ? out.s : "", out.len);
	else if (fwrite(out.s ? out.s : "", 1, out.len, stdout) != out.len || fflush(stdout))
		status = die("metrics: writing to stdout: %s", strerror(errno));
	sb_free(&out);
	return status;
}
