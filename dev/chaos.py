"""The chaos run (issue 7): the whole process under SIGKILLs, a broker that stops, databases that die.

It starts everything of its own under var/chaos (nothing shared is touched):
- a private RabbitMQ node (dev/rabbitmq_node.py), so its application can be stopped and started;
- one embedded database server per service on mongoeco's SQLite engine (a file each), so a database
  server killed with SIGKILL and started again keeps what it had committed;
- intake, offer, trajectory and billing as separate processes (`python -m services.<name>`).

Then it pushes N referrals (default 1000) through the whole process — refused, declined, approved
(some after a rejected quote), trajectory start, progress, end and the invoices — while a chaos task
kills each service with SIGKILL in turn and restarts it, stops and starts the broker's application
(`rabbitmqctl stop_app` / `start_app`) and kills and restarts each database server. It also sends one
malformed message to each service, which must end up parked with its reason.

Afterwards it reads the four databases and the parking queues and checks: every referral reached the
state its plan leads to; no invoice twice and no invoice number burnt (gap-free per year); invoiced
equals approved, per referral and in total; every outbox record sent and every cross-party event
answered by an accepted retour; every event processed exactly once by each of its consumers, each with
its processing-log record, and one trace id per lifecycle; the parking queues hold exactly the
malformed messages, each with its reason. It prints its figures (all observed, none assumed):
referrals, kills, restarts, redeliveries seen (the broker's `redelivered` flag, from the services'
`repeat delivery` log lines), duplicates the inboxes dropped, lost, duplicated.

    python -m dev.chaos [--referrals 1000] [--seed 7] [--concurrency 24] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import logging
import random
import re
import shutil
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import aio_pika
from faststream.rabbit import RabbitBroker
from pymongo import MongoClient
from pymongo.errors import OperationFailure

from dev.rabbitmq_node import RabbitNode
from dev.scenario import REPORT_YEAR, SCHEDULES, Case, TrajectoryPlan, end_command, quote_for, synthetic_cases
from infra.dead_letters import ParkingQueues
from infra.declare import declare_all
from infra.identities import import_grants
from infra.processes import ROOT, DatabaseServer, ServiceProcess
from infra.services import DEFINITIONS
from shared.client import CommandClient
from shared.config import ADMIN_USER, Settings, dev_password
from shared.contracts.commands import (
    Command,
    CommandResult,
    DecideQuote,
    DecideReferral,
    GetReferral,
    ReportProgress,
    StartTrajectory,
)
from shared.contracts.envelope import expects_retour, lookup
from shared.contracts.events import DeclineReason, Phase, ProgressStatus, QuoteRejectReason
from shared.contracts.reasons import ReasonCode
from shared.messaging.topology import Topology, service_bindings
from shared.staff import load_registers
from shared.storage.codec import from_bson

VAR = ROOT / "var" / "chaos"
REPORT_YEAR_START = date(REPORT_YEAR, 1, 11)
ENDINGS = ("paid_work", "education", "other_provision")  # each settles the whole approved amount
WAIT = 900.0  # how long one step may take while the chaos goes on (a broker restart stalls everything)
REPEAT = re.compile(r"repeat delivery message=(\S+) redelivered=(true|false) delivery_count=(\S+) outcome=(\w+)")


# -- what runs ---------------------------------------------------------------------------------------


@dataclass
class Figures:
    referrals: int = 0
    outcomes: collections.Counter = field(default_factory=collections.Counter)
    kills: collections.Counter = field(default_factory=collections.Counter)  # service | database | broker app
    restarts: int = 0
    unplanned_exits: int = 0
    redeliveries: int = 0
    duplicates_dropped: int = 0
    command_retries: int = 0
    invoices: int = 0
    invoiced: Decimal = Decimal(0)
    approved: Decimal = Decimal(0)
    lost: int = 0
    duplicated: int = 0
    parked: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {"referrals": self.referrals, "outcomes": dict(self.outcomes), "kills": dict(self.kills),
                "restarts": self.restarts, "unplanned_exits": self.unplanned_exits,
                "redeliveries": self.redeliveries, "duplicates_dropped": self.duplicates_dropped,
                "command_retries": self.command_retries, "invoices": self.invoices,
                "invoiced": str(self.invoiced), "approved": str(self.approved), "parked": self.parked,
                "lost": self.lost, "duplicated": self.duplicated, "seconds": round(self.seconds, 1),
                "problems": self.problems}

    @property
    def ok(self) -> bool:
        return not self.problems and self.lost == 0 and self.duplicated == 0

    def lines(self) -> list[str]:
        return [
            f"referrals      {self.referrals} ({', '.join(f'{k} {v}' for k, v in sorted(self.outcomes.items()))})",
            f"kills          {sum(self.kills.values())} (" + ", ".join(f"{k} {v}" for k, v in self.kills.items()) + ")",
            f"restarts       {self.restarts} (unplanned exits: {self.unplanned_exits})",
            f"redeliveries   {self.redeliveries} seen (duplicates dropped by the inboxes: {self.duplicates_dropped})",
            f"command retries {self.command_retries}",
            f"invoices       {self.invoices}, invoiced {self.invoiced} = approved {self.approved}"
            if self.invoiced == self.approved else
            f"invoices       {self.invoices}, invoiced {self.invoiced} != approved {self.approved}",
            f"parked         {self.parked} (each explained)" if not self.problems else f"parked         {self.parked}",
            f"lost           {self.lost}",
            f"duplicated     {self.duplicated}",
            f"time           {self.seconds:.0f} s ({self.referrals / max(self.seconds, 1):.2f} referrals/s)",
        ]


class Cluster:
    """The broker node, the database servers and the services of one chaos run."""

    def __init__(self, base: Path) -> None:
        self.base = base
        # A node name of its own, so two chaos runs on one machine do not meet.
        self.node = RabbitNode(base / "rabbitmq", node=f"werkbrug-chaos-{uuid.uuid4().hex[:6]}@localhost")
        # As on the shared broker: the admin user for the harness, each service as its party's user.
        admin = f"amqp://{ADMIN_USER}:{dev_password(ADMIN_USER)}@127.0.0.1:{self.node.port}/"
        self.settings = Settings(AMQP_URL=admin, WERKBRUG_NAMESPACE="chaos",
                                 WERKBRUG_RELAY_INTERVAL=0.05, WERKBRUG_SPAN_FILE=None)
        self.dbs = {name: DatabaseServer(name, base / f"{name}.sqlite", base / f"mongo-{name}.log")
                    for name in DEFINITIONS}
        env = {"WERKBRUG_DB_TIMEOUT_MS": "2000", "WERKBRUG_STARTUP_ATTEMPTS": "30"}
        self.services = {name: ServiceProcess(name, self.settings, self.dbs[name].url, base, extra_env=env)
                         for name in DEFINITIONS}
        self.broker, self.healthy_within = self.node, 120  # what start and stop start and stop (one node here)

    async def start(self) -> None:
        await asyncio.to_thread(self.broker.start)
        # Users, vhost, permissions and exchanges: applied once, on the broker (on one node of a cluster).
        await asyncio.to_thread(import_grants, self.settings, ctl=self.broker.ctl)
        await declare_all(self.settings)
        for db in self.dbs.values():
            db.start()
        for service in self.services.values():
            service.start()
        for service in self.services.values():
            await service.wait_healthy(within=self.healthy_within)

    def stop(self) -> None:
        for service in self.services.values():
            service.stop()
        for db in self.dbs.values():
            db.stop()
        self.broker.stop()


# -- the people, played by code, who keep trying -------------------------------------------------------


class StepFailed(Exception):
    pass


class Driver:
    """Takes each referral through its plan. A command that gets no answer (service killed, broker away)
    or `service_unavailable` (database away) is sent again with the same command id: the service's inbox
    answers a repeat with the first result, so a retry never does anything twice."""

    def __init__(self, settings: Settings, figures: Figures) -> None:
        self.settings, self.figures = settings, figures
        self._client: CommandClient | None = None
        self._lock = asyncio.Lock()

    async def client(self) -> CommandClient:
        async with self._lock:
            if self._client is None:
                self._client = CommandClient(self.settings, timeout=20, actors=load_registers(self.settings))
                try:
                    await self._client.__aenter__()
                except BaseException:
                    self._client = None
                    raise
            return self._client

    async def reconnect(self, stale: CommandClient) -> None:
        async with self._lock:
            if self._client is stale:
                self._client = None
                with contextlib.suppress(Exception):
                    await stale.__aexit__(None, None, None)

    async def close(self) -> None:
        if self._client is not None:
            await self.reconnect(self._client)

    async def call(self, service: str, command: Command, within: float = WAIT) -> CommandResult:
        deadline, delay, failures = time.monotonic() + within, 0.5, 0
        while True:
            client = None
            try:
                client = await self.client()
                result = await client.send(service, command)
                if result.ok or not any(r.code == ReasonCode.SERVICE_UNAVAILABLE for r in result.reasons):
                    return result
            except Exception:  # no answer in time, or the broker went away under the client
                failures += 1
                if client is not None and failures % 2 == 0:
                    await self.reconnect(client)
            if time.monotonic() > deadline:
                raise StepFailed(f"{service} did not take {command.command} within {within:.0f}s")
            self.figures.command_retries += 1
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 5.0)

    async def view(self, service: str, referral_id: str) -> dict[str, Any]:
        result = await self.call(service, GetReferral(referral_id=uuid.UUID(referral_id)))
        return result.result if result.ok and isinstance(result.result, dict) else {}

    async def until(self, service: str, referral_id: str, done, what: str) -> dict[str, Any]:
        deadline, delay = time.monotonic() + WAIT, 0.25
        while True:
            view = await self.view(service, referral_id)
            if view and done(view):
                return view
            if time.monotonic() > deadline:
                raise StepFailed(f"{referral_id}: {service} not {what} (is {view.get('status')})")
            await asyncio.sleep(delay)
            delay = min(delay * 1.4, 3.0)

    async def until_status(self, service: str, referral_id: str, *wanted: str) -> dict[str, Any]:
        return await self.until(service, referral_id, lambda v: v.get("status") in wanted, "/".join(wanted))

    async def must(self, service: str, command: Command) -> CommandResult:
        result = await self.call(service, command)
        if not result.ok:
            raise StepFailed(f"{service} refused {command.command}: {[r.code.value for r in result.reasons]}")
        return result

    async def drive(self, case: Case, rng: random.Random) -> None:
        submitted = await self.call("intake", case.command)
        case.referral_id = (submitted.result or {}).get("referral_id")
        if not submitted.ok:
            case.outcome, case.reasons = "refused", [r.code.value for r in submitted.reasons]
            return
        rid = case.referral_id
        assert rid is not None
        await self.until_status("offer", rid, "registered")
        if case.plan == "decline":
            await self.must("offer", DecideReferral(referral_id=uuid.UUID(rid), accept=False,
                                                    decline_reason=DeclineReason.NO_CAPACITY))
            case.outcome = (await self.until_status("intake", rid, "declined"))["status"]
            return
        await self.must("offer", DecideReferral(referral_id=uuid.UUID(rid), accept=True))
        plan = case.trajectory
        assert plan is not None
        quote = quote_for(rid, rng, schedule=plan.schedule, duration_weeks=plan.weeks_run)
        for attempt in (1, 2):
            sent = await self.must("offer", quote)
            quote_id = sent.result["quotes"][-1]["quote_id"]
            await self.until("intake", rid, lambda v, q=quote_id: v.get("status") == "quote_received" and any(
                x["quote_id"] == q for x in v.get("quotes", [])), "quote received")
            if case.plan == "reject_then_approve" and attempt == 1:
                await self.must("intake", DecideQuote(referral_id=uuid.UUID(rid), quote_id=uuid.UUID(quote_id),
                                                      approve=False, reject_reason=QuoteRejectReason.AMOUNT_TOO_HIGH))
                await self.until_status("offer", rid, "quote_rejected")
                quote = quote_for(rid, rng, amount=(quote.amount * Decimal("0.85")).quantize(Decimal("1")),
                                  schedule=plan.schedule, duration_weeks=plan.weeks_run)
                continue
            await self.must("intake", DecideQuote(referral_id=uuid.UUID(rid), quote_id=uuid.UUID(quote_id),
                                                  approve=True))
            await self.until_status("offer", rid, "quote_approved")
            break
        await self.until_status("trajectory", rid, "commissioned")
        await self.must("trajectory", StartTrajectory(referral_id=uuid.UUID(rid), start_date=plan.start))
        for week, phase in ((2, Phase.ORIENTATION), (5, Phase.JOB_SEARCH)):
            await self.must("trajectory", ReportProgress(
                referral_id=uuid.UUID(rid), reported_on=plan.start + timedelta(weeks=week), phase=phase,
                status=ProgressStatus.ON_TRACK))
        await self.must("trajectory", end_command(rid, plan))
        invoices = expected_invoice_count(plan)
        view = await self.until("intake", rid, lambda v: v.get("status") == "trajectory_ended"
                                and len(v.get("invoices", [])) >= invoices, f"ended with {invoices} invoices")
        case.outcome = view["status"]


def plan_cases(count: int, seed: int) -> list[Case]:
    """The demo's synthetic cases; every one that reaches approval gets a trajectory that ends in full
    settlement (each invoicing schedule in turn), so invoiced must equal approved."""
    rng = random.Random(seed)
    cases = synthetic_cases(rng, count)
    n = 0
    for case in cases:
        if case.flaw or case.plan == "decline":
            continue
        case.trajectory = TrajectoryPlan(schedule=SCHEDULES[n % len(SCHEDULES)], ending=ENDINGS[n % len(ENDINGS)],
                                         start=REPORT_YEAR_START + timedelta(weeks=(n * 3) % 22),
                                         weeks_run=rng.choice([13, 16, 20]))
        n += 1
    return cases


def expected_invoice_count(plan: TrajectoryPlan) -> int:
    return 1 if plan.schedule in ("advance_only", "afterwards_only") else 2


def expected_status(case: Case) -> str:
    if case.flaw:
        return "refused"
    if case.plan == "decline":
        return "declined"
    return "trajectory_ended"


# -- the chaos ---------------------------------------------------------------------------------------


class Monkey:
    """Kills and restarts things at points spread over the run (by referrals completed), one at a time,
    and waits until every service answers its health check again before the next."""

    def __init__(self, cluster: Cluster, figures: Figures, total: int, rng: random.Random,
                 log=print, every: bool = True) -> None:
        self.cluster, self.figures, self.rng, self.log = cluster, figures, rng, log
        if every:  # each service and each database in turn, the broker twice
            services = list(DEFINITIONS)
            dbs = services[1:] + services[:1]
            plan: list[tuple[str, str]] = []
            for i, (service, db) in enumerate(zip(services, dbs, strict=True)):
                plan += [("service", service), ("database", db)]
                if i in (1, 3):
                    plan.append(("broker", "app"))
        else:  # one of each kind (the smoke run)
            plan = [("service", "offer"), ("broker", "app"), ("database", "billing")]
        self.plan = plan
        self.at = [max(1, int(total * (0.05 + 0.8 * k / len(plan)))) for k in range(len(plan))]
        self.done = 0

    async def run(self, completed, progressed: asyncio.Event) -> None:
        for (kind, target), threshold in zip(self.plan, self.at, strict=True):
            while completed() < threshold:
                progressed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(progressed.wait(), timeout=1.0)
            await self.strike(kind, target)
            self.done += 1

    async def strike(self, kind: str, target: str) -> None:
        started = time.monotonic()
        if kind == "service":
            process = self.cluster.services[target]
            process.kill()
            await asyncio.sleep(self.rng.uniform(0.5, 3.0))
            process.start()
        elif kind == "database":
            db = self.cluster.dbs[target]
            await asyncio.to_thread(db.kill)
            await asyncio.sleep(self.rng.uniform(1.0, 4.0))
            await asyncio.to_thread(db.start)
        else:
            await asyncio.to_thread(self.cluster.node.stop_app)
            await asyncio.sleep(self.rng.uniform(2.0, 5.0))
            await asyncio.to_thread(self.cluster.node.start_app)
        self.figures.kills[f"{kind} {target}" if kind != "broker" else "broker app"] += 1
        self.figures.restarts += 1
        await self.all_healthy()
        self.log(f"  chaos: {kind} {target} killed and back in {time.monotonic() - started:.1f}s")

    async def all_healthy(self) -> None:
        for process in self.cluster.services.values():
            try:
                await process.wait_healthy(within=180)
            except RuntimeError:
                if process.running:
                    raise
                self.figures.unplanned_exits += 1  # it died of what was done to another: a finding
                self.figures.problems.append(f"{process.name} exited on its own; see {process.log_path}")
                process.start()
                await process.wait_healthy(within=180)


async def send_malformed(settings: Settings) -> dict[str, str]:
    """One malformed message on a key each service consumes; each must be parked with its reason."""
    topology = Topology(settings.namespace, settings.delivery_limit)
    broker = RabbitBroker(settings.broker_url(), logger=None)
    await broker.connect()
    sent = {}
    try:
        bindings = {name: [k for k, _ in service_bindings(make(settings))] for name, make in DEFINITIONS.items()}
        for name, keys in bindings.items():
            concrete = [k.replace("*", party) for k in keys for party in ("werksaam", "heliomare")]
            key = next(k for k in concrete  # a key only this service reads, so exactly one parks it
                       if [n for n, ks in bindings.items() if any(_topic_match(p, k) for p in ks)] == [name])
            message_id = str(uuid.uuid4())
            await broker.publish(b'{"id": "not json', exchange=topology.events, routing_key=key,
                                 message_id=message_id, persist=True, mandatory=True, content_type="application/json")
            sent[message_id] = name
    finally:
        await broker.stop()
    return sent


# -- the checks --------------------------------------------------------------------------------------


def _topic_match(pattern: str, key: str) -> bool:
    p, k = pattern.split("."), key.split(".")
    return len(p) == len(k) and all(a in ("*", b) for a, b in zip(p, k, strict=True))


async def quiet(cluster: Cluster, within: float = 600) -> None:
    """Until nothing is pending in any outbox and every consumer queue is empty, twice in a row."""
    topology = Topology(cluster.settings.namespace, cluster.settings.delivery_limit)
    dbs = {name: MongoClient(db.url, tz_aware=True, uuidRepresentation="standard") for name, db in cluster.dbs.items()}
    deadline, calm = time.monotonic() + within, 0
    connection = await aio_pika.connect_robust(cluster.settings.broker_url())
    try:
        async with connection:
            channel = await connection.channel()
            while calm < 2:
                if time.monotonic() > deadline:
                    raise StepFailed("the system did not come to rest")
                busy = sum(_read(lambda n=n: dbs[n][cluster.settings.database_name(n)].outbox.count_documents(
                    {"status": "pending"})) for n in dbs)
                for name, make in DEFINITIONS.items():
                    keys = [k for k, _ in service_bindings(make(cluster.settings))]
                    for queue in [topology.consumer_queue(name, k) for k in keys]:
                        declared = await channel.declare_queue(queue.name, passive=True)
                        busy += declared.declaration_result.message_count or 0
                calm = calm + 1 if busy == 0 else 0
                await asyncio.sleep(1.0)
    finally:
        for client in dbs.values():
            client.close()


def _read(query, tries: int = 100):
    """A read of the harness's own. The SQLite engine refuses it while a service's transaction is open
    ("active transaction bound to another session"), so it waits its turn."""
    for n in range(tries):
        try:
            return query()
        except OperationFailure:
            if n == tries - 1:
                raise
            time.sleep(0.05)
    return None


def verify(cluster: Cluster, cases: list[Case], figures: Figures, parked: list, malformed: dict[str, str]) -> None:
    s = cluster.settings
    clients = {name: MongoClient(db.url, tz_aware=True, uuidRepresentation="standard")
               for name, db in cluster.dbs.items()}
    db = {name: clients[name][s.database_name(name)] for name in clients}
    problems = figures.problems
    lost: set[str] = set()
    duplicated: set[str] = set()
    try:
        # 1. every referral reached the state its plan leads to, on both sides
        intake = {d["_id"]: from_bson(d) for d in _read(lambda: list(db["intake"].referrals.find({}, {"_enc": 0})))}
        offer = {d["_id"]: from_bson(d) for d in _read(lambda: list(db["offer"].cases.find({}, {"_enc": 0})))}
        trajectories = {d["_id"]: from_bson(d) for d in _read(lambda: list(db["trajectory"].trajectories.find({})))}
        accounts = {d["_id"]: from_bson(d) for d in _read(lambda: list(db["billing"].accounts.find({})))}
        figures.referrals = len(cases)
        for case in cases:
            want = expected_status(case)
            figures.outcomes[case.outcome or "unfinished"] += 1
            rid = case.referral_id
            got = intake.get(rid, {}).get("status") if rid else None
            if case.outcome != want or got != want:
                lost.add(rid or f"case {id(case)}")
                problems.append(f"{rid}: expected {want}, driver saw {case.outcome}, intake has {got}")
                continue
            if want == "refused":
                if rid in offer:
                    duplicated.add(rid)
                    problems.append(f"{rid}: refused at intake but registered at Heliomare")
                continue
            expected_offer = "declined" if want == "declined" else "quote_approved"
            if offer.get(rid, {}).get("status") != expected_offer:
                lost.add(rid)
                problems.append(f"{rid}: offer has {offer.get(rid, {}).get('status')}, expected {expected_offer}")
            if want == "trajectory_ended" and trajectories.get(rid, {}).get("status") != "ended":
                lost.add(rid)
                problems.append(f"{rid}: trajectory has {trajectories.get(rid, {}).get('status')}")
        submitted_ok = sum(1 for c in cases if not c.flaw)
        if len(offer) != submitted_ok:
            problems.append(f"offer registered {len(offer)} referrals, intake sent {submitted_ok}")

        # 2. invoices: one per moment per trajectory, numbers gap-free per year, invoiced = approved
        numbers: collections.Counter = collections.Counter()
        by_year: dict[str, list[int]] = collections.defaultdict(list)
        for case in cases:
            if expected_status(case) != "trajectory_ended" or case.referral_id not in accounts:
                continue
            rid = case.referral_id
            account, referral = accounts[rid], intake.get(rid, {})
            invoices = account.get("invoices", [])
            moments = collections.Counter(i["moment"] for i in invoices)
            if any(n > 1 for n in moments.values()) or len(invoices) != expected_invoice_count(case.trajectory):
                duplicated.add(rid) if len(invoices) > expected_invoice_count(case.trajectory) else lost.add(rid)
                problems.append(f"{rid}: {len(invoices)} invoices {dict(moments)}, expected "
                                f"{expected_invoice_count(case.trajectory)}")
            for i in invoices:
                numbers[i["number"]] += 1
                year, seq = i["number"].split("-")
                by_year[year].append(int(seq))
            invoiced = sum((i["amount_excl_vat"] for i in invoices), Decimal(0))
            approved = [q["amount"] for q in referral.get("quotes", []) if q.get("decision") == "approved"]
            approved_amount = approved[0] if len(approved) == 1 else None
            if approved_amount is None or invoiced != approved_amount:
                problems.append(f"{rid}: invoiced {invoiced}, approved {approved}")
            received = sorted(i["number"] for i in referral.get("invoices", []))
            if received != sorted(i["number"] for i in invoices):
                problems.append(f"{rid}: WerkSaam received invoices {received}, billing issued "
                                f"{sorted(i['number'] for i in invoices)}")
            figures.invoiced += invoiced
            figures.approved += approved_amount or Decimal(0)
            figures.invoices += len(invoices)
        for number, n in numbers.items():
            if n > 1:
                duplicated.add(number)
                problems.append(f"invoice number {number} used {n} times")
        counters = {str(c["year"]): c["last"] for c in _read(lambda: list(db["billing"].counters.find({})))}
        for year, seqs in by_year.items():
            if sorted(set(seqs)) != list(range(1, len(set(seqs)) + 1)) or counters.get(year) != len(set(seqs)):
                problems.append(f"invoice numbers of {year} not gap-free: {len(set(seqs))} invoices, "
                                f"highest {max(seqs)}, counter at {counters.get(year)}")

        # 3. outboxes drained, retours, processing exactly once with its log record, one trace per lifecycle
        consumers = {name: [k for k, _ in service_bindings(make(s))] for name, make in DEFINITIONS.items()}
        handled: dict[str, collections.Counter] = {}
        traces: dict[str, set[str]] = collections.defaultdict(set)
        for name in DEFINITIONS:
            handled[name] = collections.Counter()
            log_records = _read(lambda n=name: list(db[n].processing_log.find(
                {}, {"message_id": 1, "message_type": 1, "trace_id": 1, "correlation_id": 1, "reasons": 1})))
            for record in log_records:
                mtype = record.get("message_type") or ""
                if mtype.startswith("query:") or record.get("reasons"):  # reads; refused attempts: no part of a flow
                    continue
                handled[name][record.get("message_id")] += 1  # events and retours are about one subject
                if record.get("correlation_id"):
                    traces[str(record["correlation_id"])].add(record["trace_id"])
        inboxes = {name: {d["_id"] for d in _read(lambda n=name: list(db[n].inbox.find({}, {"_id": 1})))}
                   for name in DEFINITIONS}
        for name in DEFINITIONS:
            for record in _read(lambda n=name: list(db[n].outbox.find({}, {"payload": 0}))):
                if record["status"] != "sent":
                    lost.add(record["_id"])
                    problems.append(f"{name}: outbox {record['type']} {record['_id']} still {record['status']}")
                for reader, keys in consumers.items():
                    if not any(_topic_match(k, record["routing_key"]) for k in keys):
                        continue
                    if record.get("subject") is None:
                        # About no person (the rejection retour to a malformed message): no processing-log
                        # record is written; the receiver's inbox shows it was handled.
                        if record["_id"] not in inboxes[reader]:
                            lost.add(record["_id"])
                            problems.append(f"{reader} never handled {record['routing_key']} {record['_id']}")
                        continue
                    n = handled[reader].get(record["_id"], 0)
                    if n != 1:
                        (lost if n == 0 else duplicated).add(record["_id"])
                        problems.append(f"{reader} has {n} processing records of {record['routing_key']} "
                                        f"{record['_id']} from {name}")
                if _expects_retour(record):
                    retour = record.get("retour")
                    if not retour or retour.get("status") != "accepted":
                        problems.append(f"{name}: {record['type']} {record['_id']} answered {retour}")
        for case in cases:
            if case.referral_id and not case.flaw and len(traces.get(case.referral_id, ())) != 1:
                problems.append(f"{case.referral_id}: {len(traces.get(case.referral_id, ()))} trace ids in the log")

        # 4. dead letters: exactly the malformed messages, each with its reason
        figures.parked = len(parked)
        seen = {letter.message_id: letter for letter in parked}
        for message_id, service in malformed.items():
            letter = seen.pop(message_id, None)
            if letter is None or letter.service != service or letter.reason != "malformed_json":
                problems.append(f"malformed message {message_id} for {service} not parked with its reason")
        for letter in seen.values():
            if _echo_of_malformed(letter, malformed):
                continue
            problems.append(f"unexplained dead letter at {letter.service}: {letter.routing_key} "
                            f"{letter.message_id} ({letter.reason})")
    finally:
        for client in clients.values():
            client.close()
    figures.lost, figures.duplicated = len(lost), len(duplicated)


def _echo_of_malformed(letter, malformed: dict[str, str]) -> bool:
    """The rejection retour a service sends to a malformed message goes to the party its routing key names,
    which never sent it: that party's service refuses the retour (retour_about_unsent_event) and parks it."""
    if letter.reason != ReasonCode.RETOUR_ABOUT_UNSENT_EVENT.value or ".retour." not in (letter.routing_key or ""):
        return False
    try:
        about = json.loads(letter.body)["data"]["about_event_id"]
    except (ValueError, KeyError, TypeError):
        return False
    return about in malformed


