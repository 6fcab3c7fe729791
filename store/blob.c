/*
 * blob.c — reading verified blobs, and the writer that packs new ones.
 *
 * Read path: index lookup -> ranged read of the pack through the backend ->
 * zstd decompression -> SHA-256 of the plain bytes must equal the id. A
 * mismatch is SD_ECORRUPT and a log line, never wrong bytes.
 *
 * Write path (store_writer): the producer thread (backup's walker) has
 * already read, chunked and hashed, so it knows every id at once and can
 * build trees without waiting. New blobs go through a bounded queue to
 * worker threads that compress them and append them to the open pack of
 * their type (data and trees go to separate packs, so the mount can read
 * trees without touching data). A full pack goes to the one I/O thread,
 * which writes it durably and then indexes it (packs are fsynced before the
 * index transaction that references them commits). The fsync of a 16 MiB
 * pack takes long enough that doing it on a compression worker left a core
 * idle; on its own thread it overlaps with compression.
 *
 *   producer --put--> [jobs, QUEUE_CAP] --> workers: compress --> open pack
 *   (per type, pack_lock) --full--> [packs, IO_CAP] --> I/O thread: put,
 *   index, builder back to the spare list
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store_i.h"

int store_blob_locate(struct store_repo *r, const sd_id *id,
		      struct store_pack_entry *entry, sd_id *pack)
{
	return store_index_get(r->index, id, entry, pack);
}

int store_blob_get(struct store_repo *r, const sd_id *id, uint8_t **out,
		   size_t *len)
{
	struct store_pack_entry e;
	sd_id pack;
	int rc = store_index_get(r->index, id, &e, &pack);
	if (rc < 0)
		return rc;
	uint8_t *stored = malloc(e.stored_len ? e.stored_len : 1);
	uint8_t *plain = NULL;
	if (!stored)
		return -ENOMEM;
	rc = r->backend->ops->pack_read(r->backend->state, &pack, e.offset,
					stored, e.stored_len);
	if (rc < 0)
		goto fail;
	if (e.flags & STORE_BLOB_COMPRESSED) {
		plain = malloc(e.plain_len ? e.plain_len : 1);
		if (!plain) {
			rc = -ENOMEM;
			goto fail;
		}
		rc = store_decompress(stored, e.stored_len, plain, e.plain_len);
		free(stored);
		stored = NULL;
	} else {
		plain = stored;
		stored = NULL;
		rc = e.stored_len == e.plain_len ? 0 : SD_ECORRUPT;
	}
	sd_id got;
	if (rc == 0) {
		sd_hash(plain, e.plain_len, &got);
		if (sd_id_cmp(&got, id) != 0)
			rc = SD_ECORRUPT;
	}
	if (rc == SD_ECORRUPT) {
		char bh[SD_ID_HEX_LEN + 1], ph[SD_ID_HEX_LEN + 1];
		sd_id_hex(id, bh);
		sd_id_hex(&pack, ph);
		sd_log(SD_LOG_ERR, "blob %s in pack %s is damaged", bh, ph);
	}
	if (rc < 0)
		goto fail;
	*out = plain;
	*len = e.plain_len;
	return 0;
fail:
	free(stored);
	free(plain);
	return rc;
}

int store_tree_load(struct store_repo *r, const sd_id *id,
		    struct store_tree **out)
{
	uint8_t *buf;
	size_t len;
	int rc = store_blob_get(r, id, &buf, &len);
	if (rc < 0)
		return rc;
	rc = store_tree_decode(buf, len, out);
	free(buf);
	return rc;
}

/* ---------------------------------------------------------------- writer */

#define QUEUE_CAP 16
#define IO_CAP 2	/* full packs waiting for the I/O thread */
#define NTYPES 2	/* STORE_BLOB_DATA, STORE_BLOB_TREE */

struct writer_job {
	sd_id id;
	uint8_t type;
	uint8_t *buf;
	size_t len;
};

struct store_writer {
	struct store_repo *repo;
	bool dry_run;
	int level;
	struct store_idset *seen; /* producer thread only */

	pthread_mutex_t queue_lock; /* protects everything down to err */
	pthread_cond_t queue_not_empty, queue_not_full, queue_idle;
	struct writer_job queue[QUEUE_CAP];
	size_t head, count;
	int busy;		/* jobs taken but not yet in a pack */
	pthread_cond_t io_not_empty, io_not_full, io_idle;
	struct store_pack_builder *io[IO_CAP]; /* full packs, FIFO */
	size_t io_head, io_count;
	bool io_busy;		/* the I/O thread is writing one */
	struct store_pack_builder *spare[IO_CAP]; /* reset, buffers kept */
	size_t nspare;
	bool stopping;
	int err;		/* first error of any thread */

