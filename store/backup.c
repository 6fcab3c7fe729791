/*
 * backup.c — taking a backup point: walk, read, chunk, hash, build trees.
 *
 * One walking thread does all file-system work in depth-first order: it
 * reads each directory through a descriptor (openat/fstatat, so long paths
 * cost nothing), sorts the names, builds one store_node per entry and, when
 * a directory is done, encodes it as a tree blob whose id goes into its
 * parent's node. Content is read, cut with FastCDC and hashed on this
 * thread; only blobs the repository does not have yet are handed to the
 * store_writer, whose workers compress and pack them on the other cores.
 *
 * Incremental: for every source the newest earlier snapshot holding the
 * same source (name and path) is the parent. A regular file whose type,
 * size, mtime, ctime and inode equal its parent node is not opened: its
 * extents and xattrs are copied (xattr changes move ctime, so they are
 * covered). Directories are always listed, since a child may change
 * without touching its directory.
 *
 * A file that vanishes or cannot be read is a warning; the backup goes on
 * and the snapshot is marked partial.
 *
 * The repository's own drafts/ is read under the drafts protocol (fs/fs.h):
 * the mount holds LOCK_EX on a draft from its first change until it is
 * closed, so a draft is read under LOCK_SH, and re-read when its size or
 * ctime moved during the read (a writer outside the mount). A draft still
 * busy after a short wait keeps its content of the previous point, or is
 * left out when it is new: a point holds each draft's old or new content,
 * never a mix.
 */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store_i.h"

/* How long a backup waits for the mount to finish writing a draft. */
#define DRAFT_LOCK_WAIT_MS 2000

struct backup {
	struct store_repo *repo;
	const struct store_backup_options *o;
	struct store_writer *w;
	struct store_snapshot_summary sum;
	const struct store_chunker_params *cp;
	uint8_t *buf;		/* chunking window */
	size_t buf_cap;
	struct store_name_cache users, groups;
	struct store_hardlinks links;
	dev_t repo_dev;
	ino_t repo_ino;
	bool draft_reads;	/* walking the repository's drafts/ */
	char *path;		/* current path, for warnings and excludes */
	size_t path_len, path_cap;
	struct timespec last_progress;
	uint64_t progress_tick;
	int64_t parent_time;	/* of the snapshot recorded as parent */
	uint64_t *src_files, *src_bytes; /* per source, for the summary */
};

/* store_node_clear frees; this also zeroes, so the slot can be reused. */
static void node_reset(struct store_node *n)
{
	store_node_clear(n);
	memset(n, 0, sizeof(*n));
}

static void backup_warn(struct backup *b, const char *path, int err)
{
	b->sum.warnings++;
	if (b->o->warn)
		b->o->warn(path, err, b->o->ctx);
}

static void backup_progress(struct backup *b, bool force)
{
	if (!b->o->progress || (!force && ++b->progress_tick % 64))
		return;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	int64_t ms = (now.tv_sec - b->last_progress.tv_sec) * 1000 +
		     (now.tv_nsec - b->last_progress.tv_nsec) / 1000000;
	if (!force && ms < 100)
		return;
	b->last_progress = now;
	struct store_backup_progress p = {
		.files_done = b->sum.files + b->sum.dirs + b->sum.others,
		.bytes_done = b->sum.bytes,
		.bytes_read = b->sum.bytes_read,
		.current = b->path,
	};
	b->o->progress(&p, b->o->ctx);
}

/* Pushes "/name" onto the path; returns the old length for path_pop. */
static int path_push(struct backup *b, const char *name, size_t *old)
{
	size_t nl = strlen(name), need = b->path_len + nl + 2;
	if (need > b->path_cap) {
		size_t cap = need * 2;
		char *p = realloc(b->path, cap);
		if (!p)
			return -ENOMEM;
		b->path = p;
		b->path_cap = cap;
	}
	*old = b->path_len;
	if (b->path_len > 0 && b->path[b->path_len - 1] != '/')
		b->path[b->path_len++] = '/';
	memcpy(b->path + b->path_len, name, nl + 1);
	b->path_len += nl;
	return 0;
}

static void path_pop(struct backup *b, size_t old)
{
	b->path_len = old;
	b->path[old] = '\0';
}

/* Patterns with a '/' match the whole path (or a leading part of it, so
 * excluding a directory excludes its contents); others match base names. */
