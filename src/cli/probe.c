/* probe.c - ask a node its size before adding it (DST's autoconfiguration):
 * remote nodes over NBD with libnbd, local disks with stat/ioctl. */
#include <errno.h>
#include <fcntl.h>
#include <libnbd.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "common/connect_timeout.h"
#include "common/ev.h"
#include "common/util.h"
#include "dev/dev.h"
#include "nbd/tls.h"
#include "nbd/uri.h"

int probe_uri_creds(const char *uri, char *err, size_t errlen)
{
	struct nbd_uri u;
	if (strncmp(uri, "nbds", 4) || nbd_uri_parse(uri, &u, err, errlen) < 0)
		return 0; /* (a bad URI is reported when it is probed) */
	const char *files[] = {u.tls_psk_file, u.tls_certificates};
	for (size_t i = 0; i < 2; i++)
		if (files[i][0] && files[i][0] != '/') {
			snprintf(err, errlen,
				 "%s: %s must be an absolute path (the daemon does not run in this "
				 "directory)",
				 uri, i ? "tls-certificates" : "tls-psk-file");
			return -1;
		}
	return u.tls_psk_file[0] || u.tls_certificates[0];
}

/* libnbd gets the storage's own credentials for nbds:// URIs, the same
 * the storage's daemon will use, unless the URI names files of its own
 * (tls-psk-file=, tls-certificates=), which libnbd then reads itself; a
 * URI's user name and tls-verify-peer= win, as libnbd has it. */
int probe_set_tls(struct nbd_handle *h, const char *uri, const struct tls_opts *tls)
{
	struct nbd_uri u;
	char e[256];
	if (strncmp(uri, "nbds", 4) || nbd_uri_parse(uri, &u, e, sizeof(e)) < 0)
		return 0;
	/* (Older libnbd, 1.14, does not read this one from the URI.) */
	if (u.tls_verify_peer == 0 && nbd_set_tls_verify_peer(h, false) < 0)
		return -1;
	if (u.tls_psk_file[0] && !u.tls_username[0]) {
		/* libnbd's default user is the login name; ours the file's first. */
		char *user = NULL;
		int rc = 0;
		if (tls_psk_file_check(u.tls_psk_file, NULL, &user, NULL, e, sizeof(e)) == 0)
			rc = nbd_set_tls_username(h, user);
		free(user);
		return rc;
	}
	if (!tls || u.tls_psk_file[0] || u.tls_certificates[0])
		return 0;
	if (tls->psk && nbd_set_tls_psk_file(h, tls->psk) < 0)
		return -1;
	/* libnbd's default user is the login name; ours is the file's first. */
	char *user = NULL;
	if (tls->psk && !tls->username && !u.tls_username[0] &&
	    tls_psk_file_check(tls->psk, NULL, &user, NULL, e, sizeof(e)) == 0) {
		int rc = nbd_set_tls_username(h, user);
		free(user);
		if (rc < 0)
			return -1;
	}
	if (tls->username && nbd_set_tls_username(h, tls->username) < 0)
		return -1;
	if (tls->certs && nbd_set_tls_certificates(h, tls->certs) < 0)
		return -1;
	return 0;
}

/* Until the handshake is done or the deadline passes: a server that
 * accepts and never speaks must not hang the tool. */
static int connect_within(struct nbd_handle *h, const char *uri, unsigned secs, char *err,
			  size_t errlen)
{
	if (nbd_aio_connect_uri(h, uri) < 0)
		goto failed;
	uint64_t deadline = ev_now_ns() + (uint64_t)secs * 1000000000ull;
	while (nbd_aio_is_connecting(h) == 1) {
		uint64_t now = ev_now_ns();
		if (now >= deadline) {
			/* Connected at TCP level: it is the NBD handshake that
			 * hangs. */
			struct sockaddr_storage ss;
			socklen_t sl = sizeof(ss);
			int fd = nbd_aio_get_fd(h);
			bool tcp_up = fd >= 0 && getpeername(fd, (struct sockaddr *)&ss, &sl) == 0;
			snprintf(err, errlen, "%s: timed out after %u s",
				 tcp_up ? "handshake" : "connect", secs);
			return -1;
		}
		uint64_t left_ms = (deadline - now + 999999) / 1000000;
		if (nbd_poll(h, (int)MIN(left_ms, 1000u)) < 0)
			goto failed;
	}
	if (nbd_aio_is_ready(h) == 1)
		return 0;
failed:
	snprintf(err, errlen, "%s", dev_nbd_error_cause(nbd_get_error()));
	return -1;
}

