#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# setup.sh — install the build dependencies, build ckpt, and run the demo or
# the tests.  Meant for a fresh Debian 12, as root.
#
#   ./setup.sh demo    checkpoint a running counter and restore it
#   ./setup.sh test    run tests/run-tests.sh (exit status is its status)
#   ./setup.sh build   only install the dependencies and build
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$ROOT"
BUILD=$ROOT/build

PACKAGES=(meson ninja-build pkg-config gcc protobuf-c-compiler libprotobuf-c-dev libinih-dev libcap-dev
	libnl-3-dev libnl-route-3-dev libnftables-dev nftables iproute2 libdrm-dev libxxhash-dev
	libzstd-dev liblz4-dev python3)

if [[ -t 1 ]]; then
	say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
else
	say() { printf '\n==> %s\n' "$*"; }
fi
die() { echo "setup.sh: $*" >&2; exit 1; }

install_packages() {
	local missing=() p
	for p in "${PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	if ((${#missing[@]} == 0)); then
		echo "build dependencies already installed"
		return
	fi
	(($(id -u) == 0)) || die "missing packages (${missing[*]}); run as root to install them"
	command -v apt-get >/dev/null || die "missing packages (${missing[*]}) and no apt-get"
	say "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update
	apt-get install -y --no-install-recommends "${PACKAGES[@]}"
}

build() {
	if [[ ! -f $BUILD/build.ninja ]]; then
		say "meson setup build"
		meson setup "$BUILD"
	fi
	say "ninja -C build"
	ninja -C "$BUILD"
}

# The demo proper; runs as PID 2 of its own pid namespace (under nsrun), so
# the demo process gets a small PID that is free again after the dump.
demo_inner() {
	local D=$ROOT/demo-images CKPT=$BUILD/core/ckpt PID i before after first
	rm -rf "$D"
	mkdir -p "$D"

	say "starting the demo counter (stdout -> demo-images/demo.log)"
	(CKPT_TEST_READY=$D/ready exec "$BUILD/tests/workloads/demo" </dev/null >>"$D/demo.log" 2>&1 &)
	for ((i = 0; i < 100; i++)); do
		[[ -s $D/ready ]] && break
		sleep 0.1
	done
	[[ -s $D/ready ]] || die "the demo did not start"
	PID=$(<"$D/ready")
	sleep 2.2
	tail -n 3 "$D/demo.log"

	say "ckpt dump -t $PID -D demo-images/img"
	if ! "$CKPT" dump -t "$PID" -D "$D/img" -v4 -o dump.log; then
		tail -n 20 "$D/img/dump.log" 2>/dev/null
		die "dump failed"
	fi
	for ((i = 0; i < 50; i++)); do
		[[ -e /proc/$PID ]] || break
		sleep 0.1
	done
	if [[ -e /proc/$PID ]]; then
		die "pid $PID still exists after the dump"
	fi
	before=$(tail -n 1 "$D/demo.log")
	echo "pid $PID is gone; the images:"
	ls -l "$D/img"
	sleep 1.5
	[[ $(tail -n 1 "$D/demo.log") == "$before" ]] && echo "(no ticks while it is only an image)"

	say "ckpt restore -D demo-images/img -d"
	if ! "$CKPT" restore -D "$D/img" -d -v4 -o restore.log; then
		tail -n 20 "$D/img/restore.log" 2>/dev/null
		die "restore failed"
	fi
	sleep 2.2
	tail -n 5 "$D/demo.log"

	first=$(grep -A1 -xF "$before" "$D/demo.log" | tail -n 1)
	before=${before#demo: tick }
	before=${before%% *}
	after=${first#demo: tick }
	after=${after%% *}
	# SIGUSR1 ends the demo (it exits by itself)
	kill -USR1 "$PID" 2>/dev/null || true
	for ((i = 0; i < 30; i++)); do
		[[ -e /proc/$PID ]] || break
		sleep 0.1
	done
	if [[ $first == "demo: tick $((before + 1)) (pid $PID)" ]]; then
		say "the counter went on from tick $before to $after with pid $PID: restored"
	else
		die "after tick $before the log shows '$first', not tick $((before + 1)) of pid $PID"
	fi
}

case ${1:-} in
__demo_inner)
	demo_inner
	;;
demo)
	install_packages
	build
	(($(id -u) == 0)) || die "the demo needs root (pid namespace, ptrace)"
	"$BUILD/tests/nsrun" "$ROOT/setup.sh" __demo_inner
	;;
test)
	install_packages
	# run-tests.sh builds by itself and reports a failed build as a failed
	# test, so its last line is always the summary.
	exec "$ROOT/tests/run-tests.sh"
	;;
build)
	install_packages
	build
	;;
*)
	echo "usage: $0 demo|test|build" >&2
	exit 2
	;;
esac
