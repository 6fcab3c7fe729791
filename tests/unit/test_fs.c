/* Unit tests of fs/: inode numbers and lookup counts, the handle table, the
 * chunk and tree caches and the naming of backup points, on a real
 * repository in a temp directory (no FUSE mount: see tests/integration). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs_i.h"

struct fixture {
	char dir[64];
	char repo[96];
	char src[96];
	struct store_repo *r;
	struct fs fs;
};

static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static void fill_random(uint8_t *buf, size_t len, unsigned seed)
{
	size_t i;

	for (i = 0; i < len; i++) {
		seed = seed * 1103515245u + 12345u;
		buf[i] = (uint8_t)(seed >> 16);
	}
}

/* A repository with one backup point of src/ at time_ns. */
static void backup(struct fixture *f, int64_t time_ns, struct store_snapshot *out)
{
	struct store_repo *w;
	struct store_snapshot_source src = { .name = "src", .path = f->src };
	struct store_backup_options o = {
		.sources = &src, .nsources = 1, .time_ns = time_ns,
	};
	char err[256];

	assert_int_equal(store_repo_open(f->repo, STORE_OPEN_WRITE, &w, err,
					 sizeof(err)), 0);
	assert_int_equal(store_backup_run(w, &o, out), 0);
	store_repo_close(w);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[256];

	strcpy(f->dir, "/tmp/test_fs.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->repo, sizeof(f->repo), "%s/repo", f->dir);
	snprintf(f->src, sizeof(f->src), "%s/src", f->dir);
	assert_int_equal(mkdir(f->src, 0755), 0);
	assert_int_equal(store_repo_init(f->repo, NULL), 0);
	assert_int_equal(store_repo_open(f->repo, 0, &f->r, err, sizeof(err)), 0);
	f->fs.repo = f->r;
	assert_int_equal(fs_itab_new(&f->fs.itab), 0);
	assert_int_equal(fs_handles_new(&f->fs.handles), 0);
	assert_int_equal(fs_trees_new(f->r, 1 << 20, &f->fs.trees), 0);
	fs_inode_fixed_set(&f->fs, FS_INO_ROOT, &fs_top_area, FS_KIND_DIR);
	fs_inode_fixed_set(&f->fs, FS_INO_SNAPSHOTS, &fs_top_area, FS_KIND_DIR);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	fs_handles_free(&f->fs, f->fs.handles);
	fs_itab_free(&f->fs, f->fs.itab);
	fs_snaplist_free(f->fs.snaps);
	fs_chunks_free(f->fs.chunks);
	fs_trees_free(f->fs.trees);
	store_repo_close(f->r);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* A key whose first candidate number is v. */
static void key_with_number(uint64_t v, uint8_t tail, uint8_t key[FS_KEY_LEN])
{
	int i;

	memset(key, tail, FS_KEY_LEN);
	for (i = 0; i < 8; i++)
		key[i] = (uint8_t)(v >> (8 * i));
}

static struct fs_inode *lookup_key(struct fixture *f, const uint8_t *key)
{
	struct fs_inode *in;
	struct fs_inode_init init = {
		.key = key,
		.area = &fs_snap_area,
		.kind = FS_KIND_NODE,
		.parent = &f->fs.fixed[FS_INO_SNAPSHOTS],
	};

	assert_int_equal(fs_inode_lookup(&f->fs, &init, &in), 0);
	return in;
}

static void test_fs__keys_are_stable_and_distinct(void **state)
{
	uint8_t a[FS_KEY_LEN], b[FS_KEY_LEN], c[FS_KEY_LEN], p[FS_KEY_LEN];
	sd_id s1, s2;

	(void)state;
	sd_hash("one", 3, &s1);
	sd_hash("two", 3, &s2);
	fs_key_snapshot(&s1, p);
	fs_key_child(p, "posts", a);
	fs_key_child(p, "posts", b);
	assert_memory_equal(a, b, FS_KEY_LEN);
	fs_key_child(p, "post", c);
	assert_memory_not_equal(a, c, FS_KEY_LEN);
	/* the same path in another point is another key */
	fs_key_snapshot(&s2, p);
	fs_key_child(p, "posts", c);
	assert_memory_not_equal(a, c, FS_KEY_LEN);
	fs_key_hardlink(&s1, 1, 2, a);
	fs_key_hardlink(&s1, 1, 2, b);
	assert_memory_equal(a, b, FS_KEY_LEN);
	fs_key_hardlink(&s2, 1, 2, c);
	assert_memory_not_equal(a, c, FS_KEY_LEN);
	fs_key_hardlink(&s1, 2, 1, c);
	assert_memory_not_equal(a, c, FS_KEY_LEN);
}

static void test_fs__lookup_counts_and_forget(void **state)
{
	struct fixture *f = *state;
	uint8_t key[FS_KEY_LEN];
	struct fs_inode *a, *b;
	uint64_t ino;

	key_with_number(0x1234567890abcdefull, 7, key);
	a = lookup_key(f, key);
	ino = a->ino;
	assert_true(ino == 0x1234567890abcdefull);
	b = lookup_key(f, key);
	assert_ptr_equal(a, b);
	assert_int_equal(fs_inode_count(&f->fs), 1);
	fs_inode_put(&f->fs, a);
	fs_inode_put(&f->fs, b);
	/* two lookups counted: one forget leaves it known */
	fs_inode_forget(&f->fs, ino, 1);
	b = fs_inode_get(&f->fs, ino);
	assert_ptr_equal(a, b);
	fs_inode_put(&f->fs, b);
	fs_inode_forget(&f->fs, ino, 1);
	assert_null(fs_inode_get(&f->fs, ino));
	assert_int_equal(fs_inode_count(&f->fs), 0);
	/* a forget for an unknown number is harmless */
	fs_inode_forget(&f->fs, ino, 5);
}

static void test_fs__request_ref_outlives_forget(void **state)
{
	struct fixture *f = *state;
	uint8_t key[FS_KEY_LEN];
	struct fs_inode *a, *held;

	key_with_number(0x5555555555555555ull, 1, key);
	a = lookup_key(f, key);
	fs_inode_put(&f->fs, a);
	held = fs_inode_get(&f->fs, a->ino);
	fs_inode_forget(&f->fs, a->ino, 1);
	/* still usable by the request that holds it, and still findable */
	assert_true(held->ino == 0x5555555555555555ull);
	assert_int_equal(fs_inode_count(&f->fs), 1);
	fs_inode_put(&f->fs, held);
	assert_int_equal(fs_inode_count(&f->fs), 0);
}

static void test_fs__collisions_probe_deterministically(void **state)
{
	struct fixture *f = *state;
	uint8_t ka[FS_KEY_LEN], kb[FS_KEY_LEN], kr[FS_KEY_LEN];
	struct fs_inode *a, *b, *b2, *r;
	uint64_t bino;

	key_with_number(0x0badc0ffee000001ull, 1, ka);
	key_with_number(0x0badc0ffee000001ull, 2, kb);
	a = lookup_key(f, ka);
	b = lookup_key(f, kb);
	assert_true(a->ino == 0x0badc0ffee000001ull);
	assert_true(b->ino != a->ino);
	assert_true(b->ino >= FS_INO_RESERVED);
	bino = b->ino;
	assert_true(fs_inode_number(&f->fs, kb) == bino);
	assert_true(fs_inode_number(&f->fs, ka) == a->ino);
	/* the probe sequence depends on the key alone */
	fs_inode_put(&f->fs, b);
	fs_inode_forget(&f->fs, bino, 1);
	b2 = lookup_key(f, kb);
	assert_true(b2->ino == bino);
	fs_inode_put(&f->fs, b2);
	fs_inode_forget(&f->fs, bino, 1);
	fs_inode_put(&f->fs, a);
	fs_inode_forget(&f->fs, 0x0badc0ffee000001ull, 1);
	/* numbers of fixed nodes are never handed out */
	key_with_number(3, 9, kr);
	r = lookup_key(f, kr);
	assert_true(r->ino >= FS_INO_RESERVED);
	fs_inode_put(&f->fs, r);
	fs_inode_forget(&f->fs, r->ino, 1);
	assert_int_equal(fs_inode_count(&f->fs), 0);
}

static void test_fs__child_holds_parent(void **state)
{
	struct fixture *f = *state;
	uint8_t kp[FS_KEY_LEN], kc[FS_KEY_LEN];
	struct fs_inode *p, *c;
	struct fs_inode_init init = {
		.key = kc, .area = &fs_snap_area, .kind = FS_KIND_NODE,
	};
	uint64_t pino;

	key_with_number(0x1111111111111111ull, 1, kp);
	key_with_number(0x2222222222222222ull, 1, kc);
	p = lookup_key(f, kp);
	pino = p->ino;
	init.parent = p;
	assert_int_equal(fs_inode_lookup(&f->fs, &init, &c), 0);
	fs_inode_put(&f->fs, p);
	fs_inode_forget(&f->fs, pino, 1);
	/* the kernel forgot the parent; its child still names it */
	assert_int_equal(fs_inode_count(&f->fs), 2);
	assert_ptr_equal(c->parent, p);
	fs_inode_put(&f->fs, c);
	fs_inode_forget(&f->fs, c->ino, 1);
	assert_int_equal(fs_inode_count(&f->fs), 0);
}

static int destroyed;
static void count_destroy(struct fs *fs, void *obj)
{
	(void)fs;
	destroyed++;
	free(obj);
}

static void test_fs__handle_survives_racing_release(void **state)
{
	struct fixture *f = *state;
	struct fs_handle *h;
	uint64_t id, id2;
	void *obj;

	destroyed = 0;
	assert_int_equal(fs_handle_open(&f->fs, malloc(8), count_destroy, &id), 0);
	assert_int_equal(fs_handle_open(&f->fs, malloc(8), count_destroy, &id2), 0);
	assert_true(id != id2);
	h = fs_handle_get(&f->fs, id, &obj);
	assert_non_null(h);
	assert_non_null(obj);
	/* release while a read is in flight: freed only after the read */
	fs_handle_close(&f->fs, id);
	assert_int_equal(destroyed, 0);
	assert_null(fs_handle_get(&f->fs, id, &obj));
	assert_null(obj);
	fs_handle_put(&f->fs, h);
	assert_int_equal(destroyed, 1);
	assert_int_equal(fs_handles_count(&f->fs), 1);
	/* what was never released goes with the table (teardown) */
}

static void test_fs__chunk_cache_serves_verified_bytes(void **state)
{
	struct fixture *f = *state;
	struct store_snapshot snap = { 0 };
	struct store_tree *root, *t;
	const struct store_node *n;
	struct fs_cache_stats st;
	struct fs_chunk *ch, *ch2;
	char path[160];
	uint8_t *data = malloc(3 << 20);
	uint32_t i;
	uint64_t off = 0;

	fill_random(data, 3 << 20, 42);
	snprintf(path, sizeof(path), "%s/big.bin", f->src);
	write_file(path, data, 3 << 20);
	backup(f, 0, &snap);
	assert_int_equal(store_tree_load(f->r, &snap.tree, &root), 0);
	assert_int_equal(store_tree_load(f->r, &root->nodes[0].subtree, &t), 0);
	n = store_tree_find(t, "big.bin");
	assert_non_null(n);
	assert_true(n->nextents >= 2);

	/* a cap below one chunk: every chunk is evicted once unused */
	assert_int_equal(fs_chunks_new(f->r, 1, &f->fs.chunks), 0);
	for (i = 0; i < n->nextents; i++) {
		assert_int_equal(fs_chunk_get(f->fs.chunks, &n->extents[i].id, &ch), 0);
		assert_int_equal(ch->len, n->extents[i].length);
		assert_memory_equal(ch->data, data + off, ch->len);
		off += ch->len;
		/* a second reader shares the entry while it is referenced */
		assert_int_equal(fs_chunk_get(f->fs.chunks, &n->extents[i].id, &ch2), 0);
		assert_ptr_equal(ch, ch2);
		fs_chunk_put(f->fs.chunks, ch2);
		fs_chunk_put(f->fs.chunks, ch);
	}
	assert_true(off == 3u << 20);
	fs_chunks_stats(f->fs.chunks, &st);
	assert_true(st.misses == n->nextents);
	assert_true(st.hits == n->nextents);
	assert_true(st.bytes == 0);
	assert_true(st.entries == 0);
	fs_chunks_free(f->fs.chunks);

	/* read-ahead: a prefetched chunk is then a hit */
	assert_int_equal(fs_chunks_new(f->r, 64 << 20, &f->fs.chunks), 0);
	fs_chunk_prefetch(f->fs.chunks, &n->extents[1].id);
	for (i = 0; i < 1000; i++) {
		fs_chunks_stats(f->fs.chunks, &st);
		if (st.bytes > 0)
			break;
		usleep(10000);
	}
	assert_true(st.prefetches == 1);
	assert_int_equal(fs_chunk_get(f->fs.chunks, &n->extents[1].id, &ch), 0);
	assert_memory_equal(ch->data, data + n->extents[1].offset, ch->len);
	fs_chunk_put(f->fs.chunks, ch);
	fs_chunks_stats(f->fs.chunks, &st);
	assert_true(st.prefetch_hits == 1);
	assert_true(st.misses == 0);
	assert_true(st.bytes > 0 && st.bytes <= st.capacity);

	store_tree_free(t);
	store_tree_free(root);
	store_snapshot_clear(&snap);
	free(data);
}

static int flip_in_pack(const sd_id *pack_id, uint64_t off, const char *repo)
{
	char hex[SD_ID_HEX_LEN + 1], path[256];
	uint8_t b;
	int fd;

	sd_id_hex(pack_id, hex);
	snprintf(path, sizeof(path), "%s/packs/%.2s/%s", repo, hex, hex);
	chmod(path, 0644);
	fd = open(path, O_RDWR);
	if (fd < 0)
		return -errno;
	if (pread(fd, &b, 1, (off_t)off) != 1)
		return -EIO;
	b ^= 0x40;
	if (pwrite(fd, &b, 1, (off_t)off) != 1)
		return -EIO;
	close(fd);
	return 0;
}

static void test_fs__chunk_cache_never_caches_damage(void **state)
{
	struct fixture *f = *state;
	struct store_snapshot snap = { 0 };
	struct store_tree *root, *t;
	const struct store_node *n;
	struct store_pack_entry e;
	struct fs_cache_stats st;
	struct fs_chunk *ch;
	char path[160];
	uint8_t data[100000];
	sd_id pack;

	fill_random(data, sizeof(data), 7);
	snprintf(path, sizeof(path), "%s/victim", f->src);
	write_file(path, data, sizeof(data));
	backup(f, 0, &snap);
	assert_int_equal(store_tree_load(f->r, &snap.tree, &root), 0);
	assert_int_equal(store_tree_load(f->r, &root->nodes[0].subtree, &t), 0);
	n = store_tree_find(t, "victim");
	assert_int_equal(n->nextents, 1);
	assert_int_equal(store_blob_locate(f->r, &n->extents[0].id, &e, &pack), 0);
	assert_int_equal(flip_in_pack(&pack, e.offset + e.stored_len / 2, f->repo), 0);

	assert_int_equal(fs_chunks_new(f->r, 64 << 20, &f->fs.chunks), 0);
	assert_int_equal(fs_chunk_get(f->fs.chunks, &n->extents[0].id, &ch),
			 SD_ECORRUPT);
	assert_int_equal(fs_chunk_get(f->fs.chunks, &n->extents[0].id, &ch),
			 SD_ECORRUPT);
	fs_chunks_stats(f->fs.chunks, &st);
	assert_true(st.errors == 2);
	assert_true(st.entries == 0 && st.bytes == 0);
	assert_int_equal(fs_errno(SD_ECORRUPT), EIO);
	assert_int_equal(fs_errno(-ENOENT), ENOENT);
	store_tree_free(t);
	store_tree_free(root);
	store_snapshot_clear(&snap);
}

static void test_fs__tree_cache_shares_and_bounds(void **state)
{
	struct fixture *f = *state;
	struct store_snapshot snap = { 0 };
	struct fs_tree *a, *b;
	char path[160];

	snprintf(path, sizeof(path), "%s/x", f->src);
	write_file(path, "x", 1);
	backup(f, 0, &snap);
	assert_int_equal(fs_tree_get(f->fs.trees, &snap.tree, &a), 0);
	assert_int_equal(fs_tree_get(f->fs.trees, &snap.tree, &b), 0);
	assert_ptr_equal(a, b);
	assert_int_equal(a->t->n, 1);
	assert_string_equal(a->t->nodes[0].name, "src");
	fs_tree_put(f->fs.trees, a);
	fs_tree_put(f->fs.trees, b);
	sd_hash("nothing", 7, &snap.tree);
	assert_int_equal(fs_tree_get(f->fs.trees, &snap.tree, &a), SD_ENOTFOUND);
	store_snapshot_clear(&snap);
}

static void test_fs__points_are_named_by_time(void **state)
{
	struct fixture *f = *state;
	const int64_t t0 = 1795322642LL * 1000000000LL; /* 2026-11-22T04:44:02Z */
	struct store_snapshot s[4];
	struct fs_snaps *l;
	char path[160];
	size_t i, j;

	memset(s, 0, sizeof(s));
	snprintf(path, sizeof(path), "%s/x", f->src);
	write_file(path, "x", 1);
	backup(f, t0 + 100, &s[0]);
	backup(f, t0 + 200, &s[1]);	/* same second */
	backup(f, t0 + 300, &s[2]);	/* same second */
	backup(f, t0 + 5000000000LL, &s[3]);
	assert_int_equal(fs_snaplist_new(&f->fs, &f->fs.snaps), 0);
	l = fs_snaps_get(&f->fs);
	assert_int_equal(l->n, 4);
	/* the first of a second keeps the plain name */
	assert_non_null(fs_snaps_find(l, "2026-11-22T04:44:02Z"));
	assert_true(sd_id_cmp(&fs_snaps_find(l, "2026-11-22T04:44:02Z")->id,
			      &s[0].id) == 0);
	assert_non_null(fs_snaps_find(l, "2026-11-22T04:44:07Z"));
	for (i = 0; i < l->n; i++) {
		assert_true(strlen(l->v[i]->short_id) >= 8);
		if (i > 0)
			assert_true(strcmp(l->v[i - 1]->name, l->v[i]->name) < 0);
		for (j = 0; j < i; j++)
			assert_string_not_equal(l->v[i]->short_id,
						l->v[j]->short_id);
		assert_ptr_equal(fs_snaps_find_short(l, l->v[i]->short_id),
				 l->v[i]);
	}
	/* latest is the newest by time, not by name */
	assert_true(sd_id_cmp(&l->newest->id, &s[3].id) == 0);
	/* an unchanged stamp gives the same list back */
	fs_snaps_put(l);
	l = fs_snaps_get(&f->fs);
	assert_int_equal(l->n, 4);
	fs_snaps_put(l);
	for (i = 0; i < 4; i++)
		store_snapshot_clear(&s[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fs__keys_are_stable_and_distinct, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fs__lookup_counts_and_forget, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fs__request_ref_outlives_forget, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fs__collisions_probe_deterministically, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fs__child_holds_parent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fs__handle_survives_racing_release, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fs__chunk_cache_serves_verified_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fs__chunk_cache_never_caches_damage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fs__tree_cache_shares_and_bounds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fs__points_are_named_by_time, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
