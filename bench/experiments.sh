#!/usr/bin/env bash
# experiments.sh — the paper's cell comparison at a size two cores can afford (issue 7).
#
#   bench/experiments.sh [--full | --smoke] [--out DIR]
#
# Character models: lstm, lnlstm, hyperlstm, lnhyperlstm on data/fortunes.txt (the
# trainer's fixed tail split, --val-fraction), parameter counts within 5% of each other,
# the same steps, batch, sequence length, learning rate, clip and dropout, several seeds.
# Handwriting models: lstm, hyperlstm, lnhyperlstm on synthetic Hershey lines, the same way.
# For each: validation curves (from `hyper train`'s progress lines) as an SVG, and a
# markdown table of the held-out figure (`hyper eval --held-out`) per seed, mean ± half
# the range, parameters, steps and wall time.
#
# --full  (`make experiments`): sized for about 40 minutes on 2 cores; writes DIR (default
#         docs/experiments): charlm.md, charlm.svg, handwriting.md, handwriting.svg, and
#         the raw curves and results (*.tsv).
# --smoke (`make experiments-smoke`, part of `make test`): tiny models, a few steps, the
#         same code path; writes DIR (default build/experiments-smoke).
# Both check what they wrote (every row has numbers; each SVG is well-formed with one
# polyline per run) and exit non-zero when a run or a check fails.
#
# Environment: HYPER (default build/hyper), CORPUS (default data/fortunes.txt), JOBS
# (trainings at once, default 2; each uses one BLAS thread), SEEDS (default "1 2"),
# CHAR_STEPS, HW_STEPS, HW_LINES override the size.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/args.sh" "$@"

HYPER=${HYPER:-build/hyper}
CORPUS=${CORPUS:-data/fortunes.txt}
JOBS=${JOBS:-2}
SEEDS=${SEEDS:-"1 2"}
VALFRAC=0.05

# What is shared by every run of a kind, and each cell's size.  The hyper cells keep
# H and Z fixed; the plain cells get more units so that the counts match.
if [ "$mode" = full ]; then
    out=${out:-docs/experiments}
    CHAR_STEPS=${CHAR_STEPS:-1000}; CHAR_EVAL_EVERY=100; CHAR_EVAL_CHARS=20000
    CHAR_COMMON="--layers 1 --batch 32 --seq 100 --lr 0.002 --clip 1.0 --keep 0.9"
    CHAR_CELLS="lstm:300 lnlstm:300 hyperlstm:256 lnhyperlstm:256"; CHAR_H=64; CHAR_Z=4
    HW_LINES=${HW_LINES:-3000}
    HW_STEPS=${HW_STEPS:-800}; HW_EVAL_EVERY=100; HW_EVAL_LINES=0
    HW_COMMON="--layers 1 --mixtures 20 --batch 32 --seq 100 --lr 0.001 --clip 1.0 --keep 0.9"
    HW_CELLS="lstm:300 hyperlstm:256 lnhyperlstm:256"; HW_H=64; HW_Z=4
else
    out=${out:-build/experiments-smoke}
    CHAR_STEPS=${CHAR_STEPS:-20}; CHAR_EVAL_EVERY=5; CHAR_EVAL_CHARS=2000
    CHAR_COMMON="--layers 1 --batch 8 --seq 20 --lr 0.002 --clip 1.0 --keep 0.9"
    CHAR_CELLS="lstm:46 lnlstm:46 hyperlstm:32 lnhyperlstm:32"; CHAR_H=16; CHAR_Z=4
    HW_LINES=${HW_LINES:-200}
    HW_STEPS=${HW_STEPS:-20}; HW_EVAL_EVERY=5; HW_EVAL_LINES=5
    HW_COMMON="--layers 1 --mixtures 3 --batch 8 --seq 20 --lr 0.001 --clip 1.0 --keep 0.9"
    HW_CELLS="lstm:48 hyperlstm:32 lnhyperlstm:32"; HW_H=16; HW_Z=4
fi
# the number of mixtures decides the handwriting output width: 1 + 6M
HW_M=$(echo "$HW_COMMON" | sed 's/.*--mixtures \([0-9]*\).*/\1/')

