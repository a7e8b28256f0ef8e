/* req_state.h - how an algorithm with redundancy keeps a request's state in
 * the core's scratch space while its pieces are out (alg.h): scratch[1]
 * holds the pieces and operations outstanding (low 24 bits, which
 * array_send_piece counts up), flags, and the first error (high 32 bits);
 * scratch[0] is the algorithm's (how much of the request was sent). */
#ifndef DST_REQ_STATE_H
#define DST_REQ_STATE_H

#include <stdbool.h>
#include <stdint.h>

#include "dev/dev.h"

#define RQ_OUT_MASK    0xffffffu
#define RQ_F_NODEFAIL  (1u << 24) /* a node failed under it: durable before the answer */
#define RQ_MODE_SHIFT  25
#define RQ_MODE_MASK   (3u << RQ_MODE_SHIFT)
#define RQ_MODE_BITS   (1u << RQ_MODE_SHIFT) /* waits for its bits to be durable */
#define RQ_MODE_FINISH (2u << RQ_MODE_SHIFT) /* done, waits for a node's failure to be durable */
#define RQ_F_ALG       (1u << 27)	     /* the algorithm's own flag */

static inline uint32_t rq_low(const struct dev_io *p)
{
	return (uint32_t)p->dev_scratch[1];
}

static inline int rq_err(const struct dev_io *p)
{
	return (int)(p->dev_scratch[1] >> 32);
}

static inline void rq_set(struct dev_io *p, uint32_t low, int err)
{
	p->dev_scratch[1] = ((uint64_t)(uint32_t)err << 32) | low;
}

/* One thing outstanding answered (err: its error, kept if the first);
 * true when nothing is outstanding any more. */
static inline bool rq_put(struct dev_io *p, int err)
{
	uint32_t v = rq_low(p);
	int e = rq_err(p);
	if (err && !e)
		e = err;
	v = (v & ~RQ_OUT_MASK) | ((v & RQ_OUT_MASK) - 1);
	rq_set(p, v, e);
	return (v & RQ_OUT_MASK) == 0;
}

#endif
