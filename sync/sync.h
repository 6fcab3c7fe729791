/*
 * sync.h — what happens to drafts after they are written: the durable job
 * queue, the per-draft sync state, and the rules for which paths queue what.
 *
 * What it owns
 *   <repo>/state/   an LMDB environment of its own, apart from index/: the
 *                   index is a cache rebuilt from packs, but jobs and the
 *                   per-draft state (last synced hash, remote page id) exist
 *                   nowhere else, so `repair --rebuild-index` must never
 *                   touch them. Created on first open.
 *   Databases: "jobs" (id -> job), "jobs_by_path" (kind, path -> id of the
 *   job still to run), "drafts" (path -> sync state).
 *
 * Jobs
 *   A job names a draft path (relative to drafts/, '/'-separated, never
 *   starting with '/' or containing "." or ".." components) and a kind.
 *   States: pending -> running (claimed) -> done, or -> pending again with
 *   a later next attempt (fail with backoff), or -> dead after max_attempts
 *   or a permanent failure. A running job whose lease ran out (its worker
 *   died) is pending again for the next claim. Enqueueing a path that
 *   already has a pending job of that kind updates that job (hash, next
 *   attempt) instead of adding a second: a burst of saves is one job. A
 *   running job is left alone and a new pending one queued behind it.
 *   Done jobs are kept for a week, then dropped on a later write.
 *
 * Threading and processes
 *   A sync_queue may be used from many threads; several processes (the
 *   mount, `snapdraft sync ...`, backup) may open the same repository's
 *   queue at once: LMDB serialises writers.
 *
 * Errors
 *   0, a negative errno, or an SD_E* code (SD_ENOTFOUND: no such job or
 *   no job due; SD_EUSAGE: a path that is not a valid draft path).
 *
 * Ownership
 *   Strings in a struct sync_job / sync_draft_state filled by this module
 *   belong to the caller: sync_job_clear / sync_draft_state_clear.
 */
#ifndef SNAPDRAFT_SYNC_H
#define SNAPDRAFT_SYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* ---------------------------------------------------------------- jobs */

enum sync_job_kind {
	SYNC_JOB_NONE = 0,
	SYNC_JOB_NOTION_PUSH = 1,	/* a markdown draft -> its Notion page */
	SYNC_JOB_LLM_GENERATE = 2,	/* a request in requests/ -> a draft */
	SYNC_JOB_NOTION_ARCHIVE = 3,	/* a deleted draft -> archive its page */
	SYNC_JOB_KIND_COUNT
};
#define SYNC_KIND_BIT(k) (1u << (k))

enum sync_job_state {
	SYNC_JOB_PENDING = 0,
	SYNC_JOB_RUNNING = 1,
	SYNC_JOB_DONE = 2,
	SYNC_JOB_DEAD = 3,
	SYNC_JOB_STATE_COUNT
};

struct sync_job {
	uint64_t id;			/* > 0, never reused */
	enum sync_job_kind kind;
	enum sync_job_state state;
	char *path;			/* relative to drafts/ */
	sd_id content_hash;		/* the file's SHA-256 when queued
					   (zero for an archive job) */
	uint32_t attempts;		/* claims so far */
	int64_t created_ns;		/* CLOCK_REALTIME */
	int64_t updated_ns;
	int64_t next_attempt_ns;	/* pending: not claimed before this */
	char *last_error;		/* NULL when none */
};
void sync_job_clear(struct sync_job *j);

/* "notion-push", "llm-generate", "notion-archive"; "pending", "running",
 * "done", "dead". Parse returns SYNC_JOB_NONE / -1 for an unknown name. */
const char *sync_job_kind_name(enum sync_job_kind k);
enum sync_job_kind sync_job_kind_parse(const char *name);
const char *sync_job_state_name(enum sync_job_state s);

#define SYNC_QUEUE_OPTIONS_VERSION 1
struct sync_queue_options {
	unsigned version;		/* SYNC_QUEUE_OPTIONS_VERSION */
	uint32_t max_attempts;		/* 0: 8 */
	int64_t backoff_base_ns;	/* 0: 30 s; doubles per attempt */
	int64_t backoff_max_ns;		/* 0: 6 h */
	int64_t lease_ns;		/* 0: 15 min; a running job older
					   than this is pending again */
};

struct sync_queue;

