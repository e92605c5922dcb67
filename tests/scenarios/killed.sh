# ckpt itself stopped in the middle of a dump, after it froze the tree and
# ran syscalls in it.  SIGKILL (OOM killer, a runtime's timeout): the
# kernel detaches the tree, which must run on as if nothing happened.
# SIGTERM (or SIGINT, SIGHUP): ckpt takes its failure path, says so in one
# line, exits 1 and leaves the tree as it was.  The hang test plugin stops
# the dump at the first fd it is asked about until a signal comes.
SCENARIOS+=("killed_mid_dump|killed-mid-dump killed-mid-dump-threads interrupted-mid-dump")

stopped_once() {
	local name=$1 wl=$2 sig=$3 mark=$T/hang.mark ck_pid rc
	need_test_plugin "$name" hang || return
	rm -f "$mark"
	rm -rf "$T/img"
	printf '[plugin.hang]\nenabled = true\npath = %s\nfile = %s\n' "$TESTPLUG/ckpt-hang.so" "$mark" >"$T/hang.conf"
	start_wl "$wl" || { fail "$name" "workload did not get ready"; return; }
	mkdir -p "$T/img"
	# hang first: the fd is asked of the plugins in the order given
	ASAN_OPTIONS=${ASAN_OPTIONS_BASE:-} "$CKPT" --config "$T/hang.conf" --plugins=hang,fs \
		dump -t "$PID" -D "$T/img" -v4 -o dump.log </dev/null >"$T/dump.stdout" 2>"$T/dump.stderr" &
	ck_pid=$!
	if ! wait_until 30 test -e "$mark"; then
		kill -KILL "$ck_pid" 2>/dev/null
		wait "$ck_pid" 2>/dev/null
		fail "$name" "the dump never reached the plugin: $(stderr_line dump)"
		return
	fi
	kill "-$sig" "$ck_pid"
	wait "$ck_pid"
	rc=$?
	if [[ $sig == TERM ]]; then
		((rc == 1)) || { fail "$name" "ckpt exited $rc after SIGTERM, want 1"; return; }
		one_line dump || { fail "$name" "stderr is not one line"; return; }
		grep -q 'interrupted by SIGTERM' "$T/dump.stderr" ||
			{ fail "$name" "the error does not name the signal: $(stderr_line dump)"; return; }
		[[ ! -e $T/img/inventory.img ]] || { fail "$name" "an inventory was written"; return; }
	fi
	expect_left_running "$name" && report pass "$name"
}

sc_killed_mid_dump() {
	stopped_once killed-mid-dump counter KILL
	stopped_once killed-mid-dump-threads core/threads KILL
	stopped_once interrupted-mid-dump core/threads TERM
}
