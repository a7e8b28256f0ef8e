/* who.c - name a process for an error message (see who.h). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "proc.h"
#include "state.h"
#include "who.h"

bool who_daemon(pid_t pid, char *name, size_t len)
{
	DIR *d = opendir(state_dir());
	if (!d || pid <= 0) {
		if (d)
			closedir(d);
		return false;
	}
	bool found = false;
	struct dirent *e;
	while (!found && (e = readdir(d))) {
		size_t n = strlen(e->d_name);
		if (n <= 4 || n - 4 >= len || strcmp(e->d_name + n - 4, ".pid") != 0)
			continue;
		snprintf(name, len, "%.*s", (int)(n - 4), e->d_name);
		/* The pid file's lock, not just its contents: a stale file
		 * may name a pid that now runs something else. */
		found = state_running_pid(name) == pid;
	}
	closedir(d);
	if (!found)
		name[0] = '\0';
	return found;
}

bool who_is(pid_t pid, struct who *w)
{
	memset(w, 0, sizeof(*w));
	if (pid <= 0)
		return false;
	w->pid = pid;
	proc_comm(pid, w->comm, sizeof(w->comm));
	if (who_daemon(pid, w->name, sizeof(w->name))) {
		char *path = state_path(w->name, ".conf");
		struct conf c;
		char err[256];
		if (conf_load(path, &c, err, sizeof(err)) == 0) {
			const char *t = conf_get(&c, "type");
			snprintf(w->type, sizeof(w->type), "%s", t ? t : "");
			conf_free(&c);
		}
		free(path);
	}
	return w->comm[0] || w->name[0];
}

const char *who_format(const struct who *w, const char *detail, char *buf, size_t len)
{
	if (w && w->name[0])
		snprintf(buf, len, "dstd %d (%s%s%s%s%s)", (int)w->pid, w->type,
			 w->type[0] ? " " : "", w->name, detail ? ", " : "", detail ? detail : "");
	else if (w && !strcmp(w->comm, "dstd"))
		snprintf(buf, len, "dstd %d", (int)w->pid);
	else if (w && w->comm[0])
		snprintf(buf, len, "another process (%s, pid %d)", w->comm, (int)w->pid);
	else
		snprintf(buf, len, "another process");
	return buf;
}
