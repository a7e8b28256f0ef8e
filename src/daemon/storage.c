/* storage.c - the storage service: nodes opened (remote ones connected
 * asynchronously), assembled by the storage's algorithm into one device, and
 * served by our NBD server, so a storage can itself be a node of another.
 *
 * Config keys: type = storage, alg, chunk (bytes, stripe), node (repeatable,
 * see array/nodeconf.h), listen / socket (frontends; default NAME.sock in
 * the state dir), backlog, io-timeout (seconds IO waits for an unreachable
 * remote node before failing; 0 = forever; default 120), request-timeout
 * (seconds a node may leave a request unanswered before it is reconnected;
 * default 30), fuse (the FUSE file frontend's path, see fuse_frontend.h),
 * nbd-device (/dev/nbdN, attached over netlink, see kernel_nbd.h), ublk /
 * ublk-queues / ublk-depth (/dev/ublkbN, see ublk_frontend.h), allow
 * (repeatable CIDR[:ro|:rw]: who may connect over TCP; none: loopback), tls /
 * tls-psk / tls-certs / tls-verify-peer (how it is served, frontend.c),
 * node-tls-psk / node-tls-username / node-tls-certs (its credentials for
 * nbds:// nodes), and for alg_mirror uuid, region-size, resync-rate;
 * migrate (a dst replace under way); max-clients / client-budget /
 * handshake-timeout / idle-timeout (frontend_limits.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "array/array.h"
#include "array/label.h"
#include "array/leghdr.h"
#include "array/nodeconf.h"
#include "common/acl.h"
#include "common/ev.h"
#include "common/event.h"
#include "common/log.h"
#include "common/loopdev.h"
#include "common/metrics.h"
#include "common/state.h"
#include "common/util.h"
#include "ctl.h"
#include "frontend.h"
#include "frontend_limits.h"
#include "fuse_frontend.h"
#include "kernel_nbd.h"
#include "nbd/server.h"
#include "service.h"
#include "ublk_frontend.h"

struct storage_service;

/* What a labelled node's label must say, checked on every connection of a
 * remote node (dev_ident) and at the open of a local one. Owned by the
 * service (a node's device may outlive its pending_node). */
struct node_ident {
	struct dev_ident ident;
	struct label_expect expect;
	struct node_ident *next;
};

/* A node being opened: at start-up, or by a live add. */
struct pending_node {
	struct storage_service *st;
	struct array_node node;
	struct ctl_req *req; /* live add: answer when ready */
	int err;
	char msg[512];
	bool ready;
	bool down; /* a mirror leg unreachable at start: the mirror starts without it */
};

struct storage_service {
	struct service svc;
	struct array *array;
	struct nbd_server *srv;
	struct acl acl;				 /* who may connect over TCP */
	struct tls_creds *tls;			 /* serving */
	struct tls_creds *node_tls;		 /* towards nbds:// nodes */
	char *node_psk, *node_certs, *node_user; /* what node_tls was made of */
	const struct alg_ops *alg;
	struct alg_geom geo; /* chunk, data, parity */
	unsigned io_timeout_s, request_timeout_s;
	unsigned nbd_reconnect_s; /* kernel NBD: how long IO waits for a new connection */
	struct fuse_frontend *fuse;
	struct kernel_nbd *knbd;
	/* ublk: the device (starting, live or stopping); a live dst attach or
	 * detach waiting for it; one that failed or was detached, freed from
	 * ublk_reap (never from inside its own callbacks). */
	struct ublk_frontend *ublk;
	struct ctl_req *ublk_req;
	bool ublk_detaching, ublk_at_start;
	char ublk_err[400];
	struct ublk_frontend *ublk_dead;
	struct ev_deferred ublk_reap;
	uint64_t started_ns;
	/* start-up: nodes still connecting */
	unsigned connecting;
	struct ev_loop *loop;
	struct ctl_req *remove_req;
	char remove_name[32];
	char last_migration[512]; /* how the last dst replace ended */
	struct ev_timer migrate_restart;
	char *migrate_line; /* config's migrate line at start */
	uint8_t uuid[16];   /* the storage's, in every node's label */
	bool mig_has_id;    /* the disk id of the node a migration moves to */
	uint8_t mig_id[16];
	bool has_uuid;
	struct node_ident *idents;
	/* stop: frontends still stopping, then done(arg) */
	unsigned stopping;
	void (*stop_done)(void *);
	void *stop_arg;
};

static struct dev *open_node(struct storage_service *st, struct pending_node *pn);

static void node_ready(void *arg, struct dev *d, int err, const char *msg);

static void describe_node_error(struct pending_node *pn, const char *msg)
{
	char m[400];
	snprintf(m, sizeof(m), "%s", msg);
	snprintf(pn->msg, sizeof(pn->msg), "node %s (%s): %s", pn->node.name, pn->node.spec, m);
}

/* Check the node's real size against its config (--size may only narrow). */
static int settle_size(struct pending_node *pn)
{
	uint64_t have = pn->node.dev->size / 512;
	if (have == 0) {
		describe_node_error(pn, "smaller than one sector");
		return -EINVAL;
	}
	if (pn->node.size == 0) {
		pn->node.size = have;
	} else if (pn->node.size > have) {
		char m[200];
		snprintf(m, sizeof(m),
			 "has %llu sectors but the storage expects %llu (was it replaced by a "
			 "smaller disk?)",
			 (unsigned long long)have, (unsigned long long)pn->node.size);
		describe_node_error(pn, m);
		return -EINVAL;
	}
	return 0;
}

/* How the storage connects to a remote node: its timeouts and credentials;
 * the nodes of a redundant storage (a mirror's legs) fail fast (the others
 * carry on) and ask for checksums (dst:csum-4k: verify and resync compare
 * sums, not data). */
static struct dev_nbd_opts node_opts(const struct storage_service *st)
{
	return (struct dev_nbd_opts){.io_timeout_s = st->io_timeout_s,
				     .request_timeout_s = st->request_timeout_s,
				     .fail_fast = st->alg->redundant,
				     .csum = st->alg->redundant,
				     .tls = st->node_tls,
				     .tls_psk = st->node_psk,
				     .tls_certs = st->node_certs,
				     .tls_username = st->node_user};
}

static int ident_check(void *arg, const uint8_t *buf, char *why, size_t whylen)
{
	const struct node_ident *ni = arg;
	return label_check(&ni->expect, buf, why, whylen);
}

/* The identity a node must show, or NULL for an unlabelled one (a node of a
 * storage made before labels, a mem: disk). */
