# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=bash
#
# Scenarios of a tree in a mount namespace of its own (fs plugin, mnt.c):
# tests/workloads/fs/mntns.c mounts a tmpfs with files, a read-only bind of
# a subdirectory of it, a bind of a host directory and a proc, works inside
# the tmpfs and holds a file of it open; "shared" adds a shared/slave pair,
# "external" a mount named with --external.  Sourced by tests/run-tests.sh.

SCENARIOS+=(
	"mntns_basic|mntns-tmpfs fail-mntns-bind-source-missing"
	"mntns_shared|mntns-shared-slave"
	"mntns_external|mntns-external"
	"mntns_pty|mntns-devpts-pty"
	"mntns_refused|fail-mntns-no-fs-plugin fail-mntns-ramfs"
	"mntns_pidns|mntns-restore-pidns"
	"mntns_pidinit|mntns-pid-init"
	"mntns_pivot|mntns-pivot-root"
)

# the host directories the workload binds
mntns_prep() {
	mkdir -p "$T/fs" "$T/mntns-host" "$T/mntns-ext-a" "$T/mntns-ext-b" "$T/mntns-lower"
	echo lower >"$T/mntns-lower/lower"
	echo host >"$T/mntns-host/marker"
	echo a >"$T/mntns-ext-a/marker"
	echo b >"$T/mntns-ext-b/marker"
}

# nothing of the restored namespace may stay behind in ours
mntns_host_clean() {
	! grep -q " $T/mntns/tmp " /proc/self/mountinfo
}

sc_mntns_basic() {
	local D=$T/img
	mntns_prep
	start_wl fs/mntns basic || { fail mntns-tmpfs "workload did not get ready"; return; }
	sleep 0.2
	dump "$PID" "$D"
	((CK_RC == 0)) || { fail mntns-tmpfs "dump $CK_WHY: $(stderr_line dump)"; return; }
	wait_until 10 gone "$PID" || { fail mntns-tmpfs "pid $PID still runs after the dump"; return; }
	[[ -s $D/fs-mounts.img ]] || { fail mntns-tmpfs "the dump wrote no fs-mounts.img"; return; }
	mntns_host_clean || { fail mntns-tmpfs "the tree's tmpfs shows in ckpt's mount namespace"; return; }

	# the host directory bound into the tree is gone: refused, nothing
	# runs; then put back, the same images restore
	mv "$T/mntns-host" "$T/mntns-host.away"
	expect_restore_fail fail-mntns-bind-source-missing "$D" "mntns-host.*missing|missing.*mntns-host"
	mv "$T/mntns-host.away" "$T/mntns-host"

	# a mount ckpt's namespace gained since the dump is not the tree's:
	# the restored namespace must not have it (the workload counts)
	mkdir -p "$T/mntns/extra"
	mount -t tmpfs ckpt-extra "$T/mntns/extra" || { fail mntns-tmpfs "cannot mount $T/mntns/extra"; return; }
	restore "$D"
	umount "$T/mntns/extra"
	((CK_RC == 0)) || { fail mntns-tmpfs "restore $CK_WHY: $(stderr_line restore)"; return; }
	mntns_host_clean || { fail mntns-tmpfs "the restored tmpfs shows in ckpt's mount namespace"; return; }
	alive "$PID" || { fail mntns-tmpfs "pid $PID is not running after restore -d"; return; }
	signal_wait "$PID" 60 || { fail mntns-tmpfs "no result after SIGUSR1: $(describe "$PID")"; return; }
	result_is_pass || { fail mntns-tmpfs "workload: $(result_text)"; return; }
	wait_until 10 gone "$PID" || { fail mntns-tmpfs "pid $PID still runs after reporting"; return; }
	wait_until 5 no_others || { fail mntns-tmpfs "processes left running: $(others)"; return; }
	report pass mntns-tmpfs
}

sc_mntns_shared() {
	mntns_prep
	cycle mntns-shared-slave fs/mntns sig shared
}

