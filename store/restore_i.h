/*
 * restore_i.h — what restore.c and restore_select.c share: the restore's
 * state, the open-directory handle and the resolved include paths, and the
 * walker steps each side calls in the other. Internal to store/restore*.c.
 */
#ifndef SNAPDRAFT_RESTORE_I_H
#define SNAPDRAFT_RESTORE_I_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store_i.h"

#define QUEUE_CAP 256
#define MAX_WORKERS 4

struct hl_group;
struct rfile;
struct hl_link;
struct dir_meta;

/* An open target directory; shared by the walker and queued files. */
struct rdir {
	int fd;
	char *path;		/* target path, for messages and xattrs */
	struct store_tree *tree; /* freed with the rdir when owned */
	bool tree_owned;
	atomic_int refs;
};

/* A whole file (part_of NULL), or extents [first, first + count) of one. */
struct file_job {
	struct rdir *dir;
	const struct store_node *node;	/* lives in dir->tree or the cache */
	struct hl_group *group;		/* first member of a group, or NULL */
	struct rfile *part_of;
	uint32_t first, count;
};

struct restore {
	struct store_repo *repo;
	const struct store_restore_options *o;

	/* Wakeups only go to a thread that waits, and the walker only once
	 * half the queue is free: small files would otherwise cost a futex
	 * call or two each. */
	pthread_mutex_t lock;	/* protects the fields down to closing */
	pthread_cond_t not_empty, not_full;
	struct file_job q[QUEUE_CAP];
	size_t head, count;
	int idle;		/* workers waiting for a job */
	bool walker_waits;	/* for room in the queue */
	bool closing;		/* the walker queues nothing more */
	pthread_t threads[MAX_WORKERS];
	int nthreads;

	atomic_int fatal;	/* the error that stops the restore */
	atomic_uint_fast64_t files, dirs, others, bytes, failed, written;
	pthread_mutex_t report_lock; /* serialises warn() and progress() */
	atomic_llong next_progress;

	/* The walker's alone: */
	void *trees;		/* tsearch root of cached_tree */
	void *groups;		/* tsearch root of hl_group */
	struct hl_link *links;
	size_t nlinks, links_cap;
	struct dir_meta *metas;
	size_t nmetas, metas_cap;
};

/* One include path, resolved: the node of every component, root first. */
struct selection {
	char *path;		/* normalised: "a/b/c" */
	const struct store_node **chain;
	size_t depth;
};

/* ---- restore.c: reporting, the open-directory handle, the walker */

/* Warns about one item; item_fail also counts it and, when its cause would
 * fail everything after it, makes it the restore's fatal error. */
void store_restore_report_warn(struct restore *rs, const char *path, int err);
void store_restore_item_fail(struct restore *rs, const char *dir,
			     const char *name, int err);
/* Takes fd and path (freed with the rdir) and, when owned, tree; one
 * reference, dropped with rdir_put (NULL does nothing). */
struct rdir *store_restore_rdir_new(int fd, char *path, struct store_tree *tree,
				    bool owned);
void store_restore_rdir_put(struct rdir *d);
/* A tree from the cache (borrowed, *owned false) or freshly loaded (the
 * caller frees it when *owned); with cache, a loaded tree joins the cache. */
int store_restore_tree_get(struct restore *rs, const sd_id *id, bool cache,
			   struct store_tree **out, bool *owned);
/* Copies n's metadata, set on path at the end of the restore. */
int store_restore_meta_record(struct restore *rs, const char *path,
			      const struct store_node *n);
/* Creates (or, merging, opens) directory name in dfd; its fd or -err. */
int store_restore_dir_make(struct restore *rs, int dfd, const char *name);
/* Restores n (and, for a directory, everything below it) into d. */
int store_restore_node_restore(struct restore *rs, struct rdir *d,
			       const struct store_node *n);

/* ---- restore_select.c: includes, the pre-check, parent directories */

/* Normalised and sorted includes in *out (freed with selections_free);
 * *n is 0 when the whole snapshot is selected. */
int store_restore_selections_make(const struct store_restore_options *o,
				  struct selection **out, size_t *n);
/* Resolves the selections in root and prunes nested ones; SD_ENOTFOUND
 * (warned) names a missing include. On failure *n is unchanged. */
int store_restore_selections_resolve(struct restore *rs,
				     struct store_tree *root,
				     struct selection *s, size_t *n);
void store_restore_selections_free(struct selection *s, size_t n);
/* SD_EEXIST (warned) when a non-directory in the way exists in tfd. */
int store_restore_precheck(struct restore *rs, int tfd,
			   const struct store_tree *root,
			   const struct selection *sel, size_t nsel);
/* Creates the parents of sel[k], then restores its node under root. */
int store_restore_selection_restore(struct restore *rs, struct rdir *root,
				    const struct selection *sel, size_t k);

#endif
