# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=bash
#
# Scenarios of the fs plugin's file classes: ghost (unlinked but open)
# files, regular files changed between dump and restore.  Sourced by
# tests/run-tests.sh at global scope; workloads in tests/workloads/fs/.

SCENARIOS+=(
	"fsf_ghost|fs-ghost"
	"fsf_ghost_big|fs-ghost-big fs-ghost-big-sparse-image"
	"fsf_ghost_flip|fail-fs-ghost-flipped"
	"fsf_ghost_linked_gone|fs-ghost-linked-gone"
)

fsf_prep() { mkdir -p "$T/fs"; }

sc_fsf_ghost() { fsf_prep; cycle fs-ghost fs/ghost sig; }

# 64 MiB, 4 MiB of it data: the image holds the data, not the holes.
sc_fsf_ghost_big() {
	local sz name=fs-ghost-big-sparse-image
	fsf_prep
	cycle fs-ghost-big fs/ghost_big sig
	if [[ ! -f $T/img/fs-ghost-data.img ]]; then
		fail $name "the dump wrote no fs-ghost-data.img"
		return
	fi
	sz=$(stat -c %s "$T/img/fs-ghost-data.img")
	if ((sz < 4 * 1024 * 1024 || sz > 5 * 1024 * 1024)); then
		fail $name "fs-ghost-data.img is $sz bytes for 4 MiB of data in a 64 MiB file"
	else
		report pass $name
	fi
}

# The other link of a file whose open name was removed is gone too by the
# restore: the file comes back from the saved contents, unlinked.
sc_fsf_ghost_linked_gone() {
	local name=fs-ghost-linked-gone
	fsf_prep
	start_wl fs/ghost linked-gone || { fail $name "workload did not get ready"; return; }
	dump "$PID" "$T/img"
	((CK_RC == 0)) || { fail $name "dump $CK_WHY: $(stderr_line dump)"; return; }
	wait_until 10 gone "$PID" || { fail $name "pid $PID still runs after the dump"; return; }
	rm -f "$T/ghost-other"
	restore "$T/img"
	((CK_RC == 0)) || { fail $name "restore $CK_WHY: $(stderr_line restore)"; return; }
	grep -q 'ghost-linked had 1 other link.*gone' "$T/restore.stderr" ||
		{ fail $name "no warning that the other link is gone: $(stderr_line restore)"; return; }
	cycle_restore_only_after $name
}

# A byte of the saved contents flipped: the restore refuses before it
# creates anything (no ghost-file, no task).
sc_fsf_ghost_flip() {
	local name=fail-fs-ghost-flipped D=$T/img sz
	fsf_prep
	start_wl fs/ghost || { fail $name "workload did not get ready"; return; }
	dump "$PID" "$D"
	((CK_RC == 0)) || { fail $name "dump $CK_WHY: $(stderr_line dump)"; return; }
	wait_until 10 gone "$PID" || { fail $name "pid $PID still runs after the dump"; return; }
	[[ -f $D/fs-ghost-data.img ]] || { fail $name "the dump wrote no fs-ghost-data.img"; return; }
	sz=$(stat -c %s "$D/fs-ghost-data.img")
	flip_byte "$D/fs-ghost-data.img" $((sz - 100)) || { fail $name "could not flip a byte"; return; }
	expect_restore_fail $name "$D" 'fs-ghost-data.img.*(checksum|corrupt|mismatch)|(checksum|corrupt|mismatch).*fs-ghost-data.img'
	if [[ -e $T/ghost-file ]] || compgen -G "$T/.ckpt-ghost-*" >/dev/null; then
		log "ghost file left behind after the refused restore"
		report fail $name "a file was created by the refused restore"
	fi
}

SCENARIOS+=(
	"fsf_regfile_gone|fail-fs-regfile-gone"
	"fsf_regfile_resized|fail-fs-regfile-resized fs-regfile-resized-skip"
)

