#!/usr/bin/env bash
# Runs libFuzzer targets for a while each, two at a time (the CI machine has 2 cores), and
# fails when any of them finds a crash, leak, timeout or sanitizer report.
#   tests/fuzz/run.sh BUILD_DIR SECONDS TARGET...
# Each target starts from its seeds (tests/fuzz/corpus/<t>, read only) and a working corpus
# in OUT/corpus/<t> (where new inputs go); its log is OUT/logs/<t>.log and a crashing
# input is written to OUT/artifacts/<t>/ (OUT is $FUZZ_OUT, else BUILD_DIR) (copy it to tests/fuzz/crashes/<t>/
# once the bug is fixed, so make test replays it).
set -uo pipefail
cd "$(dirname "$0")/../.."
build=$1 seconds=$2
out=${FUZZ_OUT:-$build}   # where corpora, logs and artifacts go
shift 2
mkdir -p "$out/logs"

run_one() {
    local t=$1
    mkdir -p "$out/corpus/$t" "$out/artifacts/$t"
    OPENBLAS_NUM_THREADS=1 "$build/fuzz_$t" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 \
        -max_len=65536 -print_final_stats=1 -artifact_prefix="$out/artifacts/$t/" \
        "$out/corpus/$t" "tests/fuzz/corpus/$t" >"$out/logs/$t.log" 2>&1
}

failed=()
targets=("$@")
while [ $# -gt 0 ]; do
    a=$1; shift
    b=${1:-}; [ $# -gt 0 ] && shift
    run_one "$a" & pa=$!
    if [ -n "$b" ]; then run_one "$b" & pb=$!; fi
    wait "$pa" || failed+=("$a")
    if [ -n "$b" ]; then wait "$pb" || failed+=("$b"); fi
done

for t in "${targets[@]}"; do
    log=$out/logs/$t.log
    printf '%-14s %s\n' "$t" "$(grep -E '^#[0-9]+.*(DONE|cov:)' "$log" | tail -1)"
done
if [ ${#failed[@]} -gt 0 ]; then
    for t in "${failed[@]}"; do
        echo "fuzz: $t failed; the end of $out/logs/$t.log:" >&2
        tail -40 "$out/logs/$t.log" >&2
    done
    exit 1
fi
echo "fuzz: no findings in $seconds s per target"
