/*
 * store.h — the snapdraft repository: chunks, packs, index, trees, snapshots.
 *
 * What it owns
 *   A repository directory:
 *     format          JSON: format version, repository id, chunker parameters
 *     config.yaml     user configuration (see store_config_*)
 *     packs/xx/<id>   self-describing pack files (the truth for blob data)
 *     snapshots/<id>  one JSON file per backup point (the truth for snapshots)
 *     index/          LMDB environment: blob id -> pack location (rebuildable)
 *     lock            flock()ed by the one writer
 *     drafts/         the writable drafts area (fs/ serves it)
 *   Packs and snapshot files are the truth; the LMDB index is a cache that
 *   `store_repair_rebuild_index` recreates from pack trailers.
 *
 * Commit order (crash safety)
 *   pack written + fsynced + renamed -> LMDB txn indexing its blobs committed
 *   -> snapshot file written (tmp, fsync, rename, fsync dir). A crash at any
 *   point leaves earlier snapshots intact and at worst unreferenced packs.
 *
 * Threading
 *   A store_repo opened read-only may be used from many threads at once
 *   (store_blob_get, store_tree_load, store_snapshot_list). Writers
 *   (backup, repair) take the repository lock; one at a time per repository.
 *   Never open a repository before fork(): LMDB forbids it.
 *
 * Errors
 *   Every int-returning function returns 0 on success, a negative errno for
 *   system failures, or one of the SD_E* codes below. sd_strerror() names both.
 *   Library code never prints or exits; it reports through sd_log() and the
 *   callbacks in option structs.
 *
 * Ownership
 *   Pointers returned through `out` parameters belong to the caller and are
 *   freed with the matching *_free function (free(NULL)-safe), unless the
 *   prototype says they are borrowed.
 */
#ifndef SNAPDRAFT_STORE_H
#define SNAPDRAFT_STORE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* ---------------------------------------------------------------- errors */

enum sd_error {
	SD_ECORRUPT = -10001,	/* stored data failed verification or parsing */
	SD_ENOTFOUND = -10002,	/* no such blob, snapshot, key or path */
	SD_ENOREPO = -10003,	/* the directory is not a snapdraft repository */
	SD_EFORMAT = -10004,	/* repository format version not supported */
	SD_ELOCKED = -10005,	/* another writer holds the repository lock */
	SD_EAMBIGUOUS = -10006,	/* an id prefix or time matches several */
	SD_ECONFIG = -10007,	/* invalid configuration (detail in the errbuf) */
	SD_EPARTIAL = -10008,	/* finished, but some items failed (warned) */
	SD_EEXIST = -10009,	/* refusing to overwrite */
	SD_EUSAGE = -10010,	/* invalid argument from the caller's user */
};

/* Static string for a negative errno or SD_E* code. Never NULL. */
const char *sd_strerror(int err);

/* ---------------------------------------------------------------- logging */

enum sd_log_level { SD_LOG_ERR, SD_LOG_WARN, SD_LOG_INFO, SD_LOG_DEBUG };
typedef void (*sd_log_sink_fn)(enum sd_log_level level, const char *msg,
			       void *ctx);
/* Default sink discards everything; tools/ and fs/ install their own.
 * Thread-safe; the sink may be called from any thread. */
