#!/bin/bash
# backup_restore.sh — the foundation round trip from the command line: init,
# backup of an awkward tree and a single file, snapshots (text and JSON),
# full and partial restores compared by content and metadata, points chosen
# by id and by time, incremental runs, excludes, dry runs, refusing to
# overwrite, unreadable and vanishing files, config and help.
here=$(dirname "${BASH_SOURCE[0]}")
source "${TESTLIB:-$here/lib.sh}"
source "$here/tree_lib.sh"
need_root

src=$WORK/src

# backup_json OUT WANT_EXIT ARGS...: runs `backup --json ARGS`, keeps its
# summary in OUT.
backup_json() {
	local out=$1 want=$2
	shift 2
	expect_exit "$want" sd backup --json "$@"
	cp "$WORK/.out" "$out"
	cp "$WORK/.err" "$out.err"
}

# point_is SPEC ID [COPY]: `restore --point SPEC` picks the point ID (and its
# notes/changing.md equals COPY).
point_is() {
	rm -rf "$WORK/pt"
	expect_exit 0 sd restore --point "$1" --target "$WORK/pt" \
		content/notes/changing.md
	grep -q "restored ${2:0:8} " "$WORK/.out" ||
		{ cat "$WORK/.out" >&2; fail "--point $1 did not pick ${2:0:8}"; }
	if [ -n "${3:-}" ]; then
		cmp "$WORK/pt/content/notes/changing.md" "$3" ||
			fail "--point $1 restored the wrong changing.md"
	fi
}

# full_compare SRC RESTORED: content, metadata, xattrs.
full_compare() {
	same_tree "$1" "$2"
	diff -u <(stat_list "$1") <(stat_list "$2") >&2 ||
		fail "stat of entries differs: $1 vs $2"
	diff -u <(xattr_list "$1") <(xattr_list "$2") >&2 ||
		fail "xattrs differ: $1 vs $2"
}

# ------------------------------------------------------------ help, version
expect_exit 0 sd --version
grep -Eq '^snapdraft [0-9]+\.[0-9]+' "$WORK/.out" || fail "--version: $(cat "$WORK/.out")"
expect_exit 0 sd help
for w in init backup snapshots restore check repair config 'exit codes' 11; do
	grep -q -- "$w" "$WORK/.out" || fail "help does not mention '$w'"
done
expect_exit 0 sd help backup
grep -q -- --exclude-file "$WORK/.out" || fail "help backup lacks --exclude-file"
cp "$WORK/.out" "$WORK/help-backup"
expect_exit 0 sd backup --help
cmp -s "$WORK/.out" "$WORK/help-backup" || fail "backup --help differs from help backup"
expect_exit 0 sd help restore
grep -q -- --overwrite "$WORK/.out" || fail "help restore lacks --overwrite"
expect_exit 2 sd help no-such-command
expect_stderr 'no-such-command'

# ------------------------------------------------------------ init
expect_exit 0 sd init
[ -f "$SNAPDRAFT_REPO/config.yaml" ] || fail "init wrote no config.yaml"
[ "$(grep -c '^ *#' "$SNAPDRAFT_REPO/config.yaml")" -ge 5 ] ||
	fail "config.yaml is not commented"

# ------------------------------------------------------------ config
expect_exit 0 sd config
grep -Eq 'keep_daily: *30' "$WORK/.out" || { cat "$WORK/.out" >&2; fail "config lacks keep_daily: 30"; }
grep -Eq 'compression_level: *3' "$WORK/.out" || fail "config lacks compression_level: 3"
comments=$(grep -c '^ *#' "$SNAPDRAFT_REPO/config.yaml")
entries=$(ls -A "$SNAPDRAFT_REPO")
expect_exit 0 sd config set retention.keep_daily 7
[ "$(ls -A "$SNAPDRAFT_REPO")" = "$entries" ] || fail "config set left files behind: $(ls -A "$SNAPDRAFT_REPO")"
expect_exit 0 sd config
grep -Eq 'keep_daily: *7$' "$WORK/.out" || fail "config set did not change keep_daily"
[ "$(grep -c '^ *#' "$SNAPDRAFT_REPO/config.yaml")" -ge "$comments" ] ||
	fail "config set dropped comments"
cfg_sum=$(sha256sum <"$SNAPDRAFT_REPO/config.yaml")
expect_exit 2 sd config set retention.keep_dayly 7
expect_stderr 'config\.yaml.*keep_dayly'
expect_exit 2 sd config set retention.keep_daily lots
expect_stderr 'keep_daily'
expect_exit 2 sd config set retention.keep_daily
[ "$(sha256sum <"$SNAPDRAFT_REPO/config.yaml")" = "$cfg_sum" ] ||
	fail "a refused config set changed config.yaml"
