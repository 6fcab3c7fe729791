/*
 * test_pack.c — pack building and parsing, zstd round trips, and the local
 * backend (durable put, cached concurrent preads, listing, removal).
 *
 * The trailer parser reads bytes from disk that may be damaged, so most of
 * the cases here feed it broken packs: every single-byte flip of the
 * trailer, truncations, bad magic, and hand-encoded trailers whose hash is
 * right but whose entries lie.
 *
 * The descriptor cache is tested deterministically by interposing pread():
 * one reader is parked inside pread() while the main thread forces every
 * cache slot to be evicted, or removes the pack. A descriptor closed under
 * the parked reader would be reused by the next open() and hand it another
 * pack's bytes.
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
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_pack.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	f->packs = store_path_join(f->dir, "packs");
	if (!f->packs || mkdir(f->packs, 0755) < 0)
		return -1;
	if (store_backend_local_new(f->packs, &f->be) < 0)
		return -1;
	*state = f;
	return 0;
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

/* A pack of three blobs: compressed text, a plain tree blob, an empty
 * blob. Returns a finished builder; data/len borrowed from it. */
static struct store_pack_builder *build_sample(const uint8_t **data,
					       size_t *len, sd_id *pack_id,
					       const struct store_pack_entry **e,
					       size_t *n)
{
	struct store_pack_builder *b = NULL;
	struct store_zctx *z = NULL;
	assert_int_equal(store_pack_builder_new(&b), 0);
	assert_int_equal(store_zctx_new(3, &z), 0);
	uint8_t text[20000], tree[333];
	fill_text(text, sizeof(text));
	fill_random(tree, sizeof(tree), 5);
	size_t cap = store_compress_bound(sizeof(text)), clen = 0;
	uint8_t *c = malloc(cap);
	assert_non_null(c);
	assert_int_equal(store_compress(z, text, sizeof(text), c, cap, &clen),
			 0);
	sd_id id;
	sd_hash(text, sizeof(text), &id);
	assert_int_equal(store_pack_builder_add(b, &id, STORE_BLOB_DATA,
						STORE_BLOB_COMPRESSED, c,
						(uint32_t)clen, sizeof(text)),
			 0);
	sd_hash(tree, sizeof(tree), &id);
	assert_int_equal(store_pack_builder_add(b, &id, STORE_BLOB_TREE, 0,
						tree, sizeof(tree),
						sizeof(tree)),
			 0);
	sd_hash(NULL, 0, &id);
	assert_int_equal(store_pack_builder_add(b, &id, STORE_BLOB_DATA, 0,
						NULL, 0, 0),
			 0);
	assert_int_equal(store_pack_builder_count(b), 3);
	size_t predicted = store_pack_builder_size(b);
	assert_int_equal(store_pack_builder_finish(b, data, len, pack_id, e, n),
			 0);
	assert_int_equal(*len, predicted);
	free(c);
	store_zctx_free(z);
	return b;
}

