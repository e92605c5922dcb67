#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# bench-tree.sh — wall time of `ckpt dump` and `ckpt restore -d` against the
# number of tasks: process trees of 50 and 500 processes and one process
# with 200 threads, each task with 64 KiB of touched memory, images on
# tmpfs.  See bench/README.md ("Trees and threads").
#
# Every run: start treehog (bench/treehog.c) with N tasks, `ckpt dump` its
# root (which kills the whole tree), wait until every task is gone, `ckpt
# restore -d` it with the same PIDs, have the root check every task (PID,
# parent, memory, thread count; SIGUSR1, outside the timed part), kill the
# tree, delete the images.  The table gives the median of the repetitions
# and the cost per task.
#
# Everything runs inside build/tests/nsrun, a fresh pid namespace whose init
# reaps every orphan, so the dumped PIDs are free again for the restore.
#
# The table goes to stdout, progress and errors to stderr.

set -u
shopt -s extglob

SELF=$(readlink -f "${BASH_SOURCE[0]}")
SRCDIR=$(dirname "$(dirname "$SELF")")

usage() {
	cat <<EOF
usage: $0 [options]

  -n, --reps N         repetitions per case (default 3); the table shows the
                       median
  -c, --cases LIST     cases, comma or space separated, each procs:N (a tree
                       of N processes) or threads:N (one process, N threads)
                       (default "procs:1,procs:50,procs:500,threads:200");
                       procs:1 is the baseline for the per-extra-task columns
  -d, --dir DIR        directory for the images (default /dev/shm)
  -b, --build DIR      meson build directory (default: $SRCDIR/build);
                       needs core/ckpt, bench/treehog and tests/nsrun in it
      --ckpt-arg ARG   pass ARG to every ckpt call before the command, e.g.
                       --ckpt-arg=--plugins=fs or --ckpt-arg=-v0 (repeatable)
      --timeout S      give up on a ckpt command after S seconds (default 600)
      --no-verify      do not have the restored tree check itself
      --csv FILE       also write every single run to FILE as CSV
      --keep-logs DIR  keep the ckpt logs of every run in DIR
  -h, --help           this text

Must run as root.  A case that does not fit in the available memory, the
free space of the images directory or the kernel's pid_max is skipped.
EOF
}

die() {
	echo "bench-tree: $*" >&2
	exit 1
}

note() {
	echo "bench-tree: $*" >&2
}

# ---- options (parsed the same way outside and inside the namespace) ------

REPS=3
CASES="procs:1,procs:50,procs:500,threads:200"
DIR=/dev/shm
BUILD="$SRCDIR/build"
CKPT_ARGS=()
TIMEOUT=600
VERIFY=1
CSV=
KEEP_LOGS=
INNER=0

