# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=bash
#
# Network lock, network namespaces and live migration between two "hosts"
# (network namespaces joined by veth), sourced by tests/run-tests.sh.
# Workloads: tests/workloads/net/tcp_locked (the dumped tree, bytes both
# ways all the time) and tcp_streamer (its peer, outside the tree).  Names
# of namespaces and links carry a random suffix: other test runs may share
# this machine's network namespace.

SCENARIOS+=(
	"net_lock|net-lock-tcp-peer net-lock-control-reset"
	"net_netns|net-fail-netns-external-missing net-netns-restore"
	"net_netns_runs_on|net-netns-fail-no-plugin net-netns-fail-dump-unlocks net-netns-leave-running"
	"net_migrate|net-migrate-two-hosts"
)

netns_have_tools() {
	command -v ip >/dev/null && command -v nft >/dev/null && command -v nsenter >/dev/null &&
		command -v python3 >/dev/null
}

# What a network namespace holds, one line per thing, without what the
# kernel recomputes (operstate, carrier, link-local addresses, ifindex of
# an outside peer): links, addresses, routes, some sysctls, the ruleset.
NETNS_SNAP_PY='
import json, subprocess
def ip(*a):
    out = subprocess.run(["ip", "-j", *a], capture_output=True, text=True).stdout
    return json.loads(out) if out.strip() else []
links = ip("-d", "link")
names = {l["ifindex"]: l["ifname"] for l in links}
for l in links:
    kind = l.get("linkinfo", {}).get("info_kind", l.get("link_type"))
    print("link", l["ifname"], kind, l["mtu"], l.get("address"), "UP" in l["flags"],
          names.get(l.get("master"), l.get("master")))
for l in ip("addr"):
    for a in l.get("addr_info", []):
        if not a["local"].startswith("fe80"):
            print("addr", l["ifname"], a["local"], a["prefixlen"])
for fam in ("-4", "-6"):
    for r in ip(fam, "route", "show", "table", "main"):
        if r["dst"].startswith(("fe80", "ff00", "multicast")):
            continue
        print("route", r["dst"], r.get("gateway"), r.get("dev"), r.get("protocol"))
for s in ("ipv4/ip_forward", "ipv4/conf/all/forwarding", "ipv4/conf/eth0/rp_filter",
          "ipv6/conf/all/forwarding", "ipv4/ip_local_port_range"):
    print("sysctl", s, open("/proc/sys/net/" + s).read().split())
print(subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True).stdout)
'
netns_snap() { nsenter -t "$1" -n python3 -c "$NETNS_SNAP_PY"; }

# netns_lock_table DIR: the lock table the dump into DIR made (its log
# names it; ckpt_lock_PID_RANDOM), empty when there is none.
netns_lock_table() {
	local t
	t=$(grep -o 'locked in nftables table inet ckpt_lock_[0-9a-f_]*' "$1/dump.log" 2>/dev/null)
	t=${t%%$'\n'*}
	echo "${t##* }"
}

