#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Instruction counts per proxied request and per relayed stream chunk, with callgrind (deterministic, unlike timing on
# a shared box). Starts mock_upstream natively and each llmgate build under `valgrind --tool=callgrind` with
# instrumentation off; for every measurement it switches instrumentation on (callgrind_control -i on), zeroes the
# counters, sends a fixed number of requests over one keep-alive connection, dumps, and divides the dump's total by
# the number of requests. Per chunk = slope between streams of CHUNKS_LO and CHUNKS_HI content chunks. Paths: the
# OpenAI-compatible upstream (`openai` plugin: pass-through when the build has it) and the `anthropic` and `gemini`
# plugins. Not a pass/fail test; prints a markdown table. See tests/bench/README.md.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# BUILDS: space-separated build trees (label=dir or dir); each must hold llmgate, plugins/ and tests/mock/mock_upstream
BUILDS=${BUILDS:-${BUILD:-./build}}
BODY=${BODY:-$HERE/chat_1k.json}
N=${N:-50}                # requests per measurement
CHUNKS_LO=${CHUNKS_LO:-20}
CHUNKS_HI=${CHUNKS_HI:-100}
PATHS=${PATHS:-"openai anthropic gemini"}
KEEP_TMP=${KEEP_TMP:-0}
STARTUP_TIMEOUT=${STARTUP_TIMEOUT:-120}

