"""The flow of one referral (or one trace) across parties, from the processing logs.

Each service is asked for its own processing-log records (the `read_processing_log` query every service
answers), so the view needs no tracing backend: the records carry the W3C trace and span ids, what
message caused each processing and what it sent. A record is the child of the record that sent its
message; a record triggered by a person's command is a root. The outcome of each cross-party message
is the receiver's status (its retour: accepted or rejected); dead letters are read from the parking
queues (and left there). Rendered as a Rich tree for the terminal, and as an SVG sequence diagram for
a report or a ticket.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from html import escape

from rich.tree import Tree

from infra.dead_letters import ParkingQueues
from infra.services import DEFINITIONS
from shared.client import CommandClient
from shared.config import Settings
from shared.contracts.commands import ReadProcessingLog

TRACE_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass
class Step:
    """One processing (the records of all its subjects folded into one)."""

    service: str
    party: str
    operation: str
    message_id: str | None
    message_type: str | None
    status: str
    started_at: datetime
    time: datetime
    trace_id: str
    span_id: str
    activity_id: str
    emitted: list[str]
    foreign_party: str | None
    subjects: set[str] = field(default_factory=set)
    children: list[Step] = field(default_factory=list)

    @property
    def ms(self) -> float:
        return max((self.time - self.started_at).total_seconds() * 1000, 0.0)

    @property
    def step(self) -> str:
        return self.operation.split(".", 1)[-1]

    @property
    def crossed(self) -> bool:
        return self.foreign_party is not None and self.foreign_party != self.party


@dataclass
class Flow:
    key: str
    roots: list[Step]
    steps: list[Step]
    dead_letters: list[dict]

    @property
    def trace_ids(self) -> set[str]:
        return {s.trace_id for s in self.steps}


async def load_flow(settings: Settings, key: str, client: CommandClient | None = None,
                    include_reads: bool = False, actor: str | None = None) -> Flow:
    """`key` is a trace id (32 hex) or a referral id (UUID). Reads (queries) are processing too and are in
    the log, but they change nothing; the flow leaves them out unless `include_reads`. `actor`: who reads the
    processing logs (else the client's registers choose one)."""
    if TRACE_ID.match(key):
        query = ReadProcessingLog(trace_id=key, actor=actor)
    else:
        query = ReadProcessingLog(correlation_id=uuid.UUID(key), actor=actor)
    own_client = client is None
    client = client or CommandClient(settings)
    if own_client:
        await client.__aenter__()
    try:
        records = []
        for service in client.reachable(DEFINITIONS):  # a party's own tooling: its own services
            reply = await client.send(service, query.model_copy(update={"command_id": uuid.uuid4()}))
            if not reply.ok:
                raise FlowRefused(f"{service}: {', '.join(str(r) for r in reply.reasons)}")
            records += reply.result or []
    finally:
        if own_client:
            await client.__aexit__(None, None, None)
    steps = fold(records, include_reads)
    dead = await dead_letters(settings, key, actor, client.actors)
    return Flow(key, link(steps), steps, dead)



class FlowRefused(RuntimeError):
    """A service refused to give its part of the flow; the text holds its reason codes only."""


def fold(records: list[dict], include_reads: bool = False) -> list[Step]:
    """One step per processing: records of one span and message, one per subject, become one."""
    steps: dict[tuple, Step] = {}
    for r in records:
        if not include_reads and str(r.get("message_type") or "").startswith("query:"):
            continue
        k = (r["service"], r["span_id"], r["message_id"])
        if k not in steps:
            steps[k] = Step(
                service=r["service"], party=r["party"], operation=r["operation"], message_id=r["message_id"],
                message_type=r.get("message_type"), status=r["status"],
                started_at=datetime.fromisoformat(r["started_at"]), time=datetime.fromisoformat(r["time"]),
                trace_id=r["trace_id"], span_id=r["span_id"], activity_id=r["activity_id"],
                emitted=[str(e) for e in r.get("emitted", [])],
                foreign_party=(r.get("foreign") or {}).get("party"),
            )
        if r.get("subject"):  # a refused attempt about no subject the service knows has none
            steps[k].subjects.add(r["subject"])
    return sorted(steps.values(), key=lambda s: s.started_at)


def link(steps: list[Step]) -> list[Step]:
    sender: dict[str, Step] = {}
    for s in steps:
        for event_id in s.emitted:
            sender[event_id] = s
    roots = []
    for s in steps:
        parent = sender.get(s.message_id or "")
        if parent is not None and parent is not s:
            parent.children.append(s)
        else:
            roots.append(s)
    return roots


async def dead_letters(settings: Settings, key: str, actor: str | None = None, actors=None) -> list[dict]:
    """Parked messages of this referral (correlation id) or trace (W3C traceparent); looked at, not taken."""
    try:
        parked = await ParkingQueues(settings, actor=actor, actors=actors).list()
    except Exception:  # the view is still useful without the broker's parking queues
        return []

    def belongs(letter) -> bool:
        traceparent = str(letter.headers.get("traceparent", ""))
        return key == letter.correlation_id or bool(TRACE_ID.match(key) and f"-{key}-" in traceparent)

    return [letter.summary() for letter in parked if belongs(letter)]


# -- rendering ----------------------------------------------------------------------------------------


def outcome_label(step: Step) -> str:
    if step.message_type and step.message_type.startswith("retour."):
        return "retour received"
    if step.crossed:
        return "retour accepted" if step.status == "ok" else "retour rejected"
    return step.status


def as_tree(flow: Flow) -> Tree:
    parties = sorted({s.party for s in flow.steps})
    root = Tree(f"[bold]{flow.key}[/] · {len(flow.steps)} steps · parties {', '.join(parties)} · "
                f"trace {', '.join(sorted(flow.trace_ids)) or '-'}")

    def add(node: Tree, step: Step) -> None:
        colour = "green" if step.status == "ok" else "red"
        via = f"[dim]{step.message_type}[/] → " if step.message_type else ""
        child = node.add(f"[cyan]{step.party}[/] / {step.service} / {via}{step.step} "
                         f"[dim]{step.ms:.0f} ms[/] [{colour}]{outcome_label(step)}[/]")
        for c in step.children:
            add(child, c)

    for step in flow.roots:
        add(root, step)
    if flow.dead_letters:
        dl = root.add("[red]dead letters[/]")
        for d in flow.dead_letters:
            dl.add(f"{d['service']}: {d['routing_key']} [red]{d['reason']}[/]")
    return root


def as_json(flow: Flow) -> str:
    def step(s: Step) -> dict:
        return {"party": s.party, "service": s.service, "step": s.step, "message_type": s.message_type,
                "status": s.status, "outcome": outcome_label(s), "ms": round(s.ms, 1), "trace_id": s.trace_id,
                "span_id": s.span_id, "activity_id": s.activity_id, "children": [step(c) for c in s.children]}

    return json.dumps({"key": flow.key, "trace_ids": sorted(flow.trace_ids), "flow": [step(r) for r in flow.roots],
                       "dead_letters": flow.dead_letters}, indent=2)


def as_svg(flow: Flow) -> str:
    """A sequence diagram: a lifeline per service (grouped by party), a row per step, arrows for messages."""
    services = list(dict.fromkeys((s.party, s.service) for s in flow.steps))  # in order of first appearance
    col = {svc: 180 + i * 340 for i, (_, svc) in enumerate(services)}
    row_h, top = 34, 90
    parent_of: dict[int, Step] = {}
    for s in flow.steps:
        for c in s.children:
            parent_of[id(c)] = s
    height = top + row_h * (len(flow.steps) + 1) + 40 + 20 * len(flow.dead_letters)
    width = 180 + 340 * max(len(services), 1) + 200
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="Helvetica, Arial, sans-serif" font-size="12">',
           '<defs><marker id="a" markerWidth="10" markerHeight="7" refX="10" refY="3.5" orient="auto">'
           '<polygon points="0 0, 10 3.5, 0 7" fill="#333"/></marker></defs>',
           f'<text x="20" y="24" font-size="15" font-weight="bold">werkbrug flow {escape(flow.key)}</text>',
           f'<text x="20" y="44" fill="#666">trace {escape(", ".join(sorted(flow.trace_ids)))}</text>']
    for party, svc in services:
        x = col[svc]
        out.append(f'<rect x="{x - 80}" y="56" width="160" height="26" rx="4" fill="#eef" stroke="#99b"/>')
        out.append(f'<text x="{x}" y="73" text-anchor="middle">{escape(party)} / {escape(svc)}</text>')
        out.append(f'<line x1="{x}" y1="82" x2="{x}" y2="{height - 30}" stroke="#bbb" stroke-dasharray="4 3"/>')
    for i, s in enumerate(flow.steps):
        y = top + row_h * (i + 1)
        x = col[s.service]
        colour = "#2a7" if s.status == "ok" else "#c33"
        parent = parent_of.get(id(s))
        label = escape(f"{s.message_type or ''} → {s.step} ({s.ms:.0f} ms, {outcome_label(s)})")
        if parent is not None and parent.service != s.service:
            px = col[parent.service]
            out.append(f'<line x1="{px}" y1="{y}" x2="{x}" y2="{y}" stroke="#333" marker-end="url(#a)"/>')
            out.append(f'<text x="{(px + x) / 2}" y="{y - 5}" text-anchor="middle" fill="{colour}">{label}</text>')
        else:
            out.append(f'<circle cx="{x}" cy="{y}" r="5" fill="{colour}"/>')
            out.append(f'<text x="{x + 10}" y="{y + 4}" fill="{colour}">{label}</text>')
    y = top + row_h * (len(flow.steps) + 1)
    for d in flow.dead_letters:
        out.append(f'<text x="20" y="{y}" fill="#c33">dead letter at {escape(d["service"])}: '
                   f'{escape(str(d["routing_key"]))} ({escape(str(d["reason"]))})</text>')
        y += 20
    out.append("</svg>")
    return "\n".join(out)

