#!/bin/bash
# big_file.sh (slow) — a file over 100 MiB (half text, half random) backs up,
# restores byte-exact, and deduplicates: the same bytes under another name
# store almost nothing, and an insertion near the start or an append stores
# only the chunks around the change.
here=$(dirname "${BASH_SOURCE[0]}")
source "${TESTLIB:-$here/lib.sh}"
source "$here/tree_lib.sh"

MIB=$((1024 * 1024))
size_mib=112

# timed_backup OUT ARGS...: backup --json, summary in OUT, seconds on stdout.
timed_backup() {
	local out=$1 t
	shift
	t=$(now)
	expect_exit 0 sd backup --json "$@"
	cp "$WORK/.out" "$out"
	since "$t"
}

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.1f", (s > 0) ? n / 1048576 / s : 0 }'; }

expect_exit 0 sd init
mkdir "$WORK/a"
make_big_file "$WORK/a/big.bin" "$size_mib"
size=$(stat -c %s "$WORK/a/big.bin")
compressed=$(zstd -3 -c "$WORK/a/big.bin" | wc -c)

secs=$(timed_backup "$WORK/a.json" --time 2026-10-01T00:00:00Z "$WORK/a")
echo "backup of $size_mib MiB: ${secs}s ($(rate "$size" "$secs") MiB/s)"
json_ok "$WORK/a.json" "j['total_bytes'] == $size and j['bytes_read'] == $size"
json_ok "$WORK/a.json" "j['files'] == 1 and j['files_new'] == 1"
json_ok "$WORK/a.json" "$size <= j['bytes_added'] < $size + 64 * 1024"
# Compressed: about what zstd -3 makes of it, and the random half stays.
json_ok "$WORK/a.json" "$size * 0.45 < j['stored_added'] < $compressed * 1.1"

t=$(now)
expect_exit 0 sd restore --point latest --target "$WORK/ra"
secs=$(since "$t")
echo "restore of $size_mib MiB: ${secs}s ($(rate "$size" "$secs") MiB/s)"
cmp "$WORK/a/big.bin" "$WORK/ra/a/big.bin" || fail "big file differs after restore"
[ "$(entry_stat "$WORK/a/big.bin")" = "$(entry_stat "$WORK/ra/a/big.bin")" ] ||
	fail "big file metadata differs after restore"

# The same bytes under another name, in another source.
mkdir "$WORK/b"
cp "$WORK/a/big.bin" "$WORK/b/copy.bin"
secs=$(timed_backup "$WORK/b.json" --time 2026-10-02T00:00:00Z "$WORK/b")
echo "backup of an identical copy: ${secs}s"
json_ok "$WORK/b.json" "j['files_new'] == 1 and j['bytes_read'] == $size"
json_ok "$WORK/b.json" "j['stored_added'] < 256 * 1024"
json_ok "$WORK/b.json" "j['bytes_added'] < 64 * 1024"

# One byte inserted near the start: content-defined chunks realign.
mkdir "$WORK/c"
{ printf 'X'; cat "$WORK/a/big.bin"; } >"$WORK/c/shifted.bin"
timed_backup "$WORK/c.json" --time 2026-10-03T00:00:00Z "$WORK/c" >/dev/null
json_ok "$WORK/c.json" "j['bytes_added'] < 12 * $MIB"
echo "insertion at the start added $(json_get "$WORK/c.json" 'j["bytes_added"]') bytes"

# An append: only the tail is new.
mkdir "$WORK/d"
cp "$WORK/a/big.bin" "$WORK/d/appended.bin"
rand_file "$WORK/tail" $MIB tail
cat "$WORK/tail" >>"$WORK/d/appended.bin"
timed_backup "$WORK/d.json" --time 2026-10-04T00:00:00Z "$WORK/d" >/dev/null
json_ok "$WORK/d.json" "j['bytes_added'] < 10 * $MIB"

expect_exit 0 sd restore --point latest --target "$WORK/rd"
cmp "$WORK/d/appended.bin" "$WORK/rd/d/appended.bin" || fail "appended file differs"
expect_exit 0 sd restore --point 2026-10-03 --target "$WORK/rc"
cmp "$WORK/c/shifted.bin" "$WORK/rc/c/shifted.bin" || fail "shifted file differs"
expect_exit 0 sd restore --point 2026-10-02 --target "$WORK/rb"
cmp "$WORK/b/copy.bin" "$WORK/rb/b/copy.bin" || fail "copied file differs"

# Unchanged: nothing is read again.
timed_backup "$WORK/a2.json" --time 2026-10-05T00:00:00Z "$WORK/a" >/dev/null
json_ok "$WORK/a2.json" "j['bytes_read'] == 0 and j['files_unchanged'] == 1"

t=$(now)
expect_exit 0 sd check --read-data
secs=$(since "$t")
echo "check --read-data: ${secs}s; repository $(du -sh "$SNAPDRAFT_REPO" | cut -f1)"
echo "big_file: ok"