static void test_pack__builder_round_trip(void **state)
{
	(void)state;
	const uint8_t *data;
	size_t len, n;
	sd_id pack_id, h;
	const struct store_pack_entry *e;
	struct store_pack_builder *b = build_sample(&data, &len, &pack_id, &e,
						    &n);
	assert_int_equal(n, 3);
	assert_memory_equal(data, "SDPACK01", 8);
	assert_memory_equal(data + len - 8, "SDPKEND1", 8);
	sd_hash(data, len, &h);
	assert_memory_equal(h.b, pack_id.b, SD_ID_LEN);
	/* Layout pinned byte by byte: the first entry sits right after the
	 * header, its trailer record starts after the last blob. */
	assert_int_equal(e[0].offset, 8);
	assert_int_equal(e[1].offset, 8 + e[0].stored_len);
	size_t tstart = len - FOOTER_LEN - 3 * ENTRY_LEN;
	assert_int_equal(tstart, e[2].offset);
	assert_memory_equal(data + tstart, e[0].id.b, SD_ID_LEN);
	assert_int_equal(data[tstart + 32], STORE_BLOB_DATA);
	assert_int_equal(data[tstart + 33], STORE_BLOB_COMPRESSED);
	assert_int_equal(data[tstart + 34], 8);
	assert_int_equal(data[tstart + 46], 20000 & 0xff);
	assert_int_equal(data[tstart + 47], 20000 >> 8);
	assert_int_equal(data[len - FOOTER_LEN], 3);
	assert_int_equal(data[len - 12], 150);

	/* Whole tail: entries. */
	struct store_pack_entry *got = NULL;
	size_t gn = 0;
	uint32_t tlen = 0;
	assert_int_equal(store_pack_trailer_parse(data, len, len, &tlen, &got,
						  &gn),
			 0);
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
					  got[0].stored_len, plain,
					  got[0].plain_len),
			 0);
	sd_hash(plain, got[0].plain_len, &h);
	assert_memory_equal(h.b, got[0].id.b, SD_ID_LEN);
	sd_hash(data + got[1].offset, got[1].plain_len, &h);
	assert_memory_equal(h.b, got[1].id.b, SD_ID_LEN);
	free(plain);
	free(got);

	/* Just the footer: the trailer length, no entries. */
	got = (void *)&tlen;
	tlen = 0;
	const uint8_t *foot = data + len - FOOTER_LEN;
	assert_int_equal(store_pack_trailer_parse(foot, FOOTER_LEN, len, &tlen,
						  &got, &gn),
			 0);
	assert_int_equal(tlen, 150);
	assert_null(got);
	assert_int_equal(gn, 0);

	/* finish twice gives the same pack; reset starts over. */
	const uint8_t *d2;
	size_t l2;
	sd_id id2;
	assert_int_equal(store_pack_builder_finish(b, &d2, &l2, &id2, NULL,
						   NULL),
			 0);
	assert_int_equal(l2, len);
	assert_memory_equal(id2.b, pack_id.b, SD_ID_LEN);
	store_pack_builder_reset(b);
	assert_int_equal(store_pack_builder_count(b), 0);
	assert_int_equal(store_pack_builder_size(b), 8 + FOOTER_LEN);
	assert_int_equal(store_pack_builder_finish(b, &d2, &l2, &id2, &e, &n),
			 0);
	assert_int_equal(l2, 8 + FOOTER_LEN);
	assert_int_equal(n, 0);
	assert_int_equal(store_pack_trailer_parse(d2, l2, l2, &tlen, &got, &gn),
			 0);
	assert_int_equal(tlen, 0);
	assert_int_equal(gn, 0);
	free(got);
	store_pack_builder_free(b);
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
	assert_int_equal(store_pack_builder_add(b, &id, 3, 0, x, 8, 8),
			 -EINVAL);
	assert_int_equal(store_pack_builder_add(b, &id, 0, 0, x, 8, 8),
			 -EINVAL);
	assert_int_equal(store_pack_builder_add(b, &id, STORE_BLOB_DATA, 2, x,
						8, 8),
			 -EINVAL);
	assert_int_equal(store_pack_builder_add(b, &id, STORE_BLOB_DATA, 0, x,
						8, 0),
			 -EINVAL);
	assert_int_equal(store_pack_builder_add(b, &id, STORE_BLOB_DATA, 0, x,
						8, 9),
			 -EINVAL);
	assert_int_equal(store_pack_builder_add(b, &id, STORE_BLOB_DATA,
						STORE_BLOB_COMPRESSED, x, 8, 0),
			 -EINVAL);
	assert_int_equal(store_pack_builder_count(b), 0);
	assert_int_equal(store_pack_builder_add(b, &id, STORE_BLOB_DATA, 0, x,
						8, 8),
			 0);
	assert_int_equal(store_pack_builder_finish(b, NULL, NULL, NULL, NULL,
						   NULL),
			 0);
	/* A finished pack takes nothing more until reset. */
	assert_int_equal(store_pack_builder_add(b, &id, STORE_BLOB_DATA, 0, x,
						8, 8),
			 -EINVAL);
	store_pack_builder_free(b);
}

