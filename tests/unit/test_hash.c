/*
 * test_hash.c — SHA-256 ids (known vectors, incremental API), hex
 * conversion, and the error/log basics of error.c that everything else
 * relies on.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "store.h"

static void expect_hex(const sd_id *id, const char *hex)
{
	char got[SD_ID_HEX_LEN + 1];
	sd_id_hex(id, got);
	assert_string_equal(got, hex);
}

static void test_hash__known_vectors(void **state)
{
	(void)state;
	static const struct {
		const char *msg, *hex;
	} v[] = {
		{ "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
		{ "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
		{ "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
		  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" },
		{ "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmn"
		  "hijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
		  "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1" },
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		sd_id id;
		sd_hash(v[i].msg, strlen(v[i].msg), &id);
		expect_hex(&id, v[i].hex);
	}
	sd_id id;
	sd_hash(NULL, 0, &id);
	expect_hex(&id, v[0].hex);
}

static void test_hash__million_a_incremental(void **state)
{
	(void)state;
	struct sd_hasher *h = NULL;
	assert_int_equal(sd_hasher_new(&h), 0);
	char buf[997];
	memset(buf, 'a', sizeof(buf));
	/* Uneven pieces so updates straddle SHA-256's 64-byte blocks. */
	size_t left = 1000000;
	while (left > 0) {
		size_t n = left < sizeof(buf) ? left : sizeof(buf);
		sd_hasher_update(h, buf, n);
		left -= n;
	}
	sd_id id;
	sd_hasher_final(h, &id);
	expect_hex(&id,
		   "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");

	/* final resets: the same hasher computes the next digest afresh. */
	sd_hasher_update(h, "ab", 2);
	sd_hasher_update(h, "c", 1);
	sd_hasher_final(h, &id);
	expect_hex(&id,
		   "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	sd_hasher_final(h, &id);
	expect_hex(&id,
		   "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	sd_hasher_free(h);
	sd_hasher_free(NULL);
}

static void test_hash__incremental_matches_oneshot(void **state)
{
	(void)state;
	uint8_t data[5000];
	uint32_t x = 12345;
	for (size_t i = 0; i < sizeof(data); i++) {
		x = x * 1103515245u + 12345u;
		data[i] = (uint8_t)(x >> 16);
	}
	sd_id want;
	sd_hash(data, sizeof(data), &want);
	struct sd_hasher *h = NULL;
	assert_int_equal(sd_hasher_new(&h), 0);
	for (size_t split = 0; split <= sizeof(data); split += 613) {
		sd_id got;
		sd_hasher_update(h, data, split);
		sd_hasher_update(h, data + split, sizeof(data) - split);
		sd_hasher_final(h, &got);
		assert_memory_equal(got.b, want.b, SD_ID_LEN);
	}
	sd_hasher_free(h);
}

static void test_hash__hex_round_trip(void **state)
{
	(void)state;
	sd_id id, back;
	for (int i = 0; i < SD_ID_LEN; i++)
		id.b[i] = (uint8_t)(i * 37 + 5);
	char hex[SD_ID_HEX_LEN + 1];
	sd_id_hex(&id, hex);
	assert_int_equal(strlen(hex), SD_ID_HEX_LEN);
	for (int i = 0; i < SD_ID_HEX_LEN; i++)
		assert_true((hex[i] >= '0' && hex[i] <= '9') ||
			    (hex[i] >= 'a' && hex[i] <= 'f'));
	assert_int_equal(sd_id_parse(hex, &back), 0);
	assert_int_equal(sd_id_cmp(&id, &back), 0);
	assert_memory_equal(id.b, back.b, SD_ID_LEN);

	sd_id abc;
	assert_int_equal(sd_id_parse("BA7816BF8F01CFEA414140DE5DAE2223"
				     "B00361A396177A9CB410FF61F20015AD",
				     &abc), 0);
	sd_hash("abc", 3, &back);
	assert_memory_equal(abc.b, back.b, SD_ID_LEN);
	assert_int_equal(abc.b[0], 0xba);
	assert_int_equal(abc.b[31], 0xad);
}

static void test_hash__parse_errors(void **state)
{
	(void)state;
	static const char good[] =
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
	sd_id id, sentinel;
	memset(&sentinel, 0x5a, sizeof(sentinel));
	id = sentinel;
	assert_int_equal(sd_id_parse(NULL, &id), SD_EUSAGE);
	assert_int_equal(sd_id_parse("", &id), SD_EUSAGE);
	assert_int_equal(sd_id_parse("abc", &id), SD_EUSAGE);

	char buf[80];
	memcpy(buf, good, 63);
	buf[63] = '\0';
	assert_int_equal(sd_id_parse(buf, &id), SD_EUSAGE); /* 63 digits */
	memcpy(buf, good, 64);
	buf[64] = '0';
	buf[65] = '\0';
	assert_int_equal(sd_id_parse(buf, &id), SD_EUSAGE); /* 65 digits */
	buf[64] = '\n';
	assert_int_equal(sd_id_parse(buf, &id), SD_EUSAGE);
	static const char bad[] = "gG -x:/@`";
	for (size_t pos = 0; pos < 64; pos += 7) {
		for (size_t k = 0; k < sizeof(bad) - 1; k++) {
			memcpy(buf, good, 65);
			buf[pos] = bad[k];
			assert_int_equal(sd_id_parse(buf, &id), SD_EUSAGE);
		}
	}
	/* Failed parses leave *out alone. */
	assert_memory_equal(id.b, sentinel.b, SD_ID_LEN);
	assert_int_equal(sd_id_parse(good, &id), 0);
}

static void test_hash__cmp_and_zero(void **state)
{
	(void)state;
	sd_id a, b;
	memset(&a, 0, sizeof(a));
	assert_true(sd_id_is_zero(&a));
	b = a;
	b.b[31] = 1;
	assert_false(sd_id_is_zero(&b));
	assert_true(sd_id_cmp(&a, &b) < 0);
	assert_true(sd_id_cmp(&b, &a) > 0);
	a.b[0] = 1;
	assert_false(sd_id_is_zero(&a));
	assert_true(sd_id_cmp(&a, &b) > 0); /* first byte decides */
	assert_int_equal(sd_id_cmp(&a, &a), 0);
}

static void test_hash__strerror(void **state)
{
	(void)state;
	assert_string_equal(sd_strerror(-ENOENT), "No such file or directory");
	assert_string_equal(sd_strerror(ENOENT), "No such file or directory");
	assert_non_null(strstr(sd_strerror(SD_ECORRUPT), "corrupt"));
	assert_string_equal(sd_strerror(SD_ENOTFOUND), "not found");
	const int codes[] = { SD_ECORRUPT, SD_ENOTFOUND, SD_ENOREPO,
			      SD_EFORMAT, SD_ELOCKED, SD_EAMBIGUOUS,
			      SD_ECONFIG, SD_EPARTIAL, SD_EEXIST, SD_EUSAGE };
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		const char *s = sd_strerror(codes[i]);
		assert_non_null(s);
		assert_string_not_equal(s, "unknown error");
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(s, sd_strerror(codes[j]));
	}
	assert_string_equal(sd_strerror(-99999), "unknown error");
	assert_string_equal(sd_strerror(-2147483647 - 1), "unknown error");
	assert_string_equal(sd_strerror(0), "success");
}

