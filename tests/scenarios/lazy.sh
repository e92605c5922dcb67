# Page server (dump streamed over TCP) and lazy restore (userfaultfd).
#
# Network: every scenario builds its own network namespaces (holder
# processes made by `unshare -n`), so ports never meet another test's; the
# two-host case joins two of them with a veth pair.  ckpt and the workload
# run inside through wrappers that nsenter first.
SCENARIOS+=(
	"ps_loopback|pageserver-loopback"
	"ps_netns|pageserver-netns"
	"ps_refused|fail-pageserver-refused"
	"ps_killed|fail-pageserver-killed"
	"ps_dropped|fail-pageserver-incomplete"
	"lazy_local|lazy-local"
	"lazy_ps|lazy-pageserver"
	"lazy_no_daemon|fail-lazy-no-daemon"
	"lazy_wl:core/tree|lazy-tree"
	"lazy_wl:core/threads|lazy-threads"
)

# netns_new VAR: a new network namespace with lo up, held by a sleep that
# is a child of this shell (so never one of `others`; the pid namespace
# takes it down at the end anyway).
netns_new() {
	local f=$T/ns.$RANDOM.pid
	unshare -n bash -c 'ip link set lo up && echo $$ >"$1" && exec sleep 600' _ "$f" &
	wait_until 5 test -s "$f" || return 1
	printf -v "$1" '%s' "$(<"$f")"
}

# in_ns H: wrappers for ckpt and the workloads that enter H's network
# namespace first; sets CKPT and WL for the caller (declare them local).
in_ns() {
	local h=$1 real_ck=${LZ_CKPT:=$CKPT} real_wl=${LZ_WL:=$WL} d=$T/ns-$1
	mkdir -p "$d/wl/mem"
	printf '#!/bin/sh\nexec nsenter --net=/proc/%s/ns/net -- %s "$@"\n' "$h" "$real_ck" >"$d/ckpt"
	printf '#!/bin/sh\nexec nsenter --net=/proc/%s/ns/net -- %s "$@"\n' "$h" "$real_wl/mem/lazymem" \
		>"$d/wl/mem/lazymem"
	chmod +x "$d/ckpt" "$d/wl/mem/lazymem"
	CKPT=$d/ckpt
	WL=$d/wl
}

# veth_join H1 H2: 10.231.0.1 in H1, 10.231.0.2 in H2.
veth_join() {
	nsenter --net="/proc/$1/ns/net" ip link add lzva type veth peer name lzvb netns "$2" &&
		nsenter --net="/proc/$1/ns/net" ip addr add 10.231.0.1/24 dev lzva &&
		nsenter --net="/proc/$1/ns/net" ip link set lzva up &&
		nsenter --net="/proc/$2/ns/net" ip addr add 10.231.0.2/24 dev lzvb &&
		nsenter --net="/proc/$2/ns/net" ip link set lzvb up
}

ns_kill() {
	local h
	for h in "$@"; do [[ -n $h ]] && kill "$h" 2>/dev/null; done
}

no_pages_in() { ! compgen -G "$1/pages-*.img" >/dev/null; }
pages_in() { compgen -G "$1/pages-*.img" >/dev/null; }

# ps_cycle NAME H_SRC H_DST ADDRESS: a 64 MiB lazymem in H_SRC dumped to a
# page server in H_DST, restored there from what arrived.
ps_cycle() {
	local name=$1 hs=$2 hd=$3 addr=$4 port=$((20000 + RANDOM % 20000)) CKPT=$CKPT WL=$WL
	local S=$T/src R=$T/recv
	in_ns "$hd"
	mkdir -p "$R"
	ck ps page-server -D "$R" --port "$port" --address "$addr" -d -v4 -o ps.log
	((CK_RC == 0)) || { fail "$name" "page-server $CK_WHY: $(stderr_line ps)"; return; }
	in_ns "$hs"
	CKPT_TEST_MEM_MB=64 start_wl mem/lazymem || { fail "$name" "workload did not get ready"; return; }
	dump "$PID" "$S" --page-server --address "$addr" --port "$port"
	((CK_RC == 0)) || { fail "$name" "dump --page-server $CK_WHY: $(stderr_line dump)"; return; }
	wait_until 10 gone "$PID" || { fail "$name" "pid $PID still runs after the dump"; return; }
	no_pages_in "$S" || { fail "$name" "the dump wrote pages locally"; return; }
	[[ -s $R/inventory.img ]] && pages_in "$R" || { fail "$name" "no complete image set arrived: $(ls "$R" | tr '\n' ' ')"; return; }
	grep -q 'received a complete dump' "$R/ps.log" || { fail "$name" "the page server did not report a complete dump"; return; }
	in_ns "$hd"
	cycle_restore_only "$name" "$R"
}

