# Pre-dump chains through the page server (iterative migration) and with
# compressed page images.  The workload (mem/memwrite) writes pages between
# the dumps and verifies all its memory at every round and after the
# restore; the page server runs in another network namespace, joined to the
# source by a veth pair (netns_new, veth_join, ns_kill: lazy.sh).
SCENARIOS+=(
	"chain_ps|chain-ps-migrate chain-ps-source-record chain-ps-source-no-restore chain-ps-corrupt-parent chain-ps-missing-parent"
	"chain_ps_refused|chain-ps-parent-refused"
	"chain_ps_compress|chain-ps-compressed"
	"chain_ps_layout|chain-ps-server-prev-dir chain-streamed-parent-needs-ps"
	"chain_compress|chain-compress-lz4-zstd chain-compress-corrupt-parent"
)

# ch_ns H: wrappers that run ckpt and mem/memwrite in H's network namespace
# (sets CKPT and WL for the caller; declare them local).
ch_ns() {
	local h=$1 real_ck=${CH_CKPT:=$CKPT} real_wl=${CH_WL:=$WL} d=$T/chns-$1
	mkdir -p "$d/wl/mem"
	printf '#!/bin/sh\nexec nsenter --net=/proc/%s/ns/net -- %s "$@"\n' "$h" "$real_ck" >"$d/ckpt"
	printf '#!/bin/sh\nexec nsenter --net=/proc/%s/ns/net -- %s "$@"\n' "$h" "$real_wl/mem/memwrite" \
		>"$d/wl/mem/memwrite"
	chmod +x "$d/ckpt" "$d/wl/mem/memwrite"
	CKPT=$d/ckpt
	WL=$d/wl
}

ch_round() {
	echo "$1" >"$T/want"
	wait_until 20 grep -qx "$1" "$T/done" 2>/dev/null
}

ch_holder() { [[ -s $1/track.pid ]] && cat "$1/track.pid"; }

# ch_server DIR PORT [ARGS]: a page server for one dump, in namespace
# $CH_DST (10.231.0.2); its log is DIR/ps.log.
ch_server() {
	local dir=$1 port=$2 CKPT=$CKPT WL=$WL
	shift 2
	ch_ns "$CH_DST"
	mkdir -p "$dir"
	ck ps page-server -D "$dir" --port "$port" --address 10.231.0.2 -d -v4 -o ps.log "$@"
}

# ch_dump CMD SRC DST PORT [ARGS]: CMD (dump or pre-dump) of $PID from
# namespace $CH_SRC into SRC, streamed to a fresh page server for DST.
ch_dump() {
	local cmd=$1 src=$2 dst=$3 port=$4 CKPT=$CKPT WL=$WL
	shift 4
	ch_server "$dst" "$port" ${CH_PS_ARGS:-}
	((CK_RC == 0)) || { CK_WHY="page-server $CK_WHY"; return; }
	ch_ns "$CH_SRC"
	mkdir -p "$src"
	ck dump "$cmd" -t "$PID" -D "$src" -v4 -o dump.log --page-server --address 10.231.0.2 \
		--port "$port" "$@"
}

pages_bytes() { cat "$1"/pages-*.img 2>/dev/null | wc -c; }

