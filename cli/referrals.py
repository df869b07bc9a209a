"""Referrals, quotes and decisions (Bijlage 2 steps 1-3): the caseworker's and the account manager's commands."""

import json
import time
import uuid
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.table import Table

from cli.app import (
    ID_ONLY_HELP,
    _answer,
    _one_output,
    _refuse,
    _refuse_unsigned,
    _run,
    _send,
    _send_all,
    _send_detailed,
    _service,
    _status_only_note,
    _uuid,
    app,
    console,
    err,
)
from cli.file_inputs import PersonFile, person_help
from infra.reconcile import REFERRAL_SERVICES
from infra.reconcile import compare as reconcile_one
from infra.reconcile import compare_all as reconcile_all
from shared.contracts.commands import (
    DecideQuote,
    DecideReferral,
    GetReferral,
    ListReferrals,
    SendQuote,
    SubmitReferral,
)
from shared.contracts.events import (
    DeclineReason,
    InvoiceMoment,
    InvoiceTranche,
    QuoteKind,
    QuoteRejectReason,
)
from shared.contracts.reasons import Reason, ReasonCode, reasons_from_validation_error

PANEL = "Referrals and quotes: caseworker (WerkSaam), account manager (Heliomare)"

@app.command(rich_help_panel=PANEL, help=person_help())
def refer(
    person: Annotated[Path, typer.Argument(help="The person's JSON file (its fields are listed above).",
                                            exists=True, dir_okay=False, metavar="PERSON.json")],
    as_json_: Annotated[bool, typer.Option("--json")] = False,
    id_only: Annotated[bool, typer.Option("--id-only", help=ID_ONLY_HELP)] = False,
) -> None:
    _one_output(as_json_, id_only)
    try:
        command = SubmitReferral(**PersonFile.model_validate_json(person.read_bytes()).model_dump())
    except ValidationError as exc:
        _refuse(reasons_from_validation_error(exc))
    _answer(_run(_send("intake", command)), as_json_, lambda r: f"referral {r['referral_id']}: {r['status']}",
            id_only=(lambda r: r["referral_id"]) if id_only else None)


@app.command(rich_help_panel=PANEL)
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


@app.command(rich_help_panel=PANEL)
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


@app.command(rich_help_panel=PANEL)
def reconcile(
    referral: Annotated[str | None, typer.Argument(help="Referral id; without it, every referral.")] = None,
    wait: Annotated[float, typer.Option(min=0, max=600, metavar="SECONDS",
                                        help="Ask again, with growing pauses, until the parties agree or SECONDS "
                                             "have passed (a message still on its way settles).")] = 0,
    as_json_: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Compare both parties' records and print every fact they disagree on (exit 2 when they do).

    Intake's records against offer's, trajectory's and billing's: state, quotes, trajectory id, dates, outcome,
    invoices, amounts invoiced vs approved. A message still on its way shows too: run it again, or --wait. Needs a
    staff id on both parties' registers, with a confidentiality statement at each (art 8)."""
    rid = _uuid(referral) if referral is not None else None
    deadline, pause = time.monotonic() + wait, 0.1
    while True:
        found, compared = _compare(rid)
        if not found or time.monotonic() + pause > deadline:
            break
        time.sleep(pause)
        pause = min(pause * 2, 2.0)
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


def _compare(rid: uuid.UUID | None) -> tuple[list, int]:
    """The disagreements about one referral (or all) and how many referrals were compared."""
    if rid is not None:
        views = _run(_send_all(GetReferral(referral_id=rid, detail=True)))
        _refuse_unsigned(views)
        if not any(r.ok for r in views.values()):
            err.print(f"unknown referral {rid}")
            raise typer.Exit(1)
        return reconcile_one(str(rid), {s: r.result if r.ok else None for s, r in views.items()}), 1
    lists = _run(_send_all(ListReferrals(limit=1000, detail=True)))
    _refuse_unsigned(lists)
    refused = [s for s, r in lists.items() if not r.ok]
    if refused:
        err.print(f"refused by {', '.join(refused)}")
        raise typer.Exit(2)
    rows = {s: r.result for s, r in lists.items() if s in REFERRAL_SERVICES}
    return reconcile_all(rows), len({row["referral_id"] for listed in rows.values() for row in listed})


@app.command(rich_help_panel=PANEL)
def approve(referral: str, quote: str, as_json_: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Approve a quote (goedkeuring opdrachtgever)."""
    command = DecideQuote(referral_id=_uuid(referral), quote_id=_uuid(quote), approve=True)
    _answer(_run(_send("intake", command)), as_json_, lambda r: f"referral {r['referral_id']}: {r['status']}")


@app.command(rich_help_panel=PANEL)
def reject(
    referral: str, quote: str,
    reason: Annotated[QuoteRejectReason, typer.Option(help="Why the quote is rejected.")],
    as_json_: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Reject a quote with a reason; Heliomare may send a new one."""
    command = DecideQuote(referral_id=_uuid(referral), quote_id=_uuid(quote), approve=False, reject_reason=reason)
    _answer(_run(_send("intake", command)), as_json_, lambda r: f"referral {r['referral_id']}: {r['status']}")


@app.command(rich_help_panel=PANEL)
def accept(referral: str, as_json_: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Heliomare takes on a referral."""
    command = DecideReferral(referral_id=_uuid(referral), accept=True)
    _answer(_run(_send("offer", command)), as_json_, lambda r: f"referral {r['referral_id']}: {r['status']}")


@app.command(rich_help_panel=PANEL)
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


@app.command(rich_help_panel=PANEL)
def quote(
    referral: str,
    amount: Annotated[Decimal, typer.Option(parser=_euros, metavar="EUROS", help="Total excluding VAT, euros.")],
    start: Annotated[datetime, typer.Option(formats=["%Y-%m-%d"], help="Planned start.")],
    weeks: Annotated[int, typer.Option(min=1, max=260, help="Planned duration.")],
    advance: Annotated[Decimal, typer.Option(parser=_euros, metavar="EUROS",
                                             help="Part invoiced in advance; the rest afterwards.")] = Decimal(0),
    plan: Annotated[bool, typer.Option(help="A reintegration plan rather than a quote.")] = False,
    as_json_: Annotated[bool, typer.Option("--json")] = False,
    id_only: Annotated[bool, typer.Option("--id-only", help=ID_ONLY_HELP)] = False,
) -> None:
    """Heliomare sends a custom quote (art 7.1)."""
    _one_output(as_json_, id_only)
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
            lambda r: f"referral {r['referral_id']}: {r['status']}, quote {r['quotes'][-1]['quote_id']}",
            id_only=(lambda r: r["quotes"][-1]["quote_id"]) if id_only else None)

@app.command(rich_help_panel=PANEL)
def person(
    referral: Annotated[str, typer.Argument(help="Referral id.")],
    service: Annotated[str, typer.Option(help="intake (WerkSaam) or offer (Heliomare).")] = "intake",
    as_json_: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The person's data of a referral. Only for staff with a confidentiality statement (art 8); the read is
    logged naming you."""
    reply = _run(_send(_service(service) or "intake", GetReferral(referral_id=_uuid(referral), with_person=True)))
    _answer(reply, as_json_, lambda r: "\n".join(f"{k}: {v}" for k, v in (r.get("person") or {}).items()))

