"""`make demo`: referral → quote → approval between WerkSaam and Heliomare, end to end.

On the embedded defaults it: makes sure RabbitMQ runs (the Makefile did), starts one embedded
MongoDB-compatible server per service, declares the topology, starts `intake` and `offer` as separate
processes, pushes a batch of synthetic referrals (valid and invalid) through to approval or refusal,
sends a few malformed messages to show how they are refused, and prints what happened and one
referral's trace as a tree. Set MONGODB_URL to use a real MongoDB instead.

    python -m infra.demo [--referrals 24] [--seed 7] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import random
import uuid
from pathlib import Path

import aio_pika
from faststream.rabbit import RabbitBroker
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from rich.tree import Tree

from infra.declare import declare_all, delete_all
from infra.processes import ROOT, ServiceProcess
from infra.scenario import play_all, synthetic_cases
from infra.services import DEFINITIONS
from shared.client import CommandClient
from shared.config import Settings
from shared.contracts.commands import GetReferral
from shared.messaging.topology import Topology
from shared.storage.embedded import embedded_mongodb

console = Console()
VAR = ROOT / "var" / "demo"


async def main(args: argparse.Namespace) -> int:
    VAR.mkdir(parents=True, exist_ok=True)
    span_file = VAR / "spans.jsonl"
    span_file.unlink(missing_ok=True)
    settings = Settings(WERKBRUG_NAMESPACE=args.namespace, WERKBRUG_SPAN_FILE=str(span_file))
    topology = Topology(settings.namespace, settings.delivery_limit)
    await delete_all(settings)
    await declare_all(settings)

    with contextlib.ExitStack() as stack:
        if settings.mongodb_url:
            urls = dict.fromkeys(DEFINITIONS, settings.mongodb_url)
            backend = "MongoDB at MONGODB_URL"
        else:
            urls = {name: stack.enter_context(embedded_mongodb(log_path=str(VAR / f"mongo-{name}.log")))
                    for name in DEFINITIONS}
            backend = "embedded mongoeco (one server per service)"
        console.print(f"[bold]werkbrug demo[/] · broker {redact(settings.amqp_url)} · database: {backend}")

        processes = [ServiceProcess(name, settings, urls[name], VAR,
                                    extra_env={"WERKBRUG_SPAN_FILE": str(span_file)}) for name in DEFINITIONS]
        for p in processes:
            p.log_path.unlink(missing_ok=True)
            p.start()
        try:
            for p in processes:
                await p.wait_healthy()
            console.print("services up: " + ", ".join(f"{p.name} (pid {p.proc.pid}, :{p.http_port}/health)"
                                                      for p in processes))
            async with CommandClient(settings) as client:
                cases = synthetic_cases(random.Random(args.seed), args.referrals)
                with Progress(console=console, transient=True) as progress:
                    task = progress.add_task("referrals", total=len(cases))
                    cases = await play_all(client, cases, args.seed, progress=lambda: progress.advance(task))
                deliveries = await collect_deliveries(client, cases)
            bad = await send_bad_messages(settings, topology)
            await asyncio.sleep(1.0)
            parked = await read_parking(settings, topology)
        finally:
            for p in processes:
                p.stop()
        report(cases, deliveries, bad, parked)
        show_trace(span_file, cases)
    if not args.keep:
        await delete_all(settings)
    failed = [c for c in cases if c.outcome is None]
    return 1 if failed else 0


def redact(url: str) -> str:
    if "@" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


async def collect_deliveries(client: CommandClient, cases) -> collections.Counter:
    """How every cross-party message the services sent was answered (retour outcomes)."""
    counts: collections.Counter = collections.Counter()
    for case in cases:
        if case.outcome in (None, "refused"):
            continue
        for service in DEFINITIONS:
            view = await client.send(service, GetReferral(referral_id=uuid.UUID(case.referral_id)))
            for d in (view.result or {}).get("deliveries", []):
                counts[(service, d["type"], (d["retour"] or {}).get("status", "awaiting retour"))] += 1
    return counts


async def send_bad_messages(settings: Settings, topology: Topology) -> list[tuple[str, str]]:
    """What a careless or hostile sender might put on the exchange; each must be refused, not lost."""
    broker = RabbitBroker(settings.amqp_url, logger=None)
    await broker.connect()
    good_id = str(uuid.uuid4())
    forged = {
        "id": good_id, "type": "referral.registered", "version": 1, "source": "heliomare",
        "time": "2026-11-28T12:00:00Z", "subject": None, "correlation_id": str(uuid.uuid4()), "data": {},
    }
    samples = [
        ("malformed JSON", b'{"id": "not json', "werksaam.referral.registered.v1", str(uuid.uuid4())),
        ("forged source (heliomare sends a WerkSaam event)", json.dumps(forged).encode(),
         "werksaam.referral.registered.v1", good_id),
        ("unknown field in data", json.dumps({**forged, "source": "werksaam", "data": {"shoe_size": 44}}).encode(),
         "werksaam.referral.registered.v1", good_id),
    ]
    try:
        for _, body, key, message_id in samples:
            await broker.publish(body, exchange=topology.events, routing_key=key, message_id=message_id,
                                 persist=True, mandatory=True, content_type="application/json")
    finally:
        await broker.stop()
    return [(label, key) for label, _, key, _ in samples]


async def read_parking(settings: Settings, topology: Topology) -> list[dict]:
    parked = []
    connection = await aio_pika.connect_robust(settings.amqp_url)
    async with connection:
        channel = await connection.channel()
        for name in DEFINITIONS:
            queue = await channel.get_queue(topology.parking_queue(name).name, ensure=False)
            while (message := await queue.get(no_ack=False, fail=False)) is not None:
                parked.append({"service": name, "reason": message.headers.get("x-werkbrug-reason"),
                               "routing_key": message.headers.get("x-werkbrug-original-routing-key")})
                await message.ack()  # the demo reads its own parking queue empty
    return parked


def report(cases, deliveries: collections.Counter, bad, parked) -> None:
    by_outcome = collections.Counter(c.outcome or "did not finish" for c in cases)
    table = Table(title="Referrals by final state (intake, WerkSaam)")
    table.add_column("state")
    table.add_column("count", justify="right")
    for state, n in sorted(by_outcome.items()):
        table.add_row(state, str(n))
    console.print(table)

    refused = [c for c in cases if c.outcome == "refused"]
    if refused:
        t = Table(title="Refusals at intake, with reason codes (no personal data kept)")
        t.add_column("referral")
        t.add_column("planted flaw")
        t.add_column("reasons")
        for c in refused:
            t.add_row((c.referral_id or "")[:8], c.flaw or "-", ", ".join(c.reasons))
        console.print(t)

    t = Table(title="Cross-party messages and their retours")
    t.add_column("sender")
    t.add_column("event")
    t.add_column("retour")
    t.add_column("count", justify="right")
    for (service, kind, outcome), n in sorted(deliveries.items()):
        t.add_row(service, kind, outcome, str(n))
    console.print(t)

    t = Table(title="Bad input: refused and dead-lettered (parking queues)")
    t.add_column("sent")
    t.add_column("routing key", no_wrap=True)
    t.add_column("parked by")
    t.add_column("reason")
    for (label, key), p in zip(bad, parked + [{}] * (len(bad) - len(parked)), strict=False):
        reason = ", ".join(sorted(set((p.get("reason") or "not found").split(","))))
        t.add_row(label, key, p.get("service", "?"), reason)
    console.print(t)


def show_trace(span_file: Path, cases) -> None:
    if not span_file.exists():
        console.print("[yellow]no spans were written[/]")
        return
    spans = [json.loads(line) for line in span_file.read_text().splitlines() if line.strip()]
    chosen = next((c for c in cases if c.plan == "reject_then_approve" and c.outcome == "quote_approved"), None)
    chosen = chosen or next((c for c in cases if c.outcome == "quote_approved"), None)
    if chosen is None:
        return
    traces = collections.Counter(s["trace_id"] for s in spans
                                 if s["attributes"].get("werkbrug.correlation_id") == chosen.referral_id)
    if not traces:
        return
    trace_id = traces.most_common(1)[0][0]
    in_trace = sorted((s for s in spans if s["trace_id"] == trace_id), key=lambda s: s["start"])
    # Show werkbrug's own steps (commands, handling, relay); FastStream's publish/process spans sit
    # between them and are folded into the step below them.
    by_id = {s["span_id"]: s for s in in_trace}
    steps = [s for s in in_trace if s["name"].split(" ", 1)[0] in DEFINITIONS]

    def step_parent(span: dict) -> str | None:
        parent = span["parent_id"]
        while parent in by_id and by_id[parent] not in steps:
            parent = by_id[parent]["parent_id"]
        return parent if parent in by_id else None

    children = collections.defaultdict(list)
    for s in steps:
        children[step_parent(s)].append(s)
    parties = {n: d(Settings()).party.value for n, d in DEFINITIONS.items()}
    root = Tree(f"[bold]trace {trace_id}[/] · referral {chosen.referral_id} · {len(in_trace)} spans, "
                f"{len(steps)} steps")

    def add(node: Tree, span: dict) -> None:
        service, step = span["name"].split(" ", 1)
        ms = (span["end"] - span["start"]) / 1e6
        outcome = span["attributes"].get("werkbrug.outcome", "")
        colour = "green" if outcome == "accepted" else "red" if outcome in ("rejected", "refused") else "dim"
        child = node.add(f"[cyan]{parties[service]}[/] / {service} / {step} [dim]{ms:.1f} ms[/] [{colour}]{outcome}[/]")
        for c in children.get(span["span_id"], []):
            add(child, c)

    for top in children[None]:
        add(root, top)
    console.print(root)


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--referrals", type=int, default=int(os.environ.get("DEMO_REFERRALS", "24")))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--namespace", default="werkbrug-demo")
    parser.add_argument("--keep", action="store_true", help="leave the demo's queues on the broker")
    raise SystemExit(asyncio.run(main(parser.parse_args())))


if __name__ == "__main__":
    cli()