static bool excluded(struct backup *b, const char *name)
{
	for (size_t i = 0; i < b->o->nexcludes; i++) {
		const char *pat = b->o->excludes[i];
		if (strchr(pat, '/')) {
			if (fnmatch(pat, b->path, FNM_PATHNAME) == 0 ||
			    fnmatch(pat, b->path, FNM_PATHNAME | FNM_LEADING_DIR) == 0)
				return true;
		} else if (fnmatch(pat, name, 0) == 0) {
			return true;
		}
	}
	return false;
}

/* Hashes one chunk and hands it to the writer unless the repository has
 * it. `owned` is a malloc'd copy the writer may take, or NULL. */
static int chunk_store(struct backup *b, const uint8_t *data, size_t len,
		       uint8_t *owned, sd_id *id)
{
	sd_hash(data, len, id);
	if (store_writer_has(b->w, id)) {
		free(owned);
		return 0;
	}
	if (!owned) {
		owned = malloc(len ? len : 1);
		if (!owned)
			return -ENOMEM;
		memcpy(owned, data, len);
	}
	return store_writer_put(b->w, id, STORE_BLOB_DATA, owned, len);
}

static int read_full(int fd, uint8_t *buf, size_t len, uint64_t off,
		     size_t *got)
{
	*got = 0;
	while (*got < len) {
		ssize_t r = pread(fd, buf + *got, len - *got,
				  (off_t)(off + *got));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			break;
		*got += (size_t)r;
	}
	return 0;
}

/* Chunks the bytes [start, end) of fd (or until EOF). *eof_at is set when
 * the file ended early. */
static int region_store(struct backup *b, int fd, struct store_node *n,
			uint32_t *cap, uint64_t start, uint64_t end,
			uint64_t *eof_at)
{
	const size_t max = b->cp->max_size;
	size_t lo = 0, hi = 0; /* window: buf[lo..hi) */
	uint64_t pos = start;	/* file offset of buf[lo] */
	bool eof = false;
	for (;;) {
		if (!eof && hi - lo < max) {
			if (lo + max > b->buf_cap - max / 2 || hi + max > b->buf_cap) {
				memmove(b->buf, b->buf + lo, hi - lo);
				hi -= lo;
				lo = 0;
			}
			uint64_t want = end - (pos + (hi - lo));
			size_t room = b->buf_cap - hi;
			if (want < room)
				room = (size_t)want;
			size_t got = 0;
			int r = read_full(fd, b->buf + hi, room, pos + (hi - lo),
					  &got);
			if (r < 0)
				return r;
			b->sum.bytes_read += got;
			hi += got;
			if (got < room) {
				eof = true;
				if (pos + (hi - lo) < end)
					*eof_at = pos + (hi - lo);
			}
			if (pos + (hi - lo) >= end)
				eof = true;
		}
		if (hi == lo)
			return 0;
		size_t avail = hi - lo;
		size_t cut = store_chunk_cut(b->cp, b->buf + lo,
					     avail < max ? avail : max);
		if (!eof && avail < max && cut == avail)
			continue; /* need more bytes to decide */
		sd_id id;
		int r = chunk_store(b, b->buf + lo, cut, NULL, &id);
		if (r == 0)
			r = store_node_extent_add(n, cap, pos, (uint32_t)cut, &id);
		if (r < 0)
			return r;
		lo += cut;
		pos += cut;
	}
}

static bool same_file(const struct store_node *n, const struct store_node *p)
{
	return p && p->type == STORE_NODE_FILE && p->size == n->size &&
	       p->inode == n->inode &&
	       p->mtime.tv_sec == n->mtime.tv_sec &&
	       p->mtime.tv_nsec == n->mtime.tv_nsec &&
	       p->ctime.tv_sec == n->ctime.tv_sec &&
	       p->ctime.tv_nsec == n->ctime.tv_nsec;
}

/* Reads a regular file's content into extents. A negative return that is
 * not -ENOMEM means "warn and skip this file". */
