"""The cluster run (issue 21): the whole process on a three-node RabbitMQ cluster that loses a node mid-stream.

It starts, under var/cluster (nothing shared is touched): a private three-node RabbitMQ cluster
(dev/rabbitmq_cluster.py), one embedded database server per service, and intake, offer, trajectory and billing
as separate processes, each connected to another node first (AMQP_URL) and given all three
(WERKBRUG_AMQP_NODES). The namespace's definitions are applied once, for the cluster.

Then it sends N referrals (default 20) through the whole process, in portions released as it goes, while it
1. kills (SIGKILL) the node that leads the busiest queues (the most messages so far, counted from the
   harness's commands and the services' outboxes), 2. later starts it again, 3-5. restarts the three nodes
one by one, as an operator would (`rabbitmq-upgrade drain`, `rabbitmqctl stop`, start, `revive`, rebalance the
leaders, and the next node only when no quorum queue depends on it).
After each stop it measures how long until traffic flows again: until each of the four services answers a
command sent after the stop, and until a referral submitted after the stop has crossed from WerkSaam's intake
to Heliomare's offer (an event through a quorum queue), and whether the node's clients moved to another node.

Afterwards the chaos run's checks (dev/chaos.py `verify`): every referral reached the state its plan leads to,
no invoice twice, invoiced = approved, every event processed exactly once by each consumer, outboxes drained,
parking queues holding exactly the malformed messages sent on purpose; and every quorum queue has its three
members online again.

    python -m dev.cluster [--referrals 20] [--seed 11] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import logging
import random
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pymongo import MongoClient

from dev.chaos import (
    WAIT,
    Driver,
    Figures,
    Monkey,
    StepFailed,
    _fresh,
    _read,
    _topic_match,
    count_repeats,
    plan_cases,
    quiet,
    send_malformed,
    verify,
)
from dev.chaos import Cluster as ChaosCluster
from dev.chaos import report as chaos_report
from dev.rabbitmq_cluster import RabbitCluster
from dev.rabbitmq_node import RabbitNode
from dev.scenario import Case
from infra.dead_letters import ParkingQueues
from infra.processes import ROOT, DatabaseServer, ServiceProcess
from infra.services import DEFINITIONS
from shared.client import CommandClient
from shared.config import ADMIN_USER, Settings, dev_password
from shared.contracts.commands import Command, CommandResult, GetReferral
from shared.contracts.reasons import ReasonCode
from shared.messaging.topology import Topology, service_bindings
from shared.staff import load_registers

VAR = ROOT / "var" / "cluster"
FLOWING_WITHIN = 180.0  # a stop after which traffic does not flow again within this is a failure


@dataclass
class Stop:
    """One stop of a node and what it did to the traffic (seconds from the stop)."""

    what: str  # "kill" (SIGKILL) | "restart" (rabbitmqctl stop, later started again)
    node: str
    leaders: int = 0  # quorum queues it led when it was stopped
    clients_moved: list[str] = field(default_factory=list)  # services connected to it first
    stopping: float = 0.0  # from the command until the node served nobody (killed, or drained)
    exited: float = 0.0  # from the command until the node's process had exited (a restart: drained, then stopped)
    answered: dict[str, float] = field(default_factory=dict)  # service -> first answer to a query sent after
    interrupted: dict[str, float] = field(default_factory=dict)  # service -> longest stretch without an answer
    crossed: float | None = None  # a referral submitted once the node was gone registered at offer
    down: float = 0.0  # how long the node was away (until it was running in the cluster again)

    @property
    def flowing(self) -> float | None:
        """Traffic flows again: every service answers and an event crossed between the parties."""
        if self.crossed is None or len(self.answered) < len(DEFINITIONS):
            return None
        return max(self.crossed, *self.answered.values())

    def line(self) -> str:
        answered = ", ".join(f"{s} {t:.1f}" for s, t in self.answered.items())
        worst = max(self.interrupted.items(), key=lambda kv: kv[1], default=("-", 0.0))
        flowing = f"{self.flowing:.1f} s" if self.flowing is not None else "NOT within the limit"
        crossed = f"{self.crossed:.1f} s" if self.crossed is not None else "no"
        return (f"{self.what:7} {self.node.split('@')[0]} (led {self.leaders} queues; its clients: "
                f"{', '.join(self.clients_moved) or 'none'}): serving nobody {self.stopping:.1f} s after the command"
                + (f" (drained; stopped after {self.exited:.1f} s)" if self.what != "kill" else "")
                + f"; traffic flowing again {flowing} after that [first answers: {answered}; a referral submitted then "
                f"crossed intake->offer in {crossed}]; "
                + (f"longest wait for an answer {worst[1]:.1f} s ({worst[0]})" if worst[1] else "no query unanswered")
                + "; "
                f"node back {self.down:.0f} s after the command")


@dataclass
class ClusterFigures(Figures):
    stops: list[Stop] = field(default_factory=list)
    started_back: float = 0.0  # seconds for the killed node to rejoin
    queues: int = 0
    members_online: str = ""
    leaders_before: dict[str, int] = field(default_factory=dict)
    leaders_after: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {**super().summary(), "stops": [s.__dict__ | {"flowing": s.flowing} for s in self.stops],
                "started_back": round(self.started_back, 1), "queues": self.queues,
                "members_online": self.members_online, "leaders_before": self.leaders_before,
                "leaders_after": self.leaders_after}

    @property
    def ok(self) -> bool:
        return super().ok and all(s.flowing is not None for s in self.stops)

    def lines(self) -> list[str]:
        return [*super().lines(),
                f"quorum queues  {self.queues}, members online at the end: {self.members_online}",
                f"leaders        before {self.leaders_before}, after {self.leaders_after}",
                *(f"stop {i}         {s.line()}" for i, s in enumerate(self.stops, start=1))]


class Cluster(ChaosCluster):
    """The chaos run's services and databases, on a three-node broker cluster instead of one node."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.rabbit = RabbitCluster(base / "rabbitmq")
        nodes = self.rabbit.nodes
        self.settings = self._settings(nodes[0])
        self.dbs = {name: DatabaseServer(name, base / f"{name}.sqlite", base / f"mongo-{name}.log")
                    for name in DEFINITIONS}
        env = {"WERKBRUG_DB_TIMEOUT_MS": "2000", "WERKBRUG_STARTUP_ATTEMPTS": "30"}
        # Each service connects to another node first: a node that goes away takes some of them with it.
        self.first_node = {name: nodes[i % len(nodes)] for i, name in enumerate(DEFINITIONS)}
        self.services = {name: ServiceProcess(name, self._settings(self.first_node[name]), self.dbs[name].url,
                                              base, extra_env=env)
                         for name in DEFINITIONS}
        self.broker, self.healthy_within = self.rabbit, 180  # the chaos run's start and stop, on three nodes

    def _settings(self, node: RabbitNode) -> Settings:
        admin = f"amqp://{ADMIN_USER}:{dev_password(ADMIN_USER)}@127.0.0.1:{node.port}/"
        return Settings(AMQP_URL=admin, WERKBRUG_AMQP_NODES=self.rabbit.hosts, WERKBRUG_NAMESPACE="cluster",
                        WERKBRUG_RELAY_INTERVAL=0.05, WERKBRUG_SPAN_FILE=None)

    @property
    def node(self) -> RabbitNode:  # what the chaos run's helpers call its broker node
        return self.rabbit.nodes[0]


