/*
 * ops.c — the kernel's requests, dispatched to the area of each inode.
 *
 * Every request names an inode number; the handler here turns it into a
 * referenced struct fs_inode (ESTALE when the number is unknown), calls the
 * operation of the inode's area (see struct fs_area_ops), and drops the
 * reference. Whatever an area leaves out gets the answer of a read-only
 * tree: EROFS for anything that would write, ENOTSUP/ENODATA for xattrs,
 * 0 for fsync/flush. So a new part of the mount (drafts/) is one more table
 * of operations, not edits here. The fs pointer is taken from the request
 * before the area replies: a request is freed by its reply.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "fs_i.h"

/* ---------------------------------------------------------------- dispatch */

#define FS_OF(req) ((struct fs *)fuse_req_userdata(req))

/* The inode of ino, referenced, or NULL after replying ESTALE. */
static struct fs_inode *inode_or_reply(fuse_req_t req, fuse_ino_t ino)
{
	struct fs_inode *in = fs_inode_get(FS_OF(req), ino);

	if (!in)
		fuse_reply_err(req, ESTALE);
	return in;
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	unsigned want = FUSE_CAP_ASYNC_READ | FUSE_CAP_READDIRPLUS |
			FUSE_CAP_READDIRPLUS_AUTO | FUSE_CAP_PARALLEL_DIROPS;

	(void)userdata;
	conn->want |= want & conn->capable;
	/* Snapshot data never changes: no revalidation of the page cache on
	 * attribute changes, no write-back. Symlink targets are not cached
	 * (FUSE_CAP_CACHE_SYMLINKS is off): `backup && rsync latest/` must
	 * never see the previous point, and an invalidation from the watcher
	 * could arrive after the next command already followed the link. */
	conn->want &= ~(unsigned)(FUSE_CAP_AUTO_INVAL_DATA |
				  FUSE_CAP_WRITEBACK_CACHE);
	conn->max_background = 64;
	conn->congestion_threshold = 48;
	conn->time_gran = 1;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = FS_OF(req);
	struct fs_inode *p = inode_or_reply(req, parent);

	if (!p)
		return;
	if (p->area->lookup)
		p->area->lookup(req, p, name);
	else
		fuse_reply_err(req, ENOTDIR);
	fs_inode_put(fs, p);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	fs_inode_forget(FS_OF(req), ino, nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count,
			    struct fuse_forget_data *forgets)
{
	struct fs *fs = FS_OF(req);
	size_t i;