def _expects_retour(record: dict[str, Any]) -> bool:
    """A cross-party event is answered by a retour; a retour and an event within one party are not."""
    return lookup(record["type"], record.get("version", 1)) is not None and expects_retour(
        record["type"], record.get("version", 1), record["routing_key"])


def count_repeats(cluster: Cluster, figures: Figures) -> None:
    for service in cluster.services.values():
        for line in service.log_path.read_text(errors="replace").splitlines():
            if match := REPEAT.search(line):
                figures.redeliveries += match.group(2) == "true"
                figures.duplicates_dropped += match.group(4) == "duplicate"


# -- the run -----------------------------------------------------------------------------------------


def _fresh(base: Path) -> None:
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    # The harness's own client loses its connection whenever the broker stops, on purpose: no tracebacks.
    for name in ("aiormq", "aio_pika"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


async def run(referrals: int = 1000, seed: int = 7, concurrency: int = 24, base: Path = VAR,
              keep: bool = False, log=print, every: bool = True) -> Figures:
    """The whole chaos run; `every=False` strikes once of each kind (service, broker, database)."""
    _fresh(base)
    figures = Figures()
    cluster = Cluster(base)
    started = time.monotonic()
    try:
        await cluster.start()
        log(f"chaos run: {referrals} referrals, broker node {cluster.node.node} on :{cluster.node.port}, "
            f"databases on SQLite under {base}")
        cases = plan_cases(referrals, seed)
        driver = Driver(cluster.settings, figures)
        monkey = Monkey(cluster, figures, referrals, random.Random(seed), log=log, every=every)
        finished = 0
        progressed = asyncio.Event()
        gate = asyncio.Semaphore(concurrency)

        async def one(i: int, case: Case) -> None:
            nonlocal finished
            async with gate:
                try:
                    await driver.drive(case, random.Random(seed * 1000 + i))
                except StepFailed as failure:
                    figures.problems.append(str(failure))
                finished += 1
                progressed.set()
                if finished % max(1, referrals // 20) == 0:
                    log(f"  {finished}/{referrals} referrals done, {time.monotonic() - started:.0f}s")

        malformed = await send_malformed(cluster.settings)
        chaos = asyncio.create_task(monkey.run(lambda: finished, progressed))
        await asyncio.gather(*(one(i, c) for i, c in enumerate(cases)))
        await chaos
        await driver.close()
        await quiet(cluster)
        figures.seconds = time.monotonic() - started
        parked = await ParkingQueues(cluster.settings, actors=load_registers(cluster.settings)).list()
        count_repeats(cluster, figures)
        verify(cluster, cases, figures, parked, malformed)
        return figures
    finally:
        if not keep:
            cluster.stop()


def report(figures: Figures, run: str = "chaos run") -> str:
    head = f"{run}: PASSED" if figures.ok else f"{run}: FAILED"
    lines = [head, *("  " + line for line in figures.lines())]
    if figures.problems:
        lines.append(f"  problems ({len(figures.problems)}):")
        lines += [f"    - {p}" for p in figures.problems[:40]]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--referrals", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--concurrency", type=int, default=24)
    parser.add_argument("--keep", action="store_true", help="leave the broker node, databases and services running")
    args = parser.parse_args()
    figures = asyncio.run(run(args.referrals, args.seed, args.concurrency, keep=args.keep))
    print(report(figures))
    (VAR / "figures.json").write_text(json.dumps(figures.summary(), indent=2))
    return 0 if figures.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
