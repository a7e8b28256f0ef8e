/* service.h - what one dstd runs: an export node or a storage.
 *
 * dstd.c owns the process (daemonizing, pid file, signals, control socket);
 * a service owns the devices and frontends and answers control commands.
 */
#ifndef DST_DAEMON_SERVICE_H
#define DST_DAEMON_SERVICE_H

#include <stdbool.h>
#include <stddef.h>

#include "common/config.h"
#include "common/strbuf.h"

struct ev_loop;
struct ctl_req;
struct mx;
struct service;

struct service_ops {
	/* Attribute lines for `dst show` (sb_attr_*), paths under the name. */
	void (*show)(struct service *s, struct strbuf *out);
	/* Its metrics families (common/metrics.h) into m: dstd adds dst_up
	 * before and OpenMetrics' "# EOF" after. */
	void (*metrics)(struct service *s, struct mx *m);
	/* Control commands other than show/stop; reply through ctl_reply*. */
	void (*command)(struct service *s, struct ctl_req *req, int argc, char **argv);
	/* Optional: is someone still using the service, so that a plain
	 * `dst stop` must refuse (--force stops it all the same)? If so,
	 * true and who, one line, into why. */
	bool (*in_use)(struct service *s, struct strbuf *why);
	/* Graceful stop: finish in-flight IO, then call done. */
	void (*stop)(struct service *s, void (*done)(void *arg), void *arg);
	void (*destroy)(struct service *s);
};

struct service {
	const struct service_ops *ops;
	struct ev_loop *loop;
	char *name;
};

/* Constructors; NULL with a one-line reason in err. */
struct service *export_service_new(struct ev_loop *loop, const char *name, const struct conf *conf,
				   char *err, size_t errlen);
struct service *storage_service_new(struct ev_loop *loop, const char *name, const struct conf *conf,
				    char *err, size_t errlen);

#endif
