# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=bash
#
# Scenarios of a task with a root directory of its own (chroot): the core
# saves the root like the working directory and the restored task chroots
# into it last; inside a mount namespace of the tree's own the fs plugin
# reads the namespace's mounts from its root, not from the task's.  The
# workload is tests/workloads/fs/chroot.c.  Sourced by tests/run-tests.sh.

SCENARIOS+=(
	"chroot_mntns|chroot-mntns"
	"chroot_plain|chroot-plain"
	"chroot_deleted|fail-chroot-deleted"
	"chroot_covered|fail-chroot-covered"
)

# chrooted into a directory of a tmpfs in its own mount namespace
sc_chroot_mntns() {
	mkdir -p "$T/fs"
	cycle chroot-mntns fs/chroot sig mntns
}

# chrooted into a directory of ckpt's own file system
sc_chroot_plain() {
	mkdir -p "$T/fs"
	rm -rf "$T/chroot-plain"
	cycle chroot-plain fs/chroot sig plain
}

# a root directory that was removed cannot come back: the dump says so and
# the task runs on
sc_chroot_deleted() {
	mkdir -p "$T/fs"
	rm -rf "$T/chroot-deleted"
	expect_dump_fail fail-chroot-deleted 'root directory.*(chroot).*removed' fs/chroot deleted
}

# a root directory under a mount put over it after the chroot: its path
# leads elsewhere now, so the dump refuses it and the task runs on
sc_chroot_covered() {
	local name=fail-chroot-covered st
	mkdir -p "$T/fs"
	rm -rf "$T/chroot-plain"
	start_wl fs/chroot plain || { fail $name "workload did not get ready"; return; }
	mount -t tmpfs ckpt-cover "$T/chroot-plain" || { fail $name "cannot mount over $T/chroot-plain"; return; }
	dump "$PID" "$T/img"
	umount "$T/chroot-plain"
	if ((CK_RC != 1)); then
		fail $name "dump $CK_WHY, want 1"
	elif ! one_line dump; then
		fail $name "stderr is not one line"
	elif ! grep -qiE 'root directory.*hidden under another mount' "$T/dump.stderr"; then
		fail $name "the error does not name the hidden root directory: $(stderr_line dump)"
	elif ! { sleep 0.2; alive "$PID"; }; then
		fail $name "the workload died"
	elif st=$(state "$PID") && [[ $st != [RS] || $(tracer_of "$PID") != 0 ]]; then
		fail $name "the workload is left in state $st, tracer $(tracer_of "$PID")"
	elif ! signal_wait "$PID" 30; then
		fail $name "no result after SIGUSR1: $(describe "$PID")"
	elif ! result_is_pass; then
		fail $name "workload after the failed dump: $(result_text)"
	elif ! wait_until 10 gone "$PID"; then
		fail $name "pid $PID still runs after reporting"
	elif ! wait_until 5 no_others; then
		fail $name "processes left running: $(others)"
	else
		report pass $name
	fi
}