static const struct dev_ident *node_ident(struct storage_service *st, const struct array_node *nd)
{
	if (!nd->label_off || !st->has_uuid)
		return NULL;
	struct node_ident *ni = xcalloc(1, sizeof(*ni));
	ni->ident.off = nd->label_off;
	ni->ident.len = LABEL_SIZE;
	ni->ident.check = ident_check;
	ni->ident.arg = ni;
	memcpy(ni->expect.storage, st->uuid, 16);
	memcpy(ni->expect.disk, nd->disk_id, 16);
	ni->expect.start = nd->start;
	ni->expect.name = st->svc.name;
	ni->next = st->idents;
	st->idents = ni;
	return &ni->ident;
}

/* A local disk's label, read at open (a file: reading it blocks briefly,
 * as the open itself does). */
static int check_local(const struct dev_ident *id, const char *path, char *why, size_t whylen)
{
	uint8_t *buf = xmalloc(id->len);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t r = fd < 0 ? -1 : pread(fd, buf, id->len, (off_t)id->off);
	int e = errno;
	if (fd >= 0)
		close(fd);
	int rc;
	if (r != (ssize_t)id->len) {
		snprintf(why, whylen, "reading its label: %s",
			 r < 0 ? strerror(e) : "the disk is too small to hold it");
		rc = -1;
	} else {
		rc = id->check(id->arg, buf, why, whylen);
	}
	free(buf);
	return rc;
}

/* Open a node's device on a spec: a remote one with its identity checked
 * on every connection, a local one checked now. */
static struct dev *open_node_dev(struct storage_service *st, const struct array_node *nd,
				 const struct dev_nbd_opts *base, dev_ready_fn ready, void *arg,
				 char *err, size_t errlen)
{
	const struct dev_ident *id = node_ident(st, nd);
	if (nd->remote) {
		struct dev_nbd_opts o = *base;
		o.ident = id;
		if (st->has_uuid) {
			o.fence = true;
			memcpy(o.fence_id, st->uuid, 16);
			o.fence_start = nd->start;
		}
		return dev_nbd_open(st->loop, nd->spec, &o, ready, arg);
	}
	char why[300];
	if (id && check_local(id, nd->spec, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "not used: %s", why);
		event_fire("label-mismatch", nd->name[0] ? nd->name : NULL, nd->spec, "%s", why);
		return NULL;
	}
	return dev_open_local(st->loop, nd->spec, false, err, errlen);
}

static struct dev *open_node(struct storage_service *st, struct pending_node *pn)
{
	struct dev_nbd_opts o = node_opts(st);
	/* At start, a node whose size the config knows need not be up yet
	 * (at boot its host may come later): the storage starts, IO to it
	 * waits. A redundant storage's node (a mirror leg) is dialed on, its
	 * IO failing meanwhile. A live add wants an answer now. */
	o.keep_trying = st->alg->redundant || (!pn->req && pn->node.size);
	o.min_size = pn->node.size * 512;
	char err[400];
	struct dev *d = open_node_dev(st, &pn->node, &o, node_ready, pn, err, sizeof(err));
	if (pn->node.remote)
		return d;
	if (!d) {
		pn->err = EIO;
		describe_node_error(pn, err);
	}
	pn->ready = true;
	return d;
}

/* ---- what it holds ---- */

#define HOLDS_MAX 24 /* uuids in a description (a client keeps 1023 bytes) */

/* " uuid U holds U,V,W": this storage's UUID and those of every storage
 * below it, as its remote nodes that are dst storages describe themselves
 * (asked once, at start), so that dst add can refuse a tree that loops. */
static void storage_holds(struct storage_service *st, struct strbuf *out)
{
	if (!st->has_uuid)
		return;
	char hex[33];
	uuid_format(st->uuid, hex);
	sb_printf(out, " uuid %s holds %s", hex, hex);
	unsigned count = 1;
	for (size_t i = 0; i < array_node_count(st->array) && count < HOLDS_MAX; i++) {
		const struct array_node *nd = array_node_at(st->array, i);
		if (!nd->remote)
			continue;
		const char *h = strstr(dev_nbd_description(nd->dev), " holds ");
		if (!h)
			continue;
		for (h += 7; count < HOLDS_MAX && strspn(h, "0123456789abcdef") >= 32; h++) {
			char u[33];
			memcpy(u, h, 32);
			u[32] = '\0';
			if (!strstr(out->s, u)) {
				sb_printf(out, ",%s", u);
				count++;
			}
			h += 32;
			if (*h != ',')
				break;
		}
	}
}

/* ---- show ---- */

/* What its users did: its NBD server's counters and its FUSE file's. */
static void storage_totals(struct storage_service *st, struct nbd_server_stats *out)
{
	nbd_server_get_stats(st->srv, out);
	if (st->fuse)
		fuse_frontend_add_stats(st->fuse, out);
	if (st->ublk)
		ublk_frontend_add_stats(st->ublk, out);
}

static void storage_show(struct service *s, struct strbuf *out)
{
	struct storage_service *st = container_of(s, struct storage_service, svc);
	struct dev *d = array_dev(st->array);
	char p[256];
#define PATH(suffix) (snprintf(p, sizeof(p), "%s/%s", s->name, suffix), p)
	sb_attr_str(out, PATH("name"), "%s", s->name);
	sb_attr_str(out, PATH("type"), "storage");
	sb_attr_str(out, PATH("alg"), "%s", st->alg->name);
	sb_attr_str(out, PATH("state"), "running");
	if (st->alg == &alg_stripe || st->geo.data)
		sb_attr_num(out, PATH("chunk"), st->geo.chunk);
	sb_attr_num(out, PATH("size"), d->size / 512);
	sb_attr_num(out, PATH("bytes"), d->size);
	sb_attr_num(out, PATH("io_timeout"), st->io_timeout_s);
	sb_attr_num(out, PATH("request_timeout"), st->request_timeout_s);
	array_show_nodes(st->array, out, s->name);
	array_show_alg(st->array, out, s->name);
	array_migrate_show(st->array, out, s->name);
	if (st->last_migration[0])
		sb_attr_str(out, PATH("last_migration"), "%s", st->last_migration);
	struct strbuf line;
	sb_init(&line);
	array_nodes_line(st->array, &line);
	sb_attr_str(out, PATH("nodes"), "%s", line.s);
	sb_free(&line);
	if (st->fuse) {
		fuse_frontend_show(st->fuse, out, s->name);
		/* sysfs only: asking the kernel for the loop device's status
		 * would stat the FUSE file, which waits for this very thread. */
		struct loop_record rec;
		if (loop_record_get(s->name, &rec) &&
		    loop_check(rec.dev, 0, fuse_frontend_path(st->fuse), false) == LOOP_LIVE)
			sb_attr_str(out, PATH("loop"), "%s", rec.dev);
	}
	if (st->knbd)
		kernel_nbd_show(st->knbd, out, s->name);
	if (st->ublk)
		ublk_frontend_show(st->ublk, out, s->name);
	sb_attr_num(out, PATH("uptime"), (ev_now_ns() - st->started_ns) / 1000000000ull);
	frontend_show_allow(&st->acl, out, s->name);
	struct nbd_server_stats totals;
	storage_totals(st, &totals);
	frontend_show_stats(st->srv, &totals, out, s->name);
#undef PATH
}

