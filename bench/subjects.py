"""Stage 6: data-subject access and erasure across every service, with many subjects stored (issue 8 item 6).

1. Templates: a few people through the five services as processes (the demo's scenario code).
2. Seeding: `bench.seed` copies them into `subjects` data subjects per holder database (intake, offer,
   trajectory, billing), in bulk; the services are then started (again) on the seeded databases.
3. Access, one request at a time, for random seeded subjects: `SubmitSubjectRequest` to `subject_rights`
   through `CommandClient`; the latency is submit → the request completed (the last service's answer
   recorded: its `completed_at`), read from the subject_rights database (the driver polls the database,
   not the service, so the polling adds no work to the service measured).
4. Erasure, one at a time, for other subjects (an erasure destroys its subject).
5. Access with `subject_concurrency` requests in flight: requests completed per second.
6. The floor, for the same subjects as 3: what a request cannot do without, one processing-log read by
   subject per holder (the same query, index and limit as `MongoUnitOfWork.read_processing_log`), the
   four in parallel, straight through PyMongo.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import random
import shutil
import statistics
import time
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, AsyncMongoClient

from bench.harness import Context
from bench.seed import HOLDERS, Batch, Cloner, capture, new_bsns
from bench.stats import latency_summary, rate
from shared.contracts.commands import IdentityCheck, SubmitSubjectRequest
from shared.contracts.events import Right
from shared.storage.embedded import embedded_mongodb

LOG_LIMIT = 1000  # the responder's read (shared.privacy.subject_data: ReadProcessingLog(limit=1000))


def _identity() -> IdentityCheck:
    return IdentityCheck(method="id_document_at_desk", verified_by="bench.desk", verified_at=datetime.now(UTC))


async def subject_requests(ctx: Context, run: int) -> dict[str, Any]:
    from infra.declare import declare_all, delete_all

    s = ctx.sizes
    ns = ctx.namespace("subj")
    settings = ctx.settings.model_copy(update={"namespace": ns})
    rng = random.Random(600 + run)
    with contextlib.redirect_stdout(io.StringIO()):
        await declare_all(settings)
    dump_dir = ctx.out / "seed" / ns
    try:
        templates, template_seconds = await _templates(ctx, settings, rng)
        started = time.perf_counter()
        cloner, batch = Cloner(settings), Batch(settings)
        taken = {t.bsn for t in templates}
        people: list[tuple[str, str]] = []
        for i, bsn in enumerate(new_bsns(rng, s.subjects, taken)):
            subject, docs = cloner.clone(templates[i % len(templates)], bsn)
            batch.add(docs)
            people.append((bsn, subject))
        clone_seconds = time.perf_counter() - started
        seed = {"subjects": s.subjects, "templates": len(templates),
                "documents_per_template": [t.count() for t in templates],
                "documents": batch.counts(), "template_seconds": round(template_seconds, 1),
                "clone_seconds": round(clone_seconds, 1)}
        print(f"    seeding {s.subjects} subjects from {len(templates)} template people: "
              f"{sum(sum(c.values()) for c in seed['documents'].values())} documents "
              f"(built in {clone_seconds:.0f}s)", flush=True)
        return await _measure(ctx, settings, batch, people, seed, dump_dir, rng)
    finally:
        await delete_all(settings)
        shutil.rmtree(dump_dir, ignore_errors=True)


async def _templates(ctx: Context, settings, rng: random.Random):
    """Play `subject_templates` people through the services; their documents, and how long it took."""
    from dev.scenario import play_all, synthetic_cases, with_trajectories
    from infra.services import DEFINITIONS
    from shared.client import CommandClient
    from shared.privacy.bsn import is_valid_bsn
    from shared.privacy.pseudonym import Pseudonymiser
    from shared.staff import load_registers

    started = time.perf_counter()
    cases = with_trajectories(synthetic_cases(rng, ctx.sizes.subject_templates), rng)
    cases = [c for c in cases if is_valid_bsn(c.command.bsn)]
    pseudonymise = Pseudonymiser(settings.pseudonym_key.get_secret_value())
    with contextlib.ExitStack() as stack:
        urls = {name: stack.enter_context(ctx.database(f"{settings.namespace}-t-{name}")) for name in DEFINITIONS}
        async with _services(ctx, settings, urls, "t"):
            async with CommandClient(settings, actors=load_registers(settings)) as client:
                await play_all(client, cases, seed=rng.randrange(10**6))
            templates = await capture(settings, urls, [(c.command.bsn, pseudonymise(c.command.bsn))
                                                       for c in cases])
        if ctx.mongodb_url:
            await _drop(ctx.mongodb_url, settings)
    return templates, time.perf_counter() - started


@contextlib.asynccontextmanager
async def _services(ctx: Context, settings, urls: dict[str, str], tag: str):
    from infra.processes import ServiceProcess
    from infra.services import DEFINITIONS

    log_dir = ctx.log_dir / f"{settings.namespace}-{tag}"
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {"OTEL_TRACES_SAMPLER": "parentbased_always_on", "WERKBRUG_PREFETCH": str(ctx.settings.prefetch)}
    processes = [ServiceProcess(name, settings, urls[name], log_dir, extra_env=env) for name in DEFINITIONS]
    for p in processes:
        p.start()
    try:
        for p in processes:
            await p.wait_healthy(within=600)  # on seeded databases, start-up builds the indexes
        yield
    finally:
        for p in processes:
            p.stop()


async def _drop(url: str, settings) -> None:
    from infra.services import DEFINITIONS

    client = AsyncMongoClient(url)
    try:
        for name in DEFINITIONS:
            await client.drop_database(settings.database_name(name))
    finally:
        await client.close()


async def _measure(ctx: Context, settings, batch: Batch, people, seed: dict[str, Any], dump_dir,
                   rng: random.Random) -> dict[str, Any]:
    from infra.services import DEFINITIONS
    from shared.client import CommandClient
    from shared.staff import load_registers

    s = ctx.sizes
    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        if ctx.mongodb_url:
            urls = {name: ctx.mongodb_url for name in DEFINITIONS}
            for service in HOLDERS:
                await batch.insert(ctx.mongodb_url, service)
        else:  # each embedded server inserts its dump in-process before it listens; the servers load in parallel
            servers = {name: embedded_mongodb(log_path=str(ctx.log_dir / f"mongo-{settings.namespace}-{name}.log"),
                                              load=str(batch.write_dump(dump_dir, name)) if name in HOLDERS else None,
                                              timeout=3600)
                       for name in DEFINITIONS}
            started_urls = await asyncio.gather(*(asyncio.to_thread(stack.enter_context, server)
                                                  for server in servers.values()))
            urls = dict(zip(servers, started_urls, strict=True))
        seed["load_seconds"] = round(time.perf_counter() - started, 1)
        batch.docs.clear()
        try:
            started = time.perf_counter()
            async with _services(ctx, settings, urls, "s"):
                seed["start_seconds"] = round(time.perf_counter() - started, 1)
                print(f"    seeded and started in {seed['load_seconds'] + seed['start_seconds']:.0f}s", flush=True)
                chosen = rng.sample(people, s.subject_access + s.subject_erasures + s.subject_parallel + 2)
                access = chosen[:s.subject_access]
                erase = chosen[s.subject_access:s.subject_access + s.subject_erasures]
                parallel = chosen[s.subject_access + s.subject_erasures:-2]
                warm = chosen[-2:]
                probe = _Probe(settings, urls)
                try:
                    async with CommandClient(settings, timeout=120, actors=load_registers(settings)) as client:
                        for bsn, _ in warm:
                            await _request(client, probe, bsn, Right.ACCESS)
                        single = [await _request(client, probe, bsn, Right.ACCESS) for bsn, _ in access]
                        erasures = [await _request(client, probe, bsn, Right.ERASURE) for bsn, _ in erase]
                        loaded, seconds = await _parallel(client, probe, parallel, s.subject_concurrency)
                    floor = [await probe.floor(subject) for _, subject in access]
                    held = await probe.held([subject for _, subject in access])
                finally:
                    await probe.close()
        finally:
            if ctx.mongodb_url:
                await _drop(ctx.mongodb_url, settings)
    return _result(seed, single, erasures, loaded, seconds, floor, held)


class _Probe:
    """The driver's own PyMongo clients: the floor's reads, and the request records of subject_rights."""

    def __init__(self, settings, urls: dict[str, str]) -> None:
        self.settings = settings
        self.clients = {name: AsyncMongoClient(url, tz_aware=True) for name, url in urls.items()}

    def db(self, service: str):
        return self.clients[service][self.settings.database_name(service)]

    async def request(self, request_id: str) -> dict[str, Any] | None:
        return await self.db("subject_rights").requests.find_one(
            {"_id": request_id}, {"status": 1, "received_at": 1, "completed_at": 1, "asked": 1})

    async def floor(self, subject: str) -> float:
        async def read(service: str) -> int:
            cursor = (self.db(service).processing_log.find({"subject": subject})
                      .sort([("time", ASCENDING), ("_id", ASCENDING)]).limit(LOG_LIMIT))
            return len(await cursor.to_list())

        started = time.perf_counter()
        await asyncio.gather(*(read(service) for service in HOLDERS))
        return time.perf_counter() - started

    async def held(self, subjects: list[str]) -> dict[str, float]:
        """Median processing-log records per subject in each holder (what an access answer reads)."""
        out = {}
        for service in HOLDERS:
            counts = [await self.db(service).processing_log.count_documents({"subject": s}) for s in subjects]
            out[service] = statistics.median(counts) if counts else 0
        return out

    async def close(self) -> None:
        for client in self.clients.values():
            await client.close()


async def _request(client, probe: _Probe, bsn: str, right: Right, within: float = 300.0) -> dict[str, Any]:
    """Submit, then wait until the request is completed; times on the driver's clock (same machine)."""
    submitted = time.time()
    reply = await client.send("subject_rights", SubmitSubjectRequest(bsn=bsn, right=right, identity=_identity()))
    if not reply.ok:
        raise RuntimeError(f"subject request refused: {reply.reasons}")
    request_id = reply.result["request_id"]
    replied = time.time()
    deadline = time.monotonic() + within
    while True:
        doc = await probe.request(request_id)
        if doc and doc.get("status") == "completed":
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"{right.value} request {request_id} not completed within {within:.0f}s")
        await asyncio.sleep(0.02)
    received = doc["received_at"].timestamp()
    return {"seconds": doc["completed_at"].timestamp() - submitted, "submit_reply": replied - submitted,
            "answers": {a["service"]: a["answered_at"].timestamp() - received for a in doc["asked"]}}