static int file_read(struct backup *b, int dirfd, const char *name,
		     uint64_t inode, struct store_node *n)
{
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOATIME);
	if (fd < 0 && errno == EPERM)
		fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	int r = 0;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto out;
	}
	if (b->draft_reads) {
		r = store_file_lock_shared_wait(fd, DRAFT_LOCK_WAIT_MS);
		if (r == 0 && fstat(fd, &st) < 0)
			r = -errno;
		if (r < 0)
			goto out;
	}
	if (!S_ISREG(st.st_mode) || st.st_ino != inode) {
		r = -ENOENT; /* replaced between readdir and open */
		goto out;
	}
	r = store_node_from_stat(n, name, &st, &b->users, &b->groups);
	if (r == 0)
		r = store_node_xattrs_read(fd, NULL, n);
	if (r < 0)
		goto out;

	uint64_t size = (uint64_t)st.st_size, eof_at = UINT64_MAX;
	uint32_t cap = 0;
	if (size < b->cp->min_size) {
		/* Small file: one chunk, read straight into the buffer the
		 * writer will own. */
		uint8_t *data = malloc(size ? size : 1);
		size_t got;
		if (!data) {
			r = -ENOMEM;
			goto out;
		}
		r = read_full(fd, data, (size_t)size, 0, &got);
		if (r < 0) {
			free(data);
			goto out;
		}
		b->sum.bytes_read += got;
		if (got > 0) {
			sd_id id;
			r = chunk_store(b, data, got, data, &id);
			if (r == 0)
				r = store_node_extent_add(n, &cap, 0, (uint32_t)got, &id);
		} else {
			free(data);
		}
		if (got < size)
			eof_at = got;
	} else if ((uint64_t)st.st_blocks * 512 < size) {
		/* Maybe sparse: store only the data regions. */
		off_t pos = 0;
		while (r == 0 && (uint64_t)pos < size && eof_at == UINT64_MAX) {
			off_t ds = lseek(fd, pos, SEEK_DATA);
			if (ds < 0)
				break; /* ENXIO: only a hole is left */
			off_t de = lseek(fd, ds, SEEK_HOLE);
			if (de < 0) {
				r = -errno;
				break;
			}
			r = region_store(b, fd, n, &cap, (uint64_t)ds,
					 (uint64_t)de, &eof_at);
			pos = de;
		}
	} else {
		r = region_store(b, fd, n, &cap, 0, size, &eof_at);
	}
	if (r == 0 && eof_at != UINT64_MAX)
		n->size = eof_at; /* shrank while read: keep what was there */
	if (r == 0 && b->draft_reads) {
		struct stat after;
		if (fstat(fd, &after) < 0)
			r = -errno;
		else if (after.st_size != st.st_size ||
			 after.st_ctim.tv_sec != st.st_ctim.tv_sec ||
			 after.st_ctim.tv_nsec != st.st_ctim.tv_nsec)
			r = -EAGAIN;
	}
out:
	close(fd);
	return r;
}

/* A draft, whole or not at all (see the design comment). */
static int draft_read(struct backup *b, int dirfd, const char *name,
		      uint64_t inode, const struct store_node *pnode,
		      struct store_node *n, bool *skip)
{
	int r = -EAGAIN;
	for (int attempt = 0; attempt < 3 && r == -EAGAIN; attempt++) {
		node_reset(n);
		r = file_read(b, dirfd, name, inode, n);
	}
	if (r != -EAGAIN && r != -ETIMEDOUT)
		return r;
	node_reset(n);
	if (pnode && pnode->type == STORE_NODE_FILE) {
		sd_log(SD_LOG_INFO, "%s: being written, this point keeps the "
		       "previous content", b->path);
		return store_node_copy(n, pnode);
	}
	sd_log(SD_LOG_INFO, "%s: being written, left out of this point",
	       b->path);
	*skip = true;
	return 0;
}

static int dir_walk(struct backup *b, int dirfd, const struct store_tree *parent,
		    sd_id *out);

/* Builds the node for dirfd/name. *skip is set when the entry is to be left
 * out (excluded, vanished, unreadable: the last two warned). */
