/*
 * test_pack.c — pack building and parsing, zstd round trips, and the local
 * backend (durable put, cached concurrent preads, listing, removal).
 *
 * The trailer parser reads bytes from disk that may be damaged, so most of
 * the cases here feed it broken packs: every single-bit flip of the
 * trailer, truncations, bad magic, and hand-encoded trailers whose hash is
 * right but whose entries lie.
 *
 * The descriptor cache is tested deterministically by interposing pread()
 * and open(): one reader is parked inside the call while the main thread
 * forces every cache slot to be evicted, or removes the pack. A descriptor
 * closed under the parked reader would be reused by the next open() and
 * hand it another pack's bytes.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "store_i.h"

#define ENTRY_LEN 50u
#define FOOTER_LEN STORE_PACK_FOOTER_LEN
#define NPACKS 80 /* more than the descriptor cache holds */
#define PACK_BYTES 4096

/* ---- interposed pread() and open(): park one thread inside either */

enum gate_at { GATE_NONE, GATE_PREAD, GATE_OPEN };

static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static int gate_state;			/* 0 idle, 1 parked, 2 released */
static _Thread_local enum gate_at gate_mine; /* where this thread parks */
static ssize_t (*real_pread)(int, void *, size_t, off_t);
static int (*real_open)(const char *, int, ...);
static pthread_once_t real_once = PTHREAD_ONCE_INIT;

static void real_find(void)
{
	*(void **)&real_pread = dlsym(RTLD_NEXT, "pread");
	*(void **)&real_open = dlsym(RTLD_NEXT, "open");
}

static void gate_pass(enum gate_at at)
{
	if (gate_mine != at)
		return;
	gate_mine = GATE_NONE;
	pthread_mutex_lock(&gate_lock);
	gate_state = 1;
	pthread_cond_broadcast(&gate_cond);
	while (gate_state != 2)
		pthread_cond_wait(&gate_cond, &gate_lock);
	pthread_mutex_unlock(&gate_lock);
}

ssize_t pread(int fd, void *buf, size_t n, off_t off)
{
	pthread_once(&real_once, real_find);
	gate_pass(GATE_PREAD);
	return real_pread(fd, buf, n, off);
}

int open(const char *path, int flags, ...)
{
	pthread_once(&real_once, real_find);
	mode_t mode = 0;
	if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) {
		va_list ap;
		va_start(ap, flags);
		mode = (mode_t)va_arg(ap, int);
		va_end(ap);
	}
	int fd = real_open(path, flags, mode);
	gate_pass(GATE_OPEN);
	return fd;
}

static void gate_wait_parked(void)
{
	pthread_mutex_lock(&gate_lock);
	while (gate_state != 1)
		pthread_cond_wait(&gate_cond, &gate_lock);
	pthread_mutex_unlock(&gate_lock);
}

static void gate_release(void)
{
	pthread_mutex_lock(&gate_lock);
	gate_state = 2;
	pthread_cond_broadcast(&gate_cond);
	pthread_mutex_unlock(&gate_lock);
}

/* ---- fixture and helpers */

struct fixture {
	char dir[64];		/* fresh temp directory */
	char *packs;		/* dir/packs */
	struct store_backend *be;
};

static int rm_entry(const char *path, const struct stat *sb, int flag,
		    struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	*state = f;
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_pack.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	f->packs = store_path_join(f->dir, "packs");
	if (!f->packs || mkdir(f->packs, 0755) < 0)
		return -1;
	return store_backend_local_new(f->packs, &f->be) < 0 ? -1 : 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	store_backend_free(f->be);
	int r = nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f->packs);
	free(f);
	return r;
}

static int be_put(struct store_backend *be, const sd_id *id, const void *d,
		  size_t n)
{
	return be->ops->pack_put(be->state, id, d, n);
}

static int be_read(struct store_backend *be, const sd_id *id, uint64_t off,
		   void *buf, size_t n)
{
	return be->ops->pack_read(be->state, id, off, buf, n);
}

static int be_list(struct store_backend *be,
		   int (*cb)(const sd_id *, uint64_t, void *), void *ctx)
{
	return be->ops->pack_list(be->state, cb, ctx);
}

static void fill_random(uint8_t *buf, size_t len, uint64_t seed)
{
	uint64_t s = seed ? seed : 1;
	for (size_t i = 0; i < len; i++) {
		s ^= s >> 12;
		s ^= s << 25;
		s ^= s >> 27;
		buf[i] = (uint8_t)((s * 0x2545f4914f6cdd1dULL) >> 56);
	}
}

static void fill_text(uint8_t *buf, size_t len)
{
	static const char words[] =
		"the quick brown fox jumps over the lazy dog; snapdraft keeps "
		"every draft. ";
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)words[i % (sizeof(words) - 1)];
}

