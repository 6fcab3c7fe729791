/*
 * test_snapshot.c — snapshot records: save/list round trips, ordering,
 * resolving specs, removal, tamper detection and the time helpers.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
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

#define NS 1000000000LL

struct fixture {
	char dir[64];
	struct store_repo repo;
	char logged[4096];
	int warnings;
};

static int rm_entry(const char *p, const struct stat *st, int flag,
		    struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(p);
}

static void log_sink(enum sd_log_level level, const char *msg, void *ctx)
{
	struct fixture *fx = ctx;
	if (level == SD_LOG_WARN)
		fx->warnings++;
	strncat(fx->logged, msg, sizeof(fx->logged) - strlen(fx->logged) - 2);
	strcat(fx->logged, "\n");
}

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	if (!fx)
		return -1;
	strcpy(fx->dir, "/tmp/sd-test-snapshot-XXXXXX");
	if (!mkdtemp(fx->dir))
		return -1;
	/* only these two fields: snapshot.c must need nothing else */
	fx->repo.path = fx->dir;
	fx->repo.snapshots_dir = store_path_join(fx->dir, "snapshots");
	if (!fx->repo.snapshots_dir || mkdir(fx->repo.snapshots_dir, 0755) < 0)
		return -1;
	sd_log_set_sink(log_sink, fx);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	sd_log_set_sink(NULL, NULL);
	nftw(fx->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(fx->repo.snapshots_dir);
	free(fx);
	return 0;
}

static char *xs(const char *s)
{
	char *p = strdup(s);
	assert_non_null(p);
	return p;
}

static void fill_id(sd_id *id, uint8_t seed)
{
	for (int i = 0; i < SD_ID_LEN; i++)
		id->b[i] = (uint8_t)(seed + i * 7);
}

/* A snapshot with every field set to something awkward. */
static void make_full(struct store_snapshot *s, int64_t time_ns)
{
	memset(s, 0, sizeof(*s));
	s->time_ns = time_ns;
	fill_id(&s->tree, 1);
	fill_id(&s->parent, 2);
	s->hostname = xs("writer-laptop");
	s->username = xs("작가 \"quoted\" \\ back");
	s->ntags = 3;
	s->tags = calloc(3, sizeof(char *));
	assert_non_null(s->tags);
	s->tags[0] = xs("daily");
	s->tags[1] = xs("한글 태그");
	s->tags[2] = xs("");
	s->nsources = 2;
	s->sources = calloc(2, sizeof(*s->sources));
	assert_non_null(s->sources);
	s->sources[0] = (struct store_snapshot_source){
		xs("content"), xs("/home/u/blog/content"), 1234, UINT64_MAX
	};
	s->sources[1] = (struct store_snapshot_source){
		xs("notion"), xs("notion:\tworkspace\n"), 0, 1ull << 53
	};
	s->partial = true;
	s->summary = (struct store_snapshot_summary){
		.files = 1,
		.dirs = 2,
		.others = 3,
		.bytes = UINT64_MAX,
		.files_new = 999999999999999ull,
		.files_changed = 1000000000000000ull,
		.files_unchanged = (1ull << 53) + 1,
		.bytes_read = 123456789012345ull,
		.blobs_added = 9,
		.bytes_added = 10,
		.stored_added = 11,
		.warnings = 12,
		.duration = 12.345678,
	};
}

/* A minimal snapshot at a time. */
static void make_at(struct store_snapshot *s, int64_t time_ns)
{
	memset(s, 0, sizeof(*s));
	s->time_ns = time_ns;
	fill_id(&s->tree, 3);
}

static void save(struct fixture *fx, struct store_snapshot *s)
{
	assert_int_equal(store_snapshot_save(&fx->repo, s), 0);
	assert_false(sd_id_is_zero(&s->id));
}

static char *snap_path(struct fixture *fx, const sd_id *id)
{
	char hex[SD_ID_HEX_LEN + 1];
	sd_id_hex(id, hex);
	char *p = store_path_join(fx->repo.snapshots_dir, hex);
	assert_non_null(p);
	return p;
}