cp "$SNAPDRAFT_REPO/config.yaml" "$WORK/config.good"
printf 'retention:\n  keep_daily: 3\n  keep_dayly: 4\n' >"$SNAPDRAFT_REPO/config.yaml"
rc=0
sd config >"$WORK/.out" 2>"$WORK/.err" || rc=$?
[ "$rc" != 0 ] || fail "config accepted an unknown key in config.yaml"
expect_stderr 'config\.yaml:3.*keep_dayly'
printf 'retention:\n  keep_daily: [1, 2\nsources: {\n' >"$SNAPDRAFT_REPO/config.yaml"
rc=0
sd snapshots >"$WORK/.out" 2>"$WORK/.err" || rc=$?
[ "$rc" != 0 ] || fail "snapshots accepted invalid YAML in config.yaml"
expect_stderr 'config\.yaml:[0-9]+'
cp "$WORK/config.good" "$SNAPDRAFT_REPO/config.yaml"

# ------------------------------------------------------------ first backup
make_tree "$src/content" 1
text_file "$src/hugo.toml" 900 hugo
mkdir "$src/content/notes"
text_file "$src/content/notes/changing.md" 4000 v1
cp "$src/content/notes/changing.md" "$WORK/v1.md"
atime_list "$src/content" >"$WORK/atimes.expected"
names=$(find "$src/content" -type f | wc -l)
inodes=$(find "$src/content" -type f -printf '%i\n' | sort -u | wc -l)

backup_json "$WORK/p1.json" 0 --time 2026-01-01T09:00:00Z --tag first \
	"$src/content" "$src/hugo.toml"
p1=$(json_get "$WORK/p1.json" 'j["id"]')
json_ok "$WORK/p1.json" 'len(j["id"]) == 64 and all(c in "0123456789abcdef" for c in j["id"])'
json_ok "$WORK/p1.json" 'j["success"] is True and j["partial"] is False and j["dry_run"] is False'
json_ok "$WORK/p1.json" 'j["time"] == "2026-01-01T09:00:00Z"'
json_ok "$WORK/p1.json" '[s["name"] for s in j["sources"]] == ["content", "hugo.toml", "drafts"]'
json_ok "$WORK/p1.json" "[s['path'] for s in j['sources']] == ['$src/content', '$src/hugo.toml', '$(realpath "$SNAPDRAFT_REPO")/drafts']"
json_ok "$WORK/p1.json" "$inodes + 1 <= j['files'] <= $names + 1"
json_ok "$WORK/p1.json" 'j["files_new"] == j["files"] and j["files_unchanged"] == 0'
json_ok "$WORK/p1.json" 'j["warnings"] == 0 and j["bytes_read"] > 0'
json_ok "$WORK/p1.json" '0 < j["stored_added"] < j["total_bytes"]'
json_ok "$WORK/p1.json" 'j["sources"][1]["files"] == 1 and j["sources"][1]["bytes"] == 900'

expect_exit 0 sd snapshots
for w in 2026-01-01T09:00:00Z "${p1:0:8}" content,hugo.toml first; do
	grep -q -- "$w" "$WORK/.out" || { cat "$WORK/.out" >&2; fail "snapshots lacks '$w'"; }
done
expect_exit 0 sd --json snapshots
cp "$WORK/.out" "$WORK/list.json"
json_ok "$WORK/list.json" "len(j) == 1 and j[0]['id'] == '$p1' and j[0]['short_id'] == '${p1:0:8}'"
json_ok "$WORK/list.json" 'j[0]["tags"] == ["first"] and j[0]["partial"] is False'
json_ok "$WORK/list.json" 'j[0]["time"] == "2026-01-01T09:00:00Z"'
json_ok "$WORK/list.json" '[s["name"] for s in j[0]["sources"]] == ["content", "hugo.toml", "drafts"]'

# ------------------------------------------------------------ full restore
expect_exit 0 sd restore --point latest --target "$WORK/r1"
# Atimes first: reading the restored files moves them.
diff -u "$WORK/atimes.expected" <(atime_list "$WORK/r1/content") >&2 ||
	fail "atimes were not restored"
full_compare "$src/content" "$WORK/r1/content"
[ "$(cd "$WORK/r1/drafts" && ls | tr '\n' ' ')" = "approved llm-generated manual requests " ] ||
	fail "the point lacks the standard drafts folders: $(ls "$WORK/r1/drafts")"
