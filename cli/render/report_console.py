"""The yearly report in a terminal (used by `make demo` and `werkbrug report`)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from cli.render import report_view


def print_report(console: Console, data: dict) -> None:
    console.print(f"[bold]Yearly report {data['year']}[/] (art 6.2), published {data['published_on']} · "
                  f"trend: {data['trend_signal']}")
    console.print(report_view.rounding_note(data))
    sections = [(report_view.TITLES.get(t["measure"], t["measure"]), report_view.table_rows(t))
                for t in [*data["tables"], data["invoiced_amount"]]]
    sections += [("Duration of ended trajectories", report_view.duration_rows(data)),
                 ("Quarterly figures and trend (art 6.1, 3.5)", report_view.trend_rows(data))]
    for title, (header, rows) in sections:
        table = Table(title=title)
        for i, name in enumerate(header):
            table.add_column(name, justify="left" if i == 0 else "right")
        for row in rows:
            table.add_row(*row)
        console.print(table)
