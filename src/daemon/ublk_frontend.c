/* ublk_frontend.c - a storage as /dev/ublkbN (see ublk_frontend.h).
 *
 * Setting up: GET_FEATURES (user copy and user recovery with reissue are
 * required: Linux 6.5+), ADD_DEV, SET_PARAMS (size, block sizes, the
 * storage's flush/FUA/discard/write-zeroes and read-only-ness), then the
 * queues fetch (ublk_queue.c) and START_DEV, which the kernel answers once
 * the disk is added: it reads the partition table through the device
 * meanwhile, which this daemon serves, so START_DEV is sent asynchronously
 * and the loop runs until its answer.
 *
 * Whose device. A ublk device carries a 64-bit word for its server
 * (ublksrv_flags), which the kernel keeps and reports: dst puts "dst" and a
 * hash of the storage's state path there, so a daemon finds the device of
 * its storage again (ublk = auto) and never takes another program's or
 * another storage's.
 *
 * Surviving the daemon. The device is made with UBLK_F_USER_RECOVERY and
 * UBLK_F_USER_RECOVERY_REISSUE: when the daemon dies its ring is torn down,
 * the kernel quiesces the device (new IO waits in the block layer, nothing
 * fails) and puts back the requests the dead daemon had taken. The next
 * daemon of the storage finds the device quiesced and takes it back:
 * START_USER_RECOVERY (answered EBUSY until the kernel has let go of the
 * dead one's files: retried for a while), a new /dev/ublkcN and fetches,
 * END_USER_RECOVERY, and the waiting IO goes on. A write sent again may land
 * twice: the same data at the same place, which nothing newer has overtaken
 * (the block layer answered neither copy), and the dead daemon's own copy
 * died with its node connections, seconds before. A device that never got
 * started (its daemon died between ADD_DEV and START_DEV) is deleted and
 * made again.
 *
 * Stopping: STOP_DEV (the kernel removes the disk, after the requests in
 * flight, served meanwhile), the queues closed, DEL_DEV. `dst stop` refuses
 * before that while the device is mounted or open.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/ev.h"
#include "common/log.h"
#include "common/state.h"
#include "common/strbuf.h"
#include "common/util.h"
#include "dev/dev.h"
#include "nbd/server.h"
#include "ublk_abi.h"
#include "ublk_ctrl.h"
#include "ublk_frontend.h"
#include "ublk_queue.h"

/* How long a new daemon waits for the kernel to let go of a dead one. */
#define RECOVERY_TRIES	    100
#define RECOVERY_RETRY_NS   (100ull * 1000000)
#define UBLK_ZERO_PIECE	    (1u << 30)		  /* a remote node takes < 4 GiB per request */
#define DST_UBLK_OWNER_MARK 0x6473740000000000ull /* "dst" */

enum ustate { U_STARTING, U_LIVE, U_STOPPING, U_DONE };

struct ublk_frontend {
	struct ev_loop *loop;
	struct dev *dev;
	char *name;
	uint32_t id;
	unsigned queues, depth;
	uint64_t owner;
	uint64_t features; /* what the kernel's driver offers (GET_FEATURES) */
	struct ublk_ctrl *ctrl;
	struct ublk_queues *io;
	struct ublksrv_ctrl_dev_info info;
	struct ublk_params params;
	enum ustate state;
	bool created; /* ADD_DEV in this start: deleted again if it fails */
	bool recovering;
	unsigned recoveries;
	unsigned tries;
	struct ev_timer retry_t;
	ublk_ready_fn ready;
	void *ready_arg;
	bool stop_wanted;
	void (*stop_done)(void *);
	void *stop_arg;
	char path[32];
};

unsigned ublk_default_queues(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : n > 4 ? 4 : (unsigned)n;
}

int ublk_parse_id(const char *v, uint32_t *id, char *err, size_t errlen)
{
	uint64_t x;
	if (!v || !strcmp(v, "auto")) {
		*id = UBLK_ID_AUTO;
		return 0;
	}
	if (parse_u64(v, &x) < 0 || x > UBLK_MAX_ID) {
		snprintf(err, errlen, "ublk '%s': expected auto or a device number 0..%u", v,
			 UBLK_MAX_ID);
		return -1;
	}
	*id = (uint32_t)x;
	return 0;
}