	pthread_mutex_t pack_lock; /* protects packs[] */
	struct store_pack_builder *packs[NTYPES];

	pthread_mutex_t stats_lock; /* protects stats.stored_added and
				       stats.packs_written; the producer
				       alone writes the other fields */
	struct store_writer_stats stats;

	pthread_t *threads;
	int nthreads;
	pthread_t io_thread;
	bool io_started;
};

static void writer_set_error(struct store_writer *w, int err)
{
	pthread_mutex_lock(&w->queue_lock);
	if (w->err == 0)
		w->err = err;
	pthread_cond_broadcast(&w->queue_not_full);
	pthread_cond_broadcast(&w->queue_idle);
	pthread_cond_broadcast(&w->io_not_full);
	pthread_cond_broadcast(&w->io_idle);
	pthread_mutex_unlock(&w->queue_lock);
}

static int writer_error(struct store_writer *w)
{
	pthread_mutex_lock(&w->queue_lock);
	int err = w->err;
	pthread_mutex_unlock(&w->queue_lock);
	return err;
}

/* Writes one full pack and indexes it (I/O thread). */
static int writer_pack_finish(struct store_writer *w,
			      struct store_pack_builder *b)
{
	const uint8_t *data;
	size_t len, n;
	sd_id pack_id;
	const struct store_pack_entry *entries;
	struct store_backend *be = w->repo->backend;
	int rc = store_pack_builder_finish(b, &data, &len, &pack_id, &entries,
					   &n);
	if (rc == 0)
		rc = be->ops->pack_put(be->state, &pack_id, data, len);
	if (rc == 0)
		rc = store_index_add_pack(w->repo->index, &pack_id, entries, n);
	if (rc == 0) {
		pthread_mutex_lock(&w->stats_lock);
		w->stats.stored_added += len;
		w->stats.packs_written++;
		pthread_mutex_unlock(&w->stats_lock);
	}
	return rc;
}

/* Hands a full pack to the I/O thread; waits while IO_CAP are queued. */
static int writer_pack_submit(struct store_writer *w,
			      struct store_pack_builder *b)
{
	pthread_mutex_lock(&w->queue_lock);
	while (w->io_count == IO_CAP && w->err == 0)
		pthread_cond_wait(&w->io_not_full, &w->queue_lock);
	int rc = w->err;
	if (rc == 0) {
		w->io[(w->io_head + w->io_count) % IO_CAP] = b;
		w->io_count++;
		pthread_cond_signal(&w->io_not_empty);
	}
	pthread_mutex_unlock(&w->queue_lock);
	if (rc < 0)
		store_pack_builder_free(b);
	return rc;
}

static void *writer_io_thread(void *arg)
{
	struct store_writer *w = arg;
	pthread_mutex_lock(&w->queue_lock);
	for (;;) {
		while (w->io_count == 0 && !w->stopping)
			pthread_cond_wait(&w->io_not_empty, &w->queue_lock);
		if (w->io_count == 0)
			break;
		struct store_pack_builder *b = w->io[w->io_head];
		w->io_head = (w->io_head + 1) % IO_CAP;
		w->io_count--;
		w->io_busy = true;
		bool failed = w->err != 0;
		pthread_cond_signal(&w->io_not_full);
		pthread_mutex_unlock(&w->queue_lock);

		int rc = failed ? 0 : writer_pack_finish(w, b);
		store_pack_builder_reset(b);
		if (rc < 0)
			writer_set_error(w, rc);

		pthread_mutex_lock(&w->queue_lock);
		if (w->nspare < IO_CAP) {
			w->spare[w->nspare++] = b;
			b = NULL;
		}
		w->io_busy = false;
		if (w->io_count == 0)
			pthread_cond_broadcast(&w->io_idle);
		pthread_mutex_unlock(&w->queue_lock);
		store_pack_builder_free(b);
		pthread_mutex_lock(&w->queue_lock);
	}
	pthread_mutex_unlock(&w->queue_lock);
	return NULL;
}

/* A reset builder from the spare list (its buffer already faulted in), or
 * a new one. */
static int writer_builder_get(struct store_writer *w,
			      struct store_pack_builder **out)
{
	pthread_mutex_lock(&w->queue_lock);
	*out = w->nspare ? w->spare[--w->nspare] : NULL;
	pthread_mutex_unlock(&w->queue_lock);
	return *out ? 0 : store_pack_builder_new(out);
}

