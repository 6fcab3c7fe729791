/*
 * tree_cache.c — decoded directory blobs, shared and bounded.
 *
 * Every lookup and readdir inside a backup point needs the decoded tree of
 * the directory, and every inode the kernel knows points into the tree that
 * holds its node (no copy of names, xattrs or extent lists). So trees are
 * refcounted: a referenced tree stays; an unreferenced one waits on an LRU
 * list, bounded by an estimate of its memory, in case it is wanted again
 * (`ls -lR` twice, or a directory shared by many backup points — equal
 * directories are one blob, so they are one cached tree).
 *
 * A miss decodes outside the lock; when two threads race on the same id,
 * the second copy is dropped. One mutex guards the table, the LRU list and
 * every refs field.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs_i.h"

struct fs_trees {
	pthread_mutex_t lock;
	struct store_repo *repo;
	struct fs_tree **buckets;
	size_t nbuckets, count;
	struct fs_tree *lru_head, *lru_tail;	/* refs == 0, oldest first */
	size_t lru_cost, cap;
};

static size_t bucket_of(const struct fs_trees *c, const sd_id *id)
{
	uint64_t v;

	memcpy(&v, id->b, sizeof(v));
	return (size_t)(v & (c->nbuckets - 1));
}

static struct fs_tree *find(const struct fs_trees *c, const sd_id *id)
{
	struct fs_tree *t;

	for (t = c->buckets[bucket_of(c, id)]; t; t = t->hnext)
		if (sd_id_cmp(&t->id, id) == 0)
			return t;
	return NULL;
}

static void lru_unlink(struct fs_trees *c, struct fs_tree *t)
{
	if (t->prev)
		t->prev->next = t->next;
	else
		c->lru_head = t->next;
	if (t->next)
		t->next->prev = t->prev;
	else
		c->lru_tail = t->prev;
	t->prev = t->next = NULL;
	c->lru_cost -= t->cost;
}

static void lru_append(struct fs_trees *c, struct fs_tree *t)
{
	t->next = NULL;
	t->prev = c->lru_tail;
	if (c->lru_tail)
		c->lru_tail->next = t;
	else
		c->lru_head = t;
	c->lru_tail = t;
	c->lru_cost += t->cost;
}

static void table_unlink(struct fs_trees *c, struct fs_tree *t)
{
	struct fs_tree **pp = &c->buckets[bucket_of(c, &t->id)];

	while (*pp && *pp != t)
		pp = &(*pp)->hnext;
	if (*pp) {
		*pp = t->hnext;
		c->count--;
	}
}

static void table_grow(struct fs_trees *c)
{
	size_t n = c->nbuckets * 2, i;
	struct fs_tree **nb = calloc(n, sizeof(*nb));
	struct fs_tree **old = c->buckets;
	size_t oldn = c->nbuckets;

	if (!nb)
		return;
	c->buckets = nb;
	c->nbuckets = n;
	for (i = 0; i < oldn; i++) {
		struct fs_tree *t = old[i], *next;
		for (; t; t = next) {
			size_t b = bucket_of(c, &t->id);
			next = t->hnext;
			t->hnext = nb[b];
			nb[b] = t;
		}
	}
	free(old);
}

/* What a decoded tree costs in memory, roughly. */
static size_t tree_cost(const struct store_tree *t)
{
	size_t cost = sizeof(*t) + t->n * sizeof(struct store_node), i, j;

	for (i = 0; i < t->n; i++) {
		const struct store_node *n = &t->nodes[i];
		cost += strlen(n->name) + 1;
		cost += n->nextents * sizeof(struct store_extent);
		if (n->target)
			cost += strlen(n->target) + 1;
		for (j = 0; j < n->nxattrs; j++)
			cost += sizeof(struct store_xattr) + n->xattrs[j].len +
				strlen(n->xattrs[j].name) + 1;
	}
	return cost;
}

static void tree_free(struct fs_tree *t)
{
	store_tree_free(t->t);
	free(t);
}

int fs_trees_new(struct store_repo *repo, size_t cap, struct fs_trees **out)
{
	struct fs_trees *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->nbuckets = 1024;
	c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
	if (!c->buckets) {
		free(c);
		return -ENOMEM;
	}
	c->repo = repo;
	c->cap = cap;
	pthread_mutex_init(&c->lock, NULL);
	*out = c;
	return 0;
}

void fs_trees_free(struct fs_trees *c)
{
	size_t i;

	if (!c)
		return;
	for (i = 0; i < c->nbuckets; i++) {
		struct fs_tree *t = c->buckets[i], *next;
		for (; t; t = next) {
			next = t->hnext;
			tree_free(t);
		}
	}
	pthread_mutex_destroy(&c->lock);
	free(c->buckets);
	free(c);
}

int fs_tree_get(struct fs_trees *c, const sd_id *id, struct fs_tree **out)
{
	struct fs_tree *t, *fresh;
	struct store_tree *st = NULL;
	int r;

	pthread_mutex_lock(&c->lock);
	t = find(c, id);
	if (t) {
		if (t->refs++ == 0)
			lru_unlink(c, t);
		pthread_mutex_unlock(&c->lock);
		*out = t;
		return 0;
	}
	pthread_mutex_unlock(&c->lock);

	r = store_tree_load(c->repo, id, &st);
	if (r < 0)
		return r;
	fresh = calloc(1, sizeof(*fresh));
	if (!fresh) {
		store_tree_free(st);
		return -ENOMEM;
	}
	fresh->id = *id;
	fresh->t = st;
	fresh->cost = tree_cost(st);
	fresh->refs = 1;

	pthread_mutex_lock(&c->lock);
	t = find(c, id);
	if (t) {
		if (t->refs++ == 0)
			lru_unlink(c, t);
	} else {
		size_t b = bucket_of(c, id);
		fresh->hnext = c->buckets[b];
		c->buckets[b] = fresh;
		if (++c->count > c->nbuckets)
			table_grow(c);
		t = fresh;
		fresh = NULL;
	}
	pthread_mutex_unlock(&c->lock);
	if (fresh)
		tree_free(fresh);
	*out = t;
	return 0;
}

void fs_tree_hold(struct fs_trees *c, struct fs_tree *t)
{
	pthread_mutex_lock(&c->lock);
	if (t->refs++ == 0)
		lru_unlink(c, t);
	pthread_mutex_unlock(&c->lock);
}

void fs_tree_put(struct fs_trees *c, struct fs_tree *t)
{
	struct fs_tree *dead = NULL;

	if (!t)
		return;
	pthread_mutex_lock(&c->lock);
	if (--t->refs == 0) {
		lru_append(c, t);
		while (c->lru_cost > c->cap && c->lru_head) {
			struct fs_tree *v = c->lru_head;
			lru_unlink(c, v);
			table_unlink(c, v);
			v->hnext = dead;
			dead = v;
		}
	}
	pthread_mutex_unlock(&c->lock);
	while (dead) {
		struct fs_tree *next = dead->hnext;
		tree_free(dead);
		dead = next;
	}
}
