/*
 * fs_i.h — internals shared by the files of fs/. Not used outside fs/.
 *
 * The pieces and who owns what:
 *   struct fs            one per mount; the fuse userdata; owns the rest
 *   inode table          inode.c: numbers, lookup counts, forget
 *   handle table         handle.c: per-open state, safe against a release
 *                        that races a request in flight
 *   tree cache           tree_cache.c: decoded directory blobs, refcounted
 *   chunk cache          chunk_cache.c: verified plain chunks + read-ahead
 *   snapshot list        snaplist.c: the backup points as named in the mount,
 *                        refreshed on a stamp change; the watcher thread
 *                        tells the kernel what changed
 *   areas                one table of operations per part of the tree:
 *                        top_ops.c (/, snapshots/, ids/, latest),
 *                        snapshot_ops.c (inside a backup point),
 *                        virtual.c (.snapdraft/). ops.c dispatches the
 *                        kernel's requests to the area of the inode; a write
 *                        into an area without that operation is EROFS.
 *
 * Adding the writable drafts/ passthrough is a file of its own
 * (drafts_ops.c): an area with the write side filled in and a destroy for
 * what it hangs on its inodes (fds), a fixed number below
 * FS_INO_FIXED_COUNT for drafts/ itself, one row in top_ops.c's root table,
 * and the handle table for per-open fds. Nothing in the read-only areas
 * changes; rename and link across areas are EXDEV already.
 *
 * Locks: itab.lock, handles.lock, trees.lock, chunks.lock, snaplist.lock
 * and snaplist.refresh_lock. No lock is taken while another is held, except
 * refresh_lock -> snaplist.lock. Reference counts on fs_snap and fs_snaps
 * are atomics.
 */
#ifndef SNAPDRAFT_FS_I_H
#define SNAPDRAFT_FS_I_H

#define FUSE_USE_VERSION 314 /* libfuse 3.14 */
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/stat.h>

#include "fs.h"
#include "store.h"

/* ---------------------------------------------------------------- fixed nodes */

enum fs_fixed_ino {
	FS_INO_ROOT = FUSE_ROOT_ID,
	FS_INO_SNAPSHOTS = 2,
	FS_INO_LATEST = 3,
	FS_INO_IDS = 4,
	FS_INO_META = 5,	/* .snapdraft/ */
	FS_INO_STATUS = 6,	/* .snapdraft/status.json */
	FS_INO_METRICS = 7,	/* .snapdraft/metrics.prom */
	FS_INO_FIXED_COUNT = 16, /* room for drafts/ and more */
	FS_INO_RESERVED = 256,	/* hashed numbers never fall below this */
};

/* Kernel cache lifetimes, seconds. Snapshot content never changes. */
#define FS_TIMEOUT_FOREVER (365.0 * 86400)
#define FS_TIMEOUT_LIVE 1.0

enum fs_kind {
	FS_KIND_DIR = 1,	/* fixed directory */
	FS_KIND_LATEST,		/* /latest */
	FS_KIND_IDLINK,		/* /ids/<short id> */
	FS_KIND_SNAP_ROOT,	/* /snapshots/<name> */
	FS_KIND_NODE,		/* anything inside a backup point */
	FS_KIND_VFILE,		/* generated file */
};

struct fs;
struct fs_inode;
struct fs_snap;
struct fs_tree;

/* ---------------------------------------------------------------- areas */

/*
 * The operations of one part of the tree. Each replies to req itself.
 * stat() is the one required function: it fills the attributes and the
 * attribute timeout, and serves getattr, lookup and readdirplus.
 */
