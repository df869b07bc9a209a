# werkbrug — the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
VENV  ?= .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)

.PHONY: help venv node-deps broker chromium declare demo run stop test test-unit test-integration chaos chaos-smoke cluster bench bench-docs lint format up down docs asyncapi clean

help:
	@echo "make demo   - run referral -> quote -> trajectory -> invoices -> report end to end on the embedded defaults"
	@echo "make run    - run the five services and keep them running (data in var/data, logs in var/log); Ctrl-C stops"
	@echo "make stop   - stop a detached run (werkbrug serve --detach)"
	@echo "make test   - the whole test suite against the real RabbitMQ and the embedded database"
	@echo "make chaos  - the chaos run: CHAOS_REFERRALS (default 1000) referrals under kills and restarts"
	@echo "make cluster - CLUSTER_REFERRALS (default 20) referrals on a three-node RabbitMQ cluster losing and restarting nodes"
	@echo "make bench  - benchmarks against their floors (about 15 minutes): var/bench/; make bench-docs also docs/benchmarks.md"
	@echo "make lint   - ruff"
	@echo "make up     - docker compose deployment (needs a Docker engine)"

$(STAMP): pyproject.toml
	@rm -f $(VENV)/.installed-*
	@if [ ! -x $(PY) ]; then py=$$(bash infra/python.sh) && $$py -m venv $(VENV); fi
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

venv: $(STAMP)

# The official AsyncAPI parser (@asyncapi/parser, pinned in infra/node/package-lock.json), which the tests run
# over every AsyncAPI document: installed into infra/node/node_modules (git-ignored) when missing or when the
# lock file changed; a no-op otherwise. No install scripts run (--ignore-scripts).
NODE_DIR   := infra/node
NODE_STAMP := $(NODE_DIR)/node_modules/.installed-$(shell sha1sum $(NODE_DIR)/package-lock.json | cut -c1-12)

$(NODE_STAMP): $(NODE_DIR)/package.json $(NODE_DIR)/package-lock.json
	@command -v npm >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  echo "node-deps: installing Node.js and npm from Debian's packages" && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs npm >/dev/null; } || \
	  { echo "node-deps: npm not found: install Node.js 18 or newer (with npm)" >&2; exit 1; }
	@rm -f $(NODE_DIR)/node_modules/.installed-*
	cd $(NODE_DIR) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	@touch $@

node-deps: $(NODE_STAMP)

broker: venv
	@bash infra/rabbitmq.sh
	@$(PY) -m infra.declare

declare: broker

# Headless Chromium prints the letters to the person to PDF and PNG (cli/render/letters/chromium.py, the tests).
chromium:
	@bash infra/chromium.sh >/dev/null

demo: venv broker
	$(PY) -m dev.demo

# The broker and the namespace first (as `make broker`), then `werkbrug serve` in the foreground.
run: venv broker
	$(PY) -m cli serve

stop: venv
	$(PY) -m cli stop

test: venv node-deps broker chromium
	$(PY) -m pytest

test-unit: venv node-deps chromium
	$(PY) -m pytest tests/unit

test-integration: venv node-deps broker chromium
	$(PY) -m pytest tests/integration

CHAOS_REFERRALS ?= 1000
chaos: venv broker
	CHAOS_REFERRALS=$(CHAOS_REFERRALS) $(PY) -m pytest -m chaos -s -p no:cacheprovider tests/integration/test_chaos.py

chaos-smoke: venv broker
	$(PY) -m pytest -m chaos_smoke -s -p no:cacheprovider tests/integration/test_chaos.py

# A private three-node cluster of its own (dev/rabbitmq_cluster.py): needs the rabbitmq-server package, not the
# shared broker, which it leaves alone.
CLUSTER_REFERRALS ?= 20
cluster: venv
	CLUSTER_REFERRALS=$(CLUSTER_REFERRALS) $(PY) -m pytest -m cluster -s -p no:cacheprovider tests/integration/test_cluster.py

bench: venv broker
	$(PY) -m bench

bench-docs: venv broker
	$(PY) -m bench --publish

lint: venv
	$(PY) -m ruff check .

format: venv
	$(PY) -m ruff format .

up:
	bash infra/tls/make-certs.sh
	docker compose up -d --build

down:
	docker compose down

docs: venv
	$(PY) -m infra.asyncapi
	$(PY) -m infra.catalogue

asyncapi: docs

# Keeps what an operator keeps: the data of `make run` (var/data), the staff and partner registers.
clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache $(NODE_DIR)/node_modules
	@if [ -d var ]; then find var -mindepth 1 -maxdepth 1 ! -name data ! -name staff ! -name partners -exec rm -rf {} +; fi
