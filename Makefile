# driftline: `make demo` and `make test` each create or refresh .venv first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint unit integration bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/driftline demo

test: $(STAMP) lint
	.ci/check-compose
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check detectors streams tests
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest -q -m 'not integration'

integration: $(STAMP)
	$(BIN)/python -m pytest -q -m integration

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
