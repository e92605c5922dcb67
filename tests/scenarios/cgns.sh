# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=bash
#
# cgroup namespaces, cgroup restores that must fail on this host, and
# seccomp filters shared by threads.  Uses the helpers of cgroup.sh (cg_*).

SCENARIOS+=(
	"cgns|cgroup-ns cgroup-ns-none"
	"cgns_root|cgroup-ns-root"
	"cgns_child|cgroup-ns-child"
	"cgns_fail_plugin|cgroup-ns-fail-no-plugin cgroup-ns-fail-member-no-plugin cgroup-ns-fail-outside-root"
	"cgns_fail_restore|cgroup-fail-missing-controller cgroup-missing-controller-none cgroup-fail-root-uncreatable"
	"cgns_seccomp_shared|core-seccomp-shared"
)

# cgns_cycle NAME "WORKLOAD ARGS" BETWEEN "RESTORE ARGS": start cgnswl,
# dump (kill), run BETWEEN, restore.
cgns_cycle() {
	local name=$1 between=$3 D=$T/img
	local -a wl rargs
	read -ra wl <<<"$2"
	read -ra rargs <<<"$4"
	rm -rf "$D"
	start_wl cgroup/cgnswl "${wl[@]}" || { fail "$name" "workload did not get ready"; return 1; }
	dump "$PID" "$D"
	((CK_RC == 0)) || { fail "$name" "dump $CK_WHY: $(stderr_line dump)"; return 1; }
	wait_until 10 gone "$PID" || { fail "$name" "pid $PID still runs after the dump"; return 1; }
	if [[ -n $between ]]; then
		eval "$between" || { fail "$name" "between dump and restore: '$between' failed"; return 1; }
	fi
	ck show show "$D"
	if ((CK_RC != 0)) || ! grep -q 'ckpt\.cgroup\.Namespace' "$T/show.stdout"; then
		fail "$name" "show does not decode cgroup-ns.img"
		return 1
	fi
	restore "$D" "${rargs[@]}"
	((CK_RC == 0)) || { fail "$name" "restore $CK_WHY: $(stderr_line restore)"; return 1; }
	alive "$PID" || { fail "$name" "pid $PID is not running after restore -d"; return 1; }
	return 0
}

