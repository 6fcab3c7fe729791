/*
 * cmd_backup.c — `snapdraft backup`: sources from arguments or config,
 * a progress line on a terminal, a summary (text or JSON) at the end.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tools.h"

struct string_list {
	char **v;
	size_t n, cap;
};

static int list_add(struct string_list *l, const char *s)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;
		char **v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	if (!(l->v[l->n] = strdup(s)))
		return -ENOMEM;
	l->n++;
	return 0;
}

static void list_free(struct string_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
}

static int exclude_file_read(const char *path, struct string_list *l)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	char line[4096];
	int r = 0;
	while (r == 0 && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\r\n")] = '\0';
		char *p = line;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p && *p != '#')
			r = list_add(l, p);
	}
	fclose(f);
	return r;
}

struct progress_state {
	bool tty;
	uint64_t estimate; /* bytes of the previous point, or 0 */
	struct timespec start;
};

static void on_progress(const struct store_backup_progress *p, void *ctx)
{
	struct progress_state *s = ctx;
	if (!s->tty)
		return;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	double secs = (double)(now.tv_sec - s->start.tv_sec) +
		      (double)(now.tv_nsec - s->start.tv_nsec) / 1e9;
	char done[32], rate[32], eta[32] = "";
	tools_format_bytes(p->bytes_done, done, sizeof(done));
	tools_format_bytes(secs > 0 ? (unsigned long long)(p->bytes_done / secs)
				    : 0, rate, sizeof(rate));
	if (s->estimate > p->bytes_done && p->bytes_done > 0 && secs > 1) {
		double left = (double)(s->estimate - p->bytes_done) /
			      ((double)p->bytes_done / secs);
		snprintf(eta, sizeof(eta), ", ETA %d:%02d", (int)left / 60,
			 (int)left % 60);
	}
	fprintf(stderr, "\r\033[K%llu files, %s, %s/s%s",
		(unsigned long long)p->files_done, done, rate, eta);
}

static void on_warn(const char *path, int err, void *ctx)
{
	struct progress_state *s = ctx;
	if (s->tty)
		fputs("\r\033[K", stderr);
	tools_warn("%s: %s (left out)", path, sd_strerror(err));
}

static cJSON *summary_json(const struct store_snapshot *s, bool dry_run)
{
	char id[SD_ID_HEX_LEN + 1], when[32];
	sd_id_hex(&s->id, id);
	store_time_format(s->time_ns, when);
	const struct store_snapshot_summary *m = &s->summary;
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "id", dry_run ? "" : id);
	cJSON_AddStringToObject(o, "time", when);
	cJSON_AddBoolToObject(o, "success", true);
	cJSON_AddBoolToObject(o, "partial", s->partial);
	cJSON_AddBoolToObject(o, "dry_run", dry_run);
	cJSON_AddNumberToObject(o, "duration", m->duration);
	tools_sources_json(o, s);
	cJSON_AddNumberToObject(o, "files", (double)m->files);
	cJSON_AddNumberToObject(o, "dirs", (double)m->dirs);
	cJSON_AddNumberToObject(o, "others", (double)m->others);
	cJSON_AddNumberToObject(o, "files_new", (double)m->files_new);
	cJSON_AddNumberToObject(o, "files_changed", (double)m->files_changed);
	cJSON_AddNumberToObject(o, "files_unchanged", (double)m->files_unchanged);
	cJSON_AddNumberToObject(o, "total_bytes", (double)m->bytes);
	cJSON_AddNumberToObject(o, "bytes_read", (double)m->bytes_read);
	cJSON_AddNumberToObject(o, "blobs_added", (double)m->blobs_added);
	cJSON_AddNumberToObject(o, "bytes_added", (double)m->bytes_added);
	cJSON_AddNumberToObject(o, "stored_added", (double)m->stored_added);
	cJSON_AddNumberToObject(o, "warnings", (double)m->warnings);
	return o;
}

