/* cmd_systemd.c - `dst enable` and `dst disable`: a storage or export
 * started at boot by systemd (the dst@NAME.service template under
 * dst.target), the local exports and storages its nodes name ordered
 * before it by a drop-in. systemctl does the enabling; these commands say
 * what to run instead where systemd is not running. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <ifaddrs.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "array/nodeconf.h"
#include "cli.h"
#include "common/config.h"
#include "common/state.h"
#include "common/strbuf.h"
#include "common/util.h"
#include "nbd/uri.h"

static const char enable_help[] =
    "usage: dst enable NAME [--now] [--dry-run]\n"
    "\n"
    "Start storage or export NAME at boot: enable its systemd unit\n"
    "dst@NAME.service (which runs `dstd --foreground NAME`) and dst.target,\n"
    "which wants the enabled units. For a storage whose nodes are exports or\n"
    "storages of this host (their URIs name a local address and the port, or\n"
    "the Unix socket, they serve on), a drop-in\n"
    "/etc/systemd/system/dst@NAME.service.d/dst-enable.conf orders their units\n"
    "first (Wants= and After=); enable them too. With a state dir other than\n"
    "/var/lib/dst, the drop-in also sets DST_STATE_DIR for the unit.\n"
    "Refused where systemd is not running; the systemctl lines are printed.\n"
    "\n"
    "  --now       start it now as well (systemctl enable --now)\n"
    "  --dry-run   print the drop-in and the systemctl commands; change nothing\n";

static const char disable_help[] =
    "usage: dst disable NAME [--now] [--dry-run]\n"
    "\n"
    "No longer start NAME at boot: disable dst@NAME.service and remove the\n"
    "drop-in `dst enable` wrote. Refused where systemd is not running; the\n"
    "systemctl lines are printed.\n"
    "\n"
    "  --now       stop it now as well (systemctl disable --now)\n"
    "  --dry-run   print the systemctl commands; change nothing\n";

#define DEFAULT_STATE_DIR "/var/lib/dst"

static const char *unit_dir(void)
{
	const char *d = getenv("DST_SYSTEMD_DIR");
	return d && *d ? d : "/etc/systemd/system";
}

/* As sd_booted(3): systemd is PID 1 when this directory exists. */
static bool systemd_running(void)
{
	struct stat st;
	return lstat("/run/systemd/system", &st) == 0 && S_ISDIR(st.st_mode);
}

/* ---- which local daemons a storage's nodes name ---- */

