/* nodeconf.c - parse and format a storage's node lines (nodeconf.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "leghdr.h"
#include "nodeconf.h"

void node_conf_name(uint64_t start, char *buf, size_t len)
{
	snprintf(buf, len, "n-%llu", (unsigned long long)start);
}

int node_conf_parse(const char *line, struct node_conf *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	const char *p = line;
	size_t kl = strcspn(p, " \t");
	if (kl == 6 && !strncmp(p, "remote", 6)) {
		out->remote = true;
	} else if (!(kl == 4 && !strncmp(p, "disk", 4))) {
		snprintf(err, errlen, "node '%s': expected 'remote' or 'disk' first", line);
		return -EINVAL;
	}
	p += kl;
	bool have_start = false, have_id = false;
	for (;;) {
		p += strspn(p, " \t");
		const char *eq = p + strcspn(p, "= \t");
		size_t kl2 = (size_t)(eq - p);
		if (*eq != '=' ||
		    !((kl2 == 5 && !strncmp(p, "start", 5)) ||
		      (kl2 == 4 && !strncmp(p, "size", 4)) ||
		      (kl2 == 5 && !strncmp(p, "label", 5)) || (kl2 == 2 && !strncmp(p, "id", 2))))
			break;
		const char *v = eq + 1;
		size_t vl = strcspn(v, " \t");
		char key[8], val[33];
		snprintf(key, sizeof(key), "%.*s", (int)kl2, p);
		if (vl == 0 || vl >= sizeof(val)) {
			snprintf(err, errlen, "node '%s': bad %s", line, key);
			return -EINVAL;
		}
		memcpy(val, v, vl);
		val[vl] = '\0';
		p = v + vl;
		if (!strcmp(key, "id")) {
			if (uuid_parse(val, out->id) < 0) {
				snprintf(err, errlen, "node '%s': id '%s' is not 32 hex digits",
					 line, val);
				return -EINVAL;
			}
			have_id = true;
			continue;
		}
		uint64_t x;
		if (parse_u64(val, &x) < 0) {
			snprintf(err, errlen, "node '%s': %s '%s' is not a number of %s", line, key,
				 val, strcmp(key, "label") ? "sectors" : "bytes");
			return -EINVAL;
		}
		if (!strcmp(key, "start")) {
			out->start = x;
			have_start = true;
		} else if (!strcmp(key, "size")) {
			out->size = x;
		} else {
			if (x == 0 || x % 4096) {
				snprintf(err, errlen,
					 "node '%s': label %s is not a positive multiple of 4096",
					 line, val);
				return -EINVAL;
			}
			out->label = x;
		}
	}
	if (!out->label != !have_id) {
		snprintf(err, errlen, "node '%s': label= and id= go together", line);
		return -EINVAL;
	}
	if (!*p) {
		snprintf(err, errlen, "node '%s': missing the %s", line,
			 out->remote ? "URI" : "disk path");
		return -EINVAL;
	}
	if (!have_start) {
		snprintf(err, errlen, "node '%s': missing start=SECTOR", line);
		return -EINVAL;
	}
	out->spec = xstrdup(p);
	return 0;
}

char *node_conf_format(const struct node_conf *nc)
{
	if (nc->label) {
		char id[33];
		uuid_format(nc->id, id);
		return xasprintf("%s start=%llu size=%llu label=%llu id=%s %s",
				 nc->remote ? "remote" : "disk", (unsigned long long)nc->start,
				 (unsigned long long)nc->size, (unsigned long long)nc->label, id,
				 nc->spec);
	}
	return xasprintf("%s start=%llu size=%llu %s", nc->remote ? "remote" : "disk",
			 (unsigned long long)nc->start, (unsigned long long)nc->size, nc->spec);
}

void node_conf_free(struct node_conf *nc)
{
	free(nc->spec);
	nc->spec = NULL;
}
