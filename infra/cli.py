"""`werkbrug`: the command line for the people who use and operate werkbrug.

Caseworker (WerkSaam):
    werkbrug refer PERSON.json                        submit a referral (personal data from a file, not the shell)
    werkbrug referrals [--status S]                   list referrals
    werkbrug status REFERRAL                          one referral at both parties, with every retour
      (municipality, support need, outcome, amounts and dates only to staff with a confidentiality statement at
      the party; others get states, ids and retours with a one-line note; `invoices` alike; `reconcile` needs one)
    werkbrug reconcile [REFERRAL]                     where the parties' records disagree (exit 2 if any)
    werkbrug approve REFERRAL QUOTE | reject REFERRAL QUOTE --reason CODE
Account manager (Heliomare):
    werkbrug accept REFERRAL | decline REFERRAL --reason CODE
    werkbrug quote REFERRAL --amount 4800.00 --start 2027-01-04 --weeks 26 [--advance 1920.00]
Privacy officer and operator:
    werkbrug log (--subject PSN | --trace ID | --referral ID | --activity URN --since T --until T)
    werkbrug trace <trace id | referral id> [--svg FILE]
    werkbrug invoices [--year Y]                      finance: invoices and totals
    werkbrug report YEAR [--svg FILE]                 the yearly report (art 6.2), as WerkSaam received it
    werkbrug subject-request submit --right R --identity-method M --verified-by STAFF BSN_FILE
    werkbrug subject-request show ID [--html FILE] | extend ID --reason R --told-at T | chase
    werkbrug subject-requests [--status S] [--at-risk]
    werkbrug health
    werkbrug dlq list [--service S] | dlq show MESSAGE_ID | dlq replay MESSAGE_ID
Cooperation (art 13, 16):
    werkbrug partner add ADDENDUM.json | partner remove NAME [--kind left|removed] | partner list
Confidentiality (art 8): every command names its actor (--as STAFF_ID or WERKBRUG_ACTOR), a member in force of
the staff register of the party whose service runs it, with a role that may give it (checked by the service)
    werkbrug staff list [--party P] | staff add STAFF --party P --role R [--from D] [--until D]
    werkbrug staff end STAFF --party P [--on D]          the party's identity administration keeps its register
    werkbrug confidentiality sign STAFF --party P --signed-on D [--ended-on D] | confidentiality list [--party P]
    werkbrug person REFERRAL [--service intake|offer]   the person's data: only with a statement; the read is logged
Breaches (art 12, GDPR art 33-34):
    werkbrug breach report --party P --detected-at T --cause C --data CAT --since T --until T [--service S]
    werkbrug breaches [--party P] [--overdue]
    werkbrug breach notify-ap ID --at T --reference REF | breach decide-subjects ID --inform/--no-inform --reason R
Every command takes --json for scripts. A time typed without an offset is Dutch time (Europe/Amsterdam);
times shown in tables are Dutch time too.

It talks to the running services over RabbitMQ (the same AMQP_URL and WERKBRUG_NAMESPACE as they use).
Exit codes: 0 done, 1 nothing found, 2 refused or bad input, 3 a service did not answer or the broker is not
reachable, 4 the broker refused the connection (wrong user or password, a namespace without its virtual host, no
permission), 5 an unexpected failure. Whatever happens it prints one line per problem, never a traceback, and never
an error's own text (it could quote data).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
import sys
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn, get_args
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table
from typer import _click as click  # the click typer runs on (vendored): its exceptions

from infra.dead_letters import ParkingQueues, ReplayRefused
from infra.reconcile import REFERRAL_SERVICES
from infra.reconcile import compare as reconcile_one
from infra.reconcile import compare_all as reconcile_all
from infra.report_console import print_report
from infra.services import DEFINITIONS
from infra.subject_request_console import deadline_markup, print_subject_request
from infra.trace_view import FlowRefused, as_json, as_svg, as_tree, load_flow
from shared import report_view
from shared.access_document import render_access_document
from shared.client import CommandClient, CommandRefused
from shared.config import Settings, get_settings
from shared.contracts.commands import (
    ChaseSubjectRequests,
    CommandResult,
    DecideQuote,
    DecideReferral,
    DecideSubjectNotification,
    ExtendSubjectRequest,
    GetReferral,
    GetReport,
    GetSubjectRequest,
    IdentityCheck,
    ListBreaches,
    ListConfidentialityStatements,
    ListInvoices,
    ListReferrals,
    ListSubjectRequests,
    ReadProcessingLog,
    RecordAuthorityNotification,
    RecordConfidentialityStatement,
    RecordDeadLetterRead,
    ReportBreach,
    SendQuote,
    SubjectNotificationReason,
    SubmitReferral,
    SubmitSubjectRequest,
)
from shared.contracts.events import (
    MAX_BREACH_SUBJECTS,
    BreachCause,
    BreachDataCategory,
    BreachSubjectCategory,
    DeclineReason,
    InvoiceMoment,
    InvoiceTranche,
    QuoteKind,
    QuoteRejectReason,
    Right,
)
from shared.contracts.parties import Party
from shared.contracts.reasons import Reason, ReasonCode, reasons_from_validation_error
from shared.contracts.staff import Role
from shared.messaging.pipeline import dead_letter_key
from shared.privacy.bsn import is_valid_bsn
from shared.privacy.pseudonym import PSEUDONYM_PATTERN

app = typer.Typer(help="werkbrug: refer, quote and decide; trace flows and read the processing log.",
                  no_args_is_help=True, add_completion=False)
console = Console()
err = Console(stderr=True)


# -- who gives the command (agreement art 8) ------------------------------------------------------------------

ACTOR_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{1,40}$")
_actor: str | None = None


@app.callback()
def _who(
    actor: Annotated[str | None, typer.Option("--as", envvar="WERKBRUG_ACTOR", show_envvar=True,
                                              help="Your staff id: every command is given by someone, and "
                                                   "personal data is shown only to staff with a confidentiality "
                                                   "statement (art 8).")] = None,
) -> None:
    """Every command names its actor; the services log it with each processing."""
    global _actor
    if "--help" in sys.argv[1:]:
        return
    if actor is None or not ACTOR_PATTERN.match(actor):
        err.print("say who you are: --as STAFF_ID or WERKBRUG_ACTOR (lowercase letters, digits, . _ -)")
        raise typer.Exit(2)
    _actor = actor


def _as_actor(command):
    """The command as given by the actor of this run."""
    return command.model_copy(update={"actor": _actor, "command_id": uuid.uuid4()})


@app.command()
def trace(
    key: Annotated[str, typer.Argument(help="A trace id (32 hex) or a referral id (UUID).")],
    svg: Annotated[Path | None, typer.Option(help="Also write the flow as an SVG sequence diagram.")] = None,
    as_json_: Annotated[bool, typer.Option("--json", help="Print JSON instead of a tree.")] = False,
    reads: Annotated[bool, typer.Option(help="Include reads (queries), which change nothing.")] = False,
) -> None:
    """Print one referral's (or one trace's) flow: party → service → step, durations, retours, dead letters."""
    _check_key(key)
    flow = _run(load_flow(get_settings(), key, include_reads=reads, actor=_actor))
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


@app.command()
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


# -- caseworkers and account managers --------------------------------------------------------------------


@app.command()
def refer(
    person: Annotated[Path, typer.Argument(help="JSON file with the referral's fields (see SubmitReferral).",
                                            exists=True, dir_okay=False)],
    as_json_: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Refer a person to Heliomare. The file keeps the BSN and name out of shell history and process lists."""
    try:
        command = SubmitReferral.model_validate_json(person.read_bytes())
    except ValidationError as exc:
        for reason in reasons_from_validation_error(exc):
            err.print(f"refused: {reason}")
        raise typer.Exit(2) from None
    _answer(_run(_send("intake", command)), as_json_, lambda r: f"referral {r['referral_id']}: {r['status']}")