	for (i = 0; i < count; i++)
		fs_inode_forget(fs, forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct fs *fs = FS_OF(req);
	struct fs_inode *in = inode_or_reply(req, ino);
	struct stat st;
	double timeout = 0;
	int r;

	(void)fi;
	if (!in)
		return;
	r = in->area->stat(fs, in, &st, &timeout);
	if (r < 0) {
		fs_reply_err(req, r);
	} else {
		st.st_ino = in->ino;
		fuse_reply_attr(req, &st, timeout);
	}
	fs_inode_put(fs, in);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct fs *fs = FS_OF(req);
	struct fs_inode *in = inode_or_reply(req, ino);

	if (!in)
		return;
	if (in->area->readlink)
		in->area->readlink(req, in);
	else
		fuse_reply_err(req, EINVAL);
	fs_inode_put(fs, in);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct fs *fs = FS_OF(req);
	struct fs_inode *in = inode_or_reply(req, ino);

	if (!in)
		return;
	if (in->area->opendir) {
		in->area->opendir(req, in, fi);
	} else {
		fi->fh = 0;
		fuse_reply_open(req, fi);
	}
	fs_inode_put(fs, in);
}

static void readdir_common(fuse_req_t req, fuse_ino_t ino, size_t size,
			   off_t off, struct fuse_file_info *fi, bool plus)
{
	struct fs *fs = FS_OF(req);
	struct fs_inode *in = inode_or_reply(req, ino);

	if (!in)
		return;
	if (in->area->readdir)
		in->area->readdir(req, in, size, off, fi, plus);
	else
		fuse_reply_err(req, ENOTDIR);
	fs_inode_put(fs, in);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	readdir_common(req, ino, size, off, fi, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			   off_t off, struct fuse_file_info *fi)
{
	readdir_common(req, ino, size, off, fi, true);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	struct fs *fs = FS_OF(req);
	struct fs_inode *in = fs_inode_get(fs, ino);

	if (in && in->area->releasedir)
		in->area->releasedir(fs, in, fi);
	fs_inode_put(fs, in);
	fuse_reply_err(req, 0);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = FS_OF(req);
	struct fs_inode *in = inode_or_reply(req, ino);

	if (!in)
		return;
	atomic_fetch_add(&fs->stats.opens, 1);
	if (in->area->open) {
		in->area->open(req, in, fi);
	} else if ((fi->flags & O_ACCMODE) != O_RDONLY ||
		   (fi->flags & O_TRUNC)) {
		fuse_reply_err(req, EROFS);
	} else {
		fi->fh = 0;
		fuse_reply_open(req, fi);
	}
	fs_inode_put(fs, in);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct fs *fs = FS_OF(req);
	struct fs_inode *in = inode_or_reply(req, ino);

	if (!in)
		return;
	if (in->area->read)
		in->area->read(req, in, size, off, fi);
	else
		fuse_reply_err(req, EISDIR);
	fs_inode_put(fs, in);
}

static void op_release(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct fs *fs = FS_OF(req);
	struct fs_inode *in = fs_inode_get(fs, ino);

	if (in && in->area->release)
		in->area->release(fs, in, fi);
	fs_inode_put(fs, in);
	fuse_reply_err(req, 0);
}

static void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		     struct fuse_file_info *fi)
{
	struct fs *fs = FS_OF(req);
	struct fs_inode *in = inode_or_reply(req, ino);
	struct stat st;
	double t;
	int r;

	if (!in)
		return;
	if (in->area->lseek) {
		in->area->lseek(req, in, off, whence, fi);
	} else {
		/* No holes: data runs to the end of the file. */
		r = in->area->stat(fs, in, &st, &t);
		if (r < 0)
			fs_reply_err(req, r);
		else if (off < 0 || off >= st.st_size)
			fuse_reply_err(req, ENXIO);
		else if (whence == SEEK_DATA)
			fuse_reply_lseek(req, off);
		else if (whence == SEEK_HOLE)
			fuse_reply_lseek(req, st.st_size);
		else
			fuse_reply_err(req, EINVAL);
	}
	fs_inode_put(fs, in);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			size_t size)
{
	struct fs *fs = FS_OF(req);
	struct fs_inode *in = inode_or_reply(req, ino);

	if (!in)
		return;
	if (in->area->getxattr)
		in->area->getxattr(req, in, name, size);
	else
		fuse_reply_err(req, fs_xattr_absent_errno(name));
	fs_inode_put(fs, in);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct fs *fs = FS_OF(req);
	struct fs_inode *in = inode_or_reply(req, ino);

	if (!in)
		return;
	if (in->area->listxattr)
		in->area->listxattr(req, in, size);
	else if (size == 0)
		fuse_reply_xattr(req, 0);
	else
		fuse_reply_buf(req, NULL, 0);
	fs_inode_put(fs, in);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct fs *fs = FS_OF(req);
	struct fs_snaps *l = fs_snaps_get(fs);
	struct statvfs sv;
	uint64_t files = FS_INO_FIXED_COUNT;
	size_t i;

	(void)ino;
	for (i = 0; i < l->n; i++) {
		const struct store_snapshot_summary *s = &l->v[i]->meta.summary;
		files += s->files + s->dirs + s->others + 1;
	}
	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = 4096;
	sv.f_frsize = 4096;
	sv.f_blocks = (l->pack_bytes + 4095) / 4096;
	sv.f_files = files;
	sv.f_namemax = 255;
	fs_snaps_put(l);
	fuse_reply_statfs(req, &sv);
}

static void op_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	struct fs *fs = FS_OF(req);
	struct fs_inode *in = inode_or_reply(req, ino);

