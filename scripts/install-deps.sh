#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Install what llmgate needs on Debian 12, only what is missing.
#   scripts/install-deps.sh          build + run dependencies
#   scripts/install-deps.sh --test   also test tools (clang for fuzzing, h2load, luacheck, Node.js) and the
#                                    npm packages of the real-client tests (from the lockfile)
set -euo pipefail
cd "$(dirname "$0")/.."

want=(build-essential cmake pkg-config libh2o-dev libuv1-dev libluajit-5.1-dev libcurl4-openssl-dev libjansson-dev
      libcmocka-dev libssl-dev libsqlite3-dev curl)
want+=(libhiredis-dev libpq-dev) # scale-out: Redis client, PostgreSQL store
if [[ "${1:-}" == "--test" ]]; then
    want+=(clang clang-format libclang-rt-14-dev nghttp2-client lua-check procps openssl nginx-light valgrind)
    # headless browsers: the dashboard's tests (tests/browser) drive both, the MCP OAuth consent page test Chromium
    want+=(chromium firefox-esr)
    want+=(redis-server postgresql) # the scale-out tests start their own servers
    command -v node >/dev/null 2>&1 || want+=(nodejs npm)
fi

missing=()
for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "installing: ${missing[*]}"
    sudo=""
    [[ $(id -u) -ne 0 ]] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [[ "${1:-}" == "--test" ]]; then
    # npm packages pinned by lockfiles, one folder per test area (the real-client SDKs in tests/clients, the MCP
    # conformance suite with its own Node 22 in tests/conformance, ...): every tests/*/package-lock.json
    for lock in tests/*/package-lock.json; do
        dir=$(dirname "$lock")
        if [[ -f $dir/package-lock.json ]]; then
            if [[ ! -d $dir/node_modules ]] || [[ $dir/package-lock.json -nt $dir/node_modules ]]; then
                (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
                touch "$dir/node_modules"
            fi
        fi
    done
fi
