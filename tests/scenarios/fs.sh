# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=bash
#
# Scenarios of the fs plugin (pipes, fifos, eventfd, signalfd, timerfd,
# epoll, inotify, memfd).  tests/run-tests.sh sources this file at global
# scope: it appends to SCENARIOS and defines the sc_* functions, which use
# run-tests.sh's helpers (cycle, start_wl, dump, restore, ck, fail, report,
# wait_until, signal_wait, expect_dump_fail ...).  Workloads are in
# tests/workloads/fs/ and build to $WL/fs/NAME.

SCENARIOS+=(
	"fs_pipes|fs-pipes"
	"fs_pipes_leave_running|fs-pipes-leave-running"
	"fs_pipes_tree|fs-pipes-tree"
	"fs_fifo|fs-fifo"
	"fs_eventfd|fs-eventfd"
	"fs_timerfd_periodic|fs-timerfd-periodic"
	"fs_timerfd_abs|fs-timerfd-abs"
	"fs_signalfd|fs-signalfd"
	"fs_epoll|fs-epoll fs-show"
	"fs_inotify|fs-inotify"
	"fs_memfd|fs-memfd"
	"fs_fail_pipe_outside|fail-fs-pipe-outside"
	"fs_fail_epoll_stale|fail-fs-epoll-stale"
)

# start_wl logs a workload's output to $T/WORKLOAD.out: $T/fs/ must exist.
fs_prep() { mkdir -p "$T/fs"; }

sc_fs_pipes() { fs_prep; cycle fs-pipes fs/pipes sig; }
sc_fs_pipes_tree() { fs_prep; cycle fs-pipes-tree fs/pipes_tree sig; }
sc_fs_fifo() { fs_prep; cycle fs-fifo fs/fifo sig; }
sc_fs_eventfd() { fs_prep; cycle fs-eventfd fs/eventfd sig; }
sc_fs_timerfd_periodic() { fs_prep; cycle fs-timerfd-periodic fs/timerfd_periodic sig; }
sc_fs_signalfd() { fs_prep; cycle fs-signalfd fs/signalfd sig; }
sc_fs_inotify() { fs_prep; cycle fs-inotify fs/inotify sig; }
sc_fs_memfd() { fs_prep; cycle fs-memfd fs/memfd sig; }

# fs_cycle_gap NAME WORKLOAD SECONDS: like cycle ... sig, with a pause of
# SECONDS between the dump and the restore (time that a timer restored
# with its time left instead of its absolute expiry would lose).
fs_cycle_gap() {
	local name=$1 w=$2 gap=$3 D=$T/img msg
	fs_prep
	start_wl "$w" || { fail "$name" "workload did not get ready"; return; }
	sleep 0.3
	dump "$PID" "$D"
	((CK_RC == 0)) || { fail "$name" "dump exited $CK_RC: $(stderr_line dump)"; return; }
	wait_until 10 gone "$PID" || { fail "$name" "pid $PID still runs after the dump"; return; }
	sleep "$gap"
	restore "$D"
	((CK_RC == 0)) || { fail "$name" "restore exited $CK_RC: $(stderr_line restore)"; return; }
	alive "$PID" || { fail "$name" "pid $PID is not running after restore -d"; return; }
	msg=$(check_pidfile "$PID") || { fail "$name" "$msg"; return; }
	signal_wait "$PID" 60 || { fail "$name" "no result after SIGUSR1: $(describe "$PID")"; return; }
	result_is_pass || { fail "$name" "workload: $(result_text)"; return; }
	wait_until 10 gone "$PID" || { fail "$name" "pid $PID still runs after reporting"; return; }
	wait_until 5 no_others || { fail "$name" "processes left running: $(others)"; return; }
	report pass "$name"
}

sc_fs_timerfd_abs() { fs_cycle_gap fs-timerfd-abs fs/timerfd_abs 1.5; }

# dump -R must leave the queued pipe bytes in place (they are peeked with
# tee, not read): the original must find every byte.  Then the images
# restore and the copy must find them too (skip_file_check: the original
# has written its result to the log file the images hold open).
sc_fs_pipes_leave_running() {
	local name=fs-pipes-leave-running D=$T/img msg
	fs_prep
	start_wl fs/pipes || { fail $name "workload did not get ready"; return; }
	dump "$PID" "$D" -R
	((CK_RC == 0)) || { fail $name "dump -R exited $CK_RC: $(stderr_line dump)"; return; }
	sleep 0.2
	alive "$PID" || { fail $name "pid $PID is gone after dump -R"; return; }
	[[ $(tracer_of "$PID") == 0 ]] || { fail $name "pid $PID is still traced after dump -R"; return; }
	signal_wait "$PID" 30 || { fail $name "the original gave no result: $(describe "$PID")"; return; }
	result_is_pass || { fail $name "the original after dump -R: $(result_text)"; return; }
	wait_until 10 gone "$PID" || { fail $name "the original still runs after reporting"; return; }
	rm -f "$T/result"
	restore "$D" --plugin-opt fs.skip_file_check=true
	((CK_RC == 0)) || { fail $name "restore exited $CK_RC: $(stderr_line restore)"; return; }
	alive "$PID" || { fail $name "pid $PID is not running after restore -d"; return; }
	msg=$(check_pidfile "$PID") || { fail $name "$msg"; return; }
	signal_wait "$PID" 30 || { fail $name "the copy gave no result: $(describe "$PID")"; return; }
	result_is_pass || { fail $name "the copy: $(result_text)"; return; }
	wait_until 10 gone "$PID" || { fail $name "the copy still runs after reporting"; return; }
	wait_until 5 no_others || { fail $name "processes left running: $(others)"; return; }
	report pass $name
}

# The epoll cycle, and `ckpt show` decoding the fs images of that dump.
sc_fs_epoll() {
	local D=$T/img
	fs_prep
	cycle fs-epoll fs/epoll sig
	if [[ ! -d $D ]]; then
		fail fs-show "no images to show"
		return
	fi
	ck show show "$D"
	if ((CK_RC != 0)); then
		fail fs-show "show exited $CK_RC: $(stderr_line show)"
	elif ! grep -q 'ckpt.fs.Epoll' "$T/show.stdout" || ! grep -q 'tfd' "$T/show.stdout" ||
		! grep -q 'ckpt.fs.Eventfd' "$T/show.stdout" || ! grep -q 'ckpt.fs.Timerfd' "$T/show.stdout" ||
		! grep -q 'ckpt.fs.Signalfd' "$T/show.stdout" || ! grep -q 'ckpt.fs.Pipe' "$T/show.stdout"; then
		fail fs-show "show does not decode the fs images: $(grep -c . "$T/show.stdout") lines"
	else
		ck show-json show "$D" --json
		if ((CK_RC != 0)) || ! python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$T/show-json.stdout" 2>/dev/null; then
			fail fs-show "show --json exited $CK_RC or printed no JSON"
		else
			report pass fs-show
		fi
	fi
}

sc_fs_fail_pipe_outside() {
	fs_prep
	expect_dump_fail fail-fs-pipe-outside 'pipe.*(outside|not open|other process)' fs/pipe_outside
}

sc_fs_fail_epoll_stale() {
	fs_prep
	expect_dump_fail fail-fs-epoll-stale 'epoll.*fd 30' fs/epoll_stale
}
