/* Unit tests of store/restore.c: a real repository in a temp directory,
 * a generated tree holding every node type, backed up and restored, and the
 * result compared entry by entry with lstat, readlink, xattrs and content.
 * Device nodes, foreign owners and trusted.* xattrs are only generated when
 * the tests run as root. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "store_i.h"

#define ATIME_SEC 1700000000
#define ATIME_NSEC 123456789

struct fixture {
	char dir[64];
	char repo[96];
	char src[96];
	char dst[96];
	struct store_repo *r;
	struct store_snapshot snap;
	long mtime_seq;
	/* warn() records */
	char first_warn[512];
	int first_err;
	int nwarn;
	int nprogress;
};

static void path_fmt(char *out, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void path_fmt(char *out, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(out, len, fmt, ap);
	va_end(ap);
	assert_true(n > 0 && (size_t)n < len);
}

/* Every entry gets its own mtime (nanoseconds included) and one fixed
 * atime, so a restore that mixes them up is caught. */
static void stamp(struct fixture *f, const char *path)
{
	long k = ++f->mtime_seq;
	struct timespec ts[2] = {
		{ ATIME_SEC, ATIME_NSEC },
		{ 1600000000 + k * 1000, (k * 7919) % 1000000000 },
	};
	assert_int_equal(utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW), 0);
}

static void put_file(struct fixture *f, const char *rel, const void *data,
		     size_t len, mode_t mode)
{
	char p[512];
	path_fmt(p, sizeof(p), "%s/%s", f->src, rel);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
	stamp(f, p);
}

static void put_dir(struct fixture *f, const char *rel)
{
	char p[512];
	path_fmt(p, sizeof(p), "%s/%s", f->src, rel);
	assert_int_equal(mkdir(p, 0755), 0);
}

/* Directory times go last, deepest first, once their content is made. */
static void stamp_dirs(struct fixture *f, const char *rel)
{
	char p[512];
	path_fmt(p, sizeof(p), "%s%s%s", f->src, *rel ? "/" : "", rel);
	DIR *d = opendir(p);
	assert_non_null(d);
	struct dirent *de;
	char names[64][256];
	int n = 0;
	while ((de = readdir(d))) {
		if (de->d_type == DT_DIR && strcmp(de->d_name, ".") &&
		    strcmp(de->d_name, "..") && n < 64)
			strcpy(names[n++], de->d_name);
	}
	closedir(d);
	for (int i = 0; i < n; i++) {
		char sub[512];
		path_fmt(sub, sizeof(sub), "%s%s%s", rel, *rel ? "/" : "",
			 names[i]);
		stamp_dirs(f, sub);
	}
	stamp(f, p);
}