[ -x "$HYPER" ] || { echo "experiments.sh: no $HYPER (run make first)" >&2; exit 1; }
[ -f "$CORPUS" ] || { echo "experiments.sh: no $CORPUS (make $CORPUS)" >&2; exit 1; }
mkdir -p "$out"

work=$(mktemp -d "${TMPDIR:-/tmp}/hyper-experiments.XXXXXX")
trap 'rm -rf "$work"' EXIT
# a private copy: rebuilding build/hyper during the run changes nothing here
cp "$HYPER" "$work/hyper"
H="$work/hyper"
corpus=$(cd "$(dirname "$CORPUS")" && pwd)/$(basename "$CORPUS")

log() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
now() { date +%s.%N; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a - b }'; }

# the exact parameter count of one configuration (`hyper params`' last line)
params_of() { # kind cell units
    local shape
    if [ "$1" = charlm ]; then shape="--vocab $char_vocab"; else shape="--inputs 3 --outputs $((1 + 6 * HW_M))"; fi
    local hz=""
    case "$2" in *hyper*) if [ "$1" = charlm ]; then hz="--hyper-units $CHAR_H --embed $CHAR_Z"; else hz="--hyper-units $HW_H --embed $HW_Z"; fi ;; esac
    # shellcheck disable=SC2086
    "$H" params --cell "$2" --units "$3" $hz $shape | tail -1
}

# The vocabulary is what the trainer builds from the corpus; it prints its size in its
# first line, so take it from a 1-step run of a tiny model.
"$H" train --data "$corpus" --out "$work/probe.safetensors" --cell lstm --units 8 --batch 1 --seq 2 \
    --steps 1 --threads 1 --eval-every 1000 --checkpoint-every 1000 --val-fraction $VALFRAC > "$work/probe.log" 2>&1 \
    || { cat "$work/probe.log" >&2; exit 1; }
char_vocab=$(sed -n 's/.*vocabulary \([0-9]*\).*/\1/p' "$work/probe.log" | head -1)
[ -n "$char_vocab" ] || { echo "experiments.sh: no vocabulary size in the trainer's output" >&2; exit 1; }
rm -f "$work"/probe.*

# one training + held-out evaluation; writes $work/res/KIND-CELL-sSEED.{res,curve} and .log
run_one() { # kind cell units seed
    local kind=$1 cell=$2 units=$3 seed=$4
    local tag="$kind-$cell-s$seed" model="$work/$kind-$cell-s$seed.safetensors"
    local args t0 t1 rc=0 held
    if [ "$kind" = charlm ]; then
        args="--data $corpus $CHAR_COMMON --steps $CHAR_STEPS --eval-every $CHAR_EVAL_EVERY --eval-chars $CHAR_EVAL_CHARS"
        case "$cell" in *hyper*) args="$args --hyper-units $CHAR_H --embed $CHAR_Z" ;; esac
    else
        args="--kind handwriting --data synthetic:$HW_LINES $HW_COMMON --steps $HW_STEPS --eval-every $HW_EVAL_EVERY --eval-lines $HW_EVAL_LINES"
        case "$cell" in *hyper*) args="$args --hyper-units $HW_H --embed $HW_Z" ;; esac
    fi
    t0=$(now)
    # shellcheck disable=SC2086
    "$H" train $args --cell "$cell" --units "$units" --seed "$seed" --threads 1 --val-fraction $VALFRAC \
        --checkpoint-every 1000000 --out "$model" > "$work/res/$tag.log" 2>&1 || rc=$?
    if [ $rc = 0 ]; then
        local data=$corpus; [ "$kind" = charlm ] || data="synthetic:$HW_LINES"
        "$H" eval --model "$model" --data "$data" --held-out $VALFRAC --threads 1 > "$work/res/$tag.eval" 2>&1 || rc=$?
    fi
    t1=$(now)
    if [ $rc != 0 ]; then
        log "FAILED $tag (exit $rc):"; tail -5 "$work/res/$tag.log" "$work/res/$tag.eval" 2>/dev/null >&2 || true
        echo "failed" > "$work/res/$tag.failed"; return 0
    fi
    if [ "$kind" = charlm ]; then every=$CHAR_EVAL_EVERY; held=$(awk '$1 == "bpc:" {v = $2} END {print v}' "$work/res/$tag.eval")
    else every=$HW_EVAL_EVERY; held=$(awk '$1 == "log-loss:" {v = $2} END {print v}' "$work/res/$tag.eval"); fi
    # the validation curve: progress lines "step S/T ... val X ..." at every validation
    tr '\r' '\n' < "$work/res/$tag.log" | awk -v every="$every" -v cell="$cell" -v seed="$seed" '
        $1 == "step" { split($2, a, "/"); s = a[1] + 0; v = ""
                       for (i = 3; i < NF; i++) if ($i == "val") v = $(i + 1)
                       if (v != "" && v != "-" && s % every == 0 && !(s in done)) { done[s] = 1; printf "%s\t%s\t%d\t%s\n", cell, seed, s, v } }' \
        > "$work/res/$tag.curve"
    printf '%s\t%s\t%s\t%s\t%s\t%.1f\n' "$kind" "$cell" "$units" "$seed" "$held" "$(sub "$t1" "$t0")" > "$work/res/$tag.res"
    log "done $tag: held-out $held ($(sub "$t1" "$t0") s)"
}

