/* notify.h - tell the service manager how the daemon is doing (systemd's
 * sd_notify protocol: a datagram to $NOTIFY_SOCKET). */
#ifndef DST_DAEMON_NOTIFY_H
#define DST_DAEMON_NOTIFY_H

/* Send one notification ("READY=1\nSTATUS=..."): silently nothing when
 * not started by a service manager. 0, or -errno (the caller may log it). */
int notify_send(const char *msg);

#endif
