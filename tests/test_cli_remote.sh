#!/usr/bin/env bash
# Black-box tests of the `hyper` commands that talk to hyperd: a real daemon on a free
# loopback port (--port 0), tiny models made with `hyper train`, the real binaries.
# Prints one line per check and ends with "N passed, N failed".
set -u
HYPER=${HYPER:-build/hyper}
HYPERD=${HYPERD:-build/hyperd}
unset $(compgen -e | grep '^HYPERD_')   # neither the client nor the daemons take the caller's settings
tmp=$(mktemp -d /tmp/hyper-remote-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT
pass=0 fail=0

ok()  { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; [ -n "${2:-}" ] && echo "     $2"; }
expect() { if [ "$2" = "$3" ]; then ok "$1"; else bad "$1" "want '$2', got '$3'"; fi; }
# expect_fail NAME RC PATTERN CMD...: the command must exit with RC and say PATTERN on stderr
expect_fail() {
  local name=$1 want=$2 pat=$3; shift 3
  local out rc
  out=$("$@" 2>&1 >/dev/null); rc=$?
  if [ $rc -eq "$want" ] && grep -q -- "$pat" <<<"$out"; then ok "$name"; else bad "$name" "rc=$rc: $out"; fi
}

# start_daemon NAME ARGS...: starts hyperd on a free port; sets $url (empty when it did not start)
start_daemon() {
  local name=$1; shift
  mkdir -p "$tmp/$name"
  "$HYPERD" --host 127.0.0.1 --port 0 --models "$tmp/models" --data-dir "$tmp/$name" --log-level warn \
    --threads 1 --train-threads 1 "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
  pids+=($!)
  url=
  for _ in $(seq 100); do
    url=$(sed -n 's/^hyperd listening on \(http:[^ ]*\).*/\1/p' "$tmp/$name.out")
    [ -n "$url" ] && return 0
    kill -0 "${pids[-1]}" 2>/dev/null || break
    sleep 0.1
  done
  echo "hyperd did not start:"; cat "$tmp/$name.err"
  return 1
}

# --- two tiny models and a daemon serving them -----------------------------------------------
mkdir -p "$tmp/models"
for i in $(seq 60); do echo "It was the best of times, it was the worst of times."; done > "$tmp/text.txt"
"$HYPER" train --data "$tmp/text.txt" --out "$tmp/models/tiny.safetensors" --cell lnhyperlstm --units 32 \
  --hyper-units 16 --embed 4 --batch 4 --seq 20 --lr 0.01 --steps 20 --threads 1 >/dev/null &&
"$HYPER" train --kind handwriting --data synthetic:40 --out "$tmp/models/handwriting.safetensors" --cell hyperlstm \
  --units 16 --hyper-units 8 --embed 2 --mixtures 3 --batch 4 --seq 50 --steps 3 --threads 1 >/dev/null ||
  { echo "could not train the test models"; exit 1; }
rm -f "$tmp"/models/*.train
start_daemon main || exit 1
export HYPERD_URL=$url

# --- models, generate, sessions ----------------------------------------------------------------
out=$("$HYPER" models)
grep -q "^tiny .*charlm .*lnhyperlstm.*(default)" <<<"$out" && grep -q "^handwriting .*handwriting" <<<"$out" &&
  ok "models lists both models, the default marked" || bad "models" "$out"
"$HYPER" models --json | grep -q '"default": "tiny"' && ok "models --json is the server's reply" || bad "models --json"

a=$("$HYPER" generate --prompt "It was" -n 80 --seed 7 2>"$tmp/gen.err"); rc=$?
sid=$(sed -n 's/^session: //p' "$tmp/gen.err")
[ $rc -eq 0 ] && [ "$(printf %s "$a" | wc -m)" -ge 70 ] && ok "generate streams the characters asked for" ||
  bad "generate" "rc=$rc ${#a}: $a $(cat "$tmp/gen.err")"
[ -n "$sid" ] && ok "generate prints the new session's id on stderr" || bad "generate session id" "$(cat "$tmp/gen.err")"
b=$("$HYPER" generate --prompt "It was" -n 80 --seed 7 2>/dev/null)
c=$("$HYPER" generate --prompt "It was" -n 80 --seed 8 2>/dev/null)
expect "generate: same seed, same text" "$a" "$b"
[ "$a" != "$c" ] && ok "generate: another seed, another text" || bad "generate seeds" "$a"
expect "generate through hyperd = hyper sample, same seed" "$a" \
  "$("$HYPER" sample --model "$tmp/models/tiny.safetensors" --prime "It was" -n 80 --seed 7)"
long=$("$HYPER" generate --prompt "It was" -n 300 --seed 5 2>/dev/null)
short=$("$HYPER" generate --prompt "It was" -n 300 --seed 5 --stop "," 2>/dev/null)
[[ "$long" == *,* ]] && expect "generate --stop ends the text before the stop string" "${long%%,*}" "$short" ||
  bad "generate --stop: no comma in 300 characters" "$long"
out=$("$HYPER" generate --session "$sid" -n 30 2>&1)
[ $? -eq 0 ] && [ "${#out}" -ge 25 ] && ok "generate --session continues a session" || bad "generate --session" "$out"

out=$(printf 'It was the best\nof times\n' | "$HYPER" repl -n 40 --seed 1 2>"$tmp/repl.err"); rc=$?
rsid=$(sed -n 's/^session: //p' "$tmp/repl.err")
if [ $rc -eq 0 ] && [ "$(wc -l <<<"$out")" -ge 2 ] && [ -n "$out" ]; then ok "repl answers each piped line"; else
  bad "repl" "rc=$rc: $out $(cat "$tmp/repl.err")"; fi
out=$("$HYPER" sessions)
seen=$(awk -v id="$rsid" '$1 == id {print $3}' <<<"$out")
[ -n "$rsid" ] && [ "${seen:-0}" -gt 24 ] && ok "sessions lists the repl's session and what it read" || bad "sessions" "$out"
grep -q "^$sid " <<<"$out" && ok "sessions lists generate's session" || bad "sessions generate" "$out"
"$HYPER" sessions delete "$sid" >/dev/null && ! "$HYPER" sessions | grep -q "^$sid " &&
  ok "sessions delete" || bad "sessions delete"

# --- server errors: the server's message, exit 1; usage errors exit 2 ----------------------------
expect_fail "unknown session: 404 and its message" 1 "404: no session nope" "$HYPER" generate --session nope -n 5
expect_fail "bad temperature: 400 naming the field" 1 "400: temperature" "$HYPER" generate --temperature -1 -n 5
expect_fail "unknown model" 1 "404: no model named 'none'" "$HYPER" generate --model none
expect_fail "unknown job" 1 "404: no job abc" "$HYPER" jobs get abc
expect_fail "a bad option is a usage error" 2 "unknown option" "$HYPER" generate --frobnicate
expect_fail "a malformed number is a usage error" 2 "not a valid number" "$HYPER" generate --temperature hot
expect_fail "an unknown subcommand" 2 "unknown subcommand" "$HYPER" jobs frobnicate
expect_fail "connection refused names the address" 1 "cannot connect to hyperd at http://127.0.0.1:1" \
  "$HYPER" models --url http://127.0.0.1:1
expect_fail "a URL that is not http" 2 "not an http" "$HYPER" models --url ftp://x

# --- handwriting -------------------------------------------------------------------------------
"$HYPER" handwrite --server "$url" -n 120 --seed 3 --out "$tmp/a.svg" 2>/dev/null
"$HYPER" handwrite --url "$url" -n 120 --seed 3 --bias 1 --out "$tmp/b.svg" 2>/dev/null
if grep -q "<svg" "$tmp/a.svg" && grep -q "<path" "$tmp/a.svg" && ! cmp -s "$tmp/a.svg" "$tmp/b.svg"; then
  ok "handwrite --server writes an SVG (--bias changes it)"; else bad "handwrite --server svg"; fi
err=$("$HYPER" handwrite --server "$url" -n 50 --out "$tmp/a.json" 2>&1)
grep -q '"points": 50' "$tmp/a.json" && grep -q "seed [0-9]" <<<"$err" &&
  ok "handwrite --server .json writes the strokes and names the seed" || bad "handwrite json" "$err"
expect_fail "handwrite --server: bad bias" 1 "400: bias" "$HYPER" handwrite --server "$url" --bias -3 --out "$tmp/x.svg"

# --- datasets and jobs ---------------------------------------------------------------------------
out=$("$HYPER" datasets upload small "$tmp/text.txt")
grep -q "^small: text, $(wc -c <"$tmp/text.txt") bytes" <<<"$out" && ok "datasets upload streams a text file" ||
  bad "datasets upload" "$out"
echo '[{"text": "hi", "strokes": [[[0, 0], [5, 3], [9, 1]], [[12, 0], [14, 6]]]}]' > "$tmp/strokes.json"
out=$("$HYPER" datasets upload pen "$tmp/strokes.json")
grep -q "^pen: strokes" <<<"$out" && ok "datasets upload: .json is strokes" || bad "datasets upload json" "$out"
out=$("$HYPER" datasets)
grep -q "^small .*text" <<<"$out" && grep -q "^fortunes .*built in" <<<"$out" && ok "datasets lists uploads and built-ins" ||
  bad "datasets list" "$out"
expect_fail "upload under a bad name" 1 "400: name" "$HYPER" datasets upload "bad/name" "$tmp/text.txt"
"$HYPER" datasets delete pen >/dev/null && ! "$HYPER" datasets | grep -q "^pen " && ok "datasets delete" ||
  bad "datasets delete"

out=$("$HYPER" jobs submit --dataset small --name poet --cell lstm --units 16 --batch 4 --seq 20 --steps 30 \
  --eval-every 10 --watch 2>&1); rc=$?
if [ $rc -eq 0 ] && grep -q "step 30/30" <<<"$out" && grep -q "succeeded: model poet" <<<"$out"; then
  ok "jobs submit --watch follows the job to success"; else bad "jobs submit --watch" "rc=$rc: $out"; fi
grep -q "val [0-9.]* bits/char .*ETA" <<<"$out" && ok "jobs watch shows loss, validation and ETA" || bad "watch line" "$out"
"$HYPER" models | grep -q "^poet .*lstm" && ok "the job's model is served at once" || bad "job model"
out=$(printf 'It was\n' | "$HYPER" repl --model poet -n 10 2>/dev/null) && ok "a session on the new model" || bad "repl poet"
"$HYPER" jobs | grep -q " succeeded .* poet " && ok "jobs list" || bad "jobs list" "$("$HYPER" jobs)"
echo '{"kind": "charlm", "dataset": "small", "model_name": "long", "model": {"cell": "lstm", "units": 32},
  "train": {"epochs": 1000, "batch": 4, "seq": 20}}' > "$tmp/spec.json"
job=$("$HYPER" jobs submit --spec "$tmp/spec.json" --steps 1000000)
[[ "$job" =~ ^[0-9a-f]+$ ]] && ok "jobs submit --spec prints the id" || bad "jobs submit --spec" "$job"
"$HYPER" jobs get "$job" --json | grep -q '"steps": 1000000' && ok "options override the spec file" || bad "spec override"
"$HYPER" jobs cancel "$job" | grep -q "$job: cancel" && ok "jobs cancel" || bad "jobs cancel"
expect_fail "watching a cancelled job exits 1" 1 "job $job was cancelled" "$HYPER" jobs watch "$job"
expect_fail "a spec the server refuses" 1 "400: model.units" \
  "$HYPER" jobs submit --dataset small --name x --units 0
expect_fail "submit needs a dataset and a name" 2 "required" "$HYPER" jobs submit --steps 5

# --- digit classifiers (static hypernetworks) on the built-in mnist --------------------------
if [ -f data/mnist/9.json ]; then
  "$HYPER" datasets | grep -q "^mnist .*images .*10000 .*built in" && ok "datasets lists the built-in mnist" ||
    bad "mnist dataset" "$("$HYPER" datasets)"
  out=$("$HYPER" jobs submit --kind classifier --dataset mnist --name digits --arch mlp --steps 40 \
    --eval-every 20 --watch 2>&1); rc=$?
  if [ $rc -eq 0 ] && grep -q "step 40/40" <<<"$out" && grep -q "succeeded: model digits" <<<"$out"; then
    ok "a classifier job over HTTP"; else bad "classifier job" "rc=$rc: $out"; fi
  grep -q "nats/image .*val 0\.[0-9]* test error (fraction) .*images/s" <<<"$out" &&
    ok "its progress is in a classifier's units" || bad "classifier units" "$out"
  "$HYPER" models | grep -q "^digits .*classifier .*mlp .*63610" && ok "the classifier is served at once" ||
    bad "classifier listed" "$("$HYPER" models)"
  expect_fail "a classifier spec the server refuses" 1 "400: model.tile_rows" \
    "$HYPER" jobs submit --kind classifier --dataset mnist --name x --arch hypermlp --tile-rows 3
fi

# --- an API key --------------------------------------------------------------------------------
start_daemon keyed --api-key s3cret || exit 1
expect_fail "without the key: 401" 1 "401: .*--api-key" "$HYPER" models --url "$url"
expect_fail "with a wrong key: 401" 1 "401" "$HYPER" models --url "$url" --api-key wrong
"$HYPER" models --url "$url" --api-key s3cret | grep -q "^tiny " && ok "--api-key" || bad "--api-key"
HYPERD_API_KEY=s3cret HYPERD_URL=$url "$HYPER" generate -n 5 >/dev/null 2>&1 && ok "HYPERD_API_KEY and HYPERD_URL" ||
  bad "HYPERD_API_KEY"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
