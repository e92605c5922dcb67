# Incremental dumps (issue #8): pre-dump tracks writes with userfaultfd
# async write-protect; dump --prev-images-dir saves only what changed;
# restore reads through the parent chain.  The workload (mem/memwrite)
# verifies all its memory at every round and after the restore.
SCENARIOS+=("predump|predump-incremental predump-no-trace predump-corrupt-parent predump-restore-predump-refused predump-replaced-parent")
SCENARIOS+=("predump_chain|predump-chain3-vma-changes")
SCENARIOS+=("predump_cleanup|predump-abandoned-cleanup predump-task-exits predump-no-holder-full")

# memwrite rounds: ask for round N, wait until it is done
mw_round() {
	local n=$1
	echo "$n" >"$T/want"
	wait_until 20 grep -qx "$n" "$T/done" 2>/dev/null
}

has_uffd() { ls -l "/proc/$1/fd" 2>/dev/null | grep -q userfaultfd; }

predump() {
	local pid=$1 dir=$2
	shift 2
	mkdir -p "$dir"
	ck predump pre-dump -t "$pid" -D "$dir" -v4 -o dump.log "$@"
}

holder_of() { [[ -s $1/track.pid ]] && cat "$1/track.pid"; }

sc_predump() {
	local D1=$T/pd1 D2=$T/pd2 h1 s1 s2 vp
	rm -f "$T/want" "$T/done"
	start_wl mem/memwrite 64 || { fail predump-incremental "workload did not get ready"; return; }
	predump "$PID" "$D1"
	((CK_RC == 0)) || { fail predump-incremental "pre-dump $CK_WHY: $(stderr_line predump)"; return; }
	alive "$PID" || { fail predump-incremental "the workload does not run after the pre-dump"; return; }
	h1=$(holder_of "$D1")
	[[ -n $h1 ]] && alive "$h1" || { fail predump-incremental "no tracking holder after the pre-dump"; return; }
	if has_uffd "$PID"; then fail predump-no-trace "a userfaultfd is among the fds of $PID"
	elif [[ $(tracer_of "$PID") != 0 ]]; then fail predump-no-trace "the workload is still traced"
	elif ! mw_round 1; then fail predump-no-trace "round 1 after the pre-dump did not finish: $(result_text)"
	elif [[ -s $T/result ]]; then fail predump-no-trace "the workload failed while tracked: $(result_text)"
	else report pass predump-no-trace
	fi
	dump "$PID" "$D2" --prev-images-dir ../pd1
	((CK_RC == 0)) || { fail predump-incremental "dump --prev-images-dir $CK_WHY: $(stderr_line dump)"; return; }
	wait_until 10 gone "$PID" || { fail predump-incremental "pid $PID still runs after the dump"; return; }
	wait_until 10 gone "$h1" || { fail predump-incremental "the holder $h1 of the pre-dump still runs"; return; }
	[[ $(readlink "$D2/parent") == ../pd1 ]] || { fail predump-incremental "no parent link in the dump"; return; }
	vp=$(<"$T/ready")
	s1=$(stat -c %s "$D1/pages-$vp.img")
	s2=$(stat -c %s "$D2/pages-$vp.img")
	log "pages: pre-dump $s1 bytes, incremental dump $s2 bytes"
	((s2 * 2 < s1)) || { fail predump-incremental "the incremental dump saved $s2 bytes of pages, the pre-dump $s1"; return; }
	cp -a "$D1" "$T/pd1.orig"
	cycle_restore_only predump-incremental "$D2"

	# a parent whose pages changed: refused, nothing left running
	flip_byte "$D1/pages-$vp.img" 8192 || { fail predump-corrupt-parent "cannot modify the parent"; return; }
	expect_restore_fail predump-corrupt-parent "$D2" 'parent|corrupt|checksum'
	rm -rf "$D1"
	mv "$T/pd1.orig" "$D1"
	expect_restore_fail predump-restore-predump-refused "$D1" 'pre-dump'

	# a parent replaced by another (valid) dump: its inventory is not the
	# one the child was made against
	rm -f "$T/want" "$T/done"
	start_wl mem/memwrite 16 || { fail predump-replaced-parent "workload did not get ready"; return; }
	predump "$PID" "$T/pdx"
	((CK_RC == 0)) || { fail predump-replaced-parent "pre-dump $CK_WHY: $(stderr_line predump)"; return; }
	h1=$(holder_of "$T/pdx")
	kill -9 "$PID"
	wait_until 10 gone "$h1" || { fail predump-replaced-parent "holder $h1 still runs after the task died"; return; }
	rm -rf "$D1"
	mv "$T/pdx" "$D1"
	expect_restore_fail predump-replaced-parent "$D2" 'not the dump|replaced'
}

