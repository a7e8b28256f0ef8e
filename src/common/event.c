/* event.c - state-change events: logged in one format, handed to the
 * daemon's sink (see event.h). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "event.h"
#include "log.h"

#define DOWN_MAX 64 /* nodes tracked as lost (event_track_nodes) */

static struct {
	const char *kind, *name;
	event_sink_fn sink;
	void *sink_arg;
	event_node_fn resolve;
	void *resolve_arg;
	bool track;
	char down[DOWN_MAX][32]; /* lost nodes, by name */
	unsigned ndown;
} E = {.kind = "dst", .name = ""};

void event_source(const char *kind, const char *name)
{
	E.kind = kind;
	E.name = name;
}

void event_set_sink(event_sink_fn fn, void *arg)
{
	E.sink = fn;
	E.sink_arg = arg;
}

void event_set_resolver(event_node_fn fn, void *arg)
{
	E.resolve = fn;
	E.resolve_arg = arg;
}

void event_track_nodes(bool on)
{
	E.track = on;
	E.ndown = 0;
}

/* Events that mean something is wrong are warnings; the rest are news. */
static bool is_bad(const char *name)
{
	static const char *const bad[] = {"node-lost",	    "degraded",	      "migration-failed",
					  "label-mismatch", "resync-stopped", "verify-stopped",
					  "verify-mismatch"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (!strcmp(name, bad[i]))
			return true;
	return false;
}

static void emit(const char *name, const char *node, const char *spec, const char *detail)
{
	char line[1024];
	int n = snprintf(line, sizeof(line), "event %s %s=%s", name, E.kind, E.name);
	if (node[0] && n > 0 && (size_t)n < sizeof(line))
		n += snprintf(line + n, sizeof(line) - (size_t)n, " node=%s", node);
	if (spec[0] && n > 0 && (size_t)n < sizeof(line))
		n += snprintf(line + n, sizeof(line) - (size_t)n, " spec=%s", spec);
	if (detail[0] && n > 0 && (size_t)n < sizeof(line))
		snprintf(line + n, sizeof(line) - (size_t)n, ": %s", detail);
	if (is_bad(name))
		log_warn("%s", line);
	else
		log_info("%s", line);
	if (E.sink) {
		struct dst_event ev = {.name = name,
				       .kind = E.kind,
				       .source = E.name,
				       .node = node,
				       .spec = spec,
				       .detail = detail};
		E.sink(E.sink_arg, &ev);
	}
}

/* Linear and stripe: lost nodes make the storage degraded. */
static void track(const char *name, const char *node)
{
	if (!E.track || !node[0])
		return;
	unsigned i;
	for (i = 0; i < E.ndown && strcmp(E.down[i], node); i++)
		;
	if (!strcmp(name, "node-lost") && i == E.ndown && E.ndown < DOWN_MAX) {
		snprintf(E.down[E.ndown++], sizeof(E.down[0]), "%s", node);
		if (E.ndown == 1)
			emit("degraded", "", "", "a node is lost: its IO waits for it");
	} else if (!strcmp(name, "node-back") && i < E.ndown) {
		memmove(E.down[i], E.down[i + 1], (E.ndown - i - 1) * sizeof(E.down[0]));
		if (--E.ndown == 0)
			emit("healthy", "", "", "every node is up");
	}
}

void event_fire(const char *name, const char *node, const char *spec, const char *fmt, ...)
{
	char detail[512] = "";
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(detail, sizeof(detail), fmt, ap);
		va_end(ap);
	}
	if (!node && spec && E.resolve)
		node = E.resolve(E.resolve_arg, spec);
	if (!node)
		node = "";
	if (!spec)
		spec = "";
	emit(name, node, spec, detail);
	track(name, node);
}
