"""`make demo`: referral → quote → approval → trajectory → invoices → yearly report → data-subject
requests, end to end.

On the embedded defaults it: makes sure RabbitMQ runs (the Makefile did), starts one embedded
MongoDB-compatible server per service, declares the topology, starts `intake`, `offer`, `trajectory`,
`billing` and `subject_rights` as separate processes, pushes a batch of synthetic referrals (valid and
invalid) through refusal, decline, or approval and then the trajectory's start, progress and end and its
invoices (in advance only, afterwards only, partly both; stopped early; a rejected quote followed by a new
one), publishes the yearly report to WerkSaam, takes an access request for one person and an erasure
request for another whose trajectory ended with invoices, sends a few malformed messages to show how they
are refused, and prints what happened, invoiced versus approved, the report (also as
var/demo/report-<year>.svg), one referral's trace as a tree, and the answers to the two requests (the
letters to the persons, in Dutch, as var/demo/letter-<right>-<id>.html). Set MONGODB_URL to use a real MongoDB instead.

    python -m dev.demo [--referrals 24] [--seed 7] [--keep]
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
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import aio_pika
from faststream.rabbit import RabbitBroker
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from cli.render import report_view
from cli.render.letters import Letterhead, request_letter
from cli.render.report_console import print_report
from cli.render.subject_request_console import print_subject_request
from cli.render.trace_view import as_svg, as_tree, load_flow
from dev.scenario import REPORT_YEAR, play_all, synthetic_cases, with_trajectories
from infra.dead_letters import ParkingQueues
from infra.declare import declare_all, delete_all
from infra.processes import ROOT, ServiceProcess
from infra.services import DEFINITIONS
from services.trajectory.report import closes_on
from shared.client import CommandClient
from shared.config import Settings
from shared.contracts.commands import (
    GetReferral,
    GetReport,
    GetSubjectRequest,
    IdentityCheck,
    PublishReport,
    RecordConfidentialityStatement,
    SubmitSubjectRequest,
)
from shared.contracts.events import Right
from shared.messaging.topology import Topology
from shared.staff import load_registers
from shared.storage.embedded import embedded_mongodb

console = Console()
VAR = ROOT / "var" / "demo"
PRIVACY_DESK = "privacy.desk"  # the staff id the demo's privacy desk works under (art 8)
PRIVACY_OFFICER = "privacy.werksaam"  # who records the desk's confidentiality statement (infra/staff.py)
SUBJECT_REQUEST_WAIT = 60.0  # seconds for every service to answer a data-subject request


async def main(args: argparse.Namespace) -> int:
    VAR.mkdir(parents=True, exist_ok=True)
    span_file = VAR / "spans.jsonl"
    span_file.unlink(missing_ok=True)
    # The demo's year has not ended yet: the services take as today the day it may be published (art 6.2).
    settings = Settings(WERKBRUG_NAMESPACE=args.namespace, WERKBRUG_SPAN_FILE=str(span_file),
                        WERKBRUG_REPORT_TODAY=closes_on(REPORT_YEAR))
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
        console.print(f"[bold]werkbrug demo[/] · broker {redact(settings.broker_url())} · database: {backend}")

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
            async with CommandClient(settings, actors=load_registers(settings)) as client:
                rng = random.Random(args.seed)
                cases = with_trajectories(synthetic_cases(rng, args.referrals), rng)
                with Progress(console=console, transient=True) as progress:
                    task = progress.add_task("referrals", total=len(cases))
                    cases = await play_all(client, cases, args.seed, progress=lambda: progress.advance(task))
                report_data = await publish_report(client, REPORT_YEAR)
                money = await collect_money(client, cases)
                deliveries = await collect_deliveries(client, cases)
                chosen = chosen_referral(cases)
                flow = await load_flow(settings, chosen.referral_id, client=client) if chosen else None
                requests = await exercise_subject_rights(settings, topology, client, cases, chosen)
            bad = await send_bad_messages(settings, topology)
            await asyncio.sleep(1.0)
            parked = await read_parking(settings, topology)
        finally:
            for p in processes:
                p.stop()
        report(cases, deliveries, bad, parked)
        show_money(money)
        show_report(report_data)
        if flow is not None:
            show_flow(flow, VAR / f"flow-{flow.key}.svg")
        requests_ok = show_subject_requests(requests)
    if not args.keep:
        await delete_all(settings)
    failed = [c for c in cases if c.outcome is None]
    return 1 if failed or not requests_ok else 0


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
                waiting = "awaiting retour" if d["expects_retour"] else "within the party: no retour"
                counts[(service, d["type"], (d["retour"] or {}).get("status", waiting))] += 1
    return counts


async def publish_report(client: CommandClient, year: int) -> dict | None:
    """Heliomare publishes the yearly report; return it as WerkSaam received it."""
    published = await client.send("trajectory", PublishReport(year=year))
    if not published.ok:
        console.print(f"[red]report not published: {published.reasons}[/]")
        return None
    deadline = asyncio.get_running_loop().time() + 30
    while asyncio.get_running_loop().time() < deadline:
        received = await client.send("intake", GetReport(year=year))
        if received.ok and received.result["report_id"] == published.result["report_id"]:
            return received.result
        await asyncio.sleep(0.1)
    console.print("[red]WerkSaam did not receive the report[/]")
    return None


async def collect_money(client: CommandClient, cases) -> list[dict]:
    """Per referral with a trajectory: the branch, approved (WerkSaam), invoiced (Heliomare billing) and
    invoiced as WerkSaam received and checked it."""
    # Amounts per referral are personal data: finance reads them under a confidentiality statement (art 8).
    for service, finance, officer in (("intake", "fin.werksaam", PRIVACY_OFFICER),
                                      ("billing", "fin.heliomare", "privacy.heliomare")):
        signed = await client.send(service, RecordConfidentialityStatement(
            staff=finance, signed_on=datetime.now(UTC).date(), actor=officer))
        if not signed.ok:
            console.print(f"[red]confidentiality statement refused: {', '.join(str(r) for r in signed.reasons)}[/]")
    rows = []
    for case in cases:
        if case.trajectory is None or case.outcome in (None, "refused", "declined"):
            continue
        rid = uuid.UUID(case.referral_id)
        intake = (await client.send("intake", GetReferral(referral_id=rid, detail=True,
                                                          actor="fin.werksaam"))).result or {}
        billing = (await client.send("billing", GetReferral(referral_id=rid, detail=True,
                                                            actor="fin.heliomare"))).result or {}
        rows.append({
            "schedule": case.trajectory.schedule.replace("_only", ""), "ending": case.trajectory.ending,
            "requoted": case.plan == "reject_then_approve",
            "approved": Decimal(intake.get("approved_amount") or 0),
            "invoiced": Decimal(billing.get("invoiced_total") or 0),
            "received": Decimal(intake.get("invoiced_total") or 0),
            "invoices": len(billing.get("invoices", [])),
            "numbers": [i["number"] for i in billing.get("invoices", [])],
        })
    return rows


async def send_bad_messages(settings: Settings, topology: Topology) -> list[tuple[str, str, str]]:
    """What a careless or hostile sender might put on the exchange; each must be refused, not lost."""
    broker = RabbitBroker(settings.broker_url(), logger=None)
    await broker.connect()
    good_id, other_id = str(uuid.uuid4()), str(uuid.uuid4())
    forged = {
        "id": good_id, "type": "referral.registered", "version": 2, "source": "heliomare", "recipient": "heliomare",
        "time": "2026-11-28T12:00:00Z", "subject": None, "correlation_id": str(uuid.uuid4()), "data": {},
    }
    samples = [
        ("malformed JSON", b'{"id": "not json', "werksaam.heliomare.referral.registered.v2", str(uuid.uuid4())),
        ("forged source (heliomare sends a WerkSaam event)", json.dumps(forged).encode(),
         "werksaam.heliomare.referral.registered.v2", good_id),
        ("unknown field in data", json.dumps({**forged, "id": other_id, "source": "werksaam",
                                               "data": {"shoe_size": 44}}).encode(),
         "werksaam.heliomare.referral.registered.v2", other_id),
    ]
    try:
        for _, body, key, message_id in samples:
            await broker.publish(body, exchange=topology.events, routing_key=key, message_id=message_id,
                                 persist=True, mandatory=True, content_type="application/json")
    finally:
        await broker.stop()
    return [(label, key, message_id) for label, _, key, message_id in samples]


async def read_parking(settings: Settings, topology: Topology) -> list[dict]:
    """What the broker parked, with the reasons each service recorded; then the demo empties the queues."""
    parked = [letter.summary() for letter in await ParkingQueues(settings, actors=load_registers(settings)).list()]
    connection = await aio_pika.connect_robust(settings.broker_url())
    async with connection:
        channel = await connection.channel()
        for name in DEFINITIONS:
            queue = await channel.get_queue(topology.parking_queue(name).name, ensure=False)
            await queue.purge()  # the demo reads its own parking queues empty
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
    for label, key, message_id in bad:
        p = next((p for p in parked if p.get("message_id") == message_id), {})
        reason = ", ".join(sorted(set((p.get("reason") or "not found").split(","))))
        t.add_row(label, key, p.get("service", "?"), reason)
    console.print(t)


def show_money(rows: list[dict]) -> None:
    t = Table(title="Invoiced versus approved, euros excl. VAT (art 7: never more than approved)")
    for column in ("schedule", "ending", "n", "re-quoted", "approved", "invoiced", "at WerkSaam"):
        t.add_column(column, justify="left" if column in ("schedule", "ending") else "right")
    branches: dict[tuple[str, str], list[dict]] = collections.defaultdict(list)
    for row in rows:
        branches[(row["schedule"], row["ending"])].append(row)

    def money(members: list[dict], key: str) -> str:
        return f"{sum((r[key] for r in members), Decimal(0)):,.2f}"

    for (schedule, ending), members in sorted(branches.items()):
        t.add_row(schedule, ending, str(len(members)), str(sum(r["requoted"] for r in members)),
                  money(members, "approved"), money(members, "invoiced"), money(members, "received"))
    t.add_row("[bold]total[/]", "", str(len(rows)), str(sum(r["requoted"] for r in rows)),
              *(f"[bold]{money(rows, k)}[/]" for k in ("approved", "invoiced", "received")))
    console.print(t)
    over = [r for r in rows if r["invoiced"] > r["approved"] or r["received"] != r["invoiced"]]
    numbers = sorted(n for r in rows for n in r["numbers"])
    gap_free = numbers == [f"{REPORT_YEAR}-{i:06d}" for i in range(1, len(numbers) + 1)]
    console.print(f"{len(numbers)} invoices, numbers {numbers[0] if numbers else '-'} … "
                  f"{numbers[-1] if numbers else '-'}: {'gap-free' if gap_free else '[red]NOT gap-free[/]'}; "
                  f"trajectories invoiced above approved or not matching WerkSaam's books: {len(over)}")


def show_report(data: dict | None) -> None:
    if data is None:
        return
    console.print("[dim]as WerkSaam received it:[/]")
    print_report(console, data)
    chart = VAR / f"report-{data['year']}.svg"
    chart.write_text(report_view.svg_chart(data))
    console.print(f"chart: {chart.relative_to(ROOT)}")


def chosen_referral(cases):
    """The referral whose flow is shown: one that went through a rejected quote and ended, if any."""
    ended = [c for c in cases if c.outcome == "trajectory_ended"]
    return next((c for c in ended if c.plan == "reject_then_approve"), None) or next(iter(ended), None)


def show_flow(flow, svg_path: Path) -> None:
    console.print(as_tree(flow))
    svg_path.write_text(as_svg(flow))
    console.print(f"[dim]the same flow as a sequence diagram: {svg_path.relative_to(ROOT)} · against a running "
                  f"deployment: werkbrug trace {flow.key} --svg flow.svg[/]")


# -- data-subject rights (GDPR art 15-21, agreement art 10) ------------------------------------------------


async def exercise_subject_rights(settings: Settings, topology: Topology, client: CommandClient, cases,
                                  shown) -> list[dict]:
    """The privacy desk takes an access request for one person and an erasure request for another whose
    trajectory ended with invoices (so intake and billing keep what the law requires, with its ground). A
    malformed message about the second person is parked at offer first: the erasure must destroy it too.
    Returns each request as `GetSubjectRequest` shows it once every service answered (or as far as it got)."""
    ended = [c for c in cases if c.outcome == "trajectory_ended" and c.trajectory is not None]
    erase = next((c for c in ended if c is not shown and c.trajectory.schedule == "both"), None) or next(
        (c for c in ended if c is not shown), None)
    access = next((c for c in cases if c is not erase and c.outcome in {"trajectory_ended", "trajectory_running"}),
                  None)
    if erase is None or access is None:
        console.print("[red]no persons with a trajectory to make data-subject requests for[/]")
        return []
    await park_a_dead_letter_about(settings, topology, erase.command)
    # The answers hold personal data: the desk reads them under a confidentiality statement (art 8).
    signed = await client.send("subject_rights", RecordConfidentialityStatement(
        staff=PRIVACY_DESK, signed_on=datetime.now(UTC).date(), actor=PRIVACY_OFFICER))  # never for oneself
    if not signed.ok:
        console.print(f"[red]confidentiality statement refused: {', '.join(str(r) for r in signed.reasons)}[/]")
    identity = IdentityCheck(method="id_document_at_desk", verified_by=PRIVACY_DESK, verified_at=datetime.now(UTC))
    request_ids = []
    for right, case in ((Right.ACCESS, access), (Right.ERASURE, erase)):
        reply = await client.send("subject_rights", SubmitSubjectRequest(bsn=case.command.bsn, right=right,
                                                                          identity=identity, actor=PRIVACY_DESK))
        if not reply.ok:
            console.print(f"[red]{right.value} request refused: {', '.join(str(r) for r in reply.reasons)}[/]")
            continue
        request_ids.append(uuid.UUID(reply.result["request_id"]))
    return list(await asyncio.gather(*(answered(client, rid, SUBJECT_REQUEST_WAIT) for rid in request_ids)))


async def park_a_dead_letter_about(settings: Settings, topology: Topology, person) -> None:
    """A referral that breaks the contract (no envelope), carrying the person's BSN: offer parks it."""
    parking = topology.parking_queue("offer").name
    before = await queue_depth(settings, parking)
    broker = RabbitBroker(settings.broker_url(), logger=None)
    await broker.connect()
    try:
        body = json.dumps({"id": str(uuid.uuid4()), "type": "referral.registered", "bsn": person.bsn}).encode()
        await broker.publish(body, exchange=topology.events, routing_key="werksaam.heliomare.referral.registered.v2",
                             message_id=str(uuid.uuid4()), persist=True, mandatory=True,
                             content_type="application/json")
    finally:
        await broker.stop()
    deadline = asyncio.get_running_loop().time() + 10
    while asyncio.get_running_loop().time() < deadline:
        if await queue_depth(settings, parking) > before:
            return
        await asyncio.sleep(0.1)
    console.print("[yellow]the malformed message about the person was not parked at offer within 10 s[/]")


