"""Personal-data breaches (agreement art 12, GDPR art 33-34)."""

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.table import Table

from cli.app import (
    Language,
    _answer,
    _as_actor,
    _desk,
    _local,
    _run,
    _send,
    _services_of,
    _utc,
    _uuid,
    app,
    console,
    err,
    write_letter,
)
from cli.render.letters import BreachMeasure, Letterhead, NoLetter, UnknownCode, breach_letter
from shared.client import CommandClient
from shared.config import get_settings
from shared.contracts.commands import (
    DecideSubjectNotification,
    ListBreaches,
    ReadProcessingLog,
    RecordAuthorityNotification,
    ReportBreach,
    SubjectNotificationReason,
)
from shared.contracts.events import (
    MAX_BREACH_SUBJECTS,
    BreachCause,
    BreachDataCategory,
    BreachSubjectCategory,
)
from shared.contracts.reasons import reasons_from_validation_error

PANEL = "Privacy officer: breaches"

# -- personal-data breaches (agreement art 12, GDPR art 33-34) -------------------------------------------------

MOMENT = ["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M%z", "%Y-%m-%dT%H:%M:%S%z",
          "%Y-%m-%dT%H:%M:%S.%f%z"]  # ISO 8601, with or without an offset (none: Dutch time)
breach = typer.Typer(help="Personal-data breaches (art 12): report one, record the AP notification and the decision "
                          "on informing the subjects.", no_args_is_help=True)
app.add_typer(breach, name="breach", rich_help_panel=PANEL)




@breach.command("report")
def breach_report(
    party: Annotated[str, typer.Option(help="The reporting party: werksaam or heliomare.")],
    detected_at: Annotated[datetime, typer.Option(formats=MOMENT, help="When the breach was detected (ISO 8601; "
                                                                       "no offset: Dutch time).")],
    cause: Annotated[BreachCause, typer.Option(help="The presumed cause.")],
    data: Annotated[list[BreachDataCategory], typer.Option(help="A category of personal data concerned (repeat).")],
    since: Annotated[datetime, typer.Option(formats=MOMENT, help="Start of the breach window.")],
    until: Annotated[datetime, typer.Option(formats=MOMENT, help="End of the breach window.")],
    subjects: Annotated[list[BreachSubjectCategory] | None,
                        typer.Option(help="A category of data subjects (repeat); default: jobseekers.")] = None,
    service: Annotated[list[str] | None, typer.Option(help="An affected service (repeat); default: all of the "
                                                            "party's.")] = None,
    count: Annotated[int | None, typer.Option(min=0, help="The number of subjects, when more than the processing "
                                                          "log names.")] = None,
    as_json_: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Report a (suspected) breach; the other parties are informed at once. The affected subjects are the distinct
    subjects in the processing log of the affected services within the window."""
    desk, own = _desk(party), _services_of(party)
    services = service or own
    if stray := [s for s in services if s not in own]:
        err.print(f"not a service of {party}: {', '.join(stray)}")
        raise typer.Exit(2)
    window = {"since": _utc(since), "until": _utc(until)}
    affected = _run(_subjects_in_window(services, **window))
    try:
        command = ReportBreach(detected_at=_utc(detected_at), presumed_cause=cause, data_categories=data,
                               subject_categories=subjects or [BreachSubjectCategory.JOBSEEKERS],
                               window_since=window["since"], window_until=window["until"], services=services,
                               affected_subjects=affected[:MAX_BREACH_SUBJECTS],
                               subject_count=max(count or 0, len(affected)))
    except ValidationError as exc:
        for reason in reasons_from_validation_error(exc):
            err.print(f"refused: {reason}")
        raise typer.Exit(2) from None
    _answer(_run(_send(desk, command)), as_json_, lambda r: (
        f"breach {r['breach_id']} reported by {r['reported_by']}: {r['subject_count']} subjects; "
        f"inform the other parties: {r['clocks']['inform_parties']['state']}, "
        f"notify the AP by {r['clocks']['notify_authority']['due']}"))


@app.command(rich_help_panel=PANEL)
def breaches(
    party: Annotated[str, typer.Option(help="Whose breach desk: werksaam or heliomare.")] = "werksaam",
    overdue: Annotated[bool, typer.Option(help="Only breaches with a clock past its deadline.")] = False,
    as_json_: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The breaches a party knows (its own and those reported to it) with the 24-hour and 72-hour clocks."""
    reply = _run(_send(_desk(party), ListBreaches(overdue=overdue)))
    if as_json_ or not reply.ok:
        _answer(reply, as_json_, str)
        return
    if not reply.result:
        err.print("no breaches" + (" overdue" if overdue else ""))
        raise typer.Exit(1)
    colours = {"met": "green", "late": "yellow", "running": "cyan", "overdue": "bold red"}

    def shown(c: dict) -> str:
        return f"[{colours[c['state']]}]{c['state']}[/] {_local(c['done_at'] or c['due'])}"

    # One block per breach, not a wide table: what the register needs (agreement art 12.1: presumed cause,
    # categories of personal data, categories and number of data subjects) and the clocks, each on its own
    # line, and the id whole (it is what the next command takes).
    console.print(f"[bold]breaches at {party}[/] · {len(reply.result)}")
    for b in reply.result:
        decision = b["subjects_decision"]
        decided = "pending" if decision is None else f"{'yes' if decision['inform'] else 'no'} ({decision['reason']})"
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="dim", no_wrap=True)
        grid.add_column(overflow="fold")
        for label, value in (
                ("reported by", b["reported_by"]), ("detected", _local(b["detected_at"])),
                ("presumed cause", b["presumed_cause"]), ("personal data", ", ".join(b["data_categories"])),
                ("data subjects", f"{b['subject_count']} ({', '.join(b['subject_categories'])})"),
                ("inform parties (24 h)", shown(b["clocks"]["inform_parties"])),
                ("notify AP (72 h)", shown(b["clocks"]["notify_authority"])), ("subjects informed", decided)):
            grid.add_row(label, value)
        console.print(f"\n[bold]{b['breach_id']}[/]")
        console.print(grid)


