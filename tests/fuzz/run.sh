#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Short coverage-guided fuzz run of every target (libFuzzer + ASan/UBSan, clang). New inputs go to a scratch folder,
# never into the checked-in seed corpora. Usage: tests/fuzz/run.sh BUILD_DIR [SECONDS_PER_TARGET]
set -euo pipefail
build=$(cd "${1:?usage: run.sh BUILD_DIR [SECONDS]}" && pwd) # absolute: the targets run from a scratch folder
secs=${2:-${FUZZ_SECONDS:-10}}
here=$(cd "$(dirname "$0")" && pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
failed=0 passed=0
for bin in "$build"/tests/fuzz/fuzz_*; do
    [[ -x "$bin" ]] || continue
    name=$(basename "$bin")
    target=${name#fuzz_}
    mkdir -p "$scratch/$target"
    echo "fuzz $target: ${secs}s"
    if (cd "$scratch" && "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=0 \
            "$scratch/$target" "$here/corpus/$target" >"$scratch/$target.log" 2>&1); then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "fuzz $target FAILED; crash input and log:"
        ls "$scratch"/crash-* "$scratch"/leak-* "$scratch"/timeout-* 2>/dev/null || true
        tail -40 "$scratch/$target.log"
        mkdir -p "$build/fuzz-artifacts" && cp "$scratch"/crash-* "$scratch"/leak-* "$scratch"/timeout-* "$build/fuzz-artifacts/" 2>/dev/null || true
    fi
done
echo "fuzz: $passed passed, $failed failed"
[[ $failed -eq 0 && $passed -gt 0 ]]
