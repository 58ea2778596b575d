#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Plugin SDK end to end (CTest `sdk_plugin_skeleton`):
#   1. `cmake --install BUILD --prefix TMP` (no DESTDIR): headers, llmgate-plugin.pc, the gateway, plugins, policies
#   2. build examples/plugin-skeleton out of tree exactly as a third party would: its Makefile with
#      PKG_CONFIG_PATH=TMP/LIBDIR/pkgconfig (`pkg-config --cflags llmgate-plugin`), then `make check` (only
#      lg_plugin_init exported) and `make install` (into the .pc's plugindir)
#   3. start tests/mock's mock_upstream and the INSTALLED gateway with two providers using the skeleton: one by path
#      ("plugin": "/abs/skeleton.so"), one by name ("plugin": "skeleton", found in the installed plugin dir)
#   4. chat completion (non-stream and stream) through each, check the upstream request, SIGTERM -> exit 0
# usage: run.sh SOURCE_DIR BUILD_DIR INSTALL_LIBDIR MOCK_BIN [CC]
set -euo pipefail

src=${1:?source dir}
build=${2:?build dir}
libdir=${3:?CMAKE_INSTALL_LIBDIR}
mock_bin=${4:?mock_upstream binary}
cc=${5:-cc}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/llmgate-sdk.XXXXXX")
mock_pid=""
gw_pid=""
cleanup() {
    local rc=$?
    [[ -n "$gw_pid" ]] && kill -KILL "$gw_pid" 2>/dev/null || true
    [[ -n "$mock_pid" ]] && kill -KILL "$mock_pid" 2>/dev/null || true
    if ((rc != 0)); then
        echo "---- FAILED; logs in $tmp ----" >&2
        for f in "$tmp"/*.log; do
            [[ -f "$f" ]] && { echo "== $f" >&2; tail -n 40 "$f" >&2; }
        done
    else
        rm -rf "$tmp"
    fi
    exit $rc
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    exit 1
}
step() { echo "== $*"; }

# sanitizer builds: the spawned processes must not fail on leak reports at exit
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
export LSAN_OPTIONS="${LSAN_OPTIONS:+$LSAN_OPTIONS:}detect_leaks=0"

# ---- 1. install ---------------------------------------------------------------------------------------------------------
prefix="$tmp/prefix"
step "cmake --install $build --prefix $prefix"
cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" 2>&1 || fail "cmake --install failed (see install.log)"
for h in plugin.h error.h version.h; do
    [[ -f "$prefix/include/llmgate/$h" ]] || fail "missing installed header include/llmgate/$h"
done
pcdir="$prefix/$libdir/pkgconfig"
[[ -f "$pcdir/llmgate-plugin.pc" ]] || fail "missing $pcdir/llmgate-plugin.pc"
[[ -x "$prefix/bin/llmgate" ]] || fail "missing installed bin/llmgate"
if grep -q "Installing: /usr" "$tmp/install.log"; then
    fail "cmake --install --prefix wrote outside the prefix: $(grep 'Installing: /usr' "$tmp/install.log" | head -3)"
fi

export PKG_CONFIG_PATH="$pcdir${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
cflags=$(pkg-config --cflags llmgate-plugin) || fail "pkg-config --cflags llmgate-plugin failed"
[[ "$cflags" == *"-I$prefix/include"* ]] || fail "pkg-config --cflags llmgate-plugin = '$cflags', expected -I$prefix/include"
plugindir=$(pkg-config --variable=plugindir llmgate-plugin)
[[ "$plugindir" == "$prefix/$libdir/llmgate/plugins" ]] || fail "plugindir = '$plugindir'"
version=$(pkg-config --modversion llmgate-plugin)
grep -q "LG_VERSION_STRING \"$version\"" "$prefix/include/llmgate/version.h" || fail "pc Version $version != version.h"
echo "llmgate-plugin $version: cflags '$cflags', plugindir $plugindir"

# ---- 2. out-of-tree build of the skeleton ------------------------------------------------------------------------------
step "build examples/plugin-skeleton out of tree"
cp -r "$src/examples/plugin-skeleton" "$tmp/skeleton"
rm -f "$tmp/skeleton/skeleton.so"
make -C "$tmp/skeleton" CC="$cc" CFLAGS="-O2 -g -Werror" >"$tmp/make.log" 2>&1 || fail "make failed: $(cat "$tmp/make.log")"
grep -q -- "-fvisibility=hidden" "$tmp/make.log" || fail "the skeleton was not built with -fvisibility=hidden"
grep -q -- "-I$prefix/include" "$tmp/make.log" || fail "the skeleton was not built with pkg-config's cflags"
so="$tmp/skeleton/skeleton.so"
[[ -f "$so" ]] || fail "no skeleton.so"
syms=$(nm -D --defined-only "$so" | awk '{print $NF}')
[[ "$syms" == "lg_plugin_init" ]] || fail "nm -D --defined-only skeleton.so must show only lg_plugin_init, got: $syms"
make -C "$tmp/skeleton" check >>"$tmp/make.log" 2>&1 || fail "make check failed"
make -C "$tmp/skeleton" install >>"$tmp/make.log" 2>&1 || fail "make install failed"
[[ -f "$plugindir/skeleton.so" ]] || fail "make install did not put skeleton.so into $plugindir"
echo "skeleton.so exports only lg_plugin_init; installed into $plugindir"

# ---- 3. mock + installed gateway ---------------------------------------------------------------------------------------
step "start mock_upstream and the installed llmgate"
"$mock_bin" --port 0 --quiet >"$tmp/mock.out" 2>"$tmp/mock.log" &
mock_pid=$!
mock_port=""
for _ in $(seq 1 100); do
    mock_port=$(sed -n 's/^listening on [^:]*:\([0-9]*\)$/\1/p' "$tmp/mock.out" 2>/dev/null || true)
    [[ -n "$mock_port" ]] && break
    kill -0 "$mock_pid" 2>/dev/null || fail "mock_upstream exited"
    sleep 0.1
done
[[ -n "$mock_port" ]] || fail "mock_upstream did not start"
mock="http://127.0.0.1:$mock_port"

start_gateway() {
    local port=$1
    cat >"$tmp/llmgate.json" <<EOF
{
  "listeners": [{"address": "127.0.0.1", "port": $port}],
  "workers": 1,
  "access_log": "$tmp/access.log",
  "log_level": "debug",
  "providers": [
    {"name": "sk-path", "plugin": "$so", "base_url": "$mock/v1", "api_key": "sk-sdk-test-key",
     "headers": {"X-Skeleton": "yes"}, "options": {"user_agent": "skeleton-test/1.0"},
     "timeouts": {"connect_ms": 1000, "first_byte_ms": 5000, "idle_ms": 5000, "total_ms": 10000}},
    {"name": "sk-name", "plugin": "skeleton", "base_url": "$mock/v1/", "api_key": "sk-other-key"}
  ],
  "models": {
    "sdk/by-path": {"endpoints": [{"provider": "sk-path", "model": "echo+sdk-path",
                                   "pricing": {"prompt": "0.000001", "completion": "0.000002"}}]},
    "sdk/by-name": {"endpoints": [{"provider": "sk-name", "model": "echo+sdk-name",
                                   "pricing": {"prompt": "0.000001", "completion": "0.000002"}}]},
    "sdk/fails": {"endpoints": [{"provider": "sk-path", "model": "fail-400+sdk",
                                 "pricing": {"prompt": "0.000001", "completion": "0.000002"}}]}
  }
}
EOF
    (cd "$tmp" && LLMGATE_PLUGIN_DIR="$plugindir" LLMGATE_POLICY_DIR="$prefix/share/llmgate/policies" \
        exec "$prefix/bin/llmgate" --config "$tmp/llmgate.json") >>"$tmp/gateway.log" 2>&1 &
    gw_pid=$!
    for _ in $(seq 1 200); do
        if curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/health" 2>/dev/null | grep -q 200; then
            return 0
        fi
        kill -0 "$gw_pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$gw_pid" 2>/dev/null || true
    wait "$gw_pid" 2>/dev/null || true
    gw_pid=""
    return 1
}
gw_port=""
for _ in 1 2 3 4 5; do
    p=$((20000 + RANDOM % 40000))
    if start_gateway "$p"; then
        gw_port=$p
        break
    fi
    grep -qiE "in use|EADDRINUSE" "$tmp/gateway.log" || fail "the gateway did not start"
done
[[ -n "$gw_port" ]] || fail "the gateway did not start"
gw="http://127.0.0.1:$gw_port"
grep -q "skeleton" "$tmp/gateway.log" || fail "no sign of the skeleton plugin in the gateway log"

# ---- 4. requests through the skeleton ----------------------------------------------------------------------------------
post() { # path body -> prints "HTTP_STATUS\nBODY"
    curl -s -S --max-time 20 -H 'content-type: application/json' -d "$2" -w '\n%{http_code}' "$gw$1"
}
expect() { # haystack needle what
    [[ "$1" == *"$2"* ]] || fail "$3: expected to find '$2' in: $1"
}

for route in by-path by-name; do
    step "chat completion through the skeleton ($route)"
    out=$(post /v1/chat/completions "{\"model\":\"sdk/$route\",\"messages\":[{\"role\":\"user\",\"content\":\"hello skeleton plugin\"}]}")
    [[ "${out##*$'\n'}" == 200 ]] || fail "non-stream $route: HTTP ${out##*$'\n'}: $out"
    expect "$out" '"content":"hello skeleton plugin"' "non-stream $route"
    expect "$out" '"finish_reason":"stop"' "non-stream $route"
    expect "$out" "\"provider\":\"sk-${route#by-}\"" "non-stream $route"
    expect "$out" '"completion_tokens":3' "non-stream $route"

    out=$(post /v1/chat/completions "{\"model\":\"sdk/$route\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"stream through the skeleton\"}]}")
    [[ "${out##*$'\n'}" == 200 ]] || fail "stream $route: HTTP ${out##*$'\n'}"
    for w in '"content":"stream "' '"content":"through "' '"content":"the "' '"content":"skeleton"' '"finish_reason":"stop"' '"usage":{' 'data: [DONE]'; do
        expect "$out" "$w" "stream $route"
    done
done

step "upstream request as the skeleton built it"
last=$(curl -s "$mock/_mock/last?model=echo%2Bsdk-path")
expect "$last" '"authorization":"Bearer sk-sdk-test-key"' "upstream auth header"
expect "$last" '"user-agent":"skeleton-test/1.0"' "options.user_agent"
expect "$last" '"x-skeleton":"yes"' "configured headers"
expect "$last" '"model":"echo+sdk-path"' "upstream model"
expect "$last" '"include_usage":true' "stream_options.include_usage on streams"
last=$(curl -s "$mock/_mock/last?model=echo%2Bsdk-name")
expect "$last" '"authorization":"Bearer sk-other-key"' "second instance has its own key"

step "upstream 400 classified by the skeleton"
out=$(post /v1/chat/completions '{"model":"sdk/fails","messages":[{"role":"user","content":"x"}]}')
[[ "${out##*$'\n'}" == 400 ]] || fail "fail-400 upstream: expected HTTP 400, got: $out"
expect "$out" 'mock failure 400' "upstream error message passed through"

step "embeddings through the skeleton"
out=$(post /v1/embeddings '{"model":"sdk/by-path","input":["one two","three"]}')
[[ "${out##*$'\n'}" == 200 ]] || fail "embeddings: $out"
expect "$out" '"index":1' "embeddings"

step "SIGTERM -> exit 0"
kill -TERM "$gw_pid"
rc=0
wait "$gw_pid" || rc=$?
gw_pid=""
((rc == 0)) || fail "gateway exit status $rc after SIGTERM"
echo "PASS: plugin SDK install, out-of-tree skeleton build, load by path and by name, requests through it"
