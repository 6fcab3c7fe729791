"""bench_data.py — the data sets of bench/run, built from Debian packages.

Nothing here is written by us: the source tree is linux-source-6.1 as
Debian ships it, the 1 GiB file is a name-sorted tar of that tree cut to
size, and the text history is the kernel's Documentation/ edited by a
seeded script (real sentences moved, replaced, inserted and deleted, a few
percent of the files per version, a few files added and removed). The same
seed gives the same bytes and the same mtimes on every machine, so runs
compare. Each product is stamped with the parameters that made it and is
only rebuilt when they change.
"""
import json
import os
import random
import shutil
import subprocess

from bench_lib import log, run

LINUX_TARBALL = "/usr/src/linux-source-6.1.tar.xz"
LINUX_DIR = "linux-source-6.1"
QUICK_DIRS = ["Documentation", "fs", "kernel", "mm", "lib"]
HISTORY_EPOCH = 1767225600   # 2026-01-01: version i is dated i days later


def _stamped(path, params):
    try:
        with open(path + ".stamp") as f:
            return json.load(f) == params and os.path.exists(path)
    except (OSError, ValueError):
        return False


def _stamp(path, params):
    with open(path + ".stamp", "w") as f:
        json.dump(params, f)


def _fresh(path):
    if os.path.exists(path + ".stamp"):
        os.unlink(path + ".stamp")
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.exists(path):
        os.unlink(path)


def linux_tree(data):
    """The unpacked linux-source-6.1 tarball: ~78,000 files, 1.3 GB."""
    st = os.stat(LINUX_TARBALL)
    params = {"tarball": LINUX_TARBALL, "size": st.st_size, "mtime": int(st.st_mtime)}
    path = os.path.join(data, LINUX_DIR)
    if not _stamped(path, params):
        _fresh(path)
        log(f"unpacking {LINUX_TARBALL}")
        run(["tar", "-xJf", LINUX_TARBALL, "-C", data], timeout=1800)
        _stamp(path, params)
    return path


def subset_tree(data, linux):
    """--quick: a few top-level folders of the tree (~110 MB)."""
    params = {"from": linux, "dirs": QUICK_DIRS}
    path = os.path.join(data, "quick", "linux-subset")
    if not _stamped(path, params):
        _fresh(path)
        os.makedirs(path)
        run(["cp", "-a"] + [os.path.join(linux, d) for d in QUICK_DIRS] + [path],
            timeout=900)
        _stamp(path, params)
    return path


def big_file(data, linux, size):
    """A folder holding one file of `size` bytes: a sorted tar of the tree, cut."""
    params = {"from": linux, "size": size}
    folder = os.path.join(data, f"big-{size >> 20}m")
    if not _stamped(folder, params):
        _fresh(folder)
        os.makedirs(folder)
        out = os.path.join(folder, f"linux-{size >> 20}m.tar")
        log(f"making {out}")
        cmd = (f'tar --sort=name -C "$1" -cf - "$2" | head -c {size} > "$3"; '
               f'truncate -s {size} "$3"')
        run(["bash", "-o", "pipefail", "-c", cmd, "big", os.path.dirname(linux),
             os.path.basename(linux), out], check=False, timeout=1800)
        if os.path.getsize(out) != size:
            raise RuntimeError(f"{out}: wrong size")
        os.utime(out, (HISTORY_EPOCH, HISTORY_EPOCH))
        _stamp(folder, params)
    return folder, os.path.join(folder, os.listdir(folder)[0])


def _text_files(root):
    out = []
    for r, dirs, names in os.walk(root):
        dirs.sort()
        for n in sorted(names):
            p = os.path.join(r, n)
            if os.path.islink(p) or not os.path.isfile(p):
                continue
            try:
                with open(p, encoding="utf-8") as f:
                    f.read()
            except (UnicodeDecodeError, OSError):
                continue
            out.append(p)
    return out


def _corpus(files, rng, n=600):
    """Real lines from other documents, to insert and replace with."""
    lines = []
    for p in rng.sample(files, min(n, len(files))):
        with open(p, encoding="utf-8") as f:
            lines += [ln for ln in f.read().splitlines(keepends=True) if ln.strip()]
    return lines


def _edit(text, rng, corpus):
    lines = text.splitlines(keepends=True)
    for _ in range(rng.randint(1, 3)):
        at = rng.randint(0, len(lines))
        op = rng.random()
        if op < 0.4:
            lines[at:at] = rng.sample(corpus, rng.randint(1, 8))
        elif op < 0.7:
            lines[at:at + rng.randint(1, 5)] = rng.sample(corpus, rng.randint(1, 5))
        elif op < 0.85:
            del lines[at:at + rng.randint(1, 10)]
        elif lines:
            i = min(at, len(lines) - 1)
            words = lines[i].split()
            rng.shuffle(words)
            lines[i] = " ".join(words) + "\n"
    return "".join(lines)


def _write(path, text, when):
    tmp = path + ".bench-tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)   # breaks the hard link to the previous version
    os.utime(path, (when, when))


def history(data, linux, name, base_rel, versions, frac, seed=9):
    """versions folders v00.. of one documentation tree, each edited from the last."""
    params = {"from": linux, "base": base_rel, "versions": versions,
              "frac": frac, "seed": seed, "format": 2}
    root = os.path.join(data, name)
    if _stamped(root, params):
        return [os.path.join(root, f"v{i:02d}") for i in range(versions)]
    _fresh(root)
    os.makedirs(root)
    log(f"making {versions} versions of {base_rel} in {root}")
    rng = random.Random(seed)
    out = [os.path.join(root, "v00")]
    run(["cp", "-a", os.path.join(linux, base_rel), out[0]], timeout=600)
    corpus = _corpus(_text_files(out[0]), rng)
    for v in range(1, versions):
        prev, cur = out[-1], os.path.join(root, f"v{v:02d}")
        run(["cp", "-al", prev, cur], timeout=600)
        when = HISTORY_EPOCH + v * 86400
        files = _text_files(cur)
        n = max(1, round(frac * len(files)))
        for p in rng.sample(files, n):
            r = rng.random()
            if r < 0.85:
                with open(p, encoding="utf-8") as f:
                    _write(p, _edit(f.read(), rng, corpus), when)
            elif r < 0.93:
                d = os.path.dirname(p)
                body = "".join(rng.sample(corpus, rng.randint(20, 200)))
                _write(os.path.join(d, f"notes-v{v:02d}-{rng.randrange(10**6)}.rst"),
                       body, when)
                os.utime(d, (when, when))
            else:
                os.unlink(p)
                os.utime(os.path.dirname(p), (when, when))
        out.append(cur)
    _stamp(root, params)
    return out


def sync_version(src, dst):
    """Makes dst look like src, rewriting only what differs (as an editor would)."""
    os.makedirs(dst, exist_ok=True)
    subprocess.run(["rsync", "-a", "--delete", src + "/", dst + "/"], check=True)
