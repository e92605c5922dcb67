#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# bench.sh — wall time and throughput of `ckpt dump` and `ckpt restore -d`
# against the amount of touched anonymous memory, with the images on tmpfs
# and on disk.  See bench/README.md.
#
# Every run: start memhog (N MiB, every page written), `ckpt dump` it (which
# kills it), wait until it is gone, `ckpt restore -d` it with the same PID,
# have it check all of its memory (SIGUSR1; outside the timed part), kill
# it, delete the images.  The table gives the median of the repetitions.
#
# Everything runs inside build/tests/nsrun, a fresh pid namespace whose init
# reaps every orphan, so the dumped PID is free again for the restore.
#
# The table goes to stdout, progress and errors to stderr.

set -u
shopt -s extglob

SELF=$(readlink -f "${BASH_SOURCE[0]}")
SRCDIR=$(dirname "$(dirname "$SELF")")

usage() {
	cat <<EOF
usage: $0 [options]

  -n, --reps N         repetitions per size and location (default 3); the
                       table shows the median
  -s, --sizes LIST     memory sizes in MiB, comma or space separated
                       (default "64,512,2048")
  -d, --dirs LIST      directories for the images, comma or space separated
                       (default "/dev/shm,/var/tmp")
  -b, --build DIR      meson build directory (default: $SRCDIR/build);
                       needs core/ckpt, bench/memhog and tests/nsrun in it
      --ckpt-arg ARG   pass ARG to every ckpt call before the command, e.g.
                       --ckpt-arg=--plugins=fs or --ckpt-arg=-v0 (repeatable)
      --criu PATH      also run CRIU (the binary at PATH) on the same workload,
                       interleaved with ckpt run by run, and print both with
                       the ratio of their times (nothing here builds CRIU)
      --mix            fill memhog's memory with content that compresses like
                       real memory (bench/mixfill.h) instead of one byte per
                       page; for bench/bench-compress.sh
      --no-verify      do not have the restored process check its memory
      --drop-caches    drop the page cache before each restore from a
                       directory that is not on tmpfs (cold-cache restore)
      --csv FILE       also write every single run to FILE as CSV
      --keep-logs DIR  keep the ckpt logs of every run in DIR
  -h, --help           this text

Must run as root.  Sizes that do not fit in the available memory (or in
the free space of an images directory) are skipped.
EOF
}

die() {
	echo "bench: $*" >&2
	exit 1
}

note() {
	echo "bench: $*" >&2
}

# ---- options (parsed the same way outside and inside the namespace) ------

REPS=3
SIZES="64,512,2048"
DIRS="/dev/shm,/var/tmp"
BUILD="$SRCDIR/build"
CKPT_ARGS=()
CRIU=
VERIFY=1
MIX=
DROP_CACHES=0
CSV=
KEEP_LOGS=
INNER=0

