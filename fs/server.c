/*
 * server.c — one mount from start to end: checks, daemon, session, loop.
 *
 *   caller                         server (child, or the caller itself
 *                                  in foreground mode)
 *   check mountpoint (stale: detach)
 *   fork ------------------------> setsid, stdio to /dev/null
 *   wait on the readiness pipe     open repository (never before fork)
 *                                  load snapshot list, caches
 *                                  fuse_session_new, fuse_session_mount
 *          <-------- {0} or {err, message}
 *   stat(mountpoint): answers?     session loop (multi-threaded, clone_fd)
 *   return                         ... SIGTERM/SIGINT/SIGHUP or unmount
 *                                  unmount, stop helper threads, free,
 *                                  return FS_ROLE_SERVER
 *
 * The caller returns only when the mount answers a stat(), which needs the
 * server to have handled INIT and GETATTR: the mount is ready, not just
 * present. Any failure before that comes back through the pipe as an error
 * code and one line, and nothing stays mounted. Diagnostics go through
 * sd_log: to stderr in the foreground, to syslog when daemonised.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include "fs_i.h"

#define DEFAULT_CACHE_BYTES (32u << 20)
#define TREE_CACHE_BYTES (32u << 20)
#define MAX_THREADS 32
#define READAHEAD_KB "1024"

/* What the server tells the caller on the readiness pipe. */
struct ready_msg {
	int32_t err;
	char msg[480];
};

struct sink {
	bool syslog;
	bool debug;
};
static struct sink log_sink_ctx;

static void log_sink(enum sd_log_level level, const char *msg, void *ctx)
{
	const struct sink *s = ctx;
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };

	if (level == SD_LOG_DEBUG && !s->debug)
		return;
	if (s->syslog)
		syslog(prio[level], "%s", msg);
	else
		fprintf(stderr, "snapdraft: %s\n", msg);
}

/* The last error libfuse logged, for the one-line message of a failed
 * mount (written before the session loop starts: one thread). */
static char fuse_last_error[512];

