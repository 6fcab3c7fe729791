/*
 * repo.c — creating and opening a repository; the writer lock.
 *
 * A directory is a repository when it holds a `format` file: JSON with the
 * format version, the repository id and the chunker parameters, which are
 * fixed at init because changing them would break deduplication. The
 * format file is written last by init, so a half-initialised directory is
 * not mistaken for a repository.
 *
 * Writers (backup, repair, forget, prune) hold flock(LOCK_EX) on `lock` for
 * their whole run; readers (mount, restore, check) take no lock: packs are
 * immutable and LMDB gives them consistent snapshots. The lock file holds
 * the holder's pid and command so a refused writer can say who holds it.
 */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store_i.h"

static const char *const draft_folders[] = {
	"manual", "llm-generated", "approved", "requests",
};

static int dir_is_empty(const char *path, bool *empty)
{
	DIR *d = opendir(path);
	if (!d)
		return -errno;
	struct dirent *de;
	*empty = true;
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
			*empty = false;
			break;
		}
	}
	closedir(d);
	return 0;
}

static int make_subdir(const char *repo, const char *name)
{
	char *p = store_path_join(repo, name);
	if (!p)
		return -ENOMEM;
	int r = mkdir(p, 0700) < 0 && errno != EEXIST ? -errno : 0;
	free(p);
	return r;
}

static int write_format_file(const char *path,
			     const struct store_chunker_params *c)
{
	uint8_t raw[SD_ID_LEN];
	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
		return -EIO;
	sd_id rid;
	memcpy(rid.b, raw, sizeof(raw));
	char hex[SD_ID_HEX_LEN + 1];
	sd_id_hex(&rid, hex);

	int r = -ENOMEM;
	char *text = NULL;
	cJSON *root = cJSON_CreateObject();
	cJSON *chunker = cJSON_CreateObject();
	if (!root || !chunker)
		goto out;
	cJSON_AddNumberToObject(root, "snapdraft_repository",
				STORE_FORMAT_VERSION);
	cJSON_AddStringToObject(root, "id", hex);
	cJSON_AddNumberToObject(chunker, "min_size", c->min_size);
	cJSON_AddNumberToObject(chunker, "avg_size", c->avg_size);
	cJSON_AddNumberToObject(chunker, "max_size", c->max_size);
	cJSON_AddItemToObject(root, "chunker", chunker);
	chunker = NULL;
	text = cJSON_Print(root);
	if (!text)
		goto out;
	size_t len = strlen(text);
	text[len] = '\n';
	r = store_file_write_atomic(path, "format", text, len + 1, 0600);
out:
	cJSON_Delete(chunker);
	cJSON_Delete(root);
	free(text);
	return r;
}

int store_repo_init(const char *path, const struct store_repo_init_options *o)
{
	struct store_chunker_params def = STORE_CHUNKER_PARAMS_DEFAULT;
	const struct store_chunker_params *c = o ? &o->chunker : &def;
	int r = store_chunker_params_check(c);
	if (r < 0)
		return r;
	r = store_mkdir_p(path, 0700);
	if (r < 0)
		return r;
	bool empty = false;
	r = dir_is_empty(path, &empty);
	if (r < 0)
		return r;
	if (!empty)
		return SD_EEXIST;

	static const char *const subdirs[] = { "packs", "snapshots", "drafts" };
	for (size_t i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
		r = make_subdir(path, subdirs[i]);
		if (r < 0)
			return r;
	}
	char *drafts = store_path_join(path, "drafts");
	if (!drafts)
		return -ENOMEM;
	for (size_t i = 0; i < sizeof(draft_folders) / sizeof(draft_folders[0]);
	     i++) {
		r = make_subdir(drafts, draft_folders[i]);
		if (r < 0)
			break;
	}
	free(drafts);
	if (r < 0)
		return r;

	char *index_dir = store_path_join(path, "index");
	if (!index_dir)
		return -ENOMEM;
	struct store_index *ix;
	r = store_index_open(index_dir, true, &ix);
	free(index_dir);
	if (r < 0)
		return r;
	store_index_close(ix);

	const char *cfg = store_config_default_text();
	r = store_file_write_atomic(path, "config.yaml", cfg, strlen(cfg), 0600);
	if (r < 0)
		return r;
	r = store_file_write_atomic(path, "lock", "", 0, 0600);
	if (r < 0)
		return r;
	return write_format_file(path, c);
}

