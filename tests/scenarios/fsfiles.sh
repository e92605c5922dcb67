# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=bash
#
# Scenarios of the fs plugin's file classes: ghost (unlinked but open)
# files, regular files changed between dump and restore.  Sourced by
# tests/run-tests.sh at global scope; workloads in tests/workloads/fs/.

SCENARIOS+=(
	"fsf_ghost|fs-ghost"
	"fsf_ghost_big|fs-ghost-big"
	"fsf_ghost_flip|fail-fs-ghost-flipped"
)

fsf_prep() { mkdir -p "$T/fs"; }

sc_fsf_ghost() { fsf_prep; cycle fs-ghost fs/ghost sig; }

# 64 MiB, 4 MiB of it data: the image holds the data, not the holes.
sc_fsf_ghost_big() {
	local sz
	fsf_prep
	cycle fs-ghost-big fs/ghost_big sig
	[[ -f $T/img/fs-ghost-data.img ]] || return 0
	sz=$(stat -c %s "$T/img/fs-ghost-data.img")
	((sz < 8 * 1024 * 1024)) || log "WARNING: fs-ghost-data.img is $sz bytes for 4 MiB of data"
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
