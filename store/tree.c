/*
 * tree.c — the binary encoding of one directory (a tree blob).
 *
 * A tree blob's id is the SHA-256 of its bytes, so an unchanged directory
 * must encode to the same bytes every time: the encoding has exactly one
 * form per tree (entries sorted by name, minimal varints, no padding, no
 * optional fields whose presence is not implied by the data).
 *
 * Format, version 1 (all integers little endian):
 *   u8      format version (1)
 *   varint  entry count
 *   per entry:
 *     str     name
 *     u8      type (enum store_node_type)
 *     varint  mode, uid, gid
 *     u8      flags: 1 = user present, 2 = group present
 *     str     user, group (when flagged)
 *     3 x     svarint seconds, varint nanoseconds   (mtime, ctime, atime)
 *     varint  size, dev, inode, nlink, rdev
 *     str     target (SYMLINK only)
 *     varint  xattr count, then per xattr: str name, str value (binary)
 *     FILE:   varint extent count, then per extent:
 *             varint offset, varint length, 32 bytes blob id
 *     DIR:    32 bytes subtree id
 * varint is unsigned LEB128 in its shortest form; svarint is a zigzag
 * varint; str is a varint length followed by that many bytes.
 *
 * Decoding runs the same parser twice over the buffer: the first pass
 * validates everything and adds up how many nodes, xattrs, extents and
 * string bytes the tree needs; the second fills one arena of exactly that
 * size. A decoded tree is therefore one malloc, which matters because the
 * mount decodes a tree for every directory it opens cold.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store_i.h"

#define TREE_FORMAT_VERSION 1
#define TREE_FLAG_USER 0x01
#define TREE_FLAG_GROUP 0x02
#define TREE_NSEC_PER_SEC 1000000000L
#define TREE_MODE_MASK 07777u

/* ---------------------------------------------------------------- shared */

static bool tree_name_ok(const char *name, size_t len)
{
	if (len == 0 || memchr(name, '/', len) || memchr(name, '\0', len))
		return false;
	if ((len == 1 && name[0] == '.') ||
	    (len == 2 && name[0] == '.' && name[1] == '.'))
		return false;
	return true;
}

/* memcmp order of byte strings: a shorter prefix sorts first. */
static int tree_name_cmp(const char *a, size_t alen, const char *b,
			 size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);
	if (c != 0)
		return c;
	return alen < blen ? -1 : alen > blen ? 1 : 0;
}

static bool tree_type_ok(unsigned type)
{
	return type >= STORE_NODE_FILE && type <= STORE_NODE_SOCKET;
}

/* ---------------------------------------------------------------- encode */

/* With buf NULL the writer only counts, so encode can size its buffer
 * exactly before writing. */
struct tree_writer {
	uint8_t *buf;
	size_t len;
};

static void tree_put(struct tree_writer *w, const void *p, size_t n)
{
	if (w->buf && n)
		memcpy(w->buf + w->len, p, n);
	w->len += n;
}

static void tree_put_u8(struct tree_writer *w, uint8_t v)
{
	tree_put(w, &v, 1);
}

