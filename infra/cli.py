"""`werkbrug`: the command line for the people who operate and account for werkbrug.

    werkbrug trace <trace id | referral id> [--svg FILE] [--json]
    werkbrug log (--subject PSN | --trace ID | --referral ID | --activity URN --since T --until T) [--json]

It talks to the running services over RabbitMQ (the same AMQP_URL and WERKBRUG_NAMESPACE as they use).
Exit codes: 0 done, 1 nothing found, 2 refused or bad input, 3 a service did not answer.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from infra.services import DEFINITIONS
from infra.trace_view import as_json, as_svg, as_tree, load_flow
from shared.client import CommandClient
from shared.config import get_settings
from shared.contracts.commands import ReadProcessingLog

app = typer.Typer(help="werkbrug: trace flows across parties and read the processing log.", no_args_is_help=True,
                  add_completion=False)
console = Console()
err = Console(stderr=True)


@app.command()
def trace(
    key: Annotated[str, typer.Argument(help="A trace id (32 hex) or a referral id (UUID).")],
    svg: Annotated[Path | None, typer.Option(help="Also write the flow as an SVG sequence diagram.")] = None,
    as_json_: Annotated[bool, typer.Option("--json", help="Print JSON instead of a tree.")] = False,
    reads: Annotated[bool, typer.Option(help="Include reads (queries), which change nothing.")] = False,
) -> None:
    """Print one referral's (or one trace's) flow: party → service → step, durations, retours, dead letters."""
    _check_key(key)
    flow = _run(load_flow(get_settings(), key, include_reads=reads))
    if not flow.steps:
        err.print(f"nothing found for {key}")
        raise typer.Exit(1)
    if as_json_:
        print(as_json(flow))
    else:
        console.print(as_tree(flow))
    if svg:
        svg.write_text(as_svg(flow))
        err.print(f"wrote {svg}")


@app.command()
def log(
    subject: Annotated[str | None, typer.Option(help="A subject's pseudonym (psn_...).")] = None,
    trace_id: Annotated[str | None, typer.Option("--trace", help="A trace id.")] = None,
    referral: Annotated[str | None, typer.Option(help="A referral id.")] = None,
    activity: Annotated[str | None, typer.Option(help="A processing activity id (needs --since and --until).")] = None,
    since: Annotated[datetime | None, typer.Option(help="From (ISO 8601, UTC if no offset).")] = None,
    until: Annotated[datetime | None, typer.Option(help="Until (ISO 8601, UTC if no offset).")] = None,
    as_json_: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Read the processing log of every service: who processed whose data, when, why and on which basis."""
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
    for column in ("time", "party", "service", "operation", "activity", "basis", "subject", "status", "trace"):
        table.add_column(column)
    for r in records:
        table.add_row(r["time"][:23], r["party"], r["service"], r["operation"].split(".", 1)[-1],
                      r["activity_id"].split(":")[-2], r["legal_basis"], r["subject"], r["status"], r["trace_id"][:12])
    console.print(table)


async def _read_all(query: ReadProcessingLog) -> list[dict]:
    records: list[dict] = []
    async with CommandClient(get_settings(), timeout=15) as client:
        for service in DEFINITIONS:
            reply = await client.send(service, query.model_copy(update={"command_id": uuid.uuid4()}))
            if not reply.ok:
                err.print(f"{service} refused: {', '.join(str(r) for r in reply.reasons)}")
                raise typer.Exit(2)
            records += reply.result or []
    return sorted(records, key=lambda r: r["time"])


def _run(coroutine):
    try:
        return asyncio.run(coroutine)
    except TimeoutError:
        err.print("a service did not answer in time; is it running? (make demo starts them)")
        raise typer.Exit(3) from None
    except RuntimeError as exc:
        err.print(str(exc))
        raise typer.Exit(2) from None


def _check_key(key: str) -> None:
    try:
        uuid.UUID(key)
        return
    except ValueError:
        pass
    if len(key) == 32 and all(c in "0123456789abcdef" for c in key):
        return
    err.print("give a trace id (32 lowercase hex) or a referral id (UUID)")
    raise typer.Exit(2)


def _utc(value: datetime | None) -> datetime | None:
    from datetime import UTC

    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def main() -> None:
    app()


if __name__ == "__main__":
    main()
