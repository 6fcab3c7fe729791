"""bench_lib.py — processes, timing and mounts for bench/run.

Every command the bench starts goes through run(): it gets its own process
group and a time limit, and is killed with its group when the limit passes,
so one hung tool cannot stall the whole run. Mounts and tmpfs are recorded
in a Janitor as soon as they exist, so the trap in bench/run can always
unmount them and kill their servers, whatever failed in between.

The three tools differ only in their command lines and in where a backed-up
path appears inside their mount; the Tool classes hold exactly that, so the
phases in bench/run treat them alike.
"""
import json
import os
import signal
import subprocess
import sys
import time

GNU_TIME = "/usr/bin/time"


class Failed(Exception):
    """A step failed; the figure becomes "n/a (reason)"."""


def log(msg):
    print(time.strftime("%H:%M:%S ") + msg, file=sys.stderr, flush=True)


def _tail(text, n=3):
    lines = [ln for ln in (text or "").strip().splitlines() if ln.strip()]
    return " | ".join(lines[-n:])[:300]


def run(cmd, *, env=None, cwd=None, timeout=600, check=True, stdout=None):
    """Runs cmd in its own process group; returns (rc, stdout, stderr)."""
    p = subprocess.Popen(cmd, env=env, cwd=cwd, start_new_session=True,
                         stdin=subprocess.DEVNULL,
                         stdout=stdout if stdout is not None else subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _killpg(p.pid)
        p.communicate()
        raise Failed(f"{os.path.basename(cmd[0])}: timeout after {timeout}s")
    except BaseException:
        _killpg(p.pid)
        p.communicate()
        raise
    if check and p.returncode != 0:
        raise Failed(f"{' '.join(cmd[:3])}: exit {p.returncode}: {_tail(err or out)}")
    return p.returncode, out, err


def _killpg(pid):
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def timed(cmd, *, env=None, cwd=None, timeout=600):
    """Runs cmd under GNU time; returns wall s, cpu s (user+sys), rss MiB."""
    out = f"/tmp/snapdraft-bench-time.{os.getpid()}"
    t0 = time.monotonic()
    try:
        run([GNU_TIME, "-f", "%e %U %S %M", "-o", out] + cmd, env=env, cwd=cwd,
            timeout=timeout, stdout=subprocess.DEVNULL)
        wall = time.monotonic() - t0
        with open(out) as f:
            fields = f.read().split()[-4:]
    finally:
        if os.path.exists(out):
            os.unlink(out)
    _, user, sys_, rss_kb = (float(x) for x in fields)
    return {"wall": wall, "cpu": user + sys_, "rss": rss_kb / 1024.0}


def wall(cmd, *, env=None, cwd=None, timeout=600):
    t0 = time.monotonic()
    run(cmd, env=env, cwd=cwd, timeout=timeout, stdout=subprocess.DEVNULL)
    return time.monotonic() - t0


# Other people's tests on this machine drop the page cache now and then; the
# kernel counts every drop, so a warm step can tell whether it is needed and
# a measurement can tell whether someone else dropped the cache under it.
own_drops = 0
_warmed = {}


def drop_count():
    with open("/proc/vmstat") as f:
        for line in f:
            if line.startswith("drop_pagecache "):
                return int(line.split()[1])
    return 0


def drop_caches():
    global own_drops
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")
    own_drops += 1


def warm(path):
    """Reads every file under path so it sits in the page cache (again only
    if the cache was dropped since)."""
    n = drop_count()
    if _warmed.get(path) == n:
        return
    run(["sh", "-c", 'find "$1" -type f -print0 | xargs -0 -r cat >/dev/null',
         "warm", path], timeout=1800)
    _warmed[path] = n


def tree_stats(path):
    """(regular files, their bytes) under path, symlinks not followed."""
    files = size = 0
    for root, dirs, names in os.walk(path):
        for n in names:
            st = os.lstat(os.path.join(root, n))
            if (st.st_mode & 0o170000) == 0o100000:
                files += 1
                size += st.st_size
    return files, size


def tree_bytes(path):
    """Apparent size of every file under path: the repository's size."""
    total = 0
    for root, dirs, names in os.walk(path):
        for n in names:
            total += os.lstat(os.path.join(root, n)).st_size
    return total


def mounted(path):
    path = os.path.realpath(path)
    with open("/proc/mounts") as f:
        return any(line.split()[1] == path for line in f)


def vm_hwm_mib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def cpu_seconds(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


class Janitor:
    """What must be undone on any exit: FUSE mounts, servers, tmpfs."""

    def __init__(self):
        self.mounts = {}   # mountpoint -> pid of its server or None
        self.tmpfs = []

    def cleanup(self):
        for mnt, pid in list(self.mounts.items()):
            lazy_umount(mnt)
            if pid:
                stop_pid(pid)
            self.mounts.pop(mnt, None)
        for t in self.tmpfs:
            if mounted(t):
                _quiet(["umount", "-l", t])
        self.tmpfs = []


def _quiet(cmd):
    try:
        subprocess.run(cmd, stderr=subprocess.DEVNULL, timeout=60)
    except subprocess.TimeoutExpired:
        pass


def lazy_umount(mnt):
    if mounted(mnt):
        _quiet(["fusermount3", "-u", "-z", mnt])
    if mounted(mnt):
        _quiet(["umount", "-l", mnt])


def stop_pid(pid, wait=10.0):
    """SIGTERM, then SIGKILL after wait seconds; reaps it if it is our child."""
    for sig, limit in ((signal.SIGTERM, wait), (signal.SIGKILL, 5.0)):
        if not pid_alive(pid):
            break
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            break
        end = time.monotonic() + limit
        while time.monotonic() < end:
            try:
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    return
            except ChildProcessError:
                pass
            if not pid_alive(pid):
                return
            time.sleep(0.05)


def wait_listing(path, proc=None, timeout=300.0, logfile=None):
    """Polls until path lists as a non-empty directory; returns the instant."""
    end = time.monotonic() + timeout
    while True:
        try:
            if os.listdir(path):
                return time.monotonic()
        except OSError:
            pass
        if proc is not None and proc.poll() is not None:
            tail = ""
            if logfile and os.path.exists(logfile):
                with open(logfile, errors="replace") as f:
                    tail = _tail(f.read())
            raise Failed(f"mount server exited {proc.returncode}: {tail}")
        if time.monotonic() > end:
            raise Failed(f"no listing of {path} after {timeout:.0f}s")
        time.sleep(0.005)


class Mount:
    """One live mount: where the backed-up tree appears and its server.

    The tree is reached through a `latest` symlink in snapdraft's and
    restic's mounts; the timed commands get the resolved path, so they
    measure the tree and not one READLINK per path lookup (which a kernel
    without the symlink cached would send for every file)."""

    def __init__(self, mnt, tree, pid, proc=None):
        self.mnt, self.tree, self.pid, self.proc = mnt, tree, pid, proc
        self.first_listing = None

    def resolve(self):
        self.tree = os.path.realpath(self.tree)

    def rss(self):
        return vm_hwm_mib(self.pid) if self.pid else None

    def cpu(self):
        """CPU seconds (user + system, all threads) the server used so far."""
        return cpu_seconds(self.pid) if self.pid else None


class Tool:
    name = "?"

    def __init__(self, work, janitor):
        self.work = work
        self.janitor = janitor
        self.env = dict(os.environ)
        self.archives = {}

    def reset(self, repo):
        self.archives[repo] = 0

    def _bg_mount(self, cmd, mnt, tree, logname):
        """Starts a foreground mount server in the background, waits for it."""
        logfile = os.path.join(self.work, "logs", logname)
        t0 = time.monotonic()
        with open(logfile, "w") as lf:
            proc = subprocess.Popen(cmd, env=self.env, stdin=subprocess.DEVNULL,
                                    stdout=lf, stderr=lf, start_new_session=True)
        self.janitor.mounts[mnt] = proc.pid
        m = Mount(mnt, tree, proc.pid, proc)
        try:
            m.first_listing = wait_listing(tree, proc, logfile=logfile) - t0
            m.resolve()
        except Failed as e:
            self.umount(m)
            raise Failed(f"mount failed: {e}")
        return m

    def umount(self, m):
        if mounted(m.mnt):
            _quiet(["fusermount3", "-u", m.mnt])
        if m.proc is not None:
            try:
                m.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                stop_pid(m.proc.pid)
                m.proc.wait()
        lazy_umount(m.mnt)
        self.janitor.mounts.pop(m.mnt, None)


class Snapdraft(Tool):
    name = "snapdraft"

    def __init__(self, work, janitor, binary):
        super().__init__(work, janitor)
        self.bin = binary

    def version(self):
        return run([self.bin, "--version"], check=False)[1].strip()

    def init(self, repo):
        self.reset(repo)
        run([self.bin, "--repo", repo, "init", "-q"], env=self.env)

    def backup(self, repo, path):
        return [self.bin, "--repo", repo, "backup", "-q", path]

    def restore(self, repo, target):
        return [self.bin, "--repo", repo, "restore", "--point", "latest",
                "--target", target, "-q"], None

    def check(self, repo):
        return [self.bin, "--repo", repo, "check", "--read-data", "-q"]

    def mount(self, repo, mnt, path):
        tree = os.path.join(mnt, "latest", os.path.basename(path))
        t0 = time.monotonic()
        self.janitor.mounts[mnt] = None
        m = Mount(mnt, tree, None)
        try:
            run([self.bin, "--repo", repo, "mount", mnt], env=self.env, timeout=120)
            m.first_listing = wait_listing(tree, timeout=60) - t0
            m.resolve()
            with open(os.path.join(mnt, ".snapdraft", "status.json")) as f:
                m.pid = int(json.load(f)["pid"])
        except (Failed, OSError, ValueError, KeyError) as e:
            self.umount(m)
            raise Failed(f"mount failed: {e}")
        self.janitor.mounts[mnt] = m.pid
        return m

    def umount(self, m):
        if mounted(m.mnt):
            run([self.bin, "umount", m.mnt], timeout=60, check=False)
        if m.pid:
            end = time.monotonic() + 10
            while pid_alive(m.pid) and time.monotonic() < end:
                time.sleep(0.05)
            stop_pid(m.pid)
        lazy_umount(m.mnt)
        self.janitor.mounts.pop(m.mnt, None)


class Restic(Tool):
    """restic cannot switch encryption off; a fixed password, compression auto."""
    name = "restic"

    def __init__(self, work, janitor):
        super().__init__(work, janitor)
        self.env["RESTIC_PASSWORD"] = "snapdraft-bench"
        self.env["RESTIC_CACHE_DIR"] = os.path.join(work, "cache", "restic")
        self.env.pop("RESTIC_REPOSITORY", None)

    def version(self):
        return run(["restic", "version"], check=False)[1].strip()

    def init(self, repo):
        self.reset(repo)
        run(["restic", "-r", repo, "init", "-q", "--repository-version", "2"],
            env=self.env)

    def backup(self, repo, path):
        return ["restic", "-r", repo, "backup", "-q", path]

    def restore(self, repo, target):
        return ["restic", "-r", repo, "restore", "latest", "--target", target,
                "-q"], None

    def check(self, repo):
        return ["restic", "-r", repo, "check", "--read-data", "-q"]

    def mount(self, repo, mnt, path):
        tree = os.path.join(mnt, "snapshots", "latest", path.lstrip("/"))
        return self._bg_mount(["restic", "-r", repo, "mount", mnt], mnt, tree,
                              "restic-mount.log")


class Borg(Tool):
    """borg without encryption, zstd level 3 like snapdraft's default."""
    name = "borg"

    def __init__(self, work, janitor):
        super().__init__(work, janitor)
        self.env["BORG_BASE_DIR"] = os.path.join(work, "cache", "borg")
        self.env["BORG_PASSPHRASE"] = ""
        self.env["BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK"] = "yes"
        self.env["BORG_RELOCATED_REPO_ACCESS_IS_OK"] = "yes"
        self.env.pop("BORG_REPO", None)

    def version(self):
        return run(["borg", "--version"], env=self.env, check=False)[1].strip()

    def init(self, repo):
        self.reset(repo)
        run(["borg", "init", "--encryption", "none", repo], env=self.env)

    def backup(self, repo, path):
        self.archives[repo] = self.archives.get(repo, 0) + 1
        return ["borg", "create", "--compression", "zstd,3",
                f"{repo}::a{self.archives[repo]}", path]

    def _last(self, repo):
        return f"a{self.archives.get(repo, 1)}"

    def restore(self, repo, target):
        return ["borg", "extract", f"{repo}::{self._last(repo)}"], target

    def check(self, repo):
        return ["borg", "check", "--verify-data", repo]

    def mount(self, repo, mnt, path):
        tree = os.path.join(mnt, self._last(repo), path.lstrip("/"))
        return self._bg_mount(["borg", "mount", "-f", repo, mnt], mnt, tree,
                              "borg-mount.log")