/* ---- metrics ---- */

static void storage_metrics(struct service *s, struct mx *m)
{
	struct storage_service *st = container_of(s, struct storage_service, svc);
	struct mx_labels l;
	mx_labels_init(&l);
	mx_label(&l, "storage", s->name);
	struct mx_labels il = mx_labels_with(&l, "alg", st->alg->name);
	mx_family(m, "dst_storage_info", MX_GAUGE, "A storage and its algorithm; always 1.");
	mx_gauge(m, "dst_storage_info", &il, 1);
	mx_family(m, "dst_storage_size_bytes", MX_GAUGE, "Size of the storage.");
	mx_gauge(m, "dst_storage_size_bytes", &l, array_dev(st->array)->size);
	mx_family(m, "dst_storage_nodes", MX_GAUGE, "Nodes of the storage.");
	mx_gauge(m, "dst_storage_nodes", &l, array_node_count(st->array));
	mx_family(m, "dst_storage_uptime_seconds", MX_GAUGE, "Seconds since the storage started.");
	mx_gauge(m, "dst_storage_uptime_seconds", &l,
		 (ev_now_ns() - st->started_ns) / 1000000000ull);
	struct nbd_server_stats totals;
	storage_totals(st, &totals);
	frontend_metrics(&totals, m, "storage", s->name);
	array_metrics(st->array, m, s->name);
}

/* ---- live add / remove ---- */

static void live_add_ready(struct pending_node *pn)
{
	struct storage_service *st = pn->st;
	char err[512];
	if (pn->err || settle_size(pn) < 0) {
		ctl_reply_error(pn->req, "%s", pn->msg);
		dev_destroy(pn->node.dev);
		free(pn->node.spec);
		free(pn);
		return;
	}
	if (array_add_node(st->array, &pn->node, err, sizeof(err)) < 0) {
		ctl_reply_error(pn->req, "%s", err);
		dev_destroy(pn->node.dev);
		free(pn->node.spec);
		free(pn);
		return;
	}
	log_info("storage %s: added node %s (%s), now %llu sectors", st->svc.name, pn->node.name,
		 pn->node.spec, (unsigned long long)(array_dev(st->array)->size / 512));
	char body[128];
	snprintf(body, sizeof(body), "%s %llu\n", pn->node.name, (unsigned long long)pn->node.size);
	ctl_reply(pn->req, body);
	free(pn);
}

static void node_ready(void *arg, struct dev *d, int err, const char *msg)
{
	struct pending_node *pn = arg;
	pn->ready = true;
	if (err && !pn->req && pn->st->alg->redundant && pn->node.size) {
		/* A mirror goes on without a leg: this one keeps being dialed
		 * and is resynced once it answers. */
		pn->down = true;
		log_warn("storage %s: leg %s (%s) cannot be reached (%s); starting without it",
			 pn->st->svc.name, pn->node.name, pn->node.spec, msg ? msg : strerror(err));
	} else if (err == EIO && !pn->req && pn->node.size && pn->node.remote &&
		   !dev_nbd_answered(d)) {
		/* Not up yet (dialed on, as open_node asked): its range
		 * waits for it, under io-timeout, as during a reconnect.
		 * One that answered but would not serve is a mistake: the
		 * start fails. */
		pn->down = true;
		log_warn("storage %s: node %s (%s) is not up yet (%s); starting without it, IO to "
			 "its range waits for it",
			 pn->st->svc.name, pn->node.name, pn->node.spec, msg ? msg : strerror(err));
	} else if (err) {
		pn->err = err;
		describe_node_error(pn, msg ? msg : strerror(err));
	}
	if (pn->req) {
		live_add_ready(pn);
		return;
	}
	if (--pn->st->connecting == 0)
		ev_loop_break(pn->st->loop);
}

static void removed(void *arg)
{
	struct storage_service *st = arg;
	log_info("storage %s: node %s removed", st->svc.name, st->remove_name);
	if (st->remove_req)
		ctl_reply(st->remove_req, NULL);
	st->remove_req = NULL;
}

/* ---- suspend / resume ---- */

static void suspended(void *arg, uint64_t held)
{
	struct ctl_req *req = arg;
	char body[64];
	snprintf(body, sizeof(body), "held %llu\n", (unsigned long long)held);
	ctl_reply(req, body);
}

/* A resume onto a new device: the device being opened. */
struct pending_resume {
	struct storage_service *st;
	struct ctl_req *req;
	char node[32];
	char *spec;
	bool has_id; /* the new disk's label (dst resume wrote it) */
	uint8_t id[16];
};

/* The node `name` as it would be on spec, for its identity check: the
 * same place, the new disk id (none: unlabelled). */
static struct array_node node_on(struct storage_service *st, const char *name, const char *spec,
				 bool remote, bool has_id, const uint8_t id[16])
{
	struct array_node nd = {.spec = (char *)spec, .remote = remote};
	int i = array_find_node(st->array, name);
	if (i >= 0 && has_id) {
		const struct array_node *old = array_node_at(st->array, (size_t)i);
		nd.start = old->start;
		nd.label_off = old->label_off;
		memcpy(nd.disk_id, id, 16);
	}
	return nd;
}

static void finish_resume(struct pending_resume *pr, struct dev *d)
{
	char err[512];
	struct array *a = pr->st->array;
	if (array_resume(a, pr->node, d, pr->spec, err, sizeof(err)) < 0) {
		if (d)
			dev_destroy(d);
		ctl_reply_error(pr->req, "%s", err);
	} else {
		if (d && pr->has_id)
			array_set_disk_id(a, pr->node, pr->id);
		log_info("storage %s: node %s resumed%s%s", pr->st->svc.name, pr->node,
			 d ? " on " : "", d ? pr->spec : "");
		event_fire("resume", pr->node, d ? pr->spec : NULL, d ? "on a new device" : NULL);
		ctl_reply(pr->req, NULL);
	}
	free(pr->spec);
	free(pr);
}