/* Parses the whole tail; on failure checks nothing was handed out. */
static int parse(const uint8_t *tail, size_t len, uint64_t size)
{
	struct store_pack_entry *got = NULL;
	size_t gn = 99;
	uint32_t tlen;
	int r = store_pack_trailer_parse(tail, len, size, &tlen, &got, &gn);
	if (r != 0) {
		assert_null(got);
		assert_int_equal(gn, 0);
	}
	free(got);
	return r;
}

struct sample {
	struct store_pack_builder *b;
	const uint8_t *data;	/* borrowed from b */
	size_t len, n;
	sd_id id;
	const struct store_pack_entry *e;
};

/* A finished pack of three blobs: compressed text, a plain tree blob and
 * an empty blob. */
static void sample_build(struct sample *s)
{
	struct store_zctx *z = NULL;
	assert_int_equal(store_pack_builder_new(&s->b), 0);
	assert_int_equal(store_zctx_new(3, &z), 0);
	uint8_t text[20000], tree[333];
	fill_text(text, sizeof(text));
	fill_random(tree, sizeof(tree), 5);
	size_t cap = store_compress_bound(sizeof(text)), clen = 0;
	uint8_t *c = malloc(cap);
	assert_non_null(c);
	assert_int_equal(store_compress(z, text, sizeof(text), c, cap, &clen), 0);
	sd_id id;
	sd_hash(text, sizeof(text), &id);
	assert_int_equal(store_pack_builder_add(s->b, &id, STORE_BLOB_DATA,
			 STORE_BLOB_COMPRESSED, c, (uint32_t)clen, sizeof(text)), 0);
	sd_hash(tree, sizeof(tree), &id);
	assert_int_equal(store_pack_builder_add(s->b, &id, STORE_BLOB_TREE, 0,
			 tree, sizeof(tree), sizeof(tree)), 0);
	sd_hash(NULL, 0, &id);
	assert_int_equal(store_pack_builder_add(s->b, &id, STORE_BLOB_DATA, 0,
						NULL, 0, 0), 0);
	assert_int_equal(store_pack_builder_count(s->b), 3);
	size_t predicted = store_pack_builder_size(s->b);
	assert_int_equal(store_pack_builder_finish(s->b, &s->data, &s->len,
			 &s->id, &s->e, &s->n), 0);
	assert_int_equal(s->len, predicted);
	free(c);
	store_zctx_free(z);
}

/* ---- builder and parser */

static void test_pack__builder_round_trip(void **state)
{
	(void)state;
	struct sample s;
	sample_build(&s);
	const uint8_t *data = s.data;
	size_t len = s.len;
	const struct store_pack_entry *e = s.e;
	sd_id h;
	assert_int_equal(s.n, 3);
	assert_memory_equal(data, "SDPACK01", 8);
	assert_memory_equal(data + len - 8, "SDPKEND1", 8);
	sd_hash(data, len, &h);
	assert_memory_equal(h.b, s.id.b, SD_ID_LEN);
	/* Layout pinned byte by byte: blobs follow the header back to back,
	 * the trailer follows the last blob. */
	assert_int_equal(e[0].offset, 8);
	assert_int_equal(e[1].offset, 8 + e[0].stored_len);
	size_t t = len - FOOTER_LEN - 3 * ENTRY_LEN;
	assert_int_equal(t, e[2].offset);
	assert_memory_equal(data + t, e[0].id.b, SD_ID_LEN);
	assert_int_equal(data[t + 32], STORE_BLOB_DATA);
	assert_int_equal(data[t + 33], STORE_BLOB_COMPRESSED);
	assert_int_equal(data[t + 34], 8);
	assert_int_equal(data[t + 46], 20000 & 0xff);
	assert_int_equal(data[t + 47], 20000 >> 8);
	assert_int_equal(data[len - FOOTER_LEN], 3);
	assert_int_equal(data[len - 12], 150);
	sd_hash(data + t, 3 * ENTRY_LEN, &h);
	assert_memory_equal(data + len - FOOTER_LEN + 4, h.b, SD_ID_LEN);

	struct store_pack_entry *got = NULL;
	size_t gn = 0;
	uint32_t tlen = 0;
	assert_int_equal(store_pack_trailer_parse(data, len, len, &tlen, &got,
						  &gn), 0);
	assert_int_equal(tlen, 150);
	assert_int_equal(gn, 3);
	for (size_t i = 0; i < 3; i++) {
		assert_memory_equal(got[i].id.b, e[i].id.b, SD_ID_LEN);
		assert_int_equal(got[i].type, e[i].type);
		assert_int_equal(got[i].flags, e[i].flags);
		assert_int_equal(got[i].offset, e[i].offset);
		assert_int_equal(got[i].stored_len, e[i].stored_len);
		assert_int_equal(got[i].plain_len, e[i].plain_len);
	}
	/* The blobs decode back to their ids. */
	uint8_t *plain = malloc(got[0].plain_len);
	assert_non_null(plain);
	assert_int_equal(store_decompress(data + got[0].offset,
			 got[0].stored_len, plain, got[0].plain_len), 0);
	sd_hash(plain, got[0].plain_len, &h);
	assert_memory_equal(h.b, got[0].id.b, SD_ID_LEN);
	sd_hash(data + got[1].offset, got[1].plain_len, &h);
	assert_memory_equal(h.b, got[1].id.b, SD_ID_LEN);
	free(plain);
	free(got);

	/* Just the footer: the trailer length, no entries. */
	got = calloc(1, 1); /* must be replaced by NULL */
	struct store_pack_entry *old = got;
	tlen = 0;
	assert_int_equal(store_pack_trailer_parse(data + len - FOOTER_LEN,
			 FOOTER_LEN, len, &tlen, &got, &gn), 0);
	free(old);
	assert_int_equal(tlen, 150);
	assert_null(got);
	assert_int_equal(gn, 0);

	/* finish twice gives the same pack; reset starts an empty one. */
	const uint8_t *d2;
	size_t l2;
	sd_id id2;
	assert_int_equal(store_pack_builder_finish(s.b, &d2, &l2, &id2, NULL,
						   NULL), 0);
	assert_int_equal(l2, len);
	assert_memory_equal(id2.b, s.id.b, SD_ID_LEN);
	store_pack_builder_reset(s.b);
	assert_int_equal(store_pack_builder_count(s.b), 0);
	assert_int_equal(store_pack_builder_size(s.b), 8 + FOOTER_LEN);
	assert_int_equal(store_pack_builder_finish(s.b, &d2, &l2, &id2, &e,
						   &gn), 0);
	assert_int_equal(l2, 8 + FOOTER_LEN);
	assert_int_equal(gn, 0);
	assert_int_equal(store_pack_trailer_parse(d2, l2, l2, &tlen, &got, &gn),
			 0);
	assert_int_equal(tlen, 0);
	assert_int_equal(gn, 0);
	free(got);
	store_pack_builder_free(s.b);
	store_pack_builder_free(NULL);
}

