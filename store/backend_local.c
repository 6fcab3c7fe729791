/*
 * backend_local.c — packs in a local directory, and the generic trailer read.
 *
 * Layout: <packs_dir>/<first two hex digits of the id>/<64 hex digits>.
 * 256 subdirectories keep directories small for repositories of many
 * thousands of packs.
 *
 * Durability (pack_put): the pack goes through store_file_write_atomic
 * (temp file in the subdirectory, write, fsync, rename, fsync subdirectory).
 * The first put into a subdirectory in this process also creates it if
 * needed and fsyncs packs_dir, so the subdirectory's own entry is durable
 * before any pack in it is reported stored. Doing that once per
 * subdirectory (under dir_lock) rather than "when mkdir created it" also
 * covers a second thread that finds the directory just created by a first
 * one whose packs_dir fsync has not happened yet.
 *
 * Reads (pack_read) go through a small cache of open descriptors so the
 * mount does not open and close a pack for every chunk it serves. Slots are
 * reference-counted: a descriptor is closed only by eviction of an unused
 * slot or by the last reader of a slot whose pack was removed, never while
 * another thread is inside pread() on it. The open() itself happens outside
 * the lock; a removal in between is detected by a generation counter, and
 * such a descriptor is used once and not cached.
 *
 * Lock order: dir_lock and fd_lock are never held together.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store_i.h"

#define LOCAL_FD_SLOTS 64
/* First bytes of every pack (store.h, "Pack file layout"). */
#define LOCAL_PACK_MAGIC "SDPACK01"
#define LOCAL_PACK_MAGIC_LEN 8u

struct local_fd {
	sd_id id;
	int fd;			/* -1: slot free */
	unsigned refs;		/* readers using fd right now */
	bool stale;		/* pack removed: close when refs drops to 0 */
	uint64_t used;		/* LRU stamp */
};

struct local_state {
	char *dir;			/* immutable */
	pthread_mutex_t dir_lock;
	uint8_t subdir_ready[32];	/* dir_lock: bit per subdirectory */
	pthread_mutex_t fd_lock;
	struct local_fd fds[LOCAL_FD_SLOTS]; /* fd_lock */
	uint64_t clock;			/* fd_lock */
	uint64_t gen;			/* fd_lock: bumped by every remove */
};

/* A descriptor lent to one reader: a cache slot, or uncached (slot -1). */
struct local_handle {
	int fd;
	int slot;
};

static void local_names(const sd_id *id, char sub[3],
			char hex[SD_ID_HEX_LEN + 1])
{
	sd_id_hex(id, hex);
	sub[0] = hex[0];
	sub[1] = hex[1];
	sub[2] = '\0';
}

/* malloc'd <dir>/<sub>/<hex>, or NULL. */
static char *local_pack_path(const struct local_state *st, const sd_id *id)
{
	char sub[3], hex[SD_ID_HEX_LEN + 1];
	local_names(id, sub, hex);
	size_t n = strlen(st->dir) + 3 + 1 + SD_ID_HEX_LEN + 2;
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%s/%s/%s", st->dir, sub, hex);
	return p;
}

static int local_slot_find(struct local_state *st, const sd_id *id)
{
	for (int i = 0; i < LOCAL_FD_SLOTS; i++) {
		struct local_fd *s = &st->fds[i];
		if (s->fd >= 0 && !s->stale && sd_id_cmp(&s->id, id) == 0)
			return i;
	}
	return -1;
}

/* A free slot, else the least recently used idle one, else -1. */
static int local_slot_victim(struct local_state *st)
{
	int best = -1;
	for (int i = 0; i < LOCAL_FD_SLOTS; i++) {
		struct local_fd *s = &st->fds[i];
		if (s->fd < 0)
			return i;
		if (s->refs == 0 && (best < 0 || s->used < st->fds[best].used))
			best = i;
	}
	return best;
}

