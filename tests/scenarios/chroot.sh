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