static void assert_snap_eq(const struct store_snapshot *a,
			   const struct store_snapshot *b)
{
	assert_memory_equal(&a->id, &b->id, sizeof(sd_id));
	assert_true(a->time_ns == b->time_ns);
	assert_memory_equal(&a->tree, &b->tree, sizeof(sd_id));
	assert_memory_equal(&a->parent, &b->parent, sizeof(sd_id));
	if (a->hostname || b->hostname)
		assert_string_equal(a->hostname, b->hostname);
	if (a->username || b->username)
		assert_string_equal(a->username, b->username);
	assert_int_equal(a->ntags, b->ntags);
	for (size_t i = 0; i < a->ntags; i++)
		assert_string_equal(a->tags[i], b->tags[i]);
	assert_int_equal(a->nsources, b->nsources);
	for (size_t i = 0; i < a->nsources; i++) {
		assert_string_equal(a->sources[i].name, b->sources[i].name);
		assert_string_equal(a->sources[i].path, b->sources[i].path);
		assert_true(a->sources[i].files == b->sources[i].files);
		assert_true(a->sources[i].bytes == b->sources[i].bytes);
	}
	assert_int_equal(a->partial, b->partial);
	assert_memory_equal(&a->summary, &b->summary, sizeof(a->summary));
}

static void test_snapshot__round_trip(void **state)
{
	struct fixture *fx = *state;
	struct store_snapshot s, t;
	/* 2026-11-22T10:30:00.123456789Z */
	make_full(&s, 1795343400123456789LL);
	save(fx, &s);
	make_at(&t, -1); /* just before 1970, no parent, no names */
	save(fx, &t);

	/* the name is the SHA-256 of the bytes; time_ns is exact text */
	char *path = snap_path(fx, &s.id), *text;
	size_t len;
	assert_int_equal(store_file_read_all(path, &text, &len), 0);
	sd_id h;
	sd_hash(text, len, &h);
	assert_memory_equal(&h, &s.id, sizeof(h));
	assert_non_null(strstr(text, "\"time_ns\":\t\"1795343400123456789\""));
	assert_non_null(strstr(text, "\"2026-11-22T10:30:00.123456789Z\""));
	assert_non_null(strstr(text, "\"files_changed\":\t\"1000000000000000\""));
	assert_non_null(strstr(text, "\"files_new\":\t999999999999999,"));
	assert_non_null(strstr(text, "\"bytes\":\t\"18446744073709551615\""));
	free(text);
	free(path);

	struct store_snapshot *list;
	size_t n;
	assert_int_equal(store_snapshot_list(&fx->repo, &list, &n), 0);
	assert_int_equal(n, 2);
	assert_snap_eq(&list[0], &t);
	assert_snap_eq(&list[1], &s);
	assert_null(list[0].hostname);
	assert_true(sd_id_is_zero(&list[0].parent));
	store_snapshot_list_free(list, n);

	/* saving the same record again gives the same id */
	sd_id first = s.id;
	save(fx, &s);
	assert_memory_equal(&first, &s.id, sizeof(first));
	assert_int_equal(fx->warnings, 0);
	store_snapshot_clear(&s);
	store_snapshot_clear(&t);
	store_snapshot_clear(NULL);
	store_snapshot_list_free(NULL, 0);
}

