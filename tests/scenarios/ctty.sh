# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=bash
#
# Scenarios of a controlling terminal shared by a whole session (fs plugin,
# class tty): every member of a pty session gets the terminal back, not
# only its leader.  Sourced by tests/run-tests.sh; the workload is
# tests/workloads/fs/tty_session.c.

SCENARIOS+=(
	"tty_session|tty-session"
)

# A session leader on a pty with two children, one of them the foreground
# group: all three check their controlling terminal, TIOCGSID, tcgetpgrp
# and /dev/tty after the restore, and the foreground child talks through
# the pty.
sc_tty_session() {
	mkdir -p "$T/fs"
	rm -f "$T"/tty_session.*
	cycle tty-session fs/tty_session sig
}
