/*
 * test_tree.c — tree blob encoding: round trips, determinism, lookups and
 * the decoder's refusal of malformed bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "store.h"

static char *xstrdup(const char *s)
{
	char *p = strdup(s);
	assert_non_null(p);
	return p;
}

static void *xmemdup(const void *p, size_t n)
{
	void *q = malloc(n ? n : 1);
	assert_non_null(q);
	memcpy(q, p, n);
	return q;
}

static void fill_id(sd_id *id, uint8_t seed)
{
	for (int i = 0; i < SD_ID_LEN; i++)
		id->b[i] = (uint8_t)(seed * 31 + i);
}

static struct store_node make_node(const char *name, uint8_t type)
{
	struct store_node n;
	memset(&n, 0, sizeof(n));
	n.name = xstrdup(name);
	n.type = type;
	n.mode = 0644;
	n.uid = 1000;
	n.gid = 1000;
	n.nlink = 1;
	n.mtime = (struct timespec){ 1795000000, 123456789 };
	n.ctime = (struct timespec){ 1795000001, 999999999 };
	n.atime = (struct timespec){ 1795000002, 0 };
	return n;
}

/* A hand-built tree with one node of every type and awkward values. */
static struct store_tree *build_tree(void)
{
	struct store_tree *t = calloc(1, sizeof(*t));
	assert_non_null(t);
	t->nodes = calloc(9, sizeof(*t->nodes));
	assert_non_null(t->nodes);
	size_t k = 0;

	struct store_node f = make_node("한글 파일.md", STORE_NODE_FILE);
	f.mode = 04755;
	f.user = xstrdup("작가");
	f.group = xstrdup("staff");
	f.size = 5000ull * 1024 * 1024;
	f.dev = UINT64_MAX;
	f.inode = 1ull << 63;
	f.nlink = UINT32_MAX;
	f.uid = UINT32_MAX;
	f.mtime = (struct timespec){ -1, 999999999 };
	f.ctime = (struct timespec){ -5000000000LL, 1 };
	f.nextents = 300;
	f.extents = calloc(f.nextents, sizeof(*f.extents));
	assert_non_null(f.extents);
	for (uint32_t i = 0; i < f.nextents; i++) {
		/* gaps are holes */
		f.extents[i].offset = (uint64_t)i * 5 * 1024 * 1024;
		f.extents[i].length = 1024 * 1024 + i;
		fill_id(&f.extents[i].id, (uint8_t)i);
	}
	f.nxattrs = 3;
	f.xattrs = calloc(3, sizeof(*f.xattrs));
	assert_non_null(f.xattrs);
	static const uint8_t bin[] = { 0, 1, 2, 0, 0xff, 0 };
	f.xattrs[0] = (struct store_xattr){ xstrdup("security.selinux"),
					    xmemdup("u:r\0x", 5), 5 };
	f.xattrs[1] = (struct store_xattr){ xstrdup("user.bin"),
					    xmemdup(bin, sizeof(bin)),
					    sizeof(bin) };
	f.xattrs[2] = (struct store_xattr){ xstrdup("user.empty"), NULL, 0 };
	t->nodes[k++] = f;

	struct store_node d = make_node("a dir with spaces", STORE_NODE_DIR);
	d.mode = 01777;
	fill_id(&d.subtree, 200);
	d.nlink = 7;
	t->nodes[k++] = d;

	struct store_node l = make_node("link", STORE_NODE_SYMLINK);
	l.target = xstrdup("../한글 파일.md");
	l.size = strlen(l.target);
	l.mode = 0777;
	t->nodes[k++] = l;

	struct store_node p = make_node("fifo", STORE_NODE_FIFO);
	p.atime = (struct timespec){ INT64_MIN, 0 };
	t->nodes[k++] = p;

	struct store_node c = make_node("null", STORE_NODE_CHARDEV);
	c.rdev = (1ull << 8) | 3;
	c.uid = 0;
	c.user = xstrdup("");
	t->nodes[k++] = c;

	struct store_node b = make_node("sda", STORE_NODE_BLOCKDEV);
	b.rdev = UINT64_MAX - 1;
	b.mtime = (struct timespec){ INT64_MAX, 999999999 };
	t->nodes[k++] = b;

	struct store_node s = make_node("sock", STORE_NODE_SOCKET);
	s.group = xstrdup("nogroup");
	t->nodes[k++] = s;

	struct store_node e = make_node("empty file", STORE_NODE_FILE);
	e.size = 0;
	t->nodes[k++] = e;