static void test_pack__builder_rejects(void **state)
{
	(void)state;
	struct store_pack_builder *b = NULL;
	assert_int_equal(store_pack_builder_new(&b), 0);
	sd_id id;
	uint8_t x[8] = "1234567";
	sd_hash(x, sizeof(x), &id);
	const uint8_t D = STORE_BLOB_DATA, Z = STORE_BLOB_COMPRESSED;
	const struct { uint8_t type, flags; uint32_t sl, pl; } bad[] = {
		{ 3, 0, 8, 8 }, { 0, 0, 8, 8 },	/* unknown type */
		{ D, 2, 8, 8 },			/* unknown flag */
		{ D, 0, 8, 0 }, { D, 0, 8, 9 },	/* plain, lengths differ */
		{ D, Z, 8, 0 }, { D, Z, 0, 8 },	/* empty zstd */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(store_pack_builder_add(b, &id, bad[i].type,
				 bad[i].flags, x, bad[i].sl, bad[i].pl), -EINVAL);
	assert_int_equal(store_pack_builder_count(b), 0);
	assert_int_equal(store_pack_builder_add(b, &id, D, 0, x, 8, 8), 0);
	assert_int_equal(store_pack_builder_finish(b, NULL, NULL, NULL, NULL,
						   NULL), 0);
	/* A finished pack takes nothing more until reset. */
	assert_int_equal(store_pack_builder_add(b, &id, D, 0, x, 8, 8), -EINVAL);
	store_pack_builder_reset(b);
	assert_int_equal(store_pack_builder_add(b, &id, D, 0, x, 8, 8), 0);
	store_pack_builder_free(b);
}

static void test_pack__compress_round_trip(void **state)
{
	(void)state;
	struct store_zctx *z = NULL;
	assert_int_equal(store_zctx_new(3, &z), 0);
	size_t len = 300000, clen = 0;
	size_t cap = store_compress_bound(len);
	assert_true(cap >= len);
	uint8_t *plain = malloc(len), *back = malloc(len + 16), *c = malloc(cap);
	assert_non_null(plain);
	assert_non_null(back);
	assert_non_null(c);
	fill_text(plain, len);
	/* The context is reused: compress twice, same result. */
	for (int round = 0; round < 2; round++) {
		assert_int_equal(store_compress(z, plain, len, c, cap, &clen), 0);
		assert_true(clen > 0 && clen < len / 10);
		memset(back, 0, len);
		assert_int_equal(store_decompress(c, clen, back, len), 0);
		assert_memory_equal(back, plain, len);
	}
	/* Wrong plain_len either way is corruption, never a partial result. */
	assert_int_equal(store_decompress(c, clen, back, len - 1), SD_ECORRUPT);
	assert_int_equal(store_decompress(c, clen, back, len + 16), SD_ECORRUPT);
	assert_int_equal(store_decompress(c, clen - 1, back, len), SD_ECORRUPT);
	assert_int_equal(store_decompress(c, 0, back, len), SD_ECORRUPT);
	c[clen / 2] ^= 0x55;
	c[clen / 2 + 1] ^= 0xaa;
	/* Without a checksum zstd may decode damaged literals (the blob hash
	 * catches that); an error, though, must be SD_ECORRUPT. */
	int r = store_decompress(c, clen, back, len);
	assert_true(r == 0 || r == SD_ECORRUPT);
	c[0] ^= 0xff; /* frame magic */
	assert_int_equal(store_decompress(c, clen, back, len), SD_ECORRUPT);

	/* Incompressible and empty input: the caller stores it plain. */
	fill_random(plain, len, 77);
	assert_int_equal(store_compress(z, plain, len, c, cap, &clen), -ENOSPC);
	assert_int_equal(store_compress(z, plain, 0, c, cap, &clen), -ENOSPC);
	/* A destination below the bound that turns out too small. */
	assert_int_equal(store_compress(z, plain, len, c, 100, &clen), -ENOSPC);
	/* And the context still works afterwards. */
	fill_text(plain, 1000);
	assert_int_equal(store_compress(z, plain, 1000, c, cap, &clen), 0);
	assert_int_equal(store_decompress(c, clen, back, 1000), 0);
	assert_memory_equal(back, plain, 1000);
	free(plain);
	free(back);
	free(c);
	store_zctx_free(z);
	store_zctx_free(NULL);
}

static void test_pack__corrupt_trailer_bytes(void **state)
{
	(void)state;
	struct sample s;
	sample_build(&s);
	uint8_t *copy = malloc(s.len);
	assert_non_null(copy);
	for (size_t pos = s.len - 3 * ENTRY_LEN - FOOTER_LEN; pos < s.len;
	     pos++) {
		for (int bit = 0; bit < 8; bit += 3) {
			memcpy(copy, s.data, s.len);
			copy[pos] ^= (uint8_t)(1u << bit);
			assert_int_equal(parse(copy, s.len, s.len), SD_ECORRUPT);
		}
	}
	free(copy);
	store_pack_builder_free(s.b);
}

static void test_pack__truncated_and_bad_magic(void **state)
{
	(void)state;
	struct sample s;
	sample_build(&s);
	const uint8_t *foot = s.data + s.len - FOOTER_LEN;
	/* Cut anywhere: the footer is not where the size says. */
	for (size_t cut = 1; cut < s.len - 8 - FOOTER_LEN; cut += 7)
		assert_int_equal(parse(s.data, s.len - cut, s.len - cut),
				 SD_ECORRUPT);
	/* Shorter than header + footer; trailer larger than the file. */
	assert_int_equal(parse(foot, FOOTER_LEN, FOOTER_LEN + 7), SD_ECORRUPT);
	assert_int_equal(parse(foot, FOOTER_LEN, 100), SD_ECORRUPT);
	uint8_t *copy = malloc(s.len);
	assert_non_null(copy);
	memcpy(copy, s.data, s.len);
	memcpy(copy + s.len - 8, "SDPKEND2", 8);
	assert_int_equal(parse(copy, s.len, s.len), SD_ECORRUPT);
	/* Caller errors are not corruption. */
	assert_int_equal(parse(s.data, 47, s.len), -EINVAL);
	assert_int_equal(parse(s.data, s.len, s.len - 1), -EINVAL);
	free(copy);
	store_pack_builder_free(s.b);
}

struct raw_entry {
	uint8_t type, flags;
	uint64_t offset;
	uint32_t stored_len, plain_len;
};

static void put_le(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Hand-encodes a pack: a blob area of `blob` bytes and a correctly hashed
 * trailer of the given (possibly lying) entries, with the count and
 * trailer length fields as given. Independent of pack.c's encoder, so it
 * also pins the format. malloc'd. */
static uint8_t *forge(size_t blob, const struct raw_entry *re, size_t n,
		      uint32_t count, uint32_t tlen_field, size_t *len)
{
	size_t tlen = n * ENTRY_LEN;
	*len = 8 + blob + tlen + FOOTER_LEN;
	uint8_t *p = calloc(1, *len);
	assert_non_null(p);
	memcpy(p, "SDPACK01", 8);
	uint8_t *t = p + 8 + blob;
	for (size_t i = 0; i < n; i++) {
		uint8_t *q = t + i * ENTRY_LEN;
		memset(q, (int)(0x11 * (i + 1)), 32);
		q[32] = re[i].type;
		q[33] = re[i].flags;
		put_le(q + 34, re[i].offset, 8);
		put_le(q + 42, re[i].stored_len, 4);
		put_le(q + 46, re[i].plain_len, 4);
	}
	sd_id th;
	sd_hash(t, tlen, &th);
	put_le(t + tlen, count, 4);
	memcpy(t + tlen + 4, th.b, 32);
	put_le(t + tlen + 36, tlen_field, 4);
	memcpy(t + tlen + 40, "SDPKEND1", 8);
	return p;
}

static int parse_forged(size_t blob, const struct raw_entry *re, size_t n)
{
	size_t len;
	uint8_t *p = forge(blob, re, n, (uint32_t)n, (uint32_t)(n * ENTRY_LEN),
			   &len);
	int r = parse(p, len, len);
	free(p);
	return r;
}

static void test_pack__hostile_entries(void **state)
{
	(void)state;
	const uint8_t D = STORE_BLOB_DATA, T = STORE_BLOB_TREE;
	const uint8_t Z = STORE_BLOB_COMPRESSED;
	/* A well-formed forged pack parses: the forger is right. */
	const struct raw_entry ok[] = {
		{ D, Z, 8, 40, 100 }, { T, 0, 48, 60, 60 }, { D, 0, 108, 0, 0 },
	};
	assert_int_equal(parse_forged(100, ok, 3), 0);

	const struct raw_entry bad[][2] = {
		{ { D, 0, 0, 10, 10 } },	/* inside the header */
		{ { D, 0, 7, 10, 10 } },
		{ { D, 0, 100, 10, 10 } },	/* runs into the trailer */
		{ { D, 0, 109, 0, 0 } },	/* starts past the blob area */
		{ { D, 0, UINT64_MAX - 4, 10, 10 } }, /* wraps */
		{ { D, 0, 8, UINT32_MAX, UINT32_MAX } },
		{ { 0, 0, 8, 10, 10 } },	/* unknown type */
		{ { 3, 0, 8, 10, 10 } },
		{ { D, 2, 8, 10, 10 } },	/* unknown flag */
		{ { D, 0x81, 8, 10, 10 } },
		{ { D, 0, 8, 10, 0 } },		/* plain 0, stored > 0 */
		{ { D, Z, 8, 10, 0 } },
		{ { D, Z, 8, 0, 10 } },		/* empty zstd frame */
		{ { D, 0, 8, 10, 11 } },	/* plain blob, lengths differ */
		{ { D, 0, 8, 20, 20 }, { D, 0, 20, 10, 10 } }, /* overlap */
		{ { D, 0, 50, 10, 10 }, { D, 0, 8, 10, 10 } }, /* descending */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t n = bad[i][1].type ? 2 : 1;
		assert_int_equal(parse_forged(100, bad[i], n), SD_ECORRUPT);
	}

	/* Count and trailer length that disagree. */
	const uint32_t lies[][2] = { { 2, 150 }, { 4, 150 }, { 3, 149 },
				     { 3, 151 }, { 0, 150 }, { 3, 0 },
				     { 0x40000000, 0 }, { UINT32_MAX, 150 } };
	size_t len;
	for (size_t i = 0; i < sizeof(lies) / sizeof(lies[0]); i++) {
		uint8_t *p = forge(100, ok, 3, lies[i][0], lies[i][1], &len);
		assert_int_equal(parse(p, len, len), SD_ECORRUPT);
		free(p);
	}
	/* Consistent count and length, but larger than the file. */
	uint8_t *p = forge(0, NULL, 0, 1000, 50000, &len);
	assert_int_equal(parse(p, len, len), SD_ECORRUPT);
	free(p);
}

static void test_pack__random_garbage(void **state)
{
	(void)state;
	uint8_t buf[600];
	for (int iter = 0; iter < 3000; iter++) {
		size_t len = 48 + (size_t)(iter * 7919) % (sizeof(buf) - 48);
		fill_random(buf, len, (uint64_t)iter + 1);
		memcpy(buf + len - 8, "SDPKEND1", 8);
		uint32_t count = (uint32_t)(iter % 13);
		/* Half the time count and length agree, so the parser goes
		 * on to the hash check with garbage entries. */
		if (iter & 1)
			put_le(buf + len - 12, count * ENTRY_LEN, 4);
		put_le(buf + len - FOOTER_LEN, count, 4);
		struct store_pack_entry *got = NULL;
		size_t gn;
		uint32_t tlen;
		uint64_t size = len + (size_t)(iter % 3) * 1000;
		int r = store_pack_trailer_parse(buf, len, size, &tlen, &got,
						 &gn);
		/* 0 only when just the footer was readable. */
		assert_true(r == SD_ECORRUPT || (r == 0 && got == NULL));
	}
}

/* ---- local backend */

static void test_pack__backend_put_read_remove(void **state)
{
	struct fixture *f = *state;
	struct sample s;
	sample_build(&s);
	assert_int_equal(f->be->ops->version, STORE_BACKEND_OPS_VERSION);
	assert_int_equal(be_put(f->be, &s.id, s.data, s.len), 0);

	char hex[SD_ID_HEX_LEN + 1], path[256];
	sd_id_hex(&s.id, hex);
	snprintf(path, sizeof(path), "%s/%.2s/%s", f->packs, hex, hex);
	struct stat sb;
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal((uint64_t)sb.st_size, s.len);
	assert_int_equal(sb.st_mode & 0777, 0444);

	uint64_t size = 0;
	assert_int_equal(f->be->ops->pack_size(f->be->state, &s.id, &size), 0);
	assert_int_equal(size, s.len);
	uint8_t buf[64];
	assert_int_equal(be_read(f->be, &s.id, 0, buf, 8), 0);
	assert_memory_equal(buf, "SDPACK01", 8);
	assert_int_equal(be_read(f->be, &s.id, s.len - 20, buf, 20), 0);
	assert_memory_equal(buf, s.data + s.len - 20, 20);
	assert_int_equal(be_read(f->be, &s.id, 0, buf, 0), 0);
	/* Short reads are corruption: the index said the bytes were there. */
	assert_int_equal(be_read(f->be, &s.id, s.len - 10, buf, 20),
			 SD_ECORRUPT);
	assert_int_equal(be_read(f->be, &s.id, s.len + 100, buf, 1),
			 SD_ECORRUPT);
	assert_int_equal(be_read(f->be, &s.id, UINT64_MAX, buf, 1),
			 SD_ECORRUPT);

	/* Through the backend: the same entries as the builder's. */
	struct store_pack_entry *got = NULL;
	size_t gn = 0;
	assert_int_equal(store_backend_read_trailer(f->be, &s.id, &got, &gn),
			 0);
	assert_int_equal(gn, 3);
	for (size_t i = 0; i < gn; i++) {
		assert_memory_equal(got[i].id.b, s.e[i].id.b, SD_ID_LEN);
		assert_int_equal(got[i].offset, s.e[i].offset);
		assert_int_equal(got[i].stored_len, s.e[i].stored_len);
	}
	free(got);

	sd_id missing;
	sd_hash("nope", 4, &missing);
	assert_int_equal(be_read(f->be, &missing, 0, buf, 1), SD_ENOTFOUND);
	assert_int_equal(f->be->ops->pack_size(f->be->state, &missing, &size),
			 SD_ENOTFOUND);
	assert_int_equal(f->be->ops->pack_remove(f->be->state, &missing),
			 SD_ENOTFOUND);
	assert_int_equal(store_backend_read_trailer(f->be, &missing, &got,
						    &gn), SD_ENOTFOUND);

	/* The reads above cached a descriptor; removal must not leave the
	 * pack readable through it. */
	assert_int_equal(f->be->ops->pack_remove(f->be->state, &s.id), 0);
	assert_int_equal(stat(path, &sb), -1);
	assert_int_equal(be_read(f->be, &s.id, 0, buf, 8), SD_ENOTFOUND);
	assert_int_equal(f->be->ops->pack_size(f->be->state, &s.id, &size),
			 SD_ENOTFOUND);
	store_pack_builder_free(s.b);
}

struct list_seen {
	sd_id ids[NPACKS];
	uint64_t sizes[NPACKS];
	size_t n;
	size_t stop_after;
};

static int list_cb(const sd_id *id, uint64_t size, void *ctx)
{
	struct list_seen *s = ctx;
	if (s->n < NPACKS) {
		s->ids[s->n] = *id;
		s->sizes[s->n] = size;
	}
	s->n++;
	return s->n == s->stop_after ? 7 : 0;
}

static void touch(const char *dir, const char *sub, const char *name)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, sub);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%s/%s", dir, sub, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "junk", 4), 4);
	close(fd);
}