static void tree_put_varint(struct tree_writer *w, uint64_t v)
{
	uint8_t b[10];
	size_t n = 0;
	while (v >= 0x80) {
		b[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	b[n++] = (uint8_t)v;
	tree_put(w, b, n);
}

static void tree_put_svarint(struct tree_writer *w, int64_t v)
{
	tree_put_varint(w, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

static void tree_put_str(struct tree_writer *w, const void *s, size_t len)
{
	tree_put_varint(w, len);
	tree_put(w, s, len);
}

static bool tree_time_ok(const struct timespec *ts)
{
	return ts->tv_nsec >= 0 && ts->tv_nsec < TREE_NSEC_PER_SEC;
}

/* Everything the decoder would reject, so that every encoded tree
 * decodes back. */
static int tree_node_check(const struct store_node *n)
{
	if (!n->name || !tree_name_ok(n->name, strlen(n->name)))
		return SD_EUSAGE;
	if (!tree_type_ok(n->type) || (n->mode & ~TREE_MODE_MASK))
		return SD_EUSAGE;
	if (!tree_time_ok(&n->mtime) || !tree_time_ok(&n->ctime) ||
	    !tree_time_ok(&n->atime))
		return SD_EUSAGE;
	if ((n->type == STORE_NODE_SYMLINK) != (n->target != NULL))
		return SD_EUSAGE;
	if (n->target && n->target[0] == '\0')
		return SD_EUSAGE;
	if (n->nxattrs && !n->xattrs)
		return SD_EUSAGE;
	for (uint32_t i = 0; i < n->nxattrs; i++) {
		const struct store_xattr *x = &n->xattrs[i];
		if (!x->name || x->name[0] == '\0' || (x->len && !x->value))
			return SD_EUSAGE;
	}
	if (n->nextents && (n->type != STORE_NODE_FILE || !n->extents))
		return SD_EUSAGE;
	uint64_t end = 0;
	for (uint32_t i = 0; i < n->nextents; i++) {
		const struct store_extent *e = &n->extents[i];
		if (e->length == 0 || e->offset < end ||
		    e->offset > UINT64_MAX - e->length)
			return SD_EUSAGE;
		end = e->offset + e->length;
	}
	if (n->type != STORE_NODE_DIR && !sd_id_is_zero(&n->subtree))
		return SD_EUSAGE;
	return 0;
}

static void tree_put_time(struct tree_writer *w, const struct timespec *ts)
{
	tree_put_svarint(w, (int64_t)ts->tv_sec);
	tree_put_varint(w, (uint64_t)ts->tv_nsec);
}

static void tree_put_node(struct tree_writer *w, const struct store_node *n)
{
	tree_put_str(w, n->name, strlen(n->name));
	tree_put_u8(w, n->type);
	tree_put_varint(w, n->mode);
	tree_put_varint(w, n->uid);
	tree_put_varint(w, n->gid);
	tree_put_u8(w, (n->user ? TREE_FLAG_USER : 0) |
			       (n->group ? TREE_FLAG_GROUP : 0));
	if (n->user)
		tree_put_str(w, n->user, strlen(n->user));
	if (n->group)
		tree_put_str(w, n->group, strlen(n->group));
	tree_put_time(w, &n->mtime);
	tree_put_time(w, &n->ctime);
	tree_put_time(w, &n->atime);
	tree_put_varint(w, n->size);
	tree_put_varint(w, n->dev);
	tree_put_varint(w, n->inode);
	tree_put_varint(w, n->nlink);
	tree_put_varint(w, n->rdev);
	if (n->type == STORE_NODE_SYMLINK)
		tree_put_str(w, n->target, strlen(n->target));
	tree_put_varint(w, n->nxattrs);
	for (uint32_t i = 0; i < n->nxattrs; i++) {
		const struct store_xattr *x = &n->xattrs[i];
		tree_put_str(w, x->name, strlen(x->name));
		tree_put_str(w, x->value, x->len);
	}
	if (n->type == STORE_NODE_FILE) {
		tree_put_varint(w, n->nextents);
		for (uint32_t i = 0; i < n->nextents; i++) {
			const struct store_extent *e = &n->extents[i];
			tree_put_varint(w, e->offset);
			tree_put_varint(w, e->length);
			tree_put(w, e->id.b, SD_ID_LEN);
		}
	} else if (n->type == STORE_NODE_DIR) {
		tree_put(w, n->subtree.b, SD_ID_LEN);
	}
}

static void tree_put_all(struct tree_writer *w, const struct store_tree *t)
{
	tree_put_u8(w, TREE_FORMAT_VERSION);
	tree_put_varint(w, t->n);
	for (size_t i = 0; i < t->n; i++)
		tree_put_node(w, &t->nodes[i]);
}

int store_tree_encode(const struct store_tree *t, uint8_t **out,
		      size_t *out_len)
{
	if (!t || (t->n && !t->nodes))
		return SD_EUSAGE;
	for (size_t i = 0; i < t->n; i++) {
		int r = tree_node_check(&t->nodes[i]);
		if (r < 0)
			return r;
		if (i > 0 &&
		    strcmp(t->nodes[i - 1].name, t->nodes[i].name) >= 0)
			return SD_EUSAGE;
	}
	struct tree_writer w = { NULL, 0 };
	tree_put_all(&w, t);
	w.buf = malloc(w.len);
	if (!w.buf)
		return -ENOMEM;
	size_t len = w.len;
	w.len = 0;
	tree_put_all(&w, t);
	*out = w.buf;
	*out_len = len;
	return 0;
}

/* ---------------------------------------------------------------- decode */

struct tree_reader {
	const uint8_t *p, *end;
};

/* Where pass two puts things (all NULL in pass one) and how much of each
 * has been used so far (the totals, after pass one). */
struct tree_arena {
	struct store_node *nodes;
	struct store_xattr *xattrs;
	struct store_extent *extents;
	char *strings;
	size_t nxattrs, nextents, nstrings;
};

static int tree_get(struct tree_reader *r, void *dst, size_t n)
{
	if ((size_t)(r->end - r->p) < n)
		return SD_ECORRUPT;
	if (dst)
		memcpy(dst, r->p, n);
	r->p += n;
	return 0;
}

static int tree_get_u8(struct tree_reader *r, uint8_t *out)
{
	return tree_get(r, out, 1);
}

/* Shortest-form LEB128 only: another form of the same number would give
 * the same tree a second encoding. */
static int tree_get_varint(struct tree_reader *r, uint64_t *out)
{
	uint64_t v = 0;
	for (unsigned shift = 0; shift < 64; shift += 7) {
		if (r->p == r->end)
			return SD_ECORRUPT;
		uint8_t b = *r->p++;
		if (shift == 63 && b > 1)
			return SD_ECORRUPT;
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			if (b == 0 && shift > 0)
				return SD_ECORRUPT;
			*out = v;
			return 0;
		}
	}
	return SD_ECORRUPT;
}

static int tree_get_u32(struct tree_reader *r, uint32_t *out)
{
	uint64_t v;
	int rc = tree_get_varint(r, &v);
	if (rc < 0)
		return rc;
	if (v > UINT32_MAX)
		return SD_ECORRUPT;
	*out = (uint32_t)v;
	return 0;
}

static int tree_get_svarint(struct tree_reader *r, int64_t *out)
{
	uint64_t v;
	int rc = tree_get_varint(r, &v);
	if (rc < 0)
		return rc;
	*out = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
	return 0;
}

/* A length-prefixed byte string. *raw points into the buffer. In pass two
 * it is also copied into the arena with a NUL after it. */
static int tree_get_bytes(struct tree_reader *r, struct tree_arena *a,
			  const char **raw, size_t *len, char **copy)
{
	uint64_t n;
	int rc = tree_get_varint(r, &n);
	if (rc < 0)
		return rc;
	if (n > (uint64_t)(r->end - r->p))
		return SD_ECORRUPT;
	*raw = (const char *)r->p;
	*len = (size_t)n;
	if (a->strings) {
		char *s = a->strings + a->nstrings;
		memcpy(s, r->p, *len);
		s[*len] = '\0';
		*copy = s;
	}
	a->nstrings += *len + 1;
	r->p += *len;
	return 0;
}

/* A text string: C strings cannot hold a NUL. */
static int tree_get_text(struct tree_reader *r, struct tree_arena *a,
			 bool nonempty, char **copy)
{
	const char *raw;
	size_t len;
	int rc = tree_get_bytes(r, a, &raw, &len, copy);
	if (rc < 0)
		return rc;
	if ((nonempty && len == 0) || memchr(raw, '\0', len))
		return SD_ECORRUPT;
	return 0;
}

static int tree_get_time(struct tree_reader *r, struct timespec *ts)
{
	int64_t sec;
	uint64_t nsec;
	int rc = tree_get_svarint(r, &sec);
	if (rc == 0)
		rc = tree_get_varint(r, &nsec);
	if (rc < 0)
		return rc;
	if (nsec >= TREE_NSEC_PER_SEC)
		return SD_ECORRUPT;
	ts->tv_sec = (time_t)sec;
	ts->tv_nsec = (long)nsec;
	return 0;
}

static int tree_get_xattrs(struct tree_reader *r, struct tree_arena *a,
			   struct store_node *n)
{
	int rc = tree_get_u32(r, &n->nxattrs);
	if (rc < 0)
		return rc;
	if (a->xattrs && n->nxattrs)
		n->xattrs = a->xattrs + a->nxattrs;
	for (uint32_t i = 0; i < n->nxattrs; i++) {
		struct store_xattr x = { 0 };
		const char *raw;
		size_t len;
		char *value = NULL;
		rc = tree_get_text(r, a, true, &x.name);
		if (rc == 0)
			rc = tree_get_bytes(r, a, &raw, &len, &value);
		if (rc < 0)
			return rc;
		if (len > UINT32_MAX)
			return SD_ECORRUPT;
		x.value = (uint8_t *)value;
		x.len = (uint32_t)len;
		if (a->xattrs)
			a->xattrs[a->nxattrs] = x;
		a->nxattrs++;
	}
	return 0;
}

static int tree_get_extents(struct tree_reader *r, struct tree_arena *a,
			    struct store_node *n)
{
	int rc = tree_get_u32(r, &n->nextents);
	if (rc < 0)
		return rc;
	if (a->extents && n->nextents)
		n->extents = a->extents + a->nextents;
	uint64_t end = 0;
	for (uint32_t i = 0; i < n->nextents; i++) {
		struct store_extent e;
		rc = tree_get_varint(r, &e.offset);
		if (rc == 0)
			rc = tree_get_u32(r, &e.length);
		if (rc == 0)
			rc = tree_get(r, e.id.b, SD_ID_LEN);
		if (rc < 0)
			return rc;
		if (e.length == 0 || e.offset < end ||
		    e.offset > UINT64_MAX - e.length)
			return SD_ECORRUPT;
		end = e.offset + e.length;
		if (a->extents)
			a->extents[a->nextents] = e;
		a->nextents++;
	}
	return 0;
}

/* Parses one entry into *n (pass two) or into scratch (pass one). *name
 * and *name_len point into the buffer, for the caller's order check. */
static int tree_get_node(struct tree_reader *r, struct tree_arena *a,
			 struct store_node *n, const char **name,
			 size_t *name_len)
{
	uint8_t flags;
	int rc = tree_get_bytes(r, a, name, name_len, &n->name);
	if (rc < 0)
		return rc;
	if (!tree_name_ok(*name, *name_len))
		return SD_ECORRUPT;
	if ((rc = tree_get_u8(r, &n->type)) < 0 ||
	    (rc = tree_get_u32(r, &n->mode)) < 0 ||
	    (rc = tree_get_u32(r, &n->uid)) < 0 ||
	    (rc = tree_get_u32(r, &n->gid)) < 0 ||
	    (rc = tree_get_u8(r, &flags)) < 0)
		return rc;
	if (!tree_type_ok(n->type) || (n->mode & ~TREE_MODE_MASK) ||
	    (flags & ~(TREE_FLAG_USER | TREE_FLAG_GROUP)))
		return SD_ECORRUPT;
	if ((flags & TREE_FLAG_USER) &&
	    (rc = tree_get_text(r, a, false, &n->user)) < 0)
		return rc;
	if ((flags & TREE_FLAG_GROUP) &&
	    (rc = tree_get_text(r, a, false, &n->group)) < 0)
		return rc;
	if ((rc = tree_get_time(r, &n->mtime)) < 0 ||
	    (rc = tree_get_time(r, &n->ctime)) < 0 ||
	    (rc = tree_get_time(r, &n->atime)) < 0 ||
	    (rc = tree_get_varint(r, &n->size)) < 0 ||
	    (rc = tree_get_varint(r, &n->dev)) < 0 ||
	    (rc = tree_get_varint(r, &n->inode)) < 0 ||
	    (rc = tree_get_u32(r, &n->nlink)) < 0 ||
	    (rc = tree_get_varint(r, &n->rdev)) < 0)
		return rc;
	if (n->type == STORE_NODE_SYMLINK &&
	    (rc = tree_get_text(r, a, true, &n->target)) < 0)
		return rc;
	if ((rc = tree_get_xattrs(r, a, n)) < 0)
		return rc;
	if (n->type == STORE_NODE_FILE)
		return tree_get_extents(r, a, n);
	if (n->type == STORE_NODE_DIR)
		return tree_get(r, n->subtree.b, SD_ID_LEN);
	return 0;
}

static int tree_parse(const uint8_t *buf, size_t len, struct tree_arena *a,
		      size_t *count)
{
	struct tree_reader r = { buf, buf + len };
	uint8_t version;
	uint64_t n;
	int rc = tree_get_u8(&r, &version);
	if (rc < 0)
		return rc;
	if (version != TREE_FORMAT_VERSION)
		return SD_ECORRUPT;
	if ((rc = tree_get_varint(&r, &n)) < 0)
		return rc;
	/* Every entry takes well over one byte, so this bounds n before
	 * anything is sized by it. */
	if (n > len)
		return SD_ECORRUPT;
	const char *prev = NULL;
	size_t prev_len = 0;
	for (uint64_t i = 0; i < n; i++) {
		struct store_node scratch;
		struct store_node *node = a->nodes ? &a->nodes[i] : &scratch;
		const char *name;
		size_t name_len;
		memset(node, 0, sizeof(*node));
		rc = tree_get_node(&r, a, node, &name, &name_len);
		if (rc < 0)
			return rc;
		if (prev && tree_name_cmp(prev, prev_len, name, name_len) >= 0)
			return SD_ECORRUPT;
		prev = name;
		prev_len = name_len;
	}
	if (r.p != r.end)
		return SD_ECORRUPT;
	*count = (size_t)n;
	return 0;
}

int store_tree_decode(const uint8_t *buf, size_t len, struct store_tree **out)
{
	struct tree_arena a = { 0 };
	size_t n;
	int rc = tree_parse(buf, len, &a, &n);
	if (rc < 0)
		return rc;
	/* Every piece has an alignment of at most that of the node and
	 * a size that is a multiple of its own, so laying them out in this
	 * order keeps each one aligned. */
	size_t off_nodes = sizeof(struct store_tree);
	size_t off_xattrs = off_nodes + n * sizeof(struct store_node);
	size_t off_extents =
		off_xattrs + a.nxattrs * sizeof(struct store_xattr);
	size_t off_strings =
		off_extents + a.nextents * sizeof(struct store_extent);
	uint8_t *mem = malloc(off_strings + a.nstrings);
	if (!mem)
		return -ENOMEM;
	struct store_tree *t = (struct store_tree *)mem;
	struct tree_arena fill = {
		.nodes = (struct store_node *)(mem + off_nodes),
		.xattrs = (struct store_xattr *)(mem + off_xattrs),
		.extents = (struct store_extent *)(mem + off_extents),
		.strings = (char *)(mem + off_strings),
	};
	rc = tree_parse(buf, len, &fill, &n);
	if (rc < 0) {
		free(mem);
		return rc;
	}
	t->nodes = fill.nodes;
	t->n = n;
	*out = t;
	return 0;
}

void store_tree_free(struct store_tree *t)
{
	free(t);
}

/* ---------------------------------------------------------------- lookup */

const struct store_node *store_tree_find(const struct store_tree *t,
					 const char *name)
{
	size_t lo = 0, hi = t ? t->n : 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(name, t->nodes[mid].name);
		if (c == 0)
			return &t->nodes[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

/* strcmp compares as unsigned char, which is memcmp order for strings
 * without NULs. */
static int tree_node_order(const void *a, const void *b)
{
	const struct store_node *x = a, *y = b;
	return strcmp(x->name, y->name);
}

void store_tree_sort(struct store_tree *t)
{
	if (t && t->n > 1)
		qsort(t->nodes, t->n, sizeof(*t->nodes), tree_node_order);
}

void store_node_clear(struct store_node *n)
{
	if (!n)
		return;
	free(n->name);
	free(n->user);
	free(n->group);
	free(n->target);
	for (uint32_t i = 0; n->xattrs && i < n->nxattrs; i++) {
		free(n->xattrs[i].name);
		free(n->xattrs[i].value);
	}
	free(n->xattrs);
	free(n->extents);
	memset(n, 0, sizeof(*n));
}
