# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=bash
#
# Scenarios of the shstk plugin (x86 user shadow stacks), sourced by
# tests/run-tests.sh at global scope (they use its helpers: start_wl, dump,
# restore, ck, fail, report, ...).
#
#   shstk-enabled-process   a workload started with glibc's shadow stacks on
#                           (GLIBC_TUNABLES=glibc.cpu.x86_shstk=on) is dumped
#                           and restored; skipped without a shadow-stack CPU
#                           and kernel (what `ckpt check` says of the plugin)
#   shstk-plain-workload    a workload without shadow stacks, dumped and
#                           restored with the plugin loaded explicitly
#                           (--plugins=fs,net,shstk): it must change nothing

SCENARIOS+=(
	"shstk_enabled|shstk-enabled-process"
	"shstk_plain|shstk-plain-workload"
)

# shstk_cycle NAME WORKLOAD [CKPT ARGS...]: cycle ... sig with extra ckpt
# arguments for dump and restore.
shstk_cycle() {
	local name=$1 w=$2 D=$T/img msg
	shift 2
	start_wl "$w" || { fail "$name" "workload did not get ready"; return 1; }
	sleep 0.3
	dump "$PID" "$D" "$@"
	((CK_RC == 0)) || { fail "$name" "dump $CK_WHY: $(stderr_line dump)"; return 1; }
	wait_until 10 gone "$PID" || { fail "$name" "pid $PID still runs after the dump"; return 1; }
	[[ -s $T/result ]] && { fail "$name" "the workload reported before the restore: $(result_text)"; return 1; }
	restore "$D" "$@"
	((CK_RC == 0)) || { fail "$name" "restore $CK_WHY: $(stderr_line restore)"; return 1; }
	alive "$PID" || { fail "$name" "pid $PID is not running after restore -d"; return 1; }
	msg=$(check_pidfile "$PID") || { fail "$name" "$msg"; return 1; }
	signal_wait "$PID" 60 || { fail "$name" "no result after SIGUSR1: $(describe "$PID")"; return 1; }
	result_is_pass || { fail "$name" "workload: $(result_text)"; return 1; }
	wait_until 10 gone "$PID" || { fail "$name" "pid $PID still runs after reporting"; return 1; }
	wait_until 5 no_others || { fail "$name" "processes left running: $(others)"; return 1; }
	return 0
}

sc_shstk_enabled() {
	local name=shstk-enabled-process
	ck check check --plugins=shstk
	if ! grep -qE '^plugin shstk +ok' "$T/check.stdout"; then
		if grep -q 'no shadow-stack CPU' "$T/check.stdout"; then
			report skip "$name" "no shadow-stack CPU"
		else
			report skip "$name" "$(grep -m1 '^plugin shstk' "$T/check.stdout" | sed 's/^plugin shstk *n\/a *//')"
		fi
		return
	fi
	# glibc enables shadow stacks for a CET-marked binary when asked to
	export GLIBC_TUNABLES=glibc.cpu.x86_shstk=on
	shstk_cycle "$name" counter --plugins=fs,net,shstk || return
	if [[ ! -s $T/img/shstk-thread.img ]]; then
		report skip "$name" "the workload ran without a shadow stack (binary not CET-marked or glibc too old)"
		return
	fi
	report pass "$name"
}

sc_shstk_plain() {
	local name=shstk-plain-workload
	shstk_cycle "$name" counter --plugins=fs,net,shstk || return
	if [[ -e $T/img/shstk-vma.img || -e $T/img/shstk-thread.img ]]; then
		fail "$name" "the plugin wrote images for a tree without shadow stacks"
		return
	fi
	grep -q 'loaded shstk' "$T/img/dump.log" 2>/dev/null ||
		log "note: dump.log does not mention the shstk plugin being loaded"
	report pass "$name"
}
