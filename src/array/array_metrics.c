/* array_metrics.c - a storage's nodes as metrics (Prometheus / OpenMetrics
 * families dst_node_*): state, IO by kind (the clients', a resync's, a
 * migration's), latency histograms, reconnects; then the mirror's and the
 * migration's. Written family by family, every node in each, as the
 * exposition formats want a family's samples together. */
#include <stdlib.h>
#include <string.h>

#include "array_int.h"
#include "common/metrics.h"
#include "common/util.h"

static const char *node_state(const struct array_node *nd)
{
	if (nd->suspended)
		return "suspended";
	if (!strcmp(nd->dev->ops->kind, "nbd"))
		return dev_nbd_state(nd->dev);
	return "up";
}

static const char *const states[] = {"up",     "connecting", "reconnecting",
				     "failed", "foreign",    "suspended"};

/* Counters of one kind of IO on a node. */
struct kind_io {
	const char *kind;
	uint64_t reads, writes, zeroes, read_bytes, write_bytes, errors;
};

static size_t node_kinds(const struct array_node *nd, struct kind_io k[3])
{
	k[0] = (struct kind_io){"client",	nd->reads,	 nd->writes, nd->zeroes,
				nd->read_bytes, nd->write_bytes, nd->errors};
	k[1] = (struct kind_io){"resync",	   nd->resync.reads,	  nd->resync.writes,
				nd->resync.zeroes, nd->resync.read_bytes, nd->resync.write_bytes,
				nd->resync.errors};
	k[2] = (struct kind_io){"migrate",	    nd->migrate.reads,	    nd->migrate.writes,
				nd->migrate.zeroes, nd->migrate.read_bytes, nd->migrate.write_bytes,
				nd->migrate.errors};
	return 3;
}