static void resume_dev_ready(void *arg, struct dev *d, int err, const char *msg)
{
	struct pending_resume *pr = arg;
	if (err) {
		ctl_reply_error(pr->req, "%s: %s", pr->spec, msg ? msg : strerror(err));
		dev_destroy(d);
		free(pr->spec);
		free(pr);
		return;
	}
	finish_resume(pr, d);
}

static void resume_command(struct storage_service *st, struct ctl_req *req, int argc, char **argv)
{
	struct pending_resume *pr = xcalloc(1, sizeof(*pr));
	pr->st = st;
	pr->req = req;
	snprintf(pr->node, sizeof(pr->node), "%s", argv[1]);
	if (argc == 2) {
		finish_resume(pr, NULL);
		return;
	}
	pr->spec = xstrdup(argv[3]);
	pr->has_id = argc == 5 && uuid_parse(argv[4], pr->id) == 0;
	bool remote = !strcmp(argv[2], "remote");
	struct array_node nd = node_on(st, pr->node, pr->spec, remote, pr->has_id, pr->id);
	struct dev_nbd_opts o = node_opts(st);
	char err[400];
	struct dev *d = open_node_dev(st, &nd, &o, resume_dev_ready, pr, err, sizeof(err));
	if (remote)
		return;
	if (!d) {
		ctl_reply_error(req, "%s: %s", pr->spec, err);
		free(pr->spec);
		free(pr);
		return;
	}
	finish_resume(pr, d);
}

/* ---- live migration (dst replace) ---- */

/* The config's `migrate` line, "NODE remote|disk RATE SPEC", says a
 * migration is under way: a restarted daemon begins it again. At cutover
 * the node's line takes the new spec and `migrate` goes, in one save. */
static int edit_conf(struct storage_service *st, const char *node, const char *spec, bool remote,
		     const uint8_t *id, const char *migrate, char *err, size_t errlen)
{
	char *path = state_path(st->svc.name, ".conf");
	struct conf c;
	int rc = conf_load(path, &c, err, errlen);
	if (rc < 0) {
		free(path);
		return rc;
	}
	if (spec) {
		size_t n = conf_count(&c, "node");
		for (size_t i = 0; i < n; i++) {
			struct node_conf nc;
			char nn[32];
			if (node_conf_parse(conf_get_nth(&c, "node", i), &nc, err, errlen) < 0)
				continue;
			node_conf_name(nc.start, nn, sizeof(nn));
			if (!strcmp(nn, node)) {
				char *old = nc.spec;
				nc.spec = (char *)spec;
				nc.remote = remote;
				if (id)
					memcpy(nc.id, id, 16);
				char *line = node_conf_format(&nc);
				conf_replace_nth(&c, "node", i, line);
				free(line);
				nc.spec = old;
			}
			node_conf_free(&nc);
		}
	}
	if (migrate)
		conf_set(&c, "migrate", migrate);
	else
		conf_del(&c, "migrate");
	rc = conf_save(path, &c, err, errlen);
	conf_free(&c);
	free(path);
	return rc;
}

struct pending_migration {
	struct storage_service *st;
	struct ctl_req *req; /* NULL: restarted by the daemon itself */
	char node[32];
	char *spec;
	bool remote;
	uint64_t rate;
	bool has_id; /* the new disk's label (dst replace wrote it) */
	uint8_t id[16];
};

static int migration_commit(void *arg, const char *node, const char *spec, char *err, size_t errlen)
{
	struct storage_service *st = arg;
	const uint8_t *id = st->mig_has_id ? st->mig_id : NULL;
	if (id)
		array_set_disk_id(st->array, node, id);
	return edit_conf(st, node, spec, !strncmp(spec, "nbd", 3), id, NULL, err, errlen);
}

static void migration_ended(void *arg, int err, const char *msg)
{
	struct storage_service *st = arg;
	snprintf(st->last_migration, sizeof(st->last_migration), "%s: %s", err ? "stopped" : "done",
		 msg);
	if (err) {
		char e[256];
		if (edit_conf(st, NULL, NULL, false, NULL, NULL, e, sizeof(e)) < 0)
			log_warn("storage %s: %s", st->svc.name, e);
	}
}

static void start_migration(struct pending_migration *pm, struct dev *d)
{
	struct storage_service *st = pm->st;
	char err[512];
	struct migrate_hooks hooks = {
	    .commit = migration_commit, .ended = migration_ended, .arg = st};
	/* (the commit hook may run inside: a dead node is replaced at once) */
	st->mig_has_id = pm->has_id;
	memcpy(st->mig_id, pm->id, 16);
	int rc = array_migrate_start(st->array, pm->node, d, pm->spec, pm->rate, &hooks, err,
				     sizeof(err));
	if (rc == 1) {
		rc = 0; /* rebuilt from the other nodes: no copy to resume at boot */
	} else if (rc == 0) {
		char hex[33] = "";
		if (pm->has_id)
			uuid_format(pm->id, hex);
		char *line =
		    xasprintf("%s %s %llu %s%s%s%s", pm->node, pm->remote ? "remote" : "disk",
			      (unsigned long long)pm->rate, pm->has_id ? "id=" : "", hex,
			      pm->has_id ? " " : "", pm->spec);
		rc = edit_conf(st, NULL, NULL, false, NULL, line, err, sizeof(err));
		free(line);
		if (rc < 0)
			array_migrate_abort(st->array, pm->node, NULL, 0);
	} else {
		dev_destroy(d);
	}
	if (pm->req) {
		if (rc < 0)
			ctl_reply_error(pm->req, "%s", err);
		else
			ctl_reply(pm->req, NULL);
	} else if (rc < 0) {
		log_warn("storage %s: cannot restart the migration of %s: %s", st->svc.name,
			 pm->node, err);
	}
	free(pm->spec);
	free(pm);
}

static void migration_dev_ready(void *arg, struct dev *d, int err, const char *msg)
{
	struct pending_migration *pm = arg;
	if (err) {
		char m[512];
		snprintf(m, sizeof(m), "new node %s: %s", pm->spec, msg ? msg : strerror(err));
		if (pm->req)
			ctl_reply_error(pm->req, "%s", m);
		else
			log_warn("storage %s: cannot restart a migration: %s", pm->st->svc.name, m);
		dev_destroy(d);
		free(pm->spec);
		free(pm);
		return;
	}
	start_migration(pm, d);
}

