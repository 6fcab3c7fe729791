/* Unit tests of store/repo.c, store/blob.c and store/backup.c: a real
 * repository in a temp directory. */
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

#include "store_i.h"

struct fixture {
	char dir[64];
	char repo[96];
	char src[96];
};

static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	strcpy(f->dir, "/tmp/test_repo.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->repo, sizeof(f->repo), "%s/repo", f->dir);
	snprintf(f->src, sizeof(f->src), "%s/src", f->dir);
	assert_int_equal(store_repo_init(f->repo, NULL), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static void test_repo__init_refuses_non_empty(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(store_repo_init(f->repo, NULL), SD_EEXIST);
}

static void test_repo__not_a_repository(void **state)
{
	struct fixture *f = *state;
	struct store_repo *r;
	char err[256];
	assert_int_equal(store_repo_open(f->dir, 0, &r, err, sizeof(err)),
			 SD_ENOREPO);
	assert_non_null(strstr(err, "not a snapdraft repository"));
}

static void test_repo__newer_format_refused(void **state)
{
	struct fixture *f = *state;
	const char *text = "{\"snapdraft_repository\": 2, \"chunker\": "
			   "{\"min_size\": 262144, \"avg_size\": 1048576, "
			   "\"max_size\": 4194304}}\n";
	assert_int_equal(store_file_write_atomic(f->repo, "format", text,
						 strlen(text), 0600), 0);
	struct store_repo *r;
	char err[256];
	assert_int_equal(store_repo_open(f->repo, 0, &r, err, sizeof(err)),
			 SD_EFORMAT);
	assert_non_null(strstr(err, "newer"));
}

static void test_repo__one_writer(void **state)
{
	struct fixture *f = *state;
	struct store_repo *a, *b, *reader;
	char err[256];
	assert_int_equal(store_repo_open(f->repo, STORE_OPEN_WRITE, &a, err,
					 sizeof(err)), 0);
	assert_int_equal(store_repo_open(f->repo, STORE_OPEN_WRITE, &b, err,
					 sizeof(err)), SD_ELOCKED);
	assert_non_null(strstr(err, "locked"));
	assert_non_null(strstr(err, "pid"));
	assert_int_equal(store_repo_open(f->repo, 0, &reader, err, sizeof(err)),
			 0);
	store_repo_close(reader);
	store_repo_close(a);
	assert_int_equal(store_repo_open(f->repo, STORE_OPEN_WRITE, &b, err,
					 sizeof(err)), 0);
	store_repo_close(b);
}

static void test_repo__lost_index_only_repair_opens(void **state)
{
	struct fixture *f = *state;
	char cmd[160], err[256];
	snprintf(cmd, sizeof(cmd), "rm -rf %s/index", f->repo);
	assert_int_equal(system(cmd), 0);
	struct store_repo *r;
	assert_int_equal(store_repo_open(f->repo, 0, &r, err, sizeof(err)),
			 SD_ECORRUPT);
	assert_non_null(strstr(err, "repair --rebuild-index"));
	assert_int_equal(store_repo_open(f->repo, STORE_OPEN_WRITE, &r, err,
					 sizeof(err)), SD_ECORRUPT);
	assert_int_equal(store_repo_open(f->repo,
					 STORE_OPEN_WRITE | STORE_OPEN_REPAIR,
					 &r, err, sizeof(err)), 0);
	store_repo_close(r);

	/* Garbage where the index was: repair starts it anew. */
	char path[160];
	snprintf(path, sizeof(path), "%s/index/data.mdb", f->repo);
	int fd = open(path, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "garbage, not an LMDB file", 25), 25);
	close(fd);
	assert_true(store_repo_open(f->repo, 0, &r, err, sizeof(err)) < 0);
	assert_int_equal(store_repo_open(f->repo,
					 STORE_OPEN_WRITE | STORE_OPEN_REPAIR,
					 &r, err, sizeof(err)), 0);
	store_repo_close(r);
	assert_int_equal(store_repo_open(f->repo, 0, &r, err, sizeof(err)), 0);
	store_repo_close(r);
}

static void test_repo__writer_roundtrip_and_damage(void **state)
{
	struct fixture *f = *state;
	struct store_repo *r;
	assert_int_equal(store_repo_open(f->repo, STORE_OPEN_WRITE, &r, NULL, 0),
			 0);
	struct store_writer *w;
	assert_int_equal(store_writer_new(r, 2, 3, false, &w), 0);
	enum { N = 300 };
	sd_id ids[N];
	for (int i = 0; i < N; i++) {
		size_t len = 100000 + (size_t)i;
		uint8_t *buf = malloc(len);
		for (size_t k = 0; k < len; k++)
			buf[k] = (uint8_t)(i % 2 ? rand() : (int)(k / 7 + i));
		sd_hash(buf, len, &ids[i]);
		assert_false(store_writer_has(w, &ids[i]));
		assert_int_equal(store_writer_put(w, &ids[i], STORE_BLOB_DATA,
						  buf, len), 0);
		assert_true(store_writer_has(w, &ids[i]));
	}
	assert_int_equal(store_writer_flush(w), 0);
	struct store_writer_stats st;
	store_writer_stats(w, &st);
	assert_int_equal(st.blobs_added, N);
	assert_true(st.packs_written >= 2); /* > 16 MiB went in */
	store_writer_free(w);

	for (int i = 0; i < N; i++) {
		uint8_t *buf;
		size_t len;
		assert_int_equal(store_blob_get(r, &ids[i], &buf, &len), 0);
		assert_int_equal(len, 100000 + (size_t)i);
		sd_id got;
		sd_hash(buf, len, &got);
		assert_memory_equal(got.b, ids[i].b, SD_ID_LEN);
		free(buf);
	}

	/* Flip one byte inside blob 0: only that blob is damaged. */
	struct store_pack_entry e;
	sd_id pack;
	assert_int_equal(store_blob_locate(r, &ids[0], &e, &pack), 0);
	char hex[SD_ID_HEX_LEN + 1], path[256];
	sd_id_hex(&pack, hex);
	snprintf(path, sizeof(path), "%s/packs/%.2s/%s", f->repo, hex, hex);
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	uint8_t byte;
	assert_int_equal(pread(fd, &byte, 1, (off_t)(e.offset + e.stored_len / 2)), 1);
	byte ^= 0x40;
	assert_int_equal(pwrite(fd, &byte, 1, (off_t)(e.offset + e.stored_len / 2)), 1);
	close(fd);
	store_repo_close(r);
	/* A fresh handle: no descriptor cache from before the damage. */
	assert_int_equal(store_repo_open(f->repo, 0, &r, NULL, 0), 0);
	uint8_t *buf;
	size_t len;
	assert_int_equal(store_blob_get(r, &ids[0], &buf, &len), SD_ECORRUPT);
	assert_int_equal(store_blob_get(r, &ids[1], &buf, &len), 0);
	free(buf);
	store_repo_close(r);
}

static int backup(struct fixture *f, struct store_snapshot *out)
{
	struct store_repo *r;
	assert_int_equal(store_repo_open(f->repo, STORE_OPEN_WRITE, &r, NULL, 0),
			 0);
	struct store_snapshot_source src = { "src", f->src, 0, 0 };
	struct store_backup_options o = { .sources = &src, .nsources = 1 };
	int rc = store_backup_run(r, &o, out);
	store_repo_close(r);
	return rc;
}

static void test_repo__backup_is_incremental(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(mkdir(f->src, 0755), 0);
	char path[256];
	for (int i = 0; i < 10; i++) {
		snprintf(path, sizeof(path), "%s/file%d.md", f->src, i);
		char text[64];
		int n = snprintf(text, sizeof(text), "post number %d\n", i);
		write_file(path, text, (size_t)n);
	}
	struct store_snapshot s1, s2, s3;
	assert_int_equal(backup(f, &s1), 0);
	assert_int_equal(s1.summary.files, 10);
	assert_int_equal(s1.summary.files_new, 10);
	assert_true(s1.summary.blobs_added >= 11);

	assert_int_equal(backup(f, &s2), 0);
	assert_int_equal(s2.summary.files_unchanged, 10);
	assert_int_equal(s2.summary.bytes_read, 0);
	assert_int_equal(s2.summary.blobs_added, 0);
	assert_memory_equal(s1.tree.b, s2.tree.b, SD_ID_LEN);
	assert_memory_equal(s2.parent.b, s1.id.b, SD_ID_LEN);

	snprintf(path, sizeof(path), "%s/file3.md", f->src);
	write_file(path, "changed text, longer than before\n", 33);
	assert_int_equal(backup(f, &s3), 0);
	assert_int_equal(s3.summary.files_changed, 1);
	assert_int_equal(s3.summary.files_unchanged, 9);
	assert_int_equal(s3.summary.bytes_read, 33);
	assert_true(sd_id_cmp(&s3.tree, &s2.tree) != 0);

	/* The changed content reads back through the tree. */
	struct store_repo *r;
	assert_int_equal(store_repo_open(f->repo, 0, &r, NULL, 0), 0);
	struct store_tree *root, *dir;
	assert_int_equal(store_tree_load(r, &s3.tree, &root), 0);
	const struct store_node *n = store_tree_find(root, "src");
	assert_non_null(n);
	assert_int_equal(store_tree_load(r, &n->subtree, &dir), 0);
	const struct store_node *fn = store_tree_find(dir, "file3.md");
	assert_non_null(fn);
	assert_int_equal(fn->nextents, 1);
	uint8_t *buf;
	size_t len;
	assert_int_equal(store_blob_get(r, &fn->extents[0].id, &buf, &len), 0);
	assert_int_equal(len, 33);
	assert_memory_equal(buf, "changed text, longer than before\n", 33);
	free(buf);
	store_tree_free(dir);
	store_tree_free(root);
	store_repo_close(r);
	store_snapshot_clear(&s1);
	store_snapshot_clear(&s2);
	store_snapshot_clear(&s3);
}

static void test_repo__backup_needs_writer_lock(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(mkdir(f->src, 0755), 0);
	struct store_repo *r;
	assert_int_equal(store_repo_open(f->repo, 0, &r, NULL, 0), 0);
	struct store_snapshot_source src = { "src", f->src, 0, 0 };
	struct store_backup_options o = { .sources = &src, .nsources = 1 };
	struct store_snapshot out;
	assert_int_equal(store_backup_run(r, &o, &out), SD_EUSAGE);
	store_repo_close(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_repo__init_refuses_non_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_repo__not_a_repository, setup, teardown),
		cmocka_unit_test_setup_teardown(test_repo__newer_format_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_repo__one_writer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_repo__lost_index_only_repair_opens, setup, teardown),
		cmocka_unit_test_setup_teardown(test_repo__writer_roundtrip_and_damage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_repo__backup_is_incremental, setup, teardown),
		cmocka_unit_test_setup_teardown(test_repo__backup_needs_writer_lock, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
