# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=bash
#
# Compressed page images (ckpt dump --compress).  Sourced by
# tests/run-tests.sh at global scope, like the other scenario files.  The
# workload is tests/workloads/compress/mixmem: memory that compresses like
# real memory, checked page by page after the restore.

SCENARIOS+=(
	"compress_cycle:lz4|compress-lz4"
	"compress_cycle:lz4:fast|compress-lz4-fast"
	"compress_cycle:zstd|compress-zstd"
	"compress_cycle:zstd:3|compress-zstd-3"
	"compress_heap|compress-heap256-incompressible"
	"compress_tree|compress-shmem-tree compress-threads"
	"compress_config|compress-config-key compress-off-by-default"
	"compress_show|compress-show compress-show-json fail-compress-corrupt-block fail-compress-truncated restore-compress-after-bad"
	"compress_bad_option|fail-compress-bad-codec"
)

# compress_run NAME WORKLOAD DIR [DUMP ARGS...]: start, dump (with the
# args), restore, wake, verify.
compress_run() {
	local name=$1 w=$2 D=$3 msg
	shift 3
	start_wl "$w" || { fail "$name" "workload did not get ready"; return 1; }
	dump "$PID" "$D" "$@"
	((CK_RC == 0)) || { fail "$name" "dump $CK_WHY: $(stderr_line dump)"; return 1; }
	wait_until 10 gone "$PID" || { fail "$name" "pid $PID still runs after the dump"; return 1; }
	restore "$D"
	((CK_RC == 0)) || { fail "$name" "restore $CK_WHY: $(stderr_line restore)"; return 1; }
	alive "$PID" || { fail "$name" "pid $PID is not running after restore -d"; return 1; }
	msg=$(check_pidfile "$PID") || { fail "$name" "$msg"; return 1; }
	signal_wait "$PID" 60 || { fail "$name" "no result after SIGUSR1: $(describe "$PID")"; return 1; }
	result_is_pass || { fail "$name" "workload: $(result_text)"; return 1; }
	wait_until 10 gone "$PID" || { fail "$name" "pid $PID still runs after reporting"; return 1; }
	wait_until 5 no_others || { fail "$name" "processes left running: $(others)"; return 1; }
	return 0
}

# the codec the images of D say they use ("" when raw)
compress_codec_of() {
	ck codec-show show "$1" --json >&2
	python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
print((d.get("inventory") or {}).get("page_codec", ""))' "$T/codec-show.stdout" 2>/dev/null
}

sc_compress_cycle() {
	local spec=$1 name=compress-${1//:/-} D=$T/img codec
	[[ $spec == zstd ]] && name=compress-zstd
	compress_run "$name" compress/mixmem "$D" --compress="$spec" || return
	ls "$D"/pageblocks-*.img >/dev/null 2>&1 || { fail "$name" "no pageblocks-*.img: the pages were not compressed"; return; }
	codec=$(compress_codec_of "$D")
	[[ $codec == "${spec%%:*}:"* ]] || { fail "$name" "the inventory says page_codec '$codec', want ${spec%%:*}"; return; }
	report pass "$name"
}

# Random-looking pages do not shrink: blocks stored as they are, the
# private file mapping of heap256 included.
sc_compress_heap() {
	local name=compress-heap256-incompressible D=$T/img
	CKPT_TEST_HEAP_MB=32 compress_run "$name" heap256 "$D" --compress=lz4 || return
	report pass "$name"
}

# A tree sharing anonymous memory, and a multithreaded task: the page
# path of every process of a tree goes through the codec.
sc_compress_tree() {
	compress_run compress-shmem-tree core/shmem "$T/img" --compress=zstd && report pass compress-shmem-tree
	rm -rf "$T/img"
	compress_run compress-threads core/threads "$T/img2" --compress=lz4 && report pass compress-threads
}

sc_compress_config() {
	local D=$T/img codec
	printf '[ckpt]\ncompress = zstd:2\n' >"$T/compress.conf"
	if compress_run compress-config-key compress/mixmem "$D" --config "$T/compress.conf"; then
		codec=$(compress_codec_of "$D")
		if [[ $codec == zstd:2 ]]; then report pass compress-config-key
		else fail compress-config-key "the inventory says page_codec '$codec', want zstd:2"; fi
	fi
	rm -rf "$D"
	if compress_run compress-off-by-default compress/mixmem "$D"; then
		codec=$(compress_codec_of "$D")
		if ls "$D"/pageblocks-*.img >/dev/null 2>&1 || [[ -n $codec ]]; then
			fail compress-off-by-default "a dump without --compress wrote compressed pages ($codec)"
		else
			report pass compress-off-by-default
		fi
	fi
}

sc_compress_show() {
	local D=$T/img pages size ratio
	start_wl compress/mixmem || { fail compress-show "workload did not get ready"; return; }
	dump "$PID" "$D" --compress=zstd
	((CK_RC == 0)) || { fail compress-show "dump $CK_WHY: $(stderr_line dump)"; return; }
	wait_until 10 gone "$PID" || { fail compress-show "pid $PID still runs after the dump"; return; }

	ck show show "$D"
	if ((CK_RC != 0)); then fail compress-show "show $CK_WHY: $(stderr_line show)"
	elif ! grep -qE '^compression: zstd, [0-9]+ blocks, .*\(ratio [0-9.]+\)' "$T/show.stdout"; then
		fail compress-show "show prints no 'compression: zstd ... (ratio R)' line"
	elif ! grep -qE 'page_codec.*zstd:1' "$T/show.stdout"; then
		fail compress-show "show prints no page_codec zstd:1 in the inventory"
	else report pass compress-show; fi

	ck show-json show "$D" --json
	ratio=$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
r = [i["compression"]["ratio"] for i in d["images"] if "compression" in i]
print(r[0] if r else "")' "$T/show-json.stdout" 2>/dev/null)
	if ((CK_RC != 0)); then fail compress-show-json "show --json $CK_WHY"
	elif [[ -z $ratio ]]; then fail compress-show-json "no compression object in show --json"
	elif ! awk -v r="$ratio" 'BEGIN { exit !(r > 1.3) }'; then
		fail compress-show-json "ratio $ratio: mixmem's pages should shrink by more than 1.3"
	else report pass compress-show-json; fi

	pages=$(cd "$D" && ls pages-*.img | head -n 1)
	size=$(stat -c %s "$D/$pages")
	cp -a "$D" "$T/img-flip"
	if flip_byte "$T/img-flip/$pages" $((size / 2 + 77)); then
		expect_restore_fail fail-compress-corrupt-block "$T/img-flip" 'checksum|corrupt|mismatch|pages'
	else
		fail fail-compress-corrupt-block "could not flip a byte of $pages"
	fi
	cp -a "$D" "$T/img-trunc"
	truncate -s $((size - 1000)) "$T/img-trunc/$pages"
	expect_restore_fail fail-compress-truncated "$T/img-trunc" 'size|checksum|corrupt|mismatch|pages'

	cycle_restore_only restore-compress-after-bad "$D"
}

sc_compress_bad_option() {
	expect_dump_fail fail-compress-bad-codec 'compress.*gzip' counter -- --compress=gzip
}
