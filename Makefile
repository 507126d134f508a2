# One-command set-up and test on a fresh Debian machine (root, Python 3.11).
# `make test` installs whatever is missing (system packages, the .venv with onm and its dev
# extras), then runs ruff, import-linter (the layers in pyproject.toml), mypy --strict and
# pytest. Installed pieces are remembered by stamp files, so a second run starts testing within
# seconds.
# `make fuzz` fuzzes every decoder (atheris, coverage-guided) for FUZZ_SECONDS each (default 30);
# `make fuzz TARGET=siit_6to4` fuzzes one (`.venv/bin/python tests/fuzz/run.py --list` names them).
# `make bpf` compiles the eBPF programs (bpf/*.c -> build/bpf/*.o, clang -target bpf), after
# regenerating bpf/include/generated/defs.h from onm.agent.datapath.ebpf.layout; install and test
# build them too.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMPS := .make-stamps

# Debian packages the test suite needs (checked with dpkg, installed with apt-get when missing).
APT_PACKAGES := iproute2 iputils-ping postgresql ethtool iperf3 curl systemd nftables libnftables1 \
	clang llvm libbpf-dev bpftool linux-libc-dev

.PHONY: all install bpf test lint typecheck unit fuzz bench bench-manager bench-datapath bench-pools bench-edge demo clean

# eBPF: one object per attach point; every header (generated one included) is a dependency.
BPF_SOURCES := $(wildcard bpf/*.c)
BPF_OBJECTS := $(patsubst bpf/%.c,build/bpf/%.o,$(BPF_SOURCES))
BPF_HEADERS := $(wildcard bpf/include/*.h) bpf/include/generated/defs.h
BPF_CFLAGS  := -O2 -g -target bpf -Wall -Werror -I/usr/include/$(shell uname -m)-linux-gnu
BPF_LAYOUT  := src/onm/agent/datapath/ebpf/layout.py src/onm/agent/datapath/ebpf/cheader.py \
	src/onm/packet/drop.py

all: test

$(STAMPS)/apt: Makefile
	@mkdir -p $(STAMPS)
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null \
	    | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "apt-get install $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
	@touch $@

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMPS)/venv: pyproject.toml | $(BIN)/python
	@mkdir -p $(STAMPS)
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

bpf/include/generated/defs.h: $(BPF_LAYOUT) | $(STAMPS)/venv
	PYTHONPATH=src $(BIN)/python -m onm.agent.datapath.ebpf.cheader $@

build/bpf/%.o: bpf/%.c $(BPF_HEADERS) | $(STAMPS)/apt
	@mkdir -p $(@D)
	clang $(BPF_CFLAGS) -c $< -o $@

bpf: $(BPF_OBJECTS)

install: $(STAMPS)/apt $(STAMPS)/venv bpf

lint: install
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy --strict src

unit: install
	$(BIN)/pytest tests/unit

test: lint typecheck
	$(BIN)/pytest

FUZZ_SECONDS ?= 30

# Crashers land in .fuzz/crashes/: add each to tests/fuzz/corpus/<target>/ (replayed by pytest).
fuzz: install
	$(BIN)/python tests/fuzz/run.py --seconds $(FUZZ_SECONDS) $(if $(TARGET),$(TARGET),--all)

bench: install
	$(BIN)/python tests/bench/bench_siit.py

bench-manager: install
	$(BIN)/python tests/bench/bench_resolve.py

bench-datapath: install
	$(BIN)/python tests/bench/bench_datapath.py

bench-pools: install
	$(BIN)/python tests/bench/bench_pools.py

bench-edge: install
	$(BIN)/python tests/bench/bench_edge.py

demo: install
	$(BIN)/onm demo $(if $(KEEP),--keep)

clean:
	rm -rf $(VENV) $(STAMPS) .mypy_cache .ruff_cache .pytest_cache .hypothesis .fuzz build