static void test_pack__compress_round_trip(void **state)
{
	(void)state;
	struct store_zctx *z = NULL;
	assert_int_equal(store_zctx_new(3, &z), 0);
	size_t len = 300000;
	uint8_t *plain = malloc(len), *back = malloc(len + 16);
	size_t cap = store_compress_bound(len);
	assert_true(cap >= len);
	uint8_t *c = malloc(cap);
	assert_non_null(plain);
	assert_non_null(back);
	assert_non_null(c);
	fill_text(plain, len);
	size_t clen = 0;
	/* The context is reused: compress twice, same result. */
	for (int round = 0; round < 2; round++) {
		assert_int_equal(store_compress(z, plain, len, c, cap, &clen),
				 0);
		assert_true(clen > 0 && clen < len / 10);
		memset(back, 0, len);
		assert_int_equal(store_decompress(c, clen, back, len), 0);
		assert_memory_equal(back, plain, len);
	}
	/* Wrong plain_len either way is corruption, never a partial result. */
	assert_int_equal(store_decompress(c, clen, back, len - 1),
			 SD_ECORRUPT);
	assert_int_equal(store_decompress(c, clen, back, len + 16),
			 SD_ECORRUPT);
	assert_int_equal(store_decompress(c, clen - 1, back, len), SD_ECORRUPT);
	assert_int_equal(store_decompress(c, 0, back, len), SD_ECORRUPT);
	c[clen / 2] ^= 0x55;
	c[clen / 2 + 1] ^= 0xaa;
	int r = store_decompress(c, clen, back, len);
	/* Without a checksum zstd may decode damaged literals; the blob
	 * hash catches that. What must hold: an error is SD_ECORRUPT. */
	assert_true(r == 0 || r == SD_ECORRUPT);
	c[0] ^= 0xff; /* frame magic */
	assert_int_equal(store_decompress(c, clen, back, len), SD_ECORRUPT);

	/* Incompressible and empty input: stored plain. */
	fill_random(plain, len, 77);
	assert_int_equal(store_compress(z, plain, len, c, cap, &clen), -ENOSPC);
	assert_int_equal(store_compress(z, plain, 0, c, cap, &clen), -ENOSPC);
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
	const uint8_t *data;
	size_t len, n;
	sd_id pid;
	const struct store_pack_entry *e;
	struct store_pack_builder *b = build_sample(&data, &len, &pid, &e, &n);
	uint8_t *copy = malloc(len);
	assert_non_null(copy);
	size_t tail = 3 * ENTRY_LEN + FOOTER_LEN;
	for (size_t pos = len - tail; pos < len; pos++) {
		for (int bit = 0; bit < 8; bit += 3) {
			memcpy(copy, data, len);
			copy[pos] ^= (uint8_t)(1u << bit);
			struct store_pack_entry *got = NULL;
			size_t gn = 7;
			uint32_t tlen;
			int r = store_pack_trailer_parse(copy, len, len, &tlen,
							 &got, &gn);
			assert_int_equal(r, SD_ECORRUPT);
			assert_null(got);
			assert_int_equal(gn, 0);
		}
	}
	free(copy);
	store_pack_builder_free(b);
}

