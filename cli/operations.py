"""The operator's commands: `werkbrug health` and the dead letters (`werkbrug dlq`)."""

import json
import re
import uuid
from typing import Annotated

import typer
from rich.table import Table

from cli.app import _ping_all, _run, _send, _service, actor, app, console, err
from infra.dead_letters import ParkingQueues, ReplayRefused
from shared.config import get_settings
from shared.contracts.commands import (
    RecordDeadLetterRead,
)
from shared.messaging.pipeline import dead_letter_key
from shared.privacy.pseudonym import PSEUDONYM_PATTERN

PANEL = "Operator: health and dead letters"

@app.command(rich_help_panel=PANEL)
def health(as_json_: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Ask every service to answer over the broker, and how long it took. A service that refuses the actor
    answers all the same (it says why: the actor is in another party's register, or not in force)."""
    results = _run(_ping_all())
    if as_json_:
        print(json.dumps(results, indent=2))
    else:
        for name, r in results.items():
            colour = "green" if r["ok"] else "red"
            said = f"answers, refusing {actor()}: {', '.join(r['refused'])}" if r["refused"] else "answers"
            console.print(f"[{colour}]{name}[/]: {said if r['ok'] else r['error']} ({r['ms']:.0f} ms)",
                          highlight=False)
    if not all(r["ok"] for r in results.values()):
        raise typer.Exit(3)


dlq = typer.Typer(help="Dead letters: list, show and replay what the parking queues hold.", no_args_is_help=True)
app.add_typer(dlq, name="dlq", rich_help_panel=PANEL)


@dlq.command("list")
def dlq_list(
    service: Annotated[str | None, typer.Option(help="One service's parking queue.")] = None,
    as_json_: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """What is parked, why and since when (messages stay parked). The reasons are the ones the service
    recorded when it refused the message or gave up on it (delivery_limit); "recorded: no" marks a message
    the service never recorded: not dead-lettered from its queues, and never replayed."""
    letters = _run(ParkingQueues(get_settings(), actor=actor()).list(_service(service)))
    if as_json_:
        print(json.dumps([d.summary() for d in letters], indent=2, default=str))
        return
    table = Table(title=f"dead letters · {len(letters)}")
    for column in ("service", "message id", "routing key", "sender", "recorded", "reason", "since", "bytes"):
        table.add_column(column)
    for d in letters:
        table.add_row(d.service, d.message_id or "-", d.routing_key or "-", d.user_id or "-",
                      "yes" if d.recorded else "no", d.reason, str(d.dead_lettered_at or "-"), str(d.size))
    console.print(table)


@dlq.command("show")
def dlq_show(
    message_id: str,
    body: Annotated[bool, typer.Option(help="Also print the body. It may hold personal data: only for staff "
                                            "bound by confidentiality (art 8).")] = False,
) -> None:
    """One parked message: its reasons and the broker's dead-lettering headers (and, on request, its body)."""
    letter = next((d for d in _run(ParkingQueues(get_settings(), actor=actor()).list()) if d.message_id == message_id),
                  None)
    if letter is None:
        err.print(f"{message_id} is not parked")
        raise typer.Exit(1)
    print(json.dumps({**letter.summary(), "broker": letter.broker_headers()}, indent=2, default=str))
    if body:
        _record_read(letter)
        print(letter.body.decode(errors="replace"))


def _record_read(letter) -> None:
    """A parked body may hold personal data: shown only to staff with a confidentiality statement in force at
    the party whose service parked it (agreement art 8), and the read is in that service's processing log,
    naming the actor, the message (its dead-letter key) and the subject and referral its envelope names. One
    query to the service does both (RecordDeadLetterRead); only when it answers ok is the body shown."""
    subject, correlation_id = _named_in(letter.body)
    query = RecordDeadLetterRead(key=dead_letter_key(letter.message_id, letter.body), subject=subject,
                                 correlation_id=correlation_id or _as_uuid_or_none(letter.correlation_id))
    reply = _run(_send(letter.service, query))
    if not reply.ok:
        for reason in reply.reasons:
            err.print(f"refused: {reason}")
        err.print(f"the body is not shown ({letter.service} did not record the read)")
        raise typer.Exit(2)


def _named_in(body: bytes) -> tuple[str | None, uuid.UUID | None]:
    """The subject's pseudonym and the referral a parked message's envelope names, if it names them well-formed
    (a refused message may be anything: what does not fit is left out, never echoed)."""
    try:
        envelope = json.loads(body)
    except (ValueError, RecursionError):
        return None, None
    if not isinstance(envelope, dict):
        return None, None
    subject = envelope.get("subject")
    subject = subject if isinstance(subject, str) and re.fullmatch(PSEUDONYM_PATTERN, subject) else None
    return subject, _as_uuid_or_none(envelope.get("correlation_id"))


def _as_uuid_or_none(value) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if isinstance(value, str) else None
    except ValueError:
        return None


@dlq.command("replay")
def dlq_replay(
    message_id: str,
    service: Annotated[str | None, typer.Option(help="Only look in this service's parking queue.")] = None,
) -> None:
    """Publish a parked message again after a fix, only as the broker-validated sender it carries (its
    user_id, which must be its envelope's source) and on its envelope's routing key. Idempotent: a message
    already handled has no second effect."""
    try:
        letter = _run(ParkingQueues(get_settings(), actor=actor()).replay(message_id, _service(service)))
    except ReplayRefused as refused:
        err.print(f"refused: {refused}; {message_id} stays parked")
        raise typer.Exit(2) from None
    if letter is None:
        err.print(f"{message_id} is not parked (replayed already, or never dead-lettered)")
        raise typer.Exit(1)
    console.print(f"replayed {message_id} to {letter.routing_key}")