mkdir -p "$work/res"
runs=()
# the longest runs first, so the two queues end together
for seed in $SEEDS; do for c in $CHAR_CELLS; do runs+=("charlm ${c%%:*} ${c##*:} $seed"); done; done
for seed in $SEEDS; do for c in $HW_CELLS; do runs+=("handwriting ${c%%:*} ${c##*:} $seed"); done; done

# sizes: every cell of a kind within 5% of the smallest
check_budget() { # kind cells
    local kind=$1; shift
    local lo=0 hi=0 p
    for c in "$@"; do
        p=$(params_of "$kind" "${c%%:*}" "${c##*:}")
        echo "$kind ${c%%:*} ${c##*:} $p" >> "$work/params"
        if [ "$lo" = 0 ] || [ "$p" -lt "$lo" ]; then lo=$p; fi
        if [ "$p" -gt "$hi" ]; then hi=$p; fi
    done
    if [ $(( (hi - lo) * 100 )) -gt $(( lo * 5 )) ]; then
        echo "experiments.sh: $kind parameter counts differ by more than 5% ($lo .. $hi)" >&2; exit 1
    fi
}
: > "$work/params"
# shellcheck disable=SC2086
check_budget charlm $CHAR_CELLS
# shellcheck disable=SC2086
check_budget handwriting $HW_CELLS

log "$mode run: ${#runs[@]} trainings, $JOBS at a time, into $out"
start=$(now)
for r in "${runs[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || true; done
    # shellcheck disable=SC2086
    run_one $r &
done
wait
total=$(sub "$(now)" "$start" | cut -d. -f1)
log "all trainings done in ${total} s"

failed=$(find "$work/res" -name "*.failed" | wc -l)

