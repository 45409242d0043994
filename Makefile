# The README's two commands: `make demo` and `make test`. Both start from a fresh
# clone: they install system packages (apt-get), create .venv and install
# everything in it (torch 2.13.0 CPU, then moshi --no-deps; see
# shared/design/ENVIRONMENT.md).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.stamp-runtime
TEST_STAMP := $(VENV)/.stamp-test
APT_STAMP := $(VENV)/.stamp-apt
APT_TEST_STAMP := $(VENV)/.stamp-apt-test
# libopus 1.5.2 with deep PLC, DRED, NoLACE and lossgen, built from Debian trixie's source (.ci/build-opus15)
OPUS15 := $(VENV)/opus-1.5.2
OPUS15_STAMP := $(OPUS15)/.stamp-make
WEIGHTS ?= hub

.PHONY: demo test setup setup-test apt apt-test opus15 bench fuzz clean

apt: $(APT_STAMP)
$(APT_STAMP): requirements/apt-runtime.txt
	@mkdir -p $(VENV)
	bash .ci/apt-install requirements/apt-runtime.txt
	@touch $@

apt-test: $(APT_TEST_STAMP)
$(APT_TEST_STAMP): requirements/apt-test.txt $(APT_STAMP)
	bash .ci/apt-install requirements/apt-test.txt
	@touch $@

opus15: $(OPUS15_STAMP)
$(OPUS15_STAMP): .ci/build-opus15 .ci/lossgen_shim.c $(APT_STAMP)
	bash .ci/build-opus15 $(OPUS15)
	@touch $@

setup: $(STAMP) $(OPUS15_STAMP)
$(STAMP): requirements/runtime.txt pyproject.toml $(APT_STAMP)
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q --no-deps moshi==0.2.13
	$(BIN)/pip install -q -r requirements/runtime.txt
	$(BIN)/pip install -q --no-deps -e .
	@touch $@

setup-test: $(TEST_STAMP) $(OPUS15_STAMP)
$(TEST_STAMP): $(STAMP) requirements/test.txt $(APT_TEST_STAMP)
	$(BIN)/pip install -q -r requirements/test.txt
	@touch $@

demo: setup
	bash examples/demo.sh $(WEIGHTS)

test: setup-test
	$(BIN)/lint-imports
	$(BIN)/python -m mypy largesc_codec rtp sip_agent
	$(BIN)/python -m pytest -q -ra

# Short runs of every benchmark (figures printed; docs/performance.md has full runs).
bench: setup
	$(BIN)/python bench/mimi_stream.py --frames 40 --runs 2
	$(BIN)/largesc make-test-weights out/bench-weights >/dev/null
	$(BIN)/python bench/plc_step.py --frames 100 --runs 2
	$(BIN)/largesc bench latency --weights out/bench-weights --mimi full --frames 60
	$(BIN)/python bench/many_calls.py --streams 1,2,4,8 --ticks 20 --runs 1 --mimi small
	$(BIN)/python bench/long_call.py --frames 4000 --every 1000 --weights out/bench-weights

# Every wire parser against 10^6 mutated inputs each; counts per outcome (exit 1 on a crash or a slow input).
fuzz: setup-test
	$(BIN)/python bench/fuzz.py --inputs 1000000 --jobs 2

clean:
	rm -rf $(VENV) build *.egg-info