static void test_pack__backend_list_skips_junk(void **state)
{
	struct fixture *f = *state;
	struct list_seen seen = { 0 };
	assert_int_equal(be_list(f->be, list_cb, &seen), 0);
	assert_int_equal(seen.n, 0);

	sd_id ids[3];
	uint8_t blob[3][100];
	for (int i = 0; i < 3; i++) {
		fill_random(blob[i], sizeof(blob[i]), (uint64_t)i + 10);
		sd_hash(blob[i], sizeof(blob[i]), &ids[i]);
		assert_int_equal(be_put(f->be, &ids[i], blob[i],
					10 + (size_t)i), 0);
	}
	char hex[SD_ID_HEX_LEN + 1], other[SD_ID_HEX_LEN + 1], sub[3];
	sd_id_hex(&ids[0], hex);
	snprintf(sub, sizeof(sub), "%.2s", hex);
	touch(f->packs, sub, ".tmp-123-abc");	/* a crashed put */
	touch(f->packs, sub, "README");
	for (int i = 0; i <= SD_ID_HEX_LEN; i++) /* not canonical */
		other[i] = (char)(hex[i] >= 'a' ? hex[i] - 32 : hex[i]);
	touch(f->packs, sub, other);
	memcpy(other, hex, sizeof(other));
	other[0] = hex[0] == '0' ? '1' : '0';	/* in the wrong subdir */
	touch(f->packs, sub, other);
	touch(f->packs, "zz", hex);
	touch(f->packs, "", "stray");
	char dirpath[512];
	snprintf(dirpath, sizeof(dirpath), "%s/%s/%.63s0", f->packs, sub, hex);
	assert_int_equal(mkdir(dirpath, 0755), 0); /* a directory, no pack */

	assert_int_equal(be_list(f->be, list_cb, &seen), 0);
	assert_int_equal(seen.n, 3);
	for (int i = 0; i < 3; i++) {
		bool found = false;
		for (size_t j = 0; j < seen.n; j++) {
			if (sd_id_cmp(&seen.ids[j], &ids[i]) == 0) {
				found = true;
				assert_int_equal(seen.sizes[j], 10 + i);
			}
		}
		assert_true(found);
	}
	/* A non-zero callback return stops the walk and is returned. */
	struct list_seen stop = { .stop_after = 2 };
	assert_int_equal(be_list(f->be, list_cb, &stop), 7);
	assert_int_equal(stop.n, 2);
}

