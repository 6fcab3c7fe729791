/*
 * mountpoint.c — is this directory fit to mount on, and unmounting.
 *
 * Checked before anything is mounted, so a refusal leaves nothing behind:
 * the directory exists, is a directory, has nothing mounted on it, and is
 * empty. One thing is repaired instead of refused: a FUSE mount whose
 * server died answers with ENOTCONN ("Transport endpoint is not
 * connected"); it is detached lazily and the new mount takes its place.
 * The probe is statfs(), which always reaches the server; stat() may be
 * answered from attributes the kernel still caches.
 *
 * Whether something is mounted comes from /proc/self/mountinfo, matched on
 * the canonical path (realpath of the parent plus the last component:
 * resolving the mountpoint itself would ask the dead server). Unmounting
 * is umount2() for root and fusermount3 -u for everyone else, as libfuse
 * does it.
 */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fs_i.h"

extern char **environ;

int fs_path_canonical(const char *path, char *out, size_t len,
		      char *errbuf, size_t errlen)
{
	char buf[PATH_MAX], parent[PATH_MAX];
	const char *base;
	char *slash;
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof(buf)) {
		snprintf(errbuf, errlen, "invalid mountpoint '%s'", path);
		return -EINVAL;
	}
	memcpy(buf, path, n + 1);
	while (n > 1 && buf[n - 1] == '/')
		buf[--n] = '\0';
	slash = strrchr(buf, '/');
	if (!slash) {
		base = buf;
		strcpy(parent, ".");
	} else if (slash == buf) {
		base = slash + 1;
		strcpy(parent, "/");
	} else {
		*slash = '\0';
		base = slash + 1;
		snprintf(parent, sizeof(parent), "%s", buf);
	}
	if (!realpath(parent, out)) {
		int r = -errno;
		snprintf(errbuf, errlen, "mountpoint %s does not exist", path);
		return r;
	}
	if (*base && strcmp(base, ".") != 0) {
		size_t pl = strlen(out);
		if (pl + 1 + strlen(base) + 1 > len) {
			snprintf(errbuf, errlen, "mountpoint path too long");
			return -ENAMETOOLONG;
		}
		snprintf(out + pl, len - pl, "%s%s", pl > 1 ? "/" : "", base);
	}
	return 0;
}

/* Undoes mountinfo's octal escapes (\040 for space...) in place. */
static void unescape(char *s)
{
	char *w = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '7' && s[2] >= '0' &&
		    s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*w++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 +
				      (s[3] - '0'));
			s += 3;
		} else {
			*w++ = *s;
		}
	}
	*w = '\0';
}

