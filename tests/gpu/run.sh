#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# tests/gpu/run.sh — the cuda plugin on a real NVIDIA GPU with the real
# driver (tests/scenarios/cuda.sh covers the sequencing with a fake one).
#
#   bash tests/gpu/run.sh [--only REGEX] [--keep]
#   bash tests/gpu/run.sh --prepare     on the build machine, before carrying
#                                       build/ to a GPU machine (see below)
#
# Each test runs inside build/tests/nsrun (a fresh pid + mount namespace):
# start tests/gpu/cuda_counter, `ckpt dump` it (real libcuda), check that it
# is gone, `ckpt restore -d`, send SIGUSR1 and wait for its PASS (device
# memory pattern intact, counters advanced, kernels still launch).  dump -R
# is tested too.  Prints one line per test and "N passed, M failed"; exit 0
# when all passed, 1 otherwise.  Without an NVIDIA GPU/driver it prints
# "SKIP: no NVIDIA GPU/driver" and exits 0.
#
# Needs root and, from the build dir (BUILD, default build/):
#   core/ckpt, plugins/ (every plugin), tests/nsrun,
#   tests/gpu/cuda_counter     (built by meson when nvcc is found; else this
#                               script builds it when nvcc is here)
#   tests/gpu/lib/             (optional: the shared libraries ckpt needs
#                               besides glibc, copied by --prepare, used only
#                               when the loader cannot find them here)
#
# Environment:
#   BUILD=dir              the build dir (default ROOT/build)
#   CKPT_GPU_TMP=dir       where the images go (default /tmp)
#   CKPT_GPU_BIG_MIB=N     size of the big test (default 2048; 0 skips it)
#   CKPT_GPU_KEEP=1        keep the work dir (same as --keep)
#   OUT=dir                when set (device runner), the logs are copied to
#                          OUT/ckpt-gpu-logs/ (never the images)
#   CKPT_GPU_SELFTEST=1    no GPU needed: runs the same steps with
#                          tests/cuda/cuda_app and the fake libcuda, to test
#                          this script itself

set -u
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SELF=$ROOT/tests/gpu/run.sh
BUILD=${BUILD:-$ROOT/build}
BUILD=$(cd "$BUILD" 2>/dev/null && pwd || echo "$BUILD")

log() { printf '[%s] %s\n' "$(date +%T.%N | cut -c1-12)" "$*"; }

###########################################################################
# Inner side: one test, inside nsrun.
###########################################################################

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