static void put_packs(struct fixture *f, uint8_t (*data)[PACK_BYTES],
		      sd_id *ids, int n)
{
	for (int i = 0; i < n; i++) {
		fill_random(data[i], PACK_BYTES, (uint64_t)i + 5000);
		sd_hash(data[i], PACK_BYTES, &ids[i]);
		assert_int_equal(be_put(f->be, &ids[i], data[i], PACK_BYTES),
				 0);
	}
}

struct reader_arg {
	struct store_backend *be;
	const sd_id *ids;
	uint8_t (*data)[PACK_BYTES];
	uint64_t seed;
	int errors;
};

static void *reader_main(void *p)
{
	struct reader_arg *a = p;
	uint64_t s = a->seed;
	uint8_t buf[PACK_BYTES];
	for (int i = 0; i < 3000; i++) {
		s = s * 6364136223846793005ULL + 1442695040888963407ULL;
		size_t k = (size_t)(s >> 33) % NPACKS;
		size_t off = (size_t)(s >> 20) % PACK_BYTES;
		size_t len = (size_t)(s >> 8) % (PACK_BYTES - off) + 1;
		if (be_read(a->be, &a->ids[k], off, buf, len) != 0 ||
		    memcmp(buf, a->data[k] + off, len) != 0)
			a->errors++;
	}
	return NULL;
}

