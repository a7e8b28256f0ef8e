/* dst.c - the dst command-line tool: configures storages and export nodes,
 * starts and stops their daemons, and shows their state. Stateless: all
 * state is in the state dir and in the running daemons. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "common/version.h"
#include "show.h"

static const char main_help[] =
    "usage: dst COMMAND [ARGS...]\n"
    "\n"
    "dst builds distributed block storage: one virtual block device assembled\n"
    "from local disks and remote nodes, served over NBD.\n"
    "\n"
    "Storages:\n"
    "  create NAME --alg linear|stripe|mirror [--chunk SIZE] [--io-timeout S]\n"
    "                            a new storage (no nodes yet)\n"
    "  add NAME (--remote URI | --disk PATH) [--start SECTOR] [--size SECTORS]\n"
    "                            add a node (grows a running linear storage)\n"
    "  remove NAME NODE          take a node out\n"
    "  suspend NAME NODE         hold a node's IO (drained first) while it is serviced\n"
    "  resume NAME NODE [--remote URI | --disk PATH]\n"
    "                            release it, optionally onto a new address or disk\n"
    "  replace NAME NODE (--remote URI | --disk PATH) [--rate R] [--wait] | --abort\n"
    "                            live-migrate a node while the storage is in use\n"
    "  verify NAME [--repair] [--rate R] [--range START:LEN] [--wait] | --abort\n"
    "                            compare a mirror's legs while it is in use\n"
    "  label NAME                label the nodes of a storage made before labels\n"
    "  set NAME [--io-timeout S] [--request-timeout S] [--resync-rate R] [--tls-psk F]\n"
    "                            change a storage's settings (live where it can)\n"
    "Export nodes:\n"
    "  export DISK [--listen ADDR:PORT] [--allow CIDR[:ro|:rw]]...\n"
    "                            serve a local disk to remote storages\n"
    "Daemons:\n"
    "  start NAME [--listen ADDR:PORT] [--socket PATH] [--fuse PATH]\n"
    "                            start a configured storage or export\n"
    "  stop NAME                 stop it after answering requests in flight\n"
    "  delete NAME               forget a stopped storage or export\n"
    "Block devices:\n"
    "  attach NAME [--direct-io] the storage's FUSE file as /dev/loopN (losetup)\n"
    "  detach NAME               undo attach\n"
    "Boot (systemd):\n"
    "  enable NAME [--now]       start it at boot (dst@NAME.service), its nodes first\n"
    "  disable NAME [--now]      no longer start it at boot\n"
    "Inspection:\n"
    "  show [NAME] [--json]      the attribute tree (config, state, counters)\n"
    "  stat NAME [--watch]       live IOPS, throughput and latency per node\n"
    "  status [NAME...]          one line each, health letters; exit 0 healthy,\n"
    "                            1 degraded, 2 failed or stopped\n"
    "  metrics [NAME...] [--textfile PATH]\n"
    "                            Prometheus / OpenMetrics text of every daemon\n"
    "TLS:\n"
    "  export/start ... --tls on|require (--tls-psk FILE | --tls-certs DIR)\n"
    "                            serve over TLS (NBD_OPT_STARTTLS)\n"
    "  create/add ... --tls-psk FILE | --tls-certs DIR\n"
    "                            the storage's credentials for nbds:// nodes\n"
    "\n"
    "Other:\n"
    "  help [COMMAND]            this text, or the options of COMMAND\n"
    "  --version                 the version of dst\n"
    "\n"
    "Run 'dst help COMMAND' for the options of each command, and 'dst -h' for\n"
    "the original DST form: dst -n NAME -A alg_linear -a ADDR -p PORT [-R].\n"
    "State lives in $DST_STATE_DIR (default /var/lib/dst for root,\n"
    "$XDG_RUNTIME_DIR/dst otherwise).\n";

struct subcommand {
	const char *name;
	int (*fn)(int argc, char **argv);
};

static const struct subcommand commands[] = {
    {"export", cmd_export},   {"create", cmd_create}, {"add", cmd_add},
    {"remove", cmd_remove},   {"start", cmd_start},   {"stop", cmd_stop},
    {"delete", cmd_delete},   {"show", cmd_show},     {"stat", cmd_stat},
    {"suspend", cmd_suspend}, {"resume", cmd_resume}, {"replace", cmd_replace},
    {"verify", cmd_verify},   {"label", cmd_label},   {"set", cmd_set},
    {"attach", cmd_attach},   {"detach", cmd_detach}, {"status", cmd_status},
    {"metrics", cmd_metrics}, {"enable", cmd_enable}, {"disable", cmd_disable},
};

static const struct subcommand *find_command(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(name, commands[i].name))
			return &commands[i];
	return NULL;
}

int main(int argc, char **argv)
{
	opterr = 0; /* bad_option() says it, in one line */
	if (argc < 2)
		return fputs(main_help, stderr), 2;
	const char *cmd = argv[1];
	if (!strcmp(cmd, "-h") && argc == 2)
		return cmd_seed(argc, argv);
	if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
		printf("dst %s\n", dst_version());
		return 0;
	}
	if (!strcmp(cmd, "--help") || (!strcmp(cmd, "help") && argc == 2)) {
		fputs(main_help, stdout);
		return 0;
	}
	if (!strcmp(cmd, "help")) {
		/* dst help COMMAND: the command's own --help. */
		if (argc > 3)
			return die("help: one command at a time; see 'dst --help'");
		const struct subcommand *sc = find_command(argv[2]);
		if (!sc)
			return die("help: unknown command '%s'; see 'dst --help'", argv[2]);
		char *hargv[] = {argv[2], (char *)"--help", NULL};
		return sc->fn(2, hargv);
	}
	const struct subcommand *sc = find_command(cmd);
	if (sc)
		return sc->fn(argc - 1, argv + 1);
	if (cmd[0] == '-')
		return cmd_seed(argc, argv);
	return die("unknown command '%s'; see 'dst --help'", cmd);
}
