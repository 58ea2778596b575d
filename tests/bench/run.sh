#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Benchmark: direct-to-mock vs through-llmgate, same box, pinned cores ("added latency": the difference between the
# two legs, see tests/bench/README.md). Not a pass/fail test; prints a markdown table. Builds nothing:
# point BUILD at a build tree containing llmgate and tests/mock/mock_upstream. Options (env): see tests/bench/README.md.
set -euo pipefail

BUILD=${BUILD:-./build}
MOCK_BIN=${MOCK_BIN:-$BUILD/tests/mock/mock_upstream}
LLMGATE_BIN=${LLMGATE_BIN:-$BUILD/llmgate}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BODY=${BODY:-$HERE/chat_1k.json}
CONCURRENCY=${CONCURRENCY:-"1 50 200"}
MODES=${MODES:-"nonstream stream"}
N1=${N1:-2000}          # requests per run at c=1
N=${N:-20000}           # requests per run at c>1
DURATION=${DURATION:-}  # e.g. "10s": timing-based runs (h2load -D) instead of -n
WARMUP=${WARMUP:-500}   # requests before every measured run (ignored with DURATION: --warm-up-time 2s instead)
PROBE_N=${PROBE_N:-200} # sequential curl requests for the TTFT probe
H2=${H2:-0}             # 1: h2c prior knowledge from h2load to both targets instead of HTTP/1.1
MOCK_ONLY=${MOCK_ONLY:-0} # 1: only the direct runs (no llmgate needed)
GW_CPU=${GW_CPU:-0}
MOCK_CPU=${MOCK_CPU:-1}
LOAD_CPUS=${LOAD_CPUS:-} # e.g. "2,3" to pin h2load/curl; unpinned by default
KEEP_TMP=${KEEP_TMP:-0}
NGINX=${NGINX:-1}       # 1: also run a plain nginx reverse proxy (proxy_pass + upstream keep-alive, one worker, pinned
                        # like the gateway) as a second reference; installs Debian's nginx-light when missing
AUTH=${AUTH:-0}         # 1: also run a second llmgate with a required API key (created with `llmgate keys create` on a
                        # temp DB) and report its req/s and latency against the bare gateway

die() {
    echo "run.sh: error: $*" >&2
    exit 1
}

command -v h2load >/dev/null || die "h2load not found (apt-get install nghttp2-client)"
command -v curl >/dev/null || die "curl not found"
[ -x "$MOCK_BIN" ] || die "mock_upstream not found at $MOCK_BIN (build target mock_upstream, or set BUILD/MOCK_BIN)"
[ -r "$BODY" ] || die "request body $BODY not readable"
if [ "$MOCK_ONLY" != 1 ]; then
    [ -x "$LLMGATE_BIN" ] || die "llmgate not found at $LLMGATE_BIN (build it, set BUILD/LLMGATE_BIN, or MOCK_ONLY=1)"
fi

# ---- pinning: skipped cleanly when taskset is missing or the CPU does not exist ----
NCPU=$(nproc 2>/dev/null || echo 1)
pin() { # pin CPU_LIST -> prints a command prefix (possibly empty)
    local cpus=$1
    if [ -n "$cpus" ] && command -v taskset >/dev/null && taskset -c "$cpus" true 2>/dev/null; then
        echo "taskset -c $cpus"
    fi
}
PIN_GW=$(pin "$GW_CPU")
PIN_MOCK=$(pin "$MOCK_CPU")
PIN_LOAD=$(pin "$LOAD_CPUS")
[ -z "$PIN_GW$PIN_MOCK" ] && echo "note: taskset unavailable or CPUs missing: running unpinned" >&2

TMP=$(mktemp -d "${TMPDIR:-/tmp}/llmgate-bench.XXXXXX")
MOCK_PID=
GW_PID=
GA_PID=
NG_PID=
cleanup() {
    local rc=$?
    for pid in $NG_PID $GA_PID $GW_PID $MOCK_PID; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in $NG_PID $GA_PID $GW_PID $MOCK_PID; do
        wait "$pid" 2>/dev/null || true
    done
    if [ "$KEEP_TMP" = 1 ]; then echo "kept $TMP" >&2; else rm -rf "$TMP"; fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    if command -v python3 >/dev/null; then
        python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
        return
    fi
    local p
    for _ in $(seq 1 50); do
        p=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return
        fi
    done
    die "could not find a free port"
}