int fs_mount_lookup(const char *canon, char *fstype, size_t len)
{
	FILE *fp = fopen("/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t cap = 0;
	int found = 0;

	if (!fp)
		return -errno;
	/* The last match wins: it is the one on top. */
	while (getline(&line, &cap, fp) > 0) {
		char *save = NULL, *tok, *mnt = NULL, *sep;
		int field = 0;

		sep = strstr(line, " - ");
		if (!sep)
			continue;
		*sep = '\0';
		for (tok = strtok_r(line, " ", &save); tok;
		     tok = strtok_r(NULL, " ", &save))
			if (++field == 5)
				mnt = tok;
		if (!mnt)
			continue;
		unescape(mnt);
		if (strcmp(mnt, canon) != 0)
			continue;
		found = 1;
		tok = strtok_r(sep + 3, " ", &save);
		snprintf(fstype, len, "%s", tok ? tok : "?");
	}
	free(line);
	fclose(fp);
	return found;
}

static bool is_fuse(const char *fstype)
{
	return strncmp(fstype, "fuse", 4) == 0;
}

/* Runs fusermount3 -u [-z] canon and waits for it. */
static int fusermount_unmount(const char *canon, bool lazy)
{
	char *argv[6];
	int argc = 0, status;
	pid_t pid;
	int r;

	argv[argc++] = (char *)"fusermount3";
	argv[argc++] = (char *)"-u";
	argv[argc++] = (char *)"-q";
	if (lazy)
		argv[argc++] = (char *)"-z";
	argv[argc++] = (char *)canon;
	argv[argc] = NULL;
	r = posix_spawnp(&pid, "fusermount3", NULL, NULL, argv, environ);
	if (r != 0)
		return -r;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return -EBUSY;
	return 0;
}

int fs_unmount(const char *mountpoint, bool lazy, char *errbuf, size_t errlen)
{
	char canon[PATH_MAX], fstype[64];
	int r;

	r = fs_path_canonical(mountpoint, canon, sizeof(canon), errbuf, errlen);
	if (r < 0)
		return r;
	r = fs_mount_lookup(canon, fstype, sizeof(fstype));
	if (r < 0) {
		snprintf(errbuf, errlen, "cannot read the mount table: %s",
			 strerror(-r));
		return r;
	}
	if (r == 0) {
		snprintf(errbuf, errlen, "nothing is mounted on %s", canon);
		return -EINVAL;
	}
	if (!is_fuse(fstype)) {
		snprintf(errbuf, errlen, "%s is a %s mount, not a FUSE mount",
			 canon, fstype);
		return -EINVAL;
	}
	if (geteuid() == 0) {
		r = umount2(canon, lazy ? MNT_DETACH : 0) < 0 ? -errno : 0;
	} else {
		r = fusermount_unmount(canon, lazy);
	}
	if (r == -EBUSY)
		snprintf(errbuf, errlen,
			 "%s is busy (files open or a shell inside it); "
			 "close them or unmount lazily", canon);
	else if (r < 0)
		snprintf(errbuf, errlen, "cannot unmount %s: %s", canon,
			 strerror(-r));
	return r;
}

static int dir_is_empty(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	int r = 1;

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
			r = 0;
			break;
		}
	}
	closedir(d);
	return r;
}

/* 1 when the FUSE mount at canon has no server any more. statfs always
 * goes to the server; stat may be answered from the kernel's cache. */
static int fuse_mount_is_stale(const char *canon)
{
	struct statfs sf;

	if (statfs(canon, &sf) == 0)
		return 0;
	return errno == ENOTCONN || errno == ECONNABORTED;
}

int fs_mountpoint_prepare(const char *mountpoint, char *canon, size_t len,
			  char *errbuf, size_t errlen)
{
	char fstype[64];
	struct stat st;
	int r;

	r = fs_path_canonical(mountpoint, canon, len, errbuf, errlen);
	if (r < 0)
		return r;
	r = fs_mount_lookup(canon, fstype, sizeof(fstype));
	if (r > 0 && is_fuse(fstype) && fuse_mount_is_stale(canon)) {
		/* A FUSE mount whose server is gone: take its place. */
		sd_log(SD_LOG_WARN, "mount: %s: replacing a stale mount", canon);
		r = fs_unmount(canon, true, errbuf, errlen);
		if (r < 0)
			return r;
		r = fs_mount_lookup(canon, fstype, sizeof(fstype));
	}
	if (r > 0) {
		snprintf(errbuf, errlen, "%s is already mounted (%s)", canon,
			 fstype);
		return -EBUSY;
	}
	if (stat(canon, &st) != 0) {
		r = -errno;
		if (r == -ENOENT)
			snprintf(errbuf, errlen, "mountpoint %s does not exist",
				 canon);
		else
			snprintf(errbuf, errlen, "cannot use mountpoint %s: %s",
				 canon, strerror(-r));
		return r;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(errbuf, errlen, "mountpoint %s is not a directory",
			 canon);
		return -ENOTDIR;
	}
	r = dir_is_empty(canon);
	if (r < 0) {
		snprintf(errbuf, errlen, "cannot read mountpoint %s: %s", canon,
			 strerror(-r));
		return r;
	}
	if (r == 0) {
		snprintf(errbuf, errlen, "mountpoint %s is not empty", canon);
		return -ENOTEMPTY;
	}
	return 0;
}
