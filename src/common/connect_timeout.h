/* connect_timeout.h - how long one connect and NBD handshake to a node may
 * take, for dst's probes (default 30 s) and dstd's node connections
 * (default 10 s a try, then tried again): DST_CONNECT_TIMEOUT=SECONDS in
 * the environment sets both (1 to 3600), for tests and slow links. */
#ifndef DST_CONNECT_TIMEOUT_H
#define DST_CONNECT_TIMEOUT_H

#define DST_CLI_CONNECT_TIMEOUT_S 30

/* DST_CONNECT_TIMEOUT if it is set and valid, else dflt (a bad value is
 * said once on stderr). */
unsigned connect_timeout_s(unsigned dflt);

#endif