die() {
    echo "callgrind.sh: error: $*" >&2
    exit 1
}
command -v valgrind >/dev/null || die "valgrind not found (apt-get install valgrind)"
command -v callgrind_control >/dev/null || die "callgrind_control not found (package valgrind)"
command -v curl >/dev/null || die "curl not found"
command -v python3 >/dev/null || die "python3 not found (used to pick free ports and write bodies)"
[ -r "$BODY" ] || die "request body $BODY not readable"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/llmgate-callgrind.XXXXXX")
MOCK_PID=
GW_PID=
cleanup() {
    local rc=$?
    for pid in $GW_PID $MOCK_PID; do kill "$pid" 2>/dev/null || true; done
    for pid in $GW_PID $MOCK_PID; do wait "$pid" 2>/dev/null || true; done
    if [ "$KEEP_TMP" = 1 ]; then echo "kept $TMP" >&2; else rm -rf "$TMP"; fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# body MODEL STREAM OUT: the 1 KB chat body with model (and stream) replaced; max_tokens large enough for 100 chunks
body() {
    python3 - "$BODY" "$1" "$2" "$3" <<'EOF'
import json, sys
src, model, stream, out = sys.argv[1:]
b = json.load(open(src))
b["model"] = model
b["max_tokens"] = 4096
if stream == "1":
    b["stream"] = True
json.dump(b, open(out, "w"), separators=(",", ":"))
EOF
}

# ---- one mock for all builds (from the first build tree) ----
first_dir=${BUILDS%% *}
first_dir=${first_dir#*=}
MOCK_BIN=${MOCK_BIN:-$first_dir/tests/mock/mock_upstream}
[ -x "$MOCK_BIN" ] || die "mock_upstream not found at $MOCK_BIN"
"$MOCK_BIN" --port 0 --quiet >"$TMP/mock.out" 2>"$TMP/mock.err" &
MOCK_PID=$!
for _ in $(seq 1 100); do
    grep -q '^listening on ' "$TMP/mock.out" 2>/dev/null && break
    kill -0 "$MOCK_PID" 2>/dev/null || die "mock_upstream exited: $(cat "$TMP/mock.err")"
    sleep 0.05
done
MOCK_PORT=$(sed -n 's/^listening on .*:\([0-9][0-9]*\)$/\1/p' "$TMP/mock.out")
[ -n "$MOCK_PORT" ] || die "mock_upstream did not report its port"
MOCK=http://127.0.0.1:$MOCK_PORT

for path in $PATHS; do
    body "bench/$path/echo" 0 "$TMP/$path.nonstream.json"
    body "bench/$path/lo" 1 "$TMP/$path.lo.json"
    body "bench/$path/hi" 1 "$TMP/$path.hi.json"
done

# measure NAME URL BODYFILE -> prints instructions per request (integer); callgrind must be running as GW_PID
measure() {
    local name=$1 url=$2 bodyf=$3 args=() i
    for ((i = 0; i < N; i++)); do args+=("$url" -o /dev/null); done
    # warm the code paths (and valgrind's translation cache) with instrumentation on, then count from zero
    callgrind_control -i on "$GW_PID" >/dev/null
    curl -s -N -H 'content-type: application/json' --data-binary @"$bodyf" "$url" -o /dev/null "$url" -o /dev/null
    callgrind_control -z "$GW_PID" >/dev/null
    local codes
    codes=$(curl -s -N -H 'content-type: application/json' --data-binary @"$bodyf" -w '%{http_code}\n' "${args[@]}" | sort | uniq -c | tr -s ' ')
    [ "$codes" = " $N 200" ] || echo "warning: $name: status codes: $codes" >&2
    local before
    before=$(ls "$TMP"/cg.out.* 2>/dev/null | wc -l)
    callgrind_control -d "$name" "$GW_PID" >/dev/null
    callgrind_control -i off "$GW_PID" >/dev/null
    local f=""
    for _ in $(seq 1 100); do
        [ "$(ls "$TMP"/cg.out.* 2>/dev/null | wc -l)" -gt "$before" ] && break
        sleep 0.05
    done
    f=$(ls -t "$TMP"/cg.out.* | head -n 1)
    local total
    total=$(awk '/^summary:/ { print $2 }' "$f")
    [ -n "$total" ] || total=$(awk '/^totals:/ { print $2 }' "$f")
    echo $((total / N))
}

declare -A RES
LABELS=()
for spec in $BUILDS; do
    label=${spec%%=*}
    dir=${spec#*=}
    [ "$label" = "$spec" ] && label=$(basename "$dir")
    LABELS+=("$label")
    GW_BIN=$dir/llmgate
    [ -x "$GW_BIN" ] || die "llmgate not found at $GW_BIN"
    port=$(free_port)
    {
        printf '{"listeners":[{"address":"127.0.0.1","port":%s}],"workers":1,"access_log":null,"store":null,\n' "$port"
        printf ' "providers":[{"name":"oa","plugin":"openai","base_url":"%s/v1","api_key":"k"},\n' "$MOCK"
        printf '   {"name":"an","plugin":"anthropic","base_url":"%s/v1","api_key":"k"},\n' "$MOCK"
        printf '   {"name":"ge","plugin":"gemini","base_url":"%s/v1beta","api_key":"k"}],\n "models":{' "$MOCK"
        sep=""
        for p in openai anthropic gemini; do
            prov=oa
            [ "$p" = anthropic ] && prov=an
            [ "$p" = gemini ] && prov=ge
            for m in "echo:echo" "lo:words-$CHUNKS_LO" "hi:words-$CHUNKS_HI"; do
                printf '%s"bench/%s/%s":{"endpoints":[{"provider":"%s","model":"%s","pricing":{"prompt":"0.000001","completion":"0.000002"}}]}' \
                    "$sep" "$p" "${m%%:*}" "$prov" "${m#*:}"
                sep=","
            done
        done
        printf '}}\n'
    } >"$TMP/$label.json"
    LLMGATE_PLUGIN_DIR=$(cd "$dir/plugins" && pwd) LLMGATE_SOURCE_DIR=$(cd "$HERE/../.." && pwd) \
        valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$TMP/cg.out" \
        "$GW_BIN" --config "$TMP/$label.json" >"$TMP/$label.log" 2>&1 &
    GW_PID=$!
    up=0
    deadline=$((SECONDS + STARTUP_TIMEOUT))
    while [ "$SECONDS" -lt "$deadline" ]; do
        kill -0 "$GW_PID" 2>/dev/null || { GW_PID=; KEEP_TMP=1; tail -n 20 "$TMP/$label.log" >&2; die "$label: llmgate exited"; }
        [ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$port/health" || true)" = 200 ] && { up=1; break; }
        sleep 0.2
    done
    [ "$up" = 1 ] || { KEEP_TMP=1; die "$label: llmgate under valgrind did not become healthy"; }
    url=http://127.0.0.1:$port/v1/chat/completions
    for path in $PATHS; do
        echo "$label: $path ..." >&2
        RES[$label.$path.req]=$(measure "$label-$path-nonstream" "$url" "$TMP/$path.nonstream.json")
        lo=$(measure "$label-$path-lo" "$url" "$TMP/$path.lo.json")
        hi=$(measure "$label-$path-hi" "$url" "$TMP/$path.hi.json")
        RES[$label.$path.chunk]=$(((hi - lo) / (CHUNKS_HI - CHUNKS_LO)))
        RES[$label.$path.fixed]=$((lo - CHUNKS_LO * RES[$label.$path.chunk]))
    done
    kill "$GW_PID" 2>/dev/null || true
    wait "$GW_PID" 2>/dev/null || true
    GW_PID=
    [ "$KEEP_TMP" = 1 ] || rm -f "$TMP"/cg.out*
done

# ---- report ----
echo
echo "## llmgate instruction counts (callgrind, $(date -u +%Y-%m-%dT%H:%M:%SZ), body $(wc -c <"$BODY") B, $N requests per figure)"
echo
hdr="| path | figure |"
sep="|---|---|"
for l in "${LABELS[@]}"; do
    hdr+=" $l |"
    sep+="---|"
done
[ "${#LABELS[@]}" -gt 1 ] && { hdr+=" ratio |"; sep+="---|"; }
echo "$hdr"
echo "$sep"
for path in $PATHS; do
    for fig in req chunk fixed; do
        case $fig in
        req) what="instructions per non-stream request" ;;
        chunk) what="instructions per relayed chunk (slope $CHUNKS_LO→$CHUNKS_HI)" ;;
        fixed) what="fixed instructions per stream" ;;
        esac
        row="| $path | $what |"
        for l in "${LABELS[@]}"; do row+=" ${RES[$l.$path.$fig]} |"; done
        if [ "${#LABELS[@]}" -gt 1 ]; then
            a=${RES[${LABELS[0]}.$path.$fig]}
            b=${RES[${LABELS[-1]}.$path.$fig]}
            row+=" $(awk -v a="$a" -v b="$b" 'BEGIN { if (a > 0) printf "%.2f", b / a; else print "-" }') |"
        fi
        echo "$row"
    done
done
