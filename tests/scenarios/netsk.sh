# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=bash
#
# Netlink and packet sockets of the net plugin (sourced by tests/run-tests.sh;
# net_cycle is in net.sh).  The packet socket listens on lo of the test's
# network namespace, filtered to a UDP port the workload holds.

SCENARIOS+=(
	"net_nl_packet|net-netlink-packet"
	"net_fail_nl_unread|net-fail-netlink-unread"
	"net_fail_nl_dumping|net-fail-netlink-dumping"
)

sc_net_nl_packet() { net_cycle net-netlink-packet net/nl_packet; }
sc_net_fail_nl_unread() {
	expect_dump_fail net-fail-netlink-unread 'unread netlink messages' net/nl_packet unread
}
sc_net_fail_nl_dumping() {
	expect_dump_fail net-fail-netlink-dumping 'netlink dump request is in progress' net/nl_packet dumping
}
