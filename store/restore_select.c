/*
 * restore_select.c — which paths a restore writes, and whether it may.
 *
 * Includes are normalised ("./a//b/" is "a/b"), sorted, resolved in the
 * snapshot to the node of every component (a missing one is SD_ENOTFOUND,
 * named), and pruned to the outermost of nested ones. Restoring one creates
 * its parent directories with their stored metadata, once when includes
 * share them, then hands the selected node to the walker in restore.c.
 *
 * The pre-check is the restore's first phase. It runs only when the target
 * already exists and overwrite is off: it walks the selection against the
 * target and refuses (SD_EEXIST) before anything is written when a
 * non-directory path exists. It descends only into directories that exist
 * on both sides, and keeps the trees it loaded for the second phase, so no
 * tree is loaded twice.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "restore_i.h"

/* Drops empty and "." components and extra slashes. */
static char *include_normalise(const char *in)
{
	char *out = malloc(strlen(in) + 1);
	if (!out)
		return NULL;
	size_t o = 0;
	const char *p = in;
	while (*p) {
		size_t len = strcspn(p, "/");
		if (len > 0 && !(len == 1 && p[0] == '.')) {
			if (o)
				out[o++] = '/';
			memcpy(out + o, p, len);
			o += len;
		}
		p += len;
		p += strspn(p, "/");
	}
	out[o] = '\0';
	return out;
}

static int selection_cmp(const void *a, const void *b)
{
	return strcmp(((const struct selection *)a)->path,
		      ((const struct selection *)b)->path);
}

/* Is path a or something inside it? */
static bool path_within(const char *path, const char *a)
{
	size_t la = strlen(a);
	return strncmp(path, a, la) == 0 && (path[la] == '/' || !path[la]);
}

void store_restore_selections_free(struct selection *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(s[i].path);
		free(s[i].chain);
	}
	free(s);
}

/* Normalises and sorts the includes. *n is 0 when the whole snapshot is
 * selected. */
int store_restore_selections_make(const struct store_restore_options *o,
				  struct selection **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	if (o->nincludes == 0)
		return 0;
	struct selection *s = calloc(o->nincludes, sizeof(*s));
	if (!s)
		return -ENOMEM;
	size_t k = 0;
	bool all = false;
	for (size_t i = 0; i < o->nincludes; i++) {
		char *p = o->includes[i] ? include_normalise(o->includes[i])
					 : NULL;
		if (!p) {
			store_restore_selections_free(s, k);
			return o->includes[i] ? -ENOMEM : SD_EUSAGE;
		}
		all = all || !*p;
		s[k++].path = p;
	}
	if (all) {
		store_restore_selections_free(s, k);
		return 0;
	}
	if (k > 1)
		qsort(s, k, sizeof(*s), selection_cmp);
	*out = s;
	*n = k;
	return 0;
}

/* Keeps only the outermost of nested (or repeated) selections. */
static void selections_prune(struct selection *s, size_t *n)
{
	size_t kept = 0;
	for (size_t i = 0; i < *n; i++) {
		bool inside = false;
		for (size_t j = 0; j < kept && !inside; j++)
			inside = path_within(s[i].path, s[j].path);
		if (inside) {
			free(s[i].path);
			free(s[i].chain);
		} else {
			s[kept++] = s[i];
		}
	}
	*n = kept;
}

/* Finds every component of s->path; SD_ENOTFOUND names the include. */
static int selection_resolve(struct restore *rs, struct store_tree *root,
			     struct selection *s)
{
	size_t depth = 1;
	for (const char *p = s->path; *p; p++)
		depth += *p == '/';
	s->chain = calloc(depth, sizeof(*s->chain));
	char *copy = strdup(s->path);
	int r = -ENOMEM;
	if (!s->chain || !copy)
		goto out;
	struct store_tree *t = root;
	char *save = NULL;
	r = 0;
	for (char *c = strtok_r(copy, "/", &save); c;
	     c = strtok_r(NULL, "/", &save)) {
		const struct store_node *n = t ? store_tree_find(t, c) : NULL;
		if (!n) {
			store_restore_report_warn(rs, s->path, SD_ENOTFOUND);
			r = SD_ENOTFOUND;
			goto out;
		}
		s->chain[s->depth++] = n;
		t = NULL;
		if (n->type == STORE_NODE_DIR && s->depth < depth) {
			bool owned;
			r = store_restore_tree_get(rs, &n->subtree, true, &t,
						   &owned);
			if (r < 0)
				goto out;
		}
	}
out:
	free(copy);
	return r;
}

/* Resolves every selection in root, then prunes the nested ones. On failure
 * *n is unchanged, so the caller frees them all. */
int store_restore_selections_resolve(struct restore *rs,
				     struct store_tree *root,
				     struct selection *s, size_t *n)
{
	int r = 0;
	for (size_t i = 0; i < *n && r == 0; i++)
		r = selection_resolve(rs, root, &s[i]);
	if (r < 0)
		return r;
	selections_prune(s, n);
	return 0;
}

