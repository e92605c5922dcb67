# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=bash
#
# Scenarios of terminals (fs plugin, class tty): a pty pair owned by the
# dumped task, and --shell-job (the task runs on a terminal held outside the
# tree).  Sourced by tests/run-tests.sh like fs.sh; workloads are in
# tests/workloads/fs/ (tty_pair, tty_job, and tty_shell, the "shell").

SCENARIOS+=(
	"tty_pair|tty-pair tty-show"
	"tty_fg|tty-fg"
	"tty_leave_running|tty-leave-running"
	"tty_shell_job|fail-tty-outside tty-shell-job fail-tty-shell-job-no-terminal fail-tty-restore-needs-shell-job"
)

# The session leader of its own pty: index, settings, I/O, controlling
# terminal; and `ckpt show` decoding the tty records.
sc_tty_pair() {
	local D=$T/img
	mkdir -p "$T/fs"
	cycle tty-pair fs/tty_pair sig
	if [[ ! -d $D ]]; then
		fail tty-show "no images to show"
		return
	fi
	ck show show "$D"
	if ((CK_RC != 0)); then
		fail tty-show "show $CK_WHY: $(stderr_line show)"
	elif ! grep -q 'ckpt.fs.Tty' "$T/show.stdout" || ! grep -q 'winsize' "$T/show.stdout"; then
		fail tty-show "show does not decode fs-ttys.img"
	else
		report pass tty-show
	fi
}

# The same with a child's process group in the foreground of the pty.
sc_tty_fg() {
	mkdir -p "$T/fs"
	cycle tty-fg fs/tty_pair sig fg
}

# dump -R leaves the pty as it was (nothing read out of it): the original
# passes; once it is gone the copy gets the same pty index and passes too.
sc_tty_leave_running() {
	local name=tty-leave-running D=$T/img msg
	mkdir -p "$T/fs"
	start_wl fs/tty_pair || { fail $name "workload did not get ready"; return; }
	dump "$PID" "$D" -R
	((CK_RC == 0)) || { fail $name "dump -R $CK_WHY: $(stderr_line dump)"; return; }
	sleep 0.2
	alive "$PID" || { fail $name "pid $PID is gone after dump -R"; return; }
	[[ $(tracer_of "$PID") == 0 ]] || { fail $name "pid $PID is still traced after dump -R"; return; }
	signal_wait "$PID" 30 || { fail $name "the original gave no result: $(describe "$PID")"; return; }
	result_is_pass || { fail $name "the original after dump -R: $(result_text)"; return; }
	wait_until 10 gone "$PID" || { fail $name "the original still runs after reporting"; return; }
	rm -f "$T/result"
	restore "$D" --plugin-opt fs.skip_file_check=true
	((CK_RC == 0)) || { fail $name "restore $CK_WHY: $(stderr_line restore)"; return; }
	alive "$PID" || { fail $name "pid $PID is not running after restore -d"; return; }
	msg=$(check_pidfile "$PID") || { fail $name "$msg"; return; }
	signal_wait "$PID" 30 || { fail $name "the copy gave no result: $(describe "$PID")"; return; }
	result_is_pass || { fail $name "the copy: $(result_text)"; return; }
	wait_until 10 gone "$PID" || { fail $name "the copy still runs after reporting"; return; }
	wait_until 5 no_others || { fail $name "processes left running: $(others)"; return; }
	report pass $name
}

# ckpt without a controlling terminal (setsid) and no terminal on 0-2,
# else like ck.
tty_ck_noterm() {
	local tag=$1 asan_opts
	shift
	asan_opts=${ASAN_OPTIONS_BASE:-}
	asan_opts=${asan_opts/detect_leaks=1/detect_leaks=0}
	log "setsid ckpt $*"
	ASAN_OPTIONS=$asan_opts timeout -k 5 "$CK_TIMEOUT" setsid -w "$CKPT" "$@" \
		</dev/null >"$T/$tag.stdout" 2>"$T/$tag.stderr"
	CK_RC=$?
	CK_WHY="exited $CK_RC"
	((CK_RC == 124 || CK_RC == 137)) && CK_WHY="timed out after ${CK_TIMEOUT}s"
	log "  -> exit $CK_RC"
	sed 's/^/  stderr: /' "$T/$tag.stderr"
	tty_sanitizer "$T/$tag.stderr"
	return 0
}

tty_sanitizer() {
	if grep -qE 'Sanitizer|runtime error:' "$1"; then
		grep -m1 -E 'ERROR: .*Sanitizer|runtime error:' "$1" >>"$T/sanitizer.txt" ||
			echo "sanitizer output in ${1##*/}" >>"$T/sanitizer.txt"
	fi
}

# A failed restore: exit 1, one stderr line matching REGEX, nothing runs.
tty_restore_failed() {
	local name=$1 tag=$2 re=$3
	if ((CK_RC != 1)); then
		fail "$name" "restore $CK_WHY, want 1"
	elif ! one_line "$tag"; then
		fail "$name" "stderr is not one line: $(tr '\n' '|' <"$T/$tag.stderr" | head -c 300)"
	elif ! grep -qiE "$re" "$T/$tag.stderr"; then
		fail "$name" "the error does not match /$re/: $(stderr_line "$tag")"
	elif alive "$PID"; then
		fail "$name" "pid $PID runs after the failed restore"
	else
		report pass "$name"
	fi
}

tty_shell_alive() { [[ -n ${SHELL_PID:-} ]] && alive "$SHELL_PID"; }

