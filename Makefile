# hpcflow: the README's commands. Every target installs what is missing first (scripts/install.sh
# is idempotent: seconds when everything is in place).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
export OMPI_ALLOW_RUN_AS_ROOT := 1
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM := 1
export OMPI_MCA_rmaps_base_oversubscribe := 1
CARD ?= jobs/cards/phi4_flow_8x8.toml
SYSTEM ?= local
PYTEST_ARGS ?=

.PHONY: install test run bench clean

install:
	HPCFLOW_VENV=$(VENV) bash scripts/install.sh

test: install
	$(PY) -m pytest --doctest-modules hpcflow tests -ra --timeout=900 $(PYTEST_ARGS)

run: install
	$(VENV)/bin/hpcflow run $(CARD) --system $(SYSTEM)

bench: install
	$(PY) benchmarks/bench_hmc.py

clean:
	rm -rf runs .pytest_cache
