"""The cluster run (issue 21): every service a separate process against a private three-node RabbitMQ cluster;
referrals through the whole process while the node leading the busiest queues is killed, later started again,
and then each node restarted in turn (dev/cluster.py).

    make cluster                                          # 20 referrals, about 3.5 minutes
    CLUSTER_REFERRALS=100 make cluster                     # more

The figures it prints are observed: the time until traffic flows again after each stop (each service answers a
command sent after it, and a referral submitted after it crosses from intake to offer), lost and duplicated
from the four databases and the parking queues after the run.
"""

from __future__ import annotations

import json
import os

import pytest

from dev import cluster

REFERRALS = int(os.environ.get("CLUSTER_REFERRALS", "20"))


@pytest.mark.cluster
@pytest.mark.timeout(1800)
async def test_no_referral_is_lost_or_doubled_when_a_node_dies_and_every_node_restarts_in_turn():
    figures = await cluster.run(referrals=REFERRALS, seed=int(os.environ.get("CLUSTER_SEED", "11")))
    print(cluster.report(figures))
    (cluster.VAR / "figures.json").write_text(json.dumps(figures.summary(), indent=2, default=str))
    assert figures.referrals == REFERRALS
    assert [s.what for s in figures.stops] == ["kill", "restart", "restart", "restart"]
    assert len({s.node for s in figures.stops[1:]}) == 3, "each node restarted in turn"
    assert figures.stops[0].leaders > 0, "the node killed led queues"
    assert all(s.flowing is not None for s in figures.stops), "traffic flowed again after every stop"
    assert figures.problems == []
    assert (figures.lost, figures.duplicated) == (0, 0)
    assert figures.invoiced == figures.approved > 0
    assert figures.queues > 0 and figures.members_online == f"{figures.queues} queues with 3 of 3"