static int entry_build(struct backup *b, int dirfd, const char *name,
		       const struct store_node *pnode, struct store_node *n,
		       bool *skip)
{
	struct stat st;
	*skip = false;
	memset(n, 0, sizeof(*n));
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		backup_warn(b, b->path, -errno);
		*skip = true;
		return 0;
	}
	if (S_ISDIR(st.st_mode) && st.st_dev == b->repo_dev &&
	    st.st_ino == b->repo_ino) {
		*skip = true; /* never back up the repository into itself */
		return 0;
	}
	int r = store_node_from_stat(n, name, &st, &b->users, &b->groups);
	if (r < 0)
		return r;

	switch (n->type) {
	case STORE_NODE_FILE: {
		b->sum.files++;
		b->sum.bytes += n->size;
		bool unchanged = !b->o->force_read && same_file(n, pnode);
		if (unchanged)
			b->sum.files_unchanged++;
		else if (pnode)
			b->sum.files_changed++;
		else
			b->sum.files_new++;
		/* A second name of an inode read in this backup shares its
		 * content; its own xattrs are the inode's, read again. */
		const struct store_hardlink *h = n->nlink > 1 ?
			store_hardlinks_find(&b->links, n->dev, n->inode) : NULL;
		if (h) {
			r = store_node_extents_copy(n, h->extents, h->nextents);
			if (r == 0)
				r = store_node_xattrs_read(-1, b->path, n);
			return r;
		}
		if (unchanged) {
			r = store_node_extents_copy(n, pnode->extents,
						    pnode->nextents);
			if (r == 0)
				r = store_node_xattrs_copy(n, pnode);
		} else {
			uint64_t inode = n->inode;
			node_reset(n);
			if (b->draft_reads) {
				r = draft_read(b, dirfd, name, inode, pnode, n,
					       skip);
				if (r == 0 && *skip)
					return 0;
			} else {
				r = file_read(b, dirfd, name, inode, n);
			}
			if (r < 0 && r != -ENOMEM) {
				backup_warn(b, b->path, r);
				*skip = true;
				return 0;
			}
		}
		if (r == 0 && n->nlink > 1)
			r = store_hardlinks_add(&b->links, n);
		return r;
	}
	case STORE_NODE_DIR: {
		/* O_NOATIME: listing must not change what the next backup
		 * sees (a new atime would make a new tree blob). */
		int flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
		int fd = openat(dirfd, name, flags | O_NOATIME);
		if (fd < 0 && errno == EPERM)
			fd = openat(dirfd, name, flags);
		if (fd < 0) {
			backup_warn(b, b->path, -errno);
			*skip = true;
			return 0;
		}
		struct store_tree *ptree = NULL;
		if (pnode && pnode->type == STORE_NODE_DIR &&
		    store_tree_load(b->repo, &pnode->subtree, &ptree) < 0)
			ptree = NULL; /* a damaged parent only costs a re-read */
		r = store_node_xattrs_read(fd, NULL, n);
		if (r == 0)
			r = dir_walk(b, fd, ptree, &n->subtree);
		store_tree_free(ptree);
		close(fd);
		b->sum.dirs++;
		return r;
	}
	case STORE_NODE_SYMLINK: {
		b->sum.others++;
		size_t cap = n->size + 1;
		n->target = malloc(cap);
		if (!n->target)
			return -ENOMEM;
		ssize_t len = readlinkat(dirfd, name, n->target, cap);
		if (len < 0 || (size_t)len >= cap) {
			backup_warn(b, b->path, len < 0 ? -errno : -EAGAIN);
			*skip = true;
			return 0;
		}
		n->target[len] = '\0';
		n->size = (uint64_t)len;
		return store_node_xattrs_read(-1, b->path, n);
	}
	default:
		b->sum.others++;
		return store_node_xattrs_read(-1, b->path, n);
	}
}

static int tree_store(struct backup *b, struct store_tree *t, sd_id *out)
{
	uint8_t *buf;
	size_t len;
	int r = store_tree_encode(t, &buf, &len);
	if (r < 0)
		return r;
	sd_hash(buf, len, out);
	if (store_writer_has(b->w, out)) {
		free(buf);
		return 0;
	}
	return store_writer_put(b->w, out, STORE_BLOB_TREE, buf, len);
}

static int dir_walk(struct backup *b, int dirfd, const struct store_tree *parent,
		    sd_id *out)
{
	char **names = NULL;
	size_t count = 0;
	struct store_tree t = { 0 };
	int r = store_dir_names_sorted(dirfd, &names, &count);
	if (r == -ENOMEM)
		goto out;
	if (r < 0) {
		/* Keep what could be listed; the rest is warned about. */
		backup_warn(b, b->path, r);
		r = 0;
	}
	t.nodes = calloc(count ? count : 1, sizeof(*t.nodes));
	if (!t.nodes) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < count; i++) {
		size_t old;
		r = path_push(b, names[i], &old);
		if (r < 0)
			goto out;
		bool skip = excluded(b, names[i]);
		if (!skip) {
			const struct store_node *p =
				parent ? store_tree_find(parent, names[i]) : NULL;
			r = entry_build(b, dirfd, names[i], p, &t.nodes[t.n],
					&skip);
			if (skip || r < 0)
				node_reset(&t.nodes[t.n]);
			else
				t.n++;
		}
		backup_progress(b, false);
		path_pop(b, old);
		if (r < 0)
			goto out;
	}
	r = tree_store(b, &t, out);