struct fs_area_ops {
	const char *name;
	int (*stat)(struct fs *fs, struct fs_inode *in, struct stat *st,
		    double *attr_timeout);
	void (*lookup)(fuse_req_t req, struct fs_inode *parent,
		       const char *name);
	void (*readlink)(fuse_req_t req, struct fs_inode *in);
	/* opendir NULL: fh 0; releasedir NULL: nothing to free */
	void (*opendir)(fuse_req_t req, struct fs_inode *in,
			struct fuse_file_info *fi);
	void (*readdir)(fuse_req_t req, struct fs_inode *in, size_t size,
			off_t off, struct fuse_file_info *fi, bool plus);
	void (*releasedir)(struct fs *fs, struct fs_inode *in,
			   struct fuse_file_info *fi);
	void (*open)(fuse_req_t req, struct fs_inode *in,
		     struct fuse_file_info *fi);
	void (*read)(fuse_req_t req, struct fs_inode *in, size_t size,
		     off_t off, struct fuse_file_info *fi);
	void (*release)(struct fs *fs, struct fs_inode *in,
			struct fuse_file_info *fi);
	void (*lseek)(fuse_req_t req, struct fs_inode *in, off_t off,
		      int whence, struct fuse_file_info *fi);
	void (*getxattr)(fuse_req_t req, struct fs_inode *in,
			 const char *name, size_t size);
	void (*listxattr)(fuse_req_t req, struct fs_inode *in, size_t size);

	/* The write side. NULL means read-only: the request gets EROFS
	 * (fsync and flush of a read-only file succeed). Name operations go
	 * to the area of the parent directory; rename and link across areas
	 * are EXDEV. */
	void (*setattr)(fuse_req_t req, struct fs_inode *in, struct stat *attr,
			int to_set, struct fuse_file_info *fi);
	void (*mknod)(fuse_req_t req, struct fs_inode *parent,
		      const char *name, mode_t mode, dev_t rdev);
	void (*mkdir)(fuse_req_t req, struct fs_inode *parent,
		      const char *name, mode_t mode);
	void (*unlink)(fuse_req_t req, struct fs_inode *parent,
		       const char *name);
	void (*rmdir)(fuse_req_t req, struct fs_inode *parent,
		      const char *name);
	void (*symlink)(fuse_req_t req, const char *target,
			struct fs_inode *parent, const char *name);
	void (*rename)(fuse_req_t req, struct fs_inode *parent,
		       const char *name, struct fs_inode *newparent,
		       const char *newname, unsigned flags);
	void (*link)(fuse_req_t req, struct fs_inode *in,
		     struct fs_inode *newparent, const char *newname);
	void (*create)(fuse_req_t req, struct fs_inode *parent,
		       const char *name, mode_t mode,
		       struct fuse_file_info *fi);
	void (*write_buf)(fuse_req_t req, struct fs_inode *in,
			  struct fuse_bufvec *bufv, off_t off,
			  struct fuse_file_info *fi);
	void (*flush)(fuse_req_t req, struct fs_inode *in,
		      struct fuse_file_info *fi);
	void (*fsync)(fuse_req_t req, struct fs_inode *in, int datasync,
		      struct fuse_file_info *fi);
	void (*fallocate)(fuse_req_t req, struct fs_inode *in, int mode,
			  off_t off, off_t len, struct fuse_file_info *fi);
	void (*setxattr)(fuse_req_t req, struct fs_inode *in,
			 const char *name, const char *value, size_t size,
			 int flags);
	void (*removexattr)(fuse_req_t req, struct fs_inode *in,
			    const char *name);

	/* Frees what the area hung on an inode it created (may be NULL). */
	void (*destroy)(struct fs *fs, struct fs_inode *in);
};

extern const struct fs_area_ops fs_top_area;
extern const struct fs_area_ops fs_snap_area;
extern const struct fs_area_ops fs_virtual_area;

/* ---------------------------------------------------------------- inodes (inode.c) */

#define FS_KEY_LEN 16

/* One node the kernel knows. Fields without a note are set at creation
 * and never change; the inode table's lock guards the rest. */
struct fs_inode {
	uint64_t ino;
	uint8_t key[FS_KEY_LEN];	/* identity: what the number names */
	const struct fs_area_ops *area;
	uint8_t kind;			/* enum fs_kind */
	struct fs_inode *parent;	/* held; NULL for fixed nodes */
	struct fs_snap *snap;		/* held, or NULL */
	struct fs_tree *tree;		/* held: the tree holding node */
	const struct store_node *node;	/* borrowed from tree */
	void *priv;			/* an area's own state (destroy frees) */
	atomic_bool warned;		/* a corrupt chunk was logged */
	atomic_int_fast64_t next_off;	/* where the last read ended */
	/* itab.lock */
	uint64_t nlookup;		/* the kernel's count */
	uint32_t refs;			/* requests, open files, children */
	struct fs_inode *hnext;
};

