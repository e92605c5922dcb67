# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=bash
#
# Scenarios of the cgroup plugin, sourced by tests/run-tests.sh at global
# scope (they use its helpers: start_wl, dump, restore, ck, fail, report...).
# The workload is tests/workloads/cgroup/cgwl.  Every scenario makes its
# groups under a name of its own (ckpt-test.PID.RANDOM) in the v1
# hierarchies and in the cgroup2 mount, and removes everything under that
# name in every hierarchy when it ends (a restore under --cgroup-root makes
# groups in all of them).

SCENARIOS+=(
	"cgroup_v1_v2|cgroup-v1-v2"
	"cgroup_threads|cgroup-threads"
	"cgroup_settings|cgroup-settings"
	"cgroup_modes|cgroup-fail-strict-mismatch cgroup-fail-props-missing cgroup-full"
	"cgroup_root|cgroup-root"
	"cgroup_freeze:v2|cgroup-freeze-v2 cgroup-freeze-v2-leave-running"
	"cgroup_freeze:v1|cgroup-freeze-v1 cgroup-freeze-v1-leave-running"
	"cgroup_fail_freeze|cgroup-fail-freeze-missing cgroup-fail-freeze-not-member"
)

CG_FS=/sys/fs/cgroup
CG_V2=$CG_FS/unified

# cg_need NAMES...: skip every named result when a hierarchy is missing.
cg_need() {
	local h n
	for h in cpu pids memory freezer unified; do
		if [[ ! -d $CG_FS/$h ]] || { [[ $h == unified ]] && [[ ! -f $CG_V2/cgroup.procs ]]; }; then
			for n in "$@"; do report skip "$n" "$CG_FS/$h is not a cgroup mount here"; done
			return 1
		fi
	done
	return 0
}

# cg_begin: a fresh name for this scenario's groups, removed by cg_end.
cg_begin() {
	CGN=ckpt-test.$$.$RANDOM
}

# cg_dir H PATH: the directory of group PATH of hierarchy H (2: cgroup2)
cg_dir() {
	if [[ $1 == 2 ]]; then echo "$CG_V2$2"; else echo "$CG_FS/$1$2"; fi
}

# cg_mk H PATH [FILE=VALUE...]: make the group (and its parents) and set files.
cg_mk() {
	local h=$1 path=$2 d kv
	shift 2
	d=$(cg_dir "$h" "$path")
	mkdir -p "$d" || return 1
	if [[ $h == cpuset ]]; then
		cat "$CG_FS/cpuset/cpuset.cpus" >"$d/cpuset.cpus"
		cat "$CG_FS/cpuset/cpuset.mems" >"$d/cpuset.mems"
	fi
	for kv in "$@"; do
		printf '%s' "${kv#*=}" >"$d/${kv%%=*}" || return 1
	done
}

# cg_rm H PATH: remove the group and every group below it (no tasks there).
cg_rm() {
	local d
	d=$(cg_dir "$1" "$2")
	[[ -d $d ]] || return 0
	find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
	[[ ! -d $d ]]
}