static void test_pack__backend_concurrent_reads(void **state)
{
	struct fixture *f = *state;
	static uint8_t data[NPACKS][PACK_BYTES];
	sd_id ids[NPACKS];
	put_packs(f, data, ids, NPACKS);
	pthread_t th[4];
	struct reader_arg args[4];
	for (int t = 0; t < 4; t++) {
		args[t] = (struct reader_arg){ f->be, ids, data,
					       (uint64_t)t * 7777 + 1, 0 };
		assert_int_equal(pthread_create(&th[t], NULL, reader_main,
						&args[t]), 0);
	}
	for (int t = 0; t < 4; t++) {
		assert_int_equal(pthread_join(th[t], NULL), 0);
		assert_int_equal(args[t].errors, 0);
	}
	struct list_seen seen = { 0 };
	assert_int_equal(be_list(f->be, list_cb, &seen), 0);
	assert_int_equal(seen.n, NPACKS);
}

struct parked_arg {
	enum gate_at at;
	struct store_backend *be;
	const sd_id *id;
	uint8_t buf[PACK_BYTES];
	int r;
};

static void *parked_main(void *p)
{
	struct parked_arg *a = p;
	gate_mine = a->at;
	a->r = be_read(a->be, a->id, 0, a->buf, PACK_BYTES);
	return NULL;
}

