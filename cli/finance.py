"""Finance and reports: invoices (art 7) and the yearly report (art 6.2): its publication by Heliomare's account
manager, and the report as WerkSaam received it (or Heliomare's own)."""

from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from typer.core import TyperGroup

from cli.app import _answer, _run, _send, _send_detailed, _service, _status_only_note, _uuid, app, console, err
from cli.render import report_view
from cli.render.report_console import print_report
from shared.contracts.commands import (
    GetReport,
    ListInvoices,
    PublishReport,
)

PANEL = "Finance and the yearly report"

@app.command(rich_help_panel=PANEL)
def invoices(
    year: Annotated[int | None, typer.Option(help="Only invoices dated in this year.")] = None,
    referral: Annotated[str | None, typer.Option(help="Only this referral's invoices: its trajectory's advance "
                                                      "and afterwards invoices.")] = None,
    as_json_: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Heliomare's invoices to WerkSaam (art 7): number, date, moment, amounts, and the totals.

    Dates and amounts need a confidentiality statement at billing (art 8); without one, the numbers only."""
    query = ListInvoices(year=year, referral_id=_uuid(referral) if referral is not None else None)
    replies, brief = _run(_send_detailed(["billing"], query))
    reply = replies["billing"]
    _status_only_note(brief)
    if as_json_ or not reply.ok:
        _answer(reply, as_json_, str)
        return
    rows = reply.result or []
    if not rows:
        err.print(f"no invoices for referral {referral}" if referral else "no invoices")
        raise typer.Exit(1)
    title = f"invoices of referral {referral} (trajectory {rows[0]['trajectory_id']})" if referral else "invoices"
    if brief:
        table = Table(title=f"{title} · {len(rows)} · numbers only")
        for column in ("number", "moment", "referral"):
            table.add_column(column)
        for i in rows:
            table.add_row(i["number"], i["moment"], i["referral_id"])
        console.print(table)
        return
    table = Table(title=f"{title} · {len(rows)}")
    for column in ("number", "date", "moment", "basis", "excl. VAT", "VAT", "total", "referral"):
        table.add_column(column, justify="right" if column in ("excl. VAT", "VAT", "total") else "left")
    for i in rows:
        table.add_row(i["number"], i["invoice_date"], i["moment"], i["basis"], i["amount_excl_vat"], i["vat_amount"],
                      i["total"], i["referral_id"])
    totals = [sum(Decimal(i[k]) for i in rows) for k in ("amount_excl_vat", "vat_amount", "total")]
    table.add_row("total", "", "", "", *(f"{t:.2f}" for t in totals), "")
    console.print(table)


class _ShowByDefault(TyperGroup):
    """`werkbrug report 2027` is `werkbrug report show 2027`, as it was before `report publish` came."""

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["show", *args]
        return super().parse_args(ctx, args)


report = typer.Typer(cls=_ShowByDefault, no_args_is_help=True,
                     help="The yearly report on executed trajectories (art 6.2, not traceable to persons): `report "
                          "YEAR` (or `report show YEAR`) shows it, `report publish YEAR` sends it to WerkSaam.")
app.add_typer(report, name="report", rich_help_panel=PANEL)


@report.command("show")
def report_show(
    year: Annotated[int, typer.Argument(min=2000, max=2100)],
    source: Annotated[str, typer.Option(help="intake: as WerkSaam received it; trajectory: Heliomare's own (before "
                                             "publication, a preview).")] = "intake",
    svg: Annotated[Path | None, typer.Option(help="Also write the chart as SVG.")] = None,
    as_json_: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The yearly report on executed trajectories (art 6.2, not traceable to persons), with its quarterly
    figures and trend (art 6.1, 3.5)."""
    reply = _run(_send(_service(source, answering=GetReport) or "intake", GetReport(year=year)))
    if as_json_ or not reply.ok:
        _answer(reply, as_json_, str)
        return
    print_report(console, reply.result)
    if svg:
        svg.write_text(report_view.svg_chart(reply.result))
        err.print(f"wrote {svg}")


@report.command("publish")
def report_publish(
    year: Annotated[int, typer.Argument(min=2000, max=2100)],
    correction: Annotated[bool, typer.Option(help="A correction of the year's earlier publication (edition 2, 3, "
                                                  "...): a figure changes only where its count moved by 5 or more "
                                                  "(art 6.3).")] = False,
    as_json_: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Send the yearly report of a closed year to WerkSaam (art 6.2; account manager, Heliomare).

    A year is published once, from 1 February of the next year (earlier: report_period_open; again:
    report_already_published: send a --correction)."""

    def summary(r: dict) -> str:
        corrects = f", correcting report {r['corrects']}" if r.get("corrects") else ""
        return (f"report {r['year']} edition {r['edition']} published on {r['published_on']} and sent to WerkSaam "
                f"(report {r['report_id']}{corrects})")

    _answer(_run(_send("trajectory", PublishReport(year=year, correction=correction))), as_json_, summary)
