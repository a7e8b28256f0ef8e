/* parity_plan.c - alg_parity's IO plans for one row (see parity_plan.h). */
#include "parity_plan.h"

#include <stdbool.h>
#include <string.h>

static unsigned popcount(uint32_t x)
{
	return (unsigned)__builtin_popcount(x);
}

static void add(struct parity_ext *list, unsigned *cnt, const struct parity_geom *g, uint64_t row,
		unsigned role, uint32_t in, uint32_t len, uint64_t req_off)
{
	struct parity_ext *e = &list[(*cnt)++];
	e->node = (uint8_t)parity_node(g, row, role);
	e->role = (uint8_t)role;
	e->in = in;
	e->len = len;
	e->node_off = row * g->chunk + in;
	e->req_off = req_off;
}

uint64_t parity_write_piece(const struct parity_geom *g, uint64_t off, uint64_t len)
{
	uint64_t in_row = off % g->row_bytes;
	uint64_t take = len < g->row_bytes - in_row ? len : g->row_bytes - in_row;
	uint64_t first = in_row / g->chunk, last = (in_row + take - 1) / g->chunk;
	if (last == first + 1) {
		uint64_t a = in_row % g->chunk, b = in_row + take - last * g->chunk;
		if (b < a)
			take = g->chunk - a;
	}
	return take;
}

/* The first k roles of the row not in `missing`: data chunks first. */
static uint32_t survivors(const struct parity_geom *g, uint32_t missing)
{
	uint32_t src = 0;
	unsigned cnt = 0;
	for (unsigned c = 0; c < g->n && cnt < g->k; c++) {
		if (!(missing & (1u << c))) {
			src |= 1u << c;
			cnt++;
		}
	}
	return cnt == g->k ? src : 0;
}