alive() {
	local st
	{ read -r st <"/proc/$1/stat"; } 2>/dev/null || return 1
	st=${st##*) }
	[[ ${st%% *} != [ZXx] ]]
}
pstate() {
	local st
	{ read -r st <"/proc/$1/stat"; } 2>/dev/null || { echo gone; return; }
	st=${st##*) }
	echo "${st%% *}"
}
tracer() { awk '/^TracerPid:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }
wait_for() { # SECONDS CMD...
	local n=$(($1 * 10))
	shift
	while ! "$@"; do
		((n-- > 0)) || return 1
		sleep 0.1
	done
}
gone() { ! alive "$1"; }
has_ready() { [[ -s $D/ready || -s $D/result ]]; }
has_result() { [[ -s $D/result ]]; }

# ckpt TAG ARGS...: sets RC; output in $D/TAG.stdout/.stderr
run_ckpt() {
	local tag=$1 t0
	shift
	log "ckpt $*"
	t0=$(now)
	timeout -k 10 "$CK_TIMEOUT" "$CKPT" "$@" --config "$CONF" >"$D/$tag.stdout" 2>"$D/$tag.stderr"
	RC=$?
	log "  -> exit $RC in $(secs "$t0" "$(now)") s"
	sed 's/^/  stderr: /' "$D/$tag.stderr"
}

diag_process() {
	local pid=$1
	alive "$pid" || { echo "(pid $pid is gone)"; return; }
	echo "---- pid $pid: state $(pstate "$pid"), tracer $(tracer "$pid")"
	echo "---- its nvidia/device mappings:"
	grep -E 'nvidia|/dev/' "/proc/$pid/maps" 2>/dev/null | head -n 30
	echo "---- its fds:"
	ls -l "/proc/$pid/fd" 2>/dev/null | awk 'NR > 1 { print $(NF-2), $(NF-1), $NF }' | head -n 40
	echo "---- its threads: $(ls "/proc/$pid/task" 2>/dev/null | wc -l)"
}

tfail() {
	local f
	log "FAILED $NAME: $*"
	for f in "$D"/img/dump.log "$D"/img/restore.log; do
		[[ -f $f ]] || continue
		echo "---- last 60 lines of ${f#"$D"/} (plugin:cuda lines first) ----"
		grep 'plugin:cuda' "$f" | tail -n 20
		echo "...."
		tail -n 60 "$f"
	done
	echo "---- output of the workload ----"
	tail -n 40 "$D/out" 2>/dev/null
	[[ -n ${PID:-} ]] && diag_process "$PID"
	if command -v dmesg >/dev/null 2>&1; then
		echo "---- kernel log (NVRM, last 15) ----"
		dmesg 2>/dev/null | grep -iE 'nvrm|nvidia|xid' | tail -n 15
	fi
	echo "RESULT fail $NAME $*" >>"$D/results"
	[[ -n ${PID:-} ]] && alive "$PID" && kill -9 "$PID" 2>/dev/null
	exit 0
}

tpass() {
	log "PASSED $NAME $*"
	echo "RESULT pass $NAME $*" >>"$D/results"
	exit 0
}

start_workload() {
	rm -f "$D/ready" "$D/result" "$D/ready.child" "$D/result.child"
	log "start: $BIN $*"
	(CKPT_TEST_READY=$D/ready CKPT_TEST_RESULT=$D/result CKPT_TEST_DIR=$D \
		exec "$BIN" "$@" </dev/null >>"$D/out" 2>&1 &)
	wait_for "$READY_TIMEOUT" has_ready || tfail "the workload did not get ready in ${READY_TIMEOUT}s"
	[[ -s $D/ready ]] || tfail "the workload ended before ready: $(head -c 300 "$D/result")"
	PID=$(<"$D/ready")
	PID=${PID//[[:space:]]/}
	log "workload ready as pid $PID ($(ls "/proc/$PID/task" | wc -l) threads)"
}

# SIGUSR1 every second until a result
wake_and_check() {
	local i
	for ((i = 0; i < 120 * 4; i++)); do
		((i % 4 == 0)) && kill -USR1 "$PID" 2>/dev/null
		[[ -s $D/result ]] && break
		if gone "$PID" && ((i > 8)); then
			sleep 0.5
			break
		fi
		sleep 0.25
	done
	[[ -s $D/result ]] || tfail "no result after SIGUSR1 (pid $PID: $(pstate "$PID"))"
	[[ $(head -n 1 "$D/result") == PASS ]] || tfail "workload: $(head -c 400 "$D/result")"
	wait_for 20 gone "$PID" || tfail "pid $PID still runs after reporting"
}

show_cuda_img() {
	"$CKPT" show "$D/img" --config "$CONF" 2>/dev/null | grep -iA4 'cuda' | head -n 12 | sed 's/^/  show: /'
}

inner_cycle() { # ARGS of the workload
	local t0 t1 t2 msg
	start_workload "$@"
	sleep 2 # kernels in flight
	t0=$(now)
	run_ckpt dump dump -t "$PID" -D "$D/img" -v4 -o dump.log
	t1=$(now)
	((RC == 0)) || tfail "dump exited $RC: $(head -n 1 "$D/dump.stderr")"
	wait_for 30 gone "$PID" || tfail "pid $PID still runs after the dump"
	[[ -s $D/img/cuda.img ]] || tfail "the dump wrote no cuda.img: the plugin found no CUDA process"
	log "images: $(du -sh "$D/img" | cut -f1)"
	show_cuda_img
	run_ckpt restore restore -D "$D/img" -d -v4 -o restore.log --pidfile "$D/restored.pid"
	t2=$(now)
	((RC == 0)) || tfail "restore exited $RC: $(head -n 1 "$D/restore.stderr")"
	# restore_finish's errors do not change the exit status (the tree runs)
	grep -q 'plugin:cuda' "$D/restore.stderr" && tfail "restore: $(grep -m1 'plugin:cuda' "$D/restore.stderr")"
	alive "$PID" || tfail "pid $PID is not running after restore -d"
	msg=$(grep -h 'plugin:cuda' "$D/img/dump.log" "$D/img/restore.log" | grep -E ' in [0-9]+ ms' |
		sed 's/^.*plugin:cuda: //; s/ (its GPU memory.*//' | tr '\n' ';')
	wake_and_check
	tpass "dump $(secs "$t0" "$t1")s restore $(secs "$t1" "$t2")s images $(du -sh "$D/img" | cut -f1) [$msg]"
}

inner_leave_running() { # ARGS of the workload
	local t0 t1 msg
	start_workload "$@"
	sleep 2
	t0=$(now)
	run_ckpt dump dump -t "$PID" -D "$D/img" -R -v4 -o dump.log
	t1=$(now)
	((RC == 0)) || tfail "dump -R exited $RC: $(head -n 1 "$D/dump.stderr")"
	sleep 0.5
	alive "$PID" || tfail "pid $PID is gone after dump -R"
	[[ $(tracer "$PID") == 0 ]] || tfail "pid $PID is still traced after dump -R"
	grep -q 'plugin:cuda' "$D/dump.stderr" && tfail "dump -R: $(grep -m1 'plugin:cuda' "$D/dump.stderr")"
	[[ -s $D/img/cuda.img ]] || tfail "dump -R wrote no cuda.img: the plugin found no CUDA process"
	msg=$(grep -h 'plugin:cuda' "$D/img/dump.log" | grep -E ' in [0-9]+ ms|unlocked' |
		sed 's/^.*plugin:cuda: //; s/ (its GPU memory.*//' | tr '\n' ';')
	sleep 2 # it works on for a while
	wake_and_check
	tpass "dump -R $(secs "$t0" "$t1")s [$msg]"
}

inner_main() {
	NAME=$1 D=$2
	shift 2
	local kind=$1
	shift
	PID=
	cd "$D" || exit 2
	log "test $NAME in $D (pid $$ in its namespace)"
	case $kind in
	cycle) inner_cycle "$@" ;;
	leave) inner_leave_running "$@" ;;
	*) tfail "unknown kind $kind" ;;
	esac
}

if [[ ${1:-} == --inner ]]; then
	shift
	inner_main "$@"
	exit 0
fi

###########################################################################
# Outer side.
###########################################################################

ONLY=""
KEEP=${CKPT_GPU_KEEP:-0}
PREPARE=0
while (($#)); do
	case $1 in
	--only) ONLY=$2; shift ;;
	--keep) KEEP=1 ;;
	--prepare) PREPARE=1 ;;
	-h | --help)
		awk 'NR >= 3 && /^set -u/ { exit } NR >= 3' "$SELF" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done