sc_ps_loopback() {
	local h
	netns_new h || { fail pageserver-loopback "cannot create a network namespace"; return; }
	ps_cycle pageserver-loopback "$h" "$h" 127.0.0.1
	ns_kill "$h"
}

sc_ps_netns() {
	local h1 h2
	netns_new h1 && netns_new h2 || { fail pageserver-netns "cannot create network namespaces"; return; }
	veth_join "$h1" "$h2" || { fail pageserver-netns "cannot join the namespaces with a veth pair"; ns_kill "$h1" "$h2"; return; }
	ps_cycle pageserver-netns "$h1" "$h2" 10.231.0.2
	ns_kill "$h1" "$h2"
}

sc_ps_refused() {
	local h CKPT=$CKPT WL=$WL
	netns_new h || { fail fail-pageserver-refused "cannot create a network namespace"; return; }
	in_ns "$h"
	CKPT_TEST_MEM_MB=16 expect_dump_fail fail-pageserver-refused 'cannot connect to the page server.*refused' \
		mem/lazymem -- --page-server --address 127.0.0.1 --port 21999
	ns_kill "$h"
}

# start_ps H DIR PORT [ARGS]: a page server in the foreground of a
# background job; PSPID its pid, ready when its --status-fd byte came.
start_ps() {
	local h=$1 dir=$2 port=$3
	shift 3
	mkdir -p "$dir"
	rm -f "$T/ps.status"
	nsenter --net="/proc/$h/ns/net" -- "$CKPT" page-server -D "$dir" --port "$port" \
		--status-fd 3 -v4 -o ps.log "$@" 3>"$T/ps.status" >"$T/ps.stdout" 2>"$T/ps.stderr" &
	PSPID=$!
	wait_until 10 test -s "$T/ps.status"
}

# The dump runs in the background until the page server got the pages
# image open, then the page server is frozen (the stream stalls) and
# VICTIM goes: "server" (killed) or "link" (the dump's TCP connection is
# destroyed with ss -K, then the server thaws and finds the stream cut).
ps_kill_mid_stream() {
	local name=$1 victim=$2 h port=$((20000 + RANDOM % 20000)) R=$T/recv st DPID PS_RC CKPT=$CKPT WL=$WL
	netns_new h || { fail "$name" "cannot create a network namespace"; return; }
	start_ps "$h" "$R" "$port" || { fail "$name" "page server did not get ready: $(head -n 1 "$T/ps.stderr")"; ns_kill "$h"; return; }
	in_ns "$h"
	start_wl mem/lazymem || { fail "$name" "workload did not get ready"; ns_kill "$h"; return; }
	mkdir -p "$T/src"
	"$CKPT" dump -t "$PID" -D "$T/src" -v4 -o dump.log --page-server --port "$port" \
		>"$T/dump.stdout" 2>"$T/dump.stderr" &
	DPID=$!
	if ! wait_until 30 pages_in "$R"; then
		fail "$name" "no pages image arrived"
		kill -9 "$PSPID" "$DPID" 2>/dev/null
		ns_kill "$h"
		return
	fi
	kill -STOP "$PSPID"
	sleep 0.2
	if [[ $victim == server ]]; then
		kill -9 "$PSPID"
		wait "$DPID"
		CK_RC=$?
		wait "$PSPID" 2>/dev/null
	else
		nsenter --net="/proc/$h/ns/net" ss -K dport = ":$port" >"$T/ss.out" 2>&1
		wait "$DPID"
		CK_RC=$?
		kill -CONT "$PSPID"
		wait "$PSPID"
		PS_RC=$?
	fi
	sed 's/^/  stderr: /' "$T/dump.stderr" "$T/ps.stderr"
	((CK_RC == 1)) || { fail "$name" "dump exited $CK_RC, want 1"; return; }
	one_line dump || { fail "$name" "the dump's stderr is not one line"; return; }
	grep -qE 'lost the page server' "$T/dump.stderr" || { fail "$name" "the dump's error does not say so: $(stderr_line dump)"; return; }
	if [[ $victim == link ]]; then
		((PS_RC == 1)) || { fail "$name" "page-server exited $PS_RC, want 1"; return; }
		one_line ps || { fail "$name" "the page server's stderr is not one line"; return; }
		grep -qE 'image set in .* is incomplete' "$T/ps.stderr" || { fail "$name" "the page server does not report an incomplete set: $(stderr_line ps)"; return; }
		ck bad-restore restore -D "$R" -d -v4 -o restore.log
		((CK_RC == 1)) && grep -q 'inventory.img is missing' "$T/bad-restore.stderr" ||
			{ fail "$name" "restore from the incomplete set was not refused: $(stderr_line bad-restore)"; return; }
	fi
	[[ ! -e $R/inventory.img ]] || { fail "$name" "an inventory was left in the incomplete set"; return; }
	wait_until 5 alive "$PID" || { fail "$name" "the workload died"; return; }
	wait_until 5 eval '[[ $(tracer_of "$PID") == 0 ]]' || { fail "$name" "the workload is still traced"; return; }
	st=$(state "$PID")
	[[ $st == [RS] ]] || { fail "$name" "the workload is left in state $st"; return; }
	signal_wait "$PID" 60 || { fail "$name" "no result after SIGUSR1: $(describe "$PID")"; return; }
	result_is_pass || { fail "$name" "workload after the failed dump: $(result_text)"; return; }
	wait_until 10 gone "$PID" || { fail "$name" "pid $PID still runs after reporting"; return; }
	wait_until 5 no_others || { fail "$name" "processes left running: $(others)"; return; }
	ns_kill "$h"
	report pass "$name"
}

