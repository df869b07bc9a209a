"""The chaos run (issue 7): every service a separate process against a RabbitMQ node and database servers
of the run's own; N referrals through the whole process while each service is SIGKILLed and restarted in
turn, the broker's application is stopped and started, and each database server is killed and restarted.

    make chaos                                   # 1000 referrals (CHAOS_REFERRALS=… to change)
    .venv/bin/python -m pytest -m chaos -s       # the same
    make chaos-smoke                             # 24 referrals, one kill of each kind

The figures it prints are observed: kills and restarts counted by the harness, redeliveries from the
services' `repeat delivery` log lines (the broker's redelivered flag), lost and duplicated from the four
databases and the parking queues after the run (dev/chaos.py).
"""

from __future__ import annotations

import json
import os

import pytest

from dev import chaos

REFERRALS = int(os.environ.get("CHAOS_REFERRALS", "1000"))


@pytest.mark.chaos
@pytest.mark.timeout(0)  # 1000 referrals take long on the embedded database (see the README)
async def test_every_referral_survives_killed_services_a_stopped_broker_and_killed_databases():
    figures = await chaos.run(referrals=REFERRALS, seed=int(os.environ.get("CHAOS_SEED", "7")),
                              concurrency=int(os.environ.get("CHAOS_CONCURRENCY", "24")))
    print(chaos.report(figures))
    (chaos.VAR / "figures.json").write_text(json.dumps(figures.summary(), indent=2))
    assert figures.referrals == REFERRALS
    assert {kind.split()[0] for kind in figures.kills} == {"service", "database", "broker"}
    assert sum(1 for k in figures.kills if k.startswith("service")) == 4, "each service killed in turn"
    assert sum(1 for k in figures.kills if k.startswith("database")) == 4, "each database server killed"
    assert figures.problems == []
    assert (figures.lost, figures.duplicated) == (0, 0)


@pytest.mark.chaos_smoke
@pytest.mark.timeout(900)  # about 2-3 minutes on a quiet machine: the broker restart alone takes 10-20 s
async def test_a_small_run_survives_one_kill_of_each_kind(tmp_path):
    figures = await chaos.run(referrals=24, seed=3, concurrency=8, base=tmp_path / "chaos", every=False)
    print(chaos.report(figures))
    assert set(figures.kills) == {"service offer", "broker app", "database billing"}
    assert figures.problems == []
    assert (figures.lost, figures.duplicated) == (0, 0)
    assert figures.invoiced == figures.approved > 0