void sd_log_set_sink(sd_log_sink_fn sink, void *ctx);
void sd_log(enum sd_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* ---------------------------------------------------------------- ids */

#define SD_ID_LEN 32
#define SD_ID_HEX_LEN 64
typedef struct sd_id {
	uint8_t b[SD_ID_LEN];
} sd_id;

/* SHA-256 through OpenSSL EVP (uses the CPU's SHA instructions). */
void sd_hash(const void *data, size_t len, sd_id *out);
struct sd_hasher;
int sd_hasher_new(struct sd_hasher **out);
void sd_hasher_update(struct sd_hasher *h, const void *data, size_t len);
void sd_hasher_final(struct sd_hasher *h, sd_id *out); /* resets h */
void sd_hasher_free(struct sd_hasher *h);

/* out gets 64 lowercase hex digits and a NUL. */
void sd_id_hex(const sd_id *id, char out[SD_ID_HEX_LEN + 1]);
/* Exactly 64 hex digits; otherwise SD_EUSAGE. */
int sd_id_parse(const char *hex, sd_id *out);
int sd_id_cmp(const sd_id *a, const sd_id *b);
bool sd_id_is_zero(const sd_id *id);

/* ---------------------------------------------------------------- chunker */

/* FastCDC with a gear hash and normalised chunking (level 2). */
struct store_chunker_params {
	uint32_t min_size; /* default 256 KiB */
	uint32_t avg_size; /* default 1 MiB, a power of two */
	uint32_t max_size; /* default 4 MiB */
};
#define STORE_CHUNKER_PARAMS_DEFAULT \
	{ 256u * 1024, 1024u * 1024, 4u * 1024 * 1024 }
/* 0, or SD_EUSAGE when min < 64, avg not a power of two, or not
 * min <= avg <= max. */
int store_chunker_params_check(const struct store_chunker_params *p);
/* Length of the first chunk of buf[0..len). The caller passes
 * len = min(max_size, bytes left in the stream); the result is <= len, and
 * equals len when no boundary is found (max reached, or end of stream).
 * Pure and thread-safe: boundaries depend only on content. */
size_t store_chunk_cut(const struct store_chunker_params *p,
		       const uint8_t *buf, size_t len);

/* ---------------------------------------------------------------- compression */

/* zstd with a reusable context; one per thread. */
struct store_zctx;
int store_zctx_new(int level, struct store_zctx **out);
void store_zctx_free(struct store_zctx *z);
size_t store_compress_bound(size_t len);
/* Compresses src into dst (cap >= store_compress_bound(len)).
 * *out_len gets the compressed size. Returns 0, or -ENOSPC when the result
 * would not be smaller than len (the caller then stores it plain). */
int store_compress(struct store_zctx *z, const void *src, size_t len,
		   void *dst, size_t cap, size_t *out_len);
/* Decompresses exactly plain_len bytes; SD_ECORRUPT otherwise. */
int store_decompress(const void *src, size_t len, void *dst,
		     size_t plain_len);

/* ---------------------------------------------------------------- packs */

enum store_blob_type {
	STORE_BLOB_DATA = 1, /* file content chunk */
	STORE_BLOB_TREE = 2, /* encoded directory (store_tree_encode) */
};
#define STORE_BLOB_COMPRESSED 0x01 /* flags: stored bytes are zstd */

/* One blob as a pack trailer lists it, and as the index locates it. */
struct store_pack_entry {
	sd_id id;		/* SHA-256 of the plain bytes */
	uint8_t type;		/* enum store_blob_type */
	uint8_t flags;		/* STORE_BLOB_COMPRESSED */
	uint64_t offset;	/* of the stored bytes inside the pack */
	uint32_t stored_len;	/* bytes in the pack */
	uint32_t plain_len;	/* bytes after decompression */
};

/*
 * Pack file layout (little endian), self-describing:
 *   "SDPACK01"                                  8 bytes
 *   stored blob bytes, back to back
 *   trailer: n entries of 50 bytes
 *            (id 32, type 1, flags 1, offset 8, stored_len 4, plain_len 4)
 *   footer:  entry count u32, SHA-256 of the trailer entries (32),
 *            trailer length u32, "SDPKEND1" (8)          = 48 bytes
 * The pack id (its file name) is the SHA-256 of the whole file.
 */
#define STORE_PACK_TARGET_SIZE (16u * 1024 * 1024)
#define STORE_PACK_FOOTER_LEN 48u

/* Builds one pack in memory. Not thread-safe; callers serialise. */
struct store_pack_builder;
int store_pack_builder_new(struct store_pack_builder **out);
void store_pack_builder_free(struct store_pack_builder *b);
/* Appends stored bytes; records the entry. */
int store_pack_builder_add(struct store_pack_builder *b, const sd_id *id,
			   uint8_t type, uint8_t flags, const void *stored,
			   uint32_t stored_len, uint32_t plain_len);
size_t store_pack_builder_size(const struct store_pack_builder *b);
size_t store_pack_builder_count(const struct store_pack_builder *b);
/* Appends trailer and footer and hashes the file. *data and *entries are
 * borrowed: valid until the builder is freed or reset. */
int store_pack_builder_finish(struct store_pack_builder *b,
			      const uint8_t **data, size_t *len,
			      sd_id *pack_id,
			      const struct store_pack_entry **entries,
			      size_t *n);
/* Empties the builder for the next pack, keeping its buffer. */
void store_pack_builder_reset(struct store_pack_builder *b);

/* Parses the last `len` bytes of a pack whose total size is pack_size
 * (len >= STORE_PACK_FOOTER_LEN; pass the whole trailer+footer to get
 * entries, or just the footer to learn the trailer length through
 * *trailer_len with *entries NULL). Checks the trailer hash, that every
 * entry lies inside the blob area, and types/flags.
 * *entries is malloc'd; SD_ECORRUPT on any inconsistency. */
int store_pack_trailer_parse(const uint8_t *tail, size_t len,
			     uint64_t pack_size, uint32_t *trailer_len,
			     struct store_pack_entry **entries, size_t *n);

/* ---------------------------------------------------------------- backend */

/* Where packs live. A local directory now; an object store later. Every
 * function is thread-safe. Ids name packs; names are the backend's business. */
struct store_backend_ops {
	unsigned version; /* STORE_BACKEND_OPS_VERSION */
	/* Stores a whole pack; durable when it returns 0. */
	int (*pack_put)(void *state, const sd_id *id, const void *data,
			size_t len);
	/* Reads exactly len bytes at offset; SD_ECORRUPT on a short read,
	 * SD_ENOTFOUND when the pack does not exist. */
	int (*pack_read)(void *state, const sd_id *id, uint64_t offset,
			 void *buf, size_t len);
	int (*pack_size)(void *state, const sd_id *id, uint64_t *out);
	/* Calls cb for every pack; a non-zero cb return stops and is
	 * returned. Names that are not pack ids are skipped. */
	int (*pack_list)(void *state,
			 int (*cb)(const sd_id *id, uint64_t size, void *ctx),
			 void *ctx);
	int (*pack_remove)(void *state, const sd_id *id);
	void (*free)(void *state);
};
#define STORE_BACKEND_OPS_VERSION 1
struct store_backend {
	const struct store_backend_ops *ops;
	void *state;
};
/* packs_dir holds packs/<first two hex digits>/<64 hex digits>. */
int store_backend_local_new(const char *packs_dir, struct store_backend **out);
void store_backend_free(struct store_backend *be);
/* Reads and parses a pack's trailer through the backend. */
int store_backend_read_trailer(struct store_backend *be, const sd_id *pack,
			       struct store_pack_entry **entries, size_t *n);

/* ---------------------------------------------------------------- trees */

enum store_node_type {
	STORE_NODE_FILE = 1,
	STORE_NODE_DIR = 2,
	STORE_NODE_SYMLINK = 3,
	STORE_NODE_FIFO = 4,
	STORE_NODE_CHARDEV = 5,
	STORE_NODE_BLOCKDEV = 6,
	STORE_NODE_SOCKET = 7,
};

struct store_xattr {
	char *name;
	uint8_t *value;
	uint32_t len;
};

/* A stored piece of a regular file: bytes [offset, offset+length) are the
 * plain bytes of blob id. Bytes of the file covered by no extent are a hole
 * (zeros, not stored). Extents are sorted and do not overlap. */
struct store_extent {
	uint64_t offset;
	uint32_t length;
	sd_id id;
};

/* One directory entry with all the metadata a restore needs. */
struct store_node {
	char *name;		/* no '/', not "." or ".." */
	uint8_t type;		/* enum store_node_type */
	uint32_t mode;		/* permission bits incl. setuid/setgid/sticky */
	uint32_t uid, gid;
	char *user, *group;	/* names at backup time, or NULL */
	struct timespec mtime, ctime, atime;
	uint64_t size;		/* st_size; for a symlink, target length */
	uint64_t dev, inode;	/* source identity: incremental checks and
				   hard-link groups within one snapshot */
	uint32_t nlink;
	uint64_t rdev;		/* device nodes */
	char *target;		/* symlink target, else NULL */
	struct store_xattr *xattrs;
	uint32_t nxattrs;
	struct store_extent *extents; /* FILE */
	uint32_t nextents;
	sd_id subtree;		/* DIR: id of its tree blob */
};

/* A decoded directory: nodes sorted by name (memcmp order). All memory
 * belongs to the tree and goes with store_tree_free. */
struct store_tree {
	struct store_node *nodes;
	size_t n;
};

/* Encodes nodes (must already be sorted by name, names unique) into a
 * malloc'd buffer. The encoding is deterministic: equal trees give equal
 * bytes and so equal blob ids. SD_EUSAGE for unsorted or duplicate names. */
int store_tree_encode(const struct store_tree *t, uint8_t **out,
		      size_t *out_len);
/* Decodes and validates; SD_ECORRUPT for anything malformed. */
int store_tree_decode(const uint8_t *buf, size_t len, struct store_tree **out);
void store_tree_free(struct store_tree *t);
/* Binary search; borrowed pointer into t, or NULL. */
const struct store_node *store_tree_find(const struct store_tree *t,
					 const char *name);
/* Sorts nodes by name (for encoders). */
void store_tree_sort(struct store_tree *t);
/* Frees the strings and arrays one node owns (for trees built by hand,
 * not for decoded trees). */
void store_node_clear(struct store_node *n);

/* ---------------------------------------------------------------- config */

/* config.yaml. Every key has a default; unknown keys are errors. */
struct store_config_source {
	char *name;
	char *path;
};
struct store_config {
	struct store_config_source *sources;
	size_t nsources;
	char **excludes;	/* backup.exclude: glob patterns */
	size_t nexcludes;
	int compression_level;	/* backup.compression_level, default 3 */
	struct {
		int keep_last, keep_hourly, keep_daily, keep_weekly,
			keep_monthly, keep_yearly;
		char *keep_within; /* duration like "7d", or NULL */
	} retention;		/* defaults: 0, 24, 30, 12, 12, 0 */
};
/* Loads path; a missing file gives the defaults. On SD_ECONFIG, errbuf
 * holds a one-line message naming the file, line and key. */
int store_config_load(const char *path, struct store_config **out,
		      char *errbuf, size_t errlen);
void store_config_free(struct store_config *c);
/* The commented default file that `init` writes (static string). */
const char *store_config_default_text(void);
/* Effective configuration as YAML (malloc'd). */
int store_config_render(const struct store_config *c, char **out);
/* Sets one dotted key (e.g. retention.keep_daily, sources.content) to value
 * in the file at path, keeping comments and layout; validates the result and
 * replaces the file atomically. SD_ECONFIG with errbuf on unknown key or bad
 * value; the file is then unchanged. */
int store_config_set(const char *path, const char *key, const char *value,
		     char *errbuf, size_t errlen);

/* ---------------------------------------------------------------- repository */

#define STORE_FORMAT_VERSION 1

struct store_repo;
struct store_repo_init_options {
	struct store_chunker_params chunker;
};
/* Creates the layout at path (created if missing, must be empty otherwise:
 * SD_EEXIST). */
int store_repo_init(const char *path, const struct store_repo_init_options *o);

#define STORE_OPEN_WRITE 0x1 /* take the writer lock (SD_ELOCKED if held) */
#define STORE_OPEN_WAIT 0x2  /* with WRITE: wait for the lock instead */
#define STORE_OPEN_REPAIR 0x4 /* with WRITE: a lost or unreadable index is
				 replaced by an empty one (for rebuild) */
/* SD_ENOREPO if path is not a repository, SD_EFORMAT for another format
 * version (errbuf says which), SD_ECONFIG for a bad config.yaml. */
int store_repo_open(const char *path, unsigned flags, struct store_repo **out,
		    char *errbuf, size_t errlen);
void store_repo_close(struct store_repo *r);
/* Borrowed; valid while r is open. */
const char *store_repo_path(const struct store_repo *r);
const struct store_config *store_repo_config(const struct store_repo *r);
const struct store_chunker_params *store_repo_chunker(const struct store_repo *r);
struct store_backend *store_repo_backend(struct store_repo *r);

/* Reads, decompresses and verifies one blob. *out is malloc'd (plain bytes),
 * SD_ENOTFOUND if not indexed, SD_ECORRUPT if the hash does not match (and
 * an sd_log line naming blob and pack). Thread-safe. */
int store_blob_get(struct store_repo *r, const sd_id *id, uint8_t **out,
		   size_t *len);
/* Where the index says a blob is. */
int store_blob_locate(struct store_repo *r, const sd_id *id,
		      struct store_pack_entry *entry, sd_id *pack);
/* Loads and decodes a tree blob. */
int store_tree_load(struct store_repo *r, const sd_id *id,
		    struct store_tree **out);

/* ---------------------------------------------------------------- snapshots */

struct store_snapshot_source {
	char *name;		/* entry name at the snapshot root */
	char *path;		/* absolute path it was read from */
	uint64_t files;		/* regular files stored from it */
	uint64_t bytes;		/* their logical bytes */
};
struct store_snapshot_summary {
	uint64_t files, dirs, others;	/* entries stored */
	uint64_t bytes;			/* logical bytes of regular files */
	uint64_t files_new, files_changed, files_unchanged;
	uint64_t bytes_read;		/* bytes actually read this time */
	uint64_t blobs_added;
	uint64_t bytes_added;		/* plain bytes of new blobs */
	uint64_t stored_added;		/* bytes of packs written */
	uint64_t warnings;		/* unreadable or vanished items */
	double duration;		/* seconds */
};
struct store_snapshot {
	sd_id id;		/* SHA-256 of its file; set by save/list */
	int64_t time_ns;	/* the point in time it records (UTC) */
	sd_id tree;		/* root tree: one entry per source */
	char *hostname, *username;
	char **tags;
	size_t ntags;
	struct store_snapshot_source *sources;
	size_t nsources;
	sd_id parent;		/* zero id: none */
	bool partial;		/* some items could not be read */
	struct store_snapshot_summary summary;
};
void store_snapshot_clear(struct store_snapshot *s);
/* Writes snapshots/<id> atomically and durably; fills s->id. */
int store_snapshot_save(struct store_repo *r, struct store_snapshot *s);
/* All snapshots, sorted by time then id; *out is an array freed with
 * store_snapshot_list_free. Unparsable files are skipped with a log line. */
int store_snapshot_list(struct store_repo *r, struct store_snapshot **out,
			size_t *n);
void store_snapshot_list_free(struct store_snapshot *list, size_t n);
/* "latest", a hex id prefix (>= 4 digits), or a UTC time
 * (YYYY-MM-DD[THH[:MM[:SS]]][Z]) meaning the newest point at or before it.
 * Copies the match into *out (clear it with store_snapshot_clear).
 * SD_ENOTFOUND, SD_EAMBIGUOUS. */
int store_snapshot_resolve(struct store_repo *r, const char *spec,
			   struct store_snapshot *out);
int store_snapshot_remove(struct store_repo *r, const sd_id *id);
/* Changes whenever a snapshot is added or removed (mtime of snapshots/). */
int store_snapshot_stamp(struct store_repo *r, struct timespec *out);
/* "2026-11-22T10:30:00Z" (21 bytes incl. NUL). */
void store_time_format(int64_t time_ns, char out[32]);
/* Parses YYYY-MM-DD[THH[:MM[:SS]]][Z] as UTC; *out_ns is the start of
 * the given precision, *end_ns the start of the next unit. */
int store_time_parse(const char *s, int64_t *out_ns, int64_t *end_ns);

/* ---------------------------------------------------------------- backup */

struct store_backup_progress {
	uint64_t files_done, bytes_done;	/* entries and bytes processed */
	uint64_t bytes_read;
	const char *current;			/* path, borrowed */
};
struct store_backup_options {
	const struct store_snapshot_source *sources; /* name + path each */
	size_t nsources;
	const char *const *excludes;	/* glob patterns (fnmatch) */
	size_t nexcludes;
	const char *const *tags;
	size_t ntags;
	int64_t time_ns;		/* 0: now */
	bool dry_run;			/* read and chunk, write nothing */
	bool force_read;		/* ignore the parent: read every file */
	/* Called from the walking thread at most ~10 times a second. */
	void (*progress)(const struct store_backup_progress *p, void *ctx);
	/* An item that could not be read: path and error. */
	void (*warn)(const char *path, int err, void *ctx);
	void *ctx;
};
/* Takes a backup point. The repository must be open with STORE_OPEN_WRITE.
 * On success out (clear with store_snapshot_clear) is the saved snapshot;
 * returns SD_EPARTIAL when it was saved but some items were warned about. */
int store_backup_run(struct store_repo *r, const struct store_backup_options *o,
		     struct store_snapshot *out);

/* ---------------------------------------------------------------- restore */

struct store_restore_options {
	const struct store_snapshot *snapshot;
	const char *target;		/* created if missing */
	const char *const *includes;	/* paths inside the snapshot; none: all */
	size_t nincludes;
	bool overwrite;			/* replace existing files */
	void (*progress)(uint64_t files, uint64_t bytes, void *ctx);
	void (*warn)(const char *path, int err, void *ctx);
	void *ctx;
};
struct store_restore_result {
	uint64_t files, dirs, others, bytes;
	uint64_t failed;
};
/* SD_EPARTIAL when some files failed (each warned); SD_ENOTFOUND when an
 * include path is not in the snapshot; SD_EEXIST when a target file exists
 * and overwrite is false (nothing is written then). */
int store_restore_run(struct store_repo *r, const struct store_restore_options *o,
		      struct store_restore_result *out);

/* ---------------------------------------------------------------- check */

struct store_check_options {
	bool read_data;			/* re-hash every blob of every pack */
	/* One line per problem, naming pack, blob, snapshot, file. */
	void (*problem)(const char *msg, void *ctx);
	void (*progress)(uint64_t done, uint64_t total, void *ctx);
	void *ctx;
};
struct store_check_result {
	uint64_t snapshots, trees, blobs, packs, problems;
	uint64_t packs_unused;		/* no index entry points into them */
	uint64_t bytes_read;
};
/* 0 when no problem was found, SD_ECORRUPT otherwise. */
int store_check_run(struct store_repo *r, const struct store_check_options *o,
		    struct store_check_result *out);
/* Drops the blob index and rebuilds it from pack trailers. Needs
 * STORE_OPEN_WRITE. problem() names packs that could not be read. */
int store_repair_rebuild_index(struct store_repo *r,
			       const struct store_check_options *o,
			       struct store_check_result *out);

#endif