# A process moves into /CGN/ns (cpu, pids, cgroup2), unshares its cgroup
# namespace there, moves on into /CGN/ns/in (cpu, cgroup2), starts a thread
# and forks a child.  The groups are removed after the dump; the restore
# makes them again, and /proc/self/cgroup of all three must read as before
# (cpu and cgroup2 "/in", pids "/") from one shared namespace.  Restored
# with --manage-cgroups=none, the namespace is still made and shared, its
# root where the tasks are: the workload must then see "/" everywhere,
# which it reports as a change, so that case only checks the sharing from
# outside.
sc_cgns() {
	local name=cgroup-ns ns
	cg_need "$name" cgroup-ns-none || return
	cg_begin
	if ! cg_mk cpu "/$CGN/ns/in" || ! cg_mk 2 "/$CGN/ns/in" || ! cg_mk pids "/$CGN/ns"; then
		fail "$name" "cannot make the test groups"
		cg_end
		return
	fi
	local args="join=cpu:/$CGN/ns join=2:/$CGN/ns join=pids:/$CGN/ns unshare join=cpu:/$CGN/ns/in join=2:/$CGN/ns/in see=cpu:/in see=2:/in see=pids:/ thread child"
	if cgns_cycle "$name" "$args" "cg_rm cpu /$CGN && cg_rm 2 /$CGN && cg_rm pids /$CGN" ""; then
		if ! cg_tasks_has cpu "/$CGN/ns/in" "$PID" || ! cg_tasks_has 2 "/$CGN/ns/in" "$PID" ||
			! cg_tasks_has pids "/$CGN/ns" "$PID"; then
			fail "$name" "pid $PID is not back in /$CGN/ns/in (cpu, cgroup2) and /$CGN/ns (pids)"
		elif ! grep -q 'cgroup namespace(s) restored' "$T/img/restore.log"; then
			fail "$name" "the restore log does not say that it made the cgroup namespace"
		else
			cg_finish "$name"
		fi
	fi

	name=cgroup-ns-none
	if cgns_cycle "$name" "$args" "" "--manage-cgroups=none"; then
		ns=$(stat -Lc %i "/proc/$PID/ns/cgroup")
		if [[ $ns == $(stat -Lc %i /proc/self/ns/cgroup) ]]; then
			fail "$name" "pid $PID is in the restorer's cgroup namespace"
		elif [[ $(grep -c . "$T/img/restore.log") == 0 ]] ||
			! grep -q 'manage-cgroups=none: 1 cgroup namespace' "$T/img/restore.log"; then
			fail "$name" "the restore log does not say where the namespace was made"
		else
			local p bad=
			for p in /proc/"$PID"/task/* $(cat /proc/"$PID"/task/*/children); do
				[[ $p == /proc/* ]] || p=/proc/$p
				[[ $(stat -Lc %i "$p/ns/cgroup") == "$ns" ]] || bad+=" ${p##*/}"
			done
			if [[ -n $bad ]]; then
				fail "$name" "task(s)$bad are not in the cgroup namespace of pid $PID"
			elif nsenter -C -t "$PID" cat "/proc/$PID/cgroup" | grep -qv ':/$'; then
				fail "$name" "pid $PID does not see its groups as the namespace root: $(nsenter -C -t "$PID" cat "/proc/$PID/cgroup" | tr '\n' ' ')"
			else
				kill -9 "$PID"
				if ! wait_until 10 gone "$PID" || ! wait_until 5 no_others; then
					fail "$name" "processes left running: $(others)"
				else
					report pass "$name"
				fi
			fi
		fi
	fi
	cg_end
}

# The same tree restored under --cgroup-root: the namespace's root moves
# with the groups, so the tasks see the same paths as before.
sc_cgns_root() {
	local name=cgroup-ns-root
	cg_need "$name" || return
	cg_begin
	if ! cg_mk cpu "/$CGN/ns/in" || ! cg_mk 2 "/$CGN/ns/in"; then
		fail "$name" "cannot make the test groups"
		cg_end
		return
	fi
	if cgns_cycle "$name" "join=cpu:/$CGN/ns join=2:/$CGN/ns unshare join=cpu:/$CGN/ns/in join=2:/$CGN/ns/in see=cpu:/in see=2:/in thread child" \
		"" "--cgroup-root /$CGN/new"; then
		if ! cg_tasks_has cpu "/$CGN/new/$CGN/ns/in" "$PID" || ! cg_tasks_has 2 "/$CGN/new/$CGN/ns/in" "$PID"; then
			fail "$name" "pid $PID is not in /$CGN/new/$CGN/ns/in of cpu and cgroup2"
		else
			cg_finish "$name"
		fi
	fi
	cg_end
}

# The root stays in ckpt's cgroup namespace; its child makes one of its own
# in /CGN/c of cpu and moves on into /CGN/c/in.  After restore the child
# sees /in again, from a namespace that is not its parent's.
sc_cgns_child() {
	local name=cgroup-ns-child
	cg_need "$name" || return
	cg_begin
	cg_mk cpu "/$CGN/c/in" || { fail "$name" "cannot make the test groups"; cg_end; return; }
	if cgns_cycle "$name" "thread child-unshare=cpu:/$CGN/c" "cg_rm cpu /$CGN" ""; then
		cg_finish "$name"
	fi
	cg_end
}

