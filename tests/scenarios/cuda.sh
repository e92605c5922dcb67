# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=bash
#
# Scenarios of the cuda plugin without a GPU, sourced by tests/run-tests.sh
# at global scope (they use its helpers: start_wl, dump, restore, ck, fail,
# report, ...).  They prove the plugin's sequencing only: ckpt runs with
# --plugin-opt cuda.library=.../libcuda-fake.so, a fake driver that keeps a
# per-process CUDA state in files and logs every call, and the workload
# tests/cuda/cuda_app (a root and one child) marks its processes as CUDA
# processes for it (see tests/cuda/fake_libcuda.c).  The real thing is
# tests/gpu/run.sh.

SCENARIOS+=(
	"cuda_cycle|cuda-dump-restore cuda-fail-restore-without-plugin cuda-fail-restore-no-libcuda"
	"cuda_leave_running|cuda-dump-leave-running"
	"cuda_lock_timeout|cuda-fail-lock-timeout"
	"cuda_checkpoint_fail|cuda-fail-checkpoint"
	"cuda_restore_fail|cuda-fail-restore"
	"cuda_no_cuda|cuda-no-cuda-process"
)

# cuda_prep NAMES...: set up the fake driver for this scenario; reports skip
# for every name and fails when the test programs are not built.
cuda_prep() {
	local n
	# the workload comes from the first build (like every workload), the fake
	# from the build of the ckpt under test (the ASan pass loads an ASan one)
	CUDA_BIN=${WL%/workloads}/cuda
	CUDA_FAKE=${TESTPLUG%/plugins}/cuda/libcuda-fake.so
	if [[ ! -x $CUDA_BIN/cuda_app || ! -f $CUDA_FAKE ]]; then
		for n in "$@"; do report skip "$n" "$CUDA_BIN/cuda_app or $CUDA_FAKE is not built"; done
		return 1
	fi
	export CKPT_FAKE_CUDA_DIR=$T/cuda-state CKPT_FAKE_CUDA_LOG=$T/cuda-calls.log
	unset CKPT_FAKE_CUDA_FAIL CKPT_FAKE_CUDA_NOMARK
	mkdir -p "$CKPT_FAKE_CUDA_DIR"
	: >"$CKPT_FAKE_CUDA_LOG"
	CUDA_OPT=(--plugin-opt "cuda.library=$CUDA_FAKE")
	# every other plugin as usual, cuda disabled
	printf '[plugin.cuda]\nenabled = false\n' >"$T/nocuda.conf"
	KID=
}

# cuda_start [NCHILD]: start cuda_app; sets PID and KID (its one child).
cuda_start() {
	local f
	WL=$CUDA_BIN start_wl cuda_app "$@" || return 1
	KID=
	[[ ${CKPT_FAKE_CUDA_NOMARK:-0} == 1 ]] && KID=$(cuda_children "$PID")
	for f in "$CKPT_FAKE_CUDA_DIR"/*; do
		[[ -f $f ]] || continue
		f=${f##*/}
		[[ $f == "$PID" || $f == *.* ]] || KID=$f
	done
	return 0
}

cuda_children() {
	local c
	c=$(cat /proc/"$1"/task/*/children 2>/dev/null)
	echo "${c%% *}"
}

# The state-changing calls in the fake's log, in order: "lock:PID ...", a
# failed call as "lock:PID!CUDA_ERROR_TIMEOUT"; cuInit as "init".
cuda_seq() {
	awk '$1 == "init" { printf "%sinit", sep; sep = " "; next }
	$1 ~ /^(lock|checkpoint|restore|unlock)$/ {
		r = ""
		for (i = 3; i < NF; i++) if ($i == "->") r = $(i + 1)
		printf "%s%s:%s%s", sep, $1, $2, (r == "CUDA_SUCCESS" ? "" : "!" r)
		sep = " "
	}' "$CKPT_FAKE_CUDA_LOG"
}

# "PID=STATE ..." of every marked process
cuda_states() {
	local f out=""
	for f in "$CKPT_FAKE_CUDA_DIR"/*; do
		[[ -f $f && ${f##*/} != *.* ]] || continue
		out+="${f##*/}=$(tr -d '[:space:]' <"$f") "
	done
	echo "${out% }"
}

