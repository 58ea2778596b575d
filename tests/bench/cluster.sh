#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Scale-out benchmark (issue 13): requests/s and latency at c=1 and c=50, non-stream chat through llmgate to the mock
# upstream, for (a) one node with the SQLite store, (b) one replica with Redis + PostgreSQL, (c) three replicas sharing
# them (load split over the three). Every request carries a key with rpm/tpm/credit limits, so (b) and (c) run the
# shared admission script and the settle script per request. Redis and PostgreSQL are started here (servers.sh).
#   tests/bench/cluster.sh [BUILD]      N=20000 requests per run by default (N=... to change), 1 worker per gateway
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
BUILD=${1:-$src/build}
N=${N:-20000}
N1=${N1:-$((N / 4))}
TMP=$(mktemp -d)
SERVERS=$src/tests/cluster/servers.sh
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    "$SERVERS" stop-all "$TMP" || true
    rm -rf "$TMP"
}
trap cleanup EXIT
command -v h2load >/dev/null || { echo "h2load not found (apt-get install nghttp2-client)" >&2; exit 1; }

RP=$("$SERVERS" redis-start "$TMP")
PP=$("$SERVERS" pg-init "$TMP")
"$BUILD/tests/mock/mock_upstream" --port 0 --quiet >"$TMP/mock.out" 2>/dev/null &
pids+=($!)
for _ in $(seq 1 100); do grep -q listening "$TMP/mock.out" && break; sleep 0.05; done
MP=$(sed -n 's/.*:\([0-9]*\)$/\1/p' "$TMP/mock.out")
ADMIN=bench-admin-$RANDOM$RANDOM
export LLMGATE_PLUGIN_DIR=$BUILD/plugins

conf() { # conf PORT STORE_JSON CLUSTER_JSON
    cat <<JSON
{"listeners":[{"address":"127.0.0.1","port":$1}],"workers":1,"access_log":null,"log_level":"warn",
 "providers":[{"name":"up","plugin":"openai","base_url":"http://127.0.0.1:$MP/v1","api_key":"k"}],
 "models":{"bench/echo":{"endpoints":[{"provider":"up","model":"echo","pricing":{"prompt":"0.000000001","completion":"0.000000001"}}]}},
 "store":$2,"auth":{"admin_key":"$ADMIN","require_keys":true}$3}
JSON
}

start() { # start NAME PORT STORE CLUSTER -> waits for /health
    conf "$2" "$3" "$4" >"$TMP/$1.json"
    "$BUILD/llmgate" --config "$TMP/$1.json" 2>"$TMP/$1.log" &
    pids+=($!)
    for _ in $(seq 1 200); do curl -sf "localhost:$2/health" >/dev/null && return 0; sleep 0.05; done
    echo "$1 did not start:" >&2
    cat "$TMP/$1.log" >&2
    exit 1
}

mkkey() { # mkkey PORT -> secret
    curl -sf "localhost:$1/api/admin/keys" -H "authorization: Bearer $ADMIN" \
        -d '{"name":"bench","rpm":10000000,"tpm":10000000,"credit_limit":100000}' | sed -n 's/.*"key":"\([^"]*\)".*/\1/p'
}

printf '{"model":"bench/echo","messages":[{"role":"user","content":"%s"}]}' "$(head -c 600 /dev/zero | tr '\0' 'a')" >"$TMP/body.json"

h2() { # h2 PORT KEY N C -> "reqs/s mean_us p50? "
    h2load -n "$3" -c "$4" -m 1 --h1 -H "authorization: Bearer $2" -H 'content-type: application/json' -d "$TMP/body.json" \
        "http://127.0.0.1:$1/v1/chat/completions" 2>/dev/null
}

report() { # report LABEL OUTPUT
    local rps lat ok
    rps=$(echo "$2" | sed -n 's/^finished in .*, \([0-9.]*\) req\/s.*/\1/p')
    lat=$(echo "$2" | awk '/^time for request:/ {print $6 " " $7}')
    ok=$(echo "$2" | sed -n 's/^status codes: \([0-9]*\) 2xx.*/\1/p')
    printf '%-34s %10s req/s   mean %-10s  2xx %s\n' "$1" "$rps" "$lat" "$ok"
}

SQL="{\"path\":\"$TMP/single.db\"}"
PG="{\"url\":\"postgresql://postgres@127.0.0.1:$PP/llmgate\"}"
CL=",\"cluster\":{\"redis\":\"redis://127.0.0.1:$RP/0\",\"name\":\"bench\"}"

# a base with 7 free consecutive ports (probed; other tests may run on this machine)
while :; do
    base=$((30000 + RANDOM % 20000))
    busy=0
    for i in 0 1 2 3 4 5 6; do (exec 3<>"/dev/tcp/127.0.0.1/$((base + i))") 2>/dev/null && busy=1; done
    [ $busy = 0 ] && break
done
if [ "${AB_ONLY:-0}" = 0 ]; then
start single $base "$SQL" ""
k=$(mkkey $base)
h2 $base "$k" 500 10 >/dev/null # warm-up
report "single node (SQLite)      c=1" "$(h2 $base "$k" "$N1" 1)"
report "single node (SQLite)      c=50" "$(h2 $base "$k" "$N" 50)"

start pgonly $((base + 4)) "$PG" ""
k=$(mkkey $((base + 4)))
h2 $((base + 4)) "$k" 500 10 >/dev/null
report "single node (PostgreSQL)  c=1" "$(h2 $((base + 4)) "$k" "$N1" 1)"
report "single node (PostgreSQL)  c=50" "$(h2 $((base + 4)) "$k" "$N" 50)"
kill "${pids[-1]}"