/* ---------------------------------------------------------------- first phase */

static int conflict(struct restore *rs, const char *dpath, const char *name)
{
	char *p = store_path_join(dpath, name);
	store_restore_report_warn(rs, p ? p : dpath, SD_EEXIST);
	free(p);
	return SD_EEXIST;
}

/* SD_EEXIST (warned) when n or anything below it exists in dfd as a
 * non-directory; directories present on both sides are walked. */
static int precheck_node(struct restore *rs, int dfd, const char *dpath,
			 const struct store_node *n)
{
	struct stat st;
	if (fstatat(dfd, n->name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (n->type != STORE_NODE_DIR || !S_ISDIR(st.st_mode))
		return conflict(rs, dpath, n->name);
	struct store_tree *t;
	bool owned;
	int r = store_restore_tree_get(rs, &n->subtree, true, &t, &owned);
	if (r == SD_ECORRUPT || r == SD_ENOTFOUND)
		return 0; /* the second phase fails this directory, named */
	if (r < 0)
		return r;
	int fd = openat(dfd, n->name,
			O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	char *path = store_path_join(dpath, n->name);
	r = path ? 0 : -ENOMEM;
	for (size_t i = 0; r == 0 && i < t->n; i++)
		r = precheck_node(rs, fd, path, &t->nodes[i]);
	free(path);
	close(fd);
	return r;
}

static int precheck_selection(struct restore *rs, int tfd,
			      const struct selection *s)
{
	int dfd = tfd, r = 0;
	char *dpath = strdup(rs->o->target);
	if (!dpath)
		return -ENOMEM;
	for (size_t i = 0; i + 1 < s->depth && r == 0; i++) {
		const char *name = s->chain[i]->name;
		struct stat st;
		if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			r = errno == ENOENT ? 1 : -errno;
			break;
		}
		if (!S_ISDIR(st.st_mode)) {
			r = conflict(rs, dpath, name);
			break;
		}
		int fd = openat(dfd, name,
				O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		char *p = store_path_join(dpath, name);
		r = fd < 0 ? -errno : p ? 0 : -ENOMEM;
		if (dfd != tfd)
			close(dfd);
		dfd = fd;
		free(dpath);
		dpath = p;
		if (fd < 0 || !p)
			break;
	}
	if (r == 0)
		r = precheck_node(rs, dfd, dpath, s->chain[s->depth - 1]);
	if (dfd >= 0 && dfd != tfd)
		close(dfd);
	free(dpath);
	return r < 0 ? r : 0;
}

/* The whole snapshot (nsel 0), or each selection, against the target. */
int store_restore_precheck(struct restore *rs, int tfd,
			   const struct store_tree *root,
			   const struct selection *sel, size_t nsel)
{
	int r = 0;
	for (size_t i = 0; i < root->n && nsel == 0 && r == 0; i++)
		r = precheck_node(rs, tfd, rs->o->target, &root->nodes[i]);
	for (size_t i = 0; i < nsel && r == 0; i++)
		r = precheck_selection(rs, tfd, &sel[i]);
	return r;
}

/* ---------------------------------------------------------------- second phase */

/* Was the i-th parent of sel[k] made for an earlier selection? */
static bool parent_made(const struct selection *sel, size_t k, size_t i)
{
	for (size_t t = 0; t < k; t++) {
		if (sel[t].depth <= i + 1)
			continue;
		size_t j = 0;
		while (j <= i && sel[t].chain[j] == sel[k].chain[j])
			j++;
		if (j > i)
			return true;
	}
	return false;
}

/* Creates the parents of the selected node sel[k] with their stored
 * metadata (once when includes share them), then restores the node. */
int store_restore_selection_restore(struct restore *rs, struct rdir *root,
				    const struct selection *sel, size_t k)
{
	const struct selection *s = &sel[k];
	struct rdir *cur = root;
	atomic_fetch_add(&root->refs, 1);
	int r = 0;
	for (size_t i = 0; i + 1 < s->depth; i++) {
		const struct store_node *n = s->chain[i];
		char *path = store_path_join(cur->path, n->name);
		int fd = path ? store_restore_dir_make(rs, cur->fd, n->name)
			      : -ENOMEM;
		if (fd < 0) {
			if (path)
				store_restore_item_fail(rs, path, NULL, fd);
			free(path);
			r = path ? 0 : fd;
			goto out;
		}
		if (!parent_made(sel, k, i)) {
			r = store_restore_meta_record(rs, path, n);
			atomic_fetch_add(&rs->dirs, r == 0);
		}
		struct rdir *d =
			r == 0 ? store_restore_rdir_new(fd, path, NULL, false)
			       : NULL;
		if (!d) {
			close(fd);
			free(path);
			r = -ENOMEM;
			goto out;
		}
		store_restore_rdir_put(cur);
		cur = d;
	}
	r = store_restore_node_restore(rs, cur, s->chain[s->depth - 1]);
out:
	store_restore_rdir_put(cur);
	return r;
}