# ch_migrate NAME C1 C2 C3: two pre-dumps and a dump, each with its
# --compress argument (none: uncompressed), streamed to $T/dst/1..3, then
# restored on the destination through the chain 3 -> 2 -> 1.
ch_migrate() {
	local name=$1 c1=$2 c2=$3 c3=$4 S=$T/src D=$T/dst port=$((20000 + RANDOM % 20000))
	local h1 h2 s1 s2 CKPT=$CKPT WL=$WL
	rm -rf "$S" "$D" "$T/want" "$T/done"
	ch_ns "$CH_SRC"
	start_wl mem/memwrite 64 || { fail "$name" "workload did not get ready"; return 1; }
	ch_dump pre-dump "$S/1" "$D/1" "$port" --compress="$c1"
	((CK_RC == 0)) || { fail "$name" "first pre-dump $CK_WHY: $(stderr_line dump)"; return 1; }
	h1=$(ch_holder "$S/1")
	[[ -n $h1 ]] && alive "$h1" || { fail "$name" "no tracking holder after the first pre-dump"; return 1; }
	ch_round 1 || { fail "$name" "round 1 did not finish: $(result_text)"; return 1; }
	ch_dump pre-dump "$S/2" "$D/2" $((port + 1)) --prev-images-dir ../1 --compress="$c2"
	((CK_RC == 0)) || { fail "$name" "second pre-dump $CK_WHY: $(stderr_line dump)"; return 1; }
	wait_until 10 gone "$h1" || { fail "$name" "the holder $h1 of the first pre-dump still runs"; return 1; }
	h2=$(ch_holder "$S/2")
	ch_round 2 || { fail "$name" "round 2 did not finish: $(result_text)"; return 1; }
	ch_dump dump "$S/3" "$D/3" $((port + 2)) --prev-images-dir ../2 --compress="$c3"
	((CK_RC == 0)) || { fail "$name" "dump $CK_WHY: $(stderr_line dump)"; return 1; }
	wait_until 10 gone "$PID" || { fail "$name" "pid $PID still runs after the dump"; return 1; }
	[[ -n $h2 ]] && { wait_until 10 gone "$h2" || { fail "$name" "the holder $h2 still runs"; return 1; }; }
	local k
	for k in 1 2 3; do
		[[ -s $D/$k/inventory.img ]] || { fail "$name" "no verified image set in dst/$k: $(ls "$D/$k" | tr '\n' ' ')"; return 1; }
		pages_in "$S/$k" && { fail "$name" "src/$k holds page images: the pages must only go to the server"; return 1; }
	done
	[[ $(readlink "$D/2/parent") == ../1 && $(readlink "$D/3/parent") == ../2 ]] ||
		{ fail "$name" "parent links on the destination: 2 -> $(readlink "$D/2/parent"), 3 -> $(readlink "$D/3/parent")"; return 1; }
	s1=$(pages_bytes "$D/1")
	s2=$(pages_bytes "$D/2")
	log "pages sent: pre-dump 1 $s1 bytes, pre-dump 2 $s2 bytes, dump $(pages_bytes "$D/3") bytes"
	((s2 * 2 < s1)) || { fail "$name" "the second pre-dump sent $s2 bytes of pages, the first $s1"; return 1; }
	ch_ns "$CH_DST"
	cp -a "$D" "$T/dst.orig"
	cycle_restore_only "$name" "$D/3"
	grep -q 'chain of 2 parent dump' "$D/3/restore.log" ||
		{ fail "$name" "the restore did not read through a chain of 2 parents"; return 1; }
	return 0
}

ch_netns() {
	netns_new CH_SRC && netns_new CH_DST || return 1
	veth_join "$CH_SRC" "$CH_DST"
}

sc_chain_ps() {
	local CH_SRC= CH_DST= D=$T/dst S=$T/src vp
	ch_netns || { fail chain-ps-migrate "cannot create two joined network namespaces"; ns_kill "$CH_SRC" "$CH_DST"; return; }
	if ch_migrate chain-ps-migrate none none none; then
		# what the source keeps: the page maps and what was sent, no pages
		vp=$(<"$T/ready")
		if [[ -s $S/1/sent-inventory.img && -s $S/1/pagemap-$vp.img && -s $S/1/mm-$vp.img && ! -e $S/1/inventory.img ]]; then
			report pass chain-ps-source-record
		else
			fail chain-ps-source-record "src/1 holds: $(ls "$S/1" | tr '\n' ' ')"
		fi
		expect_restore_fail chain-ps-source-no-restore "$S/2" "page server's directory"
		local CKPT=$CKPT WL=$WL
		ch_ns "$CH_DST"
		# a parent on the destination whose pages changed: refused
		flip_byte "$D/1/pages-$vp.img" 8192
		expect_restore_fail chain-ps-corrupt-parent "$D/3" 'corrupt|checksum'
		rm -rf "$D"
		cp -a "$T/dst.orig" "$D"
		rm -rf "$D/1"
		expect_restore_fail chain-ps-missing-parent "$D/3" 'parent.*gone|No such file'
	fi
	ns_kill "$CH_SRC" "$CH_DST"
}

