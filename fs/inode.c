/*
 * inode.c — the inode table: which number names which node, and how many
 * references the kernel holds on it.
 *
 * Numbers must be the same on every mount (a script that recorded `ls -i`
 * finds them tomorrow), so they are not handed out in order: each node has
 * a 128-bit key, SHA-256 over what it stands for — (snapshot id, path)
 * built one component at a time (key(child) = H(key(parent), name)), or
 * (snapshot id, device, inode) for a file with hard links, so the links of
 * one backup point share one number. The number is the first 64 bits of
 * the key; when another key already holds that number (or it falls in the
 * reserved range of fixed nodes) the next candidate is H(key, probe) for
 * probe = 1, 2, ... — a sequence that depends only on the key.
 *
 * Lifetime: an inode lives while the kernel's lookup count (nlookup) or
 * our own references (refs: requests in flight, open files, child inodes
 * holding their parent) are non-zero. Whoever brings both to zero unlinks
 * it under the table lock and frees it after dropping the lock; dropping
 * its parent may free the parent in turn (done in a loop, not recursion).
 *
 * Locking: one mutex guards the hash table and every nlookup/refs field.
 * Nothing else is locked while it is held: references on trees and
 * snapshots are taken before and dropped after.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs_i.h"

struct fs_itab {
	pthread_mutex_t lock;
	struct fs_inode **buckets;
	size_t nbuckets;	/* power of two */
	size_t count;
};

static void key_hash(const char *tag, const void *a, size_t alen,
		     const void *b, size_t blen, uint8_t out[FS_KEY_LEN])
{
	uint8_t buf[512];
	size_t tlen = strlen(tag), len = 0;
	sd_id h;

	/* Names are at most 255 bytes, so everything fits; a longer input
	 * would be a caller bug and is hashed in two steps all the same. */
	if (tlen + alen + blen + 2 > sizeof(buf)) {
		struct sd_hasher *hs;
		if (sd_hasher_new(&hs) == 0) {
			sd_hasher_update(hs, tag, tlen + 1);
			sd_hasher_update(hs, a, alen);
			sd_hasher_update(hs, "/", 1);
			sd_hasher_update(hs, b, blen);
			sd_hasher_final(hs, &h);
			sd_hasher_free(hs);
			memcpy(out, h.b, FS_KEY_LEN);
			return;
		}
		blen = sizeof(buf) - tlen - alen - 2;
	}
	memcpy(buf, tag, tlen + 1);
	len = tlen + 1;
	memcpy(buf + len, a, alen);
	len += alen;
	buf[len++] = '/';
	memcpy(buf + len, b, blen);
	len += blen;
	sd_hash(buf, len, &h);
	memcpy(out, h.b, FS_KEY_LEN);
}

void fs_key_snapshot(const sd_id *snap, uint8_t out[FS_KEY_LEN])
{
	key_hash("snapshot", snap->b, SD_ID_LEN, "", 0, out);
}

void fs_key_idlink(const sd_id *snap, uint8_t out[FS_KEY_LEN])
{
	key_hash("idlink", snap->b, SD_ID_LEN, "", 0, out);
}

void fs_key_child(const uint8_t parent[FS_KEY_LEN], const char *name,
		  uint8_t out[FS_KEY_LEN])
{
	key_hash("child", parent, FS_KEY_LEN, name, strlen(name), out);
}

void fs_key_hardlink(const sd_id *snap, uint64_t dev, uint64_t inode,
		     uint8_t out[FS_KEY_LEN])
{
	uint8_t di[16];
	int i;

	for (i = 0; i < 8; i++) {
		di[i] = (uint8_t)(dev >> (8 * i));
		di[8 + i] = (uint8_t)(inode >> (8 * i));
	}
	key_hash("hardlink", snap->b, SD_ID_LEN, di, sizeof(di), out);
}

