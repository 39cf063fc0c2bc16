# event-gateway — two commands on a fresh Debian machine: `make run`, `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench venv browser clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

## Start gatewayd on its embedded defaults (ingest tcp://127.0.0.1:5556, HTTP 127.0.0.1:8765).
run: venv
	$(VENV)/bin/gatewayd

## Browser tests need Debian's chromium (installed here if missing; needs root on Debian).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing chromium (Debian package) for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

## The whole behavioural suite (unit + real processes, sockets and Chromium).
test: venv browser
	$(PY) -m pytest -q

lint: venv
	$(VENV)/bin/ruff format --check gateway emitter_sdk tests
	$(VENV)/bin/ruff check gateway emitter_sdk tests
	$(VENV)/bin/mypy

bench: venv
	$(PY) -m bench.run

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
