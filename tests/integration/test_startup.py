"""A service whose database or broker is away at start-up says so in one line, retries with backoff, and
gives up clearly: no stack trace."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from infra.processes import ROOT

pytestmark = pytest.mark.integration


def start(service: str, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "WERKBRUG_STARTUP_ATTEMPTS": "3", "WERKBRUG_DB_TIMEOUT_MS": "300", **env}
    return subprocess.run([sys.executable, "-m", f"services.{service}"], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=90, check=False)


def test_a_database_that_is_away_at_start_up_is_retried_then_reported_in_one_line():
    result = start("offer", MONGODB_URL="mongodb://127.0.0.1:9/?directConnection=true")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert output.count("MongoDB for offer not reachable") == 2, "retried with backoff"
    assert "werkbrug: MongoDB for offer is not reachable (ServerSelectionTimeoutError); giving up" in output
    assert "Traceback" not in output


def test_a_broker_that_is_away_at_start_up_is_retried_then_reported_in_one_line(mongodb_url):
    result = start("intake", MONGODB_URL=mongodb_url, AMQP_URL="amqp://guest:guest@127.0.0.1:9/")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert output.count("RabbitMQ not reachable") == 2
    assert "werkbrug: RabbitMQ is not reachable (AMQPConnectionError); giving up" in output
    assert "Traceback" not in output


def test_a_service_without_a_database_url_says_how_to_start_it():
    env = {k: v for k, v in os.environ.items() if k != "MONGODB_URL"}
    result = subprocess.run([sys.executable, "-m", "services.intake"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode != 0 and "MONGODB_URL is not set" in result.stderr and "make demo" in result.stderr
    assert "Traceback" not in result.stderr