find_nvcc() {
	local n
	for n in "$(command -v nvcc 2>/dev/null)" /usr/local/cuda/bin/nvcc /usr/local/cuda-*/bin/nvcc; do
		[[ -n $n && -x $n ]] && { echo "$n"; return 0; }
	done
	return 1
}

# build_counter OUT [ARCH ARGS...]
build_counter() {
	local out=$1 nvcc
	shift
	nvcc=$(find_nvcc) || return 1
	log "building $out with $nvcc $*"
	"$nvcc" -O2 -std=c++17 -cudart static "$@" -o "$out" "$ROOT/tests/gpu/cuda_counter.cu" -lpthread
}

# The shared libraries of ckpt and the plugins besides glibc's, into
# BUILD/tests/gpu/lib, for a GPU machine without them.
prepare() {
	local lib f n=0
	mkdir -p "$BUILD/tests/gpu/lib" || exit 1
	if [[ ! -x $BUILD/tests/gpu/cuda_counter ]]; then
		build_counter "$BUILD/tests/gpu/cuda_counter" \
			-gencode arch=compute_75,code=sm_75 -gencode arch=compute_80,code=sm_80 \
			-gencode arch=compute_86,code=sm_86 -gencode arch=compute_89,code=sm_89 \
			-gencode 'arch=compute_90,code=[sm_90,compute_90]' ||
			echo "run.sh: no nvcc here, build/tests/gpu/cuda_counter is not built" >&2
	fi
	for f in "$BUILD/core/ckpt" "$BUILD"/plugins/*/ckpt-*.so "$BUILD/tests/gpu/cuda_counter"; do
		[[ -f $f ]] || continue
		while read -r lib; do
			case ${lib##*/} in
			libc.so* | libm.so* | libdl.so* | libpthread.so* | librt.so* | ld-linux* | libgcc_s.so* | libstdc++.so*) continue ;;
			esac
			cp -L "$lib" "$BUILD/tests/gpu/lib/" && n=$((n + 1))
		done < <(ldd "$f" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 }')
	done
	echo "run.sh: $BUILD/tests/gpu/lib holds $(ls "$BUILD/tests/gpu/lib" | tr '\n' ' ')($n copied)"
	echo "run.sh: carry build/core/ckpt build/plugins build/tests/nsrun build/tests/gpu" \
		"($(du -shc "$BUILD/core/ckpt" "$BUILD/plugins" "$BUILD/tests/nsrun" "$BUILD/tests/gpu" | tail -n 1 | cut -f1))"
	exit 0
}
((PREPARE)) && prepare