/* Keys: 128 bits of SHA-256 over what a number stands for. */
void fs_key_snapshot(const sd_id *snap, uint8_t out[FS_KEY_LEN]);
void fs_key_idlink(const sd_id *snap, uint8_t out[FS_KEY_LEN]);
void fs_key_child(const uint8_t parent[FS_KEY_LEN], const char *name,
		  uint8_t out[FS_KEY_LEN]);
void fs_key_hardlink(const sd_id *snap, uint64_t dev, uint64_t inode,
		     uint8_t out[FS_KEY_LEN]);

/* What fs_inode_lookup() needs to create an inode; the references are
 * borrowed (the new inode takes its own). */
struct fs_inode_init {
	const uint8_t *key;
	const struct fs_area_ops *area;
	uint8_t kind;
	struct fs_inode *parent;
	struct fs_snap *snap;
	struct fs_tree *tree;
	const struct store_node *node;
	void *priv;		/* given to the table (the caller's
				   again on -ENOMEM): it goes through
				   area->destroy, at once when the key
				   already had an inode */
};

struct fs_itab;
int fs_itab_new(struct fs_itab **out);
/* Frees every inode still there (the session has ended). */
void fs_itab_free(struct fs *fs, struct fs_itab *t);
/* Declares a fixed node (numbers below FS_INO_FIXED_COUNT). */
void fs_inode_fixed_set(struct fs *fs, fuse_ino_t ino,
			const struct fs_area_ops *area, uint8_t kind);
/* A referenced inode, or NULL when the number is unknown. Fixed nodes are
 * never freed; fs_inode_put() on them does nothing. */
struct fs_inode *fs_inode_get(struct fs *fs, fuse_ino_t ino);
void fs_inode_hold(struct fs *fs, struct fs_inode *in);
void fs_inode_put(struct fs *fs, struct fs_inode *in);
/* Finds or creates the inode of init->key and counts one kernel lookup on
 * it. *out is referenced (fs_inode_put it after replying). -ENOMEM. */
int fs_inode_lookup(struct fs *fs, const struct fs_inode_init *init,
		    struct fs_inode **out);
void fs_inode_forget(struct fs *fs, fuse_ino_t ino, uint64_t n);
/* The number key has, or would get now (for plain readdir). */
fuse_ino_t fs_inode_number(struct fs *fs, const uint8_t key[FS_KEY_LEN]);
size_t fs_inode_count(struct fs *fs);
/* "snapshots/<name>/a/b", malloc'd (NULL on ENOMEM); for log lines. */
char *fs_inode_path(const struct fs_inode *in);

/* ---------------------------------------------------------------- handles (handle.c) */

/* Per-open state, named by an fh that is never reused: a request looks it
 * up (and references it) instead of trusting a pointer that a concurrent
 * release may have freed. */
struct fs_handle;
struct fs_handles;
int fs_handles_new(struct fs_handles **out);
/* Destroys what the kernel never released (the session has ended). */
void fs_handles_free(struct fs *fs, struct fs_handles *t);
/* Registers obj; destroy(fs, obj) runs when it is closed and unused. */
int fs_handle_open(struct fs *fs, void *obj,
		   void (*destroy)(struct fs *fs, void *obj), uint64_t *out);
/* The handle of id, referenced, and its object; NULL when closed. */
struct fs_handle *fs_handle_get(struct fs *fs, uint64_t id, void **obj);
void fs_handle_put(struct fs *fs, struct fs_handle *h);
/* For release/releasedir. */
void fs_handle_close(struct fs *fs, uint64_t id);
size_t fs_handles_count(struct fs *fs);

/* ---------------------------------------------------------------- trees (tree_cache.c) */