async def _parallel(client, probe: _Probe, people, concurrency: int) -> tuple[list[dict[str, Any]], float]:
    gate = asyncio.Semaphore(concurrency)

    async def one(bsn: str) -> dict[str, Any]:
        async with gate:
            return await _request(client, probe, bsn, Right.ACCESS)

    started = time.perf_counter()
    results = await asyncio.gather(*(one(bsn) for bsn, _ in people))
    return list(results), time.perf_counter() - started


def _per_service(results: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per holder, submit-received → its answer recorded at subject_rights (p50/p99, ms)."""
    services = sorted({name for r in results for name in r["answers"]})
    return {name: latency_summary([r["answers"][name] for r in results if name in r["answers"]])
            for name in services}


def _result(seed, single, erasures, loaded, seconds, floor, held) -> dict[str, Any]:
    access = latency_summary([r["seconds"] for r in single])
    return {
        "per_second": round(rate(len(loaded), seconds), 3), "requests": len(loaded), "seconds": round(seconds, 2),
        "latency": access, "erasure_latency": latency_summary([r["seconds"] for r in erasures]),
        "loaded_latency": latency_summary([r["seconds"] for r in loaded]),
        "floor_latency": latency_summary(floor),
        "submit_reply": latency_summary([r["submit_reply"] for r in single]),
        "access_by_service": _per_service(single), "erasure_by_service": _per_service(erasures),
        "log_records_per_subject": held, "seed": seed, "when": datetime.now(UTC).isoformat(timespec="seconds"),
    }
