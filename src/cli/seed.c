/* seed.c - the original DST tool's command line, mapped onto dst's actions:
 *
 *   dst -n storage -A alg_linear -f /dev/dst -a kano -p 1025      add remote node
 *   dst -n storage -A alg_linear -f /dev/dst -a via -p 1025 -R    ... and start
 *   dst -n storage -A alg_linear -f /dev/dst -D                   delete
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "common/config.h"
#include "common/state.h"
#include "common/util.h"

static const char seed_help[] =
    "usage: dst -n NAME [-A ALG] [-f PATH] [-a ADDR [-p PORT] | -d DISK] [-s START]\n"
    "           [-S SIZE] [-r] [-b BACKLOG] [-R] [-D] [-h]\n"
    "\n"
    "The original DST tool's form, kept for its users. Each invocation can create\n"
    "storage NAME, add or remove one node, and start it:\n"
    "  -n NAME     the storage\n"
    "  -A ALG      alg_linear, alg_stripe or alg_mirror; creates NAME if it does not exist\n"
    "  -f PATH     where the storage appears once started: a regular file over\n"
    "              FUSE at PATH (`dst attach NAME` makes it /dev/loopN), or the\n"
    "              kernel's NBD device when PATH is /dev/nbdN, or the ublk\n"
    "              device /dev/ublkbN (as dst start --ublk N). It is also\n"
    "              always served over NBD (see `dst show NAME` for its URI)\n"
    "  -a ADDR     add the remote node at ADDR (an export node, any NBD server)\n"
    "  -p PORT     its port (default 10809)\n"
    "  -d DISK     add a local disk or file as a node\n"
    "  -s START    start sector of the node (default: after the last node)\n"
    "  -S SIZE     size in sectors (default: the node's whole size)\n"
    "  -r          remove the node given with -a/-p or -d instead of adding it\n"
    "  -b BACKLOG  listen backlog of the storage's NBD server\n"
    "  -R          start the storage (after adding the node, if one is given)\n"
    "  -D          stop and delete the storage\n"
    "  -h          this help\n"
    "\n"
    "Example, a storage over two export nodes, appearing as the file /dev/dst:\n"
    "  dst -n storage -A alg_linear -f /dev/dst -a kano -p 1025\n"
    "  dst -n storage -A alg_linear -f /dev/dst -a via -p 1025 -R\n";

int cmd_seed(int argc, char **argv)
{
	const char *name = NULL, *alg = NULL, *dev = NULL, *addr = NULL, *port = "10809";
	const char *disk = NULL, *start = NULL, *size = NULL, *backlog = NULL;
	bool remove = false, run = false, del = false;
	int c;
	optind = 1;
	while ((c = getopt(argc, argv, "n:A:f:a:p:d:s:S:rb:RDh")) != -1) {
		switch (c) {
		case 'n': name = optarg; break;
		case 'A': alg = optarg; break;
		case 'f': dev = optarg; break;
		case 'a': addr = optarg; break;
		case 'p': port = optarg; break;
		case 'd': disk = optarg; break;
		case 's': start = optarg; break;
		case 'S': size = optarg; break;
		case 'r': remove = true; break;
		case 'b': backlog = optarg; break;
		case 'R': run = true; break;
		case 'D': del = true; break;
		case 'h': return fputs(seed_help, stdout), 0;
		default: return bad_option("", argv);
		}
	}
	if (optind < argc)
		return die("unexpected argument '%s'; see 'dst -h'", argv[optind]);
	if (!name)
		return die("-n NAME is required; see 'dst -h'");
	if (addr && disk)
		return die("give either -a ADDR or -d DISK, not both");
	uint64_t v;
	if (addr && (parse_u64(port, &v) < 0 || v == 0 || v > 65535))
		return die("-p %s: expected a port 1..65535", port);
	char err[256];
	if (!state_name_valid(name, err, sizeof(err)))
		return die("%s", err);

	char *conf_path = state_path(name, ".conf");
	bool exists = access(conf_path, F_OK) == 0;
	int rc = 0;
	if (del) {
		free(conf_path);
		if (!exists)
			return die("no storage named '%s'", name);
		if (state_running_pid(name)) {
			char *args[] = {"stop", (char *)name, NULL};
			optind = 1;
			if (cmd_stop(2, args))
				return 1;
		}
		char *args[] = {"delete", (char *)name, NULL};
		optind = 1;
		return cmd_delete(2, args);
	}
	if (!exists) {
		if (!alg) {
			free(conf_path);
			return die("storage '%s' does not exist; give -A alg_linear to create it",
				   name);
		}
		if ((rc = storage_create(name, &(struct create_args){.alg = alg, .device = dev})))
			goto out;
	}
	struct conf conf;
	if (conf_load(conf_path, &conf, err, sizeof(err)) < 0) {
		rc = die("%s", err);
		goto out;
	}
	const char *have = conf_get(&conf, "alg");
	bool changed = false;
	if (alg && have && strcmp(have, alg) && strcmp(have + 4, alg)) {
		rc = die("storage '%s' uses %s, not %s", name, have, alg);
		conf_free(&conf);
		goto out;
	}
	if (dev) {
		/* -f PATH: the FUSE file, /dev/nbdN for kernel NBD, /dev/ublkbN. */
		struct conf want = {0};
		for (size_t i = 0; i < conf.n; i++)
			conf_add(&want, conf.e[i].key, conf.e[i].val);
		if (device_conf_set(&want, dev)) {
			rc = 1;
			conf_free(&want);
			conf_free(&conf);
			goto out;
		}
		const char *keys[] = {"fuse", "nbd-device", "device", "ublk"};
		for (size_t k = 0; k < ARRAY_SIZE(keys); k++) {
			const char *a = conf_get(&conf, keys[k]), *b = conf_get(&want, keys[k]);
			if ((a == NULL) != (b == NULL) || (a && strcmp(a, b)))
				changed = true;
		}
		if (changed) {
			conf_free(&conf);
			conf = want;
		} else {
			conf_free(&want);
		}
	}
	if (backlog) {
		if (parse_u64(backlog, &v) < 0 || !v || v > 65535) {
			rc = die("-b %s: expected a backlog 1..65535", backlog);
			conf_free(&conf);
			goto out;
		}
		conf_set(&conf, "backlog", backlog);
		changed = true;
	}
	if (changed && conf_save(conf_path, &conf, err, sizeof(err)) < 0)
		rc = die("%s", err);
	conf_free(&conf);
	if (rc)
		goto out;
	if (addr || disk) {
		char *spec = addr ? (strchr(addr, ':') && addr[0] != '['
					 ? xasprintf("nbd://[%s]:%s", addr, port)
					 : xasprintf("nbd://%s:%s", addr, port))
				  : xstrdup(disk);
		if (remove) {
			if (disk && spec[0] != '/') {
				char *abs = realpath(disk, NULL);
				if (abs) {
					free(spec);
					spec = abs;
				}
			}
			rc = storage_remove(name, spec);
		} else {
			rc = storage_add(name, addr != NULL, spec, start, size, NULL, NULL);
		}
		free(spec);
		if (rc) {
			/* A storage this command created is not left behind. */
			if (!exists)
				unlink(conf_path);
			goto out;
		}
	} else if (remove) {
		rc = die("-r needs the node to remove (-a ADDR -p PORT or -d DISK)");
		goto out;
	}
	if (run) {
		char *args[] = {"start", (char *)name, NULL};
		optind = 1;
		rc = cmd_start(2, args);
	}
out:
	free(conf_path);
	return rc;
}
