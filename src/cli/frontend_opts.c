/* frontend_opts.c - the checks of what dst export and dst start both take
 * for their NBD frontends: --listen ADDR:PORT and --allow rules. */
#include <stdint.h>
#include <string.h>

#include "cli.h"
#include "common/acl.h"
#include "common/util.h"

int listen_check(const char *a)
{
	const char *colon = strrchr(a, ':');
	uint64_t port;
	if (!colon || parse_u64(colon + 1, &port) < 0 || port > 65535)
		return die("--listen %s: expected ADDR:PORT with PORT 0..65535", a);
	return 0;
}

int allow_check(const char *rule)
{
	struct acl_rule r;
	char err[512];
	if (acl_parse_rule(rule, &r, err, sizeof(err)) < 0)
		return die("%s", err);
	return 0;
}
