/*
 * virtual.c — .snapdraft/: files that describe the mount, made on open.
 *
 *   status.json   the repository and its backup points (count, newest,
 *                 oldest, one summary per point, totals) and the server
 *                 (pid, uptime, chunk cache, bytes served), for people and
 *                 scripts; `jq .pid` finds the server.
 *   metrics.prom  the same figures in the Prometheus text format (# HELP and
 *                 # TYPE per family), for a node_exporter textfile
 *                 collector or a scrape through a tiny HTTP shim.
 *
 * The content is generated when the file is opened and belongs to that
 * open file, so one reader sees one consistent snapshot of the figures.
 * Sizes are not known before, so the files are direct_io (the kernel reads
 * until the end, whatever st_size said) and getattr generates them to
 * report a size that was true a moment ago.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs_i.h"

struct vfile {
	const char *name;
	fuse_ino_t ino;
};

static const struct vfile vfiles[] = {
	{ "metrics.prom", FS_INO_METRICS },
	{ "status.json", FS_INO_STATUS },
};
#define NVFILES (sizeof(vfiles) / sizeof(vfiles[0]))

struct vbuf {
	char *data;
	size_t len;
};

/* Everything the two files report, gathered once. */
struct figures {
	struct fs_snaps *l;
	struct fs_cache_stats cache;
	uint64_t logical, added, files;
	double uptime;
	size_t inodes;
};

static double ns_to_s(int64_t ns)
{
	return (double)ns / 1e9;
}

