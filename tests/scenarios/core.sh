# Scenarios of the core's multi-task features (sourced by tests/run-tests.sh).
SCENARIOS+=(
	"core_threads|core-threads"
)

sc_core_threads() { cycle core-threads core/threads sig; }

SCENARIOS+=("core_tree|core-tree")
sc_core_tree() { cycle core-tree core/tree sig; }

# The root is init of its own pid namespace: the restore makes a new
# namespace, so the root's outer pid changes; --pidfile tells the new one.
SCENARIOS+=("core_pidns_init|core-pidns-init")
sc_core_pidns_init() {
	local name=core-pidns-init D=$T/img np
	start_wl core/pidns_init || { fail $name "workload did not get ready"; return; }
	dump "$PID" "$D"
	((CK_RC == 0)) || { fail $name "dump exited $CK_RC: $(stderr_line dump)"; return; }
	wait_until 10 gone "$PID" || { fail $name "pid $PID still runs after the dump"; return; }
	restore "$D"
	((CK_RC == 0)) || { fail $name "restore exited $CK_RC: $(stderr_line restore)"; return; }
	np=$(<"$T/restored.pid")
	alive "$np" || { fail $name "restored init $np is not running"; return; }
	PID=$np
	signal_wait "$PID" 30 || { fail $name "no result within 30 s of SIGUSR1"; return; }
	result_is_pass || { fail $name "workload: $(result_text)"; return; }
	wait_until 10 gone "$PID" || { fail $name "pid $PID still runs after reporting"; return; }
	report pass $name
}

SCENARIOS+=("core_creds|core-creds")
sc_core_creds() { cycle core-creds core/creds sig; }

SCENARIOS+=("core_signals|core-signals")
sc_core_signals() { cycle core-signals core/signals sig; }

SCENARIOS+=("core_shmem|core-shmem")
sc_core_shmem() { cycle core-shmem core/shmem sig; }

SCENARIOS+=("core_seccomp|core-seccomp")
sc_core_seccomp() { cycle core-seccomp core/seccomp sig; }

SCENARIOS+=("core_namespaces|core-namespaces")
sc_core_namespaces() { cycle core-namespaces core/namespaces sig; }

SCENARIOS+=("core_memfd_map|core-memfd-map")
sc_core_memfd_map() { cycle core-memfd-map core/memfd_map sig; }