static void make_tree(struct fixture *f)
{
	assert_int_equal(mkdir(f->src, 0755), 0);
	put_dir(f, "content");
	put_dir(f, "content/posts");
	put_dir(f, "content/empty");
	put_dir(f, "locked");
	const char *a = "---\ntitle: A\n---\nHello, world.\n";
	put_file(f, "content/posts/a.md", a, strlen(a), 0644);
	put_file(f, "content/posts/b.md", "bee\n", 4, 0600);
	put_file(f, "content/posts/\xed\x95\x9c\xea\xb8\x80 name with space.md",
		 "korean\n", 7, 0640);
	put_file(f, "content/empty.txt", "", 0, 0444);
	put_file(f, "locked/inside", "x", 1, 0644);

	/* Several chunks with the test chunker (min 1 KiB, max 16 KiB). */
	size_t big_len = 300 * 1024;
	uint8_t *big = malloc(big_len);
	uint32_t x = 12345;
	for (size_t i = 0; i < big_len; i++) {
		x = x * 1103515245u + 12345u;
		big[i] = (uint8_t)(x >> 16);
	}
	put_file(f, "big.bin", big, big_len, 0644);
	free(big);

	/* Sparse: data at 0 and at 1 MiB, a hole between, and a hole at the
	 * end (size 3 MiB). */
	char p[512];
	path_fmt(p, sizeof(p), "%s/sparse.img", f->src);
	int fd = open(p, O_WRONLY | O_CREAT, 0644);
	assert_true(fd >= 0);
	char blk[4096];
	memset(blk, 'S', sizeof(blk));
	assert_int_equal(pwrite(fd, blk, sizeof(blk), 0), (ssize_t)sizeof(blk));
	assert_int_equal(pwrite(fd, blk, sizeof(blk), 1 << 20),
			 (ssize_t)sizeof(blk));
	assert_int_equal(ftruncate(fd, 3 << 20), 0);
	close(fd);
	stamp(f, p);

	/* Owner, setuid, sticky, xattrs. */
	bool root = geteuid() == 0;
	path_fmt(p, sizeof(p), "%s/tool", f->src);
	put_file(f, "tool", "#!/bin/sh\n", 10, 0755);
	assert_true(!root || chown(p, 1234, 5678) == 0);
	assert_int_equal(chmod(p, 04755), 0);
	assert_int_equal(setxattr(p, "user.comment", "set-uid tool", 12, 0), 0);
	assert_true(!root || setxattr(p, "trusted.bin", "\x00\x01\x02", 3,
				      0) == 0);
	stamp(f, p);
	put_dir(f, "shared");
	path_fmt(p, sizeof(p), "%s/shared", f->src);
	assert_true(!root || chown(p, 1000, 1000) == 0);
	assert_int_equal(chmod(p, 01777), 0);
	assert_int_equal(setxattr(p, "user.dir", "d", 1, 0), 0);

	/* Hard links across directories, and a hard-linked fifo. */
	put_file(f, "content/posts/linked.md", "linked\n", 7, 0644);
	char q[512];
	path_fmt(p, sizeof(p), "%s/content/posts/linked.md", f->src);
	path_fmt(q, sizeof(q), "%s/shared/also-linked.md", f->src);
	assert_int_equal(link(p, q), 0);

	/* Symlinks, fifo, devices, socket. */
	path_fmt(p, sizeof(p), "%s/content/latest", f->src);
	assert_int_equal(symlink("posts/a.md", p), 0);
	assert_true(!root || lchown(p, 1234, 5678) == 0);
	stamp(f, p);
	path_fmt(p, sizeof(p), "%s/dangling", f->src);
	assert_int_equal(symlink("/nonexistent/target", p), 0);
	stamp(f, p);
	path_fmt(p, sizeof(p), "%s/pipe", f->src);
	assert_int_equal(mkfifo(p, 0620), 0);
	stamp(f, p);
	if (root) {
		path_fmt(p, sizeof(p), "%s/null", f->src);
		assert_int_equal(mknod(p, S_IFCHR | 0666, makedev(1, 3)), 0);
		stamp(f, p);
		path_fmt(p, sizeof(p), "%s/loop", f->src);
		assert_int_equal(mknod(p, S_IFBLK | 0660, makedev(7, 200)), 0);
		stamp(f, p);
	}
	path_fmt(p, sizeof(p), "%s/sock", f->src);
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	assert_true(strlen(p) < sizeof(sa.sun_path));
	strcpy(sa.sun_path, p);
	assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(s);
	assert_int_equal(chmod(p, 0751), 0);
	stamp(f, p);

	/* Deep nesting. */
	char rel[512] = "deep";
	put_dir(f, rel);
	for (int i = 0; i < 30; i++) {
		strcat(rel, "/d");
		put_dir(f, rel);
	}
	strcat(rel, "/leaf");
	put_file(f, rel, "leaf\n", 5, 0644);

	path_fmt(p, sizeof(p), "%s/locked", f->src);
	assert_int_equal(chmod(p, 0555), 0);
	stamp_dirs(f, "");
}

static void backup_warn(const char *path, int err, void *ctx)
{
	(void)ctx;
	print_message("backup: %s: %s\n", path, sd_strerror(err));
}

