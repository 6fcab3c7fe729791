/*
 * check.c — verifying a repository, and rebuilding its index from packs.
 *
 * check, in passes:
 *   1. list the packs once (the backend's pack_list) and the snapshots;
 *   2. walk the index: an entry whose pack is missing, or that lies past
 *      the end of its pack, is a bad blob; count the entries per pack;
 *   3. walk every snapshot's trees, each distinct tree once (loading
 *      verifies its hash): a tree that cannot be loaded, or a data blob
 *      that is not indexed, is a bad blob;
 *   4. with read_data, two threads read every pack whole: its SHA-256 must
 *      be its name, its trailer must parse, every blob must decompress to
 *      bytes that hash to its id, and the index must agree with the trailer
 *      about every blob it places in that pack. Blobs indexed into a pack
 *      whose trailer is lost are read one by one through the index;
 *   5. if anything is bad, one more walk maps the bad blobs to the paths
 *      that use them ("snapshot 1a2b3c4d (time): content/a.md"), skipping
 *      subtrees already known to be clean.
 * A bad blob is one problem line (what is wrong, pack, blob, users); damage
 * that belongs to a pack as a whole (hash, trailer) is a line of its own.
 * Packs that no index entry points to are left by interrupted backups; they
 * are counted and logged, not problems (prune removes them).
 *
 * rebuild: clear the blob index, then index every pack's trailer.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_i.h"

#define MAX_USES 5
#define VERIFY_THREADS 2
#define PROGRESS_NS 100000000LL

struct pack_info {
	sd_id id;
	uint64_t size;
	uint64_t indexed;	/* index entries that point into it */
	bool lost;		/* unreadable or trailer damaged */
};

struct bad_blob {
	sd_id id;
	char *what;		/* the problem, without its users */
	char *uses[MAX_USES];	/* "snapshot X (time): path", or "path" for
				   the next ones of the same snapshot */
	size_t nuses;
	uint64_t more;		/* users beyond MAX_USES */
	const struct store_snapshot *last_snap;
};

struct check {
	struct store_repo *repo;
	const struct store_check_options *o;
	struct store_check_result *out;
	struct pack_info *packs;	/* sorted by id */
	size_t npacks, packs_cap;
	struct store_snapshot *snaps;
	size_t nsnaps;
	struct store_idset *trees_seen, *blobs_seen;

	pthread_mutex_t lock;	/* protects bad*, out->problems, callbacks */
	struct bad_blob *bad;	/* sorted by id once detection ends */
	size_t nbad, bad_cap;
	struct store_idset *bad_set;
	int err;		/* first fatal error of a verify thread */

	atomic_size_t next_pack; /* read_data work distribution */
	atomic_uint_fast64_t packs_done, bytes_read;
	int64_t next_progress;	/* under lock */
};

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void progress(struct check *c, uint64_t done, uint64_t total,
		     bool force)
{
	if (!c->o->progress)
		return;
	pthread_mutex_lock(&c->lock);
	int64_t now = now_ns();
	if (force || now >= c->next_progress) {
		c->next_progress = now + PROGRESS_NS;
		c->o->progress(done, total, c->o->ctx);
	}
	pthread_mutex_unlock(&c->lock);
}

static const char *type_name(uint8_t type)
{
	return type == STORE_BLOB_TREE ? "tree" : "data";
}

static char *vformat(const char *fmt, va_list ap)
{
	char *s = NULL;
	return vasprintf(&s, fmt, ap) < 0 ? NULL : s;
}

