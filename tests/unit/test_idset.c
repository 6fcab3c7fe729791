/* Unit tests of store/idset.c. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "store_i.h"

static void test_idset__add_has_grow(void **state)
{
	(void)state;
	struct store_idset *s;
	assert_int_equal(store_idset_new(&s), 0);
	enum { N = 50000 };
	for (uint32_t i = 0; i < N; i++) {
		sd_id id;
		sd_hash(&i, sizeof(i), &id);
		assert_int_equal(store_idset_add(s, &id), 1);
	}
	assert_int_equal(store_idset_count(s), N);
	for (uint32_t i = 0; i < N; i++) {
		sd_id id;
		sd_hash(&i, sizeof(i), &id);
		assert_true(store_idset_has(s, &id));
		assert_int_equal(store_idset_add(s, &id), 0);
	}
	for (uint32_t i = N; i < N + 1000; i++) {
		sd_id id;
		sd_hash(&i, sizeof(i), &id);
		assert_false(store_idset_has(s, &id));
	}
	assert_int_equal(store_idset_count(s), N);
	store_idset_free(s);
}

static void test_idset__zero_and_colliding_prefixes(void **state)
{
	(void)state;
	struct store_idset *s;
	assert_int_equal(store_idset_new(&s), 0);
	sd_id zero, a, b;
	memset(&zero, 0, sizeof(zero));
	/* Same first 8 bytes: same probe start, told apart by the rest. */
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	a.b[31] = 1;
	b.b[31] = 2;
	assert_false(store_idset_has(s, &zero));
	assert_int_equal(store_idset_add(s, &zero), 1);
	assert_int_equal(store_idset_add(s, &a), 1);
	assert_true(store_idset_has(s, &zero));
	assert_true(store_idset_has(s, &a));
	assert_false(store_idset_has(s, &b));
	assert_int_equal(store_idset_add(s, &b), 1);
	assert_int_equal(store_idset_count(s), 3);
	store_idset_free(s);
	store_idset_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_idset__add_has_grow),
		cmocka_unit_test(test_idset__zero_and_colliding_prefixes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
