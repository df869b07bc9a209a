"""Finance and reports: invoices (art 7) and the yearly report (art 6.2)."""

from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cli.app import _answer, _run, _send, _send_detailed, _service, _status_only_note, app, console, err
from cli.render import report_view
from cli.render.report_console import print_report
from shared.contracts.commands import (
    GetReport,
    ListInvoices,
)

PANEL = "Finance and the yearly report"

@app.command(rich_help_panel=PANEL)
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


@app.command(rich_help_panel=PANEL)
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