# --shell-job.  tty_shell leads a session on a pty it holds the master of
# and runs tty_job on the slave (fds 0-2), in the foreground.  Without
# --shell-job the dump is refused and the job runs on; with it the dump
# works, the restore is refused without a terminal and without
# --shell-job, and the shell itself restores the job onto its terminal
# (ckpt restore -d in front, which hands the foreground to the job): the
# job's output reaches the shell's master, the shell's typing its stdin.
sc_tty_shell_job() {
	local D=$T/img rc msg
	mkdir -p "$T/fs"
	rm -f "$T/ready" "$T/result"
	mkfifo "$T/shell.ctl" || { fail fail-tty-outside "mkfifo failed"; return; }
	(CKPT_TEST_READY=$T/ready CKPT_TEST_RESULT=$T/result CKPT_TEST_DIR=$T \
		ASAN_OPTIONS=${ASAN_OPTIONS_BASE/detect_leaks=1/detect_leaks=0} \
		exec "$WL/fs/tty_shell" "$T" "$CKPT" "$WL/fs/tty_job" </dev/null >>"$T/fs_tty_shell.out" 2>&1 &)
	if ! wait_until 30 ready_or_result || [[ ! -s $T/ready ]]; then
		fail fail-tty-outside "the job did not get ready ($(result_text)); master.log: $(tr -d '\r' <"$T/master.log" 2>/dev/null | tr '\n' '|' | head -c 300)"
		return
	fi
	PID=$(<"$T/ready")
	SHELL_PID=$(<"$T/shell.pid")
	log "job pid $PID, shell pid $SHELL_PID"

	# 1. refused without --shell-job; the job runs on, untraced
	dump "$PID" "$T/img-noshell"
	if ((CK_RC != 1)); then
		fail fail-tty-outside "dump without --shell-job $CK_WHY, want 1"
	elif ! one_line dump; then
		fail fail-tty-outside "stderr is not one line: $(tr '\n' '|' <"$T/dump.stderr" | head -c 300)"
	elif ! grep -qiE 'terminal.*shell-job' "$T/dump.stderr"; then
		fail fail-tty-outside "the error does not name the terminal and --shell-job: $(stderr_line dump)"
	elif ! { sleep 0.2; alive "$PID"; }; then
		fail fail-tty-outside "the job died"
	elif [[ $(state "$PID") != [RS] || $(tracer_of "$PID") != 0 ]]; then
		fail fail-tty-outside "the job is left in state $(state "$PID"), tracer $(tracer_of "$PID")"
	else
		report pass fail-tty-outside
	fi
	alive "$PID" || return

	# 2. with --shell-job
	dump "$PID" "$D" --shell-job
	((CK_RC == 0)) || { fail tty-shell-job "dump --shell-job $CK_WHY: $(stderr_line dump)"; return; }
	wait_until 10 gone "$PID" || { fail tty-shell-job "pid $PID still runs after the dump"; return; }

	# 3. --shell-job, but ckpt has no terminal at all
	if command -v setsid >/dev/null; then
		tty_ck_noterm restore-noterm restore -D "$D" -d --shell-job -v4 -o restore-noterm.log
		tty_restore_failed fail-tty-shell-job-no-terminal restore-noterm 'no terminal'
	else
		report skip fail-tty-shell-job-no-terminal "no setsid(1) here"
	fi
	# 4. no --shell-job at restore
	ck restore-noshell restore -D "$D" -d -v4 -o restore-noshell.log
	tty_restore_failed fail-tty-restore-needs-shell-job restore-noshell 'shell-job'

	# 5. the shell restores its job
	rm -f "$T/restored.pid" "$T/restore-shell.rc"
	tty_shell_alive || { fail tty-shell-job "the shell (pid ${SHELL_PID:-?}) is gone"; return; }
	echo restore >"$T/shell.ctl"
	wait_until "$CK_TIMEOUT" test -s "$T/restore-shell.rc" ||
		{ fail tty-shell-job "the shell's restore gave no exit status"; return; }
	rc=$(<"$T/restore-shell.rc")
	sed 's/^/  restore stderr: /' "$T/restore-shell.stderr" 2>/dev/null
	tty_sanitizer "$T/restore-shell.stderr"
	[[ $rc == 0 ]] || { fail tty-shell-job "restore --shell-job (run by the shell) exited $rc: $(head -n 1 "$T/restore-shell.stderr")"; return; }
	alive "$PID" || { fail tty-shell-job "pid $PID is not running after the restore"; return; }
	# the job was in front at the dump, ckpt restore ran in front: ckpt
	# handed the terminal to the job's group
	[[ $(<"$T/restore-shell.fg") == "$PID" ]] ||
		{ fail tty-shell-job "ckpt left process group $(<"$T/restore-shell.fg") in the foreground of its terminal, want the job's $PID"; return; }
	msg=$(check_pidfile "$PID") || { fail tty-shell-job "$msg"; return; }
	signal_wait "$PID" 30 || { fail tty-shell-job "no result after SIGUSR1: $(describe "$PID")"; return; }
	result_is_pass || { fail tty-shell-job "the job: $(result_text)"; return; }
	grep -q "job-output-after $PID" "$T/master.log" ||
		{ fail tty-shell-job "the job's output after the restore did not reach the shell's master: $(tr -d '\r' <"$T/master.log" | tr '\n' '|' | tail -c 300)"; return; }
	wait_until 10 gone "$PID" || { fail tty-shell-job "pid $PID still runs after reporting"; return; }
	echo quit >"$T/shell.ctl"
	wait_until 10 gone "$SHELL_PID" || { fail tty-shell-job "the shell does not quit"; return; }
	wait_until 5 no_others || { fail tty-shell-job "processes left running: $(others)"; return; }
	report pass tty-shell-job
}
