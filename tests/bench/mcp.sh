#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# MCP benchmark (a report, not a test): what /mcp adds per federated stdio tool call over calling the same server
# directly on stdio, built-in tool calls/s on one core with a raw HTTP client (h2load), and the cost of initialize
# (legacy) and server/discover (2026-07-28). The gateway runs with one worker pinned to CPU GW_CPU (0); clients on
# CPU CLIENT_CPU (1). Needs: $BUILD/llmgate, $BUILD/tests/mcp/fake_mcp_server, h2load, node.
#   BUILD (build)  N (2000 latency samples)  H2N (20000 h2load requests)  C (h2load connections, 8)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
src="$(cd "$here/../.." && pwd)"
build="${BUILD:-$src/build}"
N="${N:-2000}"
H2N="${H2N:-20000}"
C="${C:-8}"
GW_CPU="${GW_CPU:-0}"
CLIENT_CPU="${CLIENT_CPU:-1}"
fake="$build/tests/mcp/fake_mcp_server"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/llmgate-mcp-bench.XXXXXX")"
gw=""
cleanup() {
    [[ -n "$gw" ]] && kill "$gw" 2>/dev/null && wait "$gw" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
port="$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
cat >"$tmp/llmgate.json" <<JSON
{"listeners": [{"address": "127.0.0.1", "port": $port}], "workers": 1, "access_log": null, "log_level": "warn",
 "mcp": {"servers": {"fake": {"command": "$fake"}}}}
JSON
LLMGATE_SOURCE_DIR="$src" LLMGATE_PLUGIN_DIR="$build/plugins" taskset -c "$GW_CPU" "$build/llmgate" --config "$tmp/llmgate.json" \
    >"$tmp/gw.log" 2>&1 &
gw=$!
base="http://127.0.0.1:$port"
for _ in $(seq 100); do curl -sf "$base/health" >/dev/null && break; sleep 0.1; done
# the stdio upstream is up
for _ in $(seq 100); do curl -s "$base/health" | grep -q '"state":"up"' && break; sleep 0.1; done

echo "== federated stdio tool call (fake_mcp_server echo), sequential, $N calls"
taskset -c "$CLIENT_CPU" node "$here/mcp_stdio_latency.mjs" "$fake" "$base" "$N"

hdr=(-H 'content-type: application/json' -H 'accept: application/json, text/event-stream')
sid="$(curl -si "$base/mcp" "${hdr[@]}" -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"b","version":"1"}}}' |
    tr -d '\r' | sed -n 's/^mcp-session-id: //Ip')"
printf '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"llmgate__list_models","arguments":{}}}' >"$tmp/call.json"
printf '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"llmgate__list_models","arguments":{},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}' >"$tmp/call26.json"
printf '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"b","version":"1"}}}' >"$tmp/init.json"
printf '{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}' >"$tmp/disc.json"
h2() { # label, body file, extra headers...
    local label="$1" body="$2"
    shift 2
    taskset -c "$CLIENT_CPU" h2load --h1 -c "$C" -m 1 -n 1000 -d "$body" "${hdr[@]}" "$@" "$base/mcp" >/dev/null 2>&1 || true
    local out
    out="$(taskset -c "$CLIENT_CPU" h2load --h1 -c "$C" -m 1 -n "$H2N" -d "$body" "${hdr[@]}" "$@" "$base/mcp" 2>&1)"
    printf '%-44s %s | %s\n' "$label" "$(echo "$out" | grep -E '^finished in' | sed 's/finished in //')" \
        "$(echo "$out" | grep -E '^requests:' | sed 's/requests: //')"
    echo "$out" | grep -E '^time for request:' | sed 's/^/    /'
}
echo "== built-in tool llmgate__list_models, h2load c=$C, one gateway worker on one core"
h2 "tools/call, 2025-11-25 session" "$tmp/call.json" -H "mcp-session-id: $sid" -H 'mcp-protocol-version: 2025-11-25'
h2 "tools/call, 2026-07-28 stateless" "$tmp/call26.json" -H 'mcp-protocol-version: 2026-07-28' -H 'mcp-method: tools/call' \
    -H 'mcp-name: llmgate__list_models'
echo "== handshake cost"
H2N=5000 h2 "initialize (new session each; 5000)" "$tmp/init.json"
h2 "server/discover" "$tmp/disc.json" -H 'mcp-protocol-version: 2026-07-28' -H 'mcp-method: server/discover'