/* Appends one compressed (or plain) blob to its pack; finishes the pack
 * when it reached the target size. */
static int writer_pack_add(struct store_writer *w, const struct writer_job *j,
			   const uint8_t *stored, size_t stored_len,
			   uint8_t flags)
{
	int t = j->type == STORE_BLOB_TREE ? 1 : 0;
	struct store_pack_builder *full = NULL;
	int rc = 0;
	pthread_mutex_lock(&w->pack_lock);
	if (!w->packs[t])
		rc = writer_builder_get(w, &w->packs[t]);
	if (rc == 0)
		rc = store_pack_builder_add(w->packs[t], &j->id, j->type, flags,
					    stored, (uint32_t)stored_len,
					    (uint32_t)j->len);
	if (rc == 0 &&
	    store_pack_builder_size(w->packs[t]) >= STORE_PACK_TARGET_SIZE) {
		full = w->packs[t];
		w->packs[t] = NULL;
	}
	pthread_mutex_unlock(&w->pack_lock);
	if (full)
		rc = writer_pack_submit(w, full);
	return rc;
}

static void *writer_worker(void *arg)
{
	struct store_writer *w = arg;
	struct store_zctx *z = NULL;
	uint8_t *dst = NULL;
	size_t dst_cap = 0;
	int rc = store_zctx_new(w->level, &z);
	if (rc < 0)
		writer_set_error(w, rc);

	for (;;) {
		pthread_mutex_lock(&w->queue_lock);
		while (w->count == 0 && !w->stopping)
			pthread_cond_wait(&w->queue_not_empty, &w->queue_lock);
		if (w->count == 0) {
			pthread_mutex_unlock(&w->queue_lock);
			break;
		}
		struct writer_job j = w->queue[w->head];
		w->head = (w->head + 1) % QUEUE_CAP;
		w->count--;
		w->busy++;
		bool failed = w->err != 0;
		pthread_cond_signal(&w->queue_not_full);
		pthread_mutex_unlock(&w->queue_lock);

		rc = 0;
		if (!failed) {
			size_t need = store_compress_bound(j.len);
			if (need > dst_cap) {
				uint8_t *n = realloc(dst, need);
				if (n) {
					dst = n;
					dst_cap = need;
				} else {
					rc = -ENOMEM;
				}
			}
			size_t clen = 0;
			int crc = rc == 0 ? store_compress(z, j.buf, j.len, dst,
							   dst_cap, &clen)
					  : rc;
			if (crc == 0)
				rc = writer_pack_add(w, &j, dst, clen,
						     STORE_BLOB_COMPRESSED);
			else if (crc == -ENOSPC)
				rc = writer_pack_add(w, &j, j.buf, j.len, 0);
			else
				rc = crc;
		}
		free(j.buf);
		if (rc < 0)
			writer_set_error(w, rc);
		pthread_mutex_lock(&w->queue_lock);
		w->busy--;
		if (w->busy == 0 && w->count == 0)
			pthread_cond_broadcast(&w->queue_idle);
		pthread_mutex_unlock(&w->queue_lock);
	}
	free(dst);
	store_zctx_free(z);
	return NULL;
}

int store_writer_new(struct store_repo *r, int nthreads, int level,
		     bool dry_run, struct store_writer **out)
{
	struct store_writer *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->repo = r;
	w->dry_run = dry_run;
	w->level = level;
	pthread_mutex_init(&w->queue_lock, NULL);
	pthread_mutex_init(&w->pack_lock, NULL);
	pthread_mutex_init(&w->stats_lock, NULL);
	pthread_cond_init(&w->queue_not_empty, NULL);
	pthread_cond_init(&w->queue_not_full, NULL);
	pthread_cond_init(&w->queue_idle, NULL);
	pthread_cond_init(&w->io_not_empty, NULL);
	pthread_cond_init(&w->io_not_full, NULL);
	pthread_cond_init(&w->io_idle, NULL);
	int rc = store_idset_new(&w->seen);
	if (rc < 0)
		goto fail;
	if (!dry_run) {
		rc = -pthread_create(&w->io_thread, NULL, writer_io_thread, w);
		if (rc < 0)
			goto fail;
		w->io_started = true;
		if (nthreads < 1)
			nthreads = 1;
		w->threads = calloc((size_t)nthreads, sizeof(*w->threads));
		if (!w->threads) {
			rc = -ENOMEM;
			goto fail;
		}
		for (; w->nthreads < nthreads; w->nthreads++) {
			rc = -pthread_create(&w->threads[w->nthreads], NULL,
					     writer_worker, w);
			if (rc < 0)
				goto fail;
		}
	}
	*out = w;
	return 0;
fail:
	store_writer_free(w);
	return rc;
}

