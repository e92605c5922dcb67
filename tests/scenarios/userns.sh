# Scenarios of trees in a user namespace of their own (sourced by
# tests/run-tests.sh); the workload is tests/workloads/core/userns.c.

# Inside the user namespace root is uid 100000 out here: it may write its
# result only when the scenario's folder (and the way to it) lets others in.
userns_open_dir() {
	USERNS_MODES="$(stat -c %a "${T%/*}") $(stat -c %a "$T")"
	chmod o+x "${T%/*}" && chmod 1777 "$T"
}
userns_close_dir() {
	local m=($USERNS_MODES)
	chmod "${m[0]}" "${T%/*}"
	chmod "${m[1]}" "$T"
}

# userns_cycle NAME [ARGS]: start, dump, restore (the root is init of its
# own pid namespace, so its outer pid changes: --pidfile), verify.
userns_cycle() {
	local name=$1 D=$T/img np
	shift
	start_wl core/userns "$@" || { fail "$name" "workload did not get ready"; return; }
	dump "$PID" "$D"
	((CK_RC == 0)) || { fail "$name" "dump $CK_WHY: $(stderr_line dump)"; return; }
	wait_until 10 gone "$PID" || { fail "$name" "pid $PID still runs after the dump"; return; }
	restore "$D"
	((CK_RC == 0)) || { fail "$name" "restore $CK_WHY: $(stderr_line restore)"; return; }
	np=$(<"$T/restored.pid")
	alive "$np" || { fail "$name" "restored init $np is not running"; return; }
	PID=$np
	signal_wait "$PID" 30 || { fail "$name" "no result within 30 s of SIGUSR1: $(describe "$PID")"; return; }
	result_is_pass || { fail "$name" "workload: $(result_text)"; return; }
	wait_until 10 gone "$PID" || { fail "$name" "pid $PID still runs after reporting"; return; }
	wait_until 5 no_others || { fail "$name" "processes left running: $(others)"; return; }
	report pass "$name"
}

# uid/gid maps, setgroups allowed, creds and caps inside, uts and pid
# namespaces owned by the user namespace.
SCENARIOS+=("userns_basic|userns-basic")
sc_userns_basic() {
	userns_open_dir
	userns_cycle userns-basic
	userns_close_dir
}

# setgroups "deny" survives (it must be written before gid_map).
SCENARIOS+=("userns_setgroups_deny|userns-setgroups-deny")
sc_userns_setgroups_deny() {
	userns_open_dir
	userns_cycle userns-setgroups-deny deny
	userns_close_dir
}

# A child in a user namespace nested in the root's: refused, the tree runs on.
SCENARIOS+=("userns_mixed|fail-userns-mixed")
sc_userns_mixed() {
	userns_open_dir
	expect_dump_fail fail-userns-mixed 'another user namespace.*one user namespace' core/userns mixed
	userns_close_dir
}

# A user namespace without a pid namespace of its own: the workers could
# not choose PIDs from inside it; refused, the task runs on.
SCENARIOS+=("userns_no_pidns|fail-userns-no-pidns")
sc_userns_no_pidns() { expect_dump_fail fail-userns-no-pidns 'own pid namespace' core/namespaces user; }

# A pid namespace nested below the tree's (inside its user namespace):
# still refused, the tree runs on.
SCENARIOS+=("userns_nested_pidns|fail-userns-nested-pidns")
sc_userns_nested_pidns() {
	userns_open_dir
	expect_dump_fail fail-userns-nested-pidns 'nested pid namespaces are not supported' core/userns nestedpid
	userns_close_dir
}

# setgroups "deny": nobody in the namespace can set groups, so a restore
# run with other supplementary groups than the dumped tree had must fail
# cleanly (nothing left running) and say why.
SCENARIOS+=("userns_deny_groups|fail-userns-deny-groups")
sc_userns_deny_groups() {
	local name=fail-userns-deny-groups D=$T/img real=$CKPT
	userns_open_dir
	start_wl core/userns deny || { fail $name "workload did not get ready"; userns_close_dir; return; }
	dump "$PID" "$D"
	((CK_RC == 0)) || { fail $name "dump $CK_WHY: $(stderr_line dump)"; userns_close_dir; return; }
	wait_until 10 gone "$PID" || { fail $name "pid $PID still runs after the dump"; userns_close_dir; return; }
	printf '#!/bin/sh\nexec setpriv --groups 5 "%s" "$@"\n' "$real" >"$T/ckpt-groups"
	chmod +x "$T/ckpt-groups"
	CKPT=$T/ckpt-groups expect_restore_fail $name "$D" 'denies setgroups'
	userns_close_dir
}
