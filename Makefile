# scv-gateway — every target works on a fresh clone with nothing but Python 3.11+ and pip.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
RUN_STAMP := $(VENV)/.installed
ASSETS_STAMP := web/node_modules/.installed

LOCK := requirements.lock
DEV_LOCK := requirements-dev.lock
UV_COMPILE := $(BIN)/uv pip compile pyproject.toml --upgrade --universal --python-version 3.11 --generate-hashes --quiet

.PHONY: run test lint format bench load faults schema check seed install install-dev assets screenshot clean lock

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Exactly the locked versions, every file checked against its hash; then the project itself.
$(RUN_STAMP): pyproject.toml $(LOCK) | $(BIN)/python
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

$(STAMP): pyproject.toml $(DEV_LOCK) | $(BIN)/python
	$(BIN)/python -m pip install --quiet --require-hashes -r $(DEV_LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@ $(RUN_STAMP)

lock: | $(BIN)/python  ## re-resolve pyproject.toml's dependencies into the hashed lock files
	$(BIN)/python -m pip install --quiet 'uv>=0.9'
	$(UV_COMPILE) -o $(LOCK)
	$(UV_COMPILE) --extra dev -c $(LOCK) -o $(DEV_LOCK)

# GraphiQL's browser bundles, from npm (web/package-lock.json) when npm is there; without npm
# the GraphiQL page loads the same pinned files from the unpkg CDN instead.
$(ASSETS_STAMP): web/package.json web/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		echo "npm ci --prefix web (GraphiQL assets)"; \
		npm ci --prefix web --no-audit --no-fund --ignore-scripts --loglevel=error >/dev/null && touch $@; \
	else \
		echo "npm not found: GraphiQL will load its assets from the unpkg CDN (needs internet); install npm and run make assets to serve them offline"; \
	fi

assets: $(ASSETS_STAMP)  ## install GraphiQL's assets with npm (skipped, with a note, without npm)
install: $(RUN_STAMP) assets
install-dev: $(STAMP) assets

run: $(RUN_STAMP) assets  ## serve the gateway (embedded database unless MONGODB_URI is set)
	$(BIN)/scv serve

test: $(STAMP) assets  ## the whole test suite against a real server
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

faults: $(STAMP)  ## SIGKILL the database under 20 writers, then gateways mid-merge: lost writes, recovery, conflicts
	$(BIN)/python -m bench.faults

schema: $(RUN_STAMP)  ## regenerate schema.graphql
	$(BIN)/scv schema > schema.graphql

check: $(RUN_STAMP)  ## scan the database for invariant violations (exit 1 if any)
	$(BIN)/scv check

seed: $(RUN_STAMP)  ## the demo data set and the seed stories in org dev (shares a running make run)
	$(BIN)/scv seed

screenshot: $(STAMP) assets  ## regenerate docs/graphiql-journey.png (the browser test, system Chromium)
	SCV_REQUIRE_BROWSER=1 SCV_SCREENSHOT=$(CURDIR)/docs/graphiql-journey.png $(BIN)/python -m pytest -q tests/gateway/test_browser.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache web/node_modules
