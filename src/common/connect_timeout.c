/* connect_timeout.c - the connect and handshake timeout from the
 * environment (connect_timeout.h). */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "connect_timeout.h"
#include "util.h"

unsigned connect_timeout_s(unsigned dflt)
{
	static bool said;
	const char *v = getenv("DST_CONNECT_TIMEOUT");
	uint64_t x;
	if (!v || !*v)
		return dflt;
	if (parse_u64(v, &x) == 0 && x >= 1 && x <= 3600)
		return (unsigned)x;
	if (!said) {
		said = true;
		fprintf(stderr,
			"DST_CONNECT_TIMEOUT '%s': expected seconds from 1 to 3600; using %u\n", v,
			dflt);
	}
	return dflt;
}