sc_predump_chain() {
	local D1=$T/pd1 D2=$T/pd2 D3=$T/pd3 h2
	# a chain of three, with a mapping unmapped, one created and one moved
	rm -rf "$D1" "$D2" "$T/want" "$T/done"
	start_wl mem/memwrite 64 || { fail predump-chain3-vma-changes "workload did not get ready"; return; }
	predump "$PID" "$D1"
	((CK_RC == 0)) || { fail predump-chain3-vma-changes "pre-dump $CK_WHY: $(stderr_line predump)"; return; }
	mw_round 1 || { fail predump-chain3-vma-changes "round 1 did not finish: $(result_text)"; return; }
	# round 2 (writes, mremap) is asked for first: it runs as soon as the
	# second pre-dump lets the tree go, while that copies the pages
	echo 2 >"$T/want"
	predump "$PID" "$D2" --prev-images-dir ../pd1
	((CK_RC == 0)) || { fail predump-chain3-vma-changes "second pre-dump $CK_WHY: $(stderr_line predump)"; return; }
	h2=$(holder_of "$D2")
	mw_round 2 || { fail predump-chain3-vma-changes "round 2 did not finish: $(result_text)"; return; }
	dump "$PID" "$D3" --prev-images-dir ../pd2
	((CK_RC == 0)) || { fail predump-chain3-vma-changes "dump $CK_WHY: $(stderr_line dump)"; return; }
	wait_until 10 gone "$PID" || { fail predump-chain3-vma-changes "pid $PID still runs after the dump"; return; }
	[[ -n $h2 ]] && { wait_until 10 gone "$h2" || { fail predump-chain3-vma-changes "holder $h2 still runs"; return; }; }
	cycle_restore_only predump-chain3-vma-changes "$D3"
}

