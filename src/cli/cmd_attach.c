/* cmd_attach.c - `dst attach` and `dst detach`: a storage's FUSE file as a
 * loop device (losetup), recorded in NAME.loop (see common/loopdev.h); and
 * the checks `dst stop` makes before it lets a storage's devices go. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "cli.h"
#include "common/config.h"
#include "common/dev_openers.h"
#include "common/loopdev.h"
#include "common/mountinfo.h"
#include "common/proc.h"
#include "common/state.h"
#include "common/util.h"

static const char attach_help[] =
    "usage: dst attach NAME [--direct-io] [--boot | --auto]\n"
    "       dst attach NAME --ublk[=ID] [--ublk-queues N] [--ublk-depth N]\n"
    "\n"
    "Make the FUSE file of running storage NAME a block device: run\n"
    "`losetup --find --show FILE`, print the loop device it got (/dev/loopN) and\n"
    "record it, so that `dst show NAME` lists it as NAME/loop, `dst detach NAME`\n"
    "undoes it and `dst stop NAME` detaches it first. NAME must have been\n"
    "started with --fuse PATH. A loop device left over a dead FUSE file by a\n"
    "daemon killed with -9 is detached first.\n"
    "\n"
    "The loop device also gets a stable name, the symlink /dev/dst/NAME (or\n"
    "/run/dst/NAME where /dev/dst cannot be made), for fstab and scripts; it\n"
    "is removed when the device is detached (dst detach, dst stop).\n"
    "\n"
    "  --direct-io   the loop device does direct IO on the file (losetup\n"
    "                --direct-io=on): the loop driver keeps no second copy of\n"
    "                the data in its page cache, and sends many requests at once\n"
    "  --boot        also at every start of NAME (dst start, or its systemd\n"
    "                unit): saves attach = yes in its config. A storage that is\n"
    "                not running is attached when it starts\n"
    "  --auto        attach only if NAME's config says attach = yes (what\n"
    "                the systemd unit runs); nothing otherwise\n"
    "\n"
    "With --ublk, running storage NAME becomes the ublk device /dev/ublkbID\n"
    "instead (needs the kernel's ublk_drv and root), beside its other\n"
    "frontends; the device is printed once it exists. It is saved in the\n"
    "config (as dst start --ublk does), so every later start has it too;\n"
    "`dst detach NAME --ublk` removes it again.\n"
    "\n"
    "  --ublk[=ID]   ID 0..1048575, or auto (the default): the kernel picks it.\n"
    "                `--ublk ID` works too\n"
    "  --ublk-queues N\n"
    "                ublk queues, 1..64 (default: the saved value, else one per\n"
    "                online CPU, at most 4)\n"
    "  --ublk-depth N\n"
    "                requests in flight per queue, 1..1024 (default: the saved\n"
    "                value, else 128)\n";

static const char detach_help[] =
    "usage: dst detach NAME [--no-boot]\n"
    "       dst detach NAME --ublk\n"
    "\n"
    "Detach the loop device that `dst attach NAME` set up (losetup -d), remove\n"
    "its /dev/dst/NAME link, and forget it. Refused while it is mounted, used\n"
    "by another block device (a device-mapper or md device) or open by a\n"
    "process: unmount it or stop that first.\n"
    "\n"
    "  --no-boot     also forget `dst attach --boot`: no loop device at the\n"
    "                next starts (works on a stopped storage too)\n"
    "  --ublk        the ublk device instead: the daemon deletes it (refused,\n"
    "                as above, while it is mounted or open), and the config\n"
    "                forgets it and its queues and depth, so later starts\n"
    "                have none (works on a stopped storage too)\n";

/* A process other than skip (the storage's daemon) with block device rdev
 * open: "is open by fio (pid 1234)" into why. A process that only looks
 * (udev's blkid after a change) goes within moments: look again for up to
 * a second before calling it a user. */
static bool block_opener(dev_t rdev, pid_t skip, char *why, size_t len)
{
	pid_t pid;
	for (int tries = 0; tries < 10; tries++) {
		if (!dev_openers(rdev, true, skip, &pid, 1))
			return false;
		if (tries < 9)
			usleep(100 * 1000);
	}
	char comm[64] = "";
	proc_comm(pid, comm, sizeof(comm));
	snprintf(why, len, "is open by %s (pid %d); stop it first", comm[0] ? comm : "a process",
		 (int)pid);
	return true;
}

/* Is block device dev in use (mounted, held by another block device, or
 * open by a process other than skip)? Then why says how ("is mounted on
 * /mnt"). */
