/* cli.h - pieces of the `dst` tool shared between its subcommands. */
#ifndef DST_CLI_H
#define DST_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/strbuf.h"

/* Each subcommand: argv[0] is the subcommand name. Returns the exit status. */
int cmd_export(int argc, char **argv);
int cmd_start(int argc, char **argv);
int cmd_stop(int argc, char **argv);
int cmd_delete(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_stat(int argc, char **argv);
int cmd_create(int argc, char **argv);
int cmd_add(int argc, char **argv);
int cmd_remove(int argc, char **argv);
/* The seed's original form: dst -n NAME -A alg_linear -a ADDR -p PORT -R ... */
int cmd_seed(int argc, char **argv);

/* Storage operations shared by the subcommands and the seed form. */
/* dst create's settings; NULL members take the defaults. */
struct create_args {
	const char *alg, *chunk, *device, *io_timeout, *request_timeout, *region_size, *resync_rate;
};
int storage_create(const char *name, const struct create_args *ca);
int storage_add(const char *name, bool remote, const char *spec, const char *start,
		const char *size);
int storage_remove(const char *name, const char *node);

struct conf;
struct node_conf;
/* NAME's config, checked to be a storage (prints why not and returns 1). */
int storage_load(const char *name, struct conf *conf);
int storage_save(const char *name, const struct conf *conf);
/* Its node lines, parsed (malloc'd array). */
size_t storage_nodes(const struct conf *conf, struct node_conf **out);
void storage_nodes_free(struct node_conf *nc, size_t n);
bool is_nbd_uri(const char *s);
int cmd_suspend(int argc, char **argv);
int cmd_resume(int argc, char **argv);
int cmd_replace(int argc, char **argv);

/* Size of a node in bytes; -1 with the reason in err. */
int probe_remote(const char *uri, uint64_t *bytes, char *err, size_t errlen);
int probe_local(const char *path, uint64_t *bytes, char *err, size_t errlen);

/* Print "dst: MESSAGE" to stderr; returns 1 for `return die(...)`. */
int die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* After getopt returned '?': name the offending option in one line. */
int bad_option(const char *cmd, char **argv);

/* Send one command line to NAME's daemon; on success *reply is the body
 * after "ok". Returns 0, or -1 with the reason in err (daemon not running,
 * or its "error: ..." text). */
int ctl_call(const char *name, const char *cmd, struct strbuf *reply, char *err, size_t errlen);

/* Print where NAME's running daemon serves, one URI a line. */
void print_uris(const char *name);

/* Start NAME's daemon (dstd) and wait until it serves or fails; its
 * start-up error goes to our stderr. With foreground, exec it instead. */
int spawn_daemon(const char *name, bool foreground);

/* Wait up to timeout_ms for NAME's daemon to exit. true if it did. */
bool wait_daemon_gone(const char *name, unsigned timeout_ms);

/* `dst show` output: attribute lines "N|S path value" as sent by dstd. */
void show_print_tree(const char *attrs);
void show_print_json(const char *attrs);

/* The server's limits and who may use the control socket, as given to dst
 * export and dst start (limit_opts.c); NULL members were not given. Saved
 * as the config keys of the same names (daemon/frontend_limits.h). */
struct limit_opts {
	const char *max_clients, *client_budget, *handshake_timeout, *idle_timeout, *ctl_group;
};
enum {
	OPT_MAX_CLIENTS = 0x100,
	OPT_CLIENT_BUDGET,
	OPT_HANDSHAKE_TIMEOUT,
	OPT_IDLE_TIMEOUT,
	OPT_CTL_GROUP,
};
#define LIMIT_LONG_OPTIONS                                                         \
	{"max-clients", required_argument, NULL, OPT_MAX_CLIENTS},                 \
	    {"client-budget", required_argument, NULL, OPT_CLIENT_BUDGET},         \
	    {"handshake-timeout", required_argument, NULL, OPT_HANDSHAKE_TIMEOUT}, \
	    {"idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT},           \
	{                                                                          \
		"ctl-group", required_argument, NULL, OPT_CTL_GROUP                \
	}
/* A getopt result: if it is one of LIMIT_LONG_OPTIONS, take arg; true if so. */
bool limit_opts_take(struct limit_opts *l, int c, const char *arg);
bool limit_opts_given(const struct limit_opts *l);
/* Check every option given and set its key in conf. 0, or 1 after saying why. */
int limit_opts_save(struct conf *conf, const struct limit_opts *l);
#define LIMIT_HELP                                                                           \
	"  --max-clients N     clients at once (default 64); more are closed at accept\n"    \
	"                      (logged), but while one is still in its handshake, the\n"     \
	"                      oldest of those is dropped to make room for a new one\n"      \
	"  --client-budget SIZE\n"                                                           \
	"                      IO buffers one client may hold (default: a quarter of\n"      \
	"                      the buffer budget); past it that client waits, not the\n"     \
	"                      others\n"                                                     \
	"  --handshake-timeout S\n"                                                          \
	"                      close a client that has not finished its handshake after\n"   \
	"                      S seconds (default 30)\n"                                     \
	"  --idle-timeout S    close a client that sent and read nothing for S seconds\n"    \
	"                      while none of its IO was in progress (default 0: never)\n"    \
	"  --ctl-group GROUP   members of GROUP may use the control socket too (dst show,\n" \
	"                      stat, stop...): it gets mode 0660 and group GROUP\n"

#endif