# B lays its directories out differently: page-server --prev-images-dir
# names the parent on its side; a streamed record is no local parent
sc_chain_ps_layout() {
	local CH_SRC= CH_DST= S=$T/src D=$T/dst port=$((20000 + RANDOM % 20000)) name=chain-ps-server-prev-dir
	local CKPT=$CKPT WL=$WL h1
	ch_netns || { fail $name "cannot create two joined network namespaces"; ns_kill "$CH_SRC" "$CH_DST"; return; }
	rm -rf "$S" "$D" "$T/want" "$T/done"
	ch_ns "$CH_SRC"
	start_wl mem/memwrite 16 || { fail $name "workload did not get ready"; ns_kill "$CH_SRC" "$CH_DST"; return; }
	ch_dump pre-dump "$S/1" "$D/first" "$port"
	((CK_RC == 0)) || { fail $name "pre-dump $CK_WHY: $(stderr_line dump)"; ns_kill "$CH_SRC" "$CH_DST"; return; }
	h1=$(ch_holder "$S/1")
	ch_round 1 || { fail $name "round 1 did not finish: $(result_text)"; ns_kill "$CH_SRC" "$CH_DST"; return; }
	mkdir -p "$S/2"
	ck local pre-dump -t "$PID" -D "$S/2" -v4 -o dump.log --prev-images-dir ../1
	if ((CK_RC != 1)) || ! one_line local || ! grep -q 'with --page-server' "$T/local.stderr"; then
		fail chain-streamed-parent-needs-ps "a local pre-dump against a streamed one: $CK_WHY: $(stderr_line local)"
	elif ! alive "$h1"; then
		fail chain-streamed-parent-needs-ps "the refused pre-dump stopped the tracking"
	else
		report pass chain-streamed-parent-needs-ps
	fi
	CH_PS_ARGS="--prev-images-dir $D/first" ch_dump dump "$S/2" "$D/last" $((port + 1)) --prev-images-dir ../1
	((CK_RC == 0)) || { fail $name "dump $CK_WHY: $(stderr_line dump)"; ns_kill "$CH_SRC" "$CH_DST"; return; }
	wait_until 10 gone "$PID" || { fail $name "pid $PID still runs after the dump"; ns_kill "$CH_SRC" "$CH_DST"; return; }
	[[ $(readlink "$D/last/parent") == "$D/first" ]] ||
		{ fail $name "dst/last/parent -> $(readlink "$D/last/parent"), want $D/first"; ns_kill "$CH_SRC" "$CH_DST"; return; }
	ch_ns "$CH_DST"
	cycle_restore_only $name "$D/last"
	grep -q 'chain of 1 parent dump' "$D/last/restore.log" || fail $name "the restore did not read through the parent"
	ns_kill "$CH_SRC" "$CH_DST"
}

# the destination lacks the parent: the pre-dump is refused before anything
# is frozen, the tree runs on and the tracking of the parent survives
sc_chain_ps_refused() {
	local CH_SRC= CH_DST= S=$T/src D=$T/dst port=$((20000 + RANDOM % 20000)) h1 name=chain-ps-parent-refused
	local CKPT=$CKPT WL=$WL
	ch_netns || { fail $name "cannot create two joined network namespaces"; ns_kill "$CH_SRC" "$CH_DST"; return; }
	rm -rf "$S" "$D" "$T/want" "$T/done"
	ch_ns "$CH_SRC"
	start_wl mem/memwrite 16 || { fail $name "workload did not get ready"; ns_kill "$CH_SRC" "$CH_DST"; return; }
	ch_dump pre-dump "$S/1" "$D/1" "$port"
	((CK_RC == 0)) || { fail $name "pre-dump $CK_WHY: $(stderr_line dump)"; ns_kill "$CH_SRC" "$CH_DST"; return; }
	h1=$(ch_holder "$S/1")
	rm -rf "$D/1"
	ch_dump pre-dump "$S/2" "$D/2" $((port + 1)) --prev-images-dir ../1
	if ((CK_RC != 1)); then
		fail $name "pre-dump against a missing parent $CK_WHY, want 1"
	elif ! one_line dump; then
		fail $name "stderr is not one line"
	elif ! grep -qiE 'rejected the parent.*parent' "$T/dump.stderr"; then
		fail $name "the error does not name the parent: $(stderr_line dump)"
	elif ! alive "$h1"; then
		fail $name "the refused pre-dump stopped the tracking of the first one"
	elif ! wait_until 5 gone_ps "$D/2"; then
		fail $name "the page server still runs"
	elif [[ -e $D/2/parent || -e $D/2/inventory.img ]]; then
		fail $name "the refused dump left $(ls "$D/2" | tr '\n' ' ') on the destination"
	elif ! ch_round 1; then
		fail $name "the workload does not run on: $(result_text)"
	else
		ck cleanup pre-dump --cleanup -D "$S/1"
		wait_until 10 gone "$h1" || { fail $name "holder $h1 still runs after --cleanup"; ns_kill "$CH_SRC" "$CH_DST"; return; }
		signal_wait "$PID" 30 && result_is_pass || { fail $name "workload: $(result_text)"; ns_kill "$CH_SRC" "$CH_DST"; return; }
		wait_until 10 gone "$PID"
		if wait_until 5 no_others "$CH_SRC" "$CH_DST"; then report pass $name
		else fail $name "processes left running: $(others "$CH_SRC" "$CH_DST")"
		fi
	fi
	[[ -n $PID ]] && kill -9 "$PID" 2>/dev/null
	ns_kill "$CH_SRC" "$CH_DST"
}

