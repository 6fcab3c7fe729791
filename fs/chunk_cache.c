/*
 * chunk_cache.c — verified plain chunks, shared by all readers, bounded,
 * with read-ahead of the next chunks on a worker thread.
 *
 * A chunk is ~1 MiB of plain bytes and the kernel reads at most 1 MiB at a
 * time (usually 128 KiB), so one chunk serves many reads: decompressing and
 * hashing it once is the whole game. Entries move through
 *
 *     (absent) --get/prefetch--> LOADING --store_blob_get ok--> READY
 *                                   \--error--> FAILED (unlinked at once)
 *
 * Only one thread loads a given id; others that want it wait on `loaded`
 * (so a reader that catches up with the read-ahead worker waits for that
 * load instead of doing it twice). A failed load is never cached: the next
 * read tries again, and the error goes to whoever waited.
 *
 * READY entries sit on an LRU list; when the bytes held pass the cap, the
 * oldest unreferenced ones go. A referenced entry stays until its readers
 * are done (fuse_reply_iov points into it), even if evicted from the table.
 *
 * The read-ahead queue is a small ring of ids; when it is full a prefetch is
 * dropped (it is only a hint). Workers run until fs_chunks_free().
 *
 * One mutex guards the table, the LRU list, the queue, every refs/state
 * field and the counters. Buffers are freed after dropping it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs_i.h"

#define QUEUE_CAP 32
#define WORKERS 2

enum { LOADING, READY, FAILED };

struct entry {
	struct fs_chunk pub;	/* first: fs_chunk pointers are entries */
	int state;
	int err;
	unsigned refs;
	bool in_table;
	bool prefetched;	/* loaded ahead and not read yet */
	struct entry *hnext, *prev, *next;
};

struct fs_chunks {
	pthread_mutex_t lock;
	pthread_cond_t loaded;
	pthread_cond_t work;
	struct store_repo *repo;
	struct entry **buckets;
	size_t nbuckets, count;
	struct entry *lru_head, *lru_tail;
	size_t bytes, cap;
	sd_id queue[QUEUE_CAP];
	size_t qhead, qlen;
	bool stop;
	pthread_t workers[WORKERS];
	unsigned nworkers;
	struct fs_cache_stats stats;
};

static size_t bucket_of(const struct fs_chunks *c, const sd_id *id)
{
	uint64_t v;

	memcpy(&v, id->b, sizeof(v));
	return (size_t)(v & (c->nbuckets - 1));
}

static struct entry *find(const struct fs_chunks *c, const sd_id *id)
{
	struct entry *e;

	for (e = c->buckets[bucket_of(c, id)]; e; e = e->hnext)
		if (memcmp(e->pub.id.b, id->b, SD_ID_LEN) == 0)
			return e;
	return NULL;
}

static void table_insert(struct fs_chunks *c, struct entry *e)
{
	size_t b = bucket_of(c, &e->pub.id);

	e->hnext = c->buckets[b];
	c->buckets[b] = e;
	e->in_table = true;
	c->count++;
}

static void table_unlink(struct fs_chunks *c, struct entry *e)
{
	struct entry **pp = &c->buckets[bucket_of(c, &e->pub.id)];

	while (*pp && *pp != e)
		pp = &(*pp)->hnext;
	if (*pp) {
		*pp = e->hnext;
		c->count--;
	}
	e->in_table = false;
}

static void lru_unlink(struct fs_chunks *c, struct entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		c->lru_head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		c->lru_tail = e->prev;
	e->prev = e->next = NULL;
}

static void lru_append(struct fs_chunks *c, struct entry *e)
{
	e->next = NULL;
	e->prev = c->lru_tail;
	if (c->lru_tail)
		c->lru_tail->next = e;
	else
		c->lru_head = e;
	c->lru_tail = e;
}

static void entry_free(struct entry *e)
{
	free((void *)e->pub.data);
	free(e);
}

/* Unlinks unreferenced entries, oldest first, until the cache fits. They
 * are chained on *dead for the caller to free without the lock. */
static void evict(struct fs_chunks *c, struct entry **dead)
{
	struct entry *e = c->lru_head, *next;

	while (c->bytes > c->cap && e) {
		next = e->next;
		if (e->refs == 0) {
			lru_unlink(c, e);
			table_unlink(c, e);
			c->bytes -= e->pub.len;
			e->hnext = *dead;
			*dead = e;
		}
		e = next;
	}
}

static void free_chain(struct entry *dead)
{
	while (dead) {
		struct entry *next = dead->hnext;
		entry_free(dead);
		dead = next;
	}
}

/* Loads e (LOADING, in the table, referenced by the caller) without the
 * lock held on entry or exit. */
static int entry_load(struct fs_chunks *c, struct entry *e)
{
	uint8_t *data = NULL;
	size_t len = 0;
	struct entry *dead = NULL;
	int r;

	r = store_blob_get(c->repo, &e->pub.id, &data, &len);
	pthread_mutex_lock(&c->lock);
	if (r < 0) {
		e->state = FAILED;
		e->err = r;
		table_unlink(c, e);
		c->stats.errors++;
	} else {
		e->pub.data = data;
		e->pub.len = len;
		e->state = READY;
		c->bytes += len;
		lru_append(c, e);
		evict(c, &dead);
	}
	pthread_cond_broadcast(&c->loaded);
	pthread_mutex_unlock(&c->lock);
	free_chain(dead);
	return r;
}

