#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Real Redis and PostgreSQL servers for the scale-out tests, on 127.0.0.1, random high ports, inside DIR.
#   servers.sh redis-start DIR [PORT]   start redis-server (no persistence); prints its port
#   servers.sh redis-stop DIR           stop it (SIGTERM, then SIGKILL)
#   servers.sh redis-kill DIR           kill -9 it (fault injection)
#   servers.sh pg-init DIR              initdb (once) + start PostgreSQL; prints its port; database "llmgate"
#   servers.sh pg-start DIR             start an initialised cluster again on its port
#   servers.sh pg-stop DIR              fast shutdown
#   servers.sh stop-all DIR             both, quietly
# PostgreSQL refuses to run as root: as root the cluster belongs to the user "llmgate-test" (created if missing).
set -euo pipefail
cmd=${1:?command}
dir=${2:?dir}
PGBIN=${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
PGUSER_OS=llmgate-test

rand_port() { echo $((20000 + RANDOM % 40000)); }

as_pg() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u "$PGUSER_OS" -- "$@"
    else
        "$@"
    fi
}

wait_port() { # port seconds
    for _ in $(seq 1 $((${2} * 20))); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    return 1
}

case "$cmd" in
redis-start)
    mkdir -p "$dir/redis"
    port=${3:-$(cat "$dir/redis/port" 2>/dev/null || rand_port)}
    for _ in 1 2 3 4 5; do
        redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir/redis" \
            --pidfile "$dir/redis/pid" --daemonize yes --logfile "$dir/redis/log" >/dev/null
        if wait_port "$port" 5; then
            echo "$port" >"$dir/redis/port"
            echo "$port"
            exit 0
        fi
        [[ -n ${3:-} ]] && break
        port=$(rand_port)
    done
    echo "redis-server did not start; log:" >&2
    tail -20 "$dir/redis/log" >&2 || true
    exit 1
    ;;
redis-stop | redis-kill)
    pid=$(cat "$dir/redis/pid" 2>/dev/null || true)
    [[ -z $pid ]] && exit 0
    if [[ $cmd == redis-kill ]]; then kill -9 "$pid" 2>/dev/null || true; else kill "$pid" 2>/dev/null || true; fi
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$dir/redis/pid"
    ;;
pg-init)
    [[ -x $PGBIN/initdb ]] || { echo "PostgreSQL server binaries not found (apt-get install postgresql)" >&2; exit 1; }
    if [[ $(id -u) -eq 0 ]] && ! id "$PGUSER_OS" >/dev/null 2>&1; then
        useradd --system --no-create-home --shell /usr/sbin/nologin "$PGUSER_OS"
    fi
    mkdir -p "$dir/pg"
    [[ $(id -u) -eq 0 ]] && chown -R "$PGUSER_OS" "$dir/pg" && chmod 711 "$dir"
    as_pg "$PGBIN/initdb" -D "$dir/pg/data" -U postgres --auth=trust -E UTF8 >"$dir/pg/initdb.log" 2>&1 ||
        { cat "$dir/pg/initdb.log" >&2; exit 1; }
    for _ in 1 2 3 4 5; do # a random port may be taken by someone else: pick another
        rand_port >"$dir/pg/port"
        "$0" pg-start "$dir" >/dev/null 2>&1 && break
    done
    port=$(cat "$dir/pg/port")
    "$0" pg-start "$dir" >/dev/null # no-op when running; shows the error otherwise
    as_pg "$PGBIN/psql" -h 127.0.0.1 -p "$port" -U postgres -qAt -c "CREATE DATABASE llmgate" >/dev/null
    echo "$port"
    ;;
pg-start) # on the port chosen at pg-init: a restart must come back where the clients look for it
    port=$(cat "$dir/pg/port")
    if as_pg "$PGBIN/pg_ctl" -D "$dir/pg/data" status >/dev/null 2>&1; then
        echo "$port"
        exit 0
    fi
    for _ in 1 2 3; do
        if as_pg "$PGBIN/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/log" -w -t 30 \
            -o "-p $port -k $dir/pg -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null 2>&1; then
            echo "$port"
            exit 0
        fi
        sleep 0.5
    done
    tail -20 "$dir/pg/log" >&2 || true
    exit 1
    ;;
pg-stop)
    [[ -d $dir/pg/data ]] && as_pg "$PGBIN/pg_ctl" -D "$dir/pg/data" -m fast -w -t 30 stop >/dev/null 2>&1 || true
    ;;
stop-all)
    "$0" redis-stop "$dir" || true
    "$0" pg-stop "$dir" || true
    ;;
*)
    echo "unknown command $cmd" >&2
    exit 2
    ;;
esac
