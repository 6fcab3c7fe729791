/*
 * idset.c — a hash set of 32-byte ids.
 *
 * Ids are SHA-256 outputs, so their first 8 bytes are already a uniform
 * hash: no hashing is needed, only linear probing in a power-of-two table
 * kept at most half full. An occupancy bitmap (not a reserved "empty" id)
 * marks used slots, so every id, even all-zero, can be stored.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store_i.h"

struct store_idset {
	sd_id *slots;
	uint64_t *used;		/* bitmap, one bit per slot */
	size_t cap;		/* power of two */
	size_t count;
};

static size_t id_hash(const sd_id *id)
{
	uint64_t h;
	memcpy(&h, id->b, sizeof(h));
	return (size_t)h;
}

static bool slot_used(const struct store_idset *s, size_t i)
{
	return s->used[i / 64] >> (i % 64) & 1;
}

static int idset_alloc(struct store_idset *s, size_t cap)
{
	s->slots = malloc(cap * sizeof(*s->slots));
	s->used = calloc((cap + 63) / 64, sizeof(*s->used));
	if (!s->slots || !s->used) {
		free(s->slots);
		free(s->used);
		return -ENOMEM;
	}
	s->cap = cap;
	s->count = 0;
	return 0;
}

int store_idset_new(struct store_idset **out)
{
	struct store_idset *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	if (idset_alloc(s, 1024) < 0) {
		free(s);
		return -ENOMEM;
	}
	*out = s;
	return 0;
}

void store_idset_free(struct store_idset *s)
{
	if (!s)
		return;
	free(s->slots);
	free(s->used);
	free(s);
}

/* Index of id's slot, or of the empty slot where it would go. */
static size_t idset_probe(const struct store_idset *s, const sd_id *id)
{
	size_t mask = s->cap - 1, i = id_hash(id) & mask;
	while (slot_used(s, i) && memcmp(s->slots[i].b, id->b, SD_ID_LEN))
		i = (i + 1) & mask;
	return i;
}

static void idset_place(struct store_idset *s, size_t i, const sd_id *id)
{
	s->slots[i] = *id;
	s->used[i / 64] |= 1ull << (i % 64);
	s->count++;
}

static int idset_grow(struct store_idset *s)
{
	struct store_idset old = *s;
	if (idset_alloc(s, old.cap * 2) < 0) {
		*s = old;
		return -ENOMEM;
	}
	for (size_t i = 0; i < old.cap; i++)
		if (slot_used(&old, i))
			idset_place(s, idset_probe(s, &old.slots[i]),
				    &old.slots[i]);
	free(old.slots);
	free(old.used);
	return 0;
}

int store_idset_add(struct store_idset *s, const sd_id *id)
{
	if ((s->count + 1) * 2 > s->cap && idset_grow(s) < 0)
		return -ENOMEM;
	size_t i = idset_probe(s, id);
	if (slot_used(s, i))
		return 0;
	idset_place(s, i, id);
	return 1;
}

bool store_idset_has(const struct store_idset *s, const sd_id *id)
{
	return slot_used(s, idset_probe(s, id));
}

size_t store_idset_count(const struct store_idset *s)
{
	return s->count;
}
