/* export.c - the export node service: one local device behind our NBD server,
 * with per-address access rules (DST's export node).
 *
 * Config keys: type = export, disk, listen (repeatable ADDR:PORT), socket
 * (repeatable path), allow (repeatable CIDR[:ro|:rw]), readonly, shared
 * (read-write without claiming the disk: dev/claim.h), backlog,
 * buffers (IO buffer budget, e.g. 128M), requests (request slots), tls
 * (off|on|require), tls-psk, tls-certs, tls-verify-peer (frontend.c).
 * Limits: max-clients, client-budget, handshake-timeout, idle-timeout
 * (frontend_limits.h).
 *
 * A plain `dst stop` refuses while clients are connected, naming them
 * (and, for one on this host, its process): a storage on top of the
 * export would otherwise just see its node fail.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/acl.h"
#include "common/ev.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/proc.h"
#include "common/util.h"
#include "common/who.h"
#include "ctl.h"
#include "dev/dev.h"
#include "frontend.h"
#include "frontend_limits.h"
#include "nbd/server.h"
#include "service.h"

struct export_service {
	struct service svc;
	struct dev *dev;
	struct nbd_server *srv;
	struct acl acl;
	struct tls_creds *tls;
	char *disk;
	bool readonly, shared;
	uint64_t started_ns;
};

static void export_show(struct service *s, struct strbuf *out)
{
	struct export_service *e = container_of(s, struct export_service, svc);
	char p[256];
#define PATH(suffix) (snprintf(p, sizeof(p), "%s/%s", s->name, suffix), p)
	sb_attr_str(out, PATH("name"), "%s", s->name);
	sb_attr_str(out, PATH("type"), "export");
	sb_attr_str(out, PATH("state"), "running");
	sb_attr_str(out, PATH("disk"), "%s", e->dev->desc);
	sb_attr_num(out, PATH("size"), e->dev->size / 512);
	sb_attr_num(out, PATH("bytes"), e->dev->size);
	sb_attr_str(out, PATH("access"), "%s", e->readonly ? "ro" : "rw");
	const char *claim = dev_file_claim(e->dev);
	sb_attr_str(out, PATH("claim"), "%s", claim ? claim : "none (memory)");
	frontend_show_allow(&e->acl, out, s->name);
	sb_attr_num(out, PATH("uptime"), (ev_now_ns() - e->started_ns) / 1000000000ull);
	frontend_show(e->srv, out, s->name);
#undef PATH
}

static void export_command(struct service *s, struct ctl_req *req, int argc, char **argv)
{
	ctl_reply_error(req, "unknown command '%s' for an export", argv[0]);
}

/* Clients named in a refused stop; the rest are counted. */
#define IN_USE_NAMED 8

static bool export_in_use(struct service *s, struct strbuf *why)
{
	struct export_service *e = container_of(s, struct export_service, svc);
	struct nbd_client_info ci[IN_USE_NAMED];
	size_t n = nbd_server_clients(e->srv, ci, IN_USE_NAMED);
	if (!n)
		return false;
	size_t shown = MIN(n, (size_t)IN_USE_NAMED);
	int fds[IN_USE_NAMED];
	pid_t pids[IN_USE_NAMED];
	for (size_t i = 0; i < shown; i++)
		fds[i] = ci[i].fd;
	proc_socket_peers(fds, shown, pids);
	sb_printf(why, "%zu client%s connected: ", n, n == 1 ? "" : "s");
	for (size_t i = 0; i < shown; i++) {
		struct who w;
		sb_printf(why, "%s%s%s", i ? ", " : "",
			  strcmp(ci[i].peer, "unix") ? ci[i].peer : "a Unix socket client",
			  ci[i].readonly ? " (ro)" : "");
		if (!who_is(pids[i], &w))
			continue;
		if (w.name[0])
			sb_printf(why, " from dstd %d (%s %s)", (int)w.pid, w.type, w.name);
		else
			sb_printf(why, " from %s %d", w.comm, (int)w.pid);
	}
	if (n > shown)
		sb_printf(why, " and %zu more", n - shown);
	return true;
}

static void export_stop(struct service *s, void (*done)(void *), void *arg)
{
	struct export_service *e = container_of(s, struct export_service, svc);
	nbd_server_shutdown(e->srv, 10, done, arg);
}

static void export_destroy(struct service *s)
{
	struct export_service *e = container_of(s, struct export_service, svc);
	nbd_server_free(e->srv);
	tls_creds_free(e->tls);
	dev_destroy(e->dev);
	acl_free(&e->acl);
	free(e->disk);
	free(s->name);
	free(e);
}