static void migrate_command(struct storage_service *st, struct ctl_req *req, const char *node,
			    const char *kind, const char *rate, const char *id, const char *spec)
{
	struct pending_migration *pm = xcalloc(1, sizeof(*pm));
	pm->st = st;
	pm->req = req;
	snprintf(pm->node, sizeof(pm->node), "%s", node);
	pm->spec = xstrdup(spec);
	pm->remote = !strcmp(kind, "remote");
	pm->has_id = id && uuid_parse(id, pm->id) == 0;
	if (parse_u64(rate, &pm->rate) < 0)
		pm->rate = 0;
	if (array_find_node(st->array, node) < 0) {
		char m[128];
		snprintf(m, sizeof(m), "no node named %s", node);
		if (req)
			ctl_reply_error(req, "%s", m);
		free(pm->spec);
		free(pm);
		return;
	}
	struct array_node nd = node_on(st, node, pm->spec, pm->remote, pm->has_id, pm->id);
	struct dev_nbd_opts o = node_opts(st);
	o.fail_fast = true; /* its failure aborts, quickly */
	char err[400];
	struct dev *d = open_node_dev(st, &nd, &o, migration_dev_ready, pm, err, sizeof(err));
	if (pm->remote)
		return;
	if (!d) {
		if (req)
			ctl_reply_error(req, "new node %s: %s", pm->spec, err);
		free(pm->spec);
		free(pm);
		return;
	}
	start_migration(pm, d);
}

/* A migration the config says was under way when dstd stopped: again,
 * from the start (the old node still has everything). */
static void restart_migration(struct ev_timer *t)
{
	struct storage_service *st = container_of(t, struct storage_service, migrate_restart);
	char *line = st->migrate_line;
	st->migrate_line = NULL;
	char node[32], kind[16], rate[32];
	int off = 0;
	if (line && sscanf(line, "%31s %15s %31s %n", node, kind, rate, &off) == 3 && off > 0) {
		log_info("storage %s: a migration of %s was under way: starting it again",
			 st->svc.name, node);
		char id[33] = "";
		const char *spec = line + off;
		if (!strncmp(spec, "id=", 3) && strlen(spec) > 36 && spec[35] == ' ') {
			memcpy(id, spec + 3, 32);
			spec += 36;
		}
		migrate_command(st, NULL, node, kind, rate, id[0] ? id : NULL, spec);
	}
	free(line);
}

/* verify OFFSET LENGTH RATE REPAIR (bytes, bytes or 0 for the rest,
 * bytes/s or 0, 0 or 1): dst verify checked them; they are checked again
 * here, where the storage's size is known. */
static void verify_command(struct storage_service *st, struct ctl_req *req, char **argv)
{
	struct verify_req r = {0};
	uint64_t repair;
	char err[512];
	if (parse_u64(argv[0], &r.off) < 0 || parse_u64(argv[1], &r.len) < 0 ||
	    parse_u64(argv[2], &r.rate) < 0 || parse_u64(argv[3], &repair) < 0 || repair > 1) {
		ctl_reply_error(req, "verify: bad arguments");
		return;
	}
	r.repair = repair;
	if (array_verify_start(st->array, &r, err, sizeof(err)) < 0)
		ctl_reply_error(req, "%s", err);
	else
		ctl_reply(req, NULL);
}

/* dst set: "set KEY VALUE" for the settings that change live. The CLI has
 * checked the value and saved it in the config already. */
static void set_command(struct storage_service *st, struct ctl_req *req, const char *key,
			const char *val)
{
	uint64_t x;
	if (!strcmp(key, "io-timeout") || !strcmp(key, "request-timeout")) {
		if (parse_u64(val, &x) < 0 || x > 86400 * 365 ||
		    (!strcmp(key, "request-timeout") && (x < 1 || x > 86400))) {
			ctl_reply_error(req, "%s '%s': out of range", key, val);
			return;
		}
		if (!strcmp(key, "io-timeout"))
			st->io_timeout_s = (unsigned)x;
		else
			st->request_timeout_s = (unsigned)x;
		for (size_t i = 0; i < array_node_count(st->array); i++) {
			struct dev *nd = array_node_at(st->array, i)->dev;
			if (nd && !strcmp(nd->ops->kind, "nbd"))
				dev_nbd_set_timeouts(nd, st->io_timeout_s, st->request_timeout_s);
		}
	} else if (!strcmp(key, "resync-rate")) {
		if (parse_size(val, &x) < 0) {
			ctl_reply_error(req, "resync-rate '%s': expected bytes/s like 50M", val);
			return;
		}
		char why[256];
		if (array_alg_set(st->array, "resync-rate", x, why, sizeof(why)) < 0) {
			ctl_reply_error(req, "resync-rate: %s has no resync", st->alg->name);
			return;
		}
	} else if (!strcmp(key, "csum")) {
		if (strcmp(val, "on") != 0 && strcmp(val, "off") != 0) {
			ctl_reply_error(req, "csum '%s': expected on or off", val);
			return;
		}
		char why[256];
		if (array_alg_set(st->array, "csum", !strcmp(val, "on"), why, sizeof(why)) < 0) {
			ctl_reply_error(req, "csum: %s has no legs to compare", st->alg->name);
			return;
		}
	} else if (!strcmp(key, "nbd-reconnect-timeout")) {
		if (parse_u64(val, &x) < 0 || x < 1 || x > 86400 * 365) {
			ctl_reply_error(req, "%s '%s': out of range", key, val);
			return;
		}
		st->nbd_reconnect_s = (unsigned)x;
		char err[256];
		if (st->knbd &&
		    kernel_nbd_set_reconnect_timeout(st->knbd, (unsigned)x, err, sizeof(err)) < 0) {
			ctl_reply_error(req, "%s", err);
			return;
		}
	} else {
		ctl_reply_error(req, "%s cannot change while the storage runs", key);
		return;
	}
	log_info("storage %s: %s set to %s by dst set", st->svc.name, key, val);
	ctl_reply(req, NULL);
}

/* ---- ublk: started with the storage, or attached and detached live ---- */

static void ublk_reap(struct ev_deferred *d)
{
	struct storage_service *st = container_of(d, struct storage_service, ublk_reap);
	ublk_frontend_free(st->ublk_dead);
	st->ublk_dead = NULL;
}

/* u is done with (failed, or detached): freed once its callback is over. */
static void ublk_retire(struct storage_service *st, struct ublk_frontend *u)
{
	if (st->ublk == u)
		st->ublk = NULL;
	ublk_frontend_free(st->ublk_dead); /* an earlier one, long idle */
	st->ublk_dead = u;
	ev_defer(st->loop, &st->ublk_reap);
}

