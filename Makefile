# Every target sets up what it needs on a fresh machine: a virtualenv for
# Python and `npm ci` for the Convex functions and the Node client.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Only what `atlasd serve` needs (no extras); the full install above covers it too.
RUN_STAMP := $(VENV)/.runtime
NODE_STAMP := convex/node_modules/.installed
CLIENT_STAMP := clients/node/node_modules/.installed
# The browser tests drive Debian's Chromium (Playwright cannot download its own here).
CHROMIUM := /usr/bin/chromium

.PHONY: run test lint generate typecheck pytest convex-test node-test bench screenshots chromium clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,bench,dashboard]'
	touch $@ $(RUN_STAMP)

$(RUN_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(NODE_STAMP): convex/package.json convex/package-lock.json
	cd convex && npm ci --no-audit --no-fund
	touch $@

$(CLIENT_STAMP): clients/node/package.json clients/node/package-lock.json
	cd clients/node && npm ci --no-audit --no-fund
	touch $@

# Run the daemon on its embedded default: fully offline, sync disabled.
# `make run ARGS='--log-level debug'` passes flags to `atlasd serve`.
# (`atlasd dashboard` in another terminal needs the dashboard extra.)
ARGS ?=
run: $(RUN_STAMP)
	$(BIN)/atlasd serve $(ARGS)

# pytest runs last so its summary closes the output.
test: lint typecheck convex-test node-test pytest

lint: $(STAMP)
	$(BIN)/ruff check atlasd tests bench scripts
	$(BIN)/ruff format --check atlasd tests bench scripts
	$(BIN)/python scripts/generate_sync.py --check

# The blocking client modules, generated from their async sources.
generate: $(STAMP)
	$(BIN)/python scripts/generate_sync.py

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) $(NODE_STAMP) chromium
	$(BIN)/pytest

# Installs Chromium from Debian's packages when it is missing (needs root and apt).
chromium:
	@test -x $(CHROMIUM) || { apt-get update -qq && apt-get install -y -qq chromium; }

# PNGs of the dashboard's main pages from the demo scenario, into docs/img/.
screenshots: $(STAMP) chromium
	$(BIN)/python -m tests.dashboard.screenshots docs/img

# Type-check the Convex functions, the double and the tests, then run vitest once.
convex-test: $(NODE_STAMP)
	cd convex && npm run --silent typecheck && npm test

# Build the Node client and its tests, then run them against real daemons
# (this checkout's, from the virtualenv).
node-test: $(STAMP) $(CLIENT_STAMP)
	cd clients/node && npm test

bench: $(STAMP) $(NODE_STAMP) $(CLIENT_STAMP) chromium
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) convex/node_modules clients/node/node_modules clients/node/dist clients/node/build .mypy_cache .ruff_cache .pytest_cache