# cg_end: kill whatever is left in this scenario's groups, remove them all.
cg_end() {
	local top d p tries
	[[ -n ${CGN:-} ]] || return 0
	for top in "$CG_FS"/*/"$CGN"; do
		[[ -d $top ]] || continue
		for ((tries = 0; tries < 50; tries++)); do
			# thaw first: a frozen task cannot die
			while read -r d; do
				[[ -f $d/freezer.state ]] && echo THAWED >"$d/freezer.state" 2>/dev/null
				[[ -f $d/cgroup.freeze ]] && echo 0 >"$d/cgroup.freeze" 2>/dev/null
				while read -r p; do
					[[ -n $p ]] && kill -9 "$p" 2>/dev/null
				done <"$d/cgroup.procs" 2>/dev/null
			done < <(find "$top" -type d 2>/dev/null)
			find "$top" -depth -type d -exec rmdir {} + 2>/dev/null
			[[ -d $top ]] || break
			sleep 0.1
		done
		[[ -d $top ]] && log "could not remove $top"
	done
	CGN=
}

# cg_tasks_has H PATH PID: PID (a thread id) is listed in the group's tasks
cg_tasks_has() {
	local f
	if [[ $1 == 2 ]]; then f=$(cg_dir 2 "$2")/cgroup.threads; else f=$(cg_dir "$1" "$2")/tasks; fi
	grep -qx "$3" "$f" 2>/dev/null
}

# cg_cycle NAME "WORKLOAD ARGS" BETWEEN "DUMP ARGS" "RESTORE ARGS": start,
# dump (kill), run the shell command BETWEEN, restore, wake, verify.
cg_cycle() {
	local name=$1 between=$3 msg
	local -a wl dargs rargs
	read -ra wl <<<"$2"
	read -ra dargs <<<"$4"
	read -ra rargs <<<"$5"
	local D=$T/img
	rm -rf "$D"
	start_wl cgroup/cgwl "${wl[@]}" || { fail "$name" "workload did not get ready"; return 1; }
	sleep 0.2
	dump "$PID" "$D" "${dargs[@]}"
	((CK_RC == 0)) || { fail "$name" "dump $CK_WHY: $(stderr_line dump)"; return 1; }
	wait_until 10 gone "$PID" || { fail "$name" "pid $PID still runs after the dump"; return 1; }
	[[ -s $T/result ]] && { fail "$name" "the workload reported before the restore: $(result_text)"; return 1; }
	if [[ -n $between ]]; then
		eval "$between" || { fail "$name" "between dump and restore: '$between' failed"; return 1; }
	fi
	ck show show "$D"
	if ((CK_RC != 0)) || ! grep -q 'ckpt\.cgroup\.Group' "$T/show.stdout"; then
		fail "$name" "show does not decode cgroup.img"
		return 1
	fi
	restore "$D" "${rargs[@]}"
	((CK_RC == 0)) || { fail "$name" "restore $CK_WHY: $(stderr_line restore)"; return 1; }
	alive "$PID" || { fail "$name" "pid $PID is not running after restore -d"; return 1; }
	msg=$(check_pidfile "$PID") || { fail "$name" "$msg"; return 1; }
	return 0
}

# cg_finish NAME: wake the restored workload, it must PASS.
cg_finish() {
	local name=$1
	signal_wait "$PID" 60 || { fail "$name" "no result after SIGUSR1: $(describe "$PID")"; return 1; }
	result_is_pass || { fail "$name" "workload: $(result_text)"; return 1; }
	wait_until 10 gone "$PID" || { fail "$name" "pid $PID still runs after reporting"; return 1; }
	wait_until 5 no_others || { fail "$name" "processes left running: $(others)"; return 1; }
	report pass "$name"
}

# A process in a v1 cpu group and a cgroup2 group; both removed after the
# dump, so the restore (soft) makes them again.
sc_cgroup_v1_v2() {
	local name=cgroup-v1-v2
	cg_need "$name" || return
	cg_begin
	{ cg_mk cpu "/$CGN/a" && cg_mk 2 "/$CGN/b"; } || { fail "$name" "cannot make the test groups"; cg_end; return; }
	if cg_cycle "$name" "join=cpu:/$CGN/a join=2:/$CGN/b child" \
		"cg_rm cpu /$CGN && cg_rm 2 /$CGN" "" ""; then
		if [[ ! -d $(cg_dir cpu "/$CGN/a") || ! -d $(cg_dir 2 "/$CGN/b") ]]; then
			fail "$name" "the restore did not make the groups again"
		elif ! cg_tasks_has cpu "/$CGN/a" "$PID" || ! cg_tasks_has 2 "/$CGN/b" "$PID"; then
			fail "$name" "pid $PID is not listed in the groups' tasks files"
		else
			cg_finish "$name"
		fi
	fi
	cg_end
}

# Two threads of one process in different v1 cpu groups and in different
# groups of a cgroup2 threaded subtree.
sc_cgroup_threads() {
	local name=cgroup-threads d
	cg_need "$name" || return
	cg_begin
	if ! cg_mk cpu "/$CGN/t1" || ! cg_mk cpu "/$CGN/t2" || ! cg_mk 2 "/$CGN/dom/th1" ||
		! cg_mk 2 "/$CGN/dom/th2"; then
		fail "$name" "cannot make the test groups"
		cg_end
		return
	fi
	d=$(cg_dir 2 "/$CGN/dom")
	{ echo threaded >"$d/th1/cgroup.type" && echo threaded >"$d/th2/cgroup.type"; } ||
		{ fail "$name" "cannot make a threaded cgroup2 subtree here"; cg_end; return; }
	if cg_cycle "$name" "join=cpu:/$CGN/t1 join=2:/$CGN/dom/th1 thread=cpu:/$CGN/t2+2:/$CGN/dom/th2 thread" \
		"cg_rm cpu /$CGN && cg_rm 2 /$CGN" "" ""; then
		if [[ $(cat "$d/th2/cgroup.type" 2>/dev/null) != threaded ]]; then
			fail "$name" "the restored $d/th2 is of type '$(cat "$d/th2/cgroup.type" 2>/dev/null)', want threaded"
		else
			cg_finish "$name"
		fi
	fi
	cg_end
}

# cpu.shares, pids.max and memory.limit_in_bytes come back with the groups.
sc_cgroup_settings() {
	local name=cgroup-settings
	cg_need "$name" || return
	cg_begin
	if ! cg_mk cpu "/$CGN/s" cpu.shares=512 || ! cg_mk pids "/$CGN/s" pids.max=77 ||
		! cg_mk memory "/$CGN/s" memory.limit_in_bytes=268435456; then
		fail "$name" "cannot make the test groups"
		cg_end
		return
	fi
	if cg_cycle "$name" "join=cpu:/$CGN/s join=pids:/$CGN/s join=memory:/$CGN/s thread child expect=cpu:cpu.shares=512 expect=pids:pids.max=77 expect=memory:memory.limit_in_bytes=268435456" \
		"cg_rm cpu /$CGN && cg_rm pids /$CGN && cg_rm memory /$CGN" "" ""; then
		cg_finish "$name"
	fi
	cg_end
}

# cg_restore_fail NAME REGEX DIR ARGS...: the restore must exit 1 with one
# line matching REGEX and leave nothing running.
cg_restore_fail() {
	local name=$1 re=$2 dir=$3
	shift 3
	ck "$name" restore -D "$dir" -d -v4 -o "$name.log" "$@"
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
		return 0
	fi
	return 1
}

# One dump, restored three ways: strict refuses a group whose cpu.shares
# changed; props refuses a missing group; full writes the saved settings
# into a group that exists with other ones.
sc_cgroup_modes() {
	local D=$T/img d
	cg_need cgroup-fail-strict-mismatch cgroup-fail-props-missing cgroup-full || return
	cg_begin
	cg_mk cpu "/$CGN/m" cpu.shares=512 || { fail cgroup-full "cannot make the test groups"; cg_end; return; }
	d=$(cg_dir cpu "/$CGN/m")
	start_wl cgroup/cgwl "join=cpu:/$CGN/m" "expect=cpu:cpu.shares=512" ||
		{ fail cgroup-full "workload did not get ready"; cg_end; return; }
	dump "$PID" "$D"
	((CK_RC == 0)) || { fail cgroup-full "dump $CK_WHY: $(stderr_line dump)"; cg_end; return; }
	wait_until 10 gone "$PID" || { fail cgroup-full "pid $PID still runs after the dump"; cg_end; return; }

	echo 1024 >"$d/cpu.shares"
	cg_restore_fail cgroup-fail-strict-mismatch 'cpu\.shares' "$D" --manage-cgroups=strict
	[[ $(cat "$d/cpu.shares") == 1024 ]] || fail cgroup-fail-strict-mismatch "the refused restore changed cpu.shares"

	cg_rm cpu "/$CGN/m"
	cg_restore_fail cgroup-fail-props-missing 'does not exist' "$D" --manage-cgroups=props
	[[ -d $d ]] && fail cgroup-fail-props-missing "the refused restore made $d"

	cg_mk cpu "/$CGN/m" cpu.shares=1024
	restore "$D" --manage-cgroups=full
	if ((CK_RC != 0)); then
		fail cgroup-full "restore --manage-cgroups=full $CK_WHY: $(stderr_line restore)"
	elif [[ $(cat "$d/cpu.shares") != 512 ]]; then
		fail cgroup-full "cpu.shares is $(cat "$d/cpu.shares") after --manage-cgroups=full, want 512"
	else
		cg_finish cgroup-full
	fi
	cg_end
}

# Restored under another root: /CGN/r of every hierarchy becomes
# /CGN/new/CGN/r, and the root groups become /CGN/new.
sc_cgroup_root() {
	local name=cgroup-root
	cg_need "$name" || return
	cg_begin
	{ cg_mk cpu "/$CGN/r" cpu.shares=300 && cg_mk 2 "/$CGN/r"; } || { fail "$name" "cannot make the test groups"; cg_end; return; }
	if cg_cycle "$name" "join=cpu:/$CGN/r join=2:/$CGN/r thread child expect=cpu:cpu.shares=300" \
		"printf '%s\n' /$CGN/new >\$T/cgroup-root" "" "--cgroup-root /$CGN/new"; then
		if ! cg_tasks_has cpu "/$CGN/new/$CGN/r" "$PID" || ! cg_tasks_has 2 "/$CGN/new/$CGN/r" "$PID"; then
			fail "$name" "pid $PID is not in /$CGN/new/$CGN/r of cpu and cgroup2"
		else
			cg_finish "$name"
		fi
	fi
	cg_end
}

# cg_frozen KIND DIR: the group is frozen now
cg_frozen() {
	if [[ $1 == v2 ]]; then grep -qx 'frozen 1' "$2/cgroup.events"
	else [[ $(cat "$2/freezer.state") == FROZEN ]]; fi
}

# --freeze-cgroup with a tree (process, child, two threads): dumped and
# restored; then dumped with -R and left running.  The group is thawed after
# each dump.
sc_cgroup_freeze() {
	local kind=$1 h path d st name=cgroup-freeze-$1
	cg_need "$name" "$name-leave-running" || return
	cg_begin
	if [[ $kind == v2 ]]; then h=2; else h=freezer; fi
	path=/$CGN/fz
	cg_mk "$h" "$path" || { fail "$name" "cannot make the test group"; cg_end; return; }
	d=$(cg_dir "$h" "$path")
	if cg_cycle "$name" "join=$h:$path thread thread child" \
		"! cg_frozen $kind $d" "--freeze-cgroup $d" ""; then
		if ! grep -q "froze cgroup $d" "$T/img/dump.log"; then
			fail "$name" "the dump log does not say that it froze $d"
		elif [[ -s $T/dump.stderr ]]; then
			fail "$name" "the dump printed: $(stderr_line dump)"
		elif [[ $kind == v1 ]] && ! grep -q "4 thread(s) were let out" "$T/img/dump.log"; then
			fail "$name" "the dump log does not say that it let the 4 threads out of the frozen group"
		elif cg_frozen "$kind" "$d"; then
			fail "$name" "$d is frozen after the restore"
		else
			cg_finish "$name"
		fi
	fi

	name=$name-leave-running
	rm -rf "$T/img" "$T/result"
	start_wl cgroup/cgwl "join=$h:$path" thread child || { fail "$name" "workload did not get ready"; cg_end; return; }
	dump "$PID" "$T/img" -R --freeze-cgroup "$d"
	if ((CK_RC != 0)); then
		fail "$name" "dump -R $CK_WHY: $(stderr_line dump)"
	elif ! grep -q "froze cgroup $d" "$T/img/dump.log"; then
		fail "$name" "the dump log does not say that it froze $d"
	elif sleep 0.2 && ! alive "$PID"; then
		fail "$name" "pid $PID is gone after dump -R"
	elif cg_frozen "$kind" "$d"; then
		fail "$name" "$d is still frozen after dump -R"
	else
		st=$(state "$PID")
		if [[ $st != [RS] || $(tracer_of "$PID") != 0 ]]; then
			fail "$name" "pid $PID left in state $st, tracer $(tracer_of "$PID")"
		else
			cg_finish "$name"
		fi
	fi
	cg_end
}

# --freeze-cgroup refusals: exit 1, one line, the task runs on.
sc_cgroup_fail_freeze() {
	cg_need cgroup-fail-freeze-missing cgroup-fail-freeze-not-member || return
	cg_begin
	expect_dump_fail cgroup-fail-freeze-missing 'no such cgroup' counter -- \
		--freeze-cgroup "$CG_V2/$CGN-does-not-exist"
	cg_mk 2 "/$CGN/empty" || { fail cgroup-fail-freeze-not-member "cannot make the test group"; cg_end; return; }
	expect_dump_fail cgroup-fail-freeze-not-member 'not in cgroup' counter -- \
		--freeze-cgroup "$(cg_dir 2 "/$CGN/empty")"
	if cg_frozen v2 "$(cg_dir 2 "/$CGN/empty")"; then
		fail cgroup-fail-freeze-not-member "the group is left frozen"
	fi
	cg_end
}
