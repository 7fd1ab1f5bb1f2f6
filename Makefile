# scv-gateway — every target works on a fresh clone with nothing but Python 3.11+ and pip.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
RUN_STAMP := $(VENV)/.installed

.PHONY: run test lint format bench load schema check install install-dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(RUN_STAMP)

install: $(RUN_STAMP)
install-dev: $(STAMP)

run: $(RUN_STAMP)  ## serve the gateway (embedded database unless MONGODB_URI is set)
	$(BIN)/scv serve

test: $(STAMP)  ## the whole test suite against a real server
	$(BIN)/python -m pytest

lint: $(STAMP)  ## ruff format --check, ruff check, mypy --strict
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)  ## seed a realistic data set and print the benchmark table
	$(BIN)/python -m bench

load: $(STAMP)  ## 60 s of mixed traffic from 50 clients on loopback, then the invariant checker
	$(BIN)/python -m bench.load

schema: $(RUN_STAMP)  ## regenerate schema.graphql
	$(BIN)/scv schema > schema.graphql

check: $(RUN_STAMP)  ## scan the database for invariant violations (exit 1 if any)
	$(BIN)/scv check

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
