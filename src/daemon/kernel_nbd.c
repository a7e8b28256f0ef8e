/* kernel_nbd.c - attach a storage as /dev/nbdN through the kernel's nbd
 * generic netlink family (see kernel_nbd.h).
 *
 * Raw generic netlink (linux/genetlink.h, linux/nbd-netlink.h), no libnl:
 * five small requests (resolve the family, STATUS, CONNECT, RECONFIGURE,
 * DISCONNECT) do not need a library. They are synchronous, on the loop
 * thread: CONNECT and RECONFIGURE set the device up and return without
 * waiting for its IO (which this daemon serves: a kernel that read the device
 * inside them would deadlock it; none does, seen in the VM tests).
 *
 * The kernel gets one end of an AF_UNIX socketpair (NBD_ATTR_SOCKETS); the
 * other end becomes a connection of the storage's NBD server, adopted in the
 * transmission phase, so kernel requests take the same path as any NBD
 * client's: request slots, buffer pool, backpressure, flush to every node.
 * The device's backend identifier is "dst:NAME" (sysfs
 * /sys/block/nbdN/backend); a device connected for anything else is refused.
 *
 * Surviving the daemon. The device is set up with no request timeout and a
 * dead-connection timeout (nbd-reconnect-timeout): when this daemon dies
 * (kill -9, a crash) its socket closes, the kernel marks the connection dead
 * and new IO waits, up to that timeout, for another. The daemon that starts
 * next finds the device still connected for dst:NAME and gives it a new
 * socket with RECONFIGURE: waiting IO goes on, and what the dead daemon had
 * taken but not answered the kernel sends again (it checks stuck requests
 * every 30 s, its default request timer, and requeues those sent on a socket
 * since replaced). A mounted filesystem sees a pause, not an error. The same
 * path serves a connection this daemon loses while it runs (conn_closed).
 * A write sent again may land twice: the same data at the same place. The
 * filesystem writes nothing newer there before it is answered, and the dead
 * daemon's own copy died with its node connections, seconds before.
 *
 * Tested in a VM with a real kernel (tests/vm/test_kernel_nbd.sh, make
 * vm-check); on a host whose kernel has no nbd driver the test skips.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/genetlink.h>
#include <linux/nbd-netlink.h>
#include <linux/nbd.h>
#include <linux/netlink.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "common/ev.h"
#include "common/log.h"
#include "common/util.h"
#include "dev/dev.h"
#include "kernel_nbd.h"
#include "nbd/server.h"

#define NL_BUF 8192

/* ---- a netlink message under construction ---- */

struct nlmsg {
	union {
		struct nlmsghdr h;
		char b[NL_BUF];
	} u;
	size_t len;
};

static void msg_init(struct nlmsg *m, uint16_t family, uint8_t cmd, uint8_t version)
{
	memset(m, 0, sizeof(*m));
	m->len = NLMSG_HDRLEN + GENL_HDRLEN;
	m->u.h.nlmsg_type = family;
	m->u.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	struct genlmsghdr *g = NLMSG_DATA(&m->u.h);
	g->cmd = cmd;
	g->version = version;
}

static struct nlattr *attr_put(struct nlmsg *m, uint16_t type, const void *data, size_t len)
{
	size_t need = NLA_ALIGN(NLA_HDRLEN + len);
	if (m->len + need > sizeof(m->u.b))
		abort(); /* our messages are tiny */
	struct nlattr *a = (struct nlattr *)(m->u.b + m->len);
	a->nla_type = type;
	a->nla_len = (uint16_t)(NLA_HDRLEN + len);
	if (len)
		memcpy((char *)a + NLA_HDRLEN, data, len);
	memset((char *)a + NLA_HDRLEN + len, 0, need - NLA_HDRLEN - len);
	m->len += need;
	return a;
}

static void attr_u32(struct nlmsg *m, uint16_t type, uint32_t v)
{
	attr_put(m, type, &v, sizeof(v));
}

static void attr_u64(struct nlmsg *m, uint16_t type, uint64_t v)
{
	attr_put(m, type, &v, sizeof(v));
}

static struct nlattr *nest_start(struct nlmsg *m, uint16_t type)
{
	return attr_put(m, type | NLA_F_NESTED, NULL, 0);
}

static void nest_end(struct nlmsg *m, struct nlattr *a)
{
	a->nla_len = (uint16_t)((m->u.b + m->len) - (char *)a);
}