/* Starts a reader of id; returns once it sits inside pread() or just
 * after open(). */
static void park_reader(struct fixture *f, enum gate_at at, const sd_id *id,
			struct parked_arg *a, pthread_t *th)
{
	gate_state = 0;
	a->at = at;
	a->be = f->be;
	a->id = id;
	a->r = -1;
	assert_int_equal(pthread_create(th, NULL, parked_main, a), 0);
	gate_wait_parked();
}

static void unpark_reader(pthread_t th, struct parked_arg *a,
			  const uint8_t *want)
{
	gate_release();
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(a->r, 0);
	assert_memory_equal(a->buf, want, PACK_BYTES);
}

static void test_pack__backend_fd_kept_while_read(void **state)
{
	struct fixture *f = *state;
	static uint8_t data[NPACKS][PACK_BYTES];
	static struct parked_arg a;
	sd_id ids[NPACKS];
	uint8_t buf[PACK_BYTES];
	pthread_t th;
	put_packs(f, data, ids, NPACKS);
	park_reader(f, GATE_PREAD, &ids[0], &a, &th);
	/* Every other pack through the cache, twice: each slot but the
	 * parked reader's is evicted and reused meanwhile. */
	for (int round = 0; round < 2; round++) {
		for (int i = 1; i < NPACKS; i++) {
			assert_int_equal(be_read(f->be, &ids[i], 0, buf,
						 PACK_BYTES), 0);
			assert_memory_equal(buf, data[i], PACK_BYTES);
		}
	}
	unpark_reader(th, &a, data[0]);
	assert_int_equal(be_read(f->be, &ids[0], 0, buf, PACK_BYTES), 0);
	assert_memory_equal(buf, data[0], PACK_BYTES);
}

