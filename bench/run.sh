#!/bin/sh
# run.sh BENCH_BINARY: hyperd against eager PyTorch on one LN-HyperLSTM layer (bench/README.md).
#
# Runs build/bench_engine and bench/torch_hyperlstm.py, keeps their raw `key=value` lines in
# bench/out/{hyperd,torch}.txt, and prints one table per configuration (also written to
# bench/out/latest.md) with the issue's targets marked met or not met.
#
# Environment: BENCH_GEN_SECONDS (5) and BENCH_TRAIN_SECONDS (15) per measurement,
# BENCH_CONFIGS (512:96,1000:50, as N:V), TORCH_PYTHON (/usr/bin/python3, Debian's
# python3-torch).  PyTorch multiplies with the same OpenBLAS kernel family as hyperd
# (OPENBLAS_CORETYPE) unless OPENBLAS_CORETYPE is already set.
set -eu

if [ $# -ne 1 ]; then
    echo "usage: $0 BENCH_BINARY" >&2
    exit 2
fi
BIN=$1
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$HERE/out
GEN_S=${BENCH_GEN_SECONDS:-5}
TRAIN_S=${BENCH_TRAIN_SECONDS:-15}
CONFIGS=${BENCH_CONFIGS:-512:96,1000:50}
PY=${TORCH_PYTHON:-/usr/bin/python3}
mkdir -p "$OUT"

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
cores=$(nproc)
load=$(cut -d' ' -f1-3 /proc/loadavg)
rev=$(git -C "$HERE" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ "$rev" != unknown ] && [ -n "$(git -C "$HERE/.." status --porcelain -- engine 2>/dev/null)" ]; then
    rev="$rev (engine/ modified)"
fi
started=$(date -u '+%Y-%m-%d %H:%M UTC')
echo "CPU: $cpu ($cores cores); load average at start: $load"

echo "== hyperd ($BIN)"
# (a pipe into tee hides the exit status from sh, hence the status files)
{ "$BIN" --gen-seconds "$GEN_S" --train-seconds "$TRAIN_S" --configs "$CONFIGS" --threads 1,2
  echo $? > "$OUT/hyperd.rc"; } | tee "$OUT/hyperd.txt"
if [ "$(cat "$OUT/hyperd.rc")" != 0 ]; then
    echo "run.sh: $BIN failed" >&2
    exit 1
fi
backend=$(sed -n 's/^info impl=hyperd backend=//p' "$OUT/hyperd.txt")

: > "$OUT/torch.txt"
status=0
if "$PY" -c 'import torch' 2>/dev/null; then
    echo "== PyTorch ($PY)"
    coretype=${OPENBLAS_CORETYPE:-}
    case "$backend" in
        "" | "naive loops" | OpenBLAS) ;;
        *) [ -n "$coretype" ] || coretype=$backend ;;
    esac
    [ -z "$coretype" ] || export OPENBLAS_CORETYPE="$coretype"
    { "$PY" "$HERE/torch_hyperlstm.py" --gen-seconds "$GEN_S" --train-seconds "$TRAIN_S" \
          --configs "$CONFIGS" --threads 1,2
      echo $? > "$OUT/torch.rc"; } | tee "$OUT/torch.txt"
    if [ "$(cat "$OUT/torch.rc")" != 0 ]; then
        echo "run.sh: the PyTorch side failed; its columns will be incomplete" >&2
        status=1
    fi
else
    echo "== PyTorch: $PY cannot import torch (apt-get install python3-torch); skipped" >&2
fi

# Joins both sides' lines into the tables.  For each (N, V) in hyperd's order: generation
# chars/s and µs/char, training chars/s; hyperd at 1 and 2 threads, PyTorch at its best.
awk -v cpu="$cpu" -v cores="$cores" -v load="$load" -v rev="$rev" -v started="$started" \
    -v gen_s="$GEN_S" -v train_s="$TRAIN_S" '
