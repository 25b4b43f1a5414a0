#!/usr/bin/env bash
# Connections benchmark: IDLE keep-alive connections held open while STREAMS streaming
# generates of CHARS characters run at once against hyperd with the bundled models;
# /v1/health is asked every 50 ms throughout.  Prints the figures and the issue's targets
# (all complete, 0 errors, /v1/health within 100 ms, RSS under 1 GB); also writes
# bench/out/conns.md.
#   bench/conns.sh BUILD_DIR [MODEL_DIR] [IDLE] [STREAMS] [CHARS]
set -euo pipefail
build=${1:-build}
models=${2:-models}
idle=${3:-10000}
streams=${4:-1000}
chars=${5:-100}
out=bench/out/conns.md
mkdir -p bench/out
data=$(mktemp -d /tmp/hyperd-conns-XXXXXX)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$data"; }
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)"
get() { sed "s/.* $1=\([0-9.]*\).*/\1/" <<<"$r"; }
verdict() { awk -v x="$1" -v t="$2" -v dir="$3" 'BEGIN { ok = (dir == "ge" ? x >= t : x <= t); print (ok ? "met" : "not met") }'; }
rows=""; verdicts=""
# once with the default connection memory (128 KiB: URLs to 16 KiB, headers to 32 KiB) and
# once with 64 KiB (URLs to 8 KiB, headers to 16 KiB): libmicrohttpd 0.9.75 clears a
# connection's whole pool after each request, so a keep-alive connection costs all of it
for kib in 128 64; do
  fifo="$data/port.$kib"
  mkfifo "$fifo"
  "$build/hyperd" --port 0 --data-dir "$data/d$kib" --models "$models" --max-sessions $((streams + 100)) \
      --connection-memory $kib --log-level warn > "$fifo" 2>"$data/log.$kib" &
  pid=$!
  read -r line < "$fifo"
  url=$(sed 's/.*listening on //' <<<"$line")
  r=$("$build/bench_conns" "$url" "$pid" "$idle" "$streams" "$chars") || { echo "bench_conns failed: $r"; exit 1; }
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
  rows+="| $kib KiB | $(get idle) | $(get idle_open) | $streams | $(get done) | $(get errors) | $(get seconds) | $(get health_p99_ms) | $(get health_max_ms) | $(get rss_max_kb) kB | $(get threads_max) |"$'\n'
  verdicts+="- $kib KiB: all streams complete with 0 errors: $( [ "$(get done)" = "$streams" ] && [ "$(get errors)" = 0 ] && echo met || echo 'not met'); /v1/health within 100 ms throughout: $(verdict "$(get health_max_ms)" 100 le); daemon RSS under 1 GB: $(verdict "$(get rss_max_kb)" 1048576 le)"$'\n'
done
{
  echo "### Connections: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')"
  echo
  echo "| connection memory | idle keep-alive | still open after | streams of $chars chars | completed | errors | seconds | /v1/health p99 ms | max ms | daemon RSS max | threads max |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
  printf '%s' "$rows"
  echo
  printf '%s' "$verdicts"
} | tee "$out"
