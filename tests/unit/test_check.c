/* Unit tests of store/check.c: check and repair --rebuild-index on a real
 * repository in a temp directory, with damage injected into packs and the
 * index: a flipped byte in a blob, a flipped byte in a trailer, a deleted
 * pack, a deleted index. */
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

#define MAX_PROBLEMS 64

struct fixture {
	char dir[64];
	char repo[96];
	char src[96];
	struct store_repo *r;
	struct store_snapshot snap;
	char *problems[MAX_PROBLEMS];
	int nproblems;
};

static void path_fmt(char *out, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void path_fmt(char *out, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(out, len, fmt, ap);
	va_end(ap);
	assert_true(n > 0 && (size_t)n < len);
}

static void put_file(struct fixture *f, const char *rel, const void *data,
		     size_t len)
{
	char p[512];
	path_fmt(p, sizeof(p), "%s/%s", f->src, rel);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static void put_dir(struct fixture *f, const char *rel)
{
	char p[512];
	path_fmt(p, sizeof(p), "%s/%s", f->src, rel);
	assert_int_equal(mkdir(p, 0755), 0);
}

static void make_tree(struct fixture *f)
{
	assert_int_equal(mkdir(f->src, 0755), 0);
	put_dir(f, "content");
	put_dir(f, "content/posts");
	put_file(f, "content/posts/a.md", "# A\nalpha text\n", 15);
	put_file(f, "content/posts/b.md", "# B\nbeta text\n", 14);
	put_file(f, "content/copy-of-a.md", "# A\nalpha text\n", 15);
	size_t len = 200 * 1024;
	uint8_t *big = malloc(len);
	uint32_t x = 99;
	for (size_t i = 0; i < len; i++) {
		x = x * 1103515245u + 12345u;
		big[i] = (uint8_t)(x >> 16);
	}
	put_file(f, "big.bin", big, len);
	free(big);
}

static void repo_reopen(struct fixture *f, unsigned flags)
{
	store_repo_close(f->r);
	char err[256];
	int r = store_repo_open(f->repo, flags, &f->r, err, sizeof(err));
	if (r != 0)
		fail_msg("open: %s", err);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	strcpy(f->dir, "/tmp/test_check.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	path_fmt(f->repo, sizeof(f->repo), "%s/repo", f->dir);
	path_fmt(f->src, sizeof(f->src), "%s/src", f->dir);
	struct store_repo_init_options io = { { 1024, 4096, 16384 } };
	assert_int_equal(store_repo_init(f->repo, &io), 0);
	make_tree(f);
	char err[256];
	assert_int_equal(store_repo_open(f->repo, STORE_OPEN_WRITE, &f->r, err,
					 sizeof(err)), 0);
	struct store_snapshot_source src = { .name = "src", .path = f->src };
	struct store_backup_options o = { .sources = &src, .nsources = 1 };
	assert_int_equal(store_backup_run(f->r, &o, &f->snap), 0);
	*state = f;
	return 0;
}

static void problems_clear(struct fixture *f)
{
	for (int i = 0; i < f->nproblems; i++)
		free(f->problems[i]);
	f->nproblems = 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	problems_clear(f);
	store_snapshot_clear(&f->snap);
	store_repo_close(f->r);
	char cmd[128];
	path_fmt(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static void on_problem(const char *msg, void *ctx)
{
	struct fixture *f = ctx;
	if (f->nproblems < MAX_PROBLEMS)
		f->problems[f->nproblems++] = strdup(msg);
}

static int check(struct fixture *f, bool read_data,
		 struct store_check_result *res)
{
	problems_clear(f);
	struct store_check_options o = { .read_data = read_data,
					 .problem = on_problem, .ctx = f };
	return store_check_run(f->r, &o, res);
}

/* The problem line that mentions every given string, or NULL. */
static const char *problem_with(struct fixture *f, const char *a,
				const char *b, const char *c)
{
	for (int i = 0; i < f->nproblems; i++) {
		const char *p = f->problems[i];
		if (strstr(p, a) && (!b || strstr(p, b)) && (!c || strstr(p, c)))
			return p;
	}
	return NULL;
}

static void print_problems(struct fixture *f)
{
	for (int i = 0; i < f->nproblems; i++)
		print_message("problem: %s\n", f->problems[i]);
}

/* Where the first blob of a file in the snapshot lives. */
static void file_blob(struct fixture *f, const char *const *path,
		      size_t depth, sd_id *blob, struct store_pack_entry *e,
		      sd_id *pack)
{
	struct store_tree *t;
	assert_int_equal(store_tree_load(f->r, &f->snap.tree, &t), 0);
	for (size_t i = 0; i < depth; i++) {
		const struct store_node *n = store_tree_find(t, path[i]);
		assert_non_null(n);
		if (i + 1 == depth) {
			assert_true(n->nextents > 0);
			*blob = n->extents[0].id;
			break;
		}
		struct store_tree *sub;
		assert_int_equal(store_tree_load(f->r, &n->subtree, &sub), 0);
		store_tree_free(t);
		t = sub;
	}
	store_tree_free(t);
	assert_int_equal(store_blob_locate(f->r, blob, e, pack), 0);
}

static void pack_path(struct fixture *f, const sd_id *pack, char *out,
		      size_t len)
{
	char hex[SD_ID_HEX_LEN + 1];
	sd_id_hex(pack, hex);
	path_fmt(out, len, "%s/packs/%.2s/%s", f->repo, hex, hex);
}

static void flip_byte(const char *path, off_t off)
{
	assert_int_equal(chmod(path, 0600), 0);
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	uint8_t b;
	if (off < 0)
		off += lseek(fd, 0, SEEK_END);
	assert_int_equal(pread(fd, &b, 1, off), 1);
	b ^= 0x01;
	assert_int_equal(pwrite(fd, &b, 1, off), 1);
	close(fd);
}

static const char *const a_md[] = { "src", "content", "posts", "a.md" };

/* ---------------------------------------------------------------- cases */

static void test_check__clean_repository(void **state)
{
	struct fixture *f = *state;
	struct store_check_result res;
	assert_int_equal(check(f, false, &res), 0);
	assert_int_equal(res.problems, 0);
	assert_int_equal(f->nproblems, 0);
	assert_int_equal(res.snapshots, 1);
	assert_int_equal(res.trees, 4); /* root, src, content, posts */
	assert_true(res.blobs >= 4);	/* a (= copy), b, big in chunks */
	assert_true(res.packs >= 2);	/* data and trees apart */
	assert_int_equal(res.bytes_read, 0);

	assert_int_equal(check(f, true, &res), 0);
	assert_int_equal(f->nproblems, 0);
	char cmd[256];
	path_fmt(cmd, sizeof(cmd), "du -cb %s/packs/*/* | tail -1", f->repo);
	FILE *p = popen(cmd, "r");
	unsigned long long du = 0;
	assert_int_equal(fscanf(p, "%llu", &du), 1);
	pclose(p);
	assert_int_equal(res.bytes_read, du);
}

static void test_check__flipped_blob_byte_names_pack_blob_files(void **state)
{
	struct fixture *f = *state;
	sd_id blob, pack;
	struct store_pack_entry e;
	file_blob(f, a_md, 4, &blob, &e, &pack);
	char pp[512];
	pack_path(f, &pack, pp, sizeof(pp));
	flip_byte(pp, (off_t)(e.offset + e.stored_len / 2));

	struct store_check_result res;
	/* The structure is intact: only reading the data finds it. */
	assert_int_equal(check(f, false, &res), 0);
	assert_int_equal(check(f, true, &res), SD_ECORRUPT);
	print_problems(f);
	char bh[SD_ID_HEX_LEN + 1], ph[SD_ID_HEX_LEN + 1];
	sd_id_hex(&blob, bh);
	sd_id_hex(&pack, ph);
	const char *line = problem_with(f, bh, ph, "content/posts/a.md");
	assert_non_null(line);
	/* the same content is used by a second file: both are named */
	assert_non_null(strstr(line, "content/copy-of-a.md"));
	char sid[SD_ID_HEX_LEN + 1];
	sd_id_hex(&f->snap.id, sid);
	sid[8] = '\0';
	assert_non_null(strstr(line, sid));
	/* the pack itself no longer matches its name */
	assert_non_null(problem_with(f, ph, "does not match its id", NULL));
	assert_int_equal(res.problems, (uint64_t)f->nproblems);
	assert_int_equal(res.problems, 2);
}

static void test_check__flipped_trailer_byte(void **state)
{
	struct fixture *f = *state;
	sd_id blob, pack;
	struct store_pack_entry e;
	file_blob(f, a_md, 4, &blob, &e, &pack);
	char pp[512];
	pack_path(f, &pack, pp, sizeof(pp));
	flip_byte(pp, -(off_t)STORE_PACK_FOOTER_LEN - 10);
	struct store_check_result res;
	assert_int_equal(check(f, true, &res), SD_ECORRUPT);
	print_problems(f);
	char ph[SD_ID_HEX_LEN + 1];
	sd_id_hex(&pack, ph);
	assert_non_null(problem_with(f, ph, "trailer", NULL));
	/* the blobs themselves are intact and still readable by index */
	assert_null(problem_with(f, "content/posts/a.md", NULL, NULL));

	/* rebuilding the index skips that pack and names it */
	repo_reopen(f, STORE_OPEN_WRITE);
	problems_clear(f);
	struct store_check_options o = { .problem = on_problem, .ctx = f };
	assert_int_equal(store_repair_rebuild_index(f->r, &o, &res),
			 SD_EPARTIAL);
	assert_int_equal(f->nproblems, 1);
	assert_non_null(problem_with(f, ph, "skipped", NULL));
	/* now those blobs are lost from the index: check says which files */
	assert_int_equal(check(f, false, &res), SD_ECORRUPT);
	print_problems(f);
	assert_non_null(problem_with(f, "not in the index",
				     "content/posts/a.md", NULL));
}

static void test_check__missing_pack(void **state)
{
	struct fixture *f = *state;
	sd_id blob, pack;
	struct store_pack_entry e;
	file_blob(f, a_md, 4, &blob, &e, &pack);
	char pp[512];
	pack_path(f, &pack, pp, sizeof(pp));
	assert_int_equal(unlink(pp), 0);
	repo_reopen(f, 0);
	struct store_check_result res;
	assert_int_equal(check(f, false, &res), SD_ECORRUPT);
	print_problems(f);
	char bh[SD_ID_HEX_LEN + 1], ph[SD_ID_HEX_LEN + 1];
	sd_id_hex(&blob, bh);
	sd_id_hex(&pack, ph);
	assert_non_null(problem_with(f, ph, "missing", bh));
	assert_non_null(problem_with(f, bh, "content/posts/a.md", NULL));
	assert_int_equal(res.problems, (uint64_t)f->nproblems);
	assert_true(res.problems >= 3); /* every blob of that pack */
}

static void test_check__truncated_pack(void **state)
{
	struct fixture *f = *state;
	sd_id blob, pack;
	struct store_pack_entry e;
	file_blob(f, a_md, 4, &blob, &e, &pack);
	char pp[512];
	pack_path(f, &pack, pp, sizeof(pp));
	struct stat st;
	assert_int_equal(stat(pp, &st), 0);
	/* cut into the blob area: the footer, trailer and some blobs go */
	assert_true((uint64_t)st.st_size > e.offset + 1);
	assert_int_equal(chmod(pp, 0600), 0);
	assert_int_equal(truncate(pp, (off_t)e.offset + 1), 0);
	repo_reopen(f, 0);
	struct store_check_result res;
	assert_int_equal(check(f, false, &res), SD_ECORRUPT);
	print_problems(f);
	char bh[SD_ID_HEX_LEN + 1], ph[SD_ID_HEX_LEN + 1];
	sd_id_hex(&blob, bh);
	sd_id_hex(&pack, ph);
	assert_non_null(problem_with(f, ph, "too short", bh));
	assert_non_null(problem_with(f, bh, "content/posts/a.md",
				     "content/copy-of-a.md"));
	uint64_t structure = res.problems;
	assert_int_equal(check(f, true, &res), SD_ECORRUPT);
	assert_non_null(problem_with(f, ph, "trailer", NULL));
	assert_non_null(problem_with(f, ph, "does not match its id", NULL));
	assert_int_equal(res.problems, structure + 2);
}

static int index_pack(const sd_id *id, uint64_t size, void *ctx)
{
	(void)size;
	struct store_repo *r = ctx;
	struct store_pack_entry *list;
	size_t n;
	int rc = store_backend_read_trailer(r->backend, id, &list, &n);
	if (rc == 0)
		rc = store_index_add_pack(r->index, id, list, n);
	free(list);
	return rc;
}

static void test_check__index_disagrees_with_trailer(void **state)
{
	struct fixture *f = *state;
	sd_id blob, pack;
	struct store_pack_entry e;
	file_blob(f, a_md, 4, &blob, &e, &pack);
	/* Index the blob of b.md at a.md's place: its bytes hash wrong. */
	const char *const b_md[] = { "src", "content", "posts", "b.md" };
	sd_id bblob, bpack;
	struct store_pack_entry be;
	file_blob(f, b_md, 4, &bblob, &be, &bpack);
	char cmd[256];
	store_repo_close(f->r);
	f->r = NULL;
	path_fmt(cmd, sizeof(cmd), "rm -rf %s/index", f->repo);
	assert_int_equal(system(cmd), 0);
	repo_reopen(f, STORE_OPEN_WRITE | STORE_OPEN_REPAIR);
	struct store_check_options o = { .problem = on_problem, .ctx = f };
	struct store_check_result res;
	assert_int_equal(store_repair_rebuild_index(f->r, &o, &res), 0);
	assert_int_equal(store_index_clear(f->r->index), 0);
	struct store_backend *bk = store_repo_backend(f->r);
	struct store_pack_entry *list;
	size_t n;
	assert_int_equal(store_backend_read_trailer(bk, &pack, &list, &n), 0);
	for (size_t i = 0; i < n; i++)
		if (sd_id_cmp(&list[i].id, &bblob) == 0)
			list[i].offset = e.offset; /* wrong place */
	assert_int_equal(store_index_add_pack(f->r->index, &pack, list, n), 0);
	free(list);
	/* every other pack as it is (indexed entries keep their place) */
	assert_int_equal(bk->ops->pack_list(bk->state, index_pack, f->r), 0);
	assert_int_equal(check(f, true, &res), SD_ECORRUPT);
	print_problems(f);
	char bh[SD_ID_HEX_LEN + 1], ph[SD_ID_HEX_LEN + 1];
	sd_id_hex(&bblob, bh);
	sd_id_hex(&pack, ph);
	assert_non_null(problem_with(f, bh, "disagrees", ph));
	assert_non_null(problem_with(f, bh, "content/posts/b.md", NULL));
	assert_int_equal(res.problems, 1);
}

static void test_check__rebuild_after_index_deleted(void **state)
{
	struct fixture *f = *state;
	store_repo_close(f->r);
	f->r = NULL;
	char cmd[256];
	path_fmt(cmd, sizeof(cmd), "rm -rf %s/index", f->repo);
	assert_int_equal(system(cmd), 0);
	repo_reopen(f, STORE_OPEN_WRITE | STORE_OPEN_REPAIR);
	struct store_check_result res;
	assert_int_equal(check(f, false, &res), SD_ECORRUPT);
	assert_non_null(problem_with(f, "not in the index", NULL, NULL));

	problems_clear(f);
	struct store_check_options o = { .problem = on_problem, .ctx = f };
	assert_int_equal(store_repair_rebuild_index(f->r, &o, &res), 0);
	assert_int_equal(f->nproblems, 0);
	assert_true(res.packs >= 2);
	assert_true(res.blobs >= 8);
	uint64_t n;
	assert_int_equal(store_index_count(f->r->index, &n), 0);
	assert_int_equal(n, res.blobs);
	assert_int_equal(check(f, true, &res), 0);

	/* and the data reads back */
	sd_id blob, pack;
	struct store_pack_entry e;
	file_blob(f, a_md, 4, &blob, &e, &pack);
	uint8_t *buf;
	size_t len;
	assert_int_equal(store_blob_get(f->r, &blob, &buf, &len), 0);
	assert_int_equal(len, 15);
	assert_memory_equal(buf, "# A\nalpha text\n", 15);
	free(buf);
}

static void test_check__rebuild_needs_write_lock(void **state)
{
	struct fixture *f = *state;
	repo_reopen(f, 0);
	struct store_check_result res;
	assert_int_equal(store_repair_rebuild_index(f->r, NULL, &res),
			 SD_EUSAGE);
	uint64_t n;
	assert_int_equal(store_index_count(f->r->index, &n), 0);
	assert_true(n > 0);
}

static void test_check__unindexed_pack_is_not_a_problem(void **state)
{
	struct fixture *f = *state;
	/* What a crash between pack write and index commit leaves. */
	struct store_pack_builder *b;
	assert_int_equal(store_pack_builder_new(&b), 0);
	sd_id id;
	sd_hash("orphan", 6, &id);
	assert_int_equal(store_pack_builder_add(b, &id, STORE_BLOB_DATA, 0,
						"orphan", 6, 6), 0);
	const uint8_t *data;
	size_t len, n;
	sd_id pack;
	const struct store_pack_entry *e;
	assert_int_equal(store_pack_builder_finish(b, &data, &len, &pack, &e,
						   &n), 0);
	struct store_backend *be = store_repo_backend(f->r);
	assert_int_equal(be->ops->pack_put(be->state, &pack, data, len), 0);
	store_pack_builder_free(b);
	struct store_check_result res;
	assert_int_equal(check(f, true, &res), 0);
	assert_int_equal(f->nproblems, 0);
}

int main(int argc, char **argv)
{
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_check__clean_repository,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_check__flipped_blob_byte_names_pack_blob_files,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_check__flipped_trailer_byte, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check__missing_pack, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_check__truncated_pack,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_check__index_disagrees_with_trailer, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_check__rebuild_after_index_deleted, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_check__rebuild_needs_write_lock, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_check__unindexed_pack_is_not_a_problem, setup,
			teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
