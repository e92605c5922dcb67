# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=bash
#
# Scenarios of the net plugin, sourced by tests/run-tests.sh at global scope
# (they use its helpers: start_wl, dump, restore, ck, fail, report, ...).
# Workloads live in tests/workloads/net/; they use 127.0.0.1 only, with
# ports from bind(0).

SCENARIOS+=(
	"net_unix_pair|net-unix-pair"
	"net_unix_dgram|net-unix-dgram"
	"net_unix_listen|net-unix-listen"
	"net_tcp_pair|net-tcp-pair"
	"net_tcp_listen|net-tcp-listen"
	"net_udp|net-udp"
	"net_tcp_leave_running|net-tcp-leave-running"
	"net_unix_leave_running|net-unix-pair-leave-running net-unix-dgram-leave-running"
	"net_unix_ext|net-unix-ext-unix-sk"
	"net_fail_tcp_noest|net-fail-tcp-no-established"
	"net_tcp_restore_flag|net-fail-tcp-restore-no-established net-tcp-restore-after-refusal"
	"net_fail_unix_inflight|net-fail-unix-inflight"
	"net_fail_unix_external|net-fail-unix-external"
)

# net_cycle NAME "WORKLOAD [ARGS]" [CKPT ARGS...]: like cycle ... sig, with
# extra arguments for both dump and restore; `ckpt show` must decode the
# images.
net_cycle() {
	local name=$1 D msg
	local -a wl
	read -ra wl <<<"$2"
	shift 2
	D=$T/img
	start_wl "${wl[@]}" || { fail "$name" "workload did not get ready"; return; }
	sleep 0.3
	dump "$PID" "$D" "$@"
	((CK_RC == 0)) || { fail "$name" "dump exited $CK_RC: $(stderr_line dump)"; return; }
	wait_until 10 gone "$PID" || { fail "$name" "pid $PID still runs after the dump"; return; }
	[[ -s $T/result ]] && { fail "$name" "the workload reported before the restore: $(result_text)"; return; }
	ck show show "$D"
	((CK_RC == 0)) || { fail "$name" "show exited $CK_RC: $(stderr_line show)"; return; }
	grep -q 'ckpt\.net\.' "$T/show.stdout" || { fail "$name" "show does not decode the net images"; return; }
	restore "$D" "$@"
	((CK_RC == 0)) || { fail "$name" "restore exited $CK_RC: $(stderr_line restore)"; return; }
	alive "$PID" || { fail "$name" "pid $PID is not running after restore -d"; return; }
	msg=$(check_pidfile "$PID") || { fail "$name" "$msg"; return; }
	signal_wait "$PID" 60 || { fail "$name" "no result after SIGUSR1: $(describe "$PID")"; return; }
	result_is_pass || { fail "$name" "workload: $(result_text)"; return; }
	wait_until 10 gone "$PID" || { fail "$name" "pid $PID still runs after reporting"; return; }
	wait_until 5 no_others || { fail "$name" "processes left running: $(others)"; return; }
	report pass "$name"
}

sc_net_unix_pair() { net_cycle net-unix-pair net/unix_pair; }
sc_net_unix_dgram() { net_cycle net-unix-dgram net/unix_dgram; }
sc_net_unix_listen() { net_cycle net-unix-listen net/unix_listen; }
sc_net_tcp_pair() { net_cycle net-tcp-pair net/tcp_pair --tcp-established; }
sc_net_tcp_listen() { net_cycle net-tcp-listen net/tcp_listen; }
sc_net_udp() { net_cycle net-udp net/udp; }

# net_leave_running NAME WORKLOAD [CKPT ARGS...]: dump -R; the original must
# run on with its sockets untouched (queues only peeked, repair mode off
# again) and PASS.
net_leave_running() {
	local name=$1 w=$2 st
	shift 2
	rm -rf "$T/img"
	start_wl "$w" || { fail "$name" "workload did not get ready"; return; }
	dump "$PID" "$T/img" -R "$@"
	((CK_RC == 0)) || { fail "$name" "dump -R exited $CK_RC: $(stderr_line dump)"; return; }
	sleep 0.2
	alive "$PID" || { fail "$name" "pid $PID is gone after dump -R"; return; }
	st=$(state "$PID")
	[[ $st == [RS] && $(tracer_of "$PID") == 0 ]] ||
		{ fail "$name" "pid $PID left in state $st, tracer $(tracer_of "$PID")"; return; }
	signal_wait "$PID" 60 || { fail "$name" "no result after SIGUSR1: $(describe "$PID")"; return; }
	result_is_pass || { fail "$name" "workload after dump -R: $(result_text)"; return; }
	wait_until 10 gone "$PID" || { fail "$name" "pid $PID still runs after reporting"; return; }
	wait_until 5 no_others || { fail "$name" "processes left running: $(others)"; return; }
	report pass "$name"
}

sc_net_tcp_leave_running() { net_leave_running net-tcp-leave-running net/tcp_pair --tcp-established; }
sc_net_unix_leave_running() {
	net_leave_running net-unix-pair-leave-running net/unix_pair
	net_leave_running net-unix-dgram-leave-running net/unix_dgram
}

# --ext-unix-sk: a connection to a server outside the dump is made again.
sc_net_unix_ext() { net_cycle net-unix-ext-unix-sk "net/unix_pair ext_server" --ext-unix-sk; }

# Refusals: dump exits 1 with one line, the workload runs on untouched.
sc_net_fail_tcp_noest() {
	expect_dump_fail net-fail-tcp-no-established 'tcp-established' net/tcp_pair
}
# Images with established connections restore only with --tcp-established;
# the refused restore leaves nothing behind, and the next one works.
sc_net_tcp_restore_flag() {
	local D=$T/img msg name=net-tcp-restore-after-refusal
	start_wl net/tcp_pair || { fail "$name" "workload did not get ready"; return; }
	sleep 0.3
	dump "$PID" "$D" --tcp-established
	((CK_RC == 0)) || { fail "$name" "dump exited $CK_RC: $(stderr_line dump)"; return; }
	wait_until 10 gone "$PID" || { fail "$name" "pid $PID still runs after the dump"; return; }
	expect_restore_fail net-fail-tcp-restore-no-established "$D" 'tcp-established'
	restore "$D" --tcp-established
	((CK_RC == 0)) || { fail "$name" "restore exited $CK_RC: $(stderr_line restore)"; return; }
	msg=$(check_pidfile "$PID") || { fail "$name" "$msg"; return; }
	signal_wait "$PID" 60 || { fail "$name" "no result after SIGUSR1: $(describe "$PID")"; return; }
	result_is_pass || { fail "$name" "workload: $(result_text)"; return; }
	wait_until 10 gone "$PID" || { fail "$name" "pid $PID still runs after reporting"; return; }
	wait_until 5 no_others || { fail "$name" "processes left running: $(others)"; return; }
	report pass "$name"
}

sc_net_fail_unix_inflight() {
	expect_dump_fail net-fail-unix-inflight 'SCM_RIGHTS|in flight' net/unix_pair inflight
}
sc_net_fail_unix_external() {
	expect_dump_fail net-fail-unix-external 'ext-unix-sk' net/unix_pair external
}