static bool block_user(const char *dev, pid_t skip, char *why, size_t len)
{
	struct stat st;
	if (stat(dev, &st) < 0 || !S_ISBLK(st.st_mode))
		return false;
	unsigned maj = major(st.st_rdev), min = minor(st.st_rdev);
	struct mount_entry *m = xmalloc(sizeof(*m));
	bool used = mountinfo_of_dev(maj, min, NULL, m);
	if (used)
		snprintf(why, len, "is mounted on %s; unmount it first (umount %s)", m->mnt,
			 m->mnt);
	free(m);
	if (used)
		return true;
	char p[128];
	snprintf(p, sizeof(p), "/sys/dev/block/%u:%u/holders", maj, min);
	DIR *d = opendir(p);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(why, len, "is used by %.64s; stop that first", de->d_name);
		used = true;
		break;
	}
	if (d)
		closedir(d);
	return used || block_opener(st.st_rdev, skip, why, len);
}

static int losetup_detach(const char *dev)
{
	char out[256], err[512];
	char *argv[] = {"losetup", "--detach", (char *)dev, NULL};
	int rc = run_capture(argv, out, sizeof(out), err, sizeof(err));
	if (rc != 0)
		return die("losetup --detach %s: %s", dev,
			   err[0]      ? err
			   : rc == 127 ? "cannot run losetup"
				       : "failed");
	return 0;
}

/* The FUSE file of running storage name, as its daemon mounted it. */
static int running_fuse_path(const char *name, char *path, size_t len)
{
	return ctl_show_attr(name, "fuse", path, len);
}

/* Options of attach (direct != NULL: --direct-io, --boot, --auto, --ublk
 * [ID], --ublk-queues, --ublk-depth) and detach (--no-boot, --ublk): NAME,
 * or NULL after --help (*help_done set) or after an error (said). */