	struct store_node h = make_node(".hidden", STORE_NODE_FILE);
	h.size = 10;
	h.nextents = 1;
	h.extents = calloc(1, sizeof(*h.extents));
	assert_non_null(h.extents);
	h.extents[0] = (struct store_extent){ 0, 10, { { 0 } } };
	fill_id(&h.extents[0].id, 9);
	t->nodes[k++] = h;

	t->n = k;
	store_tree_sort(t);
	return t;
}

static void free_built(struct store_tree *t)
{
	for (size_t i = 0; i < t->n; i++)
		store_node_clear(&t->nodes[i]);
	free(t->nodes);
	free(t);
}

static void assert_str_eq_nullable(const char *a, const char *b)
{
	if (!a || !b)
		assert_ptr_equal(a, b);
	else
		assert_string_equal(a, b);
}

static void assert_ts_eq(const struct timespec *a, const struct timespec *b)
{
	assert_true(a->tv_sec == b->tv_sec);
	assert_int_equal(a->tv_nsec, b->tv_nsec);
}

static void assert_node_eq(const struct store_node *a,
			   const struct store_node *b)
{
	assert_string_equal(a->name, b->name);
	assert_int_equal(a->type, b->type);
	assert_int_equal(a->mode, b->mode);
	assert_int_equal(a->uid, b->uid);
	assert_int_equal(a->gid, b->gid);
	assert_str_eq_nullable(a->user, b->user);
	assert_str_eq_nullable(a->group, b->group);
	assert_ts_eq(&a->mtime, &b->mtime);
	assert_ts_eq(&a->ctime, &b->ctime);
	assert_ts_eq(&a->atime, &b->atime);
	assert_true(a->size == b->size);
	assert_true(a->dev == b->dev);
	assert_true(a->inode == b->inode);
	assert_int_equal(a->nlink, b->nlink);
	assert_true(a->rdev == b->rdev);
	assert_str_eq_nullable(a->target, b->target);
	assert_int_equal(a->nxattrs, b->nxattrs);
	for (uint32_t i = 0; i < a->nxattrs; i++) {
		assert_string_equal(a->xattrs[i].name, b->xattrs[i].name);
		assert_int_equal(a->xattrs[i].len, b->xattrs[i].len);
		if (a->xattrs[i].len)
			assert_memory_equal(a->xattrs[i].value,
					    b->xattrs[i].value,
					    a->xattrs[i].len);
	}
	assert_int_equal(a->nextents, b->nextents);
	for (uint32_t i = 0; i < a->nextents; i++) {
		assert_true(a->extents[i].offset == b->extents[i].offset);
		assert_int_equal(a->extents[i].length, b->extents[i].length);
		assert_memory_equal(a->extents[i].id.b, b->extents[i].id.b,
				    SD_ID_LEN);
	}
	assert_memory_equal(a->subtree.b, b->subtree.b, SD_ID_LEN);
}

static void test_tree__round_trip(void **state)
{
	(void)state;
	struct store_tree *t = build_tree();
	uint8_t *buf;
	size_t len;
	assert_int_equal(store_tree_encode(t, &buf, &len), 0);
	assert_int_equal(buf[0], 1);

	struct store_tree *d;
	assert_int_equal(store_tree_decode(buf, len, &d), 0);
	assert_int_equal(d->n, t->n);
	for (size_t i = 0; i < t->n; i++)
		assert_node_eq(&d->nodes[i], &t->nodes[i]);
	/* binary xattr values come back intact, NULs included */
	const struct store_node *f = store_tree_find(d, "한글 파일.md");
	assert_non_null(f);
	assert_memory_equal(f->xattrs[0].value, "u:r\0x", 5);
	assert_non_null(f->xattrs[2].value);

	store_tree_free(d);
	free(buf);
	free_built(t);
}

static void test_tree__empty(void **state)
{
	(void)state;
	struct store_tree t = { NULL, 0 };
	uint8_t *buf;
	size_t len;
	assert_int_equal(store_tree_encode(&t, &buf, &len), 0);
	assert_int_equal(len, 2);
	struct store_tree *d;
	assert_int_equal(store_tree_decode(buf, len, &d), 0);
	assert_int_equal(d->n, 0);
	assert_null(store_tree_find(d, "x"));
	store_tree_free(d);
	free(buf);
	store_tree_free(NULL);
}