# ---- mock upstream ----
$PIN_MOCK "$MOCK_BIN" --port 0 --quiet >"$TMP/mock.out" 2>"$TMP/mock.err" &
MOCK_PID=$!
for _ in $(seq 1 100); do
    grep -q '^listening on ' "$TMP/mock.out" 2>/dev/null && break
    kill -0 "$MOCK_PID" 2>/dev/null || die "mock_upstream exited: $(cat "$TMP/mock.err")"
    sleep 0.05
done
MOCK_PORT=$(sed -n 's/^listening on .*:\([0-9][0-9]*\)$/\1/p' "$TMP/mock.out")
[ -n "$MOCK_PORT" ] || die "mock_upstream did not report its port"
MOCK_URL=http://127.0.0.1:$MOCK_PORT

# request bodies: direct uses model "echo", through the gateway "bench/echo"
make_body() { # make_body MODEL STREAM OUT
    local model=$1 stream=$2 out=$3
    if [ "$stream" = 1 ]; then
        sed -e "s|\"model\":\"[^\"]*\"|\"model\":\"$model\",\"stream\":true|" "$BODY" >"$out"
    else
        sed -e "s|\"model\":\"[^\"]*\"|\"model\":\"$model\"|" "$BODY" >"$out"
    fi
    grep -q "\"model\":\"$model\"" "$out" || die "$BODY has no \"model\":\"...\" field to rewrite"
}
make_body echo 0 "$TMP/direct_nonstream.json"
make_body echo 1 "$TMP/direct_stream.json"
make_body bench/echo 0 "$TMP/gw_nonstream.json"
make_body bench/echo 1 "$TMP/gw_stream.json"

# ---- llmgate ----
if [ "$MOCK_ONLY" != 1 ]; then
    GW_PORT=${GW_PORT:-$(free_port)}
    GW_URL=http://127.0.0.1:$GW_PORT
    cat >"$TMP/llmgate.json" <<EOF
{"listeners":[{"address":"127.0.0.1","port":$GW_PORT}],"workers":1,"access_log":null,"store":null,
 "providers":[{"name":"mockup","plugin":"openai","base_url":"$MOCK_URL/v1","api_key":"bench"}],
 "models":{"bench/echo":{"endpoints":[{"provider":"mockup","model":"echo",
   "pricing":{"prompt":"0.000001","completion":"0.000002"}}]}}}
EOF
    # same lookup hints the test suite gives llmgate (plugins from the build tree, shipped policies from the source tree)
    export LLMGATE_SOURCE_DIR=${LLMGATE_SOURCE_DIR:-$(cd "$HERE/../.." && pwd)}
    if [ -z "${LLMGATE_PLUGIN_DIR:-}" ] && [ -d "$(dirname "$LLMGATE_BIN")/plugins" ]; then
        LLMGATE_PLUGIN_DIR=$(cd "$(dirname "$LLMGATE_BIN")/plugins" && pwd)
        export LLMGATE_PLUGIN_DIR
    fi
    $PIN_GW "$LLMGATE_BIN" --config "$TMP/llmgate.json" >"$TMP/llmgate.log" 2>&1 &
    GW_PID=$! # taskset execs, so this is llmgate's pid (needed for VmHWM)
    up=0
    deadline=$((SECONDS + ${STARTUP_TIMEOUT:-10}))
    while [ "$SECONDS" -lt "$deadline" ]; do
        if ! kill -0 "$GW_PID" 2>/dev/null; then
            GW_PID=
            echo "---- llmgate log ($TMP/llmgate.log) ----" >&2
            tail -n 30 "$TMP/llmgate.log" >&2 || true
            KEEP_TMP=1
            die "llmgate exited during startup (config: $TMP/llmgate.json)"
        fi
        code=$(curl -s -o /dev/null -m 1 -w '%{http_code}' "$GW_URL/health" || true)
        if [ "$code" = 200 ]; then
            up=1
            break
        fi
        sleep 0.05
    done
    if [ "$up" != 1 ]; then
        echo "---- llmgate log ($TMP/llmgate.log) ----" >&2
        tail -n 30 "$TMP/llmgate.log" >&2 || true
        KEEP_TMP=1
        die "llmgate did not answer 200 on GET $GW_URL/health within ${STARTUP_TIMEOUT:-10} s"
    fi
    # one request through the gateway must work before measuring anything
    code=$(curl -s -o "$TMP/smoke.out" -w '%{http_code}' -H 'content-type: application/json' \
        --data-binary @"$TMP/gw_nonstream.json" "$GW_URL/v1/chat/completions" || true)
    if [ "$code" != 200 ]; then
        KEEP_TMP=1
        die "smoke request through llmgate failed: HTTP $code: $(head -c 400 "$TMP/smoke.out")"
    fi