parse_args() {
	while [ $# -gt 0 ]; do
		case "$1" in
		-n | --reps) [ $# -ge 2 ] || die "$1 needs a value"; REPS=$2; shift ;;
		--reps=*) REPS=${1#*=} ;;
		-s | --sizes) [ $# -ge 2 ] || die "$1 needs a value"; SIZES=$2; shift ;;
		--sizes=*) SIZES=${1#*=} ;;
		-d | --dirs) [ $# -ge 2 ] || die "$1 needs a value"; DIRS=$2; shift ;;
		--dirs=*) DIRS=${1#*=} ;;
		-b | --build) [ $# -ge 2 ] || die "$1 needs a value"; BUILD=$2; shift ;;
		--build=*) BUILD=${1#*=} ;;
		--ckpt-arg) [ $# -ge 2 ] || die "$1 needs a value"; CKPT_ARGS+=("$2"); shift ;;
		--ckpt-arg=*) CKPT_ARGS+=("${1#*=}") ;;
		--criu) [ $# -ge 2 ] || die "$1 needs a value"; CRIU=$2; shift ;;
		--criu=*) CRIU=${1#*=} ;;
		--no-verify) VERIFY=0 ;;
		--mix) MIX=mix ;;
		--drop-caches) DROP_CACHES=1 ;;
		--csv) [ $# -ge 2 ] || die "$1 needs a value"; CSV=$2; shift ;;
		--csv=*) CSV=${1#*=} ;;
		--keep-logs) [ $# -ge 2 ] || die "$1 needs a value"; KEEP_LOGS=$2; shift ;;
		--keep-logs=*) KEEP_LOGS=${1#*=} ;;
		--inner) INNER=1 ;;
		-h | --help) usage; exit 0 ;;
		*) usage >&2; die "unknown argument: $1" ;;
		esac
		shift
	done
	[[ $REPS == +([0-9]) && $REPS -ge 1 ]] || die "bad repetition count: $REPS"
	SIZES=${SIZES//,/ }
	DIRS=${DIRS//,/ }
	local s
	for s in $SIZES; do
		[[ $s == +([0-9]) && $s -ge 1 ]] || die "bad size (MiB): $s"
	done
	[ -n "${SIZES// /}" ] || die "no sizes given"
	[ -n "${DIRS// /}" ] || die "no directories given"
}

ORIG_ARGS=("$@")
parse_args "$@"

BUILD=$(readlink -f "$BUILD") || die "no build directory"
CKPT="$BUILD/core/ckpt"
MEMHOG="$BUILD/bench/memhog"
NSRUN="$BUILD/tests/nsrun"

# ---- helpers ---------------------------------------------------------------

# now, elapsed, median, wait_file, mem_available_mib, disk_free_mib,
# fs_type, show_log
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# MB/s (10^6 bytes per second) for MiB moved in seconds
mbps() {
	awk -v mib="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.0f", mib * 1048576 / 1e6 / s; else print "-" }'
}

# wait_gone PID SECONDS: until PID has exited and been reaped
wait_gone() {
	local end=$((SECONDS + $2))
	while [ -e "/proc/$1" ]; do
		[ $SECONDS -lt $end ] || return 1
		sleep 0.01
	done
}

# ---- outside the namespace ---------------------------------------------------

if [ "$INNER" = 0 ]; then
	[ "$(id -u)" = 0 ] || die "must run as root (ptrace, pid namespaces)"
	if [ -n "$CRIU" ]; then
		CRIU=$(readlink -f "$CRIU") && [ -x "$CRIU" ] || die "--criu: no executable at the given path"
		ORIG_ARGS+=(--criu "$CRIU")
	fi
	for bin in "$CKPT" "$MEMHOG" "$NSRUN"; do
		[ -x "$bin" ] || die "$bin is missing; build first: meson compile -C $BUILD"
	done
	for d in $DIRS; do
		if [ ! -d "$d" ] || [ ! -w "$d" ]; then
			die "images directory $d does not exist or is not writable"
		fi
	done

	WORKDIRS=()
	# shellcheck disable=SC2317 # called from the trap
	cleanup_outer() {
		local w
		for w in "${WORKDIRS[@]}"; do
			rm -rf -- "$w"
		done
	}
	trap cleanup_outer EXIT

	# One scratch directory per images location; the namespace shares the
	# file systems, so it sees them under the same names.
	dirmap=()
	for d in $DIRS; do
		w=$(mktemp -d "$d/ckpt-bench.XXXXXX") || die "cannot create a directory in $d"
		WORKDIRS+=("$w")
		dirmap+=("$d=$w")
	done
	w=$(mktemp -d "${TMPDIR:-/tmp}/ckpt-bench-run.XXXXXX") || die "cannot create a scratch directory"
	WORKDIRS+=("$w")

	export CKPT_BENCH_SCRATCH="$w"
	export CKPT_BENCH_DIRMAP="${dirmap[*]}"

	# In the background, so that a signal to this shell is handled at once:
	# nsrun passes SIGTERM on to the inner script, which kills what it
	# started; when it is gone the whole namespace goes with it.
	NSRUN_PID=
	# shellcheck disable=SC2317 # called from the trap
	stop_inner() {
		trap '' INT TERM
		if [ -n "$NSRUN_PID" ]; then
			kill -TERM "$NSRUN_PID" 2>/dev/null
			wait "$NSRUN_PID"
		fi
		exit "$1"
	}
	trap 'stop_inner 130' INT
	trap 'stop_inner 143' TERM
	"$NSRUN" /bin/bash "$SELF" --inner "${ORIG_ARGS[@]}" &
	NSRUN_PID=$!
	wait "$NSRUN_PID"
	rc=$?
	NSRUN_PID=
	exit "$rc"
