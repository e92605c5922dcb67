# SPDX-License-Identifier: GPL-2.0-only
# bench/lib.sh — helpers shared by bench.sh and bench-tree.sh (sourced).

now() {
	echo "${EPOCHREALTIME/,/.}"
}

# seconds between two now() values
elapsed() {
	awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f", b - a }'
}

median() {
	printf '%s\n' "$@" | sort -g | awk '
		{ v[NR] = $1 }
		END {
			if (NR == 0) exit 1
			if (NR % 2) printf "%.6f", v[(NR + 1) / 2]
			else printf "%.6f", (v[NR / 2] + v[NR / 2 + 1]) / 2
		}'
}

# wait_file FILE SECONDS: until FILE exists
wait_file() {
	local end=$((SECONDS + $2))
	while [ ! -e "$1" ]; do
		[ $SECONDS -lt $end ] || return 1
		sleep 0.01
	done
}

mem_available_mib() {
	awk '/^MemAvailable:/ { printf "%d", $2 / 1024 }' /proc/meminfo
}

disk_free_mib() {
	df -Pk "$1" | awk 'NR == 2 { printf "%d", $4 / 1024 }'
}

fs_type() {
	stat -f -c %T "$1" 2>/dev/null || echo "?"
}

show_log() {
	if [ -s "$1" ]; then
		note "last lines of $1:"
		tail -n 15 "$1" | sed 's/^/    /' >&2
	fi
}