void array_metrics(struct array *a, struct mx *m, const char *name)
{
	size_t n = a->n;
	struct mx_labels *l = xcalloc(n ? n : 1, sizeof(*l));
	for (size_t i = 0; i < n; i++) {
		mx_labels_init(&l[i]);
		mx_label(&l[i], "storage", name);
		mx_label(&l[i], "node", a->nodes[i].name);
	}

	mx_family(m, "dst_node_info", MX_GAUGE,
		  "A node of a storage: its spec (disk path or NBD URI) and type; always 1.");
	for (size_t i = 0; i < n; i++) {
		struct mx_labels il = mx_labels_with(&l[i], "spec", a->nodes[i].spec);
		mx_label(&il, "type", a->nodes[i].remote ? "remote" : "local");
		mx_gauge(m, "dst_node_info", &il, 1);
	}
	mx_family(m, "dst_node_up", MX_GAUGE,
		  "1 if the node takes IO now (up and not suspended), else 0.");
	for (size_t i = 0; i < n; i++)
		mx_gauge(m, "dst_node_up", &l[i], !strcmp(node_state(&a->nodes[i]), "up"));
	mx_family(m, "dst_node_state", MX_GAUGE,
		  "The node's state: 1 for the one it is in (up, connecting, reconnecting, "
		  "failed, foreign, suspended).");
	for (size_t i = 0; i < n; i++) {
		const char *st = node_state(&a->nodes[i]);
		for (size_t k = 0; k < ARRAY_SIZE(states); k++) {
			struct mx_labels sl = mx_labels_with(&l[i], "state", states[k]);
			mx_gauge(m, "dst_node_state", &sl, !strcmp(st, states[k]));
		}
	}
	mx_family(m, "dst_node_size_bytes", MX_GAUGE, "The part of the storage the node holds.");
	for (size_t i = 0; i < n; i++)
		mx_gauge(m, "dst_node_size_bytes", &l[i], a->nodes[i].size * 512);

	struct kind_io k[3];
	mx_family(m, "dst_node_read_bytes", MX_COUNTER,
		  "Bytes read from the node, by kind: client (requests of the storage's "
		  "users), resync (a mirror's resync reading this leg), migrate (a "
		  "migration's copy).");
	for (size_t i = 0; i < n; i++) {
		size_t nk = node_kinds(&a->nodes[i], k);
		for (size_t j = 0; j < nk; j++) {
			struct mx_labels kl = mx_labels_with(&l[i], "kind", k[j].kind);
			mx_counter(m, "dst_node_read_bytes", &kl, k[j].read_bytes);
		}
	}
	mx_family(m, "dst_node_written_bytes", MX_COUNTER,
		  "Bytes written to the node, by kind: client, resync (a mirror's resync "
		  "writing this leg), migrate (written to the node's replacement).");
	for (size_t i = 0; i < n; i++) {
		size_t nk = node_kinds(&a->nodes[i], k);
		for (size_t j = 0; j < nk; j++) {
			struct mx_labels kl = mx_labels_with(&l[i], "kind", k[j].kind);
			mx_counter(m, "dst_node_written_bytes", &kl, k[j].write_bytes);
		}
	}
	mx_family(m, "dst_node_ops", MX_COUNTER,
		  "Requests the node completed, by kind and op (read, write, flush, trim, "
		  "write_zeroes).");
	for (size_t i = 0; i < n; i++) {
		const struct array_node *nd = &a->nodes[i];
		size_t nk = node_kinds(nd, k);
		for (size_t j = 0; j < nk; j++) {
			struct mx_labels kl = mx_labels_with(&l[i], "kind", k[j].kind);
			struct mx_labels ol = mx_labels_with(&kl, "op", "read");
			mx_counter(m, "dst_node_ops", &ol, k[j].reads);
			ol = mx_labels_with(&kl, "op", "write");
			mx_counter(m, "dst_node_ops", &ol, k[j].writes);
			ol = mx_labels_with(&kl, "op", "write_zeroes");
			mx_counter(m, "dst_node_ops", &ol, k[j].zeroes);
			if (j == 0) {
				ol = mx_labels_with(&kl, "op", "flush");
				mx_counter(m, "dst_node_ops", &ol, nd->flushes);
				ol = mx_labels_with(&kl, "op", "trim");
				mx_counter(m, "dst_node_ops", &ol, nd->trims);
			}
		}
	}
	mx_family(m, "dst_node_errors", MX_COUNTER, "Requests the node failed, by kind.");
	for (size_t i = 0; i < n; i++) {
		size_t nk = node_kinds(&a->nodes[i], k);
		for (size_t j = 0; j < nk; j++) {
			struct mx_labels kl = mx_labels_with(&l[i], "kind", k[j].kind);
			mx_counter(m, "dst_node_errors", &kl, k[j].errors);
		}
	}
	mx_family(m, "dst_node_inflight_requests", MX_GAUGE,
		  "Client requests sent to the node and not yet answered.");
	for (size_t i = 0; i < n; i++)
		mx_gauge(m, "dst_node_inflight_requests", &l[i], a->nodes[i].inflight);
	mx_family(m, "dst_node_held_requests", MX_GAUGE,
		  "Requests held for the node while it is suspended.");
	for (size_t i = 0; i < n; i++)
		mx_gauge(m, "dst_node_held_requests", &l[i], a->nodes[i].held);
	mx_family(m, "dst_node_request_duration_seconds", MX_HISTOGRAM,
		  "Latency of the node's client reads and writes.");
	for (size_t i = 0; i < n; i++) {
		struct mx_labels ol = mx_labels_with(&l[i], "op", "read");
		mx_histogram(m, "dst_node_request_duration_seconds", &ol, &a->nodes[i].read_lat);
		ol = mx_labels_with(&l[i], "op", "write");
		mx_histogram(m, "dst_node_request_duration_seconds", &ol, &a->nodes[i].write_lat);
	}
	mx_family(m, "dst_node_reconnects", MX_COUNTER,
		  "Times a remote node's connection was made again after it was lost.");
	for (size_t i = 0; i < n; i++)
		if (!strcmp(a->nodes[i].dev->ops->kind, "nbd"))
			mx_counter(m, "dst_node_reconnects", &l[i],
				   dev_nbd_reconnects(a->nodes[i].dev));
	free(l);

	if (a->alg->metrics && a->priv)
		a->alg->metrics(a, m, name);
	migrate_metrics(a, m, name);
}
