#!/bin/bash
# crash_loop.sh (slow) — SIGKILL `backup` at random moments while it writes
# packs; after every kill `check --read-data` passes and every earlier backup
# point still restores byte- and metadata-exact (compared with the copy
# restored and verified when the point was taken).
here=$(dirname "${BASH_SOURCE[0]}")
source "${TESTLIB:-$here/lib.sh}"
source "$here/tree_lib.sh"
need_root

ROUNDS=${CRASH_ROUNDS:-24}
MIN_ROUNDS=20
BUDGET=170	# seconds for the loop; the whole test stays under 4 minutes
RANDOM=20260422	# seeded: the same delays every run
src=$WORK/src/data
t0=$SECONDS

expect_exit 0 sd init
make_tree "$src" 3
mkdir "$src/new"

points=()	# ids of verified points; their copies are $WORK/rec/<n>
# record ID: the point restores equal to the source as it is now; keep that
# restore as the reference copy.
record() {
	local id=$1 n=${#points[@]}
	[ -n "$id" ] || fail "backup saved no point"
	expect_exit 0 sd restore --point "$id" --target "$WORK/rec/$n"
	same_tree "$src" "$WORK/rec/$n/data"
	diff -u <(stat_list "$src") <(stat_list "$WORK/rec/$n/data") >&2 ||
		fail "point ${id:0:8}: metadata differs from the source"
	tree_digest "$WORK/rec/$n" >"$WORK/rec/$n.digest"
	points+=("$id")
}

# verify_all WHEN [N]: check --read-data passes and the first N recorded
# points (default: all) restore exactly as recorded.
verify_all() {
	local i n=${2:-${#points[@]}}
	expect_exit 0 sd check --read-data
	for ((i = 0; i < n; i++)); do
		rm -rf "$WORK/again"
		expect_exit 0 sd restore --point "${points[$i]}" --target "$WORK/again"
		same_tree "$WORK/rec/$i/data" "$WORK/again/data"
		[ "$(tree_digest "$WORK/again")" = "$(cat "$WORK/rec/$i.digest")" ] ||
			fail "point ${points[$i]:0:8} restores other bytes after $1"
	done
	rm -rf "$WORK/again"
}

# last_point: id of the newest point (times given with --time increase).
last_point() {
	sd --json snapshots >"$WORK/list.json"
	json_get "$WORK/list.json" 'j[-1]["id"] if j else ""'
}
point_count() {
	sd --json snapshots >"$WORK/list.json"
	json_get "$WORK/list.json" 'len(j)'
}

# Earlier points: the tree, then new data, then deletions and edits.
expect_exit 0 sd backup --json --time 2026-07-01T00:00:00Z "$src"
record "$(json_get "$WORK/.out" 'j["id"]')"
rand_file "$src/new/early.bin" $((3 * 1024 * 1024)) early
text_file "$src/text-3m.md" $((3 * 1024 * 1024 + 100)) edited
expect_exit 0 sd backup --json --time 2026-07-02T00:00:00Z "$src"
record "$(json_get "$WORK/.out" 'j["id"]')"
rm "$src/random-9m.bin"
mv "$src/mixed-6m.dat" "$src/new/moved.dat"
expect_exit 0 sd backup --json --time 2026-07-03T00:00:00Z "$src"
record "$(json_get "$WORK/.out" 'j["id"]')"
verify_all "the first points"
early=${#points[@]}
# Bulk for the rounds that read everything again (--force), so that a run
# lasts about as long as the longest delay.
make_big_file "$src/bulk.dat" 48 3

# delay R ROUND: seconds from 2 ms to 1 s, from R in 0..32767 (bash's seeded
# RANDOM, drawn by the caller: a subshell would reseed it). Log-uniform in
# odd rounds, which favours the first moments (opening, walking), uniform in
# even ones, which reaches pack writes and commits.
delay() {
	awk -v r="$1" -v k="$2" 'BEGIN { x = r / 32767;
		printf "%.3f", (k % 2) ? exp(log(0.002) + x * (log(1.0) - log(0.002))) : 0.002 + x * 0.998 }'
}

killed=0 killed_after_pack=0 completed=0 round=0
for ((round = 1; round <= ROUNDS; round++)); do
	if ((SECONDS - t0 > BUDGET)); then
		((round > MIN_ROUNDS)) || fail "only $((round - 1)) rounds in ${BUDGET}s"
		echo "time budget reached after $((round - 1)) rounds"
		break
	fi
	# New random data, so packs are being written: a few MiB in rounds
	# that read the whole tree again (--force, the longer runs), more in
	# the others so that several packs are written. The tree keeps only
	# the last three rounds' files.
	force=()
	if ((round % 2)); then
		force=(--force)
		mib=$((2 + RANDOM % 5))
	else
		mib=$((16 + RANDOM % 24))
	fi
	rand_file "$src/new/round-$round.bin" $((mib * 1024 * 1024)) "round$round"
	rm -f "$src/new/round-$((round - 3)).bin"
	d=$(delay "$RANDOM" "$round")
	packs_before=$(pack_list "$SNAPDRAFT_REPO" | wc -l)
	when=$(printf '2026-08-01T%02d:%02d:00Z' $((round / 60)) $((round % 60)))
	# The binary itself, not the sd function: $! must be the process to kill.
	"$SNAPDRAFT" backup --json "${force[@]}" --time "$when" "$src" >"$WORK/.out" 2>"$WORK/.err" &
	pid=$!
	sleep "$d"
	kill -KILL "$pid" 2>/dev/null || true
	rc=0
	wait "$pid" || rc=$?
	case $rc in
	137)
		killed=$((killed + 1))
		[ "$(pack_list "$SNAPDRAFT_REPO" | wc -l)" = "$packs_before" ] ||
			killed_after_pack=$((killed_after_pack + 1))
		# Killed after the point was saved, before it exited.
		if [ "$(point_count)" -gt "${#points[@]}" ]; then
			echo "round $round: the point was saved before the kill"
			record "$(last_point)"
		fi
		;;
	0)
		completed=$((completed + 1))
		record "$(json_get "$WORK/.out" 'j["id"]')"
		;;
	*)
		cat "$WORK/.err" >&2
		fail "round $round: backup exited $rc before it was killed"
		;;
	esac
	echo "round $round: ${mib} MiB new${force:+, --force}, killed after ${d}s (exit $rc);" \
		"$(pack_list "$SNAPDRAFT_REPO" | wc -l) packs"
	# The points taken before the loop every round; later ones were
	# compared with the source when taken and are checked again at the end.
	verify_all "round $round (killed after ${d}s)" "$early"
done

# After all that, a backup runs to the end and restores exactly.
expect_exit 0 sd backup --json --time 2026-09-01T00:00:00Z "$src"
record "$(json_get "$WORK/.out" 'j["id"]')"
verify_all "the final backup"
expect_exit 0 sd --json snapshots
n=$(json_get "$WORK/.out" 'len(j)')
[ "$n" = "${#points[@]}" ] || fail "$n points listed, ${#points[@]} taken"
((killed >= MIN_ROUNDS / 2)) || fail "only $killed of the backups were killed mid-way"
echo "crash_loop: ok ($killed killed, $killed_after_pack of them after a pack" \
	"was stored, $completed finished, $((SECONDS - t0)) s)"