static void test_snapshot__sort_order(void **state)
{
	struct fixture *fx = *state;
	static const int64_t times[] = { 30 * NS, 10 * NS, 20 * NS, 10 * NS,
					 -5 * NS };
	struct store_snapshot s;
	for (size_t i = 0; i < 5; i++) {
		make_at(&s, times[i]);
		fill_id(&s.tree, (uint8_t)i); /* equal times, different ids */
		save(fx, &s);
		store_snapshot_clear(&s);
	}
	/* leftovers of interrupted writes and strangers are ignored */
	static const char *const others[] = {
		".tmp-123-abcdef", "README",
		"ABCDEF0000000000000000000000000000000000000000000000000000000000",
		"abc",
	};
	for (size_t i = 0; i < 4; i++) {
		char *p = store_path_join(fx->repo.snapshots_dir, others[i]);
		int fd = open(p, O_CREAT | O_WRONLY, 0644);
		assert_true(fd >= 0);
		assert_int_equal(write(fd, "{}", 2), 2);
		close(fd);
		free(p);
	}
	struct store_snapshot *list;
	size_t n;
	assert_int_equal(store_snapshot_list(&fx->repo, &list, &n), 0);
	assert_int_equal(n, 5);
	assert_true(list[0].time_ns == -5 * NS);
	assert_true(list[1].time_ns == 10 * NS);
	assert_true(list[2].time_ns == 10 * NS);
	assert_true(sd_id_cmp(&list[1].id, &list[2].id) < 0);
	assert_true(list[3].time_ns == 20 * NS);
	assert_true(list[4].time_ns == 30 * NS);
	store_snapshot_list_free(list, n);
	assert_int_equal(fx->warnings, 0);
}

static void test_snapshot__resolve(void **state)
{
	struct fixture *fx = *state;
	struct store_snapshot a, b, c, out;
	int64_t day, dummy;
	assert_int_equal(store_time_parse("2026-11-22", &day, &dummy), 0);
	make_at(&a, day + (10 * 3600 + 30 * 60 + 45) * NS + NS / 2);
	make_at(&b, day + 11 * 3600 * NS);
	make_at(&c, day + 24 * 3600 * NS);
	save(fx, &a);
	save(fx, &b);
	save(fx, &c);

	static const struct {
		const char *spec;
		int want; /* 0 a, 1 b, 2 c, -1 not found */
	} cases[] = {
		{ "latest", 2 },
		{ "2026-11-22", 1 },
		{ "2026-11-22Z", 1 },
		{ "2026-11-22T10", 0 },
		{ "2026-11-22T10:30", 0 },
		{ "2026-11-22T10:30:45Z", 0 },
		{ "2026-11-22T10:30:44", -1 },
		{ "2026-11-22T09", -1 },
		{ "2026-11-21", -1 },
		{ "2026-11-22T11", 1 },
		{ "2026-11-22T11:00:00", 1 },
		{ "2026-11-22T23:59:59Z", 1 },
		{ "2026-11-23", 2 },
		{ "2030-01-01T00:00", 2 },
	};
	struct store_snapshot *want[] = { &a, &b, &c };
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		int r = store_snapshot_resolve(&fx->repo, cases[i].spec, &out);
		if (cases[i].want < 0) {
			if (r != SD_ENOTFOUND)
				fail_msg("%s: got %d", cases[i].spec, r);
			continue;
		}
		if (r != 0)
			fail_msg("%s: got %d", cases[i].spec, r);
		assert_memory_equal(&out.id, &want[cases[i].want]->id,
				    sizeof(sd_id));
		store_snapshot_clear(&out);
	}

	/* id prefixes: 4 digits, any case, the whole id */
	char hex[SD_ID_HEX_LEN + 1], spec[SD_ID_HEX_LEN + 1];
	sd_id_hex(&b.id, hex);
	for (size_t len = 4; len <= SD_ID_HEX_LEN; len += 60) {
		memcpy(spec, hex, len);
		spec[len] = '\0';
		assert_int_equal(store_snapshot_resolve(&fx->repo, spec, &out),
				 0);
		assert_snap_eq(&out, &b);
		store_snapshot_clear(&out);
	}
	for (size_t i = 0; i < 8; i++)
		spec[i] = (char)(hex[i] >= 'a' ? hex[i] - 'a' + 'A' : hex[i]);
	spec[8] = '\0';
	assert_int_equal(store_snapshot_resolve(&fx->repo, spec, &out), 0);
	store_snapshot_clear(&out);
	memcpy(spec, hex, 3);
	spec[3] = '\0';
	assert_int_equal(store_snapshot_resolve(&fx->repo, spec, &out),
			 SD_EUSAGE);
	strcpy(spec, "0000000");
	if (strncmp(hex, spec, 7))
		assert_int_equal(store_snapshot_resolve(&fx->repo, spec, &out),
				 SD_ENOTFOUND);
	assert_int_equal(store_snapshot_resolve(&fx->repo, "yesterday", &out),
			 SD_EUSAGE);
	assert_int_equal(store_snapshot_resolve(&fx->repo, "2026-13-01", &out),
			 SD_EUSAGE);

	store_snapshot_clear(&a);
	store_snapshot_clear(&b);
	store_snapshot_clear(&c);
}