parse_args() {
	while [ $# -gt 0 ]; do
		case "$1" in
		-n | --reps) [ $# -ge 2 ] || die "$1 needs a value"; REPS=$2; shift ;;
		--reps=*) REPS=${1#*=} ;;
		-c | --cases) [ $# -ge 2 ] || die "$1 needs a value"; CASES=$2; shift ;;
		--cases=*) CASES=${1#*=} ;;
		-d | --dir) [ $# -ge 2 ] || die "$1 needs a value"; DIR=$2; shift ;;
		--dir=*) DIR=${1#*=} ;;
		-b | --build) [ $# -ge 2 ] || die "$1 needs a value"; BUILD=$2; shift ;;
		--build=*) BUILD=${1#*=} ;;
		--ckpt-arg) [ $# -ge 2 ] || die "$1 needs a value"; CKPT_ARGS+=("$2"); shift ;;
		--ckpt-arg=*) CKPT_ARGS+=("${1#*=}") ;;
		--timeout) [ $# -ge 2 ] || die "$1 needs a value"; TIMEOUT=$2; shift ;;
		--timeout=*) TIMEOUT=${1#*=} ;;
		--no-verify) VERIFY=0 ;;
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
	[[ $TIMEOUT == +([0-9]) && $TIMEOUT -ge 1 ]] || die "bad timeout: $TIMEOUT"
	CASES=${CASES//,/ }
	local c base=
	for c in $CASES; do
		[[ $c == @(procs|threads):+([0-9]) && ${c#*:} -ge 1 && ${c#*:} -le 100000 ]] ||
			die "bad case: $c (procs:N or threads:N, 1 <= N <= 100000)"
	done
	[ -n "${CASES// /}" ] || die "no cases given"
	# the baseline first, so that the other rows can use it
	for c in $CASES; do
		[ "$c" = procs:1 ] && base=procs:1
	done
	if [ -n "$base" ]; then
		CASES="procs:1 $(for c in $CASES; do [ "$c" = procs:1 ] || printf '%s ' "$c"; done)"
	fi
}

ORIG_ARGS=("$@")
parse_args "$@"

BUILD=$(readlink -f "$BUILD") || die "no build directory"
CKPT="$BUILD/core/ckpt"
TREEHOG="$BUILD/bench/treehog"
NSRUN="$BUILD/tests/nsrun"

# ---- helpers ---------------------------------------------------------------

# now, elapsed, median, wait_file, mem_available_mib, disk_free_mib,
# fs_type, show_log
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# ms per task: SECONDS / TASKS
per_task() {
	awk -v s="$1" -v n="$2" 'BEGIN { printf "%.2f", s * 1000 / n }'
}

# ms per task beyond the first: (SECONDS - BASE) / (TASKS - 1)
per_extra() {
	if [ -z "$3" ] || [ "$2" -le 1 ]; then
		echo "-"
		return
	fi
	awk -v s="$1" -v n="$2" -v b="$3" 'BEGIN { printf "%.2f", (s - b) * 1000 / (n - 1) }'
}

# group_pids PGID: the PIDs of the process group, one a line
group_pids() {
	pgrep -g "$1"
}

# wait_group_gone PGID SECONDS: until no process of the group is left (not
# even a zombie)
wait_group_gone() {
	local end=$((SECONDS + $2))
	while group_pids "$1" >/dev/null; do
		[ $SECONDS -lt $end ] || return 1
		sleep 0.01
	done
}

# timed_out RC: ", timed out" when RC is timeout(1)'s
timed_out() {
	case "$1" in 124 | 137) echo ", timed out after $TIMEOUT s" ;; esac
}

# ---- outside the namespace ---------------------------------------------------

if [ "$INNER" = 0 ]; then
	[ "$(id -u)" = 0 ] || die "must run as root (ptrace, pid namespaces)"
	for bin in "$CKPT" "$TREEHOG" "$NSRUN"; do
		[ -x "$bin" ] || die "$bin is missing; build first: meson compile -C $BUILD"
	done
	if [ ! -d "$DIR" ] || [ ! -w "$DIR" ]; then
		die "images directory $DIR does not exist or is not writable"
	fi

	WORKDIRS=()
	# shellcheck disable=SC2317 # called from the trap
	cleanup_outer() {
		local w
		for w in "${WORKDIRS[@]}"; do
			rm -rf -- "$w"
		done
	}
	trap cleanup_outer EXIT

	w=$(mktemp -d "$DIR/ckpt-bench-tree.XXXXXX") || die "cannot create a directory in $DIR"
	WORKDIRS+=("$w")
	export CKPT_BENCH_IMGWORK="$w"
	w=$(mktemp -d "${TMPDIR:-/tmp}/ckpt-bench-tree-run.XXXXXX") || die "cannot create a scratch directory"
	WORKDIRS+=("$w")
	export CKPT_BENCH_SCRATCH="$w"

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

SCRATCH=${CKPT_BENCH_SCRATCH:?run bench-tree.sh without --inner}
WORK=${CKPT_BENCH_IMGWORK:?run bench-tree.sh without --inner}

# ckpt reads /proc by PID: it must be the proc of this namespace.
read -r proc_pid _ </proc/self/stat
[ "$proc_pid" = "$$" ] || die "/proc is not the proc of this pid namespace (nsrun should mount it)"

LOGS="$SCRATCH/logs"
mkdir -p "$LOGS" || die "cannot create $LOGS"
if [ -n "$KEEP_LOGS" ]; then
	mkdir -p "$KEEP_LOGS" || die "cannot create $KEEP_LOGS"
	LOGS=$(readlink -f "$KEEP_LOGS")
fi

ROOT=     # root PID (and process group) of the tree that may be running
TREE=()   # every PID of that tree, as it was before the dump
IMG=      # images directory of the run in progress

# kill_tree: SIGKILL the tree (its group and every PID it had) and wait
# until all of it is gone; nsrun's init reaps it.
kill_tree() {
	[ -n "$ROOT" ] || return 0
	kill -KILL -- "-$ROOT" 2>/dev/null
	[ ${#TREE[@]} -gt 0 ] && kill -KILL "${TREE[@]}" 2>/dev/null
	wait_group_gone "$ROOT" 60 || note "process group $ROOT did not go away"
	ROOT=
	TREE=()
}

# shellcheck disable=SC2317 # called from the trap
cleanup_inner() {
	kill_tree
	[ -n "$IMG" ] && rm -rf -- "$IMG"
}
trap cleanup_inner EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ -n "$CSV" ]; then
	echo "kind,tasks,rep,dump_s,restore_s,image_bytes" >"$CSV" || die "cannot write $CSV"
fi

# count_tasks KIND ROOT: processes in the group, or threads of ROOT
count_tasks() {
	if [ "$1" = procs ]; then
		group_pids "$2" | wc -l
	else
		find "/proc/$2/task" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l
	fi
}

# one_run KIND N REP -> sets RUN_DUMP, RUN_RESTORE, RUN_IMAGE; 0 or 1
one_run() {
	local kind=$1 n=$2 rep=$3 tag pid rpid t0 t1 t2 t3 rc v have
	local ready="$SCRATCH/ready" verify="$SCRATCH/verify" pidfile="$SCRATCH/restored.pid"

	tag="$kind$n-$rep"
	IMG="$WORK/img"
	rm -rf -- "$IMG" "$ready" "$verify" "$pidfile"
	mkdir -p "$IMG" || return 1

	# setsid -f: treehog leads its own session and process group (its
	# processes stay in that group) and is not a child of this shell:
	# nsrun's init reaps it, as it will reap the restored one.
	CKPT_TEST_READY="$ready" CKPT_TEST_VERIFY="$verify" \
		setsid -f "$TREEHOG" "$kind" "$n" </dev/null >"$LOGS/treehog-$tag.log" 2>&1
	if ! wait_file "$ready" 300; then
		note "treehog $kind $n did not get ready"
		show_log "$LOGS/treehog-$tag.log"
		# it is the only session leader named treehog in this namespace
		ROOT=$(pgrep -x -P 1 treehog | head -n 1)
		kill_tree
		return 1
	fi
	pid=$(<"$ready")
	ROOT=$pid
	mapfile -t TREE < <(group_pids "$pid")
	have=$(count_tasks "$kind" "$pid")
	if [ "$have" != "$n" ]; then
		note "treehog $kind $n runs $have tasks, not $n"
		kill_tree
		return 1
	fi

	t0=$(now)
	timeout -k 10 "$TIMEOUT" "$CKPT" "${CKPT_ARGS[@]}" -o "$LOGS/dump-$tag.log" \
		dump -t "$pid" -D "$IMG" </dev/null
	rc=$?
	t1=$(now)
	if [ $rc -ne 0 ]; then
		note "ckpt dump failed (exit $rc$(timed_out "$rc")) for $kind $n"
		show_log "$LOGS/dump-$tag.log"
		kill_tree
		return 1
	fi
	# The dump killed the tree; wait until all of its PIDs are free again.
	if ! wait_group_gone "$pid" 60; then
		note "processes of the dumped tree $pid are still there after the dump"
		kill_tree
		return 1
	fi

	t2=$(now)
	timeout -k 10 "$TIMEOUT" "$CKPT" "${CKPT_ARGS[@]}" -o "$LOGS/restore-$tag.log" \
		restore -D "$IMG" -d --pidfile "$pidfile" </dev/null
	rc=$?
	t3=$(now)
	rpid=
	[ -s "$pidfile" ] && rpid=$(<"$pidfile")
	if [ $rc -ne 0 ]; then
		note "ckpt restore failed (exit $rc$(timed_out "$rc")) for $kind $n"
		show_log "$LOGS/restore-$tag.log"
		kill_tree
		[ -n "$rpid" ] && [ "$rpid" != "$pid" ] && kill -KILL "$rpid" 2>/dev/null
		return 1
	fi
	if [ -n "$rpid" ] && [ "$rpid" != "$pid" ]; then
		note "restored PID $rpid is not the dumped PID $pid"
		kill -KILL -- "-$rpid" "$rpid" 2>/dev/null
		kill_tree
		return 1
	fi
	if [ ! -e "/proc/$pid" ]; then
		note "restored root $pid is not running"
		show_log "$LOGS/treehog-$tag.log"
		kill_tree
		return 1
	fi
	have=$(count_tasks "$kind" "$pid")
	if [ "$have" != "$n" ]; then
		note "restored $kind tree has $have tasks, not $n"
		kill_tree
		return 1
	fi

	if [ "$VERIFY" = 1 ]; then
		kill -USR1 "$pid"
		if ! wait_file "$verify" 300; then
			note "restored treehog ($kind $n) did not answer the check"
			show_log "$LOGS/treehog-$tag.log"
			kill_tree
			return 1
		fi
		v=$(<"$verify")
		if [ "${v%% *}" != ok ]; then
			note "restored tree is wrong: treehog says '$v' (what, task index)"
			kill_tree
			return 1
		fi
	fi
	kill_tree

	RUN_IMAGE=$(du -sb "$IMG" | cut -f1)
	rm -rf -- "$IMG"
	IMG=
	RUN_DUMP=$(elapsed "$t0" "$t1")
	RUN_RESTORE=$(elapsed "$t2" "$t3")
	if [ -n "$CSV" ]; then
		echo "$kind,$n,$rep,$RUN_DUMP,$RUN_RESTORE,$RUN_IMAGE" >>"$CSV"
	fi
	return 0
}

# ---- header --------------------------------------------------------------------

cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
mem_total=$(awk '/^MemTotal:/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)
version=$("$CKPT" --version 2>/dev/null | head -n 1)
pid_max=$(cat /proc/sys/kernel/pid_max 2>/dev/null || echo 32768)
echo "ckpt tree benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
echo "- ckpt: ${version:-unknown} ($CKPT${CKPT_ARGS[*]:+ ${CKPT_ARGS[*]}})"
echo "- kernel: $(uname -r) $(uname -m); CPU: ${cpu:-unknown}, $(nproc) cores; memory: $mem_total GiB"
echo "- load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- images in $DIR ($(fs_type "$DIR"))"
echo "- workload: treehog, every task with 64 KiB of private anonymous memory, every page written;"
echo "  procs N: a tree of N processes (children of the root, every 10th child with a grandchild);"
echo "  threads N: one process with N threads (half in pause(), half in FUTEX_WAIT)"
echo "- medians of $REPS run(s); ms/task = wall time / N; ms/extra task = (wall time - procs 1 time) / (N - 1)"
[ "$VERIFY" = 1 ] && echo "- every restore was checked by the restored root: PIDs, parents, thread count, memory of every task (not timed)"
echo
echo "| tasks | dump s | dump ms/task | dump ms/extra task | restore -d s | restore ms/task | restore ms/extra task | image MiB |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"

status=0
BASE_DUMP=
BASE_RESTORE=
for c in $CASES; do
	kind=${c%%:*}
	n=${c#*:}
	if [ "$kind" = procs ]; then
		label="$n process$([ "$n" = 1 ] || echo es)"
		need=$((256 + n / 2))      # ~0.5 MiB per process, images included
	else
		label="1 process, $n threads"
		need=$((256 + n / 4))
	fi
	avail=$(mem_available_mib)
	if [ "$need" -gt "$avail" ]; then
		note "skipping $c: needs about $need MiB of memory, $avail MiB available"
		echo "| $label | skipped: needs ~$need MiB RAM, $avail MiB available | | | | | | |"
		continue
	fi
	free=$(disk_free_mib "$DIR")
	if [ "$need" -gt "$free" ]; then
		note "skipping $c: $free MiB free in $DIR"
		echo "| $label | skipped: $free MiB free in $DIR | | | | | | |"
		continue
	fi
	if [ "$kind" = procs ] && [ "$((n + 100))" -gt "$pid_max" ]; then
		note "skipping $c: pid_max is $pid_max"
		echo "| $label | skipped: pid_max is $pid_max | | | | | | |"
		continue
	fi

	dumps=()
	restores=()
	images=()
	failed=0
	for rep in $(seq 1 "$REPS"); do
		note "$label: run $rep of $REPS"
		if ! one_run "$kind" "$n" "$rep"; then
			failed=1
			break
		fi
		note "  dump $RUN_DUMP s, restore $RUN_RESTORE s"
		dumps+=("$RUN_DUMP")
		restores+=("$RUN_RESTORE")
		images+=("$RUN_IMAGE")
	done
	if [ "$failed" = 1 ]; then
		status=1
		echo "| $label | FAILED (see stderr) | | | | | | |"
		continue
	fi
	md=$(median "${dumps[@]}")
	mr=$(median "${restores[@]}")
	mi=$(median "${images[@]}")
	if [ "$c" = procs:1 ]; then
		BASE_DUMP=$md
		BASE_RESTORE=$mr
	fi
	printf '| %s | %.3f | %s | %s | %.3f | %s | %s | %.1f |\n' \
		"$label" "$md" "$(per_task "$md" "$n")" "$(per_extra "$md" "$n" "$BASE_DUMP")" \
		"$mr" "$(per_task "$mr" "$n")" "$(per_extra "$mr" "$n" "$BASE_RESTORE")" \
		"$(awk -v b="$mi" 'BEGIN { print b / 1048576 }')"
done

echo
echo "- load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"

if [ "$status" != 0 ] && [ -z "$KEEP_LOGS" ]; then
	note "rerun with --keep-logs DIR to keep the ckpt logs"
fi
exit "$status"
