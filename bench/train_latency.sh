#!/usr/bin/env bash
# Serving latency while a training job runs: the time per character of one streamed
# generation of the bundled model, with no job and during a charlm job (256 units, batch 32,
# seq 100), under --train-workers 1 and --train-threads 1, then 2.  Prints a table with the
# p50 / p90 / p99 / max gap per character and the job's training speed; also writes
# bench/out/train_latency.md (raw lines in bench/out/train_latency.txt).
#   bench/train_latency.sh BUILD_DIR [MODEL_DIR]
# Environment: LAT_CHARS (characters per request, 4000), LAT_REQUESTS (requests per
# condition, 2), LAT_STEPS (the job's steps, 2000: it is cancelled long before; fewer steps
# mean more frequent progress reports, one every steps/200), LAT_THREADS ("1 2").
set -euo pipefail
build=${1:-build}
models=${2:-models}
chars=${LAT_CHARS:-4000}
requests=${LAT_REQUESTS:-2}
steps=${LAT_STEPS:-2000}
threads=${LAT_THREADS:-1 2}
out=bench/out/train_latency.md
raw=bench/out/train_latency.txt
mkdir -p bench/out
for b in "$build/hyperd" "$build/bench_latency"; do
  [ -x "$b" ] || { echo "train_latency: $b missing (make $b)" >&2; exit 1; }
done
tmp=$(mktemp -d /tmp/hyperd-latency-XXXXXX)
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

job() {
  printf '{"kind":"charlm","dataset":"fortunes","model_name":"bench-job-%s-%s","model":{"cell":"lnhyperlstm","units":256,"hyper_units":64,"embed":4},"train":{"steps":%s,"batch":32,"seq":100,"eval_every":0,"checkpoint_every":0}}' \
    "$$" "$1" "$steps"
}
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }
# CPU time in clock ticks: the whole machine's (not idle), one process's, and this shell's
# waited-for children's (bench_latency); other processes' share = the first minus the others.
ticks_all() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }
ticks_pid() { awk '{ print $14 + $15 + $16 + $17 }' "/proc/$1/stat"; }
now_ms() { date +%s%3N; }

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
others=$(ps -eo pid=,pcpu=,comm= --sort=-pcpu | awk -v me=$$ '$2 >= 20 && $1 != me { printf "%s%s (%s%% CPU)", sep, $3, $2; sep = ", " }')
: > "$raw"
rows=()
for tt in $threads; do
  fifo="$tmp/port.$tt"
  mkfifo "$fifo"
  "$build/hyperd" --port 0 --host 127.0.0.1 --data-dir "$tmp/data.$tt" --models "$models" \
      --train-workers 1 --train-threads "$tt" --log-level warn > "$fifo" 2> "$tmp/log.$tt" &
  pid=$!
  if ! read -r line < "$fifo"; then
    echo "train_latency: hyperd did not start:" >&2; cat "$tmp/log.$tt" >&2; exit 1
  fi
  url=$(sed 's/.*listening on //' <<<"$line")
  for _ in $(seq 300); do
    curl -sf "$url/v1/ready" > /dev/null && break
    sleep 0.1
  done
  curl -sf "$url/v1/ready" > /dev/null || { echo "train_latency: $url never ready" >&2; exit 1; }
  "$build/bench_latency" "$url" --chars 500 --requests 1 --label warmup > /dev/null
  for cond in idle training; do
    args=("$url" --chars "$chars" --requests "$requests" --label "threads$tt-$cond")
    [ "$cond" = training ] && args+=(--job "$(job "$tt")")
    a0=$(ticks_all); d0=$(ticks_pid "$pid"); c0=$(ticks_pid $$); w0=$(now_ms)
    r=$("$build/bench_latency" "${args[@]}")
    a1=$(ticks_all); d1=$(ticks_pid "$pid"); c1=$(ticks_pid $$); w1=$(now_ms)
    other=$(awk -v a=$((a1 - a0 - (d1 - d0) - (c1 - c0))) -v w=$((w1 - w0)) -v hz="$(getconf CLK_TCK)" \
            'BEGIN { x = 100 * a / hz / (w / 1000); printf "%.0f", (x < 0 ? 0 : x) }')
    r="$r other_cpu_pct=$other"
    echo "train_threads=$tt $r" | tee -a "$raw" >&2
    if [ "$cond" = idle ]; then what="none"; else what="charlm 256 units, B 32, T 100"; fi
    rows+=("| $tt | $what | $(field chars "$r") | $(field chars_per_event "$r") | $(field p50_us "$r") | $(field p90_us "$r") | $(field p99_us "$r") | $(field max_us "$r") | $(field gen_chars_per_s "$r") | $(field job_chars_per_s "$r") | $(field job_alone_chars_per_s "$r") | $other% |")
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
done

{
  echo "### Serving latency during training: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')"
  echo
  echo "One session streams $requests × $chars characters of the bundled model (--threads 1, batch 1)."
  echo "The gap between two SSE events is shared among the characters of the later one; the"
  echo "first event of each request (time to first character) is left out. Job chars/s: the"
  echo "job's own progress reports over the generation (alone: its last report before it)."
  echo "Other CPU: what other processes used during each run, in % of one core (of $(( $(nproc) * 100 ))%)."
  echo "Load average before: $load_before; other busy processes then: ${others:-none}."
  echo
  echo "| --train-threads | training job | chars | chars/event | p50 µs/char | p90 | p99 | max | served chars/s | job chars/s | job alone chars/s | other CPU |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
} | tee "$out"
