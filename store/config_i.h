/*
 * config_i.h — what config_edit.c needs from config.c: the schema table's
 * types, the text writer and the libyaml helpers. Internal to store/, like
 * store_i.h; the schema table itself stays private to config.c.
 */
#ifndef SNAPDRAFT_CONFIG_I_H
#define SNAPDRAFT_CONFIG_I_H

#include <stdbool.h>
#include <stddef.h>

#include <yaml.h>

#include "store.h"

/* ---- schema */

enum cfg_type { CFG_INT, CFG_STRING, CFG_LIST };

struct cfg_key {
	const char *name;
	enum cfg_type type;
	size_t offset;		/* of the value in struct store_config */
	size_t count_offset;	/* CFG_LIST: of its size_t count */
	int min, max, def;	/* CFG_INT */
	bool (*valid)(const char *s); /* CFG_STRING, when not empty */
	const char *expect;	/* CFG_STRING: what valid looks like */
	const char *help;
};

struct cfg_load;
struct cfg_buf;

struct cfg_section {
	const char *name;
	const char *help;
	const struct cfg_key *keys;
	size_t nkeys;
	/* A section of user-chosen names instead of keys: one callback
	 * per pair, one that renders them all ("\n  name: value" each,
	 * returning how many) and one that frees them. */
	int (*load_entry)(struct cfg_load *l, yaml_node_t *key,
			  yaml_node_t *value);
	size_t (*render_entries)(const struct store_config *c,
				 struct cfg_buf *b);
	void (*free_entries)(struct store_config *c);
	const char *example;	/* commented lines for the default file */
};

/* The section named by the len bytes at name; NULL if none. Points into
 * the static table. */
const struct cfg_section *store_cfg_section_find(const char *name, size_t len);
/* The key of s called name; NULL if none (always, for a section of names). */
const struct cfg_key *store_cfg_key_find(const struct cfg_section *s,
					 const char *name);

/* Formats into errbuf; does nothing when errbuf is NULL or errlen 0. */
__attribute__((format(printf, 3, 4))) void
store_cfg_set_err(char *errbuf, size_t errlen, const char *fmt, ...);

/* ---- text out */

/* A growing NUL-terminated string, zero-initialised to start. Out of
 * memory sets failed and makes later writes no-ops, so callers check once
 * at the end. The caller frees p. */
struct cfg_buf {
	char *p;
	size_t len, cap;
	bool failed;
};

void store_cfg_put(struct cfg_buf *b, const char *s, size_t n);
void store_cfg_puts(struct cfg_buf *b, const char *s);
__attribute__((format(printf, 2, 3))) void
store_cfg_printf(struct cfg_buf *b, const char *fmt, ...);
/* n spaces. */
void store_cfg_indent(struct cfg_buf *b, size_t n);
/* s as a YAML scalar that parses back to exactly s. */
void store_cfg_scalar(struct cfg_buf *b, const char *s);

/* ---- YAML in */

/* A scalar node's text; valid as long as its document. */
const char *store_cfg_text(const yaml_node_t *n);
/* A plain scalar YAML reads as null (empty, ~, null, Null, NULL); false
 * for NULL. */
bool store_cfg_is_null(const yaml_node_t *n);
/* n is a scalar whose text is exactly the len bytes at s. */
bool store_cfg_key_is(const yaml_node_t *n, const char *s, size_t len);
/* A scalar with no NUL inside, so its text is a whole C string. */
bool store_cfg_is_text(const yaml_node_t *n);
/* Parses the len bytes of text (named file in messages) into doc. On 0 the
 * caller deletes doc (yaml_document_delete); on error there is nothing to
 * delete and, for SD_ECONFIG, errbuf says why. */
int store_cfg_parse(const char *file, const char *text, size_t len,
		    yaml_document_t *doc, char *errbuf, size_t errlen);
/* Loads text over the defaults, as store_config_load loads a file's
 * content; *out is freed with store_config_free. */
int store_cfg_load_text(const char *file, const char *text, size_t len,
			struct store_config **out, char *errbuf, size_t errlen);

#endif
