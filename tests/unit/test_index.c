/* Unit tests of store/index.c: the LMDB blob index. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_i.h"

struct fixture {
	char dir[64];
	struct store_index *ix;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	strcpy(f->dir, "/tmp/test_index.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(store_index_open(f->dir, true, &f->ix), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	store_index_close(f->ix);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static void make_entries(struct store_pack_entry *e, size_t n, uint8_t salt)
{
	for (size_t i = 0; i < n; i++) {
		memset(&e[i], 0, sizeof(e[i]));
		sd_hash(&(uint32_t){ (uint32_t)i * 256u + salt }, 4, &e[i].id);
		e[i].type = i % 2 ? STORE_BLOB_TREE : STORE_BLOB_DATA;
		e[i].flags = i % 3 ? STORE_BLOB_COMPRESSED : 0;
		e[i].offset = 8 + i * 1000;
		e[i].stored_len = 900 + (uint32_t)i;
		e[i].plain_len = 5000 + (uint32_t)i;
	}
}

static void test_index__add_and_get(void **state)
{
	struct fixture *f = *state;
	struct store_pack_entry e[100];
	make_entries(e, 100, 1);
	sd_id pack;
	sd_hash("pack", 4, &pack);
	assert_int_equal(store_index_add_pack(f->ix, &pack, e, 100), 0);
	for (size_t i = 0; i < 100; i++) {
		struct store_pack_entry got;
		sd_id gp;
		assert_int_equal(store_index_get(f->ix, &e[i].id, &got, &gp), 0);
		assert_memory_equal(gp.b, pack.b, SD_ID_LEN);
		assert_memory_equal(got.id.b, e[i].id.b, SD_ID_LEN);
		assert_int_equal(got.type, e[i].type);
		assert_int_equal(got.flags, e[i].flags);
		assert_int_equal(got.offset, e[i].offset);
		assert_int_equal(got.stored_len, e[i].stored_len);
		assert_int_equal(got.plain_len, e[i].plain_len);
	}
	uint64_t n;
	assert_int_equal(store_index_count(f->ix, &n), 0);
	assert_int_equal(n, 100);
}

static void test_index__missing_is_notfound(void **state)
{
	struct fixture *f = *state;
	sd_id id, pack;
	struct store_pack_entry got;
	sd_hash("nothing", 7, &id);
	assert_int_equal(store_index_get(f->ix, &id, &got, &pack), SD_ENOTFOUND);
}

static void test_index__first_home_kept(void **state)
{
	struct fixture *f = *state;
	struct store_pack_entry e[3];
	make_entries(e, 3, 2);
	sd_id p1, p2, got_pack;
	sd_hash("p1", 2, &p1);
	sd_hash("p2", 2, &p2);
	assert_int_equal(store_index_add_pack(f->ix, &p1, e, 3), 0);
	e[0].offset = 777;
	assert_int_equal(store_index_add_pack(f->ix, &p2, e, 1), 0);
	struct store_pack_entry got;
	assert_int_equal(store_index_get(f->ix, &e[0].id, &got, &got_pack), 0);
	assert_memory_equal(got_pack.b, p1.b, SD_ID_LEN);
	assert_int_equal(got.offset, 8);
}

static int count_cb(const struct store_pack_entry *e, const sd_id *pack,
		    void *ctx)
{
	(void)e;
	(void)pack;
	(*(int *)ctx)++;
	return 0;
}

static int stop_cb(const struct store_pack_entry *e, const sd_id *pack,
		   void *ctx)
{
	(void)e;
	(void)pack;
	return ++(*(int *)ctx) == 5 ? 42 : 0;
}

static void test_index__foreach_and_clear(void **state)
{
	struct fixture *f = *state;
	struct store_pack_entry e[20];
	make_entries(e, 20, 3);
	sd_id pack;
	sd_hash("pack", 4, &pack);
	assert_int_equal(store_index_add_pack(f->ix, &pack, e, 20), 0);
	int seen = 0;
	assert_int_equal(store_index_foreach(f->ix, count_cb, &seen), 0);
	assert_int_equal(seen, 20);
	seen = 0;
	assert_int_equal(store_index_foreach(f->ix, stop_cb, &seen), 42);
	assert_int_equal(seen, 5);
	assert_int_equal(store_index_clear(f->ix), 0);
	uint64_t n = 1;
	assert_int_equal(store_index_count(f->ix, &n), 0);
	assert_int_equal(n, 0);
}

static void test_index__reopen_read_only(void **state)
{
	struct fixture *f = *state;
	struct store_pack_entry e[4];
	make_entries(e, 4, 4);
	sd_id pack, gp;
	sd_hash("pack", 4, &pack);
	assert_int_equal(store_index_add_pack(f->ix, &pack, e, 4), 0);
	store_index_close(f->ix);
	assert_int_equal(store_index_open(f->dir, false, &f->ix), 0);
	struct store_pack_entry got;
	assert_int_equal(store_index_get(f->ix, &e[3].id, &got, &gp), 0);
	assert_int_equal(got.plain_len, e[3].plain_len);

	struct store_index *missing;
	char path[128];
	snprintf(path, sizeof(path), "%s/none", f->dir);
	assert_int_equal(store_index_open(path, false, &missing), SD_ENOTFOUND);
}

struct reader_arg {
	struct store_index *ix;
	struct store_pack_entry *e;
	int failures;
};

static void *reader(void *p)
{
	struct reader_arg *a = p;
	for (int round = 0; round < 200; round++)
		for (size_t i = 0; i < 50; i++) {
			struct store_pack_entry got;
			sd_id gp;
			if (store_index_get(a->ix, &a->e[i].id, &got, &gp) ||
			    got.offset != a->e[i].offset)
				a->failures++;
		}
	return NULL;
}

static void test_index__parallel_readers(void **state)
{
	struct fixture *f = *state;
	struct store_pack_entry e[50];
	make_entries(e, 50, 5);
	sd_id pack;
	sd_hash("pack", 4, &pack);
	assert_int_equal(store_index_add_pack(f->ix, &pack, e, 50), 0);
	pthread_t t[4];
	struct reader_arg a[4];
	for (int i = 0; i < 4; i++) {
		a[i] = (struct reader_arg){ f->ix, e, 0 };
		assert_int_equal(pthread_create(&t[i], NULL, reader, &a[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(a[i].failures, 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_index__add_and_get, setup, teardown),
		cmocka_unit_test_setup_teardown(test_index__missing_is_notfound, setup, teardown),
		cmocka_unit_test_setup_teardown(test_index__first_home_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_index__foreach_and_clear, setup, teardown),
		cmocka_unit_test_setup_teardown(test_index__reopen_read_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_index__parallel_readers, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
