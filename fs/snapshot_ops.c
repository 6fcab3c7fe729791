/*
 * snapshot_ops.c — inside a backup point: snapshots/<name>/... as stored.
 *
 * A backup point never changes, so everything here is cached by the kernel
 * for as long as it likes: entries and attributes never time out, listings
 * go to the kernel's readdir cache, open files keep their page cache.
 * Each inode points into the decoded tree of its directory (tree_cache.c),
 * so attributes, xattrs, symlink targets and extent lists are served
 * without copies.
 *
 * Reads: the extents of a file are sorted; a read finds the first one by
 * binary search and replies with an iovec straight into the cached chunks
 * (and a static zero buffer for holes), so the only copy is the kernel's.
 * A read that starts near where the last one on the same file ended
 * is sequential and queues the next chunks on the read-ahead worker. A
 * chunk that fails verification makes the read EIO; the first failure per
 * file is logged with the file's path and the chunk id.
 *
 * Attributes are the stored ones. st_blocks is computed from the extents
 * (4 KiB blocks over each run of contiguous data), so sparse files look
 * sparse to du, and SEEK_DATA/SEEK_HOLE follow the holes, so cp and tar
 * keep them sparse.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fs_i.h"

#define READAHEAD_CHUNKS 2
#define SEQ_WINDOW (2u << 20)
#define ZERO_LEN (1u << 20)

/* Holes are served from here: untouched .bss, backed by the zero page. */
static const uint8_t zeros[ZERO_LEN];

mode_t fs_node_type_mode(const struct store_node *n)
{
	switch (n->type) {
	case STORE_NODE_DIR:
		return S_IFDIR;
	case STORE_NODE_SYMLINK:
		return S_IFLNK;
	case STORE_NODE_FIFO:
		return S_IFIFO;
	case STORE_NODE_CHARDEV:
		return S_IFCHR;
	case STORE_NODE_BLOCKDEV:
		return S_IFBLK;
	case STORE_NODE_SOCKET:
		return S_IFSOCK;
	default:
		return S_IFREG;
	}
}

/* 512-byte blocks of the 4 KiB blocks that hold data. */
static blkcnt_t extent_blocks(const struct store_node *n)
{
	uint64_t blocks = 0, start, end;
	uint32_t i = 0;

	while (i < n->nextents) {
		start = n->extents[i].offset;
		end = start + n->extents[i].length;
		for (i++; i < n->nextents && n->extents[i].offset == end; i++)
			end += n->extents[i].length;
		start &= ~(uint64_t)4095;
		end = (end + 4095) & ~(uint64_t)4095;
		blocks += (end - start) / 512;
	}
	return (blkcnt_t)blocks;
}

static void node_stat(const struct store_node *n, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_mode = fs_node_type_mode(n) | (n->mode & 07777);
	st->st_nlink = n->nlink ? n->nlink : (n->type == STORE_NODE_DIR ? 2 : 1);
	st->st_uid = n->uid;
	st->st_gid = n->gid;
	st->st_rdev = n->rdev;
	st->st_size = (off_t)n->size;
	st->st_atim = n->atime;
	st->st_mtim = n->mtime;
	st->st_ctim = n->ctime;
	st->st_blksize = 4096;
	switch (n->type) {
	case STORE_NODE_FILE:
		st->st_blocks = extent_blocks(n);
		st->st_blksize = 128 * 1024;
		break;
	case STORE_NODE_DIR:
		st->st_blocks = (blkcnt_t)((n->size + 511) / 512);
		break;
	case STORE_NODE_SYMLINK:
		/* Short targets live in the inode on ext4 and most others. */
		st->st_blocks = n->size > 59 ? 8 : 0;
		break;
	default:
		break;
	}
}

static const sd_id *dir_tree_id(const struct fs_inode *in)
{
	if (in->kind == FS_KIND_SNAP_ROOT)
		return &in->snap->meta.tree;
	if (in->kind == FS_KIND_NODE && in->node->type == STORE_NODE_DIR)
		return &in->node->subtree;
	return NULL;
}

/* The decoded children of dir; logs (once per directory) what could not
 * be read. */
