#!/bin/bash
# mount_parallel.sh — hundreds of parallel readers get the right bytes,
# readers killed mid-read do not hurt the server, and random reads at odd
# offsets across chunk boundaries and holes agree with the source.
source "${TESTLIB:?}"
source "$(dirname "$0")/mount_lib.sh"
require_fuse

S="$WORK/src"
mkdir -p "$S/data/small" "$S/data/big"
for ((i = 0; i < 400; i++)); do
	head -c $((RANDOM * 7 % 200000 + 1)) /dev/urandom >"$S/data/small/f$i"
done
for ((i = 0; i < 4; i++)); do
	head -c $((6000000 + i * 1000000)) /dev/urandom >"$S/data/big/b$i"
done
# chunks of repeated text: compressible, and shared between files
for ((i = 0; i < 20; i++)); do
	{ seq 1 200000; echo "$i"; } >"$S/data/big/text$i"
done
truncate -s 30M "$S/data/big/holes"
head -c 5000000 /dev/urandom | dd of="$S/data/big/holes" bs=1M seek=10 conv=notrunc status=none
sd init >/dev/null
sd backup "$S/data" >/dev/null
M="$WORK/mnt"
do_mount "$M"
P=$(readlink -f "$M/latest")/data

(cd "$S/data" && find . -type f -print0 | xargs -0 sha256sum | sort -k2) >"$WORK/want"

# 200 readers at once, every file
(cd "$P" && find . -type f -print0 | xargs -0 -n 2 -P 200 sha256sum | sort -k2) >"$WORK/got"
diff "$WORK/want" "$WORK/got" | head -5 >&2
cmp -s "$WORK/want" "$WORK/got" || fail "parallel reads returned other bytes"

# the same big file read by 50 readers at once
for ((i = 0; i < 50; i++)); do
	sha256sum <"$P/big/b3" >"$WORK/par.$i" &
done
wait
want=$(sha256sum <"$S/data/big/b3")
for ((i = 0; i < 50; i++)); do
	[ "$(cat "$WORK/par.$i")" = "$want" ] || fail "reader $i of b3 got other bytes"
done

# random reads at odd offsets and sizes, straddling chunks and holes
for f in big/b1 big/holes big/text3; do
	size=$(stat -c %s "$S/data/$f")
	for ((k = 0; k < 40; k++)); do
		off=$(((RANDOM * 32768 + RANDOM) % size))
		len=$((RANDOM * 40 + 1))
		a=$(dd if="$S/data/$f" iflag=skip_bytes,count_bytes skip="$off" count="$len" bs=64k status=none | sha256sum)
		b=$(dd if="$P/$f" iflag=skip_bytes,count_bytes skip="$off" count="$len" bs=64k status=none | sha256sum)
		[ "$a" = "$b" ] || fail "$f: $len bytes at $off differ"
	done
done
# mmap readers go through the same path
python3 - "$S/data/big/b2" "$P/big/b2" <<'EOF' || fail "mmap read differs"
import mmap, sys
a, b = (open(p, "rb") for p in sys.argv[1:3])
ma = mmap.mmap(a.fileno(), 0, prot=mmap.PROT_READ)
mb = mmap.mmap(b.fileno(), 0, prot=mmap.PROT_READ)
sys.exit(0 if ma[:] == mb[:] else 1)
EOF

# readers killed in the middle of big reads
for ((i = 0; i < 30; i++)); do
	dd if="$P/big/b$((i % 4))" of=/dev/null bs=64k 2>/dev/null &
	pid=$!
	sleep 0.0$((RANDOM % 9 + 1))
	kill -9 "$pid" 2>/dev/null || true
done
wait 2>/dev/null || true
! is_gone "$MOUNT_PID" || fail "the server died"
(cd "$P" && find . -type f -print0 | xargs -0 -n 8 -P 16 sha256sum | sort -k2) >"$WORK/got2"
diff "$WORK/want" "$WORK/got2" | head -5 >&2
cmp -s "$WORK/want" "$WORK/got2" || fail "reads after killed readers returned other bytes"

# a cache smaller than the data still serves everything right
S_JSON="$M/.snapdraft/status.json"
[ "$(jq .cache.bytes "$S_JSON")" -le "$(jq .cache.capacity_bytes "$S_JSON")" ] ||
	fail "the chunk cache is over its bound"
[ "$(jq .cache.prefetches "$S_JSON")" -gt 0 ] || fail "no read-ahead happened"
echo "ok"