# the page server of DIR has exited (its log says how it ended)
gone_ps() { grep -qE 'cannot go on|not usable|received a complete' "$1/ps.log" 2>/dev/null && ! pgrep -f "page-server -D $1 " >/dev/null; }

sc_chain_ps_compress() {
	local CH_SRC= CH_DST=
	ch_netns || { fail chain-ps-compressed "cannot create two joined network namespaces"; ns_kill "$CH_SRC" "$CH_DST"; return; }
	ch_migrate chain-ps-compressed zstd none lz4
	ns_kill "$CH_SRC" "$CH_DST"
}

# local chain: an uncompressed pre-dump, an lz4 one, a zstd dump
sc_chain_compress() {
	local D1=$T/cz1 D2=$T/cz2 D3=$T/cz3 vp name=chain-compress-lz4-zstd
	rm -rf "$D1" "$D2" "$D3" "$T/want" "$T/done"
	start_wl mem/memwrite 64 || { fail $name "workload did not get ready"; return; }
	mkdir -p "$D1" "$D2"
	ck predump pre-dump -t "$PID" -D "$D1" -v4 -o dump.log
	((CK_RC == 0)) || { fail $name "pre-dump $CK_WHY: $(stderr_line predump)"; return; }
	ch_round 1 || { fail $name "round 1 did not finish: $(result_text)"; return; }
	ck predump pre-dump -t "$PID" -D "$D2" -v4 -o dump.log --prev-images-dir ../cz1 --compress=lz4
	((CK_RC == 0)) || { fail $name "lz4 pre-dump $CK_WHY: $(stderr_line predump)"; return; }
	ch_round 2 || { fail $name "round 2 did not finish: $(result_text)"; return; }
	dump "$PID" "$D3" --prev-images-dir ../cz2 --compress=zstd:3
	((CK_RC == 0)) || { fail $name "zstd dump $CK_WHY: $(stderr_line dump)"; return; }
	wait_until 10 gone "$PID" || { fail $name "pid $PID still runs after the dump"; return; }
	vp=$(<"$T/ready")
	[[ ! -e $D1/pageblocks-$vp.img && -s $D2/pageblocks-$vp.img && -s $D3/pageblocks-$vp.img ]] ||
		{ fail $name "compressed images: 1 $(ls "$D1" | grep -c pageblocks), 2 $(ls "$D2" | grep -c pageblocks), 3 $(ls "$D3" | grep -c pageblocks)"; return; }
	"$CKPT" show "$D2" 2>/dev/null | grep -q 'compression: lz4' && "$CKPT" show "$D3" 2>/dev/null | grep -q 'compression: zstd' ||
		{ fail $name "show does not report lz4 in cz2 and zstd in cz3"; return; }
	cp -a "$D2" "$T/cz2.orig"
	cycle_restore_only $name "$D3"
	grep -q 'chain of 2 parent dump' "$D3/restore.log" || { fail $name "the restore did not read through a chain of 2 parents"; return; }

	# a compressed parent whose block changed: refused, nothing left running
	flip_byte "$D2/pages-$vp.img" 100
	expect_restore_fail chain-compress-corrupt-parent "$D3" 'corrupt|checksum'
	rm -rf "$D2"
	mv "$T/cz2.orig" "$D2"
}
