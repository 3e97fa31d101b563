# `make run` and `make test` create .venv and install what they need on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint bench bench-streams bench-compare bench-soak bench-listing fuzz clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit("Python 3.11 or newer is required, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.run-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.test-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@ $(VENV)/.run-installed

run: $(VENV)/.run-installed
	$(BIN)/a2a-gateway dev

lint: $(VENV)/.test-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

$(VENV)/.bench-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test,bench]"
	touch $@ $(VENV)/.test-installed $(VENV)/.run-installed

bench: $(VENV)/.bench-installed
	$(BIN)/python -m bench.latency
	$(BIN)/python -m bench.streaming
	$(BIN)/python -m bench.compare
	$(BIN)/python -m bench.soak

bench-compare: $(VENV)/.bench-installed
	$(BIN)/python -m bench.compare

bench-soak: $(VENV)/.bench-installed
	$(BIN)/python -m bench.soak

bench-listing: $(VENV)/.bench-installed
	$(BIN)/python -m bench.listing

fuzz: $(VENV)/.test-installed
	A2A_FUZZ_EXAMPLES=10000 $(BIN)/pytest tests/integration/test_fuzz.py -p no:cacheprovider

clean:
	rm -rf $(VENV) .a2a .mypy_cache .ruff_cache .pytest_cache

bench-streams: $(VENV)/.test-installed
	$(BIN)/python -m bench.streaming