static void ublk_ready(void *arg, struct ublk_frontend *u, const char *err)
{
	struct storage_service *st = arg;
	if (err) {
		log_err("storage %s: %s", st->svc.name, err);
		ublk_retire(st, u);
	}
	if (st->ublk_at_start) {
		snprintf(st->ublk_err, sizeof(st->ublk_err), "%s", err ? err : "");
		ev_loop_break(st->loop);
		return;
	}
	struct ctl_req *req = st->ublk_req;
	st->ublk_req = NULL;
	if (!req)
		return;
	if (err)
		ctl_reply_error(req, "%s", err);
	else
		ctl_reply(req, NULL);
}

static void ublk_attach_command(struct storage_service *st, struct ctl_req *req, const char *id_s,
				const char *queues_s, const char *depth_s)
{
	char err[400];
	if (st->ublk) {
		ctl_reply_error(req, "storage %s already has the ublk device %s", st->svc.name,
				ublk_frontend_path(st->ublk));
		return;
	}
	uint32_t id;
	unsigned queues, depth;
	/* "0": the default */
	if (ublk_parse_conf(id_s, strcmp(queues_s, "0") ? queues_s : NULL,
			    strcmp(depth_s, "0") ? depth_s : NULL, &id, &queues, &depth, err,
			    sizeof(err)) < 0) {
		ctl_reply_error(req, "%s", err);
		return;
	}
	st->ublk_req = req;
	st->ublk = ublk_frontend_start(st->loop, array_dev(st->array), st->svc.name, id, queues,
				       depth, ublk_ready, st, err, sizeof(err));
	if (!st->ublk) {
		st->ublk_req = NULL;
		ctl_reply_error(req, "%s", err);
	}
}

static void ublk_detached(void *arg)
{
	struct storage_service *st = arg;
	struct ctl_req *req = st->ublk_req;
	st->ublk_req = NULL;
	st->ublk_detaching = false;
	ublk_retire(st, st->ublk);
	if (req)
		ctl_reply(req, NULL);
}

static void ublk_detach_command(struct storage_service *st, struct ctl_req *req)
{
	if (!st->ublk || st->ublk_detaching || st->ublk_req) {
		ctl_reply_error(req,
				st->ublk ? "storage %s: its ublk device is busy starting or "
					   "stopping; try again"
					 : "storage %s has no ublk device",
				st->svc.name);
		return;
	}
	st->ublk_req = req;
	st->ublk_detaching = true;
	ublk_frontend_stop(st->ublk, ublk_detached, st);
}

static void storage_command(struct service *s, struct ctl_req *req, int argc, char **argv)
{
	struct storage_service *st = container_of(s, struct storage_service, svc);
	char err[512];
	if (!strcmp(argv[0], "add-node") && argc >= 2) {
		/* The rest of the line is a node config line. */
		struct strbuf line;
		sb_init(&line);
		for (int i = 1; i < argc; i++)
			sb_printf(&line, "%s%s", i > 1 ? " " : "", argv[i]);
		struct node_conf nc;
		if (node_conf_parse(line.s, &nc, err, sizeof(err)) < 0) {
			sb_free(&line);
			ctl_reply_error(req, "%s", err);
			return;
		}
		sb_free(&line);
		struct pending_node *pn = xcalloc(1, sizeof(*pn));
		pn->st = st;
		pn->req = req;
		pn->node.remote = nc.remote;
		pn->node.start = nc.start;
		pn->node.size = nc.size;
		pn->node.spec = nc.spec;
		pn->node.label_off = nc.label;
		memcpy(pn->node.disk_id, nc.id, 16);
		node_conf_name(nc.start, pn->node.name, sizeof(pn->node.name));
		if (!st->alg->can_grow) {
			ctl_reply_error(req,
					"%s cannot grow while running: its layout would change",
					st->alg->name);
			free(pn->node.spec);
			free(pn);
			return;
		}
		pn->node.dev = open_node(st, pn);
		if (!pn->node.remote)
			live_add_ready(pn);
		/* remote: live_add_ready runs from node_ready */
		return;
	}
	if (!strcmp(argv[0], "remove-node") && argc == 2) {
		if (st->remove_req) {
			ctl_reply_error(req, "another removal is in progress");
			return;
		}
		snprintf(st->remove_name, sizeof(st->remove_name), "%s", argv[1]);
		st->remove_req = req;
		if (array_remove_last(st->array, argv[1], removed, st, err, sizeof(err)) < 0) {
			st->remove_req = NULL;
			ctl_reply_error(req, "%s", err);
		}
		return;
	}
	if (!strcmp(argv[0], "replace") && (argc == 5 || argc == 6) &&
	    (!strcmp(argv[2], "remote") || !strcmp(argv[2], "disk"))) {
		migrate_command(st, req, argv[1], argv[2], argv[3], argc == 6 ? argv[5] : NULL,
				argv[4]);
		return;
	}
	if (!strcmp(argv[0], "replace-abort") && argc == 2) {
		if (array_migrate_abort(st->array, argv[1], err, sizeof(err)) < 0)
			ctl_reply_error(req, "%s", err);
		else
			ctl_reply(req, NULL);
		return;
	}
	if (!strcmp(argv[0], "suspend") && argc == 2) {
		if (array_suspend(st->array, argv[1], suspended, req, err, sizeof(err)) < 0)
			ctl_reply_error(req, "%s", err);
		else {
			log_info("storage %s: node %s suspended", s->name, argv[1]);
			event_fire("suspend", argv[1], NULL, NULL);
		}
		return;
	}
	if (!strcmp(argv[0], "resume") &&
	    (argc == 2 || ((argc == 4 || argc == 5) &&
			   (!strcmp(argv[2], "remote") || !strcmp(argv[2], "disk"))))) {
		resume_command(st, req, argc, argv);
		return;
	}
	if (!strcmp(argv[0], "set") && argc == 3) {
		set_command(st, req, argv[1], argv[2]);
		return;
	}
	if (!strcmp(argv[0], "verify") && argc == 5) {
		verify_command(st, req, argv + 1);
		return;
	}
	if (!strcmp(argv[0], "verify-abort") && argc == 1) {
		if (array_verify_abort(st->array, err, sizeof(err)) < 0)
			ctl_reply_error(req, "%s", err);
		else
			ctl_reply(req, NULL);
		return;
	}
	if (!strcmp(argv[0], "ublk-attach") && argc == 4) {
		ublk_attach_command(st, req, argv[1], argv[2], argv[3]);
		return;
	}
	if (!strcmp(argv[0], "ublk-detach") && argc == 1) {
		ublk_detach_command(st, req);
		return;
	}
	ctl_reply_error(req, "unknown command '%s' for a storage", argv[0]);
}

static void frontend_stopped(void *arg)
{
	struct storage_service *st = arg;
	if (--st->stopping == 0)
		st->stop_done(st->stop_arg);
}