static int dir_tree(struct fs *fs, struct fs_inode *dir, struct fs_tree **out)
{
	const sd_id *id = dir_tree_id(dir);
	int r;

	if (!id)
		return -ENOTDIR;
	r = fs_tree_get(fs->trees, id, out);
	if (r < 0 && !atomic_exchange(&dir->warned, true)) {
		char *path = fs_inode_path(dir);
		char hex[SD_ID_HEX_LEN + 1];

		sd_id_hex(id, hex);
		sd_log(SD_LOG_ERR, "mount: %s: cannot read directory tree %s: %s",
		       path ? path : "?", hex, sd_strerror(r));
		free(path);
	}
	return r;
}

static int snap_stat(struct fs *fs, struct fs_inode *in, struct stat *st,
		     double *timeout)
{
	struct fs_tree *t;
	size_t i;
	int64_t ns;

	*timeout = FS_TIMEOUT_FOREVER;
	if (in->kind == FS_KIND_NODE) {
		node_stat(in->node, st);
		st->st_ino = in->ino;
		return 0;
	}
	/* The root of a backup point: a directory made up by the mount,
	 * dated at the point's time, one entry per source. */
	ns = in->snap->meta.time_ns;
	fs_stat_fixed(fs, in->ino, S_IFDIR | 0555, 2, 0, st);
	st->st_mtim.tv_sec = ns / 1000000000LL;
	st->st_mtim.tv_nsec = ns % 1000000000LL;
	st->st_atim = st->st_mtim;
	st->st_ctim = st->st_mtim;
	if (fs_tree_get(fs->trees, &in->snap->meta.tree, &t) == 0) {
		for (i = 0; i < t->t->n; i++)
			st->st_nlink += t->t->nodes[i].type == STORE_NODE_DIR;
		fs_tree_put(fs->trees, t);
	}
	return 0;
}

int fs_snap_root_lookup(struct fs *fs, struct fs_inode *parent,
			struct fs_snap *s, struct fs_inode **out)
{
	struct fs_inode_init init = {
		.key = s->key,
		.area = &fs_snap_area,
		.kind = FS_KIND_SNAP_ROOT,
		.parent = parent,
		.snap = s,
	};

	return fs_inode_lookup(fs, &init, out);
}

static void child_key(const struct fs_inode *dir, const struct store_node *n,
		      uint8_t key[FS_KEY_LEN])
{
	if (n->type != STORE_NODE_DIR && n->nlink > 1 &&
	    (n->dev != 0 || n->inode != 0))
		fs_key_hardlink(&dir->snap->id, n->dev, n->inode, key);
	else
		fs_key_child(dir->key, n->name, key);
}

static int child_lookup(struct fs *fs, struct fs_inode *dir,
			struct fs_tree *t, const struct store_node *n,
			struct fs_inode **out)
{
	uint8_t key[FS_KEY_LEN];
	struct fs_inode_init init = {
		.key = key,
		.area = &fs_snap_area,
		.kind = FS_KIND_NODE,
		.parent = dir,
		.snap = dir->snap,
		.tree = t,
		.node = n,
	};

	child_key(dir, n, key);
	return fs_inode_lookup(fs, &init, out);
}

static void snap_lookup(fuse_req_t req, struct fs_inode *parent,
			const char *name)
{
	struct fs *fs = fuse_req_userdata(req);
	const struct store_node *n;
	struct fs_inode *in;
	struct fs_tree *t;
	int r;

	r = dir_tree(fs, parent, &t);
	if (r < 0) {
		fs_reply_err(req, r);
		return;
	}
	n = store_tree_find(t->t, name);
	if (!n) {
		fs_tree_put(fs->trees, t);
		fuse_reply_err(req, ENOENT);
		return;
	}
	r = child_lookup(fs, parent, t, n, &in);
	fs_tree_put(fs->trees, t);
	if (r < 0) {
		fs_reply_err(req, r);
		return;
	}
	fs_reply_entry(req, in, FS_TIMEOUT_FOREVER);
	fs_inode_put(fs, in);
}