static int read_format(struct store_repo *r, char *errbuf, size_t errlen)
{
	char *path = store_path_join(r->path, "format"), *text = NULL;
	if (!path)
		return -ENOMEM;
	size_t len;
	int rc = store_file_read_all(path, &text, &len);
	free(path);
	if (rc == -ENOENT || rc == -ENOTDIR) {
		snprintf(errbuf, errlen, "%s is not a snapdraft repository "
			 "(no format file; create one with 'snapdraft init')",
			 r->path);
		return SD_ENOREPO;
	}
	if (rc < 0) {
		snprintf(errbuf, errlen, "%s/format: %s", r->path,
			 sd_strerror(rc));
		return rc;
	}
	cJSON *root = cJSON_Parse(text);
	free(text);
	const cJSON *ver = cJSON_GetObjectItemCaseSensitive(root,
							   "snapdraft_repository");
	const cJSON *ch = cJSON_GetObjectItemCaseSensitive(root, "chunker");
	const cJSON *mn = cJSON_GetObjectItemCaseSensitive(ch, "min_size");
	const cJSON *av = cJSON_GetObjectItemCaseSensitive(ch, "avg_size");
	const cJSON *mx = cJSON_GetObjectItemCaseSensitive(ch, "max_size");
	if (!cJSON_IsNumber(ver)) {
		snprintf(errbuf, errlen, "%s/format is damaged: no format "
			 "version", r->path);
		rc = SD_ECORRUPT;
		goto out;
	}
	if (ver->valueint != STORE_FORMAT_VERSION) {
		snprintf(errbuf, errlen,
			 "repository format %d is %s than this snapdraft "
			 "supports (%d)%s", ver->valueint,
			 ver->valueint > STORE_FORMAT_VERSION ? "newer" : "older",
			 STORE_FORMAT_VERSION,
			 ver->valueint > STORE_FORMAT_VERSION ?
				 "; upgrade snapdraft" : "");
		rc = SD_EFORMAT;
		goto out;
	}
	if (!cJSON_IsNumber(mn) || !cJSON_IsNumber(av) || !cJSON_IsNumber(mx)) {
		snprintf(errbuf, errlen, "%s/format is damaged: no chunker "
			 "parameters", r->path);
		rc = SD_ECORRUPT;
		goto out;
	}
	r->chunker.min_size = (uint32_t)mn->valuedouble;
	r->chunker.avg_size = (uint32_t)av->valuedouble;
	r->chunker.max_size = (uint32_t)mx->valuedouble;
	rc = store_chunker_params_check(&r->chunker);
	if (rc < 0) {
		snprintf(errbuf, errlen, "%s/format is damaged: bad chunker "
			 "parameters", r->path);
		rc = SD_ECORRUPT;
	}
out:
	cJSON_Delete(root);
	return rc;
}

static int take_lock(struct store_repo *r, bool wait, char *errbuf,
		     size_t errlen)
{
	char *path = store_path_join(r->path, "lock");
	if (!path)
		return -ENOMEM;
	r->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	free(path);
	if (r->lock_fd < 0) {
		int e = -errno;
		snprintf(errbuf, errlen, "%s/lock: %s", r->path, sd_strerror(e));
		return e;
	}
	while (flock(r->lock_fd, LOCK_EX | (wait ? 0 : LOCK_NB)) < 0) {
		if (errno == EINTR)
			continue;
		if (errno != EWOULDBLOCK) {
			int e = -errno;
			snprintf(errbuf, errlen, "lock: %s", sd_strerror(e));
			return e;
		}
		char holder[128] = "";
		ssize_t n = pread(r->lock_fd, holder, sizeof(holder) - 1, 0);
		holder[n > 0 ? n : 0] = '\0';
		holder[strcspn(holder, "\n")] = '\0';
		snprintf(errbuf, errlen, "repository %s is locked by another "
			 "writer%s%s", r->path, holder[0] ? ": " : "", holder);
		return SD_ELOCKED;
	}
	char me[128];
	char comm[64] = "snapdraft";
	FILE *f = fopen("/proc/self/comm", "re");
	if (f) {
		if (fgets(comm, sizeof(comm), f))
			comm[strcspn(comm, "\n")] = '\0';
		fclose(f);
	}
	int len = snprintf(me, sizeof(me), "pid %ld (%s)\n", (long)getpid(),
			   comm);
	if (ftruncate(r->lock_fd, 0) == 0 &&
	    pwrite(r->lock_fd, me, (size_t)len, 0) < 0)
		sd_log(SD_LOG_DEBUG, "could not record the lock holder");
	return 0;
}

