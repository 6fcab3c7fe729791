/*
 * node_meta.c — filling a store_node from the file system: stat fields,
 * owner names, xattrs, and the small array helpers backup needs.
 *
 * Owner names are looked up once per id (NSS lookups can be slow: LDAP,
 * sssd) and kept in a small cache. Xattrs are sorted by name so that equal
 * metadata encodes to equal tree bytes whatever order listxattr gives.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include "store_i.h"

char *store_name_cache_get(struct store_name_cache *c, uint32_t id, bool group)
{
	for (size_t i = 0; i < c->n; i++)
		if (c->id[i] == id)
			return c->name[i] ? strdup(c->name[i]) : NULL;
	char buf[4096], *name = NULL;
	if (group) {
		struct group g, *res = NULL;
		if (getgrgid_r(id, &g, buf, sizeof(buf), &res) == 0 && res)
			name = g.gr_name;
	} else {
		struct passwd pw, *res = NULL;
		if (getpwuid_r(id, &pw, buf, sizeof(buf), &res) == 0 && res)
			name = pw.pw_name;
	}
	if (c->n < STORE_NAME_CACHE) {
		c->id[c->n] = id;
		c->name[c->n] = name ? strdup(name) : NULL;
		c->n++;
	}
	return name ? strdup(name) : NULL;
}


uint8_t store_node_type_from_mode(mode_t m)
{
	switch (m & S_IFMT) {
	case S_IFREG: return STORE_NODE_FILE;
	case S_IFDIR: return STORE_NODE_DIR;
	case S_IFLNK: return STORE_NODE_SYMLINK;
	case S_IFIFO: return STORE_NODE_FIFO;
	case S_IFCHR: return STORE_NODE_CHARDEV;
	case S_IFBLK: return STORE_NODE_BLOCKDEV;
	default: return STORE_NODE_SOCKET;
	}
}


int store_node_from_stat(struct store_node *n, const char *name,
			 const struct stat *st, struct store_name_cache *users,
			 struct store_name_cache *groups)
{
	memset(n, 0, sizeof(*n));
	n->name = strdup(name);
	n->type = store_node_type_from_mode(st->st_mode);
	n->mode = st->st_mode & 07777;
	n->uid = st->st_uid;
	n->gid = st->st_gid;
	n->user = store_name_cache_get(users, st->st_uid, false);
	n->group = store_name_cache_get(groups, st->st_gid, true);
	n->mtime = st->st_mtim;
	n->ctime = st->st_ctim;
	n->atime = st->st_atim;
	n->size = (uint64_t)st->st_size;
	n->dev = st->st_dev;
	n->inode = st->st_ino;
	n->nlink = (uint32_t)st->st_nlink;
	n->rdev = st->st_rdev;
	return n->name ? 0 : -ENOMEM;
}


static int xattr_cmp(const void *a, const void *b)
{
	return strcmp(((const struct store_xattr *)a)->name,
		      ((const struct store_xattr *)b)->name);
}


int store_node_xattrs_read(int fd, const char *path, struct store_node *n)
{
	char stack[1024], *list = stack;
	ssize_t len = fd >= 0 ? flistxattr(fd, stack, sizeof(stack))
			      : llistxattr(path, stack, sizeof(stack));
	if (len < 0 && errno == ERANGE) {
		len = fd >= 0 ? flistxattr(fd, NULL, 0) : llistxattr(path, NULL, 0);
		if (len > 0 && !(list = malloc((size_t)len)))
			return -ENOMEM;
		if (len > 0)
			len = fd >= 0 ? flistxattr(fd, list, (size_t)len)
				      : llistxattr(path, list, (size_t)len);
	}
	if (len < 0) {
		int e = errno;
		if (list != stack)
			free(list);
		return e == ENOTSUP || e == ENOENT ? 0 : -e;
	}
	int r = 0;
	size_t count = 0;
	for (ssize_t i = 0; i < len; i += (ssize_t)strlen(list + i) + 1)
		count++;
	if (count == 0)
		goto out;
	n->xattrs = calloc(count, sizeof(*n->xattrs));
	if (!n->xattrs) {
		r = -ENOMEM;
		goto out;
	}
	for (ssize_t i = 0; i < len; i += (ssize_t)strlen(list + i) + 1) {
		const char *key = list + i;
		ssize_t vl = fd >= 0 ? fgetxattr(fd, key, NULL, 0)
				     : lgetxattr(path, key, NULL, 0);
		if (vl < 0)
			continue; /* removed meanwhile */
		uint8_t *val = malloc(vl ? (size_t)vl : 1);
		if (!val) {
			r = -ENOMEM;
			goto out;
		}
		vl = fd >= 0 ? fgetxattr(fd, key, val, (size_t)vl)
			     : lgetxattr(path, key, val, (size_t)vl);
		if (vl < 0) {
			free(val);
			continue;
		}
		struct store_xattr *x = &n->xattrs[n->nxattrs++];
		x->name = strdup(key);
		x->value = val;
		x->len = (uint32_t)vl;
		if (!x->name) {
			r = -ENOMEM;
			goto out;
		}
	}
	qsort(n->xattrs, n->nxattrs, sizeof(*n->xattrs), xattr_cmp);
out:
	if (list != stack)
		free(list);
	return r;
}


int store_node_extent_add(struct store_node *n, uint32_t *cap, uint64_t off,
		      uint32_t len, const sd_id *id)
{
	if (n->nextents == *cap) {
		uint32_t nc = *cap ? *cap * 2 : 4;
		struct store_extent *e = realloc(n->extents, nc * sizeof(*e));
		if (!e)
			return -ENOMEM;
		n->extents = e;
		*cap = nc;
	}
	n->extents[n->nextents++] = (struct store_extent){ off, len, *id };
	return 0;
}


int store_node_extents_copy(struct store_node *n, const struct store_extent *e,
			uint32_t count)
{
	if (count == 0)
		return 0;
	n->extents = malloc(count * sizeof(*e));
	if (!n->extents)
		return -ENOMEM;
	memcpy(n->extents, e, count * sizeof(*e));
	n->nextents = count;
	return 0;
}


int store_node_xattrs_copy(struct store_node *n, const struct store_node *p)
{
	if (p->nxattrs == 0)
		return 0;
	n->xattrs = calloc(p->nxattrs, sizeof(*n->xattrs));
	if (!n->xattrs)
		return -ENOMEM;
	for (uint32_t i = 0; i < p->nxattrs; i++) {
		struct store_xattr *x = &n->xattrs[i];
		x->name = strdup(p->xattrs[i].name);
		x->value = malloc(p->xattrs[i].len ? p->xattrs[i].len : 1);
		x->len = p->xattrs[i].len;
		n->nxattrs++;
		if (!x->name || !x->value)
			return -ENOMEM;
		memcpy(x->value, p->xattrs[i].value, x->len);
	}
	return 0;
}

int store_node_copy(struct store_node *n, const struct store_node *from)
{
	*n = *from;
	n->name = n->user = n->group = n->target = NULL;
	n->xattrs = NULL;
	n->nxattrs = 0;
	n->extents = NULL;
	n->nextents = 0;
	if ((from->name && !(n->name = strdup(from->name))) ||
	    (from->user && !(n->user = strdup(from->user))) ||
	    (from->group && !(n->group = strdup(from->group))) ||
	    (from->target && !(n->target = strdup(from->target))))
		return -ENOMEM;
	int r = store_node_xattrs_copy(n, from);
	if (r == 0)
		r = store_node_extents_copy(n, from->extents, from->nextents);
	return r;
}

void store_name_cache_free(struct store_name_cache *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->name[i]);
	c->n = 0;
}