@app.command()
def referrals(
    status: Annotated[str | None, typer.Option(help="Only referrals in this state.")] = None,
    service: Annotated[str, typer.Option(help="intake (WerkSaam's view) or offer (Heliomare's).")] = "intake",
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    as_json_: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List referrals, newest first: pseudonyms and states; municipality, support need and quote amounts only
    under a confidentiality statement (art 8)."""
    _service(service, answering=ListReferrals)
    replies, brief = _run(_send_detailed([service], ListReferrals(status=status, limit=limit)))
    reply = replies[service]
    _status_only_note(brief)
    if as_json_ or not reply.ok:
        _answer(reply, as_json_, str)
        return
    table = Table(title=f"referrals at {service} · {len(reply.result)}")
    columns = ("referral", "subject", "status", "quotes") if brief else (
        "referral", "subject", "status", "municipality", "support need", "quotes")
    for column in columns:
        table.add_column(column)
    for r in reply.result:
        quotes = ", ".join(" ".join(x for x in (f"#{q.get('sequence')}", f"€{q['amount']}" if "amount" in q else "",
                                                q.get("decision") or q.get("status") or "") if x)
                           for q in r.get("quotes", []))
        detail = () if brief else (r.get("municipality") or "-", r.get("support_need") or "-")
        table.add_row(r["referral_id"], r.get("subject") or "-", r["status"], *detail, quotes or "-")
    console.print(table)


@app.command()
def status(
    referral: Annotated[str, typer.Argument(help="Referral id.")],
    as_json_: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """One referral as each party sees it, with every message sent and how it was answered."""
    rid = _uuid(referral)
    views, brief = _run(_send_detailed(None, GetReferral(referral_id=rid)))
    _status_only_note(brief)
    if as_json_:
        print(json.dumps({s: r.model_dump(mode="json") for s, r in views.items()}, indent=2))
        return
    if not any(r.ok for r in views.values()):
        err.print(f"unknown referral {referral}")
        raise typer.Exit(1)
    for service, reply in views.items():
        if not reply.ok:
            console.print(f"[dim]{service}: {', '.join(str(r) for r in reply.reasons)}[/]")
            continue
        view = reply.result
        console.print(f"[bold]{service}[/]: {view['status']} · subject {view['subject']}")
        for d in view.get("deliveries", []):
            retour = d["retour"] or {}
            waiting = "awaiting retour" if d.get("expects_retour", True) else "internal: no retour"
            outcome = retour.get("status", waiting)
            reasons = ", ".join(r["code"] for r in retour.get("reasons", []))
            console.print(f"  sent {d['type']} ({d['status']}) → {outcome} {reasons}".rstrip())
    if brief:  # the facts compared are referral-level data: not compared on a status view
        return
    disagreements = reconcile_one(referral, {s: r.result if r.ok else None for s, r in views.items()})
    for d in disagreements:
        console.print(f"[red]parties disagree[/] on {d.fact}: WerkSaam {d.werksaam} ≠ Heliomare {d.heliomare}")


@app.command()
def reconcile(
    referral: Annotated[str | None, typer.Argument(help="Referral id; without it, every referral.")] = None,
    as_json_: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Compare both parties' records (intake's against offer's, trajectory's and billing's) and print every
    fact they disagree on: state, quotes, trajectory id, dates, outcome, invoices, amounts invoiced vs
    approved. Exit 2 when they disagree (a message still on its way shows too: run it again)."""
    if referral is not None:
        rid = _uuid(referral)
        views = _run(_send_all(GetReferral(referral_id=rid, detail=True)))
        _refuse_unsigned(views)
        if not any(r.ok for r in views.values()):
            err.print(f"unknown referral {referral}")
            raise typer.Exit(1)
        found = reconcile_one(str(rid), {s: r.result if r.ok else None for s, r in views.items()})
        compared = 1
    else:
        lists = _run(_send_all(ListReferrals(limit=1000, detail=True)))
        _refuse_unsigned(lists)
        refused = [s for s, r in lists.items() if not r.ok]
        if refused:
            err.print(f"refused by {', '.join(refused)}")
            raise typer.Exit(2)
        rows = {s: r.result for s, r in lists.items() if s in REFERRAL_SERVICES}
        found = reconcile_all(rows)
        compared = len({row["referral_id"] for listed in rows.values() for row in listed})
    if as_json_:
        print(json.dumps({"compared": compared, "disagreements": [vars(d) for d in found]}, indent=2))
    elif not found:
        console.print(f"the parties agree on {compared} referral{'s' if compared != 1 else ''}")
    else:
        for d in found:
            console.print(d.line())
        console.print(f"{len(found)} disagreement{'s' if len(found) != 1 else ''} in {compared} referral"
                      f"{'s' if compared != 1 else ''}")
    if found:
        raise typer.Exit(2)


@app.command()
def approve(referral: str, quote: str, as_json_: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Approve a quote (goedkeuring opdrachtgever)."""
    command = DecideQuote(referral_id=_uuid(referral), quote_id=_uuid(quote), approve=True)
    _answer(_run(_send("intake", command)), as_json_, lambda r: f"referral {r['referral_id']}: {r['status']}")


@app.command()
def reject(
    referral: str, quote: str,
    reason: Annotated[QuoteRejectReason, typer.Option(help="Why the quote is rejected.")],
    as_json_: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Reject a quote with a reason; Heliomare may send a new one."""
    command = DecideQuote(referral_id=_uuid(referral), quote_id=_uuid(quote), approve=False, reject_reason=reason)
    _answer(_run(_send("intake", command)), as_json_, lambda r: f"referral {r['referral_id']}: {r['status']}")


@app.command()
def accept(referral: str, as_json_: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Heliomare takes on a referral."""
    command = DecideReferral(referral_id=_uuid(referral), accept=True)
    _answer(_run(_send("offer", command)), as_json_, lambda r: f"referral {r['referral_id']}: {r['status']}")


@app.command()
def decline(
    referral: str,
    reason: Annotated[DeclineReason, typer.Option(help="Why Heliomare declines.")],
    as_json_: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Heliomare declines a referral."""
    command = DecideReferral(referral_id=_uuid(referral), accept=False, decline_reason=reason)
    _answer(_run(_send("offer", command)), as_json_, lambda r: f"referral {r['referral_id']}: {r['status']}")


MAX_EUROS = Decimal("250000.00")  # the contract's `Euro` (shared/contracts/events.py): the largest amount it takes


def _euros(value: str | Decimal) -> Decimal:
    """An amount in euros as typed: a plain decimal number, finite, not negative, at most 2 decimals and at most
    MAX_EUROS. Anything else is refused here, before anything is sent."""
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise typer.BadParameter("not an amount in euros, e.g. 4800.00") from None
    if not amount.is_finite():
        raise typer.BadParameter("not an amount in euros (not a finite number)")
    if amount < 0:
        raise typer.BadParameter("an amount cannot be negative")
    if amount > MAX_EUROS:
        raise typer.BadParameter(f"at most {MAX_EUROS} euros")
    if amount.as_tuple().exponent < -2 and amount != amount.quantize(Decimal("0.01")):
        raise typer.BadParameter("at most 2 decimals (whole cents)")
    return amount.quantize(Decimal("0.01"))


@app.command()
def quote(
    referral: str,
    amount: Annotated[Decimal, typer.Option(parser=_euros, metavar="EUROS", help="Total excluding VAT, euros.")],
    start: Annotated[datetime, typer.Option(formats=["%Y-%m-%d"], help="Planned start.")],
    weeks: Annotated[int, typer.Option(min=1, max=260, help="Planned duration.")],
    advance: Annotated[Decimal, typer.Option(parser=_euros, metavar="EUROS",
                                             help="Part invoiced in advance; the rest afterwards.")] = Decimal(0),
    plan: Annotated[bool, typer.Option(help="A reintegration plan rather than a quote.")] = False,
    as_json_: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Heliomare sends a custom quote (art 7.1)."""
    if amount <= 0:
        _refuse([Reason(code=ReasonCode.INVALID_VALUE, field="amount", detail="must be more than 0")])
    if advance > amount:
        _refuse([Reason(code=ReasonCode.INVOICING_SCHEDULE_INVALID, field="advance", detail="more than the amount")])
    tranches = [InvoiceTranche(moment=InvoiceMoment.ADVANCE, amount=advance)] if advance else []
    if amount - advance:
        tranches.append(InvoiceTranche(moment=InvoiceMoment.AFTERWARDS, amount=amount - advance))
    try:
        command = SendQuote(referral_id=_uuid(referral), amount=amount, planned_start=start.date(),
                            duration_weeks=weeks, invoicing=tranches,
                            kind=QuoteKind.REINTEGRATION_PLAN if plan else QuoteKind.QUOTE)
    except ValidationError as exc:
        for reason in reasons_from_validation_error(exc):
            err.print(f"refused: {reason}")
        raise typer.Exit(2) from None
    _answer(_run(_send("offer", command)), as_json_,
            lambda r: f"referral {r['referral_id']}: {r['status']}, quote {r['quotes'][-1]['quote_id']}")


@app.command()
def health(as_json_: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Ask every service to answer over the broker, and how long it took."""
    results = _run(_ping_all())
    if as_json_:
        print(json.dumps(results, indent=2))
    else:
        for name, r in results.items():
            colour = "green" if r["ok"] else "red"
            console.print(f"[{colour}]{name}[/]: {'answers' if r['ok'] else r['error']} ({r['ms']:.0f} ms)")
    if not all(r["ok"] for r in results.values()):
        raise typer.Exit(3)


# -- finance and reports ----------------------------------------------------------------------------------


@app.command()
def invoices(
    year: Annotated[int | None, typer.Option(help="Only invoices dated in this year.")] = None,
    as_json_: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Heliomare's invoices to WerkSaam (art 7): number, date, moment, amounts, and the totals."""
    replies, brief = _run(_send_detailed(["billing"], ListInvoices(year=year)))
    reply = replies["billing"]
    _status_only_note(brief)
    if as_json_ or not reply.ok:
        _answer(reply, as_json_, str)
        return
    rows = reply.result or []
    if not rows:
        err.print("no invoices")
        raise typer.Exit(1)
    if brief:
        table = Table(title=f"invoices · {len(rows)} · numbers only")
        for column in ("number", "moment", "referral"):
            table.add_column(column)
        for i in rows:
            table.add_row(i["number"], i["moment"], i["referral_id"])
        console.print(table)
        return
    table = Table(title=f"invoices · {len(rows)}")
    for column in ("number", "date", "moment", "basis", "excl. VAT", "VAT", "total", "referral"):
        table.add_column(column, justify="right" if column in ("excl. VAT", "VAT", "total") else "left")
    for i in rows:
        table.add_row(i["number"], i["invoice_date"], i["moment"], i["basis"], i["amount_excl_vat"], i["vat_amount"],
                      i["total"], i["referral_id"])
    totals = [sum(Decimal(i[k]) for i in rows) for k in ("amount_excl_vat", "vat_amount", "total")]
    table.add_row("total", "", "", "", *(f"{t:.2f}" for t in totals), "")
    console.print(table)


@app.command()
def report(
    year: Annotated[int, typer.Argument(min=2000, max=2100)],
    source: Annotated[str, typer.Option(help="intake: as WerkSaam received it; trajectory: Heliomare's own.")]
    = "intake",
    svg: Annotated[Path | None, typer.Option(help="Also write the chart as SVG.")] = None,
    as_json_: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The yearly report on executed trajectories (art 6.2, not traceable to persons), with its quarterly
    figures and trend (art 6.1, 3.5)."""
    reply = _run(_send(_service(source) or "intake", GetReport(year=year)))
    if as_json_ or not reply.ok:
        _answer(reply, as_json_, str)
        return
    print_report(console, reply.result)
    if svg:
        svg.write_text(report_view.svg_chart(reply.result))
        err.print(f"wrote {svg}")


dlq = typer.Typer(help="Dead letters: list, show and replay what the parking queues hold.", no_args_is_help=True)
app.add_typer(dlq, name="dlq")


@dlq.command("list")
def dlq_list(
    service: Annotated[str | None, typer.Option(help="One service's parking queue.")] = None,
    as_json_: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """What is parked, why and since when (messages stay parked). The reasons are the ones the service
    recorded when it refused the message or gave up on it (delivery_limit); "recorded: no" marks a message
    the service never recorded: not dead-lettered from its queues, and never replayed."""
    letters = _run(ParkingQueues(get_settings(), actor=_actor).list(_service(service)))
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
    letter = next((d for d in _run(ParkingQueues(get_settings(), actor=_actor).list()) if d.message_id == message_id),
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
        letter = _run(ParkingQueues(get_settings(), actor=_actor).replay(message_id, _service(service)))
    except ReplayRefused as refused:
        err.print(f"refused: {refused}; {message_id} stays parked")
        raise typer.Exit(2) from None
    if letter is None:
        err.print(f"{message_id} is not parked (replayed already, or never dead-lettered)")
        raise typer.Exit(1)
    console.print(f"replayed {message_id} to {letter.routing_key}")


# -- the privacy officer: data-subject requests (GDPR art 15-21, agreement art 10) -------------------------

subject_request = typer.Typer(help="Data-subject requests (GDPR art 15-21, agreement art 10): submit, show, extend, "
                                   "chase. `werkbrug subject-requests` lists them.", no_args_is_help=True)
app.add_typer(subject_request, name="subject-request")

DESK_ZONE = ZoneInfo("Europe/Amsterdam")  # a time typed at WerkSaam's desk without an offset is Dutch time


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
    corrections: Annotated[Path | None, typer.Option(help="Rectification: a JSON file with the corrected fields.",
                                                     exists=True, dir_okay=False)] = None,
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


@subject_request.command("show")
def subject_request_show(
    request_id: Annotated[str, typer.Argument(help="The request id.")],
    html: Annotated[Path | None, typer.Option(help="Write the answer to an access or portability request as a "
                                                   "document for the person (HTML; it holds their data).")] = None,
    as_json_: Annotated[bool, typer.Option("--json", help="The full package: every service's answer.")] = False,
) -> None:
    """One request: the services asked and their answers, the deadline, escalation, what an erasure withheld
    and on which ground, and whether the erasure was verified."""
    reply = _run(_send("subject_rights", GetSubjectRequest(request_id=_uuid(request_id))))
    if as_json_:
        print(reply.model_dump_json(indent=2))
    if not reply.ok:
        unknown = {r.code for r in reply.reasons} == {ReasonCode.UNKNOWN_REQUEST}
        if not as_json_:
            err.print(f"unknown request {request_id}" if unknown else
                      "refused: " + ", ".join(str(r) for r in reply.reasons))
        raise typer.Exit(1 if unknown else 2)
    view = reply.result
    if not as_json_:
        print_subject_request(console, view)
    if html is not None:
        if view["right"] not in {Right.ACCESS, Right.PORTABILITY}:
            err.print(f"refused: the document answers access and portability requests, not {view['right']}")
            raise typer.Exit(2)
        if view["status"] != "completed":
            err.print(f"request {view['request_id']} is {view['status']}: not every service has answered; "
                      "no document written")
            raise typer.Exit(1)
        html.touch(mode=0o600, exist_ok=True)  # it holds the person's data: not for every reader of the disk
        html.write_text(render_access_document(view), encoding="utf-8")
        err.print(f"wrote {html}")


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


@app.command("subject-requests")
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


def _refuse(reasons: list[Reason]) -> NoReturn:
    for reason in reasons:
        err.print(f"refused: {reason}")
    raise typer.Exit(2)


def _service(name: str | None, answering: type | None = None) -> str | None:
    """A service name as typed, checked against the known services (and, with `answering`, those that answer
    that command) before anything connects: a wrong name is refused at once, not after a timeout."""
    known = [s for s in DEFINITIONS if answering is None or answering in DEFINITIONS[s]().command_handlers]
    if name is not None and name not in known:
        err.print(f"unknown service {name!r}; one of {', '.join(known)}")
        raise typer.Exit(2)
    return name


partner = typer.Typer(help="Partners (art 13, 16): admit one by addendum, remove one, list those in force.",
                      no_args_is_help=True)
app.add_typer(partner, name="partner")


@partner.command("add")
def partner_add(
    addendum: Annotated[Path, typer.Argument(help="The addendum as JSON: name, organisation, legal_basis, purpose, "
                                                  "topics, contact, effective_from, consents of every party.")],
    as_json_: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Admit a partner: every party's consent is recorded first, then its broker user, queues and contract."""
    from infra.partners import Addendum, PartnerRefused, add_partner

    try:
        parsed = Addendum.model_validate_json(addendum.read_bytes())
        result = _run(add_partner(get_settings(), parsed))
    except ValidationError as exc:
        for reason in reasons_from_validation_error(exc):
            err.print(f"refused: {reason}")
        raise typer.Exit(2) from None
    except PartnerRefused as exc:
        for reason in exc.reasons:
            err.print(f"refused: {reason}")
        raise typer.Exit(2) from None
    secret = result.asyncapi.with_name("amqp-password")
    if as_json_:
        print(json.dumps({"partner": result.name, "queues": result.queues, "asyncapi": str(result.asyncapi),
                          "password_file": str(secret), "announcement": str(result.announcement)}, indent=2))
        return
    console.print(f"{result.name} joined; queues: {', '.join(result.queues)}")
    console.print(f"its contract: {result.asyncapi}; its broker password (give it over securely): {secret}")


@partner.command("remove")
def partner_remove(
    name: Annotated[str, typer.Argument()],
    kind: Annotated[str, typer.Option(help="left (art 13.2) or removed (art 16.3)")] = "left",
) -> None:
    """End a partner's access at once; what it had not taken is destroyed (README: undelivered messages)."""
    from infra.partners import PartnerRefused, remove_partner
    from shared.contracts.events import DepartureKind

    try:
        destroyed = _run(remove_partner(get_settings(), name, DepartureKind(kind)))
    except (PartnerRefused, ValueError) as exc:
        err.print(f"refused: {exc}")
        raise typer.Exit(2) from None
    console.print(f"{name} {kind}: access revoked, {destroyed} undelivered messages destroyed")


@partner.command("list")
def partner_list(as_json_: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The partners in force, with their legal basis and topics."""
    from infra.partners import PartnerRegister

    partners = PartnerRegister(get_settings()).in_force()
    if as_json_:
        print(json.dumps([a.model_dump(mode="json", exclude={"contact"}) for a in partners.values()], indent=2))
        return
    if not partners:
        err.print("no partners")
        raise typer.Exit(1)
    table = Table("partner", "organisation", "legal basis", "since", "topics")
    for a in partners.values():
        table.add_row(a.name, a.organisation, a.legal_basis, str(a.effective_from), "\n".join(a.topics))
    console.print(table)


# -- personal-data breaches (agreement art 12, GDPR art 33-34) -------------------------------------------------

BREACH_DESKS = {"werksaam": "subject_rights", "heliomare": "offer"}  # each party's breach desk
MOMENT = ["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M%z", "%Y-%m-%dT%H:%M:%S%z",
          "%Y-%m-%dT%H:%M:%S.%f%z"]  # ISO 8601, with or without an offset (none: Dutch time)
breach = typer.Typer(help="Personal-data breaches (art 12): report one, record the AP notification and the decision "
                          "on informing the subjects.", no_args_is_help=True)
app.add_typer(breach, name="breach")


def _desk(party: str) -> str:
    if party not in BREACH_DESKS:
        err.print(f"unknown party {party!r}; one of {', '.join(BREACH_DESKS)}")
        raise typer.Exit(2)
    return BREACH_DESKS[party]


def _services_of(party: str) -> list[str]:
    return [name for name, make in DEFINITIONS.items() if make().party.value == party]


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


@app.command()
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


# -- confidentiality (agreement art 8) -------------------------------------------------------------------------

confidentiality = typer.Typer(help="Confidentiality statements (art 8): who may see personal data.",
                              no_args_is_help=True)
app.add_typer(confidentiality, name="confidentiality")


@confidentiality.command("sign")
def confidentiality_sign(
    staff: Annotated[str, typer.Argument(help="The staff id of who signed.")],
    party: Annotated[str, typer.Option(help="The party the staff member works for (its services keep it).")],
    signed_on: Annotated[datetime, typer.Option(formats=["%Y-%m-%d"], help="When it was signed.")],
    ended_on: Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"],
                                                      help="It no longer applies from this day.")] = None,
    as_json_: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Record a signed confidentiality statement (or its end) at every service of the party."""
    try:
        command = RecordConfidentialityStatement(staff=staff, signed_on=signed_on.date(),
                                                 ended_on=ended_on.date() if ended_on else None)
    except ValidationError as exc:
        for reason in reasons_from_validation_error(exc):
            err.print(f"refused: {reason}")
        raise typer.Exit(2) from None
    services = _services_of(party) if party in BREACH_DESKS else []
    if not services:
        err.print(f"unknown party {party!r}; one of {', '.join(BREACH_DESKS)}")
        raise typer.Exit(2)
    replies = _run(_send_each(services, command))
    if as_json_:
        print(json.dumps({s: r.model_dump(mode="json") for s, r in replies.items()}, indent=2))
    for service, reply in replies.items():
        if not reply.ok:
            err.print(f"{service} refused: {', '.join(str(r) for r in reply.reasons)}")
    if not all(r.ok for r in replies.values()):
        raise typer.Exit(2)
    if not as_json_:
        console.print(f"{staff}: statement of {signed_on.date()} recorded at {', '.join(services)}")


@confidentiality.command("list")
def confidentiality_list(
    party: Annotated[str, typer.Option(help="Whose register.")] = "werksaam",
    as_json_: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The staff with a confidentiality statement, as the party's first service keeps them."""
    _desk(party)  # an unknown party is refused at once
    reply = _run(_send(_services_of(party)[0], ListConfidentialityStatements()))
    if as_json_ or not reply.ok:
        _answer(reply, as_json_, str)
        return
    if not reply.result:
        err.print("no statements")
        raise typer.Exit(1)
    table = Table("staff", "signed on", "ended on", "in force", "recorded by")
    for s in reply.result:
        table.add_row(s["staff"], s["signed_on"], s["ended_on"] or "-", "yes" if s["applies"] else "no",
                      s["recorded_by"])
    console.print(table)


staff_cli = typer.Typer(help="The party's staff register (art 8): who may give which command. Kept by the party's "
                              "identity administration; its services read it again when it changes.",
                         no_args_is_help=True)
app.add_typer(staff_cli, name="staff")


def _party_arg(party: str) -> Party:
    try:
        return Party(party)
    except ValueError:
        err.print(f"unknown party; one of {', '.join(p.value for p in Party)}")
        raise typer.Exit(2) from None


def _register_of(party: Party):
    from shared.staff import StaffRegisterInvalid, read_register, register_path

    path = register_path(get_settings(), party)
    try:
        return path, read_register(path, party)
    except StaffRegisterInvalid as exc:
        err.print(f"refused: {exc}")
        raise typer.Exit(2) from None


@staff_cli.command("list")
def staff_list(
    party: Annotated[str, typer.Option(help="Whose register.")] = "werksaam",
    as_json_: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The members of a party's staff register, with their roles and the days they are in force."""
    path, register = _register_of(_party_arg(party))
    if as_json_:
        print(register.model_dump_json(indent=2))
        return
    if not register.staff:
        err.print(f"no staff register at {path}: nobody may give a command to {party}'s services")
        raise typer.Exit(1)
    today = datetime.now(UTC).date()
    table = Table("staff", "roles", "from", "until", "in force", title=f"staff of {party} · {path}")
    for m in sorted(register.staff, key=lambda m: m.staff_id):
        table.add_row(m.staff_id, ", ".join(sorted(m.roles)), m.valid_from.isoformat(),
                      m.valid_until.isoformat() if m.valid_until else "-", "yes" if m.in_force_on(today) else "no")
    console.print(table)


@staff_cli.command("add")
def staff_add(
    staff: Annotated[str, typer.Argument(help="The staff id (as the party's own login knows them).")],
    party: Annotated[str, typer.Option(help="The party whose register it is.")],
    role: Annotated[list[Role], typer.Option(help="A role (repeat for more).")],
    valid_from: Annotated[datetime | None, typer.Option("--from", formats=["%Y-%m-%d"],
                                                        help="First day in force; default today.")] = None,
    valid_until: Annotated[datetime | None, typer.Option("--until", formats=["%Y-%m-%d"],
                                                         help="Last day in force.")] = None,
) -> None:
    """Add a member to a party's staff register, or give a member new roles or dates."""
    from infra.staff import add_member
    from shared.contracts.staff import StaffMember

    who = _party_arg(party)
    _register_of(who)  # refuses a broken register before writing
    try:
        member = StaffMember(staff_id=staff, roles=frozenset(role),
                             valid_from=(valid_from.date() if valid_from else datetime.now(UTC).date()),
                             valid_until=valid_until.date() if valid_until else None)
    except ValidationError as exc:
        for reason in reasons_from_validation_error(exc):
            err.print(f"refused: {reason}")
        raise typer.Exit(2) from None
    add_member(get_settings(), who, member)
    console.print(f"{staff}: {', '.join(sorted(member.roles))} at {party} from {member.valid_from}")


@staff_cli.command("end")
def staff_end(
    staff: Annotated[str, typer.Argument(help="The staff id.")],
    party: Annotated[str, typer.Option(help="The party whose register it is.")],
    on: Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"], help="Last day in force; default today.")
                  ] = None,
) -> None:
    """End a membership (left, changed job): from the next day the member gives no command."""
    from infra.staff import end_member

    who = _party_arg(party)
    _register_of(who)
    last_day = on.date() if on else datetime.now(UTC).date()
    try:
        ended = end_member(get_settings(), who, staff, last_day)
    except ValidationError:
        err.print("refused: the last day is before the first day in force")
        raise typer.Exit(2) from None
    if ended is None:
        err.print(f"not in {party}'s staff register")
        raise typer.Exit(1)
    console.print(f"{staff}: in force at {party} until {last_day}")


@app.command()
def person(
    referral: Annotated[str, typer.Argument(help="Referral id.")],
    service: Annotated[str, typer.Option(help="intake (WerkSaam) or offer (Heliomare).")] = "intake",
    as_json_: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The person's data of a referral. Only for staff with a confidentiality statement (art 8); the read is
    logged naming you."""
    reply = _run(_send(_service(service) or "intake", GetReferral(referral_id=_uuid(referral), with_person=True)))
    _answer(reply, as_json_, lambda r: "\n".join(f"{k}: {v}" for k, v in (r.get("person") or {}).items()))


async def _send_each(services: list[str], command) -> dict[str, CommandResult]:
    async with CommandClient(get_settings(), timeout=15) as client:
        return {s: await client.send(s, _as_actor(command)) for s in services}


# -- plumbing -----------------------------------------------------------------------------------------------


async def _send(service: str, command) -> CommandResult:
    async with CommandClient(get_settings(), timeout=15) as client:
        return await client.send(service, command.model_copy(update={"actor": _actor}))


async def _send_all(query) -> dict[str, CommandResult]:
    async with CommandClient(get_settings(), timeout=15) as client:
        return {s: await client.send(s, _as_actor(query)) for s in client.reachable(DEFINITIONS)}


def _unsigned(reply: CommandResult) -> bool:
    return not reply.ok and any(r.code == ReasonCode.NO_CONFIDENTIALITY_STATEMENT for r in reply.reasons)


async def _send_detailed(services: list[str] | None, query) -> tuple[dict[str, CommandResult], list[str]]:
    """A referral-level view (ReferralView) from each service (default: every one reachable): with its detail
    where the actor has a confidentiality statement in force (art 8), else the status view the service gives
    without one. Returns the answers and the services that gave the status view only."""
    replies: dict[str, CommandResult] = {}
    brief: list[str] = []
    async with CommandClient(get_settings(), timeout=15) as client:
        for s in services if services is not None else client.reachable(DEFINITIONS):
            reply = await client.send(s, _as_actor(query.model_copy(update={"detail": True})))
            if _unsigned(reply):
                reply = await client.send(s, _as_actor(query.model_copy(update={"detail": False})))
                brief.append(s)
            replies[s] = reply
    return replies, brief


def _status_only_note(brief: list[str]) -> None:
    if brief:
        err.print(f"status view only at {', '.join(brief)}: {_actor} has no confidentiality statement in force "
                  "there (art 8); municipality, support need, outcome, amounts and dates are left out")


def _refuse_unsigned(replies: dict[str, CommandResult]) -> None:
    if unsigned := [s for s, r in replies.items() if _unsigned(r)]:
        err.print(f"refused: no_confidentiality_statement at {', '.join(unsigned)}: comparing the parties' records "
                  f"reads referral-level data (art 8)")
        raise typer.Exit(2)


async def _ping_all() -> dict[str, dict]:
    out = {}
    async with CommandClient(get_settings(), timeout=5) as client:
        for service in client.reachable(DEFINITIONS):
            started = time.perf_counter()
            try:
                reply = await client.send(service, _as_actor(ReadProcessingLog(trace_id="0" * 32, limit=1)))
                out[service] = {"ok": reply.ok, "error": None, "ms": (time.perf_counter() - started) * 1000}
            except TimeoutError:
                out[service] = {"ok": False, "error": "no answer", "ms": (time.perf_counter() - started) * 1000}
    return out


def _answer(reply: CommandResult, as_json_: bool, summary) -> None:
    if as_json_:
        print(reply.model_dump_json(indent=2))
    elif reply.ok:
        console.print(summary(reply.result))
    else:
        for reason in reply.reasons:
            err.print(f"refused: {reason}")
    if not reply.ok:
        raise typer.Exit(2)


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        err.print(f"not an id: {value!r}")
        raise typer.Exit(2) from None


async def _read_all(query: ReadProcessingLog) -> list[dict]:
    records: list[dict] = []
    async with CommandClient(get_settings(), timeout=15) as client:
        for service in client.reachable(DEFINITIONS):
            reply = await client.send(service, _as_actor(query))
            if not reply.ok:
                err.print(f"{service} refused: {', '.join(str(r) for r in reply.reasons)}")
                raise typer.Exit(2)
            records += reply.result or []
    return sorted(records, key=lambda r: r["time"])


def _run(coroutine):
    """Run one conversation with the broker. Whatever goes wrong is explained, in one line, by `main`."""
    return asyncio.run(coroutine)


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


def _local(moment: str) -> str:
    """A stored (UTC) time as people read it: Dutch time, to the minute."""
    return datetime.fromisoformat(moment).astimezone(DESK_ZONE).strftime("%Y-%m-%d %H:%M")


def _utc(value: datetime | None) -> datetime | None:
    """A time a person typed: without an offset it is Dutch time (Europe/Amsterdam), as everywhere in this CLI."""
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=DESK_ZONE)).astimezone(UTC)


# -- one line per failure, and its exit code (one mechanism for every command) --------------------------------

DONE, NOTHING_FOUND, REFUSED, NO_ANSWER, NOT_ADMITTED, FAILED = 0, 1, 2, 3, 4, 5


def _where() -> str:
    """The broker and namespace this run talks to, without credentials."""
    try:
        settings = get_settings()
        url = urlsplit(settings.amqp_url)
        return f"{url.hostname or '?'}:{url.port or 5672}, namespace {settings.namespace}"
    except Exception:  # the settings themselves are wrong: said by the ValidationError's own line
        return "the broker"


def _closed_while_opening(exc: BaseException) -> bool:
    """RabbitMQ answers the opening of a connection on a virtual host that does not exist, or that the user may not
    use, by closing it (530 NOT_ALLOWED); aiormq reports that as an unexpected frame. (The text is read to classify
    the error, never shown.)"""
    text = str(exc)
    return "OpenOk" in text and "Connection.Close" in text


def explain(exc: BaseException) -> tuple[int, list[str]]:
    """An exception as the lines a person reads and the exit code. Only the exception's class decides; its text,
    which may quote a value or a password, is never shown (except the reason codes of a refusal)."""
    from aiormq import exceptions as amqp

    no_vhost = (f"the broker refused the virtual host ({_where()}): it does not exist, or this user may not use it; "
                "check WERKBRUG_NAMESPACE and AMQP_URL")
    match exc:
        case TimeoutError():
            return NO_ANSWER, [f"a service did not answer in time; is it running? ({_where()}; make demo starts "
                               "them)"]
        case amqp.ProbableAuthenticationError() | amqp.AuthenticationError():
            return NOT_ADMITTED, [f"the broker refused the login ({_where()}): wrong user or password in AMQP_URL"]
        case amqp.ConnectionNotAllowed():
            return NOT_ADMITTED, [no_vhost]
        case amqp.InvalidFrameError() if _closed_while_opening(exc):
            return NOT_ADMITTED, [no_vhost]
        case amqp.ChannelAccessRefused():
            return NOT_ADMITTED, [f"the broker refused access ({_where()}): this user may not use that exchange "
                                  "or queue"]
        case amqp.ChannelNotFoundEntity():
            return NO_ANSWER, [f"the namespace's exchanges or queues do not exist ({_where()}); are its services "
                               "started?"]
        case amqp.AMQPConnectionError() | ConnectionError() | socket.gaierror() | amqp.AMQPError():
            return NO_ANSWER, [f"the broker is not reachable ({_where()}); is RabbitMQ running?"]
        case UnicodeError():
            return REFUSED, ["bad input: a file given is not UTF-8 text"]
        case json.JSONDecodeError():
            return REFUSED, ["bad input: a file given is not JSON"]
        case InvalidOperation():
            return REFUSED, ["bad input: not a number"]
        case ValidationError() if exc.title == Settings.__name__:
            return REFUSED, [f"bad setting: {_setting_named(e['loc'])} ({e['type']})" for e in exc.errors()]
        case ValidationError():
            return REFUSED, [f"refused: {reason}" for reason in reasons_from_validation_error(exc)]
        case FlowRefused() | CommandRefused():  # our own words: which party, which service, the broker's code
            return REFUSED, [f"refused: {exc}"]
        case OSError():
            name = Path(str(exc.filename)).name if getattr(exc, "filename", None) else "a file"
            return REFUSED, [f"cannot use {name}: {type(exc).__name__}"]
        case _:
            return FAILED, [f"werkbrug failed unexpectedly ({type(exc).__name__}); nothing was changed by this "
                            "command line itself. The error's text is not shown: it could quote data."]


def _setting_named(loc: tuple) -> str:
    """The environment variable a bad setting came from (its name, never its value)."""
    names = {str(f.validation_alias or name) for name, f in Settings.model_fields.items()}
    return str(loc[0]) if loc and str(loc[0]) in names else "a setting"


def main(argv: list[str] | None = None) -> None:
    """Run the command line; every failure becomes one line and an exit code (see the module's docstring)."""
    logging.getLogger().addHandler(logging.NullHandler())  # libraries' own complaints are explained here instead
    try:
        code = app(args=argv, standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        print(exc.format_message())
        code = REFUSED
    except click.ClickException as exc:
        hint = f" (see {exc.ctx.command_path} --help)" if getattr(exc, "ctx", None) else ""
        _say(f"bad input: {exc.format_message()}{hint}")
        code = REFUSED
    except click.exceptions.Abort:
        _say("aborted")
        code = 130
    except Exception as exc:
        code, lines = explain(exc)
        for line in lines:
            _say(line)
    sys.exit(code if isinstance(code, int) else DONE)


def _say(line: str) -> None:
    """One line on stderr, as it is (no wrapping, no markup)."""
    print(line.replace("\n", " "), file=sys.stderr)


if __name__ == "__main__":
    main()