static void test_pack__truncated_and_bad_magic(void **state)
{
	(void)state;
	const uint8_t *data;
	size_t len, n;
	sd_id pid;
	const struct store_pack_entry *e;
	struct store_pack_builder *b = build_sample(&data, &len, &pid, &e, &n);
	struct store_pack_entry *got = NULL;
	size_t gn;
	uint32_t tlen;
	/* Cut anywhere: the footer is not where the size says. */
	for (size_t cut = 1; cut < len - 8 - FOOTER_LEN; cut += 7)
		assert_int_equal(store_pack_trailer_parse(data, len - cut,
							  len - cut, &tlen,
							  &got, &gn),
				 SD_ECORRUPT);
	/* A pack shorter than header + footer. */
	assert_int_equal(store_pack_trailer_parse(data + len - FOOTER_LEN,
						  FOOTER_LEN, FOOTER_LEN + 7,
						  &tlen, &got, &gn),
			 SD_ECORRUPT);
	/* Trailer claims more than the file holds. */
	assert_int_equal(store_pack_trailer_parse(data + len - FOOTER_LEN,
						  FOOTER_LEN, 100, &tlen, &got,
						  &gn),
			 SD_ECORRUPT);
	uint8_t *copy = malloc(len);
	assert_non_null(copy);
	memcpy(copy, data, len);
	memcpy(copy + len - 8, "SDPKEND2", 8);
	assert_int_equal(store_pack_trailer_parse(copy, len, len, &tlen, &got,
						  &gn),
			 SD_ECORRUPT);
	/* Caller errors are not corruption. */
	assert_int_equal(store_pack_trailer_parse(data, 47, len, &tlen, &got,
						  &gn),
			 -EINVAL);
	assert_int_equal(store_pack_trailer_parse(data, len, len - 1, &tlen,
						  &got, &gn),
			 -EINVAL);
	assert_null(got);
	free(copy);
	store_pack_builder_free(b);
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

/* Hand-encodes a pack with a blob area of `blob` bytes and a correctly
 * hashed trailer of the given (possibly lying) entries; count and tlen
 * written as given. malloc'd. */
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
	uint8_t *f = t + tlen;
	put_le(f, count, 4);
	memcpy(f + 4, th.b, 32);
	put_le(f + 36, tlen_field, 4);
	memcpy(f + 40, "SDPKEND1", 8);
	return p;
}

static int parse_forged(size_t blob, const struct raw_entry *re, size_t n)
{
	size_t len;
	uint8_t *p = forge(blob, re, n, (uint32_t)n,
			   (uint32_t)(n * ENTRY_LEN), &len);
	struct store_pack_entry *got = NULL;
	size_t gn = 0;
	uint32_t tlen;
	int r = store_pack_trailer_parse(p, len, len, &tlen, &got, &gn);
	if (r == 0)
		assert_int_equal(gn, n);
	else
		assert_null(got);
	free(got);
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
	size_t len;
	struct store_pack_entry *got = NULL;
	size_t gn;
	uint32_t tlen;
	const uint32_t lies[][2] = { { 2, 150 }, { 4, 150 }, { 3, 149 },
				     { 3, 151 }, { 0, 150 }, { 3, 0 },
				     { 0x40000000, 0 }, { UINT32_MAX, 150 } };
	for (size_t i = 0; i < sizeof(lies) / sizeof(lies[0]); i++) {
		uint8_t *p = forge(100, ok, 3, lies[i][0], lies[i][1], &len);
		assert_int_equal(store_pack_trailer_parse(p, len, len, &tlen,
							  &got, &gn),
				 SD_ECORRUPT);
		free(p);
	}
	/* Consistent count and length, but larger than the file. */
	uint8_t *p = forge(0, NULL, 0, 1000, 50000, &len);
	assert_int_equal(store_pack_trailer_parse(p, len, len, &tlen, &got,
						  &gn),
			 SD_ECORRUPT);
	free(p);
	assert_null(got);
}

static void test_pack__random_garbage(void **state)
{
	(void)state;
	uint8_t buf[600];
	uint64_t seed = 1;
	for (int iter = 0; iter < 3000; iter++) {
		size_t len = 48 + (size_t)(iter * 7919) % (sizeof(buf) - 48);
		fill_random(buf, len, seed++);
		memcpy(buf + len - 8, "SDPKEND1", 8);
		uint32_t count = (uint32_t)(iter % 13);
		/* Half the time make count and length agree, so the parser
		 * goes on to the hash check with garbage entries. */
		if (iter & 1)
			put_le(buf + len - 12, count * ENTRY_LEN, 4);
		put_le(buf + len - FOOTER_LEN, count, 4);
		struct store_pack_entry *got = NULL;
		size_t gn;
		uint32_t tlen;
		uint64_t size = len + (size_t)(iter % 3) * 1000;
		int r = store_pack_trailer_parse(buf, len, size, &tlen, &got,
						 &gn);
		assert_true(r == SD_ECORRUPT || (r == 0 && got == NULL));
		free(got);
	}
}

