"""Data-subject requests (GDPR art 15-21, agreement art 10): the privacy officer's commands."""

import json
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, get_args

import typer
from pydantic import ValidationError
from rich.table import Table

from cli.app import DESK_ZONE, Language, _answer, _refuse, _run, _send, _uuid, app, console, err, write_letter
from cli.render.letters import Letterhead, NoLetter, UnknownCode, letter_kind, request_letter
from cli.render.subject_request_console import deadline_markup, print_subject_request
from shared.contracts.commands import (
    ChaseSubjectRequests,
    ExtendSubjectRequest,
    GetSubjectRequest,
    IdentityCheck,
    ListSubjectRequests,
    SubmitSubjectRequest,
)
from shared.contracts.events import (
    Right,
)
from shared.contracts.parties import Party
from shared.contracts.reasons import Reason, ReasonCode, reasons_from_validation_error
from shared.privacy.bsn import is_valid_bsn

PANEL = "Privacy officer: data-subject requests"

subject_request = typer.Typer(help="Data-subject requests (GDPR art 15-21, agreement art 10): submit, show, extend, "
                                   "chase. `werkbrug subject-requests` lists them.", no_args_is_help=True)
app.add_typer(subject_request, name="subject-request", rich_help_panel=PANEL)



def _literal_values(annotation) -> list[str]:
    args = get_args(annotation)
    if args and all(isinstance(a, str) for a in args):
        return list(args)
    return [value for arg in args for value in _literal_values(arg)]


def _choices(name: str, model, field: str) -> type[StrEnum]:
    """The values a command's Literal field allows, as CLI choices: spelled once, in the contract."""
    return StrEnum(name, {v: v for v in _literal_values(model.model_fields[field].annotation)})


IdentityMethod = _choices("IdentityMethod", IdentityCheck, "method")
ExtensionReason = _choices("ExtensionReason", ExtendSubjectRequest, "reason")
RequestState = _choices("RequestState", ListSubjectRequests, "status")


def _desk_time(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter("not an ISO 8601 time, e.g. 2027-03-01T10:30:00+01:00 or 2027-03-01") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=DESK_ZONE)