fi

# ---- inside the namespace ------------------------------------------------------

SCRATCH=${CKPT_BENCH_SCRATCH:?run bench.sh without --inner}
[ -n "${CKPT_BENCH_DIRMAP:-}" ] || die "run bench.sh without --inner"

# ckpt reads /proc by PID: it must be the proc of this namespace.
read -r proc_pid _ </proc/self/stat
[ "$proc_pid" = "$$" ] || die "/proc is not the proc of this pid namespace (nsrun should mount it)"

workdir_of() {
	local m
	for m in $CKPT_BENCH_DIRMAP; do
		if [ "${m%%=*}" = "$1" ]; then
			echo "${m#*=}"
			return 0
		fi
	done
	return 1
}

LOGS="$SCRATCH/logs"
mkdir -p "$LOGS" || die "cannot create $LOGS"
if [ -n "$KEEP_LOGS" ]; then
	mkdir -p "$KEEP_LOGS" || die "cannot create $KEEP_LOGS"
	LOGS=$(readlink -f "$KEEP_LOGS")
fi

LIVE=()   # PIDs this script may have left running
IMG=      # images directory of the run in progress

# shellcheck disable=SC2317 # called from the trap
cleanup_inner() {
	local p
	for p in "${LIVE[@]}"; do
		[ -n "$p" ] && kill -KILL "$p" 2>/dev/null
	done
	for p in "${LIVE[@]}"; do
		[ -n "$p" ] || continue
		wait "$p" 2>/dev/null
		wait_gone "$p" 10
	done
	[ -n "$IMG" ] && rm -rf -- "$IMG"
}
trap cleanup_inner EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

forget() {
	local i
	for i in "${!LIVE[@]}"; do
		[ "${LIVE[$i]}" = "$1" ] && unset 'LIVE[i]'
	done
}

# kill_and_reap PID: SIGKILL and wait until it is gone.  A child of this
# shell is reaped here; anything else (a restored process, an orphan) by
# nsrun's init.
kill_and_reap() {
	kill -KILL "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	wait_gone "$1" 30 || note "process $1 did not go away"
	forget "$1"
}

if [ -n "$CSV" ]; then
	echo "tool,size_mib,dir,fs,rep,dump_s,restore_s,image_bytes" >"$CSV" || die "cannot write $CSV"
fi

# tool_dump TOOL PID IMG LOG / tool_restore TOOL IMG PIDFILE LOG: the same
# job done by ckpt or by CRIU (CRIU opens -o and --pidfile relative to -D
# unless they are absolute, which they are here).
tool_dump() {
	if [ "$1" = criu ]; then
		"$CRIU" dump -t "$2" -D "$3" -o "$4" </dev/null
	else
		"$CKPT" "${CKPT_ARGS[@]}" -o "$4" dump -t "$2" -D "$3" </dev/null
	fi
}
tool_restore() {
	if [ "$1" = criu ]; then
		"$CRIU" restore -D "$2" -d --pidfile "$3" -o "$4" </dev/null
	else
		"$CKPT" "${CKPT_ARGS[@]}" -o "$4" restore -D "$2" -d --pidfile "$3" </dev/null
	fi
}

