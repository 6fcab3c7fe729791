/*
 * restore.c — writing a backup point, or parts of it, back to a directory.
 *
 * Two phases. The first (restore_select.c) resolves the includes and, when
 * the target already exists and overwrite is off, refuses (SD_EEXIST) before
 * anything is written; the trees it loads are cached here for the second
 * phase, so no tree is loaded twice.
 *
 * The second phase is a pipeline. The walking thread (the caller) loads
 * trees depth first, creates directories, makes symlinks, fifos, device
 * nodes and sockets itself, and hands regular files to a few workers that
 * fetch and verify their blobs, pwrite each extent at its offset (holes stay
 * holes; ftruncate gives the size) and set the metadata. Workers address a
 * file by (directory fd, name): an open directory and the tree its nodes
 * live in are shared by reference count between the walker and the queued
 * files, so a leaf tree is freed when its last file is written.
 *
 * What waits for the workers: hard links (later members of a (dev, inode)
 * group are linked to the first one restored) and directory metadata,
 * applied in reverse walk order so that every directory's times are set
 * after all of its children are written, deepest first.
 *
 * Metadata order for every item: content, chown (which clears setuid and
 * file capabilities), xattrs, chmod, times.
 *
 * Failures: a blob that cannot be read or verified fails its file (warned
 * with its path, partial file removed, counted) and the rest goes on;
 * errors that would fail every later file too (no space, read-only target,
 * no memory) stop the restore.
 */
#include <errno.h>
#include <fcntl.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "restore_i.h"

#define PART_EXTENTS 8 /* larger files are written by several workers */
#define PROGRESS_NS 100000000LL

/* Trees of the first phase and of includes, kept for the second (tsearch
 * on id); hard-link groups (tsearch on dev, inode). */
struct cached_tree {
	sd_id id;
	struct store_tree *tree;
};

static int cached_tree_cmp(const void *a, const void *b)
{
	return sd_id_cmp(&((const struct cached_tree *)a)->id,
			 &((const struct cached_tree *)b)->id);
}

static void cached_tree_free(void *p)
{
	struct cached_tree *c = p;
	store_tree_free(c->tree);
	free(c);
}

/* One (dev, inode) of the selection with nlink > 1. */
struct hl_group {
	uint64_t dev, inode;
	char *first;		/* target path of the member restored first */
	atomic_int err;		/* why the first member failed, else 0 */
};

static int hl_group_cmp(const void *a, const void *b)
{
	const struct hl_group *x = a, *y = b;
	if (x->dev != y->dev)
		return x->dev < y->dev ? -1 : 1;
	return x->inode < y->inode ? -1 : x->inode > y->inode;
}

static void hl_group_free(void *p)
{
	struct hl_group *g = p;
	free(g->first);
	free(g);
}

/* ---------------------------------------------------------------- state */

/* A file of many extents is written in parts by several workers at once;
 * the part that finishes last completes the file. */
struct rfile {
	struct rdir *dir;	/* a reference, dropped when complete */
	const struct store_node *node;
	struct hl_group *group;
	int fd;
	atomic_uint parts;	/* parts not yet written */
	atomic_int err;		/* first failure of a part */
};

struct hl_link {
	struct hl_group *group;
	char *path;
	uint8_t type;
};

/* A directory whose metadata is set at the end: a copy of its node. */
struct dir_meta {
	char *path;
	struct store_node node;	/* only metadata fields and own xattrs */
};

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void report_progress(struct restore *rs, bool force)
{
	const struct store_restore_options *o = rs->o;
	if (!o->progress)
		return;
	int64_t now = now_ns();
	if (!force && now < atomic_load(&rs->next_progress))
		return;
	if (force)
		pthread_mutex_lock(&rs->report_lock);
	else if (pthread_mutex_trylock(&rs->report_lock) != 0)
		return;
	atomic_store(&rs->next_progress, now + PROGRESS_NS);
	o->progress(atomic_load(&rs->files) + atomic_load(&rs->others),
		    atomic_load(&rs->written), o->ctx);
	pthread_mutex_unlock(&rs->report_lock);
}

