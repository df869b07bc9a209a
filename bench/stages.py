"""One run of each thing the benchmark measures. Each returns a plain dict for the JSON report.

- `broker_floor`: bare aio-pika, consume → publish (persistent, confirms, mandatory) → ack, same prefetch.
- `storage_floor`: the hop's own database work (the same reads, inserts and updates, in one transaction,
  and the relay's batched update), straight through PyMongo with prepared documents.
- `hop`: one werkbrug hop (offer handling `werksaam.heliomare.referral.registered.v2`), with MongoDB or the
  in-memory unit of work, tracing on or off.
- `lifecycle`: referral to last invoice through all four services, each its own process.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import io
import json
import os
import random
import secrets
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import aio_pika
from pymongo import ASCENDING, AsyncMongoClient, monitoring

from bench.harness import Context, Worker, closed_loop
from bench.stats import latency_summary, rate
from bench.worker import SET_UP, command_key
from dev.scenario import REPORT_YEAR
from shared.contracts.envelope import Envelope
from shared.contracts.events import ReferralRegistered, Retour, SupportNeed
from shared.contracts.parties import Municipality, Party
from shared.messaging.topology import Topology
from shared.privacy.bsn import synthetic_bsn
from shared.privacy.pseudonym import Pseudonymiser

HOP_KEY = "werksaam.heliomare.referral.registered.v2"
RETOUR_KEY = Retour.routing_key_from(Party.HELIOMARE.value, Party.WERKSAAM.value, ReferralRegistered)
RELAY_BATCH = 4  # records per relay round in the storage floor (the saturated hop's measured average: 4-5)


def referral_messages(ctx: Context, count: int, seed: int) -> list[tuple[str, str, bytes]]:
    """`count` valid `werksaam.heliomare.referral.registered.v2` messages about synthetic people: (id, routing key,
    body)."""
    rng = random.Random(seed)
    pseudonymise = Pseudonymiser(ctx.settings.pseudonym_key.get_secret_value())
    out = []
    for _ in range(count):
        bsn = synthetic_bsn(rng)
        referral_id = uuid.uuid4()
        data = ReferralRegistered(
            referral_id=referral_id, bsn=bsn, given_name="Fenna", family_name="de Boer",
            date_of_birth=date(1980, 1, 1) + timedelta(days=rng.randrange(0, 9000)),
            municipality=rng.choice(list(Municipality)), postal_code=f"16{rng.randrange(10, 99)}AB",
            phone="+31 6 12345678", support_need=rng.choice(list(SupportNeed)), requested_start=date(REPORT_YEAR, 1, 4))
        envelope = Envelope.wrap(data, source=Party.WERKSAAM, subject=pseudonymise(bsn), correlation_id=referral_id,
                                 recipient=Party.HELIOMARE)
        out.append((str(envelope.id), envelope.routing_key, envelope.model_dump_json().encode()))
    return out


def _cpu_per_message(stats: dict[str, Any]) -> float | None:
    """CPU milliseconds the worker process spent per message it handled (warm-up and latency runs included)."""
    if not stats.get("handled") or stats.get("cpu_seconds") is None:
        return None
    return round(stats["cpu_seconds"] * 1000 / stats["handled"], 3)


def _by_message_id(message: aio_pika.abc.AbstractIncomingMessage) -> tuple[str, bool]:
    return message.message_id or "", True


def _by_answered_event(message: aio_pika.abc.AbstractIncomingMessage) -> tuple[str, bool]:
    """The event a retour answers, and whether it was accepted (a rejection is the refusal path, not a hop)."""
    data = json.loads(message.body)["data"]
    return data["about_event_id"], data["status"] == "accepted"


async def _load(ctx: Context, connection: aio_pika.abc.AbstractRobustConnection, exchange: str, sink: str,
                answer_to, seed: int, fast: bool, publisher: aio_pika.abc.AbstractRobustConnection | None = None,
                user_id: str | None = None) -> dict[str, Any]:
    """Warm up, then a saturated run (`window` in flight: throughput, loaded latency), then an unloaded
    run (one in flight: the latency of a single message). A stage without a database (`fast`) gets
    `fast_factor` times the messages, so that its timed run is not over in a second. Messages are
    published on `publisher` as `user_id` (the source party) when given."""
    s = ctx.sizes
    count = s.messages * (s.fast_factor if fast else 1)
    as_sender = {"publisher": publisher, "user_id": user_id}
    runs = [await closed_loop(connection, exchange, referral_messages(ctx, n, seed + i), sink, window, answer_to,
                              **as_sender)
            for i, (n, window) in enumerate([(s.warmup, s.window), (count, s.window), (s.latency_messages, 1)])]
    refused = sum(r.refused for r in runs)
    if refused:
        raise RuntimeError(f"{refused} of {sum(r.received for r in runs)} messages were refused, not handled: "
                           "the run would measure the refusal path (see the worker's log)")
    _, loaded, single = runs
    result = loaded.summary()
    return {"per_second": result["per_second"], "messages": result["messages"], "seconds": result["seconds"],
            "loaded_latency": result["latency"], "latency": single.summary()["latency"],
            "complete": loaded.received == loaded.sent and single.received == single.sent}


async def _quorum_queue(channel: aio_pika.abc.AbstractChannel, name: str, exchange: str, key: str) -> None:
    queue = await channel.declare_queue(name, durable=True, arguments={"x-queue-type": "quorum"})
    await queue.bind(exchange, routing_key=key)


# -- 1. the broker floor -----------------------------------------------------------------------------


async def broker_floor(ctx: Context, run: int) -> dict[str, Any]:
    ns = ctx.namespace("floor")
    exchange, inbound, outbound = f"{ns}.floor", f"{ns}.floor.in", f"{ns}.floor.out"
    async with ctx.vhost(ns) as (settings, connection):  # the vhost goes, with its queues, afterwards
        channel = await connection.channel()
        await channel.declare_exchange(exchange, aio_pika.ExchangeType.DIRECT, durable=True)
        await _quorum_queue(channel, inbound, exchange, HOP_KEY)
        await _quorum_queue(channel, outbound, exchange, "out")
        worker = Worker(["echo", "--amqp-url", settings.broker_url(), "--queue", inbound, "--exchange", exchange,
                         "--key", "out", "--prefetch", str(ctx.settings.prefetch)], {},
                        ctx.log_dir / f"echo-{run}.log")
        await worker.start()
        try:
            result = await _load(ctx, connection, exchange, outbound, _by_message_id, seed=100 + run, fast=True)
        finally:
            result_stats = await worker.stop()
        result["worker"] = result_stats
        result["cpu_ms_per_message"] = _cpu_per_message(result_stats)
        return result


# -- 3 and 5. one werkbrug hop -----------------------------------------------------------------------


async def hop(ctx: Context, run: int, storage: str, traced: bool) -> dict[str, Any]:
    ns = ctx.namespace(f"h{storage[:3]}{'t' if traced else 'u'}")
    topology = Topology(ns, ctx.settings.delivery_limit)
    sink = f"{ns}.bench.sink"
    span_file = ctx.log_dir / f"spans-{ns}.jsonl"
    env = {
        "WERKBRUG_NAMESPACE": ns, "AMQP_URL": ctx.settings.amqp_url,
        "WERKBRUG_PREFETCH": str(ctx.settings.prefetch), "WERKBRUG_RELAY_INTERVAL": str(ctx.settings.relay_interval),
        # Tracing on: every span recorded and exported (batched) as JSON lines, the demo's exporter.
        # Tracing off: the SDK's standard switch; spans are not recorded, ids still propagate.
        "OTEL_TRACES_SAMPLER": "parentbased_always_on" if traced else "always_off",
        "WERKBRUG_SPAN_FILE": str(span_file) if traced else "",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "",
    }
    profile = ctx.profile_dir / f"{ns}.txt" if ctx.profile_dir else None
    async with ctx.vhost(ns) as (settings, connection):  # the vhost goes, with the offer service's queues, after
        # WerkSaam publishes the referrals, as itself: offer refuses a sender that is not the source party.
        werksaam = await aio_pika.connect_robust(settings.broker_url(Party.WERKSAAM.value))
        channel = await connection.channel()
        await channel.declare_exchange(topology.events.name, aio_pika.ExchangeType.TOPIC, durable=True)
        await _quorum_queue(channel, sink, topology.events.name, RETOUR_KEY)
        with ctx.database(ns) if storage == "mongo" else contextlib.nullcontext("") as url:
            worker = Worker(["hop", "--storage", storage, "--mongodb-url", url], {**env, "MONGODB_URL": url},
                            ctx.log_dir / f"hop-{ns}.log", profile=profile)
            await worker.start()
            try:
                result = await _load(ctx, connection, topology.events.name, sink, _by_answered_event,
                                     seed=200 + run, fast=storage == "memory", publisher=werksaam,
                                     user_id=Party.WERKSAAM.value)
            finally:
                stats = await worker.stop()
                await werksaam.close()
            if ctx.mongodb_url and storage == "mongo":
                client = AsyncMongoClient(url)
                await client.drop_database(ctx.settings.model_copy(update={"namespace": ns}).database_name("offer"))
                await client.close()
    handled = sum(stats.get("outcomes", {}).values())
    if set(stats.get("outcomes", {})) - {"accepted"}:
        raise RuntimeError(f"the hop worker did not accept every message: {stats.get('outcomes')}")
    result["worker"] = stats
    result["cpu_ms_per_message"] = _cpu_per_message(stats)
    if handled and stats.get("db_commands"):
        result["db_commands_per_message"] = round(sum(stats["db_commands"].values()) / handled, 2)
    if profile:
        result["profile"] = str(profile)
    span_file.unlink(missing_ok=True)
    return result


# -- 2. the storage floor ----------------------------------------------------------------------------


class _CommandCount(monitoring.CommandListener):
    def __init__(self) -> None:
        self.counts: collections.Counter[str] = collections.Counter()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name not in SET_UP:
            self.counts[command_key(event)] += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def _blob(n: int) -> str:
    return base64.b64encode(secrets.token_bytes(n)).decode()


def _hop_documents(i: int) -> dict[str, dict[str, Any]]:
    """Documents of the shape and about the size of what a hop writes (personal fields as ciphertext)."""
    now = datetime.now(UTC)
    case_id, event_id, retour_id = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    subject = "psn_" + secrets.token_hex(13)  # a new person per referral: a new data key
    return {
        "case": {"_id": case_id, "subject": subject, "status": "registered", "municipality": "hoorn",
                 "support_need": "job_coaching", "requested_start": now, "registered_at": now, "quotes": [],
                 "decline_reason": None, "version": 1, "_enc": _blob(200)},
        "outbox": {"_id": retour_id, "type": "retour.issued", "version": 2, "routing_key": RETOUR_KEY,
                   "correlation_id": case_id, "subject": subject, "payload": _blob(420),
                   "trace": {"traceparent": f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"},
                   "status": "pending", "attempts": 0, "created_at": now, "next_attempt_at": now},
        "log": {"_id": str(uuid.uuid4()), "subject": subject, "trace_id": secrets.token_hex(16),
                "span_id": secrets.token_hex(8), "activity_id": "urn:werkbrug:activity:heliomare:referral-"
                "registration:v2", "activity_version": 2, "legal_basis": "GDPR 6(1)(b)", "party": "heliomare",
                "service": "offer", "operation": "offer.on_referral_registered", "status": "ok",
                "started_at": now, "time": now, "correlation_id": case_id, "message_id": event_id,
                "message_type": "referral.registered.v2", "emitted": [retour_id],
                "foreign": {"party": "werksaam", "span_id": None}},
        "key": {"_id": subject, "key": _blob(60), "created_at": now},
        "inbox": {"_id": event_id, "kind": "event", "type": "referral.registered", "result": None,
                  "received_at": now, "expire_at": now + timedelta(days=90)},
        "lifecycle": {"_id": case_id, "trace": {"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"},
                      "created_at": now},
    }


async def storage_floor(ctx: Context, run: int) -> dict[str, Any]:
    """What one hop asks of the database, without werkbrug: per message, in one transaction, the inbox
    check, the subject's state (restriction, erasure), the case lookup, the subject's data key (read,
    then made: a new person), the case insert, the outbox insert, the processing-log insert, the
    lifecycle upsert, the inbox insert and the commit; then, per `RELAY_BATCH` messages, the relay's
    query for pending records, its read of their data keys and its update marking them sent. Same
    indexes (`ensure_schema`), same concurrency (`prefetch` at a time; on the embedded server one at a
    time, as werkbrug's write lock does there)."""
    from services.offer.bootstrap import CASES
    from shared.privacy.crypto import FieldCipher
    from shared.storage.mongo import MongoStorage

    ns = ctx.namespace("store")
    listener = _CommandCount()
    with ctx.database(ns) as url:
        client = AsyncMongoClient(url, tz_aware=True, uuidRepresentation="standard", event_listeners=[listener])
        name = f"{ns}_storage".replace("-", "_")
        try:
            storage = MongoStorage(client, name, Party.HELIOMARE, [CASES],
                                   FieldCipher(ctx.settings.field_key.get_secret_value()))
            await storage.ensure_schema()
            server = await storage.detect_server()
            lock = storage.write_lock
            db = storage.db
            gate = asyncio.Semaphore(ctx.settings.prefetch)
            latencies: list[float] = []
            unmarked: list[str] = []

            def turn():
                return lock if lock is not None else contextlib.nullcontext()

            async def one(i: int) -> None:
                docs = _hop_documents(i)
                async with gate:
                    started = time.perf_counter()
                    async with turn(), client.start_session() as session:
                        await session.start_transaction()
                        await db.inbox.find_one({"_id": docs["inbox"]["_id"]}, session=session)
                        await db.subjects.find_one({"_id": docs["case"]["subject"]}, session=session)
                        await db.cases.find_one({"_id": docs["case"]["_id"]}, session=session)
                        await db.subject_keys.find_one({"_id": docs["key"]["_id"]}, session=session)
                        await db.subject_keys.insert_one(docs["key"], session=session)
                        await db.cases.insert_one(docs["case"], session=session)
                        await db.outbox.insert_many([docs["outbox"]], session=session)
                        await db.processing_log.insert_many([docs["log"]], session=session)
                        await db.lifecycles.update_one({"_id": docs["lifecycle"]["_id"]},
                                                       {"$setOnInsert": docs["lifecycle"]}, upsert=True,
                                                       session=session)
                        await db.inbox.insert_one(docs["inbox"], session=session)
                        await session.commit_transaction()
                    # The relay, as it works under load: one query for pending records and one update
                    # marking a batch sent. Its batches are what accumulated since its last round; in the
                    # saturated hop that averages 4-5 records (its commands per message show it): here 4.
                    unmarked.append((docs["outbox"]["_id"], docs["key"]["_id"]))
                    if len(unmarked) >= RELAY_BATCH:
                        batch = [record for record, _ in unmarked]
                        keys = [key for _, key in unmarked]
                        unmarked.clear()
                        async with turn():
                            await db.outbox.find({"status": "pending", "next_attempt_at": {"$lte": datetime.now(UTC)}}
                                                 ).sort([("created_at", ASCENDING), ("_id", ASCENDING)]).limit(
                                100).to_list()
                            await db.subject_keys.find({"_id": {"$in": keys}}).to_list()  # the batch's data keys
                            sent_at = datetime.now(UTC)
                            await db.outbox.update_many({"_id": {"$in": batch}}, {
                                "$set": {"status": "sent", "sent_at": sent_at,
                                         "expire_at": sent_at + timedelta(days=30)},
                                "$inc": {"attempts": 1}, "$unset": {"last_error": ""}})
                    latencies.append(time.perf_counter() - started)

            await asyncio.gather(*(one(i) for i in range(ctx.sizes.warmup)))
            listener.counts.clear()
            started = time.perf_counter()
            await asyncio.gather(*(one(i) for i in range(ctx.sizes.storage_ops)))
            seconds = time.perf_counter() - started
            commands = dict(listener.counts)
            loaded = latency_summary(latencies)
            latencies.clear()
            for i in range(ctx.sizes.latency_messages):  # one at a time: the latency of one hop's database work
                await one(i)
        finally:
            with contextlib.suppress(Exception):
                if ctx.mongodb_url:
                    await client.drop_database(name)
            await client.close()
    n = ctx.sizes.storage_ops
    return {"per_second": round(rate(n, seconds), 1), "messages": n, "seconds": round(seconds, 3),
            "latency": latency_summary(latencies), "loaded_latency": loaded, "server": server,
            "db_commands_per_message": round(sum(commands.values()) / n, 2), "db_commands": commands}


# -- 4. full lifecycles ------------------------------------------------------------------------------


async def lifecycle(ctx: Context, run: int) -> dict[str, Any]:
    """Referral → acceptance → quote → approval → commission → start → progress → end → both invoices at
    WerkSaam, through intake, offer, trajectory and billing running as processes, played by the demo's
    scenario code (people answer as soon as the state they wait for shows; they poll every 0.1 s)."""
    from dev.scenario import TrajectoryPlan, synthetic_cases
    from infra.declare import declare_all, delete_all

    ns = ctx.namespace("life")
    span_file = ctx.log_dir / f"spans-{ns}.jsonl"
    settings = ctx.settings.model_copy(update={"namespace": ns})
    rng = random.Random(300 + run)
    cases = [c for c in synthetic_cases(rng, ctx.sizes.lifecycles * 3) if c.flaw is None][: ctx.sizes.lifecycles]
    for n, case in enumerate(cases):
        case.plan = "approve"
        case.trajectory = TrajectoryPlan(schedule="both", ending="paid_work",
                                         start=date(REPORT_YEAR, 1, 11) + timedelta(weeks=n % 20), weeks_run=13)
    with contextlib.redirect_stdout(io.StringIO()):
        await declare_all(settings)
    try:
        return await _lifecycles(ctx, settings, cases, span_file)
    finally:
        await delete_all(settings)
        span_file.unlink(missing_ok=True)


async def _lifecycles(ctx: Context, settings, cases, span_file) -> dict[str, Any]:
    from dev.scenario import play
    from infra.processes import ServiceProcess
    from infra.services import DEFINITIONS
    from shared.client import CommandClient
    from shared.staff import load_registers

    with contextlib.ExitStack() as stack:
        urls = {name: stack.enter_context(ctx.database(f"{settings.namespace}-{name}")) for name in DEFINITIONS}
        env = {"WERKBRUG_SPAN_FILE": str(span_file), "OTEL_TRACES_SAMPLER": "parentbased_always_on",
               "WERKBRUG_PREFETCH": str(ctx.settings.prefetch)}
        processes = [ServiceProcess(name, settings, urls[name], ctx.log_dir, extra_env=env) for name in DEFINITIONS]
        for p in processes:
            p.start()
        durations: list[float] = []
        commands = 0
        try:
            for p in processes:
                await p.wait_healthy()
            async with CommandClient(settings, actors=load_registers(settings)) as client:
                send = client.send

                async def counted(service, command):
                    nonlocal commands
                    commands += 1
                    return await send(service, command)

                client.send = counted  # type: ignore[method-assign]
                gate = asyncio.Semaphore(ctx.sizes.lifecycle_concurrency)

                async def one(i: int, case) -> None:
                    async with gate:
                        started = time.perf_counter()
                        await play(client, case, random.Random(i))
                        durations.append(time.perf_counter() - started)

                started = time.perf_counter()
                await asyncio.gather(*(one(i, c) for i, c in enumerate(cases)))
                seconds = time.perf_counter() - started
            events = await _outbox_counts(settings, urls)
        finally:
            for p in processes:
                p.stop()
        if ctx.mongodb_url:
            client = AsyncMongoClient(ctx.mongodb_url)
            for name in DEFINITIONS:
                await client.drop_database(settings.database_name(name))
            await client.close()
    done = [c for c in cases if c.outcome == "trajectory_ended"]
    n = len(cases)
    published = sum(events.values())
    return {
        "per_second": round(rate(len(done), seconds), 3), "lifecycles": n, "completed": len(done),
        "seconds": round(seconds, 2), "latency": latency_summary(durations),
        "concurrency": ctx.sizes.lifecycle_concurrency,
        # every message a lifecycle puts on the broker: events and retours (outboxes), commands and replies
        "messages_per_lifecycle": round((published + 2 * commands) / n, 1) if n else None,
        "events_and_retours": events, "commands": commands,
    }


async def _outbox_counts(settings, urls: dict[str, str]) -> dict[str, int]:
    counts = {}
    for name, url in urls.items():
        client = AsyncMongoClient(url)
        try:
            counts[name] = await client[settings.database_name(name)].outbox.count_documents({})
        finally:
            await client.close()
    return counts


def machine() -> dict[str, Any]:
    import platform

    return {"cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "load_average": [round(x, 2) for x in os.getloadavg()]}