static bool addr_loopback(const char *h)
{
	struct in_addr a4;
	struct in6_addr a6;
	if (!strcmp(h, "localhost"))
		return true;
	if (inet_pton(AF_INET, h, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	return inet_pton(AF_INET6, h, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

static bool addr_wildcard(const char *h)
{
	return !h[0] || !strcmp(h, "0.0.0.0") || !strcmp(h, "::") || !strcmp(h, "*");
}

/* h is an address of this host (loopback, or one of its interfaces). */
static bool addr_local(const char *h)
{
	if (addr_loopback(h))
		return true;
	unsigned char want[16], have[16];
	int fam = inet_pton(AF_INET, h, want) == 1    ? AF_INET
		  : inet_pton(AF_INET6, h, want) == 1 ? AF_INET6
						      : 0;
	if (!fam)
		return false;
	struct ifaddrs *ifs, *i;
	if (getifaddrs(&ifs) < 0)
		return false;
	bool found = false;
	for (i = ifs; i && !found; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != fam)
			continue;
		if (fam == AF_INET)
			memcpy(have, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, 4);
		else
			memcpy(have, &((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr, 16);
		found = !memcmp(want, have, fam == AF_INET ? 4 : 16);
	}
	freeifaddrs(ifs);
	return found;
}

/* Does listen address "ADDR:PORT" ("[v6]:PORT") serve node URI u? */
static bool listen_serves(const char *listen, const struct nbd_uri *u)
{
	const char *colon = strrchr(listen, ':');
	if (!colon || strcmp(colon + 1, u->port) != 0)
		return false;
	char host[256];
	const char *h = listen;
	size_t len = (size_t)(colon - listen);
	if (len >= 2 && h[0] == '[' && h[len - 1] == ']')
		h++, len -= 2;
	snprintf(host, sizeof(host), "%.*s", (int)len, h);
	if (!addr_local(u->host))
		return false;
	return addr_wildcard(host) || !strcmp(host, u->host) ||
	       (addr_loopback(host) && addr_loopback(u->host));
}

/* Does daemon `other` (its config c) serve node URI u? */
static bool conf_serves(const char *other, const struct conf *c, const struct nbd_uri *u)
{
	const char *type = conf_get(c, "type");
	bool is_export = type && !strcmp(type, "export");
	size_t nl = conf_count(c, "listen"), ns = conf_count(c, "socket");
	if (u->is_unix) {
		for (size_t i = 0; i < ns; i++)
			if (!strcmp(conf_get_nth(c, "socket", i), u->socket))
				return true;
		/* A storage with neither serves on NAME.sock in the state dir. */
		bool served = false;
		if (!is_export && !nl && !ns) {
			char *p = state_path(other, ".sock");
			served = !strcmp(p, u->socket);
			free(p);
		}
		return served;
	}
	for (size_t i = 0; i < nl; i++)
		if (listen_serves(conf_get_nth(c, "listen", i), u))
			return true;
	/* An export with neither listens on 127.0.0.1:10809. */
	return is_export && !nl && !ns && listen_serves("127.0.0.1:10809", u);
}

/* The local daemons (by name) that the nodes of storage name serve, as
 * "dst@A.service dst@B.service" into deps. */
static void local_deps(const char *name, const struct conf *conf, struct strbuf *deps)
{
	DIR *d = opendir(state_dir());
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (l <= 5 || strcmp(de->d_name + l - 5, ".conf") != 0)
			continue;
		char other[256];
		snprintf(other, sizeof(other), "%.*s", (int)(l - 5), de->d_name);
		char e[256];
		if (!strcmp(other, name) || !state_name_valid(other, e, sizeof(e)))
			continue;
		char *path = state_path(other, ".conf");
		struct conf oc;
		int rc = conf_load(path, &oc, e, sizeof(e));
		free(path);
		if (rc < 0)
			continue;
		bool serves = false;
		for (size_t i = 0; !serves && conf_get_nth(conf, "node", i); i++) {
			struct node_conf nc;
			struct nbd_uri u;
			if (node_conf_parse(conf_get_nth(conf, "node", i), &nc, e, sizeof(e)) < 0)
				continue;
			if (nc.remote && nbd_uri_parse(nc.spec, &u, e, sizeof(e)) == 0)
				serves = conf_serves(other, &oc, &u);
			free(nc.spec);
		}
		conf_free(&oc);
		if (serves)
			sb_printf(deps, "%sdst@%s.service", deps->s && deps->s[0] ? " " : "",
				  other);
	}
	closedir(d);
}

/* The drop-in for NAME, or an empty buffer when it needs none. */
static void dropin_text(const char *name, const struct conf *conf, struct strbuf *out)
{
	struct strbuf deps;
	sb_init(&deps);
	const char *type = conf_get(conf, "type");
	if (type && !strcmp(type, "storage"))
		local_deps(name, conf, &deps);
	bool other_dir = strcmp(state_dir(), DEFAULT_STATE_DIR) != 0;
	if (deps.s && deps.s[0]) {
		sb_printf(out,
			  "# Written by dst enable %s: its nodes served on this host start "
			  "first.\n[Unit]\nWants=%s\nAfter=%s\n",
			  name, deps.s, deps.s);
	}
	if (other_dir)
		sb_printf(out, "%s[Service]\nEnvironment=DST_STATE_DIR=%s\n",
			  out->s && out->s[0] ? "" : "# Written by dst enable.\n", state_dir());
	sb_free(&deps);
}

/* Write text to path whole or not at all (a temp file renamed over it). */
static int write_whole(const char *path, const char *text)
{
	char tmp[PATH_MAX + 40];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = fopen(tmp, "we");
	if (!f)
		return die("%s: %s", tmp, strerror(errno));
	bool ok = fputs(text, f) >= 0;
	ok = (fclose(f) == 0) && ok;
	if (!ok || rename(tmp, path) < 0) {
		int e = errno;
		unlink(tmp);
		return die("%s: %s", path, strerror(e));
	}
	return 0;
}

/* ---- running systemctl ---- */

static int systemctl(const char *a1, const char *a2, const char *a3, const char *a4, const char *a5)
{
	char *argv[] = {"systemctl", (char *)a1, (char *)a2, (char *)a3,
			(char *)a4,  (char *)a5, NULL};
	char out[1024], err[1024];
	int rc = run_capture(argv, out, sizeof(out), err, sizeof(err));
	if (out[0])
		printf("%s\n", out);
	if (rc != 0)
		return die("systemctl %s %s%s%s%s%s%s%s: %s", a1, a2 ? a2 : "", a3 ? " " : "",
			   a3 ? a3 : "", a4 ? " " : "", a4 ? a4 : "", a5 ? " " : "", a5 ? a5 : "",
			   err[0]      ? err
			   : rc == 127 ? "cannot run systemctl"
				       : "failed");
	if (err[0])
		fprintf(stderr, "%s\n", err);
	return 0;
}

/* --now and --dry-run, for one_name. */
static bool opt_now, opt_dry;
static int systemd_opt(int c, const char *arg)
{
	if (c == 'n')
		opt_now = true;
	else
		opt_dry = true;
	return 0;
}

static int parse(int argc, char **argv, const char *help, bool *now, bool *dry)
{
	static const struct option opts[] = {
	    {"now", no_argument, NULL, 'n'},
	    {"dry-run", no_argument, NULL, 'd'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	opt_now = opt_dry = false;
	int i = one_name(argc, argv, help, "h", opts, systemd_opt);
	*now = opt_now;
	*dry = opt_dry;
	return i;
}

static int load(const char *name, struct conf *c)
{
	char *path = state_path(name, ".conf");
	char err[512];
	int rc = conf_load(path, c, err, sizeof(err));
	free(path);
	if (rc == -ENOENT)
		return die("no storage or export named '%s' (state dir %s)", name, state_dir());
	if (rc < 0)
		return die("%s", err);
	return 0;
}

int cmd_enable(int argc, char **argv)
{
	bool now = false, dry = false;
	int i = parse(argc, argv, enable_help, &now, &dry);
	if (i < 0)
		return i == -2 ? 0 : 1;
	const char *name = argv[i];
	struct conf conf;
	if (load(name, &conf))
		return 1;
	struct strbuf drop;
	sb_init(&drop);
	dropin_text(name, &conf, &drop);
	conf_free(&conf);
	char dir[PATH_MAX], file[PATH_MAX + 32];
	snprintf(dir, sizeof(dir), "%s/dst@%s.service.d", unit_dir(), name);
	snprintf(file, sizeof(file), "%s/dst-enable.conf", dir);
	bool has_drop = drop.s && drop.s[0];
	bool up = systemd_running();
	if (dry || !up) {
		FILE *o = dry ? stdout : stderr;
		if (!dry)
			fprintf(o,
				"dst: systemd is not running here (no /run/systemd/system): '%s' "
				"cannot be enabled. Where it runs, dst enable %s does:\n",
				name, name);
		if (has_drop)
			fprintf(o, "  cat > %s <<EOF\n%sEOF\n", file, drop.s);
		fprintf(
		    o,
		    "  systemctl daemon-reload\n  systemctl enable%s dst.target dst@%s.service\n",
		    now ? " --now" : "", name);
		sb_free(&drop);
		return dry ? 0 : 1;
	}
	if (has_drop) {
		if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
			int e = errno;
			sb_free(&drop);
			return die("%s: %s", dir, strerror(e));
		}
		if (write_whole(file, drop.s)) {
			sb_free(&drop);
			return 1;
		}
		printf("wrote %s\n", file);
	} else {
		unlink(file);
		rmdir(dir);
	}
	sb_free(&drop);
	char unit[300];
	snprintf(unit, sizeof(unit), "dst@%s.service", name);
	if (systemctl("daemon-reload", NULL, NULL, NULL, NULL))
		return 1;
	if (systemctl("enable", now ? "--now" : "dst.target", now ? "dst.target" : unit,
		      now ? unit : NULL, NULL))
		return 1;
	printf("enabled '%s' (%s)%s\n", name, unit, now ? ", started" : "");
	return 0;
}

int cmd_disable(int argc, char **argv)
{
	bool now = false, dry = false;
	int i = parse(argc, argv, disable_help, &now, &dry);
	if (i < 0)
		return i == -2 ? 0 : 1;
	const char *name = argv[i];
	char dir[PATH_MAX], file[PATH_MAX + 32], unit[300];
	snprintf(dir, sizeof(dir), "%s/dst@%s.service.d", unit_dir(), name);
	snprintf(file, sizeof(file), "%s/dst-enable.conf", dir);
	snprintf(unit, sizeof(unit), "dst@%s.service", name);
	if (dry || !systemd_running()) {
		FILE *o = dry ? stdout : stderr;
		if (!dry)
			fprintf(o,
				"dst: systemd is not running here (no /run/systemd/system): '%s' "
				"cannot be disabled. Where it runs, dst disable %s does:\n",
				name, name);
		fprintf(o, "  systemctl disable%s %s\n  rm -f %s\n  systemctl daemon-reload\n",
			now ? " --now" : "", unit, file);
		return dry ? 0 : 1;
	}
	if (systemctl("disable", now ? "--now" : unit, now ? unit : NULL, NULL, NULL))
		return 1;
	if (unlink(file) == 0)
		rmdir(dir);
	if (systemctl("daemon-reload", NULL, NULL, NULL, NULL))
		return 1;
	printf("disabled '%s' (%s)%s\n", name, unit, now ? ", stopped" : "");
	return 0;
}
