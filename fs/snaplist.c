/*
 * snaplist.c — the backup points as the mount names them, kept current.
 *
 * Names: a backup point is snapshots/<UTC time to the second>; when two
 * points fall in the same second, the later ones (by time, then id) get
 * "-<8 hex digits of the id>" appended, so the first keeps its name when a
 * second one arrives. ids/ uses the shortest prefix of at least 8 hex
 * digits that is unique among the current points.
 *
 * Freshness: a list is immutable and refcounted; fs_snaps_get() compares
 * store_snapshot_stamp() (one stat) with the stamp of the current list and
 * reloads on a change. A list loaded within STAMP_SETTLE of its stamp is
 * not trusted (a second change in the same clock tick would not move the
 * stamp), so it is reloaded again, at most every 50 ms, until it is.
 * Unchanged points keep their fs_snap object,
 * so inodes that hold one stay valid across reloads.
 *
 * The watcher thread tells the kernel what changed: the cached listing and
 * attributes of snapshots/ and ids/ and latest, and the entries of points
 * that went away (new points need nothing: a failed lookup is not cached,
 * and latest's target is read afresh on every use). It
 * wakes on inotify events in the repository's snapshots/ directory (a
 * backup renaming its snapshot file into place shows up within
 * microseconds), when a request saw a new list, and every second anyway
 * (250 ms while the list is not settled), since inotify does not see every
 * filesystem. It runs apart from the request threads because an
 * invalidation can wait on a kernel lock that a request in flight holds.
 *
 * Locks: refresh_lock serialises reloads (taken before lock); lock guards
 * cur, stamp, settled and the watcher's flags.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "fs_i.h"

#define STAMP_SETTLE_NS 200000000LL
#define UNSETTLED_RELOAD_NS 50000000LL
#define WATCH_PERIOD_MS 1000
#define WATCH_UNSETTLED_MS 250

struct fs_snaplist {
	struct fs *fs;
	pthread_mutex_t refresh_lock;
	pthread_mutex_t lock;
	struct fs_snaps *cur;
	struct timespec stamp;		/* of cur */
	bool settled;			/* cur was loaded well after stamp */
	int64_t loaded_mono;		/* when cur was loaded */
	int evfd;			/* wakes the watcher */
	int infd;			/* inotify on snapshots/, or -1 */
	atomic_bool stop;
	bool running;
	pthread_t thread;
	struct fs_snaps *shown;	/* watcher thread only */
};

void fs_snap_hold(struct fs_snap *s)
{
	atomic_fetch_add(&s->refs, 1);
}

void fs_snap_put(struct fs_snap *s)
{
	if (s && atomic_fetch_sub(&s->refs, 1) == 1) {
		store_snapshot_clear(&s->meta);
		free(s);
	}
}

void fs_snaps_put(struct fs_snaps *l)
{
	size_t i;

	if (!l || atomic_fetch_sub(&l->refs, 1) != 1)
		return;
	for (i = 0; i < l->n; i++)
		fs_snap_put(l->v[i]);
	free(l->v);
	free(l);
}

struct fs_snap *fs_snaps_find(const struct fs_snaps *l, const char *name)
{
	size_t lo = 0, hi = l->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(l->v[mid]->name, name);
		if (c == 0)
			return l->v[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

struct fs_snap *fs_snaps_find_short(const struct fs_snaps *l,
				    const char *short_id)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (strcmp(l->v[i]->short_id, short_id) == 0)
			return l->v[i];
	return NULL;
}

struct fs_snap *fs_snaps_find_id(const struct fs_snaps *l, const sd_id *id)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (sd_id_cmp(&l->v[i]->id, id) == 0)
			return l->v[i];
	return NULL;
}

static int cmp_name(const void *a, const void *b)
{
	const struct fs_snap *x = *(struct fs_snap *const *)a;
	const struct fs_snap *y = *(struct fs_snap *const *)b;

	return strcmp(x->name, y->name);
}

static int cmp_hex(const void *a, const void *b)
{
	const struct fs_snap *x = *(struct fs_snap *const *)a;
	const struct fs_snap *y = *(struct fs_snap *const *)b;

	return sd_id_cmp(&x->id, &y->id);
}

static size_t common_prefix(const char *a, const char *b)
{
	size_t n = 0;

	while (a[n] && a[n] == b[n])
		n++;
	return n;
}

