# The plugin writer's path (docs/plugin-guide.md), in CI: install the SDK,
# build docs/examples/hello out of tree with `pkg-config --cflags
# ckpt-plugin`, run its own test, load it through a config file and dump
# and restore a workload with it, then see it refuse a dump.
SCENARIOS+=("example_plugin|example-plugin-build example-plugin-test example-plugin-dump example-plugin-refuse")

sc_example_plugin() {
	local inst=$T/inst ex=$ROOT/docs/examples/hello cflags libdir D=$T/img build=${CKPT%/core/ckpt}
	if ! DESTDIR=$inst meson install -C "$build" --quiet --tags devel >"$T/install.log" 2>&1; then
		fail example-plugin-build "meson install of the SDK failed: $(tail -n 1 "$T/install.log")"
		return
	fi
	libdir=$(find "$inst" -name ckpt-plugin.pc -printf '%h\n' | head -n 1)
	export PKG_CONFIG_PATH=$libdir PKG_CONFIG_SYSROOT_DIR=$inst
	cflags=$(pkg-config --cflags ckpt-plugin) || { fail example-plugin-build "pkg-config knows no ckpt-plugin"; return; }
	if ! cc -std=gnu11 -Wall -Wextra -Werror -fPIC -shared -fvisibility=hidden $cflags \
		-o "$T/ckpt-hello.so" "$ex/hello.c" 2>"$T/cc.log"; then
		fail example-plugin-build "the example does not build: $(head -n 1 "$T/cc.log")"
		return
	fi
	report pass example-plugin-build
	if ! cc -std=gnu11 -Wall -Wextra -Werror $cflags -o "$T/test_hello" "$ex/test_hello.c" -ldl 2>"$T/cc2.log" ||
		! "$T/test_hello" "$T/ckpt-hello.so" >"$T/test_hello.out" 2>&1; then
		fail example-plugin-test "its test failed: $(grep -m1 'not ok' "$T/test_hello.out" || head -n 1 "$T/cc2.log")"
		return
	fi
	report pass example-plugin-test

	printf '[plugin.hello]\npath = %s\ntag = nightly\n' "$T/ckpt-hello.so" >"$T/hello.conf"
	start_wl counter || { fail example-plugin-dump "workload did not get ready"; return; }
	dump "$PID" "$D" --config "$T/hello.conf" -v3
	((CK_RC == 0)) || { fail example-plugin-dump "dump exited $CK_RC: $(stderr_line dump)"; return; }
	grep -q 'plugin:hello' "$D/dump.log" || { fail example-plugin-dump "no line of the plugin in dump.log"; return; }
	wait_until 10 gone "$PID" || { fail example-plugin-dump "pid $PID still runs after the dump"; return; }
	restore "$D" --config "$T/hello.conf" -v3
	((CK_RC == 0)) || { fail example-plugin-dump "restore exited $CK_RC: $(stderr_line restore)"; return; }
	signal_wait "$PID" 30 && result_is_pass || { fail example-plugin-dump "workload: $(result_text)"; return; }
	wait_until 10 gone "$PID"
	report pass example-plugin-dump

	printf '[plugin.hello]\npath = %s\ntag = nightly\nrefuse_dump = yes\n' "$T/ckpt-hello.so" >"$T/refuse.conf"
	rm -rf "$T/img2"
	expect_dump_fail example-plugin-refuse 'hello|nightly|refus' counter -- --config "$T/refuse.conf"
}