struct nbd_handle *probe_connect(const char *uri, const struct tls_opts *tls, char *err,
				 size_t errlen)
{
	struct nbd_handle *h = nbd_create();
	if (!h) {
		snprintf(err, errlen, "%s", nbd_get_error());
		return NULL;
	}
	/* (The export's description too: a dst storage names what it holds.) */
	/* The user's own URI may name files (tls-psk-file=...): let libnbd
	 * read them, as nbdinfo does. */
	if (nbd_set_full_info(h, true) < 0 || nbd_set_uri_allow_local_file(h, true) < 0 ||
	    probe_set_tls(h, uri, tls) < 0) {
		snprintf(err, errlen, "%s", dev_nbd_error_cause(nbd_get_error()));
		nbd_close(h);
		return NULL;
	}
	if (connect_within(h, uri, connect_timeout_s(DST_CLI_CONNECT_TIMEOUT_S), err, errlen) < 0) {
		nbd_close(h);
		return NULL;
	}
	return h;
}

int probe_wait(struct nbd_handle *h, int64_t cookie, char *err, size_t errlen)
{
	unsigned secs = connect_timeout_s(DST_CLI_CONNECT_TIMEOUT_S);
	uint64_t deadline = ev_now_ns() + (uint64_t)secs * 1000000000ull;
	int done = -1;
	while (cookie >= 0 && (done = nbd_aio_command_completed(h, (uint64_t)cookie)) == 0) {
		uint64_t now = ev_now_ns();
		if (now >= deadline) {
			snprintf(err, errlen, "no reply: timed out after %u s", secs);
			return -1;
		}
		uint64_t left_ms = (deadline - now + 999999) / 1000000;
		if (nbd_poll(h, (int)MIN(left_ms, 1000u)) < 0)
			break;
	}
	if (cookie >= 0 && done == 1)
		return 0;
	snprintf(err, errlen, "%s", dev_nbd_error_cause(nbd_get_error()));
	return -1;
}

int probe_remote(const char *uri, const struct tls_opts *tls, uint64_t *bytes, char *err,
		 size_t errlen)
{
	struct nbd_handle *h = probe_connect(uri, tls, err, errlen);
	if (!h)
		return -1;
	int rc = -1;
	int64_t size = nbd_get_size(h);
	if (size < 0) {
		snprintf(err, errlen, "size: %s", nbd_get_error());
		goto out;
	}
	*bytes = (uint64_t)size;
	rc = 0;
	nbd_shutdown(h, 0);
out:
	nbd_close(h);
	return rc;
}

int probe_local(const char *path, uint64_t *bytes, char *err, size_t errlen)
{
	if (!strncmp(path, "mem:", 4)) {
		if (parse_size(path + 4, bytes) < 0 || *bytes == 0) {
			snprintf(err, errlen, "invalid size (expected mem:SIZE)");
			return -1;
		}
		return 0;
	}
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "%s", strerror(errno));
		return -1;
	}
	struct stat st;
	int rc = fstat(fd, &st);
	if (rc == 0 && S_ISBLK(st.st_mode)) {
		rc = ioctl(fd, BLKGETSIZE64, bytes);
	} else if (rc == 0 && S_ISREG(st.st_mode)) {
		*bytes = (uint64_t)st.st_size;
	} else if (rc == 0) {
		close(fd);
		snprintf(err, errlen, "not a regular file or block device");
		return -1;
	}
	if (rc < 0) {
		snprintf(err, errlen, "%s", strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}