out:
	for (size_t i = 0; i < t.n; i++)
		store_node_clear(&t.nodes[i]);
	free(t.nodes);
	for (size_t i = 0; i < count; i++)
		free(names[i]);
	free(names);
	return r;
}

/* The root node of one source from the newest snapshot that has it. */
static int parent_find(struct backup *b, const struct store_snapshot *list,
		       size_t n, const struct store_snapshot_source *src,
		       struct store_tree **root, sd_id *parent_id)
{
	for (size_t i = n; i-- > 0;) {
		const struct store_snapshot *s = &list[i];
		for (size_t k = 0; k < s->nsources; k++) {
			if (strcmp(s->sources[k].name, src->name) ||
			    strcmp(s->sources[k].path, src->path))
				continue;
			/* A parent that cannot be read only costs a full read. */
			if (store_tree_load(b->repo, &s->tree, root) < 0)
				return 0;
			if (sd_id_is_zero(parent_id) || s->time_ns > b->parent_time) {
				*parent_id = s->id;
				b->parent_time = s->time_ns;
			}
			return 0;
		}
	}
	return 0;
}

static int sources_check(const struct store_backup_options *o)
{
	if (o->nsources == 0)
		return SD_EUSAGE;
	for (size_t i = 0; i < o->nsources; i++) {
		const char *nm = o->sources[i].name;
		if (!nm[0] || strchr(nm, '/') || !strcmp(nm, ".") ||
		    !strcmp(nm, "..") || o->sources[i].path[0] != '/')
			return SD_EUSAGE;
		for (size_t k = 0; k < i; k++)
			if (!strcmp(nm, o->sources[k].name))
				return SD_EUSAGE;
	}
	return 0;
}

static int snapshot_fill(struct backup *b, struct store_snapshot *s,
			 const sd_id *root, const sd_id *parent)
{
	const struct store_backup_options *o = b->o;
	char host[256] = "";
	gethostname(host, sizeof(host) - 1);
	char *user = store_name_cache_get(&b->users, geteuid(), false);
	s->hostname = strdup(host);
	s->username = user ? user : strdup("");
	s->tree = *root;
	s->parent = *parent;
	s->partial = b->sum.warnings > 0;
	s->summary = b->sum;
	if (o->time_ns) {
		s->time_ns = o->time_ns;
	} else {
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		s->time_ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
	}
	s->tags = calloc(o->ntags ? o->ntags : 1, sizeof(char *));
	s->sources = calloc(o->nsources, sizeof(*s->sources));
	if (!s->hostname || !s->username || !s->tags || !s->sources)
		return -ENOMEM;
	for (; s->ntags < o->ntags; s->ntags++)
		if (!(s->tags[s->ntags] = strdup(o->tags[s->ntags])))
			return -ENOMEM;
	for (; s->nsources < o->nsources; s->nsources++) {
		struct store_snapshot_source *d = &s->sources[s->nsources];
		d->name = strdup(o->sources[s->nsources].name);
		d->path = strdup(o->sources[s->nsources].path);
		d->files = b->src_files[s->nsources];
		d->bytes = b->src_bytes[s->nsources];
		if (!d->name || !d->path)
			return -ENOMEM;
	}
	return 0;
}

static int threads_for_backup(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : n > 8 ? 8 : (int)n;
}

