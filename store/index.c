/*
 * index.c — the LMDB blob index: blob id -> (pack id, entry).
 *
 * The index is a cache of what the pack trailers say; it can always be
 * rebuilt from them. One LMDB environment per repository (index/), one
 * named database "blobs" whose keys are the 32-byte blob ids and whose
 * values are a fixed 50-byte record (pack id, type, flags, offset, lengths).
 *
 * Lookups are the hot path of backup (dedup) and of the mount (every chunk
 * read). A read transaction per lookup would cost a reader-table slot
 * acquisition each time, so finished read transactions are reset and kept
 * in a small pool and renewed on the next lookup (mdb_txn_reset/renew,
 * as lmdb.h recommends). MDB_NOTLS lets any thread renew any pooled txn.
 * No read transaction outlives a call: long readers would stop page reuse.
 */
#include <errno.h>
#include <lmdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store_i.h"

#define INDEX_MAP_SIZE ((size_t)64 << 30)
#define INDEX_MAP_MIN ((size_t)256 << 20)
#define INDEX_RECORD_LEN 50
#define INDEX_TXN_POOL 16

struct store_index {
	MDB_env *env;
	MDB_dbi blobs;
	pthread_mutex_t pool_lock; /* protects pool[], npool */
	MDB_txn *pool[INDEX_TXN_POOL];
	int npool;
};

static int mdb_to_err(int rc)
{
	switch (rc) {
	case 0:
		return 0;
	case MDB_NOTFOUND:
		return SD_ENOTFOUND;
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
	case MDB_INVALID:
	case MDB_VERSION_MISMATCH:
		return SD_ECORRUPT;
	case MDB_MAP_FULL:
		return -ENOSPC;
	default:
		return rc > 0 ? -rc : -EIO;
	}
}

static void record_encode(uint8_t out[INDEX_RECORD_LEN],
			  const struct store_pack_entry *e, const sd_id *pack)
{
	memcpy(out, pack->b, SD_ID_LEN);
	out[32] = e->type;
	out[33] = e->flags;
	for (int i = 0; i < 8; i++)
		out[34 + i] = (uint8_t)(e->offset >> (8 * i));
	for (int i = 0; i < 4; i++) {
		out[42 + i] = (uint8_t)(e->stored_len >> (8 * i));
		out[46 + i] = (uint8_t)(e->plain_len >> (8 * i));
	}
}

static int record_decode(const MDB_val *key, const MDB_val *val,
			 struct store_pack_entry *e, sd_id *pack)
{
	if (key->mv_size != SD_ID_LEN || val->mv_size != INDEX_RECORD_LEN)
		return SD_ECORRUPT;
	const uint8_t *p = val->mv_data;
	memcpy(e->id.b, key->mv_data, SD_ID_LEN);
	memcpy(pack->b, p, SD_ID_LEN);
	e->type = p[32];
	e->flags = p[33];
	e->offset = 0;
	for (int i = 0; i < 8; i++)
		e->offset |= (uint64_t)p[34 + i] << (8 * i);
	e->stored_len = 0;
	e->plain_len = 0;
	for (int i = 0; i < 4; i++) {
		e->stored_len |= (uint32_t)p[42 + i] << (8 * i);
		e->plain_len |= (uint32_t)p[46 + i] << (8 * i);
	}
	return 0;
}

int store_index_open(const char *dir, bool writable, struct store_index **out)
{
	struct store_index *ix = calloc(1, sizeof(*ix));
	if (!ix)
		return -ENOMEM;
	pthread_mutex_init(&ix->pool_lock, NULL);
	int r;
	if (writable) {
		r = store_mkdir_p(dir, 0700);
		if (r < 0)
			goto fail;
	} else {
		struct stat st;
		if (stat(dir, &st) < 0) {
			r = errno == ENOENT ? SD_ENOTFOUND : -errno;
			goto fail;
		}
	}
	/* The map is address space, not memory; but where address space is
	 * scarce (valgrind, ulimit -v) a smaller map still serves all but
	 * the largest repositories. A failed open needs a new handle. */
	for (size_t map = INDEX_MAP_SIZE;; map /= 2) {
		r = mdb_to_err(mdb_env_create(&ix->env));
		if (r < 0)
			goto fail;
		mdb_env_set_maxdbs(ix->env, 8);
		mdb_env_set_maxreaders(ix->env, 1024);
		mdb_env_set_mapsize(ix->env, map);
		int rc = mdb_env_open(ix->env, dir, MDB_NOTLS, 0600);
		if (rc == 0)
			break;
		mdb_env_close(ix->env);
		ix->env = NULL;
		if ((rc != ENOMEM && rc != EINVAL) || map <= INDEX_MAP_MIN) {
			r = mdb_to_err(rc);
			goto fail;
		}
	}

	MDB_txn *txn;
	r = mdb_to_err(mdb_txn_begin(ix->env, NULL, writable ? 0 : MDB_RDONLY,
				     &txn));
	if (r < 0)
		goto fail;
	r = mdb_to_err(mdb_dbi_open(txn, "blobs", writable ? MDB_CREATE : 0,
				    &ix->blobs));
	if (r < 0) {
		mdb_txn_abort(txn);
		goto fail;
	}
	r = mdb_to_err(mdb_txn_commit(txn));
	if (r < 0)
		goto fail;
	*out = ix;
	return 0;
fail:
	store_index_close(ix);
	return r;
}

