/* show_json.c - `dst show --json`: the attribute lines as typed JSON, one
 * object per storage or export keyed by its name. Paths become nested
 * objects (io/reads -> "io": {"reads": ...}); a storage's nodes (n-START)
 * become the array "nodes" of objects with their "name"; numbers are JSON
 * numbers, yes/no flags booleans, "X/Y regions" an object; keys that may
 * repeat (uri, allow, listen, socket) are always arrays. The text form's
 * "nodes" line is "layout" here. The man page's "JSON output" section
 * describes the shape; keep it in step. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "common/util.h"
#include "show.h"

struct jnode {
	char *key;
	struct jnode *kids, *next;
	const struct attr **vals; /* leaf values */
	size_t nvals;
};

static struct jnode *jchild(struct jnode *parent, const char *key, size_t len)
{
	struct jnode **pp = &parent->kids;
	for (; *pp; pp = &(*pp)->next)
		if (strlen((*pp)->key) == len && !strncmp((*pp)->key, key, len))
			return *pp;
	struct jnode *n = xcalloc(1, sizeof(*n));
	n->key = xmalloc(len + 1);
	memcpy(n->key, key, len);
	n->key[len] = '\0';
	*pp = n;
	return n;
}

static void jfree(struct jnode *n)
{
	for (struct jnode *k = n->kids, *next; k; k = next) {
		next = k->next;
		jfree(k);
	}
	free(n->vals);
	free(n->key);
	free(n);
}

static void jadd(struct jnode *root, const char *path, const struct attr *a)
{
	struct jnode *node = root;
	for (const char *p = path;;) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);
		node = jchild(node, p, len);
		if (!slash)
			break;
		p = slash + 1;
	}
	node->vals = realloc(node->vals, (node->nvals + 1) * sizeof(*node->vals));
	if (!node->vals)
		abort();
	node->vals[node->nvals++] = a;
}

static bool all_digits(const char *s)
{
	if (!*s || strlen(s) > 20)
		return false;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return false;
	return true;
}

static bool in_list(const char *key, const char *const *list)
{
	for (; *list; list++)
		if (!strcmp(key, *list))
			return true;
	return false;
}

/* Config keys of a stopped export that are flags or plain counts. */
static const char *const conf_flags[] = {"readonly", "shared", "tls-verify-peer", NULL};
static const char *const conf_counts[] = {"backlog", "max-clients", "handshake-timeout",
					  "idle-timeout", NULL};

/* One value, typed by what its key means. */
static void typed_value(struct jw *w, const char *key, const struct attr *a)
{
	const char *v = a->val;
	if (a->type == 'N' && all_digits(v)) {
		jw_raw(w, v);
		return;
	}
	unsigned long long x, y;
	int end = 0;
	if (!strcmp(key, "mib_s")) {
		char *e;
		double d = strtod(v, &e);
		if (e != v && !*e) {
			jw_dbl(w, d);
			return;
		}
	} else if (!strcmp(key, "suspended")) {
		jw_bool(w, !strcmp(v, "yes"));
		return;
	} else if ((!strcmp(key, "sync") || !strcmp(key, "progress")) &&
		   sscanf(v, "%llu/%llu regions%n", &x, &y, &end) == 2 && !v[end]) {
		jw_obj(w);
		jw_key(w, !strcmp(key, "sync") ? "in_sync" : "done");
		jw_u64(w, x);
		jw_key(w, "regions");
		jw_u64(w, y);
		jw_end(w);
		return;
	} else if (in_list(key, conf_flags) && (!strcmp(v, "0") || !strcmp(v, "1"))) {
		jw_bool(w, v[0] == '1');
		return;
	} else if (in_list(key, conf_counts) && all_digits(v)) {
		jw_raw(w, v);
		return;
	}
	jw_str(w, v);
}

static void jprint(struct jw *w, const struct jnode *n, bool always_list);

/* The members of object n: its kids, each under its key. */
static void jmembers(struct jw *w, const struct jnode *n, bool top)
{
	static const char *const lists[] = {"uri", "allow", "listen", "socket", NULL};
	bool nodes_done = false;
	for (const struct jnode *k = n->kids; k; k = k->next) {
		bool is_node =
		    top && k->kids && !strncmp(k->key, "n-", 2) && all_digits(k->key + 2);
		if (is_node) {
			/* Every node, in the order the daemon gave them, as
			 * one array where the first of them was. */
			if (nodes_done)
				continue;
			nodes_done = true;
			jw_key(w, "nodes");
			jw_arr(w);
			for (const struct jnode *m = k; m; m = m->next) {
				if (!(m->kids && !strncmp(m->key, "n-", 2) &&
				      all_digits(m->key + 2)))
					continue;
				jw_obj(w);
				jw_key(w, "name");
				jw_str(w, m->key);
				jmembers(w, m, false);
				jw_end(w);
			}
			jw_end(w);
			continue;
		}
		jw_key(w, top && !strcmp(k->key, "nodes") && !k->kids ? "layout" : k->key);
		jprint(w, k, top && in_list(k->key, lists));
	}
	/* A storage without nodes still has the array. */
	if (top && !nodes_done) {
		const struct jnode *t = n->kids;
		while (t && strcmp(t->key, "type"))
			t = t->next;
		if (t && t->nvals && !strcmp(t->vals[0]->val, "storage")) {
			jw_key(w, "nodes");
			jw_arr(w);
			jw_end(w);
		}
	}
}

static void jprint(struct jw *w, const struct jnode *n, bool always_list)
{
	if (n->kids) {
		jw_obj(w);
		jmembers(w, n, false);
		jw_end(w);
		return;
	}
	if (n->nvals == 1 && !always_list) {
		typed_value(w, n->key, n->vals[0]);
		return;
	}
	jw_arr(w);
	for (size_t i = 0; i < n->nvals; i++)
		typed_value(w, n->key, n->vals[i]);
	jw_end(w);
}

void show_print_json(const char *text)
{
	struct attr *a;
	size_t n = attrs_parse(text, &a);
	/* One tree per name: its first path component. */
	struct jnode *root = xcalloc(1, sizeof(*root));
	for (size_t i = 0; i < n; i++)
		jadd(root, a[i].path, &a[i]);
	struct jw w;
	jw_init(&w, stdout, true);
	jw_obj(&w);
	for (const struct jnode *k = root->kids; k; k = k->next) {
		jw_key(&w, k->key);
		if (!k->kids) { /* a bare "name value" line: not ours */
			jprint(&w, k, false);
			continue;
		}
		jw_obj(&w);
		jmembers(&w, k, true);
		jw_end(&w);
	}
	jw_end(&w);
	jw_done(&w);
	jfree(root);
	attrs_free(a, n);
}