function field(name,   i, kv) {
    for (i = 2; i <= NF; i++) {
        split($i, kv, "=")
        if (kv[1] == name) return substr($i, length(name) + 2)
    }
    return ""
}
function fmt_rate(v) { return v == "" ? "n/a" : sprintf("%.0f", v) }
function fmt_us(v) { return v == "" ? "n/a" : sprintf("%.1f", v) }
# the issue asks: generation >= 10x PyTorch at 512 units, >= 4x at 1000; training >= 1.3x
function target(kind, n) {
    if (kind == "train") return 1.3
    if (n == 512) return 10
    if (n == 1000) return 4
    return 0
}
function row(label, kind, n, v, us, impl,   k, t, h1, h2, hb, best, bt, tv, ratio, tgt, verdict, cells) {
    k = kind SUBSEP n SUBSEP v
    if (impl == "") impl = "hyperd"
    h1 = rate[impl, k, 1]; h2 = rate[impl, k, 2]
    best = ""; bt = ""
    for (t = 1; t <= 2; t++) {
        tv = rate["torch", k, t]
        if (tv != "" && (best == "" || tv + 0 > best + 0)) { best = tv; bt = t }
    }
    hb = h1 == "" ? h2 : (h2 == "" || h1 + 0 >= h2 + 0 ? h1 : h2)
    ratio = (best != "" && hb != "") ? hb / best : ""
    tgt = target(kind, n)
    if (us) {
        cells = sprintf("| %s | %s | %s | %s | ", label, fmt_us(h1 == "" ? "" : 1e6 / h1),
                        fmt_us(h2 == "" ? "" : 1e6 / h2),
                        best == "" ? "n/a" : fmt_us(1e6 / best) " (" bt ")")
    } else {
        cells = sprintf("| %s | %s | %s | %s | ", label, fmt_rate(h1), fmt_rate(h2),
                        best == "" ? "n/a" : fmt_rate(best) " (" bt ")")
    }
    if (ratio == "") verdict = tgt ? sprintf("≥ %gx: not measured", tgt) : "none"
    else if (!tgt) verdict = "none"
    else verdict = sprintf("≥ %gx: **%s**", tgt, ratio >= tgt ? "met" : "not met")
    if (us) verdict = "(same as chars/s)"
    printf "%s%s | %s |\n", cells, ratio == "" ? "n/a" : sprintf("%.2fx", ratio), verdict
}
$1 == "info" {
    if (field("impl") == "hyperd") hyperd_blas = field("backend")
    else { torch_ver = field("torch"); torch_blas = field("blas_core") }
    next
}
$1 == "gen" || $1 == "train" {
    impl = field("impl"); n = field("N"); v = field("V")
    k = $1 SUBSEP n SUBSEP v
    rate[impl, k, field("threads")] = field("chars_per_s")
    if (impl == "hyperd" && !((n SUBSEP v) in seen)) {
        seen[n SUBSEP v] = 1; order[++nconf] = n SUBSEP v
    }
}
END {
    printf "# hyperd vs PyTorch: one LN-HyperLSTM layer (H=128, Z=4)\n\n"
    printf "%s, engine at %s. CPU: %s, %d cores; load average at start %s.\n", started, rev, cpu, cores, load
    printf "OpenBLAS kernel: hyperd %s, PyTorch %s (torch %s).\n", hyperd_blas,
           torch_blas == "" ? "n/a" : torch_blas, torch_ver == "" ? "not installed" : torch_ver
    split(load, la, " ")
    if (la[1] + 0 >= 0.5)
        printf "**Warning:** the machine was busy (load %s on %d cores): the figures, 2-thread ones above all, understate both sides.\n", la[1], cores
    printf "Generation: batch 1, temperature 1, %ss per measurement. Training: B=32, T=100, forward + backward + clip + Adam, %ss per measurement.\n", gen_s, train_s
    for (c = 1; c <= nconf; c++) {
        split(order[c], nv, SUBSEP)
        printf "\n## N=%s, V=%s\n\n", nv[1], nv[2]
        printf "| metric | hyperd 1 thread | hyperd 2 threads | PyTorch best (threads) | hyperd best / PyTorch best | target |\n"
        printf "|---|---|---|---|---|---|\n"
        row("generation chars/s", "gen", nv[1], nv[2], 0)
        row("generation µs/char", "gen", nv[1], nv[2], 1)
        row("generation chars/s, half-precision weights", "gen", nv[1], nv[2], 0, "hyperd16")
        row("generation µs/char, half-precision weights", "gen", nv[1], nv[2], 1, "hyperd16")
        row("training chars/s", "train", nv[1], nv[2], 0)
    }
}' "$OUT/hyperd.txt" "$OUT/torch.txt" > "$OUT/latest.md"

echo
cat "$OUT/latest.md"
echo
echo "(saved to $OUT/latest.md; raw lines in $OUT/hyperd.txt and $OUT/torch.txt)"
rm -f "$OUT/hyperd.rc" "$OUT/torch.rc"
exit $status
