/*
 * fileutil.c — durable file writes and small path helpers.
 *
 * Every persistent file snapdraft writes outside LMDB and packs (snapshot
 * records, config.yaml, the format file) goes through
 * store_file_write_atomic: temp file in the same directory, write, fsync,
 * rename over the old name, fsync the directory. A crash leaves the old or
 * the new content, never a torn file.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store_i.h"

char *store_path_join(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	char *p = malloc(la + lb + 2);
	if (!p)
		return NULL;
	memcpy(p, a, la);
	p[la] = '/';
	memcpy(p + la + 1, b, lb + 1);
	return p;
}

int store_fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = fsync(fd) < 0 ? -errno : 0;
	close(fd);
	return r;
}

int store_mkdir_p(const char *path, mode_t mode)
{
	char *p = strdup(path);
	if (!p)
		return -ENOMEM;
	int r = 0;
	for (char *s = p + 1;; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;
		*s = '\0';
		if (mkdir(p, mode) < 0 && errno != EEXIST) {
			r = -errno;
			break;
		}
		*s = c;
		if (c == '\0')
			break;
	}
	free(p);
	return r;
}

static int write_full(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

int store_file_write_atomic(const char *dir, const char *name,
			    const void *data, size_t len, mode_t mode)
{
	char tmp[64];
	snprintf(tmp, sizeof(tmp), ".tmp-%ld-%lx", (long)getpid(),
		 (unsigned long)random());
	char *tmp_path = store_path_join(dir, tmp);
	char *path = store_path_join(dir, name);
	int r = 0, fd = -1;
	if (!tmp_path || !path) {
		r = -ENOMEM;
		goto out;
	}
	fd = open(tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	r = write_full(fd, data, len);
	if (r < 0)
		goto out_unlink;
	if (fsync(fd) < 0) {
		r = -errno;
		goto out_unlink;
	}
	if (close(fd) < 0) {
		fd = -1;
		r = -errno;
		goto out_unlink;
	}
	fd = -1;
	if (rename(tmp_path, path) < 0) {
		r = -errno;
		goto out_unlink;
	}
	r = store_fsync_dir(dir);
	goto out;
out_unlink:
	unlink(tmp_path);
out:
	if (fd >= 0)
		close(fd);
	free(tmp_path);
	free(path);
	return r;
}

int store_file_read_all(const char *path, char **out, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	int r = 0;
	char *buf = NULL;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto out;
	}
	size_t cap = (size_t)st.st_size + 1, used = 0;
	buf = malloc(cap);
	if (!buf) {
		r = -ENOMEM;
		goto out;
	}
	for (;;) {
		if (used + 1 >= cap) {
			char *n = realloc(buf, cap * 2);
			if (!n) {
				r = -ENOMEM;
				goto out;
			}
			buf = n;
			cap *= 2;
		}
		ssize_t got = read(fd, buf + used, cap - used - 1);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			goto out;
		}
		if (got == 0)
			break;
		used += (size_t)got;
	}
	buf[used] = '\0';
	*out = buf;
	*len = used;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return r;
}

int store_file_lock_shared_wait(int fd, int wait_ms)
{
	struct timespec nap = { 0, 20 * 1000000L };
	for (int waited = 0;; waited += 20) {
		if (flock(fd, LOCK_SH | LOCK_NB) == 0)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno != EWOULDBLOCK)
			return -errno;
		if (waited >= wait_ms)
			return -ETIMEDOUT;
		nanosleep(&nap, NULL);
	}
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int store_dir_names_sorted(int dirfd, char ***out, size_t *n)
{
	int fd = dup(dirfd);
	if (fd < 0)
		return -errno;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	char **names = NULL;
	size_t count = 0, cap = 0;
	int r = 0;
	struct dirent *de;
	errno = 0;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (count == cap) {
			cap = cap ? cap * 2 : 32;
			char **nn = realloc(names, cap * sizeof(*nn));
			if (!nn) {
				r = -ENOMEM;
				break;
			}
			names = nn;
		}
		if (!(names[count] = strdup(de->d_name))) {
			r = -ENOMEM;
			break;
		}
		count++;
	}
	if (r == 0 && errno)
		r = -errno;
	closedir(d);
	if (count > 1)
		qsort(names, count, sizeof(*names), name_cmp);
	*out = names;
	*n = count;
	return r;
}