fi

# ---- nginx reference (NGINX=1): what a proxy that does no JSON work costs on the same core ----
# One process (master_process off = the worker itself), pinned like the gateway, upstream keep-alive to the mock,
# no buffering (SSE passes through as it arrives), no access log; config and temp paths in $TMP.
NGINX_BIN=${NGINX_BIN:-$(command -v nginx || echo /usr/sbin/nginx)}
if [ "$NGINX" = 1 ] && [ ! -x "$NGINX_BIN" ]; then
    echo "nginx not found: installing nginx-light (Debian)" >&2
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends nginx-light >/dev/null ||
        die "could not install nginx-light (set NGINX=0 to skip the nginx reference)"
    NGINX_BIN=$(command -v nginx || echo /usr/sbin/nginx)
fi
if [ "$NGINX" = 1 ]; then
    NG_PORT=$(free_port)
    NG_URL=http://127.0.0.1:$NG_PORT
    mkdir -p "$TMP/nginx"
    cat >"$TMP/nginx/nginx.conf" <<EOF
worker_processes 1;
master_process off;
daemon off;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $TMP/nginx/body;
    proxy_temp_path $TMP/nginx/proxy;
    fastcgi_temp_path $TMP/nginx/fastcgi;
    uwsgi_temp_path $TMP/nginx/uwsgi;
    scgi_temp_path $TMP/nginx/scgi;
    upstream mock { server 127.0.0.1:$MOCK_PORT; keepalive 256; }
    server {
        listen 127.0.0.1:$NG_PORT;
        client_max_body_size 16m;
        client_body_buffer_size 1m;
        keepalive_requests 1000000;
        location / {
            proxy_pass http://mock;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }
    }
}
EOF
    $PIN_GW "$NGINX_BIN" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" >"$TMP/nginx/out.log" 2>&1 &
    NG_PID=$!
    up=0
    code=
    for _ in $(seq 1 100); do
        kill -0 "$NG_PID" 2>/dev/null || { NG_PID=; KEEP_TMP=1; cat "$TMP/nginx/out.log" >&2; die "nginx exited"; }
        code=$(curl -s -o /dev/null -m 1 -w '%{http_code}' -H 'content-type: application/json' \
            --data-binary @"$TMP/direct_nonstream.json" "$NG_URL/v1/chat/completions" || true)
        [ "$code" = 200 ] && { up=1; break; }
        sleep 0.05
    done
    [ "$up" = 1 ] || { KEEP_TMP=1; die "nginx did not proxy a request to the mock (HTTP $code)"; }
fi

# ---- llmgate with API keys (AUTH=1) ----
# Same config, but with a store (keys + usage ledger) instead of "store":null, and "auth":{"require_keys":true}; the
# key comes from the CLI, as an operator would make it. The difference to the bare router is the key lookup (SHA-256 +
# table probe), admission (RPM/TPM buckets, credit), settlement, and one ledger row per generation (queue + writer
# thread). Metrics are recorded by both.
AUTH_HDR='authorization: Bearer bench'
if [ "$AUTH" = 1 ] && [ "$MOCK_ONLY" != 1 ]; then
    AUTH_KEY=$("$LLMGATE_BIN" keys create --db "$TMP/auth.db" --name bench --json 2>"$TMP/keys.err" |
        sed -n 's/^ *"key": *"\(sk-lg-[A-Za-z0-9]*\)".*/\1/p')
    [ -n "$AUTH_KEY" ] || die "llmgate keys create failed: $(cat "$TMP/keys.err")"
    GA_PORT=$(free_port)
    GA_URL=http://127.0.0.1:$GA_PORT
    sed -e "s|\"port\":$GW_PORT|\"port\":$GA_PORT|" -e "s|\"store\":null,||" \
        -e "1s|^{|{\"store\":{\"path\":\"$TMP/auth.db\"},\"auth\":{\"require_keys\":true},|" \
        "$TMP/llmgate.json" >"$TMP/llmgate-auth.json"
    $PIN_GW "$LLMGATE_BIN" --config "$TMP/llmgate-auth.json" >"$TMP/llmgate-auth.log" 2>&1 &
    GA_PID=$!
    up=0
    deadline=$((SECONDS + ${STARTUP_TIMEOUT:-10}))
    while [ "$SECONDS" -lt "$deadline" ]; do
        kill -0 "$GA_PID" 2>/dev/null || { GA_PID=; KEEP_TMP=1; tail -n 30 "$TMP/llmgate-auth.log" >&2; die "llmgate (auth) exited during startup"; }
        code=$(curl -s -o /dev/null -m 1 -w '%{http_code}' "$GA_URL/health" || true)
        [ "$code" = 200 ] && { up=1; break; }
        sleep 0.05
    done
    [ "$up" = 1 ] || { KEEP_TMP=1; die "llmgate (auth) did not become healthy on $GA_URL"; }
    code=$(curl -s -o "$TMP/smoke-auth.out" -w '%{http_code}' -H 'content-type: application/json' -H "authorization: Bearer $AUTH_KEY" \
        --data-binary @"$TMP/gw_nonstream.json" "$GA_URL/v1/chat/completions" || true)
    [ "$code" = 200 ] || { KEEP_TMP=1; die "smoke request with the key failed: HTTP $code: $(head -c 400 "$TMP/smoke-auth.out")"; }
    code=$(curl -s -o /dev/null -w '%{http_code}' -H 'content-type: application/json' --data-binary @"$TMP/gw_nonstream.json" \
        "$GA_URL/v1/chat/completions" || true)
    [ "$code" = 401 ] || die "llmgate (auth) answered $code without a key (expected 401)"