struct fs_tree {
	sd_id id;
	struct store_tree *t;	/* immutable */
	/* trees.lock */
	uint32_t refs;
	size_t cost;
	struct fs_tree *hnext, *prev, *next;
};
struct fs_trees;
/* cap: bytes of unreferenced trees kept for later. */
int fs_trees_new(struct store_repo *repo, size_t cap, struct fs_trees **out);
void fs_trees_free(struct fs_trees *c);
/* Referenced tree; store errors as they are (SD_ECORRUPT...). */
int fs_tree_get(struct fs_trees *c, const sd_id *id, struct fs_tree **out);
void fs_tree_hold(struct fs_trees *c, struct fs_tree *t);
void fs_tree_put(struct fs_trees *c, struct fs_tree *t);

/* ---------------------------------------------------------------- chunks (chunk_cache.c) */

struct fs_chunk {
	sd_id id;
	const uint8_t *data;	/* verified plain bytes; immutable once got */
	size_t len;
};
struct fs_cache_stats {
	uint64_t hits, misses, waits;	/* waits: joined a load in flight */
	uint64_t prefetches, prefetch_hits, errors;
	uint64_t bytes, entries, capacity;
};
struct fs_chunks;
int fs_chunks_new(struct store_repo *repo, size_t cap, struct fs_chunks **out);
void fs_chunks_free(struct fs_chunks *c);
/* Referenced chunk; loads it (or waits for the load in flight). Errors of
 * store_blob_get as they are; nothing failed is cached. */
int fs_chunk_get(struct fs_chunks *c, const sd_id *id, struct fs_chunk **out);
void fs_chunk_put(struct fs_chunks *c, struct fs_chunk *ch);
/* Loads id on the read-ahead worker unless cached or queued; never blocks. */
void fs_chunk_prefetch(struct fs_chunks *c, const sd_id *id);
void fs_chunks_stats(struct fs_chunks *c, struct fs_cache_stats *out);

/* ---------------------------------------------------------------- snapshots (snaplist.c) */

/* One backup point as the mount names it. Immutable; refcounted. */
struct fs_snap {
	atomic_uint refs;
	sd_id id;
	uint8_t key[FS_KEY_LEN];	/* fs_key_snapshot(id) */
	char name[48];			/* UTC time, "-<8 hex>" if taken */
	char short_id[SD_ID_HEX_LEN + 1]; /* >= 8 hex digits, unique */
	struct store_snapshot meta;	/* owned */
};
/* The list at one moment, sorted by name (= by time). Immutable. */
struct fs_snaps {
	atomic_uint refs;
	struct fs_snap **v;
	size_t n;
	struct fs_snap *newest;	/* by time (then id); in v, or NULL */
	uint64_t pack_count, pack_bytes;
	struct timespec stamp;
};
struct fs_snaplist;
/* Loads the list; errors as store_snapshot_list returns them. */
int fs_snaplist_new(struct fs *fs, struct fs_snaplist **out);
void fs_snaplist_free(struct fs_snaplist *sl);
/* The current list (referenced), reloaded first when
 * store_snapshot_stamp() moved. Never NULL after fs_snaplist_new. */
struct fs_snaps *fs_snaps_get(struct fs *fs);
void fs_snaps_put(struct fs_snaps *l);
struct fs_snap *fs_snaps_find(const struct fs_snaps *l, const char *name);
struct fs_snap *fs_snaps_find_short(const struct fs_snaps *l,
				    const char *short_id);
struct fs_snap *fs_snaps_find_id(const struct fs_snaps *l, const sd_id *id);
void fs_snap_hold(struct fs_snap *s);
void fs_snap_put(struct fs_snap *s);
/* The watcher: checks the stamp every second (and when a request saw a
 * change) and invalidates the kernel's caches of snapshots/, ids/ and
 * latest. Start after the session exists; stop before it is destroyed. */
int fs_snaplist_watch_start(struct fs *fs);
void fs_snaplist_watch_stop(struct fs *fs);

/* ---------------------------------------------------------------- the mount */

struct fs_counters {
	atomic_uint_fast64_t reads, read_bytes, read_errors;
	atomic_uint_fast64_t lookups, readdirs, opens;
};

