/* label_node.c - a disk joins a storage: what it holds where its label goes
 * is looked at first (another storage's label, this storage's own, someone's
 * data), and only a disk that may be taken gets a new label. Used by dst add,
 * dst replace and dst resume --remote/--disk, before the daemon is asked.
 * Remote disks are read and written with libnbd, local ones with
 * pread/pwrite; the label is written with FUA (or a flush). */
#include <errno.h>
#include <fcntl.h>
#include <libnbd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "array/label.h"
#include "array/leghdr.h"
#include "array/nodeconf.h"
#include "cli.h"
#include "common/config.h"
#include "common/util.h"
#include "dev/claim.h"
#include "dev/dev.h"

/* Open a local disk to write its label, claimed as the daemons claim it
 * (claim.h): a disk another export or storage uses is not written to. */
static int open_claimed(const char *path, char *err, size_t errlen)
{
	struct stat st;
	if (stat(path, &st) < 0) {
		snprintf(err, errlen, "%s", strerror(errno));
		return -1;
	}
	bool bdev = S_ISBLK(st.st_mode);
	int fd = open(path, O_RDWR | O_CLOEXEC | (bdev ? O_EXCL : 0));
	if (fd < 0) {
		if (bdev && errno == EBUSY)
			claim_busy_bdev(path, err, errlen);
		else
			snprintf(err, errlen, "%s", strerror(errno));
		return -1;
	}
	if (!bdev && claim_file(fd, path, &st, err, errlen) < 0) {
		close(fd);
		/* The caller names the disk already: "in use by ..." is enough. */
		size_t pl = strlen(path);
		if (!strncmp(err, path, pl) && !strncmp(err + pl, ": ", 2))
			memmove(err, err + pl + 2, strlen(err + pl + 2) + 1);
		return -1;
	}
	return fd;
}

/* Read (or write) LABEL_SIZE bytes at off of a node. */
static int block_io(const char *spec, bool remote, const struct tls_opts *tls, uint8_t *buf,
		    uint64_t off, bool write, char *err, size_t errlen)
{
	if (!remote) {
		char why[300];
		int fd =
		    write ? open_claimed(spec, why, sizeof(why)) : open(spec, O_RDONLY | O_CLOEXEC);
		if (fd < 0 && !write)
			snprintf(why, sizeof(why), "%s", strerror(errno));
		ssize_t r = -1;
		if (fd >= 0) {
			r = write ? pwrite(fd, buf, LABEL_SIZE, (off_t)off)
				  : pread(fd, buf, LABEL_SIZE, (off_t)off);
			if (r == (ssize_t)LABEL_SIZE && write && fdatasync(fd) < 0)
				r = -1;
			if (r != (ssize_t)LABEL_SIZE)
				snprintf(why, sizeof(why), "%s", r < 0 ? strerror(errno) : "short");
			close(fd);
		}
		if (r != (ssize_t)LABEL_SIZE) {
			snprintf(err, errlen, "%s its label block: %s",
				 write ? "writing" : "reading", why);
			return -1;
		}
		return 0;
	}
	char why[300];
	struct nbd_handle *h = probe_connect(spec, tls, why, sizeof(why));
	if (!h) {
		snprintf(err, errlen, "%s its label block: %s", write ? "writing" : "reading", why);
		return -1;
	}
	int rc = -1;
	/* aio with a deadline: a node that stops answering fails, not hangs. */
	if (write) {
		bool fua = nbd_can_fua(h) > 0;
		if (probe_wait(h,
			       nbd_aio_pwrite(h, buf, LABEL_SIZE, off, NBD_NULL_COMPLETION,
					      fua ? LIBNBD_CMD_FLAG_FUA : 0),
			       why, sizeof(why)) < 0 ||
		    (!fua && nbd_can_flush(h) > 0 &&
		     probe_wait(h, nbd_aio_flush(h, NBD_NULL_COMPLETION, 0), why, sizeof(why)) < 0))
			goto fail;
	} else if (probe_wait(h, nbd_aio_pread(h, buf, LABEL_SIZE, off, NBD_NULL_COMPLETION, 0),
			      why, sizeof(why)) < 0) {
		goto fail;
	}
	nbd_shutdown(h, 0);
	rc = 0;
	goto out;
fail:
	snprintf(err, errlen, "%s its label block: %s", write ? "writing" : "reading", why);
out:
	nbd_close(h);
	return rc;
}