/* Short ids: unique prefixes of at least 8 digits, over v sorted by id. */
static void assign_short_ids(struct fs_snap **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		char full[SD_ID_HEX_LEN + 1];
		size_t need = 8, c;

		sd_id_hex(&v[i]->id, full);
		if (i > 0) {
			char prev[SD_ID_HEX_LEN + 1];
			sd_id_hex(&v[i - 1]->id, prev);
			c = common_prefix(full, prev) + 1;
			need = c > need ? c : need;
		}
		if (i + 1 < n) {
			char next[SD_ID_HEX_LEN + 1];
			sd_id_hex(&v[i + 1]->id, next);
			c = common_prefix(full, next) + 1;
			need = c > need ? c : need;
		}
		if (need > SD_ID_HEX_LEN)
			need = SD_ID_HEX_LEN;
		memcpy(v[i]->short_id, full, need);
		v[i]->short_id[need] = '\0';
	}
}

static int count_pack(const sd_id *id, uint64_t size, void *ctx)
{
	struct fs_snaps *l = ctx;

	(void)id;
	l->pack_count++;
	l->pack_bytes += size;
	return 0;
}

/* Builds a list from the repository, reusing the fs_snap objects of old
 * whose id, name and short id did not change. */
static int snaps_load(struct fs *fs, const struct fs_snaps *old,
		      struct fs_snaps **out)
{
	struct store_snapshot *raw = NULL;
	struct fs_snap **byid = NULL;
	struct store_backend *be;
	struct fs_snaps *l;
	char prev_base[32] = "";
	size_t n = 0, i;
	int r;

	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	atomic_init(&l->refs, 1);
	r = store_snapshot_list(fs->repo, &raw, &n);
	if (r < 0)
		goto out;
	l->v = calloc(n ? n : 1, sizeof(*l->v));
	byid = calloc(n ? n : 1, sizeof(*byid));
	if (!l->v || !byid) {
		r = -ENOMEM;
		goto out;
	}
	/* raw is sorted by time then id: the first of a second keeps the
	 * plain name. */
	for (i = 0; i < n; i++) {
		struct fs_snap *s = calloc(1, sizeof(*s));
		char base[32], hex[SD_ID_HEX_LEN + 1];

		if (!s) {
			r = -ENOMEM;
			goto out;
		}
		atomic_init(&s->refs, 1);
		s->id = raw[i].id;
		fs_key_snapshot(&s->id, s->key);
		store_time_format(raw[i].time_ns, base);
		if (i > 0 && strcmp(base, prev_base) == 0) {
			sd_id_hex(&s->id, hex);
			snprintf(s->name, sizeof(s->name), "%s-%.8s", base, hex);
		} else {
			snprintf(s->name, sizeof(s->name), "%s", base);
		}
		memcpy(prev_base, base, sizeof(prev_base));
		/* The entry now belongs to s; the emptied slot is freed with
		 * the array. */
		s->meta = raw[i];
		memset(&raw[i], 0, sizeof(raw[i]));
		l->v[l->n++] = s;
		byid[i] = s;
	}
	l->newest = l->n ? l->v[l->n - 1] : NULL;
	qsort(byid, l->n, sizeof(*byid), cmp_hex);
	assign_short_ids(byid, l->n);
	qsort(l->v, l->n, sizeof(*l->v), cmp_name);

	if (old) {
		for (i = 0; i < l->n; i++) {
			struct fs_snap *o = fs_snaps_find_id(old, &l->v[i]->id);
			if (o && strcmp(o->name, l->v[i]->name) == 0 &&
			    strcmp(o->short_id, l->v[i]->short_id) == 0) {
				if (l->newest == l->v[i])
					l->newest = o;
				fs_snap_put(l->v[i]);
				fs_snap_hold(o);
				l->v[i] = o;
			}
		}
	}

	be = store_repo_backend(fs->repo);
	if (be && be->ops->pack_list)
		be->ops->pack_list(be->state, count_pack, l);
	r = 0;
out:
	free(byid);
	store_snapshot_list_free(raw, n);
	if (r < 0) {
		fs_snaps_put(l);
		return r;
	}
	*out = l;
	return 0;
}

static int64_t ts_ns(const struct timespec *t)
{
	return (int64_t)t->tv_sec * 1000000000LL + t->tv_nsec;
}

static int64_t now_ns(clockid_t clk)
{
	struct timespec t;

	clock_gettime(clk, &t);
	return ts_ns(&t);
}

