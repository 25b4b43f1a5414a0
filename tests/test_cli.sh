#!/usr/bin/env bash
# Black-box tests of the `hyper` command: real files on disk, the real binary.
# Prints one line per check and ends with "N passed, N failed".
set -u
HYPER=${HYPER:-build/hyper}
tmp=$(mktemp -d /tmp/hyper-cli-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0

ok()  { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; [ -n "${2:-}" ] && echo "     $2"; }
# expect NAME WANT GOT
expect() { if [ "$2" = "$3" ]; then ok "$1"; else bad "$1" "want '$2', got '$3'"; fi; }
# expect_fail NAME PATTERN CMD...: the command must exit non-zero and say PATTERN on stderr
expect_fail() {
  local name=$1 pat=$2; shift 2
  local out rc
  out=$("$@" 2>&1 >/dev/null); rc=$?
  if [ $rc -ne 0 ] && grep -q -- "$pat" <<<"$out"; then ok "$name"; else bad "$name" "rc=$rc: $out"; fi
}

# --- parameter counts of the paper (last line is the integer) -----------------------------
count() { "$HYPER" params "$@" | tail -n 1; }
expect "params lstm 1000"          4254050  "$(count --cell lstm --units 1000 --vocab 50)"
expect "params lnlstm 1000"        4264050  "$(count --cell lnlstm --units 1000 --vocab 50)"
expect "params hyperlstm 1000"     4911874  "$(count --cell hyperlstm --units 1000 --hyper-units 128 --embed 4 --vocab 50)"
expect "params lnhyperlstm 1000"   4923154  "$(count --cell lnhyperlstm --units 1000 --hyper-units 128 --embed 4 --vocab 50)"
expect "params lstm 1250"          6567550  "$(count --cell lstm --units 1250 --vocab 50)"
expect "params hyperlstm enwik8"   18708213 "$(count --cell hyperlstm --units 1800 --hyper-units 256 --embed 64 --vocab 205)"
expect "params strokes lstm"       3363421  "$(count --cell lstm --units 900 --inputs 3 --outputs 121)"
expect_fail "params rejects a bad cell" "not one of" "$HYPER" params --cell gru
expect_fail "params rejects a bad number" "not a valid integer" "$HYPER" params --units 12x
expect_fail "params rejects zero units" "units" "$HYPER" params --units 0

# --- train, info, sample, eval on a small text ---------------------------------------------
for i in $(seq 60); do echo "It was the best of times, it was the worst of times."; done > "$tmp/text.txt"
model="$tmp/m.safetensors"
train() { "$HYPER" train --data "$tmp/text.txt" --out "$model" --cell lnhyperlstm --units 32 \
  --hyper-units 16 --embed 4 --batch 4 --seq 20 --lr 0.01 --eval-every 10 --threads 1 "$@"; }
out=$(train --steps 20 2>&1); rc=$?
if [ $rc -eq 0 ] && grep -q "step 20/20" <<<"$out" && [ -s "$model" ] && [ -s "$model.train" ]; then
  ok "train writes the model and its training state"; else bad "train" "$out"; fi
grep -q "val [0-9]" <<<"$out" && ok "train reports validation bpc" || bad "train reports validation bpc" "$out"
out=$(train --steps 30 --resume 2>&1)
if grep -q "from step 20" <<<"$out" && grep -q "step 30/30" <<<"$out"; then ok "train --resume continues"; else bad "train --resume" "$out"; fi
expect_fail "resume with another lr is refused" "lr" train --steps 40 --resume --lr 0.02

info=$("$HYPER" info "$model")
grep -q "cell: *lnhyperlstm" <<<"$info" && grep -q "units: *32" <<<"$info" && ok "info shows the config" || bad "info" "$info"
expect "info parameter count" "$(count --cell lnhyperlstm --units 32 --hyper-units 16 --embed 4 --vocab "$(grep vocabulary <<<"$info" | awk '{print $2}')")" \
  "$(grep parameters <<<"$info" | awk '{print $2}')"

a=$("$HYPER" sample --model "$model" --prime "It was" -n 80 --seed 7)
b=$("$HYPER" sample --model "$model" --prime "It was" -n 80 --seed 7)
c=$("$HYPER" sample --model "$model" --prime "It was" -n 80 --seed 8)
expect "sample: same seed, same text" "$a" "$b"
[ "${#a}" -ge 70 ] && ok "sample writes the characters asked for" || bad "sample length" "${#a}: $a"
[ "$a" != "$c" ] && ok "sample: another seed, another text" || bad "sample seeds" "$a"
g1=$("$HYPER" sample --model "$model" --prime "It was" -n 40 --temperature 0 --seed 1)
g2=$("$HYPER" sample --model "$model" --prime "It was" -n 40 --temperature 0 --seed 2)
expect "greedy sampling ignores the seed" "$g1" "$g2"
# --hyper-svg: the same text on stdout, and an SVG of it, one <tspan> per character, that parses
h=$("$HYPER" sample --model "$model" --prime "It was" -n 80 --seed 7 --hyper-svg "$tmp/hyper.svg" 2>/dev/null)
expect "sample --hyper-svg: the same text" "$a" "$h"
# (expat checks the same writer's documents in the unit and daemon tests)
if [ -s "$tmp/hyper.svg" ] && [ "$(grep -o '<tspan' "$tmp/hyper.svg" | wc -l)" -eq 80 ] &&
   [ "$(grep -o '</tspan>' "$tmp/hyper.svg" | wc -l)" -eq 80 ] && tail -n 1 "$tmp/hyper.svg" | grep -q '^</svg>$'; then
  ok "sample --hyper-svg writes an SVG, a <tspan> per character"
else bad "sample --hyper-svg" "$(head -c 400 "$tmp/hyper.svg" 2>&1)"; fi
"$HYPER" train --data "$tmp/text.txt" --out "$tmp/plain.safetensors" --cell lstm --units 8 --batch 2 --seq 10 \
  --steps 1 --threads 1 >/dev/null 2>&1
expect_fail "sample --hyper-svg refuses an lstm" "no hypernetwork" "$HYPER" sample --model "$tmp/plain.safetensors" -n 5 --hyper-svg "$tmp/x.svg"
expect_fail "prime outside the vocabulary is named" "U+00E9" "$HYPER" sample --model "$model" --prime "café" -n 5
"$HYPER" sample --model "$model" --prime "café" --skip-unknown -n 5 >/dev/null && ok "--skip-unknown samples anyway" || bad "--skip-unknown"
expect_fail "bad temperature" "temperature" "$HYPER" sample --model "$model" --temperature -1

ev=$("$HYPER" eval --model "$model" --data "$tmp/text.txt" | tail -n 1)
[[ "$ev" =~ ^bpc:\ [0-9]+\.[0-9]+$ ]] && ok "eval's last line is bpc" || bad "eval" "$ev"
printf 'naïve\n' > "$tmp/other.txt"
expect_fail "eval names unknown characters" "U+00EF" "$HYPER" eval --model "$model" --data "$tmp/other.txt"

# --- handwriting: train on synthetic and JSON strokes, eval, draw -----------------------------
hw="$tmp/hw.safetensors"
out=$("$HYPER" train --kind handwriting --data synthetic:40 --out "$hw" --cell hyperlstm --units 24 \
  --hyper-units 8 --embed 2 --mixtures 3 --batch 4 --seq 50 --steps 6 --eval-every 3 --threads 1 2>&1); rc=$?
if [ $rc -eq 0 ] && grep -q "step 6/6" <<<"$out" && grep -q "nats/line" <<<"$out" && [ -s "$hw" ]; then
  ok "train --kind handwriting on synthetic strokes"; else bad "train handwriting" "$out"; fi
grep -q "^kind *handwriting" <<<"$("$HYPER" info "$hw")" && ok "info shows a handwriting model" || bad "info handwriting"
ev=$("$HYPER" eval --model "$hw" --data synthetic:40 --held-out 0.1 | tail -n 1)
[[ "$ev" =~ ^log-loss:\ -?[0-9]+\.[0-9]+\ nats\ per\ line ]] && ok "eval reports log-loss per line" || bad "eval handwriting" "$ev"
"$HYPER" handwrite --model "$hw" --seed 3 -n 120 --out "$tmp/a.svg" 2>/dev/null
"$HYPER" handwrite --model "$hw" --seed 3 -n 120 --out "$tmp/b.svg" 2>/dev/null
"$HYPER" handwrite --model "$hw" --seed 4 -n 120 --out "$tmp/c.svg" 2>/dev/null
if grep -q "<svg" "$tmp/a.svg" && grep -q "<path" "$tmp/a.svg" && cmp -s "$tmp/a.svg" "$tmp/b.svg" && ! cmp -s "$tmp/a.svg" "$tmp/c.svg"; then
  ok "handwrite: SVG, the same for a seed, another for another seed"; else bad "handwrite svg"; fi
"$HYPER" handwrite --model "$hw" --seed 3 -n 50 --out "$tmp/a.json" 2>/dev/null
grep -q '"points": 50' "$tmp/a.json" && ok "handwrite --out .json writes the strokes" || bad "handwrite json" "$(head -c 200 "$tmp/a.json")"
echo '[{"text": "hi", "strokes": [[[0, 0], [5, 3], [9, 1]], [[12, 0], [14, 6]]]}]' > "$tmp/strokes.json"
out=$("$HYPER" train --kind handwriting --data "$tmp/strokes.json" --out "$tmp/j.safetensors" --cell lstm --units 8 \
  --mixtures 2 --batch 1 --seq 4 --steps 2 --val-fraction 0 --threads 1 2>&1) && ok "train on JSON strokes" || bad "train json strokes" "$out"
"$HYPER" handwrite --model "$hw" --prime "$tmp/strokes.json" --seed 3 -n 120 --out "$tmp/p.svg" 2>/dev/null
! cmp -s "$tmp/a.svg" "$tmp/p.svg" && ok "handwrite --prime continues another pen" || bad "handwrite prime"
echo '[{"strokes": [[[0, 0], "x"]]}]' > "$tmp/bad.json"
expect_fail "bad JSON strokes are named" "item 0: stroke 0: point 1" "$HYPER" train --kind handwriting --data "$tmp/bad.json" --out "$tmp/x"
printf '<WhiteboardCaptureSession><StrokeSet><Stroke><Point x="1"/></Stroke></StrokeSet></WhiteboardCaptureSession>' > "$tmp/bad.xml"
expect_fail "bad IAM XML is named" "bad.xml" "$HYPER" train --kind handwriting --data "$tmp/bad.xml" --out "$tmp/x"
expect_fail "handwrite refuses a text model" "not a handwriting model" "$HYPER" handwrite --model "$model"
expect_fail "handwrite bias out of range" "bias" "$HYPER" handwrite --model "$hw" --bias -2
expect_fail "unknown kind" "--kind" "$HYPER" train --kind poetry --data x --out y

# --- damaged files are refused with a reason ------------------------------------------------
head -c 1000 "$model" > "$tmp/cut.safetensors"
expect_fail "truncated model refused" "cut.safetensors" "$HYPER" info "$tmp/cut.safetensors"
printf 'not a model at all' > "$tmp/junk.safetensors"
expect_fail "junk file refused" "junk.safetensors" "$HYPER" sample --model "$tmp/junk.safetensors"
expect_fail "missing file refused" "No such file" "$HYPER" info "$tmp/none.safetensors"
expect_fail "missing training text" "No such file" "$HYPER" train --data "$tmp/none.txt" --out "$tmp/x"
expect_fail "unknown command" "unknown command" "$HYPER" frobnicate

# --- static hypernetworks: digit classifiers on MNIST (data/mnist, fetched by make) --------
expect "params hyperconv (paper)" 12910 "$(count --arch hyperconv)"
expect "params conv twin"         21210 "$(count --arch conv)"
"$HYPER" params --arch hyperconv | grep -q "12544 weights from 4244 parameters" &&
  ok "params: the generated kernel costs 4,244 instead of 12,544" || bad "params hyper kernel" "$("$HYPER" params --arch hyperconv)"
"$HYPER" params --arch conv | grep -q "hyperconv (its twin): 12910" && ok "params shows the twin" || bad "params twin"
expect_fail "params rejects a tile that does not divide" "tile_rows" "$HYPER" params --arch hypermlp --tile-rows 3
expect_fail "params rejects an unknown arch" "not one of" "$HYPER" params --arch resnet
if [ -f data/mnist/9.json ]; then
  clf="$tmp/digits.safetensors"
  ctrain() { "$HYPER" train --kind classifier --arch mlp --out "$clf" --batch 32 --eval-every 30 \
    --eval-images 500 --report-every 10 --threads 1 "$@"; }
  out=$(ctrain --steps 60 2>&1); rc=$?
  if [ $rc -eq 0 ] && grep -q "step 60/60" <<<"$out" && grep -q "% test error" <<<"$out" && [ -s "$clf" ]; then
    ok "train --kind classifier writes the model"; else bad "train classifier" "$out"; fi
  err=$(sed -n 's/.*step 60\/60.*val \([0-9.]*\) % test error.*/\1/p' <<<"$out")
  awk -v e="${err:-100}" 'BEGIN { exit !(e < 40) }' && ok "60 steps learn: test error $err% (chance 90%)" ||
    bad "classifier learns" "$out"
  out=$(ctrain --steps 80 --resume 2>&1)
  grep -q "from step 60" <<<"$out" && grep -q "step 80/80" <<<"$out" && ok "classifier --resume continues" ||
    bad "classifier resume" "$out"
  info=$("$HYPER" info "$clf")
  grep -q "arch: *mlp" <<<"$info" && grep -q "parameters: *63610" <<<"$info" && ok "info on a classifier" ||
    bad "classifier info" "$info"
  out=$("$HYPER" eval --model "$clf" --data data/mnist)
  grep -q "test images: 2004" <<<"$out" && grep -q "test error: [0-9.]*%" <<<"$out" && ok "eval gives the test error" ||
    bad "classifier eval" "$out"
  out=$("$HYPER" classify --model "$clf" tests/data/digit7.png)
  grep -Eq "digit7.png: [0-9] \([0-9.]+%\)" <<<"$out" && ok "classify a PNG" || bad "classify" "$out"
  expect_fail "classify refuses a file that is not a PNG" "not a PNG" "$HYPER" classify --model "$clf" "$tmp/text.txt"
  expect_fail "classify refuses a character model" "not a classifier" "$HYPER" classify --model "$model" tests/data/digit7.png
  expect_fail "classifier training refuses a missing data dir" "none/0.json" \
    "$HYPER" train --kind classifier --data "$tmp/none" --out "$tmp/y"
fi

# --- the bundled model ----------------------------------------------------------------------
if [ -f models/charlm.safetensors ]; then
  "$HYPER" info models/charlm.safetensors | grep -q "cell: *lnhyperlstm" && ok "bundled model loads" || bad "bundled model"
  n=$("$HYPER" params --cell lnhyperlstm $("$HYPER" info models/charlm.safetensors | awk '/^units/{print "--units",$2} /^hyper units/{print "--hyper-units",$3} /^embedding/{print "--embed",$2} /^vocabulary/{print "--vocab",$2}') | tail -n 1)
  [ "$n" -le 3000000 ] && ok "bundled model has at most 3M parameters ($n)" || bad "bundled model size" "$n"
fi

if [ -f models/handwriting.safetensors ]; then
  "$HYPER" handwrite --model models/handwriting.safetensors -n 300 --out "$tmp/bundled.svg" 2>/dev/null &&
    grep -q "<path" "$tmp/bundled.svg" && ok "bundled handwriting model draws" || bad "bundled handwriting model"
fi

if [ -f models/digits.safetensors ]; then
  out=$("$HYPER" classify --model models/digits.safetensors tests/data/digit7.png tests/data/digit3.png)
  grep -q "digit7.png: 7 " <<<"$out" && grep -q "digit3.png: 3 " <<<"$out" &&
    ok "bundled digit classifier reads a 7 and a 3" || bad "bundled digits model" "$out"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
