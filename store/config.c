/*
 * config.c — config.yaml: the schema, load with defaults, render.
 *
 * The schema is a table (cfg_sections): each section lists its keys with a
 * type, where the value lives in struct store_config, its default, its
 * bounds and a help line. Loading, rendering, the commented default file
 * and `config set` all walk that one table, so a new section (notion:,
 * llm:, mirror:) is a new table entry plus the struct fields. A section
 * whose entries are user-chosen names (sources:) has no key table but a
 * callback that takes one name/value pair.
 *
 * YAML is read with libyaml's document API and never parsed by hand. Its
 * marks (byte index, line, column of every node) serve two purposes: error
 * messages name FILE:LINE, and store_config_set (config_edit.c) edits the
 * file's text at exactly the bytes of one value, so comments and layout
 * survive. The edited text then goes through the same loader as any file,
 * and only a valid result replaces the file (atomically).
 *
 * Strings are written plain when that is unambiguous (a conservative set of
 * characters) and double-quoted with escapes otherwise, so anything written
 * parses back to the same value.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "config_i.h"
#include "store_i.h"

/* ---------------------------------------------------------------- schema */

static bool cfg_duration_ok(const char *s);
static int cfg_source_load(struct cfg_load *l, yaml_node_t *key,
			   yaml_node_t *value);
static size_t cfg_sources_render(const struct store_config *c,
				 struct cfg_buf *b);
static void cfg_sources_free(struct store_config *c);

#define CFG_OFF(field) offsetof(struct store_config, field)
#define CFG_NKEYS(keys) (sizeof(keys) / sizeof(*(keys)))
#define CFG_KEEP(field, d, h) \
	{ #field, CFG_INT, CFG_OFF(retention.field), 0, 0, INT_MAX, d, \
	  NULL, NULL, h }

static const struct cfg_key cfg_backup_keys[] = {
	{ "exclude", CFG_LIST, CFG_OFF(excludes), CFG_OFF(nexcludes), 0, 0, 0,
	  NULL, NULL,
	  "Glob patterns (fnmatch) of paths to leave out,\n"
	  "e.g. [\"*.tmp\", .cache]" },
	{ "compression_level", CFG_INT, CFG_OFF(compression_level), 0, 1, 19,
	  3, NULL, NULL, "zstd level: 1 (fast) to 19 (small)" },
};

static const struct cfg_key cfg_retention_keys[] = {
	CFG_KEEP(keep_last, 0, "The newest N points"),
	CFG_KEEP(keep_hourly, 24,
		 "The newest point of each of the last N hours; likewise\n"
		 "days, weeks, months and years below"),
	CFG_KEEP(keep_daily, 30, NULL),
	CFG_KEEP(keep_weekly, 12, NULL),
	CFG_KEEP(keep_monthly, 12, NULL),
	CFG_KEEP(keep_yearly, 0, NULL),
	{ "keep_within", CFG_STRING, CFG_OFF(retention.keep_within), 0, 0, 0,
	  0, cfg_duration_ok, "a duration like 7d, 12h, 2w, 1m, 1y",
	  "Every point younger than this (7d, 12h, 2w, 1m, 1y); \"\" is off" },
};

static const struct cfg_section cfg_sections[] = {
	{ "sources",
	  "What to back up: a name (its folder in every backup point) and a\n"
	  "directory or file, absolute or ~/...",
	  NULL, 0, cfg_source_load, cfg_sources_render, cfg_sources_free,
	  "content: ~/blog/content\nsite: ~/blog/hugo.toml" },
	{ "backup", NULL, cfg_backup_keys, CFG_NKEYS(cfg_backup_keys), NULL,
	  NULL, NULL, NULL },
	{ "retention",
	  "How many backup points `forget` keeps (0: none by that rule)",
	  cfg_retention_keys, CFG_NKEYS(cfg_retention_keys), NULL, NULL, NULL,
	  NULL },
};
#define CFG_NSECTIONS CFG_NKEYS(cfg_sections)

#define CFG_FIELD(c, k, T) ((T *)((char *)(c) + (k)->offset))
#define CFG_COUNT(c, off) ((size_t *)((char *)(c) + (off)))

const struct cfg_section *store_cfg_section_find(const char *name, size_t len)
{
	for (size_t i = 0; i < CFG_NSECTIONS; i++)
		if (strlen(cfg_sections[i].name) == len &&
		    !memcmp(cfg_sections[i].name, name, len))
			return &cfg_sections[i];
	return NULL;
}