void store_index_close(struct store_index *ix)
{
	if (!ix)
		return;
	for (int i = 0; i < ix->npool; i++)
		mdb_txn_abort(ix->pool[i]);
	if (ix->env)
		mdb_env_close(ix->env);
	pthread_mutex_destroy(&ix->pool_lock);
	free(ix);
}

static int read_txn_take(struct store_index *ix, MDB_txn **out)
{
	MDB_txn *txn = NULL;
	pthread_mutex_lock(&ix->pool_lock);
	if (ix->npool > 0)
		txn = ix->pool[--ix->npool];
	pthread_mutex_unlock(&ix->pool_lock);
	if (txn) {
		int rc = mdb_txn_renew(txn);
		if (rc == 0) {
			*out = txn;
			return 0;
		}
		mdb_txn_abort(txn);
	}
	return mdb_to_err(mdb_txn_begin(ix->env, NULL, MDB_RDONLY, out));
}

static void read_txn_give(struct store_index *ix, MDB_txn *txn)
{
	mdb_txn_reset(txn);
	pthread_mutex_lock(&ix->pool_lock);
	if (ix->npool < INDEX_TXN_POOL) {
		ix->pool[ix->npool++] = txn;
		txn = NULL;
	}
	pthread_mutex_unlock(&ix->pool_lock);
	if (txn)
		mdb_txn_abort(txn);
}

int store_index_get(struct store_index *ix, const sd_id *id,
		    struct store_pack_entry *out, sd_id *pack)
{
	MDB_txn *txn;
	int r = read_txn_take(ix, &txn);
	if (r < 0)
		return r;
	MDB_val key = { SD_ID_LEN, (void *)id->b }, val;
	r = mdb_to_err(mdb_get(txn, ix->blobs, &key, &val));
	if (r == 0)
		r = record_decode(&key, &val, out, pack);
	read_txn_give(ix, txn);
	return r;
}

int store_index_add_pack(struct store_index *ix, const sd_id *pack,
			 const struct store_pack_entry *e, size_t n)
{
	MDB_txn *txn;
	int r = mdb_to_err(mdb_txn_begin(ix->env, NULL, 0, &txn));
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		uint8_t rec[INDEX_RECORD_LEN];
		record_encode(rec, &e[i], pack);
		MDB_val key = { SD_ID_LEN, (void *)e[i].id.b };
		MDB_val val = { INDEX_RECORD_LEN, rec };
		/* A blob already indexed in another pack keeps its first home;
		 * the copy becomes unused data for prune. */
		int rc = mdb_put(txn, ix->blobs, &key, &val, MDB_NOOVERWRITE);
		if (rc != 0 && rc != MDB_KEYEXIST) {
			mdb_txn_abort(txn);
			return mdb_to_err(rc);
		}
	}
	return mdb_to_err(mdb_txn_commit(txn));
}

int store_index_clear(struct store_index *ix)
{
	MDB_txn *txn;
	int r = mdb_to_err(mdb_txn_begin(ix->env, NULL, 0, &txn));
	if (r < 0)
		return r;
	r = mdb_to_err(mdb_drop(txn, ix->blobs, 0));
	if (r < 0) {
		mdb_txn_abort(txn);
		return r;
	}
	return mdb_to_err(mdb_txn_commit(txn));
}

int store_index_foreach(struct store_index *ix,
			int (*cb)(const struct store_pack_entry *e,
				  const sd_id *pack, void *ctx),
			void *ctx)
{
	MDB_txn *txn;
	MDB_cursor *cur = NULL;
	int r = read_txn_take(ix, &txn);
	if (r < 0)
		return r;
	r = mdb_to_err(mdb_cursor_open(txn, ix->blobs, &cur));
	if (r < 0)
		goto out;
	MDB_val key, val;
	int rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST);
	while (rc == 0) {
		struct store_pack_entry e;
		sd_id pack;
		r = record_decode(&key, &val, &e, &pack);
		if (r < 0)
			goto out;
		r = cb(&e, &pack, ctx);
		if (r != 0)
			goto out;
		rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
	}
	r = rc == MDB_NOTFOUND ? 0 : mdb_to_err(rc);
out:
	if (cur)
		mdb_cursor_close(cur);
	read_txn_give(ix, txn);
	return r;
}

int store_index_count(struct store_index *ix, uint64_t *out)
{
	MDB_txn *txn;
	int r = read_txn_take(ix, &txn);
	if (r < 0)
		return r;
	MDB_stat st;
	r = mdb_to_err(mdb_stat(txn, ix->blobs, &st));
	if (r == 0)
		*out = st.ms_entries;
	read_txn_give(ix, txn);
	return r;
}