echo "== cuda plugin on a GPU ($(uname -r), $(date -u +%FT%TZ))"
echo "tools: nvcc=$(find_nvcc || echo none) gcc=$(command -v gcc || echo none)" \
	"cc=$(command -v cc || echo none) nvidia-smi=$(command -v nvidia-smi || echo none)"

SELFTEST=${CKPT_GPU_SELFTEST:-0}
if [[ $SELFTEST != 1 ]]; then
	if [[ ! -e /proc/driver/nvidia/version && ! -e /dev/nvidiactl ]]; then
		echo "SKIP: no NVIDIA GPU/driver (no /proc/driver/nvidia/version, no /dev/nvidiactl)"
		exit 0
	fi
	head -n 1 /proc/driver/nvidia/version 2>/dev/null
	if command -v nvidia-smi >/dev/null 2>&1; then
		nvidia-smi --query-gpu=name,driver_version,memory.total,persistence_mode --format=csv,noheader 2>&1 | sed 's/^/gpu: /'
	fi
fi

if (($(id -u) != 0)); then
	echo "FAIL: needs root (ptrace, namespaces, restoring pids)"
	exit 1
fi

CKPT=$BUILD/core/ckpt
NSRUN=$BUILD/tests/nsrun
for f in "$CKPT" "$NSRUN"; do
	[[ -x $f ]] || { echo "FAIL: $f is missing (carry the build dir: see tests/gpu/run.sh --help)"; exit 1; }
done
# ckpt and the plugins must find their libraries
missing_libs() { ldd "$CKPT" "$BUILD"/plugins/*/ckpt-*.so 2>/dev/null | grep -q 'not found'; }
if missing_libs; then
	if [[ -d $BUILD/tests/gpu/lib ]]; then
		export LD_LIBRARY_PATH=$BUILD/tests/gpu/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
		echo "using the libraries in $BUILD/tests/gpu/lib"
	fi
	if ldd "$CKPT" 2>/dev/null | grep -q 'not found'; then
		echo "FAIL: ckpt cannot be loaded here:"
		ldd "$CKPT" | grep 'not found'
		echo "(run 'bash tests/gpu/run.sh --prepare' on the build machine and carry build/tests/gpu)"
		exit 1
	fi
	missing_libs && echo "warning: some plugins lack libraries here (they are optional but cuda):" &&
		ldd "$BUILD"/plugins/*/ckpt-*.so 2>/dev/null | grep -E '^/|not found' | grep -B1 'not found'
fi
"$CKPT" --version >/dev/null 2>&1 || { echo "FAIL: $CKPT does not run here: $("$CKPT" --version 2>&1 | head -n 2)"; exit 1; }

WORK=$(mktemp -d "${CKPT_GPU_TMP:-/tmp}/ckpt-gpu.XXXXXX") || exit 1
echo "work dir: $WORK"

# Every plugin of the build dir, by path (the device may hold the tree at
# another path, where ckpt does not know it runs from a build tree); all
# optional but cuda, which must load.
CONF=$WORK/ckpt.conf
: >"$CONF"
for f in "$BUILD"/plugins/*/ckpt-*.so; do
	n=${f##*/ckpt-}
	n=${n%.so}
	if [[ $n == cuda ]]; then
		printf '[plugin.%s]\nenabled = true\noptional = false\npath = %s\n' "$n" "$f" >>"$CONF"
	else
		printf '[plugin.%s]\nenabled = true\noptional = true\npath = %s\n' "$n" "$f" >>"$CONF"
	fi
done
grep -q '^\[plugin.cuda\]' "$CONF" || { echo "FAIL: $BUILD/plugins/cuda/ckpt-cuda.so is missing"; exit 1; }

if [[ $SELFTEST == 1 ]]; then
	BIN=$BUILD/tests/cuda/cuda_app
	# one [plugin.cuda] section: add the key to it
	sed -i "/^\[plugin.cuda\]/a library = $BUILD/tests/cuda/libcuda-fake.so" "$CONF"
	export CKPT_FAKE_CUDA_DIR=$WORK/fake-state CKPT_FAKE_CUDA_LOG=$WORK/fake-calls.log
	mkdir -p "$CKPT_FAKE_CUDA_DIR"
	echo "SELFTEST: cuda_app and the fake libcuda instead of a GPU"
fi

echo "== ckpt check"
"$CKPT" check --config "$CONF" 2>&1 | grep -E '^plugin|Looks|missing' | sed 's/^/  /'
CHECK=$("$CKPT" check --config "$CONF" 2>&1 | grep '^plugin cuda')
if [[ $CHECK != *" ok "* ]]; then
	echo "FAIL: the cuda plugin cannot work here: ${CHECK:-no line for it from ckpt check}"
	exit 1