static void test_tree__deterministic(void **state)
{
	(void)state;
	struct store_tree *t = build_tree();
	uint8_t *a, *b, *c;
	size_t alen, blen, clen;
	assert_int_equal(store_tree_encode(t, &a, &alen), 0);
	assert_int_equal(store_tree_encode(t, &b, &blen), 0);
	assert_int_equal(alen, blen);
	assert_memory_equal(a, b, alen);

	/* decoding and encoding again gives the same bytes */
	struct store_tree *d;
	assert_int_equal(store_tree_decode(a, alen, &d), 0);
	assert_int_equal(store_tree_encode(d, &c, &clen), 0);
	assert_int_equal(alen, clen);
	assert_memory_equal(a, c, alen);

	store_tree_free(d);
	free(a);
	free(b);
	free(c);
	free_built(t);
}

static void test_tree__find(void **state)
{
	(void)state;
	struct store_tree *t = build_tree();
	uint8_t *buf;
	size_t len;
	assert_int_equal(store_tree_encode(t, &buf, &len), 0);
	struct store_tree *d;
	assert_int_equal(store_tree_decode(buf, len, &d), 0);
	for (size_t i = 0; i < d->n; i++) {
		const struct store_node *n = store_tree_find(d, t->nodes[i].name);
		assert_ptr_equal(n, &d->nodes[i]);
	}
	assert_string_equal(d->nodes[0].name, ".hidden");
	assert_string_equal(d->nodes[d->n - 1].name, "한글 파일.md");
	assert_null(store_tree_find(d, "missing"));
	assert_null(store_tree_find(d, ""));
	assert_null(store_tree_find(d, "a dir"));
	assert_null(store_tree_find(d, "link2"));
	assert_null(store_tree_find(d, "\xff"));
	store_tree_free(d);
	free(buf);
	free_built(t);
}

static void test_tree__sort_and_clear(void **state)
{
	(void)state;
	struct store_tree t;
	t.n = 4;
	t.nodes = calloc(t.n, sizeof(*t.nodes));
	assert_non_null(t.nodes);
	t.nodes[0] = make_node("b", STORE_NODE_FILE);
	t.nodes[1] = make_node("\xea\xb0\x80", STORE_NODE_FILE); /* 가 */
	t.nodes[2] = make_node("a b", STORE_NODE_FILE);
	t.nodes[3] = make_node("B", STORE_NODE_FILE);
	uint8_t *buf;
	size_t len;
	assert_int_equal(store_tree_encode(&t, &buf, &len), SD_EUSAGE);
	store_tree_sort(&t);
	assert_string_equal(t.nodes[0].name, "B");
	assert_string_equal(t.nodes[1].name, "a b");
	assert_string_equal(t.nodes[2].name, "b");
	assert_string_equal(t.nodes[3].name, "\xea\xb0\x80");
	assert_int_equal(store_tree_encode(&t, &buf, &len), 0);
	free(buf);
	for (size_t i = 0; i < t.n; i++) {
		store_node_clear(&t.nodes[i]);
		assert_null(t.nodes[i].name);
	}
	store_node_clear(NULL);
	free(t.nodes);
}

static int encode_one(struct store_node *n)
{
	struct store_tree t = { n, 1 };
	uint8_t *buf = NULL;
	size_t len;
	int r = store_tree_encode(&t, &buf, &len);
	free(buf);
	return r;
}

