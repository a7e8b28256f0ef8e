/* lend.c - reads of a storage sent from its nodes' own memory.
 *
 * A DEV_F_BORROW read of the storage is split as any read, and each piece
 * whose node can lend (a local file in the page cache, a mem: disk) is lent
 * by it: the piece keeps the node's iovecs and stays taken, and in flight
 * on its node, until the frontend releases the read. Pieces whose node
 * cannot lend read into their part of the request's buffer, which every
 * such request has (DEV_CAP_BORROW_BUF). When the last piece is done, the
 * request's iov is laid out in order: the lent pieces' memory, the buffer
 * between them. So a 1 MiB read over a stripe of local disks goes out as
 * sixteen pieces of page cache, copied once, by the socket send. A mirror
 * lends from the leg it reads.
 *
 * The lent pieces of a request hang off p->dev_link (through c->sib, in
 * offset order once laid out). If a node must drain while a reply is not
 * sent yet (suspend, remove, the end of a migration), its pieces are copied
 * into the buffer and given back, and the iov laid out again: the frontend
 * gathers it afresh, by byte offset, at every send, so a half-sent reply
 * goes on with the same bytes from elsewhere. A slow client holds up no node.
 */
#include <string.h>
#include <sys/uio.h>

#include "array_int.h"
#include "common/util.h"

/* A lent piece's node gets its memory back, the piece its place in the pool. */
static void give_back(struct array *a, struct array_child *c)
{
	size_t node = c->node;
	dev_release(a->nodes[node].dev, &c->io);
	a->nodes[node].inflight--;
	array_child_put(a, c);
	array_node_settled(a, node);
	if (a->mig)
		migrate_node_event(a);
}

static inline struct array_child *first_lent(const struct dev_io *p)
{
	return p->dev_link;
}

/* Copy piece c's lent bytes into its part of the request's buffer. */
static void copy_out(struct dev_io *p, const struct array_child *c)
{
	char *to = (char *)p->buf + c->poff;
	for (uint32_t k = 0; k < c->io.iov_count; k++) {
		memcpy(to, c->io.iov[k].iov_base, c->io.iov[k].iov_len);
		to += c->io.iov[k].iov_len;
	}
}

/* Give every lent piece of p back; with copy, its bytes go to the buffer
 * first. p's reply then comes from the buffer alone. */
static void give_all_back(struct array *a, struct dev_io *p, bool copy)
{
	struct array_child *c = first_lent(p), *next;
	p->dev_link = NULL;
	p->iov_count = 0;
	for (; c; c = next) {
		next = c->sib;
		if (copy)
			copy_out(p, c);
		give_back(a, c);
	}
}

/* Sort p's lent pieces by offset and lay out p->iov: their memory, and the
 * buffer in the gaps. False (p->iov untouched) if that takes more than
 * DEV_BORROW_IOV entries. */
static bool lay_out(struct dev_io *p)
{
	struct array_child *v[DEV_BORROW_IOV];
	size_t n = 0;
	for (struct array_child *c = first_lent(p); c; c = c->sib) {
		if (n == DEV_BORROW_IOV)
			return false;
		size_t j = n++;
		for (; j > 0 && v[j - 1]->poff > c->poff; j--)
			v[j] = v[j - 1];
		v[j] = c;
	}
	struct iovec out[DEV_BORROW_IOV];
	uint32_t k = 0;
	uint64_t pos = 0;
	for (size_t i = 0; i <= n; i++) {
		uint64_t end = i < n ? v[i]->poff : p->len;
		if (end > pos) { /* pieces read into the buffer */
			if (k == DEV_BORROW_IOV)
				return false;
			out[k++] = (struct iovec){(char *)p->buf + pos, end - pos};
		}
		if (i == n)
			break;
		if (k + v[i]->io.iov_count > DEV_BORROW_IOV)
			return false;
		for (uint32_t j = 0; j < v[i]->io.iov_count; j++)
			out[k++] = v[i]->io.iov[j];
		pos = v[i]->poff + v[i]->io.len;
	}
	memcpy(p->iov, out, k * sizeof(out[0]));
	p->iov_count = k;
	p->dev_link = n ? v[0] : NULL;
	for (size_t i = 0; i < n; i++)
		v[i]->sib = i + 1 < n ? v[i + 1] : NULL;
	return true;
}

void array_lend_prepare(struct array *a, struct array_child *c, struct dev_io *p)
{
	/* Gaps between lent pieces come from the buffer: without one, only a
	 * read in one piece can be lent, and never by a redundant algorithm
	 * (a piece that fails on one node is read again another way, into the
	 * buffer). */
	if (!(p->flags & DEV_F_BORROW) || c->io.op != DEV_READ ||
	    (!p->buf && (c->io.len != p->len || a->alg->redundant)))
		return;
	c->io.flags |= DEV_F_BORROW; /* node_submit drops it if the node cannot lend */
	c->io.iov = c->iov;
	c->poff = p->buf ? (uint64_t)((char *)c->io.buf - (char *)p->buf) : 0;
}

void array_lend_done(struct array_child *c, struct dev_io *p)
{
	c->lent = true;
	c->sib = first_lent(p);
	p->dev_link = c;
}

void array_lend_finish(struct array *a, struct dev_io *p, int err)
{
	if (!first_lent(p))
		return;
	/* Without a buffer the read is one piece, of DEV_BORROW_IOV entries at
	 * most: it always fits. */
	if (err)
		give_all_back(a, p, false); /* an error reply carries no data */
	else if (!lay_out(p))
		give_all_back(a, p, true);
}

void array_lend_release(struct dev *d, struct dev_io *p)
{
	give_all_back(container_of(d, struct array, dev), p, false);
}

bool array_lend_can(struct dev *d, uint64_t off, uint64_t len)
{
	/* Which pieces are lent is decided as they go out (node_submit): a
	 * piece of a node that cannot lend then, or of a remote node, reads
	 * into the buffer. */
	struct array *a = container_of(d, struct array, dev);
	return !a->mig && len && off <= a->dev.size && len <= a->dev.size - off;
}

void array_unlend_node(struct array *a, size_t node)
{
	for (size_t i = 0; i < ARRAY_CHILDREN; i++) {
		struct array_child *c = &a->children[i];
		if (!c->busy || !c->lent || c->node != node || !c->parent->buf)
			continue;
		struct dev_io *p = c->parent;
		copy_out(p, c);
		if (first_lent(p) == c) {
			p->dev_link = c->sib;
		} else {
			struct array_child *q = first_lent(p);
			while (q->sib != c)
				q = q->sib;
			q->sib = c->sib;
		}
		give_back(a, c);
		/* Laid out already (its reply queued): again, without c. Fewer
		 * entries than before, so it fits. */
		if (p->iov_count)
			lay_out(p);
	}
}