static void figures_get(struct fs *fs, struct figures *f)
{
	struct timespec now;
	size_t i;

	memset(f, 0, sizeof(*f));
	f->l = fs_snaps_get(fs);
	fs_chunks_stats(fs->chunks, &f->cache);
	for (i = 0; i < f->l->n; i++) {
		const struct store_snapshot_summary *s = &f->l->v[i]->meta.summary;
		f->logical += s->bytes;
		f->added += s->bytes_added;
		f->files += s->files;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	f->uptime = (double)(now.tv_sec - fs->started.tv_sec) +
		    (double)(now.tv_nsec - fs->started.tv_nsec) / 1e9;
	f->inodes = fs_inode_count(fs);
}

static cJSON *point_json(const struct fs_snap *s)
{
	const struct store_snapshot *m = &s->meta;
	const struct store_snapshot_summary *su = &m->summary;
	char hex[SD_ID_HEX_LEN + 1], t[32];
	cJSON *o = cJSON_CreateObject(), *a;
	size_t i;

	if (!o)
		return NULL;
	sd_id_hex(&s->id, hex);
	store_time_format(m->time_ns, t);
	cJSON_AddStringToObject(o, "name", s->name);
	cJSON_AddStringToObject(o, "id", hex);
	cJSON_AddStringToObject(o, "short_id", s->short_id);
	cJSON_AddStringToObject(o, "time", t);
	cJSON_AddStringToObject(o, "hostname", m->hostname ? m->hostname : "");
	cJSON_AddStringToObject(o, "username", m->username ? m->username : "");
	a = cJSON_AddArrayToObject(o, "tags");
	for (i = 0; a && i < m->ntags; i++)
		cJSON_AddItemToArray(a, cJSON_CreateString(m->tags[i]));
	a = cJSON_AddArrayToObject(o, "sources");
	for (i = 0; a && i < m->nsources; i++) {
		cJSON *src = cJSON_CreateObject();
		cJSON_AddStringToObject(src, "name", m->sources[i].name);
		cJSON_AddStringToObject(src, "path", m->sources[i].path);
		cJSON_AddItemToArray(a, src);
	}
	cJSON_AddBoolToObject(o, "partial", m->partial);
	cJSON_AddNumberToObject(o, "files", (double)su->files);
	cJSON_AddNumberToObject(o, "dirs", (double)su->dirs);
	cJSON_AddNumberToObject(o, "others", (double)su->others);
	cJSON_AddNumberToObject(o, "bytes", (double)su->bytes);
	cJSON_AddNumberToObject(o, "files_new", (double)su->files_new);
	cJSON_AddNumberToObject(o, "files_changed", (double)su->files_changed);
	cJSON_AddNumberToObject(o, "bytes_added", (double)su->bytes_added);
	cJSON_AddNumberToObject(o, "stored_added", (double)su->stored_added);
	cJSON_AddNumberToObject(o, "warnings", (double)su->warnings);
	cJSON_AddNumberToObject(o, "duration_seconds", su->duration);
	return o;
}

static int status_json(struct fs *fs, const struct figures *f,
		       struct vbuf *out)
{
	const struct fs_snaps *l = f->l;
	const struct fs_cache_stats *c = &f->cache;
	char t[32];
	cJSON *root, *o, *a;
	size_t i;
	int r = -ENOMEM;

	root = cJSON_CreateObject();
	if (!root)
		return -ENOMEM;
	cJSON_AddStringToObject(root, "repository", fs->repo_path);
	cJSON_AddStringToObject(root, "mountpoint", fs->mountpoint);
	cJSON_AddNumberToObject(root, "pid", (double)fs->pid);
	store_time_format((int64_t)fs->started.tv_sec * 1000000000LL, t);
	cJSON_AddStringToObject(root, "started", t);
	cJSON_AddNumberToObject(root, "uptime_seconds", f->uptime);

	o = cJSON_AddObjectToObject(root, "snapshots");
	if (o) {
		cJSON_AddNumberToObject(o, "count", (double)l->n);
		if (l->n > 0) {
			cJSON_AddItemToObject(o, "oldest", point_json(l->v[0]));
			cJSON_AddItemToObject(o, "newest",
					      point_json(l->newest));
		} else {
			cJSON_AddNullToObject(o, "oldest");
			cJSON_AddNullToObject(o, "newest");
		}
	}
	a = cJSON_AddArrayToObject(root, "points");
	for (i = 0; a && i < l->n; i++)
		cJSON_AddItemToArray(a, point_json(l->v[i]));

	o = cJSON_AddObjectToObject(root, "totals");
	if (o) {
		cJSON_AddNumberToObject(o, "files", (double)f->files);
		cJSON_AddNumberToObject(o, "logical_bytes", (double)f->logical);
		cJSON_AddNumberToObject(o, "added_bytes", (double)f->added);
		cJSON_AddNumberToObject(o, "stored_bytes", (double)l->pack_bytes);
		cJSON_AddNumberToObject(o, "packs", (double)l->pack_count);
		cJSON_AddNumberToObject(o, "dedup_ratio",
					l->pack_bytes ? (double)f->logical /
								(double)l->pack_bytes
						      : 0.0);
	}
	o = cJSON_AddObjectToObject(root, "cache");
	if (o) {
		cJSON_AddNumberToObject(o, "hits", (double)c->hits);
		cJSON_AddNumberToObject(o, "misses", (double)c->misses);
		cJSON_AddNumberToObject(o, "waits", (double)c->waits);
		cJSON_AddNumberToObject(o, "prefetches", (double)c->prefetches);
		cJSON_AddNumberToObject(o, "prefetch_hits",
					(double)c->prefetch_hits);
		cJSON_AddNumberToObject(o, "errors", (double)c->errors);
		cJSON_AddNumberToObject(o, "bytes", (double)c->bytes);
		cJSON_AddNumberToObject(o, "entries", (double)c->entries);
		cJSON_AddNumberToObject(o, "capacity_bytes", (double)c->capacity);
	}
	o = cJSON_AddObjectToObject(root, "requests");
	if (o) {
		cJSON_AddNumberToObject(o, "reads", (double)fs->stats.reads);
		cJSON_AddNumberToObject(o, "bytes_served",
					(double)fs->stats.read_bytes);
		cJSON_AddNumberToObject(o, "read_errors",
					(double)fs->stats.read_errors);
		cJSON_AddNumberToObject(o, "lookups", (double)fs->stats.lookups);
		cJSON_AddNumberToObject(o, "readdirs",
					(double)fs->stats.readdirs);
		cJSON_AddNumberToObject(o, "opens", (double)fs->stats.opens);
	}
	cJSON_AddNumberToObject(root, "inodes", (double)f->inodes);
	cJSON_AddNumberToObject(root, "open_handles",
				(double)fs_handles_count(fs));

	out->data = cJSON_Print(root);
	if (out->data) {
		/* A text file ends with a newline. */
		size_t len = strlen(out->data);
		char *p = realloc(out->data, len + 2);
		if (p) {
			p[len] = '\n';
			p[len + 1] = '\0';
			out->data = p;
			out->len = len + 1;
			r = 0;
		} else {
			free(out->data);
			out->data = NULL;
		}
	}
	cJSON_Delete(root);
	return r;
}

static void prom_family(FILE *fp, const char *name, const char *type,
			const char *help)
{
	fprintf(fp, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void prom_value(FILE *fp, const char *name, double v)
{
	fprintf(fp, "%s %.17g\n", name, v);
}

/* Label values here are times and hex digits; escape anyway. */
static void prom_label(FILE *fp, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			fputc('\\', fp);
		if (*v == '\n')
			fputs("\\n", fp);
		else
			fputc(*v, fp);
	}
}

static void prom_point(FILE *fp, const char *name, const struct fs_snap *s,
		       double v)
{
	fprintf(fp, "%s{snapshot=\"", name);
	prom_label(fp, s->name);
	fputs("\",id=\"", fp);
	prom_label(fp, s->short_id);
	fprintf(fp, "\"} %.17g\n", v);
}

static int metrics_prom(struct fs *fs, const struct figures *f,
			struct vbuf *out)
{
	const struct fs_snaps *l = f->l;
	const struct fs_cache_stats *c = &f->cache;
	FILE *fp;
	size_t i;

	fp = open_memstream(&out->data, &out->len);
	if (!fp)
		return -ENOMEM;
	prom_family(fp, "snapdraft_snapshots", "gauge",
		    "Backup points in the repository.");
	prom_value(fp, "snapdraft_snapshots", (double)l->n);
	if (l->n > 0) {
		prom_family(fp, "snapdraft_snapshot_newest_timestamp_seconds",
			    "gauge", "Time of the newest backup point.");
		prom_value(fp, "snapdraft_snapshot_newest_timestamp_seconds",
			   ns_to_s(l->newest->meta.time_ns));
		prom_family(fp, "snapdraft_snapshot_oldest_timestamp_seconds",
			    "gauge", "Time of the oldest backup point.");
		prom_value(fp, "snapdraft_snapshot_oldest_timestamp_seconds",
			   ns_to_s(l->v[0]->meta.time_ns));
		prom_family(fp, "snapdraft_snapshot_timestamp_seconds", "gauge",
			    "Time of each backup point.");
		for (i = 0; i < l->n; i++)
			prom_point(fp, "snapdraft_snapshot_timestamp_seconds",
				   l->v[i], ns_to_s(l->v[i]->meta.time_ns));
		prom_family(fp, "snapdraft_snapshot_files", "gauge",
			    "Regular files in each backup point.");
		for (i = 0; i < l->n; i++)
			prom_point(fp, "snapdraft_snapshot_files", l->v[i],
				   (double)l->v[i]->meta.summary.files);
		prom_family(fp, "snapdraft_snapshot_bytes", "gauge",
			    "Logical bytes of regular files in each backup point.");
		for (i = 0; i < l->n; i++)
			prom_point(fp, "snapdraft_snapshot_bytes", l->v[i],
				   (double)l->v[i]->meta.summary.bytes);
		prom_family(fp, "snapdraft_snapshot_added_bytes", "gauge",
			    "Plain bytes of new chunks each backup point added.");
		for (i = 0; i < l->n; i++)
			prom_point(fp, "snapdraft_snapshot_added_bytes", l->v[i],
				   (double)l->v[i]->meta.summary.bytes_added);
	}
	prom_family(fp, "snapdraft_repository_logical_bytes", "gauge",
		    "Sum of the logical bytes of all backup points.");
	prom_value(fp, "snapdraft_repository_logical_bytes", (double)f->logical);
	prom_family(fp, "snapdraft_repository_stored_bytes", "gauge",
		    "Bytes of pack files in the repository.");
	prom_value(fp, "snapdraft_repository_stored_bytes",
		   (double)l->pack_bytes);
	prom_family(fp, "snapdraft_repository_packs", "gauge",
		    "Pack files in the repository.");
	prom_value(fp, "snapdraft_repository_packs", (double)l->pack_count);
	prom_family(fp, "snapdraft_mount_start_time_seconds", "gauge",
		    "When the mount started (Unix time).");
	prom_value(fp, "snapdraft_mount_start_time_seconds",
		   (double)fs->started.tv_sec);
	prom_family(fp, "snapdraft_mount_cache_hits_total", "counter",
		    "Chunk reads served from the decompressed chunk cache.");
	prom_value(fp, "snapdraft_mount_cache_hits_total", (double)c->hits);
	prom_family(fp, "snapdraft_mount_cache_misses_total", "counter",
		    "Chunk reads that had to load the chunk.");
	prom_value(fp, "snapdraft_mount_cache_misses_total", (double)c->misses);
	prom_family(fp, "snapdraft_mount_cache_prefetches_total", "counter",
		    "Chunks loaded ahead of sequential reads.");
	prom_value(fp, "snapdraft_mount_cache_prefetches_total",
		   (double)c->prefetches);
	prom_family(fp, "snapdraft_mount_cache_prefetch_hits_total", "counter",
		    "Prefetched chunks that a read then used.");
	prom_value(fp, "snapdraft_mount_cache_prefetch_hits_total",
		   (double)c->prefetch_hits);
	prom_family(fp, "snapdraft_mount_cache_bytes", "gauge",
		    "Bytes of decompressed chunks held in the cache.");
	prom_value(fp, "snapdraft_mount_cache_bytes", (double)c->bytes);
	prom_family(fp, "snapdraft_mount_cache_capacity_bytes", "gauge",
		    "Bound of the chunk cache.");
	prom_value(fp, "snapdraft_mount_cache_capacity_bytes",
		   (double)c->capacity);
	prom_family(fp, "snapdraft_mount_chunk_errors_total", "counter",
		    "Chunk loads that failed (missing or failed verification).");
	prom_value(fp, "snapdraft_mount_chunk_errors_total", (double)c->errors);
	prom_family(fp, "snapdraft_mount_reads_total", "counter",
		    "Read requests served.");
	prom_value(fp, "snapdraft_mount_reads_total", (double)fs->stats.reads);
	prom_family(fp, "snapdraft_mount_read_bytes_total", "counter",
		    "Bytes served by read requests.");
	prom_value(fp, "snapdraft_mount_read_bytes_total",
		   (double)fs->stats.read_bytes);
	prom_family(fp, "snapdraft_mount_read_errors_total", "counter",
		    "Read requests answered with an error.");
	prom_value(fp, "snapdraft_mount_read_errors_total",
		   (double)fs->stats.read_errors);
	prom_family(fp, "snapdraft_mount_inodes", "gauge",
		    "Inodes the kernel currently holds.");
	prom_value(fp, "snapdraft_mount_inodes", (double)f->inodes);
	if (fclose(fp) != 0) {
		free(out->data);
		out->data = NULL;
		return -ENOMEM;
	}
	return 0;
}

static int generate(struct fs *fs, fuse_ino_t ino, struct vbuf *out)
{
	struct figures f;
	int r;

	memset(out, 0, sizeof(*out));
	figures_get(fs, &f);
	if (ino == FS_INO_STATUS)
		r = status_json(fs, &f, out);
	else
		r = metrics_prom(fs, &f, out);
	fs_snaps_put(f.l);
	return r;
}

static int virtual_stat(struct fs *fs, struct fs_inode *in, struct stat *st,
			double *timeout)
{
	struct vbuf b;
	int r;

	if (in->ino == FS_INO_META) {
		fs_stat_fixed(fs, in->ino, S_IFDIR | 0555, 2, 0, st);
		*timeout = FS_TIMEOUT_FOREVER;
		return 0;
	}
	r = generate(fs, in->ino, &b);
	if (r < 0)
		return r;
	fs_stat_fixed(fs, in->ino, S_IFREG | 0444, 1, (off_t)b.len, st);
	clock_gettime(CLOCK_REALTIME, &st->st_mtim);
	st->st_ctim = st->st_mtim;
	free(b.data);
	*timeout = 0;
	return 0;
}

static void virtual_lookup(fuse_req_t req, struct fs_inode *parent,
			   const char *name)
{
	struct fs *fs = fuse_req_userdata(req);
	size_t i;

	if (parent->ino != FS_INO_META) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	for (i = 0; i < NVFILES; i++) {
		if (strcmp(vfiles[i].name, name) == 0) {
			fs_reply_entry(req, &fs->fixed[vfiles[i].ino],
				       FS_TIMEOUT_FOREVER);
			return;
		}
	}
	fuse_reply_err(req, ENOENT);
}

static void virtual_readdir(fuse_req_t req, struct fs_inode *in, size_t size,
			    off_t off, struct fuse_file_info *fi, bool plus)
{
	struct fs *fs = fuse_req_userdata(req);
	struct fs_dirbuf d;
	size_t i;
	int r;

	(void)fi;
	if (in->ino != FS_INO_META) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	r = fs_dirbuf_init(&d, req, size, plus);
	if (r < 0) {
		fs_reply_err(req, r);
		return;
	}
	if (off == 0 && !fs_dirbuf_add_dot(&d, ".", in->ino, 1))
		goto send;
	if (off <= 1 && !fs_dirbuf_add_dot(&d, "..", FS_INO_ROOT, 2))
		goto send;
	for (i = off < 2 ? 0 : (size_t)off - 2; i < NVFILES; i++)
		if (!fs_dirbuf_add(&d, vfiles[i].name, &fs->fixed[vfiles[i].ino],
				   vfiles[i].ino, S_IFREG, FS_TIMEOUT_FOREVER,
				   (off_t)i + 3))
			break;
send:
	fs_dirbuf_reply(&d, 0);
}

static void vbuf_destroy(struct fs *fs, void *obj)
{
	struct vbuf *b = obj;

	(void)fs;
	free(b->data);
	free(b);
}

static void virtual_open(fuse_req_t req, struct fs_inode *in,
			 struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	struct vbuf *b;
	uint64_t id;
	int r;

	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if (in->ino == FS_INO_META) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	b = calloc(1, sizeof(*b));
	if (!b) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	r = generate(fs, in->ino, b);
	if (r == 0)
		r = fs_handle_open(fs, b, vbuf_destroy, &id);
	if (r < 0) {
		vbuf_destroy(fs, b);
		fs_reply_err(req, r);
		return;
	}
	fi->fh = id;
	fi->direct_io = 1;
	fi->keep_cache = 0;
	fi->noflush = 1;
	if (fuse_reply_open(req, fi) != 0)
		fs_handle_close(fs, id);
}

static void virtual_read(fuse_req_t req, struct fs_inode *in, size_t size,
			 off_t off, struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	struct fs_handle *h;
	struct vbuf *b;
	void *obj;

	(void)in;
	h = fs_handle_get(fs, fi->fh, &obj);
	b = obj;
	if (!h || off < 0) {
		fuse_reply_err(req, h ? EINVAL : EBADF);
	} else if ((size_t)off >= b->len) {
		fuse_reply_buf(req, NULL, 0);
	} else {
		if (size > b->len - (size_t)off)
			size = b->len - (size_t)off;
		fuse_reply_buf(req, b->data + off, size);
	}
	fs_handle_put(fs, h);
}

static void virtual_release(struct fs *fs, struct fs_inode *in,
			    struct fuse_file_info *fi)
{
	(void)in;
	fs_handle_close(fs, fi->fh);
}

const struct fs_area_ops fs_virtual_area = {
	.name = "virtual",
	.stat = virtual_stat,
	.lookup = virtual_lookup,
	.readdir = virtual_readdir,
	.open = virtual_open,
	.read = virtual_read,
	.release = virtual_release,
};

void fs_virtual_register(struct fs *fs)
{
	size_t i;

	fs_inode_fixed_set(fs, FS_INO_META, &fs_virtual_area, FS_KIND_DIR);
	for (i = 0; i < NVFILES; i++)
		fs_inode_fixed_set(fs, vfiles[i].ino, &fs_virtual_area,
				   FS_KIND_VFILE);
}
