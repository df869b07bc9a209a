# werkbrug — the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
VENV  ?= .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)

.PHONY: help venv broker chromium declare demo test test-unit test-integration chaos chaos-smoke bench bench-docs lint format up down docs asyncapi clean

help:
	@echo "make demo   - run referral -> quote -> trajectory -> invoices -> report end to end on the embedded defaults"
	@echo "make test   - the whole test suite against the real RabbitMQ and the embedded database"
	@echo "make chaos  - the chaos run: CHAOS_REFERRALS (default 1000) referrals under kills and restarts"
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

broker: venv
	@bash infra/rabbitmq.sh
	@$(PY) -m infra.declare

declare: broker

# Headless Chromium prints the letters to the person to PDF and PNG (cli/render/letters/chromium.py, the tests).
chromium:
	@bash infra/chromium.sh >/dev/null

demo: venv broker
	$(PY) -m infra.demo

test: venv broker chromium
	$(PY) -m pytest

test-unit: venv chromium
	$(PY) -m pytest tests/unit

test-integration: venv broker chromium
	$(PY) -m pytest tests/integration

CHAOS_REFERRALS ?= 1000
chaos: venv broker
	CHAOS_REFERRALS=$(CHAOS_REFERRALS) $(PY) -m pytest -m chaos -s -p no:cacheprovider tests/integration/test_chaos.py

chaos-smoke: venv broker
	$(PY) -m pytest -m chaos_smoke -s -p no:cacheprovider tests/integration/test_chaos.py

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

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