static void test_pack__backend_put_read_list_remove(void **state)
{
	struct fixture *f = *state;
	const uint8_t *data;
	size_t len, n;
	sd_id pid;
	const struct store_pack_entry *e;
	struct store_pack_builder *b = build_sample(&data, &len, &pid, &e, &n);
	assert_int_equal(f->be->ops->version, STORE_BACKEND_OPS_VERSION);
	assert_int_equal(f->be->ops->pack_put(f->be->state, &pid, data, len),
			 0);

	char hex[SD_ID_HEX_LEN + 1], path[256];
	sd_id_hex(&pid, hex);
	snprintf(path, sizeof(path), "%s/%.2s/%s", f->packs, hex, hex);
	struct stat sb;
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal((uint64_t)sb.st_size, len);
	assert_int_equal(sb.st_mode & 0777, 0444);

	uint64_t size = 0;
	assert_int_equal(f->be->ops->pack_size(f->be->state, &pid, &size), 0);
	assert_int_equal(size, len);
	uint8_t buf[64];
	assert_int_equal(f->be->ops->pack_read(f->be->state, &pid, 0, buf, 8),
			 0);
	assert_memory_equal(buf, "SDPACK01", 8);
	assert_int_equal(f->be->ops->pack_read(f->be->state, &pid, len - 20,
					       buf, 20),
			 0);
	assert_memory_equal(buf, data + len - 20, 20);
	assert_int_equal(f->be->ops->pack_read(f->be->state, &pid, 0, buf, 0),
			 0);
	/* Short reads are corruption: the index said the bytes were there. */
	assert_int_equal(f->be->ops->pack_read(f->be->state, &pid, len - 10,
					       buf, 20),
			 SD_ECORRUPT);
	assert_int_equal(f->be->ops->pack_read(f->be->state, &pid, len + 100,
					       buf, 1),
			 SD_ECORRUPT);
	assert_int_equal(f->be->ops->pack_read(f->be->state, &pid, UINT64_MAX,
					       buf, 1),
			 SD_ECORRUPT);

	/* Through the backend: the same entries as the builder's. */
	struct store_pack_entry *got = NULL;
	size_t gn = 0;
	assert_int_equal(store_backend_read_trailer(f->be, &pid, &got, &gn), 0);
	assert_int_equal(gn, 3);
	for (size_t i = 0; i < gn; i++) {
		assert_memory_equal(got[i].id.b, e[i].id.b, SD_ID_LEN);
		assert_int_equal(got[i].offset, e[i].offset);
		assert_int_equal(got[i].stored_len, e[i].stored_len);
	}
	free(got);

	/* Missing packs. */
	sd_id missing;
	sd_hash("nope", 4, &missing);
	assert_int_equal(f->be->ops->pack_read(f->be->state, &missing, 0, buf,
					       1),
			 SD_ENOTFOUND);
	assert_int_equal(f->be->ops->pack_size(f->be->state, &missing, &size),
			 SD_ENOTFOUND);
	assert_int_equal(f->be->ops->pack_remove(f->be->state, &missing),
			 SD_ENOTFOUND);
	assert_int_equal(store_backend_read_trailer(f->be, &missing, &got, &gn),
			 SD_ENOTFOUND);

	/* The read above cached a descriptor; removal must not leave the
	 * pack readable through it. */
	assert_int_equal(f->be->ops->pack_remove(f->be->state, &pid), 0);
	assert_int_equal(stat(path, &sb), -1);
	assert_int_equal(f->be->ops->pack_read(f->be->state, &pid, 0, buf, 8),
			 SD_ENOTFOUND);
	assert_int_equal(f->be->ops->pack_size(f->be->state, &pid, &size),
			 SD_ENOTFOUND);
	store_pack_builder_free(b);
}

