/* nodeconf.c - parse and format a storage's node lines (nodeconf.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
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
	bool have_start = false;
	for (;;) {
		p += strspn(p, " \t");
		if (!strncmp(p, "start=", 6) || !strncmp(p, "size=", 5)) {
			bool is_start = p[1] == 't';
			const char *v = strchr(p, '=') + 1;
			size_t vl = strcspn(v, " \t");
			char num[32];
			uint64_t x;
			if (vl == 0 || vl >= sizeof(num)) {
				snprintf(err, errlen, "node '%s': bad %s", line,
					 is_start ? "start" : "size");
				return -EINVAL;
			}
			memcpy(num, v, vl);
			num[vl] = '\0';
			if (parse_u64(num, &x) < 0) {
				snprintf(err, errlen,
					 "node '%s': %s '%s' is not a number of sectors", line,
					 is_start ? "start" : "size", num);
				return -EINVAL;
			}
			if (is_start) {
				out->start = x;
				have_start = true;
			} else {
				out->size = x;
			}
			p = v + vl;
			continue;
		}
		break;
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
	return xasprintf("%s start=%llu size=%llu %s", nc->remote ? "remote" : "disk",
			 (unsigned long long)nc->start, (unsigned long long)nc->size, nc->spec);
}

void node_conf_free(struct node_conf *nc)
{
	free(nc->spec);
	nc->spec = NULL;
}