void store_restore_report_warn(struct restore *rs, const char *path, int err)
{
	if (!rs->o->warn)
		return;
	pthread_mutex_lock(&rs->report_lock);
	rs->o->warn(path, err, rs->o->ctx);
	pthread_mutex_unlock(&rs->report_lock);
}

static bool err_is_fatal(int err)
{
	return err == -ENOSPC || err == -EDQUOT || err == -EROFS ||
	       err == -ENOMEM || err == -EMFILE || err == -ENFILE ||
	       err == -EIO;
}

/* One item could not be restored: warn naming it, count it, and stop the
 * whole restore when the cause would fail everything after it too. */
void store_restore_item_fail(struct restore *rs, const char *dir,
			     const char *name, int err)
{
	char *p = name ? store_path_join(dir, name) : NULL;
	store_restore_report_warn(rs, p ? p : dir, err);
	free(p);
	atomic_fetch_add(&rs->failed, 1);
	int zero = 0;
	if (err_is_fatal(err))
		atomic_compare_exchange_strong(&rs->fatal, &zero, err);
}

void store_restore_rdir_put(struct rdir *d)
{
	if (!d || atomic_fetch_sub(&d->refs, 1) != 1)
		return;
	close(d->fd);
	if (d->tree_owned)
		store_tree_free(d->tree);
	free(d->path);
	free(d);
}

struct rdir *store_restore_rdir_new(int fd, char *path, struct store_tree *tree,
				    bool owned)
{
	struct rdir *d = malloc(sizeof(*d));
	if (!d)
		return NULL;
	d->fd = fd;
	d->path = path;
	d->tree = tree;
	d->tree_owned = owned;
	atomic_init(&d->refs, 1);
	return d;
}

/* ---------------------------------------------------------------- metadata */

/* Sets owner, xattrs, mode and times. fd >= 0 names the item; otherwise
 * (dfd, name) does, with dpath/name its path for the xattr calls. A refused
 * xattr is a warning; anything else fails the item. */
static int meta_apply(struct restore *rs, int fd, int dfd, const char *dpath,
		      const char *name, const struct store_node *n)
{
	int r = fd >= 0 ? fchown(fd, n->uid, n->gid)
			: fchownat(dfd, name, n->uid, n->gid,
				   AT_SYMLINK_NOFOLLOW);
	/* Without privileges the files become the restorer's, as cp -a does. */
	if (r < 0 && errno != EPERM && errno != EINVAL)
		return -errno;
	char *path = NULL;
	for (uint32_t i = 0; i < n->nxattrs; i++) {
		const struct store_xattr *x = &n->xattrs[i];
		if (fd < 0 && !path) {
			path = dpath ? store_path_join(dpath, name) : strdup(name);
			if (!path)
				return -ENOMEM;
		}
		r = fd >= 0 ? fsetxattr(fd, x->name, x->value, x->len, 0)
			    : lsetxattr(path, x->name, x->value, x->len, 0);
		if (r < 0) {
			int e = -errno;
			char *msg = NULL;
			if (asprintf(&msg, "%s%s%s (xattr %s)", path ? "" : dpath,
				     path ? "" : "/", path ? path : name,
				     x->name) < 0)
				msg = NULL;
			store_restore_report_warn(rs, msg ? msg : name, e);
			free(msg);
		}
	}
	free(path);
	mode_t mode = n->mode & 07777;
	if (fd >= 0)
		r = fchmod(fd, mode);
	else if (n->type != STORE_NODE_SYMLINK)
		r = fchmodat(dfd, name, mode, 0);
	if (r < 0)
		return -errno;
	struct timespec ts[2] = { n->atime, n->mtime };
	r = fd >= 0 ? futimens(fd, ts)
		    : utimensat(dfd, name, ts, AT_SYMLINK_NOFOLLOW);
	return r < 0 ? -errno : 0;
}

/* With overwrite: the old item goes first, so a hard link to it elsewhere
 * is not written through. A directory in the way is not removed. */
static int replace_prepare(struct restore *rs, int dfd, const char *name)
{
	if (!rs->o->overwrite)
		return 0;
	if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT)
		return errno == EISDIR ? -EISDIR : -errno;
	return 0;
}

/* ---------------------------------------------------------------- files */

