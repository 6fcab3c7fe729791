/*
 * store_i.h — internals shared by the files of store/. Not installed, not
 * used outside store/ (tests may include it).
 */
#ifndef SNAPDRAFT_STORE_I_H
#define SNAPDRAFT_STORE_I_H

#include <pthread.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "store.h"

/* ---- durable files (fileutil.c) */

/* Writes data to dir/name through a temporary file in dir: write, fsync,
 * rename, fsync dir. Either the old or the new content survives a crash. */
int store_file_write_atomic(const char *dir, const char *name,
			    const void *data, size_t len, mode_t mode);
/* Reads a whole file into a malloc'd, NUL-terminated buffer. */
int store_file_read_all(const char *path, char **out, size_t *len);
int store_fsync_dir(const char *dir);
/* flock(LOCK_SH) on fd, polling for up to wait_ms: -ETIMEDOUT when a
 * writer kept its LOCK_EX that long (the drafts protocol, see fs/fs.h). */
int store_file_lock_shared_wait(int fd, int wait_ms);
/* The names in directory dirfd but "." and "..", sorted by strcmp, as a
 * malloc'd array of malloc'd strings. On a read error the names read so
 * far are still returned with the error. */
int store_dir_names_sorted(int dirfd, char ***out, size_t *n);
/* mkdir -p; existing directories are fine. */
int store_mkdir_p(const char *path, mode_t mode);
/* malloc'd "a/b"; NULL on ENOMEM. */
char *store_path_join(const char *a, const char *b);

/* ---- a set of ids (idset.c) */

/* Open-addressing hash set of sd_id, for dedup and visited-sets. Not
 * thread-safe. */
struct store_idset;
int store_idset_new(struct store_idset **out);
void store_idset_free(struct store_idset *s);
/* 1 if added, 0 if it was there already, -ENOMEM. */
int store_idset_add(struct store_idset *s, const sd_id *id);
bool store_idset_has(const struct store_idset *s, const sd_id *id);
size_t store_idset_count(const struct store_idset *s);

/* ---- store_node from the file system (node_meta.c) */

#define STORE_NAME_CACHE 64
/* uid or gid -> name, looked up once. Zero-initialise; free the names with
 * store_name_cache_free. */
struct store_name_cache {
	uint32_t id[STORE_NAME_CACHE];
	char *name[STORE_NAME_CACHE];
	size_t n;
};
/* malloc'd name, or NULL when the id has none. */
char *store_name_cache_get(struct store_name_cache *c, uint32_t id, bool group);
void store_name_cache_free(struct store_name_cache *c);
uint8_t store_node_type_from_mode(mode_t m);
/* Zeroes n, then fills name, type and every stat field. */
int store_node_from_stat(struct store_node *n, const char *name,
			 const struct stat *st, struct store_name_cache *users,
			 struct store_name_cache *groups);
/* Reads the xattrs of fd (when >= 0) or of path (not following a symlink),
 * sorted by name. No xattr support is not an error. */
int store_node_xattrs_read(int fd, const char *path, struct store_node *n);
int store_node_xattrs_copy(struct store_node *n, const struct store_node *from);
int store_node_extents_copy(struct store_node *n, const struct store_extent *e,
			    uint32_t count);
/* Deep copy of from into n (n's old content is not freed). On -ENOMEM n
 * holds what was copied so far: store_node_clear it. */
int store_node_copy(struct store_node *n, const struct store_node *from);
/* Appends one extent, growing the array (*cap is its capacity). */
int store_node_extent_add(struct store_node *n, uint32_t *cap, uint64_t off,
			  uint32_t len, const sd_id *id);

/* ---- hard-linked inodes of one backup (hardlinks.c) */

struct store_hardlink {
	uint64_t dev, inode;
	struct store_extent *extents;	/* owned */
	uint32_t nextents;
	bool used;
};
/* Zero-initialise; store_hardlinks_free when done. */
struct store_hardlinks {
	struct store_hardlink *slots;
	size_t cap, count;
};
const struct store_hardlink *store_hardlinks_find(const struct store_hardlinks *t,
						  uint64_t dev, uint64_t inode);
/* Remembers n's extents under its (dev, inode); a known inode is kept. */
int store_hardlinks_add(struct store_hardlinks *t, const struct store_node *n);
void store_hardlinks_free(struct store_hardlinks *t);

/* ---- LMDB blob index (index.c) */

struct store_index;
/* dir is created when writable and missing. */
int store_index_open(const char *dir, bool writable, struct store_index **out);
void store_index_close(struct store_index *ix);
/* SD_ENOTFOUND when the blob is not indexed. Thread-safe. */
int store_index_get(struct store_index *ix, const sd_id *id,
		    struct store_pack_entry *out, sd_id *pack);
/* Indexes every entry of one pack in one transaction. */
int store_index_add_pack(struct store_index *ix, const sd_id *pack,
			 const struct store_pack_entry *e, size_t n);
/* Removes every blob entry (for rebuild). */
int store_index_clear(struct store_index *ix);
/* Calls cb for every indexed blob; non-zero from cb stops and is returned.
 * The pointers are valid during the call only. */
int store_index_foreach(struct store_index *ix,
			int (*cb)(const struct store_pack_entry *e,
				  const sd_id *pack, void *ctx),
			void *ctx);
int store_index_count(struct store_index *ix, uint64_t *out);

/* ---- the blob writer (blob.c) */

/* Deduplicates, compresses and packs new blobs on worker threads while the
 * caller (one thread) keeps producing them. A blob already in the index or
 * already put in this session is dropped. Packs are written durably and
 * indexed as they fill; store_writer_flush finishes the open packs. */
struct store_writer_stats {
	uint64_t blobs_added;	/* new blobs */
	uint64_t bytes_added;	/* their plain bytes */
	uint64_t stored_added;	/* bytes of packs written */
	uint64_t packs_written;
};
struct store_writer;
/* nthreads compression workers; dry_run counts without writing. */
int store_writer_new(struct store_repo *r, int nthreads, int level,
		     bool dry_run, struct store_writer **out);
/* Takes ownership of buf (malloc'd, len bytes of plain data) whose id the
 * caller computed. Returns the first error any worker met, if any. */
int store_writer_put(struct store_writer *w, const sd_id *id, uint8_t type,
		     uint8_t *buf, size_t len);
/* True when the blob is indexed or was put in this session. */
bool store_writer_has(struct store_writer *w, const sd_id *id);
/* Waits for the workers, writes and indexes the open packs. */
int store_writer_flush(struct store_writer *w);
void store_writer_stats(const struct store_writer *w,
			struct store_writer_stats *out);
/* Stops the workers; unflushed blobs are dropped (never half-written). */
void store_writer_free(struct store_writer *w);

/* ---- the repository handle (repo.c) */

struct store_repo {
	char *path;
	char *snapshots_dir;
	char *drafts_dir;
	unsigned flags;
	int lock_fd;			/* -1 unless STORE_OPEN_WRITE */
	struct store_config *config;
	struct store_chunker_params chunker;
	struct store_backend *backend;
	struct store_index *index;
};

#endif
