/* state.h - the state dir: where configs, pid files, control and NBD sockets
 * of storages and exports live ($DST_STATE_DIR, else /var/lib/dst for root,
 * else $XDG_RUNTIME_DIR/dst). */
#ifndef DST_STATE_H
#define DST_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

const char *state_dir(void);
/* Create the state dir if needed. 0 or -errno with a message. */
int state_dir_ensure(char *err, size_t errlen);
/* "<state dir>/<name><suffix>", malloc'd. */
char *state_path(const char *name, const char *suffix);

/* Names: 1-64 of [A-Za-z0-9._-], not starting with '.' or '-'. */
bool state_name_valid(const char *name, char *err, size_t errlen);

/* pid of the running daemon of `name`, or 0 if none (the daemon holds a lock
 * on NAME.pid for its whole life, so a stale file never counts). */
pid_t state_running_pid(const char *name);

/* Daemon side: lock NAME.pid and write our pid. Returns the fd to keep open,
 * or -errno with a message (naming the running pid if there is one). */
int state_pidfile_acquire(const char *name, char *err, size_t errlen);

#endif