int store_backup_run(struct store_repo *r, const struct store_backup_options *o,
		     struct store_snapshot *out)
{
	struct backup b = { .repo = r, .o = o, .cp = &r->chunker };
	struct store_snapshot *list = NULL;
	size_t nlist = 0;
	struct store_tree root = { 0 };
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	memset(out, 0, sizeof(*out));
	if (r->lock_fd < 0)
		return SD_EUSAGE;
	int rc = sources_check(o);
	if (rc < 0)
		return rc;
	struct stat rst, dst = { 0 };
	if (stat(r->path, &rst) == 0) {
		b.repo_dev = rst.st_dev;
		b.repo_ino = rst.st_ino;
	}
	if (stat(r->drafts_dir, &dst) < 0)
		dst.st_ino = 0;
	b.buf_cap = (size_t)r->chunker.max_size * 4;
	b.buf = malloc(b.buf_cap);
	root.nodes = calloc(o->nsources, sizeof(*root.nodes));
	b.src_files = calloc(o->nsources, sizeof(uint64_t));
	b.src_bytes = calloc(o->nsources, sizeof(uint64_t));
	if (!b.buf || !root.nodes || !b.src_files || !b.src_bytes) {
		rc = -ENOMEM;
		goto out;
	}
	rc = store_snapshot_list(r, &list, &nlist);
	if (rc < 0)
		goto out;
	rc = store_writer_new(r, threads_for_backup(),
			      r->config ? r->config->compression_level : 3,
			      o->dry_run, &b.w);
	if (rc < 0)
		goto out;

	sd_id parent_id = { { 0 } };
	for (size_t i = 0; i < o->nsources; i++) {
		const struct store_snapshot_source *src = &o->sources[i];
		struct store_tree *proot = NULL;
		rc = parent_find(&b, list, nlist, src, &proot, &parent_id);
		if (rc < 0)
			goto out;
		char *slash = strrchr(src->path, '/');
		char *dir = strndup(src->path, slash == src->path ? 1 :
					       (size_t)(slash - src->path));
		int dfd = dir ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
		int err = dir ? -errno : -ENOMEM;
		free(dir);
		if (dfd < 0) {
			store_tree_free(proot);
			rc = err;
			goto out;
		}
		struct stat sst;
		b.draft_reads = dst.st_ino && stat(src->path, &sst) == 0 &&
				sst.st_dev == dst.st_dev &&
				sst.st_ino == dst.st_ino;
		/* The source's own node is built under its source name. */
		b.path_len = 0;
		size_t old;
		rc = path_push(&b, src->path, &old);
		const char *base = slash[1] ? slash + 1 : ".";
		bool skip = false;
		struct store_node *n = &root.nodes[root.n];
		uint64_t files0 = b.sum.files, bytes0 = b.sum.bytes;
		if (rc == 0)
			rc = entry_build(&b, dfd, base,
					 proot ? store_tree_find(proot, src->name) : NULL,
					 n, &skip);
		b.src_files[i] = b.sum.files - files0;
		b.src_bytes[i] = b.sum.bytes - bytes0;
		close(dfd);
		store_tree_free(proot);
		if (rc < 0)
			goto out;
		if (skip) {
			rc = -ENOENT;
			goto out;
		}
		free(n->name);
		n->name = strdup(src->name);
		if (!n->name) {
			rc = -ENOMEM;
			goto out;
		}
		root.n++;
	}
	store_tree_sort(&root);
	sd_id root_id;
	rc = tree_store(&b, &root, &root_id);
	if (rc == 0)
		rc = store_writer_flush(b.w);
	if (rc < 0)
		goto out;
	backup_progress(&b, true);

	struct store_writer_stats ws;
	store_writer_stats(b.w, &ws);
	b.sum.blobs_added = ws.blobs_added;
	b.sum.bytes_added = ws.bytes_added;
	b.sum.stored_added = ws.stored_added;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	b.sum.duration = (double)(t1.tv_sec - t0.tv_sec) +
			 (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	rc = snapshot_fill(&b, out, &root_id, &parent_id);
	if (rc == 0 && !o->dry_run)
		rc = store_snapshot_save(r, out);
	if (rc == 0 && out->partial)
		rc = SD_EPARTIAL;
out:
	if (rc < 0 && rc != SD_EPARTIAL)
		store_snapshot_clear(out);
	store_writer_free(b.w);
	for (size_t i = 0; i < root.n; i++)
		store_node_clear(&root.nodes[i]);
	free(root.nodes);
	store_snapshot_list_free(list, nlist);
	store_hardlinks_free(&b.links);
	store_name_cache_free(&b.users);
	store_name_cache_free(&b.groups);
	free(b.src_files);
	free(b.src_bytes);
	free(b.buf);
	free(b.path);
	return rc;
}