static int local_fd_get(struct local_state *st, const sd_id *id,
			struct local_handle *h)
{
	pthread_mutex_lock(&st->fd_lock);
	int i = local_slot_find(st, id);
	if (i >= 0) {
		st->fds[i].refs++;
		st->fds[i].used = ++st->clock;
		h->fd = st->fds[i].fd;
		h->slot = i;
		pthread_mutex_unlock(&st->fd_lock);
		return 0;
	}
	uint64_t gen = st->gen;
	pthread_mutex_unlock(&st->fd_lock);

	char *path = local_pack_path(st, id);
	if (!path)
		return -ENOMEM;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int err = errno;
	free(path);
	if (fd < 0)
		return err == ENOENT ? SD_ENOTFOUND : -err;

	h->fd = fd;
	h->slot = -1;
	pthread_mutex_lock(&st->fd_lock);
	i = local_slot_find(st, id);
	if (i >= 0) {
		/* Another reader cached it meanwhile; share theirs. */
		close(fd);
		st->fds[i].refs++;
		st->fds[i].used = ++st->clock;
		h->fd = st->fds[i].fd;
		h->slot = i;
	} else if (gen == st->gen && (i = local_slot_victim(st)) >= 0) {
		struct local_fd *s = &st->fds[i];
		if (s->fd >= 0)
			close(s->fd);
		s->id = *id;
		s->fd = fd;
		s->refs = 1;
		s->stale = false;
		s->used = ++st->clock;
		h->slot = i;
	}
	pthread_mutex_unlock(&st->fd_lock);
	return 0;
}

static void local_fd_put(struct local_state *st, const struct local_handle *h)
{
	if (h->slot < 0) {
		close(h->fd);
		return;
	}
	pthread_mutex_lock(&st->fd_lock);
	struct local_fd *s = &st->fds[h->slot];
	if (--s->refs == 0 && s->stale) {
		close(s->fd);
		s->fd = -1;
		s->stale = false;
	}
	pthread_mutex_unlock(&st->fd_lock);
}

/* Forgets a removed pack's descriptor (now, or at its last reader). */
static void local_fd_drop(struct local_state *st, const sd_id *id)
{
	pthread_mutex_lock(&st->fd_lock);
	st->gen++;
	int i = local_slot_find(st, id);
	if (i >= 0) {
		struct local_fd *s = &st->fds[i];
		if (s->refs == 0) {
			close(s->fd);
			s->fd = -1;
		} else {
			s->stale = true;
		}
	}
	pthread_mutex_unlock(&st->fd_lock);
}

/* Makes <dir>/<sub> exist durably, once per subdirectory per process. */
static int local_subdir_ready(struct local_state *st, uint8_t idx,
			      const char *subdir)
{
	int r = 0;
	pthread_mutex_lock(&st->dir_lock);
	if (st->subdir_ready[idx / 8] & (1u << (idx % 8)))
		goto out;
	if (mkdir(subdir, 0755) < 0 && errno != EEXIST) {
		r = -errno;
		goto out;
	}
	r = store_fsync_dir(st->dir);
	if (r < 0)
		goto out;
	st->subdir_ready[idx / 8] |= (uint8_t)(1u << (idx % 8));
out:
	pthread_mutex_unlock(&st->dir_lock);
	return r;
}

static int local_pack_put(void *state, const sd_id *id, const void *data,
			  size_t len)
{
	struct local_state *st = state;
	char sub[3], hex[SD_ID_HEX_LEN + 1];
	local_names(id, sub, hex);
	char *subdir = store_path_join(st->dir, sub);
	if (!subdir)
		return -ENOMEM;
	int r = local_subdir_ready(st, id->b[0], subdir);
	if (r < 0)
		goto out;
	/* Packs are immutable once written. */
	r = store_file_write_atomic(subdir, hex, data, len, 0444);
out:
	free(subdir);
	return r;
}

