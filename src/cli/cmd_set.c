/* cmd_set.c - dst set: change a storage's settings after dst create. Each is
 * checked as dst create checks it and saved in the config; a running
 * storage takes the timeouts and the resync rate at once (control command
 * `set KEY VALUE`), and says which settings wait for its next start. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "array/array.h"
#include "cli.h"
#include "common/config.h"
#include "common/util.h"

static const char set_help[] =
    "usage: dst set NAME [--io-timeout SECONDS] [--request-timeout SECONDS]\n"
    "               [--resync-rate RATE] [--csum on|off] [--nbd-reconnect-timeout SECONDS]\n"
    "               [--tls-psk FILE [--tls-username NAME] | --tls-certs DIR]\n"
    "\n"
    "Change the settings of storage NAME that dst create set. Each new value is\n"
    "checked, then saved in NAME's config. A running storage applies the ones\n"
    "marked live at once; the others take effect when it is next started\n"
    "(dst stop NAME; dst start NAME), and dst set says so.\n"
    "\n"
    "  --io-timeout SECONDS   live: how long IO waits for an unreachable remote\n"
    "                         node before failing (0: forever)\n"
    "  --request-timeout SECONDS\n"
    "                         live: a request unanswered this long makes the\n"
    "                         storage reconnect to its node and resend (1-86400)\n"
    "  --resync-rate RATE     live, alg_mirror and alg_parity: bytes per second a\n"
    "                         resync may copy, at least 4K (e.g. 50M); 0 for no\n"
    "                         limit\n"
    "  --csum on|off          live, alg_mirror: whether dst verify and a whole resync\n"
    "                         ask legs that are dst exports for checksums of their\n"
    "                         blocks (dst:csum-4k, the default: on) instead of\n"
    "                         reading their data\n"
    "  --nbd-reconnect-timeout SECONDS\n"
    "                         live, with a kernel NBD device (-f /dev/nbdN): how\n"
    "                         long its IO waits for the daemon to come back after\n"
    "                         it died before failing (default 300)\n"
    "  --tls-psk FILE, --tls-username NAME, --tls-certs DIR\n"
    "                         at next start: the credentials for nbds:// nodes\n"
    "\n"
    "The layout (alg, chunk, region-size, nodes) cannot change here: use dst add,\n"
    "dst remove and dst replace for nodes.\n"
    "Exit status: 0 when every setting was saved (and applied where live), 1\n"
    "otherwise.\n";

struct setting {
	const char *key, *val;
	bool live;
};

/* Tell the daemon, if it runs (*running), about the live settings. 0, or
 * 1 after saying which did not apply. */
static int apply_live(const char *name, const struct setting *s, size_t n, bool *running)
{
	int rc = 0;
	char err[512];
	struct strbuf reply;
	sb_init(&reply);
	*running = ctl_call(name, "ping", &reply, err, sizeof(err)) == 0;
	sb_free(&reply);
	if (!*running)
		return 0; /* the config is all there is to change */
	for (size_t i = 0; i < n; i++) {
		if (!s[i].live)
			continue;
		char cmd[256];
		snprintf(cmd, sizeof(cmd), "set %s %s", s[i].key, s[i].val);
		sb_init(&reply);
		int r = ctl_call(name, cmd, &reply, err, sizeof(err));
		sb_free(&reply);
		if (r < 0) {
			die("set: %s: %s: saved, but the running storage did not take it: %s", name,
			    s[i].key, err);
			rc = 1;
		}
	}
	return rc;
}