fi

# ---- helpers ----
H2LOAD_PROTO=(--h1)
[ "$H2" = 1 ] && H2LOAD_PROTO=()

# h2load prints durations as 123us / 1.23ms / 1.23s: convert to integer microseconds
to_us() {
    awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) u = n; else if (v ~ /ms$/) u = n * 1000; else if (v ~ /s$/) u = n * 1000000; else u = n; printf "%d", u }'
}

# percentile from a one-number-per-line file (nearest rank)
pct() { # pct FILE P
    sort -n "$1" | awk -v p="$2" '{ a[NR] = $1 } END { if (NR == 0) { print "-"; exit } i = int(NR * p / 100 + 0.999999); if (i < 1) i = 1; if (i > NR) i = NR; printf "%d", a[i] }'
}

# run_load NAME URL BODYFILE C -> sets R_RPS R_OK R_FAIL R_P50 R_P99 R_TTFB (µs)
run_load() {
    local name=$1 url=$2 body=$3 c=$4 n
    if [ "$c" -le 1 ]; then n=$N1; else n=$N; fi
    local common=("${H2LOAD_PROTO[@]}" -c "$c" -m 1 -d "$body" -H 'content-type: application/json' -H "$AUTH_HDR")
    local out=$TMP/$name.out log=$TMP/$name.log
    if [ -n "$DURATION" ]; then
        $PIN_LOAD h2load "${common[@]}" -D "$DURATION" --warm-up-time 2s --log-file="$log" "$url" >"$out" 2>&1 || true
    else
        if [ "$WARMUP" -gt 0 ]; then
            $PIN_LOAD h2load "${common[@]}" -n "$WARMUP" "$url" >/dev/null 2>&1 || true
        fi
        $PIN_LOAD h2load "${common[@]}" -n "$n" --log-file="$log" "$url" >"$out" 2>&1 || true
    fi
    R_RPS=$(sed -n 's/^finished in .*, \([0-9.]*\) req\/s.*/\1/p' "$out")
    R_OK=$(sed -n 's/^requests: .* \([0-9]*\) succeeded.*/\1/p' "$out")
    R_FAIL=$(sed -n 's/^requests: .* \([0-9]*\) failed, \([0-9]*\) errored.*/\1+\2/p' "$out")
    local ttfb_mean
    ttfb_mean=$(awk '/^time to 1st byte:/ { print $7 }' "$out")
    # with -D the connections open during the warm-up, so h2load reports no time to 1st byte
    R_TTFB=$([ -n "$ttfb_mean" ] && [ -z "$DURATION" ] && to_us "$ttfb_mean" || echo -)
    # per-request latency (µs) of 2xx responses only
    awk -F'\t' '$2 >= 200 && $2 < 300 { print $3 }' "$log" >"$log.us" 2>/dev/null || : >"$log.us"
    R_P50=$(pct "$log.us" 50)
    R_P99=$(pct "$log.us" 99)
    if [ -z "$R_RPS" ]; then
        echo "warning: h2load run $name produced no result, see below" >&2
        tail -n 5 "$out" >&2
        R_RPS=0
    fi
    [ "${R_FAIL:-0+0}" = "0+0" ] || echo "warning: $name: failed+errored = $R_FAIL (succeeded $R_OK)" >&2
}