# cuda_all_states STATE: every marked process is in STATE (0 running ...)
cuda_all_states() {
	local s
	for s in $(cuda_states); do
		[[ ${s#*=} == "$1" ]] || return 1
	done
	return 0
}

cuda_show_log() {
	echo "---- fake libcuda calls ----"
	cat "$CKPT_FAKE_CUDA_LOG" 2>/dev/null
	echo "---- states: $(cuda_states)"
}

# cuda_fail NAME REASON: fail with the fake's log printed first.
cuda_fail() {
	cuda_show_log
	fail "$1" "$2"
}

# (1) dump + restore of a root and a child; (6) before the real restore, a
# restore without the cuda plugin must be refused, and one where libcuda
# cannot be loaded.
sc_cuda_cycle() {
	local name=cuda-dump-restore nop=cuda-fail-restore-without-plugin nolib=cuda-fail-restore-no-libcuda
	local D=$T/img msg want seq
	cuda_prep $name $nop $nolib || return
	cuda_start 1 || { fail $name "workload did not get ready"; return; }
	[[ -n $KID ]] || { cuda_fail $name "the workload's child made no marker"; return; }
	sleep 0.3
	dump "$PID" "$D" "${CUDA_OPT[@]}"
	((CK_RC == 0)) || { cuda_fail $name "dump $CK_WHY: $(stderr_line dump)"; return; }
	wait_until 10 gone "$PID" || { cuda_fail $name "pid $PID still runs after the dump"; return; }
	wait_until 10 gone "$KID" || { cuda_fail $name "child $KID still runs after the dump"; return; }
	want="lock:$PID lock:$KID checkpoint:$PID checkpoint:$KID"
	seq=$(cuda_seq)
	[[ $seq == "$want" ]] || { cuda_fail $name "calls after the dump: '$seq', want '$want'"; return; }
	cuda_all_states 2 || { cuda_fail $name "states after the dump: $(cuda_states), want all 2 (checkpointed)"; return; }
	[[ -s $D/cuda.img ]] || { cuda_fail $name "the dump wrote no cuda.img"; return; }

	# (6) the images need the cuda plugin
	ck restore-noplugin restore -D "$D" -d -v4 -o restore-noplugin.log --config "$T/nocuda.conf"
	if ((CK_RC != 1)); then
		cuda_fail $nop "restore with cuda disabled $CK_WHY, want 1"
	elif ! one_line restore-noplugin; then
		cuda_fail $nop "stderr is not one line"
	elif ! grep -qi 'cuda' "$T/restore-noplugin.stderr"; then
		cuda_fail $nop "the error does not name the cuda plugin: $(stderr_line restore-noplugin)"
	elif ! wait_until 5 no_others; then
		cuda_fail $nop "processes left running: $(others)"
	elif [[ $(cuda_seq) != "$want" ]]; then
		cuda_fail $nop "the refused restore called the driver: '$(cuda_seq)'"
	else
		report pass $nop
	fi

	ck restore-nolib restore -D "$D" -d -v4 -o restore-nolib.log --plugin-opt cuda.library=/nonexistent/libcuda.so.1
	if ((CK_RC != 1)); then
		cuda_fail $nolib "restore with a missing libcuda $CK_WHY, want 1"
	elif ! one_line restore-nolib; then
		cuda_fail $nolib "stderr is not one line"
	elif ! grep -q 'plugin:cuda: .*CUDA process.*nonexistent' "$T/restore-nolib.stderr"; then
		cuda_fail $nolib "the error does not say why: $(stderr_line restore-nolib)"
	elif ! wait_until 5 no_others; then
		cuda_fail $nolib "processes left running: $(others)"
	else
		report pass $nolib
	fi

	restore "$D" "${CUDA_OPT[@]}"
	((CK_RC == 0)) || { cuda_fail $name "restore $CK_WHY: $(stderr_line restore)"; return; }
	alive "$PID" || { cuda_fail $name "pid $PID is not running after restore -d"; return; }
	alive "$KID" || { cuda_fail $name "child $KID is not running after restore -d"; return; }
	msg=$(check_pidfile "$PID") || { cuda_fail $name "$msg"; return; }
	want+=" init restore:$PID restore:$KID unlock:$PID unlock:$KID"
	seq=$(cuda_seq)
	[[ $seq == "$want" ]] || { cuda_fail $name "calls after the restore: '$seq', want '$want'"; return; }
	cuda_all_states 0 || { cuda_fail $name "states after the restore: $(cuda_states), want all 0 (running)"; return; }
	signal_wait "$PID" 60 || { cuda_fail $name "no result after SIGUSR1: $(describe "$PID")"; return; }
	result_is_pass || { cuda_fail $name "workload: $(result_text)"; return; }
	wait_until 10 gone "$PID" || { fail $name "pid $PID still runs after reporting"; return; }
	wait_until 5 no_others || { fail $name "processes left running: $(others)"; return; }
	report pass $name
}

# (2) dump -R: checkpointed before the dump, restored and unlocked after the
# tree was released.
sc_cuda_leave_running() {
	local name=cuda-dump-leave-running D=$T/img want seq
	cuda_prep $name || return
	cuda_start 1 || { fail $name "workload did not get ready"; return; }
	sleep 0.3
	dump "$PID" "$D" -R "${CUDA_OPT[@]}"
	((CK_RC == 0)) || { cuda_fail $name "dump -R $CK_WHY: $(stderr_line dump)"; return; }
	sleep 0.2
	alive "$PID" || { cuda_fail $name "pid $PID is gone after dump -R"; return; }
	[[ $(tracer_of "$PID") == 0 ]] || { cuda_fail $name "pid $PID is still traced after dump -R"; return; }
	alive "$KID" || { cuda_fail $name "child $KID is gone after dump -R"; return; }
	want="lock:$PID lock:$KID checkpoint:$PID checkpoint:$KID init restore:$PID restore:$KID unlock:$PID unlock:$KID"
	seq=$(cuda_seq)
	[[ $seq == "$want" ]] || { cuda_fail $name "calls: '$seq', want '$want'"; return; }
	cuda_all_states 0 || { cuda_fail $name "states after dump -R: $(cuda_states), want all 0"; return; }
	[[ -s $D/cuda.img ]] || { cuda_fail $name "dump -R wrote no cuda.img"; return; }
	grep -q ' (target stopped)' "$CKPT_FAKE_CUDA_LOG" && { cuda_fail $name "a call was made while the tree was stopped"; return; }
	signal_wait "$PID" 30 || { cuda_fail $name "no result after SIGUSR1: $(describe "$PID")"; return; }
	result_is_pass || { cuda_fail $name "workload after dump -R: $(result_text)"; return; }
	wait_until 10 gone "$PID" || { fail $name "pid $PID still runs after reporting"; return; }
	wait_until 5 no_others || { fail $name "processes left running: $(others)"; return; }
	report pass $name
}

# cuda_dump_fail NAME FAILSPEC REGEX WANT_SEQ: the dump with
# CKPT_FAKE_CUDA_FAIL=FAILSPEC must exit 1 with one line on stderr that
# matches REGEX and names the child (the one whose call fails), make exactly
# the calls WANT_SEQ (@P@ and @K@ stand for the pids), leave every process
# running and unlocked; the workload then PASSes.
cuda_dump_fail() {
	local name=$1 spec=$2 re=$3 want=$4 seq st
	cuda_prep "$name" || return
	cuda_start 1 || { fail "$name" "workload did not get ready"; return; }
	[[ -n $KID ]] || { cuda_fail "$name" "the workload's child made no marker"; return; }
	export CKPT_FAKE_CUDA_FAIL=$spec
	dump "$PID" "$T/img" "${CUDA_OPT[@]}"
	unset CKPT_FAKE_CUDA_FAIL
	want=${want//@P@/$PID}
	want=${want//@K@/$KID}
	((CK_RC == 1)) || { cuda_fail "$name" "dump $CK_WHY, want 1"; return; }
	one_line dump || { cuda_fail "$name" "stderr is not one line"; return; }
	grep -qiE "$re" "$T/dump.stderr" || { cuda_fail "$name" "the error does not match /$re/: $(stderr_line dump)"; return; }
	grep -qw "$KID" "$T/dump.stderr" || { cuda_fail "$name" "the error does not name pid $KID: $(stderr_line dump)"; return; }
	seq=$(cuda_seq)
	[[ $seq == "$want" ]] || { cuda_fail "$name" "calls: '$seq', want '$want'"; return; }
	cuda_all_states 0 || { cuda_fail "$name" "left locked: $(cuda_states), want all 0 (running)"; return; }
	[[ -e $T/img/inventory.img ]] && { cuda_fail "$name" "the failed dump left an inventory.img"; return; }
	sleep 0.2
	alive "$PID" || { cuda_fail "$name" "the workload died"; return; }
	alive "$KID" || { cuda_fail "$name" "the workload's child died"; return; }
	st=$(state "$PID")
	[[ $st == [RS] ]] || { cuda_fail "$name" "the workload is left in state $st"; return; }
	[[ $(tracer_of "$PID") == 0 ]] || { cuda_fail "$name" "the workload is still traced: $(traced_by "$PID")"; return; }
	signal_wait "$PID" 30 || { cuda_fail "$name" "no result after SIGUSR1: $(describe "$PID")"; return; }
	result_is_pass || { cuda_fail "$name" "workload after the failed dump: $(result_text)"; return; }
	wait_until 10 gone "$PID" || { fail "$name" "pid $PID still runs after reporting"; return; }
	wait_until 5 no_others || { fail "$name" "processes left running: $(others)"; return; }
	report pass "$name"
}

# (3) the child's lock times out: the root, locked already, is unlocked.
sc_cuda_lock_timeout() {
	cuda_dump_fail cuda-fail-lock-timeout 'lock#2' 'lock.*(time|10000)' \
		"lock:@P@ lock:@K@!CUDA_ERROR_TIMEOUT unlock:@P@"
}

# (4) the child's checkpoint fails: the root, checkpointed already, is
# restored and unlocked, the child unlocked.
sc_cuda_checkpoint_fail() {
	cuda_dump_fail cuda-fail-checkpoint 'checkpoint#2' 'checkpoint' \
		"lock:@P@ lock:@K@ checkpoint:@P@ checkpoint:@K@!CUDA_ERROR_OPERATING_SYSTEM init restore:@P@ unlock:@P@ unlock:@K@"
}

# The driver cannot restore the root's GPU state after the restore: one
# error line naming it; the child is still restored and unlocked.
sc_cuda_restore_fail() {
	local name=cuda-fail-restore D=$T/img want seq
	cuda_prep $name || return
	cuda_start 1 || { fail $name "workload did not get ready"; return; }
	dump "$PID" "$D" "${CUDA_OPT[@]}"
	((CK_RC == 0)) || { cuda_fail $name "dump $CK_WHY: $(stderr_line dump)"; return; }
	wait_until 10 gone "$PID" || { cuda_fail $name "pid $PID still runs after the dump"; return; }
	export CKPT_FAKE_CUDA_FAIL='restore#1'
	restore "$D" "${CUDA_OPT[@]}"
	unset CKPT_FAKE_CUDA_FAIL
	# the core does not fail a restore for what restore_finish reports (the
	# tree runs by then): 0 or 1, but one line naming the pid
	((CK_RC == 0 || CK_RC == 1)) || { cuda_fail $name "restore $CK_WHY, want 0 or 1"; return; }
	one_line restore || { cuda_fail $name "stderr is not one line"; return; }
	grep -qw "$PID" "$T/restore.stderr" && grep -qi 'restore' "$T/restore.stderr" ||
		{ cuda_fail $name "the error does not name pid $PID and the restore: $(stderr_line restore)"; return; }
	want="lock:$PID lock:$KID checkpoint:$PID checkpoint:$KID init restore:$PID!CUDA_ERROR_OUT_OF_MEMORY restore:$KID unlock:$KID"
	seq=$(cuda_seq)
	[[ $seq == "$want" ]] || { cuda_fail $name "calls: '$seq', want '$want'"; return; }
	[[ $(tr -d '[:space:]' <"$CKPT_FAKE_CUDA_DIR/$KID") == 0 ]] || { cuda_fail $name "the child is not running: $(cuda_states)"; return; }
	kill -9 "$PID" 2>/dev/null
	wait_until 10 gone "$PID" || { fail $name "pid $PID survived SIGKILL"; return; }
	wait_until 5 no_others || { fail $name "processes left running: $(others)"; return; }
	report pass $name
}

# (5) a tree without CUDA: GetState only, no cuda.img, and the images then
# restore without the cuda plugin.
sc_cuda_no_cuda() {
	local name=cuda-no-cuda-process D=$T/img msg other
	cuda_prep $name || return
	export CKPT_FAKE_CUDA_NOMARK=1
	cuda_start 1 || { fail $name "workload did not get ready"; return; }
	unset CKPT_FAKE_CUDA_NOMARK
	[[ -n $KID ]] || { fail $name "the workload has no child"; return; }
	sleep 0.3
	dump "$PID" "$D" "${CUDA_OPT[@]}"
	((CK_RC == 0)) || { cuda_fail $name "dump $CK_WHY: $(stderr_line dump)"; return; }
	wait_until 10 gone "$PID" || { cuda_fail $name "pid $PID still runs after the dump"; return; }
	other=$(grep -v '^getstate ' "$CKPT_FAKE_CUDA_LOG")
	[[ -z $other ]] || { cuda_fail $name "calls besides GetState: $other"; return; }
	grep -q "^getstate $PID " "$CKPT_FAKE_CUDA_LOG" && grep -q "^getstate $KID " "$CKPT_FAKE_CUDA_LOG" ||
		{ cuda_fail $name "GetState was not asked for pids $PID and $KID"; return; }
	[[ -e $D/cuda.img ]] && { cuda_fail $name "the dump wrote a cuda.img"; return; }
	restore "$D" --config "$T/nocuda.conf"
	((CK_RC == 0)) || { cuda_fail $name "restore without the cuda plugin $CK_WHY: $(stderr_line restore)"; return; }
	alive "$PID" || { fail $name "pid $PID is not running after restore -d"; return; }
	msg=$(check_pidfile "$PID") || { fail $name "$msg"; return; }
	signal_wait "$PID" 60 || { fail $name "no result after SIGUSR1: $(describe "$PID")"; return; }
	result_is_pass || { fail $name "workload: $(result_text)"; return; }
	wait_until 10 gone "$PID" || { fail $name "pid $PID still runs after reporting"; return; }
	wait_until 5 no_others || { fail $name "processes left running: $(others)"; return; }
	report pass $name
}
