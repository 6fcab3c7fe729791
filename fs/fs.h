/*
 * fs.h — the snapdraft FUSE server: every backup point as a read-only tree.
 *
 * What it owns
 *   A mount of one repository at one mountpoint, laid out as
 *     <mnt>/snapshots/<UTC time>/<source>/...   one folder per backup point
 *     <mnt>/latest -> snapshots/<newest>        symlink
 *     <mnt>/ids/<short id> -> ../snapshots/...  symlinks, for scripts
 *     <mnt>/.snapdraft/status.json, metrics.prom  generated on open
 *   The server opens the repository read-only (no writer lock: backups and
 *   forget run while it is mounted) and only after it has daemonised, since
 *   LMDB must not cross a fork. New and forgotten backup points show up live:
 *   the kernel's cached view of snapshots/, ids/ and latest is invalidated
 *   when store_snapshot_stamp() changes.
 *
 * Inode numbers
 *   A node of a backup point is numbered by a 64-bit hash of (snapshot id,
 *   path), so `ls -i` gives the same numbers on every mount of the same
 *   repository. Hard links inside one backup point share one number (keyed
 *   by the stored device and inode). Numbers below 256 are the fixed nodes
 *   (root, snapshots/, latest, ids/, .snapdraft/...). A 64-bit collision is
 *   resolved by probing a sequence derived from the key.
 *
 * Threading
 *   fuse_session_loop_mt with clone_fd. Each structure has its own lock
 *   (inode table, handle table, tree cache, chunk cache, snapshot list);
 *   none is taken while another is held. Helper threads: two chunk
 *   read-ahead workers, the snapshot watcher that sends kernel
 *   invalidations, and a one-shot thread that raises the mount's kernel
 *   read-ahead to 1 MiB where it may. Requests never keep an LMDB read
 *   transaction between them (store_blob_get takes its own).
 *
 * Lookup counts (the kernel's references on our inode numbers)
 *   +1  lookup, for each fuse_reply_entry that reaches the kernel
 *   +1  readdirplus, for each entry placed in the reply buffer, except "."
 *       and ".." (an entry that did not fit is undone at once)
 *   +1  create (not served: snapshots are read-only)
 *   -N  forget, forget_multi (N as the kernel says)
 *    0  getattr, open, readdir (plain), readlink, mknod/mkdir/symlink/link
 *       (refused with EROFS), and every reply that fails to be sent (the
 *       count taken for it is dropped again)
 *   An inode is freed when its count is 0 and no request, open file or
 *   child inode still refers to it. Fixed nodes are never freed.
 *
 * Errors
 *   Functions return 0, a negative errno, or an SD_E* code from store.h,
 *   and fill errbuf with one line for people. What the kernel sees is
 *   mapped in one place: a chunk that fails verification is EIO for the
 *   reads touching it (with an sd_log line naming file and chunk), a write
 *   anywhere is EROFS, a missing name ENOENT.
 *
 * Caveats
 *   In background mode fs_mount_run() forks: it returns in both processes
 *   (see enum fs_role), like daemon(3). Flush stdio before calling it.
 */
#ifndef SNAPDRAFT_FS_H
#define SNAPDRAFT_FS_H

#include <stdbool.h>
#include <stddef.h>

#define FS_OPTIONS_VERSION 1

struct fs_options {
	unsigned version;	/* FS_OPTIONS_VERSION */
	const char *repo_path;	/* repository directory */
	const char *mountpoint;	/* an existing, empty directory */
	bool foreground;	/* stay in the calling process */
	bool allow_other;	/* -o allow_other (see /etc/fuse.conf) */
	bool debug;		/* libfuse request trace on stderr; implies
				   foreground */
	size_t cache_bytes;	/* decompressed chunk cache; 0: 32 MiB */
};
#define FS_OPTIONS_INIT { FS_OPTIONS_VERSION, NULL, NULL, false, false, \
			  false, 0 }

enum fs_role {
	FS_ROLE_CALLER,	/* the process that asked; the mount answers now
			   (background mode), or the server has finished
			   (foreground mode) */
	FS_ROLE_SERVER,	/* the daemonised server, after it was unmounted:
			   the caller should exit quietly with the result */
};

/*
 * Mounts o->repo_path at o->mountpoint and serves it.
 *
 * Before anything is mounted the mountpoint is checked: -ENOENT when it is
 * missing, -ENOTDIR, -EBUSY when something is mounted there, -ENOTEMPTY.
 * A FUSE mount whose server died (stat gives ENOTCONN) is lazily unmounted
 * first and then replaced. Repository errors (SD_ENOREPO, SD_EFORMAT,
 * SD_ECORRUPT, ...) come from the server process after the fork and are
 * returned in the caller as they are; nothing stays mounted on failure.
 *
 * Background mode returns in the caller only once the mounted filesystem
 * answers a stat(). Foreground mode returns when the filesystem is
 * unmounted, by fs_unmount(), fusermount3 -u, SIGTERM, SIGINT or SIGHUP.
 * errbuf gets a one-line message whenever the result is not 0.
 */
int fs_mount_run(const struct fs_options *o, enum fs_role *role,
		 char *errbuf, size_t errlen);

/*
 * Unmounts the FUSE filesystem at mountpoint (fusermount3 -u semantics).
 * -EINVAL when no FUSE filesystem is mounted there, -EBUSY when it is in
 * use and lazy is false; lazy detaches it now and lets open files finish.
 * Uses umount2() as root, fusermount3 otherwise.
 */
int fs_unmount(const char *mountpoint, bool lazy, char *errbuf,
	       size_t errlen);

#endif