static void fuse_log_to_sd(enum fuse_log_level level, const char *fmt,
			   va_list ap)
{
	char buf[512];
	size_t n;

	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	while (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	if (level <= FUSE_LOG_ERR)
		snprintf(fuse_last_error, sizeof(fuse_last_error), "%s", buf);
	if (level <= FUSE_LOG_ERR)
		sd_log(SD_LOG_ERR, "fuse: %s", buf);
	else if (level <= FUSE_LOG_WARNING)
		sd_log(SD_LOG_WARN, "fuse: %s", buf);
	else if (level <= FUSE_LOG_INFO)
		sd_log(SD_LOG_INFO, "fuse: %s", buf);
	else
		sd_log(SD_LOG_DEBUG, "fuse: %s", buf);
}

static void ready_send(int fd, int err, const char *msg)
{
	struct ready_msg m;
	const char *p = (const char *)&m;
	size_t left = sizeof(m);
	ssize_t n;

	if (fd < 0)
		return;
	memset(&m, 0, sizeof(m));
	m.err = err;
	snprintf(m.msg, sizeof(m.msg), "%s", msg ? msg : "");
	while (left > 0) {
		n = write(fd, p, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		p += n;
		left -= (size_t)n;
	}
	close(fd);
}

static void fs_state_free(struct fs *fs)
{
	if (!fs)
		return;
	/* Open handles hold lists; inodes hold trees and snapshots: free
	 * them first. */
	fs_handles_free(fs, fs->handles);
	if (fs->itab)
		fs_itab_free(fs, fs->itab);
	fs_snaplist_free(fs->snaps);
	fs_chunks_free(fs->chunks);
	fs_trees_free(fs->trees);
	store_repo_close(fs->repo);
	free(fs->repo_path);
	free(fs->mountpoint);
	free(fs);
}

/* Everything but the session: repository, caches, snapshot list, the
 * fixed nodes. */
static int fs_state_new(const struct fs_options *o, const char *repo,
			const char *canon, struct fs **out, char *errbuf,
			size_t errlen)
{
	struct fs *fs = calloc(1, sizeof(*fs));
	char detail[256] = "";
	int r;

	if (!fs)
		return -ENOMEM;
	fs->repo_path = strdup(repo);
	fs->mountpoint = strdup(canon);
	if (!fs->repo_path || !fs->mountpoint) {
		r = -ENOMEM;
		goto fail;
	}
	fs->uid = getuid();
	fs->gid = getgid();
	fs->pid = getpid();
	clock_gettime(CLOCK_REALTIME, &fs->started);

	r = store_repo_open(repo, 0, &fs->repo, detail, sizeof(detail));
	if (r < 0) {
		if (r == SD_ENOREPO)
			snprintf(errbuf, errlen, "no repository at %s", repo);
		else
			snprintf(errbuf, errlen, "cannot open repository %s: %s",
				 repo, detail[0] ? detail : sd_strerror(r));
		goto fail;
	}
	r = fs_itab_new(&fs->itab);
	if (r == 0)
		r = fs_handles_new(&fs->handles);
	if (r == 0)
		r = fs_trees_new(fs->repo, TREE_CACHE_BYTES, &fs->trees);
	if (r == 0)
		r = fs_chunks_new(fs->repo, o->cache_bytes ? o->cache_bytes
							   : DEFAULT_CACHE_BYTES,
				  &fs->chunks);
	if (r < 0) {
		snprintf(errbuf, errlen, "cannot start: %s", sd_strerror(r));
		goto fail;
	}
	r = fs_snaplist_new(fs, &fs->snaps);
	if (r < 0) {
		snprintf(errbuf, errlen,
			 "cannot read the backup points of %s: %s", repo,
			 sd_strerror(r));
		goto fail;
	}
	fs_inode_fixed_set(fs, FS_INO_ROOT, &fs_top_area, FS_KIND_DIR);
	fs_inode_fixed_set(fs, FS_INO_SNAPSHOTS, &fs_top_area, FS_KIND_DIR);
	fs_inode_fixed_set(fs, FS_INO_IDS, &fs_top_area, FS_KIND_DIR);
	fs_inode_fixed_set(fs, FS_INO_LATEST, &fs_top_area, FS_KIND_LATEST);
	fs_virtual_register(fs);
	*out = fs;
	return 0;
fail:
	fs_state_free(fs);
	return r;
}

static int session_new(const struct fs_options *o, struct fs *fs,
		       struct fuse_session **out)
{
	char opts[128];
	char *argv[5];
	int argc = 0;
	struct fuse_args args;
	struct fuse_session *se;

	snprintf(opts, sizeof(opts),
		 "fsname=snapdraft,subtype=snapdraft,default_permissions%s",
		 o->allow_other ? ",allow_other" : "");
	argv[argc++] = (char *)"snapdraft";
	argv[argc++] = (char *)"-o";
	argv[argc++] = opts;
	if (o->debug)
		argv[argc++] = (char *)"-d";
	argv[argc] = NULL;
	args = (struct fuse_args)FUSE_ARGS_INIT(argc, argv);
	se = fuse_session_new(&args, &fs_lowlevel_ops, sizeof(fs_lowlevel_ops),
			      fs);
	fuse_opt_free_args(&args);
	if (!se)
		return -EINVAL;
	*out = se;
	return 0;
}

/*
 * The kernel reads ahead 128 KiB at a time on a FUSE mount (the default of
 * its backing device), which is one round trip per 128 KiB of a big file.
 * Chunks are ~1 MiB: read ahead 1 MiB, where we may (root; the device is
 * this mount's own and goes away with it). Runs on its own thread because
 * the stat() that names the device is answered by our own session loop.
 */
static void *readahead_tune(void *arg)
{
	const char *mountpoint = arg;
	char path[96];
	struct stat st;
	int fd;

	if (stat(mountpoint, &st) != 0)
		return NULL;
	snprintf(path, sizeof(path), "/sys/class/bdi/%u:%u/read_ahead_kb",
		 major(st.st_dev), minor(st.st_dev));
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	if (write(fd, READAHEAD_KB, strlen(READAHEAD_KB)) < 0)
		sd_log(SD_LOG_DEBUG, "mount: %s: %s", path, strerror(errno));
	close(fd);
	return NULL;
}

/* Runs the server in this process; readyfd (or -1) hears how the start
 * went. Returns when the filesystem is unmounted. */
static int serve(const struct fs_options *o, const char *repo,
		 const char *canon, int readyfd, char *errbuf, size_t errlen)
{
	struct fuse_loop_config *cfg = NULL;
	struct fs *fs = NULL;
	bool tuner_started = false;
	pthread_t tuner;
	int r;

	/* Chunk buffers (0.25-4 MiB, malloc'd by store_blob_get) come and go
	 * all the time: serve them from the heap and keep freed memory for
	 * the next one, instead of a fresh mmap (and a page fault per 4 KiB)
	 * for every chunk. The chunk cache bounds what is live. */
	mallopt(M_MMAP_THRESHOLD, 32 << 20);
	mallopt(M_TRIM_THRESHOLD, 8 << 20);
	mallopt(M_ARENA_MAX, 4);

	log_sink_ctx.syslog = readyfd >= 0;
	log_sink_ctx.debug = o->debug;
	sd_log_set_sink(log_sink, &log_sink_ctx);
	fuse_set_log_func(fuse_log_to_sd);

	r = fs_state_new(o, repo, canon, &fs, errbuf, errlen);
	if (r < 0)
		goto fail;
	r = session_new(o, fs, &fs->se);
	if (r < 0) {
		snprintf(errbuf, errlen, "cannot create the FUSE session");
		goto fail;
	}
	/* libfuse leaves a signal alone when it is ignored, and a shell
	 * starts background jobs with SIGINT ignored: SIGINT, SIGTERM and
	 * SIGHUP always mean a clean unmount here. */
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	if (fuse_set_signal_handlers(fs->se) != 0) {
		r = -EINVAL;
		snprintf(errbuf, errlen, "cannot install signal handlers");
		goto fail;
	}
	fuse_last_error[0] = '\0';
	if (fuse_session_mount(fs->se, canon) != 0) {
		r = -EPERM;
		snprintf(errbuf, errlen, "cannot mount on %s: %s", canon,
			 fuse_last_error[0] ? fuse_last_error
					    : "is /dev/fuse usable?");
		fuse_remove_signal_handlers(fs->se);
		goto fail;
	}
	r = fs_snaplist_watch_start(fs);
	if (r < 0) {
		snprintf(errbuf, errlen, "cannot start: %s", sd_strerror(r));
		fuse_session_unmount(fs->se);
		fuse_remove_signal_handlers(fs->se);
		goto fail;
	}
	sd_log(SD_LOG_INFO, "mount: serving %s on %s", repo, canon);
	ready_send(readyfd, 0, NULL);
	readyfd = -1;
	tuner_started = pthread_create(&tuner, NULL, readahead_tune,
				       fs->mountpoint) == 0;

	cfg = fuse_loop_cfg_create();
	if (cfg) {
		fuse_loop_cfg_set_clone_fd(cfg, 1);
		fuse_loop_cfg_set_max_threads(cfg, MAX_THREADS);
	}
	r = cfg ? fuse_session_loop_mt(fs->se, cfg) : fuse_session_loop(fs->se);
	fuse_loop_cfg_destroy(cfg);
	if (r < 0)
		sd_log(SD_LOG_ERR, "mount: session ended: %s", strerror(-r));
	else if (r > 0)
		sd_log(SD_LOG_INFO, "mount: %s: signal %d, unmounting", canon, r);

	/* Unmount first: it closes the device, which aborts the connection,
	 * so a helper thread blocked on this mount (the tuner's stat, or an
	 * invalidation waiting on a kernel lock held by a request the loop
	 * will never answer) gets an error instead of waiting forever. */
	fuse_session_unmount(fs->se);
	if (tuner_started)
		pthread_join(tuner, NULL);
	fs_snaplist_watch_stop(fs);
	fuse_remove_signal_handlers(fs->se);
	fuse_session_destroy(fs->se);
	fs->se = NULL;
	fs_state_free(fs);
	return r < 0 ? r : 0;

fail:
	if (fs && fs->se)
		fuse_session_destroy(fs->se);
	if (fs)
		fs->se = NULL;
	fs_state_free(fs);
	ready_send(readyfd, r, errbuf);
	return r;
}

/* An absolute repository path, without resolving it (it may be missing:
 * the server reports that). */
static int repo_absolute(const char *repo, char *out, size_t len)
{
	char cwd[PATH_MAX];
	int n;

	if (repo[0] == '/') {
		n = snprintf(out, len, "%s", repo);
	} else {
		if (!getcwd(cwd, sizeof(cwd)))
			return -errno;
		n = snprintf(out, len, "%s/%s", cwd, repo);
	}
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* In the daemon: detach from the caller's session and descriptors. */
static void daemonise(int keepfd)
{
	int fd;

	setsid();
	if (chdir("/") != 0)
		sd_log(SD_LOG_WARN, "mount: chdir /: %s", strerror(errno));
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		if (fd > STDERR_FILENO)
			close(fd);
	}
	/* Pipes inherited from the caller (a test harness, $(...)) must
	 * not stay open for the life of the daemon. */
	if (keepfd > 3)
		close_range(3, (unsigned)keepfd - 1, 0);
	close_range((unsigned)keepfd + 1, ~0u, 0);
}

/* In the caller: waits for the server's word, then for the mount to
 * answer. */
static int await_ready(int fd, pid_t pid, const char *canon, char *errbuf,
		       size_t errlen)
{
	struct ready_msg m;
	char *p = (char *)&m;
	size_t got = 0;
	struct stat st;
	ssize_t n;
	int status;

	memset(&m, 0, sizeof(m));
	while (got < sizeof(m)) {
		n = read(fd, p + got, sizeof(m) - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (got < sizeof(m)) {
		waitpid(pid, &status, 0);
		snprintf(errbuf, errlen,
			 "the mount server exited before the mount was ready");
		return -EIO;
	}
	if (m.err != 0) {
		waitpid(pid, &status, 0);
		snprintf(errbuf, errlen, "%s", m.msg);
		return m.err;
	}
	if (stat(canon, &st) != 0 || st.st_ino != FUSE_ROOT_ID) {
		int r = -errno;
		char ignored[256];

		kill(pid, SIGTERM);
		fs_unmount(canon, true, ignored, sizeof(ignored));
		snprintf(errbuf, errlen, "the mount on %s does not answer: %s",
			 canon, strerror(r ? -r : EIO));
		return r ? r : -EIO;
	}
	return 0;
}

int fs_mount_run(const struct fs_options *o, enum fs_role *role,
		 char *errbuf, size_t errlen)
{
	char canon[PATH_MAX], repo[PATH_MAX];
	bool foreground = o->foreground || o->debug;
	int fds[2], r;
	pid_t pid;

	*role = FS_ROLE_CALLER;
	errbuf[0] = '\0';
	if (o->version != FS_OPTIONS_VERSION || !o->repo_path ||
	    !o->mountpoint) {
		snprintf(errbuf, errlen, "invalid mount options");
		return -EINVAL;
	}
	r = repo_absolute(o->repo_path, repo, sizeof(repo));
	if (r < 0) {
		snprintf(errbuf, errlen, "cannot resolve %s: %s", o->repo_path,
			 strerror(-r));
		return r;
	}
	r = fs_mountpoint_prepare(o->mountpoint, canon, sizeof(canon), errbuf,
				  errlen);
	if (r < 0)
		return r;
	if (foreground)
		return serve(o, repo, canon, -1, errbuf, errlen);

	if (pipe2(fds, O_CLOEXEC) < 0) {
		r = -errno;
		snprintf(errbuf, errlen, "pipe: %s", strerror(-r));
		return r;
	}
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		r = -errno;
		close(fds[0]);
		close(fds[1]);
		snprintf(errbuf, errlen, "fork: %s", strerror(-r));
		return r;
	}
	if (pid == 0) {
		*role = FS_ROLE_SERVER;
		close(fds[0]);
		openlog("snapdraft", LOG_PID, LOG_DAEMON);
		daemonise(fds[1]);
		r = serve(o, repo, canon, fds[1], errbuf, errlen);
		closelog();
		return r;
	}
	close(fds[1]);
	return await_ready(fds[0], pid, canon, errbuf, errlen);
}