# TTFT probe: PROBE_N sequential streamed requests on one keep-alive connection; time_starttransfer per request (µs)
probe_ttft() { # probe_ttft URL BODYFILE OUTFILE
    local url=$1 body=$2 outf=$3 args=() i
    for ((i = 0; i < PROBE_N; i++)); do
        args+=("$url" -o /dev/null)
    done
    $PIN_LOAD curl -s -N -H 'content-type: application/json' -H 'authorization: Bearer bench' --data-binary @"$body" \
        -w '%{time_starttransfer}\n' "${args[@]}" | awk '{ printf "%d\n", $1 * 1000000 }' >"$outf"
}

diff_us() { # a - b, or "-" when either is missing
    if [[ "$1" =~ ^[0-9]+$ && "$2" =~ ^[0-9]+$ ]]; then echo $(($1 - $2)); else echo -; fi
}
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0 && a != "-") printf "%.2f", a / b; else print "-" }'
}

# ---- runs ----
echo "mock: $MOCK_URL (pinned: ${PIN_MOCK:-no}); gateway: ${GW_URL:-skipped} (pinned: ${PIN_GW:-no}); load: h2load $([ "$H2" = 1 ] && echo h2c || echo --h1), cpus=$NCPU" >&2
ROWS=()
NG_ROWS=()
AUTH_ROWS=()
for mode in $MODES; do
    for c in $CONCURRENCY; do
        echo "running $mode c=$c ..." >&2
        run_load "direct_${mode}_c$c" "$MOCK_URL/v1/chat/completions" "$TMP/direct_$mode.json" "$c"
        d_rps=$R_RPS d_p50=$R_P50 d_p99=$R_P99 d_ttfb=$R_TTFB
        g_rps=- g_p50=- g_p99=- g_ttfb=-
        n_rps=- n_p50=- n_p99=-
        if [ -n "$NG_PID" ]; then
            kill -0 "$NG_PID" 2>/dev/null || die "nginx died during the run"
            run_load "nginx_${mode}_c$c" "$NG_URL/v1/chat/completions" "$TMP/direct_$mode.json" "$c"
            n_rps=$R_RPS n_p50=$R_P50 n_p99=$R_P99
        fi
        if [ "$MOCK_ONLY" != 1 ]; then
            kill -0 "$GW_PID" 2>/dev/null || die "llmgate died during the run (log: $TMP/llmgate.log)"
            run_load "gw_${mode}_c$c" "$GW_URL/v1/chat/completions" "$TMP/gw_$mode.json" "$c"
            g_rps=$R_RPS g_p50=$R_P50 g_p99=$R_P99 g_ttfb=$R_TTFB
        fi
        ROWS+=("| $mode | $c | $d_rps | $g_rps | $(ratio "$g_rps" "$d_rps") | $d_p50 / $d_p99 | $g_p50 / $g_p99 | $(diff_us "$g_p50" "$d_p50") / $(diff_us "$g_p99" "$d_p99") | $d_ttfb / $g_ttfb / $(diff_us "$g_ttfb" "$d_ttfb") |")
        NG_ROWS+=("| $mode | $c | $d_rps | $n_rps | $g_rps | $(ratio "$n_rps" "$d_rps") | $(ratio "$g_rps" "$n_rps") | $(diff_us "$n_p50" "$d_p50") / $(diff_us "$n_p99" "$d_p99") | $(diff_us "$g_p50" "$d_p50") / $(diff_us "$g_p99" "$d_p99") |")
        if [ -n "$GA_PID" ]; then
            kill -0 "$GA_PID" 2>/dev/null || die "llmgate (auth) died during the run (log: $TMP/llmgate-auth.log)"
            AUTH_HDR="authorization: Bearer $AUTH_KEY"
            run_load "gwauth_${mode}_c$c" "$GA_URL/v1/chat/completions" "$TMP/gw_$mode.json" "$c"
            AUTH_HDR='authorization: Bearer bench'
            AUTH_ROWS+=("| $mode | $c | $g_rps | $R_RPS | $(ratio "$R_RPS" "$g_rps") | $g_p50 / $g_p99 | $R_P50 / $R_P99 | $(diff_us "$R_P50" "$g_p50") / $(diff_us "$R_P99" "$g_p99") |")
        fi
    done