bool store_writer_has(struct store_writer *w, const sd_id *id)
{
	if (store_idset_has(w->seen, id))
		return true;
	struct store_pack_entry e;
	sd_id pack;
	return store_index_get(w->repo->index, id, &e, &pack) == 0;
}

int store_writer_put(struct store_writer *w, const sd_id *id, uint8_t type,
		     uint8_t *buf, size_t len)
{
	int rc = store_idset_add(w->seen, id);
	if (rc <= 0) {
		free(buf);
		return rc;
	}
	w->stats.blobs_added++;
	w->stats.bytes_added += len;
	if (w->dry_run) {
		free(buf);
		return 0;
	}
	pthread_mutex_lock(&w->queue_lock);
	while (w->count == QUEUE_CAP && w->err == 0)
		pthread_cond_wait(&w->queue_not_full, &w->queue_lock);
	rc = w->err;
	if (rc == 0) {
		w->queue[(w->head + w->count) % QUEUE_CAP] =
			(struct writer_job){ *id, type, buf, len };
		w->count++;
		pthread_cond_signal(&w->queue_not_empty);
	}
	pthread_mutex_unlock(&w->queue_lock);
	if (rc < 0)
		free(buf);
	return rc;
}

int store_writer_flush(struct store_writer *w)
{
	if (w->dry_run)
		return 0;
	pthread_mutex_lock(&w->queue_lock);
	while ((w->count > 0 || w->busy > 0) && w->err == 0)
		pthread_cond_wait(&w->queue_idle, &w->queue_lock);
	pthread_mutex_unlock(&w->queue_lock);
	int rc = writer_error(w);
	if (rc < 0)
		return rc;
	/* Nothing references these blobs until the caller saves a snapshot
	 * after this returns, so the order of the last packs does not matter
	 * for safety. */
	for (int t = 0; t < NTYPES && rc == 0; t++) {
		pthread_mutex_lock(&w->pack_lock);
		struct store_pack_builder *b = w->packs[t];
		w->packs[t] = NULL;
		pthread_mutex_unlock(&w->pack_lock);
		if (b && store_pack_builder_count(b) > 0)
			rc = writer_pack_submit(w, b);
		else
			store_pack_builder_free(b);
	}
	pthread_mutex_lock(&w->queue_lock);
	while ((w->io_count > 0 || w->io_busy) && w->err == 0)
		pthread_cond_wait(&w->io_idle, &w->queue_lock);
	rc = w->err;
	pthread_mutex_unlock(&w->queue_lock);
	return rc;
}

void store_writer_stats(const struct store_writer *w,
			struct store_writer_stats *out)
{
	struct store_writer *mw = (struct store_writer *)w;
	pthread_mutex_lock(&mw->stats_lock);
	*out = w->stats;
	pthread_mutex_unlock(&mw->stats_lock);
}

void store_writer_free(struct store_writer *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->queue_lock);
	w->stopping = true;
	if (w->err == 0)
		w->err = -ECANCELED; /* workers drop what is left */
	pthread_cond_broadcast(&w->queue_not_empty);
	pthread_cond_broadcast(&w->io_not_empty);
	pthread_cond_broadcast(&w->io_not_full);
	pthread_mutex_unlock(&w->queue_lock);
	for (int i = 0; i < w->nthreads; i++)
		pthread_join(w->threads[i], NULL);
	if (w->io_started)
		pthread_join(w->io_thread, NULL);
	for (size_t i = 0; i < w->io_count; i++)
		store_pack_builder_free(w->io[(w->io_head + i) % IO_CAP]);
	for (size_t i = 0; i < w->nspare; i++)
		store_pack_builder_free(w->spare[i]);
	for (size_t i = 0; i < w->count; i++)
		free(w->queue[(w->head + i) % QUEUE_CAP].buf);
	for (int t = 0; t < NTYPES; t++)
		store_pack_builder_free(w->packs[t]);
	store_idset_free(w->seen);
	free(w->threads);
	pthread_mutex_destroy(&w->queue_lock);
	pthread_mutex_destroy(&w->pack_lock);
	pthread_mutex_destroy(&w->stats_lock);
	pthread_cond_destroy(&w->queue_not_empty);
	pthread_cond_destroy(&w->queue_not_full);
	pthread_cond_destroy(&w->queue_idle);
	pthread_cond_destroy(&w->io_not_empty);
	pthread_cond_destroy(&w->io_not_full);
	pthread_cond_destroy(&w->io_idle);
	free(w);
}
