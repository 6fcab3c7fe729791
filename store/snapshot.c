/*
 * snapshot.c — backup point records: one JSON file per point in snapshots/.
 *
 * A snapshot file is the truth about a backup point (the LMDB index only
 * locates blobs), so it is small, readable and self-checking: its name is
 * the SHA-256 of its exact bytes. Listing re-hashes every file and skips
 * (with a log line) any whose content no longer matches its name, so a
 * damaged or edited record can never pass for a real one.
 *
 * Times are int64 nanoseconds since the epoch, UTC. JSON numbers are
 * doubles in most readers, which cannot hold every int64 exactly, so
 * time_ns is a decimal string; "time" repeats it for people, and the two
 * must agree. Counters are numbers while printing them is exact (below
 * 10^15), decimal strings above.
 *
 * Only r->snapshots_dir is used from the repository handle, so these
 * functions work on a bare directory as well.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "store_i.h"

#define SNAP_VERSION 1
#define SNAP_NS 1000000000LL
/* Integers are numbers below 10^15 only: doubles hold them exactly up to
 * 2^53, but cJSON prints 15 significant digits whenever that reads back
 * "close enough", which drops the last digits of larger ones. */
#define SNAP_PRINT_MAX 1000000000000000ull
#define SNAP_EXACT_MAX (1ull << 53)

#define SNAP_COUNTER(f) { #f, offsetof(struct store_snapshot_summary, f) }
static const struct {
	const char *name;
	size_t offset;
} snap_counters[] = {
	SNAP_COUNTER(files),	      SNAP_COUNTER(dirs),
	SNAP_COUNTER(others),	      SNAP_COUNTER(bytes),
	SNAP_COUNTER(files_new),      SNAP_COUNTER(files_changed),
	SNAP_COUNTER(files_unchanged), SNAP_COUNTER(bytes_read),
	SNAP_COUNTER(blobs_added),    SNAP_COUNTER(bytes_added),
	SNAP_COUNTER(stored_added),   SNAP_COUNTER(warnings),
};
#define SNAP_NCOUNTERS (sizeof(snap_counters) / sizeof(*snap_counters))

/* ---------------------------------------------------------------- time */

/* Seconds rounded down (also for times before 1970) and the rest. */
static void snap_time_split(int64_t ns, int64_t *sec, long *nsec)
{
	*sec = ns / SNAP_NS;
	*nsec = (long)(ns % SNAP_NS);
	if (*nsec < 0) {
		*sec -= 1;
		*nsec += SNAP_NS;
	}
}

static void snap_time_tm(int64_t ns, struct tm *tm, long *nsec)
{
	int64_t sec;
	snap_time_split(ns, &sec, nsec);
	time_t t = (time_t)sec;
	gmtime_r(&t, tm);
}