/* Every frontend stops at once; the service is stopped when the last is. */
static void storage_stop(struct service *s, void (*done)(void *), void *arg)
{
	struct storage_service *st = container_of(s, struct storage_service, svc);
	/* Requests held by a suspended node, or waiting for one that is
	 * unreachable, would keep the drain waiting. */
	array_drop_held(st->array);
	for (size_t i = 0; i < array_node_count(st->array); i++) {
		struct dev *nd = array_node_at(st->array, i)->dev;
		if (!strcmp(nd->ops->kind, "nbd"))
			dev_nbd_stop(nd);
	}
	st->stop_done = done;
	st->stop_arg = arg;
	bool ublk = st->ublk && !st->ublk_detaching;
	st->stopping = 1 + (st->fuse != NULL) + ublk;
	/* The kernel fails what it still has in flight and sends its
	 * disconnect on the socket, which the NBD server then closes. */
	kernel_nbd_disconnect(st->knbd);
	if (st->fuse)
		fuse_frontend_stop(st->fuse, frontend_stopped, st);
	if (ublk)
		ublk_frontend_stop(st->ublk, frontend_stopped, st);
	nbd_server_shutdown(st->srv, 10, frontend_stopped, st);
}

static void storage_destroy(struct service *s)
{
	struct storage_service *st = container_of(s, struct storage_service, svc);
	event_set_resolver(NULL, NULL);
	event_track_nodes(false);
	fuse_frontend_free(st->fuse);
	kernel_nbd_free(st->knbd);
	ev_defer_cancel(st->loop, &st->ublk_reap);
	ublk_frontend_free(st->ublk);
	ublk_frontend_free(st->ublk_dead);
	nbd_server_free(st->srv);
	tls_creds_free(st->tls);
	acl_free(&st->acl);
	ev_timer_stop(st->loop, &st->migrate_restart);
	free(st->migrate_line);
	array_free(st->array);
	while (st->idents) {
		struct node_ident *ni = st->idents;
		st->idents = ni->next;
		free(ni);
	}
	tls_creds_free(st->node_tls);
	free(st->node_psk);
	free(st->node_certs);
	free(st->node_user);
	free(s->name);
	free(st);
}

static const struct service_ops storage_ops = {
    .show = storage_show,
    .metrics = storage_metrics,
    .command = storage_command,
    .stop = storage_stop,
    .destroy = storage_destroy,
};

/* ---- start-up ---- */

/* Events fired by a remote node's connection know its URI only. */
static const char *node_of_spec(void *arg, const char *spec)
{
	struct storage_service *st = arg;
	int i = st->array ? array_find_node(st->array, spec) : -1;
	return i < 0 ? NULL : array_node_at(st->array, (size_t)i)->name;
}

static int open_all_nodes(struct storage_service *st, const struct conf *conf,
			  struct pending_node **out, size_t *count, char *err, size_t errlen)
{
	size_t n = conf_count(conf, "node");
	struct pending_node *pns = xcalloc(n ? n : 1, sizeof(*pns));
	*out = pns;
	*count = n;
	for (size_t i = 0; i < n; i++) {
		struct node_conf nc;
		if (node_conf_parse(conf_get_nth(conf, "node", i), &nc, err, errlen) < 0)
			return -EINVAL;
		pns[i].st = st;
		pns[i].node.remote = nc.remote;
		pns[i].node.start = nc.start;
		pns[i].node.size = nc.size;
		pns[i].node.spec = nc.spec;
		pns[i].node.label_off = nc.label;
		memcpy(pns[i].node.disk_id, nc.id, 16);
		node_conf_name(nc.start, pns[i].node.name, sizeof(pns[i].node.name));
	}
	for (size_t i = 0; i < n; i++) {
		if (pns[i].node.remote)
			st->connecting++;
		pns[i].node.dev = open_node(st, &pns[i]);
	}
	/* Nothing else runs yet: let the loop drive the connections. */
	if (st->connecting)
		ev_run(st->loop);
	for (size_t i = 0; i < n; i++) {
		if (!pns[i].err && pns[i].node.dev && !pns[i].down)
			settle_size(&pns[i]);
		if (pns[i].msg[0]) {
			snprintf(err, errlen, "%s", pns[i].msg);
			return -EIO;
		}
	}
	return 0;
}

