/* wib.c - the write-intent bitmap file (wib.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "wib.h"

static void start(struct wib *w);

static void work(struct ev_deferred *d)
{
	struct wib *w = container_of(d, struct wib, work);
	if (!w->busy && !w->closing)
		start(w);
}

int wib_open(struct wib *w, struct ev_loop *loop, const char *path, uint64_t region,
	     uint64_t nregions, unsigned nsets, bool *loaded, struct mbm_header *h, bool *same,
	     char *err, size_t errlen)
{
	memset(w, 0, sizeof(*w));
	w->loop = loop;
	w->path = xstrdup(path);
	w->fd = -1;
	w->region = region;
	w->nregions = nregions;
	w->nsets = nsets;
	w->set_len = mbm_bits_size(nregions);
	w->img_len = MBM_HEADER + nsets * w->set_len;
	w->img = xcalloc(1, w->img_len);
	w->bits = xcalloc(nsets, w->set_len);
	w->pbits = xcalloc(nsets, w->set_len);
	w->work.fn = work;
	*loaded = *same = false;
	w->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (w->fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	ssize_t r = pread(w->fd, w->img, w->img_len, 0);
	if (r <= 0)
		return 0;
	char why[128];
	if (mbm_header_decode(w->img, (size_t)r, h, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "%s: %s", path, why);
		return -1;
	}
	*loaded = true;
	*same = h->region == region && h->nregions == nregions && (size_t)r >= w->img_len;
	if (*same) {
		memcpy(w->bits, w->img + MBM_HEADER, nsets * w->set_len);
		memcpy(w->pbits, w->bits, nsets * w->set_len);
	}
	return 0;
}

static void build(struct wib *w)
{
	struct mbm_header h = {.region = w->region, .nregions = w->nregions};
	w->header(w->owner, &h);
	mbm_header_encode(&h, w->img);
	memcpy(w->img + MBM_HEADER, w->bits, w->nsets * w->set_len);
}

int wib_write_sync(struct wib *w, char *err, size_t errlen)
{
	build(w);
	if (pwrite(w->fd, w->img, w->img_len, 0) != (ssize_t)w->img_len || fdatasync(w->fd) < 0) {
		snprintf(err, errlen, "%s: write: %s", w->path, strerror(errno));
		return -1;
	}
	memcpy(w->pbits, w->bits, w->nsets * w->set_len);
	return 0;
}

int wib_start_async(struct wib *w, char *err, size_t errlen)
{
	w->dev = dev_file_open(w->loop, w->path, false, err, errlen);
	return w->dev ? 0 : -1;
}

bool wib_durable(const struct wib *w, unsigned set, uint64_t r0, uint64_t r1)
{
	return mbm_all_set(w->bits + set * w->set_len, r0, r1) &&
	       mbm_all_set(w->pbits + set * w->set_len, r0, r1);
}

static void queue(struct dev_io **h, struct dev_io **t, struct dev_io *p)
{
	p->dev_next = NULL;
	if (*t)
		(*t)->dev_next = p;
	else
		*h = p;
	*t = p;
}

void wib_kick(struct wib *w)
{
	if (w->busy)
		w->again = true;
	else if (!w->closing)
		ev_defer(w->loop, &w->work);
}

void wib_wait(struct wib *w, struct dev_io *p)
{
	if (w->busy) {
		queue(&w->next_head, &w->next_tail, p);
		w->again = true;
	} else {
		queue(&w->cur_head, &w->cur_tail, p);
		ev_defer(w->loop, &w->work);
	}
}

static void done(struct dev_io *io, int err);

static void start(struct wib *w)
{
	build(w);
	w->busy = true;
	w->again = false;
	memset(&w->io, 0, sizeof(w->io));
	w->io.op = DEV_WRITE;
	w->io.flags = DEV_F_FUA;
	w->io.len = w->img_len;
	w->io.buf = w->img;
	w->io.done = done;
	w->io.priv = w;
	dev_submit(w->dev, &w->io);
}

static void done(struct dev_io *io, int err)
{
	struct wib *w = io->priv;
	w->busy = false;
	if (w->closing) {
		ev_loop_break(w->loop); /* wib_close waits for this one */
		return;
	}
	if (err)
		log_err("bitmap %s: write failed: %s; the writes waiting for it fail", w->path,
			strerror(err));
	else
		memcpy(w->pbits, w->img + MBM_HEADER, w->nsets * w->set_len);
	struct dev_io *list = w->cur_head;
	w->cur_head = w->next_head, w->cur_tail = w->next_tail;
	w->next_head = w->next_tail = NULL;
	if (w->again || w->cur_head)
		start(w);
	while (list) {
		struct dev_io *p = list;
		list = p->dev_next;
		p->dev_next = NULL;
		w->written(w->owner, p, err);
	}
}

void wib_close(struct wib *w)
{
	ev_defer_cancel(w->loop, &w->work);
	w->closing = true;
	while (w->busy)
		ev_run(w->loop);
}

void wib_free(struct wib *w)
{
	if (w->dev)
		dev_destroy(w->dev);
	if (w->fd >= 0)
		close(w->fd);
	free(w->path);
	free(w->img);
	free(w->bits);
	free(w->pbits);
	memset(w, 0, sizeof(*w));
	w->fd = -1;
}
