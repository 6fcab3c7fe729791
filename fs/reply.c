/*
 * reply.c — what every area shares when it answers the kernel.
 *
 * The one place library errors become errno (fs_errno), entries and
 * attributes of nodes, and the readdir(plus) buffer that keeps the
 * lookup-count rules of fs.h: an entry placed in a readdirplus reply keeps
 * the count fs_inode_lookup() took for it, one that did not fit gives it
 * back at once, and a reply the kernel never got gives back all of them.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs_i.h"

int fs_errno(int err)
{
	if (err >= 0)
		return 0;
	if (err == SD_EUSAGE)
		return EINVAL;
	if (err > -4096)
		return -err;
	/* Missing blobs, failed verification, unreadable trees: the data is
	 * not there as it should be. */
	return EIO;
}

void fs_reply_err(fuse_req_t req, int err)
{
	fuse_reply_err(req, fs_errno(err));
}

/*
 * A security label or POSIX ACL the node does not have is "not supported"
 * rather than "no such attribute": ls -l asks for both on every file, and
 * on ENOTSUP it stops asking for the rest of the device, which saves two
 * round trips per file. Restores lose nothing: the attributes a node does
 * have are served, and tools read ENOTSUP as "no ACL here".
 */
int fs_xattr_absent_errno(const char *name)
{
	if (strncmp(name, "security.", 9) == 0 ||
	    strncmp(name, "system.posix_acl_", 17) == 0)
		return EOPNOTSUPP;
	return ENODATA;
}

void fs_stat_fixed(struct fs *fs, fuse_ino_t ino, mode_t mode, nlink_t nlink,
		   off_t size, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_mode = mode;
	st->st_nlink = nlink;
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_size = size;
	st->st_blksize = 4096;
	st->st_blocks = (size + 511) / 512;
	st->st_atim = fs->started;
	st->st_mtim = fs->started;
	st->st_ctim = fs->started;
}

int fs_entry_fill(struct fs *fs, struct fs_inode *in, double entry_timeout,
		  struct fuse_entry_param *e)
{
	int r;

	memset(e, 0, sizeof(*e));
	r = in->area->stat(fs, in, &e->attr, &e->attr_timeout);
	if (r < 0)
		return r;
	e->ino = in->ino;
	e->attr.st_ino = in->ino;
	e->generation = 1;
	e->entry_timeout = entry_timeout;
	return 0;
}

void fs_reply_entry(fuse_req_t req, struct fs_inode *in, double entry_timeout)
{
	struct fs *fs = fuse_req_userdata(req);
	struct fuse_entry_param e;
	int r;

	r = fs_entry_fill(fs, in, entry_timeout, &e);
	if (r < 0) {
		fs_inode_forget(fs, in->ino, 1);
		fs_reply_err(req, r);
		return;
	}
	atomic_fetch_add(&fs->stats.lookups, 1);
	if (fuse_reply_entry(req, &e) != 0)
		fs_inode_forget(fs, in->ino, 1);
}

/* ---------------------------------------------------------------- dirbuf */

int fs_dirbuf_init(struct fs_dirbuf *d, fuse_req_t req, size_t size,
		   bool plus)
{
	memset(d, 0, sizeof(*d));
	d->req = req;
	d->fs = fuse_req_userdata(req);
	d->plus = plus;
	d->size = size;
	d->buf = malloc(size ? size : 1);
	return d->buf ? 0 : -ENOMEM;
}

static bool dirbuf_count(struct fs_dirbuf *d, fuse_ino_t ino)
{
	if (d->ncounted == d->capcounted) {
		size_t n = d->capcounted ? d->capcounted * 2 : 64;
		fuse_ino_t *v = realloc(d->counted, n * sizeof(*v));
		if (!v)
			return false;
		d->counted = v;
		d->capcounted = n;
	}
	d->counted[d->ncounted++] = ino;
	return true;
}

/* An entry without attributes. In readdirplus, entry ino 0 means the
 * kernel takes no reference and reads no attributes: it looks the name up
 * when someone asks. */
static bool dirbuf_add_bare(struct fs_dirbuf *d, const char *name,
			    fuse_ino_t ino, mode_t mode, off_t next)
{
	size_t rem = d->size - d->used, n;

	if (d->plus) {
		struct fuse_entry_param e;
		memset(&e, 0, sizeof(e));
		e.attr.st_ino = ino;
		e.attr.st_mode = mode;
		n = fuse_add_direntry_plus(d->req, d->buf + d->used, rem, name,
					   &e, next);
	} else {
		struct stat st;
		memset(&st, 0, sizeof(st));
		st.st_ino = ino;
		st.st_mode = mode;
		n = fuse_add_direntry(d->req, d->buf + d->used, rem, name, &st,
				      next);
	}
	if (n > rem)
		return false;
	d->used += n;
	return true;
}

bool fs_dirbuf_add_dot(struct fs_dirbuf *d, const char *name, fuse_ino_t ino,
		       off_t next)
{
	/* "." and ".." are never looked up this way. */
	return dirbuf_add_bare(d, name, ino, S_IFDIR, next);
}

bool fs_dirbuf_add(struct fs_dirbuf *d, const char *name,
		   struct fs_inode *in, fuse_ino_t ino, mode_t mode,
		   double entry_timeout, off_t next)
{
	if (!d->plus)
		return dirbuf_add_bare(d, name, ino, mode, next);

	struct fuse_entry_param e;
	if (fs_entry_fill(d->fs, in, entry_timeout, &e) < 0) {
		/* Listed without attributes; the kernel looks it up (and
		 * gets the error) when someone asks. */
		fs_inode_forget(d->fs, in->ino, 1);
		return dirbuf_add_bare(d, name, in->ino, mode, next);
	}
	size_t rem = d->size - d->used;
	size_t n = fuse_add_direntry_plus(d->req, d->buf + d->used, rem, name,
					  &e, next);
	if (n > rem || !dirbuf_count(d, in->ino)) {
		fs_inode_forget(d->fs, in->ino, 1);
		return false;
	}
	d->used += n;
	return true;
}

void fs_dirbuf_reply(struct fs_dirbuf *d, int err)
{
	size_t i;

	atomic_fetch_add(&d->fs->stats.readdirs, 1);
	if (err < 0 && d->used == 0) {
		fs_reply_err(d->req, err);
	} else if (fuse_reply_buf(d->req, d->buf, d->used) != 0) {
		for (i = 0; i < d->ncounted; i++)
			fs_inode_forget(d->fs, d->counted[i], 1);
	}
	free(d->buf);
	free(d->counted);
	d->buf = NULL;
	d->counted = NULL;
}