sc_ps_killed() { ps_kill_mid_stream fail-pageserver-killed server; }
sc_ps_dropped() { ps_kill_mid_stream fail-pageserver-incomplete link; }

# lazy_check NAME DIR: restore --lazy-pages from DIR with the daemon
# already running, wake the 256 MiB lazymem at once (the daemon holds its
# background push back 2 s, so the fork, the mremap and the munmap meet
# missing memory), then the daemon must have seen them and exited.
# Returns 1 after fail().
lazy_check() {
	local name=$1 D=$2 lazylog=$3 msg
	restore "$D" --lazy-pages
	((CK_RC == 0)) || { fail "$name" "restore --lazy-pages $CK_WHY: $(stderr_line restore)"; return 1; }
	alive "$PID" || { fail "$name" "pid $PID is not running after restore --lazy-pages -d"; return 1; }
	msg=$(check_pidfile "$PID") || { fail "$name" "$msg"; return 1; }
	signal_wait "$PID" 60 || { fail "$name" "no result after SIGUSR1: $(describe "$PID")"; return 1; }
	result_is_pass || { fail "$name" "workload: $(result_text)"; return 1; }
	wait_until 10 gone "$PID" || { fail "$name" "pid $PID still runs after reporting"; return 1; }
	wait_until 30 no_others || { fail "$name" "processes left running (lazy-pages?): $(others)"; return 1; }
	show_logs "$lazylog"
	grep -qE 'all pages served .* [1-9][0-9]* faults .* 1 forks, [1-9][0-9]* remaps, [1-9][0-9]* unmaps' "$lazylog" ||
		{ fail "$name" "the daemon did not serve faults, a fork, an mremap and an munmap: $(grep 'all pages' "$lazylog")"; return 1; }
	return 0
}

sc_lazy_local() {
	local D=$T/img
	start_wl mem/lazymem || { fail lazy-local "workload did not get ready"; return; }
	dump "$PID" "$D"
	((CK_RC == 0)) || { fail lazy-local "dump $CK_WHY: $(stderr_line dump)"; return; }
	wait_until 10 gone "$PID" || { fail lazy-local "pid $PID still runs after the dump"; return; }
	CKPT_LAZY_PUSH_DELAY_MS=2000 ck lazy lazy-pages -D "$D" -d -v4 -o lazy.log
	((CK_RC == 0)) || { fail lazy-local "lazy-pages $CK_WHY: $(stderr_line lazy)"; return; }
	lazy_check lazy-local "$D" "$D/lazy.log" || return
	report pass lazy-local
}