cmp "$src/hugo.toml" "$WORK/r1/hugo.toml" || fail "hugo.toml differs"
[ "$(entry_stat "$src/hugo.toml")" = "$(entry_stat "$WORK/r1/hugo.toml")" ] ||
	fail "hugo.toml metadata differs"
[ "$(ls -A "$WORK/r1" | sort | tr '\n' ' ')" = "content drafts hugo.toml " ] ||
	fail "restore made unexpected entries: $(ls -A "$WORK/r1")"
sparse_kib=$(du -k "$WORK/r1/content/sparse.img" | cut -f1)
[ "$(stat -c %s "$WORK/r1/content/sparse.img")" = $((64 * 1024 * 1024)) ] ||
	fail "sparse file has the wrong size"
[ "$sparse_kib" -lt 1024 ] || fail "sparse file is not sparse after restore (${sparse_kib} KiB)"
src_kib=$(du -sk "$src/content" | cut -f1)
dst_kib=$(du -sk "$WORK/r1/content" | cut -f1)
[ "$dst_kib" -le $((src_kib + 1024)) ] ||
	fail "restore uses ${dst_kib} KiB on disk, the source ${src_kib} KiB"

# ------------------------------------------------------------ partial restores
expect_exit 0 sd restore --point "${p1:0:8}" --target "$WORK/r2" 'content/AI와 미래 기술.md'
[ "$(count_files "$WORK/r2")" = 1 ] || fail "one-file restore restored $(count_files "$WORK/r2") files"
cmp "$src/content/AI와 미래 기술.md" "$WORK/r2/content/AI와 미래 기술.md"
[ "$(entry_stat "$src/content/AI와 미래 기술.md")" = "$(entry_stat "$WORK/r2/content/AI와 미래 기술.md")" ] ||
	fail "one-file restore: metadata differs"
odd=$(printf 'caf\351-not-utf8\377\376')
expect_exit 0 sd restore --point "${p1:0:8}" --target "$WORK/r2b" hugo.toml \
	"content/odd/$odd" content/links/pair-b
cmp "$src/hugo.toml" "$WORK/r2b/hugo.toml"
cmp "$src/content/odd/$odd" "$WORK/r2b/content/odd/$odd"
cmp "$src/content/links/pair-b" "$WORK/r2b/content/links/pair-b"
[ "$(count_files "$WORK/r2b")" = 3 ] || fail "three-path restore restored $(count_files "$WORK/r2b") files"
expect_exit 0 sd restore --point "$p1" --target "$WORK/r3" content/초안
[ "$(ls -A "$WORK/r3/content")" = 초안 ] || fail "directory restore: $(ls -A "$WORK/r3/content")"
full_compare "$src/content/초안" "$WORK/r3/content/초안"
expect_exit 0 sd restore --point "$p1" --target "$WORK/r3b" content/deep
full_compare "$src/content/deep" "$WORK/r3b/content/deep"

# ------------------------------------------------------------ incremental
backup_json "$WORK/p2.json" 0 --time 2026-01-02T10:00:00Z "$src/content" "$src/hugo.toml"
p2=$(json_get "$WORK/p2.json" 'j["id"]')
[ "$p2" != "$p1" ] || fail "second point has the first one's id"
json_ok "$WORK/p2.json" 'j["bytes_read"] == 0'
json_ok "$WORK/p2.json" 'j["files_unchanged"] == j["files"] and j["files_new"] == 0 and j["files_changed"] == 0'
json_ok "$WORK/p2.json" "j['files'] == $(json_get "$WORK/p1.json" 'j["files"]')"
json_ok "$WORK/p2.json" 'j["bytes_added"] < 65536'

text_file "$src/content/notes/changing.md" 5000 v3
cp "$src/content/notes/changing.md" "$WORK/v3.md"
backup_json "$WORK/p3.json" 0 --time 2026-01-02T10:30:45Z "$src/content" "$src/hugo.toml"
p3=$(json_get "$WORK/p3.json" 'j["id"]')
json_ok "$WORK/p3.json" 'j["bytes_read"] == 5000'
json_ok "$WORK/p3.json" 'j["files_changed"] == 1 and j["files_new"] == 0'
json_ok "$WORK/p3.json" 'j["files_unchanged"] == j["files"] - 1'