struct service *storage_service_new(struct ev_loop *loop, const char *name, const struct conf *conf,
				    char *err, size_t errlen)
{
	const char *alg_name = conf_get(conf, "alg");
	const struct alg_ops *alg = alg_name ? alg_find(alg_name) : NULL;
	if (!alg) {
		snprintf(err, errlen, "storage %s: unknown algorithm '%s' (expected %s)", name,
			 alg_name ? alg_name : "(none)", alg_names());
		return NULL;
	}
	struct storage_service *st = xcalloc(1, sizeof(*st));
	st->svc.ops = &storage_ops;
	st->svc.loop = loop;
	st->svc.name = xstrdup(name);
	st->loop = loop;
	st->alg = alg;
	st->migrate_restart.fn = restart_migration;
	st->io_timeout_s = 120;
	st->request_timeout_s = 30;
	st->started_ns = ev_now_ns();
	st->ublk_reap.fn = ublk_reap;
	event_set_resolver(node_of_spec, st);
	/* A redundant storage says itself when it is degraded. */
	event_track_nodes(!alg->redundant);
	const char *v;
	uint64_t x;
	if (alg_geom_conf(conf, &st->geo, err, errlen) < 0)
		goto fail;
	if ((v = conf_get(conf, "io-timeout"))) {
		if (parse_u64(v, &x) < 0 || x > 86400 * 365) {
			snprintf(err, errlen, "io-timeout '%s': expected seconds (0: forever)", v);
			goto fail;
		}
		st->io_timeout_s = (unsigned)x;
	}
	st->nbd_reconnect_s = NBD_RECONNECT_DEFAULT_S;
	if ((v = conf_get(conf, "nbd-reconnect-timeout"))) {
		if (parse_u64(v, &x) < 0 || x < 1 || x > 86400 * 365) {
			snprintf(err, errlen,
				 "nbd-reconnect-timeout '%s': expected seconds (1 or more)", v);
			goto fail;
		}
		st->nbd_reconnect_s = (unsigned)x;
	}
	if ((v = conf_get(conf, "request-timeout"))) {
		if (parse_u64(v, &x) < 0 || x < 1 || x > 86400) {
			snprintf(err, errlen, "request-timeout '%s': expected 1 to 86400 seconds",
				 v);
			goto fail;
		}
		st->request_timeout_s = (unsigned)x;
	}
	uint32_t ublk_id = UBLK_ID_AUTO;
	unsigned ublk_queues, ublk_depth;
	if (ublk_parse_conf(conf_get(conf, "ublk"), conf_get(conf, "ublk-queues"),
			    conf_get(conf, "ublk-depth"), &ublk_id, &ublk_queues, &ublk_depth, err,
			    errlen) < 0)
		goto fail;
	uint64_t backlog = 64;
	if ((v = conf_get(conf, "backlog")) &&
	    (parse_u64(v, &backlog) < 0 || !backlog || backlog > 65535)) {
		snprintf(err, errlen, "backlog '%s': expected 1..65535", v);
		goto fail;
	}
	/* Before any node is connected: a bad limit fails at once. */
	struct nbd_server_config cfg = {0};
	if (frontend_limits(conf, &cfg, err, errlen) < 0)
		goto fail;

	const char *npsk = conf_get(conf, "node-tls-psk"),
		   *ncerts = conf_get(conf, "node-tls-certs");
	st->node_psk = npsk ? xstrdup(npsk) : NULL;
	st->node_certs = ncerts ? xstrdup(ncerts) : NULL;
	st->node_user = conf_get(conf, "node-tls-username")
			    ? xstrdup(conf_get(conf, "node-tls-username"))
			    : NULL;
	if (npsk || ncerts) {
		char e[400];
		st->node_tls = tls_creds_client(npsk, conf_get(conf, "node-tls-username"), ncerts,
						e, sizeof(e));
		if (!st->node_tls) {
			snprintf(err, errlen, "storage %s: credentials for nbds:// nodes: %s", name,
				 e);
			goto fail;
		}
	}
	int tls_mode;
	if (frontend_tls(conf, &tls_mode, &st->tls, err, errlen) < 0)
		goto fail;
	if (frontend_allow(conf, &st->acl, err, errlen) < 0)
		goto fail;
	if ((v = conf_get(conf, "uuid"))) {
		if (uuid_parse(v, st->uuid) < 0) {
			snprintf(err, errlen, "storage %s: uuid '%s' is not 32 hex digits", name,
				 v);
			goto fail;
		}
		st->has_uuid = true;
	}

	struct pending_node *pns;
	size_t n;
	if (open_all_nodes(st, conf, &pns, &n, err, errlen) < 0) {
		for (size_t i = 0; i < n; i++) {
			dev_destroy(pns[i].node.dev);
			free(pns[i].node.spec);
		}
		free(pns);
		goto fail;
	}
	struct array_node *nodes = xcalloc(n ? n : 1, sizeof(*nodes));
	for (size_t i = 0; i < n; i++)
		nodes[i] = pns[i].node;
	free(pns);
	st->array = array_new(loop, alg, &st->geo, nodes, n, err, errlen);
	if (!st->array) {
		for (size_t i = 0; i < n; i++) {
			dev_destroy(nodes[i].dev);
			free(nodes[i].spec);
		}
		free(nodes);
		goto fail;
	}
	if (alg->setup) {
		struct alg_conf mc = {0};
		if ((v = conf_get(conf, "region-size")) && parse_size(v, &mc.region) < 0) {
			snprintf(err, errlen, "region-size '%s': expected a size like 1M", v);
			goto fail;
		}
		if ((v = conf_get(conf, "resync-rate")) && parse_size(v, &mc.resync_rate) < 0) {
			snprintf(err, errlen, "resync-rate '%s': expected bytes/s like 50M", v);
			goto fail;
		}
		if (!st->has_uuid) {
			snprintf(err, errlen,
				 "storage %s: the config has no valid uuid (a %s storage "
				 "gets one from dst create)",
				 name, alg->name);
			goto fail;
		}
		memcpy(mc.uuid, st->uuid, 16);
		mc.name = name;
		mc.assume_clean = (v = conf_get(conf, "assume-clean")) && !strcmp(v, "yes");
		mc.no_csum = (v = conf_get(conf, "csum")) && !strcmp(v, "off");
		char *bm = state_path(name, ".bitmap");
		mc.bitmap_path = bm;
		int mrc = array_alg_setup(st->array, &mc, err, errlen);
		free(bm);
		if (mrc < 0)
			goto fail;
	}
	struct dev *d = array_dev(st->array);
	char desc[1024];
	struct strbuf holds;
	sb_init(&holds);
	storage_holds(st, &holds);
	/* The uuids let dst add see that a URI is this storage itself, or a
	 * storage that holds it (a tree that would loop). */
	snprintf(desc, sizeof(desc), "dst storage %s (%s)%s", name, alg->name, holds.s);
	sb_free(&holds);
	cfg.name = name;
	cfg.desc = desc;
	cfg.dev = d;
	cfg.acl = &st->acl;
	cfg.tls = (enum tls_mode)tls_mode;
	cfg.tls_creds = st->tls;
	st->srv = nbd_server_new(loop, &cfg, err, errlen);
	if (!st->srv)
		goto fail;
	char *sock = state_path(name, ".sock");
	int lrc = frontend_listen(st->srv, conf, (int)backlog, NULL, sock, err, errlen);
	free(sock);
	if (lrc < 0)
		goto fail;
	if ((v = conf_get(conf, "fuse"))) {
		st->fuse = fuse_frontend_new(loop, d, name, v, err, errlen);
		if (!st->fuse)
			goto fail;
	}
	if ((v = conf_get(conf, "nbd-device"))) {
		st->knbd =
		    kernel_nbd_new(loop, st->srv, d, name, v, st->nbd_reconnect_s, err, errlen);
		if (!st->knbd)
			goto fail;
	}
	if (!conf_get(conf, "ublk"))
		ublk_warn_stale(loop, name);
	if (conf_get(conf, "ublk")) {
		/* The loop runs (serving the new device's first reads) until
		 * the device is there or has failed. */
		st->ublk_at_start = true;
		st->ublk = ublk_frontend_start(loop, d, name, ublk_id, ublk_queues, ublk_depth,
					       ublk_ready, st, err, errlen);
		if (!st->ublk)
			goto fail;
		ev_run(loop);
		st->ublk_at_start = false;
		if (st->ublk_err[0]) {
			snprintf(err, errlen, "%s", st->ublk_err);
			goto fail;
		}
	}
	log_info("storage %s: %s over %zu nodes, %llu sectors", name, alg->name, n,
		 (unsigned long long)(d->size / 512));
	if ((v = conf_get(conf, "migrate"))) {
		st->migrate_line = xstrdup(v);
		ev_timer_start(loop, &st->migrate_restart, 0);
	}
	return &st->svc;
fail:
	storage_destroy(&st->svc);
	return NULL;
}
