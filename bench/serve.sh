#!/usr/bin/env bash
# Serving benchmark: 1, 8 and 64 concurrent streaming sessions against hyperd with the
# bundled model, batched (one scheduler step for all sessions) versus stepped one by one
# (--max-batch 1).  Prints a table and the issue's targets; also writes bench/out/serve.md.
#   bench/serve.sh BUILD_DIR [MODEL_DIR] [CHARS]
set -euo pipefail
build=${1:-build}
models=${2:-models}
chars=${3:-400}
out=bench/out/serve.md
mkdir -p bench/out
data=$(mktemp -d /tmp/hyperd-bench-XXXXXX)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$data"; }
trap cleanup EXIT

declare -A cps p50 p99
for mode in batched single; do
  mb=128; [ "$mode" = single ] && mb=1
  fifo="$data/port.$mode"
  mkfifo "$fifo"
  "$build/hyperd" --port 0 --data-dir "$data/$mode" --models "$models" --max-batch $mb \
      --max-sessions 1000 --log-level warn > "$fifo" 2>"$data/log.$mode" &
  pid=$!
  read -r line < "$fifo"
  url=$(sed 's/.*listening on //' <<<"$line")
  "$build/bench_serve" "$url" 4 50 > /dev/null     # warm-up
  for n in 1 8 64; do
    r=$("$build/bench_serve" "$url" $n "$chars")
    cps[$mode,$n]=$(sed 's/.*chars_per_s=\([0-9.]*\).*/\1/' <<<"$r")
    p50[$mode,$n]=$(sed 's/.*p50_ms=\([0-9.]*\).*/\1/' <<<"$r")
    p99[$mode,$n]=$(sed 's/.*p99_ms=\([0-9.]*\).*/\1/' <<<"$r")
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
verdict() { awk -v x="$1" -v t="$2" -v dir="$3" 'BEGIN { ok = (dir == "ge" ? x >= t : x <= t); print (ok ? "met" : "not met") }'; }
{
  echo "### Serving: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $chars characters per session"
  echo
  echo "| sessions | batched chars/s | p50 ms/char | p99 ms/char | one-by-one chars/s | p50 | p99 | batched / one-by-one |"
  echo "|---|---|---|---|---|---|---|---|"
  for n in 1 8 64; do
    echo "| $n | ${cps[batched,$n]} | ${p50[batched,$n]} | ${p99[batched,$n]} | ${cps[single,$n]} | ${p50[single,$n]} | ${p99[single,$n]} | $(ratio "${cps[batched,$n]}" "${cps[single,$n]}") |"
  done
  echo
  r1=$(ratio "${cps[batched,64]}" "${cps[batched,1]}")
  r2=$(ratio "${cps[batched,64]}" "${cps[single,64]}")
  echo "- 64 batched sessions vs one session: ${r1}x (target >= 3: $(verdict "$r1" 3 ge))"
  echo "- 64 batched vs the same 64 one by one: ${r2}x (target >= 2.5: $(verdict "$r2" 2.5 ge))"
  echo "- p99 time per character at 64 sessions: ${p99[batched,64]} ms (target <= 5: $(verdict "${p99[batched,64]}" 5 le))"
} | tee "$out"