text_file "$src/content/notes/changing.md" 6000 v4
cp "$src/content/notes/changing.md" "$WORK/v4.md"
backup_json "$WORK/p4.json" 0 --time 2026-01-02T11:00:00Z "$src/content" "$src/hugo.toml"
p4=$(json_get "$WORK/p4.json" 'j["id"]')
json_ok "$WORK/p4.json" 'j["bytes_read"] == 6000 and j["files_changed"] == 1'
expect_exit 0 sd restore --point "${p4:0:12}" --target "$WORK/r4"
full_compare "$src/content" "$WORK/r4/content"

# ------------------------------------------------------------ points by id and time
point_is 2026-01-02T10:30 "$p3" "$WORK/v3.md"
point_is 2026-01-02T10:30:45Z "$p3" "$WORK/v3.md"
point_is 2026-01-02T10:30:44 "$p2" "$WORK/v1.md"
point_is 2026-01-02T10:29 "$p2" "$WORK/v1.md"
point_is 2026-01-02T10 "$p3" "$WORK/v3.md"
point_is 2026-01-02 "$p4" "$WORK/v4.md"
point_is 2026-01-01T09:00 "$p1" "$WORK/v1.md"
point_is 2026-06-01T00:00:00Z "$p4" "$WORK/v4.md"
point_is latest "$p4" "$WORK/v4.md"
point_is "${p2:0:6}" "$p2" "$WORK/v1.md"
point_is "$p3" "$p3" "$WORK/v3.md"
expect_exit 1 sd restore --point 2026-01-01T08:59 --target "$WORK/none"
expect_stderr 'no backup point matches'
[ ! -e "$WORK/none/content" ] || fail "a failed --point restored something"
expect_exit 0 sd --json snapshots
cp "$WORK/.out" "$WORK/list.json"
json_ok "$WORK/list.json" "[s['id'] for s in j] == ['$p1', '$p2', '$p3', '$p4']"

# ------------------------------------------------------------ overwrite
expect_exit 0 sd restore --point "$p4" --target "$WORK/ow"
printf 'y' >"$WORK/ow/content/one.txt"
rm "$WORK/ow/content/empty.txt"
echo extra >"$WORK/ow/content/links/pair-a"
before=$(stat_list "$WORK/ow"; tree_digest "$WORK/ow")
expect_exit 1 sd restore --point "$p4" --target "$WORK/ow"
expect_stderr 'exist.*--overwrite'
after=$(stat_list "$WORK/ow"; tree_digest "$WORK/ow")
[ "$before" = "$after" ] || fail "a refused restore changed the target"
expect_exit 1 sd restore --point "$p4" --target "$WORK/ow" content/one.txt
expect_stderr 'one\.txt.*exist|exist.*one\.txt'
[ "$(cat "$WORK/ow/content/one.txt")" = y ] || fail "a refused one-file restore changed it"
expect_exit 0 sd restore --point "$p4" --target "$WORK/ow" --overwrite
full_compare "$src/content" "$WORK/ow/content"

# ------------------------------------------------------------ excludes
cat >"$WORK/excludes" <<'EOF'
# build products
*.bin

   deep
EOF
backup_json "$WORK/p5.json" 0 --time 2026-01-03T00:00:00Z --exclude '*.md' \
	--exclude odd --exclude-file "$WORK/excludes" "$src/content"
p5=$(json_get "$WORK/p5.json" 'j["id"]')
rsync -a -H -X --exclude='*.bin' --exclude=deep --exclude='*.md' --exclude=odd \
	"$src/content/" "$WORK/exp5/"
expect_exit 0 sd restore --point "$p5" --target "$WORK/r5"
full_compare "$WORK/exp5" "$WORK/r5/content"
json_ok "$WORK/p5.json" "j['files'] < $(json_get "$WORK/p4.json" 'j["files"]') - 1"
expect_exit 1 sd backup --exclude-file "$WORK/no-such-file" "$src/content"
expect_stderr 'no-such-file'

# ------------------------------------------------------------ dry run
rand_file "$src/content/new-data.bin" $((2 * 1024 * 1024)) dry
repo_digest "$SNAPDRAFT_REPO" >"$WORK/repo.before"
backup_json "$WORK/p6.json" 0 --dry-run --time 2026-01-04T00:00:00Z "$src/content" "$src/hugo.toml"
json_ok "$WORK/p6.json" 'j["dry_run"] is True and j["id"] == ""'
json_ok "$WORK/p6.json" 'j["files_new"] >= 1 and j["bytes_read"] >= 2 * 1024 * 1024'
repo_unchanged_since "$WORK/repo.before" "after backup --dry-run"
expect_exit 0 sd backup --dry-run "$src/content"
grep -q 'dry run' "$WORK/.out" || fail "text dry run does not say so"
repo_unchanged_since "$WORK/repo.before" "after backup --dry-run (text)"
rm "$src/content/new-data.bin"