# ---- tables -------------------------------------------------------------------------------
# write_table KIND TITLE METRIC PAPER_COLUMN CELLS... > markdown
write_table() {
    local kind=$1 metric=$2 steps=$3 setup=$4 paper=$5 dec=$6; shift 6
    cat "$work/res/$kind"-*.res 2>/dev/null | sort -k2,2 -k4,4n > "$work/$kind.results" || true
    awk -F'\t' -v kind="$kind" -v metric="$metric" -v dec="$dec" -v steps="$steps" -v paper="$paper" -v cells="$*" \
        -v pfile="$work/params" -v setup="$setup" -v total="$total" '
    BEGIN {
        while ((getline line < pfile) > 0) { split(line, f, " "); if (f[1] == kind) { P[f[2]] = f[4]; U[f[2]] = f[3] } }
        np = split(paper, pp, ","); for (i = 1; i <= np; i++) { split(pp[i], kv, "="); PAPER[kv[1]] = kv[2] }
    }
    { n[$2]++; v[$2, n[$2]] = $5; sd[$2, n[$2]] = $4; t[$2] += $6 }
    END {
        nc = split(cells, C, " ")
        lo = 0; for (i = 1; i <= nc; i++) if (lo == 0 || P[C[i]] < lo) lo = P[C[i]]
        print setup
        print ""
        printf "| cell | units | parameters | vs smallest | seeds | held-out %s per seed | mean ± half-range | std | steps | wall time per run | paper |\n", metric
        print "|---|---|---|---|---|---|---|---|---|---|---|"
        for (i = 1; i <= nc; i++) {
            c = C[i]; k = n[c] + 0; per = ""; s = 0; mn = 1e300; mx = -1e300; seeds = ""
            for (j = 1; j <= k; j++) { x = v[c, j] + 0; per = per (j > 1 ? " / " : "") v[c, j]; seeds = seeds (j > 1 ? ", " : "") sd[c, j]
                                       s += x; if (x < mn) mn = x; if (x > mx) mx = x }
            if (k == 0) { printf "| %s | %s | %d | | | FAILED | | | %d | | %s |\n", c, U[c], P[c], steps, PAPER[c]; continue }
            m = s / k; q = 0; for (j = 1; j <= k; j++) q += (v[c, j] - m) ^ 2
            std = (k > 1) ? sqrt(q / (k - 1)) : 0
            mean[c] = m; half[c] = (mx - mn) / 2; lo_[c] = mn; hi_[c] = mx
            w = t[c] / k; wall = (w < 120) ? sprintf("%.1f s", w) : sprintf("%.1f min", w / 60)
            printf "| %s | %s | %d | %+.1f%% | %s | %s | %." dec "f ± %." dec "f | %." dec "f | %d | %s | %s |\n", \
                c, U[c], P[c], (P[c] - lo) * 100 / lo, seeds, per, m, half[c], std, steps, wall, PAPER[c]
        }
        # the ordering, best (lowest) first, and whether each gap is larger than the spreads
        m = 0; for (i = 1; i <= nc; i++) if (C[i] in mean) O[++m] = C[i]
        for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (mean[O[j]] < mean[O[i]]) { x = O[i]; O[i] = O[j]; O[j] = x }
        ord = ""; for (i = 1; i <= m; i++) {
            sep = ""
            if (i > 1) sep = (hi_[O[i - 1]] < lo_[O[i]]) ? " < " : " ≈ "
            ord = ord sep O[i] " " sprintf("%." dec "f", mean[O[i]])
        }
        np = 0; for (i = 1; i <= nc; i++) if (C[i] in PAPER) { Q[++np] = C[i] }
        for (i = 1; i <= np; i++) for (j = i + 1; j <= np; j++) if (PAPER[Q[j]] + 0 < PAPER[Q[i]] + 0) { x = Q[i]; Q[i] = Q[j]; Q[j] = x }
        pord = ""; for (i = 1; i <= np; i++) pord = pord (i > 1 ? " < " : "") Q[i] " " PAPER[Q[i]]
        same = (m == np); for (i = 1; i <= m && same; i++) if (O[i] != Q[i]) same = 0
        print ""
        print "Measured ordering of the means, best first (`<`: the ranges over seeds do not overlap; `≈`: they do): " ord "."
        print ""
        print "The ordering in the paper: " pord "."
        print ""
        print "Same ordering as the paper at this scale: **" (same ? "yes" : "no") "**."
    }' "$work/$kind.results"
}

char_cells=$(for c in $CHAR_CELLS; do printf '%s ' "${c%%:*}"; done)
hw_cells=$(for c in $HW_CELLS; do printf '%s ' "${c%%:*}"; done)
char_setup="Character models on \`$(basename "$corpus")\` (vocabulary $char_vocab; the last ${VALFRAC} held out by the trainer's fixed tail split). \
Every run: \`$CHAR_COMMON --steps $CHAR_STEPS --threads 1\`; hyper cells H = $CHAR_H, Z = $CHAR_Z; seeds $SEEDS. \
Validation curve: the first $CHAR_EVAL_CHARS held-out characters every $CHAR_EVAL_EVERY steps; held-out figure: \`hyper eval --held-out $VALFRAC\` (all held-out characters), bits per character, lower is better. \
Paper column: Penn Treebank test bpc (Table 2). $JOBS trainings at a time; all ${#runs[@]} trainings of this run (both kinds) took ${total} s."
hw_setup="Handwriting models on \`synthetic:$HW_LINES\` (Hershey-font lines; the last ${VALFRAC} of the lines held out). \
Every run: \`$HW_COMMON --steps $HW_STEPS --threads 1\`; hyper cells H = $HW_H, Z = $HW_Z; seeds $SEEDS. \
Validation curve: $( [ "$HW_EVAL_LINES" = 0 ] && echo "all held-out lines" || echo "the first $HW_EVAL_LINES held-out lines") every $HW_EVAL_EVERY steps; held-out figure: \`hyper eval --held-out $VALFRAC\`, log-loss in nats per line, lower is better. \
Paper column: IAM-OnDB validation log-loss (not comparable in value: other data)."