static void snap_readlink(fuse_req_t req, struct fs_inode *in)
{
	if (in->kind != FS_KIND_NODE || !in->node->target)
		fuse_reply_err(req, EINVAL);
	else
		fuse_reply_readlink(req, in->node->target);
}

static void snap_opendir(fuse_req_t req, struct fs_inode *in,
			 struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	struct fs_tree *t;
	int r;

	/* Fails here rather than in the middle of a listing. readdir takes
	 * the tree from the cache again: its id fixes its content and order,
	 * and nothing has to outlive a releasedir that may race a readdir. */
	r = dir_tree(fs, in, &t);
	if (r < 0) {
		fs_reply_err(req, r);
		return;
	}
	fs_tree_put(fs->trees, t);
	fi->fh = 0;
	fi->cache_readdir = 1;
	fi->keep_cache = 1;
	fuse_reply_open(req, fi);
}

static void snap_readdir(fuse_req_t req, struct fs_inode *in, size_t size,
			 off_t off, struct fuse_file_info *fi, bool plus)
{
	struct fs *fs = fuse_req_userdata(req);
	fuse_ino_t up = in->parent ? in->parent->ino : FS_INO_SNAPSHOTS;
	struct fs_tree *t;
	struct fs_dirbuf d;
	size_t i;
	int r;

	(void)fi;
	r = dir_tree(fs, in, &t);
	if (r < 0) {
		fs_reply_err(req, r);
		return;
	}
	r = fs_dirbuf_init(&d, req, size, plus);
	if (r < 0) {
		fs_tree_put(fs->trees, t);
		fs_reply_err(req, r);
		return;
	}
	if (off == 0 && !fs_dirbuf_add_dot(&d, ".", in->ino, 1))
		goto send;
	if (off <= 1 && !fs_dirbuf_add_dot(&d, "..", up, 2))
		goto send;
	if (off < 2)
		off = 2;
	for (i = (size_t)off - 2; i < t->t->n; i++) {
		const struct store_node *n = &t->t->nodes[i];
		mode_t type = fs_node_type_mode(n);
		struct fs_inode *child;
		uint8_t key[FS_KEY_LEN];
		bool fit;

		if (plus) {
			r = child_lookup(fs, in, t, n, &child);
			if (r < 0)
				break;
			fit = fs_dirbuf_add(&d, n->name, child, child->ino,
					    type, FS_TIMEOUT_FOREVER,
					    (off_t)i + 3);
			fs_inode_put(fs, child);
		} else {
			child_key(in, n, key);
			fit = fs_dirbuf_add(&d, n->name, NULL,
					    fs_inode_number(fs, key), type, 0,
					    (off_t)i + 3);
		}
		if (!fit)
			break;
	}
send:
	fs_dirbuf_reply(&d, r);
	fs_tree_put(fs->trees, t);
}

static void snap_open(fuse_req_t req, struct fs_inode *in,
		      struct fuse_file_info *fi)
{
	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if (in->kind != FS_KIND_NODE || in->node->type != STORE_NODE_FILE) {
		fuse_reply_err(req, in->kind == FS_KIND_NODE ? EINVAL : EISDIR);
		return;
	}
	/* No per-open state: reads find everything through the inode, which
	 * the kernel keeps while the file is open. */
	fi->fh = 0;
	fi->keep_cache = 1;
	fi->noflush = 1;
	fuse_reply_open(req, fi);
}

