/* limit_opts.c - the server's limits and the control socket's group on dst's
 * command line (see cli.h). Values are checked by the daemon's own parser
 * before they are saved, so a config dst wrote is one dstd accepts. */
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "common/config.h"
#include "common/util.h"
#include "daemon/frontend_limits.h"
#include "nbd/server.h"

bool limit_opts_take(struct limit_opts *l, int c, const char *arg)
{
	switch (c) {
	case OPT_MAX_CLIENTS: l->max_clients = arg; return true;
	case OPT_CLIENT_BUDGET: l->client_budget = arg; return true;
	case OPT_HANDSHAKE_TIMEOUT: l->handshake_timeout = arg; return true;
	case OPT_IDLE_TIMEOUT: l->idle_timeout = arg; return true;
	case OPT_CTL_GROUP: l->ctl_group = arg; return true;
	default: return false;
	}
}

bool limit_opts_given(const struct limit_opts *l)
{
	return l->max_clients || l->client_budget || l->handshake_timeout || l->idle_timeout ||
	       l->ctl_group;
}

int limit_opts_save(struct conf *conf, const struct limit_opts *l)
{
	struct {
		const char *key, *val;
	} kv[] = {
	    {"max-clients", l->max_clients},
	    {"client-budget", l->client_budget},
	    {"handshake-timeout", l->handshake_timeout},
	    {"idle-timeout", l->idle_timeout},
	};
	struct conf check = {0};
	for (size_t i = 0; i < ARRAY_SIZE(kv); i++)
		if (kv[i].val)
			conf_add(&check, kv[i].key, kv[i].val);
	struct nbd_server_config cfg = {0};
	char err[256];
	int rc = frontend_limits(&check, &cfg, err, sizeof(err));
	conf_free(&check);
	if (rc < 0)
		return die("--%s", err);
	if (l->ctl_group) {
		uint64_t gid;
		if (!getgrnam(l->ctl_group) &&
		    (parse_u64(l->ctl_group, &gid) < 0 || !getgrgid((gid_t)gid)))
			return die("--ctl-group %s: no such group", l->ctl_group);
		conf_set(conf, "ctl-group", l->ctl_group);
	}
	for (size_t i = 0; i < ARRAY_SIZE(kv); i++)
		if (kv[i].val)
			conf_set(conf, kv[i].key, kv[i].val);
	return 0;
}