static int parse_range(const char *key, const char *v, unsigned dflt, unsigned max, unsigned *n,
		       char *err, size_t errlen)
{
	uint64_t x;
	if (!v) {
		*n = dflt;
		return 0;
	}
	if (parse_u64(v, &x) < 0 || x < 1 || x > max) {
		snprintf(err, errlen, "%s '%s': expected 1..%u", key, v, max);
		return -1;
	}
	*n = (unsigned)x;
	return 0;
}

int ublk_parse_queues(const char *v, unsigned *n, char *err, size_t errlen)
{
	return parse_range("ublk-queues", v, ublk_default_queues(), UBLK_MAX_QUEUES, n, err,
			   errlen);
}

int ublk_parse_depth(const char *v, unsigned *n, char *err, size_t errlen)
{
	return parse_range("ublk-depth", v, UBLK_DEFAULT_DEPTH, UBLK_MAX_DEPTH, n, err, errlen);
}

int ublk_parse_conf(const char *id_v, const char *queues_v, const char *depth_v, uint32_t *id,
		    unsigned *queues, unsigned *depth, char *err, size_t errlen)
{
	if (ublk_parse_id(id_v, id, err, errlen) < 0 ||
	    ublk_parse_queues(queues_v, queues, err, errlen) < 0 ||
	    ublk_parse_depth(depth_v, depth, err, errlen) < 0)
		return -1;
	if (*queues * *depth > UBLK_MAX_REQUESTS) {
		snprintf(err, errlen, "ublk-queues x ublk-depth is %u: at most %u requests",
			 *queues * *depth, UBLK_MAX_REQUESTS);
		return -1;
	}
	return 0;
}

/* "dst" and a hash (FNV-1a) of the storage's state path. */
static uint64_t owner_mark(const char *name)
{
	char *p = state_path(name, "");
	uint32_t h = 2166136261u;
	for (const char *c = p; *c; c++)
		h = (h ^ (uint8_t)*c) * 16777619u;
	free(p);
	return DST_UBLK_OWNER_MARK | h;
}

