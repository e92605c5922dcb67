#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# bench-incremental.sh — frozen time of an incremental dump against a full
# dump.  See bench/README.md.
#
#   bench-incremental.sh [-m MIB] [-r REPS] [-d DIR] [-p "1 5 25"]
#
# full: memhog MIB; `ckpt dump` it.  PCT: memhog MIB; `ckpt pre-dump`;
# memhog rewrites PCT % of its pages (SIGUSR2); `ckpt dump
# --prev-images-dir`.  Both dumps run with -R (memhog is killed after), so
# the frozen time ckpt logs ("the tree was frozen for X ms": from the seize
# to the release) is not mixed with the kernel freeing the killed memory;
# also the wall time of the dump and the bytes of pages it wrote.  The
# table (medians) goes to stdout.  Run as root; the images go to DIR
# (default /dev/shm).
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
ROOT=$PWD
CKPT=${CKPT:-$ROOT/build/core/ckpt}
MEMHOG=${MEMHOG:-$ROOT/build/bench/memhog}
MIB=2048 REPS=3 BASE=/dev/shm PCTS="1 5 25"
while getopts "m:r:d:p:" o; do
	case $o in
	m) MIB=$OPTARG ;; r) REPS=$OPTARG ;; d) BASE=$OPTARG ;; p) PCTS=$OPTARG ;;
	*) echo "usage: $0 [-m MIB] [-r REPS] [-d DIR] [-p PCTS]" >&2; exit 2 ;;
	esac
done
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
W=$(mktemp -d "$BASE/ckpt-incr.XXXXXX") || exit 1
trap 'rm -rf "$W"' EXIT

start_hog() {
	rm -f "$W/ready" "$W/touched"
	CKPT_TEST_READY=$W/ready CKPT_BENCH_TOUCH_PCT=${1:-0} CKPT_BENCH_TOUCHED=$W/touched \
		setsid -f "$MEMHOG" "$MIB" </dev/null >>"$W/memhog.log" 2>&1
	wait_file "$W/ready" 120 || { echo "memhog did not start" >&2; exit 1; }
	PID=$(<"$W/ready")
}
frozen_ms() { sed -n 's/.*the tree was frozen for \([0-9.]*\) ms.*/\1/p' "$1" | tail -n 1; }
gone_wait() { local i; for ((i = 0; i < 200; i++)); do [[ -e /proc/$1 ]] || return 0; sleep 0.05; done; }

one() { # PCT|full -> "frozen_ms wall_s bytes"
	local pct=$1 t0 t1
	rm -rf "$W/d1" "$W/d2"
	if [[ $pct == full ]]; then
		start_hog 0
	else
		start_hog "$pct"
		"$CKPT" pre-dump -t "$PID" -D "$W/d1" -v4 -o dump.log || { echo "pre-dump failed" >&2; exit 1; }
		kill -USR2 "$PID"
		wait_file "$W/touched" 120 || { echo "memhog did not touch its pages" >&2; exit 1; }
	fi
	t0=$(now)
	if [[ $pct == full ]]; then
		"$CKPT" dump -R -t "$PID" -D "$W/d2" -v4 -o dump.log
	else
		"$CKPT" dump -R -t "$PID" -D "$W/d2" --prev-images-dir ../d1 -v4 -o dump.log
	fi || { echo "dump failed" >&2; show_log "$W/d2/dump.log"; exit 1; }
	t1=$(now)
	kill -9 "$PID"
	gone_wait "$PID"
	echo "$(frozen_ms "$W/d2/dump.log") $(elapsed "$t0" "$t1") $(stat -c %s "$W"/d2/pages-*.img | awk '{s+=$1} END {print s}')"
}

echo "| dump of $MIB MiB | frozen ms (median of $REPS) | dump wall s | pages written |"
echo "| --- | --- | --- | --- |"
for pct in full $PCTS; do
	fr=() wa=() by=()
	for ((r = 0; r < REPS; r++)); do
		read -r f w b < <(one "$pct")
		fr+=("$f") wa+=("$w") by+=("$b")
	done
	name=$([[ $pct == full ]] && echo "full" || echo "incremental, $pct % written")
	printf '| %s | %.1f | %.3f | %.0f |\n' "$name" "$(median "${fr[@]}")" "$(median "${wa[@]}")" \
		"$(median "${by[@]}")"
done