static void test_snapshot__resolve_empty(void **state)
{
	struct fixture *fx = *state;
	struct store_snapshot out;
	assert_int_equal(store_snapshot_resolve(&fx->repo, "latest", &out),
			 SD_ENOTFOUND);
	assert_int_equal(store_snapshot_resolve(&fx->repo, "2026-11-22", &out),
			 SD_ENOTFOUND);
	assert_int_equal(store_snapshot_resolve(&fx->repo, "abcd", &out),
			 SD_ENOTFOUND);
}

/* Writes text under its own hash, as save would. */
static void write_named(struct fixture *fx, const char *text, sd_id *id)
{
	char hex[SD_ID_HEX_LEN + 1];
	sd_hash(text, strlen(text), id);
	sd_id_hex(id, hex);
	assert_int_equal(store_file_write_atomic(fx->repo.snapshots_dir, hex,
						 text, strlen(text), 0644),
			 0);
}

static void test_snapshot__resolve_ambiguous(void **state)
{
	struct fixture *fx = *state;
	struct store_snapshot s;
	make_at(&s, 1);
	save(fx, &s);
	char *path = snap_path(fx, &s.id), *text;
	size_t len;
	assert_int_equal(store_file_read_all(path, &text, &len), 0);
	assert_int_equal(unlink(path), 0);
	free(path);

	/* Vary the hostname of a valid record until two ids share their
	 * first four hex digits (birthday odds: a few hundred tries). */
	char *p = strstr(text, "\"hostname\":\tnull");
	assert_non_null(p);
	static char seen[65536];
	memset(seen, 0, sizeof(seen));
	char buf[4096], first[SD_ID_HEX_LEN + 1] = "", second[SD_ID_HEX_LEN + 1];
	int prev = -1;
	for (int i = 0; i < 100000 && !first[0]; i++) {
		snprintf(buf, sizeof(buf), "%.*s\"hostname\":\t\"h%d\"%s",
			 (int)(p - text), text, i,
			 p + strlen("\"hostname\":\tnull"));
		sd_id id;
		sd_hash(buf, strlen(buf), &id);
		int key = id.b[0] << 8 | id.b[1];
		if (seen[key]) {
			prev = i;
			break;
		}
		seen[key] = 1;
	}
	assert_true(prev >= 0);
	/* write the colliding one, then find and write its partner */
	sd_id id1, id2;
	write_named(fx, buf, &id1);
	sd_id_hex(&id1, first);
	for (int i = 0; i < prev; i++) {
		snprintf(buf, sizeof(buf), "%.*s\"hostname\":\t\"h%d\"%s",
			 (int)(p - text), text, i,
			 p + strlen("\"hostname\":\tnull"));
		sd_hash(buf, strlen(buf), &id2);
		if (id2.b[0] == id1.b[0] && id2.b[1] == id1.b[1])
			break;
	}
	write_named(fx, buf, &id2);
	sd_id_hex(&id2, second);
	free(text);

	struct store_snapshot out;
	char spec[8];
	memcpy(spec, first, 4);
	spec[4] = '\0';
	assert_int_equal(store_snapshot_resolve(&fx->repo, spec, &out),
			 SD_EAMBIGUOUS);
	/* a longer prefix tells them apart */
	size_t k = 4;
	while (first[k] == second[k])
		k++;
	char longer[SD_ID_HEX_LEN + 1];
	memcpy(longer, second, k + 1);
	longer[k + 1] = '\0';
	assert_int_equal(store_snapshot_resolve(&fx->repo, longer, &out), 0);
	assert_memory_equal(&out.id, &id2, sizeof(id2));
	assert_int_equal(out.time_ns, 1);
	store_snapshot_clear(&out);
	store_snapshot_clear(&s);
}

