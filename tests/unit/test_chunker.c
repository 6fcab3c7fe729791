/*
 * test_chunker.c — FastCDC boundaries: size limits, distribution,
 * determinism, resynchronisation after an edit, and a golden list of cut
 * points that pins the gear table (changing it would silently break dedup
 * against every existing repository).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "store.h"

/* Small parameters give many chunks from little data: good statistics
 * quickly, also under valgrind. */
static const struct store_chunker_params small_params = { 2048, 8192, 32768 };

/* xorshift64*: the test data must be the same on every machine. */
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

struct chunk_list {
	size_t *len;
	sd_id *id;
	size_t n;
};

/* Cuts the whole buffer the way a backup does. */
static void chunk_all(const struct store_chunker_params *p, const uint8_t *buf,
		      size_t len, bool with_ids, struct chunk_list *out)
{
	size_t cap = len / p->min_size + 2;
	out->len = calloc(cap, sizeof(*out->len));
	out->id = with_ids ? calloc(cap, sizeof(*out->id)) : NULL;
	assert_non_null(out->len);
	out->n = 0;
	size_t off = 0;
	while (off < len) {
		size_t left = len - off;
		size_t want = left < p->max_size ? left : p->max_size;
		size_t c = store_chunk_cut(p, buf + off, want);
		assert_true(c > 0 && c <= want);
		assert_true(out->n < cap);
		out->len[out->n] = c;
		if (with_ids)
			sd_hash(buf + off, c, &out->id[out->n]);
		out->n++;
		off += c;
	}
}

static void chunk_list_free(struct chunk_list *l)
{
	free(l->len);
	free(l->id);
}

static void check_limits(const struct store_chunker_params *p,
			 const struct chunk_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		assert_true(l->len[i] <= p->max_size);
		if (i + 1 < l->n)
			assert_true(l->len[i] >= p->min_size);
	}
}

