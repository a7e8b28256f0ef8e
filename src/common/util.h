/* util.h - small helpers shared by daemon and tool: sizes, strings, fds. */
#ifndef DST_UTIL_H
#define DST_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ARRAY_SIZE(a)			(sizeof(a) / sizeof((a)[0]))
#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
#define MIN(a, b)			((a) < (b) ? (a) : (b))
#define MAX(a, b)			((a) > (b) ? (a) : (b))

/* Parse "4096", "64K", "1M", "2G", "1T" (binary units, optional "iB"/"B").
 * Returns 0 and sets *out, or -EINVAL / -ERANGE. */
int parse_size(const char *s, uint64_t *out);
/* Parse a plain unsigned decimal with range check. */
int parse_u64(const char *s, uint64_t *out);
/* "1.5 GiB" style, into buf. */
const char *format_size(uint64_t bytes, char *buf, size_t len);

/* Allocation that cannot fail: aborts with a message on OOM. Only for
 * set-up and control paths, never on the IO path (which uses pools). */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t m);
char *xstrdup(const char *s);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

int set_nonblock(int fd);
int set_cloexec(int fd);
/* Full write/read on a blocking fd; return 0 or -errno (-EPIPE on EOF for read). */
int write_all(int fd, const void *buf, size_t len);
int read_all(int fd, void *buf, size_t len);

static inline uint64_t be64_read(const void *p)
{
	const uint8_t *b = p;
	return ((uint64_t)b[0] << 56) | ((uint64_t)b[1] << 48) | ((uint64_t)b[2] << 40) |
	       ((uint64_t)b[3] << 32) | ((uint64_t)b[4] << 24) | ((uint64_t)b[5] << 16) |
	       ((uint64_t)b[6] << 8) | b[7];
}
static inline uint32_t be32_read(const void *p)
{
	const uint8_t *b = p;
	return ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
}
static inline uint16_t be16_read(const void *p)
{
	const uint8_t *b = p;
	return (uint16_t)((b[0] << 8) | b[1]);
}
static inline void be64_write(void *p, uint64_t v)
{
	uint8_t *b = p;
	for (int i = 7; i >= 0; i--, v >>= 8)
		b[i] = (uint8_t)v;
}
static inline void be32_write(void *p, uint32_t v)
{
	uint8_t *b = p;
	b[0] = (uint8_t)(v >> 24);
	b[1] = (uint8_t)(v >> 16);
	b[2] = (uint8_t)(v >> 8);
	b[3] = (uint8_t)v;
}
static inline void be16_write(void *p, uint16_t v)
{
	uint8_t *b = p;
	b[0] = (uint8_t)(v >> 8);
	b[1] = (uint8_t)v;
}

/* The first line of a small file (a /proc or /sys attribute), without its
 * newline, into buf; "" when it cannot be read. */
void read_line_file(const char *path, char *buf, size_t len);

/* Split "HOST:PORT", "[V6]:PORT" or ":PORT" (host 127.0.0.1) into host and
 * port: 0, or -EINVAL when it is not one of those or does not fit. */
int split_host_port(const char *addr, char *host, size_t hlen, char *port, size_t plen);

#endif