struct log_capture {
	int calls;
	enum sd_log_level level;
	char msg[2048];
};

static void log_sink(enum sd_log_level level, const char *msg, void *ctx)
{
	struct log_capture *c = ctx;
	c->calls++;
	c->level = level;
	snprintf(c->msg, sizeof(c->msg), "%s", msg);
}

static void test_hash__log_sink(void **state)
{
	(void)state;
	struct log_capture c = { 0 };
	sd_log(SD_LOG_ERR, "dropped %d", 1); /* default sink discards */
	sd_log_set_sink(log_sink, &c);
	errno = EDEADLK;
	sd_log(SD_LOG_WARN, "pack %s: %d", "ab12", 42);
	assert_int_equal(errno, EDEADLK);
	assert_int_equal(c.calls, 1);
	assert_int_equal(c.level, SD_LOG_WARN);
	assert_string_equal(c.msg, "pack ab12: 42");

	char big[3000];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	sd_log(SD_LOG_DEBUG, "%s", big);
	assert_int_equal(c.calls, 2);
	assert_true(strlen(c.msg) > 100 && strlen(c.msg) < sizeof(big) - 1);

	sd_log_set_sink(NULL, NULL);
	sd_log(SD_LOG_ERR, "after reset");
	assert_int_equal(c.calls, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hash__known_vectors),
		cmocka_unit_test(test_hash__million_a_incremental),
		cmocka_unit_test(test_hash__incremental_matches_oneshot),
		cmocka_unit_test(test_hash__hex_round_trip),
		cmocka_unit_test(test_hash__parse_errors),
		cmocka_unit_test(test_hash__cmp_and_zero),
		cmocka_unit_test(test_hash__strerror),
		cmocka_unit_test(test_hash__log_sink),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