static int pwrite_full(int fd, const uint8_t *buf, size_t len, uint64_t off)
{
	while (len > 0) {
		ssize_t w = pwrite(fd, buf, len, (off_t)off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		buf += w;
		len -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

static int extents_write(struct restore *rs, int fd,
			 const struct store_node *n, uint32_t first,
			 uint32_t count)
{
	for (uint32_t i = first; i < first + count; i++) {
		const struct store_extent *e = &n->extents[i];
		uint8_t *buf;
		size_t len;
		int r = store_blob_get(rs->repo, &e->id, &buf, &len);
		if (r < 0)
			return r;
		r = len == e->length ? pwrite_full(fd, buf, len, e->offset)
				     : SD_ECORRUPT;
		free(buf);
		if (r < 0)
			return r;
		atomic_fetch_add(&rs->written, len);
		report_progress(rs, false);
	}
	return 0;
}

static int file_open(struct restore *rs, struct rdir *d,
		     const struct store_node *n)
{
	int r = replace_prepare(rs, d->fd, n->name);
	if (r < 0)
		return r;
	int fd = openat(d->fd, n->name,
			O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			0600);
	return fd < 0 ? -errno : fd;
}

/* Size (the tail may be a hole), metadata, close; or, after r < 0, the
 * partial file goes. -ECANCELED: the restore stopped, already warned. */
static void file_finish(struct restore *rs, struct rdir *d,
			const struct store_node *n, struct hl_group *g,
			int fd, int r)
{
	const struct store_extent *last =
		n->nextents ? &n->extents[n->nextents - 1] : NULL;
	uint64_t end = last ? last->offset + last->length : 0;
	if (r == 0 && end != n->size && ftruncate(fd, (off_t)n->size) < 0)
		r = -errno;
	if (r == 0)
		r = meta_apply(rs, fd, -1, d->path, n->name, n);
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r < 0 && unlinkat(d->fd, n->name, 0) < 0)
		sd_log(SD_LOG_WARN, "%s/%s: partial file not removed", d->path,
		       n->name);
	if (r < 0 && g)
		atomic_store(&g->err, r);
	if (r == -ECANCELED)
		return;
	if (r < 0) {
		store_restore_item_fail(rs, d->path, n->name, r);
		return;
	}
	atomic_fetch_add(&rs->files, 1);
	atomic_fetch_add(&rs->bytes, n->size);
	report_progress(rs, false);
}

static void job_run(struct restore *rs, const struct file_job *j)
{
	int r = atomic_load(&rs->fatal) ? -ECANCELED : 0;
	struct rfile *f = j->part_of;
	if (!f) {
		int fd = r == 0 ? file_open(rs, j->dir, j->node) : r;
		if (fd >= 0)
			file_finish(rs, j->dir, j->node, j->group, fd,
				    extents_write(rs, fd, j->node, 0,
						  j->node->nextents));
		else if (fd != -ECANCELED)
			store_restore_item_fail(rs, j->dir->path, j->node->name,
						fd);
		if (fd < 0 && j->group)
			atomic_store(&j->group->err, fd);
		store_restore_rdir_put(j->dir);
		return;
	}
	if (r == 0 && atomic_load(&f->err) == 0)
		r = extents_write(rs, f->fd, f->node, j->first, j->count);
	int zero = 0;
	if (r < 0)
		atomic_compare_exchange_strong(&f->err, &zero, r);
	if (atomic_fetch_sub(&f->parts, 1) != 1)
		return;
	file_finish(rs, f->dir, f->node, f->group, f->fd, atomic_load(&f->err));
	store_restore_rdir_put(f->dir);
	free(f);
}

static void *restore_worker(void *arg)
{
	struct restore *rs = arg;
	for (;;) {
		pthread_mutex_lock(&rs->lock);
		while (rs->count == 0 && !rs->closing) {
			rs->idle++;
			pthread_cond_wait(&rs->not_empty, &rs->lock);
			rs->idle--;
		}
		if (rs->count == 0) {
			pthread_mutex_unlock(&rs->lock);
			return NULL;
		}
		struct file_job j = rs->q[rs->head];
		rs->head = (rs->head + 1) % QUEUE_CAP;
		rs->count--;
		if (rs->walker_waits && rs->count <= QUEUE_CAP / 2)
			pthread_cond_signal(&rs->not_full);
		pthread_mutex_unlock(&rs->lock);
		job_run(rs, &j);
	}
}

static void job_queue(struct restore *rs, const struct file_job *j)
{
	pthread_mutex_lock(&rs->lock);
	while (rs->count == QUEUE_CAP) {
		rs->walker_waits = true;
		pthread_cond_wait(&rs->not_full, &rs->lock);
		rs->walker_waits = false;
	}
	rs->q[(rs->head + rs->count) % QUEUE_CAP] = *j;
	rs->count++;
	if (rs->idle > 0)
		pthread_cond_signal(&rs->not_empty);
	pthread_mutex_unlock(&rs->lock);
}

/* Queues a file whole, or, when it has many extents, opened here and cut
 * into parts. */
static int file_queue(struct restore *rs, struct rdir *d,
		      const struct store_node *n, struct hl_group *g)
{
	atomic_fetch_add(&d->refs, 1);
	if (n->nextents <= PART_EXTENTS) {
		job_queue(rs, &(struct file_job){ d, n, g, NULL, 0, 0 });
		return 0;
	}
	struct rfile *f = malloc(sizeof(*f));
	int fd = f ? file_open(rs, d, n) : -ENOMEM;
	if (fd < 0) {
		free(f);
		if (g)
			atomic_store(&g->err, fd);
		store_restore_item_fail(rs, d->path, n->name, fd);
		store_restore_rdir_put(d);
		return fd == -ENOMEM ? fd : 0;
	}
	uint32_t parts = (n->nextents + PART_EXTENTS - 1) / PART_EXTENTS;
	*f = (struct rfile){ .dir = d, .node = n, .group = g, .fd = fd };
	atomic_init(&f->parts, parts);
	atomic_init(&f->err, 0);
	for (uint32_t i = 0; i < parts; i++) {
		uint32_t first = i * PART_EXTENTS;
		uint32_t count = n->nextents - first < PART_EXTENTS
					 ? n->nextents - first
					 : PART_EXTENTS;
		job_queue(rs, &(struct file_job){ NULL, NULL, NULL, f, first,
						  count });
	}
	return 0;
}

/* ---------------------------------------------------------------- walker */

/* A tree from the cache (borrowed, *owned false) or freshly loaded; with
 * cache, a loaded tree joins the cache. */
int store_restore_tree_get(struct restore *rs, const sd_id *id, bool cache,
			   struct store_tree **out, bool *owned)
{
	struct cached_tree key = { .id = *id };
	void **found = tfind(&key, &rs->trees, cached_tree_cmp);
	*owned = false;
	if (found) {
		*out = (*(struct cached_tree **)found)->tree;
		return 0;
	}
	int r = store_tree_load(rs->repo, id, out);
	if (r < 0 || !cache) {
		*owned = r == 0;
		return r;
	}
	struct cached_tree *c = malloc(sizeof(*c));
	if (c) {
		*c = (struct cached_tree){ *id, *out };
		if (tsearch(c, &rs->trees, cached_tree_cmp))
			return 0;
		free(c);
	}
	store_tree_free(*out);
	return -ENOMEM;
}

int store_restore_meta_record(struct restore *rs, const char *path,
			      const struct store_node *n)
{
	if (rs->nmetas == rs->metas_cap) {
		size_t cap = rs->metas_cap ? rs->metas_cap * 2 : 64;
		struct dir_meta *m = realloc(rs->metas, cap * sizeof(*m));
		if (!m)
			return -ENOMEM;
		rs->metas = m;
		rs->metas_cap = cap;
	}
	struct dir_meta *m = &rs->metas[rs->nmetas];
	memset(m, 0, sizeof(*m));
	m->node.type = n->type;
	m->node.mode = n->mode;
	m->node.uid = n->uid;
	m->node.gid = n->gid;
	m->node.atime = n->atime;
	m->node.mtime = n->mtime;
	m->path = strdup(path);
	if (!m->path)
		return -ENOMEM;
	if (n->nxattrs) {
		m->node.xattrs = calloc(n->nxattrs, sizeof(*m->node.xattrs));
		if (!m->node.xattrs)
			goto nomem;
		m->node.nxattrs = n->nxattrs;
		for (uint32_t i = 0; i < n->nxattrs; i++) {
			struct store_xattr *x = &m->node.xattrs[i];
			x->name = strdup(n->xattrs[i].name);
			x->value = malloc(n->xattrs[i].len + 1u);
			x->len = n->xattrs[i].len;
			if (!x->name || !x->value)
				goto nomem;
			memcpy(x->value, n->xattrs[i].value, x->len);
		}
	}
	rs->nmetas++;
	return 0;
nomem:
	free(m->path);
	store_node_clear(&m->node);
	return -ENOMEM;
}

/* Creates (or, merging, opens) directory name in dfd; its fd or -err.
 * A directory merged into is made writable for us: its stored mode comes
 * back at the end. */
int store_restore_dir_make(struct restore *rs, int dfd, const char *name)
{
	bool made = mkdirat(dfd, name, 0700) == 0;
	if (!made && errno != EEXIST)
		return -errno;
	int fd = openat(dfd, name,
			O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && !made && (errno == ENOTDIR || errno == ELOOP)) {
		if (!rs->o->overwrite)
			return -EEXIST; /* appeared after the first phase */
		if (unlinkat(dfd, name, 0) < 0 || mkdirat(dfd, name, 0700) < 0)
			return -errno;
		fd = openat(dfd, name,
			    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd < 0)
		return -errno;
	struct stat st;
	if (!made && fstat(fd, &st) == 0 && (st.st_mode & 0700) != 0700 &&
	    fchmod(fd, (st.st_mode & 07777) | 0700) < 0)
		sd_log(SD_LOG_DEBUG, "%s: cannot make it writable", name);
	return fd;
}

static int add_link(struct restore *rs, struct hl_group *g, const char *path,
		    uint8_t type)
{
	if (rs->nlinks == rs->links_cap) {
		size_t cap = rs->links_cap ? rs->links_cap * 2 : 16;
		struct hl_link *l = realloc(rs->links, cap * sizeof(*l));
		if (!l)
			return -ENOMEM;
		rs->links = l;
		rs->links_cap = cap;
	}
	char *p = strdup(path);
	if (!p)
		return -ENOMEM;
	rs->links[rs->nlinks++] = (struct hl_link){ g, p, type };
	return 0;
}

static int special_make(int dfd, const struct store_node *n)
{
	int r;
	switch (n->type) {
	case STORE_NODE_SYMLINK:
		r = symlinkat(n->target ? n->target : "", dfd, n->name);
		break;
	case STORE_NODE_FIFO:
		r = mkfifoat(dfd, n->name, 0600);
		break;
	case STORE_NODE_CHARDEV:
		r = mknodat(dfd, n->name, S_IFCHR | 0600, (dev_t)n->rdev);
		break;
	case STORE_NODE_BLOCKDEV:
		r = mknodat(dfd, n->name, S_IFBLK | 0600, (dev_t)n->rdev);
		break;
	case STORE_NODE_SOCKET:
		r = mknodat(dfd, n->name, S_IFSOCK | 0600, 0);
		break;
	default:
		return SD_ECORRUPT;
	}
	return r < 0 ? -errno : 0;
}

static void special_restore(struct restore *rs, struct rdir *d,
			    const struct store_node *n, struct hl_group *g)
{
	int r = replace_prepare(rs, d->fd, n->name);
	if (r == 0)
		r = special_make(d->fd, n);
	if (r == 0)
		r = meta_apply(rs, -1, d->fd, d->path, n->name, n);
	if (r < 0) {
		if (g)
			atomic_store(&g->err, r);
		store_restore_item_fail(rs, d->path, n->name, r);
		return;
	}
	atomic_fetch_add(&rs->others, 1);
}

static int dir_restore(struct restore *rs, struct rdir *parent,
		       const struct store_node *n)
{
	char *path = store_path_join(parent->path, n->name);
	if (!path)
		return -ENOMEM;
	int fd = store_restore_dir_make(rs, parent->fd, n->name);
	if (fd < 0) {
		store_restore_item_fail(rs, path, NULL, fd);
		free(path);
		return 0;
	}
	int r = store_restore_meta_record(rs, path, n);
	if (r < 0) {
		close(fd);
		free(path);
		return r;
	}
	atomic_fetch_add(&rs->dirs, 1);
	struct store_tree *t;
	bool owned;
	r = store_restore_tree_get(rs, &n->subtree, false, &t, &owned);
	if (r < 0) {
		/* A lost tree fails the directory's whole content, loudly. */
		store_restore_item_fail(rs, path, NULL, r);
		close(fd);
		free(path);
		return r == -ENOMEM ? r : 0;
	}
	struct rdir *d = store_restore_rdir_new(fd, path, t, owned);
	if (!d) {
		if (owned)
			store_tree_free(t);
		close(fd);
		free(path);
		return -ENOMEM;
	}
	for (size_t i = 0; i < t->n && r == 0; i++) {
		r = store_restore_node_restore(rs, d, &t->nodes[i]);
		if (atomic_load(&rs->fatal))
			break;
	}
	store_restore_rdir_put(d);
	return r;
}

int store_restore_node_restore(struct restore *rs, struct rdir *d,
			       const struct store_node *n)
{
	if (n->type == STORE_NODE_DIR)
		return dir_restore(rs, d, n);
	struct hl_group *g = NULL;
	if (n->nlink > 1) {
		char *path = store_path_join(d->path, n->name);
		g = path ? calloc(1, sizeof(*g)) : NULL;
		void **slot = NULL;
		if (g) {
			g->dev = n->dev;
			g->inode = n->inode;
			slot = tsearch(g, &rs->groups, hl_group_cmp);
		}
		if (!slot) {
			free(g);
			free(path);
			return -ENOMEM;
		}
		if (*slot != g) { /* a later member: linked at the end */
			free(g);
			int r = add_link(rs, *slot, path, n->type);
			free(path);
			return r;
		}
		g->first = path;
	}
	if (n->type == STORE_NODE_FILE)
		return file_queue(rs, d, n, g);
	special_restore(rs, d, n, g);
	return 0;
}

static void links_make(struct restore *rs)
{
	for (size_t i = 0; i < rs->nlinks && !atomic_load(&rs->fatal); i++) {
		const struct hl_link *l = &rs->links[i];
		int r = atomic_load(&l->group->err);
		if (r == 0 && rs->o->overwrite && unlink(l->path) < 0 &&
		    errno != ENOENT)
			r = -errno;
		if (r == 0 && link(l->group->first, l->path) < 0)
			r = -errno;
		if (r < 0)
			store_restore_item_fail(rs, l->path, NULL, r);
		else if (l->type == STORE_NODE_FILE)
			atomic_fetch_add(&rs->files, 1);
		else
			atomic_fetch_add(&rs->others, 1);
	}
}

static void metas_apply(struct restore *rs)
{
	for (size_t i = rs->nmetas; i-- > 0;) {
		const struct dir_meta *m = &rs->metas[i];
		int r = meta_apply(rs, -1, AT_FDCWD, NULL, m->path, &m->node);
		if (r < 0)
			store_restore_item_fail(rs, m->path, NULL, r);
	}
}

static int workers_start(struct restore *rs)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	int want = cpus < 2 ? 2 : cpus > MAX_WORKERS ? MAX_WORKERS : (int)cpus;
	for (; rs->nthreads < want; rs->nthreads++) {
		int r = pthread_create(&rs->threads[rs->nthreads], NULL,
				       restore_worker, rs);
		if (r != 0)
			return rs->nthreads > 0 ? 0 : -r;
	}
	return 0;
}

static void workers_stop(struct restore *rs)
{
	pthread_mutex_lock(&rs->lock);
	rs->closing = true;
	pthread_cond_broadcast(&rs->not_empty);
	pthread_mutex_unlock(&rs->lock);
	for (int i = 0; i < rs->nthreads; i++)
		pthread_join(rs->threads[i], NULL);
	rs->nthreads = 0;
}

static void restore_cleanup(struct restore *rs)
{
	tdestroy(rs->trees, cached_tree_free);
	tdestroy(rs->groups, hl_group_free);
	for (size_t i = 0; i < rs->nlinks; i++)
		free(rs->links[i].path);
	free(rs->links);
	for (size_t i = 0; i < rs->nmetas; i++) {
		free(rs->metas[i].path);
		store_node_clear(&rs->metas[i].node);
	}
	free(rs->metas);
	pthread_mutex_destroy(&rs->lock);
	pthread_mutex_destroy(&rs->report_lock);
	pthread_cond_destroy(&rs->not_empty);
	pthread_cond_destroy(&rs->not_full);
}

/* Opens the target, creating it when missing; *fresh tells which. */
static int target_open(const char *target, bool *fresh)
{
	struct stat st;
	*fresh = stat(target, &st) < 0 && errno == ENOENT;
	if (*fresh) {
		int r = store_mkdir_p(target, 0700);
		if (r < 0)
			return r;
	}
	int fd = open(target, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static int restore_walk(struct restore *rs, struct rdir *root,
			const struct selection *sel, size_t nsel)
{
	int r = 0;
	if (nsel == 0)
		for (size_t i = 0; i < root->tree->n && r == 0 &&
				   !atomic_load(&rs->fatal); i++)
			r = store_restore_node_restore(rs, root,
						       &root->tree->nodes[i]);
	for (size_t i = 0; i < nsel && r == 0 && !atomic_load(&rs->fatal); i++)
		r = store_restore_selection_restore(rs, root, sel, i);
	return r;
}

int store_restore_run(struct store_repo *r, const struct store_restore_options *o,
		      struct store_restore_result *out)
{
	struct store_restore_result dummy;
	if (!out)
		out = &dummy;
	memset(out, 0, sizeof(*out));
	if (!r || !o || !o->snapshot || !o->target || !o->target[0] ||
	    (o->nincludes && !o->includes))
		return SD_EUSAGE;
	struct restore rs = { .repo = r, .o = o };
	pthread_mutex_init(&rs.lock, NULL);
	pthread_mutex_init(&rs.report_lock, NULL);
	pthread_cond_init(&rs.not_empty, NULL);
	pthread_cond_init(&rs.not_full, NULL);
	struct selection *sel = NULL;
	size_t nsel = 0;
	struct rdir *root = NULL;
	int tfd = -1;

	int rc = store_restore_selections_make(o, &sel, &nsel);
	if (rc < 0)
		goto out;
	struct store_tree *root_tree;
	bool owned;
	rc = store_restore_tree_get(&rs, &o->snapshot->tree, true, &root_tree,
				    &owned);
	if (rc == 0)
		rc = store_restore_selections_resolve(&rs, root_tree, sel,
						      &nsel);
	if (rc < 0)
		goto out;

	bool fresh;
	rc = tfd = target_open(o->target, &fresh);
	if (rc < 0)
		goto out;
	rc = 0;
	if (!fresh && !o->overwrite) {
		rc = store_restore_precheck(&rs, tfd, root_tree, sel, nsel);
		if (rc < 0)
			goto out;
	}

	char *tpath = strdup(o->target);
	root = tpath ? store_restore_rdir_new(tfd, tpath, root_tree, false)
		     : NULL;
	if (!root) {
		free(tpath);
		rc = -ENOMEM;
		goto out;
	}
	tfd = -1;
	rc = workers_start(&rs);
	if (rc < 0)
		goto out;
	rc = restore_walk(&rs, root, sel, nsel);
	if (rc < 0) {
		int zero = 0;
		atomic_compare_exchange_strong(&rs.fatal, &zero, rc);
	}
	workers_stop(&rs);
	links_make(&rs);
	metas_apply(&rs);
	report_progress(&rs, true);
	rc = atomic_load(&rs.fatal);
	if (rc == 0 && atomic_load(&rs.failed))
		rc = SD_EPARTIAL;
out:
	workers_stop(&rs);
	store_restore_rdir_put(root);
	if (tfd >= 0)
		close(tfd);
	out->files = atomic_load(&rs.files);
	out->dirs = atomic_load(&rs.dirs);
	out->others = atomic_load(&rs.others);
	out->bytes = atomic_load(&rs.bytes);
	out->failed = atomic_load(&rs.failed);
	store_restore_selections_free(sel, nsel);
	restore_cleanup(&rs);
	return rc;
}
