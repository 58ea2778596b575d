#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs the official MCP conformance suite (@modelcontextprotocol/conformance, pinned in package-lock.json, with frozen
# per-revision requirement sets) against the gateway: `--requirements 2025-11-25` (initialize + sessions) and
# `--requirements 2026-07-28` (stateless), each at /mcp/conformance (the fixture server) and at /mcp, where the fixtures
# sit beside a real federated upstream (@modelcontextprotocol/server-everything over stdio, prefixed "everything").
# API keys are ON: the suite has no auth options, so it talks to a loopback pass-through (auth_proxy.mjs) that adds the
# key. Passing = every scored scenario of both sets, plus the pending json-schema-2020-12 and server-sse-polling; the
# other not-scored ones (the tasks extension, pending header scenarios) are reported, not counted. Node >= 22 comes
# from npm (the "node" package in package.json). Ends with one line "conformance: N passed, M failed" (scenarios).
#   LLMGATE_BUILD_DIR   build tree (default: ../../build)
#   CONFORMANCE_KEEP=1  keep the temporary folder (config, gateway log, results/*/checks.json)
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
build="${LLMGATE_BUILD_DIR:-$here/../../build}"
# shipped policies and plugins are found through the source tree when run by hand
export LLMGATE_SOURCE_DIR="${LLMGATE_SOURCE_DIR:-$(cd "$here/../.." && pwd)}"
gateway="$build/llmgate"
everything="$here/../clients/node_modules/.bin/mcp-server-everything"
# not scored by the requirement sets and not asked of us: the tasks extension, the pending header scenarios
not_required='^(tasks-[a-z-]+|http-header-validation|http-custom-header-server-validation)$'

fail() {
    echo "conformance: $*" >&2
    echo "conformance: 0 passed, 1 failed"
    exit 1
}

[[ -x "$gateway" ]] || fail "gateway binary not found at $gateway (set LLMGATE_BUILD_DIR)"
[[ -x "$everything" ]] || fail "tests/clients/node_modules is missing server-everything (scripts/install-deps.sh --test)"
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
proxy_pid=""
cleanup() {
    [[ -n "$proxy_pid" ]] && kill -TERM "$proxy_pid" 2>/dev/null
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

made="$("$gateway" keys create --db "$tmp/keys.db" --name conformance --json 2>/dev/null)" || fail "cannot create an API key"
key="$(printf '%s' "$made" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).key))')"
[[ "$key" == sk-* ]] || fail "no API key in: $made"

start_gateway() {
    local port="$1"
    cat >"$tmp/llmgate.json" <<JSON
{
  "listeners": [{"address": "127.0.0.1", "port": $port}],
  "workers": 2,
  "access_log": "$tmp/access.log",
  "log_level": "info",
  "store": {"path": "$tmp/keys.db"},
  "mcp": {
    "conformance_fixtures": true,
    "servers": {"everything": {"command": "$everything", "args": ["stdio"], "timeout_ms": 20000}}
  }
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

# keys are on: without one the gateway refuses (the suite below goes through the key-adding proxy)
code="$(node -e "fetch('http://127.0.0.1:$port/mcp',{method:'POST',headers:{'content-type':'application/json',accept:'application/json, text/event-stream'},body:'{}'}).then(r=>console.log(r.status),()=>console.log(0))")"
[[ "$code" == 401 ]] || fail "expected 401 without a key, got $code"

coproc PROXY { exec node "$here/auth_proxy.mjs" "$port" "$key"; }
proxy_pid=$PROXY_PID
read -r -t 10 pport <&"${PROXY[0]}" || fail "the auth proxy did not start"

# the federated upstream is up before the suite starts (its tools are part of /mcp's one list)
for _ in $(seq 200); do
    up="$(node -e "fetch('http://127.0.0.1:$port/health').then(r=>r.json()).then(j=>console.log((j.mcp_upstreams||[]).find(u=>u.name==='everything')?.state||''),()=>console.log(''))")"
    [[ "$up" == up ]] && break
    sleep 0.1
done
[[ "$up" == up ]] || fail "the federated server-everything upstream did not come up (state: ${up:-none})"

# ---- the suite: each requirement set, at each endpoint ----
passed=0
failed=0
status=0
for path in /mcp/conformance /mcp; do
    for rev in 2025-11-25 2026-07-28; do
        url="http://127.0.0.1:$pport$path"
        tag="$(echo "$path" | tr '/' '_')_$rev"
        out="$tmp/suite$tag.log"
        echo "=== conformance --requirements $rev against $path (keys on, server-everything federated)"
        (cd "$tmp" && "$suite_bin" server --url "$url" --requirements "$rev" -o "$tmp/results$tag") >"$out" 2>&1
        rc=$?
        summary="$(sed -n '/=== SUMMARY ===/,/^Total:/p' "$out")"
        echo "$summary"
        ok=0
        bad=0
        while IFS= read -r line; do
            name="$(printf '%s' "$line" | sed -E 's/^[✓✗] ([^:]+):.*/\1/')"
            case "$line" in
            "✓ "*) ok=$((ok + 1)) ;;
            "✗ "*)
                if [[ "$name" =~ $not_required ]]; then
                    echo "  (not scored, not required: $name)"
                else
                    bad=$((bad + 1))
                    echo "--- FAILED: $name ($rev at $path)"
                    for f in "$tmp/results$tag"/*"$name"*/checks.json; do
                        [[ -f "$f" ]] || continue
                        node -e '
                            const c = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
                            for (const x of c) if (x.status === "FAILURE") console.log(`    ${x.id}: ${x.errorMessage || ""}`);
                        ' "$f"
                    done
                fi
                ;;
            esac
        done <<<"$(printf '%s\n' "$summary" | grep -E '^[✓✗] ')"
        if ((ok + bad == 0)); then
            echo "--- no summary from the suite (exit $rc); last lines:" >&2
            tail -n 40 "$out" >&2
            bad=1
        fi
        if ((rc != 0 && bad == 0)); then
            echo "--- the suite exited $rc (a scored scenario failed); treating as a failure" >&2
            bad=1
        fi
        passed=$((passed + ok))
        failed=$((failed + bad))
        ((bad == 0)) || status=1
    done
done

if ! kill -0 "$gw_pid" 2>/dev/null; then
    echo "--- the gateway died during the run:" >&2
    tail -n 30 "$tmp/gateway.log" >&2
    failed=$((failed + 1))
    status=1
fi
echo "conformance: $passed passed, $failed failed"
exit $status
