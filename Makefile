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

.PHONY: install demo test test-fast lint ui clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24" setuptools wheel

$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	$(BIN)/python -m pip check
	touch $@

install: $(STAMP)

demo: install
	$(BIN)/python -m mlsecops_provider.include.demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy core

test: lint
	$(BIN)/python -m pytest

test-fast: lint
	$(BIN)/python -m pytest -m "not slow"

ui: install
	$(BIN)/python -m mlsecops_provider.include.environment $(BIN)/airflow standalone

clean:
	rm -rf $(MLSECOPS_HOME)