static bool stamp_eq(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

/* Installs a freshly loaded list; called with lock held. */
static void install(struct fs_snaplist *sl, struct fs_snaps *fresh,
		    const struct timespec *stamp)
{
	fresh->stamp = *stamp;
	sl->cur = fresh;
	sl->stamp = *stamp;
	/* The stamp is an mtime (realtime clock): a list loaded well after
	 * it cannot have missed a change within the same tick. */
	sl->settled = now_ns(CLOCK_REALTIME) - ts_ns(stamp) > STAMP_SETTLE_NS;
	sl->loaded_mono = now_ns(CLOCK_MONOTONIC);
}

/* Called with lock held: is cur good for a stamp read just now? */
static bool fresh_enough(const struct fs_snaplist *sl,
			 const struct timespec *stamp)
{
	if (!stamp_eq(&sl->stamp, stamp))
		return false;
	return sl->settled ||
	       now_ns(CLOCK_MONOTONIC) - sl->loaded_mono < UNSETTLED_RELOAD_NS;
}

int fs_snaplist_new(struct fs *fs, struct fs_snaplist **out)
{
	struct fs_snaplist *sl = calloc(1, sizeof(*sl));
	struct fs_snaps *l;
	struct timespec stamp;
	int r;

	if (!sl)
		return -ENOMEM;
	sl->fs = fs;
	r = store_snapshot_stamp(fs->repo, &stamp);
	if (r < 0)
		goto fail;
	r = snaps_load(fs, NULL, &l);
	if (r < 0)
		goto fail;
	install(sl, l, &stamp);
	pthread_mutex_init(&sl->refresh_lock, NULL);
	pthread_mutex_init(&sl->lock, NULL);
	sl->evfd = -1;
	sl->infd = -1;
	*out = sl;
	return 0;
fail:
	free(sl);
	return r;
}

void fs_snaplist_free(struct fs_snaplist *sl)
{
	if (!sl)
		return;
	fs_snaps_put(sl->cur);
	fs_snaps_put(sl->shown);
	if (sl->evfd >= 0)
		close(sl->evfd);
	if (sl->infd >= 0)
		close(sl->infd);
	pthread_mutex_destroy(&sl->lock);
	pthread_mutex_destroy(&sl->refresh_lock);
	free(sl);
}

static struct fs_snaps *current(struct fs_snaplist *sl)
{
	struct fs_snaps *l;

	pthread_mutex_lock(&sl->lock);
	l = sl->cur;
	atomic_fetch_add(&l->refs, 1);
	pthread_mutex_unlock(&sl->lock);
	return l;
}

struct fs_snaps *fs_snaps_get(struct fs *fs)
{
	struct fs_snaplist *sl = fs->snaps;
	struct fs_snaps *old, *fresh;
	struct timespec stamp;
	bool ok;
	int r;

	r = store_snapshot_stamp(fs->repo, &stamp);
	if (r < 0)
		return current(sl);	/* keep serving what we know */
	pthread_mutex_lock(&sl->lock);
	ok = fresh_enough(sl, &stamp);
	pthread_mutex_unlock(&sl->lock);
	if (ok)
		return current(sl);

	pthread_mutex_lock(&sl->refresh_lock);
	/* Another thread may have reloaded while we waited. */
	pthread_mutex_lock(&sl->lock);
	ok = fresh_enough(sl, &stamp);
	pthread_mutex_unlock(&sl->lock);
	if (ok) {
		pthread_mutex_unlock(&sl->refresh_lock);
		return current(sl);
	}
	old = current(sl);
	r = snaps_load(fs, old, &fresh);
	fs_snaps_put(old);
	if (r < 0) {
		sd_log(SD_LOG_WARN, "mount: cannot reload the snapshot list: %s",
		       sd_strerror(r));
		pthread_mutex_unlock(&sl->refresh_lock);
		return current(sl);
	}
	pthread_mutex_lock(&sl->lock);
	old = sl->cur;
	install(sl, fresh, &stamp);
	if (sl->evfd >= 0)
		eventfd_write(sl->evfd, 1);
	atomic_fetch_add(&fresh->refs, 1);
	pthread_mutex_unlock(&sl->lock);
	pthread_mutex_unlock(&sl->refresh_lock);
	fs_snaps_put(old);
	return fresh;
}

/* Tells the kernel what differs between the list it saw and the new one. */
static void invalidate(struct fs *fs, const struct fs_snaps *was,
		       const struct fs_snaps *now)
{
	struct fuse_session *se = fs->se;
	size_t i;

	fuse_lowlevel_notify_inval_inode(se, FS_INO_SNAPSHOTS, 0, 0);
	fuse_lowlevel_notify_inval_inode(se, FS_INO_IDS, 0, 0);
	fuse_lowlevel_notify_inval_inode(se, FS_INO_LATEST, 0, 0);
	fuse_lowlevel_notify_inval_inode(se, FS_INO_ROOT, -1, 0);
	if (now->n == 0)
		fuse_lowlevel_notify_inval_entry(se, FS_INO_ROOT, "latest",
						 strlen("latest"));
	for (i = 0; was && i < was->n; i++) {
		const struct fs_snap *s = was->v[i];
		const struct fs_snap *t = fs_snaps_find_id(now, &s->id);

		if (!t || strcmp(t->name, s->name) != 0)
			fuse_lowlevel_notify_inval_entry(se, FS_INO_SNAPSHOTS,
							 s->name,
							 strlen(s->name));
		if (!t || strcmp(t->short_id, s->short_id) != 0)
			fuse_lowlevel_notify_inval_entry(se, FS_INO_IDS,
							 s->short_id,
							 strlen(s->short_id));
		if (t && strcmp(t->name, s->name) != 0) {
			/* The ids/ link keeps its number; its cached target
			 * names the old folder. */
			uint8_t key[FS_KEY_LEN];
			fs_key_idlink(&s->id, key);
			fuse_lowlevel_notify_inval_inode(
				se, fs_inode_number(fs, key), 0, 0);
		}
	}
}

/* Empties a non-blocking descriptor. */
static void drain(int fd)
{
	char buf[4096];

	if (fd < 0)
		return;
	while (read(fd, buf, sizeof(buf)) > 0)
		;
}

static void *watch_main(void *arg)
{
	struct fs *fs = arg;
	struct fs_snaplist *sl = fs->snaps;
	struct pollfd pfd[2];
	struct fs_snaps *l;
	bool settled;

	pfd[0].fd = sl->evfd;
	pfd[0].events = POLLIN;
	pfd[1].fd = sl->infd;
	pfd[1].events = POLLIN;
	while (!atomic_load(&sl->stop)) {
		pthread_mutex_lock(&sl->lock);
		settled = sl->settled;
		pthread_mutex_unlock(&sl->lock);
		poll(pfd, sl->infd >= 0 ? 2 : 1,
		     settled ? WATCH_PERIOD_MS : WATCH_UNSETTLED_MS);
		drain(sl->evfd);
		drain(sl->infd);
		if (atomic_load(&sl->stop))
			break;
		l = fs_snaps_get(fs);
		if (l != sl->shown) {
			invalidate(fs, sl->shown, l);
			fs_snaps_put(sl->shown);
			sl->shown = l;
		} else {
			fs_snaps_put(l);
		}
	}
	return NULL;
}

int fs_snaplist_watch_start(struct fs *fs)
{
	struct fs_snaplist *sl = fs->snaps;
	char *dir;
	int r;

	sl->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (sl->evfd < 0)
		return -errno;
	/* store.h: backup points are files in <repository>/snapshots/. */
	if (asprintf(&dir, "%s/snapshots", store_repo_path(fs->repo)) < 0)
		dir = NULL;
	sl->infd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (sl->infd >= 0 &&
	    (!dir || inotify_add_watch(sl->infd, dir,
				       IN_CREATE | IN_DELETE | IN_MOVED_TO |
					       IN_MOVED_FROM | IN_ONLYDIR) < 0)) {
		sd_log(SD_LOG_INFO, "mount: no inotify on %s; polling",
		       dir ? dir : "snapshots/");
		close(sl->infd);
		sl->infd = -1;
	}
	free(dir);
	sl->shown = current(sl);
	r = pthread_create(&sl->thread, NULL, watch_main, fs);
	if (r != 0)
		return -r;
	sl->running = true;
	return 0;
}

void fs_snaplist_watch_stop(struct fs *fs)
{
	struct fs_snaplist *sl = fs->snaps;

	if (!sl || !sl->running)
		return;
	atomic_store(&sl->stop, true);
	eventfd_write(sl->evfd, 1);
	pthread_join(sl->thread, NULL);
	sl->running = false;
}