int parity_write_plan(const struct parity_geom *g, uint64_t off, uint64_t len, uint32_t missing,
		      unsigned flags, struct parity_plan *p)
{
	unsigned k = g->k;
	uint32_t all = (1u << g->n) - 1, data = (1u << k) - 1, par = all & ~data;
	uint64_t in_row = off % g->row_bytes;
	if (len == 0 || len > g->row_bytes - in_row)
		return -1;
	memset(p, 0, sizeof(*p));
	p->row = off / g->row_bytes;
	p->missing = parity_roles_of(g, p->row, missing & all);
	if (popcount(p->missing) > g->m)
		return -1;

	/* The ranges the write covers, and their hull. */
	unsigned first = (unsigned)(in_row / g->chunk),
		 last = (unsigned)((in_row + len - 1) / g->chunk);
	p->lo = (uint32_t)g->chunk;
	for (unsigned c = first; c <= last; c++) {
		uint64_t base = (uint64_t)c * g->chunk;
		p->wlo[c] = c == first ? (uint32_t)(in_row - base) : 0;
		p->whi[c] = c == last ? (uint32_t)(in_row + len - base) : (uint32_t)g->chunk;
		p->wreq[c] = base + p->wlo[c] - in_row;
		p->touched |= 1u << c;
		if (p->wlo[c] < p->lo)
			p->lo = p->wlo[c];
		if (p->whi[c] > p->hi)
			p->hi = p->whi[c];
	}
	bool stale = flags & PARITY_PLAN_STALE;
	if (stale) {
		/* Recompute the whole chunk of parity, not just the span's: the
		 * row's parity is right again afterwards. */
		p->lo = 0;
		p->hi = (uint32_t)g->chunk;
	}
	uint64_t span = p->hi - p->lo;
	uint32_t parity = par & ~p->missing; /* the parity chunks written */

	if (!parity) {
		p->kind = PARITY_PLAN_NOPARITY;
	} else if (len == g->row_bytes) {
		p->kind = PARITY_PLAN_FULL;
	} else {
		/* What each plan reads, and whether it can. */
		uint64_t written = 0, rcw = 0;
		bool rcw_ok = true;
		for (unsigned c = 0; c < k; c++) {
			uint64_t w = p->touched & (1u << c) ? p->whi[c] - p->wlo[c] : 0;
			written += w;
			rcw += span - w;
			if (span > w && (p->missing & (1u << c)))
				rcw_ok = false;
		}
		uint64_t rmw = written + popcount(parity) * span, deg = k * span;
		bool rmw_ok = !stale && !(p->touched & p->missing);
		bool deg_ok = !stale;
		if (rcw_ok && (!rmw_ok || rcw <= rmw) && (!deg_ok || rcw <= deg))
			p->kind = PARITY_PLAN_RCW;
		else if (rmw_ok && (!deg_ok || rmw <= deg))
			p->kind = PARITY_PLAN_RMW;
		else if (deg_ok)
			p->kind = PARITY_PLAN_DEGRADED;
		else
			return -1;
	}

	switch (p->kind) {
	case PARITY_PLAN_FULL:
	case PARITY_PLAN_NOPARITY: break;
	case PARITY_PLAN_RMW:
		for (unsigned c = first; c <= last; c++)
			add(p->reads, &p->nreads, g, p->row, c, p->wlo[c], p->whi[c] - p->wlo[c],
			    0);
		for (unsigned c = k; c < g->n; c++)
			if (parity & (1u << c))
				add(p->reads, &p->nreads, g, p->row, c, p->lo, (uint32_t)span, 0);
		p->bufs = p->touched | parity;
		break;
	case PARITY_PLAN_RCW:
		/* At most k + 1 reads: a touched chunk keeps a head and a tail only
		 * when it is the only one and the span was widened (STALE); of two
		 * or more, the first keeps a head, the last a tail. */
		for (unsigned c = 0; c < k; c++) {
			if (!(p->touched & (1u << c))) {
				add(p->reads, &p->nreads, g, p->row, c, p->lo, (uint32_t)span, 0);
				continue;
			}
			if (p->wlo[c] > p->lo)
				add(p->reads, &p->nreads, g, p->row, c, p->lo, p->wlo[c] - p->lo,
				    0);
			if (p->whi[c] < p->hi)
				add(p->reads, &p->nreads, g, p->row, c, p->whi[c],
				    p->hi - p->whi[c], 0);
		}
		p->bufs = data | parity;
		break;
	case PARITY_PLAN_DEGRADED:
		p->src = survivors(g, p->missing);
		for (unsigned c = 0; c < g->n; c++)
			if (p->src & (1u << c))
				add(p->reads, &p->nreads, g, p->row, c, p->lo, (uint32_t)span, 0);
		p->bufs = data | parity;
		break;
	}
	for (unsigned r = 0; r < p->nreads; r++)
		p->read_bytes += p->reads[r].len;

	for (unsigned c = first; c <= last; c++)
		if (!(p->missing & (1u << c)))
			add(p->writes, &p->nwrites, g, p->row, c, p->wlo[c], p->whi[c] - p->wlo[c],
			    p->wreq[c]);
	if (p->kind != PARITY_PLAN_NOPARITY)
		for (unsigned c = k; c < g->n; c++)
			if (parity & (1u << c))
				add(p->writes, &p->nwrites, g, p->row, c, p->lo, (uint32_t)span, 0);
	if (p->kind == PARITY_PLAN_FULL)
		p->bufs = parity;
	return 0;
}

/* RCW and DEGRADED: the new data over the row's old data, encoded. */
static void encode_merged(const struct parity_geom *g, const struct parity_code *code,
			  const struct parity_plan *p, const uint8_t *data, uint8_t *const *buf,
			  uint8_t *const *par)
{
	uint32_t span = p->hi - p->lo;
	const uint8_t *in[PARITY_MAX_K];
	for (unsigned c = 0; c < g->k; c++) {
		in[c] = buf[c];
		if (!(p->touched & (1u << c)))
			continue;
		uint32_t len = p->whi[c] - p->wlo[c];
		if (len == span)
			in[c] = data + p->wreq[c]; /* all new: no copy */
		else
			memcpy(buf[c] + (p->wlo[c] - p->lo), data + p->wreq[c], len);
	}
	parity_code_encode(code, in, par, span);
}

