/* conf_keys.c - the table of config keys (conf_keys.h). A new key is one
 * line in keys[] below: what it may hold, and whether it may repeat. The
 * ranges are those of the command-line options that write the keys. */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "conf_keys.h"
#include "ublk_limits.h"
#include "util.h"

enum kind {
	ANY,   /* a path, a name, a URI: checked where it is used */
	NUM,   /* a whole number in [min, max] */
	SIZE,  /* a size (4K, 1M...) in [min, max] */
	POW2,  /* a size, a power of two in [min, max] */
	WORDS, /* one of the words in `words`, separated by '|' */
	HEX32, /* 32 hex digits (a uuid) */
};

struct key {
	const char *key;
	bool multi; /* one line each: node = ..., node = ... */
	enum kind kind;
	uint64_t min, max;
	const char *words;
};

#define YEAR  (86400ull * 365)
#define BOOLS "1|0|yes|no|true|false"

static const struct key keys[] = {
    /* every config */
    {"type", false, WORDS, 0, 0, "storage|export"},
    {"listen", true, ANY, 0, 0, NULL},
    {"socket", true, ANY, 0, 0, NULL},
    {"allow", true, ANY, 0, 0, NULL},
    {"backlog", false, NUM, 1, 65535, NULL},
    {"tls", false, WORDS, 0, 0, "off|on|require|no|yes|0|1"},
    {"tls-psk", false, ANY, 0, 0, NULL},
    {"tls-certs", false, ANY, 0, 0, NULL},
    {"tls-verify-peer", false, WORDS, 0, 0, BOOLS},
    {"ctl-group", false, ANY, 0, 0, NULL},
    {"max-clients", false, NUM, 1, 65536, NULL},
    {"client-budget", false, SIZE, 4096, 64ull << 30, NULL},
    {"handshake-timeout", false, NUM, 1, 3600, NULL},
    {"idle-timeout", false, NUM, 0, 604800, NULL},
    /* exports */
    {"disk", false, ANY, 0, 0, NULL},
    {"readonly", false, WORDS, 0, 0, BOOLS},
    {"shared", false, WORDS, 0, 0, BOOLS},
    {"buffers", false, SIZE, 1u << 20, 64ull << 30, NULL},
    {"requests", false, NUM, 1, 65536, NULL},
    /* storages */
    {"alg", false, WORDS, 0, 0,
     "alg_linear|alg_stripe|alg_mirror|alg_parity|linear|stripe|mirror|parity"},
    {"uuid", false, HEX32, 0, 0, NULL},
    {"node", true, ANY, 0, 0, NULL},
    {"chunk", false, POW2, 4096, 1u << 30, NULL},
    {"data", false, NUM, 2, 14, NULL},	/* alg_parity: data chunks per row */
    {"parity", false, NUM, 1, 3, NULL}, /* alg_parity: parity chunks per row */
    {"io-timeout", false, NUM, 0, YEAR, NULL},
    {"request-timeout", false, NUM, 1, 86400, NULL},
    {"region-size", false, POW2, 4096, 1u << 30, NULL},
    {"resync-rate", false, SIZE, 4096, UINT64_MAX, NULL},
    {"assume-clean", false, WORDS, 0, 0, "yes|no"},
    {"csum", false, WORDS, 0, 0, "on|off"},
    {"node-tls-psk", false, ANY, 0, 0, NULL},
    {"node-tls-certs", false, ANY, 0, 0, NULL},
    {"node-tls-username", false, ANY, 0, 0, NULL},
    {"migrate", false, ANY, 0, 0, NULL},
    {"fuse", false, ANY, 0, 0, NULL},
    {"nbd-device", false, ANY, 0, 0, NULL},
    {"nbd-reconnect-timeout", false, NUM, 1, YEAR, NULL},
    {"ublk", false, ANY, 0, 0, NULL}, /* auto or a device number */
    {"ublk-queues", false, NUM, 1, UBLK_MAX_QUEUES, NULL},
    {"ublk-depth", false, NUM, 1, UBLK_MAX_DEPTH, NULL},
    {"device", false, ANY, 0, 0, NULL},
    /* events, metrics, attach at start */
    {"on-event", false, ANY, 0, 0, NULL},
    {"on-event-timeout", false, NUM, 0, 86400, NULL},
    {"metrics-listen", false, ANY, 0, 0, NULL},
    {"attach", false, WORDS, 0, 0, "yes|no"},
    /* NAME.loop records */
    {"loop", false, ANY, 0, 0, NULL},
    {"file-dev", false, ANY, 0, 0, NULL},
};

static const struct key *find(const char *key)
{
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		if (!strcmp(keys[i].key, key))
			return &keys[i];
	return NULL;
}

bool conf_key_multi(const char *key)
{
	const struct key *k = find(key);
	return !k || k->multi;
}

static bool one_of(const char *words, const char *v)
{
	size_t len = strlen(v);
	for (const char *p = words; *p;) {
		const char *bar = strchr(p, '|');
		size_t wl = bar ? (size_t)(bar - p) : strlen(p);
		if (wl == len && !strncmp(p, v, len))
			return true;
		p += wl + (bar != NULL);
	}
	return false;
}

/* "4K", "1G" for the messages: the ranges are whole powers of 1024. */
static const char *human(uint64_t x, char *buf, size_t len)
{
	static const char units[] = "KMGTPE";
	int u = -1;
	while (x >= 1024 && x % 1024 == 0 && u < 5) {
		x /= 1024;
		u++;
	}
	if (u < 0)
		snprintf(buf, len, "%llu", (unsigned long long)x);
	else
		snprintf(buf, len, "%llu%c", (unsigned long long)x, units[u]);
	return buf;
}

int conf_key_check(const char *key, const char *val, char *err, size_t errlen)
{
	const struct key *k = find(key);
	if (!k)
		return 0;
	uint64_t x = 0;
	char lo[32], hi[32];
	switch (k->kind) {
	case ANY: return 0;
	case NUM:
		if (parse_u64(val, &x) == 0 && x >= k->min && x <= k->max)
			return 0;
		snprintf(err, errlen, "%s '%s': expected a whole number from %llu to %llu", key,
			 val, (unsigned long long)k->min, (unsigned long long)k->max);
		return -EINVAL;
	case SIZE:
		if (parse_size(val, &x) == 0 && x >= k->min && x <= k->max)
			return 0;
		if (k->max == UINT64_MAX)
			snprintf(err, errlen, "%s '%s': expected a size of at least %s", key, val,
				 human(k->min, lo, sizeof(lo)));
		else
			snprintf(err, errlen, "%s '%s': expected a size from %s to %s", key, val,
				 human(k->min, lo, sizeof(lo)), human(k->max, hi, sizeof(hi)));
		return -EINVAL;
	case POW2:
		if (parse_size(val, &x) == 0 && x >= k->min && x <= k->max && !(x & (x - 1)))
			return 0;
		snprintf(err, errlen, "%s '%s': expected a power of two from %s to %s", key, val,
			 human(k->min, lo, sizeof(lo)), human(k->max, hi, sizeof(hi)));
		return -EINVAL;
	case WORDS:
		if (one_of(k->words, val))
			return 0;
		snprintf(err, errlen, "%s '%s': expected one of %s", key, val, k->words);
		return -EINVAL;
	case HEX32: {
		size_t n = 0;
		while (val[n] && isxdigit((unsigned char)val[n]))
			n++;
		if (n == 32 && !val[n])
			return 0;
		snprintf(err, errlen, "%s '%s': expected 32 hex digits", key, val);
		return -EINVAL;
	}
	}
	return 0;
}
