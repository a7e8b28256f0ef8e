/* metrics_http.h - the daemon's metrics served over HTTP for Prometheus
 * (`--metrics-listen ADDR:PORT`, config key metrics-listen).
 *
 * libmicrohttpd does the HTTP, driven from the daemon's own event loop
 * (its epoll fd is watched by the loop, MHD_run is called on its events
 * and on its timeout), so the page is made on the loop's thread and reads
 * the daemon's state without locks. GET /metrics answers the exposition
 * (OpenMetrics when the Accept header asks for it, else Prometheus text
 * 0.0.4); any other path is 404, any other method 405.
 */
#ifndef DST_DAEMON_METRICS_HTTP_H
#define DST_DAEMON_METRICS_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "common/strbuf.h"

struct ev_loop;
struct metrics_http;

/* Writes the whole exposition (OpenMetrics if om) into out. */
typedef void (*metrics_gen_fn)(void *arg, bool om, struct strbuf *out);

/* Listen on addr: "PORT" (127.0.0.1), "ADDR:PORT", "[V6]:PORT" or ":PORT"
 * (loopback). NULL with a one-line reason in err. */
struct metrics_http *metrics_http_start(struct ev_loop *loop, const char *addr, metrics_gen_fn gen,
					void *arg, char *err, size_t errlen);
/* "http://127.0.0.1:9100/metrics", with the port really bound. */
const char *metrics_http_url(const struct metrics_http *h);
void metrics_http_stop(struct metrics_http *h);

#endif
