#!/usr/bin/env bash
# Writes the seed corpora of tests/fuzz/corpus/ (a few small files per target) from the
# repository's test data and hand-written examples.  The checkpoint seeds are written by
# the engine itself (tests/fuzz/seed_checkpoints.c): pass that program as $1, built with
#   make BUILD=build/seeds build/seeds/libhyper.a
#   cc -std=c11 -D_GNU_SOURCE -Iengine -o build/seeds/seed_checkpoints tests/fuzz/seed_checkpoints.c \
#      build/seeds/libhyper.a -ljansson -lexpat -lpng -lz -lnettle -lm -lpthread -ldl
set -euo pipefail
cd "$(dirname "$0")"
c=corpus
mkdir -p $c/{checkpoint,strokes_iam,strokes_json,jobspec,png,text,api}

# ---- strokes: IAM-OnDB lineStrokes XML and the JSON form
cat >$c/strokes_iam/line.xml <<'X'
<?xml version="1.0" encoding="ISO-8859-1"?>
<WhiteboardCaptureSession>
  <Transcription><TextLine text="A MOVE to stop"/></Transcription>
  <WhiteboardDescription><SensorLocation corner="top_left"/></WhiteboardDescription>
  <StrokeSet>
    <Stroke colour="black" start_time="769.05" end_time="769.64">
      <Point x="1073" y="1058" time="769.05"/><Point x="1072" y="1085" time="769.07"/>
      <Point x="1066" y="1117" time="769.08"/>
    </Stroke>
    <Stroke colour="black" start_time="770.00" end_time="770.20">
      <Point x="1100" y="1060" time="770.00"/><Point x="1130" y="1062.5" time="770.10"/>
    </Stroke>
  </StrokeSet>
</WhiteboardCaptureSession>
X
printf '<WhiteboardCaptureSession><StrokeSet><Stroke><Point x="1" y="2"/></Stroke></StrokeSet></WhiteboardCaptureSession>' \
    >$c/strokes_iam/tiny.xml
printf '<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY a "aaaa">]>\n<WhiteboardCaptureSession>&a;</WhiteboardCaptureSession>' \
    >$c/strokes_iam/entity.xml

printf '[{"text": "hi", "strokes": [[[0, 0], [1, 2], [3, 5]], [[10, 0], [11, -1.5]]]}]' >$c/strokes_json/two.json
printf '[{"strokes": [[[0.5, 1e3]]]}, {"text": null, "strokes": [[[1, 1], [2, 2]]]}, {"text": "\\u00e9t\\u00e9", "strokes": [[[0,0],[0,1]]]}]' \
    >$c/strokes_json/three.json
printf '[]' >$c/strokes_json/empty.json

# ---- job specs (POST /v1/jobs bodies)
printf '{"kind": "charlm", "dataset": "fortunes", "model_name": "m1", "model": {"cell": "lnhyperlstm", "layers": 1, "units": 64, "hyper_units": 16, "embed": 4}, "train": {"steps": 10, "batch": 4, "seq": 20, "lr": 0.002, "clip": 1.0, "keep": 0.9, "seed": 1, "eval_every": 5, "checkpoint_every": 5}, "val_fraction": 0.05}' \
    >$c/jobspec/charlm.json
printf '{"kind": "handwriting", "dataset": "synthetic", "mixtures": 5, "epochs": 0.5, "model": {"cell": "hyperlstm", "units": 32}}' \
    >$c/jobspec/handwriting.json
printf '{"kind": "classifier", "dataset": "mnist", "classifier": {"arch": "hypermlp", "hidden": 80, "embed": 8, "gen_hidden": 8, "tile_rows": 16, "tile_cols": 10, "wnorm": true}, "train": {"steps": 100}}' \
    >$c/jobspec/classifier.json
printf '{"kind": "charlm", "dataset": "fortunes", "init_from": "charlm", "train": {"steps": 5}}' >$c/jobspec/finetune.json

# ---- PNG: the repository's test digits, and a truncated one
cp ../data/digit3.png ../data/digit7.png $c/png/
head -c 200 ../data/digit7.png >$c/png/truncated.png

# ---- text: byte 0 is the upload's piece size, the rest the text
printf '\003The quick brown fox jumps over the lazy dog.\n' >$c/text/ascii.txt
printf '\001caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 na\xc3\xafve\n' >$c/text/utf8.txt
printf '\002bad \xc3\x28 and \xed\xa0\x80 and \xc0\xaf\n' >$c/text/invalid.txt

# ---- api: byte 0 the endpoint (fuzz_api.c), byte 1 the Content-Type, then the body
api() { printf "$1$2" >"$c/api/$3"; }
api '\000\000' '{"model": "charlm", "seed": 7}' create.json
api '\001\000' '{"text": "the fox "}' feed.json
api '\002\000' '{"prompt": "the ", "max_chars": 20, "temperature": 0.8, "seed": 3, "stop": ["."], "include_hyper": true}' generate.json
api '\002\000' '{"max_chars": 10, "stream": true}' generate-stream.json
api '\003\000' '{"strokes": [[[0, 0], [1, 2], [3, 4]]]}' hw-feed.json
api '\004\000' '{"max_points": 30, "bias": 1.0, "format": "svg"}' hw-generate.json
api '\005\000' '{}' fork.json
api '\006\000' '' reset.json
api '\007\000' '{"text": "hi", "bias": 2, "seed": 1}' hw-sample.json
api '\011\000' '{"kind": "charlm", "dataset": "fortunes", "train": {"steps": 5}}' job.json
api '\012\001' 'Some text to train on.\n' dataset-text.txt
api '\012\000' '[{"text": "a", "strokes": [[[0, 0], [1, 1]]]}]' dataset-strokes.json
api '\012\002' '<WhiteboardCaptureSession><StrokeSet><Stroke><Point x="1" y="2"/><Point x="3" y="4"/></Stroke></StrokeSet></WhiteboardCaptureSession>' dataset-iam.xml
{ printf '\010\003'; cat ../data/digit3.png; } >$c/api/classify.png

# ---- checkpoints, written by the engine
if [ $# -ge 1 ]; then
    "$1" $c/checkpoint
fi
ls $c/* | head -100 >/dev/null
