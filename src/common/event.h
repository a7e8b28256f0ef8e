/* event.h - a storage's or export's state changes (a node lost or back,
 * degraded, healthy, a resync or migration started or done, a disk refused
 * for its label, a node suspended or resumed), fired where they happen
 * (dev/, array/, the daemon). Each is logged in one format:
 *
 *   event node-lost storage=web node=n-0 spec=nbd://10.0.0.2:10809: connection reset
 *
 * and handed to the sink the daemon plugged in (its --on-event program,
 * daemon/hook.h). Events are rare (never per request): firing one costs a
 * log line. Single-threaded: fired from the event loop only. */
#ifndef DST_EVENT_H
#define DST_EVENT_H

#include <stdbool.h>

struct dst_event {
	const char *name;   /* "node-lost" */
	const char *kind;   /* "storage" or "export" */
	const char *source; /* the storage's or export's name */
	const char *node;   /* "n-0", or "" */
	const char *spec;   /* the node's URI or path, or "" */
	const char *detail; /* one line, or "" */
};

/* Who fires: "storage", "web". Until set, events say "dst" and "". */
void event_source(const char *kind, const char *name);

/* Where events go besides the log (NULL: only the log). */
typedef void (*event_sink_fn)(void *arg, const struct dst_event *ev);
void event_set_sink(event_sink_fn fn, void *arg);

/* The name of the node on spec ("n-800"), for events fired by code that
 * knows only a URI (a remote node's connection); NULL if none. */
typedef const char *(*event_node_fn)(void *arg, const char *spec);
void event_set_resolver(event_node_fn fn, void *arg);

/* A storage without redundancy (linear, stripe) is degraded while any of
 * its nodes is lost: node-lost and node-back then also fire degraded and
 * healthy. (A mirror says so itself, from its legs' sync state.) */
void event_track_nodes(bool on);

/* Fire event `name` about node (NULL: resolved from spec, if any) on spec
 * (NULL: none); detail as printf (NULL: none). */
void event_fire(const char *name, const char *node, const char *spec, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