async def queue_depth(settings: Settings, name: str) -> int:
    connection = await aio_pika.connect(settings.broker_url())
    async with connection:
        queue = await (await connection.channel()).declare_queue(name, passive=True)
        return queue.declaration_result.message_count or 0


async def answered(client: CommandClient, request_id: uuid.UUID, within: float) -> dict:
    """The request once every service answered it; after `within` seconds, as far as it got."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        reply = await client.send("subject_rights", GetSubjectRequest(request_id=request_id, actor=PRIVACY_DESK))
        if not reply.ok:
            raise SystemExit(f"request {request_id} could not be read: {', '.join(str(r) for r in reply.reasons)}")
        view = reply.result
        if view["status"] != "open" or asyncio.get_running_loop().time() > deadline:
            return view
        await asyncio.sleep(0.2)


def show_subject_requests(requests: list[dict]) -> bool:
    """Print each request's answers; write the letter to the person. False when one is not complete or an
    erasure could not be verified."""
    if not requests:
        return False
    console.rule("Data-subject requests (GDPR art 15-21, agreement art 10)")
    ok = True
    for view in requests:
        print_subject_request(console, view)
        if view["status"] != "completed":
            silent = [s["service"] for s in view["services"] if not s["answered"]]
            logs = ", ".join(f"var/demo/{s}.log" for s in silent)
            console.print(f"[bold red]not answered by every service within {SUBJECT_REQUEST_WAIT:.0f} s: "
                          f"still waiting for {', '.join(silent)} (see {logs})[/]")
            ok = False
            continue
        document = VAR / f"letter-{view['right']}-{view['request_id']}.html"
        document.touch(mode=0o600, exist_ok=True)  # it holds the person's data
        document.write_text(request_letter(view, "nl", Letterhead()), encoding="utf-8")
        console.print(f"the letter to the person (Dutch): {document.relative_to(ROOT)} · against a running "
                      f"deployment: werkbrug subject-request letter {view['request_id']} --pdf letter.pdf")
        if view["right"] == Right.ERASURE and not view["erasure_verified"]:
            ok = False
    return ok


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--referrals", type=int, default=int(os.environ.get("DEMO_REFERRALS", "32")))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--namespace", default="werkbrug-demo")
    parser.add_argument("--keep", action="store_true", help="leave the demo's queues on the broker")
    raise SystemExit(asyncio.run(main(parser.parse_args())))


if __name__ == "__main__":
    cli()
