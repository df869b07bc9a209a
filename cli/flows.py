"""Flows and the processing log: `werkbrug trace` and `werkbrug log` (privacy officer, operator)."""

import json
import re
import uuid
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cli.app import _check_key, _read_all, _run, _utc, actor, app, console, err
from cli.render.trace_view import as_json, as_svg, as_tree, load_flow
from shared.config import get_settings
from shared.contracts.commands import (
    ReadProcessingLog,
)

PANEL = "Privacy officer and operator: flows and the processing log"

@app.command(rich_help_panel=PANEL)
def trace(
    key: Annotated[str, typer.Argument(help="A trace id (32 hex) or a referral id (UUID).")],
    svg: Annotated[Path | None, typer.Option(help="Also write the flow as an SVG sequence diagram.")] = None,
    as_json_: Annotated[bool, typer.Option("--json", help="Print JSON instead of a tree.")] = False,
    reads: Annotated[bool, typer.Option(help="Include reads (queries), which change nothing.")] = False,
) -> None:
    """Print one referral's (or one trace's) flow: party → service → step, durations, retours, dead letters."""
    _check_key(key)
    flow = _run(load_flow(get_settings(), key, include_reads=reads, actor=actor()))
    if not flow.steps and not flow.dead_letters:
        err.print(f"nothing found for {key}")
        raise typer.Exit(1)
    if as_json_:
        print(as_json(flow))
    else:
        console.print(as_tree(flow))
    if svg:
        svg.write_text(as_svg(flow))
        err.print(f"wrote {svg}")


@app.command(rich_help_panel=PANEL)
def log(
    subject: Annotated[str | None, typer.Option(help="A subject's pseudonym (psn_...).")] = None,
    trace_id: Annotated[str | None, typer.Option("--trace", help="A trace id.")] = None,
    referral: Annotated[str | None, typer.Option(help="A referral id.")] = None,
    activity: Annotated[str | None, typer.Option(help="A processing activity id (needs --since and --until).")] = None,
    since: Annotated[datetime | None, typer.Option(help="From (ISO 8601; no offset: Dutch time).")] = None,
    until: Annotated[datetime | None, typer.Option(help="Until (ISO 8601; no offset: Dutch time).")] = None,
    as_json_: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Read the processing log of every service: who processed whose data, when, why and on which basis; the
    actor who gave each command or query, each read of personal data marked, and refused attempts with their
    reason codes (the actor is '(unknown)' when the staff register does not know who claimed to give it)."""
    try:
        query = ReadProcessingLog(subject=subject, trace_id=trace_id, activity_id=activity,
                                  correlation_id=uuid.UUID(referral) if referral else None,
                                  since=_utc(since), until=_utc(until))
    except ValueError as exc:
        err.print(f"bad filter: {exc.__class__.__name__}")
        raise typer.Exit(2) from None
    if why := query.refusal():
        err.print(f"refused: {why}")
        raise typer.Exit(2)
    records = _run(_read_all(query))
    if as_json_:
        print(json.dumps(records, indent=2))
        return
    if not records:
        err.print("no records")
        raise typer.Exit(1)
    table = Table(title=f"processing log · {len(records)} records")
    for column in ("time", "party", "service", "operation", "activity", "basis", "subject", "actor", "kind",
                   "status", "trace"):
        table.add_column(column, no_wrap=column in {"actor", "kind", "status"})  # (the markers stay whole)
    for r in records:
        table.add_row(r["time"][:23], r["party"], r["service"], r["operation"].split(".", 1)[-1],
                      r["activity_id"].split(":")[-2], r["legal_basis"], r["subject"] or "-", r.get("actor") or "-",
                      _kind_label(r), _status_label(r), r["trace_id"][:12])
    console.print(table)


def _kind_label(record: dict) -> str:
    """What a processing-log record was: a change, a read, or (marked) a read of personal data; a refused read
    was only attempted."""
    kind = record.get("kind") or "change"
    label = {"personal_data_read": "PERSONAL DATA READ", "read": "read"}.get(kind, kind)
    return f"attempted {label}" if record.get("status") == "refused" and kind != "change" else label


def _status_label(record: dict) -> str:
    if record.get("status") != "refused":
        return str(record.get("status"))
    codes = [c for c in record.get("reasons") or [] if re.fullmatch(r"[a-z_]{1,60}", str(c))]
    return f"REFUSED ({', '.join(codes)})" if codes else "REFUSED"

