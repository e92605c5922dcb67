# Scenarios of the core's multi-task features (sourced by tests/run-tests.sh).
SCENARIOS+=(
	"core_threads|core-threads"
)

sc_core_threads() { cycle core-threads core/threads sig; }

SCENARIOS+=("core_tree|core-tree")
sc_core_tree() { cycle core-tree core/tree sig; }