static bool pid_alive(int pid)
{
	return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

static const char *state_name(unsigned s)
{
	switch (s) {
	case UBLK_S_DEV_DEAD: return "not started";
	case UBLK_S_DEV_LIVE: return "live";
	case UBLK_S_DEV_QUIESCED: return "quiesced";
	default: return "failing IO";
	}
}

static int get_info(struct ublk_ctrl *ctrl, uint32_t id, struct ublksrv_ctrl_dev_info *info)
{
	memset(info, 0, sizeof(*info));
	return ublk_ctrl_sync(ctrl, DST_UBLK_GET_DEV_INFO, id, info, sizeof(*info), 0);
}

/* What a start made, unmade: the queues closed, a device it added deleted
 * (the kernel's devices as they were). */
static void undo_start(struct ublk_frontend *u)
{
	ublk_queues_close(u->io);
	u->io = NULL;
	if (u->created) {
		int r = ublk_ctrl_sync(u->ctrl, DST_UBLK_DEL_DEV, u->id, NULL, 0, 0);
		if (r < 0)
			log_warn("ublk: deleting device %u again: %s", u->id, strerror(-r));
		u->created = false;
	}
}

/* The start is over: tell the owner, and stop at once if it asked to. */
static void start_over(struct ublk_frontend *u, const char *why)
{
	ublk_ready_fn ready = u->ready;
	u->ready = NULL;
	if (why) {
		u->state = U_DONE;
		bool stop = u->stop_wanted;
		if (ready)
			ready(u->ready_arg, u, why);
		/* A stop asked for meanwhile: there is nothing left to stop. */
		if (stop && u->stop_done)
			u->stop_done(u->stop_arg);
		return;
	}
	u->state = U_LIVE;
	log_info("storage %s: ublk device %s (%u queues of %u%s)", u->name, u->path, u->queues,
		 u->depth, u->recoveries ? "; taken back from a daemon that died" : "");
	if (ready)
		ready(u->ready_arg, u, NULL);
	if (u->stop_wanted)
		ublk_frontend_stop(u, u->stop_done, u->stop_arg);
}

/* A start failed after it began: undo what it made, say why. */
static void start_failed(struct ublk_frontend *u, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void start_failed(struct ublk_frontend *u, const char *fmt, ...)
{
	char why[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	undo_start(u);
	start_over(u, why);
}

static void fill_params(struct ublk_frontend *u)
{
	struct dev *d = u->dev;
	struct ublk_params *p = &u->params;
	memset(p, 0, sizeof(*p));
	p->len = sizeof(*p);
	p->types = UBLK_PARAM_TYPE_BASIC;
	uint32_t max_io = UBLK_MAX_IO;
	if (d->max_io && d->max_io < max_io)
		max_io = d->max_io & ~4095u;
	if (max_io < 4096)
		max_io = 4096;
	p->basic.attrs = ((d->caps & DEV_CAP_READONLY) ? UBLK_ATTR_READ_ONLY : 0) |
			 ((d->caps & DEV_CAP_FLUSH) ? UBLK_ATTR_VOLATILE_CACHE : 0) |
			 ((d->caps & DEV_CAP_FUA) ? UBLK_ATTR_FUA : 0);
	p->basic.logical_bs_shift = d->min_block > 512 ? 12 : 9;
	p->basic.physical_bs_shift = 12;
	p->basic.io_min_shift = p->basic.logical_bs_shift;
	p->basic.io_opt_shift = 12;
	p->basic.max_sectors = max_io >> 9;
	p->basic.dev_sectors = d->size >> 9;
	bool trim = d->caps & DEV_CAP_TRIM, zero = d->caps & DEV_CAP_ZERO;
	if ((trim || zero) && !(d->caps & DEV_CAP_READONLY)) {
		p->types |= UBLK_PARAM_TYPE_DISCARD;
		p->discard.discard_granularity = 4096;
		p->discard.max_discard_sectors = trim ? UBLK_ZERO_PIECE >> 9 : 0;
		p->discard.max_discard_segments = 1;
		p->discard.max_write_zeroes_sectors = zero ? UBLK_ZERO_PIECE >> 9 : 0;
	}
}

static void on_live(void *arg, int res)
{
	struct ublk_frontend *u = arg;
	if (res < 0) {
		start_failed(u, "ublk: %s device %u: %s",
			     u->recovering ? "taking back" : "starting", u->id, strerror(-res));
		return;
	}
	u->created = false;
	if (u->recovering)
		u->recoveries++;
	start_over(u, NULL);
}

/* Queues up and fetching: START_DEV, or END_USER_RECOVERY. */
static int open_queues(struct ublk_frontend *u, char *err, size_t errlen)
{
	u->io = ublk_queues_open(u->loop, u->dev, u->id, u->queues, u->depth, err, errlen);
	if (!u->io)
		return -1;
	uint32_t op = u->recovering ? DST_UBLK_END_RECOVERY : DST_UBLK_START_DEV;
	int r = ublk_ctrl_async(u->ctrl, op, u->id, NULL, 0, (uint64_t)getpid(), on_live, u);
	if (r < 0) {
		snprintf(err, errlen, "ublk: device %u: %s", u->id, strerror(-r));
		return -1;
	}
	return 0;
}

static int create(struct ublk_frontend *u, uint32_t id, char *err, size_t errlen)
{
	struct ublksrv_ctrl_dev_info *info = &u->info;
	memset(info, 0, sizeof(*info));
	info->nr_hw_queues = (uint16_t)u->queues;
	info->queue_depth = (uint16_t)u->depth;
	info->max_io_buf_bytes = UBLK_MAX_IO;
	info->dev_id = id;
	info->ublksrv_pid = getpid();
	info->flags = UBLK_F_USER_RECOVERY | UBLK_F_USER_RECOVERY_REISSUE | UBLK_F_USER_COPY |
		      UBLK_F_CMD_IOCTL_ENCODE;
	info->ublksrv_flags = u->owner;
	int r = ublk_ctrl_sync(u->ctrl, DST_UBLK_ADD_DEV, id, info, sizeof(*info), 0);
	if (r < 0) {
		if (r == -EEXIST)
			snprintf(err, errlen, "ublk: device %u exists already", id);
		else
			snprintf(err, errlen, "ublk: adding a device: %s", strerror(-r));
		return -1;
	}
	u->id = info->dev_id;
	u->created = true;
	snprintf(u->path, sizeof(u->path), "/dev/ublkb%u", u->id);
	fill_params(u);
	r = ublk_ctrl_sync(u->ctrl, DST_UBLK_SET_PARAMS, u->id, &u->params, sizeof(u->params), 0);
	if (r < 0) {
		snprintf(err, errlen, "ublk: device %u: setting its parameters: %s", u->id,
			 strerror(-r));
		return -1;
	}
	return open_queues(u, err, errlen);
}

static void try_recovery(struct ev_timer *t)
{
	struct ublk_frontend *u = container_of(t, struct ublk_frontend, retry_t);
	int r = ublk_ctrl_sync(u->ctrl, DST_UBLK_START_RECOVERY, u->id, NULL, 0, 0);
	if (r == -EBUSY && ++u->tries < RECOVERY_TRIES) {
		ev_timer_start(u->loop, &u->retry_t, RECOVERY_RETRY_NS);
		return;
	}
	if (r < 0) {
		start_failed(u, "ublk: taking back device %u: %s%s", u->id, strerror(-r),
			     r == -EBUSY ? " (the kernel still holds it for its dead server)" : "");
		return;
	}
	char err[400];
	if (open_queues(u, err, sizeof(err)) < 0)
		start_failed(u, "%s", err);
}

/* Take back device id, left by a dead daemon of this storage. */
static int recover(struct ublk_frontend *u, uint32_t id, const struct ublksrv_ctrl_dev_info *info,
		   char *err, size_t errlen)
{
	struct ublk_params p = {.len = sizeof(p)};
	int r = ublk_ctrl_sync(u->ctrl, DST_UBLK_GET_PARAMS, id, &p, sizeof(p), 0);
	if (r < 0) {
		snprintf(err, errlen, "ublk: device %u: reading its parameters: %s", id,
			 strerror(-r));
		return -1;
	}
	if (p.basic.dev_sectors != u->dev->size >> 9) {
		snprintf(err, errlen,
			 "ublk: device %u still serves storage %s at its old size (%llu "
			 "sectors, now %llu): unmount it, then start the storage with "
			 "another ublk device, or stop it with this one",
			 id, u->name, (unsigned long long)p.basic.dev_sectors,
			 (unsigned long long)(u->dev->size >> 9));
		return -1;
	}
	u->id = id;
	u->info = *info;
	u->params = p;
	u->queues = info->nr_hw_queues;
	u->depth = info->queue_depth;
	u->recovering = true;
	snprintf(u->path, sizeof(u->path), "/dev/ublkb%u", id);
	log_info("storage %s: taking back %s, left by dstd %d (%s)", u->name, u->path,
		 info->ublksrv_pid, state_name(info->state));
	ev_timer_start(u->loop, &u->retry_t, 0);
	return 0;
}

/* Device id exists and is this storage's: take it back, or remake it. */
static int reuse(struct ublk_frontend *u, uint32_t id, const struct ublksrv_ctrl_dev_info *info,
		 char *err, size_t errlen)
{
	if (info->state == UBLK_S_DEV_DEAD) {
		log_info("storage %s: ublk device %u was left not started; making it again",
			 u->name, id);
		int r = ublk_ctrl_sync(u->ctrl, DST_UBLK_DEL_DEV, id, NULL, 0, 0);
		if (r < 0) {
			snprintf(err, errlen, "ublk: deleting stale device %u: %s", id,
				 strerror(-r));
			return -1;
		}
		return create(u, id, err, errlen);
	}
	if (info->state == UBLK_S_DEV_LIVE && info->ublksrv_pid != getpid() &&
	    pid_alive(info->ublksrv_pid)) {
		snprintf(err, errlen, "ublk: device %u of storage %s is served by pid %d", id,
			 u->name, info->ublksrv_pid);
		return -1;
	}
	/* Quiesced, or live with its server dead and the kernel not done
	 * noticing: START_USER_RECOVERY waits (EBUSY) until it is. */
	return recover(u, id, info, err, errlen);
}

/* The device whose owner mark is owner among those that exist, if any. */
static bool find_own(struct ublk_ctrl *ctrl, uint64_t owner, uint32_t *id,
		     struct ublksrv_ctrl_dev_info *info)
{
	DIR *d = opendir("/dev");
	struct dirent *de;
	bool found = false;
	while (d && !found && (de = readdir(d))) {
		unsigned n;
		char tail;
		if (sscanf(de->d_name, "ublkc%u%c", &n, &tail) != 1)
			continue;
		if (get_info(ctrl, n, info) >= 0 && info->ublksrv_flags == owner) {
			*id = n;
			found = true;
		}
	}
	if (d)
		closedir(d);
	return found;
}

void ublk_warn_stale(struct ev_loop *loop, const char *name)
{
	if (access("/dev/ublk-control", F_OK) < 0)
		return;
	char err[400];
	struct ublk_ctrl *ctrl = ublk_ctrl_open(loop, err, sizeof(err));
	if (!ctrl)
		return;
	struct ublksrv_ctrl_dev_info info;
	uint32_t id;
	if (find_own(ctrl, owner_mark(name), &id, &info))
		log_warn("storage %s: its ublk device /dev/ublkb%u is still there (%s, left by "
			 "dstd %d), but this start has no --ublk: IO on it waits until the "
			 "storage is started with --ublk again, which takes it back",
			 name, id, state_name(info.state), info.ublksrv_pid);
	ublk_ctrl_close(ctrl);
}

struct ublk_frontend *ublk_frontend_start(struct ev_loop *loop, struct dev *dev, const char *name,
					  uint32_t id, unsigned queues, unsigned depth,
					  ublk_ready_fn ready, void *arg, char *err, size_t errlen)
{
	struct ublk_ctrl *ctrl = ublk_ctrl_open(loop, err, errlen);
	if (!ctrl)
		return NULL;
	struct ublk_frontend *u = xcalloc(1, sizeof(*u));
	u->loop = loop;
	u->dev = dev;
	u->name = xstrdup(name);
	u->ctrl = ctrl;
	u->queues = queues;
	u->depth = depth;
	u->owner = owner_mark(name);
	u->retry_t.fn = try_recovery;
	u->ready = ready;
	u->ready_arg = arg;
	u->state = U_STARTING;
	uint64_t features = 0;
	int r = ublk_ctrl_sync(ctrl, DST_UBLK_GET_FEATURES, 0, &features, sizeof(features), 0);
	uint64_t need = UBLK_F_USER_COPY | UBLK_F_USER_RECOVERY | UBLK_F_USER_RECOVERY_REISSUE;
	u->features = features;
	if (r < 0 || (features & need) != need) {
		snprintf(err, errlen,
			 "ublk: this kernel's ublk driver lacks user copy or user recovery "
			 "(Linux 6.5 or later has them)%s%s",
			 r < 0 ? ": " : "", r < 0 ? strerror(-r) : "");
		goto fail;
	}
	struct ublksrv_ctrl_dev_info info;
	if (id != UBLK_ID_AUTO) {
		r = get_info(ctrl, id, &info);
		if (r == -ENODEV)
			r = create(u, id, err, errlen);
		else if (r < 0) {
			snprintf(err, errlen, "ublk: device %u: %s", id, strerror(-r));
			r = -1;
		} else if (info.ublksrv_flags != u->owner) {
			snprintf(err, errlen,
				 "ublk: device %u is in use by another ublk server (pid %d, %s); "
				 "choose another number, or --ublk for any free one",
				 id, info.ublksrv_pid, state_name(info.state));
			r = -1;
		} else
			r = reuse(u, id, &info, err, errlen);
	} else if (find_own(ctrl, u->owner, &id, &info)) {
		r = reuse(u, id, &info, err, errlen);
	} else {
		r = create(u, UBLK_ID_AUTO, err, errlen);
	}
	if (r < 0) {
		undo_start(u);
		goto fail;
	}
	return u;
fail:
	u->ready = NULL;
	ublk_frontend_free(u);
	return NULL;
}

static void on_deleted(void *arg, int res)
{
	struct ublk_frontend *u = arg;
	if (res < 0)
		log_warn("storage %s: deleting %s: %s", u->name, u->path, strerror(-res));
	else
		log_info("storage %s: %s removed", u->name, u->path);
	u->state = U_DONE;
	if (u->stop_done)
		u->stop_done(u->stop_arg);
}

static void queues_idle(void *arg)
{
	struct ublk_frontend *u = arg;
	ublk_queues_close(u->io);
	u->io = NULL;
	int r = ublk_ctrl_async(u->ctrl, DST_UBLK_DEL_DEV, u->id, NULL, 0, 0, on_deleted, u);
	if (r < 0)
		on_deleted(u, r);
}

static void on_stopped(void *arg, int res)
{
	struct ublk_frontend *u = arg;
	if (res < 0)
		log_warn("storage %s: stopping %s: %s", u->name, u->path, strerror(-res));
	/* The disk is gone; its last requests may still be on their way. */
	ublk_queues_when_idle(u->io, queues_idle, u);
}

void ublk_frontend_stop(struct ublk_frontend *u, void (*done)(void *arg), void *arg)
{
	u->stop_done = done;
	u->stop_arg = arg;
	if (u->state == U_STARTING) {
		u->stop_wanted = true; /* once the start is over */
		return;
	}
	if (u->state != U_LIVE) {
		u->state = U_DONE;
		if (done)
			done(arg);
		return;
	}
	u->state = U_STOPPING;
	u->stop_wanted = false;
	log_info("storage %s: stopping %s", u->name, u->path);
	int r = ublk_ctrl_async(u->ctrl, DST_UBLK_STOP_DEV, u->id, NULL, 0, 0, on_stopped, u);
	if (r < 0)
		on_stopped(u, r);
}

void ublk_frontend_free(struct ublk_frontend *u)
{
	if (!u)
		return;
	ev_timer_stop(u->loop, &u->retry_t);
	ublk_queues_close(u->io);
	ublk_ctrl_close(u->ctrl);
	free(u->name);
	free(u);
}

const char *ublk_frontend_path(const struct ublk_frontend *u)
{
	return u->path;
}

void ublk_frontend_add_stats(const struct ublk_frontend *u, struct nbd_server_stats *st)
{
	if (u->io)
		ublk_queues_add_stats(u->io, st);
}

void ublk_frontend_show(const struct ublk_frontend *u, struct strbuf *out, const char *name)
{
	char p[256];
#define PATH(leaf) (snprintf(p, sizeof(p), "%s/%s", name, leaf), p)
	static const char *const states[] = {"starting", "live", "stopping", "stopped"};
	sb_attr_str(out, PATH("ublk_device"), "%s", u->path);
	sb_attr_num(out, PATH("ublk_id"), u->id);
	sb_attr_str(out, PATH("ublk_state"), "%s", states[u->state]);
	sb_attr_num(out, PATH("ublk_queues"), u->queues);
	sb_attr_num(out, PATH("ublk_depth"), u->depth);
	sb_attr_str(out, PATH("ublk_copy"), "user copy (pread/pwrite on /dev/ublkc%u)", u->id);
	sb_attr_str(out, PATH("ublk_kernel_features"), "0x%llx", (unsigned long long)u->features);
	sb_attr_num(out, PATH("ublk_recoveries"), u->recoveries);
#undef PATH
	if (u->io)
		ublk_queues_show(u->io, out, name);
}