sc_predump_cleanup() {
	local D1=$T/pd1 D2=$T/pd2 h1
	# abandoned: the task runs on untouched; --cleanup stops the holder
	rm -rf "$D1" "$D2" "$T/want" "$T/done"
	start_wl mem/memwrite 32 || { fail predump-abandoned-cleanup "workload did not get ready"; return; }
	predump "$PID" "$D1"
	((CK_RC == 0)) || { fail predump-abandoned-cleanup "pre-dump $CK_WHY: $(stderr_line predump)"; return; }
	h1=$(holder_of "$D1")
	mw_round 1 || { fail predump-abandoned-cleanup "round 1 did not finish: $(result_text)"; return; }
	ck cleanup pre-dump --cleanup -D "$D1"
	((CK_RC == 0)) || { fail predump-abandoned-cleanup "pre-dump --cleanup $CK_WHY: $(stderr_line cleanup)"; return; }
	wait_until 10 gone "$h1" || { fail predump-abandoned-cleanup "holder $h1 still runs after --cleanup"; return; }
	[[ -e $D1/track.sock ]] && { fail predump-abandoned-cleanup "track.sock left in the directory"; return; }
	mw_round 2 || { fail predump-abandoned-cleanup "round 2 after the cleanup did not finish: $(result_text)"; return; }
	has_uffd "$PID" && { fail predump-abandoned-cleanup "a userfaultfd is among the fds of $PID"; return; }
	signal_wait "$PID" 30 && result_is_pass || { fail predump-abandoned-cleanup "workload: $(result_text)"; return; }
	wait_until 10 gone "$PID"
	report pass predump-abandoned-cleanup

	# the tree exits between pre-dump and dump: the holder goes too
	rm -rf "$D1" "$T/want" "$T/done"
	start_wl mem/memwrite 16 || { fail predump-task-exits "workload did not get ready"; return; }
	predump "$PID" "$D1"
	((CK_RC == 0)) || { fail predump-task-exits "pre-dump $CK_WHY: $(stderr_line predump)"; return; }
	h1=$(holder_of "$D1")
	kill -9 "$PID"
	wait_until 10 gone "$h1" || { fail predump-task-exits "holder $h1 still runs after the task died"; return; }
	report pass predump-task-exits

	# no holder (cleaned up): the dump warns and saves everything
	rm -rf "$D1" "$D2" "$T/want" "$T/done"
	start_wl mem/memwrite 16 || { fail predump-no-holder-full "workload did not get ready"; return; }
	predump "$PID" "$D1"
	((CK_RC == 0)) || { fail predump-no-holder-full "pre-dump $CK_WHY: $(stderr_line predump)"; return; }
	ck cleanup pre-dump --cleanup -D "$D1"
	mw_round 1 || { fail predump-no-holder-full "round 1 did not finish: $(result_text)"; return; }
	dump "$PID" "$D2" --prev-images-dir ../pd1
	((CK_RC == 0)) || { fail predump-no-holder-full "dump $CK_WHY: $(stderr_line dump)"; return; }
	grep -q 'not tracked' "$T/dump.stderr" || { fail predump-no-holder-full "no warning about the lost tracking: $(stderr_line dump)"; return; }
	[[ -e $D2/parent ]] && { fail predump-no-holder-full "a parent link although nothing was tracked"; return; }
	wait_until 10 gone "$PID" || { fail predump-no-holder-full "pid $PID still runs after the dump"; return; }
	cycle_restore_only predump-no-holder-full "$D2"
}

# A tree with zombies: every live process tracked and restored through
# the chain; the holder follows all of them.
SCENARIOS+=("predump_tree|predump-tree")

sc_predump_tree() {
	local D1=$T/pt1 D2=$T/pt2 h
	start_wl core/tree || { fail predump-tree "workload did not get ready"; return; }
	sleep 0.3
	predump "$PID" "$D1"
	((CK_RC == 0)) || { fail predump-tree "pre-dump $CK_WHY: $(stderr_line predump)"; return; }
	h=$(holder_of "$D1")
	[[ -n $h ]] && alive "$h" || { fail predump-tree "no tracking holder after the pre-dump"; return; }
	sleep 0.3
	dump "$PID" "$D2" --prev-images-dir ../pt1
	((CK_RC == 0)) || { fail predump-tree "dump $CK_WHY: $(stderr_line dump)"; return; }
	wait_until 10 gone "$PID" || { fail predump-tree "pid $PID still runs after the dump"; return; }
	wait_until 10 gone "$h" || { fail predump-tree "holder $h still runs after the dump"; return; }
	grep -q in_parent <("$CKPT" show "$D2" 2>/dev/null) || { fail predump-tree "nothing was taken from the parent"; return; }
	cycle_restore_only predump-tree "$D2"
}

# Processes sharing pages copy-on-write (ipc/cow), pre-dumped and dumped
# incrementally: the pages each took from the parent dump come back too.
SCENARIOS+=("predump_cow|predump-cow")

sc_predump_cow() {
	local D1=$T/pc1 D2=$T/pc2
	start_wl ipc/cow 32 4 || { fail predump-cow "workload did not get ready"; return; }
	predump "$PID" "$D1"
	((CK_RC == 0)) || { fail predump-cow "pre-dump $CK_WHY: $(stderr_line predump)"; return; }
	dump "$PID" "$D2" --prev-images-dir ../pc1
	((CK_RC == 0)) || { fail predump-cow "dump $CK_WHY: $(stderr_line dump)"; return; }
	wait_until 10 gone "$PID" || { fail predump-cow "pid $PID still runs after the dump"; return; }
	grep -q in_parent <("$CKPT" show "$D2" 2>/dev/null) || { fail predump-cow "nothing was taken from the parent"; return; }
	cycle_restore_only predump-cow "$D2"
}
