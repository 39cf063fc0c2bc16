# event-gateway — two commands on a fresh Debian machine: `make run`, `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench soak cluster-demo venv browser service-tools nats node node-example install clean

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

## Service tests need Debian's nginx (proxy end to end), systemd (systemd-analyze on the unit)
## and strace (gatewayd's system calls against the unit's filter).
service-tools:
	@command -v nginx >/dev/null 2>&1 && command -v systemd-analyze >/dev/null 2>&1 && command -v strace >/dev/null 2>&1 || { \
	  echo "installing nginx, systemd and strace (Debian packages) for the service tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx systemd strace >/dev/null; }

## Cluster tests run real NATS JetStream servers: Debian's nats-server (2.9).
nats:
	@command -v nats-server >/dev/null 2>&1 || { \
	  echo "installing nats-server (Debian package) for the cluster tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server >/dev/null; }

## The whole behavioural suite (unit + real processes, sockets and Chromium).
test: venv browser service-tools nats node-example
	$(PY) -m pytest -q

## ruff format/check over gateway, emitter_sdk, tests, bench; mypy --strict over gateway, emitter_sdk
## and bench (the packages in pyproject.toml's [tool.mypy]); the import contracts.
lint: venv
	$(VENV)/bin/ruff format --check gateway emitter_sdk tests bench
	$(VENV)/bin/ruff check gateway emitter_sdk tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

## Install as a systemd service: venv under /opt/event-gateway, unit, config, user (root; see docs/operations.md).
install:
	sh deploy/install.sh

## Debian's nodejs if missing: the benchmark load client (plain Node) and the producer example.
node:
	@command -v node >/dev/null 2>&1 || { \
	  echo "installing nodejs (Debian package) for the benchmark load client"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs >/dev/null; }

## The Node producer example (tests/e2e/test_node_producer.py): npm and its two pinned packages.
NODE_EXAMPLE := examples/node-producer
node-example: node $(NODE_EXAMPLE)/node_modules/.package-lock.json

$(NODE_EXAMPLE)/node_modules/.package-lock.json: $(NODE_EXAMPLE)/package-lock.json
	@command -v npm >/dev/null 2>&1 || { \
	  echo "installing npm (Debian package) for the Node producer example"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null; }
	cd $(NODE_EXAMPLE) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

## Throughput, latency, Core cost and memory against issue 8's targets (≤ 10 min, loopback only);
## PNG charts beside the JSON, drawn in Chromium.
bench: venv node browser nats
	$(PY) -m bench.run
	$(PY) -m bench.cluster

## Three NATS servers and two gateway nodes on loopback, `gatewayctl demo` into node A,
## both monitor pages live; Ctrl-C stops everything (docs/cluster.md).
cluster-demo: venv nats
	$(PY) deploy/cluster/demo.py

## A long run that makes slow leaks show (not part of make test; ~22 min, loopback only):
## 1,000 clients connecting/resuming/filtering/stalling/dropping, a steady emitter with bursts,
## SIGHUPs; RSS, fds, loop lag and the loss invariant per minute (docs/benchmarks.md).
soak: venv browser
	$(PY) -m bench.soak

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