write_table charlm bpc "$CHAR_STEPS" "$char_setup" "lstm=1.312,lnlstm=1.267,hyperlstm=1.265,lnhyperlstm=1.250" 3 $char_cells > "$out/charlm.md"
write_table handwriting "log-loss" "$HW_STEPS" "$hw_setup" "lstm=-1055,hyperlstm=-1162,lnhyperlstm=-1067" 1 $hw_cells > "$out/handwriting.md"

# ---- curves ----------------------------------------------------------------------------------
cat "$work/res/charlm"-*.curve 2>/dev/null > "$out/charlm-curves.tsv" || true
cat "$work/res/handwriting"-*.curve 2>/dev/null > "$out/handwriting-curves.tsv" || true
cp "$work/charlm.results" "$out/charlm-results.tsv"
cp "$work/handwriting.results" "$out/handwriting-results.tsv"
awk -v title="Character models: validation bpc ($CHAR_STEPS steps, $(basename "$corpus"))" -v xlabel="step" \
    -v ylabel="validation bits per character" -f "$here/experiments_svg.awk" "$out/charlm-curves.tsv" > "$out/charlm.svg" || true
awk -v title="Handwriting models: validation log-loss ($HW_STEPS steps, synthetic:$HW_LINES)" -v xlabel="step" \
    -v ylabel="validation log-loss, nats per line" -f "$here/experiments_svg.awk" "$out/handwriting-curves.tsv" > "$out/handwriting.svg" || true

# ---- checks --------------------------------------------------------------------------------
bad=0
check() { # kind cells...
    local kind=$1; shift
    local md="$out/$kind.md" svg="$out/$kind.svg" want=0 c
    for c in "$@"; do
        want=$((want + $(echo "$SEEDS" | wc -w)))
        # a row with the cell, a number per seed and a mean
        if ! grep -Eq "^\| $c \| [0-9]+ \| [0-9]+ \| [-+][0-9.]+% \| [0-9, ]+ \| -?[0-9.]+( / -?[0-9.]+)* \| -?[0-9.]+ ± [0-9.]+ \|" "$md"; then
            echo "experiments.sh: $md: no complete row for $c" >&2; bad=1
        fi
    done
    if [ "$(head -c 4 "$svg")" != "<svg" ] || [ "$(tail -n 1 "$svg")" != "</svg>" ]; then
        echo "experiments.sh: $svg is not an SVG document" >&2; bad=1
    fi
    local lines; lines=$(grep -c '<polyline ' "$svg" || true)
    if [ "$lines" != "$want" ]; then echo "experiments.sh: $svg has $lines polylines, want $want" >&2; bad=1; fi
    if command -v xmllint > /dev/null && ! xmllint --noout "$svg"; then echo "experiments.sh: $svg is not well-formed XML" >&2; bad=1; fi
}
# shellcheck disable=SC2086
check charlm $char_cells
# shellcheck disable=SC2086
check handwriting $hw_cells
[ "$failed" = 0 ] || { echo "experiments.sh: $failed training(s) failed" >&2; bad=1; }

cat "$out/charlm.md"; echo; cat "$out/handwriting.md"
if [ $bad != 0 ]; then echo "experiments.sh: FAILED" >&2; exit 1; fi
log "$mode run OK (${total} s): $out/charlm.md, charlm.svg, handwriting.md, handwriting.svg"