/* The probe-th candidate number of key. */
static uint64_t key_candidate(const uint8_t key[FS_KEY_LEN], unsigned probe)
{
	uint8_t buf[FS_KEY_LEN + 4];
	uint64_t v = 0;
	const uint8_t *p = key;
	sd_id h;
	int i;

	if (probe > 0) {
		memcpy(buf, key, FS_KEY_LEN);
		for (i = 0; i < 4; i++)
			buf[FS_KEY_LEN + i] = (uint8_t)(probe >> (8 * i));
		sd_hash(buf, sizeof(buf), &h);
		p = h.b;
	}
	for (i = 0; i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static size_t bucket_of(const struct fs_itab *t, uint64_t ino)
{
	/* The numbers are hashes already; mix anyway so that fixed-pattern
	 * low bits of a probe sequence cannot pile up in one bucket. */
	ino ^= ino >> 29;
	ino *= 0xbf58476d1ce4e5b9ull;
	ino ^= ino >> 32;
	return (size_t)(ino & (t->nbuckets - 1));
}

static struct fs_inode *table_find(const struct fs_itab *t, uint64_t ino)
{
	struct fs_inode *e;

	for (e = t->buckets[bucket_of(t, ino)]; e; e = e->hnext)
		if (e->ino == ino)
			return e;
	return NULL;
}

static void table_unlink(struct fs_itab *t, struct fs_inode *in)
{
	struct fs_inode **pp = &t->buckets[bucket_of(t, in->ino)];

	while (*pp && *pp != in)
		pp = &(*pp)->hnext;
	if (*pp) {
		*pp = in->hnext;
		t->count--;
	}
}

/* Doubles the bucket array; on ENOMEM the table just stays denser. */
static void table_grow(struct fs_itab *t)
{
	size_t n = t->nbuckets * 2, i;
	struct fs_inode **nb = calloc(n, sizeof(*nb));
	struct fs_inode **old = t->buckets;
	size_t oldn = t->nbuckets;

	if (!nb)
		return;
	t->buckets = nb;
	t->nbuckets = n;
	for (i = 0; i < oldn; i++) {
		struct fs_inode *e = old[i], *next;
		for (; e; e = next) {
			size_t b = bucket_of(t, e->ino);
			next = e->hnext;
			e->hnext = nb[b];
			nb[b] = e;
		}
	}
	free(old);
}

int fs_itab_new(struct fs_itab **out)
{
	struct fs_itab *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	t->nbuckets = 4096;
	t->buckets = calloc(t->nbuckets, sizeof(*t->buckets));
	if (!t->buckets) {
		free(t);
		return -ENOMEM;
	}
	pthread_mutex_init(&t->lock, NULL);
	*out = t;
	return 0;
}

static bool is_fixed(const struct fs_inode *in)
{
	return in->ino < FS_INO_FIXED_COUNT;
}

/* Frees in and every ancestor whose last reference was in's. */
static void inode_destroy(struct fs *fs, struct fs_inode *in)
{
	struct fs_itab *t = fs->itab;

	while (in) {
		struct fs_inode *parent = in->parent;

		if (in->area && in->area->destroy)
			in->area->destroy(fs, in);
		if (in->tree)
			fs_tree_put(fs->trees, in->tree);
		if (in->snap)
			fs_snap_put(in->snap);
		free(in);
		in = NULL;
		if (parent && !is_fixed(parent)) {
			pthread_mutex_lock(&t->lock);
			if (--parent->refs == 0 && parent->nlookup == 0) {
				table_unlink(t, parent);
				in = parent;
			}
			pthread_mutex_unlock(&t->lock);
		}
	}
}

void fs_itab_free(struct fs *fs, struct fs_itab *t)
{
	size_t i;

	if (!t)
		return;
	/* Children hold their parents, so free leaves first: drop the
	 * kernel's counts, then free whatever no child holds, until empty. */
	while (t->count > 0) {
		struct fs_inode *victim = NULL;

		pthread_mutex_lock(&t->lock);
		for (i = 0; i < t->nbuckets && !victim; i++) {
			struct fs_inode *e;
			for (e = t->buckets[i]; e; e = e->hnext) {
				e->nlookup = 0;
				if (e->refs == 0) {
					victim = e;
					break;
				}
			}
		}
		if (victim)
			table_unlink(t, victim);
		pthread_mutex_unlock(&t->lock);
		if (!victim)
			break;	/* leaked references: leave them */
		inode_destroy(fs, victim);
	}
	pthread_mutex_destroy(&t->lock);
	free(t->buckets);
	free(t);
}

void fs_inode_fixed_set(struct fs *fs, fuse_ino_t ino,
			const struct fs_area_ops *area, uint8_t kind)
{
	struct fs_inode *in = &fs->fixed[ino];

	memset(in, 0, sizeof(*in));
	in->ino = ino;
	in->area = area;
	in->kind = kind;
}

struct fs_inode *fs_inode_get(struct fs *fs, fuse_ino_t ino)
{
	struct fs_itab *t = fs->itab;
	struct fs_inode *in;

	if (ino < FS_INO_FIXED_COUNT)
		return fs->fixed[ino].area ? &fs->fixed[ino] : NULL;
	pthread_mutex_lock(&t->lock);
	in = table_find(t, ino);
	if (in)
		in->refs++;
	pthread_mutex_unlock(&t->lock);
	return in;
}

void fs_inode_hold(struct fs *fs, struct fs_inode *in)
{
	if (is_fixed(in))
		return;
	pthread_mutex_lock(&fs->itab->lock);
	in->refs++;
	pthread_mutex_unlock(&fs->itab->lock);
}

void fs_inode_put(struct fs *fs, struct fs_inode *in)
{
	struct fs_itab *t = fs->itab;
	bool dead = false;

	if (!in || is_fixed(in))
		return;
	pthread_mutex_lock(&t->lock);
	if (--in->refs == 0 && in->nlookup == 0) {
		table_unlink(t, in);
		dead = true;
	}
	pthread_mutex_unlock(&t->lock);
	if (dead)
		inode_destroy(fs, in);
}

int fs_inode_lookup(struct fs *fs, const struct fs_inode_init *init,
		    struct fs_inode **out)
{
	struct fs_itab *t = fs->itab;
	struct fs_inode *fresh, *e;
	unsigned probe = 0;
	uint64_t cand;

	/* Prepared outside the lock with its own references; thrown away
	 * again when the key is already there. */
	fresh = calloc(1, sizeof(*fresh));
	if (!fresh)
		return -ENOMEM;
	memcpy(fresh->key, init->key, FS_KEY_LEN);
	fresh->area = init->area;
	fresh->kind = init->kind;
	fresh->node = init->node;
	fresh->priv = init->priv;
	if (init->snap) {
		fs_snap_hold(init->snap);
		fresh->snap = init->snap;
	}
	if (init->tree) {
		fs_tree_hold(fs->trees, init->tree);
		fresh->tree = init->tree;
	}

	pthread_mutex_lock(&t->lock);
	for (;;) {
		cand = key_candidate(init->key, probe++);
		if (cand < FS_INO_RESERVED)
			continue;
		e = table_find(t, cand);
		if (!e)
			break;
		if (memcmp(e->key, init->key, FS_KEY_LEN) == 0) {
			e->nlookup++;
			e->refs++;
			pthread_mutex_unlock(&t->lock);
			if (fresh->priv && fresh->area->destroy)
				fresh->area->destroy(fs, fresh);
			if (fresh->tree)
				fs_tree_put(fs->trees, fresh->tree);
			if (fresh->snap)
				fs_snap_put(fresh->snap);
			free(fresh);
			*out = e;
			return 0;
		}
	}
	fresh->ino = cand;
	fresh->nlookup = 1;
	fresh->refs = 1;
	if (init->parent) {
		fresh->parent = init->parent;
		if (!is_fixed(init->parent))
			init->parent->refs++;
	}
	fresh->hnext = t->buckets[bucket_of(t, cand)];
	t->buckets[bucket_of(t, cand)] = fresh;
	if (++t->count > t->nbuckets)
		table_grow(t);
	pthread_mutex_unlock(&t->lock);
	*out = fresh;
	return 0;
}

void fs_inode_forget(struct fs *fs, fuse_ino_t ino, uint64_t n)
{
	struct fs_itab *t = fs->itab;
	struct fs_inode *in;
	bool dead = false;

	if (ino < FS_INO_FIXED_COUNT)
		return;
	pthread_mutex_lock(&t->lock);
	in = table_find(t, ino);
	if (in) {
		in->nlookup = n >= in->nlookup ? 0 : in->nlookup - n;
		if (in->nlookup == 0 && in->refs == 0) {
			table_unlink(t, in);
			dead = true;
		}
	}
	pthread_mutex_unlock(&t->lock);
	if (dead)
		inode_destroy(fs, in);
}

fuse_ino_t fs_inode_number(struct fs *fs, const uint8_t key[FS_KEY_LEN])
{
	struct fs_itab *t = fs->itab;
	unsigned probe = 0;
	uint64_t cand;
	struct fs_inode *e;

	pthread_mutex_lock(&t->lock);
	for (;;) {
		cand = key_candidate(key, probe++);
		if (cand < FS_INO_RESERVED)
			continue;
		e = table_find(t, cand);
		if (!e || memcmp(e->key, key, FS_KEY_LEN) == 0)
			break;
	}
	pthread_mutex_unlock(&t->lock);
	return cand;
}

size_t fs_inode_count(struct fs *fs)
{
	size_t n;

	pthread_mutex_lock(&fs->itab->lock);
	n = fs->itab->count;
	pthread_mutex_unlock(&fs->itab->lock);
	return n;
}

char *fs_inode_path(const struct fs_inode *in)
{
	const struct fs_inode *p;
	size_t len = 0, pos;
	char *s;

	for (p = in; p; p = p->parent) {
		if (p->kind == FS_KIND_NODE)
			len += strlen(p->node->name) + 1;
		else if (p->kind == FS_KIND_SNAP_ROOT)
			len += strlen(p->snap->name) + sizeof("snapshots/");
	}
	s = malloc(len + 1);
	if (!s)
		return NULL;
	pos = len;
	s[pos] = '\0';
	for (p = in; p; p = p->parent) {
		const char *name;
		size_t n;

		if (p->kind == FS_KIND_NODE)
			name = p->node->name;
		else if (p->kind == FS_KIND_SNAP_ROOT)
			name = p->snap->name;
		else
			continue;
		n = strlen(name);
		if (pos != len)
			s[--pos] = '/';
		pos -= n;
		memcpy(s + pos, name, n);
		if (p->kind == FS_KIND_SNAP_ROOT) {
			s[--pos] = '/';
			pos -= sizeof("snapshots") - 1;
			memcpy(s + pos, "snapshots", sizeof("snapshots") - 1);
		}
	}
	/* pos is where the string begins; slide it to the front. */
	memmove(s, s + pos, len - pos + 1);
	return s;
}