start r1 $((base + 1)) "$PG" "$CL"
start r2 $((base + 2)) "$PG" "$CL"
start r3 $((base + 3)) "$PG" "$CL"
k=$(mkkey $((base + 1)))
sleep 1
h2 $((base + 1)) "$k" 500 10 >/dev/null
report "1 replica (Redis+PG)      c=1" "$(h2 $((base + 1)) "$k" "$N1" 1)"
cpu() { redis-cli -p "$RP" info cpu | awk -F: '/^used_cpu_(user|sys):/ {s += $2} END {printf "%.6f", s}'; }
c0=$(cpu)
report "1 replica (Redis+PG)      c=50" "$(h2 $((base + 1)) "$k" "$N" 50)"
c1=$(cpu)
echo "redis-server CPU per request at c=50: $(echo "($c1 - $c0) * 1000000 / $N" | bc) us"
# three replicas: the same total concurrency split over them, run at once; req/s summed
for i in 1 2 3; do h2 $((base + i)) "$k" $((N / 3)) 17 >"$TMP/h2.$i" & done
wait %% 2>/dev/null || true
sleep 0.5
while pgrep -f "h2load -n $((N / 3))" >/dev/null; do sleep 0.2; done
sum=0
for i in 1 2 3; do
    r=$(sed -n 's/^finished in .*, \([0-9.]*\) req\/s.*/\1/p' "$TMP/h2.$i")
    sum=$(echo "$sum + ${r:-0}" | bc)
    report "3 replicas, replica $i     c=17" "$(cat "$TMP/h2.$i")"
done
printf '%-34s %10s req/s (sum)\n' "3 replicas                c=51" "$sum"
fi
[ "${AB_ONLY:-0}" = 0 ] && echo "redis commands per request: $(redis-cli -p "$RP" info commandstats | sed -n 's/^cmdstat_evalsha:calls=\([0-9]*\).*/\1/p') EVALSHA in total"

# What Redis itself adds: the same single node (SQLite) with and without a cluster section, runs interleaved
# (ROUNDS times, each c=1 then c=50) so machine noise hits both alike; the medians are printed.
ROUNDS=${ROUNDS:-3}
start ab_local $((base + 5)) "{\"path\":\"$TMP/ab_local.db\"}" ""
start ab_redis $((base + 6)) "{\"path\":\"$TMP/ab_redis.db\"}" ",\"cluster\":{\"redis\":\"redis://127.0.0.1:$RP/0\",\"name\":\"ab\"}"
pid_b=${pids[-1]}
pid_a=${pids[-2]}
ka=$(mkkey $((base + 5)))
kb=$(mkkey $((base + 6)))
# CPU seconds (user + system) of a process: robust to machine noise, unlike wall-clock throughput
pcpu() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.4f", ($14 + $15) / hz}' "/proc/$1/stat"; }
sleep 1
median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
for c in 1 50; do
    n=$N1
    [ $c = 50 ] && n=$N
    : >"$TMP/ab.local.$c"
    : >"$TMP/ab.redis.$c"
    ca=0 cb=0 cr=0
    for _ in $(seq 1 "$ROUNDS"); do
        a0=$(pcpu "$pid_a")
        h2 $((base + 5)) "$ka" "$n" $c | sed -n 's/^finished in .*, \([0-9.]*\) req\/s.*/\1/p' >>"$TMP/ab.local.$c"
        a1=$(pcpu "$pid_a")
        b0=$(pcpu "$pid_b")
        r0=$(redis-cli -p "$RP" info cpu | awk -F: '/^used_cpu_(user|sys):/ {s += $2} END {printf "%.6f", s}')
        h2 $((base + 6)) "$kb" "$n" $c | sed -n 's/^finished in .*, \([0-9.]*\) req\/s.*/\1/p' >>"$TMP/ab.redis.$c"
        b1=$(pcpu "$pid_b")
        r1=$(redis-cli -p "$RP" info cpu | awk -F: '/^used_cpu_(user|sys):/ {s += $2} END {printf "%.6f", s}')
        ca=$(echo "$ca + $a1 - $a0" | bc -l)
        cb=$(echo "$cb + $b1 - $b0" | bc -l)
        cr=$(echo "$cr + $r1 - $r0" | bc -l)
    done
    printf 'A/B c=%s CPU per request: gateway %.1f us without Redis, %.1f us with; redis-server %.1f us\n' $c \
        "$(echo "$ca * 1000000 / ($n * $ROUNDS)" | bc -l)" "$(echo "$cb * 1000000 / ($n * $ROUNDS)" | bc -l)" \
        "$(echo "$cr * 1000000 / ($n * $ROUNDS)" | bc -l)"
    l=$(median <"$TMP/ab.local.$c")
    r=$(median <"$TMP/ab.redis.$c")
    if [ $c = 1 ]; then
        printf 'A/B c=1:  without Redis %s req/s, with Redis %s req/s: Redis adds %s us per request\n' "$l" "$r" \
            "$(echo "1000000 / $r - 1000000 / $l" | bc -l | xargs printf '%.0f')"
    else
        printf 'A/B c=50: without Redis %s req/s, with Redis %s req/s: ratio %s\n' "$l" "$r" "$(echo "$r / $l" | bc -l | xargs printf '%.2f')"
    fi
done