struct list_seen {
	sd_id ids[16];
	uint64_t sizes[16];
	size_t n;
	int stop_after;
};

static int list_cb(const sd_id *id, uint64_t size, void *ctx)
{
	struct list_seen *s = ctx;
	if (s->n < 16) {
		s->ids[s->n] = *id;
		s->sizes[s->n] = size;
	}
	s->n++;
	return s->stop_after && (int)s->n == s->stop_after ? 7 : 0;
}

static void touch(const char *dir, const char *sub, const char *name)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, sub);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%s/%s", dir, sub, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "junk", 4), 4);
	close(fd);
}

static void test_pack__backend_list_skips_junk(void **state)
{
	struct fixture *f = *state;
	struct list_seen seen = { 0 };
	assert_int_equal(f->be->ops->pack_list(f->be->state, list_cb, &seen),
			 0);
	assert_int_equal(seen.n, 0);

	sd_id ids[3];
	uint8_t blob[3][100];
	for (int i = 0; i < 3; i++) {
		fill_random(blob[i], sizeof(blob[i]), (uint64_t)i + 10);
		sd_hash(blob[i], sizeof(blob[i]), &ids[i]);
		assert_int_equal(f->be->ops->pack_put(f->be->state, &ids[i],
						      blob[i], 10 + (size_t)i),
				 0);
	}
	char hex[SD_ID_HEX_LEN + 1], upper[SD_ID_HEX_LEN + 1], sub[3];
	sd_id_hex(&ids[0], hex);
	memcpy(sub, hex, 2);
	sub[2] = '\0';
	for (int i = 0; i <= SD_ID_HEX_LEN; i++)
		upper[i] = (char)(hex[i] >= 'a' ? hex[i] - 32 : hex[i]);
	touch(f->packs, sub, ".tmp-123-abc");	/* a crashed put */
	touch(f->packs, sub, "README");
	touch(f->packs, sub, upper + 0);	/* not canonical */
	char wrong[SD_ID_HEX_LEN + 1];
	memcpy(wrong, hex, sizeof(wrong));
	wrong[0] = hex[0] == '0' ? '1' : '0';	/* in the wrong subdir */
	touch(f->packs, sub, wrong);
	touch(f->packs, "zz", hex);
	touch(f->packs, "", "stray");
	char dirpath[512];
	snprintf(dirpath, sizeof(dirpath), "%s/%s/%.63s0", f->packs, sub, hex);
	assert_int_equal(mkdir(dirpath, 0755), 0); /* a directory, not a pack */

	assert_int_equal(f->be->ops->pack_list(f->be->state, list_cb, &seen),
			 0);
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
	assert_int_equal(f->be->ops->pack_list(f->be->state, list_cb, &stop),
			 7);
	assert_int_equal(stop.n, 2);
}

#define NPACKS 80 /* more than the descriptor cache holds */
#define PACK_BYTES 4096

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
		int r = a->be->ops->pack_read(a->be->state, &a->ids[k], off,
					      buf, len);
		if (r != 0 || memcmp(buf, a->data[k] + off, len) != 0)
			a->errors++;
	}
	return NULL;
}