int cmd_set(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"io-timeout", required_argument, NULL, 'i'},
	    {"request-timeout", required_argument, NULL, 'r'},
	    {"resync-rate", required_argument, NULL, 'S'},
	    {"nbd-reconnect-timeout", required_argument, NULL, 'N'},
	    {"csum", required_argument, NULL, 'c'},
	    {"tls-psk", required_argument, NULL, 'P'},
	    {"tls-certs", required_argument, NULL, 'C'},
	    {"tls-username", required_argument, NULL, 'U'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	const char *io_timeout = NULL, *request_timeout = NULL, *resync_rate = NULL;
	const char *nbd_reconnect = NULL, *csum = NULL;
	struct tls_opts tls = {0};
	int c;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'i': io_timeout = optarg; break;
		case 'r': request_timeout = optarg; break;
		case 'S': resync_rate = optarg; break;
		case 'N': nbd_reconnect = optarg; break;
		case 'c': csum = optarg; break;
		case 'P': tls.psk = optarg; break;
		case 'C': tls.certs = optarg; break;
		case 'U': tls.username = optarg; break;
		case 'h': fputs(set_help, stdout); return 0;
		default: return bad_option("set", argv);
		}
	}
	if (optind + 1 != argc) {
		fputs(set_help, stderr);
		return 2;
	}
	const char *name = argv[optind];
	bool tls_given = tls.psk || tls.certs || tls.username;
	if (!io_timeout && !request_timeout && !resync_rate && !nbd_reconnect && !tls_given &&
	    !csum)
		return die("set: nothing to change; see 'dst set --help'");
	if (check_seconds("io-timeout", io_timeout, 0, 86400 * 365) ||
	    check_seconds("request-timeout", request_timeout, 1, 86400) ||
	    check_seconds("nbd-reconnect-timeout", nbd_reconnect, 1, 86400 * 365))
		return 1;
	struct conf conf;
	if (storage_load(name, &conf))
		return 1;
	int rc = 1;
	const struct alg_ops *ops = alg_find(conf_get(&conf, "alg") ? conf_get(&conf, "alg") : "");
	uint64_t rate = 0;
	char rate_s[32] = "";
	if (resync_rate) {
		if (!ops || !ops->redundant) {
			die("set: --resync-rate: %s is %s, which has no resync", name,
			    ops ? ops->name : "of an unknown alg");
			goto out;
		}
		if (parse_size(resync_rate, &rate) < 0 || (rate && rate < 4096)) {
			die("--resync-rate %s: expected bytes per second, at least 4K (e.g. 50M), "
			    "or "
			    "0 for no limit",
			    resync_rate);
			goto out;
		}
		snprintf(rate_s, sizeof(rate_s), "%llu", (unsigned long long)rate);
	}
	if (csum && ops != &alg_mirror) {
		die("set: --csum: %s is %s; only a mirror compares its legs", name,
		    ops ? ops->name : "of an unknown alg");
		goto out;
	}
	if (csum && strcmp(csum, "on") != 0 && strcmp(csum, "off") != 0) {
		die("--csum %s: expected on or off", csum);
		goto out;
	}
	if (tls_given && tls_opts_nodes(&conf, &tls))
		goto out;

	struct setting s[5];
	size_t n = 0;
	if (io_timeout) {
		conf_set(&conf, "io-timeout", io_timeout);
		s[n++] = (struct setting){"io-timeout", io_timeout, true};
	}
	if (request_timeout) {
		conf_set(&conf, "request-timeout", request_timeout);
		s[n++] = (struct setting){"request-timeout", request_timeout, true};
	}
	if (resync_rate) {
		if (rate)
			conf_set(&conf, "resync-rate", rate_s);
		else
			conf_del(&conf, "resync-rate");
		s[n++] = (struct setting){"resync-rate", rate_s, true};
	}
	if (csum) {
		conf_set(&conf, "csum", csum);
		s[n++] = (struct setting){"csum", csum, true};
	}
	if (nbd_reconnect) {
		conf_set(&conf, "nbd-reconnect-timeout", nbd_reconnect);
		s[n++] = (struct setting){"nbd-reconnect-timeout", nbd_reconnect, true};
	}
	if (storage_save(name, &conf))
		goto out;
	bool running;
	rc = apply_live(name, s, n, &running);
	for (size_t i = 0; i < n; i++)
		printf("%s: %s = %s (%s)\n", name, s[i].key, s[i].val,
		       running ? "applied now" : "saved; the storage is not running");
	if (tls_given)
		printf("%s: node TLS credentials saved; %s\n", name,
		       running ? "they take effect at the next start (dst stop, dst start)"
			       : "the storage is not running");
out:
	conf_free(&conf);
	return rc;
}