/* The disk's label block says this storage's label is there: which node's? */
static int judge_ours(const struct label_join *j, struct node_conf *nc, const struct node_label *l,
		      char *err, size_t errlen)
{
	for (size_t i = 0; i < j->n; i++) {
		const struct node_conf *o = &j->nodes[i];
		bool same =
		    (l->legacy && !j->convert) ||
		    (!l->legacy && o->label && o->start == l->start && !memcmp(o->id, l->disk, 16));
		if (same && !l->legacy && j->moving && o->start == j->moving_start) {
			if (!j->self_ok) {
				snprintf(err, errlen,
					 "%s is node n-%llu itself (the same disk at another "
					 "address): to give a node a new address, dst suspend and "
					 "dst resume --remote|--disk",
					 nc->spec, (unsigned long long)o->start);
				return -1;
			}
			memcpy(nc->id, o->id, 16); /* its own label stays */
			return 1;
		}
		if (same && !j->relabel) {
			char nn[32];
			node_conf_name(o->start, nn, sizeof(nn));
			snprintf(err, errlen,
				 "%s is the same disk as node %s (%s) of '%s' (it carries %s): a "
				 "disk can be only one node",
				 nc->spec, nn, o->spec, j->name,
				 l->legacy ? "this storage's old leg header" : "that node's label");
			return -1;
		}
	}
	if (j->busy && !l->legacy && l->start == j->busy_start &&
	    !memcmp(l->disk, j->busy_id, 16) && !j->relabel) {
		snprintf(err, errlen,
			 "%s is the disk node n-%llu of '%s' is being moved to (dst replace under "
			 "way): a disk can be only one node",
			 nc->spec, (unsigned long long)l->start, j->name);
		return -1;
	}
	return 0; /* a former disk of this storage (replaced or removed): it may join */
}

/* What the label block holds decides: -1 refused (why in err), 0 a new
 * label goes there, 1 the node's own label stays. */
static int judge(const struct label_join *j, struct node_conf *nc, const uint8_t *buf, char *err,
		 size_t errlen)
{
	struct node_label l;
	if (label_decode(buf, &l) && !memcmp(l.storage, j->uuid, 16))
		return judge_ours(j, nc, &l, err, errlen);
	if (j->relabel)
		return 0;
	if (label_decode(buf, &l)) {
		char u[33];
		uuid_format(l.storage, u);
		if (l.legacy)
			snprintf(err, errlen,
				 "%s carries a mirror leg header of storage %s: it belongs to "
				 "another storage. If that storage is gone for good, take the "
				 "disk with --relabel",
				 nc->spec, u);
		else
			snprintf(err, errlen,
				 "%s carries the label of storage %s (%s, node n-%llu): it belongs "
				 "to another storage. If that storage is gone for good, take the "
				 "disk with --relabel",
				 nc->spec, l.name[0] ? l.name : "?", u,
				 (unsigned long long)l.start);
		return -1;
	}
	if (!label_block_blank(buf)) {
		snprintf(err, errlen,
			 "%s holds data where its label goes (the 4 KiB at byte %llu): to keep the "
			 "disk's data as it is, add it with --import (no label: it is used "
			 "unchecked); to write the label over those bytes, --relabel",
			 nc->spec, (unsigned long long)nc->label);
		return -1;
	}
	return 0;
}

int label_node_join(const struct label_join *j, struct node_conf *nc, char *err, size_t errlen)
{
	uint8_t *buf = xmalloc(LABEL_SIZE);
	int rc = -1;
	char spec_err[400];
	if (block_io(nc->spec, nc->remote, j->tls, buf, nc->label, false, spec_err,
		     sizeof(spec_err)) < 0) {
		snprintf(err, errlen, "%s: %s", nc->spec, spec_err);
		goto out;
	}
	if (j->saved)
		memcpy(j->saved, buf, LABEL_SIZE);
	int verdict = judge(j, nc, buf, err, errlen);
	if (verdict != 0) {
		rc = verdict > 0 ? 0 : -1;
		goto out;
	}
	if (uuid_generate(nc->id) < 0) {
		snprintf(err, errlen, "cannot generate a disk id: %s", strerror(errno));
		goto out;
	}
	struct node_label nl;
	label_init(&nl, j->uuid, nc->id, nc->start, nc->size, nc->label, j->alg, j->name);
	label_encode(&nl, buf);
	if (block_io(nc->spec, nc->remote, j->tls, buf, nc->label, true, spec_err,
		     sizeof(spec_err)) < 0) {
		snprintf(err, errlen, "%s: %s", nc->spec, spec_err);
		goto out;
	}
	rc = 0;
out:
	free(buf);
	return rc;
}

/* 1: uri is that storage itself; 2: it holds that storage (its description
 * lists the storages below it); 0: neither, or not a dst storage. */
static int storage_holds(const char *uri, const struct tls_opts *tls, const uint8_t uuid[16])
{
	char err[300];
	struct nbd_handle *h = probe_connect(uri, tls, err, sizeof(err));
	if (!h)
		return 0;
	int found = 0;
	char *desc = nbd_get_export_description(h);
	char hex[33], me[64];
	uuid_format(uuid, hex);
	snprintf(me, sizeof(me), " uuid %s", hex);
	const char *holds = desc ? strstr(desc, " holds ") : NULL;
	if (desc && strstr(desc, me))
		found = 1;
	else if (holds && strstr(holds, hex))
		found = 2;
	free(desc);
	nbd_shutdown(h, 0);
	nbd_close(h);
	return found;
}

/* The config's migrate line, "NODE KIND RATE id=HEX SPEC": the disk being
 * copied onto is taken, as a node is. */
