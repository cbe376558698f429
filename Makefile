# driftline: `make demo` and `make test` each create or refresh .venv first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint unit integration bench clean browser

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/driftline demo

test: $(STAMP) lint browser
	.ci/check-compose
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check detectors streams tests
	$(BIN)/mypy

unit: $(STAMP) browser
	$(BIN)/python -m pytest -q -m 'not integration'

integration: $(STAMP) browser
	$(BIN)/python -m pytest -q -m integration

# The dashboard's browser test drives Debian's headless Chromium: install it when missing.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; }

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