const struct cfg_key *store_cfg_key_find(const struct cfg_section *s,
					 const char *name)
{
	for (size_t i = 0; i < s->nkeys; i++)
		if (!strcmp(s->keys[i].name, name))
			return &s->keys[i];
	return NULL;
}

/* One or more <number><unit>, units h d w m y: "7d", "1y6m". */
static bool cfg_duration_ok(const char *s)
{
	if (!*s)
		return false;
	while (*s) {
		size_t digits = strspn(s, "0123456789");
		if (digits == 0 || digits > 6 || !s[digits] ||
		    !strchr("hdwmy", s[digits]))
			return false;
		s += digits + 1;
	}
	return true;
}

void store_cfg_set_err(char *errbuf, size_t errlen, const char *fmt, ...)
{
	if (!errbuf || errlen == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(errbuf, errlen, fmt, ap);
	va_end(ap);
}

/* ---------------------------------------------------------------- text out */

/* Room for n more bytes and a NUL; false (and failed set) if none. */
static bool cfg_reserve(struct cfg_buf *b, size_t n)
{
	if (b->failed)
		return false;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->failed = true;
			return false;
		}
		b->p = p;
		b->cap = cap;
	}
	return true;
}

void store_cfg_put(struct cfg_buf *b, const char *s, size_t n)
{
	if (!cfg_reserve(b, n))
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void store_cfg_puts(struct cfg_buf *b, const char *s)
{
	store_cfg_put(b, s, strlen(s));
}

void store_cfg_printf(struct cfg_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->failed = true;
		return;
	}
	if (!cfg_reserve(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void store_cfg_indent(struct cfg_buf *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		store_cfg_put(b, " ", 1);
}

/* Plain style only for a conservative character set and never for words
 * YAML readers resolve to null or booleans. */
static bool cfg_plain_ok(const char *s)
{
	static const char *const words[] = {
		"~", "null", "Null", "NULL", "true", "True", "TRUE", "false",
		"False", "FALSE", "yes", "Yes", "YES", "no", "No", "NO", "on",
		"On", "ON", "off", "Off", "OFF", "y", "Y", "n", "N",
	};
	static const char first[] =
		"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		"0123456789_./~";
	static const char rest[] =
		"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		"0123456789_./~+-";
	if (!*s || !strchr(first, *s) || s[strspn(s, rest)] != '\0')
		return false;
	for (size_t i = 0; i < sizeof(words) / sizeof(*words); i++)
		if (!strcmp(s, words[i]))
			return false;
	return true;
}

void store_cfg_scalar(struct cfg_buf *b, const char *s)
{
	if (cfg_plain_ok(s)) {
		store_cfg_puts(b, s);
		return;
	}
	store_cfg_put(b, "\"", 1);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\') {
			char e[2] = { '\\', (char)*p };
			store_cfg_put(b, e, 2);
		} else if (*p == '\n') {
			store_cfg_puts(b, "\\n");
		} else if (*p == '\t') {
			store_cfg_puts(b, "\\t");
		} else if (*p < 0x20 || *p == 0x7f) {
			store_cfg_printf(b, "\\x%02x", *p);
		} else if (p[0] == 0xc2 && p[1] == 0x85) {
			store_cfg_puts(b, "\\N"); /* NEL: YAML would fold it */
			p++;
		} else if (p[0] == 0xe2 && p[1] == 0x80 &&
			   (p[2] == 0xa8 || p[2] == 0xa9)) {
			store_cfg_puts(b, p[2] == 0xa8 ? "\\L" : "\\P");
			p += 2;
		} else {
			store_cfg_put(b, (const char *)p, 1);
		}
	}
	store_cfg_put(b, "\"", 1);
}

/* "# " before every line of text. */
static void cfg_comment(struct cfg_buf *b, size_t indent, const char *text)
{
	while (*text) {
		size_t n = strcspn(text, "\n");
		store_cfg_indent(b, indent);
		store_cfg_puts(b, "# ");
		store_cfg_put(b, text, n);
		store_cfg_puts(b, "\n");
		text += n + (text[n] == '\n');
	}
}

static size_t cfg_sources_render(const struct store_config *c,
				 struct cfg_buf *b)
{
	for (size_t i = 0; i < c->nsources; i++) {
		store_cfg_puts(b, "\n  ");
		store_cfg_scalar(b, c->sources[i].name);
		store_cfg_puts(b, ": ");
		store_cfg_scalar(b, c->sources[i].path);
	}
	return c->nsources;
}

static void cfg_sources_free(struct store_config *c)
{
	for (size_t i = 0; i < c->nsources; i++) {
		free(c->sources[i].name);
		free(c->sources[i].path);
	}
	free(c->sources);
}

static void cfg_key_render(const struct store_config *c,
			   const struct cfg_key *k, struct cfg_buf *b)
{
	store_cfg_printf(b, "  %s:", k->name);
	if (k->type == CFG_INT) {
		store_cfg_printf(b, " %d\n", *CFG_FIELD(c, k, const int));
	} else if (k->type == CFG_STRING) {
		const char *s = *CFG_FIELD(c, k, char *const);
		store_cfg_puts(b, " ");
		store_cfg_scalar(b, s ? s : "");
		store_cfg_puts(b, "\n");
	} else {
		char *const *items = *CFG_FIELD(c, k, char **const);
		size_t n = *CFG_COUNT(c, k->count_offset);
		if (n == 0)
			store_cfg_puts(b, " []");
		for (size_t i = 0; i < n; i++) {
			store_cfg_puts(b, "\n    - ");
			store_cfg_scalar(b, items[i]);
		}
		store_cfg_puts(b, "\n");
	}
}

/* The effective configuration, or with help the commented default file. */
static int cfg_render(const struct store_config *c, bool help, char **out)
{
	struct cfg_buf b = { 0 };
	if (help)
		cfg_comment(&b, 0,
			    "snapdraft configuration. Every key is optional "
			    "and shown with its\ndefault; `snapdraft config` "
			    "prints the effective values.");
	for (size_t i = 0; i < CFG_NSECTIONS; i++) {
		const struct cfg_section *s = &cfg_sections[i];
		if (help) {
			store_cfg_puts(&b, "\n");
			if (s->help)
				cfg_comment(&b, 0, s->help);
		}
		if (s->render_entries) {
			store_cfg_printf(&b, "%s:", s->name);
			bool none = s->render_entries(c, &b) == 0;
			/* null, not {}: `config set` can add lines under it */
			store_cfg_puts(&b, none && !help ? " {}\n" : "\n");
			if (help && none && s->example)
				cfg_comment(&b, 2, s->example);
			continue;
		}
		store_cfg_printf(&b, "%s:\n", s->name);
		for (size_t k = 0; k < s->nkeys; k++) {
			if (help && s->keys[k].help)
				cfg_comment(&b, 2, s->keys[k].help);
			cfg_key_render(c, &s->keys[k], &b);
		}
	}
	if (b.failed || !b.p) {
		free(b.p);
		return -ENOMEM;
	}
	*out = b.p;
	return 0;
}

/* ---------------------------------------------------------------- load */

struct cfg_load {
	const char *file;
	yaml_document_t *doc;
	struct store_config *c;
	char *errbuf;
	size_t errlen;
};

__attribute__((format(printf, 3, 4))) static int
cfg_error(struct cfg_load *l, const yaml_node_t *at, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	store_cfg_set_err(l->errbuf, l->errlen, "%s:%zu: %s", l->file,
			  at->start_mark.line + 1, msg);
	return SD_ECONFIG;
}

const char *store_cfg_text(const yaml_node_t *n)
{
	return (const char *)n->data.scalar.value;
}

bool store_cfg_is_null(const yaml_node_t *n)
{
	if (!n || n->type != YAML_SCALAR_NODE ||
	    n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	const char *s = store_cfg_text(n);
	return !*s || !strcmp(s, "~") || !strcmp(s, "null") ||
	       !strcmp(s, "Null") || !strcmp(s, "NULL");
}

bool store_cfg_key_is(const yaml_node_t *n, const char *s, size_t len)
{
	return n && n->type == YAML_SCALAR_NODE &&
	       n->data.scalar.length == len &&
	       !memcmp(store_cfg_text(n), s, len);
}

/* A node as messages show it: a scalar's text, or what kind it is. */
static const char *cfg_shown(const yaml_node_t *n)
{
	if (n->type == YAML_SEQUENCE_NODE)
		return "a list";
	if (n->type == YAML_MAPPING_NODE)
		return "a mapping";
	return store_cfg_text(n);
}

/* Scalars that are text: no NUL inside (a C string could not hold it). */
bool store_cfg_is_text(const yaml_node_t *n)
{
	return n->type == YAML_SCALAR_NODE &&
	       strlen(store_cfg_text(n)) == n->data.scalar.length;
}

/* Absolute, or ~ / ~/... under $HOME; SD_EUSAGE otherwise. */
static int cfg_expand_path(const char *p, char **out)
{
	const char *home = "";
	if (p[0] == '~' && (p[1] == '/' || p[1] == '\0')) {
		home = getenv("HOME");
		if (!home || home[0] != '/')
			return SD_EUSAGE;
		p++;
	} else if (p[0] != '/') {
		return SD_EUSAGE;
	}
	size_t hl = strlen(home), pl = strlen(p);
	if (!(*out = malloc(hl + pl + 1)))
		return -ENOMEM;
	memcpy(*out, home, hl);
	memcpy(*out + hl, p, pl + 1);
	return 0;
}

static int cfg_source_load(struct cfg_load *l, yaml_node_t *key,
			   yaml_node_t *value)
{
	struct store_config *c = l->c;
	const char *name = store_cfg_text(key);
	size_t len = key->data.scalar.length;
	if (!store_cfg_is_text(key) || len == 0 || len > 255 ||
	    strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, ".."))
		return cfg_error(l, key,
				 "sources: '%s' is not a valid name (one path "
				 "component)", name);
	for (size_t i = 0; i < c->nsources; i++)
		if (!strcmp(c->sources[i].name, name))
			return cfg_error(l, key, "sources: duplicate name '%s'",
					 name);
	char *path = NULL;
	int r = SD_EUSAGE;
	if (store_cfg_is_text(value) && !store_cfg_is_null(value))
		r = cfg_expand_path(store_cfg_text(value), &path);
	if (r == SD_EUSAGE)
		return cfg_error(l, value,
				 "sources.%s: expected an absolute path or "
				 "~/... (with HOME set), got '%s'", name,
				 cfg_shown(value));
	if (r < 0)
		return r;
	struct store_config_source *n =
		realloc(c->sources, (c->nsources + 1) * sizeof(*n));
	char *dup = strdup(name);
	if (n)
		c->sources = n;
	if (!n || !dup) {
		free(path);
		free(dup);
		return -ENOMEM;
	}
	c->sources[c->nsources++] = (struct store_config_source){ dup, path };
	return 0;
}

static int cfg_int_load(struct cfg_load *l, const char *sec,
			const struct cfg_key *k, yaml_node_t *v)
{
	const char *s = v->type == YAML_SCALAR_NODE ? store_cfg_text(v) : "";
	size_t digits = strspn(s, "0123456789");
	long val = digits && digits <= 9 && !s[digits] ? strtol(s, NULL, 10)
						       : -1;
	if (v->type == YAML_SCALAR_NODE && val >= k->min && val <= k->max) {
		*CFG_FIELD(l->c, k, int) = (int)val;
		return 0;
	}
	if (k->min == 0 && k->max == INT_MAX)
		return cfg_error(l, v,
				 "%s.%s: expected a non-negative integer, got "
				 "'%s'", sec, k->name, cfg_shown(v));
	return cfg_error(l, v, "%s.%s: expected an integer from %d to %d, got "
			 "'%s'", sec, k->name, k->min, k->max, cfg_shown(v));
}

static int cfg_string_load(struct cfg_load *l, const char *sec,
			   const struct cfg_key *k, yaml_node_t *v)
{
	char **field = CFG_FIELD(l->c, k, char *);
	if (store_cfg_is_null(v))
		return 0;
	if (!store_cfg_is_text(v) || (*store_cfg_text(v) && k->valid &&
				      !k->valid(store_cfg_text(v))))
		return cfg_error(l, v, "%s.%s: expected %s, got '%s'", sec,
				 k->name, k->expect, cfg_shown(v));
	free(*field);
	*field = NULL;
	if (*store_cfg_text(v) && !(*field = strdup(store_cfg_text(v))))
		return -ENOMEM;
	return 0;
}

static int cfg_list_load(struct cfg_load *l, const char *sec,
			 const struct cfg_key *k, yaml_node_t *v)
{
	if (store_cfg_is_null(v))
		return 0;
	if (v->type != YAML_SEQUENCE_NODE)
		return cfg_error(l, v, "%s.%s: expected a list, got '%s'", sec,
				 k->name, cfg_shown(v));
	char ***field = CFG_FIELD(l->c, k, char **);
	size_t *count = CFG_COUNT(l->c, k->count_offset);
	for (yaml_node_item_t *it = v->data.sequence.items.start;
	     it < v->data.sequence.items.top; it++) {
		yaml_node_t *item = yaml_document_get_node(l->doc, *it);
		if (!store_cfg_is_text(item) || store_cfg_is_null(item))
			return cfg_error(l, item,
					 "%s.%s: expected a list of non-empty "
					 "strings, got '%s'", sec, k->name,
					 cfg_shown(item));
		char **n = realloc(*field, (*count + 1) * sizeof(*n));
		if (!n)
			return -ENOMEM;
		*field = n;
		if (!(n[*count] = strdup(store_cfg_text(item))))
			return -ENOMEM;
		(*count)++;
	}
	return 0;
}

static int cfg_section_load(struct cfg_load *l, const struct cfg_section *s,
			    yaml_node_t *m)
{
	if (store_cfg_is_null(m))
		return 0;
	if (m->type != YAML_MAPPING_NODE)
		return cfg_error(l, m, "%s: expected a mapping, got '%s'",
				 s->name, cfg_shown(m));
	uint64_t seen = 0;
	for (yaml_node_pair_t *p = m->data.mapping.pairs.start;
	     p < m->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(l->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(l->doc, p->value);
		int r;
		if (k->type != YAML_SCALAR_NODE)
			return cfg_error(l, k, "%s: keys must be strings",
					 s->name);
		if (s->load_entry) {
			r = s->load_entry(l, k, v);
			if (r < 0)
				return r;
			continue;
		}
		const struct cfg_key *key =
			store_cfg_key_find(s, store_cfg_text(k));
		if (!key || !store_cfg_is_text(k))
			return cfg_error(l, k, "unknown key '%s.%s'", s->name,
					 store_cfg_text(k));
		uint64_t bit = 1ull << (key - s->keys);
		if (seen & bit)
			return cfg_error(l, k, "duplicate key '%s.%s'", s->name,
					 key->name);
		seen |= bit;
		if (key->type == CFG_INT)
			r = cfg_int_load(l, s->name, key, v);
		else if (key->type == CFG_STRING)
			r = cfg_string_load(l, s->name, key, v);
		else
			r = cfg_list_load(l, s->name, key, v);
		if (r < 0)
			return r;
	}
	return 0;
}

static void cfg_defaults(struct store_config *c)
{
	for (size_t i = 0; i < CFG_NSECTIONS; i++)
		for (size_t k = 0; k < cfg_sections[i].nkeys; k++) {
			const struct cfg_key *key = &cfg_sections[i].keys[k];
			if (key->type == CFG_INT)
				*CFG_FIELD(c, key, int) = key->def;
		}
}

static int cfg_load_doc(struct cfg_load *l)
{
	yaml_node_t *root = yaml_document_get_root_node(l->doc);
	if (!root || store_cfg_is_null(root))
		return 0;
	if (root->type != YAML_MAPPING_NODE)
		return cfg_error(l, root, "expected a mapping of sections");
	bool seen[CFG_NSECTIONS] = { false };
	for (yaml_node_pair_t *p = root->data.mapping.pairs.start;
	     p < root->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(l->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(l->doc, p->value);
		const struct cfg_section *s =
			k->type == YAML_SCALAR_NODE
				? store_cfg_section_find(store_cfg_text(k),
							 k->data.scalar.length)
				: NULL;
		if (!s)
			return cfg_error(l, k, "unknown key '%s'",
					 cfg_shown(k));
		if (seen[s - cfg_sections])
			return cfg_error(l, k, "duplicate key '%s'", s->name);
		seen[s - cfg_sections] = true;
		int r = cfg_section_load(l, s, v);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Parses one YAML document; syntax errors become FILE:LINE:COL messages. */
int store_cfg_parse(const char *file, const char *text, size_t len,
		    yaml_document_t *doc, char *errbuf, size_t errlen)
{
	yaml_parser_t parser;
	yaml_document_t extra;
	int r = 0;
	if (!yaml_parser_initialize(&parser))
		return -ENOMEM;
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, doc))
		goto syntax;
	if (!yaml_parser_load(&parser, &extra)) {
		yaml_document_delete(doc);
		goto syntax;
	}
	yaml_node_t *more = yaml_document_get_root_node(&extra);
	if (more) {
		store_cfg_set_err(errbuf, errlen,
				  "%s:%zu: only one YAML document is allowed",
				  file, more->start_mark.line + 1);
		yaml_document_delete(doc);
		r = SD_ECONFIG;
	}
	yaml_document_delete(&extra);
	goto out;
syntax:
	if (parser.error == YAML_MEMORY_ERROR) {
		r = -ENOMEM;
		goto out;
	}
	size_t line = parser.problem_mark.line + 1;
	size_t col = parser.problem_mark.column + 1;
	if (parser.error == YAML_READER_ERROR) {
		/* reader errors carry a byte offset, not a mark */
		line = 1;
		col = 1;
		for (size_t i = 0; i < parser.problem_offset && i < len; i++) {
			col = text[i] == '\n' ? 1 : col + 1;
			line += text[i] == '\n';
		}
	}
	if (parser.context)
		store_cfg_set_err(errbuf, errlen,
				  "%s:%zu:%zu: %s (%s at line %zu)", file,
				  line, col,
				  parser.problem ? parser.problem
						 : "invalid YAML",
				  parser.context, parser.context_mark.line + 1);
	else
		store_cfg_set_err(errbuf, errlen, "%s:%zu:%zu: %s", file,
				  line, col,
				  parser.problem ? parser.problem
						 : "invalid YAML");
	r = SD_ECONFIG;
out:
	yaml_parser_delete(&parser);
	return r;
}

int store_cfg_load_text(const char *file, const char *text, size_t len,
			struct store_config **out, char *errbuf, size_t errlen)
{
	yaml_document_t doc;
	struct store_config *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	cfg_defaults(c);
	int r = store_cfg_parse(file, text, len, &doc, errbuf, errlen);
	if (r < 0) {
		store_config_free(c);
		return r;
	}
	struct cfg_load l = { file, &doc, c, errbuf, errlen };
	r = cfg_load_doc(&l);
	yaml_document_delete(&doc);
	if (r < 0) {
		if (r == -ENOMEM)
			store_cfg_set_err(errbuf, errlen, "%s: out of memory",
					  file);
		store_config_free(c);
		return r;
	}
	*out = c;
	return 0;
}

int store_config_load(const char *path, struct store_config **out,
		      char *errbuf, size_t errlen)
{
	char *text = NULL;
	size_t len = 0;
	store_cfg_set_err(errbuf, errlen, "%s", "");
	int r = store_file_read_all(path, &text, &len);
	if (r == -ENOENT)
		return store_cfg_load_text(path, "", 0, out, errbuf, errlen);
	if (r < 0) {
		store_cfg_set_err(errbuf, errlen, "%s: %s", path, strerror(-r));
		return r;
	}
	r = store_cfg_load_text(path, text, len, out, errbuf, errlen);
	free(text);
	return r;
}

void store_config_free(struct store_config *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < CFG_NSECTIONS; i++) {
		const struct cfg_section *s = &cfg_sections[i];
		if (s->free_entries)
			s->free_entries(c);
		for (size_t k = 0; k < s->nkeys; k++) {
			const struct cfg_key *key = &s->keys[k];
			if (key->type == CFG_STRING)
				free(*CFG_FIELD(c, key, char *));
			if (key->type != CFG_LIST)
				continue;
			char **items = *CFG_FIELD(c, key, char **);
			for (size_t j = 0; j < *CFG_COUNT(c, key->count_offset);
			     j++)
				free(items[j]);
			free(items);
		}
	}
	free(c);
}

int store_config_render(const struct store_config *c, char **out)
{
	return cfg_render(c, false, out);
}

static char *cfg_default_text;

static void cfg_default_text_build(void)
{
	struct store_config c = { 0 };
	cfg_defaults(&c);
	if (cfg_render(&c, true, &cfg_default_text) < 0)
		cfg_default_text = NULL;
}

const char *store_config_default_text(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, cfg_default_text_build);
	/* Only reachable when memory ran out: an empty file is all
	 * defaults too. */
	return cfg_default_text ? cfg_default_text : "";
}