/* Index of the first extent that ends after off. */
static uint32_t extent_at(const struct store_node *n, uint64_t off)
{
	uint32_t lo = 0, hi = n->nextents;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		const struct store_extent *e = &n->extents[mid];
		if (e->offset + e->length <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

struct iobuild {
	struct iovec *iov;
	struct fs_chunk **held;
	size_t niov, nheld, cap;
	struct iovec iov0[16];
	struct fs_chunk *held0[16];
};

static int io_push(struct iobuild *b, const void *p, size_t len,
		   struct fs_chunk *ch)
{
	if (b->niov == b->cap) {
		size_t n = b->cap * 2;
		struct iovec *iov = malloc(n * sizeof(*iov));
		struct fs_chunk **held = malloc(n * sizeof(*held));

		if (!iov || !held) {
			free(iov);
			free(held);
			return -ENOMEM;
		}
		memcpy(iov, b->iov, b->niov * sizeof(*iov));
		memcpy(held, b->held, b->nheld * sizeof(*held));
		if (b->iov != b->iov0) {
			free(b->iov);
			free(b->held);
		}
		b->iov = iov;
		b->held = held;
		b->cap = n;
	}
	b->iov[b->niov].iov_base = (void *)p;
	b->iov[b->niov].iov_len = len;
	b->niov++;
	if (ch)
		b->held[b->nheld++] = ch;
	return 0;
}

static void io_release(struct fs *fs, struct iobuild *b)
{
	size_t i;

	for (i = 0; i < b->nheld; i++)
		fs_chunk_put(fs->chunks, b->held[i]);
	if (b->iov != b->iov0) {
		free(b->iov);
		free(b->held);
	}
}

static void log_bad_chunk(struct fs_inode *in, const struct store_extent *e,
			  int err)
{
	char hex[SD_ID_HEX_LEN + 1];
	char *path;

	if (atomic_exchange(&in->warned, true))
		return;
	path = fs_inode_path(in);
	sd_id_hex(&e->id, hex);
	sd_log(SD_LOG_ERR, "mount: %s: chunk %s at offset %llu: %s",
	       path ? path : "?", hex, (unsigned long long)e->offset,
	       sd_strerror(err));
	free(path);
}

static void snap_read(fuse_req_t req, struct fs_inode *in, size_t size,
		      off_t off, struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	const struct store_node *n = in->node;
	struct iobuild b = { .cap = 16 };
	uint64_t pos, end;
	uint32_t idx, last = UINT32_MAX, i;
	int64_t prev;
	int r = 0;

	(void)fi;
	b.iov = b.iov0;
	b.held = b.held0;
	if (off < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if ((uint64_t)off >= n->size || size == 0) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	pos = (uint64_t)off;
	end = n->size - pos < size ? n->size : pos + size;
	idx = extent_at(n, pos);
	while (pos < end && r == 0) {
		const struct store_extent *e =
			idx < n->nextents ? &n->extents[idx] : NULL;
		struct fs_chunk *ch;
		uint64_t stop;

		if (e && e->offset <= pos) {
			r = fs_chunk_get(fs->chunks, &e->id, &ch);
			if (r == 0 && ch->len < e->length) {
				fs_chunk_put(fs->chunks, ch);
				r = SD_ECORRUPT;
			}
			if (r < 0) {
				log_bad_chunk(in, e, r);
				break;
			}
			stop = e->offset + e->length < end ? e->offset + e->length
							    : end;
			r = io_push(&b, ch->data + (pos - e->offset),
				    stop - pos, ch);
			if (r < 0) {
				fs_chunk_put(fs->chunks, ch);
				break;
			}
			last = idx;
			pos = stop;
			if (pos == e->offset + e->length)
				idx++;
		} else {
			stop = e && e->offset < end ? e->offset : end;
			if (stop - pos > ZERO_LEN)
				stop = pos + ZERO_LEN;
			r = io_push(&b, zeros, stop - pos, NULL);
			pos = stop;
		}
	}
	if (r < 0) {
		atomic_fetch_add(&fs->stats.read_errors, 1);
		fs_reply_err(req, r);
		io_release(fs, &b);
		return;
	}

	/* Sequential: queue the chunks after the last one touched. */
	prev = atomic_exchange(&in->next_off, (int64_t)end);
	if (last != UINT32_MAX && (int64_t)off >= prev - (int64_t)SEQ_WINDOW &&
	    (int64_t)off <= prev + (int64_t)SEQ_WINDOW) {
		for (i = last + 1;
		     i < n->nextents && i <= last + READAHEAD_CHUNKS; i++)
			fs_chunk_prefetch(fs->chunks, &n->extents[i].id);
	}

	atomic_fetch_add(&fs->stats.reads, 1);
	atomic_fetch_add(&fs->stats.read_bytes, end - (uint64_t)off);
	fuse_reply_iov(req, b.iov, (int)b.niov);
	io_release(fs, &b);
}

static void snap_lseek(fuse_req_t req, struct fs_inode *in, off_t off,
		       int whence, struct fuse_file_info *fi)
{
	const struct store_node *n = in->node;
	uint64_t pos = (uint64_t)off;
	uint32_t idx;

	(void)fi;
	if (whence != SEEK_DATA && whence != SEEK_HOLE) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (off < 0 || pos >= n->size) {
		fuse_reply_err(req, ENXIO);
		return;
	}
	idx = extent_at(n, pos);
	if (whence == SEEK_DATA) {
		if (idx == n->nextents) {
			fuse_reply_err(req, ENXIO);
			return;
		}
		if (n->extents[idx].offset > pos)
			pos = n->extents[idx].offset;
		fuse_reply_lseek(req, (off_t)pos);
		return;
	}
	/* SEEK_HOLE: skip over contiguous data from pos. */
	while (idx < n->nextents && n->extents[idx].offset <= pos) {
		pos = n->extents[idx].offset + n->extents[idx].length;
		idx++;
	}
	fuse_reply_lseek(req, (off_t)(pos < n->size ? pos : n->size));
}

static void snap_getxattr(fuse_req_t req, struct fs_inode *in,
			  const char *name, size_t size)
{
	const struct store_node *n = in->node;
	uint32_t i;

	if (in->kind != FS_KIND_NODE) {
		fuse_reply_err(req, fs_xattr_absent_errno(name));
		return;
	}
	for (i = 0; i < n->nxattrs; i++) {
		const struct store_xattr *x = &n->xattrs[i];
		if (strcmp(x->name, name) != 0)
			continue;
		if (size == 0)
			fuse_reply_xattr(req, x->len);
		else if (size < x->len)
			fuse_reply_err(req, ERANGE);
		else
			fuse_reply_buf(req, (const char *)x->value, x->len);
		return;
	}
	fuse_reply_err(req, fs_xattr_absent_errno(name));
}

static void snap_listxattr(fuse_req_t req, struct fs_inode *in, size_t size)
{
	const struct store_node *n = in->node;
	size_t len = 0, pos = 0;
	uint32_t i;
	char *buf;

	if (in->kind == FS_KIND_NODE)
		for (i = 0; i < n->nxattrs; i++)
			len += strlen(n->xattrs[i].name) + 1;
	if (size == 0) {
		fuse_reply_xattr(req, len);
		return;
	}
	if (size < len) {
		fuse_reply_err(req, ERANGE);
		return;
	}
	if (len == 0) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	buf = malloc(len);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	for (i = 0; i < n->nxattrs; i++) {
		size_t l = strlen(n->xattrs[i].name) + 1;
		memcpy(buf + pos, n->xattrs[i].name, l);
		pos += l;
	}
	fuse_reply_buf(req, buf, len);
	free(buf);
}

static void snap_lookup_any(fuse_req_t req, struct fs_inode *parent,
			    const char *name)
{
	if (!dir_tree_id(parent))
		fuse_reply_err(req, ENOTDIR);
	else
		snap_lookup(req, parent, name);
}

static void snap_read_any(fuse_req_t req, struct fs_inode *in, size_t size,
			  off_t off, struct fuse_file_info *fi)
{
	if (in->kind != FS_KIND_NODE || in->node->type != STORE_NODE_FILE)
		fuse_reply_err(req, EISDIR);
	else
		snap_read(req, in, size, off, fi);
}

static void snap_lseek_any(fuse_req_t req, struct fs_inode *in, off_t off,
			   int whence, struct fuse_file_info *fi)
{
	if (in->kind != FS_KIND_NODE || in->node->type != STORE_NODE_FILE)
		fuse_reply_err(req, EINVAL);
	else
		snap_lseek(req, in, off, whence, fi);
}

const struct fs_area_ops fs_snap_area = {
	.name = "snapshot",
	.stat = snap_stat,
	.lookup = snap_lookup_any,
	.readlink = snap_readlink,
	.opendir = snap_opendir,
	.readdir = snap_readdir,
	.open = snap_open,
	.read = snap_read_any,
	.lseek = snap_lseek_any,
	.getxattr = snap_getxattr,
	.listxattr = snap_listxattr,
};