# The byte counts of the tree and of its peer must match: nothing lost,
# nothing twice.  The tree writes "got=A sent=B", the peer "PASS got=B sent=A".
netns_counts_match() {
	local tree peer tg ts pg ps
	tree=$(<"$T/locked.count") peer=$(<"$1")
	tg=${tree#got=} tg=${tg%% *} ts=${tree##*sent=}
	pg=${peer#*got=} pg=${pg%% *} ps=${peer##*sent=}
	[[ -n $tg && $tg == "$ps" && $ts == "$pg" ]] ||
		{ echo "tree: $tree, peer: $peer"; return 1; }
}

# net_lock_run NAME locked|unlocked: the tree talks to a peer on
# 127.0.0.1 that keeps sending while the tree is dumped, gone and restored.
# locked: the peer must see no reset and every byte must arrive once.
# unlocked: the lock table is taken away by hand after the dump: the peer
# must get a reset, which shows that the lock is what keeps the connection.
net_lock_run() {
	local name=$1 mode=$2 D=$T/img spid port table msg
	rm -rf "$D" "$T/port" "$T/peer.res" "$T/locked.count"
	"$WL/net/tcp_streamer" 127.0.0.1 "$T/port" "$T/peer.res" >>"$T/streamer.out" 2>&1 &
	spid=$!
	if ! wait_until 10 test -s "$T/port"; then
		kill "$spid" 2>/dev/null
		fail "$name" "the peer did not listen"
		return
	fi
	port=$(<"$T/port")
	start_wl net/tcp_locked 127.0.0.1 "$port" || { kill "$spid"; fail "$name" "workload did not get ready"; return; }
	sleep 0.3
	dump "$PID" "$D" --tcp-established
	((CK_RC == 0)) || { kill "$spid"; fail "$name" "dump $CK_WHY: $(stderr_line dump)"; return; }
	wait_until 10 gone "$PID" || { kill "$spid"; fail "$name" "pid $PID still runs after the dump"; return; }
	table=$(netns_lock_table "$D")
	if [[ -z $table ]] || ! nft list table inet "$table" 2>/dev/null | grep -q "\. $port "; then
		kill "$spid"
		fail "$name" "no nftables table $table locks port $port after the dump"
		return
	fi
	[[ $mode == unlocked ]] && nft delete table inet "$table"
	sleep 1.5 # the peer sends all along; its segments must be dropped, not answered
	if [[ $mode == locked && -s $T/peer.res ]]; then
		kill "$spid"
		fail "$name" "the peer gave up while the tree was gone: $(<"$T/peer.res")"
		return
	fi
	restore "$D" --tcp-established
	((CK_RC == 0)) || { kill "$spid"; fail "$name" "restore $CK_WHY: $(stderr_line restore)"; return; }
	msg=$(check_pidfile "$PID") || { kill "$spid"; fail "$name" "$msg"; return; }
	if nft list table inet "$table" >/dev/null 2>&1; then
		kill "$spid"
		fail "$name" "the lock table $table is still there after the restore"
		return
	fi
	signal_wait "$PID" 60
	if [[ $mode == unlocked ]]; then
		kill "$spid" 2>/dev/null
		wait "$spid" 2>/dev/null
		[[ $(<"$T/peer.res") == *"reset by peer"* ]] ||
			{ fail "$name" "without the lock the peer should see a reset: $(cat "$T/peer.res" 2>/dev/null)"; return; }
		wait_until 10 gone "$PID" || kill -9 "$PID" 2>/dev/null
		wait_until 5 no_others || { fail "$name" "processes left running: $(others)"; return; }
		report pass "$name"
		return
	fi
	result_is_pass || { kill "$spid"; fail "$name" "workload: $(result_text)"; return; }
	wait "$spid"
	[[ $(<"$T/peer.res") == PASS* ]] || { fail "$name" "the peer: $(<"$T/peer.res")"; return; }
	msg=$(netns_counts_match "$T/peer.res") || { fail "$name" "byte counts differ: $msg"; return; }
	wait_until 10 gone "$PID" || { fail "$name" "pid $PID still runs after reporting"; return; }
	wait_until 5 no_others || { fail "$name" "processes left running: $(others)"; return; }
	log "$name: $(<"$T/locked.count")"
	report pass "$name"
}

sc_net_lock() {
	if ! netns_have_tools; then
		report skip net-lock-tcp-peer "ip, nft, nsenter or python3 missing (./setup.sh installs them)"
		report skip net-lock-control-reset "ip, nft, nsenter or python3 missing"
		return
	fi
	net_lock_run net-lock-tcp-peer locked
	net_lock_run net-lock-control-reset unlocked
}

# A tree in a network namespace of its own: lo, a veth whose peer is
# outside (eth0), a bridge with an IPv4 and an IPv6 address, a macvlan on
# eth0, a route through a gateway, sysctls changed and an nftables rule.
# Its TCP connection goes out through the veth to a peer in ckpt's
# namespace.  The dump locks the namespace; the "machine" is then taken
# away (the namespace deleted, so the veth is gone); a restore without
# --external must say which veth needs a name, the one with it recreates
# everything, and the connection lives on.
sc_net_netns() {
	local name=net-netns-restore D=$T/img sfx N O sub spid port msg
	if ! netns_have_tools; then
		report skip net-fail-netns-external-missing "ip, nft, nsenter or python3 missing"
		report skip net-netns-restore "ip, nft, nsenter or python3 missing"
		return
	fi
	sfx=$(printf '%04x' $((RANDOM)))
	N=ckptns$sfx O=ckv$sfx sub=10.$((RANDOM % 200 + 20)).$((RANDOM % 250))
	rm -rf "$D" "$T/port" "$T/peer.res" "$T/locked.count"
	if ! { ip netns add "$N" &&
		ip link add "$O" type veth peer name eth0 netns "$N" &&
		ip addr add "$sub.1/24" dev "$O" && ip link set "$O" up &&
		ip -n "$N" link set lo up && ip -n "$N" link set eth0 up &&
		ip -n "$N" addr add "$sub.2/24" dev eth0 &&
		ip -n "$N" link add br0 type bridge && ip -n "$N" link set br0 mtu 1400 up &&
		ip -n "$N" addr add 192.168.251.1/24 dev br0 &&
		ip -n "$N" addr add fd00:77::1/64 dev br0 nodad &&
		ip -n "$N" link add mv0 link eth0 type macvlan mode bridge &&
		ip -n "$N" route add 10.99.0.0/16 via "$sub.1" &&
		ip netns exec "$N" sh -c 'echo 1 >/proc/sys/net/ipv4/ip_forward &&
			echo 2 >/proc/sys/net/ipv4/conf/eth0/rp_filter &&
			echo "20000 40000" >/proc/sys/net/ipv4/ip_local_port_range' &&
		nsenter --net=/run/netns/"$N" nft add table inet filt &&
		nsenter --net=/run/netns/"$N" nft add chain inet filt in '{ type filter hook input priority 0; }' &&
		nsenter --net=/run/netns/"$N" nft add rule inet filt in tcp dport 9999 counter drop; }; then
		ip netns del "$N" 2>/dev/null
		fail "$name" "cannot set up the network namespace"
		report fail net-fail-netns-external-missing "not run: no namespace"
		return
	fi
	"$WL/net/tcp_streamer" "$sub.1" "$T/port" "$T/peer.res" >>"$T/streamer.out" 2>&1 &
	spid=$!
	netns_fail() {
		kill "$spid" 2>/dev/null
		ip netns del "$N" 2>/dev/null
		ip link del "$O" 2>/dev/null
		fail "$name" "$1"
		[[ -n ${2:-} ]] && report fail net-fail-netns-external-missing "not run: $1"
	}
	wait_until 10 test -s "$T/port" || { netns_fail "the peer did not listen" x; return; }
	port=$(<"$T/port")
	CKPT_TEST_NETNS=/run/netns/$N start_wl net/tcp_locked "$sub.1" "$port" ||
		{ netns_fail "workload did not get ready" x; return; }
	sleep 0.3
	netns_snap "$PID" >"$T/ns.before"
	dump "$PID" "$D" --tcp-established
	((CK_RC == 0)) || { netns_fail "dump $CK_WHY: $(stderr_line dump)" x; return; }
	wait_until 10 gone "$PID" || { netns_fail "pid $PID still runs after the dump" x; return; }
	nsenter --net=/run/netns/"$N" nft list table inet ckpt_lock_ns >/dev/null 2>&1 ||
		{ netns_fail "the tree's namespace is not locked after the dump" x; return; }
	# the machine goes away: namespace, veth and the address on our side
	ip netns del "$N"
	wait_until 10 eval "! ip link show $O >/dev/null 2>&1" ||
		{ netns_fail "veth $O outlives its namespace" x; return; }
	expect_restore_fail net-fail-netns-external-missing "$D" 'veth eth0.*--external veth\[eth0\]'
	restore "$D" --tcp-established --external "veth[eth0]:$O"
	((CK_RC == 0)) || { netns_fail "restore $CK_WHY: $(stderr_line restore)"; return; }
	msg=$(check_pidfile "$PID") || { netns_fail "$msg"; return; }
	# our end of the new veth gets its address back, as the host's network
	# setup would do for a new interface
	{ ip addr add "$sub.1/24" dev "$O" && ip link set "$O" up; } ||
		{ netns_fail "cannot set up $O again"; return; }
	netns_snap "$PID" >"$T/ns.after"
	if ! diff "$T/ns.before" "$T/ns.after" >"$T/ns.diff"; then
		netns_fail "the namespace differs after the restore: $(head -c 400 "$T/ns.diff" | tr '\n' ' ')"
		return
	fi
	signal_wait "$PID" 60 || { netns_fail "no result after SIGUSR1: $(describe "$PID")"; return; }
	result_is_pass || { netns_fail "workload: $(result_text)"; return; }
	wait "$spid"
	[[ $(<"$T/peer.res") == PASS* ]] || { netns_fail "the peer: $(<"$T/peer.res")"; return; }
	msg=$(netns_counts_match "$T/peer.res") || { netns_fail "byte counts differ: $msg"; return; }
	wait_until 10 gone "$PID" || { netns_fail "pid $PID still runs after reporting"; return; }
	wait_until 10 eval "! ip link show $O >/dev/null 2>&1" || ip link del "$O" 2>/dev/null
	wait_until 5 no_others || { fail "$name" "processes left running: $(others)"; return; }
	log "$name: $(wc -l <"$T/ns.after") lines of namespace state equal; $(<"$T/locked.count")"
	report pass "$name"
}

# A tree in a namespace of its own that runs on: a dump without the net
# plugin is refused (no plugin claims the namespace), a dump that fails (no
# --tcp-established) and a dump -R must all leave its namespace unlocked,
# its connection working.
sc_net_netns_runs_on() {
	local name=net-netns-fail-no-plugin sfx N O sub spid port msg
	if ! netns_have_tools; then
		report skip "$name" "ip, nft, nsenter or python3 missing"
		report skip net-netns-fail-dump-unlocks "ip, nft, nsenter or python3 missing"
		report skip net-netns-leave-running "ip, nft, nsenter or python3 missing"
		return
	fi
	sfx=$(printf '%04x' $((RANDOM)))
	N=ckptns$sfx O=ckv$sfx sub=10.$((RANDOM % 200 + 20)).$((RANDOM % 250))
	rm -rf "$T/img" "$T/port" "$T/peer.res" "$T/locked.count"
	runs_fail() {
		kill "$spid" 2>/dev/null
		[[ -n ${PID:-} ]] && kill -9 "$PID" 2>/dev/null
		ip netns del "$N" 2>/dev/null
		fail "$name" "$1"
		[[ $name == net-netns-fail-no-plugin ]] && report fail net-netns-fail-dump-unlocks "not run: $1"
		[[ $name != net-netns-leave-running ]] && report fail net-netns-leave-running "not run: $1"
	}
	if ! { ip netns add "$N" && ip link add "$O" type veth peer name eth0 netns "$N" &&
		ip addr add "$sub.1/24" dev "$O" && ip link set "$O" up &&
		ip -n "$N" link set lo up && ip -n "$N" link set eth0 up &&
		ip -n "$N" addr add "$sub.2/24" dev eth0; }; then
		spid=
		runs_fail "cannot set up the network namespace"
		return
	fi
	"$WL/net/tcp_streamer" "$sub.1" "$T/port" "$T/peer.res" >>"$T/streamer.out" 2>&1 &
	spid=$!
	wait_until 10 test -s "$T/port" || { runs_fail "the peer did not listen"; return; }
	port=$(<"$T/port")
	CKPT_TEST_NETNS=/run/netns/$N start_wl net/tcp_locked "$sub.1" "$port" ||
		{ runs_fail "workload did not get ready"; return; }
	sleep 0.3
	dump "$PID" "$T/img" --tcp-established --plugins=fs
	((CK_RC == 1)) || { runs_fail "dump without the net plugin $CK_WHY, want 1"; return; }
	grep -q 'net namespace of its own; no enabled plugin saves it' "$T/dump.stderr" ||
		{ runs_fail "unexpected error: $(stderr_line dump)"; return; }
	alive "$PID" || { runs_fail "the tree died in the refused dump"; return; }
	report pass "$name"
	name=net-netns-fail-dump-unlocks
	rm -rf "$T/img"
	dump "$PID" "$T/img"
	((CK_RC == 1)) || { runs_fail "dump without --tcp-established $CK_WHY, want 1"; return; }
	grep -q 'tcp-established' "$T/dump.stderr" || { runs_fail "unexpected error: $(stderr_line dump)"; return; }
	alive "$PID" || { runs_fail "the tree died in the failed dump"; return; }
	nsenter --net=/run/netns/"$N" nft list tables | grep -q ckpt_lock &&
		{ runs_fail "the namespace stays locked after the failed dump"; return; }
	report pass "$name"
	name=net-netns-leave-running
	rm -rf "$T/img"
	dump "$PID" "$T/img" -R --tcp-established
	((CK_RC == 0)) || { runs_fail "dump -R $CK_WHY: $(stderr_line dump)"; return; }
	alive "$PID" || { runs_fail "the tree is gone after dump -R"; return; }
	nsenter --net=/run/netns/"$N" nft list tables | grep -q ckpt_lock &&
		{ runs_fail "the namespace stays locked after dump -R"; return; }
	signal_wait "$PID" 60 || { runs_fail "no result after SIGUSR1: $(describe "$PID")"; return; }
	result_is_pass || { runs_fail "workload: $(result_text)"; return; }
	wait "$spid"
	[[ $(<"$T/peer.res") == PASS* ]] || { runs_fail "the peer: $(<"$T/peer.res")"; return; }
	msg=$(netns_counts_match "$T/peer.res") || { runs_fail "byte counts differ: $msg"; return; }
	wait_until 10 gone "$PID" || { runs_fail "pid $PID still runs after reporting"; return; }
	ip netns del "$N"
	wait_until 5 no_others || { fail "$name" "processes left running: $(others)"; return; }
	report pass "$name"
}

# Live migration: hosts A and B and a client C are network namespaces; C
# holds a bridge with a veth to A and one to B.  The server (tcp_locked
# listen) runs on A with the service address, ckpt runs on A too, so the
# tree is in ckpt's namespace and the lock is per connection.  Dump on A,
# copy the images, move the service MAC from A to B, restore on B, then
# add the service address there: the client streams on, no byte lost or
# repeated.  docs/migration.md
# is the how-to of these same steps.
sc_net_migrate() {
	local name=net-migrate-two-hosts sfx A B C sub D=$T/img-a E=$T/img-b cpid mac msg table
	if ! netns_have_tools; then
		report skip "$name" "ip, nft, nsenter or python3 missing"
		return
	fi
	sfx=$(printf '%04x' $((RANDOM)))
	A=ckA$sfx B=ckB$sfx C=ckC$sfx sub=10.$((RANDOM % 200 + 20)).$((RANDOM % 250))
	mig_cleanup() {
		[[ -n ${cpid:-} ]] && kill "$cpid" 2>/dev/null
		ip netns del "$A" 2>/dev/null
		ip netns del "$B" 2>/dev/null
		ip netns del "$C" 2>/dev/null
	}
	mig_fail() { mig_cleanup; fail "$name" "$1"; }
	rm -rf "$D" "$E" "$T/peer.res" "$T/locked.count" "$T/locked.port"
	if ! { ip netns add "$A" && ip netns add "$B" && ip netns add "$C" &&
		ip -n "$C" link add br0 type bridge && ip -n "$C" link set br0 up &&
		ip -n "$C" addr add "$sub.3/24" dev br0 && ip -n "$C" link set lo up &&
		ip -n "$C" link add toA type veth peer name eth0 netns "$A" &&
		ip -n "$C" link add toB type veth peer name eth0 netns "$B" &&
		ip -n "$C" link set toA master br0 up && ip -n "$C" link set toB master br0 up &&
		ip -n "$A" link set lo up && ip -n "$A" link set eth0 up &&
		ip -n "$B" link set lo up && ip -n "$B" link set eth0 up &&
		ip -n "$A" addr add "$sub.1/24" dev eth0 && ip -n "$B" addr add "$sub.2/24" dev eth0; }; then
		mig_fail "cannot build the three namespaces"
		return
	fi
	# the server on A; the client on C connects once it listens
	(
		wait_until 30 test -s "$T/locked.port" || exit 1
		exec nsenter --net=/run/netns/"$C" "$WL/net/tcp_streamer" connect "$sub.1" \
			"$(<"$T/locked.port")" "$T/peer.res"
	) >>"$T/streamer.out" 2>&1 &
	cpid=$!
	CKPT_TEST_NETNS=/run/netns/$A start_wl net/tcp_locked listen "$sub.1" ||
		{ mig_fail "the server did not get its client: $(cat "$T/peer.res" 2>/dev/null)"; return; }
	sleep 0.5
	# ckpt itself runs on host A, then on host B
	printf '#!/bin/sh\nexec nsenter --net=/run/netns/%s %s "$@"\n' "$A" "$CKPT" >"$T/ckpt-on-A"
	printf '#!/bin/sh\nexec nsenter --net=/run/netns/%s %s "$@"\n' "$B" "$CKPT" >"$T/ckpt-on-B"
	chmod +x "$T/ckpt-on-A" "$T/ckpt-on-B"
	CKPT=$T/ckpt-on-A dump "$PID" "$D" --tcp-established
	((CK_RC == 0)) || { mig_fail "dump on A $CK_WHY: $(stderr_line dump)"; return; }
	wait_until 10 gone "$PID" || { mig_fail "pid $PID still runs after the dump"; return; }
	table=$(netns_lock_table "$D")
	{ [[ -n $table ]] && nsenter --net=/run/netns/"$A" nft list table inet "$table" >/dev/null 2>&1; } ||
		{ mig_fail "host A does not lock the connection after the dump"; return; }
	# "copy the images to host B"
	cp -a "$D" "$E" || { mig_fail "cannot copy the images"; return; }
	# the service address moves with the server, its MAC too, so the
	# client's neighbour entry stays right.  The MAC first: without the
	# address B drops what reaches it and answers nothing; the address only
	# once the restored server holds the connection, else B would reset it.
	mac=$(ip -n "$A" -br link show eth0 | awk '{print $3}')
	if ! { ip -n "$A" addr del "$sub.1/24" dev eth0 && ip -n "$A" link set eth0 down &&
		ip -n "$B" link set eth0 down && ip -n "$B" link set eth0 address "$mac" &&
		ip -n "$B" link set eth0 up; }; then
		mig_fail "cannot move the MAC of $sub.1 from A to B"
		return
	fi
	sleep 1 # the client keeps sending into the gap
	[[ -s $T/peer.res ]] && { mig_fail "the client gave up during the move: $(<"$T/peer.res")"; return; }
	CKPT=$T/ckpt-on-B restore "$E" --tcp-established
	((CK_RC == 0)) || { mig_fail "restore on B $CK_WHY: $(stderr_line restore)"; return; }
	ip -n "$B" addr add "$sub.1/24" dev eth0 || { mig_fail "cannot add $sub.1 on B"; return; }
	msg=$(check_pidfile "$PID") || { mig_fail "$msg"; return; }
	[[ $(readlink "/proc/$PID/ns/net") == "$(nsenter --net=/run/netns/"$B" readlink /proc/self/ns/net)" ]] ||
		{ mig_fail "the restored server is not in host B's namespace"; return; }
	nsenter --net=/run/netns/"$B" nft list tables 2>/dev/null | grep -q ckpt_lock &&
		{ mig_fail "host B keeps a lock table after the restore"; return; }
	signal_wait "$PID" 60 || { mig_fail "no result after SIGUSR1: $(describe "$PID")"; return; }
	result_is_pass || { mig_fail "server: $(result_text)"; return; }
	wait "$cpid"
	cpid=
	[[ $(<"$T/peer.res") == PASS* ]] || { mig_fail "the client: $(<"$T/peer.res")"; return; }
	msg=$(netns_counts_match "$T/peer.res") || { mig_fail "byte counts differ: $msg"; return; }
	wait_until 10 gone "$PID" || { mig_fail "pid $PID still runs after reporting"; return; }
	# host A's lock is left for its admin; take it away as the how-to says
	nsenter --net=/run/netns/"$A" nft delete table inet "$table"
	mig_cleanup
	wait_until 5 no_others || { fail "$name" "processes left running: $(others)"; return; }
	log "$name: $(<"$T/locked.count")"
	report pass "$name"
}
