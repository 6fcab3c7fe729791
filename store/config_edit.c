/*
 * config_edit.c — `config set`: change one value of config.yaml in place.
 *
 * Rewriting the file from the loaded struct would lose the user's comments,
 * blank lines and ordering. Instead the file is parsed with libyaml and the
 * node marks locate the exact bytes of the value to change (or the point
 * where a missing key or section goes); the edit is a single splice
 * text[at, at+cut) -> ins, written in the surrounding mapping's own style
 * (block or flow) and indentation.
 *
 * The new value is always emitted through the same scalar writer as
 * rendering (a list is re-emitted from its parsed items), so the file gets
 * YAML that reads back as exactly that value and nothing more. The edited
 * text then goes through the ordinary loader, and only if it loads is the
 * file replaced, atomically and keeping its mode.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <yaml.h>

#include "config_i.h"
#include "store_i.h"

/* One textual change: text[at, at+cut) becomes ins. */
struct cfg_edit {
	size_t at, cut;
	struct cfg_buf ins;
};

static yaml_node_t *cfg_pair_find(yaml_document_t *d, yaml_node_t *m,
				  const char *key, yaml_node_t **key_node)
{
	for (yaml_node_pair_t *p = m->data.mapping.pairs.start;
	     p < m->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(d, p->key);
		if (store_cfg_key_is(k, key, strlen(key))) {
			*key_node = k;
			return yaml_document_get_node(d, p->value);
		}
	}
	return NULL;
}

/* Where a node's own text ends. A block collection's end mark lies at
 * the next token (past blank lines and comments), so use its last child. */
static size_t cfg_node_end(yaml_document_t *d, yaml_node_t *n)
{
	for (;;) {
		if (n->type == YAML_SEQUENCE_NODE &&
		    n->data.sequence.style == YAML_BLOCK_SEQUENCE_STYLE &&
		    n->data.sequence.items.top > n->data.sequence.items.start) {
			yaml_node_item_t *top = n->data.sequence.items.top;
			n = yaml_document_get_node(d, top[-1]);
		} else if (n->type == YAML_MAPPING_NODE &&
			   n->data.mapping.style == YAML_BLOCK_MAPPING_STYLE &&
			   n->data.mapping.pairs.top >
				   n->data.mapping.pairs.start) {
			yaml_node_pair_t *top = n->data.mapping.pairs.top;
			n = yaml_document_get_node(d, top[-1].value);
		} else {
			return n->end_mark.index;
		}
	}
}

/* The start of the line after the one holding position at. */
static size_t cfg_next_line(const char *text, size_t len, size_t at)
{
	if (at > 0 && text[at - 1] == '\n')
		return at;
	while (at < len && text[at] != '\n')
		at++;
	return at < len ? at + 1 : len;
}

/* A new line at the end of the text needs the last line ended first. */
static void cfg_edit_line_start(struct cfg_edit *e, const char *text,
				size_t len)
{
	if (e->at == len && len > 0 && text[len - 1] != '\n')
		store_cfg_puts(&e->ins, "\n");
}

/* Replaces the value v of key k by val. */
static void cfg_edit_replace(struct cfg_edit *e, const char *text, size_t len,
			     yaml_document_t *d, yaml_node_t *k,
			     yaml_node_t *v, const char *val)
{
	size_t start = v->start_mark.index, end = cfg_node_end(d, v);
	if (v->start_mark.line > k->end_mark.line) {
		/* a value below its key: the new one goes after the colon */
		start = k->end_mark.index;
		while (start < end && text[start] != ':')
			start++;
		start = start < len ? start + 1 : len;
	}
	e->at = start;
	e->cut = end - start;
	if (start > 0 && text[start - 1] == ':')
		store_cfg_puts(&e->ins, " ");
	store_cfg_puts(&e->ins, val);
	if (end > start && text[end - 1] == '\n')
		store_cfg_puts(&e->ins, "\n");
}

/* Adds key: val to mapping m, or with sub set, key: {sub: val} (a new
 * section), in the mapping's own style and indentation. */
