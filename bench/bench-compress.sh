#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# bench-compress.sh — ratio, dump and restore speed of each page codec on
# memory that compresses like real memory (memhog mix, bench/mixfill.h),
# with the images on tmpfs and on disk.  Runs bench/bench.sh once per codec
# (interleaving them would be fairer on a noisy machine: use -n and look at
# the spread in the CSV) and prints one markdown table.
#
#   sudo bench/bench-compress.sh [-n REPS] [-s MIB] [-d DIRS] [-c CODECS]
#
# Defaults: 3 repetitions, 512 MiB, /dev/shm and /var/tmp, codecs
# "none lz4 lz4:fast zstd:1 zstd:3".  Extra arguments after -- go to
# bench.sh (e.g. -- --drop-caches).
set -u

SRCDIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPS=3
SIZE=512
DIRS="/dev/shm,/var/tmp"
CODECS="none lz4 lz4:fast zstd:1 zstd:3"
EXTRA=()

while [ $# -gt 0 ]; do
	case "$1" in
	-n) REPS=$2; shift ;;
	-s) SIZE=$2; shift ;;
	-d) DIRS=$2; shift ;;
	-c) CODECS=$2; shift ;;
	--) shift; EXTRA=("$@"); break ;;
	-h | --help) sed -n '3,14p' "$0"; exit 0 ;;
	*) echo "bench-compress: unknown argument $1 (see --help)" >&2; exit 1 ;;
	esac
	shift
done

OUT=$(mktemp -d "${TMPDIR:-/tmp}/ckpt-bench-compress.XXXXXX") || exit 1
trap 'rm -rf "$OUT"' EXIT

status=0
for c in $CODECS; do
	echo "bench-compress: codec $c" >&2
	if ! "$SRCDIR/bench/bench.sh" --mix -n "$REPS" -s "$SIZE" -d "$DIRS" \
		--ckpt-arg="--compress=$c" --csv "$OUT/${c//:/_}.csv" "${EXTRA[@]}" >"$OUT/${c//:/_}.md"; then
		echo "bench-compress: bench.sh failed for codec $c" >&2
		status=1
	fi
done

echo "ckpt page compression, $(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) CPUs; $(uname -r)"
echo
echo "- workload: memhog mix, $SIZE MiB (a third sparse structs, a third text, a third random)"
echo "- medians of $REPS run(s); MB/s = memory (10^6 bytes) / wall time of the whole ckpt command;"
echo "  ratio = memory / size of the images directory"
echo
echo "| codec | images on | ratio | dump s | dump MB/s | restore s | restore MB/s |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: |"
for c in $CODECS; do
	f="$OUT/${c//:/_}.csv"
	[ -s "$f" ] || { echo "| $c | (failed) | | | | | |"; continue; }
	python3 - "$c" "$f" <<'PY'
import csv, statistics, sys
codec, path = sys.argv[1], sys.argv[2]
rows = {}
for r in csv.DictReader(open(path)):
    rows.setdefault((r["dir"], r["fs"]), []).append(r)
for (d, fs), rs in rows.items():
    size = int(rs[0]["size_mib"]) * 1048576
    dmp = statistics.median(float(r["dump_s"]) for r in rs)
    rst = statistics.median(float(r["restore_s"]) for r in rs)
    img = statistics.median(int(r["image_bytes"]) for r in rs)
    print(f"| {codec} | {d} ({fs}) | {size / img:.2f} | {dmp:.3f} | {size / dmp / 1e6:.0f} "
          f"| {rst:.3f} | {size / rst / 1e6:.0f} |")
PY
done
exit $status
