#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs the official MCP conformance suite (@modelcontextprotocol/conformance, pinned in package-lock.json) against the
# gateway's built-in fixture server, at /mcp/conformance and at /mcp. Node >= 22 comes from npm (the "node" package in
# package.json), not from the system. Exits non-zero on any failed scenario (no baseline) and ends with one line
# "conformance: N passed, M failed" (scenarios). Finds the gateway at $LLMGATE_BUILD_DIR/llmgate.
#   LLMGATE_BUILD_DIR   build tree (default: ../../build)
#   CONFORMANCE_SUITE   suite to run (default: active)
#   CONFORMANCE_KEEP=1  keep the temporary folder (config, gateway log, results/*/checks.json)
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
build="${LLMGATE_BUILD_DIR:-$here/../../build}"
# shipped policies and plugins are found through the source tree when run by hand
export LLMGATE_SOURCE_DIR="${LLMGATE_SOURCE_DIR:-$(cd "$here/../.." && pwd)}"
gateway="$build/llmgate"
suite="${CONFORMANCE_SUITE:-active}"

fail() {
    echo "conformance: $*" >&2
    echo "conformance: 0 passed, 1 failed"
    exit 1
}

[[ -x "$gateway" ]] || fail "gateway binary not found at $gateway (set LLMGATE_BUILD_DIR)"
command -v npm >/dev/null 2>&1 || fail "npm not found (scripts/install-deps.sh --test installs Node.js and npm)"

# ---- Node 22 and the suite, from the lockfile (offline when the npm cache has them) ----
cd "$here"
if [[ ! -x node_modules/.bin/node || ! -d node_modules/@modelcontextprotocol/conformance ||
      package-lock.json -nt node_modules ]]; then
    npm ci --no-audit --no-fund --prefer-offline --loglevel=error || fail "npm ci failed in $here"
    touch node_modules
fi
export PATH="$here/node_modules/.bin:$PATH"
node_major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
((node_major >= 22)) || fail "need Node >= 22 from node_modules/.bin, got $(node --version 2>&1)"
suite_bin="$here/node_modules/.bin/conformance"
[[ -x "$suite_bin" ]] || fail "conformance CLI missing from node_modules"

# ---- gateway on a free loopback port ----
tmp="$(mktemp -d "${TMPDIR:-/tmp}/llmgate-conformance.XXXXXX")"
gw_pid=""
cleanup() {
    if [[ -n "$gw_pid" ]] && kill -0 "$gw_pid" 2>/dev/null; then
        kill -TERM "$gw_pid" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$gw_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$gw_pid" 2>/dev/null
    fi
    if [[ "${CONFORMANCE_KEEP:-0}" == 1 ]]; then echo "conformance: kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

free_port() {
    node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

start_gateway() {
    local port="$1"
    cat >"$tmp/llmgate.json" <<JSON
{
  "listeners": [{"address": "127.0.0.1", "port": $port}],
  "workers": 2,
  "access_log": "$tmp/access.log",
  "log_level": "info",
  "mcp": {"conformance_fixtures": true}
}
JSON
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" "$gateway" --config "$tmp/llmgate.json" >>"$tmp/gateway.log" 2>&1 &
    gw_pid=$!
    for _ in $(seq 100); do
        if ! kill -0 "$gw_pid" 2>/dev/null; then return 1; fi
        if node -e "fetch('http://127.0.0.1:$port/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

port=""
for attempt in 1 2 3; do
    port="$(free_port)" || fail "cannot find a free port"
    if start_gateway "$port"; then break; fi
    kill -KILL "$gw_pid" 2>/dev/null
    gw_pid=""
    port=""
done
if [[ -z "$port" ]]; then
    tail -n 30 "$tmp/gateway.log" >&2
    fail "the gateway did not start"
fi

# ---- the suite, once per endpoint ----
passed=0
failed=0
status=0
for path in /mcp/conformance /mcp; do
    url="http://127.0.0.1:$port$path"
    out="$tmp/suite$(echo "$path" | tr '/' '_').log"
    echo "=== conformance $suite suite against $url"
    (cd "$tmp" && "$suite_bin" server --url "$url" --suite "$suite" -o "$tmp/results$(echo "$path" | tr '/' '_')") >"$out" 2>&1
    rc=$?
    # the suite's summary: one "✓ name: N passed, M failed" / "✗ ..." line per scenario
    sed -n '/=== SUMMARY ===/,$p' "$out"
    ok=$(sed -n '/=== SUMMARY ===/,$p' "$out" | grep -c '^✓ ' || true)
    bad=$(sed -n '/=== SUMMARY ===/,$p' "$out" | grep -c '^✗ ' || true)
    if ((ok + bad == 0)); then
        echo "--- no summary from the suite (exit $rc); last lines:" >&2
        tail -n 40 "$out" >&2
        bad=1
    fi
    if ((bad > 0)); then
        echo "--- failed checks ($path):"
        grep -A3 'Failed Checks\|FAILURE\|Error:' "$out" | head -n 80
        for f in "$tmp"/results*/*/checks.json; do
            [[ -f "$f" ]] || continue
            node -e '
                const c = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
                for (const x of c) if (x.status === "FAILURE") console.log(`  ${process.argv[1].split("/").slice(-2, -1)[0]}: ${x.name}: ${x.errorMessage || ""}`);
            ' "$f"
        done
    fi
    if ((rc != 0 && bad == 0)); then
        echo "--- the suite exited $rc without a failed scenario; treating as a failure" >&2
        bad=1
    fi
    passed=$((passed + ok))
    failed=$((failed + bad))
    ((bad == 0)) || status=1
done

if ! kill -0 "$gw_pid" 2>/dev/null; then
    echo "--- the gateway died during the run:" >&2
    tail -n 30 "$tmp/gateway.log" >&2
    failed=$((failed + 1))
    status=1
fi
echo "conformance: $passed passed, $failed failed"
exit $status