/* First attribute of type within [p, p+len), or NULL. */
static const struct nlattr *attr_find(const void *p, size_t len, uint16_t type)
{
	const char *c = p;
	while (len >= NLA_HDRLEN) {
		const struct nlattr *a = (const struct nlattr *)c;
		if (a->nla_len < NLA_HDRLEN || a->nla_len > len)
			return NULL;
		if ((a->nla_type & NLA_TYPE_MASK) == type)
			return a;
		size_t step = NLA_ALIGN(a->nla_len);
		if (step >= len)
			return NULL;
		c += step;
		len -= step;
	}
	return NULL;
}

static const void *attr_data(const struct nlattr *a)
{
	return (const char *)a + NLA_HDRLEN;
}

static size_t attr_len(const struct nlattr *a)
{
	return a->nla_len - NLA_HDRLEN;
}

/* ---- talking to the kernel ---- */

static int nl_open(char *err, size_t errlen)
{
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
	if (fd < 0) {
		snprintf(err, errlen, "generic netlink socket: %s", strerror(errno));
		return -1;
	}
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
	struct timeval tv = {.tv_sec = 10};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		snprintf(err, errlen, "generic netlink socket: bind: %s", strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* Send m; collect the first data reply's attributes into reply (if not
 * NULL) and wait for the ack. 0 or -errno (the kernel's answer). */
static int nl_transact(int fd, struct nlmsg *m, struct nlmsg *reply)
{
	static uint32_t seq;
	m->u.h.nlmsg_len = (uint32_t)m->len;
	m->u.h.nlmsg_seq = ++seq;
	struct sockaddr_nl to = {.nl_family = AF_NETLINK};
	if (sendto(fd, m->u.b, m->len, 0, (struct sockaddr *)&to, sizeof(to)) < 0)
		return -errno;
	if (reply)
		reply->len = 0;
	static char buf[NL_BUF * 2];
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		}
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n);
		     h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_seq != m->u.h.nlmsg_seq)
				continue;
			if (h->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(h);
				return e->error; /* 0: the ack */
			}
			if (h->nlmsg_type == NLMSG_DONE)
				return 0;
			if (reply && !reply->len && h->nlmsg_len <= sizeof(reply->u.b)) {
				memcpy(reply->u.b, h, h->nlmsg_len);
				reply->len = h->nlmsg_len;
			}
		}
	}
}

/* The reply's attributes: after the netlink and genetlink headers. */
static const void *reply_attrs(const struct nlmsg *r, size_t *len)
{
	size_t off = NLMSG_HDRLEN + GENL_HDRLEN;
	*len = r->len > off ? r->len - off : 0;
	return r->u.b + off;
}

static int resolve_family(int fd, char *err, size_t errlen)
{
	struct nlmsg m, r;
	msg_init(&m, GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 1);
	attr_put(&m, CTRL_ATTR_FAMILY_NAME, NBD_GENL_FAMILY_NAME, sizeof(NBD_GENL_FAMILY_NAME));
	int rc = nl_transact(fd, &m, &r);
	size_t len;
	const void *attrs = reply_attrs(&r, &len);
	const struct nlattr *id = rc == 0 ? attr_find(attrs, len, CTRL_ATTR_FAMILY_ID) : NULL;
	if (!id || attr_len(id) < sizeof(uint16_t)) {
		snprintf(err, errlen,
			 "kernel NBD is not available: the \"%s\" generic netlink family does not "
			 "resolve (%s); load the nbd kernel module (modprobe nbd)",
			 NBD_GENL_FAMILY_NAME, rc ? strerror(-rc) : "no family id");
		return -ENOENT;
	}
	uint16_t v;
	memcpy(&v, attr_data(id), sizeof(v));
	return v;
}

/* A generic netlink socket with the nbd family's id in *family: the
 * socket, or -1 with a reason in err. */