static void summary_print(const struct store_snapshot *s, bool dry_run)
{
	char id[SD_ID_HEX_LEN + 1], when[32], total[32], added[32], stored[32];
	const struct store_snapshot_summary *m = &s->summary;
	sd_id_hex(&s->id, id);
	store_time_format(s->time_ns, when);
	tools_format_bytes(m->bytes, total, sizeof(total));
	tools_format_bytes(m->bytes_added, added, sizeof(added));
	tools_format_bytes(m->stored_added, stored, sizeof(stored));
	if (dry_run)
		printf("dry run: nothing was written\n");
	else
		printf("snapshot %.8s saved at %s%s\n", id, when,
		       s->partial ? " (partial: some files were left out)" : "");
	printf("  files: %llu new, %llu changed, %llu unchanged; %llu dirs, "
	       "%llu others; %s in total\n",
	       (unsigned long long)m->files_new,
	       (unsigned long long)m->files_changed,
	       (unsigned long long)m->files_unchanged,
	       (unsigned long long)m->dirs, (unsigned long long)m->others,
	       total);
	printf("  added: %s (%s stored) in %.2f s\n", added, stored,
	       m->duration);
}

/* Turns PATH arguments (or config sources) into named sources, plus the
 * repository's drafts/ (drafts_dir, NULL to leave it out) as "drafts". */
static int sources_build(int argc, char **argv,
			 const struct store_config *cfg, const char *drafts_dir,
			 struct store_snapshot_source **out, size_t *n)
{
	size_t count = argc > 0 ? (size_t)argc : cfg->nsources;
	if (count == 0) {
		tools_error("no paths given and no sources in config.yaml "
			    "(add one with 'snapdraft config set sources.NAME PATH')");
		return EXIT_USAGE;
	}
	struct store_snapshot_source *s = calloc(count + 1, sizeof(*s));
	if (!s)
		return EXIT_FAILURE_;
	*out = s;
	*n = count + (drafts_dir != NULL);
	for (size_t i = 0; i < *n; i++) {
		if (i == count) {
			s[i].name = strdup("drafts");
			s[i].path = strdup(drafts_dir);
			if (!s[i].name || !s[i].path)
				return EXIT_FAILURE_;
		} else {
			const char *arg = argc > 0 ? argv[i] :
				cfg->sources[i].path;
			char *real = realpath(arg, NULL);
			if (!real) {
				tools_error("%s: %s", arg, sd_strerror(-errno));
				return EXIT_FAILURE_;
			}
			s[i].path = real;
			if (argc > 0) {
				const char *base = strrchr(real, '/');
				base = base && base[1] ? base + 1 : "root";
				s[i].name = strdup(base);
			} else {
				s[i].name = strdup(cfg->sources[i].name);
			}
			if (!s[i].name)
				return EXIT_FAILURE_;
		}
		for (size_t k = 0; k < i; k++) {
			if (strcmp(s[k].name, s[i].name))
				continue;
			if (i == count) {
				tools_error("the source %s is named 'drafts', "
					    "which every point uses for the "
					    "repository's drafts/; name it "
					    "otherwise in config.yaml, or pass "
					    "--no-drafts", s[k].path);
				return EXIT_USAGE;
			}
			tools_error("two sources would be named '%s' (%s and %s); "
				    "back them up separately or name them in "
				    "config.yaml", s[i].name, s[k].path,
				    s[i].path);
			return EXIT_USAGE;
		}
	}
	return EXIT_OK;
}

static uint64_t previous_bytes(struct store_repo *repo,
			       const struct store_snapshot_source *src,
			       size_t n)
{
	struct store_snapshot *list;
	size_t count;
	uint64_t total = 0;
	if (store_snapshot_list(repo, &list, &count) < 0)
		return 0;
	for (size_t k = 0; k < n; k++)
		for (size_t i = count; i-- > 0;) {
			bool found = false;
			for (size_t j = 0; j < list[i].nsources && !found; j++)
				if (!strcmp(list[i].sources[j].path, src[k].path)) {
					total += list[i].sources[j].bytes;
					found = true;
				}
			if (found)
				break;
		}
	store_snapshot_list_free(list, count);
	return total;
}