int parity_plan_compute(const struct parity_geom *g, struct parity_code *code,
			const struct parity_plan *p, const uint8_t *data, uint8_t *const *buf)
{
	unsigned k = g->k;
	uint32_t span = p->hi - p->lo;
	/* Parity outputs: NULL for a chunk on a missing node (not computed). */
	uint8_t *par[PARITY_MAX_M];
	for (unsigned j = 0; j < g->m; j++)
		par[j] = p->missing & (1u << (k + j)) ? NULL : buf[k + j];
	const uint8_t *in[PARITY_MAX_K];

	switch (p->kind) {
	case PARITY_PLAN_NOPARITY: return 0;
	case PARITY_PLAN_FULL:
		for (unsigned c = 0; c < k; c++)
			in[c] = data + (uint64_t)c * g->chunk;
		parity_code_encode(code, in, par, span);
		return 0;
	case PARITY_PLAN_RMW:
		for (unsigned c = 0; c < k; c++) {
			if (!(p->touched & (1u << c)))
				continue;
			uint32_t at = p->wlo[c] - p->lo, len = p->whi[c] - p->wlo[c];
			uint8_t *delta = buf[c] + at;
			parity_xor(delta, delta, data + p->wreq[c], len);
			uint8_t *sub[PARITY_MAX_M];
			for (unsigned j = 0; j < g->m; j++)
				sub[j] = par[j] ? par[j] + at : NULL;
			parity_code_update(code, c, delta, sub, len);
		}
		return 0;
	case PARITY_PLAN_DEGRADED: {
		/* First the old bytes of the data chunks not read (those on
		 * missing nodes); then the row's old data is all there. */
		uint32_t lost = ((1u << k) - 1) & ~p->src;
		if (lost && parity_code_decode(code, p->src, lost, buf, span) < 0)
			return -1;
		encode_merged(g, code, p, data, buf, par);
		return 0;
	}
	case PARITY_PLAN_RCW: encode_merged(g, code, p, data, buf, par); return 0;
	}
	return -1;
}

int parity_read_plan(const struct parity_geom *g, uint64_t off, uint64_t len, uint32_t missing,
		     struct parity_read_plan *p)
{
	struct parity_loc loc;
	parity_map(g, off, len, &loc);
	if (len == 0 || loc.len != len)
		return -1;
	memset(p, 0, sizeof(*p));
	p->row = loc.row;
	p->role = loc.data;
	p->in = (uint32_t)loc.in;
	p->len = (uint32_t)len;
	uint32_t miss = parity_roles_of(g, p->row, missing & ((1u << g->n) - 1));
	if (!(miss & (1u << p->role))) {
		p->kind = PARITY_READ_DIRECT;
		add(p->reads, &p->nreads, g, p->row, p->role, p->in, p->len, 0);
		return 0;
	}
	p->kind = PARITY_READ_RECONSTRUCT;
	p->src = survivors(g, miss);
	if (!p->src)
		return -1;
	for (unsigned c = 0; c < g->n; c++)
		if (p->src & (1u << c))
			add(p->reads, &p->nreads, g, p->row, c, p->in, p->len, 0);
	return 0;
}

const char *parity_plan_kind_name(enum parity_plan_kind kind)
{
	switch (kind) {
	case PARITY_PLAN_FULL: return "full";
	case PARITY_PLAN_RMW: return "rmw";
	case PARITY_PLAN_RCW: return "rcw";
	case PARITY_PLAN_DEGRADED: return "degraded";
	case PARITY_PLAN_NOPARITY: return "noparity";
	}
	return "?";
}