static int nbd_nl_open(int *family, char *err, size_t errlen)
{
	int fd = nl_open(err, errlen);
	if (fd < 0)
		return -1;
	*family = resolve_family(fd, err, errlen);
	if (*family < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Is nbd device index connected? 1, 0, or -errno. */
static int device_connected(int fd, int family, unsigned index)
{
	struct nlmsg m, r;
	msg_init(&m, (uint16_t)family, NBD_CMD_STATUS, NBD_GENL_VERSION);
	attr_u32(&m, NBD_ATTR_INDEX, index);
	int rc = nl_transact(fd, &m, &r);
	if (rc < 0)
		return rc;
	size_t len;
	const void *attrs = reply_attrs(&r, &len);
	const struct nlattr *list = attr_find(attrs, len, NBD_ATTR_DEVICE_LIST);
	const struct nlattr *item =
	    list ? attr_find(attr_data(list), attr_len(list), NBD_DEVICE_ITEM) : NULL;
	const struct nlattr *conn =
	    item ? attr_find(attr_data(item), attr_len(item), NBD_DEVICE_CONNECTED) : NULL;
	if (!conn || !attr_len(conn))
		return 0;
	return *(const uint8_t *)attr_data(conn) != 0;
}

static int send_disconnect(int fd, int family, unsigned index)
{
	struct nlmsg m;
	msg_init(&m, (uint16_t)family, NBD_CMD_DISCONNECT, NBD_GENL_VERSION);
	attr_u32(&m, NBD_ATTR_INDEX, index);
	return nl_transact(fd, &m, NULL);
}

/* /sys/block/nbdN/backend: who the connected device was set up for. */
static void read_backend(unsigned index, char *out, size_t len)
{
	char p[64];
	snprintf(p, sizeof(p), "/sys/block/nbd%u/backend", index);
	read_line_file(p, out, len);
}

/* The header of older kernels lacks it; the driver takes it since 6.10
 * (earlier ones ignore the bit and write zeroes as plain writes). */
#ifndef NBD_FLAG_SEND_WRITE_ZEROES
#define NBD_FLAG_SEND_WRITE_ZEROES (1 << 6)
#endif

static uint64_t server_flags(const struct dev *d)
{
	uint64_t f = NBD_FLAG_HAS_FLAGS;
	if (d->caps & DEV_CAP_READONLY)
		f |= NBD_FLAG_READ_ONLY;
	if (d->caps & DEV_CAP_FLUSH)
		f |= NBD_FLAG_SEND_FLUSH;
	if (d->caps & DEV_CAP_FUA)
		f |= NBD_FLAG_SEND_FUA;
	if (d->caps & DEV_CAP_TRIM)
		f |= NBD_FLAG_SEND_TRIM;
	if (d->caps & DEV_CAP_ZERO)
		f |= NBD_FLAG_SEND_WRITE_ZEROES;
	if (d->caps & DEV_CAP_MULTI_CONN)
		f |= NBD_FLAG_CAN_MULTI_CONN;
	return f;
}

/* ---- the frontend ---- */

struct kernel_nbd {
	struct ev_loop *loop;
	struct nbd_server *srv;
	struct dev *dev;
	char *path, *name;
	char backend[128]; /* "dst:NAME" */
	unsigned index;
	unsigned dead_timeout_s;
	bool connected;	       /* ours: until kernel_nbd_disconnect */
	struct nbd_conn *conn; /* the kernel's connection, while it is open */
	struct ev_timer retry; /* connection lost: give the kernel a new one */
	uint64_t retry_ns;
	uint64_t reconnects;
};

static int parse_index(const char *path, unsigned *index)
{
	if (strncmp(path, "/dev/nbd", 8) != 0 || !path[8])
		return -EINVAL;
	uint64_t v;
	if (parse_u64(path + 8, &v) < 0 || v > 1u << 20)
		return -EINVAL;
	*index = (unsigned)v;
	return 0;
}

/* The device's size in bytes as the kernel has it (0 if unknown). */
static uint64_t device_size(unsigned index)
{
	char p[64], line[64];
	snprintf(p, sizeof(p), "/sys/block/nbd%u/size", index);
	uint64_t sectors;
	read_line_file(p, line, sizeof(line));
	if (parse_u64(line, &sectors) < 0)
		return 0;
	return sectors * 512;
}

static void conn_closed(void *arg);

/* Give the kernel one end of a new socketpair, the other end served by our
 * NBD server: NBD_CMD_CONNECT for a device that is not set up, or
 * NBD_CMD_RECONFIGURE for one that is, ours, whose connection died (the
 * kernel swaps a dead socket for the new one and resends what it had in
 * flight there). 0, or -1 with a reason in err. */
static int attach(struct kernel_nbd *k, int fd, int family, bool reconfigure, char *err,
		  size_t errlen)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		snprintf(err, errlen, "kernel NBD device %s: socketpair: %s", k->path,
			 strerror(errno));
		return -1;
	}
	char peer[64];
	snprintf(peer, sizeof(peer), "kernel nbd%u", k->index);
	k->conn = nbd_server_adopt(k->srv, sv[1], peer, conn_closed, k, err, errlen);
	if (!k->conn) {
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	struct nlmsg m, r;
	msg_init(&m, (uint16_t)family, reconfigure ? NBD_CMD_RECONFIGURE : NBD_CMD_CONNECT,
		 NBD_GENL_VERSION);
	attr_u32(&m, NBD_ATTR_INDEX, k->index);
	if (!reconfigure || device_size(k->index) != k->dev->size)
		attr_u64(&m, NBD_ATTR_SIZE_BYTES, k->dev->size);
	if (!reconfigure) {
		attr_u64(&m, NBD_ATTR_BLOCK_SIZE_BYTES,
			 k->dev->min_block > 512 ? k->dev->min_block : 512);
		attr_u64(&m, NBD_ATTR_SERVER_FLAGS, server_flags(k->dev));
		attr_u64(&m, NBD_ATTR_CLIENT_FLAGS, 0);
	}
	/* No NBD_ATTR_TIMEOUT: a request is never failed by the kernel for
	 * being slow (the storage's io-timeout decides that); the dead
	 * connection timeout is how long the device waits for a new
	 * connection (a restarted daemon) before failing IO. */
	attr_u64(&m, NBD_ATTR_DEAD_CONN_TIMEOUT, k->dead_timeout_s);
	attr_put(&m, NBD_ATTR_BACKEND_IDENTIFIER, k->backend, strlen(k->backend) + 1);
	struct nlattr *socks = nest_start(&m, NBD_ATTR_SOCKETS);
	struct nlattr *item = nest_start(&m, NBD_SOCK_ITEM);
	attr_u32(&m, NBD_SOCK_FD, (uint32_t)sv[0]);
	nest_end(&m, item);
	nest_end(&m, socks);
	int rc = nl_transact(fd, &m, &r);
	/* The kernel holds its own reference to its end. */
	close(sv[0]);
	if (rc < 0) {
		snprintf(err, errlen, "kernel NBD device %s: %s: %s", k->path,
			 reconfigure ? "reconnect" : "connect", strerror(-rc));
		/* The adopted connection sees EOF and closes; not a loss. */
		nbd_server_unwatch(k->conn);
		k->conn = NULL;
		return -1;
	}
	return 0;
}

#define RETRY_FIRST_NS (100 * 1000000ull)
#define RETRY_MAX_NS   (5 * 1000000000ull)

/* The kernel's connection closed while the device is ours: it was cut (a
 * reconfigure the kernel did not take, a protocol error). Give it another
 * one soon; its IO waits for it (dead connection timeout). */
static void conn_closed(void *arg)
{
	struct kernel_nbd *k = arg;
	k->conn = NULL;
	if (!k->connected)
		return;
	log_warn("kernel NBD device %s: its connection closed; reconnecting", k->path);
	if (!k->retry_ns)
		k->retry_ns = RETRY_FIRST_NS;
	ev_timer_start(k->loop, &k->retry, k->retry_ns);
}

static void retry_now(struct ev_timer *t)
{
	struct kernel_nbd *k = container_of(t, struct kernel_nbd, retry);
	if (!k->connected || k->conn)
		return;
	char err[256];
	int family;
	int fd = nbd_nl_open(&family, err, sizeof(err));
	int conn = fd >= 0 ? device_connected(fd, family, k->index) : -1;
	int rc = -1;
	if (conn == 0) {
		/* Someone else let go of it (nbd-client -d): not ours now. */
		log_err("kernel NBD device %s: disconnected outside dst; `dst stop %s` and "
			"`dst start %s` attach it again",
			k->path, k->name, k->name);
		k->connected = false;
		rc = 0;
	} else if (conn > 0) {
		rc = attach(k, fd, family, true, err, sizeof(err));
		if (rc == 0) {
			k->reconnects++;
			log_info("kernel NBD device %s: reconnected", k->path);
		}
	} else if (fd >= 0) {
		snprintf(err, sizeof(err), "kernel NBD device %s: status: %s", k->path,
			 strerror(-conn));
	}
	if (fd >= 0)
		close(fd);
	if (rc < 0) {
		log_err("%s; trying again", err);
		k->retry_ns = k->retry_ns * 2 > RETRY_MAX_NS ? RETRY_MAX_NS : k->retry_ns * 2;
		ev_timer_start(k->loop, &k->retry, k->retry_ns);
	}
}

struct kernel_nbd *kernel_nbd_new(struct ev_loop *loop, struct nbd_server *srv, struct dev *dev,
				  const char *name, const char *path, unsigned dead_timeout_s,
				  char *err, size_t errlen)
{
	unsigned index;
	if (parse_index(path, &index) < 0) {
		snprintf(err, errlen, "kernel NBD device %s: expected /dev/nbdN", path);
		return NULL;
	}
	struct stat st;
	if (stat(path, &st) < 0) {
		int e = errno;
		snprintf(err, errlen,
			 "kernel NBD is not available: %s: %s (load the nbd kernel module: "
			 "modprobe nbd)",
			 path, strerror(e));
		return NULL;
	}
	if (!S_ISBLK(st.st_mode)) {
		snprintf(err, errlen, "kernel NBD device %s: not a block device", path);
		return NULL;
	}
	int family;
	int fd = nbd_nl_open(&family, err, errlen);
	if (fd < 0)
		return NULL;
	struct kernel_nbd *k = xcalloc(1, sizeof(*k));
	k->loop = loop;
	k->srv = srv;
	k->dev = dev;
	k->path = xstrdup(path);
	k->name = xstrdup(name);
	k->index = index;
	k->dead_timeout_s = dead_timeout_s;
	k->retry.fn = retry_now;
	snprintf(k->backend, sizeof(k->backend), "dst:%s", name);
	int conn = device_connected(fd, family, index);
	if (conn < 0) {
		snprintf(err, errlen, "kernel NBD device %s: status: %s", path, strerror(-conn));
		goto fail;
	}
	if (conn) {
		char backend[128];
		read_backend(index, backend, sizeof(backend));
		if (strcmp(backend, k->backend) != 0) {
			snprintf(err, errlen, "kernel NBD device %s: in use (connected%s%s)", path,
				 backend[0] ? " for " : "", backend);
			goto fail;
		}
		/* Left by a daemon of ours that died (kill -9, a crash): the
		 * device, and whatever is mounted on it, waits for a new
		 * connection. Give it ours; what the old daemon had taken is
		 * sent again by the kernel. */
		uint64_t had = device_size(index);
		if (attach(k, fd, family, true, err, errlen) < 0)
			goto fail;
		if (had && had != dev->size)
			log_warn("kernel NBD device %s: size %llu bytes, was %llu", path,
				 (unsigned long long)dev->size, (unsigned long long)had);
		log_info("kernel NBD device %s: taken back from the daemon before (still "
			 "connected for %s); IO it had waiting goes on",
			 path, k->backend);
		k->reconnects++;
	} else {
		if (attach(k, fd, family, false, err, errlen) < 0)
			goto fail;
		log_info("kernel NBD device %s: connected (%llu bytes)", path,
			 (unsigned long long)dev->size);
	}
	k->connected = true;
	close(fd);
	return k;
fail:
	close(fd);
	free(k->path);
	free(k->name);
	free(k);
	return NULL;
}

int kernel_nbd_set_reconnect_timeout(struct kernel_nbd *k, unsigned seconds, char *err,
				     size_t errlen)
{
	k->dead_timeout_s = seconds;
	if (!k->connected)
		return 0;
	int family;
	int fd = nbd_nl_open(&family, err, errlen);
	if (fd < 0)
		return -1;
	struct nlmsg m;
	msg_init(&m, (uint16_t)family, NBD_CMD_RECONFIGURE, NBD_GENL_VERSION);
	attr_u32(&m, NBD_ATTR_INDEX, k->index);
	attr_u64(&m, NBD_ATTR_DEAD_CONN_TIMEOUT, seconds);
	attr_put(&m, NBD_ATTR_BACKEND_IDENTIFIER, k->backend, strlen(k->backend) + 1);
	int rc = nl_transact(fd, &m, NULL);
	if (rc < 0)
		snprintf(err, errlen, "kernel NBD device %s: reconfigure: %s", k->path,
			 strerror(-rc));
	close(fd);
	return rc < 0 ? -1 : 0;
}

void kernel_nbd_disconnect(struct kernel_nbd *k)
{
	if (!k || !k->connected)
		return;
	k->connected = false;
	ev_timer_stop(k->loop, &k->retry);
	char err[256];
	int family;
	int fd = nbd_nl_open(&family, err, sizeof(err));
	int rc = fd >= 0 ? send_disconnect(fd, family, k->index) : -EIO;
	if (fd >= 0)
		close(fd);
	if (rc < 0)
		log_err("kernel NBD device %s: disconnect: %s", k->path,
			fd < 0 ? err : strerror(-rc));
	else
		log_info("kernel NBD device %s: disconnected", k->path);
}

void kernel_nbd_free(struct kernel_nbd *k)
{
	if (!k)
		return;
	kernel_nbd_disconnect(k);
	if (k->conn)
		nbd_server_unwatch(k->conn);
	free(k->path);
	free(k->name);
	free(k);
}

void kernel_nbd_show(struct kernel_nbd *k, struct strbuf *out, const char *name)
{
	char p[256];
	snprintf(p, sizeof(p), "%s/nbd_device", name);
	sb_attr_str(out, p, "%s", k->path);
	snprintf(p, sizeof(p), "%s/nbd_reconnects", name);
	sb_attr_num(out, p, k->reconnects);
}