static void backup(struct fixture *f)
{
	struct store_snapshot_source src = { .name = "src", .path = f->src };
	struct store_backup_options o = { .sources = &src, .nsources = 1,
					  .warn = backup_warn };
	assert_int_equal(store_backup_run(f->r, &o, &f->snap), 0);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	strcpy(f->dir, "/tmp/test_restore.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	path_fmt(f->repo, sizeof(f->repo), "%s/repo", f->dir);
	path_fmt(f->src, sizeof(f->src), "%s/src", f->dir);
	path_fmt(f->dst, sizeof(f->dst), "%s/dst", f->dir);
	struct store_repo_init_options io = { { 1024, 4096, 16384 } };
	assert_int_equal(store_repo_init(f->repo, &io), 0);
	make_tree(f);
	char err[256];
	assert_int_equal(store_repo_open(f->repo, STORE_OPEN_WRITE, &f->r, err,
					 sizeof(err)), 0);
	backup(f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	store_snapshot_clear(&f->snap);
	store_repo_close(f->r);
	char cmd[256];
	path_fmt(cmd, sizeof(cmd), "chmod -R u+w %s && rm -rf %s", f->dir,
		 f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static void on_warn(const char *path, int err, void *ctx)
{
	struct fixture *f = ctx;
	if (getenv("TEST_VERBOSE"))
		print_message("warn: %s: %s\n", path, sd_strerror(err));
	if (f->nwarn++ == 0) {
		snprintf(f->first_warn, sizeof(f->first_warn), "%s", path);
		f->first_err = err;
	}
}

static void on_progress(uint64_t files, uint64_t bytes, void *ctx)
{
	(void)files;
	(void)bytes;
	((struct fixture *)ctx)->nprogress++;
}

static int restore(struct fixture *f, const char *const *inc, size_t ninc,
		   bool overwrite, struct store_restore_result *res)
{
	struct store_restore_options o = {
		.snapshot = &f->snap,
		.target = f->dst,
		.includes = inc,
		.nincludes = ninc,
		.overwrite = overwrite,
		.progress = on_progress,
		.warn = on_warn,
		.ctx = f,
	};
	f->nwarn = 0;
	f->first_warn[0] = '\0';
	return store_restore_run(f->r, &o, res);
}

/* ---------------------------------------------------------------- compare */

static void same_xattrs(const char *a, const char *b)
{
	char la[4096], lb[4096];
	ssize_t na = llistxattr(a, la, sizeof(la));
	ssize_t nb = llistxattr(b, lb, sizeof(lb));
	assert_true(na >= 0 && nb >= 0);
	assert_int_equal(na, nb);
	for (char *n = la; n < la + na; n += strlen(n) + 1) {
		char va[4096], vb[4096];
		ssize_t sa = lgetxattr(a, n, va, sizeof(va));
		ssize_t sb = lgetxattr(b, n, vb, sizeof(vb));
		if (sa != sb || sa < 0 || memcmp(va, vb, (size_t)sa))
			fail_msg("%s: xattr %s differs", b, n);
	}
}

static void same_content(const char *a, const char *b, off_t size)
{
	/* O_NOATIME: a second name of the same inode is compared later */
	int fa = open(a, O_RDONLY | O_NOATIME);
	int fb = open(b, O_RDONLY | O_NOATIME);
	assert_true(fa >= 0 && fb >= 0);
	char *ba = malloc((size_t)size + 1), *bb = malloc((size_t)size + 1);
	assert_int_equal(read(fa, ba, (size_t)size + 1), size);
	assert_int_equal(read(fb, bb, (size_t)size + 1), size);
	if (memcmp(ba, bb, (size_t)size) != 0)
		fail_msg("%s: content differs", b);
	free(ba);
	free(bb);
	close(fa);
	close(fb);
}

static void same_tree(const char *a, const char *b)
{
	struct stat sa, sb;
	assert_int_equal(lstat(a, &sa), 0);
	if (lstat(b, &sb) != 0)
		fail_msg("%s is missing", b);
	if (sa.st_mode != sb.st_mode || sa.st_uid != sb.st_uid ||
	    sa.st_gid != sb.st_gid)
		fail_msg("%s: mode/owner %o %u:%u, want %o %u:%u", b,
			 sb.st_mode, sb.st_uid, sb.st_gid, sa.st_mode,
			 sa.st_uid, sa.st_gid);
	if (sa.st_mtim.tv_sec != sb.st_mtim.tv_sec ||
	    sa.st_mtim.tv_nsec != sb.st_mtim.tv_nsec)
		fail_msg("%s: mtime %ld.%09ld, want %ld.%09ld", b,
			 (long)sb.st_mtim.tv_sec, sb.st_mtim.tv_nsec,
			 (long)sa.st_mtim.tv_sec, sa.st_mtim.tv_nsec);
	/* The generator gave every entry below the source root one atime
	 * (reads since may have moved the source's). */
	if (strcmp(strrchr(b, '/'), "/src") != 0 &&
	    (sb.st_atim.tv_sec != ATIME_SEC || sb.st_atim.tv_nsec != ATIME_NSEC))
		fail_msg("%s: atime %ld.%09ld", b, (long)sb.st_atim.tv_sec,
			 sb.st_atim.tv_nsec);
	if (!S_ISDIR(sa.st_mode) && !S_ISLNK(sa.st_mode))
		assert_int_equal(sa.st_nlink, sb.st_nlink);
	if (S_ISCHR(sa.st_mode) || S_ISBLK(sa.st_mode))
		assert_int_equal(sa.st_rdev, sb.st_rdev);
	same_xattrs(a, b);
	if (S_ISLNK(sa.st_mode)) {
		char ta[512], tb[512];
		ssize_t na = readlink(a, ta, sizeof(ta));
		ssize_t nb = readlink(b, tb, sizeof(tb));
		assert_true(na > 0 && na == nb && !memcmp(ta, tb, (size_t)na));
	} else if (S_ISREG(sa.st_mode)) {
		assert_int_equal(sa.st_size, sb.st_size);
		same_content(a, b, sa.st_size);
		/* holes stay holes */
		if (sa.st_blocks * 512 < sa.st_size)
			assert_true(sb.st_blocks <= sa.st_blocks + 8);
	} else if (S_ISDIR(sa.st_mode)) {
		DIR *da = opendir(a);
		assert_non_null(da);
		struct dirent *de;
		int na = 0, nb = 0;
		while ((de = readdir(da))) {
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			na++;
			char ca[512], cb[512];
			path_fmt(ca, sizeof(ca), "%s/%s", a, de->d_name);
			path_fmt(cb, sizeof(cb), "%s/%s", b, de->d_name);
			same_tree(ca, cb);
		}
		closedir(da);
		DIR *db = opendir(b);
		while ((de = readdir(db)))
			nb += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
		closedir(db);
		assert_int_equal(na, nb);
	}
}

static bool exists(const char *dir, const char *rel)
{
	char p[512];
	struct stat st;
	path_fmt(p, sizeof(p), "%s/%s", dir, rel);
	return lstat(p, &st) == 0;
}

/* Flips one stored byte of the middle blob of a file in the snapshot. */
static void damage_file_blob(struct fixture *f, const char *const *path,
			     size_t depth)
{
	struct store_tree *t;
	assert_int_equal(store_tree_load(f->r, &f->snap.tree, &t), 0);
	for (size_t i = 0; i < depth; i++) {
		const struct store_node *n = store_tree_find(t, path[i]);
		assert_non_null(n);
		if (i + 1 == depth) {
			assert_true(n->nextents > 0);
			struct store_pack_entry e;
			sd_id pack;
			assert_int_equal(store_blob_locate(
				f->r, &n->extents[n->nextents / 2].id, &e,
				&pack), 0);
			char hex[SD_ID_HEX_LEN + 1], p[512];
			sd_id_hex(&pack, hex);
			path_fmt(p, sizeof(p), "%s/packs/%.2s/%s", f->repo, hex,
				 hex);
			assert_int_equal(chmod(p, 0600), 0);
			int fd = open(p, O_RDWR);
			assert_true(fd >= 0);
			uint8_t b;
			off_t off = (off_t)(e.offset + e.stored_len / 2);
			assert_int_equal(pread(fd, &b, 1, off), 1);
			b ^= 0x40;
			assert_int_equal(pwrite(fd, &b, 1, off), 1);
			close(fd);
			break;
		}
		struct store_tree *sub;
		assert_int_equal(store_tree_load(f->r, &n->subtree, &sub), 0);
		store_tree_free(t);
		t = sub;
	}
	store_tree_free(t);
}

/* ---------------------------------------------------------------- cases */

static void test_restore__roundtrip_every_type(void **state)
{
	struct fixture *f = *state;
	struct store_restore_result res;
	assert_int_equal(restore(f, NULL, 0, false, &res), 0);
	assert_int_equal(f->nwarn, 0);
	assert_int_equal(res.failed, 0);
	assert_true(res.files >= 10);
	/* 2 symlinks, fifo, socket, and as root 2 devices */
	assert_int_equal(res.others, geteuid() == 0 ? 6 : 4);
	assert_true(res.dirs >= 36);
	assert_true(res.bytes >= 300 * 1024 + (3 << 20));
	assert_true(f->nprogress >= 1);
	char b[128];
	path_fmt(b, sizeof(b), "%s/src", f->dst);
	same_tree(f->src, b);

	struct stat s1, s2;
	char p[512];
	path_fmt(p, sizeof(p), "%s/src/content/posts/linked.md", f->dst);
	assert_int_equal(stat(p, &s1), 0);
	path_fmt(p, sizeof(p), "%s/src/shared/also-linked.md", f->dst);
	assert_int_equal(stat(p, &s2), 0);
	assert_int_equal(s1.st_ino, s2.st_ino);
	assert_int_equal(s1.st_nlink, 2);
}

static void test_restore__refuses_existing_and_writes_nothing(void **state)
{
	struct fixture *f = *state;
	struct store_restore_result res;
	assert_int_equal(restore(f, NULL, 0, false, &res), 0);
	char p[512];
	path_fmt(p, sizeof(p), "%s/src/content/posts/b.md", f->dst);
	assert_int_equal(unlink(p), 0);
	path_fmt(p, sizeof(p), "%s/src/big.bin", f->dst);
	assert_int_equal(truncate(p, 5), 0);

	assert_int_equal(restore(f, NULL, 0, false, &res), SD_EEXIST);
	assert_int_equal(f->first_err, SD_EEXIST);
	assert_non_null(strstr(f->first_warn, f->dst));
	assert_false(exists(f->dst, "src/content/posts/b.md"));
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_size, 5);
	assert_int_equal(res.files, 0);
}

static void test_restore__merges_into_existing_directories(void **state)
{
	struct fixture *f = *state;
	char p[512];
	path_fmt(p, sizeof(p), "%s/src/content/posts", f->dst);
	assert_int_equal(store_mkdir_p(p, 0755), 0);
	path_fmt(p, sizeof(p), "%s/src/content/posts/mine.md", f->dst);
	int fd = open(p, O_WRONLY | O_CREAT, 0644);
	assert_true(fd >= 0);
	close(fd);
	struct store_restore_result res;
	assert_int_equal(restore(f, NULL, 0, false, &res), 0);
	assert_true(exists(f->dst, "src/content/posts/mine.md"));
	/* the merged directory got its stored metadata all the same */
	struct stat sa, sb;
	char a[512];
	path_fmt(a, sizeof(a), "%s/content/posts", f->src);
	path_fmt(p, sizeof(p), "%s/src/content/posts", f->dst);
	assert_int_equal(lstat(a, &sa), 0);
	assert_int_equal(lstat(p, &sb), 0);
	assert_int_equal(sa.st_mode, sb.st_mode);
	assert_int_equal(sa.st_mtim.tv_sec, sb.st_mtim.tv_sec);
	assert_int_equal(sa.st_mtim.tv_nsec, sb.st_mtim.tv_nsec);
	path_fmt(p, sizeof(p), "%s/src/content/posts/mine.md", f->dst);
	assert_int_equal(unlink(p), 0);
	const char *same[] = { "content/posts/a.md", "big.bin", "shared",
			       "deep", "tool" };
	for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
		path_fmt(a, sizeof(a), "%s/%s", f->src, same[i]);
		path_fmt(p, sizeof(p), "%s/src/%s", f->dst, same[i]);
		same_tree(a, p);
	}
}

static void test_restore__overwrite_replaces_not_writes_through(void **state)
{
	struct fixture *f = *state;
	struct store_restore_result res;
	assert_int_equal(restore(f, NULL, 0, false, &res), 0);
	char p[512], outside[512];
	path_fmt(p, sizeof(p), "%s/src/content/posts/a.md", f->dst);
	path_fmt(outside, sizeof(outside), "%s/outside-link", f->dir);
	int fd = open(p, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "changed", 7), 7);
	close(fd);
	assert_int_equal(link(p, outside), 0);

	assert_int_equal(restore(f, NULL, 0, true, &res), 0);
	char b[128];
	path_fmt(b, sizeof(b), "%s/src", f->dst);
	same_tree(f->src, b);
	struct stat st;
	assert_int_equal(stat(outside, &st), 0);
	assert_int_equal(st.st_size, 7);
	assert_int_equal(st.st_nlink, 1);
}

static void test_restore__includes_with_parents(void **state)
{
	struct fixture *f = *state;
	const char *inc[] = { "src/content/posts/a.md", "/src/tool",
			      "src/content/posts/b.md", "src/deep/d/" };
	struct store_restore_result res;
	assert_int_equal(restore(f, inc, 4, false, &res), 0);
	assert_int_equal(res.failed, 0);
	assert_true(exists(f->dst, "src/content/posts/a.md"));
	assert_true(exists(f->dst, "src/content/posts/b.md"));
	assert_true(exists(f->dst, "src/tool"));
	assert_true(exists(f->dst, "src/deep/d/d/d"));
	assert_false(exists(f->dst, "src/big.bin"));
	assert_false(exists(f->dst, "src/content/empty"));
	assert_false(exists(f->dst, "src/content/posts/linked.md"));
	/* parents carry their stored metadata */
	struct stat sa, sb;
	char a[512], b[512];
	path_fmt(a, sizeof(a), "%s/content/posts", f->src);
	path_fmt(b, sizeof(b), "%s/src/content/posts", f->dst);
	assert_int_equal(lstat(a, &sa), 0);
	assert_int_equal(lstat(b, &sb), 0);
	assert_int_equal(sa.st_mode, sb.st_mode);
	assert_int_equal(sa.st_mtim.tv_nsec, sb.st_mtim.tv_nsec);
	assert_int_equal(sa.st_mtim.tv_sec, sb.st_mtim.tv_sec);
	path_fmt(a, sizeof(a), "%s/tool", f->src);
	path_fmt(b, sizeof(b), "%s/src/tool", f->dst);
	same_tree(a, b);
	path_fmt(a, sizeof(a), "%s/deep/d", f->src);
	path_fmt(b, sizeof(b), "%s/src/deep/d", f->dst);
	same_tree(a, b);
}

static void test_restore__missing_include_writes_nothing(void **state)
{
	struct fixture *f = *state;
	const char *inc[] = { "src/content", "src/content/nope.md" };
	struct store_restore_result res;
	assert_int_equal(restore(f, inc, 2, false, &res), SD_ENOTFOUND);
	assert_string_equal(f->first_warn, "src/content/nope.md");
	struct stat st;
	assert_int_equal(lstat(f->dst, &st), -1);
	const char *inc2[] = { "src/content/posts/a.md/x" };
	assert_int_equal(restore(f, inc2, 1, false, &res), SD_ENOTFOUND);
	assert_int_equal(lstat(f->dst, &st), -1);
}

static void test_restore__damaged_blob_fails_only_that_file(void **state)
{
	struct fixture *f = *state;
	const char *path[] = { "src", "content", "posts", "a.md" };
	damage_file_blob(f, path, 4);
	struct store_restore_result res;
	assert_int_equal(restore(f, NULL, 0, false, &res), SD_EPARTIAL);
	assert_int_equal(res.failed, 1);
	assert_int_equal(f->nwarn, 1);
	assert_int_equal(f->first_err, SD_ECORRUPT);
	char want[512];
	path_fmt(want, sizeof(want), "%s/src/content/posts/a.md", f->dst);
	assert_string_equal(f->first_warn, want);
	assert_false(exists(f->dst, "src/content/posts/a.md"));
	assert_true(exists(f->dst, "src/content/posts/b.md"));
	char a[512], b[512];
	path_fmt(a, sizeof(a), "%s/big.bin", f->src);
	path_fmt(b, sizeof(b), "%s/src/big.bin", f->dst);
	same_tree(a, b);

	/* a file written in parts by several workers fails whole too */
	const char *big[] = { "src", "big.bin" };
	damage_file_blob(f, big, 2);
	char cmd[256];
	path_fmt(cmd, sizeof(cmd), "rm -rf %s", f->dst);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(restore(f, NULL, 0, false, &res), SD_EPARTIAL);
	assert_int_equal(res.failed, 2);
	assert_int_equal(f->nwarn, 2);
	assert_false(exists(f->dst, "src/big.bin"));
	assert_true(exists(f->dst, "src/sparse.img"));
}

/* Stores a hand-made tree (its encoding is restore's input) as a blob. */
static void tree_put(struct fixture *f, struct store_tree *t, sd_id *id)
{
	uint8_t *buf;
	size_t len;
	assert_int_equal(store_tree_encode(t, &buf, &len), 0);
	sd_hash(buf, len, id);
	struct store_writer *w;
	assert_int_equal(store_writer_new(f->r, 1, 3, false, &w), 0);
	assert_int_equal(store_writer_put(w, id, STORE_BLOB_TREE, buf, len), 0);
	assert_int_equal(store_writer_flush(w), 0);
	store_writer_free(w);
}

static void test_restore__refused_xattr_is_a_warning(void **state)
{
	struct fixture *f = *state;
	struct store_xattr x[2] = {
		{ (char *)"nosuchnamespace.attr", (uint8_t *)"v", 1 },
		{ (char *)"user.kept", (uint8_t *)"yes", 3 },
	};
	struct store_node n = {
		.name = (char *)"note.md", .type = STORE_NODE_FILE,
		.mode = 0640, .uid = geteuid(), .gid = getegid(),
		.mtime = { 1600000000, 5 }, .atime = { 1600000001, 7 },
		.nlink = 1, .xattrs = x, .nxattrs = 2,
	};
	struct store_tree t = { &n, 1 };
	struct store_snapshot snap = { 0 };
	tree_put(f, &t, &snap.tree);
	struct store_restore_options o = {
		.snapshot = &snap, .target = f->dst, .warn = on_warn, .ctx = f,
	};
	struct store_restore_result res;
	assert_int_equal(store_restore_run(f->r, &o, &res), 0);
	assert_int_equal(res.files, 1);
	assert_int_equal(res.failed, 0);
	assert_int_equal(f->nwarn, 1);
	assert_non_null(strstr(f->first_warn, "note.md"));
	assert_non_null(strstr(f->first_warn, "nosuchnamespace.attr"));
	char p[512], v[8];
	path_fmt(p, sizeof(p), "%s/note.md", f->dst);
	assert_int_equal(getxattr(p, "user.kept", v, sizeof(v)), 3);
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640);
	assert_int_equal(st.st_mtim.tv_nsec, 5);
}

static void test_restore__bad_options(void **state)
{
	struct fixture *f = *state;
	struct store_restore_result res;
	struct store_restore_options o = { .snapshot = &f->snap };
	assert_int_equal(store_restore_run(f->r, &o, &res), SD_EUSAGE);
	o.target = "";
	assert_int_equal(store_restore_run(f->r, &o, &res), SD_EUSAGE);
	/* a target that is a file */
	char p[512];
	path_fmt(p, sizeof(p), "%s/afile", f->dir);
	int fd = open(p, O_WRONLY | O_CREAT, 0644);
	close(fd);
	o.target = p;
	assert_int_equal(store_restore_run(f->r, &o, &res), -ENOTDIR);
}

int main(int argc, char **argv)
{
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_restore__roundtrip_every_type, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_restore__refuses_existing_and_writes_nothing,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_restore__merges_into_existing_directories, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_restore__overwrite_replaces_not_writes_through,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_restore__includes_with_parents, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_restore__missing_include_writes_nothing, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_restore__damaged_blob_fails_only_that_file, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_restore__refused_xattr_is_a_warning, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_restore__bad_options,
						setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