# ------------------------------------------------------------ unreadable file
# As root every mode is readable; a write-only sysfs attribute is not (the
# kernel refuses to open it for reading even for root), so bind one in.
mkdir -p "$WORK/flaky/sub"
text_file "$WORK/flaky/a.txt" 3000 fa
text_file "$WORK/flaky/sub/b.txt" 3000 fb
wo=$(find /sys/devices /sys/class -maxdepth 6 -type f -perm 0200 -size +0 2>/dev/null |
	head -n1 || true)
if [ -n "$wo" ] && touch "$WORK/flaky/sub/unreadable" &&
	mount --bind "$wo" "$WORK/flaky/sub/unreadable"; then
	on_exit "umount -l '$WORK/flaky/sub/unreadable'"
	! head -c1 "$WORK/flaky/sub/unreadable" >/dev/null 2>&1 ||
		fail "test set-up: $wo is readable"
	rsync -a --exclude=unreadable "$WORK/flaky/" "$WORK/exp7/"
	# rsync does not always carry sub/'s time to the nanosecond past the
	# excluded mount point; the source's own time is the expectation.
	touch -h -r "$WORK/flaky/sub" "$WORK/exp7/sub"
	backup_json "$WORK/p7.json" 3 --time 2026-01-05T00:00:00Z "$WORK/flaky"
	grep -q 'sub/unreadable' "$WORK/p7.json.err" ||
		{ cat "$WORK/p7.json.err" >&2; fail "the unreadable file is not named"; }
	json_ok "$WORK/p7.json" 'j["success"] is True and j["partial"] is True and j["warnings"] >= 1'
	p7=$(json_get "$WORK/p7.json" 'j["id"]')
	[ -n "$p7" ] || fail "partial backup saved no point"
	expect_exit 0 sd --json snapshots
	cp "$WORK/.out" "$WORK/list.json"
	json_ok "$WORK/list.json" "[s['partial'] for s in j if s['id'] == '$p7'] == [True]"
	expect_exit 0 sd snapshots
	grep "${p7:0:8}" "$WORK/.out" | grep -q partial || fail "snapshots does not mark the partial point"
	expect_exit 0 sd restore --point "$p7" --target "$WORK/r7"
	same_tree "$WORK/exp7" "$WORK/r7/flaky"
else
	echo "note: no write-only sysfs attribute to bind; unreadable-file case not run" >&2
fi

# ------------------------------------------------------------ vanishing files
mkdir -p "$WORK/vanish"
for i in $(seq 1 60); do
	rand_file "$WORK/vanish/f$i" $((512 * 1024)) "van$i"
done
cp -a "$WORK/vanish" "$WORK/vanish-ref"
"$SNAPDRAFT" backup --json --force --time 2026-01-06T00:00:00Z "$WORK/vanish" \
	>"$WORK/p8.json" 2>"$WORK/p8.err" &
pid=$!
# Start deleting once the backup holds the writer lock (it is walking).
while kill -0 "$pid" 2>/dev/null && ! lock_held "$SNAPDRAFT_REPO/lock"; do
	sleep 0.01
done
for i in $(seq 60 -1 20); do rm -f "$WORK/vanish/f$i"; done
rc=0
wait "$pid" || rc=$?
case $rc in
0 | 3) ;;
*) cat "$WORK/p8.err" >&2; fail "backup with vanishing files exited $rc" ;;
esac
if [ "$rc" = 3 ]; then
	grep -q 'vanish/f' "$WORK/p8.err" || fail "vanished files are not named"
	json_ok "$WORK/p8.json" 'j["partial"] is True'
fi
p8=$(json_get "$WORK/p8.json" 'j["id"]')
expect_exit 0 sd restore --point "$p8" --target "$WORK/r8"
for f in "$WORK/r8/vanish/"*; do
	cmp "$f" "$WORK/vanish-ref/$(basename "$f")" ||
		fail "restored $(basename "$f") is not what was written"
done
[ "$(count_files "$WORK/r8")" -ge 19 ] || fail "files that never vanished are missing"

# ------------------------------------------------------------ final check
expect_exit 0 sd check
expect_exit 0 sd check --read-data
grep -q 'no problems found' "$WORK/.out" || fail "check does not report success"
echo "backup_restore: ok"