class TimedDriver(Driver):
    """The chaos run's driver, noting when each referral registered at Heliomare's offer service."""

    def __init__(self, settings: Settings, figures: Figures) -> None:
        super().__init__(settings, figures)
        self.registered: dict[str, float] = {}
        self.commands: collections.Counter = collections.Counter()  # per service: what went to its queue

    async def call(self, service: str, command: Command, within: float = WAIT) -> CommandResult:
        self.commands[service] += 1
        return await super().call(service, command, within)

    async def until_status(self, service: str, referral_id: str, *wanted: str) -> dict[str, Any]:
        view = await super().until_status(service, referral_id, *wanted)
        if service == "offer" and "registered" in wanted:
            self.registered.setdefault(referral_id, time.monotonic())
        return view


class Prober:
    """Asks one service a query about nobody again and again (a 3 s time-out each, a quarter second apart)
    and notes when each was sent and when it was answered or failed. Any answer but service_unavailable
    counts: the command crossed the broker to the service and the answer came back."""

    def __init__(self, settings: Settings, service: str) -> None:
        self.service = service
        self.client = CommandClient(settings, timeout=3, actors=load_registers(settings))
        self.attempts: list[tuple[float, float, bool]] = []  # sent, done, answered
        self.gone: float | None = None  # when the node was gone: the prober stops after an answer sent later

    def flowing_after(self, since: float) -> float | None:
        """Seconds from `since` until the first answer to a query sent at or after it."""
        return next((done - since for sent, done, ok in self.attempts if ok and sent >= since), None)

    def interrupted(self) -> float:
        """The longest stretch without an answer: from the first query that failed to the first answer after
        the last failure (0 when none failed)."""
        failed = [i for i, (_, _, ok) in enumerate(self.attempts) if not ok]
        if not failed:
            return 0.0
        after = next((done for sent, done, ok in self.attempts[failed[-1]:] if ok), self.attempts[-1][1])
        return after - self.attempts[failed[0]][0]

    async def run(self, deadline: float) -> None:
        try:
            while time.monotonic() < deadline:
                sent, ok = time.monotonic(), False
                with contextlib.suppress(Exception):
                    result = await self.client.send(self.service, GetReferral(referral_id=uuid.uuid4()))
                    ok = result.ok or not any(r.code == ReasonCode.SERVICE_UNAVAILABLE for r in result.reasons)
                self.attempts.append((sent, time.monotonic(), ok))
                if self.gone is not None and self.flowing_after(self.gone) is not None:
                    return
                await asyncio.sleep(0.25)
        finally:
            with contextlib.suppress(Exception):
                await self.client.close()