static void test_pack__backend_remove_while_read(void **state)
{
	struct fixture *f = *state;
	static uint8_t data[2][PACK_BYTES];
	static struct parked_arg a;
	sd_id ids[2];
	uint8_t buf[1];
	pthread_t th;
	put_packs(f, data, ids, 2);
	park_reader(f, GATE_PREAD, &ids[0], &a, &th);
	assert_int_equal(f->be->ops->pack_remove(f->be->state, &ids[0]), 0);
	/* Gone for new readers at once... */
	assert_int_equal(be_read(f->be, &ids[0], 0, buf, 1), SD_ENOTFOUND);
	/* ...while the churn of other opens cannot recycle the parked fd,
	 * and the read that started before the removal finishes intact. */
	for (int i = 0; i < 70; i++)
		assert_int_equal(be_read(f->be, &ids[1], (uint64_t)i, buf, 1),
				 0);
	unpark_reader(th, &a, data[0]);
	assert_int_equal(be_read(f->be, &ids[0], 0, buf, 1), SD_ENOTFOUND);
}

static void test_pack__backend_remove_while_open(void **state)
{
	struct fixture *f = *state;
	static uint8_t data[1][PACK_BYTES];
	static struct parked_arg a;
	sd_id ids[1];
	uint8_t buf[1];
	pthread_t th;
	put_packs(f, data, ids, 1);
	/* Opened but not yet cached when the pack is removed: the read may
	 * finish, but the removed pack must not stay readable via the cache. */
	park_reader(f, GATE_OPEN, &ids[0], &a, &th);
	assert_int_equal(f->be->ops->pack_remove(f->be->state, &ids[0]), 0);
	unpark_reader(th, &a, data[0]);
	assert_int_equal(be_read(f->be, &ids[0], 0, buf, 1), SD_ENOTFOUND);
}

/* Packs broken on disk, read through the backend. */
static void test_pack__backend_corrupt_packs(void **state)
{
	struct fixture *f = *state;
	struct sample s;
	sample_build(&s);
	uint8_t *copy = malloc(s.len);
	assert_non_null(copy);
	struct store_pack_entry *got = NULL;
	size_t gn;
	sd_id id;
	const struct {
		const char *name;
		size_t len;		/* stored length */
		size_t flip;		/* byte to damage, 0: none */
	} cases[] = {
		{ "truncated", s.len - 1, 0 },
		{ "tiny", 30, 0 },
		{ "bad magic", s.len, 3 },
		{ "trailer bit", s.len, s.len - FOOTER_LEN - 20 },
		{ "footer bit", s.len, s.len - 10 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memcpy(copy, s.data, s.len);
		if (cases[i].flip)
			copy[cases[i].flip] ^= 1;
		sd_hash(cases[i].name, strlen(cases[i].name), &id);
		assert_int_equal(be_put(f->be, &id, copy, cases[i].len), 0);
		assert_int_equal(store_backend_read_trailer(f->be, &id, &got,
							    &gn), SD_ECORRUPT);
		assert_null(got);
		assert_int_equal(gn, 0);
	}
	free(copy);
	store_pack_builder_free(s.b);
}

static void test_pack__backend_new_errors(void **state)
{
	struct fixture *f = *state;
	struct store_backend *be = NULL;
	char path[256];
	snprintf(path, sizeof(path), "%s/absent", f->dir);
	assert_int_equal(store_backend_local_new(path, &be), -ENOENT);
	touch(f->dir, "", "file");
	snprintf(path, sizeof(path), "%s//file", f->dir);
	assert_int_equal(store_backend_local_new(path, &be), -ENOTDIR);
	assert_null(be);
	store_backend_free(NULL);
}

#define FIXTURE_TEST(t) cmocka_unit_test_setup_teardown(t, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pack__builder_round_trip),
		cmocka_unit_test(test_pack__builder_rejects),
		cmocka_unit_test(test_pack__compress_round_trip),
		cmocka_unit_test(test_pack__corrupt_trailer_bytes),
		cmocka_unit_test(test_pack__truncated_and_bad_magic),
		cmocka_unit_test(test_pack__hostile_entries),
		cmocka_unit_test(test_pack__random_garbage),
		FIXTURE_TEST(test_pack__backend_put_read_remove),
		FIXTURE_TEST(test_pack__backend_list_skips_junk),
		FIXTURE_TEST(test_pack__backend_concurrent_reads),
		FIXTURE_TEST(test_pack__backend_fd_kept_while_read),
		FIXTURE_TEST(test_pack__backend_remove_while_read),
		FIXTURE_TEST(test_pack__backend_remove_while_open),
		FIXTURE_TEST(test_pack__backend_corrupt_packs),
		FIXTURE_TEST(test_pack__backend_new_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