int cmd_backup(int argc, char **argv)
{
	static const struct option opts[] = {
		TOOLS_COMMON_LONGOPTS,
		{ "exclude", required_argument, NULL, 'e' },
		{ "exclude-file", required_argument, NULL, 'E' },
		{ "tag", required_argument, NULL, 't' },
		{ "time", required_argument, NULL, 'T' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "force", no_argument, NULL, 'f' },
		{ "wait", no_argument, NULL, 'w' },
		{ "no-drafts", no_argument, NULL, 'D' },
		{ 0 },
	};
	struct string_list excludes = { 0 }, tags = { 0 };
	struct store_backup_options o = { 0 };
	struct store_snapshot_source *sources = NULL;
	size_t nsources = 0;
	struct store_repo *repo = NULL;
	struct store_snapshot snap = { 0 };
	unsigned flags = STORE_OPEN_WRITE;
	bool with_drafts = true;
	char *drafts_dir = NULL;
	int rc = EXIT_OK, c;

	while ((c = getopt_long(argc, argv, "qhe:t:n", opts, NULL)) != -1) {
		int k = tools_common_option(c, "backup");
		if (k < 0)
			goto out;
		if (k > 0)
			continue;
		int e = 0;
		switch (c) {
		case 'e':
			e = list_add(&excludes, optarg);
			break;
		case 'E':
			e = exclude_file_read(optarg, &excludes);
			if (e < 0) {
				tools_error("--exclude-file %s: %s", optarg,
					    sd_strerror(e));
				rc = EXIT_FAILURE_;
				goto out;
			}
			break;
		case 't':
			e = list_add(&tags, optarg);
			break;
		case 'T': {
			int64_t end;
			if (store_time_parse(optarg, &o.time_ns, &end) < 0) {
				rc = tools_usage_error("backup", "--time '%s' is "
						       "not a UTC time like "
						       "2026-11-22T10:30:00Z",
						       optarg);
				goto out;
			}
			break;
		}
		case 'n':
			o.dry_run = true;
			break;
		case 'f':
			o.force_read = true;
			break;
		case 'w':
			flags |= STORE_OPEN_WAIT;
			break;
		case 'D':
			with_drafts = false;
			break;
		default:
			rc = tools_bad_option("backup", argv);
			goto out;
		}
		if (e < 0) {
			rc = EXIT_FAILURE_;
			goto out;
		}
	}
	rc = tools_repo_open(flags, &repo);
	if (rc)
		goto out;
	const struct store_config *cfg = store_repo_config(repo);
	struct stat dst;
	if (with_drafts) {
		char *dir = NULL;
		if (asprintf(&dir, "%s/drafts", store_repo_path(repo)) < 0) {
			rc = EXIT_FAILURE_;
			goto out;
		}
		/* A repository made before drafts existed has none. */
		if (stat(dir, &dst) == 0 && S_ISDIR(dst.st_mode))
			drafts_dir = realpath(dir, NULL);
		free(dir);
	}
	rc = sources_build(argc - optind, argv + optind, cfg, drafts_dir,
			   &sources, &nsources);
	if (rc)
		goto out;
	for (size_t i = 0; i < cfg->nexcludes; i++)
		if (list_add(&excludes, cfg->excludes[i]) < 0) {
			rc = EXIT_FAILURE_;
			goto out;
		}

	struct progress_state ps = {
		.tty = !tools_globals.quiet && !tools_globals.json &&
		       isatty(STDERR_FILENO),
	};
	clock_gettime(CLOCK_MONOTONIC, &ps.start);
	if (ps.tty)
		ps.estimate = previous_bytes(repo, sources, nsources);
	o.sources = sources;
	o.nsources = nsources;
	o.excludes = (const char *const *)excludes.v;
	o.nexcludes = excludes.n;
	o.tags = (const char *const *)tags.v;
	o.ntags = tags.n;
	o.progress = on_progress;
	o.warn = on_warn;
	o.ctx = &ps;
	int r = store_backup_run(repo, &o, &snap);
	if (ps.tty)
		fputs("\r\033[K", stderr);
	if (r < 0 && r != SD_EPARTIAL) {
		tools_error("backup failed: %s; no backup point was saved",
			    sd_strerror(r));
		rc = tools_exit_code(r);
		goto out;
	}
	if (tools_globals.json) {
		cJSON *j = summary_json(&snap, o.dry_run);
		char *text = cJSON_Print(j);
		if (text)
			puts(text);
		free(text);
		cJSON_Delete(j);
	} else if (!tools_globals.quiet) {
		summary_print(&snap, o.dry_run);
	} else if (!o.dry_run) {
		char id[SD_ID_HEX_LEN + 1];
		sd_id_hex(&snap.id, id);
		printf("%.8s\n", id);
	}
	rc = tools_exit_code(r);
out:
	store_snapshot_clear(&snap);
	store_repo_close(repo);
	for (size_t i = 0; i < nsources; i++) {
		free(sources[i].name);
		free(sources[i].path);
	}
	free(sources);
	free(drafts_dir);
	list_free(&excludes);
	list_free(&tags);
	return rc;
}