# fsf_regfile_dump NAME: start fs/regfile and dump it; 0 when dumped.
fsf_regfile_dump() {
	fsf_prep
	start_wl fs/regfile || { fail "$1" "workload did not get ready"; return 1; }
	dump "$PID" "$T/img"
	((CK_RC == 0)) || { fail "$1" "dump $CK_WHY: $(stderr_line dump)"; return 1; }
	wait_until 10 gone "$PID" || { fail "$1" "pid $PID still runs after the dump"; return 1; }
}

sc_fsf_regfile_gone() {
	local name=fail-fs-regfile-gone
	fsf_regfile_dump $name || return
	rm -f "$T/regfile-data"
	expect_restore_fail $name "$T/img" 'regfile-data is gone.*put it back'
}

# Grown by 4 KiB: refused; with --file-validation=none it restores and the
# workload finds its first 8 KiB and its position.
sc_fsf_regfile_resized() {
	local name=fail-fs-regfile-resized
	fsf_regfile_dump $name || {
		report fail fs-regfile-resized-skip "not reached: the dump failed"
		return
	}
	head -c 4096 /dev/urandom >>"$T/regfile-data"
	expect_restore_fail $name "$T/img" 'regfile-data changed since the dump \(size 8192 -> 12288\).*--file-validation=none'
	restore "$T/img" --file-validation=none
	((CK_RC == 0)) || { fail fs-regfile-resized-skip "restore $CK_WHY: $(stderr_line restore)"; return; }
	cycle_restore_only_after fs-regfile-resized-skip
}

# The checks of cycle_restore_only, once restore ran.
cycle_restore_only_after() {
	local name=$1 msg
	alive "$PID" || { fail "$name" "pid $PID is not running after restore -d"; return; }
	msg=$(check_pidfile "$PID") || { fail "$name" "$msg"; return; }
	signal_wait "$PID" 60 || { fail "$name" "no result after SIGUSR1: $(describe "$PID")"; return; }
	result_is_pass || { fail "$name" "workload: $(result_text)"; return; }
	wait_until 10 gone "$PID" || { fail "$name" "pid $PID still runs after reporting"; return; }
	wait_until 5 no_others || { fail "$name" "processes left running: $(others)"; return; }
	report pass "$name"
}

SCENARIOS+=("fsf_locks|fs-locks")
sc_fsf_locks() { fsf_prep; cycle fs-locks fs/locks sig; }

SCENARIOS+=("fsf_fanotify|fs-fanotify")
sc_fsf_fanotify() { fsf_prep; cycle fs-fanotify fs/fanotify sig; }

# POSIX locks of processes that also map the file (SQLite's WAL -shm):
# taken again at restore_resume by syscall injection into each owner.
SCENARIOS+=("fsf_lock_mapped|fs-lock-mapped")
sc_fsf_lock_mapped() { fsf_prep; cycle fs-lock-mapped fs/lock_mapped sig; }

# Another process takes a lock conflicting with the parent's write lock
# between dump and restore: the late path fails the restore naming the
# lock, and nothing of the tree is left.
SCENARIOS+=("fsf_lock_mapped_taken|fail-fs-lock-mapped-taken")
sc_fsf_lock_mapped_taken() {
	local name=fail-fs-lock-mapped-taken D=$T/img hpid
	fsf_prep
	start_wl fs/lock_mapped || { fail $name "workload did not get ready"; return; }
	dump "$PID" "$D"
	((CK_RC == 0)) || { fail $name "dump $CK_WHY: $(stderr_line dump)"; return; }
	wait_until 10 gone "$PID" || { fail $name "pid $PID still runs after the dump"; return; }
	rm -f "$T/holder.ready"
	"$WL/fs/lock_mapped" hold "$T/lock-mapped" "$T/holder.ready" </dev/null >>"$T/holder.out" 2>&1 &
	hpid=$!
	if ! wait_until 10 test -s "$T/holder.ready"; then
		kill -9 "$hpid" 2>/dev/null
		wait "$hpid" 2>/dev/null
		fail $name "the lock holder did not get its lock: $(head -c 200 "$T/holder.out")"
		return
	fi
	expect_restore_fail $name "$D" "lock-mapped: its POSIX write lock of PID $PID \\(bytes 0\\+10\\) is held by another process"
	kill -9 "$hpid" 2>/dev/null
	wait "$hpid" 2>/dev/null
}