static int local_pack_read(void *state, const sd_id *id, uint64_t offset,
			   void *buf, size_t len)
{
	struct local_state *st = state;
	if (offset > (uint64_t)INT64_MAX || len > (uint64_t)INT64_MAX - offset)
		return SD_ECORRUPT;
	struct local_handle h = { .fd = -1, .slot = -1 };
	int r = local_fd_get(st, id, &h);
	if (r < 0)
		return r;
	uint8_t *p = buf;
	size_t done = 0;
	while (done < len) {
		ssize_t got = pread(h.fd, p + done, len - done,
				    (off_t)(offset + done));
		if (got < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			break;
		}
		if (got == 0) {
			r = SD_ECORRUPT;
			break;
		}
		done += (size_t)got;
	}
	local_fd_put(st, &h);
	return r;
}

static int local_pack_size(void *state, const sd_id *id, uint64_t *out)
{
	struct local_state *st = state;
	char *path = local_pack_path(st, id);
	if (!path)
		return -ENOMEM;
	struct stat sb;
	int r = 0;
	if (stat(path, &sb) < 0)
		r = errno == ENOENT ? SD_ENOTFOUND : -errno;
	else if (!S_ISREG(sb.st_mode))
		r = SD_ECORRUPT;
	else
		*out = (uint64_t)sb.st_size;
	free(path);
	return r;
}

/* Only canonical names count: 64 lowercase hex digits in the right
 * subdirectory; temp files and anything else are skipped. */
static bool local_name_is_pack(const char *name, const char *sub, sd_id *id)
{
	char hex[SD_ID_HEX_LEN + 1];
	if (strlen(name) != SD_ID_HEX_LEN || strncmp(name, sub, 2) != 0)
		return false;
	if (sd_id_parse(name, id) < 0)
		return false;
	sd_id_hex(id, hex);
	return strcmp(hex, name) == 0;
}

static int local_list_subdir(const char *path, const char *sub,
			     int (*cb)(const sd_id *id, uint64_t size,
				       void *ctx),
			     void *ctx)
{
	DIR *d = opendir(path);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	int r = 0;
	for (;;) {
		errno = 0;
		struct dirent *de = readdir(d);
		if (!de) {
			r = errno ? -errno : 0;
			break;
		}
		sd_id id;
		if (!local_name_is_pack(de->d_name, sub, &id))
			continue;
		struct stat sb;
		if (fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT)
				continue; /* removed while listing */
			r = -errno;
			break;
		}
		if (!S_ISREG(sb.st_mode))
			continue;
		r = cb(&id, (uint64_t)sb.st_size, ctx);
		if (r != 0)
			break;
	}
	closedir(d);
	return r;
}

static int local_pack_list(void *state,
			   int (*cb)(const sd_id *id, uint64_t size, void *ctx),
			   void *ctx)
{
	struct local_state *st = state;
	int r = 0;
	for (unsigned i = 0; i < 256 && r == 0; i++) {
		char sub[3];
		snprintf(sub, sizeof(sub), "%02x", i);
		char *path = store_path_join(st->dir, sub);
		if (!path)
			return -ENOMEM;
		r = local_list_subdir(path, sub, cb, ctx);
		free(path);
	}
	return r;
}

static int local_pack_remove(void *state, const sd_id *id)
{
	struct local_state *st = state;
	char sub[3], hex[SD_ID_HEX_LEN + 1];
	local_names(id, sub, hex);
	char *subdir = store_path_join(st->dir, sub);
	char *path = subdir ? store_path_join(subdir, hex) : NULL;
	int r = 0;
	if (!path) {
		r = -ENOMEM;
		goto out;
	}
	if (unlink(path) < 0) {
		r = errno == ENOENT ? SD_ENOTFOUND : -errno;
		goto out;
	}
	local_fd_drop(st, id);
	r = store_fsync_dir(subdir);
out:
	free(path);
	free(subdir);
	return r;
}

