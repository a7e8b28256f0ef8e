/* alg_registry.c - the algorithms a storage can be built with, by name: the
 * one place that lists them all (the core and the tools look them up). */
#include <stdio.h>
#include <string.h>

#include "array/alg.h"
#include "common/util.h"

static const struct alg_ops *const algs[] = {&alg_linear, &alg_stripe, &alg_mirror, &alg_parity};

const struct alg_ops *alg_find(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(algs); i++) {
		const char *full = algs[i]->name; /* "alg_linear" */
		if (!strcmp(name, full) || !strcmp(name, full + 4))
			return algs[i];
	}
	return NULL;
}

const char *alg_names(void)
{
	static char buf[128];
	if (!buf[0]) {
		size_t len = 0;
		for (size_t i = 0; i < ARRAY_SIZE(algs); i++)
			len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%s",
						i == 0			    ? ""
						: i + 1 == ARRAY_SIZE(algs) ? " or "
									    : ", ",
						algs[i]->name);
	}
	return buf;
}