static const char *attach_opts(int argc, char **argv, const char *cmd, const char *help,
			       bool *direct, char *boot, struct ublk_opts *u, bool *help_done)
{
	static const struct option attach_lopts[] = {
	    {"direct-io", no_argument, NULL, 'D'},
	    {"boot", no_argument, NULL, 'B'},
	    {"auto", no_argument, NULL, 'A'},
	    {"help", no_argument, NULL, 'h'},
	    UBLK_LONG_OPTIONS,
	    {0},
	};
	static const struct option detach_lopts[] = {
	    {"no-boot", no_argument, NULL, 'N'},
	    {"ublk", no_argument, NULL, OPT_UBLK},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	const struct option *lopts = direct ? attach_lopts : detach_lopts;
	int c;
	while ((c = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
		if (c == 'h') {
			fputs(help, stdout);
			*help_done = true;
			return NULL;
		}
		if (c == 'D') {
			*direct = true;
		} else if (c == 'B' || c == 'A' || c == 'N') {
			if (*boot && *boot != c) {
				die("%s: --boot and --auto contradict each other", cmd);
				return NULL;
			}
			*boot = (char)c;
		} else if (c == OPT_UBLK && !direct) {
			u->id = "auto";
		} else if (!ublk_opts_take(u, c, optarg, argc, argv)) {
			bad_option(cmd, argv);
			return NULL;
		}
	}
	const char *name = ublk_opts_name(u, cmd, argc, argv);
	if (!name || ublk_opts_check(u, cmd))
		return NULL;
	char err[256];
	if (!state_name_valid(name, err, sizeof(err))) {
		die("%s", err);
		return NULL;
	}
	if ((u->queues || u->depth) && !u->id) {
		die("%s: --%s goes with --ublk", cmd, u->queues ? "ublk-queues" : "ublk-depth");
		return NULL;
	}
	if (u->id && ((direct && *direct) || *boot == 'A')) {
		die("%s: --%s is for the loop device, not with --ublk", cmd,
		    *boot == 'A' ? "auto" : "direct-io");
		return NULL;
	}
	return name;
}

/* attach = yes in NAME's config (on), or not (off). Returns 0, or 1 (said).
 * *was says whether it was set before. */
static int boot_conf(const char *name, bool on, bool *was)
{
	char *path = state_path(name, ".conf");
	struct conf c;
	char err[512];
	int rc = conf_load(path, &c, err, sizeof(err));
	if (rc < 0) {
		free(path);
		if (rc == -ENOENT)
			return die("no storage named '%s' (state dir %s)", name, state_dir());
		return die("%s", err);
	}
	const char *type = conf_get(&c, "type"), *v = conf_get(&c, "attach");
	*was = v && !strcmp(v, "yes");
	if (!type || strcmp(type, "storage") != 0) {
		conf_free(&c);
		free(path);
		return die("'%s' is an export node, not a storage", name);
	}
	if (on && !conf_get(&c, "fuse")) {
		conf_free(&c);
		free(path);
		return die("'%s' has no FUSE file to attach; give it one with 'dst start %s --fuse "
			   "PATH'",
			   name, name);
	}
	rc = 0;
	if (on != *was) {
		if (on)
			conf_set(&c, "attach", "yes");
		else
			conf_del(&c, "attach");
		if (conf_save(path, &c, err, sizeof(err)) < 0)
			rc = die("%s", err);
	}
	conf_free(&c);
	free(path);
	return rc;
}

/* Whether NAME's config asks for a loop device at every start. */
bool storage_attach_at_start(const char *name)
{
	char *path = state_path(name, ".conf");
	struct conf c;
	char err[512];
	bool yes = false;
	if (conf_load(path, &c, err, sizeof(err)) == 0) {
		const char *v = conf_get(&c, "attach");
		yes = v && !strcmp(v, "yes");
		conf_free(&c);
	}
	free(path);
	return yes;
}

/* The ublk keys of storage name's config: set from u, or (u NULL) removed.
 * 0, or 1 after saying why. */
static int ublk_conf(const char *name, const struct ublk_opts *u)
{
	struct conf c;
	if (storage_load(name, &c))
		return 1;
	struct ublk_opts none = {.no_ublk = true};
	int rc = ublk_opts_save(&c, u ? u : &none, name) || storage_save(name, &c);
	conf_free(&c);
	return rc;
}

/* dst attach NAME --ublk: ask the running daemon for the device. */
static int ublk_attach(const char *name, const struct ublk_opts *u)
{
	struct conf c;
	if (storage_load(name, &c))
		return 1;
	/* Queues and depth not given: the saved ones, else the daemon's defaults. */
	char *cmd = xasprintf("ublk-attach %s %s %s", u->id,
			      u->queues			    ? u->queues
			      : conf_get(&c, "ublk-queues") ? conf_get(&c, "ublk-queues")
							    : "0",
			      u->depth			   ? u->depth
			      : conf_get(&c, "ublk-depth") ? conf_get(&c, "ublk-depth")
							   : "0");
	conf_free(&c);
	int rc = 1;
	char dev[64], err[1024];
	if (!state_running_pid(name)) {
		die("'%s' is not running; 'dst start %s --ublk' starts it as a ublk device", name,
		    name);
		goto out;
	}
	if (ctl_show_attr(name, "ublk_device", dev, sizeof(dev)) == 0) {
		die("'%s' already has ublk device %s", name, dev);
		goto out;
	}
	struct strbuf reply;
	int crc = ctl_call(name, cmd, &reply, err, sizeof(err));
	if (crc < 0) {
		die("'%s': %s", name, err);
		goto out;
	}
	sb_free(&reply);
	if (ublk_conf(name, u))
		fprintf(stderr,
			"dst: warning: '%s' has its ublk device, but a restart will not "
			"have it\n",
			name);
	if (!print_ublk_device(name, "", dev, sizeof(dev))) {
		die("'%s': the daemon attached no ublk device", name);
		goto out;
	}
	rc = 0;
out:
	free(cmd);
	return rc;
}

/* dst detach NAME --ublk: the daemon deletes its device (unless in use),
 * and the config forgets it. */
static int ublk_detach(const char *name)
{
	struct conf c;
	if (storage_load(name, &c))
		return 1;
	bool saved = conf_get(&c, "ublk") != NULL;
	conf_free(&c);
	char dev[64], why[2 * PATH_MAX + 64], err[1024];
	if (ctl_show_attr(name, "ublk_device", dev, sizeof(dev)) < 0) {
		if (!saved)
			return die("'%s' has no ublk device", name);
		if (ublk_conf(name, NULL))
			return 1;
		printf("'%s' will not be a ublk device at its starts\n", name);
		return 0;
	}
	if (block_user(dev, state_running_pid(name), why, sizeof(why)))
		return die("'%s': its ublk device %s %s", name, dev, why);
	struct strbuf reply;
	if (ctl_call(name, "ublk-detach", &reply, err, sizeof(err)) < 0)
		return die("'%s': %s", name, err);
	sb_free(&reply);
	if (saved && ublk_conf(name, NULL))
		return 1;
	printf("detached ublk device %s from '%s'\n", dev, name);
	return 0;
}

int cmd_attach(int argc, char **argv)
{
	bool direct = false, help = false;
	char boot = 0;
	struct ublk_opts u = {0};
	const char *name =
	    attach_opts(argc, argv, "attach", attach_help, &direct, &boot, &u, &help);
	if (!name)
		return help ? 0 : 1;
	if (u.id) /* --boot with it: the ublk keys are saved anyway */
		return ublk_attach(name, &u);
	if (boot == 'A' && !storage_attach_at_start(name))
		return 0;
	if (boot == 'B') {
		bool was;
		if (boot_conf(name, true, &was))
			return 1;
		if (!state_running_pid(name)) {
			printf("'%s' will be attached when it starts\n", name);
			return 0;
		}
		struct loop_record rec;
		if (loop_record_get(name, &rec)) {
			char fuse[PATH_MAX];
			bool live = running_fuse_path(name, fuse, sizeof(fuse)) == 0 &&
				    loop_check(rec.dev, rec.file_dev, fuse, false) == LOOP_LIVE;
			if (live) {
				printf("'%s' is attached to %s, and will be at every start\n", name,
				       rec.dev);
				return 0;
			}
		}
	}
	return storage_attach(name, direct);
}

int storage_attach(const char *name, bool direct)
{
	if (!state_running_pid(name)) {
		char *conf = state_path(name, ".conf");
		bool exists = access(conf, F_OK) == 0;
		free(conf);
		if (!exists)
			return die("no storage named '%s' (state dir %s)", name, state_dir());
		return die("'%s' is not running; start it with 'dst start %s --fuse PATH'", name,
			   name);
	}
	char fuse[PATH_MAX], state[64] = "";
	if (running_fuse_path(name, fuse, sizeof(fuse)) < 0)
		return die("'%s' has no FUSE file; stop it and start it with 'dst start %s --fuse "
			   "PATH'",
			   name, name);
	/* Else losetup would take the empty file under the mount. */
	if (ctl_show_attr(name, "fuse_file/state", state, sizeof(state)) < 0 ||
	    strcmp(state, "mounted") != 0)
		return die("'%s': its FUSE file %s is not mounted (%s); restart it with 'dst stop "
			   "%s' and 'dst start %s'",
			   name, fuse, state[0] ? state : "unknown", name, name);
	struct loop_record rec;
	if (loop_record_get(name, &rec)) {
		char why[2 * PATH_MAX + 64];
		switch (loop_check(rec.dev, rec.file_dev, fuse, true)) {
		case LOOP_LIVE: return die("'%s' is already attached to %s", name, rec.dev);
		case LOOP_STALE:
			if (block_user(rec.dev, 0, why, sizeof(why)))
				return die(
				    "'%s': %s, left over the FUSE file of a killed daemon, %s",
				    name, rec.dev, why);
			if (losetup_detach(rec.dev))
				return 1;
			printf("detached %s (stale)\n", rec.dev);
			break;
		case LOOP_NONE: break;
		}
		loop_record_clear(name);
		devlink_clear(name, rec.dev);
	}
	/* A stat first: the mount's root inode has size 0 until the kernel asks
	 * the daemon (FUSE_GETATTR), and a loop driver that takes the size
	 * from the inode (Linux 6.12's) would make a 0-byte device. */
	struct stat fst;
	if (stat(fuse, &fst) < 0)
		return die("'%s': its FUSE file %s: %s", name, fuse, strerror(errno));
	char out[256], err[512];
	char *largv[] = {"losetup", "--find", "--show", fuse, NULL, NULL};
	if (direct) {
		largv[3] = "--direct-io=on";
		largv[4] = fuse;
	}
	int rc = run_capture(largv, out, sizeof(out), err, sizeof(err));
	if (rc != 0 || strncmp(out, "/dev/loop", 9) != 0 || strlen(out) >= sizeof(rec.dev))
		return die("losetup --find --show %s%s: %s", direct ? "--direct-io=on " : "", fuse,
			   err[0]      ? err
			   : rc == 127 ? "cannot run losetup"
				       : "failed");
	memcpy(rec.dev, out, strlen(out) + 1);
	int src = loop_file_dev(rec.dev, &rec.file_dev);
	if (src < 0 || loop_record_set(name, &rec, err, sizeof(err)) < 0) {
		losetup_detach(rec.dev);
		return die("%s: cannot record the loop device: %s", name,
			   src < 0 ? strerror(-src) : err);
	}
	char link[PATH_MAX];
	int lrc = devlink_set(name, rec.dev, link, sizeof(link));
	if (lrc < 0)
		fprintf(stderr, "dst: warning: '%s': no stable name for %s: %s\n", name, rec.dev,
			strerror(-lrc));
	else
		printf("%s -> %s\n", link, rec.dev);
	printf("%s\n", rec.dev);
	return 0;
}

int cmd_detach(int argc, char **argv)
{
	bool help = false;
	char boot = 0;
	struct ublk_opts u = {0};
	const char *name = attach_opts(argc, argv, "detach", detach_help, NULL, &boot, &u, &help);
	if (!name)
		return help ? 0 : 1;
	if (u.id && boot == 'N')
		return die("detach: --ublk and --no-boot: one at a time");
	if (u.id)
		return ublk_detach(name);
	bool was = false;
	if (boot == 'N' && boot_conf(name, false, &was))
		return 1;
	struct loop_record rec;
	if (!loop_record_get(name, &rec)) {
		if (boot == 'N') {
			printf("'%s' %s attached at its starts\n", name,
			       was ? "will not be" : "is not");
			return 0;
		}
		return die("'%s' is not attached to a loop device", name);
	}
	char fuse[PATH_MAX];
	bool running = running_fuse_path(name, fuse, sizeof(fuse)) == 0;
	if (loop_check(rec.dev, rec.file_dev, running ? fuse : NULL, true) == LOOP_NONE) {
		loop_record_clear(name);
		devlink_clear(name, rec.dev);
		printf("'%s': %s was not attached any more\n", name, rec.dev);
		return 0;
	}
	char why[2 * PATH_MAX + 64];
	if (block_user(rec.dev, state_running_pid(name), why, sizeof(why)))
		return die("'%s': its loop device %s %s", name, rec.dev, why);
	if (losetup_detach(rec.dev))
		return 1;
	loop_record_clear(name);
	devlink_clear(name, rec.dev);
	printf("detached %s from '%s'\n", rec.dev, name);
	return 0;
}

int storage_release_devices(const char *name)
{
	char fuse[PATH_MAX], why[2 * PATH_MAX + 64];
	pid_t daemon = state_running_pid(name); /* not a user of its own devices */
	bool has_fuse = running_fuse_path(name, fuse, sizeof(fuse)) == 0;
	struct loop_record rec;
	bool have_rec = loop_record_get(name, &rec);
	enum loop_state ls = LOOP_NONE;
	if (have_rec)
		ls = loop_check(rec.dev, rec.file_dev, has_fuse ? fuse : NULL, true);
	if (ls != LOOP_NONE && block_user(rec.dev, daemon, why, sizeof(why)))
		return die("'%s': its loop device %s %s", name, rec.dev, why);
	if (has_fuse) {
		/* Loop devices over the file that dst did not set up. */
		char devs[8][32];
		size_t n = loop_devices_of(fuse, devs, 8);
		for (size_t k = 0; k < n && k < 8; k++) {
			if (ls == LOOP_LIVE && !strcmp(devs[k], rec.dev))
				continue;
			if (block_user(devs[k], daemon, why, sizeof(why)))
				return die(
				    "'%s': loop device %s over its FUSE file %s (not set up by "
				    "dst attach) %s",
				    name, devs[k], fuse, why);
			return die("'%s': loop device %s over its FUSE file %s was not set up by "
				   "'dst attach'; detach it first (losetup -d %s)",
				   name, devs[k], fuse, devs[k]);
		}
		/* The FUSE file itself mounted elsewhere (a bind mount). */
		struct mount_entry *m = xmalloc(sizeof(*m));
		bool other = mountinfo_at(fuse, m) && mountinfo_of_dev(m->major, m->minor, fuse, m);
		if (other)
			snprintf(why, sizeof(why), "%s", m->mnt);
		free(m);
		if (other)
			return die("'%s': its FUSE file %s is also mounted on %s; unmount that "
				   "first (umount %s)",
				   name, fuse, why, why);
	}
	char nbd[64];
	if (ctl_show_attr(name, "nbd_device", nbd, sizeof(nbd)) == 0 &&
	    block_user(nbd, daemon, why, sizeof(why)))
		return die("'%s': %s %s", name, nbd, why);
	char ublk[64];
	if (ctl_show_attr(name, "ublk_device", ublk, sizeof(ublk)) == 0 &&
	    block_user(ublk, daemon, why, sizeof(why)))
		return die("'%s': its ublk device %s %s", name, ublk, why);
	if (ls != LOOP_NONE) {
		if (losetup_detach(rec.dev))
			return 1;
		printf("detached %s from '%s'\n", rec.dev, name);
	}
	if (have_rec) {
		loop_record_clear(name);
		devlink_clear(name, rec.dev);
	}
	return 0;
}
