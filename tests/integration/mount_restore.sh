#!/bin/bash
# mount_restore.sh — the mount shows every node with its true metadata, and
# cp -a / rsync -a -H -X / tar out of it reproduce the source exactly.
source "${TESTLIB:?}"
source "$(dirname "$0")/mount_lib.sh"
require_fuse

S="$WORK/src"
make_tree "$S"
sd init >/dev/null
sd backup "$S/content" "$S/static" "$S/deep" "$S/hugo.toml" >/dev/null
M="$WORK/mnt"
do_mount "$M"
P=$(readlink -f "$M/latest")

# --- stat of every entry agrees: type, mode, owner, size, ns mtime, nlink,
# symlink target
for src in content static deep; do
	diff <(stat_list "$S/$src") <(stat_list "$P/$src") >&2 ||
		fail "stat of $src differs between source and mount"
done
[ "$(stat -c '%a %h %s %Y' "$S/hugo.toml")" = "$(stat -c '%a %h %s %Y' "$P/hugo.toml")" ] ||
	fail "a file source at the root has other attributes"
# atime is served as stored too
[ "$(stat -c %X "$S/content/posts/hello.md")" = "$(stat -c %X "$P/content/posts/hello.md")" ] ||
	fail "atime differs"

# --- hard links share one inode number inside a point; other numbers differ
i1=$(stat -c %i "$P/hugo.toml")
i2=$(stat -c %i "$P/content/hugo-hardlink.toml")
i3=$(stat -c %i "$P/static/hugo-hardlink2.toml")
[ "$i1" = "$i2" ] && [ "$i2" = "$i3" ] || fail "hard links have numbers $i1 $i2 $i3"
[ "$(stat -c %h "$P/hugo.toml")" = 3 ] || fail "hard link count"
n=$(find "$P" -printf '%i %n\n' | awk '$2 == 1' | sort -u | wc -l)
m=$(find "$P" -printf '%i %n\n' | awk '$2 == 1' | wc -l)
[ "$n" = "$m" ] || fail "inode numbers are not unique ($n of $m)"

# --- xattrs, symlinks, special files, sparse files
[ "$(getfattr --absolute-names --only-values -n user.author "$P/content/posts/hello.md")" = Ada ] || fail "xattr value"
getfattr --absolute-names -d "$P/content/posts/hello.md" | grep -q '^user.empty' || fail "empty xattr missing"
[ "$(getfattr --absolute-names --only-values -n user.dir "$P/content/posts")" = yes ] || fail "xattr on a directory"
out=$(getfattr --absolute-names -n user.nope "$P/content/posts/hello.md" 2>&1) &&
	fail "a missing xattr was found"
grep -q "No such attribute" <<<"$out" || fail "a missing xattr should be ENODATA: $out"
[ "$(readlink "$P/content/link-long")" = "$(readlink "$S/content/link-long")" ] || fail "long symlink"
[ -p "$P/content/a-fifo" ] || fail "fifo is not a fifo"
sb=$(stat -c %b "$S/static/sparse.img")
mb=$(stat -c %b "$P/static/sparse.img")
[ "$mb" = "$sb" ] || fail "sparse file: $mb blocks in the mount, $sb in the source"
[ "$mb" -lt 1000 ] || fail "sparse file does not look sparse ($mb blocks)"
cmp "$S/static/sparse.img" "$P/static/sparse.img" || fail "sparse content"
# SEEK_DATA / SEEK_HOLE follow the holes: cp keeps the copy sparse
cp --sparse=auto "$P/static/sparse.img" "$WORK/sparse-copy"
[ "$(stat -c %b "$WORK/sparse-copy")" -lt 1000 ] || fail "copy of the sparse file is not sparse"
cmp "$S/static/sparse.img" "$WORK/sparse-copy" || fail "sparse copy content"

# --- find, ls -lR, du, tar
diff <(cd "$S/content" && find . | sort) <(cd "$P/content" && find . | sort) >&2 || fail "find differs"
diff <(cd "$S" && ls -lR --time-style=full-iso content static deep) \
	<(cd "$P" && ls -lR --time-style=full-iso content static deep) >&2 || fail "ls -lR differs"
for src in content static deep; do
	[ "$(du -s --apparent-size "$S/$src" | cut -f1)" = "$(du -s --apparent-size "$P/$src" | cut -f1)" ] ||
		fail "du --apparent-size of $src differs"
	[ "$(du -s "$S/$src" | cut -f1)" = "$(du -s "$P/$src" | cut -f1)" ] ||
		fail "du of $src differs: $(du -s "$S/$src") vs $(du -s "$P/$src")"
done
for src in content static deep; do
	a=$(tar -C "$S" -c --format=gnu --sort=name --numeric-owner "$src" | sha256sum)
	b=$(tar -C "$P" -c --format=gnu --sort=name --numeric-owner "$src" | sha256sum)
	[ "$a" = "$b" ] || fail "tar c of $src differs"
done

# --- restores: cp -a and rsync -a -H -X reproduce the source exactly
mkdir "$WORK/cp" "$WORK/rsync"
cp -a "$P/content" "$P/static" "$P/deep" "$WORK/cp/"
for src in content static deep; do
	same_tree "$S/$src" "$WORK/cp/$src"
	same_tree "$S/$src" "$P/$src"
done
rsync -a -H -X "$P/" "$WORK/rsync/"
for src in content static deep; do
	same_tree "$S/$src" "$WORK/rsync/$src"
	diff <(stat_list "$S/$src") <(stat_list "$WORK/rsync/$src") >&2 || fail "rsync restore of $src: stat differs"
done
cmp "$S/hugo.toml" "$WORK/rsync/hugo.toml" || fail "root file"
[ "$(stat -c %i "$WORK/rsync/content/hugo-hardlink.toml")" = "$(stat -c %i "$WORK/rsync/static/hugo-hardlink2.toml")" ] ||
	fail "rsync -H did not keep the hard link"
[ "$(stat -c %b "$WORK/rsync/static/sparse.img")" -lt 1000 ] || rsync -a -S "$P/static/sparse.img" "$WORK/" # informative only
echo "ok"