fi

if [[ $SELFTEST != 1 ]]; then
	BIN=$BUILD/tests/gpu/cuda_counter
	if [[ -x $BIN ]] && timeout 120 "$BIN" --probe >"$WORK/probe.out" 2>&1; then
		echo "cuda_counter: $BIN ($(head -n 1 "$WORK/probe.out"))"
	else
		[[ -x $BIN ]] && { echo "cuda_counter: $BIN does not work here:"; head -n 5 "$WORK/probe.out"; }
		BIN=$WORK/cuda_counter
		if ! build_counter "$BIN" -arch=native >"$WORK/nvcc.out" 2>&1; then
			cat "$WORK/nvcc.out"
			echo "FAIL: no working cuda_counter (none prebuilt in $BUILD/tests/gpu, and nvcc is missing or failed)"
			exit 1
		fi
		if ! timeout 120 "$BIN" --probe >"$WORK/probe.out" 2>&1; then
			cat "$WORK/probe.out"
			echo "FAIL: cuda_counter --probe fails: the GPU is not usable"
			exit 1
		fi
		echo "cuda_counter: built here ($(head -n 1 "$WORK/probe.out"))"
	fi
fi

NS=("$NSRUN")
if ! "$NSRUN" true >/dev/null 2>&1; then
	echo "warning: nsrun cannot make namespaces here ($("$NSRUN" true 2>&1 | head -n 1)); tests run in this pid namespace"
	NS=()
fi

BIG=${CKPT_GPU_BIG_MIB:-2048}
# name|kind|workload args
TESTS=(
	"gpu-single|cycle|--mib 256 --threads 1"
	"gpu-threads|cycle|--mib 256 --threads 2"
	"gpu-tree|cycle|--fork --mib 128 --threads 2"
	"gpu-leave-running|leave|--mib 256 --threads 2"
)
((BIG > 0)) && TESTS+=("gpu-big|cycle|--mib $BIG --threads 1")
if [[ $SELFTEST == 1 ]]; then
	TESTS=("self-cycle|cycle|1" "self-leave-running|leave|1")
fi

NPASS=0 NFAIL=0
declare -a SUMMARY=()
for t in "${TESTS[@]}"; do
	IFS='|' read -r name kind args <<<"$t"
	[[ -n $ONLY && ! $name =~ $ONLY ]] && continue
	dir=$WORK/$name
	mkdir -p "$dir"
	echo "== $name: $kind cuda_counter $args"
	read -ra wargs <<<"$args"
	t0=$SECONDS
	CKPT=$CKPT CONF=$CONF BIN=$BIN CK_TIMEOUT=${CKPT_GPU_CK_TIMEOUT:-300} READY_TIMEOUT=120 \
		timeout -k 10 900 "${NS[@]}" bash "$SELF" --inner "$name" "$dir" "$kind" "${wargs[@]}" \
		</dev/null >"$dir/inner.log" 2>&1
	rc=$?
	res=$(grep -h '^RESULT ' "$dir/results" 2>/dev/null | tail -n 1)
	if [[ $res == "RESULT pass "* ]]; then
		NPASS=$((NPASS + 1))
		line="PASS  $name ($((SECONDS - t0))s): ${res#RESULT pass "$name" }"
		echo "$line"
		sed -n '/ -> exit /p; / images: /p; /workload ready/p' "$dir/inner.log" | sed 's/^/        /'
	else
		NFAIL=$((NFAIL + 1))
		line="FAIL  $name: ${res#RESULT fail "$name" }"
		[[ -z $res ]] && line="FAIL  $name: ended (exit $rc) without a result"
		echo "$line"
		sed 's/^/        /' "$dir/inner.log" | tail -n 200
	fi
	SUMMARY+=("$line")
done

echo "== summary"
printf '%s\n' "${SUMMARY[@]}"
if [[ -n ${OUT:-} && -d ${OUT:-} ]]; then
	mkdir -p "$OUT/ckpt-gpu-logs"
	(cd "$WORK" && find . -name '*.log' -o -name '*.out' -o -name '*.stderr' -o -name results -o -name ckpt.conf) |
		while read -r f; do
			mkdir -p "$OUT/ckpt-gpu-logs/$(dirname "$f")"
			cp "$WORK/$f" "$OUT/ckpt-gpu-logs/$f"
		done
	echo "logs copied to $OUT/ckpt-gpu-logs"
fi
if ((KEEP)); then
	echo "(kept $WORK)"
else
	rm -rf "$WORK"
fi
echo "$NPASS passed, $NFAIL failed"
((NFAIL == 0 && NPASS > 0))
exit $?