# Pages from a page server in lazy mode in another namespace: the source
# keeps the dump and serves its pages, the destination restores from a
# copy of the images and fetches every missing page over the veth.
sc_lazy_ps() {
	local h1 h2 S=$T/src D=$T/dst port=$((20000 + RANDOM % 20000)) CKPT=$CKPT WL=$WL
	netns_new h1 && netns_new h2 || { fail lazy-pageserver "cannot create network namespaces"; return; }
	veth_join "$h1" "$h2" || { fail lazy-pageserver "cannot join the namespaces"; ns_kill "$h1" "$h2"; return; }
	in_ns "$h1"
	start_wl mem/lazymem || { fail lazy-pageserver "workload did not get ready"; ns_kill "$h1" "$h2"; return; }
	dump "$PID" "$S"
	((CK_RC == 0)) || { fail lazy-pageserver "dump $CK_WHY: $(stderr_line dump)"; ns_kill "$h1" "$h2"; return; }
	wait_until 10 gone "$PID" || { fail lazy-pageserver "pid $PID still runs after the dump"; ns_kill "$h1" "$h2"; return; }
	ck ps page-server --lazy-pages -D "$S" --address 10.231.0.1 --port "$port" -d -v4 -o ps.log
	((CK_RC == 0)) || { fail lazy-pageserver "page-server --lazy-pages $CK_WHY: $(stderr_line ps)"; ns_kill "$h1" "$h2"; return; }
	cp -a "$S" "$D" && rm -f "$D"/*.log
	in_ns "$h2"
	CKPT_LAZY_PUSH_DELAY_MS=2000 ck lazy lazy-pages -D "$D" --page-server --address 10.231.0.1 --port "$port" -d -v4 -o lazy.log
	((CK_RC == 0)) || { fail lazy-pageserver "lazy-pages $CK_WHY: $(stderr_line lazy)"; ns_kill "$h1" "$h2"; return; }
	lazy_check lazy-pageserver "$D" "$D/lazy.log" || return
	wait_until 10 grep -qE 'served [1-9][0-9]+ bytes of pages' "$S/ps.log" ||
		{ fail lazy-pageserver "the page server served no pages: $(tail -n 1 "$S/ps.log")"; return; }
	ns_kill "$h1" "$h2"
	report pass lazy-pageserver
}

sc_lazy_no_daemon() {
	local D=$T/img
	CKPT_TEST_MEM_MB=16 start_wl mem/lazymem || { fail fail-lazy-no-daemon "workload did not get ready"; return; }
	dump "$PID" "$D"
	((CK_RC == 0)) || { fail fail-lazy-no-daemon "dump $CK_WHY: $(stderr_line dump)"; return; }
	wait_until 10 gone "$PID" || { fail fail-lazy-no-daemon "pid $PID still runs after the dump"; return; }
	ck restore restore -D "$D" -d -v4 -o restore.log --lazy-pages
	if ((CK_RC != 1)); then
		fail fail-lazy-no-daemon "restore --lazy-pages without a daemon $CK_WHY, want 1"
	elif ! one_line restore; then
		fail fail-lazy-no-daemon "stderr is not one line"
	elif ! grep -q 'no lazy-pages daemon listens.*ckpt lazy-pages -D' "$T/restore.stderr"; then
		fail fail-lazy-no-daemon "the error does not say what to do: $(stderr_line restore)"
	elif ! wait_until 5 gone "$PID"; then
		fail fail-lazy-no-daemon "pid $PID runs after the failed restore"
	elif ! wait_until 5 no_others; then
		fail fail-lazy-no-daemon "processes left running: $(others)"
	else
		report pass fail-lazy-no-daemon
	fi
}

# A workload of the core, restored with --lazy-pages: several processes
# (core/tree) or threads (core/threads) sharing the daemon.
sc_lazy_wl() {
	local w=$1 name=lazy-${1##*/} D=$T/img msg
	start_wl "$w" || { fail "$name" "workload did not get ready"; return; }
	sleep 0.3
	dump "$PID" "$D"
	((CK_RC == 0)) || { fail "$name" "dump $CK_WHY: $(stderr_line dump)"; return; }
	wait_until 10 gone "$PID" || { fail "$name" "pid $PID still runs after the dump"; return; }
	ck lazy lazy-pages -D "$D" -d -v4 -o lazy.log
	((CK_RC == 0)) || { fail "$name" "lazy-pages $CK_WHY: $(stderr_line lazy)"; return; }
	restore "$D" --lazy-pages
	((CK_RC == 0)) || { fail "$name" "restore --lazy-pages $CK_WHY: $(stderr_line restore)"; return; }
	msg=$(check_pidfile "$PID") || { fail "$name" "$msg"; return; }
	signal_wait "$PID" 60 || { fail "$name" "no result after SIGUSR1: $(describe "$PID")"; return; }
	result_is_pass || { fail "$name" "workload: $(result_text)"; return; }
	wait_until 10 gone "$PID" || { fail "$name" "pid $PID still runs after reporting"; return; }
	wait_until 30 no_others || { fail "$name" "processes left running (lazy-pages?): $(others)"; return; }
	grep -q 'all pages served' "$D/lazy.log" || { fail "$name" "the daemon did not finish: $(tail -n 1 "$D/lazy.log")"; return; }
	report pass "$name"
}
