# qnnflow — set-up and entry points. `make help` lists the targets.
#
# Variables (override on the command line, e.g. `make bitstream PRESET=tfc-w2a2 DATA=mnist DATA_DIR=...`):
PRESET    ?= digits-cnn-w2a2# model preset from the zoo (`qnnflow train --list`)
NAME      ?= digits# build folder name: everything goes to build/$(NAME)/
BOARD     ?= ulx3s-85f# target board: ulx3s-85f, orangecrab-25f, icebreaker, tangnano20k
CLOCK_MHZ ?= auto# accelerator clock in MHz, or auto: the highest the board's PLL makes that closes
PYTHON    ?= python3# interpreter used to create .venv
JOBS      ?= 2# pytest-xdist workers for `make test`
DATA      ?=# data set (digits, mnist, mnist-5k, fashion-mnist, cifar10); empty: the preset's
DATA_DIR  ?=# folder with the data set's files (MNIST / Fashion-MNIST IDX, CIFAR-10 batches)
SPACE     ?=# design space of `make explore` (TOML); empty: the digits space shipped with qnnflow
OUT       ?=# sweep folder of `make explore`; empty: build/explore/<space name>

VENV  := .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.qnnflow-installed
BUILD := build/$(NAME)
DATA_ARGS := $(if $(DATA),--dataset $(DATA)) $(if $(DATA_DIR),--data-dir $(DATA_DIR))

.PHONY: help setup browser test test-all bitstream sim bench explore lint clean doctor

help:
	@echo "make bitstream  train, compile, simulate, implement the default model ($(PRESET) -> $(BUILD))"
	@echo "make test       the test suite (fast tier + RTL benches + a small end-to-end run)"
	@echo "make test-all   also the slow tests (full MNIST test set, CNV)"
	@echo "make sim        train, compile (when needed) and simulate $(BUILD): 0 mismatches required"
	@echo "make bench      benchmarks, results as JSON under bench/results/"
	@echo "make explore    accuracy against resources over the digits space (SPACE=file.toml): build/explore/"
	@echo "make lint       ruff, verilator --lint-only -Wall, Yosys read/elaborate of every RTL module"
	@echo "make doctor     which tools were found, their versions, what is missing"
	@echo "make setup      create $(VENV) and install pinned versions (constraints.txt)"
	@echo "make clean      remove build outputs (keeps $(VENV))"

# .venv is (re)installed when pyproject.toml or constraints.txt change; otherwise this is a no-op.
setup: $(STAMP)
$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -c constraints.txt --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $@

doctor: setup
	$(VENV)/bin/qnnflow doctor

# The HTML report's test drives a real browser: Debian's chromium, installed here when missing
# (as root; otherwise the test is skipped and this says how to install it).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's chromium (the explore report's browser test)"; \
	    apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }; \
	  else echo "note: chromium is missing; the HTML report test is skipped (sudo apt-get install chromium)"; fi; }

test: setup browser
	$(PY) -m pytest -n $(JOBS) --dist loadgroup -m "not slow"

test-all: setup browser
	$(PY) -m pytest -n $(JOBS) --dist loadgroup

bitstream: setup
	$(VENV)/bin/qnnflow build --preset $(PRESET) --out $(BUILD) --board $(BOARD) --clock-mhz $(CLOCK_MHZ) $(DATA_ARGS)

# train and compile first when needed (each stage reuses what is up to date), then simulate
sim: setup
	$(VENV)/bin/qnnflow build --preset $(PRESET) --out $(BUILD) --board $(BOARD) --clock-mhz $(CLOCK_MHZ) $(DATA_ARGS) --until sim

bench: setup
	$(PY) -m qnnflow.bench

explore: setup
	$(VENV)/bin/qnnflow explore $(SPACE) $(if $(OUT),--out $(OUT))

lint: setup
	$(VENV)/bin/ruff check qnnflow models flows sim hw tests
	$(VENV)/bin/qnnflow lint-rtl

clean:
	rm -rf build sim_build .pytest_cache
