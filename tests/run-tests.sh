#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# tests/run-tests.sh — the one test command of ckpt.
#
#   tests/run-tests.sh [--no-asan] [--only REGEX] [--list]
#
# 1. builds build/ (meson setup + ninja) when needed;
# 2. runs every unit test binary in build/tests/unit/ (TAP; every "ok" and
#    "not ok" line counts);
# 3. runs the integration scenarios, each inside build/tests/nsrun (its own
#    pid + mount namespace, so PIDs are small and free, and the namespace's
#    init reaps everything) with a fresh directory under a temp dir;
# 4. builds build-asan/ (ASan + UBSan) and runs the integration scenarios
#    again with that ckpt, counted separately as "asan:NAME".
# The last line is "N passed, M failed" (", K skipped" when some were
# skipped).  Exit status 0 when nothing failed.
#
# Environment:
#   CKPT_TEST_ASAN=0        skip the ASan pass (same as --no-asan)
#   CKPT_TEST_ONLY=REGEX    run only the scenarios whose name matches
#   CKPT_TEST_TMP=DIR       where the temp dirs go (default /dev/shm when it
#                           has room, else /tmp)
#   CKPT_TEST_KEEP=1        keep the temp dir (images, logs) afterwards
#   CKPT_TEST_HEAP_MB=N     size of heap256's heap (default 256)
#   BUILD, ASAN_BUILD       build dirs (default build, build-asan)
#   CKPT_TEST_NO_BUILD=1    use the build dirs as they are
#   CKPT_TEST_CKPT=PATH     the ckpt binary of the first pass (default
#                           $BUILD/core/ckpt)
#   CKPT_TEST_BUDGET=S      start no scenario after S seconds (default 780)
#
# The scenario functions (sc_*) run inside the namespace: the script calls
# itself as "nsrun bash run-tests.sh --inner SCENARIO DIR".  Each reports
# one or more named results into DIR/results as "pass|fail|skip NAME REASON".
# tests/scenarios/*.sh are sourced at global scope: they append entries to
# SCENARIOS and define their sc_* functions.

set -u
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SELF=$ROOT/tests/run-tests.sh

# Per-scenario wall-clock limit (outer) and per-command limits (inner).
SCENARIO_TIMEOUT=${CKPT_TEST_SCENARIO_TIMEOUT:-120}
CK_TIMEOUT=${CKPT_TEST_CK_TIMEOUT:-60}
# The whole run stops starting scenarios after this many seconds (the ones
# not run count as failed), so a hanging ckpt cannot stall CI.
BUDGET=${CKPT_TEST_BUDGET:-780}

# id|result names.  An id "wl:NAME" is the plain dump/restore/verify cycle of
# workload NAME; any other id "fn:arg" runs sc_fn arg.
SCENARIOS=(
	"wl:counter|counter"
	"wl:heap256|heap256"
	"wl:files|files"
	"wl:vdso_clock|vdso_clock"
	"wl:vmas2000|vmas2000"
	"blocked_read|blocked_read"
	"nanosleep|nanosleep"
	"pidns|heap256-pidns fail-restore-pid-taken"
	"images|show show-json fail-truncated-image fail-flipped-page fail-missing-inventory restore-after-bad-images"
	"unknown_pid|fail-unknown-pid"
	"unclaimed:socketpair|fail-unclaimed-socketpair"
	"unclaimed:pidfd|fail-unclaimed-pidfd"
	"plugin_abi_config|fail-plugin-abi-major-config"
	"plugin_abi_path|fail-plugin-abi-major-path"
	"plugin_init|fail-plugin-init"
	"config_key|fail-config-unknown-key"
	"cli|cli-check cli-check-json cli-plugins cli-plugins-json cli-help cli-version"
)

###########################################################################
# Inner side: runs as PID 2 of a fresh pid namespace.
###########################################################################

log() { printf '[%s] %s\n' "${EPOCHREALTIME:0:14}" "$*"; }

# report pass|fail|skip NAME [REASON]
report() {
	local status=$1 name=$2 reason=${3:-}
	if [[ $status == pass && -s $T/sanitizer.txt ]]; then
		status=fail
		reason="sanitizer report: $(head -n 1 "$T/sanitizer.txt")"
	fi
	log "RESULT $status $name ${reason}"
	printf '%s %s %s\n' "$status" "$name" "${reason//$'\n'/ }" >>"$T/results"
}