struct fs {
	char *repo_path;
	char *mountpoint;
	struct store_repo *repo;
	struct fuse_session *se;
	struct fs_itab *itab;
	struct fs_handles *handles;
	struct fs_trees *trees;
	struct fs_chunks *chunks;
	struct fs_snaplist *snaps;
	struct fs_inode fixed[FS_INO_FIXED_COUNT];
	uid_t uid;
	gid_t gid;
	pid_t pid;
	struct timespec started;	/* CLOCK_REALTIME */
	struct fs_counters stats;
};

/* ---------------------------------------------------------------- ops.c, reply.c */

extern const struct fuse_lowlevel_ops fs_lowlevel_ops;

/* The one place library errors become what the kernel gets. */
int fs_errno(int err);
void fs_reply_err(fuse_req_t req, int err);
/* The error for an xattr a node lacks: ENOTSUP for security labels and
 * POSIX ACLs (ls stops asking), ENODATA otherwise. */
int fs_xattr_absent_errno(const char *name);
/* Replies with the entry of in (one lookup already counted on it by
 * fs_inode_lookup); drops that count again when the reply cannot be sent.
 * Does not put in. */
void fs_reply_entry(fuse_req_t req, struct fs_inode *in, double entry_timeout);
/* Fills e for in through its area's stat. */
int fs_entry_fill(struct fs *fs, struct fs_inode *in, double entry_timeout,
		  struct fuse_entry_param *e);
/* A stat for a fixed directory or generated file of the mount. */
void fs_stat_fixed(struct fs *fs, fuse_ino_t ino, mode_t mode, nlink_t nlink,
		   off_t size, struct stat *st);

/* Directory listing with the readdir(plus) rules of fs.h: entries are
 * offered one by one; add returns false when the buffer is full. */
struct fs_dirbuf {
	fuse_req_t req;
	struct fs *fs;
	bool plus;
	char *buf;
	size_t size, used;
	fuse_ino_t *counted;	/* inodes counted for this reply */
	size_t ncounted, capcounted;
};
int fs_dirbuf_init(struct fs_dirbuf *d, fuse_req_t req, size_t size,
		   bool plus);
/* "." and "..": never counted. */
bool fs_dirbuf_add_dot(struct fs_dirbuf *d, const char *name, fuse_ino_t ino,
		       off_t next);
/* For plus, in has one lookup counted (from fs_inode_lookup); the dirbuf
 * keeps it when the entry fits and drops it otherwise. Does not put in.
 * For plain readdir, pass in = NULL and the number and mode. */
bool fs_dirbuf_add(struct fs_dirbuf *d, const char *name,
		   struct fs_inode *in, fuse_ino_t ino, mode_t mode,
		   double entry_timeout, off_t next);
/* Sends the buffer (or err when < 0) and frees it. */
void fs_dirbuf_reply(struct fs_dirbuf *d, int err);

/* ---------------------------------------------------------------- mountpoint.c */

/* realpath of the parent plus the last component, without touching the
 * mountpoint itself (it may be a dead FUSE mount). */
int fs_path_canonical(const char *path, char *out, size_t len, char *errbuf,
		      size_t errlen);
/* 1 and the type when something is mounted at canon, 0 when not. */
int fs_mount_lookup(const char *canon, char *fstype, size_t len);
/* The checks of fs_mount_run (missing, not a directory, busy, not empty),
 * replacing a stale FUSE mount; canon gets the canonical path. */
int fs_mountpoint_prepare(const char *mountpoint, char *canon, size_t len,
			  char *errbuf, size_t errlen);

/* ---------------------------------------------------------------- shared by the areas */

/* snapshot_ops.c: looks up (counting one) the root of backup point s,
 * under parent (snapshots/). */
int fs_snap_root_lookup(struct fs *fs, struct fs_inode *parent,
			struct fs_snap *s, struct fs_inode **out);
/* The d_type bits of a stored node. */
mode_t fs_node_type_mode(const struct store_node *n);

/* virtual.c: the .snapdraft/ entries for top_ops.c's root. */
void fs_virtual_register(struct fs *fs);

#endif