static void test_pack__backend_concurrent_reads(void **state)
{
	struct fixture *f = *state;
	static uint8_t data[NPACKS][PACK_BYTES];
	sd_id ids[NPACKS];
	for (int i = 0; i < NPACKS; i++) {
		fill_random(data[i], PACK_BYTES, (uint64_t)i + 1000);
		sd_hash(data[i], PACK_BYTES, &ids[i]);
		assert_int_equal(f->be->ops->pack_put(f->be->state, &ids[i],
						      data[i], PACK_BYTES),
				 0);
	}
	pthread_t th[4];
	struct reader_arg args[4];
	for (int t = 0; t < 4; t++) {
		args[t] = (struct reader_arg){ f->be, ids, data,
					       (uint64_t)t * 7777 + 1, 0 };
		assert_int_equal(pthread_create(&th[t], NULL, reader_main,
						&args[t]),
				 0);
	}
	for (int t = 0; t < 4; t++) {
		assert_int_equal(pthread_join(th[t], NULL), 0);
		assert_int_equal(args[t].errors, 0);
	}
	struct list_seen seen = { 0 };
	assert_int_equal(f->be->ops->pack_list(f->be->state, list_cb, &seen),
			 0);
	assert_int_equal(seen.n, NPACKS);
}

struct parked_arg {
	enum gate_at at;
	struct store_backend *be;
	const sd_id *id;
	uint8_t *buf;
	size_t len;
	int r;
};

static void *parked_main(void *p)
{
	struct parked_arg *a = p;
	gate_mine = a->at;
	a->r = a->be->ops->pack_read(a->be->state, a->id, 0, a->buf, a->len);
	return NULL;
}

/* Starts a reader of id and returns once it sits inside pread() or just
 * after open(). */
static void park_reader(struct fixture *f, enum gate_at at, const sd_id *id,
			struct parked_arg *a, pthread_t *th)
{
	gate_state = 0;
	*a = (struct parked_arg){ at, f->be, id, malloc(PACK_BYTES),
				  PACK_BYTES, -1 };
	assert_non_null(a->buf);
	assert_int_equal(pthread_create(th, NULL, parked_main, a), 0);
	gate_wait_parked();
}

static void put_packs(struct fixture *f, uint8_t (*data)[PACK_BYTES],
		      sd_id *ids, int n)
{
	for (int i = 0; i < n; i++) {
		fill_random(data[i], PACK_BYTES, (uint64_t)i + 5000);
		sd_hash(data[i], PACK_BYTES, &ids[i]);
		assert_int_equal(f->be->ops->pack_put(f->be->state, &ids[i],
						      data[i], PACK_BYTES),
				 0);
	}
}

static void test_pack__backend_fd_kept_while_read(void **state)
{
	struct fixture *f = *state;
	static uint8_t data[NPACKS][PACK_BYTES];
	sd_id ids[NPACKS];
	uint8_t buf[PACK_BYTES];
	put_packs(f, data, ids, NPACKS);
	struct parked_arg a;
	pthread_t th;
	park_reader(f, GATE_PREAD, &ids[0], &a, &th);
	/* Every other pack through the cache, twice: each slot but the
	 * parked reader's is evicted and reused meanwhile. */
	for (int round = 0; round < 2; round++) {
		for (int i = 1; i < NPACKS; i++) {
			assert_int_equal(f->be->ops->pack_read(f->be->state,
							       &ids[i], 0, buf,
							       PACK_BYTES),
					 0);
			assert_memory_equal(buf, data[i], PACK_BYTES);
		}
	}
	gate_release();
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(a.r, 0);
	assert_memory_equal(a.buf, data[0], PACK_BYTES);
	free(a.buf);
	assert_int_equal(f->be->ops->pack_read(f->be->state, &ids[0], 0, buf,
					       PACK_BYTES),
			 0);
	assert_memory_equal(buf, data[0], PACK_BYTES);
}