static void local_free(void *state)
{
	struct local_state *st = state;
	if (!st)
		return;
	for (int i = 0; i < LOCAL_FD_SLOTS; i++)
		if (st->fds[i].fd >= 0)
			close(st->fds[i].fd);
	pthread_mutex_destroy(&st->fd_lock);
	pthread_mutex_destroy(&st->dir_lock);
	free(st->dir);
	free(st);
}

static const struct store_backend_ops local_ops = {
	.version = STORE_BACKEND_OPS_VERSION,
	.pack_put = local_pack_put,
	.pack_read = local_pack_read,
	.pack_size = local_pack_size,
	.pack_list = local_pack_list,
	.pack_remove = local_pack_remove,
	.free = local_free,
};

int store_backend_local_new(const char *packs_dir, struct store_backend **out)
{
	struct stat sb;
	if (stat(packs_dir, &sb) < 0)
		return -errno;
	if (!S_ISDIR(sb.st_mode))
		return -ENOTDIR;
	struct store_backend *be = calloc(1, sizeof(*be));
	struct local_state *st = calloc(1, sizeof(*st));
	char *dir = strdup(packs_dir);
	if (!be || !st || !dir) {
		free(be);
		free(st);
		free(dir);
		return -ENOMEM;
	}
	st->dir = dir;
	pthread_mutex_init(&st->dir_lock, NULL);
	pthread_mutex_init(&st->fd_lock, NULL);
	for (int i = 0; i < LOCAL_FD_SLOTS; i++)
		st->fds[i].fd = -1;
	be->ops = &local_ops;
	be->state = st;
	*out = be;
	return 0;
}

void store_backend_free(struct store_backend *be)
{
	if (!be)
		return;
	be->ops->free(be->state);
	free(be);
}

int store_backend_read_trailer(struct store_backend *be, const sd_id *pack,
			       struct store_pack_entry **entries, size_t *n)
{
	const struct store_backend_ops *ops = be->ops;
	uint8_t head[LOCAL_PACK_MAGIC_LEN], footer[STORE_PACK_FOOTER_LEN];
	uint8_t *tail = NULL;
	uint64_t size;
	uint32_t tlen = 0, tlen2 = 0;
	*entries = NULL;
	*n = 0;
	int r = ops->pack_size(be->state, pack, &size);
	if (r < 0)
		goto out;
	if (size < LOCAL_PACK_MAGIC_LEN + STORE_PACK_FOOTER_LEN) {
		r = SD_ECORRUPT;
		goto out;
	}
	r = ops->pack_read(be->state, pack, 0, head, sizeof(head));
	if (r < 0)
		goto out;
	if (memcmp(head, LOCAL_PACK_MAGIC, LOCAL_PACK_MAGIC_LEN) != 0) {
		r = SD_ECORRUPT;
		goto out;
	}
	r = ops->pack_read(be->state, pack, size - STORE_PACK_FOOTER_LEN,
			   footer, sizeof(footer));
	if (r < 0)
		goto out;
	r = store_pack_trailer_parse(footer, sizeof(footer), size, &tlen, NULL,
				     NULL);
	if (r < 0)
		goto out;
	size_t tail_len = (size_t)tlen + STORE_PACK_FOOTER_LEN;
	tail = malloc(tail_len);
	if (!tail) {
		r = -ENOMEM;
		goto out;
	}
	r = ops->pack_read(be->state, pack, size - tail_len, tail, tail_len);
	if (r < 0)
		goto out;
	r = store_pack_trailer_parse(tail, tail_len, size, &tlen2, entries, n);
	if (r < 0)
		goto out;
	/* The file changed between the reads: the footer now claims a trailer
	 * we did not read, so no entries were returned. */
	if (tlen2 != tlen) {
		free(*entries);
		*entries = NULL;
		*n = 0;
		r = SD_ECORRUPT;
	}
out:
	free(tail);
	return r;
}