@subject_request.command("submit")
def subject_request_submit(
    bsn_file: Annotated[Path, typer.Argument(help="A file holding the person's BSN (keeps it out of shell history "
                                                  "and process lists).", exists=True, dir_okay=False)],
    right: Annotated[Right, typer.Option(help="The right exercised (GDPR art 15-21).")],
    identity_method: Annotated[IdentityMethod, typer.Option(help="How the identity was verified (art 12(6)).")],
    verified_by: Annotated[str, typer.Option(help="Staff id of who verified the identity.")],
    party: Annotated[list[Party] | None, typer.Option(help="Whose data (repeat for both); default: every party the "
                                                           "right applies to by its legal basis.")] = None,
    corrections: Annotated[Path | None, typer.Option(help="Rectification: a JSON file with the corrected fields "
                                                          "(`werkbrug schema corrections`, `werkbrug example "
                                                          "corrections`).", exists=True, dir_okay=False)] = None,
    received_at: Annotated[datetime | None, typer.Option(
        parser=_desk_time, metavar="ISO", help="When the request reached WerkSaam (default: now); the deadline "
                                               "runs from it. ISO 8601; without an offset: Dutch time.")] = None,
    person_told_at: Annotated[datetime | None, typer.Option(
        parser=_desk_time, metavar="ISO", help="Lifting a restriction: when the person was told (art 18(3)).")] = None,
    verified_at: Annotated[datetime | None, typer.Option(
        parser=_desk_time, metavar="ISO", help="When the identity was verified (default: now).")] = None,
    update: Annotated[bool, typer.Option(help="Access or portability again within 30 days of an answer: the person "
                                              "asks for an update or says new data arrived, so it is carried out "
                                              "anew (otherwise the earlier answer is the answer, art 12(5)).")]
    = False,
    as_json_: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Take a person's request. It is routed by legal basis, sent to every service that may hold data on them,
    and due in one month. A refused request is recorded too, with its reasons (exit 2)."""
    bsn = bsn_file.read_text(encoding="utf-8").strip()
    if not is_valid_bsn(bsn):  # a typo would be answered "nothing held" for somebody else's number
        _refuse([Reason(code=ReasonCode.BSN_INVALID, field="bsn", detail="9 digits passing the 11-test")])
    try:
        fixes = json.loads(corrections.read_bytes()) if corrections else None
        command = SubmitSubjectRequest.model_validate({
            "bsn": bsn, "right": right, "parties": party or None, "corrections": fixes,
            "received_at": received_at, "person_told_at": person_told_at, "update": update,
            "identity": {"method": identity_method.value, "verified_by": verified_by,
                         "verified_at": verified_at or datetime.now(UTC)},
        })
    except json.JSONDecodeError:
        _refuse([Reason(code=ReasonCode.INVALID_VALUE, field="corrections", detail="not JSON")])
    except ValidationError as exc:
        _refuse(reasons_from_validation_error(exc))
    reply = _run(_send("subject_rights", command))
    view = reply.result if isinstance(reply.result, dict) else {}
    if as_json_:
        print(reply.model_dump_json(indent=2))
    elif reply.ok and view.get("answered_by"):
        console.print(f"request {view['request_id']}: {view['status']} · {view['right']} · answered by request "
                      f"{view['answered_by']} of less than 30 days ago (art 12(5)); nothing was sent. Give the "
                      "person that answer, or submit with --update if they ask for an update")
    elif reply.ok:
        asked = ", ".join(s["service"] for s in view["services"]) or "none (no service holds such data)"
        console.print(f"request {view['request_id']}: {view['status']} · {view['right']} · due {view['due']} · "
                      f"asked {asked}")
    else:
        if view.get("request_id"):
            err.print(f"request {view['request_id']} refused (recorded; nothing was sent)")
        for reason in reply.reasons:
            err.print(f"refused: {reason}")
    if not reply.ok:
        raise typer.Exit(2)


def _get(request_id: str, as_json_: bool = False) -> dict:
    """A request's view with every service's answer (the person's data: only to staff who may read it, art 8)."""
    reply = _run(_send("subject_rights", GetSubjectRequest(request_id=_uuid(request_id))))
    if as_json_:
        print(reply.model_dump_json(indent=2))
    if not reply.ok:
        unknown = {r.code for r in reply.reasons} == {ReasonCode.UNKNOWN_REQUEST}
        if not as_json_:
            err.print(f"unknown request {request_id}" if unknown else
                      "refused: " + ", ".join(str(r) for r in reply.reasons))
        raise typer.Exit(1 if unknown else 2)
    return reply.result


def _letter(view: dict, lang: str, html: Path | None, pdf: Path | None, letterhead: Letterhead, *,
            extension: bool = False) -> None:
    """Write the letter to the person that the request calls for, as HTML and/or PDF."""
    try:
        kind = letter_kind(view, extension=extension)
    except NoLetter as exc:
        err.print(str(exc))
        raise typer.Exit(1 if exc.waiting else 2) from None
    try:
        letter = request_letter(view, lang, letterhead, kind=kind)
    except UnknownCode as exc:  # a code without words: never shown to the person as it is
        err.print(f"the letter is not written: {exc}")
        raise typer.Exit(5) from None
    write_letter(letter, html=html, pdf=pdf, what=f"{'Dutch' if lang == 'nl' else 'English'} letter ({kind.value})")


@subject_request.command("show")
def subject_request_show(
    request_id: Annotated[str, typer.Argument(help="The request id.")],
    html: Annotated[Path | None, typer.Option(help="Also write the letter to the person (in Dutch, HTML; it holds "
                                                   "their data): what `subject-request letter` writes.")] = None,
    as_json_: Annotated[bool, typer.Option("--json", help="The full package: every service's answer, "
                                                          "machine-readable (art 15(3), art 20).")] = False,
) -> None:
    """One request: the services asked and their answers, the deadline, escalation, what an erasure withheld
    and on which ground, and whether the erasure was verified."""
    letterhead = Letterhead() if html is not None else None  # a bad letterhead setting is said before anything is sent
    view = _get(request_id, as_json_)
    if not as_json_:
        print_subject_request(console, view)
    if html is not None:
        _letter(view, "nl", html, None, letterhead)


@subject_request.command("letter")
def subject_request_letter(
    request_id: Annotated[str, typer.Argument(help="The request id.")],
    lang: Annotated[Language, typer.Option(help="nl: Dutch (the person's language, B1); en: English.")]
    = Language.nl,
    html: Annotated[Path | None, typer.Option(help="Write the letter as HTML (it holds the person's data).")] = None,
    pdf: Annotated[Path | None, typer.Option(help="Write the letter as an A4 PDF (headless Chromium).")] = None,
    extension: Annotated[bool, typer.Option(help="The notice that the answer takes longer (art 12(3)), for an "
                                                 "extended request (an open extended request gets it anyway).")]
    = False,
) -> None:
    """The letter to the person in plain language: the answer (access, portability, rectification, erasure,
    restriction, objection), a refusal with its grounds, or the notice of an extension. No ids, codes or field
    names: the machine-readable package is `show ID --json`. The sender comes from WERKBRUG_LETTERHEAD_* or
    var/letterhead.toml (README)."""
    if html is None and pdf is None:
        err.print("say where the letter goes: --html FILE and/or --pdf FILE")
        raise typer.Exit(2)
    letterhead = Letterhead()  # a bad letterhead setting is said before anything is sent
    _letter(_get(request_id), lang.value, html, pdf, letterhead, extension=extension)


@subject_request.command("extend")
def subject_request_extend(
    request_id: Annotated[str, typer.Argument(help="The request id.")],
    reason: Annotated[ExtensionReason, typer.Option(help="Why (art 12(3)).")],
    told_at: Annotated[datetime, typer.Option(
        parser=_desk_time, metavar="ISO", help="When the person was told of the extension and why; it must be "
                                               "within the first month. Without an offset: Dutch time.")],
    as_json_: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Extend the deadline by two months (once, art 12(3))."""
    command = ExtendSubjectRequest(request_id=_uuid(request_id), reason=reason.value, person_told_at=told_at)
    _answer(_run(_send("subject_rights", command)), as_json_,
            lambda r: f"request {r['request_id']}: due {r['due']} (was {r['original_due']}) · deadline "
                      f"{deadline_markup(r['deadline'])}")


@subject_request.command("chase")
def subject_request_chase(as_json_: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Run the reminder and escalation round now (the service runs it every WERKBRUG_SUBJECT_CHASE_INTERVAL):
    services silent for WERKBRUG_SUBJECT_REMINDER_AFTER are asked again; requests are escalated."""
    reply = _run(_send("subject_rights", ChaseSubjectRequests()))
    if as_json_ or not reply.ok:
        _answer(reply, as_json_, str)
        return
    result = reply.result
    for request_id, services in sorted(result["asked_again"].items()):
        console.print(f"request {request_id}: asked {', '.join(services)} again")
    for request_id in result["escalated"]:
        console.print(f"[bold red]request {request_id}: escalated to the privacy officer[/]")
    if not result["asked_again"] and not result["escalated"]:
        console.print("nothing to chase: no service is due a reminder and no request newly escalated")


@app.command("subject-requests", rich_help_panel=PANEL)
def subject_requests(
    status: Annotated[RequestState | None, typer.Option(help="Only requests in this state.")] = None,
    at_risk: Annotated[bool, typer.Option("--at-risk", help="Only open requests that are escalated, near or past "
                                                            "their deadline.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 200,
    as_json_: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Data-subject requests, newest first, with their deadlines (pseudonyms only); escalated ones in red."""
    query = ListSubjectRequests(status=status.value if status else None, at_risk=at_risk, limit=limit)
    reply = _run(_send("subject_rights", query))
    if as_json_ or not reply.ok:
        _answer(reply, as_json_, str)
        return
    rows = sorted(reply.result or [], key=lambda r: r["received_at"], reverse=True)
    if not rows:
        err.print("no requests at risk" if at_risk else "no requests")
        raise typer.Exit(1)
    table = Table(title=f"data-subject requests · {len(rows)}")
    for column in ("request", "subject", "right", "status", "received", "due", "deadline", "escalation"):
        table.add_column(column)
    for r in rows:
        due = r["due"] + (" (extended)" if r["extended"] else "")
        table.add_row(r["request_id"], r["subject"], r["right"], r["status"], r["received_at"][:10], due,
                      deadline_markup(r["deadline"]), r["escalation"] or "-",
                      style="bold red" if r["escalated_at"] else None)
    console.print(table)

