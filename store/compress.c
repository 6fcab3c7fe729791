/*
 * compress.c — zstd for blobs, stable API only.
 *
 * A store_zctx wraps one ZSTD_CCtx with its level set once: reusing the
 * context across chunks avoids reallocating zstd's tables (hundreds of KiB
 * to MiB) for every chunk. One context per thread; zstd contexts are not
 * thread-safe.
 *
 * A chunk that does not shrink is stored plain (-ENOSPC tells the caller),
 * so already-compressed media cost neither space nor decompression time.
 *
 * Decompression trusts nothing: the frame must decode without error into
 * exactly plain_len bytes, else the blob is SD_ECORRUPT. The blob hash check
 * that follows in the reader is the final word; this only keeps a damaged
 * frame from being reported as anything other than corruption.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include <zstd.h>
#include <zstd_errors.h>

#include "store.h"

struct store_zctx {
	ZSTD_CCtx *cctx;
};

/* A zstd failure that is not about the data itself. */
static int compress_errno(size_t code)
{
	switch (ZSTD_getErrorCode(code)) {
	case ZSTD_error_memory_allocation:
		return -ENOMEM;
	case ZSTD_error_dstSize_tooSmall:
		return -ENOSPC;
	default:
		return -EINVAL;
	}
}

int store_zctx_new(int level, struct store_zctx **out)
{
	int r = 0;
	struct store_zctx *z = calloc(1, sizeof(*z));
	if (!z)
		return -ENOMEM;
	z->cctx = ZSTD_createCCtx();
	if (!z->cctx) {
		r = -ENOMEM;
		goto out;
	}
	size_t s = ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_compressionLevel,
					  level);
	if (ZSTD_isError(s)) {
		r = compress_errno(s);
		goto out;
	}
	/* Blob ids already verify content after decompression. */
	s = ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_checksumFlag, 0);
	if (ZSTD_isError(s)) {
		r = compress_errno(s);
		goto out;
	}
	*out = z;
	z = NULL;
out:
	store_zctx_free(z);
	return r;
}

void store_zctx_free(struct store_zctx *z)
{
	if (!z)
		return;
	ZSTD_freeCCtx(z->cctx);
	free(z);
}

size_t store_compress_bound(size_t len)
{
	return ZSTD_compressBound(len);
}

int store_compress(struct store_zctx *z, const void *src, size_t len,
		   void *dst, size_t cap, size_t *out_len)
{
	size_t n = ZSTD_compress2(z->cctx, dst, cap, src, len);
	if (ZSTD_isError(n)) {
		/* A failed call can leave a frame half-done; start clean. */
		ZSTD_CCtx_reset(z->cctx, ZSTD_reset_session_only);
		return compress_errno(n);
	}
	if (n >= len)
		return -ENOSPC;
	*out_len = n;
	return 0;
}

/* ZSTD_decompress would build a fresh context (~100 KiB) per call, a
 * quarter of restore's CPU on small files; each thread keeps one instead,
 * freed when the thread exits. */
static pthread_key_t dctx_key;
static pthread_once_t dctx_once = PTHREAD_ONCE_INIT;

static void dctx_free(void *p)
{
	ZSTD_freeDCtx(p);
}

static void dctx_key_make(void)
{
	pthread_key_create(&dctx_key, dctx_free);
}

static ZSTD_DCtx *dctx_get(void)
{
	pthread_once(&dctx_once, dctx_key_make);
	ZSTD_DCtx *d = pthread_getspecific(dctx_key);
	if (!d) {
		d = ZSTD_createDCtx();
		if (d && pthread_setspecific(dctx_key, d) != 0) {
			ZSTD_freeDCtx(d);
			d = NULL;
		}
	}
	return d;
}

int store_decompress(const void *src, size_t len, void *dst,
		     size_t plain_len)
{
	ZSTD_DCtx *d = dctx_get();
	if (!d)
		return -ENOMEM;
	size_t n = ZSTD_decompressDCtx(d, dst, plain_len, src, len);
	if (ZSTD_isError(n)) {
		if (ZSTD_getErrorCode(n) == ZSTD_error_memory_allocation)
			return -ENOMEM;
		return SD_ECORRUPT;
	}
	return n == plain_len ? 0 : SD_ECORRUPT;
}