static int index_file_remove(const char *dir, const char *name)
{
	char *p = store_path_join(dir, name);
	if (!p)
		return -ENOMEM;
	int r = unlink(p) < 0 && errno != ENOENT ? -errno : 0;
	free(p);
	return r;
}

/* Writers other than repair refuse a missing index: starting an empty one
 * would silently lose deduplication against everything stored so far. */
static int index_open(struct store_repo *r, const char *dir, unsigned flags)
{
	bool write = flags & STORE_OPEN_WRITE;
	bool repair = write && (flags & STORE_OPEN_REPAIR);
	char *data = store_path_join(dir, "data.mdb");
	if (!data)
		return -ENOMEM;
	struct stat st;
	bool present = stat(data, &st) == 0;
	free(data);
	if (!present && !repair)
		return SD_ENOTFOUND;
	int rc = store_index_open(dir, write, &r->index);
	if (rc < 0 && repair) {
		rc = index_file_remove(dir, "data.mdb");
		if (rc == 0)
			rc = index_file_remove(dir, "lock.mdb");
		if (rc == 0)
			rc = store_index_open(dir, true, &r->index);
	}
	return rc;
}

int store_repo_open(const char *path, unsigned flags, struct store_repo **out,
		    char *errbuf, size_t errlen)
{
	char dummy[1];
	if (!errbuf || errlen == 0) {
		errbuf = dummy;
		errlen = sizeof(dummy);
	}
	errbuf[0] = '\0';
	struct store_repo *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->lock_fd = -1;
	r->flags = flags;
	int rc = -ENOMEM;
	r->path = strdup(path);
	if (!r->path)
		goto fail;
	r->snapshots_dir = store_path_join(path, "snapshots");
	r->drafts_dir = store_path_join(path, "drafts");
	char *packs = store_path_join(path, "packs");
	char *index_dir = store_path_join(path, "index");
	char *cfg = store_path_join(path, "config.yaml");
	if (!r->snapshots_dir || !r->drafts_dir || !packs || !index_dir || !cfg)
		goto fail_paths;

	rc = read_format(r, errbuf, errlen);
	if (rc < 0)
		goto fail_paths;
	if (flags & STORE_OPEN_WRITE) {
		rc = take_lock(r, flags & STORE_OPEN_WAIT, errbuf, errlen);
		if (rc < 0)
			goto fail_paths;
	}
	rc = store_config_load(cfg, &r->config, errbuf, errlen);
	if (rc < 0)
		goto fail_paths;
	rc = store_backend_local_new(packs, &r->backend);
	if (rc < 0) {
		snprintf(errbuf, errlen, "%s: %s", packs, sd_strerror(rc));
		goto fail_paths;
	}
	rc = index_open(r, index_dir, flags);
	if (rc < 0) {
		snprintf(errbuf, errlen, "the index of %s is %s; run 'snapdraft "
			 "repair --rebuild-index'", path,
			 rc == SD_ENOTFOUND ? "missing" : "damaged");
		rc = rc == SD_ENOTFOUND ? SD_ECORRUPT : rc;
		goto fail_paths;
	}
	free(packs);
	free(index_dir);
	free(cfg);
	*out = r;
	return 0;
fail_paths:
	free(packs);
	free(index_dir);
	free(cfg);
fail:
	store_repo_close(r);
	return rc;
}

void store_repo_close(struct store_repo *r)
{
	if (!r)
		return;
	store_index_close(r->index);
	store_backend_free(r->backend);
	store_config_free(r->config);
	if (r->lock_fd >= 0) {
		if (ftruncate(r->lock_fd, 0) < 0)
			sd_log(SD_LOG_DEBUG, "could not clear the lock holder");
		close(r->lock_fd);
	}
	free(r->path);
	free(r->snapshots_dir);
	free(r->drafts_dir);
	free(r);
}

const char *store_repo_path(const struct store_repo *r)
{
	return r->path;
}

const struct store_config *store_repo_config(const struct store_repo *r)
{
	return r->config;
}

const struct store_chunker_params *store_repo_chunker(const struct store_repo *r)
{
	return &r->chunker;
}

struct store_backend *store_repo_backend(struct store_repo *r)
{
	return r->backend;
}