	if (!in)
		return;
	fuse_reply_err(req, (mask & W_OK) && !in->area->setattr ? EROFS : 0);
	fs_inode_put(fs, in);
}

/* ---------------------------------------------------------------- the write side */

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int to_set, struct fuse_file_info *fi)
{
	struct fs *fs = FS_OF(req);
	struct fs_inode *in = inode_or_reply(req, ino);

	if (!in)
		return;
	if (in->area->setattr)
		in->area->setattr(req, in, attr, to_set, fi);
	else
		fuse_reply_err(req, EROFS);
	fs_inode_put(fs, in);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode, dev_t rdev)
{
	struct fs *fs = FS_OF(req);
	struct fs_inode *p = inode_or_reply(req, parent);

	if (!p)
		return;
	if (p->area->mknod)
		p->area->mknod(req, p, name, mode, rdev);
	else
		fuse_reply_err(req, EROFS);
	fs_inode_put(fs, p);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode)
{
	struct fs *fs = FS_OF(req);
	struct fs_inode *p = inode_or_reply(req, parent);

	if (!p)
		return;
	if (p->area->mkdir)
		p->area->mkdir(req, p, name, mode);
	else
		fuse_reply_err(req, EROFS);
	fs_inode_put(fs, p);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = FS_OF(req);
	struct fs_inode *p = inode_or_reply(req, parent);

	if (!p)
		return;
	if (p->area->unlink)
		p->area->unlink(req, p, name);
	else
		fuse_reply_err(req, EROFS);
	fs_inode_put(fs, p);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = FS_OF(req);
	struct fs_inode *p = inode_or_reply(req, parent);

	if (!p)
		return;
	if (p->area->rmdir)
		p->area->rmdir(req, p, name);
	else
		fuse_reply_err(req, EROFS);
	fs_inode_put(fs, p);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		       const char *name)
{
	struct fs *fs = FS_OF(req);
	struct fs_inode *p = inode_or_reply(req, parent);

	if (!p)
		return;
	if (p->area->symlink)
		p->area->symlink(req, link, p, name);
	else
		fuse_reply_err(req, EROFS);
	fs_inode_put(fs, p);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname,
		      unsigned flags)
{
	struct fs *fs = FS_OF(req);
	struct fs_inode *p = inode_or_reply(req, parent), *np;

	if (!p)
		return;
	np = inode_or_reply(req, newparent);
	if (np) {
		if (p->area != np->area)
			fuse_reply_err(req, EXDEV);
		else if (p->area->rename)
			p->area->rename(req, p, name, np, newname, flags);
		else
			fuse_reply_err(req, EROFS);
		fs_inode_put(fs, np);
	}
	fs_inode_put(fs, p);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		    const char *newname)
{
	struct fs *fs = FS_OF(req);
	struct fs_inode *in = inode_or_reply(req, ino), *np;

	if (!in)
		return;
	np = inode_or_reply(req, newparent);
	if (np) {
		if (in->area != np->area)
			fuse_reply_err(req, EXDEV);
		else if (np->area->link)
			np->area->link(req, in, np, newname);
		else
			fuse_reply_err(req, EROFS);
		fs_inode_put(fs, np);
	}
	fs_inode_put(fs, in);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode, struct fuse_file_info *fi)
{
	struct fs *fs = FS_OF(req);
	struct fs_inode *p = inode_or_reply(req, parent);

	if (!p)
		return;
	if (p->area->create)
		p->area->create(req, p, name, mode, fi);
	else
		fuse_reply_err(req, EROFS);
	fs_inode_put(fs, p);
}

static void op_write_buf(fuse_req_t req, fuse_ino_t ino,
			 struct fuse_bufvec *bufv, off_t off,
			 struct fuse_file_info *fi)
{
	struct fs *fs = FS_OF(req);
	struct fs_inode *in = inode_or_reply(req, ino);

	if (!in)
		return;
	if (in->area->write_buf)
		in->area->write_buf(req, in, bufv, off, fi);
	else
		fuse_reply_err(req, EROFS);
	fs_inode_put(fs, in);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = FS_OF(req);
	struct fs_inode *in = inode_or_reply(req, ino);

	if (!in)
		return;
	if (in->area->flush)
		in->area->flush(req, in, fi);
	else
		fuse_reply_err(req, 0);
	fs_inode_put(fs, in);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		     struct fuse_file_info *fi)
{
	struct fs *fs = FS_OF(req);
	struct fs_inode *in = inode_or_reply(req, ino);

	if (!in)
		return;
	if (in->area->fsync)
		in->area->fsync(req, in, datasync, fi);
	else
		fuse_reply_err(req, 0);
	fs_inode_put(fs, in);
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
			struct fuse_file_info *fi)
{
	op_fsync(req, ino, datasync, fi);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off,
			 off_t len, struct fuse_file_info *fi)
{
	struct fs *fs = FS_OF(req);
	struct fs_inode *in = inode_or_reply(req, ino);

	if (!in)
		return;
	if (in->area->fallocate)
		in->area->fallocate(req, in, mode, off, len, fi);
	else
		fuse_reply_err(req, EROFS);
	fs_inode_put(fs, in);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			const char *value, size_t size, int flags)
{
	struct fs *fs = FS_OF(req);
	struct fs_inode *in = inode_or_reply(req, ino);

	if (!in)
		return;
	if (in->area->setxattr)
		in->area->setxattr(req, in, name, value, size, flags);
	else
		fuse_reply_err(req, EROFS);
	fs_inode_put(fs, in);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct fs *fs = FS_OF(req);
	struct fs_inode *in = inode_or_reply(req, ino);

	if (!in)
		return;
	if (in->area->removexattr)
		in->area->removexattr(req, in, name);
	else
		fuse_reply_err(req, EROFS);
	fs_inode_put(fs, in);
}

const struct fuse_lowlevel_ops fs_lowlevel_ops = {
	.init = op_init,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.readlink = op_readlink,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.readdirplus = op_readdirplus,
	.releasedir = op_releasedir,
	.fsyncdir = op_fsyncdir,
	.open = op_open,
	.read = op_read,
	.release = op_release,
	.flush = op_flush,
	.fsync = op_fsync,
	.lseek = op_lseek,
	.getxattr = op_getxattr,
	.listxattr = op_listxattr,
	.statfs = op_statfs,
	.access = op_access,
	.setattr = op_setattr,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.symlink = op_symlink,
	.rename = op_rename,
	.link = op_link,
	.create = op_create,
	.write_buf = op_write_buf,
	.fallocate = op_fallocate,
	.setxattr = op_setxattr,
	.removexattr = op_removexattr,
};