@breach.command("notify-ap")
def breach_notify_ap(
    breach_id: Annotated[str, typer.Argument(help="The breach id.")],
    at: Annotated[datetime, typer.Option(formats=MOMENT, help="When the AP was notified (ISO 8601; no offset: "
                                                              "Dutch time).")],
    reference: Annotated[str | None, typer.Option(help="The AP's reference.")] = None,
    not_required: Annotated[bool, typer.Option(help="No notification: unlikely to result in a risk (art 33(1)).")]
    = False,
    party: Annotated[str, typer.Option(help="Whose breach desk.")] = "werksaam",
    as_json_: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Record the notification to the Autoriteit Persoonsgegevens (GDPR art 33)."""
    command = RecordAuthorityNotification(breach_id=_uuid(breach_id), at=_utc(at), reference=reference,
                                          not_required=not_required)
    _answer(_run(_send(_desk(party), command)), as_json_,
            lambda r: f"breach {r['breach_id']}: AP clock {r['clocks']['notify_authority']['state']}")


@breach.command("decide-subjects")
def breach_decide_subjects(
    breach_id: Annotated[str, typer.Argument(help="The breach id.")],
    reason: Annotated[SubjectNotificationReason, typer.Option(help="The ground (art 34).")],
    inform: Annotated[bool, typer.Option("--inform/--no-inform", help="Inform the data subjects or not.")],
    party: Annotated[str, typer.Option(help="Whose breach desk.")] = "werksaam",
    as_json_: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Record the decision on informing the data subjects (GDPR art 34)."""
    command = DecideSubjectNotification(breach_id=_uuid(breach_id), inform=inform, reason=reason)
    _answer(_run(_send(_desk(party), command)), as_json_,
            lambda r: f"breach {r['breach_id']}: subjects informed: {r['subjects_decision']}")


@breach.command("letter")
def breach_letter_command(
    breach_id: Annotated[str, typer.Argument(help="The breach id.")],
    party: Annotated[str, typer.Option(help="Whose breach desk recorded the decision to inform the persons.")]
    = "werksaam",
    lang: Annotated[Language, typer.Option(help="nl: Dutch (B1); en: English.")] = Language.nl,
    measure: Annotated[list[BreachMeasure] | None, typer.Option(help="What was done about it (repeat); the letter "
                                                                     "names each.")] = None,
    html: Annotated[Path | None, typer.Option(help="Write the letter as HTML.")] = None,
    pdf: Annotated[Path | None, typer.Option(help="Write the letter as an A4 PDF (headless Chromium).")] = None,
) -> None:
    """The letter to the persons a breach concerns (GDPR art 34), once the breach desk decided to inform them
    (`breach decide-subjects ID --inform --reason high_risk`): what happened, which data, what it can mean, what was
    done, what they can do, who to contact. It names no person: the desk sends it to each person concerned."""
    if html is None and pdf is None:
        err.print("say where the letter goes: --html FILE and/or --pdf FILE")
        raise typer.Exit(2)
    letterhead = Letterhead()  # a bad letterhead setting is said before anything is sent
    wanted = str(_uuid(breach_id))
    reply = _run(_send(_desk(party), ListBreaches(limit=1000)))
    if not reply.ok:
        _answer(reply, False, str)
    found = next((b for b in reply.result or [] if b["breach_id"] == wanted), None)
    if found is None:
        err.print(f"unknown breach {breach_id} at {party}'s breach desk")
        raise typer.Exit(1)
    try:
        letter = breach_letter(found, lang.value, letterhead, measures=[m.value for m in measure or []])
    except NoLetter as exc:
        err.print(f"refused: {exc}")
        raise typer.Exit(2) from None
    except UnknownCode as exc:
        err.print(f"the letter is not written: {exc}")
        raise typer.Exit(5) from None
    write_letter(letter, html=html, pdf=pdf, what=f"{'Dutch' if lang == Language.nl else 'English'} breach notice")


async def _subjects_in_window(services: list[str], since: datetime, until: datetime) -> list[str]:
    found: set[str] = set()
    async with CommandClient(get_settings(), timeout=15) as client:
        for service in services:
            reply = await client.send(service, _as_actor(ReadProcessingLog(distinct_subjects=True, since=since,
                                                                           until=until)))
            if not reply.ok:
                err.print(f"{service} refused: {', '.join(str(r) for r in reply.reasons)}")
                raise typer.Exit(2)
            found |= {r["subject"] for r in reply.result or []}
    return sorted(found)