static void test_pack__backend_remove_while_read(void **state)
{
	struct fixture *f = *state;
	static uint8_t data[2][PACK_BYTES];
	sd_id ids[2];
	uint8_t buf[PACK_BYTES];
	put_packs(f, data, ids, 2);
	struct parked_arg a;
	pthread_t th;
	park_reader(f, GATE_PREAD, &ids[0], &a, &th);
	assert_int_equal(f->be->ops->pack_remove(f->be->state, &ids[0]), 0);
	/* Gone for new readers at once... */
	assert_int_equal(f->be->ops->pack_read(f->be->state, &ids[0], 0, buf,
					       1),
			 SD_ENOTFOUND);
	/* ...and the churn of other opens cannot recycle the parked fd. */
	for (int i = 0; i < 70; i++)
		assert_int_equal(f->be->ops->pack_read(f->be->state, &ids[1],
						       (uint64_t)i, buf, 1),
				 0);
	gate_release();
	assert_int_equal(pthread_join(th, NULL), 0);
	/* The reader that started before the removal finishes intact. */
	assert_int_equal(a.r, 0);
	assert_memory_equal(a.buf, data[0], PACK_BYTES);
	free(a.buf);
	assert_int_equal(f->be->ops->pack_read(f->be->state, &ids[0], 0, buf,
					       1),
			 SD_ENOTFOUND);
}

static void test_pack__backend_remove_while_open(void **state)
{
	struct fixture *f = *state;
	static uint8_t data[1][PACK_BYTES];
	sd_id ids[1];
	uint8_t buf[PACK_BYTES];
	put_packs(f, data, ids, 1);
	struct parked_arg a;
	pthread_t th;
	/* The reader has opened the pack but not yet cached the fd when the
	 * pack is removed: it may finish its read, but must not leave the
	 * removed pack readable through the cache. */
	park_reader(f, GATE_OPEN, &ids[0], &a, &th);
	assert_int_equal(f->be->ops->pack_remove(f->be->state, &ids[0]), 0);
	gate_release();
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(a.r, 0);
	assert_memory_equal(a.buf, data[0], PACK_BYTES);
	free(a.buf);
	assert_int_equal(f->be->ops->pack_read(f->be->state, &ids[0], 0, buf,
					       1),
			 SD_ENOTFOUND);
}

/* Packs broken on disk, read through the backend. */
static void test_pack__backend_corrupt_packs(void **state)
{
	struct fixture *f = *state;
	const uint8_t *data;
	size_t len, n;
	sd_id pid;
	const struct store_pack_entry *e;
	struct store_pack_builder *b = build_sample(&data, &len, &pid, &e, &n);
	uint8_t *copy = malloc(len);
	assert_non_null(copy);
	struct store_pack_entry *got = NULL;
	size_t gn;
	sd_id id;

	/* Truncated by one byte, and to less than a footer. */
	sd_hash("trunc", 5, &id);
	assert_int_equal(f->be->ops->pack_put(f->be->state, &id, data, len - 1),
			 0);
	assert_int_equal(store_backend_read_trailer(f->be, &id, &got, &gn),
			 SD_ECORRUPT);
	sd_hash("tiny", 4, &id);
	assert_int_equal(f->be->ops->pack_put(f->be->state, &id, data, 30), 0);
	assert_int_equal(store_backend_read_trailer(f->be, &id, &got, &gn),
			 SD_ECORRUPT);
	/* Bad header magic with an intact trailer. */
	memcpy(copy, data, len);
	copy[3] = 'X';
	sd_hash("magic", 5, &id);
	assert_int_equal(f->be->ops->pack_put(f->be->state, &id, copy, len), 0);
	assert_int_equal(store_backend_read_trailer(f->be, &id, &got, &gn),
			 SD_ECORRUPT);
	/* One flipped trailer byte. */
	memcpy(copy, data, len);
	copy[len - FOOTER_LEN - 20] ^= 1;
	sd_hash("flip", 4, &id);
	assert_int_equal(f->be->ops->pack_put(f->be->state, &id, copy, len), 0);
	assert_int_equal(store_backend_read_trailer(f->be, &id, &got, &gn),
			 SD_ECORRUPT);
	assert_null(got);
	free(copy);
	store_pack_builder_free(b);
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
		cmocka_unit_test_setup_teardown(
			test_pack__backend_put_read_list_remove, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_pack__backend_list_skips_junk, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_pack__backend_concurrent_reads, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_pack__backend_fd_kept_while_read, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_pack__backend_remove_while_read, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_pack__backend_remove_while_open, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_pack__backend_corrupt_packs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pack__backend_new_errors,
						setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