static void export_metrics(struct service *s, struct mx *m)
{
	struct export_service *e = container_of(s, struct export_service, svc);
	struct mx_labels l;
	mx_labels_init(&l);
	mx_label(&l, "export", s->name);
	mx_family(m, "dst_export_size_bytes", MX_GAUGE, "Size of the exported disk.");
	mx_gauge(m, "dst_export_size_bytes", &l, e->dev->size);
	mx_family(m, "dst_export_uptime_seconds", MX_GAUGE, "Seconds since the export started.");
	mx_gauge(m, "dst_export_uptime_seconds", &l, (ev_now_ns() - e->started_ns) / 1000000000ull);
	struct nbd_server_stats st;
	nbd_server_get_stats(e->srv, &st);
	frontend_metrics(&st, m, "export", s->name);
}

static const struct service_ops export_ops = {
    .show = export_show,
    .metrics = export_metrics,
    .command = export_command,
    .in_use = export_in_use,
    .stop = export_stop,
    .destroy = export_destroy,
};

static bool conf_bool(const struct conf *c, const char *key)
{
	const char *v = conf_get(c, key);
	return v && (!strcmp(v, "1") || !strcmp(v, "yes") || !strcmp(v, "true"));
}

struct service *export_service_new(struct ev_loop *loop, const char *name, const struct conf *conf,
				   char *err, size_t errlen)
{
	const char *disk = conf_get(conf, "disk");
	if (!disk) {
		snprintf(err, errlen, "export %s: config has no 'disk'", name);
		return NULL;
	}
	struct export_service *e = xcalloc(1, sizeof(*e));
	e->svc.ops = &export_ops;
	e->svc.loop = loop;
	e->svc.name = xstrdup(name);
	e->disk = xstrdup(disk);
	e->readonly = conf_bool(conf, "readonly");
	e->shared = conf_bool(conf, "shared");
	e->started_ns = ev_now_ns();

	if (frontend_allow(conf, &e->acl, err, errlen) < 0)
		goto fail;
	uint64_t backlog = 64, budget = 0, requests = 0;
	const char *v;
	if ((v = conf_get(conf, "backlog")) &&
	    (parse_u64(v, &backlog) < 0 || !backlog || backlog > 65535)) {
		snprintf(err, errlen, "backlog '%s': expected 1..65535", v);
		goto fail;
	}
	if ((v = conf_get(conf, "buffers")) && parse_size(v, &budget) < 0) {
		snprintf(err, errlen, "buffers '%s': expected a size like 128M", v);
		goto fail;
	}
	if ((v = conf_get(conf, "requests")) && (parse_u64(v, &requests) < 0 || requests > 65536)) {
		snprintf(err, errlen, "requests '%s': expected 1..65536", v);
		goto fail;
	}
	int tls_mode;
	if (frontend_tls(conf, &tls_mode, &e->tls, err, errlen) < 0)
		goto fail;
	/* Read-write, the disk is ours alone unless --shared (dev/claim.h). */
	unsigned flags = e->readonly ? DEV_OPEN_READONLY : e->shared ? 0 : DEV_OPEN_CLAIM;
	char derr[400];
	errno = 0;
	e->dev = dev_open_local_flags(loop, disk, flags, derr, sizeof(derr));
	if (!e->dev) {
		/* Held by a process (not a mount, nor a device mapper over a
		 * block device, which nothing should share): say how to share. */
		bool busy = errno == EBUSY && strstr(derr, ": in use by ");
		snprintf(err, errlen, "export %s: %s%s", name, derr,
			 busy ? " (--readonly to serve it read-only; --shared only if two writers "
				"are meant)"
			      : "");
		goto fail;
	}
	struct nbd_server_config cfg = {
	    .name = name,
	    .desc = e->dev->desc,
	    .dev = e->dev,
	    .readonly = e->readonly,
	    .acl = &e->acl,
	    .buf_budget = budget,
	    .max_requests = (unsigned)requests,
	    .tls = (enum tls_mode)tls_mode,
	    .tls_creds = e->tls,
	};
	if (frontend_limits(conf, &cfg, err, errlen) < 0)
		goto fail;
	e->srv = nbd_server_new(loop, &cfg, err, errlen);
	if (!e->srv)
		goto fail;
	if (frontend_listen(e->srv, conf, (int)backlog, "127.0.0.1:10809", NULL, err, errlen) < 0)
		goto fail;
	log_info("export %s: serving %s (%llu bytes, %s, TLS %s)", name, e->dev->desc,
		 (unsigned long long)e->dev->size, e->readonly ? "read-only" : "read-write",
		 tls_mode_name((enum tls_mode)tls_mode));
	return &e->svc;
fail:
	export_destroy(&e->svc);
	return NULL;
}
