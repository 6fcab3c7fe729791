/*
 * top_ops.c — the live part of the mount: /, snapshots/, ids/, latest.
 *
 * These nodes follow the list of backup points, which changes while the
 * repository is mounted. So they get short attribute timeouts, their
 * listings are not kept in the kernel's readdir cache, every request on
 * them checks the snapshot stamp (fs_snaps_get, one stat), and the
 * watcher in snaplist.c invalidates what the kernel cached. The entries
 * below snapshots/ and ids/ are long-lived: a backup point never changes,
 * and one that goes away is invalidated by name.
 *
 * A listing of snapshots/ or ids/ holds one list (taken at opendir) for
 * all its readdir calls, so offsets stay meaningful while points come and
 * go. The root is a fixed table; a writable drafts/ adds one row.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs_i.h"

struct root_entry {
	const char *name;
	fuse_ino_t ino;
	mode_t type;
};

/* Sorted by name, as ls would show them. */
static const struct root_entry root_entries[] = {
	{ ".snapdraft", FS_INO_META, S_IFDIR },
	{ "ids", FS_INO_IDS, S_IFDIR },
	{ "latest", FS_INO_LATEST, S_IFLNK },
	{ "snapshots", FS_INO_SNAPSHOTS, S_IFDIR },
};
#define NROOT (sizeof(root_entries) / sizeof(root_entries[0]))

static int latest_target(const struct fs_snaps *l, char *buf, size_t len)
{
	if (!l->newest)
		return -ENOENT;
	snprintf(buf, len, "snapshots/%s", l->newest->name);
	return 0;
}

/* "../snapshots/<name>" for an ids/ link, by the name the point has now. */
static void idlink_target(const struct fs_snaps *l, const struct fs_snap *s,
			  char *buf, size_t len)
{
	const struct fs_snap *cur = fs_snaps_find_id(l, &s->id);

	snprintf(buf, len, "../snapshots/%s", cur ? cur->name : s->name);
}

static int top_stat(struct fs *fs, struct fs_inode *in, struct stat *st,
		    double *timeout)
{
	struct fs_snaps *l;
	char target[128];
	nlink_t nlink = 2;
	size_t i;
	int r = 0;

	switch (in->ino) {
	case FS_INO_ROOT:
		for (i = 0; i < NROOT; i++)
			nlink += root_entries[i].type == S_IFDIR;
		fs_stat_fixed(fs, in->ino, S_IFDIR | 0555, nlink, 0, st);
		*timeout = FS_TIMEOUT_FOREVER;
		return 0;
	case FS_INO_SNAPSHOTS:
	case FS_INO_IDS:
		l = fs_snaps_get(fs);
		fs_stat_fixed(fs, in->ino, S_IFDIR | 0555,
			      in->ino == FS_INO_SNAPSHOTS ? 2 + l->n : 2, 0, st);
		st->st_mtim = l->stamp;
		st->st_ctim = l->stamp;
		fs_snaps_put(l);
		*timeout = FS_TIMEOUT_LIVE;
		return 0;
	case FS_INO_LATEST:
		l = fs_snaps_get(fs);
		r = latest_target(l, target, sizeof(target));
		if (r == 0) {
			fs_stat_fixed(fs, in->ino, S_IFLNK | 0777, 1,
				      strlen(target), st);
			st->st_blocks = 0;
			st->st_mtim = l->stamp;
			st->st_ctim = l->stamp;
		}
		fs_snaps_put(l);
		*timeout = FS_TIMEOUT_LIVE;
		return r;
	default:
		break;
	}
	if (in->kind != FS_KIND_IDLINK)
		return -EIO;
	l = fs_snaps_get(fs);
	idlink_target(l, in->snap, target, sizeof(target));
	fs_snaps_put(l);
	fs_stat_fixed(fs, in->ino, S_IFLNK | 0777, 1, strlen(target), st);
	st->st_blocks = 0;
	st->st_mtim.tv_sec = in->snap->meta.time_ns / 1000000000LL;
	st->st_mtim.tv_nsec = in->snap->meta.time_ns % 1000000000LL;
	st->st_ctim = st->st_mtim;
	st->st_atim = st->st_mtim;
	*timeout = FS_TIMEOUT_LIVE;
	return 0;
}

/* The ids/ link of s, with one lookup counted. */
static int idlink_lookup(struct fs *fs, struct fs_snap *s,
			 struct fs_inode **out)
{
	uint8_t key[FS_KEY_LEN];
	struct fs_inode_init init = {
		.key = key,
		.area = &fs_top_area,
		.kind = FS_KIND_IDLINK,
		.parent = &fs->fixed[FS_INO_IDS],
		.snap = s,
	};

	fs_key_idlink(&s->id, key);
	return fs_inode_lookup(fs, &init, out);
}

static void top_lookup(fuse_req_t req, struct fs_inode *parent,
		       const char *name)
{
	struct fs *fs = fuse_req_userdata(req);
	struct fs_inode *in = NULL;
	struct fs_snaps *l;
	struct fs_snap *s;
	size_t i;
	int r = -ENOENT;

	if (parent->ino == FS_INO_ROOT) {
		for (i = 0; i < NROOT; i++) {
			if (strcmp(root_entries[i].name, name) != 0)
				continue;
			in = &fs->fixed[root_entries[i].ino];
			break;
		}
		if (!in || !in->area) {
			fuse_reply_err(req, ENOENT);
			return;
		}
		/* Fixed nodes are never freed; the count is not kept. */
		fs_reply_entry(req, in, FS_TIMEOUT_FOREVER);
		return;
	}
	if (parent->ino != FS_INO_SNAPSHOTS && parent->ino != FS_INO_IDS) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	l = fs_snaps_get(fs);
	if (parent->ino == FS_INO_SNAPSHOTS) {
		s = fs_snaps_find(l, name);
		if (s)
			r = fs_snap_root_lookup(fs, parent, s, &in);
	} else {
		s = fs_snaps_find_short(l, name);
		if (s)
			r = idlink_lookup(fs, s, &in);
	}
	fs_snaps_put(l);
	if (r < 0) {
		fs_reply_err(req, r);
		return;
	}
	fs_reply_entry(req, in, FS_TIMEOUT_FOREVER);
	fs_inode_put(fs, in);
}