now_us() { local t=${EPOCHREALTIME/./}; echo $((10#$t)); }

# wait_until SECONDS CMD... : poll CMD every 50 ms.
wait_until() {
	local tmo=$1 t end
	shift
	t=${EPOCHREALTIME/./}
	end=$((10#$t + tmo * 1000000))
	while ! "$@"; do
		t=${EPOCHREALTIME/./}
		((10#$t > end)) && return 1
		sleep 0.05
	done
	return 0
}

# state PID: the one-letter state, empty when there is no such process
state() {
	local st
	{ read -r st <"/proc/$1/stat"; } 2>/dev/null || return 0
	st=${st##*) }
	echo "${st%% *}"
}
alive() {
	local st
	{ read -r st <"/proc/$1/stat"; } 2>/dev/null || return 1
	st=${st##*) }
	st=${st%% *}
	[[ $st != [ZXx] ]]
}
gone() { ! alive "$1"; }
tracer_of() {
	local l
	while read -r l; do
		[[ $l == TracerPid:* ]] && { echo "${l##*[[:space:]]}"; return; }
	done <"/proc/$1/status" 2>/dev/null
	echo "?"
}

# For messages: who traces pid ("TracerPid N (comm)").
traced_by() {
	local t
	t=$(tracer_of "$1")
	echo "TracerPid $t ($(cat "/proc/$t/comm" 2>/dev/null || echo "?"))"
}

# Running processes other than init, this shell and its own children,
# minus the pids given.
others() {
	local d p st pp out=""
	for d in /proc/[0-9]*; do
		p=${d#/proc/}
		[[ $p == 1 || $p == "$$" || $p == "$BASHPID" ]] && continue
		[[ " $* " == *" $p "* ]] && continue
		{ read -r st <"$d/stat"; } 2>/dev/null || continue
		pp=${st##*) }
		[[ ${pp%% *} == [ZXx] ]] && continue
		pp=${pp#* }
		pp=${pp%% *}
		[[ $pp == "$$" ]] && continue
		st=${st#*(}
		out+="$p(${st%)*}) "
	done
	echo "$out"
}
no_others() { [[ -z $(others "$@") ]]; }

ready_or_result() { [[ -s $T/ready || -s $T/result ]]; }

# start_wl WORKLOAD [ARGS...]: start it detached (its parent exits at once,
# so it is reparented to the namespace's init), wait for ready, set PID.
start_wl() {
	local w=$1 out
	shift
	out=$T/${w//\//_}.out # workloads of subfolders: fs/pipes -> fs_pipes.out
	rm -f "$T/ready" "$T/result"
	(CKPT_TEST_READY=$T/ready CKPT_TEST_RESULT=$T/result CKPT_TEST_DIR=$T \
		exec "$WL/$w" "$@" </dev/null >>"$out" 2>&1 &)
	if ! wait_until 30 ready_or_result || [[ ! -s $T/ready ]]; then
		log "workload $w did not get ready ($(result_text)); its output:"
		cat "$out" 2>/dev/null
		PID=
		return 1
	fi
	PID=$(<"$T/ready")
	log "workload $w ready as pid $PID"
}

# ck TAG ARGS...: run ckpt with a time limit; sets CK_RC, stdout and stderr
# go to $T/TAG.stdout / $T/TAG.stderr.
ck() {
	local tag=$1 asan_opts
	shift
	asan_opts=${ASAN_OPTIONS_BASE:-}
	# The restore worker is a fork of ckpt whose memory gets replaced;
	# leak checking makes no sense there.
	[[ ${1:-} == restore ]] && asan_opts=${asan_opts/detect_leaks=1/detect_leaks=0}
	log "ckpt $*"
	ASAN_OPTIONS=$asan_opts timeout -k 5 "$CK_TIMEOUT" "$CKPT" "$@" >"$T/$tag.stdout" 2>"$T/$tag.stderr"
	CK_RC=$?
	CK_WHY="exited $CK_RC"
	((CK_RC == 124 || CK_RC == 137)) && CK_WHY="timed out after ${CK_TIMEOUT}s"
	log "  -> exit $CK_RC"
	sed 's/^/  stderr: /' "$T/$tag.stderr"
	if grep -qE 'Sanitizer|runtime error:' "$T/$tag.stderr"; then
		grep -m1 -E 'ERROR: .*Sanitizer|runtime error:' "$T/$tag.stderr" >>"$T/sanitizer.txt" ||
			echo "sanitizer output in $tag.stderr" >>"$T/sanitizer.txt"
	fi
	return 0
}
stderr_line() { head -c 300 "$T/$1.stderr" | head -n 1; }
# exactly one non-empty line on stderr
one_line() {
	local -a l
	mapfile -t l <"$T/$1.stderr"
	((${#l[@]} == 1)) && [[ -n ${l[0]} ]]
}

show_logs() {
	local f
	for f in "$@"; do
		[[ -f $f ]] || continue
		echo "---- tail of ${f#"$T"/} ----"
		tail -n 25 "$f"
	done
}

# fail NAME REASON: print the logs, report, kill the workload.
fail() {
	log "FAILED $1: $2"
	grep -h '^nsrun: ' "$T/inner.log" 2>/dev/null
	show_logs "$T"/img*/dump*.log "$T"/img*/restore*.log "$T"/*.out
	report fail "$1" "$2"
	[[ -n ${PID:-} ]] && alive "$PID" && kill -9 "$PID" 2>/dev/null
	return 0
}

# signal_wait PID SECONDS: send SIGUSR1 (again every second; a handler only
# sets a flag, so extra ones are harmless) until a result file appears.
# Gives up early when the process is gone without a result.
signal_wait() {
	local pid=$1 tmo=$2 i gone_for=0
	for ((i = 0; i < tmo * 4; i++)); do
		((i % 4 == 0)) && kill -USR1 "$pid" 2>/dev/null
		[[ -s $T/result ]] && return 0
		if gone "$pid"; then
			((++gone_for > 4)) && break
		fi
		sleep 0.25
	done
	[[ -s $T/result ]]
}
# wait_result PID SECONDS: wait for a result the workload writes by itself.
wait_result() {
	local pid=$1 tmo=$2 i gone_for=0
	for ((i = 0; i < tmo * 4; i++)); do
		[[ -s $T/result ]] && return 0
		if gone "$pid"; then
			((++gone_for > 4)) && break
		fi
		sleep 0.25
	done
	[[ -s $T/result ]]
}

# What a process is doing, for failure messages.
describe() {
	local l out=""
	if ! alive "$1"; then
		echo "pid $1 is gone$(grep -h "nsrun: pid $1 " "$T/inner.log" 2>/dev/null | tail -n 1 | sed 's/^nsrun: pid [0-9]* / - /')"
		return
	fi
	while read -r l; do
		case $l in
		State:* | SigPnd:* | ShdPnd:* | SigBlk:* | SigCgt:* | TracerPid:*) out+="${l//[[:space:]]/ } " ;;
		esac
	done <"/proc/$1/status" 2>/dev/null
	echo "pid $1 runs: $out"
}
result_is_pass() { [[ -s $T/result && $(<"$T/result") == PASS ]]; }
result_text() { if [[ -s $T/result ]]; then head -n 1 "$T/result"; else echo "no result"; fi; }

# dump PID DIR [ARGS...] ; restore DIR [ARGS...]
dump() {
	local pid=$1 dir=$2
	shift 2
	mkdir -p "$dir"
	ck dump dump -t "$pid" -D "$dir" -v4 -o dump.log "$@"
}
restore() {
	local dir=$1
	shift
	rm -f "$T/restored.pid"
	ck restore restore -D "$dir" -d -v4 -o restore.log --pidfile "$T/restored.pid" "$@"
}

# The restored PID, from --pidfile.
check_pidfile() {
	local want=$1 got
	[[ -s $T/restored.pid ]] || { echo "no --pidfile written"; return 1; }
	got=$(<"$T/restored.pid")
	got=${got//[[:space:]]/}
	[[ $got == "$want" ]] || { echo "--pidfile holds '$got', want $want"; return 1; }
}

# The usual cycle: start, dump (must kill it), restore -d, wake, verify.
# Workloads that finish by themselves get WAKE=fifo|none.
cycle() {
	local name=$1 w=$2 wake=$3
	shift 3
	local D=$T/img msg
	start_wl "$w" "$@" || { fail "$name" "workload did not get ready"; return; }
	sleep 0.3 # let the loops run / the task block in its syscall
	dump "$PID" "$D"
	((CK_RC == 0)) || { fail "$name" "dump $CK_WHY: $(stderr_line dump)"; return; }
	wait_until 10 gone "$PID" || { fail "$name" "pid $PID still runs after the dump"; return; }
	[[ -s $T/result ]] && { fail "$name" "the workload reported before the restore: $(result_text)"; return; }
	restore "$D"
	((CK_RC == 0)) || { fail "$name" "restore $CK_WHY: $(stderr_line restore)"; return; }
	alive "$PID" || { fail "$name" "pid $PID is not running after restore -d"; return; }
	msg=$(check_pidfile "$PID") || { fail "$name" "$msg"; return; }
	case $wake in
	sig)
		signal_wait "$PID" 60 || { fail "$name" "no result after SIGUSR1: $(describe "$PID")"; return; }
		;;
	fifo)
		timeout 10 bash -c 'printf "%s\n" "hello after restore" >"$1"' _ "$T/fifo" ||
			{ fail "$name" "could not write to the FIFO (no reader restored?): $(describe "$PID")"; return; }
		wait_result "$PID" 20 || { fail "$name" "no result after writing the FIFO: $(describe "$PID")"; return; }
		;;
	none)
		wait_result "$PID" 30 || { fail "$name" "no result: $(describe "$PID")"; return; }
		;;
	esac
	result_is_pass || { fail "$name" "workload: $(result_text)"; return; }
	wait_until 10 gone "$PID" || { fail "$name" "pid $PID still runs after reporting"; return; }
	wait_until 5 no_others || { fail "$name" "processes left running: $(others)"; return; }
	report pass "$name"
}

sc_wl() { cycle "$1" "$1" sig; }

sc_blocked_read() {
	mkfifo "$T/fifo" || { fail blocked_read "mkfifo failed"; return; }
	cycle blocked_read blocked_read fifo "$T/fifo"
}

sc_nanosleep() {
	CKPT_TEST_SLEEP_MS=3000 cycle nanosleep nanosleep none
}

# Dump -R heap256; restoring it without --pidns must fail (its PID is
# taken); with --pidns the copy runs beside the original; both PASS.
sc_pidns() {
	local D=$T/img copy msg st
	start_wl heap256 || { fail heap256-pidns "workload did not get ready"; return; }
	dump "$PID" "$D" -R
	((CK_RC == 0)) || { fail heap256-pidns "dump -R $CK_WHY: $(stderr_line dump)"; return; }
	sleep 0.2
	alive "$PID" || { fail heap256-pidns "pid $PID is gone after dump -R"; return; }
	st=$(state "$PID")
	[[ $st == [RS] && $(tracer_of "$PID") == 0 ]] ||
		{ fail heap256-pidns "pid $PID left in state $st, tracer $(tracer_of "$PID") after dump -R"; return; }

	# without --pidns: the PID is taken
	ck restore-taken restore -D "$D" -d -v4 -o restore-taken.log
	if ((CK_RC != 1)); then
		fail fail-restore-pid-taken "restore while pid $PID runs $CK_WHY, want 1"
	elif ! one_line restore-taken; then
		fail fail-restore-pid-taken "stderr is not one line"
	elif ! grep -qw "$PID" "$T/restore-taken.stderr"; then
		fail fail-restore-pid-taken "the error does not name pid $PID: $(stderr_line restore-taken)"
	elif ! alive "$PID"; then
		fail fail-restore-pid-taken "the original pid $PID died"
	elif ! wait_until 5 no_others "$PID"; then
		fail fail-restore-pid-taken "processes left running: $(others "$PID")"
	else
		report pass fail-restore-pid-taken
	fi
	alive "$PID" || { fail heap256-pidns "the original is gone"; return; }

	# with --pidns
	ck restore restore -D "$D" -d --pidns -v4 -o restore.log --pidfile "$T/copy.pid"
	((CK_RC == 0)) || { fail heap256-pidns "restore --pidns $CK_WHY: $(stderr_line restore)"; return; }
	[[ -s $T/copy.pid ]] || { fail heap256-pidns "restore --pidns wrote no --pidfile"; return; }
	copy=$(<"$T/copy.pid")
	copy=${copy//[[:space:]]/}
	[[ $copy != "$PID" ]] || { fail heap256-pidns "--pidfile holds the original's pid $PID, want the copy's pid here"; return; }
	alive "$copy" || { fail heap256-pidns "the copy (pid $copy here) is not running"; return; }

	rm -f "$T/result"
	signal_wait "$PID" 60 || { fail heap256-pidns "the original gave no result: $(describe "$PID")"; return; }
	result_is_pass || { fail heap256-pidns "the original: $(result_text)"; return; }
	wait_until 10 gone "$PID" || { fail heap256-pidns "the original still runs after reporting"; return; }
	rm -f "$T/result"
	signal_wait "$copy" 60 || { fail heap256-pidns "the copy gave no result: $(describe "$copy")"; return; }
	result_is_pass || { fail heap256-pidns "the copy: $(result_text)"; return; }
	wait_until 10 gone "$copy" || { fail heap256-pidns "the copy still runs after reporting"; return; }
	wait_until 5 no_others || { fail heap256-pidns "processes left running: $(others)"; return; }
	report pass heap256-pidns
}

# expect_restore_fail NAME DIR REGEX: restore must exit 1 with one line on
# stderr matching REGEX, and leave nothing running.
expect_restore_fail() {
	local name=$1 dir=$2 re=$3
	ck "$name" restore -D "$dir" -d -v4 -o restore.log
	if ((CK_RC != 1)); then
		fail "$name" "restore $CK_WHY, want 1"
	elif ! one_line "$name"; then
		fail "$name" "stderr is not one line"
	elif ! grep -qiE "$re" "$T/$name.stderr"; then
		fail "$name" "the error does not match /$re/: $(stderr_line "$name")"
	elif ! wait_until 5 gone "$PID"; then
		fail "$name" "pid $PID runs after the failed restore"
	elif ! wait_until 5 no_others; then
		fail "$name" "processes left running: $(others)"
	else
		report pass "$name"
	fi
}

flip_byte() {
	local f=$1 off=$2 v
	v=$(od -An -tu1 -j "$off" -N1 "$f" | tr -d ' ')
	[[ -n $v ]] || return 1
	printf "\\$(printf %03o $((255 - v)))" | dd of="$f" bs=1 seek="$off" count=1 conv=notrunc status=none
}

# One dump of counter; show; then broken copies of the images must be
# refused; finally the untouched images must still restore.
sc_images() {
	local D=$T/img pages size d
	start_wl counter || { fail show "workload did not get ready"; return; }
	sleep 0.2
	dump "$PID" "$D"
	((CK_RC == 0)) || {
		fail show "dump $CK_WHY: $(stderr_line dump)"
		for d in show-json fail-truncated-image fail-flipped-page fail-missing-inventory restore-after-bad-images; do
			report fail "$d" "not reached: the dump of counter failed (see show)"
		done
		return
	}
	wait_until 10 gone "$PID" || { fail show "pid $PID still runs after the dump"; return; }

	ck show show "$D"
	if ((CK_RC != 0)); then fail show "show $CK_WHY: $(stderr_line show)"
	elif [[ ! -s $T/show.stdout ]]; then fail show "show printed nothing"
	else report pass show; fi

	ck show-json show "$D" --json
	if ((CK_RC != 0)); then
		fail show-json "show --json $CK_WHY: $(stderr_line show-json)"
	elif ! python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$T/show-json.stdout" 2>"$T/json.err"; then
		fail show-json "not JSON: $(tail -n 1 "$T/json.err")"
	else
		report pass show-json
	fi

	pages=$(cd "$D" && ls pages-*.img 2>/dev/null | head -n 1)
	if [[ -z $pages ]]; then
		fail fail-truncated-image "no pages-*.img in the images: $(ls "$D" | tr '\n' ' ')"
		fail fail-flipped-page "no pages-*.img in the images"
	else
		size=$(stat -c %s "$D/$pages")
		cp -a "$D" "$T/img-trunc"
		truncate -s $((size / 2)) "$T/img-trunc/$pages"
		expect_restore_fail fail-truncated-image "$T/img-trunc" 'trunc|short|size|length|checksum|corrupt|mismatch|pages|inventory'

		cp -a "$D" "$T/img-flip"
		if flip_byte "$T/img-flip/$pages" $((size / 2 + 123)); then
			expect_restore_fail fail-flipped-page "$T/img-flip" 'checksum|corrupt|mismatch|hash|crc|xxh|pages|inventory'
		else
			fail fail-flipped-page "could not flip a byte of $pages"
		fi
	fi

	cp -a "$D" "$T/img-noinv"
	if [[ -f $T/img-noinv/inventory.img ]]; then
		rm -f "$T/img-noinv/inventory.img"
		expect_restore_fail fail-missing-inventory "$T/img-noinv" 'inventory'
	else
		fail fail-missing-inventory "the dump wrote no inventory.img"
	fi

	# the untouched images still work
	cycle_restore_only restore-after-bad-images "$D"
}

# restore an existing dump of a SIGUSR1 workload and verify it
cycle_restore_only() {
	local name=$1 D=$2 msg
	restore "$D"
	((CK_RC == 0)) || { fail "$name" "restore $CK_WHY: $(stderr_line restore)"; return; }
	alive "$PID" || { fail "$name" "pid $PID is not running after restore -d"; return; }
	msg=$(check_pidfile "$PID") || { fail "$name" "$msg"; return; }
	signal_wait "$PID" 60 || { fail "$name" "no result after SIGUSR1: $(describe "$PID")"; return; }
	result_is_pass || { fail "$name" "workload: $(result_text)"; return; }
	wait_until 10 gone "$PID" || { fail "$name" "pid $PID still runs after reporting"; return; }
	wait_until 5 no_others || { fail "$name" "processes left running: $(others)"; return; }
	report pass "$name"
}

# expect_dump_fail NAME REGEX WORKLOAD [WORKLOAD ARGS] -- [CKPT ARGS]:
# the dump must exit 1 with one line on stderr matching REGEX, and the
# workload must keep running as it was (and PASS when woken).
expect_dump_fail() {
	local name=$1 re=$2
	shift 2
	local -a wargs=() cargs=()
	while (($#)) && [[ $1 != -- ]]; do wargs+=("$1"); shift; done
	(($#)) && shift
	cargs=("$@")
	start_wl "${wargs[@]}" || { fail "$name" "workload did not get ready"; return; }
	dump "$PID" "$T/img" "${cargs[@]}"
	if ((CK_RC != 1)); then
		fail "$name" "dump $CK_WHY, want 1"
		return
	fi
	one_line dump || { fail "$name" "stderr is not one line"; return; }
	grep -qiE "$re" "$T/dump.stderr" || { fail "$name" "the error does not match /$re/: $(stderr_line dump)"; return; }
	expect_left_running "$name" && report pass "$name"
}

# After a dump that must have changed nothing: workload $PID runs on,
# untraced, and still verifies itself; then it is gone and nothing else is
# left.  0, or 1 after fail NAME.
expect_left_running() {
	local name=$1 st
	sleep 0.2
	alive "$PID" || { fail "$name" "the workload died: $(describe "$PID")"; return 1; }
	st=$(state "$PID")
	[[ $st == [RS] ]] || { fail "$name" "the workload is left in state $st"; return 1; }
	[[ $(tracer_of "$PID") == 0 ]] || { fail "$name" "the workload is still traced: $(traced_by "$PID")"; return 1; }
	signal_wait "$PID" 30 || { fail "$name" "no result after SIGUSR1: $(describe "$PID")"; return 1; }
	result_is_pass || { fail "$name" "workload after the failed dump: $(result_text)"; return 1; }
	wait_until 10 gone "$PID" || { fail "$name" "pid $PID still runs after reporting"; return 1; }
	wait_until 5 no_others || { fail "$name" "processes left running: $(others)"; return 1; }
}

sc_unknown_pid() {
	local p=30000
	while [[ -e /proc/$p ]]; do p=$((p + 1)); done
	PID=
	mkdir -p "$T/img"
	ck dump dump -t "$p" -D "$T/img" -v4 -o dump.log
	if ((CK_RC != 1)); then fail fail-unknown-pid "dump -t $p $CK_WHY, want 1"
	elif ! one_line dump; then fail fail-unknown-pid "stderr is not one line"
	elif ! grep -qw "$p" "$T/dump.stderr"; then fail fail-unknown-pid "the error does not name pid $p: $(stderr_line dump)"
	else report pass fail-unknown-pid; fi
}

# An fd kind no enabled plugin claims.  --plugins=fs keeps the socketpair
# case valid once the net plugin handles sockets; no plugin is planned for
# pidfds.  (eventfd was used here until the fs plugin learned it.)
sc_unclaimed() {
	expect_dump_fail "fail-unclaimed-$1" 'fd|file|descriptor|unsupported|claim|plugin' \
		unclaimed_fd "$1" -- --plugins=fs
}

need_test_plugin() {
	[[ -f $TESTPLUG/ckpt-$2.so ]] && return 0
	report skip "$1" "test plugin $TESTPLUG/ckpt-$2.so is not built"
	return 1
}

sc_plugin_abi_config() {
	need_test_plugin fail-plugin-abi-major-config abi_major || return
	printf '[plugin.abi_major]\nenabled = true\npath = %s\n' "$TESTPLUG/ckpt-abi_major.so" >"$T/abi.conf"
	expect_dump_fail fail-plugin-abi-major-config 'abi' counter -- --config "$T/abi.conf"
}

sc_plugin_abi_path() {
	need_test_plugin fail-plugin-abi-major-path abi_major || return
	CKPT_PLUGIN_PATH=$TESTPLUG expect_dump_fail fail-plugin-abi-major-path 'abi' counter -- --plugins=fs,abi_major
}

sc_plugin_init() {
	need_test_plugin fail-plugin-init init_fails || return
	CKPT_PLUGIN_PATH=$TESTPLUG expect_dump_fail fail-plugin-init 'init' counter -- --plugins=fs,init_fails
}

sc_config_key() {
	printf '[plugin.fs]\nno_such_key = 1\n' >"$T/badkey.conf"
	expect_dump_fail fail-config-unknown-key 'no_such_key' counter -- --config "$T/badkey.conf"
}

json_ok() { python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$1" 2>/dev/null; }

sc_cli() {
	local v
	PID=
	ck check check
	if ((CK_RC == 0)); then report pass cli-check; else fail cli-check "check $CK_WHY: $(stderr_line check)"; fi
	ck check-json check --json
	if ((CK_RC == 0)) && json_ok "$T/check-json.stdout"; then report pass cli-check-json
	else fail cli-check-json "check --json $CK_WHY or printed no JSON"; fi
	ck plugins plugins
	if ((CK_RC == 0)) && grep -qw fs "$T/plugins.stdout"; then report pass cli-plugins
	else fail cli-plugins "plugins $CK_WHY or does not list fs"; fi
	ck plugins-json plugins --json
	if ((CK_RC == 0)) && json_ok "$T/plugins-json.stdout" && grep -q '"fs"' "$T/plugins-json.stdout"; then
		report pass cli-plugins-json
	else
		fail cli-plugins-json "plugins --json $CK_WHY, printed no JSON or does not list \"fs\""
	fi
	ck help --help
	if ((CK_RC == 0)) && grep -qw dump "$T/help.stdout" && grep -qw restore "$T/help.stdout"; then
		report pass cli-help
	else
		fail cli-help "--help $CK_WHY or does not mention dump and restore"
	fi
	v=$(sed -n "s/^ *version *: *'\([^']*\)'.*/\1/p" "$ROOT/meson.build" | head -n 1)
	ck version --version
	if ((CK_RC == 0)) && grep -qF "$v" "$T/version.stdout"; then report pass cli-version
	else fail cli-version "--version $CK_WHY or does not print $v"; fi
}

inner_main() {
	local id=$1 fn arg
	T=$2
	PID=
	cd "$T" || exit 2
	: >"$T/results"
	log "scenario $id in $T (pid $$; ckpt $CKPT)"
	if [[ $id == wl:* ]]; then
		sc_wl "${id#wl:}"
	else
		fn=${id%%:*}
		arg=${id#"$fn"}
		arg=${arg#:}
		if [[ -n $arg ]]; then "sc_$fn" "$arg"; else "sc_$fn"; fi
	fi
}

###########################################################################
# Outer side.
###########################################################################

NPASS=0 NFAIL=0 NSKIP=0

out_pass() { NPASS=$((NPASS + 1)); printf 'PASS  %s%s\n' "$1" "${2:+ ($2)}"; }
out_fail() { NFAIL=$((NFAIL + 1)); printf 'FAIL  %s: %s\n' "$1" "$2"; }
out_skip() { NSKIP=$((NSKIP + 1)); printf 'SKIP  %s: %s\n' "$1" "$2"; }

finish() {
	if [[ ${CKPT_TEST_KEEP:-0} == 1 ]]; then
		echo "(kept $WORK)"
	else
		rm -rf "$WORK"
	fi
	if ((NSKIP)); then
		echo "$NPASS passed, $NFAIL failed, $NSKIP skipped"
	else
		echo "$NPASS passed, $NFAIL failed"
	fi
	((NFAIL == 0))
	exit $?
}

# build DIR [MESON ARGS...]
build() {
	local dir=$1
	shift
	if [[ ! -f $dir/build.ninja ]]; then
		meson setup "$dir" "$@" >"$WORK/setup-${dir##*/}.log" 2>&1 || {
			tail -n 30 "$WORK/setup-${dir##*/}.log"
			return 1
		}
	fi
	ninja -C "$dir" >"$WORK/ninja-${dir##*/}.log" 2>&1 || {
		grep -E 'error|FAILED' "$WORK/ninja-${dir##*/}.log" | head -n 20
		tail -n 10 "$WORK/ninja-${dir##*/}.log"
		return 1
	}
}

run_unit_tests() {
	local t name out rc nok nnot nskip
	shopt -s nullglob
	for t in "$BUILD"/tests/unit/test_*; do
		[[ -f $t && -x $t ]] || continue
		name=unit:${t##*/test_}
		out=$WORK/$name.tap
		(cd "$BUILD" && timeout -k 5 120 "$t") >"$out" 2>&1
		rc=$?
		nskip=$(grep -cE '^ok [0-9]+.*# *SKIP' "$out")
		nok=$(($(grep -cE '^ok( |$)' "$out") - nskip))
		nnot=$(grep -cE '^not ok( |$)' "$out")
		NPASS=$((NPASS + nok))
		NSKIP=$((NSKIP + nskip))
		grep -E '^ok [0-9]+.*# *SKIP' "$out" | sed "s/^/SKIP  $name: /"
		if ((nnot)); then
			NFAIL=$((NFAIL + nnot))
			echo "FAIL  $name: $nnot of $((nok + nnot + nskip)) failed:"
			grep -E '^not ok|^#' "$out" | head -n 40 | sed 's/^/        /'
		fi
		if ((rc != 0 && nnot == 0)); then
			out_fail "$name" "exited $rc with no failing test line$( ((rc == 124)) && echo ' (timed out)')"
			tail -n 15 "$out" | sed 's/^/        /'
		elif ((nnot == 0)); then
			printf 'PASS  %s (%d ok)\n' "$name" "$nok"
		fi
	done
	shopt -u nullglob
}

# run_pass PREFIX: every selected scenario once, with $CKPT, $TESTPLUG set.
run_pass() {
	local prefix=$1 entry id names n dir rc status name reason t0 secs tag tmo
	local -A seen
	for entry in "${SCENARIOS[@]}"; do
		id=${entry%%|*}
		names=${entry#*|}
		selected "$id" "$names" || continue
		tag=${id//[:\/]/-}
		dir=$WORK/${prefix:+${prefix%:}-}$tag
		mkdir -p "$dir"
		t0=$SECONDS
		tmo=$((BUDGET - SECONDS))
		if ((tmo < 10)); then
			for n in $names; do out_fail "$prefix$n" "not run: the test run's time budget (${BUDGET}s) is spent"; done
			continue
		fi
		((tmo > SCENARIO_TIMEOUT)) && tmo=$SCENARIO_TIMEOUT
		CKPT=$CKPT WL=$WL TESTPLUG=$TESTPLUG ROOT=$ROOT CK_TIMEOUT=$CK_TIMEOUT \
			ASAN_OPTIONS_BASE=$ASAN_OPTS UBSAN_OPTIONS=$UBSAN_OPTS \
			timeout -k 5 "$tmo" "$NSRUN" bash "$SELF" --inner "$id" "$dir" \
			</dev/null >"$dir/inner.log" 2>&1
		rc=$?
		secs=$((SECONDS - t0))
		seen=()
		while read -r status name reason; do
			[[ -n $name ]] || continue
			seen[$name]=1
			case $status in
			pass) out_pass "$prefix$name" "${secs}s" ;;
			skip) out_skip "$prefix$name" "$reason" ;;
			*)
				out_fail "$prefix$name" "$reason"
				# its part of the log: from its FAILED line to its RESULT line
				sed -n "/FAILED $name: /,/ RESULT /p" "$dir/inner.log" | grep -v ' RESULT ' |
					head -n 100 | sed 's/^/        /'
				;;
			esac
		done <"$dir/results" 2>/dev/null
		for n in $names; do
			[[ -n ${seen[$n]:-} ]] && continue
			if ((rc == 0 && ${#seen[@]} > 0)); then
				out_fail "$prefix$n" "not reached: an earlier step of scenario $id failed"
				continue
			fi
			if ((rc == 124 || rc == 137)); then reason="timed out after ${tmo}s"
			else reason="scenario ended (exit $rc) without a result"; fi
			out_fail "$prefix$n" "$reason"
			tail -n 40 "$dir/inner.log" | sed 's/^/        /'
		done
	done
}

selected() {
	[[ -z ${ONLY:-} ]] && return 0
	[[ $1 =~ $ONLY ]] && return 0
	local n
	for n in $2; do [[ $n =~ $ONLY ]] && return 0; done
	return 1
}

# Skip a whole pass: one line, every result counted.
skip_pass() {
	local prefix=$1 reason=$2 entry n count=0
	for entry in "${SCENARIOS[@]}"; do
		selected "${entry%%|*}" "${entry#*|}" || continue
		for n in ${entry#*|}; do count=$((count + 1)); done
	done
	((count)) || return 0
	NSKIP=$((NSKIP + count))
	printf 'SKIP  %s* (%d tests): %s\n' "$prefix" "$count" "$reason"
}

outer_main() {
	local asan=${CKPT_TEST_ASAN:-1} tmpbase why
	ONLY=${CKPT_TEST_ONLY:-}
	while (($#)); do
		case $1 in
		--no-asan) asan=0 ;;
		--only) ONLY=$2; shift ;;
		--list)
			for e in "${SCENARIOS[@]}"; do echo "${e%%|*}: ${e#*|}"; done
			exit 0
			;;
		-h | --help)
			awk 'NR >= 3 && /^# The scenario functions/ { exit } NR >= 3' "$SELF" | sed 's/^# \{0,1\}//'
			exit 0
			;;
		*) echo "run-tests.sh: unknown argument $1" >&2; exit 2 ;;
		esac
		shift
	done

	cd "$ROOT" || exit 2
	BUILD=${BUILD:-$ROOT/build}
	ASAN_BUILD=${ASAN_BUILD:-$ROOT/build-asan}
	if [[ -n ${CKPT_TEST_TMP:-} ]]; then
		tmpbase=$CKPT_TEST_TMP
	elif [[ -w /dev/shm ]] && (($(df -Pk /dev/shm | awk 'NR==2 {print $4}') > 3 * 1024 * 1024)); then
		tmpbase=/dev/shm
	else
		tmpbase=${TMPDIR:-/tmp}
	fi
	WORK=$(mktemp -d "$tmpbase/ckpt-tests.XXXXXX") || exit 2
	trap 'echo "interrupted"; rm -rf "$WORK"; exit 130' INT TERM

	echo "== build ($BUILD)"
	if [[ ${CKPT_TEST_NO_BUILD:-0} == 1 ]]; then
		echo "(not building: CKPT_TEST_NO_BUILD=1)"
	elif ! build "$BUILD"; then
		out_fail build "meson/ninja failed in $BUILD"
		finish
	fi

	echo "== unit tests"
	run_unit_tests

	NSRUN=$BUILD/tests/nsrun
	WL=$BUILD/tests/workloads
	UBSAN_OPTS=""
	ASAN_OPTS=""

	echo "== integration tests"
	why=""
	if (($(id -u) != 0)); then
		why="needs root (pid/mount namespaces, ptrace)"
	elif [[ ! -x $NSRUN ]]; then
		why="$NSRUN is not built"
	elif ! "$NSRUN" true >/dev/null 2>&1; then
		why="cannot create pid+mount namespaces here: $("$NSRUN" true 2>&1 | head -n 1)"
	fi
	if [[ -n $why ]]; then
		skip_pass "" "$why"
		skip_pass "asan:" "$why"
		finish
	fi
	CKPT=${CKPT_TEST_CKPT:-$BUILD/core/ckpt}
	TESTPLUG=$BUILD/tests/plugins
	run_pass ""

	echo "== integration tests with ASan+UBSan ($ASAN_BUILD)"
	if [[ $asan == 0 ]]; then
		skip_pass "asan:" "ASan pass disabled (CKPT_TEST_ASAN=0 / --no-asan)"
		finish
	fi
	if [[ ${CKPT_TEST_NO_BUILD:-0} != 1 ]] &&
		! build "$ASAN_BUILD" -Db_sanitize=address,undefined -Db_lundef=false; then
		out_fail asan:build "meson/ninja failed in $ASAN_BUILD"
		skip_pass "asan:" "the ASan build failed"
		finish
	fi
	CKPT=$ASAN_BUILD/core/ckpt
	TESTPLUG=$ASAN_BUILD/tests/plugins
	ASAN_OPTS="detect_leaks=1:halt_on_error=1:abort_on_error=0:exitcode=86:print_summary=1"
	UBSAN_OPTS="halt_on_error=1:print_stacktrace=1:exitcode=87"
	run_pass "asan:"
	finish
}

# Scenario files of the plugins and of later core features: each appends
# to SCENARIOS and defines its sc_* functions with the helpers above.
for f in "$ROOT"/tests/scenarios/*.sh; do
	[[ -f $f ]] && source "$f"
done
unset f

if [[ ${1:-} == --inner ]]; then
	shift
	inner_main "$@"
	exit 0
fi
outer_main "$@"