def traffic_per_queue(cluster: Cluster, commands: collections.Counter) -> dict[str, int]:
    """Messages through each queue so far: the harness's commands per service, and every event each service
    published (its outbox) on each consumer queue bound to its key."""
    s = cluster.settings
    topology = Topology(s.namespace, s.delivery_limit)
    traffic: collections.Counter = collections.Counter()
    for service, n in commands.items():
        traffic[f"{s.namespace}.{service}.commands"] += n
    bindings = {name: [k for k, _ in service_bindings(make(s))] for name, make in DEFINITIONS.items()}
    for name, db in cluster.dbs.items():
        client = MongoClient(db.url, tz_aware=True, uuidRepresentation="standard")
        try:
            keys = _read(lambda c=client, n=name: [r["routing_key"] for r in c[s.database_name(n)].outbox.find(
                {}, {"routing_key": 1})])
        finally:
            client.close()
        for key in keys or []:
            for reader, patterns in bindings.items():
                for pattern in patterns:
                    if _topic_match(pattern, key):
                        traffic[topology.consumer_queue(reader, pattern).name] += 1
    return dict(traffic)


def leader_counts(cluster: Cluster) -> dict[str, int]:
    counts = collections.Counter(cluster.rabbit.leaders(cluster.settings.amqp_vhost).values())
    return {node.node.split("@")[0]: counts.get(node.node, 0) for node in cluster.rabbit.nodes}


