/*
 * test_config.c — config.yaml: defaults, the schema's errors, rendering and
 * in-place edits that keep comments.
 */
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "store.h"

struct fixture {
	char dir[64];
	char path[128];
	char home[128];
	char err[512];
};

static int rm_entry(const char *p, const struct stat *st, int flag,
		    struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(p);
}

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	if (!fx)
		return -1;
	strcpy(fx->dir, "/tmp/sd-test-config-XXXXXX");
	if (!mkdtemp(fx->dir))
		return -1;
	snprintf(fx->path, sizeof(fx->path), "%s/config.yaml", fx->dir);
	snprintf(fx->home, sizeof(fx->home), "%s/home", fx->dir);
	setenv("HOME", fx->home, 1);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	nftw(fx->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(fx);
	return 0;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
	assert_int_equal(fclose(f), 0);
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	char *buf = calloc(1, 65536);
	assert_non_null(buf);
	size_t n = fread(buf, 1, 65535, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void assert_defaults(const struct store_config *c)
{
	assert_int_equal(c->nsources, 0);
	assert_int_equal(c->nexcludes, 0);
	assert_int_equal(c->compression_level, 3);
	assert_int_equal(c->retention.keep_last, 0);
	assert_int_equal(c->retention.keep_hourly, 24);
	assert_int_equal(c->retention.keep_daily, 30);
	assert_int_equal(c->retention.keep_weekly, 12);
	assert_int_equal(c->retention.keep_monthly, 12);
	assert_int_equal(c->retention.keep_yearly, 0);
	assert_null(c->retention.keep_within);
}

static struct store_config *load_ok(struct fixture *fx)
{
	struct store_config *c = NULL;
	int r = store_config_load(fx->path, &c, fx->err, sizeof(fx->err));
	if (r != 0)
		fail_msg("load failed (%d): %s", r, fx->err);
	return c;
}

/* Loads text and expects SD_ECONFIG with a message containing each of
 * the NULL-terminated strings. */
static void expect_error(struct fixture *fx, const char *text, ...)
{
	write_file(fx->path, text);
	struct store_config *c = NULL;
	assert_int_equal(store_config_load(fx->path, &c, fx->err,
					   sizeof(fx->err)),
			 SD_ECONFIG);
	assert_null(c);
	va_list ap;
	va_start(ap, text);
	for (const char *want; (want = va_arg(ap, const char *));)
		if (!strstr(fx->err, want))
			fail_msg("error '%s' lacks '%s'", fx->err, want);
	va_end(ap);
}

static void test_config__defaults_when_missing(void **state)
{
	struct fixture *fx = *state;
	struct store_config *c = load_ok(fx);
	assert_defaults(c);
	store_config_free(c);
	store_config_free(NULL);

	write_file(fx->path, "# nothing but a comment\n");
	c = load_ok(fx);
	assert_defaults(c);
	store_config_free(c);

	write_file(fx->path, "retention:\nbackup: ~\nsources: {}\n");
	c = load_ok(fx);
	assert_defaults(c);
	store_config_free(c);
}

static void test_config__default_text(void **state)
{
	struct fixture *fx = *state;
	const char *text = store_config_default_text();
	assert_ptr_equal(text, store_config_default_text());
	assert_non_null(strstr(text, "\nsources:\n"));
	assert_non_null(strstr(text, "# content: ~/blog/content\n"));
	assert_non_null(strstr(text, "  compression_level: 3\n"));
	assert_non_null(strstr(text, "  keep_within: \"\"\n"));
	assert_non_null(strstr(text, "  exclude: []\n"));
	write_file(fx->path, text);
	struct store_config *c = load_ok(fx);
	assert_defaults(c);
	store_config_free(c);
}

static void test_config__full_file(void **state)
{
	struct fixture *fx = *state;
	write_file(fx->path,
		   "sources:\n"
		   "  content: ~/blog/content\n"
		   "  \"my site\": /srv/www/hugo.toml\n"
		   "  home: \"~\"\n"
		   "backup:\n"
		   "  exclude:\n"
		   "    - \"*.tmp\"\n"
		   "    - .cache\n"
		   "  compression_level: 19\n"
		   "retention:\n"
		   "  keep_last: 5\n"
		   "  keep_hourly: 0\n"
		   "  keep_daily: 7\n"
		   "  keep_weekly: 4\n"
		   "  keep_monthly: 6\n"
		   "  keep_yearly: 2\n"
		   "  keep_within: 1y6m\n");
	struct store_config *c = load_ok(fx);
	assert_int_equal(c->nsources, 3);
	assert_string_equal(c->sources[0].name, "content");
	char want[256];
	snprintf(want, sizeof(want), "%s/blog/content", fx->home);
	assert_string_equal(c->sources[0].path, want);
	assert_string_equal(c->sources[1].name, "my site");
	assert_string_equal(c->sources[1].path, "/srv/www/hugo.toml");
	assert_string_equal(c->sources[2].path, fx->home);
	assert_int_equal(c->nexcludes, 2);
	assert_string_equal(c->excludes[0], "*.tmp");
	assert_string_equal(c->excludes[1], ".cache");
	assert_int_equal(c->compression_level, 19);
	assert_int_equal(c->retention.keep_last, 5);
	assert_int_equal(c->retention.keep_hourly, 0);
	assert_int_equal(c->retention.keep_daily, 7);
	assert_int_equal(c->retention.keep_weekly, 4);
	assert_int_equal(c->retention.keep_monthly, 6);
	assert_int_equal(c->retention.keep_yearly, 2);
	assert_string_equal(c->retention.keep_within, "1y6m");
	store_config_free(c);

	/* keys left out keep their defaults */
	write_file(fx->path, "retention: {keep_daily: 1, keep_within: \"\"}\n");
	c = load_ok(fx);
	assert_int_equal(c->retention.keep_daily, 1);
	assert_int_equal(c->retention.keep_hourly, 24);
	assert_null(c->retention.keep_within);
	store_config_free(c);
}

static void test_config__errors(void **state)
{
	struct fixture *fx = *state;
	expect_error(fx, "backup:\n  compression_level: 3\n  foo: 1\n",
		     fx->path, ":3: unknown key 'backup.foo'", NULL);
	expect_error(fx, "# c\n\nretention:\n  keep_daily: x\n", fx->path,
		     ":4: retention.keep_daily: expected a non-negative "
		     "integer, got 'x'",
		     NULL);
	expect_error(fx, "retention:\n  keep_daily: -1\n",
		     "config.yaml:2: retention.keep_daily", "'-1'", NULL);
	expect_error(fx, "retention:\n  keep_daily: 99999999999\n",
		     ":2: retention.keep_daily", NULL);
	expect_error(fx, "retention:\n  keep_daily: [1]\n",
		     ":2: retention.keep_daily", "a list", NULL);
	expect_error(fx, "backup:\n  compression_level: 20\n",
		     ":2: backup.compression_level: expected an integer from 1 "
		     "to 19, got '20'",
		     NULL);
	expect_error(fx, "backup:\n  compression_level: 0\n",
		     "backup.compression_level", NULL);
	expect_error(fx, "retention:\n  keep_within: 7x\n",
		     ":2: retention.keep_within: expected a duration", NULL);
	expect_error(fx, "retention:\n  keep_within: d\n", "keep_within", NULL);
	expect_error(fx, "notion:\n  token: x\n", ":1: unknown key 'notion'",
		     NULL);
	expect_error(fx, "retention: 3\n", ":1: retention: expected a mapping",
		     NULL);
	expect_error(fx, "- a\n", ":1: expected a mapping", NULL);
	expect_error(fx, "retention:\n  keep_daily: 1\n  keep_daily: 2\n",
		     ":3: duplicate key 'retention.keep_daily'", NULL);
	expect_error(fx, "backup: {}\nbackup: {}\n", ":2: duplicate key 'backup'",
		     NULL);
	expect_error(fx, "sources:\n  content: blog/content\n",
		     ":2: sources.content: expected an absolute path", NULL);
	expect_error(fx, "sources:\n  a/b: /x\n", ":2: sources: 'a/b'", NULL);
	expect_error(fx, "sources:\n  ..: /x\n", ":2: sources", NULL);
	expect_error(fx, "sources:\n  a: /x\n  a: /y\n",
		     ":3: sources: duplicate name 'a'", NULL);
	expect_error(fx, "backup:\n  exclude: \"*.tmp\"\n",
		     ":2: backup.exclude: expected a list", NULL);
	expect_error(fx, "backup:\n  exclude: [a, [b]]\n",
		     ":2: backup.exclude", NULL);
	expect_error(fx, "a: 1\n---\nb: 2\n", ":3: only one YAML document",
		     NULL);
	/* invalid YAML: FILE:LINE:COL and libyaml's own words */
	expect_error(fx, "retention:\n  keep_daily: 1\n bad\n", fx->path,
		     "config.yaml:3:", NULL);
	expect_error(fx, "backup:\n  exclude: [a, b\n", "config.yaml:3:1: ",
		     "did not find expected", NULL);
	expect_error(fx, "a: \"unterminated\n", "config.yaml:",
		     "found unexpected end of stream", NULL);
	expect_error(fx, "retention:\n  keep_daily: \xff\n", "config.yaml:2:",
		     "invalid", NULL);

	/* a small errbuf still ends in a NUL */
	char small[12];
	memset(small, 'x', sizeof(small));
	struct store_config *c = NULL;
	assert_int_equal(store_config_load(fx->path, &c, small, sizeof(small)),
			 SD_ECONFIG);
	assert_int_equal(strlen(small), sizeof(small) - 1);
	assert_int_equal(store_config_load(fx->path, &c, NULL, 0), SD_ECONFIG);
}

static void set_ok(struct fixture *fx, const char *key, const char *value)
{
	int r = store_config_set(fx->path, key, value, fx->err, sizeof(fx->err));
	if (r != 0)
		fail_msg("set %s=%s failed (%d): %s", key, value, r, fx->err);
}

static void assert_file(struct fixture *fx, const char *want)
{
	char *got = read_file(fx->path);
	if (strcmp(got, want))
		fail_msg("file is:\n%s\nwanted:\n%s", got, want);
	free(got);
}

static void expect_set_error(struct fixture *fx, const char *key,
			     const char *value, const char *want);

static const char commented[] =
	"# my settings\n"
	"sources:\n"
	"  content: ~/blog/content   # the posts\n"
	"\n"
	"retention:\n"
	"  # days matter most\n"
	"  keep_daily: 30   # a month\n"
	"  keep_hourly: 24\n"
	"# the end\n";

static void test_config__set_keeps_layout(void **state)
{
	struct fixture *fx = *state;
	write_file(fx->path, commented);
	set_ok(fx, "retention.keep_daily", "7");
	assert_file(fx, "# my settings\n"
			"sources:\n"
			"  content: ~/blog/content   # the posts\n"
			"\n"
			"retention:\n"
			"  # days matter most\n"
			"  keep_daily: 7   # a month\n"
			"  keep_hourly: 24\n"
			"# the end\n");
	set_ok(fx, "sources.content", "/srv/blog posts");
	set_ok(fx, "retention.keep_hourly", "48");
	assert_file(fx, "# my settings\n"
			"sources:\n"
			"  content: \"/srv/blog posts\"   # the posts\n"
			"\n"
			"retention:\n"
			"  # days matter most\n"
			"  keep_daily: 7   # a month\n"
			"  keep_hourly: 48\n"
			"# the end\n");
	struct store_config *c = load_ok(fx);
	assert_string_equal(c->sources[0].path, "/srv/blog posts");
	assert_int_equal(c->retention.keep_daily, 7);
	assert_int_equal(c->retention.keep_hourly, 48);
	store_config_free(c);
}

static void test_config__set_absent(void **state)
{
	struct fixture *fx = *state;
	write_file(fx->path, commented);
	/* an absent key goes under its section */
	set_ok(fx, "retention.keep_within", "2w");
	/* a new source */
	set_ok(fx, "sources.한글 노트", "~/notes");
	/* an absent section goes at the end */
	set_ok(fx, "backup.compression_level", "9");
	set_ok(fx, "backup.exclude", "[\"*.tmp\", .cache, \"a, b\"]");
	assert_file(fx, "# my settings\n"
			"sources:\n"
			"  content: ~/blog/content   # the posts\n"
			"  \"한글 노트\": ~/notes\n"
			"\n"
			"retention:\n"
			"  # days matter most\n"
			"  keep_daily: 30   # a month\n"
			"  keep_hourly: 24\n"
			"  keep_within: 2w\n"
			"# the end\n"
			"backup:\n"
			"  compression_level: 9\n"
			"  exclude: [\"*.tmp\", .cache, \"a, b\"]\n");
	struct store_config *c = load_ok(fx);
	assert_int_equal(c->nsources, 2);
	assert_string_equal(c->sources[1].name, "한글 노트");
	assert_string_equal(c->retention.keep_within, "2w");
	assert_int_equal(c->nexcludes, 3);
	assert_string_equal(c->excludes[2], "a, b");
	store_config_free(c);

	/* replacing a block list by a flow one */
	write_file(fx->path, "backup:\n  exclude:\n    - a\n    - b\n"
			     "  compression_level: 3\n");
	set_ok(fx, "backup.exclude", "[]");
	assert_file(fx, "backup:\n  exclude: []\n  compression_level: 3\n");

	/* long names and values */
	char key[400], path[4000];
	memset(key, 'k', sizeof(key));
	memcpy(key, "sources.", 8);
	key[8 + 255] = '\0';
	memset(path, 'p', sizeof(path));
	path[0] = '/';
	path[sizeof(path) - 1] = '\0';
	set_ok(fx, key, path);
	c = load_ok(fx);
	assert_int_equal(c->nsources, 1);
	assert_string_equal(c->sources[0].name, key + 8);
	assert_string_equal(c->sources[0].path, path);
	store_config_free(c);
	key[8 + 255] = 'k'; /* 256 bytes: longer than a file name can be */
	key[8 + 256] = '\0';
	expect_set_error(fx, key, "/x", "not a valid name");

	/* a missing file is created */
	unlink(fx->path);
	set_ok(fx, "retention.keep_last", "3");
	assert_file(fx, "retention:\n  keep_last: 3\n");
	/* no final newline, flow styles, an empty section */
	write_file(fx->path, "retention: {keep_daily: 3}\nbackup:");
	set_ok(fx, "retention.keep_last", "1");
	set_ok(fx, "backup.compression_level", "5");
	assert_file(fx, "retention: {keep_daily: 3, keep_last: 1}\nbackup:\n"
			"  compression_level: 5\n");
	write_file(fx->path, "{retention: ~}");
	set_ok(fx, "sources.x", "/x");
	set_ok(fx, "retention.keep_last", "2");
	assert_file(fx, "{retention: {keep_last: 2}, sources: {x: /x}}");
}

static void test_config__set_default_text(void **state)
{
	struct fixture *fx = *state;
	const char *def = store_config_default_text();
	write_file(fx->path, def);
	set_ok(fx, "retention.keep_daily", "7");
	/* exactly one byte range changed */
	const char *at = strstr(def, "keep_daily: 30\n");
	assert_non_null(at);
	char want[8192];
	snprintf(want, sizeof(want), "%.*skeep_daily: 7%s", (int)(at - def),
		 def, at + strlen("keep_daily: 30"));
	assert_file(fx, want);

	set_ok(fx, "sources.content", "~/blog/content");
	struct store_config *c = load_ok(fx);
	assert_int_equal(c->nsources, 1);
	assert_string_equal(c->sources[0].name, "content");
	assert_int_equal(c->retention.keep_daily, 7);
	store_config_free(c);
}

static void expect_set_error(struct fixture *fx, const char *key,
			     const char *value, const char *want)
{
	char *before = read_file(fx->path);
	assert_int_equal(store_config_set(fx->path, key, value, fx->err,
					  sizeof(fx->err)),
			 SD_ECONFIG);
	if (!strstr(fx->err, want))
		fail_msg("error '%s' lacks '%s'", fx->err, want);
	char *after = read_file(fx->path);
	assert_string_equal(before, after);
	free(before);
	free(after);
}

static void test_config__set_invalid(void **state)
{
	struct fixture *fx = *state;
	write_file(fx->path, commented);
	expect_set_error(fx, "retention.keep_daily", "x",
			 "retention.keep_daily: expected a non-negative "
			 "integer, got 'x'");
	expect_set_error(fx, "retention.keep_daily", "-3", "'-3'");
	expect_set_error(fx, "retention.keep_daily", "1\nbackup: 3", "'1\n");
	expect_set_error(fx, "backup.compression_level", "42",
			 "backup.compression_level");
	expect_set_error(fx, "backup.foo", "1", "unknown key 'backup.foo'");
	expect_set_error(fx, "backup", "1", "unknown key 'backup'");
	expect_set_error(fx, "nope.x", "1", "unknown key 'nope.x'");
	expect_set_error(fx, "sources.", "/x", "unknown key");
	expect_set_error(fx, "sources.a/b", "/x", "sources: 'a/b'");
	expect_set_error(fx, "sources.content", "relative",
			 "sources.content: expected an absolute path");
	expect_set_error(fx, "retention.keep_within", "soon",
			 "retention.keep_within");
	expect_set_error(fx, "backup.exclude", "*.tmp", "backup.exclude");
	expect_set_error(fx, "backup.exclude", "[a, {b: c}]", "backup.exclude");
	/* the file itself is broken: nothing is written */
	write_file(fx->path, "retention: [\n");
	expect_set_error(fx, "retention.keep_daily", "1", "config.yaml:2:");
	write_file(fx->path, "a: &x 5\nretention:\n  keep_daily: *x\n");
	expect_set_error(fx, "retention.keep_daily", "1", "alias");
}

static char *xs(const char *s)
{
	char *p = strdup(s);
	assert_non_null(p);
	return p;
}

static void test_config__render_round_trip(void **state)
{
	struct fixture *fx = *state;
	static const char *const names[] = {
		"my blog", "a: b", "quote\"d", "한글", "- dash", "#hash",
		"null", "~x", "tab\there", "yes", "'single'", "back\\slash",
	};
	static const char *const excludes[] = {
		"*.tmp", "[x]", "{y}", "a, b", "~", "null", "-", "# not a comment",
		"ends with space ", " starts", "line\nbreak", "\xc2\x85nel",
		"7", "true", "@at", "%pct", "`tick`", "|", ">", "!tag", "&a",
		"*b", "?q", "key: value", "x #y", "é",
	};
	size_t nn = sizeof(names) / sizeof(*names);
	size_t ne = sizeof(excludes) / sizeof(*excludes);
	struct store_config *c = calloc(1, sizeof(*c));
	assert_non_null(c);
	c->sources = calloc(nn, sizeof(*c->sources));
	assert_non_null(c->sources);
	for (size_t i = 0; i < nn; i++) {
		char path[128];
		snprintf(path, sizeof(path), "/data/%s: \"%zu\" #x", names[i], i);
		c->sources[i].name = xs(names[i]);
		c->sources[i].path = xs(path);
	}
	c->nsources = nn;
	c->excludes = calloc(ne, sizeof(*c->excludes));
	assert_non_null(c->excludes);
	for (size_t i = 0; i < ne; i++)
		c->excludes[i] = xs(excludes[i]);
	c->nexcludes = ne;
	c->compression_level = 12;
	c->retention.keep_last = 1;
	c->retention.keep_hourly = 2;
	c->retention.keep_daily = 3;
	c->retention.keep_weekly = 4;
	c->retention.keep_monthly = 5;
	c->retention.keep_yearly = 6;
	c->retention.keep_within = xs("12h");

	char *text;
	assert_int_equal(store_config_render(c, &text), 0);
	write_file(fx->path, text);
	struct store_config *d = load_ok(fx);
	assert_int_equal(d->nsources, nn);
	for (size_t i = 0; i < nn; i++) {
		assert_string_equal(d->sources[i].name, c->sources[i].name);
		assert_string_equal(d->sources[i].path, c->sources[i].path);
	}
	assert_int_equal(d->nexcludes, ne);
	for (size_t i = 0; i < ne; i++)
		assert_string_equal(d->excludes[i], c->excludes[i]);
	assert_int_equal(d->compression_level, 12);
	assert_int_equal(d->retention.keep_last, 1);
	assert_int_equal(d->retention.keep_yearly, 6);
	assert_string_equal(d->retention.keep_within, "12h");

	char *again;
	assert_int_equal(store_config_render(d, &again), 0);
	assert_string_equal(text, again);
	free(text);
	free(again);
	store_config_free(c);
	store_config_free(d);

	/* defaults render as parseable YAML too */
	unlink(fx->path);
	d = load_ok(fx);
	assert_int_equal(store_config_render(d, &text), 0);
	assert_non_null(strstr(text, "sources: {}\n"));
	write_file(fx->path, text);
	free(text);
	store_config_free(d);
	d = load_ok(fx);
	assert_defaults(d);
	store_config_free(d);

	/* awkward values through set */
	write_file(fx->path, "");
	set_ok(fx, "sources.x", "/");
	for (size_t i = 0; i < nn; i++) {
		char key[128], path[128];
		snprintf(key, sizeof(key), "sources.%s", names[i]);
		snprintf(path, sizeof(path), "/p/%s", excludes[i]);
		set_ok(fx, key, path);
	}
	d = load_ok(fx);
	assert_int_equal(d->nsources, nn + 1);
	for (size_t i = 0; i < nn; i++) {
		char path[128];
		snprintf(path, sizeof(path), "/p/%s", excludes[i]);
		assert_string_equal(d->sources[i + 1].name, names[i]);
		assert_string_equal(d->sources[i + 1].path, path);
	}
	store_config_free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_config__defaults_when_missing,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_config__default_text, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_config__full_file, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_config__errors, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_config__set_keeps_layout,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_config__set_absent, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_config__set_default_text,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_config__set_invalid, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_config__render_round_trip,
						setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