/* Opens (creating <repo>/state/ when missing) the queue of the repository
 * at repo_path. opts may be NULL for the defaults. */
int sync_queue_open(const char *repo_path, const struct sync_queue_options *opts,
		    struct sync_queue **out);
void sync_queue_close(struct sync_queue *q);

/* Queues (or coalesces, see above) a job; *id_out may be NULL. hash may be
 * NULL (zero). not_before_ns is the earliest claim time. */
int sync_queue_enqueue(struct sync_queue *q, enum sync_job_kind kind,
		       const char *path, const sd_id *hash,
		       int64_t not_before_ns, uint64_t *id_out);

/* The due pending job (next_attempt_ns <= now_ns) of one of the kinds in
 * kind_mask (SYNC_KIND_BIT), oldest due first, marked running with
 * attempts + 1. SD_ENOTFOUND when none is due. */
int sync_queue_claim(struct sync_queue *q, unsigned kind_mask, int64_t now_ns,
		     struct sync_job *out);

/* A running job finished. synced_hash (may be NULL) is recorded as the
 * draft's last synced hash, remote_id (may be NULL: unchanged) as its
 * remote id. */
int sync_queue_complete(struct sync_queue *q, uint64_t id,
			const sd_id *synced_hash, const char *remote_id);

/* A running job failed with error (one line, no secrets). retry_after_ns
 * > 0 is the service's Retry-After (used when later than the backoff);
 * permanent means retrying cannot help: dead at once. Otherwise pending
 * again after base * 2^(attempts-1) with +-20% jitter, capped; dead when
 * attempts reached max_attempts. */
int sync_queue_fail(struct sync_queue *q, uint64_t id, const char *error,
		    int64_t retry_after_ns, bool permanent, int64_t now_ns);

/* A dead job back to pending with attempts 0 (`sync retry`). */
int sync_queue_retry(struct sync_queue *q, uint64_t id, int64_t now_ns);

int sync_queue_get(struct sync_queue *q, uint64_t id, struct sync_job *out);

/* Every job kept, by id. *out is an array of *n jobs. */
int sync_queue_list(struct sync_queue *q, struct sync_job **out, size_t *n);
void sync_job_list_free(struct sync_job *jobs, size_t n);

/* Number of jobs in each state. */
int sync_queue_counts(struct sync_queue *q, size_t counts[SYNC_JOB_STATE_COUNT]);

/* ---------------------------------------------------------------- drafts */

struct sync_draft_state {
	sd_id synced_hash;	/* content last synced (zero: never) */
	int64_t synced_ns;
	char *remote_id;	/* e.g. the Notion page id; NULL when none */
};
void sync_draft_state_clear(struct sync_draft_state *s);
/* SD_ENOTFOUND when the path was never synced. */
int sync_draft_state_get(struct sync_queue *q, const char *path,
			 struct sync_draft_state *out);
int sync_draft_state_set(struct sync_queue *q, const char *path,
			 const struct sync_draft_state *s);
int sync_draft_state_remove(struct sync_queue *q, const char *path);

/* True for what editors and tools write beside a draft and never mean as
 * one: vim swap/backup files (.*.sw?, *~, 4913), emacs locks and autosaves
 * (.#*, #*#), .~tmp~ / *.tmp files, anything under a .git/ directory,
 * dotfiles in general. relpath is relative to drafts/. */
bool sync_draft_path_ignored(const char *relpath);

/* The job a saved file at relpath asks for: LLM generation for a request
 * (requests/ *.yaml|*.yml), a Notion push for markdown (*.md, *.markdown)
 * elsewhere, SYNC_JOB_NONE for anything else or ignored paths. */
enum sync_job_kind sync_draft_job_kind(const char *relpath);

/* Walks drafts_dir and queues (not before not_before_ns) every file whose
 * job kind is not NONE and whose content hash differs from its last synced
 * hash and from the hash of a job already pending, running or dead for it;
 * queues notion-archive for a path that has a remote id but no file any
 * more. *queued (may be NULL) counts what was queued. Used when the mount
 * starts and by `snapdraft sync scan`, so that nothing saved while the
 * server was down is missed. */
int sync_drafts_rescan(struct sync_queue *q, const char *drafts_dir,
		       int64_t not_before_ns, size_t *queued);

/* SHA-256 of a file's content (what content_hash and synced_hash hold). */
int sync_file_hash(int dirfd, const char *relpath, sd_id *out);

#endif