class Operator:
    """Stops and starts nodes at points spread over the run, and measures what each stop did."""

    def __init__(self, cluster: Cluster, figures: ClusterFigures, driver: TimedDriver, probes: list[Case],
                 release, drive, log=print) -> None:
        """`probes`: one referral to submit at each stop; `release`: lets the next portion of referrals in;
        `drive`: takes one referral through the process."""
        self.cluster, self.figures, self.driver, self.log = cluster, figures, driver, log
        self.probes, self.release, self.drive = probes, release, drive
        self.helper = Monkey(cluster, figures, 1, random.Random(0), log=log, every=False)  # its health wait
        self.probe_tasks: list[asyncio.Task] = []
        self.t0 = time.monotonic()
        self._down_since = 0.0

    async def run(self, completed, released) -> None:
        rabbit = self.cluster.rabbit
        vhost = self.cluster.settings.amqp_vhost
        await self._when_half_done(completed, released)
        busiest = await asyncio.to_thread(
            rabbit.busiest_leader, vhost, traffic_per_queue(self.cluster, self.driver.commands))
        self.figures.leaders_before = await asyncio.to_thread(leader_counts, self.cluster)
        await self.stop(busiest, "kill", then_start=False)
        await self._when_half_done(completed, released)
        started = time.monotonic()
        self.release()
        await asyncio.to_thread(rabbit.restart_node, busiest)
        await self._settle(busiest)
        self.figures.started_back = time.monotonic() - started
        self.figures.stops[-1].down = time.monotonic() - self._down_since
        self.log(f"  cluster: {busiest.node} back after {self.figures.started_back:.0f}s")
        for node in rabbit.nodes:  # the rolling restart
            await self._when_half_done(completed, released)
            await self.stop(node, "restart", then_start=True)

    async def _when_half_done(self, completed, released) -> None:
        while completed() * 2 < released():  # noqa: ASYNC110 (counts kept by the driver, polled)
            await asyncio.sleep(0.5)

    async def stop(self, node: RabbitNode, what: str, then_start: bool) -> None:
        rabbit, vhost = self.cluster.rabbit, self.cluster.settings.amqp_vhost
        leaders = await asyncio.to_thread(rabbit.leaders, vhost)
        stop = Stop(what=what, node=node.node, leaders=sum(1 for n in leaders.values() if n == node.node),
                    clients_moved=[s for s, n in self.cluster.first_node.items() if n is node])
        self.figures.stops.append(stop)
        probe = self.probes.pop(0)
        # Every service is asked all along, from a little before the stop until it answers a query sent
        # after the node is gone.
        probers = [Prober(self.cluster.settings, service) for service in DEFINITIONS]
        asking = asyncio.gather(*(p.run(time.monotonic() + FLOWING_WITHIN) for p in probers))
        await asyncio.sleep(2.0)
        self.release()  # more referrals enter as the node goes
        since = self._down_since = time.monotonic()
        # Killed: gone at once. Restarted: drained first (its clients are sent away, its leaders handed over),
        # then stopped; it serves nobody once the drain is done.
        await asyncio.to_thread(rabbit.kill_node if what == "kill" else rabbit.drain, node)
        gone = time.monotonic()
        stop.stopping = gone - since
        self.figures.kills[f"node {what}"] += 1
        self.figures.restarts += 1
        self.log(f"  cluster: {what} {node.node} ({stop.leaders} leaders) at {since - self.t0:.0f}s, serving nobody "
                 f"after {stop.stopping:.1f}s")
        crossing = asyncio.create_task(self.drive(probe))  # a referral submitted once the node is gone
        if what != "kill":
            await asyncio.to_thread(rabbit.stop_node, node)
            stop.exited = time.monotonic() - since
        for prober in probers:  # asked until they answer a query sent after the node's process is gone too
            prober.gone = time.monotonic()
        await asyncio.shield(asking)
        for prober in probers:
            if (seconds := prober.flowing_after(gone)) is not None:
                stop.answered[prober.service] = seconds
            stop.interrupted[prober.service] = prober.interrupted()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(crossing), timeout=max(1.0, FLOWING_WITHIN - (time.monotonic()
                                                                                               - gone)))
        if probe.referral_id in self.driver.registered:
            stop.crossed = self.driver.registered[probe.referral_id] - gone
        self.log(f"  cluster: traffic flowing again {stop.flowing if stop.flowing is None else round(stop.flowing, 1)}"
                 f"s after {node.node} was gone")
        if then_start:
            await asyncio.to_thread(rabbit.restart_node, node)
            await asyncio.to_thread(rabbit.revive, node)
            await self._settle(node)
            stop.down = time.monotonic() - since
            self.log(f"  cluster: {node.node} restarted, down {stop.down:.0f}s")
        self.probe_tasks.append(crossing)

    async def _settle(self, node: RabbitNode) -> None:
        """After a node came back: leaders spread again (what an operator runs after a restart), every quorum
        queue has its members caught up (so the next node may go), every service answers its health check."""
        await asyncio.to_thread(self.cluster.rabbit.rebalance)
        await asyncio.to_thread(self.cluster.rabbit.await_quorum_safe, node)
        await self.helper.all_healthy()


