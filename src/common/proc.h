/* proc.h - what /proc says about other processes: who holds a lock on a
 * file, who is at the other end of a local socket, what a process is called.
 *
 * Only for refusals and error messages: each call walks /proc (every
 * process's open files), so nothing here runs on the IO path. What /proc
 * hides from us (another user's files when we are not root, another network
 * namespace's sockets) is simply not found, and callers then say less.
 */
#ifndef DST_PROC_H
#define DST_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

/* A process that holds a lock (OFD, POSIX or flock, read or write) on the
 * file dev:ino through one of its open files, as its fdinfo shows; 0 if
 * none is found. */
pid_t proc_lock_holder(dev_t dev, ino_t ino);

/* For each connected socket fds[i] of ours: the pid of the process at its
 * other end when that runs on this host (Unix sockets: SO_PEERCRED; TCP:
 * the kernel's TCP tables, then every process's fds), else 0 (a remote
 * client, or one we may not see). One walk of /proc for all of them. */
void proc_socket_peers(const int *fds, size_t n, pid_t *pids);

/* Call fn(pid, fd, "/proc/PID/fd/FD", arg) for every open fd of every
 * process we may look at; stop when fn returns non-zero and return that. */
int proc_each_fd(int (*fn)(pid_t pid, int fd, const char *link, void *arg), void *arg);

/* The command name of pid ("qemu-io", "dstd"), or "" if it is gone. */
void proc_comm(pid_t pid, char *buf, size_t len);

/* One line of /proc/net/tcp or /proc/net/tcp6 ("  1: 0100007F:1F90
 * 0100007F:A2B4 01 ..."): its local and remote address and socket inode.
 * False for the header or anything else. (The kernel prints each 32-bit
 * word of an address in the host's byte order.) */
bool proc_parse_tcp_line(const char *line, struct sockaddr_storage *local,
			 struct sockaddr_storage *remote, uint64_t *ino);

/* Do a and b name the same IP address and port? An IPv4-mapped IPv6
 * address (::ffff:127.0.0.1) equals its IPv4 address. */
bool proc_same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b);

#endif