static void busy_from_conf(const struct conf *conf, struct label_join *j)
{
	const char *m = conf_get(conf, "migrate");
	unsigned long long start;
	char id[33];
	if (m && sscanf(m, "n-%llu %*s %*s id=%32[0-9a-f]", &start, id) == 2 &&
	    uuid_parse(id, j->busy_id) == 0) {
		j->busy = true;
		j->busy_start = start;
	}
}

int label_node_move(const char *name, const struct conf *conf, const struct node_conf *nodes,
		    size_t n, size_t idx, bool remote, const char *spec, struct label_move *mv)
{
	static struct tls_opts tls; /* mv->j points at it until the undo */
	const struct node_conf *old = &nodes[idx];
	const char *uuid_s = conf_get(conf, "uuid");
	bool self_ok = mv->self_ok;
	memset(mv, 0, sizeof(*mv));
	mv->self_ok = self_ok;
	struct label_join *j = &mv->j;
	j->name = name;
	j->alg = conf_get(conf, "alg");
	j->nodes = nodes;
	j->n = n;
	j->saved = mv->saved;
	if (!old->label || !uuid_s || uuid_parse(uuid_s, j->uuid) < 0)
		return 1;
	busy_from_conf(conf, j);
	j->moving = true;
	j->moving_start = old->start;
	j->self_ok = mv->self_ok;
	node_tls(conf, &tls);
	j->tls = &tls;
	char err[512];
	uint64_t bytes = 0;
	if ((remote ? probe_remote(spec, &tls, &bytes, err, sizeof(err))
		    : probe_local(spec, &bytes, err, sizeof(err))) < 0)
		return die("%s: cannot %s: %s", spec, remote ? "reach it" : "open it", err), -1;
	if (bytes < old->label + LABEL_SIZE) {
		char nn[32];
		node_conf_name(old->start, nn, sizeof(nn));
		return die("%s has room for %llu sectors and its 4 KiB label, fewer than the %llu "
			   "sectors of %s",
			   spec, (unsigned long long)(label_offset_for_disk(bytes) / 512),
			   (unsigned long long)old->size, nn),
		       -1;
	}
	if (remote && label_node_refuse_loop(name, spec, &tls, j->uuid))
		return -1;
	mv->nc = *old;
	mv->nc.spec = (char *)spec;
	mv->nc.remote = remote;
	if (label_node_join(j, &mv->nc, err, sizeof(err)) < 0)
		return die("%s", err), -1;
	memcpy(mv->id, mv->nc.id, 16);
	return 0;
}

void label_node_move_undo(struct label_move *mv)
{
	label_node_undo(&mv->j, &mv->nc);
}

void label_node_undo(const struct label_join *j, const struct node_conf *nc)
{
	char err[400];
	if (j->saved &&
	    block_io(nc->spec, nc->remote, j->tls, j->saved, nc->label, true, err, sizeof(err)) < 0)
		die("%s: could not put back what its label block held: %s", nc->spec, err);
}

void label_node_release_all(const char *name, const struct conf *conf)
{
	const char *uuid_s = conf_get(conf, "uuid");
	uint8_t uuid[16];
	if (!uuid_s || uuid_parse(uuid_s, uuid) < 0)
		return;
	struct tls_opts tls;
	node_tls(conf, &tls);
	struct node_conf *nodes;
	size_t n = storage_nodes(conf, &nodes);
	uint8_t *buf = xmalloc(LABEL_SIZE);
	for (size_t i = 0; i < n; i++) {
		const struct node_conf *nc = &nodes[i];
		if (!nc->label)
			continue;
		char err[400];
		struct node_label l;
		if (block_io(nc->spec, nc->remote, &tls, buf, nc->label, false, err, sizeof(err)) <
		    0) {
			die("%s keeps the label of '%s' (%s): to use it in another storage, add it "
			    "there with --relabel",
			    nc->spec, name, err);
			continue;
		}
		/* Only this node's own label goes: never another storage's. */
		if (!label_decode(buf, &l) || l.legacy || memcmp(l.storage, uuid, 16) ||
		    memcmp(l.disk, nc->id, 16))
			continue;
		memset(buf, 0, LABEL_SIZE);
		if (block_io(nc->spec, nc->remote, &tls, buf, nc->label, true, err, sizeof(err)) <
		    0)
			die("%s keeps the label of '%s' (%s): to use it in another storage, add it "
			    "there with --relabel",
			    nc->spec, name, err);
	}
	free(buf);
	storage_nodes_free(nodes, n);
}

int label_node_refuse_loop(const char *name, const char *uri, const struct tls_opts *tls,
			   const uint8_t uuid[16])
{
	switch (storage_holds(uri, tls, uuid)) {
	case 1:
		return die("%s is storage '%s' itself: a storage cannot be its own node", uri,
			   name);
	case 2:
		return die("%s is a storage that holds '%s': as its node, the tree of storages "
			   "would loop",
			   uri, name);
	default: return 0;
	}
}
