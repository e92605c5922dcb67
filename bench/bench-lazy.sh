#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# bench-lazy.sh — what lazy restore and the page server buy.  See
# bench/README.md.
#
#   1. time to first instruction: `ckpt restore -d` (returns once the tree
#      runs) of memhog N MiB, normal against --lazy-pages (daemon started
#      before the clock), plus the time until the restored memhog has read
#      all of its memory back (SIGUSR1 sent at once; with lazy pages that
#      includes its faults) and, lazy, until the daemon had every page in;
#   2. page-server throughput: `ckpt dump --page-server` of memhog N MiB
#      from one network namespace to `ckpt page-server` in another, joined
#      by a veth pair, against a local dump to the same tmpfs.
#
# Runs inside build/tests/nsrun (fresh pid namespace: the dumped PID is
# free again for the restore).  Medians of --reps runs; the table goes to
# stdout, progress to stderr.
#
#   bench/bench-lazy.sh [-n REPS] [-s MIB] [-b BUILD] [-d DIR]
set -u

SELF=$(readlink -f "${BASH_SOURCE[0]}")
SRCDIR=$(dirname "$(dirname "$SELF")")
. "$SRCDIR/bench/lib.sh"

REPS=3 SIZE=2048 BUILD=$SRCDIR/build DIR=/dev/shm INNER=0
ORIG=("$@")
while (($#)); do
	case $1 in
	-n | --reps) REPS=$2; shift ;;
	-s | --size) SIZE=$2; shift ;;
	-b | --build) BUILD=$2; shift ;;
	-d | --dir) DIR=$2; shift ;;
	--inner) INNER=1 ;;
	-h | --help) sed -n '3,20p' "$SELF"; exit 0 ;;
	*) echo "bench-lazy: unknown option $1" >&2; exit 1 ;;
	esac
	shift
done
die() { echo "bench-lazy: $*" >&2; exit 1; }
note() { echo "bench-lazy: $*" >&2; }

CKPT=$BUILD/core/ckpt MEMHOG=$BUILD/bench/memhog NSRUN=$BUILD/tests/nsrun
[[ -x $CKPT && -x $MEMHOG && -x $NSRUN ]] || die "build first: need core/ckpt, bench/memhog, tests/nsrun in $BUILD"
if ((!INNER)); then
	(($(mem_available_mib) > SIZE * 3 + 512)) || die "not enough memory for $SIZE MiB (needs about 3x)"
	exec "$NSRUN" /bin/bash "$SELF" --inner "${ORIG[@]}"
fi

W=$(mktemp -d "$DIR/ckpt-bench-lazy.XXXXXX") || die "mktemp in $DIR"
trap 'rm -rf "$W"' EXIT

# start_hog [NSPID]: memhog SIZE, optionally in that network namespace
start_hog() {
	rm -f "$W/ready" "$W/verify"
	local pre=()
	[[ -n ${1:-} ]] && pre=(nsenter --net="/proc/$1/ns/net" --)
	CKPT_TEST_READY=$W/ready CKPT_TEST_VERIFY=$W/verify setsid -f "${pre[@]}" "$MEMHOG" "$SIZE" \
		</dev/null >>"$W/memhog.log" 2>&1
	wait_file "$W/ready" 300 || die "memhog did not get ready"
	HOG=$(<"$W/ready")
}
gone_wait() { while [[ -e /proc/$1 ]] && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; do sleep 0.01; done; }

verify_time() { # seconds from SIGUSR1 until memhog reports all pages ok
	local t0 t1
	rm -f "$W/verify" # the same dump is restored twice
	t0=$(now)
	kill -USR1 "$HOG"
	wait_file "$W/verify" 300 || die "no verify result"
	t1=$(now)
	grep -q '^ok' "$W/verify" || die "restored memory is wrong: $(<"$W/verify")"
	elapsed "$t0" "$t1"
}

