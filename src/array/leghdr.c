/* leghdr.c - alg_mirror's per-leg header (leghdr.h). */
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "common/util.h"
#include "leghdr.h"

uint64_t leghdr_fnv1a(const uint8_t *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

uint64_t leghdr_offset(uint64_t leg_bytes)
{
	uint64_t end = leg_bytes & ~(uint64_t)(LEGHDR_SIZE - 1);
	return end >= 2 * LEGHDR_SIZE ? end - LEGHDR_SIZE : 0;
}

void leghdr_encode(const struct leg_header *h, uint8_t *buf)
{
	memset(buf, 0, LEGHDR_SIZE);
	memcpy(buf, LEGHDR_MAGIC, 8);
	memcpy(buf + 8, h->uuid, 16);
	be64_write(buf + 24, h->gen);
	be64_write(buf + 32, h->leg_bytes);
	be64_write(buf + 40, leghdr_fnv1a(buf, 40));
}

bool leghdr_decode(const uint8_t *buf, struct leg_header *h)
{
	memset(h, 0, sizeof(*h));
	if (memcmp(buf, LEGHDR_MAGIC, 8) != 0 || be64_read(buf + 40) != leghdr_fnv1a(buf, 40))
		return false;
	memcpy(h->uuid, buf + 8, 16);
	h->gen = be64_read(buf + 24);
	h->leg_bytes = be64_read(buf + 32);
	return true;
}

int uuid_parse(const char *s, uint8_t uuid[16])
{
	if (strlen(s) != 32)
		return -1;
	for (int i = 0; i < 16; i++) {
		unsigned v;
		if (sscanf(s + 2 * i, "%2x", &v) != 1 ||
		    !strchr("0123456789abcdefABCDEF", s[2 * i]) ||
		    !strchr("0123456789abcdefABCDEF", s[2 * i + 1]))
			return -1;
		uuid[i] = (uint8_t)v;
	}
	return 0;
}

void uuid_format(const uint8_t uuid[16], char out[33])
{
	for (int i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", uuid[i]);
}

int uuid_generate(uint8_t uuid[16])
{
	return getrandom(uuid, 16, 0) == 16 ? 0 : -1;
}