async def run(referrals: int = 20, seed: int = 11, base: Path = VAR, keep: bool = False,
              log=print) -> ClusterFigures:
    _fresh(base)
    # The harness's own clients move between nodes on purpose (the services log it in their own logs).
    logging.getLogger("werkbrug.failover").setLevel(logging.ERROR)
    figures = ClusterFigures()
    cluster = Cluster(base)
    started = time.monotonic()
    try:
        await cluster.start()
        log(f"cluster run: {referrals} referrals, nodes {cluster.rabbit.hosts}, databases on SQLite under {base}")
        cases = plan_cases(referrals, seed)
        probe_at = [i for i, c in enumerate(cases) if not c.flaw][:4]  # one referral started at each stop
        probes = [cases[i] for i in probe_at]
        stream = [c for i, c in enumerate(cases) if i not in probe_at]
        portions = [stream[k::6] for k in range(6)]  # released at the start and as each node goes or returns
        driver = TimedDriver(cluster.settings, figures)
        finished, released = 0, 0
        tasks: list[asyncio.Task] = []

        async def one(i: int, case: Case) -> None:
            nonlocal finished
            try:
                await driver.drive(case, random.Random(seed * 1000 + i))
            except StepFailed as failure:
                figures.problems.append(str(failure))
            finished += 1

        def release() -> None:
            nonlocal released
            if portions:
                portion = portions.pop(0)
                released += len(portion)
                tasks.extend(asyncio.create_task(one(cases.index(c), c)) for c in portion)

        operator = Operator(cluster, figures, driver, probes, release, lambda case: one(cases.index(case), case),
                            log=log)
        malformed = await send_malformed(cluster.settings)
        release()
        await operator.run(lambda: finished, lambda: released)
        while portions:
            release()
        await asyncio.gather(*tasks, *operator.probe_tasks)
        await driver.close()
        await quiet(cluster)
        figures.seconds = time.monotonic() - started
        parked = await ParkingQueues(cluster.settings, actors=load_registers(cluster.settings)).list()
        count_repeats(cluster, figures)
        verify(cluster, cases, figures, parked, malformed)
        queues = await asyncio.to_thread(cluster.rabbit.queues, cluster.settings.amqp_vhost)
        quorum = [q for q in queues if q.get("type") == "quorum"]
        figures.queues = len(quorum)
        online = collections.Counter(len(q.get("online", [])) for q in quorum)
        figures.members_online = ", ".join(f"{n} queues with {k} of 3" for k, n in sorted(online.items()))
        if any(len(q.get("members", [])) != 3 or len(q.get("online", [])) != 3 for q in quorum):
            figures.problems.append(f"quorum queues not on all three nodes at the end: {figures.members_online}")
        figures.leaders_after = await asyncio.to_thread(leader_counts, cluster)
        return figures
    finally:
        if not keep:
            cluster.stop()


def report(figures: ClusterFigures) -> str:
    return chaos_report(figures, run="cluster run")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--referrals", type=int, default=20)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--keep", action="store_true", help="leave the cluster, databases and services running")
    args = parser.parse_args()
    figures = asyncio.run(run(args.referrals, args.seed, keep=args.keep))
    print(report(figures))
    (VAR / "figures.json").write_text(json.dumps(figures.summary(), indent=2, default=str))
    return 0 if figures.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