static void top_readlink(fuse_req_t req, struct fs_inode *in)
{
	struct fs *fs = fuse_req_userdata(req);
	struct fs_snaps *l = fs_snaps_get(fs);
	char target[128];
	int r = 0;

	if (in->ino == FS_INO_LATEST)
		r = latest_target(l, target, sizeof(target));
	else if (in->kind == FS_KIND_IDLINK)
		idlink_target(l, in->snap, target, sizeof(target));
	else
		r = -EINVAL;
	fs_snaps_put(l);
	if (r < 0)
		fs_reply_err(req, r);
	else
		fuse_reply_readlink(req, target);
}

static void list_destroy(struct fs *fs, void *obj)
{
	(void)fs;
	fs_snaps_put(obj);
}

static void top_opendir(fuse_req_t req, struct fs_inode *in,
			struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	struct fs_snaps *l = fs_snaps_get(fs);
	uint64_t id;
	int r;

	(void)in;
	/* The list seen at opendir serves the whole listing. */
	r = fs_handle_open(fs, l, list_destroy, &id);
	if (r < 0) {
		fs_snaps_put(l);
		fs_reply_err(req, r);
		return;
	}
	fi->fh = id;
	fi->cache_readdir = 0;
	fi->keep_cache = 0;
	if (fuse_reply_open(req, fi) != 0)
		fs_handle_close(fs, id);
}

static void top_releasedir(struct fs *fs, struct fs_inode *in,
			   struct fuse_file_info *fi)
{
	(void)in;
	fs_handle_close(fs, fi->fh);
}

static void readdir_root(struct fs_dirbuf *d, const struct fs_snaps *l,
			 off_t off)
{
	struct fs *fs = d->fs;
	size_t i;

	for (i = (size_t)off - 2; i < NROOT; i++) {
		const struct root_entry *re = &root_entries[i];
		struct fs_inode *in = &fs->fixed[re->ino];

		if (!in->area || (re->ino == FS_INO_LATEST && l->n == 0))
			continue;
		if (!fs_dirbuf_add(d, re->name, in, re->ino, re->type,
				   FS_TIMEOUT_FOREVER, (off_t)i + 3))
			break;
	}
}

static int readdir_points(struct fs_dirbuf *d, struct fs_inode *dir,
			  const struct fs_snaps *l, off_t off)
{
	struct fs *fs = d->fs;
	bool ids = dir->ino == FS_INO_IDS;
	size_t i;

	for (i = (size_t)off - 2; i < l->n; i++) {
		struct fs_snap *s = l->v[i];
		const char *name = ids ? s->short_id : s->name;
		mode_t type = ids ? S_IFLNK : S_IFDIR;
		struct fs_inode *in = NULL;
		uint8_t key[FS_KEY_LEN];
		bool fit;
		int r;

		if (d->plus) {
			r = ids ? idlink_lookup(fs, s, &in)
				: fs_snap_root_lookup(fs, dir, s, &in);
			if (r < 0)
				return r;
			fit = fs_dirbuf_add(d, name, in, in->ino, type,
					    FS_TIMEOUT_FOREVER, (off_t)i + 3);
			fs_inode_put(fs, in);
		} else {
			if (ids)
				fs_key_idlink(&s->id, key);
			fit = fs_dirbuf_add(d, name, NULL,
					    fs_inode_number(fs, ids ? key
								    : s->key),
					    type, 0, (off_t)i + 3);
		}
		if (!fit)
			break;
	}
	return 0;
}

static void top_readdir(fuse_req_t req, struct fs_inode *in, size_t size,
			off_t off, struct fuse_file_info *fi, bool plus)
{
	struct fs *fs = fuse_req_userdata(req);
	struct fs_handle *h;
	struct fs_snaps *l;
	struct fs_dirbuf d;
	fuse_ino_t up = in->ino;
	void *obj;
	int r = 0;

	h = fs_handle_get(fs, fi->fh, &obj);
	if (!h) {
		fuse_reply_err(req, EBADF);
		return;
	}
	l = obj;
	r = fs_dirbuf_init(&d, req, size, plus);
	if (r < 0) {
		fs_handle_put(fs, h);
		fs_reply_err(req, r);
		return;
	}
	if (in->ino != FS_INO_ROOT)
		up = FS_INO_ROOT;
	if (off == 0 && !fs_dirbuf_add_dot(&d, ".", in->ino, 1))
		goto send;
	if (off <= 1 && !fs_dirbuf_add_dot(&d, "..", up, 2))
		goto send;
	if (off < 2)
		off = 2;
	if (in->ino == FS_INO_ROOT)
		readdir_root(&d, l, off);
	else
		r = readdir_points(&d, in, l, off);
send:
	fs_dirbuf_reply(&d, r);
	fs_handle_put(fs, h);
}

const struct fs_area_ops fs_top_area = {
	.name = "top",
	.stat = top_stat,
	.lookup = top_lookup,
	.readlink = top_readlink,
	.opendir = top_opendir,
	.readdir = top_readdir,
	.releasedir = top_releasedir,
};