static void *worker_main(void *arg)
{
	struct fs_chunks *c = arg;
	struct entry *e;
	sd_id id;

	pthread_mutex_lock(&c->lock);
	while (!c->stop) {
		if (c->qlen == 0) {
			pthread_cond_wait(&c->work, &c->lock);
			continue;
		}
		id = c->queue[c->qhead];
		c->qhead = (c->qhead + 1) % QUEUE_CAP;
		c->qlen--;
		if (find(c, &id))
			continue;
		e = calloc(1, sizeof(*e));
		if (!e)
			continue;
		e->pub.id = id;
		e->state = LOADING;
		e->refs = 1;
		e->prefetched = true;
		table_insert(c, e);
		c->stats.prefetches++;
		pthread_mutex_unlock(&c->lock);

		entry_load(c, e);

		pthread_mutex_lock(&c->lock);
		if (--e->refs == 0 && !e->in_table) {
			pthread_mutex_unlock(&c->lock);
			entry_free(e);
			pthread_mutex_lock(&c->lock);
		}
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

int fs_chunks_new(struct store_repo *repo, size_t cap, struct fs_chunks **out)
{
	struct fs_chunks *c = calloc(1, sizeof(*c));
	unsigned i;

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
	pthread_cond_init(&c->loaded, NULL);
	pthread_cond_init(&c->work, NULL);
	for (i = 0; i < WORKERS; i++) {
		if (pthread_create(&c->workers[i], NULL, worker_main, c) != 0)
			break;
		c->nworkers++;
	}
	if (c->nworkers == 0) {
		fs_chunks_free(c);
		return -EAGAIN;
	}
	*out = c;
	return 0;
}

void fs_chunks_free(struct fs_chunks *c)
{
	size_t i;

	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	c->stop = true;
	pthread_cond_broadcast(&c->work);
	pthread_mutex_unlock(&c->lock);
	for (i = 0; i < c->nworkers; i++)
		pthread_join(c->workers[i], NULL);
	for (i = 0; i < c->nbuckets; i++) {
		struct entry *e = c->buckets[i], *next;
		for (; e; e = next) {
			next = e->hnext;
			entry_free(e);
		}
	}
	pthread_cond_destroy(&c->work);
	pthread_cond_destroy(&c->loaded);
	pthread_mutex_destroy(&c->lock);
	free(c->buckets);
	free(c);
}

int fs_chunk_get(struct fs_chunks *c, const sd_id *id, struct fs_chunk **out)
{
	struct entry *e;
	int r;

	pthread_mutex_lock(&c->lock);
	e = find(c, id);
	if (e) {
		e->refs++;
		if (e->state == LOADING) {
			c->stats.waits++;
			while (e->state == LOADING)
				pthread_cond_wait(&c->loaded, &c->lock);
		}
		if (e->state == FAILED) {
			r = e->err;
			if (--e->refs == 0 && !e->in_table) {
				pthread_mutex_unlock(&c->lock);
				entry_free(e);
				return r;
			}
			pthread_mutex_unlock(&c->lock);
			return r;
		}
		c->stats.hits++;
		if (e->prefetched) {
			c->stats.prefetch_hits++;
			e->prefetched = false;
		}
		if (e->in_table) {
			lru_unlink(c, e);
			lru_append(c, e);
		}
		pthread_mutex_unlock(&c->lock);
		*out = &e->pub;
		return 0;
	}
	e = calloc(1, sizeof(*e));
	if (!e) {
		pthread_mutex_unlock(&c->lock);
		return -ENOMEM;
	}
	e->pub.id = *id;
	e->state = LOADING;
	e->refs = 1;
	table_insert(c, e);
	c->stats.misses++;
	pthread_mutex_unlock(&c->lock);

	r = entry_load(c, e);
	if (r < 0) {
		fs_chunk_put(c, &e->pub);
		return r;
	}
	*out = &e->pub;
	return 0;
}

void fs_chunk_put(struct fs_chunks *c, struct fs_chunk *ch)
{
	struct entry *e = (struct entry *)ch, *dead = NULL;

	if (!ch)
		return;
	pthread_mutex_lock(&c->lock);
	if (--e->refs == 0) {
		if (!e->in_table) {
			e->hnext = NULL;
			dead = e;
		} else if (c->bytes > c->cap) {
			evict(c, &dead);
		}
	}
	pthread_mutex_unlock(&c->lock);
	free_chain(dead);
}

void fs_chunk_prefetch(struct fs_chunks *c, const sd_id *id)
{
	size_t i;

	pthread_mutex_lock(&c->lock);
	if (find(c, id) || c->qlen == QUEUE_CAP)
		goto out;
	for (i = 0; i < c->qlen; i++)
		if (memcmp(c->queue[(c->qhead + i) % QUEUE_CAP].b, id->b,
			   SD_ID_LEN) == 0)
			goto out;
	c->queue[(c->qhead + c->qlen) % QUEUE_CAP] = *id;
	c->qlen++;
	pthread_cond_signal(&c->work);
out:
	pthread_mutex_unlock(&c->lock);
}

void fs_chunks_stats(struct fs_chunks *c, struct fs_cache_stats *out)
{
	pthread_mutex_lock(&c->lock);
	*out = c->stats;
	out->bytes = c->bytes;
	out->entries = c->count;
	out->capacity = c->cap;
	pthread_mutex_unlock(&c->lock);
}