static void test_snapshot__remove_and_stamp(void **state)
{
	struct fixture *fx = *state;
	struct store_snapshot a, b;
	make_at(&a, 1 * NS);
	make_at(&b, 2 * NS);
	save(fx, &a);
	save(fx, &b);

	/* put the directory's mtime in the past so any change shows */
	struct timespec past[2] = { { 1000, 0 }, { 1000, 0 } }, t0, t1, t2;
	assert_int_equal(utimensat(AT_FDCWD, fx->repo.snapshots_dir, past, 0), 0);
	assert_int_equal(store_snapshot_stamp(&fx->repo, &t0), 0);
	assert_true(t0.tv_sec == 1000);

	assert_int_equal(store_snapshot_remove(&fx->repo, &b.id), 0);
	assert_int_equal(store_snapshot_remove(&fx->repo, &b.id), SD_ENOTFOUND);
	assert_int_equal(store_snapshot_stamp(&fx->repo, &t1), 0);
	assert_true(t1.tv_sec != t0.tv_sec);

	struct store_snapshot *list;
	size_t n;
	assert_int_equal(store_snapshot_list(&fx->repo, &list, &n), 0);
	assert_int_equal(n, 1);
	assert_memory_equal(&list[0].id, &a.id, sizeof(sd_id));
	store_snapshot_list_free(list, n);

	assert_int_equal(utimensat(AT_FDCWD, fx->repo.snapshots_dir, past, 0), 0);
	save(fx, &b);
	assert_int_equal(store_snapshot_stamp(&fx->repo, &t2), 0);
	assert_true(t2.tv_sec != 1000);

	struct store_repo missing = { .path = fx->dir,
				      .snapshots_dir = "/nonexistent/x" };
	assert_int_equal(store_snapshot_stamp(&missing, &t2), -ENOENT);
	assert_int_equal(store_snapshot_list(&missing, &list, &n), -ENOENT);
	store_snapshot_clear(&a);
	store_snapshot_clear(&b);
}

static void test_snapshot__tampered_skipped(void **state)
{
	struct fixture *fx = *state;
	struct store_snapshot good, bad;
	make_full(&good, 5 * NS);
	make_full(&bad, 6 * NS);
	save(fx, &good);
	save(fx, &bad);

	/* one byte changed: the name no longer matches */
	char *path = snap_path(fx, &bad.id), *text;
	size_t len;
	assert_int_equal(store_file_read_all(path, &text, &len), 0);
	char *at = strstr(text, "writer-laptop");
	assert_non_null(at);
	at[0] = 'W';
	int fd = open(path, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);

	/* a record under its true hash that is not valid JSON, and one
	 * whose time fields disagree */
	sd_id id;
	write_named(fx, "{\"version\":1,", &id);
	char *t = strstr(text, "\"time_ns\":\t\"6");
	assert_non_null(t);
	t[strlen("\"time_ns\":\t\"")] = '7';
	write_named(fx, text, &id);
	free(text);

	struct store_snapshot *list;
	size_t n;
	assert_int_equal(store_snapshot_list(&fx->repo, &list, &n), 0);
	assert_int_equal(n, 1);
	assert_snap_eq(&list[0], &good);
	store_snapshot_list_free(list, n);
	assert_int_equal(fx->warnings, 3);
	assert_non_null(strstr(fx->logged, path));
	assert_non_null(strstr(fx->logged, "does not match"));
	assert_non_null(strstr(fx->logged, "disagree"));
	free(path);
	store_snapshot_clear(&good);
	store_snapshot_clear(&bad);
}