/* A problem of a pack as a whole: reported at once. */
static void pack_problem(struct check *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void pack_problem(struct check *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *msg = vformat(fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&c->lock);
	c->out->problems++;
	if (c->o->problem)
		c->o->problem(msg ? msg : "(out of memory describing a problem)",
			      c->o->ctx);
	pthread_mutex_unlock(&c->lock);
	free(msg);
}

/* A problem of one blob: kept (the first reason only) until its users are
 * known. Thread-safe. */
static int bad_add(struct check *c, const sd_id *id, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int bad_add(struct check *c, const sd_id *id, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *what = vformat(fmt, ap);
	va_end(ap);
	if (!what)
		return -ENOMEM;
	int r = 0;
	pthread_mutex_lock(&c->lock);
	if (store_idset_has(c->bad_set, id))
		goto out;
	if (c->nbad == c->bad_cap) {
		size_t cap = c->bad_cap ? c->bad_cap * 2 : 16;
		struct bad_blob *b = realloc(c->bad, cap * sizeof(*b));
		if (!b) {
			r = -ENOMEM;
			goto out;
		}
		c->bad = b;
		c->bad_cap = cap;
	}
	r = store_idset_add(c->bad_set, id);
	if (r < 0)
		goto out;
	c->bad[c->nbad++] = (struct bad_blob){ .id = *id, .what = what };
	what = NULL;
	r = 0;
out:
	pthread_mutex_unlock(&c->lock);
	free(what);
	return r;
}

static int id_cmp_void(const void *a, const void *b)
{
	return sd_id_cmp(a, b); /* the id is the first member of both */
}

static struct pack_info *pack_find(const struct check *c, const sd_id *id)
{
	return bsearch(id, c->packs, c->npacks, sizeof(*c->packs),
		       id_cmp_void);
}

static int pack_collect(const sd_id *id, uint64_t size, void *ctx)
{
	struct check *c = ctx;
	if (c->npacks == c->packs_cap) {
		size_t cap = c->packs_cap ? c->packs_cap * 2 : 64;
		struct pack_info *p = realloc(c->packs, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		c->packs = p;
		c->packs_cap = cap;
	}
	c->packs[c->npacks++] = (struct pack_info){ .id = *id, .size = size };
	return 0;
}

static int packs_list(struct check *c)
{
	struct store_backend *be = c->repo->backend;
	int r = be->ops->pack_list(be->state, pack_collect, c);
	if (r == 0 && c->npacks > 1)
		qsort(c->packs, c->npacks, sizeof(*c->packs), id_cmp_void);
	return r;
}

/* ---------------------------------------------------------------- structure */

/* Is an index entry usable: its pack exists and holds its bytes? */
static int entry_check(struct check *c, const struct store_pack_entry *e,
		       const sd_id *pack, struct pack_info **out)
{
	char bh[SD_ID_HEX_LEN + 1], ph[SD_ID_HEX_LEN + 1];
	struct pack_info *p = pack_find(c, pack);
	if (out)
		*out = p;
	if (p && e->offset + e->stored_len <= p->size)
		return 0;
	sd_id_hex(&e->id, bh);
	sd_id_hex(pack, ph);
	if (!p)
		return bad_add(c, &e->id, "pack %s is missing: it holds %s "
			       "blob %s", ph, type_name(e->type), bh);
	return bad_add(c, &e->id, "pack %s is %llu bytes, too short for %s "
		       "blob %s (offset %llu, %u bytes)", ph,
		       (unsigned long long)p->size, type_name(e->type), bh,
		       (unsigned long long)e->offset, e->stored_len);
}

static int index_entry_visit(const struct store_pack_entry *e,
			     const sd_id *pack, void *ctx)
{
	struct check *c = ctx;
	struct pack_info *p;
	int r = entry_check(c, e, pack, &p);
	if (p)
		p->indexed++;
	return r;
}

static int data_blob_check(struct check *c, const struct store_extent *x)
{
	int r = store_idset_add(c->blobs_seen, &x->id);
	if (r <= 0)
		return r;
	c->out->blobs++;
	if (store_idset_has(c->bad_set, &x->id))
		return 0;
	struct store_pack_entry e;
	sd_id pack;
	char bh[SD_ID_HEX_LEN + 1];
	sd_id_hex(&x->id, bh);
	r = store_index_get(c->repo->index, &x->id, &e, &pack);
	if (r == SD_ENOTFOUND)
		return bad_add(c, &x->id, "data blob %s is not in the index",
			       bh);
	if (r < 0)
		return r;
	if (e.type != STORE_BLOB_DATA || e.plain_len != x->length)
		return bad_add(c, &x->id, "the index holds blob %s as a %s blob "
			       "of %u bytes, but a file uses it as %u bytes "
			       "of data", bh, type_name(e.type), e.plain_len,
			       x->length);
	return entry_check(c, &e, &pack, NULL);
}

static int tree_bad(struct check *c, const sd_id *id, int err)
{
	struct store_pack_entry e;
	sd_id pack;
	char th[SD_ID_HEX_LEN + 1], ph[SD_ID_HEX_LEN + 1];
	sd_id_hex(id, th);
	int r = store_blob_locate(c->repo, id, &e, &pack);
	if (r == SD_ENOTFOUND)
		return bad_add(c, id, "tree blob %s is not in the index", th);
	if (r < 0)
		return r;
	sd_id_hex(&pack, ph);
	if (!pack_find(c, &pack))
		return bad_add(c, id, "pack %s is missing: it holds tree blob "
			       "%s", ph, th);
	return bad_add(c, id, "tree blob %s in pack %s cannot be loaded: %s",
		       th, ph, sd_strerror(err));
}

static int tree_check(struct check *c, const sd_id *id)
{
	int r = store_idset_add(c->trees_seen, id);
	if (r <= 0)
		return r;
	c->out->trees++;
	struct store_tree *t;
	r = store_tree_load(c->repo, id, &t);
	if (r == -ENOMEM)
		return r;
	if (r < 0)
		return tree_bad(c, id, r);
	for (size_t i = 0; i < t->n && r == 0; i++) {
		const struct store_node *n = &t->nodes[i];
		for (uint32_t k = 0; k < n->nextents && r == 0; k++)
			r = data_blob_check(c, &n->extents[k]);
		if (r == 0 && n->type == STORE_NODE_DIR)
			r = tree_check(c, &n->subtree);
	}
	store_tree_free(t);
	return r;
}

/* ---------------------------------------------------------------- read_data */

struct verify_buf {
	uint8_t *pack, *plain;
	size_t pack_cap, plain_cap;
};

static int buf_reserve(uint8_t **buf, size_t *cap, size_t need)
{
	if (need <= *cap)
		return 0;
	uint8_t *b = realloc(*buf, need ? need : 1);
	if (!b)
		return -ENOMEM;
	*buf = b;
	*cap = need;
	return 0;
}

/* Verifies one blob of a pack that was read whole, and that the index
 * agrees with the trailer about it; 1 when the index places it in this
 * pack. */
static int blob_verify(struct check *c, const struct pack_info *p,
		       const uint8_t *data, const struct store_pack_entry *e,
		       struct verify_buf *vb)
{
	char bh[SD_ID_HEX_LEN + 1], ph[SD_ID_HEX_LEN + 1];
	sd_id_hex(&e->id, bh);
	sd_id_hex(&p->id, ph);
	const uint8_t *plain = data + e->offset;
	int r = 0;
	if (e->flags & STORE_BLOB_COMPRESSED) {
		r = buf_reserve(&vb->plain, &vb->plain_cap, e->plain_len);
		if (r < 0)
			return r;
		r = store_decompress(data + e->offset, e->stored_len,
				     vb->plain, e->plain_len);
		plain = vb->plain;
	}
	sd_id got;
	if (r == 0)
		sd_hash(plain, e->plain_len, &got);
	if (r < 0 || sd_id_cmp(&got, &e->id) != 0) {
		r = bad_add(c, &e->id, "pack %s: %s blob %s is damaged (%s)",
			    ph, type_name(e->type), bh,
			    r < 0 ? "it does not decompress"
				  : "its content does not match its id");
		if (r < 0)
			return r;
	}
	struct store_pack_entry ie;
	sd_id ipack;
	r = store_index_get(c->repo->index, &e->id, &ie, &ipack);
	if (r == SD_ENOTFOUND || (r == 0 && sd_id_cmp(&ipack, &p->id) != 0))
		return 0; /* unused here, or kept in another pack */
	if (r < 0)
		return r;
	if (ie.offset == e->offset && ie.stored_len == e->stored_len &&
	    ie.plain_len == e->plain_len && ie.flags == e->flags &&
	    ie.type == e->type)
		return 1;
	r = bad_add(c, &e->id, "the index entry of blob %s disagrees with "
		    "the trailer of pack %s (run 'snapdraft repair "
		    "--rebuild-index')", bh, ph);
	return r < 0 ? r : 1;
}

static int pack_verify(struct check *c, struct pack_info *p,
		       struct verify_buf *vb)
{
	struct store_backend *be = c->repo->backend;
	char ph[SD_ID_HEX_LEN + 1];
	sd_id_hex(&p->id, ph);
	if ((uint64_t)(size_t)p->size != p->size)
		return -EFBIG;
	int r = buf_reserve(&vb->pack, &vb->pack_cap, (size_t)p->size);
	if (r < 0)
		return r;
	r = be->ops->pack_read(be->state, &p->id, 0, vb->pack, p->size);
	if (r == -ENOMEM)
		return r;
	if (r < 0) {
		p->lost = true;
		pack_problem(c, "pack %s cannot be read: %s", ph,
			     sd_strerror(r));
		return 0;
	}
	atomic_fetch_add(&c->bytes_read, p->size);
	sd_id got;
	sd_hash(vb->pack, p->size, &got);
	if (sd_id_cmp(&got, &p->id) != 0)
		pack_problem(c, "pack %s: its content does not match its id "
			     "(the file was changed or damaged)", ph);
	struct store_pack_entry *e = NULL;
	size_t n = 0;
	r = store_pack_trailer_parse(vb->pack, p->size, p->size, NULL, &e, &n);
	if (r == -ENOMEM)
		return r;
	if (r < 0) {
		p->lost = true;
		pack_problem(c, "pack %s: its trailer is damaged%s%s%s; the "
			     "blobs it holds are checked through the index",
			     ph, r == SD_ECORRUPT ? "" : " (",
			     r == SD_ECORRUPT ? "" : sd_strerror(r),
			     r == SD_ECORRUPT ? "" : ")");
		return 0;
	}
	uint64_t listed = 0;
	for (size_t i = 0; i < n; i++) {
		r = blob_verify(c, p, vb->pack, &e[i], vb);
		if (r < 0)
			break;
		listed += (uint64_t)r;
		r = 0;
	}
	free(e);
	if (r == 0 && listed != p->indexed)
		pack_problem(c, "pack %s: %llu index entries point into it "
			     "for blobs its trailer does not list (run "
			     "'snapdraft repair --rebuild-index')", ph,
			     (unsigned long long)(p->indexed - listed));
	return r;
}

static void *verify_thread(void *arg)
{
	struct check *c = arg;
	struct verify_buf vb = { 0 };
	for (;;) {
		size_t i = atomic_fetch_add(&c->next_pack, 1);
		if (i >= c->npacks)
			break;
		int r = pack_verify(c, &c->packs[i], &vb);
		if (r < 0) {
			pthread_mutex_lock(&c->lock);
			if (c->err == 0)
				c->err = r;
			pthread_mutex_unlock(&c->lock);
			break;
		}
		progress(c, atomic_fetch_add(&c->packs_done, 1) + 1, c->npacks,
			 false);
	}
	free(vb.pack);
	free(vb.plain);
	return NULL;
}

struct lost_blobs {
	struct check *c;
	struct store_pack_entry *e;
	sd_id *pack;
	size_t n, cap;
};

static int lost_collect(const struct store_pack_entry *e, const sd_id *pack,
			void *ctx)
{
	struct lost_blobs *l = ctx;
	const struct pack_info *p = pack_find(l->c, pack);
	if (!p || !p->lost)
		return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct store_pack_entry *ne = realloc(l->e, cap * sizeof(*ne));
		if (ne)
			l->e = ne;
		sd_id *np = realloc(l->pack, cap * sizeof(*np));
		if (np)
			l->pack = np;
		if (!ne || !np)
			return -ENOMEM;
		l->cap = cap;
	}
	l->e[l->n] = *e;
	l->pack[l->n++] = *pack;
	return 0;
}

/* Blobs indexed into packs whose trailer could not be used: read each one
 * through the index, as a restore would. */
static int lost_packs_verify(struct check *c)
{
	struct lost_blobs l = { .c = c };
	int r = store_index_foreach(c->repo->index, lost_collect, &l);
	for (size_t i = 0; i < l.n && r == 0; i++) {
		uint8_t *buf;
		size_t len;
		int g = store_blob_get(c->repo, &l.e[i].id, &buf, &len);
		if (g == 0) {
			free(buf);
			continue;
		}
		if (g == -ENOMEM) {
			r = g;
			break;
		}
		char bh[SD_ID_HEX_LEN + 1], ph[SD_ID_HEX_LEN + 1];
		sd_id_hex(&l.e[i].id, bh);
		sd_id_hex(&l.pack[i], ph);
		r = bad_add(c, &l.e[i].id, "pack %s: %s blob %s cannot be "
			    "read (%s)", ph, type_name(l.e[i].type), bh,
			    sd_strerror(g));
	}
	free(l.e);
	free(l.pack);
	return r;
}

static int read_data(struct check *c)
{
	pthread_t t[VERIFY_THREADS];
	int n = 0, r = 0;
	for (; n < VERIFY_THREADS; n++) {
		r = -pthread_create(&t[n], NULL, verify_thread, c);
		if (r < 0)
			break;
	}
	if (n == 0)
		return r;
	for (int i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	c->out->bytes_read = atomic_load(&c->bytes_read);
	progress(c, atomic_load(&c->packs_done), c->npacks, true);
	if (c->err < 0)
		return c->err;
	bool lost = false;
	for (size_t i = 0; i < c->npacks; i++)
		lost = lost || c->packs[i].lost;
	return lost ? lost_packs_verify(c) : 0;
}

/* ---------------------------------------------------------------- users */

struct pathbuf {
	char *s;
	size_t len, cap;
};

static int path_push(struct pathbuf *p, const char *name, size_t *saved)
{
	size_t n = strlen(name), need = p->len + n + 2;
	*saved = p->len;
	if (need > p->cap) {
		size_t cap = need * 2;
		char *s = realloc(p->s, cap);
		if (!s)
			return -ENOMEM;
		p->s = s;
		p->cap = cap;
	}
	if (p->len)
		p->s[p->len++] = '/';
	memcpy(p->s + p->len, name, n + 1);
	p->len += n;
	return 0;
}

static void path_pop(struct pathbuf *p, size_t saved)
{
	p->len = saved;
	if (p->s)
		p->s[saved] = '\0';
}

struct users_walk {
	struct check *c;
	const struct store_snapshot *snap;
	struct store_idset *clean;	/* trees without bad blobs below */
	struct pathbuf path;
};

static struct bad_blob *bad_find(const struct check *c, const sd_id *id)
{
	if (!store_idset_has(c->bad_set, id))
		return NULL;
	return bsearch(id, c->bad, c->nbad, sizeof(*c->bad), id_cmp_void);
}

/* Records that the current path uses b. */
static int use_add(struct users_walk *w, struct bad_blob *b)
{
	if (b->nuses == MAX_USES) {
		b->more++;
		return 0;
	}
	char hex[SD_ID_HEX_LEN + 1], when[32];
	sd_id_hex(&w->snap->id, hex);
	store_time_format(w->snap->time_ns, when);
	const char *path = w->path.len ? w->path.s : "/";
	char *u = NULL;
	int n = b->last_snap == w->snap
			? asprintf(&u, "%s", path)
			: asprintf(&u, "snapshot %.8s (%s): %s", hex, when, path);
	if (n < 0)
		return -ENOMEM;
	b->uses[b->nuses++] = u;
	b->last_snap = w->snap;
	return 0;
}

/* 1 when the tree holds a bad blob somewhere below, 0 when clean. */
static int users_tree(struct users_walk *w, const sd_id *id)
{
	if (store_idset_has(w->clean, id))
		return 0;
	struct bad_blob *b = bad_find(w->c, id);
	if (b)
		return use_add(w, b) < 0 ? -ENOMEM : 1;
	struct store_tree *t;
	int r = store_tree_load(w->c->repo, id, &t);
	if (r < 0)
		return r == -ENOMEM ? r : 1;
	int dirty = 0;
	for (size_t i = 0; i < t->n && r == 0; i++) {
		const struct store_node *n = &t->nodes[i];
		size_t saved;
		r = path_push(&w->path, n->name, &saved);
		for (uint32_t k = 0; k < n->nextents && r == 0; k++) {
			b = bad_find(w->c, &n->extents[k].id);
			if (!b)
				continue;
			dirty = 1;
			/* several extents of one file: one use */
			bool again = false;
			for (uint32_t j = 0; j < k && !again; j++)
				again = sd_id_cmp(&n->extents[j].id,
						  &n->extents[k].id) == 0;
			if (!again)
				r = use_add(w, b);
		}
		if (r == 0 && n->type == STORE_NODE_DIR) {
			r = users_tree(w, &n->subtree);
			dirty |= r > 0;
			r = r > 0 ? 0 : r;
		}
		path_pop(&w->path, saved);
	}
	store_tree_free(t);
	if (r < 0)
		return r;
	if (!dirty)
		r = store_idset_add(w->clean, id);
	return r < 0 ? r : dirty;
}

static int bad_report(struct check *c)
{
	if (c->nbad > 1)
		qsort(c->bad, c->nbad, sizeof(*c->bad), id_cmp_void);
	struct users_walk w = { .c = c };
	int r = store_idset_new(&w.clean);
	for (size_t i = 0; i < c->nsnaps && r == 0; i++) {
		w.snap = &c->snaps[i];
		r = users_tree(&w, &c->snaps[i].tree);
		r = r > 0 ? 0 : r;
	}
	store_idset_free(w.clean);
	free(w.path.s);
	if (r < 0)
		return r;
	for (size_t i = 0; i < c->nbad; i++) {
		const struct bad_blob *b = &c->bad[i];
		size_t len = strlen(b->what) + 64;
		for (size_t k = 0; k < b->nuses; k++)
			len += strlen(b->uses[k]) + 2;
		char *line = malloc(len), *p = line;
		if (!line)
			return -ENOMEM;
		p += sprintf(p, "%s; ", b->what);
		if (b->nuses == 0)
			p += sprintf(p, "not used by any snapshot");
		else
			p += sprintf(p, "used by ");
		for (size_t k = 0; k < b->nuses; k++)
			p += sprintf(p, "%s%s", k ? ", " : "", b->uses[k]);
		if (b->more)
			sprintf(p, " and %llu more", (unsigned long long)b->more);
		c->out->problems++;
		if (c->o->problem)
			c->o->problem(line, c->o->ctx);
		free(line);
	}
	return 0;
}

/* ---------------------------------------------------------------- entry points */

static void check_free(struct check *c)
{
	free(c->packs);
	store_snapshot_list_free(c->snaps, c->nsnaps);
	store_idset_free(c->trees_seen);
	store_idset_free(c->blobs_seen);
	store_idset_free(c->bad_set);
	for (size_t i = 0; i < c->nbad; i++) {
		free(c->bad[i].what);
		for (size_t k = 0; k < c->bad[i].nuses; k++)
			free(c->bad[i].uses[k]);
	}
	free(c->bad);
	pthread_mutex_destroy(&c->lock);
}

int store_check_run(struct store_repo *r, const struct store_check_options *o,
		    struct store_check_result *out)
{
	static const struct store_check_options none;
	struct store_check_result dummy;
	if (!out)
		out = &dummy;
	memset(out, 0, sizeof(*out));
	if (!r)
		return SD_EUSAGE;
	struct check c = { .repo = r, .o = o ? o : &none, .out = out };
	pthread_mutex_init(&c.lock, NULL);
	int rc = store_idset_new(&c.trees_seen);
	if (rc == 0)
		rc = store_idset_new(&c.blobs_seen);
	if (rc == 0)
		rc = store_idset_new(&c.bad_set);
	if (rc == 0)
		rc = packs_list(&c);
	out->packs = c.npacks;
	if (rc == 0)
		rc = store_snapshot_list(r, &c.snaps, &c.nsnaps);
	out->snapshots = c.nsnaps;
	if (rc == 0)
		rc = store_index_foreach(r->index, index_entry_visit, &c);
	for (size_t i = 0; i < c.nsnaps && rc == 0; i++)
		rc = tree_check(&c, &c.snaps[i].tree);
	if (rc == 0 && c.o->read_data)
		rc = read_data(&c);
	if (rc < 0)
		goto out;
	uint64_t unused = 0;
	for (size_t i = 0; i < c.npacks; i++)
		unused += c.packs[i].indexed == 0;
	out->packs_unused = unused;
	if (unused)
		sd_log(SD_LOG_INFO, "%llu packs are not referenced by the "
		       "index (left by an interrupted backup; prune removes "
		       "them)", (unsigned long long)unused);
	if (c.nbad)
		rc = bad_report(&c);
	if (rc == 0 && out->problems)
		rc = SD_ECORRUPT;
out:
	check_free(&c);
	return rc;
}

int store_repair_rebuild_index(struct store_repo *r,
			       const struct store_check_options *o,
			       struct store_check_result *out)
{
	static const struct store_check_options none;
	struct store_check_result dummy;
	if (!out)
		out = &dummy;
	memset(out, 0, sizeof(*out));
	if (!r || r->lock_fd < 0)
		return SD_EUSAGE;
	struct check c = { .repo = r, .o = o ? o : &none, .out = out };
	pthread_mutex_init(&c.lock, NULL);
	uint64_t skipped = 0;
	int rc = packs_list(&c);
	out->packs = c.npacks;
	if (rc == 0)
		rc = store_index_clear(r->index);
	for (size_t i = 0; i < c.npacks && rc == 0; i++) {
		struct store_pack_entry *e = NULL;
		size_t n = 0;
		int t = store_backend_read_trailer(r->backend, &c.packs[i].id,
						   &e, &n);
		if (t == -ENOMEM) {
			rc = t;
			break;
		}
		if (t < 0) {
			char ph[SD_ID_HEX_LEN + 1];
			sd_id_hex(&c.packs[i].id, ph);
			pack_problem(&c, "pack %s: its trailer cannot be read "
				     "(%s); skipped, its blobs are not indexed",
				     ph, sd_strerror(t));
			skipped++;
			continue;
		}
		rc = store_index_add_pack(r->index, &c.packs[i].id, e, n);
		free(e);
		out->blobs += n;
		progress(&c, i + 1, c.npacks, i + 1 == c.npacks);
	}
	if (rc == 0 && skipped)
		rc = SD_EPARTIAL;
	check_free(&c);
	return rc;
}