void store_time_format(int64_t time_ns, char out[32])
{
	struct tm tm;
	long nsec;
	snap_time_tm(time_ns, &tm, &nsec);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* The "time" field: like store_time_format with nine decimals. */
static void snap_time_text(int64_t time_ns, char out[48])
{
	struct tm tm;
	long nsec;
	snap_time_tm(time_ns, &tm, &nsec);
	size_t n = strftime(out, 48, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, 48 - n, ".%09ldZ", nsec);
}

static bool snap_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int store_time_parse(const char *s, int64_t *out_ns, int64_t *end_ns)
{
	static const struct {
		char sep;
		int min, max;
		int64_t unit; /* seconds in one step of this field */
	} part[] = {
		{ 0, 0, 9999, 0 },  { '-', 1, 12, 0 },    { '-', 1, 31, 86400 },
		{ 'T', 0, 23, 3600 }, { ':', 0, 59, 60 }, { ':', 0, 59, 1 },
	};
	static const int mdays[] = { 31, 28, 31, 30, 31, 30,
				     31, 31, 30, 31, 30, 31 };
	int v[6] = { 0 };
	size_t n = 0;
	const char *p = s;
	for (; n < 6; n++) {
		if (n > 0 && *p != part[n].sep)
			break;
		p += n > 0;
		int width = n == 0 ? 4 : 2;
		for (int i = 0; i < width; i++, p++) {
			if (!isdigit((unsigned char)*p))
				return SD_EUSAGE;
			v[n] = v[n] * 10 + (*p - '0');
		}
		if (v[n] < part[n].min || v[n] > part[n].max)
			return SD_EUSAGE;
	}
	if (*p == 'Z')
		p++;
	if (n < 3 || *p)
		return SD_EUSAGE;
	if (v[2] > mdays[v[1] - 1] + (v[1] == 2 && snap_leap(v[0])))
		return SD_EUSAGE;
	struct tm tm = { .tm_year = v[0] - 1900, .tm_mon = v[1] - 1,
			 .tm_mday = v[2], .tm_hour = v[3], .tm_min = v[4],
			 .tm_sec = v[5] };
	int64_t start = (int64_t)timegm(&tm), a, b;
	if (__builtin_mul_overflow(start, SNAP_NS, &a) ||
	    __builtin_mul_overflow(start + part[n - 1].unit, SNAP_NS, &b))
		return SD_EUSAGE;
	*out_ns = a;
	*end_ns = b;
	return 0;
}

/* ---------------------------------------------------------------- clear */

void store_snapshot_clear(struct store_snapshot *s)
{
	if (!s)
		return;
	free(s->hostname);
	free(s->username);
	for (size_t i = 0; i < s->ntags; i++)
		free(s->tags[i]);
	free(s->tags);
	for (size_t i = 0; i < s->nsources; i++) {
		free(s->sources[i].name);
		free(s->sources[i].path);
	}
	free(s->sources);
	memset(s, 0, sizeof(*s));
}

void store_snapshot_list_free(struct store_snapshot *list, size_t n)
{
	for (size_t i = 0; list && i < n; i++)
		store_snapshot_clear(&list[i]);
	free(list);
}

/* ---------------------------------------------------------------- to JSON */

static cJSON *snap_json_u64(uint64_t v)
{
	if (v < SNAP_PRINT_MAX)
		return cJSON_CreateNumber((double)v);
	char buf[24];
	snprintf(buf, sizeof(buf), "%" PRIu64, v);
	return cJSON_CreateString(buf);
}

static cJSON *snap_json_id(const sd_id *id)
{
	char hex[SD_ID_HEX_LEN + 1];
	sd_id_hex(id, hex);
	return cJSON_CreateString(hex);
}

static cJSON *snap_json_str(const char *s)
{
	return s ? cJSON_CreateString(s) : cJSON_CreateNull();
}

/* Adds item to o; a NULL item (out of memory) is remembered in *ok. */
static void snap_add(cJSON *o, const char *name, cJSON *item, bool *ok)
{
	if (!item || !cJSON_AddItemToObject(o, name, item)) {
		cJSON_Delete(item);
		*ok = false;
	}
}

static void snap_append(cJSON *a, cJSON *item, bool *ok)
{
	if (!item || !cJSON_AddItemToArray(a, item)) {
		cJSON_Delete(item);
		*ok = false;
	}
}

static cJSON *snap_to_json(const struct store_snapshot *s)
{
	char text[48], ns[24];
	bool ok = true;
	cJSON *o = cJSON_CreateObject(), *tags = cJSON_CreateArray(),
	      *srcs = cJSON_CreateArray(), *sum = cJSON_CreateObject();
	snap_time_text(s->time_ns, text);
	snprintf(ns, sizeof(ns), "%" PRId64, s->time_ns);
	if (!o) {
		cJSON_Delete(tags);
		cJSON_Delete(srcs);
		cJSON_Delete(sum);
		return NULL;
	}
	snap_add(o, "version", cJSON_CreateNumber(SNAP_VERSION), &ok);
	snap_add(o, "time", cJSON_CreateString(text), &ok);
	snap_add(o, "time_ns", cJSON_CreateString(ns), &ok);
	snap_add(o, "tree", snap_json_id(&s->tree), &ok);
	snap_add(o, "hostname", snap_json_str(s->hostname), &ok);
	snap_add(o, "username", snap_json_str(s->username), &ok);
	snap_add(o, "tags", tags, &ok);
	for (size_t i = 0; tags && i < s->ntags; i++)
		snap_append(tags, cJSON_CreateString(s->tags[i]), &ok);
	snap_add(o, "sources", srcs, &ok);
	for (size_t i = 0; srcs && i < s->nsources; i++) {
		cJSON *src = cJSON_CreateObject();
		if (src) {
			snap_add(src, "name",
				 cJSON_CreateString(s->sources[i].name), &ok);
			snap_add(src, "path",
				 cJSON_CreateString(s->sources[i].path), &ok);
			snap_add(src, "files",
				 snap_json_u64(s->sources[i].files), &ok);
			snap_add(src, "bytes",
				 snap_json_u64(s->sources[i].bytes), &ok);
		}
		snap_append(srcs, src, &ok);
	}
	snap_add(o, "parent",
		 sd_id_is_zero(&s->parent) ? cJSON_CreateNull()
					   : snap_json_id(&s->parent),
		 &ok);
	snap_add(o, "partial", cJSON_CreateBool(s->partial), &ok);
	snap_add(o, "summary", sum, &ok);
	for (size_t i = 0; sum && i < SNAP_NCOUNTERS; i++) {
		const char *base = (const char *)&s->summary;
		const uint64_t *v =
			(const uint64_t *)(base + snap_counters[i].offset);
		snap_add(sum, snap_counters[i].name, snap_json_u64(*v), &ok);
	}
	/* JSON has no NaN or infinity */
	double d = isfinite(s->summary.duration) ? s->summary.duration : 0;
	if (sum)
		snap_add(sum, "duration", cJSON_CreateNumber(d), &ok);
	if (!ok) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

int store_snapshot_save(struct store_repo *r, struct store_snapshot *s)
{
	for (size_t i = 0; i < s->ntags; i++)
		if (!s->tags[i])
			return SD_EUSAGE;
	for (size_t i = 0; i < s->nsources; i++)
		if (!s->sources[i].name || !s->sources[i].path)
			return SD_EUSAGE;
	cJSON *o = snap_to_json(s);
	char *text = o ? cJSON_Print(o) : NULL;
	cJSON_Delete(o);
	if (!text)
		return -ENOMEM;
	size_t len = strlen(text);
	char *file = realloc(text, len + 2);
	if (!file) {
		free(text);
		return -ENOMEM;
	}
	file[len++] = '\n';
	file[len] = '\0';
	sd_id id;
	char hex[SD_ID_HEX_LEN + 1];
	sd_hash(file, len, &id);
	sd_id_hex(&id, hex);
	int rc = store_file_write_atomic(r->snapshots_dir, hex, file, len,
					 0644);
	free(file);
	if (rc == 0)
		s->id = id;
	return rc;
}

/* ---------------------------------------------------------------- from JSON */

static int snap_get_str(const cJSON *o, const char *name, bool nullable,
			char **out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
	if (nullable && cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsString(v))
		return SD_ECORRUPT;
	return (*out = strdup(v->valuestring)) ? 0 : -ENOMEM;
}

static int snap_get_id(const cJSON *o, const char *name, bool nullable,
		       sd_id *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
	if (nullable && cJSON_IsNull(v)) {
		memset(out, 0, sizeof(*out));
		return 0;
	}
	if (!cJSON_IsString(v) || sd_id_parse(v->valuestring, out) < 0)
		return SD_ECORRUPT;
	return 0;
}

/* A decimal string of digits only (with an optional '-' when signed). */
static bool snap_parse_dec(const char *s, bool is_signed, int64_t *i,
			   uint64_t *u)
{
	const char *d = s + (is_signed && *s == '-');
	if (!*d || strspn(d, "0123456789") != strlen(d) ||
	    (d[0] == '0' && d[1]))
		return false;
	char *end;
	errno = 0;
	if (is_signed)
		*i = strtoll(s, &end, 10);
	else
		*u = strtoull(s, &end, 10);
	return errno == 0 && *end == '\0';
}

static int snap_get_u64(const cJSON *o, const char *name, uint64_t *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
	int64_t unused;
	if (cJSON_IsNumber(v) && v->valuedouble >= 0 &&
	    v->valuedouble < (double)SNAP_EXACT_MAX &&
	    v->valuedouble == floor(v->valuedouble)) {
		*out = (uint64_t)v->valuedouble;
		return 0;
	}
	if (cJSON_IsString(v) &&
	    snap_parse_dec(v->valuestring, false, &unused, out))
		return 0;
	return SD_ECORRUPT;
}

static int snap_get_lists(const cJSON *o, struct store_snapshot *s)
{
	const cJSON *tags = cJSON_GetObjectItemCaseSensitive(o, "tags");
	const cJSON *srcs = cJSON_GetObjectItemCaseSensitive(o, "sources");
	const cJSON *it;
	if (!cJSON_IsArray(tags) || !cJSON_IsArray(srcs))
		return SD_ECORRUPT;
	size_t nt = (size_t)cJSON_GetArraySize(tags);
	size_t ns = (size_t)cJSON_GetArraySize(srcs);
	s->tags = calloc(nt ? nt : 1, sizeof(*s->tags));
	s->sources = calloc(ns ? ns : 1, sizeof(*s->sources));
	if (!s->tags || !s->sources)
		return -ENOMEM;
	cJSON_ArrayForEach(it, tags)
	{
		if (!cJSON_IsString(it))
			return SD_ECORRUPT;
		if (!(s->tags[s->ntags++] = strdup(it->valuestring)))
			return -ENOMEM;
	}
	cJSON_ArrayForEach(it, srcs)
	{
		struct store_snapshot_source *src = &s->sources[s->nsources++];
		int r = snap_get_str(it, "name", false, &src->name);
		if (r == 0)
			r = snap_get_str(it, "path", false, &src->path);
		if (r == 0)
			r = snap_get_u64(it, "files", &src->files);
		if (r == 0)
			r = snap_get_u64(it, "bytes", &src->bytes);
		if (r < 0)
			return r;
	}
	return 0;
}

static int snap_get_summary(const cJSON *o, struct store_snapshot_summary *m)
{
	const cJSON *sum = cJSON_GetObjectItemCaseSensitive(o, "summary");
	if (!cJSON_IsObject(sum))
		return SD_ECORRUPT;
	for (size_t i = 0; i < SNAP_NCOUNTERS; i++) {
		uint64_t *v = (uint64_t *)((char *)m + snap_counters[i].offset);
		int r = snap_get_u64(sum, snap_counters[i].name, v);
		if (r < 0)
			return r;
	}
	const cJSON *d = cJSON_GetObjectItemCaseSensitive(sum, "duration");
	if (!cJSON_IsNumber(d))
		return SD_ECORRUPT;
	m->duration = d->valuedouble;
	return 0;
}

/* Parses and checks one record; *why says what was wrong. */
static int snap_from_json(const char *text, size_t len,
			  struct store_snapshot *s, const char **why)
{
	cJSON *o = cJSON_ParseWithLength(text, len);
	const cJSON *v;
	char want[48];
	uint64_t unused;
	int r = SD_ECORRUPT;
	memset(s, 0, sizeof(*s));
	*why = "not a snapshot record";
	if (!cJSON_IsObject(o))
		goto out;
	v = cJSON_GetObjectItemCaseSensitive(o, "version");
	if (!cJSON_IsNumber(v) || v->valuedouble != SNAP_VERSION) {
		*why = "unsupported record version";
		goto out;
	}
	*why = "a field is missing or invalid";
	v = cJSON_GetObjectItemCaseSensitive(o, "time_ns");
	if (!cJSON_IsString(v) ||
	    !snap_parse_dec(v->valuestring, true, &s->time_ns, &unused))
		goto out;
	snap_time_text(s->time_ns, want);
	v = cJSON_GetObjectItemCaseSensitive(o, "time");
	if (!cJSON_IsString(v) || strcmp(v->valuestring, want)) {
		*why = "time and time_ns disagree";
		goto out;
	}
	v = cJSON_GetObjectItemCaseSensitive(o, "partial");
	if (!cJSON_IsBool(v))
		goto out;
	s->partial = cJSON_IsTrue(v);
	if ((r = snap_get_id(o, "tree", false, &s->tree)) < 0 ||
	    (r = snap_get_id(o, "parent", true, &s->parent)) < 0 ||
	    (r = snap_get_str(o, "hostname", true, &s->hostname)) < 0 ||
	    (r = snap_get_str(o, "username", true, &s->username)) < 0 ||
	    (r = snap_get_lists(o, s)) < 0 ||
	    (r = snap_get_summary(o, &s->summary)) < 0)
		goto out;
	r = 0;
out:
	cJSON_Delete(o);
	if (r < 0)
		store_snapshot_clear(s);
	return r;
}

/* ---------------------------------------------------------------- list */

static bool snap_name_ok(const char *name)
{
	return strlen(name) == SD_ID_HEX_LEN &&
	       strspn(name, "0123456789abcdef") == SD_ID_HEX_LEN;
}

static int snap_order(const void *a, const void *b)
{
	const struct store_snapshot *x = a, *y = b;
	if (x->time_ns != y->time_ns)
		return x->time_ns < y->time_ns ? -1 : 1;
	return sd_id_cmp(&x->id, &y->id);
}

/* Reads one record. 0 and *keep false: skipped (logged or vanished). */
static int snap_load(const char *dir, const char *name,
		     struct store_snapshot *s, bool *keep)
{
	char *path = store_path_join(dir, name), *text = NULL;
	size_t len;
	const char *why;
	sd_id want, got;
	*keep = false;
	if (!path)
		return -ENOMEM;
	int r = store_file_read_all(path, &text, &len);
	if (r == -ENOENT) {
		r = 0; /* removed since readdir */
		goto out;
	}
	if (r == -EISDIR) {
		sd_log(SD_LOG_WARN, "snapshot %s: a directory, skipped", path);
		r = 0;
		goto out;
	}
	if (r < 0)
		goto out;
	sd_hash(text, len, &got);
	if (sd_id_parse(name, &want) < 0 || sd_id_cmp(&want, &got)) {
		sd_log(SD_LOG_WARN,
		       "snapshot %s: content does not match its name "
		       "(damaged or edited), skipped", path);
		goto out;
	}
	r = snap_from_json(text, len, s, &why);
	if (r == SD_ECORRUPT) {
		sd_log(SD_LOG_WARN, "snapshot %s: %s, skipped", path, why);
		r = 0;
		goto out;
	}
	if (r < 0)
		goto out;
	s->id = want;
	*keep = true;
out:
	free(text);
	free(path);
	return r;
}

int store_snapshot_list(struct store_repo *r, struct store_snapshot **out,
			size_t *n)
{
	struct store_snapshot *list = NULL;
	size_t count = 0, cap = 0;
	int rc = 0;
	DIR *d = opendir(r->snapshots_dir);
	if (!d)
		return -errno;
	for (;;) {
		errno = 0;
		struct dirent *e = readdir(d);
		if (!e) {
			rc = -errno;
			break;
		}
		if (!snap_name_ok(e->d_name))
			continue;
		if (count == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct store_snapshot *nl =
				realloc(list, ncap * sizeof(*nl));
			if (!nl) {
				rc = -ENOMEM;
				break;
			}
			list = nl;
			cap = ncap;
		}
		bool keep;
		rc = snap_load(r->snapshots_dir, e->d_name, &list[count],
			       &keep);
		if (rc < 0)
			break;
		count += keep;
	}
	closedir(d);
	if (rc < 0) {
		store_snapshot_list_free(list, count);
		return rc;
	}
	if (count > 1)
		qsort(list, count, sizeof(*list), snap_order);
	*out = list;
	*n = count;
	return 0;
}

/* ---------------------------------------------------------------- resolve */

static bool snap_is_hex(const char *s)
{
	return *s && strspn(s, "0123456789abcdefABCDEF") == strlen(s);
}

static bool snap_has_prefix(const sd_id *id, const char *prefix)
{
	char hex[SD_ID_HEX_LEN + 1];
	sd_id_hex(id, hex);
	for (size_t i = 0; prefix[i]; i++)
		if (hex[i] != tolower((unsigned char)prefix[i]))
			return false;
	return true;
}

/* Index of the match in list, or an error. */
static int snap_pick(const struct store_snapshot *list, size_t n,
		     const char *spec, size_t *at)
{
	if (!strcmp(spec, "latest")) {
		if (n == 0)
			return SD_ENOTFOUND;
		*at = n - 1;
		return 0;
	}
	if (snap_is_hex(spec)) {
		size_t len = strlen(spec), found = 0;
		if (len < 4 || len > SD_ID_HEX_LEN)
			return SD_EUSAGE;
		for (size_t i = 0; i < n; i++)
			if (snap_has_prefix(&list[i].id, spec)) {
				*at = i;
				found++;
			}
		return found == 1 ? 0 : found ? SD_EAMBIGUOUS : SD_ENOTFOUND;
	}
	int64_t start, end;
	int r = store_time_parse(spec, &start, &end);
	if (r < 0)
		return r;
	/* the newest point before the end of the named minute, hour... */
	for (size_t i = n; i-- > 0;)
		if (list[i].time_ns < end) {
			*at = i;
			return 0;
		}
	return SD_ENOTFOUND;
}

int store_snapshot_resolve(struct store_repo *r, const char *spec,
			   struct store_snapshot *out)
{
	struct store_snapshot *list;
	size_t n, at;
	int rc = store_snapshot_list(r, &list, &n);
	if (rc < 0)
		return rc;
	rc = snap_pick(list, n, spec, &at);
	if (rc == 0) {
		*out = list[at];
		memset(&list[at], 0, sizeof(list[at]));
	}
	store_snapshot_list_free(list, n);
	return rc;
}

/* ---------------------------------------------------------------- remove */

int store_snapshot_remove(struct store_repo *r, const sd_id *id)
{
	char hex[SD_ID_HEX_LEN + 1];
	sd_id_hex(id, hex);
	char *path = store_path_join(r->snapshots_dir, hex);
	if (!path)
		return -ENOMEM;
	int rc = unlink(path) < 0 ? -errno : 0;
	free(path);
	if (rc == -ENOENT)
		return SD_ENOTFOUND;
	if (rc < 0)
		return rc;
	return store_fsync_dir(r->snapshots_dir);
}

int store_snapshot_stamp(struct store_repo *r, struct timespec *out)
{
	struct stat st;
	if (stat(r->snapshots_dir, &st) < 0)
		return -errno;
	*out = st.st_mtim;
	return 0;
}
