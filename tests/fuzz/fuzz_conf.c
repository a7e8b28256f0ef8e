/* fuzz_conf.c - the config parser (conf_parse), which every dstd runs on
 * NAME.conf at start, and the parsers its values go through: node lines
 * (node_conf_parse), --allow rules (acl_parse_rule), the server's limits
 * (frontend_limits), sizes and numbers.
 *
 * Checked: what conf_parse returns is what a config may hold (keys of
 * [A-Za-z0-9_.-], values trimmed and on one line, every value one its key
 * takes, a key that takes one line there once) and reads back the same
 * once written out; a node line and an allow rule read back the same after
 * they are formatted; a NUL byte anywhere is refused.
 *
 * Input: the config file's bytes, as conf_load reads them. */
#include <ctype.h>

#include "array/nodeconf.h"
#include "common/acl.h"
#include "common/conf_keys.h"
#include "common/config.h"
#include "common/strbuf.h"
#include "common/util.h"
#include "daemon/frontend_limits.h"
#include "fuzz.h"
#include "nbd/server.h"

static void check_value(const struct conf_entry *e)
{
	char err[256];
	uint64_t x;
	if (!strcmp(e->key, "node")) {
		struct node_conf nc, again;
		if (node_conf_parse(e->val, &nc, err, sizeof(err)) < 0)
			return;
		char *line = node_conf_format(&nc);
		FUZZ_ASSERT(node_conf_parse(line, &again, err, sizeof(err)) == 0);
		FUZZ_ASSERT(again.remote == nc.remote && again.start == nc.start &&
			    again.size == nc.size && !strcmp(again.spec, nc.spec));
		free(line);
		node_conf_free(&nc);
		node_conf_free(&again);
	} else if (!strcmp(e->key, "allow")) {
		struct acl_rule r, again;
		if (acl_parse_rule(e->val, &r, err, sizeof(err)) < 0)
			return;
		char text[128];
		acl_rule_format(&r, text, sizeof(text));
		FUZZ_ASSERT(acl_parse_rule(text, &again, err, sizeof(err)) == 0);
		FUZZ_ASSERT(again.family == r.family && again.prefix == r.prefix &&
			    again.access == r.access && !memcmp(again.addr, r.addr, 16));
	} else if (!strcmp(e->key, "buffers") || !strcmp(e->key, "chunk") ||
		   !strcmp(e->key, "region-size") || !strcmp(e->key, "resync-rate") ||
		   !strcmp(e->key, "client-budget")) {
		if (parse_size(e->val, &x) == 0) {
			char b[64];
			format_size(x, b, sizeof(b));
		}
	} else {
		parse_u64(e->val, &x);
	}
}

FUZZ_TARGET(conf)
{
	struct conf c;
	char err[256];
	err[0] = '\0';
	if (conf_parse_buf((const char *)data, size, &c, err, sizeof(err)) < 0) {
		FUZZ_ASSERT(!strncmp(err, "line ", 5));
		FUZZ_ASSERT(c.n == 0 && c.e == NULL);
		return 0;
	}
	FUZZ_ASSERT(!memchr(data, '\0', size));
	struct nbd_server_config cfg = {0};
	if (frontend_limits(&c, &cfg, err, sizeof(err)) == 0)
		FUZZ_ASSERT(cfg.handshake_timeout_s <= 3600 && cfg.max_clients <= 65536 &&
			    cfg.idle_timeout_s <= 604800 && cfg.client_budget <= (64ull << 30));
	struct strbuf out;
	sb_init(&out);
	bool writable = true;
	for (size_t i = 0; i < c.n; i++) {
		const struct conf_entry *e = &c.e[i];
		size_t kl = strlen(e->key), vl = strlen(e->val);
		FUZZ_ASSERT(kl > 0);
		for (size_t j = 0; j < kl; j++)
			FUZZ_ASSERT(isalnum((unsigned char)e->key[j]) || strchr("_-.", e->key[j]));
		FUZZ_ASSERT(!strchr(e->val, '\n'));
		FUZZ_ASSERT(vl == 0 || (!isspace((unsigned char)e->val[0]) &&
					!isspace((unsigned char)e->val[vl - 1])));
		/* conf_save refuses a CR inside a value: such a config is only
		 * ever read, never written back. */
		if (strchr(e->val, '\r'))
			writable = false;
		sb_printf(&out, "%s = %s\n", e->key, e->val);
		FUZZ_ASSERT(conf_get(&c, e->key) != NULL);
		FUZZ_ASSERT(conf_key_check(e->key, e->val, err, sizeof(err)) == 0);
		FUZZ_ASSERT(conf_key_multi(e->key) || conf_count(&c, e->key) == 1);
		check_value(e);
	}
	if (writable) {
		struct conf again;
		FUZZ_ASSERT(conf_parse(out.s ? out.s : "", &again, err, sizeof(err)) == 0);
		FUZZ_ASSERT(again.n == c.n);
		for (size_t i = 0; i < c.n; i++)
			FUZZ_ASSERT(!strcmp(again.e[i].key, c.e[i].key) &&
				    !strcmp(again.e[i].val, c.e[i].val));
		conf_free(&again);
	}
	/* The editing calls the CLI makes on a loaded config. */
	if (c.n) {
		/* A copy: conf_del frees the entries' own key strings. */
		char *k = xstrdup(c.e[0].key);
		size_t n = conf_count(&c, k);
		FUZZ_ASSERT(n >= 1);
		conf_replace_nth(&c, k, n - 1, "x");
		conf_set(&c, k, "y");
		FUZZ_ASSERT(conf_count(&c, k) == 1 && !strcmp(conf_get(&c, k), "y"));
		conf_del(&c, k);
		FUZZ_ASSERT(conf_get(&c, k) == NULL);
		free(k);
	}
	sb_free(&out);
	conf_free(&c);
	return 0;
}
