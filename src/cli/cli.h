/* cli.h - pieces of the `dst` tool shared between its subcommands. */
#ifndef DST_CLI_H
#define DST_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "array/nodeconf.h"
#include "common/strbuf.h"
#include "common/ublk_limits.h"

/* Each subcommand: argv[0] is the subcommand name. Returns the exit status. */
int cmd_export(int argc, char **argv);
int cmd_start(int argc, char **argv);
int cmd_stop(int argc, char **argv);
int cmd_delete(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_stat(int argc, char **argv);
int cmd_metrics(int argc, char **argv);
/* dst export's and dst start's --listen ADDR:PORT and --allow
 * CIDR[:ro|:rw]: 0, or 1 after saying why (frontend_opts.c). */
int listen_check(const char *a);
int allow_check(const char *rule);
/* --metrics-listen's value: PORT, ADDR:PORT, [V6]:PORT, or off. 0, or 1
 * after saying why. */
int metrics_listen_check(const char *a);
#define METRICS_LISTEN_HELP                                                                 \
	"  --metrics-listen ADDR:PORT\n"                                                    \
	"                      serve the metrics (as `dst metrics`) over HTTP for\n"        \
	"                      Prometheus, at GET /metrics; a bare PORT is on 127.0.0.1.\n" \
	"                      Saved in the config (metrics-listen); off forgets it\n"
int cmd_create(int argc, char **argv);
int cmd_add(int argc, char **argv);
int cmd_remove(int argc, char **argv);
int cmd_attach(int argc, char **argv);
int cmd_detach(int argc, char **argv);
int cmd_enable(int argc, char **argv);
int cmd_disable(int argc, char **argv);
/* The seed's original form: dst -n NAME -A alg_linear -a ADDR -p PORT -R ... */
int cmd_seed(int argc, char **argv);

/* Storage operations shared by the subcommands and the seed form. */
/* dst create's settings; NULL members take the defaults. */
struct tls_opts;
struct event_opts;
struct create_args {
	const char *alg, *chunk, *device, *io_timeout, *request_timeout, *region_size, *resync_rate;
	const char *data, *parity;  /* alg_parity: chunks per row */
	const struct tls_opts *tls; /* for nbds:// nodes; may be NULL */
	bool assume_clean;	    /* a new mirror's legs are taken as identical */
	/* --on-event, --on-event-timeout; may be NULL */
	const struct event_opts *events;
};
int storage_create(const char *name, const struct create_args *ca);
/* dst add's choices about the disk's label (label_node.c). */
struct add_opts {
	bool relabel; /* over another storage's label or data */
	bool import;  /* no label: the whole disk, data kept */
};
/* tls (may be NULL): new credentials for the storage's nbds:// nodes; ao
 * may be NULL (the defaults). */
int storage_add(const char *name, bool remote, const char *spec, const char *start,
		const char *size, const struct tls_opts *tls, const struct add_opts *ao);
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
/* Find NODE (its name n-START, or its spec) among NAME's configured nodes:
 * its index with its name in nn, or -1 after saying why. */
int storage_find_node(const char *name, const struct node_conf *nodes, size_t n, const char *node,
		      char *nn, size_t nnlen);
/* A new node given as --remote URI or --disk PATH (made absolute) into
 * spec; nothing when both are NULL. 0, or 1 after saying why. */
int node_spec_arg(const char *remote, const char *disk, char *spec, size_t len);
int cmd_suspend(int argc, char **argv);
int cmd_resume(int argc, char **argv);
int cmd_replace(int argc, char **argv);
int cmd_label(int argc, char **argv);
int cmd_set(int argc, char **argv);
int cmd_verify(int argc, char **argv);
/* "--io-timeout 30" style values: whole seconds in [min, max]; 0, or 1
 * after saying why (a NULL value is fine). */
int check_seconds(const char *opt, const char *v, uint64_t min, uint64_t max);
/* Before `dst stop NAME`: refuse (saying why, returning 1) while its loop
 * device, FUSE file or kernel NBD device is mounted or otherwise in use;
 * else detach the loop device `dst attach` set up and return 0. */
int storage_release_devices(const char *name);
/* `dst attach` of running storage NAME (direct: losetup --direct-io=on):
 * prints the loop device; 0, or 1 after saying why. */
int storage_attach(const char *name, bool direct);
/* NAME's config says attach = yes (dst attach --boot). */
bool storage_attach_at_start(const char *name);
/* The stable name of NAME's loop device (devlink.c): the symlink
 * /dev/dst/NAME (or /run/dst/NAME, or in $DST_DEV_DIR) to dev, its path
 * into path; 0 or -errno. devlink_clear removes it if it points to dev
 * (any target if dev is NULL). */
int devlink_set(const char *name, const char *dev, char *path, size_t len);
void devlink_clear(const char *name, const char *dev);

/* Set where storage conf's device appears (-f/--fuse PATH): "nbd-device"
 * for /dev/nbdN, else "fuse" with PATH made absolute. 0, or 1 (said). */
int device_conf_set(struct conf *c, const char *path);

/* ublk options as given to dst start and dst attach (ublk_opts.c), saved
 * as the config keys ublk (auto or N: /dev/ublkbN), ublk-queues and
 * ublk-depth; NULL members were not given. */
struct ublk_opts {
	const char *id; /* "auto" or a number */
	const char *queues, *depth;
	const char *id_word; /* the ID came as a word of its own (--ublk 3) */
	bool no_ublk;
	char id_buf[16], queues_buf[16], depth_buf[16];
};
enum {
	OPT_UBLK = 0x1c0,
	OPT_NO_UBLK,
	OPT_UBLK_QUEUES,
	OPT_UBLK_DEPTH,
};
#define UBLK_LONG_OPTIONS                                              \
	{"ublk", optional_argument, NULL, OPT_UBLK},                   \
	    {"ublk-queues", required_argument, NULL, OPT_UBLK_QUEUES}, \
	{                                                              \
		"ublk-depth", required_argument, NULL, OPT_UBLK_DEPTH  \
	}
/* A getopt result: if it is a ublk option, take it (for a bare --ublk, the
 * next word of argv when it is "auto" or a number); true if so. */
int ublk_opts_take(struct ublk_opts *u, int c, const char *arg, int argc, char **argv);
/* After getopt: the one NAME left in argv, or the word taken as --ublk's
 * ID when no other is left (`dst start --ublk 3`: storage 3, device auto);
 * NULL after saying what is wrong. */
const char *ublk_opts_name(struct ublk_opts *u, const char *cmd, int argc, char **argv);
/* Check the values given (ranges, --ublk with --no-ublk), normalised in
 * place. 0, or 1 after saying why. */
int ublk_opts_check(struct ublk_opts *u, const char *cmd);
bool ublk_opts_given(const struct ublk_opts *u);
/* Set (or with no_ublk remove) the keys in storage name's conf; queues or
 * depth without ublk is an error. 0, or 1 after saying why. */
int ublk_opts_save(struct conf *c, const struct ublk_opts *u, const char *name);
/* Print prefix and running storage name's ublk device (with a note when
 * the daemon took it back from a dead one) into out (may be NULL); false
 * when it has none. */
bool print_ublk_device(const char *name, const char *prefix, char *out, size_t len);
/* path is /dev/ublkbN: 1 with N into id; 0 if it is not such a path; -1
 * after saying why (a bad N). */
int ublk_dev_path(const char *path, char *id, size_t len);

/* TLS options as given on the command line (NULL: not given). */
struct tls_opts {
	const char *mode, *psk, *certs, *username;
	bool verify_peer;
};
/* How a daemon serves: when any option is given, check it (loading the
 * credentials) and replace tls, tls-psk, tls-certs, tls-verify-peer in
 * conf. 0, or 1 after saying why. */
int tls_opts_serve(struct conf *conf, const struct tls_opts *t);
/* What a storage shows its nbds:// nodes: node-tls-psk, node-tls-certs,
 * node-tls-username. */
int tls_opts_nodes(struct conf *conf, const struct tls_opts *t);
#define TLS_SERVE_HELP                                                                       \
	"  --tls off|on|require\n"                                                           \
	"                      TLS (NBD_OPT_STARTTLS): on lets clients choose it, require\n" \
	"                      refuses every client that does not start it, before it\n"     \
	"                      learns anything of the export (default: off, or require\n"    \
	"                      when credentials are given)\n"                                \
	"  --tls-psk FILE      pre-shared keys: a psktool file of username:hexkey lines;\n"  \
	"                      every user in it is let in\n"                                 \
	"  --tls-certs DIR     X.509: DIR has server-cert.pem and server-key.pem (and\n"     \
	"                      ca-cert.pem for --tls-verify-peer)\n"                         \
	"  --tls-verify-peer   X.509: clients must show a certificate signed by\n"           \
	"                      DIR/ca-cert.pem\n"

/* Size of a node in bytes; -1 with the reason in err. tls (may be NULL):
 * the storage's credentials for nbds:// nodes. */
int probe_remote(const char *uri, const struct tls_opts *tls, uint64_t *bytes, char *err,
		 size_t errlen);
int probe_local(const char *path, uint64_t *bytes, char *err, size_t errlen);
/* The storage's credentials on a libnbd handle, for an nbds:// uri. */
struct nbd_handle;
int probe_set_tls(struct nbd_handle *h, const char *uri, const struct tls_opts *tls);
/* 1 if a TLS URI names credential files of its own (tls-psk-file=,
 * tls-certificates=), 0 if not, -1 (with a reason) if one is not an
 * absolute path. */
int probe_uri_creds(const char *uri, char *err, size_t errlen);
/* A libnbd handle connected to uri with those credentials, or NULL with
 * the cause in err. */
struct nbd_handle *probe_connect(const char *uri, const struct tls_opts *tls, char *err,
				 size_t errlen);
/* Wait for an aio command of h to complete, within the connect timeout (a
 * node that answers the handshake and then nothing must not hang dst): 0,
 * or -1 with the reason. */
int probe_wait(struct nbd_handle *h, int64_t cookie, char *err, size_t errlen);

/* label_node.c: a disk joins storage `name` as node nc (spec, remote,
 * start, size and label offset set): refused (-1 and why) when it is
 * another node of this storage, carries another storage's label or holds
 * data where the label goes (unless relabel); else a new disk id goes into
 * nc->id and the label onto the disk. */
struct label_join {
	const char *name, *alg;
	uint8_t uuid[16];
	const struct node_conf *nodes; /* the storage's nodes now */
	size_t n;
	const struct tls_opts *tls;
	bool relabel;
	uint8_t *saved; /* optional, LABEL_SIZE: what the block held before */
	/* A disk a migration under way is copying onto (the config's migrate
	 * line): node busy_start's next disk, with this id. */
	bool busy;
	uint64_t busy_start;
	uint8_t busy_id[16];
	/* The node this disk is to be (dst resume, dst replace): if the disk
	 * already carries that node's own label, it is the same disk under
	 * another address: taken as it is (resume), or refused (replace). */
	bool moving;
	uint64_t moving_start;
	bool self_ok;
	/* dst label: this storage's older mirror leg header is expected where
	 * the label goes, and is replaced. */
	bool convert;
};
int label_node_join(const struct label_join *j, struct node_conf *nc, char *err, size_t errlen);
/* The join did not go through after all: put back what the block held. */
void label_node_undo(const struct label_join *j, const struct node_conf *nc);
/* Node nodes[idx] of storage `name` moves to a new disk (dst replace, dst
 * resume --remote/--disk): the disk is looked at and labelled as that node
 * (label_node_join). 0 with the new disk id in mv->id, 1 when the node has
 * no label (nothing to do), -1 after saying why. When the daemon then
 * refuses the move, label_node_move_undo puts the block back. */
struct label_move {
	uint8_t id[16];
	uint8_t saved[4096];
	struct label_join j;
	struct node_conf nc;
	bool self_ok; /* set before: the node's own disk at a new address is fine */
};
int label_node_move(const char *name, const struct conf *conf, const struct node_conf *nodes,
		    size_t n, size_t idx, bool remote, const char *spec, struct label_move *mv);
void label_node_move_undo(struct label_move *mv);
/* The storage's credentials for its nbds:// nodes, from its config. */
void node_tls(const struct conf *conf, struct tls_opts *t);
/* dst delete: each node's label is taken off its disk (the block zeroed)
 * where it is still this node's, so the disk may join another storage;
 * a node out of reach keeps it (said, with the way to reuse the disk). */
void label_node_release_all(const char *name, const struct conf *conf);
/* uri is storage `name` (uuid) itself, or a dst storage that holds it (its
 * export description lists the storages below it): said, and 1; else 0. */
int label_node_refuse_loop(const char *name, const char *uri, const struct tls_opts *tls,
			   const uint8_t uuid[16]);

/* A command that takes options and exactly one NAME: getopt_long over
 * sopts/lopts, 'h' printing help, every other option given to opt (NULL:
 * none). argv's index of NAME (checked to be a valid name), -2 after
 * --help, or -1 after saying what is wrong. */
struct option;
int one_name(int argc, char **argv, const char *help, const char *sopts, const struct option *lopts,
	     int (*opt)(int c, const char *arg));

/* Print "dst: MESSAGE" to stderr; returns 1 for `return die(...)`. */
int die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* After getopt returned '?': name the offending option in one line. */
int bad_option(const char *cmd, char **argv);

/* Send one command line to NAME's daemon; on success *reply is the body
 * after "ok". Returns 0, -1 with the reason in err when the daemon could
 * not be asked (not running, no answer), or -2 with its "error: ..." text
 * when it answered with a refusal. */
int ctl_call(const char *name, const char *cmd, struct strbuf *reply, char *err, size_t errlen);
/* How long ctl_call waits for a daemon's answer (default 60 s, for long
 * commands); a monitoring command that only reads wants less. */
void ctl_set_timeout(unsigned seconds);
#define CTL_READ_TIMEOUT_S 10

/* The value of attribute NAME/leaf in the running daemon's `show` (the
 * first, if it repeats). 0, or -1 if the daemon or the attribute is not there. */
int ctl_show_attr(const char *name, const char *leaf, char *out, size_t len);

/* Print where NAME's running daemon serves, one URI a line. */
void print_uris(const char *name);

/* Start NAME's daemon (dstd) and wait until it serves or fails; its
 * start-up error goes to our stderr. With foreground, exec it instead. */
int spawn_daemon(const char *name, bool foreground);

/* Run argv (PATH searched) and wait for it: its stdout into out and its
 * stderr into err (each trimmed, truncated to fit). Returns its exit status,
 * 127 if it could not be run, or -errno. */
int run_capture(char *const argv[], char *out, size_t outlen, char *err, size_t errlen);

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

/* --on-event PROGRAM and --on-event-timeout S, as given to dst create, dst
 * start and dst export (event_opts.c); saved as the config keys on-event
 * and on-event-timeout (daemon/hook.h). */
enum {
	OPT_ON_EVENT = 0x180,
	OPT_ON_EVENT_TIMEOUT,
};
#define EVENT_LONG_OPTIONS                                                        \
	{"on-event", required_argument, NULL, OPT_ON_EVENT},                      \
	{                                                                         \
		"on-event-timeout", required_argument, NULL, OPT_ON_EVENT_TIMEOUT \
	}
struct event_opts {
	const char *program, *timeout;
};
/* A getopt result: if it is one of EVENT_LONG_OPTIONS, take arg; true if so. */
bool event_opts_take(struct event_opts *e, int c, const char *arg);
/* Check what was given and set its keys in conf (the program by its full
 * path; "" removes it). 0, or 1 after saying why. */
int event_opts_save(struct conf *conf, const struct event_opts *e);
#define EVENT_HELP                                                                         \
	"  --on-event PROGRAM  run PROGRAM EVENT NAME [NODE] on every event (node-lost,\n" \
	"                      degraded, resync-done...; see dst(1), EVENTS), with\n"      \
	"                      DST_EVENT, DST_NODE, DST_DETAIL... in its environment;\n"   \
	"                      one at a time, in order; \"\" removes it\n"                 \
	"  --on-event-timeout S\n"                                                         \
	"                      kill a PROGRAM still running after S seconds (default\n"    \
	"                      30; 0: never)\n"

#endif