declare -a N_RST N_VER L_RST L_VER L_ALL D_LOC D_PS
for ((i = 0; i < REPS; i++)); do
	note "rep $((i + 1))/$REPS: normal restore"
	start_hog
	"$CKPT" dump -t "$HOG" -D "$W/img" -o dump.log || die "dump failed"
	gone_wait "$HOG"
	t0=$(now)
	"$CKPT" restore -D "$W/img" -d -o restore.log || die "restore failed"
	t1=$(now)
	N_RST+=("$(elapsed "$t0" "$t1")")
	N_VER+=("$(verify_time)")
	kill -9 "$HOG"; gone_wait "$HOG"

	note "rep $((i + 1))/$REPS: lazy restore"
	"$CKPT" lazy-pages -D "$W/img" -d -v3 -o lazy.log || die "lazy-pages failed"
	t0=$(now)
	"$CKPT" restore -D "$W/img" -d --lazy-pages -o restore-lazy.log || die "restore --lazy-pages failed"
	t1=$(now)
	L_RST+=("$(elapsed "$t0" "$t1")")
	L_VER+=("$(verify_time)")
	for ((k = 0; k < 600; k++)); do grep -q 'all pages served' "$W/img/lazy.log" && break; sleep 0.05; done
	ms=$(sed -n 's/.*all pages served in \([0-9]*\) ms.*/\1/p' "$W/img/lazy.log")
	L_ALL+=("$(awk -v m="${ms:-0}" 'BEGIN { printf "%.6f", m / 1000 }')")
	kill -9 "$HOG"; gone_wait "$HOG"
	rm -rf "$W/img"
done

# page server between two namespaces
H1= H2=
f1=$W/h1 f2=$W/h2
unshare -n bash -c 'ip link set lo up; echo $$ >"$1"; exec sleep 3600' _ "$f1" &
unshare -n bash -c 'ip link set lo up; echo $$ >"$1"; exec sleep 3600' _ "$f2" &
wait_file "$f1" 5 && wait_file "$f2" 5 || die "no network namespaces"
sleep 0.1
H1=$(<"$f1") H2=$(<"$f2")
nsenter --net="/proc/$H1/ns/net" ip link add bla type veth peer name blb netns "$H2" &&
	nsenter --net="/proc/$H1/ns/net" ip addr add 10.232.0.1/24 dev bla &&
	nsenter --net="/proc/$H1/ns/net" ip link set bla up &&
	nsenter --net="/proc/$H2/ns/net" ip addr add 10.232.0.2/24 dev blb &&
	nsenter --net="/proc/$H2/ns/net" ip link set blb up || die "veth setup failed"
for ((i = 0; i < REPS; i++)); do
	note "rep $((i + 1))/$REPS: local dump, dump to a page server"
	start_hog "$H1"
	t0=$(now)
	nsenter --net="/proc/$H1/ns/net" "$CKPT" dump -t "$HOG" -D "$W/loc" -o dump.log || die "dump failed"
	t1=$(now)
	D_LOC+=("$(elapsed "$t0" "$t1")")
	gone_wait "$HOG"
	rm -rf "$W/loc"
	start_hog "$H1"
	nsenter --net="/proc/$H2/ns/net" "$CKPT" page-server -D "$W/recv" --address 10.232.0.2 --port 7777 -d -o ps.log ||
		die "page-server failed"
	t0=$(now)
	nsenter --net="/proc/$H1/ns/net" "$CKPT" dump -t "$HOG" -D "$W/src" -o dump.log \
		--page-server --address 10.232.0.2 --port 7777 || die "dump --page-server failed"
	t1=$(now)
	D_PS+=("$(elapsed "$t0" "$t1")")
	gone_wait "$HOG"
	[[ -s $W/recv/inventory.img ]] || die "the page server got no complete dump"
	rm -rf "$W/src" "$W/recv"
done
kill "$H1" "$H2"

mbps() { awk -v s="$1" -v m="$SIZE" 'BEGIN { printf "%.0f", m * 1048576 / 1e6 / s }'; }
ms() { awk -v s="$1" 'BEGIN { printf "%.0f", s * 1000 }'; }
echo "memhog $SIZE MiB, images in $DIR ($(fs_type "$DIR")), median of $REPS, $(nproc) CPUs, $(uname -r)"
echo
echo "| restore | restore -d returns (first instruction) | memory read back by the task | all pages in place |"
echo "| --- | --- | --- | --- |"
echo "| normal | $(ms "$(median "${N_RST[@]}")") ms | +$(ms "$(median "${N_VER[@]}")") ms | (before it runs) |"
echo "| --lazy-pages | $(ms "$(median "${L_RST[@]}")") ms | +$(ms "$(median "${L_VER[@]}")") ms | $(ms "$(median "${L_ALL[@]}")") ms after hand-over |"
echo
echo "| dump | wall | MB/s |"
echo "| --- | --- | --- |"
echo "| local to $DIR | $(ms "$(median "${D_LOC[@]}")") ms | $(mbps "$(median "${D_LOC[@]}")") |"
echo "| --page-server over veth to $DIR | $(ms "$(median "${D_PS[@]}")") ms | $(mbps "$(median "${D_PS[@]}")") |"