static void test_tree__encode_rejects(void **state)
{
	(void)state;
	struct store_node n[2];
	n[0] = make_node("same", STORE_NODE_FILE);
	n[1] = make_node("same", STORE_NODE_FILE);
	struct store_tree t = { n, 2 };
	uint8_t *buf;
	size_t len;
	assert_int_equal(store_tree_encode(&t, &buf, &len), SD_EUSAGE);
	store_node_clear(&n[1]);

	static const char *const bad_names[] = { "", ".", "..", "a/b", "/" };
	for (size_t i = 0; i < sizeof(bad_names) / sizeof(*bad_names); i++) {
		struct store_node b = make_node(bad_names[i], STORE_NODE_FIFO);
		assert_int_equal(encode_one(&b), SD_EUSAGE);
		store_node_clear(&b);
	}
	struct store_node *x = &n[0];
	assert_int_equal(encode_one(x), 0);
	x->mtime.tv_nsec = 1000000000;
	assert_int_equal(encode_one(x), SD_EUSAGE);
	x->mtime.tv_nsec = -1;
	assert_int_equal(encode_one(x), SD_EUSAGE);
	x->mtime.tv_nsec = 0;
	x->type = 9;
	assert_int_equal(encode_one(x), SD_EUSAGE);
	x->type = STORE_NODE_SYMLINK; /* without a target */
	assert_int_equal(encode_one(x), SD_EUSAGE);
	x->type = STORE_NODE_FILE;
	x->mode = 0100644; /* file type bits do not belong in mode */
	assert_int_equal(encode_one(x), SD_EUSAGE);
	x->mode = 0644;
	fill_id(&x->subtree, 1); /* a file has no subtree */
	assert_int_equal(encode_one(x), SD_EUSAGE);
	memset(&x->subtree, 0, sizeof(x->subtree));

	struct store_extent ext[2] = { { 0, 100, { { 0 } } },
				       { 50, 100, { { 0 } } } };
	x->extents = ext;
	x->nextents = 2; /* overlapping */
	assert_int_equal(encode_one(x), SD_EUSAGE);
	ext[1].offset = 100;
	assert_int_equal(encode_one(x), 0);
	ext[1].length = 0;
	assert_int_equal(encode_one(x), SD_EUSAGE);
	x->type = STORE_NODE_DIR; /* extents belong to files */
	ext[1].length = 1;
	assert_int_equal(encode_one(x), SD_EUSAGE);
	x->extents = NULL;
	x->nextents = 0;
	store_node_clear(x);
}

/* The smallest valid entry, written out by hand: pins the format. */
static const uint8_t golden_fifo[] = {
	1,			/* version */
	1,			/* one entry */
	1, 'x',			/* name */
	STORE_NODE_FIFO,	/* type */
	0xa4, 0x03,		/* mode 0644 */
	0, 0,			/* uid, gid */
	0,			/* flags */
	0, 0, 0, 0, 0, 0,	/* mtime, ctime, atime */
	0, 0, 0, 1, 0,		/* size, dev, inode, nlink, rdev */
	0,			/* xattrs */
};

static void test_tree__golden(void **state)
{
	(void)state;
	struct store_node n;
	memset(&n, 0, sizeof(n));
	n.name = xstrdup("x");
	n.type = STORE_NODE_FIFO;
	n.mode = 0644;
	n.nlink = 1;
	struct store_tree t = { &n, 1 };
	uint8_t *buf;
	size_t len;
	assert_int_equal(store_tree_encode(&t, &buf, &len), 0);
	assert_int_equal(len, sizeof(golden_fifo));
	assert_memory_equal(buf, golden_fifo, len);
	free(buf);
	store_node_clear(&n);

	struct store_tree *d;
	assert_int_equal(store_tree_decode(golden_fifo, sizeof(golden_fifo), &d),
			 0);
	assert_int_equal(d->n, 1);
	assert_string_equal(d->nodes[0].name, "x");
	store_tree_free(d);
}

static int decode_patched(size_t at, const uint8_t *bytes, size_t n,
			  size_t cut)
{
	uint8_t buf[64];
	size_t len = sizeof(golden_fifo);
	memcpy(buf, golden_fifo, at);
	memcpy(buf + at, bytes, n);
	memcpy(buf + at + n, golden_fifo + at + cut, len - at - cut);
	len = len - cut + n;
	struct store_tree *d = NULL;
	int r = store_tree_decode(buf, len, &d);
	store_tree_free(d);
	return r;
}

