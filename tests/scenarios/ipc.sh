# SysV IPC (sourced by tests/run-tests.sh): the objects of a tree's own ipc
# namespace come back with their ids, contents, messages and values; a
# tree in the host's namespace attaches its live segments again.

# Own ipc namespace: one dump; the image must be sparse (a 16 MiB segment
# with two pages written); broken copies of ipc.img / ipc-pages.img are
# refused; then the untouched images restore and the workload verifies.
SCENARIOS+=("ipc_sysv|core-sysv-ipc-dump core-sysv-ipc-sparse core-fail-ipc-image core-fail-ipc-missing core-fail-ipc-pages core-sysv-ipc")
sc_ipc_sysv() {
	local D=$T/img size d
	start_wl ipc/sysv || { fail core-sysv-ipc-dump "workload did not get ready"; return; }
	dump "$PID" "$D"
	if ((CK_RC != 0)) || [[ ! -f $D/ipc.img || ! -f $D/ipc-pages.img ]]; then
		fail core-sysv-ipc-dump "dump $CK_WHY: $(stderr_line dump)"
		for d in core-sysv-ipc-sparse core-fail-ipc-image core-fail-ipc-missing core-fail-ipc-pages core-sysv-ipc; do
			report fail "$d" "not reached: the dump failed or wrote no ipc.img/ipc-pages.img (see core-sysv-ipc-dump)"
		done
		return
	fi
	wait_until 10 gone "$PID" || { fail core-sysv-ipc-dump "pid $PID still runs after the dump"; return; }
	report pass core-sysv-ipc-dump

	size=$(stat -c %s "$D/ipc-pages.img")
	if ((size > 1024 * 1024)); then
		fail core-sysv-ipc-sparse "ipc-pages.img has $size bytes for 9 written pages: holes were saved"
	elif ((size < 32868)); then
		fail core-sysv-ipc-sparse "ipc-pages.img has only $size bytes, less than the 32868 written"
	else
		report pass core-sysv-ipc-sparse "$size bytes"
	fi

	cp -a "$D" "$T/img-ipcflip"
	flip_byte "$T/img-ipcflip/ipc.img" $(($(stat -c %s "$D/ipc.img") - 20))
	expect_restore_fail core-fail-ipc-image "$T/img-ipcflip" 'ipc\.img'

	cp -a "$D" "$T/img-ipcgone"
	rm -f "$T/img-ipcgone/ipc.img"
	expect_restore_fail core-fail-ipc-missing "$T/img-ipcgone" 'ipc\.img'

	cp -a "$D" "$T/img-ipcpages"
	truncate -s 4096 "$T/img-ipcpages/ipc-pages.img"
	expect_restore_fail core-fail-ipc-pages "$T/img-ipcpages" 'ipc-pages\.img'

	cycle_restore_only core-sysv-ipc "$D"
}

# No ipc namespace of its own: the segment stays in the host's while the
# tree is dumped and is attached again by id; when it was removed in
# between, the restore says so and creates nothing.
SCENARIOS+=("ipc_sysv_host|core-sysv-host core-fail-sysv-host-gone")
sc_ipc_sysv_host() {
	local id
	rm -f "$T/sysv-host.id"
	cycle core-sysv-host ipc/sysv sig host
	id=$(cat "$T/sysv-host.id" 2>/dev/null)
	[[ -n $id ]] && ipcrm -m "$id" 2>/dev/null

	rm -f "$T/sysv-host.id"
	start_wl ipc/sysv host || { fail core-fail-sysv-host-gone "workload did not get ready"; return; }
	dump "$PID" "$T/img-host"
	((CK_RC == 0)) || { fail core-fail-sysv-host-gone "dump $CK_WHY: $(stderr_line dump)"; return; }
	wait_until 10 gone "$PID" || { fail core-fail-sysv-host-gone "pid $PID still runs after the dump"; return; }
	id=$(<"$T/sysv-host.id")
	ipcrm -m "$id" || { fail core-fail-sysv-host-gone "cannot remove segment $id"; return; }
	expect_restore_fail core-fail-sysv-host-gone "$T/img-host" 'SysV shm segment.*gone'
}

# Private memory a parent shares copy-on-write with its 4 children (32 MiB,
# each child rewrote 4 pages) is saved once: without that the pages
# images would hold 5 x 32 MiB.  Then every process checks its memory.
SCENARIOS+=("ipc_cow|core-cow-once-dump core-cow-once")
sc_ipc_cow() {
	local D=$T/img total
	start_wl ipc/cow 32 4 || { fail core-cow-once-dump "workload did not get ready"; return; }
	dump "$PID" "$D"
	((CK_RC == 0)) || { fail core-cow-once-dump "dump $CK_WHY: $(stderr_line dump)"; report fail core-cow-once "not reached"; return; }
	wait_until 10 gone "$PID" || { fail core-cow-once-dump "pid $PID still runs after the dump"; return; }
	total=$(cat "$D"/pages-*.img | wc -c)
	if ((total > 48 * 1024 * 1024)); then
		fail core-cow-once-dump "the pages images hold $total bytes for 32 MiB shared by 5 processes: shared pages were saved more than once"
	elif ((total < 32 * 1024 * 1024)); then
		fail core-cow-once-dump "the pages images hold only $total bytes, less than the parent's 32 MiB"
	else
		report pass core-cow-once-dump "$((total / 1024)) KiB of pages"
	fi
	cycle_restore_only core-cow-once "$D"
}
