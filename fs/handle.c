/*
 * handle.c — what an open file or directory carries between requests.
 *
 * The kernel names an open file by the 64-bit fh we gave it at open. A
 * pointer would be the obvious fh, but requests run on several threads in
 * any order: a READ taken off /dev/fuse by one thread can still be running
 * when another thread handles the RELEASE of the same file (a reader
 * killed in the middle of a read does exactly this), and a freed pointer
 * would then be read. So fh is an id that is never reused, looked up in
 * this table under its lock and referenced for the length of a request;
 * release unlinks it, and whoever drops the last reference frees the
 * object (with the destructor given at open).
 *
 * One mutex guards the table and every refs field; destructors run
 * without it.
 */
#include <errno.h>
#include <stdlib.h>

#include "fs_i.h"

#define NBUCKETS 256

struct fs_handle {
	uint64_t id;
	void *obj;
	void (*destroy)(struct fs *fs, void *obj);
	unsigned refs;		/* the open itself + requests in flight */
	struct fs_handle *next;
};

struct fs_handles {
	pthread_mutex_t lock;
	uint64_t next_id;
	size_t count;
	struct fs_handle *buckets[NBUCKETS];
};

int fs_handles_new(struct fs_handles **out)
{
	struct fs_handles *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	pthread_mutex_init(&t->lock, NULL);
	t->next_id = 1;
	*out = t;
	return 0;
}

void fs_handles_free(struct fs *fs, struct fs_handles *t)
{
	size_t i;

	if (!t)
		return;
	/* The session is over: what the kernel never released goes now. */
	for (i = 0; i < NBUCKETS; i++) {
		struct fs_handle *h = t->buckets[i], *next;
		for (; h; h = next) {
			next = h->next;
			if (h->destroy)
				h->destroy(fs, h->obj);
			free(h);
		}
	}
	pthread_mutex_destroy(&t->lock);
	free(t);
}

int fs_handle_open(struct fs *fs, void *obj,
		   void (*destroy)(struct fs *fs, void *obj), uint64_t *out)
{
	struct fs_handles *t = fs->handles;
	struct fs_handle *h = calloc(1, sizeof(*h));

	if (!h)
		return -ENOMEM;
	h->obj = obj;
	h->destroy = destroy;
	h->refs = 1;
	pthread_mutex_lock(&t->lock);
	h->id = t->next_id++;
	h->next = t->buckets[h->id % NBUCKETS];
	t->buckets[h->id % NBUCKETS] = h;
	t->count++;
	pthread_mutex_unlock(&t->lock);
	*out = h->id;
	return 0;
}

static struct fs_handle *find(struct fs_handles *t, uint64_t id,
			      struct fs_handle ***link)
{
	struct fs_handle **pp = &t->buckets[id % NBUCKETS];

	for (; *pp; pp = &(*pp)->next) {
		if ((*pp)->id == id) {
			if (link)
				*link = pp;
			return *pp;
		}
	}
	return NULL;
}

struct fs_handle *fs_handle_get(struct fs *fs, uint64_t id, void **obj)
{
	struct fs_handles *t = fs->handles;
	struct fs_handle *h;

	pthread_mutex_lock(&t->lock);
	h = find(t, id, NULL);
	if (h)
		h->refs++;
	pthread_mutex_unlock(&t->lock);
	*obj = h ? h->obj : NULL;
	return h;
}

void fs_handle_put(struct fs *fs, struct fs_handle *h)
{
	struct fs_handles *t = fs->handles;
	bool dead;

	if (!h)
		return;
	pthread_mutex_lock(&t->lock);
	dead = --h->refs == 0;
	pthread_mutex_unlock(&t->lock);
	if (dead) {
		if (h->destroy)
			h->destroy(fs, h->obj);
		free(h);
	}
}

void fs_handle_close(struct fs *fs, uint64_t id)
{
	struct fs_handles *t = fs->handles;
	struct fs_handle *h, **link = NULL;

	pthread_mutex_lock(&t->lock);
	h = find(t, id, &link);
	if (h) {
		*link = h->next;
		t->count--;
	}
	pthread_mutex_unlock(&t->lock);
	/* Drops the reference the open held. */
	fs_handle_put(fs, h);
}

size_t fs_handles_count(struct fs *fs)
{
	size_t n;

	pthread_mutex_lock(&fs->handles->lock);
	n = fs->handles->count;
	pthread_mutex_unlock(&fs->handles->lock);
	return n;
}