static void test_tree__decode_rejects_fields(void **state)
{
	(void)state;
	/* sanity: replacing a byte by itself decodes */
	assert_int_equal(decode_patched(4, (uint8_t[]){ 4 }, 1, 1), 0);
	assert_int_equal(decode_patched(0, (uint8_t[]){ 2 }, 1, 1),
			 SD_ECORRUPT); /* version */
	assert_int_equal(decode_patched(1, (uint8_t[]){ 2 }, 1, 1),
			 SD_ECORRUPT); /* count too high */
	assert_int_equal(decode_patched(1, (uint8_t[]){ 0 }, 1, 1),
			 SD_ECORRUPT); /* trailing bytes */
	assert_int_equal(decode_patched(3, (uint8_t[]){ '/' }, 1, 1),
			 SD_ECORRUPT);
	assert_int_equal(decode_patched(3, (uint8_t[]){ '.' }, 1, 1),
			 SD_ECORRUPT);
	assert_int_equal(decode_patched(3, (uint8_t[]){ 0 }, 1, 1),
			 SD_ECORRUPT);
	assert_int_equal(decode_patched(2, (uint8_t[]){ 0 }, 1, 2),
			 SD_ECORRUPT); /* empty name */
	assert_int_equal(decode_patched(2, (uint8_t[]){ 2, '.', '.' }, 3, 2),
			 SD_ECORRUPT);
	assert_int_equal(decode_patched(2, (uint8_t[]){ 2, '.', 'a' }, 3, 2),
			 0);
	assert_int_equal(decode_patched(4, (uint8_t[]){ 0 }, 1, 1),
			 SD_ECORRUPT); /* type 0 */
	assert_int_equal(decode_patched(4, (uint8_t[]){ 8 }, 1, 1),
			 SD_ECORRUPT); /* type 8 */
	assert_int_equal(decode_patched(5, (uint8_t[]){ 0x80, 0x20 }, 2, 2),
			 SD_ECORRUPT); /* mode 010000 */
	assert_int_equal(decode_patched(7, (uint8_t[]){ 0x80, 0 }, 2, 1),
			 SD_ECORRUPT); /* non-minimal varint */
	assert_int_equal(decode_patched(7,
					(uint8_t[]){ 0x80, 0x80, 0x80, 0x80,
						     0x10 },
					5, 1),
			 SD_ECORRUPT); /* uid 2^32 */
	assert_int_equal(decode_patched(7,
					(uint8_t[]){ 0xff, 0xff, 0xff, 0xff,
						     0x0f },
					5, 1),
			 0); /* uid 2^32-1 */
	assert_int_equal(decode_patched(9, (uint8_t[]){ 4 }, 1, 1),
			 SD_ECORRUPT); /* unknown flag */
	assert_int_equal(decode_patched(9, (uint8_t[]){ 1, 0 }, 2, 1),
			 0); /* empty user name */
	/* mtime nanoseconds 999999999, then 1e9 */
	assert_int_equal(decode_patched(11,
					(uint8_t[]){ 0xff, 0x93, 0xeb, 0xdc,
						     0x03 },
					5, 1),
			 0);
	assert_int_equal(decode_patched(11,
					(uint8_t[]){ 0x80, 0x94, 0xeb, 0xdc,
						     0x03 },
					5, 1),
			 SD_ECORRUPT);
	/* a varint longer than 64 bits */
	assert_int_equal(decode_patched(16,
					(uint8_t[]){ 0xff, 0xff, 0xff, 0xff,
						     0xff, 0xff, 0xff, 0xff,
						     0xff, 0x02 },
					10, 1),
			 SD_ECORRUPT);
	assert_int_equal(decode_patched(16,
					(uint8_t[]){ 0xff, 0xff, 0xff, 0xff,
						     0xff, 0xff, 0xff, 0xff,
						     0xff, 0x01 },
					10, 1),
			 0); /* size UINT64_MAX */
	/* xattr count with no xattrs behind it */
	assert_int_equal(decode_patched(21, (uint8_t[]){ 1 }, 1, 1),
			 SD_ECORRUPT);
	/* an xattr with an empty name */
	assert_int_equal(decode_patched(21, (uint8_t[]){ 1, 0, 0 }, 3, 1),
			 SD_ECORRUPT);
	assert_int_equal(decode_patched(21, (uint8_t[]){ 1, 1, 'a', 1, 0 }, 5,
					1),
			 0);
}

/* Encodes two FILE entries; the names and extents can then be patched. */
static void encode_pair(const char *a, const char *b, uint8_t **buf,
			size_t *len)
{
	struct store_node n[2];
	n[0] = make_node(a, STORE_NODE_FILE);
	n[1] = make_node(b, STORE_NODE_FILE);
	struct store_extent e[2] = { { 0, 10, { { 0 } } },
				     { 10, 10, { { 0 } } } };
	n[1].extents = e;
	n[1].nextents = 2;
	struct store_tree t = { n, 2 };
	assert_int_equal(store_tree_encode(&t, buf, len), 0);
	n[1].extents = NULL;
	n[1].nextents = 0;
	store_node_clear(&n[0]);
	store_node_clear(&n[1]);
}

static uint8_t *find_bytes(uint8_t *buf, size_t len, const char *s)
{
	uint8_t *p = memmem(buf, len, s, strlen(s));
	assert_non_null(p);
	return p;
}