# one_run TOOL SIZE DIR REP -> sets RUN_DUMP, RUN_RESTORE, RUN_IMAGE; 0 or 1
one_run() {
	local tool=$1 size=$2 dir=$3 rep=$4 work tag pid rpid t0 t1 t2 t3 rc v
	local ready="$SCRATCH/ready" verify="$SCRATCH/verify" pidfile="$SCRATCH/restored.pid"

	work=$(workdir_of "$dir") || { note "no work directory for $dir"; return 1; }
	tag="$tool-${size}M-$(basename "$dir")-$rep"
	IMG="$work/img"
	rm -rf -- "$IMG" "$ready" "$verify" "$pidfile"
	mkdir -p "$IMG" || return 1

	# setsid -f: memhog leads its own session (so it is not a shell job)
	# and is not a child of this shell: nsrun's init reaps it, as it will
	# reap the restored one, and the shell has no job to report on.
	CKPT_TEST_READY="$ready" CKPT_TEST_VERIFY="$verify" \
		setsid -f "$MEMHOG" "$size" $MIX </dev/null >"$LOGS/memhog-$tag.log" 2>&1
	if ! wait_file "$ready" 300; then
		note "memhog $size MiB did not get ready"
		show_log "$LOGS/memhog-$tag.log"
		pkill -KILL -x -P 1 memhog 2>/dev/null
		return 1
	fi
	pid=$(<"$ready")
	LIVE+=("$pid")

	t0=$(now)
	tool_dump "$tool" "$pid" "$IMG" "$LOGS/dump-$tag.log"
	rc=$?
	t1=$(now)
	if [ $rc -ne 0 ]; then
		note "$tool dump failed (exit $rc) for $size MiB in $dir"
		show_log "$LOGS/dump-$tag.log"
		kill_and_reap "$pid"
		return 1
	fi
	# The dump killed memhog; wait until the PID is free again.
	if ! wait_gone "$pid" 30; then
		note "dumped process $pid is still there after the dump"
		kill_and_reap "$pid"
		return 1
	fi
	forget "$pid"

	# Writeback of a disk dump must not land in the restore's time.
	sync
	if [ "$DROP_CACHES" = 1 ] && [ "$(fs_type "$dir")" != tmpfs ]; then
		echo 3 >/proc/sys/vm/drop_caches || note "cannot drop caches"
	fi

	t2=$(now)
	tool_restore "$tool" "$IMG" "$pidfile" "$LOGS/restore-$tag.log"
	rc=$?
	t3=$(now)
	rpid=
	[ -s "$pidfile" ] && rpid=$(<"$pidfile")
	[ -n "$rpid" ] || rpid=$pid
	LIVE+=("$rpid")
	if [ $rc -ne 0 ]; then
		note "$tool restore failed (exit $rc) for $size MiB in $dir"
		show_log "$LOGS/restore-$tag.log"
		kill_and_reap "$rpid"
		return 1
	fi
	if [ "$rpid" != "$pid" ]; then
		note "restored PID $rpid is not the dumped PID $pid"
		kill_and_reap "$rpid"
		return 1
	fi
	if [ ! -e "/proc/$rpid" ]; then
		note "restored process $rpid is not running"
		show_log "$LOGS/memhog-$tag.log"
		forget "$rpid"
		return 1
	fi

	if [ "$VERIFY" = 1 ]; then
		kill -USR1 "$rpid"
		if ! wait_file "$verify" 300; then
			note "restored memhog ($size MiB) did not answer the memory check"
			show_log "$LOGS/memhog-$tag.log"
			kill_and_reap "$rpid"
			return 1
		fi
		v=$(<"$verify")
		if [ "${v%% *}" != ok ]; then
			note "restored memory is wrong: memhog says '$v' (first bad page)"
			kill_and_reap "$rpid"
			return 1
		fi
	fi
	kill_and_reap "$rpid"

	RUN_IMAGE=$(du -sb "$IMG" | cut -f1)
	rm -rf -- "$IMG"
	# the file system frees (and, mounted with discard, trims) the blocks of
	# the deleted images at its next journal commit: let that happen now,
	# not in the middle of the next tool's dump
	sync
	IMG=
	RUN_DUMP=$(elapsed "$t0" "$t1")
	RUN_RESTORE=$(elapsed "$t2" "$t3")
	if [ -n "$CSV" ]; then
		echo "$tool,$size,$dir,$(fs_type "$dir"),$rep,$RUN_DUMP,$RUN_RESTORE,$RUN_IMAGE" >>"$CSV"
	fi
	return 0
}

# ---- header --------------------------------------------------------------------

cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
mem_total=$(awk '/^MemTotal:/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)
version=$("$CKPT" --version 2>/dev/null | head -n 1)
echo "ckpt benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
echo "- ckpt: ${version:-unknown} ($CKPT${CKPT_ARGS[*]:+ ${CKPT_ARGS[*]}})"
TOOLS=ckpt
if [ -n "$CRIU" ]; then
	TOOLS="ckpt criu"
	echo "- CRIU: $("$CRIU" --version 2>/dev/null | awk '/^Version/ { print $2 }') ($CRIU), run after ckpt in every repetition; \"x\" = CRIU's time / ckpt's time"
fi
echo "- kernel: $(uname -r) $(uname -m); CPU: ${cpu:-unknown}, $(nproc) cores; memory: $mem_total GiB"
echo "- transparent huge pages: $(sed 's/.*\[\(.*\)\].*/\1/' /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null || echo unknown)"
if [ -n "$MIX" ]; then
	echo "- workload: memhog mix, N MiB of private anonymous memory, every page written: a third sparse structs, a third text, a third random (bench/mixfill.h)"
else
	echo "- workload: memhog, N MiB of private anonymous memory, every page written"
fi
echo "- medians of $REPS run(s); MB/s = touched memory (10^6 bytes) / wall time of the command"
[ "$VERIFY" = 1 ] && echo "- every restore was checked page by page by the restored process (not timed)"
[ "$DROP_CACHES" = 1 ] && echo "- page cache dropped before each restore from disk"
echo
echo "| memory | images on | tool | dump s | dump MB/s | restore -d s | restore MB/s | image MiB |"
echo "| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: |"

status=0
for size in $SIZES; do
	for dir in $DIRS; do
		fst=$(fs_type "$dir")
		where="$dir ($fst)"
		avail=$(mem_available_mib)
		headroom=$((256 + size / 8))
		if [ "$fst" = tmpfs ]; then
			need=$((2 * size + headroom)) # memhog or restored task + images
		else
			need=$((size + headroom))
		fi
		if [ "$need" -gt "$avail" ]; then
			note "skipping $size MiB on $dir: needs about $need MiB of memory, $avail MiB available"
			echo "| $size MiB | $where | skipped: needs ~$need MiB RAM, $avail MiB available | | | | | |"
			continue
		fi
		free=$(disk_free_mib "$dir")
		if [ "$((size + 64))" -gt "$free" ]; then
			note "skipping $size MiB on $dir: $free MiB free there"
			echo "| $size MiB | $where | skipped: $free MiB free in $dir | | | | | |"
			continue
		fi

		declare -A dumps=() restores=() images=()
		failed=0
		for rep in $(seq 1 "$REPS"); do
			for tool in $TOOLS; do
				note "$tool: $size MiB, images in $dir: run $rep of $REPS"
				if ! one_run "$tool" "$size" "$dir" "$rep"; then
					failed=1
					break 2
				fi
				note "  dump $RUN_DUMP s, restore $RUN_RESTORE s"
				dumps[$tool]+=" $RUN_DUMP"
				restores[$tool]+=" $RUN_RESTORE"
				images[$tool]+=" $RUN_IMAGE"
			done
		done
		if [ "$failed" = 1 ]; then
			status=1
			echo "| $size MiB | $where | $tool | FAILED (see stderr) | | | | |"
			unset dumps restores images
			continue
		fi
		for tool in $TOOLS; do
			# shellcheck disable=SC2086 # the lists are words on purpose
			md=$(median ${dumps[$tool]})
			# shellcheck disable=SC2086
			mr=$(median ${restores[$tool]})
			# shellcheck disable=SC2086
			mi=$(median ${images[$tool]})
			printf '| %s MiB | %s | %s | %.3f | %s | %.3f | %s | %.1f |\n' \
				"$size" "$where" "$tool" "$md" "$(mbps "$size" "$md")" \
				"$mr" "$(mbps "$size" "$mr")" \
				"$(awk -v b="$mi" 'BEGIN { print b / 1048576 }')"
			eval "med_d_$tool=$md med_r_$tool=$mr"
		done
		if [ -n "$CRIU" ]; then
			# shellcheck disable=SC2154 # set by the eval above
			printf '| %s MiB | %s | **x** | %s | | %s | | |\n' "$size" "$where" \
				"$(awk -v a="$med_d_criu" -v b="$med_d_ckpt" 'BEGIN { printf "%.2fx", a / b }')" \
				"$(awk -v a="$med_r_criu" -v b="$med_r_ckpt" 'BEGIN { printf "%.2fx", a / b }')"
		fi
		unset dumps restores images
	done
done

if [ "$status" != 0 ] && [ -z "$KEEP_LOGS" ]; then
	note "rerun with --keep-logs DIR to keep the ckpt logs"
fi
exit "$status"