# Without the cgroup plugin a tree with a cgroup namespace is refused:
# no plugin claims it (the core names none, it points at `ckpt plugins`);
# so is a child with a cgroup namespace of its own under a root in ckpt's.  A namespace whose root no task of it is
# under is refused too.
sc_cgns_fail_plugin() {
	local name=cgroup-ns-fail-no-plugin
	cg_need "$name" cgroup-ns-fail-member-no-plugin cgroup-ns-fail-outside-root || return
	cg_begin
	cg_mk cpu "/$CGN/ns" && cg_mk cpu "/$CGN/c/in" ||
		{ fail "$name" "cannot make the test groups"; cg_end; return; }
	expect_dump_fail "$name" 'cgroup namespace of its own; no enabled plugin saves it.*ckpt plugins' \
		cgroup/cgnswl "join=cpu:/$CGN/ns" unshare see=cpu:/ -- --plugins=fs
	expect_dump_fail cgroup-ns-fail-member-no-plugin \
		"another cgroup namespace than the tree's root.*no enabled plugin saves it" \
		cgroup/cgnswl "child-unshare=cpu:/$CGN/c" -- --plugins=fs

	# moved above its namespace's root, the only task of it cannot tell
	# where that root is
	expect_dump_fail cgroup-ns-fail-outside-root 'root cannot be found.*cpu:/\.\.' \
		cgroup/cgnswl "join=cpu:/$CGN/ns" unshare "join=cpu:/$CGN" see=cpu:/..
	cg_end
}

# Restores this host cannot do: the image's pids controller is not mounted
# (unmounted in the scenario's own mount namespace) — refused naming it;
# with --manage-cgroups=none the same image restores, in ckpt's groups.  A
# --cgroup-root below a file of the hierarchy cannot be created: refused,
# and nothing stays running or is left behind.
sc_cgns_fail_restore() {
	local D=$T/img
	cg_need cgroup-fail-missing-controller cgroup-missing-controller-none cgroup-fail-root-uncreatable || return
	cg_begin
	cg_mk pids "/$CGN/p" pids.max=50 || { fail cgroup-fail-missing-controller "cannot make the test group"; cg_end; return; }
	start_wl cgroup/cgwl "join=pids:/$CGN/p" || { fail cgroup-fail-missing-controller "workload did not get ready"; cg_end; return; }
	dump "$PID" "$D"
	((CK_RC == 0)) || { fail cgroup-fail-missing-controller "dump $CK_WHY: $(stderr_line dump)"; cg_end; return; }
	wait_until 10 gone "$PID" || { fail cgroup-fail-missing-controller "pid $PID still runs after the dump"; cg_end; return; }

	cg_restore_fail cgroup-fail-root-uncreatable 'cannot be created.*cgroup-root' "$D" \
		--cgroup-root /cgroup.procs/x
	if ls -d "$CG_FS"/*/cgroup.procs/x 2>/dev/null | grep -q .; then
		fail cgroup-fail-root-uncreatable "a group was left under cgroup.procs"
	fi

	if ! umount "$CG_FS/pids"; then
		fail cgroup-fail-missing-controller "cannot unmount $CG_FS/pids in the test's mount namespace"
		cg_end
		return
	fi
	cg_restore_fail cgroup-fail-missing-controller 'controller pids.*not mount.*--manage-cgroups=none' "$D"

	# CRIU's ignore/none: cgroups are not touched, so a missing controller
	# does not matter; the workload is not in its groups and says so
	restore "$D" --manage-cgroups=none
	if ((CK_RC != 0)); then
		fail cgroup-missing-controller-none "restore --manage-cgroups=none $CK_WHY: $(stderr_line restore)"
	elif ! alive "$PID"; then
		fail cgroup-missing-controller-none "pid $PID is not running after the restore"
	elif grep -q "/$CGN/p" "/proc/$PID/cgroup"; then
		fail cgroup-missing-controller-none "--manage-cgroups=none moved pid $PID into /$CGN/p"
	else
		kill -9 "$PID"
		wait_until 10 gone "$PID"
		report pass cgroup-missing-controller-none
	fi
	mount -t cgroup -o pids cgroup "$CG_FS/pids" 2>/dev/null
	cg_end
}

# Threads that share a seccomp filter share it after restore: a thread's
# seccomp(TSYNC) succeeds and the new filter judges every thread.
sc_cgns_seccomp_shared() { cycle core-seccomp-shared core/seccomp_shared sig; }