static void test_chunker__params_check(void **state)
{
	(void)state;
	const struct store_chunker_params def = STORE_CHUNKER_PARAMS_DEFAULT;
	assert_int_equal(store_chunker_params_check(&def), 0);
	assert_int_equal(store_chunker_params_check(&small_params), 0);
	const struct store_chunker_params ok[] = {
		{ 64, 64, 64 },
		{ 64, 128, 1u << 30 },
		{ 4096, 4096, 4096 },
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		assert_int_equal(store_chunker_params_check(&ok[i]), 0);
	const struct store_chunker_params bad[] = {
		{ 63, 1024, 4096 },	/* min below 64 */
		{ 0, 1024, 4096 },
		{ 256, 1000, 4096 },	/* avg not a power of two */
		{ 256, 0, 4096 },
		{ 256, 3u << 10, 8192 },
		{ 2048, 1024, 4096 },	/* min > avg */
		{ 256, 8192, 4096 },	/* avg > max */
		{ 256, 1024, 0 },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(store_chunker_params_check(&bad[i]),
				 SD_EUSAGE);
	assert_int_equal(store_chunker_params_check(NULL), SD_EUSAGE);
}

static void test_chunker__below_min_is_one_chunk(void **state)
{
	(void)state;
	const struct store_chunker_params def = STORE_CHUNKER_PARAMS_DEFAULT;
	size_t n = def.min_size;
	uint8_t *buf = malloc(n);
	assert_non_null(buf);
	fill_random(buf, n, 7);
	assert_int_equal(store_chunk_cut(&def, buf, 0), 0);
	assert_int_equal(store_chunk_cut(&def, buf, 1), 1);
	assert_int_equal(store_chunk_cut(&def, buf, 12345), 12345);
	assert_int_equal(store_chunk_cut(&def, buf, n - 1), n - 1);
	assert_int_equal(store_chunk_cut(&def, buf, n), n);
	free(buf);
}

static void test_chunker__limits_and_mean_small(void **state)
{
	(void)state;
	const struct store_chunker_params *p = &small_params;
	size_t len = 8u << 20;
	uint8_t *buf = malloc(len);
	assert_non_null(buf);
	fill_random(buf, len, 42);
	struct chunk_list l;
	chunk_all(p, buf, len, false, &l);
	check_limits(p, &l);
	size_t total = 0, at_max = 0;
	for (size_t i = 0; i < l.n; i++) {
		total += l.len[i];
		at_max += l.len[i] == p->max_size;
	}
	assert_int_equal(total, len);
	double mean = (double)len / (double)l.n;
	/* Cut-point skipping adds about min/2 on top of avg; normalisation
	 * keeps it near avg. Far outside this band the masks are wrong. */
	assert_true(mean > 0.8 * p->avg_size);
	assert_true(mean < 1.5 * p->avg_size);
	/* Normalised chunking makes max-size chunks rare. */
	assert_true(at_max * 100 < l.n);
	chunk_list_free(&l);
	free(buf);
}

static void test_chunker__limits_and_mean_default(void **state)
{
	(void)state;
	const struct store_chunker_params p = STORE_CHUNKER_PARAMS_DEFAULT;
	size_t len = 40u << 20;
	uint8_t *buf = malloc(len);
	assert_non_null(buf);
	fill_random(buf, len, 4242);
	struct chunk_list l;
	chunk_all(&p, buf, len, false, &l);
	check_limits(&p, &l);
	double mean = (double)len / (double)l.n;
	assert_true(mean > 0.7 * p.avg_size);
	assert_true(mean < 1.6 * p.avg_size);
	chunk_list_free(&l);
	free(buf);
}

static void test_chunker__max_on_uniform_data(void **state)
{
	(void)state;
	/* Constant bytes drive the gear hash to a fixed value that does not
	 * match the mask, so only max_size ends chunks. */
	const struct store_chunker_params *p = &small_params;
	size_t len = 3 * p->max_size + 100;
	uint8_t *buf = calloc(1, len);
	assert_non_null(buf);
	struct chunk_list l;
	chunk_all(p, buf, len, false, &l);
	assert_int_equal(l.n, 4);
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(l.len[i], p->max_size);
	assert_int_equal(l.len[3], 100);
	/* A caller passing more than max still gets at most max. */
	assert_int_equal(store_chunk_cut(p, buf, len), p->max_size);
	chunk_list_free(&l);
	free(buf);
}

static void test_chunker__deterministic(void **state)
{
	(void)state;
	const struct store_chunker_params *p = &small_params;
	size_t len = 1u << 20;
	uint8_t *a = malloc(len);
	uint8_t *b = malloc(len + 3);
	assert_non_null(a);
	assert_non_null(b);
	fill_random(a, len, 99);
	/* Same bytes at another alignment: boundaries depend on content only. */
	memcpy(b + 3, a, len);
	struct chunk_list la, la2, lb;
	chunk_all(p, a, len, false, &la);
	chunk_all(p, a, len, false, &la2);
	chunk_all(p, b + 3, len, false, &lb);
	assert_int_equal(la.n, la2.n);
	assert_int_equal(la.n, lb.n);
	assert_memory_equal(la.len, la2.len, la.n * sizeof(*la.len));
	assert_memory_equal(la.len, lb.len, la.n * sizeof(*la.len));
	chunk_list_free(&la);
	chunk_list_free(&la2);
	chunk_list_free(&lb);
	free(a);
	free(b);
}

/* Ids of old and new agree from the end, except for the first `skip`. */
static void check_resync(const struct chunk_list *old,
			 const struct chunk_list *new, size_t skip)
{
	assert_true(old->n > 20);
	assert_true(new->n + skip >= old->n && old->n + skip >= new->n);
	size_t common = (old->n < new->n ? old->n : new->n) - skip;
	for (size_t j = 1; j <= common; j++)
		assert_memory_equal(old->id[old->n - j].b,
				    new->id[new->n - j].b, SD_ID_LEN);
}

static void test_chunker__insert_near_start_resyncs(void **state)
{
	(void)state;
	const struct store_chunker_params *p = &small_params;
	size_t len = 2u << 20;
	static const uint8_t ins[] = "hello, 7";
	uint8_t *a = malloc(len);
	uint8_t *b = malloc(len + sizeof(ins));
	assert_non_null(a);
	assert_non_null(b);
	fill_random(a, len, 2024);
	const size_t at[] = { 0, 100, 3000, 9000 };
	struct chunk_list la;
	chunk_all(p, a, len, true, &la);
	for (size_t k = 0; k < sizeof(at) / sizeof(at[0]); k++) {
		memcpy(b, a, at[k]);
		memcpy(b + at[k], ins, sizeof(ins));
		memcpy(b + at[k] + sizeof(ins), a + at[k], len - at[k]);
		struct chunk_list lb;
		chunk_all(p, b, len + sizeof(ins), true, &lb);
		check_resync(&la, &lb, 2);
		chunk_list_free(&lb);
	}
	/* Deleting a few bytes near the start resyncs just the same. */
	struct chunk_list lc;
	memcpy(b, a, 500);
	memcpy(b + 500, a + 505, len - 505);
	chunk_all(p, b, len - 5, true, &lc);
	check_resync(&la, &lc, 2);
	chunk_list_free(&lc);
	chunk_list_free(&la);
	free(a);
	free(b);
}

static void test_chunker__golden_boundaries(void **state)
{
	(void)state;
	/* Recorded once from this implementation. If this fails, the gear
	 * table, the masks or the cut rule changed: every existing repository
	 * would stop deduplicating. Do not update these numbers casually. */
	static const size_t want_small[] = {
		10488, 8394, 9566, 9200, 8837, 2815, 13854, 2382,
	};
	static const size_t want_default[] = {
		2168480, 585980, 1060068, 1460198,
		322284, 1209262, 1188722, 393614,
	};
	const struct store_chunker_params def = STORE_CHUNKER_PARAMS_DEFAULT;
	size_t len = 8u << 20;
	uint8_t *buf = malloc(len);
	assert_non_null(buf);
	fill_random(buf, len, 0x736e6170);
	struct chunk_list l;
	size_t ns = sizeof(want_small) / sizeof(want_small[0]);
	chunk_all(&small_params, buf, 64u * 1024, false, &l);
	assert_int_equal(l.n, ns);
	for (size_t i = 0; i < ns; i++)
		assert_int_equal(l.len[i], want_small[i]);
	chunk_list_free(&l);
	size_t nd = sizeof(want_default) / sizeof(want_default[0]);
	chunk_all(&def, buf, len, false, &l);
	assert_int_equal(l.n, nd);
	for (size_t i = 0; i < nd; i++)
		assert_int_equal(l.len[i], want_default[i]);
	chunk_list_free(&l);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chunker__params_check),
		cmocka_unit_test(test_chunker__below_min_is_one_chunk),
		cmocka_unit_test(test_chunker__limits_and_mean_small),
		cmocka_unit_test(test_chunker__limits_and_mean_default),
		cmocka_unit_test(test_chunker__max_on_uniform_data),
		cmocka_unit_test(test_chunker__deterministic),
		cmocka_unit_test(test_chunker__insert_near_start_resyncs),
		cmocka_unit_test(test_chunker__golden_boundaries),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