static int cfg_edit_insert(struct cfg_edit *e, const char *text, size_t len,
			   yaml_document_t *d, yaml_node_t *m,
			   const char *key, const char *sub, const char *val)
{
	bool empty = m->data.mapping.pairs.top == m->data.mapping.pairs.start;
	if (m->data.mapping.style == YAML_FLOW_MAPPING_STYLE) {
		/* before the closing brace, which ends the end mark */
		e->at = m->end_mark.index - 1;
		store_cfg_printf(&e->ins, "%s%s: ", empty ? "" : ", ", key);
		if (sub)
			store_cfg_printf(&e->ins, "{%s: %s}", sub, val);
		else
			store_cfg_puts(&e->ins, val);
		return 0;
	}
	size_t indent = yaml_document_get_node(
		d, m->data.mapping.pairs.start[0].key)->start_mark.column;
	/* a new section goes at the very end, after trailing comments; a
	 * new key right after its section's last value */
	e->at = sub ? len : cfg_next_line(text, len, cfg_node_end(d, m));
	cfg_edit_line_start(e, text, len);
	store_cfg_indent(&e->ins, indent);
	store_cfg_printf(&e->ins, "%s:", key);
	if (sub) {
		store_cfg_puts(&e->ins, "\n");
		store_cfg_indent(&e->ins, indent + 2);
		store_cfg_printf(&e->ins, "%s:", sub);
	}
	store_cfg_printf(&e->ins, " %s\n", val);
	return 0;
}

static int cfg_edit_plan(struct cfg_edit *e, const char *file,
			 const char *text, size_t len, yaml_document_t *d,
			 const struct cfg_section *s, const char *sub,
			 const char *sub_yaml, const char *val, char *errbuf,
			 size_t errlen)
{
	yaml_node_t *root = yaml_document_get_root_node(d), *sk, *kk;
	if (!root || store_cfg_is_null(root)) {
		e->at = len;
		cfg_edit_line_start(e, text, len);
		store_cfg_printf(&e->ins, "%s:\n  %s: %s\n", s->name, sub_yaml,
				 val);
		return 0;
	}
	if (root->type != YAML_MAPPING_NODE)
		goto not_mapping;
	yaml_node_t *sv = cfg_pair_find(d, root, s->name, &sk);
	if (!sv)
		return cfg_edit_insert(e, text, len, d, root, s->name, sub_yaml,
				       val);
	if (sv->start_mark.index < sk->end_mark.index)
		goto alias;
	if (store_cfg_is_null(sv) &&
	    sv->start_mark.index == sv->end_mark.index) {
		e->at = cfg_next_line(text, len, sv->start_mark.index);
		cfg_edit_line_start(e, text, len);
		store_cfg_indent(&e->ins, sk->start_mark.column + 2);
		store_cfg_printf(&e->ins, "%s: %s\n", sub_yaml, val);
		return 0;
	}
	if (store_cfg_is_null(sv)) {
		struct cfg_buf flow = { 0 };
		store_cfg_printf(&flow, "{%s: %s}", sub_yaml, val);
		if (flow.failed)
			return -ENOMEM;
		cfg_edit_replace(e, text, len, d, sk, sv, flow.p);
		free(flow.p);
		return 0;
	}
	root = sv;
	if (sv->type != YAML_MAPPING_NODE)
		goto not_mapping;
	yaml_node_t *kv = cfg_pair_find(d, sv, sub, &kk);
	if (!kv)
		return cfg_edit_insert(e, text, len, d, sv, sub_yaml, NULL,
				       val);
	if (kv->start_mark.index < kk->end_mark.index) {
		root = kv;
		goto alias;
	}
	cfg_edit_replace(e, text, len, d, kk, kv, val);
	return 0;
not_mapping:
	store_cfg_set_err(errbuf, errlen, "%s:%zu: expected a mapping", file,
			  root->start_mark.line + 1);
	return SD_ECONFIG;
alias:
	store_cfg_set_err(errbuf, errlen,
			  "%s:%zu: cannot change a value that is an alias",
			  file, root->start_mark.line + 1);
	return SD_ECONFIG;
}

/* The YAML for a list value: value must itself be a YAML list (or empty);
 * it is re-emitted so nothing but the list reaches the file. */