static void test_tree__decode_rejects_order(void **state)
{
	(void)state;
	uint8_t *buf;
	size_t len;
	struct store_tree *d;

	encode_pair("aa", "ab", &buf, &len);
	assert_int_equal(store_tree_decode(buf, len, &d), 0);
	store_tree_free(d);
	find_bytes(buf, len, "ab")[1] = 'a'; /* duplicate */
	assert_int_equal(store_tree_decode(buf, len, &d), SD_ECORRUPT);
	find_bytes(buf, len, "aa")[1] = 'c'; /* first "aa" -> "ac" > "aa" */
	assert_int_equal(store_tree_decode(buf, len, &d), SD_ECORRUPT);
	free(buf);

	/* a shorter prefix sorts first */
	encode_pair("a", "ab", &buf, &len);
	assert_int_equal(store_tree_decode(buf, len, &d), 0);
	store_tree_free(d);
	free(buf);

	/* the extents of the second entry: offset 0, 10 -> 0, 5 overlaps */
	encode_pair("a", "b", &buf, &len);
	uint8_t *ext = buf + len - 2 * (2 + SD_ID_LEN) - 1;
	assert_int_equal(ext[0], 2); /* extent count */
	assert_int_equal(ext[1], 0);
	assert_int_equal(ext[2 + SD_ID_LEN + 1], 10);
	ext[2 + SD_ID_LEN + 1] = 5;
	assert_int_equal(store_tree_decode(buf, len, &d), SD_ECORRUPT);
	ext[2 + SD_ID_LEN + 1] = 10;
	ext[2] = 0; /* zero length */
	assert_int_equal(store_tree_decode(buf, len, &d), SD_ECORRUPT);
	ext[2] = 10;
	assert_int_equal(store_tree_decode(buf, len, &d), 0);
	store_tree_free(d);
	free(buf);
}

static void test_tree__decode_rejects_truncation(void **state)
{
	(void)state;
	struct store_tree *t = build_tree();
	uint8_t *buf;
	size_t len;
	assert_int_equal(store_tree_encode(t, &buf, &len), 0);
	for (size_t cut = 0; cut < len; cut++) {
		/* a fresh copy of exactly `cut` bytes, so ASan sees any
		 * read past the end */
		uint8_t *part = malloc(cut ? cut : 1);
		assert_non_null(part);
		memcpy(part, buf, cut);
		struct store_tree *d = NULL;
		assert_int_equal(store_tree_decode(part, cut, &d), SD_ECORRUPT);
		assert_null(d);
		free(part);
	}
	free(buf);
	free_built(t);
}

/* Random corruption: the decoder must never crash, and whatever it does
 * accept must be canonical (encode gives back the same bytes). */
static void test_tree__decode_hostile_bytes(void **state)
{
	(void)state;
	struct store_tree *t = build_tree();
	uint8_t *buf;
	size_t len;
	assert_int_equal(store_tree_encode(t, &buf, &len), 0);
	/* keep it small so every byte gets hit */
	uint8_t *small = buf;
	size_t small_len = len;
	struct store_tree sub = { t->nodes + 3, 5 };
	assert_int_equal(store_tree_encode(&sub, &small, &small_len), 0);
	srand(12345);
	unsigned accepted = 0;
	for (int iter = 0; iter < 20000; iter++) {
		uint8_t *copy = malloc(small_len);
		assert_non_null(copy);
		memcpy(copy, small, small_len);
		int flips = 1 + rand() % 3;
		for (int k = 0; k < flips; k++)
			copy[(size_t)rand() % small_len] ^=
				(uint8_t)(1u << (rand() % 8));
		struct store_tree *d = NULL;
		int r = store_tree_decode(copy, small_len, &d);
		if (r == 0) {
			uint8_t *again;
			size_t again_len;
			accepted++;
			assert_int_equal(store_tree_encode(d, &again, &again_len),
					 0);
			assert_int_equal(again_len, small_len);
			assert_memory_equal(again, copy, small_len);
			free(again);
			store_tree_free(d);
		} else {
			assert_int_equal(r, SD_ECORRUPT);
		}
		free(copy);
	}
	/* flips inside names and times are legal changes */
	assert_true(accepted > 0);
	free(small);
	free(buf);
	free_built(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tree__round_trip),
		cmocka_unit_test(test_tree__empty),
		cmocka_unit_test(test_tree__deterministic),
		cmocka_unit_test(test_tree__find),
		cmocka_unit_test(test_tree__sort_and_clear),
		cmocka_unit_test(test_tree__encode_rejects),
		cmocka_unit_test(test_tree__golden),
		cmocka_unit_test(test_tree__decode_rejects_fields),
		cmocka_unit_test(test_tree__decode_rejects_order),
		cmocka_unit_test(test_tree__decode_rejects_truncation),
		cmocka_unit_test(test_tree__decode_hostile_bytes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
