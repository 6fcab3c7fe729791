/*
 * hardlinks.c — the inodes with several names met during one backup.
 *
 * The first name of such an inode is read; later names share its extents.
 * Open addressing on (dev, inode), so a tree with many thousands of hard
 * links (package caches, rsnapshot-style trees) costs O(1) per name.
 */
#include <errno.h>
#include <stdlib.h>

#include "store_i.h"

static size_t slot_of(uint64_t dev, uint64_t inode, size_t mask)
{
	uint64_t h = (inode ^ (dev * 0x9e3779b97f4a7c15ull)) *
		     0xff51afd7ed558ccdull;
	return (size_t)(h ^ (h >> 29)) & mask;
}

const struct store_hardlink *store_hardlinks_find(const struct store_hardlinks *t,
						  uint64_t dev, uint64_t inode)
{
	if (!t->cap)
		return NULL;
	for (size_t i = slot_of(dev, inode, t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
		const struct store_hardlink *h = &t->slots[i];
		if (!h->used)
			return NULL;
		if (h->dev == dev && h->inode == inode)
			return h;
	}
}

static int grow(struct store_hardlinks *t)
{
	size_t cap = t->cap ? t->cap * 2 : 64;
	struct store_hardlink *slots = calloc(cap, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	for (size_t k = 0; k < t->cap; k++) {
		const struct store_hardlink *h = &t->slots[k];
		if (!h->used)
			continue;
		size_t i = slot_of(h->dev, h->inode, cap - 1);
		while (slots[i].used)
			i = (i + 1) & (cap - 1);
		slots[i] = *h;
	}
	free(t->slots);
	t->slots = slots;
	t->cap = cap;
	return 0;
}

int store_hardlinks_add(struct store_hardlinks *t, const struct store_node *n)
{
	if ((t->count + 1) * 2 > t->cap) {
		int r = grow(t);
		if (r < 0)
			return r;
	}
	size_t i = slot_of(n->dev, n->inode, t->cap - 1);
	while (t->slots[i].used) {
		if (t->slots[i].dev == n->dev && t->slots[i].inode == n->inode)
			return 0;
		i = (i + 1) & (t->cap - 1);
	}
	struct store_node tmp = { 0 };
	int r = store_node_extents_copy(&tmp, n->extents, n->nextents);
	if (r < 0)
		return r;
	t->slots[i] = (struct store_hardlink){ n->dev, n->inode, tmp.extents,
					       tmp.nextents, true };
	t->count++;
	return 0;
}

void store_hardlinks_free(struct store_hardlinks *t)
{
	for (size_t i = 0; i < t->cap; i++)
		free(t->slots[i].extents);
	free(t->slots);
	*t = (struct store_hardlinks){ 0 };
}