sc_mntns_external() {
	local D=$T/img name=mntns-external
	mntns_prep
	start_wl fs/mntns external || { fail $name "workload did not get ready"; return; }
	sleep 0.2
	# a mount point the tree does not have: refused, the tree runs on
	ck dump-badext dump -t "$PID" -D "$T/img-badext" -v4 -o dump.log --external "mnt[$T/mntns/nothing]:k"
	if ((CK_RC != 1)) || ! one_line dump-badext || ! grep -q "no mount at $T/mntns/nothing" "$T/dump-badext.stderr"; then
		fail $name "dump with a wrong --external $CK_WHY: $(stderr_line dump-badext)"
		return
	fi
	sleep 0.2
	alive "$PID" && [[ $(state "$PID") == [RS] && $(tracer_of "$PID") == 0 ]] ||
		{ fail $name "the workload is not left running after the refused dump"; return; }
	dump "$PID" "$D" --external "mnt[$T/mntns/ext]:extkey"
	((CK_RC == 0)) || { fail $name "dump $CK_WHY: $(stderr_line dump)"; return; }
	wait_until 10 gone "$PID" || { fail $name "pid $PID still runs after the dump"; return; }
	# without the key: refused, naming it
	ck restore-nokey restore -D "$D" -d -v4 -o restore-nokey.log
	if ((CK_RC != 1)) || ! grep -q "extkey" "$T/restore-nokey.stderr"; then
		fail $name "restore without --external $CK_WHY: $(stderr_line restore-nokey)"
		return
	fi
	wait_until 5 no_others || { fail $name "processes left running after the refused restore: $(others)"; return; }
	restore "$D" --external "mnt[extkey]:$T/mntns-ext-b"
	((CK_RC == 0)) || { fail $name "restore $CK_WHY: $(stderr_line restore)"; return; }
	alive "$PID" || { fail $name "pid $PID is not running after restore -d"; return; }
	signal_wait "$PID" 60 || { fail $name "no result after SIGUSR1: $(describe "$PID")"; return; }
	result_is_pass || { fail $name "workload: $(result_text)"; return; }
	wait_until 10 gone "$PID" || { fail $name "pid $PID still runs after reporting"; return; }
	wait_until 5 no_others || { fail $name "processes left running: $(others)"; return; }
	report pass $name
}

# a pty of the tree's own devpts instance: the restore opens ptmx inside
# the new namespace, so the pty comes from the tree's instance
sc_mntns_pty() {
	mntns_prep
	cycle mntns-devpts-pty fs/mntns sig pty
}

# behind pivot_root, as a container: the restore makes every mount under a
# new directory and pivots into it
sc_mntns_pivot() {
	mntns_prep
	cycle mntns-pivot-root fs/mntns sig pivot
}

# without the fs plugin nobody can save the mount namespace
sc_mntns_refused() {
	mntns_prep
	expect_dump_fail fail-mntns-no-fs-plugin "mnt namespace" fs/mntns basic -- --plugins=cgroup
	# a mount the plugin cannot make again is named
	expect_dump_fail fail-mntns-ramfs "mntns/ramfs .*ramfs.*--external" fs/mntns ramfs
}

# restore --pidns: the namespace is built by the new pid namespace's init,
# so the tree's proc shows that pid namespace
sc_mntns_pidns() {
	local D=$T/img name=mntns-restore-pidns copy
	mntns_prep
	start_wl fs/mntns basic || { fail $name "workload did not get ready"; return; }
	sleep 0.2
	dump "$PID" "$D"
	((CK_RC == 0)) || { fail $name "dump $CK_WHY: $(stderr_line dump)"; return; }
	wait_until 10 gone "$PID" || { fail $name "pid $PID still runs after the dump"; return; }
	ck restore restore -D "$D" -d --pidns -v4 -o restore.log --pidfile "$T/copy.pid"
	((CK_RC == 0)) || { fail $name "restore --pidns $CK_WHY: $(stderr_line restore)"; return; }
	copy=$(<"$T/copy.pid")
	copy=${copy//[[:space:]]/}
	alive "$copy" || { fail $name "the copy (pid $copy here) is not running"; return; }
	signal_wait "$copy" 60 || { fail $name "no result after SIGUSR1: $(describe "$copy")"; return; }
	result_is_pass || { fail $name "workload: $(result_text)"; return; }
	wait_until 10 gone "$copy" || { fail $name "pid $copy still runs after reporting"; return; }
	wait_until 5 no_others || { fail $name "processes left running: $(others)"; return; }
	report pass $name
}

# the root is init of its own pid namespace too (a container): its proc is
# mounted once the restored pid namespace exists, then the read-only bind
# of proc/sys below it
sc_mntns_pidinit() {
	local D=$T/img name=mntns-pid-init np
	mntns_prep
	start_wl fs/mntns pidinit || { fail $name "workload did not get ready"; return; }
	sleep 0.2
	dump "$PID" "$D"
	((CK_RC == 0)) || { fail $name "dump $CK_WHY: $(stderr_line dump)"; return; }
	wait_until 10 gone "$PID" || { fail $name "pid $PID still runs after the dump"; return; }
	restore "$D"
	((CK_RC == 0)) || { fail $name "restore $CK_WHY: $(stderr_line restore)"; return; }
	np=$(<"$T/restored.pid")
	np=${np//[[:space:]]/}
	alive "$np" || { fail $name "restored init $np is not running"; return; }
	PID=$np
	signal_wait "$PID" 60 || { fail $name "no result after SIGUSR1: $(describe "$PID")"; return; }
	result_is_pass || { fail $name "workload: $(result_text)"; return; }
	wait_until 10 gone "$PID" || { fail $name "pid $PID still runs after reporting"; return; }
	wait_until 5 no_others || { fail $name "processes left running: $(others)"; return; }
	report pass $name
}