static int cfg_list_text(const char *file, const char *key,
			 const char *value, struct cfg_buf *b, char *errbuf,
			 size_t errlen)
{
	yaml_document_t d;
	int r = store_cfg_parse(file, value, strlen(value), &d, NULL, 0);
	if (r == -ENOMEM)
		return r;
	if (r < 0)
		goto bad;
	yaml_node_t *root = yaml_document_get_root_node(&d);
	store_cfg_puts(b, "[");
	if (root && !store_cfg_is_null(root)) {
		if (root->type != YAML_SEQUENCE_NODE) {
			yaml_document_delete(&d);
			goto bad;
		}
		for (yaml_node_item_t *it = root->data.sequence.items.start;
		     it < root->data.sequence.items.top; it++) {
			yaml_node_t *item = yaml_document_get_node(&d, *it);
			if (!store_cfg_is_text(item)) {
				yaml_document_delete(&d);
				goto bad;
			}
			if (it > root->data.sequence.items.start)
				store_cfg_puts(b, ", ");
			store_cfg_scalar(b, store_cfg_text(item));
		}
	}
	store_cfg_puts(b, "]");
	yaml_document_delete(&d);
	return 0;
bad:
	store_cfg_set_err(errbuf, errlen,
			  "%s: %s: expected a YAML list such as "
			  "[\"*.tmp\", .cache], got '%s'", file, key, value);
	return SD_ECONFIG;
}

static int cfg_write(const char *path, const char *text, size_t len)
{
	const char *slash = strrchr(path, '/');
	char *dir;
	if (!slash)
		dir = strdup(".");
	else
		dir = strndup(path, slash == path ? 1 : (size_t)(slash - path));
	if (!dir)
		return -ENOMEM;
	struct stat st;
	mode_t mode = stat(path, &st) == 0 ? (st.st_mode & 07777) : 0644;
	int r = store_file_write_atomic(dir, slash ? slash + 1 : path, text,
					len, mode);
	free(dir);
	return r;
}

int store_config_set(const char *path, const char *key, const char *value,
		     char *errbuf, size_t errlen)
{
	struct cfg_buf val = { 0 }, sub_yaml = { 0 }, out = { 0 };
	struct cfg_edit e = { 0 };
	struct store_config *c = NULL;
	yaml_document_t doc;
	bool have_doc = false;
	char *text = NULL;
	size_t len = 0;
	int r;

	store_cfg_set_err(errbuf, errlen, "%s", "");
	const char *dot = strchr(key, '.');
	const struct cfg_section *s =
		dot ? store_cfg_section_find(key, (size_t)(dot - key)) : NULL;
	const char *sub = dot ? dot + 1 : "";
	const struct cfg_key *k =
		s && !s->load_entry ? store_cfg_key_find(s, sub) : NULL;
	if (!s || !*sub || (!s->load_entry && !k)) {
		store_cfg_set_err(errbuf, errlen, "%s: unknown key '%s'", path,
				  key);
		return SD_ECONFIG;
	}

	r = store_file_read_all(path, &text, &len);
	if (r == -ENOENT)
		r = (text = strdup("")) ? 0 : -ENOMEM;
	if (r < 0) {
		store_cfg_set_err(errbuf, errlen, "%s: %s", path, strerror(-r));
		goto out;
	}
	if (k && k->type == CFG_LIST)
		r = cfg_list_text(path, key, value, &val, errbuf, errlen);
	else
		store_cfg_scalar(&val, value);
	store_cfg_scalar(&sub_yaml, sub);
	if (r < 0)
		goto out;
	if (val.failed || sub_yaml.failed) {
		r = -ENOMEM;
		goto out;
	}
	r = store_cfg_parse(path, text, len, &doc, errbuf, errlen);
	if (r < 0)
		goto out;
	have_doc = true;
	r = cfg_edit_plan(&e, path, text, len, &doc, s, sub, sub_yaml.p, val.p,
			  errbuf, errlen);
	if (r < 0)
		goto out;
	store_cfg_put(&out, text, e.at);
	store_cfg_put(&out, e.ins.p ? e.ins.p : "", e.ins.len);
	store_cfg_put(&out, text + e.at + e.cut, len - e.at - e.cut);
	if (out.failed || e.ins.failed) {
		r = -ENOMEM;
		goto out;
	}
	r = store_cfg_load_text(path, out.p, out.len, &c, errbuf, errlen);
	if (r < 0)
		goto out;
	r = cfg_write(path, out.p, out.len);
	if (r < 0)
		store_cfg_set_err(errbuf, errlen, "%s: %s", path, strerror(-r));
out:
	if (r == -ENOMEM)
		store_cfg_set_err(errbuf, errlen, "%s: out of memory", path);
	if (have_doc)
		yaml_document_delete(&doc);
	store_config_free(c);
	free(text);
	free(val.p);
	free(sub_yaml.p);
	free(out.p);
	free(e.ins.p);
	return r;
}
