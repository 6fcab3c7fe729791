#!/bin/bash
# mount_remount.sh — inode numbers name (point, path): the same on every
# mount, whatever order the tree is walked in, and on two mounts at once.
source "${TESTLIB:?}"
source "$(dirname "$0")/mount_lib.sh"
require_fuse

S="$WORK/src"
make_tree "$S"
sd init >/dev/null
sd backup --time 2026-01-01T00:00:00Z "$S/content" "$S/static" >/dev/null
echo changed >"$S/content/posts/hello.md"
sd backup --time 2026-01-02T00:00:00Z "$S/content" "$S/static" >/dev/null

numbers() {
	(cd "$1" && find snapshots ids -printf '%i %p\n' | sort -k2)
}

M="$WORK/mnt"
do_mount "$M"
numbers "$M" >"$WORK/first"
ls -i "$M/latest/content/posts/hello.md" >/dev/null
sd umount "$M"
wait_gone "$MOUNT_PID" || fail "server did not exit"

# walk in another order first: deepest paths of the second point
do_mount "$M"
find "$M/snapshots/2026-01-02T00:00:00Z/static" -printf '%i\n' >/dev/null
stat "$M/snapshots/2026-01-01T00:00:00Z/content/posts/2026/post-7.md" >/dev/null
numbers "$M" >"$WORK/second"
diff "$WORK/first" "$WORK/second" >&2 || fail "inode numbers changed across a remount"

# a second mount of the same repository at the same time agrees
M2="$WORK/mnt2"
do_mount "$M2"
numbers "$M2" >"$WORK/third"
diff "$WORK/first" "$WORK/third" >&2 || fail "inode numbers differ between two mounts"

# plain readdir (d_ino) agrees with stat (st_ino)
python3 - "$M2/snapshots/2026-01-01T00:00:00Z/content/posts/2026" <<'EOF' || fail "d_ino differs from st_ino"
import os, sys
d = sys.argv[1]
for e in os.scandir(d):
    if e.inode() != os.lstat(os.path.join(d, e.name)).st_ino:
        sys.exit(1)
EOF

# numbers are unique across points (hard links aside), and equal paths in
# two points have different numbers
dups=$(awk '{print $1}' "$WORK/first" | sort | uniq -d | wc -l)
links=$(cd "$M/snapshots" && find . -type f -links +1 | wc -l)
[ "$dups" -le "$links" ] || fail "$dups numbers are shared by more than one path"
a=$(stat -c %i "$M/snapshots/2026-01-01T00:00:00Z/content/posts/hello.md")
b=$(stat -c %i "$M/snapshots/2026-01-02T00:00:00Z/content/posts/hello.md")
[ "$a" != "$b" ] || fail "one number for a path in two points"
echo "ok"