static void expect_format(int64_t ns, const char *want)
{
	char out[32];
	store_time_format(ns, out);
	assert_string_equal(out, want);
}

static void expect_parse(const char *s, int64_t start_s, int64_t end_s)
{
	int64_t a, b;
	if (store_time_parse(s, &a, &b) != 0)
		fail_msg("%s did not parse", s);
	assert_true(a == start_s * NS);
	assert_true(b == end_s * NS);
}

static void expect_bad(const char *s)
{
	int64_t a, b;
	if (store_time_parse(s, &a, &b) != SD_EUSAGE)
		fail_msg("%s parsed", s);
}

static void test_snapshot__time(void **state)
{
	(void)state;
	expect_format(0, "1970-01-01T00:00:00Z");
	expect_format(NS - 1, "1970-01-01T00:00:00Z");
	expect_format(-1, "1969-12-31T23:59:59Z");
	expect_format(-NS, "1969-12-31T23:59:59Z");
	expect_format(-NS - 1, "1969-12-31T23:59:58Z");
	expect_format(1795343400123456789LL, "2026-11-22T10:30:00Z");
	expect_format(INT64_MAX, "2262-04-11T23:47:16Z");
	expect_format(INT64_MIN, "1677-09-21T00:12:43Z");

	expect_parse("1970-01-01", 0, 86400);
	expect_parse("1969-12-31T23:59:59", -1, 0);
	expect_parse("2026-11-22", 1795305600, 1795392000);
	expect_parse("2026-11-22Z", 1795305600, 1795392000);
	expect_parse("2026-11-22T10", 1795341600, 1795345200);
	expect_parse("2026-11-22T10:30", 1795343400, 1795343460);
	expect_parse("2026-11-22T10:30:00Z", 1795343400, 1795343401);
	expect_parse("2026-12-31T23:59:59", 1798761599, 1798761600);
	expect_parse("2024-02-29", 1709164800, 1709251200);
	expect_parse("2000-02-29", 951782400, 951868800);
	expect_parse("2262-04-11T23:47:15", 9223372035, 9223372036);

	static const char *const bad[] = {
		"", "2026", "2026-11", "2026-11-", "2026-11-2", "2026-1-22",
		"2026-11-22T", "2026-11-22T1", "2026-11-22T10:", "2026-11-22T10:3",
		"2026-11-22 10:30", "2026-11-22t10", "2026-11-22T10:30:00z",
		"2026-11-22T10:30:00.5Z", "2026-11-22ZZ", "2026-11-22T10Z:30",
		"+026-11-22", " 2026-11-22", "2026-11-22 ", "2026/11/22",
		"2026-13-01", "2026-00-10", "2026-11-00", "2026-11-31",
		"2026-02-29", "1900-02-29", "2026-11-22T24", "2026-11-22T10:60",
		"2026-11-22T10:30:60", "0000-01-01", "1677-01-01", "2262-04-12",
		"2262-04-11T23:47:16", "yesterday", "latest",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		expect_bad(bad[i]);

	/* parse(format(t)) is t rounded down to the second */
	static const int64_t samples[] = { 0, 1, -1, 1795343400123456789LL,
					   -123456789012345678LL };
	for (size_t i = 0; i < sizeof(samples) / sizeof(*samples); i++) {
		char out[32];
		int64_t a, b;
		store_time_format(samples[i], out);
		assert_int_equal(store_time_parse(out, &a, &b), 0);
		assert_true(a <= samples[i] && samples[i] < b);
		assert_true(b - a == NS);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_snapshot__round_trip, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_snapshot__sort_order, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_snapshot__resolve, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_snapshot__resolve_empty,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_snapshot__resolve_ambiguous,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_snapshot__remove_and_stamp,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_snapshot__tampered_skipped,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_snapshot__time, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
