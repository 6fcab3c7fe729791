/*
 * error.c — error names and the pluggable log sink.
 *
 * Errors follow LMDB's mdb_strerror model: one function names both negative
 * errno values and the project's SD_E* codes, which sit far outside errno's
 * range. The errno names come from strerrordesc_np(), which returns static,
 * locale-independent strings, so sd_strerror() is thread-safe and never
 * needs a caller buffer.
 *
 * Logging works like fuse_log: library code calls sd_log(), which formats
 * into a bounded stack buffer and hands the line to whatever sink tools/ or
 * fs/ installed; the default discards. The sink pointer is guarded by a
 * read-write lock held (for reading) across the sink call, so once
 * sd_log_set_sink() returns, no thread is still running the old sink and
 * its ctx may be freed. Readers run concurrently, so a slow sink does not
 * serialise unrelated threads beyond what the sink itself does. For the
 * same reason a sink must not call sd_log_set_sink() (it would deadlock);
 * calling sd_log() from a sink is fine.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "store.h"

/* Longer messages are truncated; a log line is for people, not data. */
#define SD_LOG_LINE_MAX 1024

static const char *sd_code_name(int err)
{
	switch (err) {
	case SD_ECORRUPT:
		return "stored data is corrupt (failed verification)";
	case SD_ENOTFOUND:
		return "not found";
	case SD_ENOREPO:
		return "not a snapdraft repository";
	case SD_EFORMAT:
		return "unsupported repository format version";
	case SD_ELOCKED:
		return "repository is locked by another writer";
	case SD_EAMBIGUOUS:
		return "ambiguous: matches more than one item";
	case SD_ECONFIG:
		return "invalid configuration";
	case SD_EPARTIAL:
		return "finished, but some items failed";
	case SD_EEXIST:
		return "already exists; refusing to overwrite";
	case SD_EUSAGE:
		return "invalid argument";
	}
	return NULL;
}

const char *sd_strerror(int err)
{
	if (err == 0)
		return "success";
	const char *s = sd_code_name(err);
	if (s)
		return s;
	if (err == INT_MIN)
		return "unknown error";
	/* Accept a positive errno too: callers sometimes pass errno itself. */
	s = strerrordesc_np(err < 0 ? -err : err);
	return s ? s : "unknown error";
}

static pthread_rwlock_t sd_log_lock = PTHREAD_RWLOCK_INITIALIZER;
static sd_log_sink_fn sd_log_sink;	/* sd_log_lock */
static void *sd_log_ctx;		/* sd_log_lock */

void sd_log_set_sink(sd_log_sink_fn sink, void *ctx)
{
	pthread_rwlock_wrlock(&sd_log_lock);
	sd_log_sink = sink;
	sd_log_ctx = ctx;
	pthread_rwlock_unlock(&sd_log_lock);
}

void sd_log(enum sd_log_level level, const char *fmt, ...)
{
	/* Logging must not disturb the caller's errno between a failing call
	 * and the point where it captures -errno. */
	int saved_errno = errno;
	pthread_rwlock_rdlock(&sd_log_lock);
	if (sd_log_sink) {
		char line[SD_LOG_LINE_MAX];
		va_list ap;
		va_start(ap, fmt);
		int w = vsnprintf(line, sizeof(line), fmt, ap);
		va_end(ap);
		if (w < 0)
			snprintf(line, sizeof(line), "(unformattable: %s)", fmt);
		sd_log_sink(level, line, sd_log_ctx);
	}
	pthread_rwlock_unlock(&sd_log_lock);
	errno = saved_errno;
}