done

echo "running TTFT probe ($PROBE_N sequential streamed requests each, time to the first content token) ..." >&2
# Measured to the first SSE event with non-empty delta content on both legs: the gateway holds the upstream's role-only
# first chunk until content arrives (so an early error can still fail over), so header time would compare unlike things.
read -r t_d50 t_d99 < <(node "$(dirname "$0")/ttft.mjs" "$MOCK_URL/v1/chat/completions" "$BODY" echo "$PROBE_N")
t_n50=- t_n99=-
if [ -n "$NG_PID" ]; then
    read -r t_n50 t_n99 < <(node "$(dirname "$0")/ttft.mjs" "$NG_URL/v1/chat/completions" "$BODY" echo "$PROBE_N")
fi
t_g50=- t_g99=-
if [ "$MOCK_ONLY" != 1 ]; then
    read -r t_g50 t_g99 < <(node "$(dirname "$0")/ttft.mjs" "$GW_URL/v1/chat/completions" "$BODY" bench/echo "$PROBE_N")
fi

RSS=-
if [ -n "$GW_PID" ] && [ -r "/proc/$GW_PID/status" ]; then
    RSS=$(awk '/^VmHWM:/ { print $2 " " $3 }' "/proc/$GW_PID/status")
fi

# ---- report ----
echo
echo "## llmgate benchmark ($(date -u +%Y-%m-%dT%H:%M:%SZ), $(uname -m), $NCPU CPUs, body $(wc -c <"$BODY") B)"
echo
echo "h2load $([ "$H2" = 1 ] && echo "h2c prior knowledge" || echo "--h1 (HTTP/1.1 keep-alive)"), -m 1, $([ -n "$DURATION" ] && echo "-D $DURATION" || echo "-n $N1 (c=1) / $N (c>1), $WARMUP warm-up requests"); latencies in µs from --log-file (2xx only); TTFB = h2load \"time to 1st byte\" mean (per connection)."
echo
echo "| mode | c | direct req/s | gateway req/s | ratio | direct p50 / p99 | gateway p50 / p99 | added p50 / p99 | TTFB mean direct / gateway / added |"
echo "|---|---|---|---|---|---|---|---|---|"
for row in "${ROWS[@]}"; do
    echo "$row"
done
echo
echo "| TTFT probe (first content token, $PROBE_N sequential, keep-alive) | p50 µs | p99 µs |"
echo "|---|---|---|"
echo "| direct | $t_d50 | $t_d99 |"
echo "| through llmgate | $t_g50 | $t_g99 |"
echo "| added | $(diff_us "$t_g50" "$t_d50") | $(diff_us "$t_g99" "$t_d99") |"
if [ -n "$NG_PID" ]; then
    echo "| through nginx | $t_n50 | $t_n99 |"
    echo "| added by nginx | $(diff_us "$t_n50" "$t_d50") | $(diff_us "$t_n99" "$t_d99") |"
    echo
    echo "### nginx reference (proxy_pass, upstream keep-alive, one worker on the gateway's core)"
    echo
    echo "| mode | c | direct req/s | nginx req/s | llmgate req/s | nginx / direct | llmgate / nginx | nginx added p50 / p99 µs | llmgate added p50 / p99 µs |"
    echo "|---|---|---|---|---|---|---|---|---|"
    for row in "${NG_ROWS[@]}"; do
        echo "$row"
    done
fi
echo
echo "llmgate peak RSS (VmHWM): $RSS"
if [ -n "$GA_PID" ]; then
    echo
    echo "### API keys on (AUTH=1): bare gateway vs gateway with a required key (target: ratio >= 0.90)"
    echo
    echo "| mode | c | bare req/s | with key req/s | ratio | bare p50 / p99 | with key p50 / p99 | added p50 / p99 |"
    echo "|---|---|---|---|---|---|---|---|"
    for row in "${AUTH_ROWS[@]}"; do
        echo "$row"
    done
    echo
    # the ledger kept up: every generation committed, none dropped (queue-full policy: drop + count, never block)
    sleep 1
    curl -s "$GA_URL/metrics" | awk '/^llmgate_ledger_(rows_submitted|rows_committed|rows_dropped)_total|^llmgate_rejections_total/ { printf "%s%s", sep, $0; sep = ", " } END { print "" }' |
        sed 's/^/ledger (auth gateway): /'
fi
