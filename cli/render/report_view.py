"""Showing the yearly report (a `report.published` payload) as text rows and as an SVG chart.

Used by the demo and by anyone who holds a report (WerkSaam's intake keeps what it received; Heliomare's
trajectory service computes it). The SVG is written by hand: no plotting dependency for one chart.
Every count is rounded to a multiple of 5 on its own, so totals need not add up; an amount or a duration
not given for a group too small is shown as "·".
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from xml.sax.saxutils import escape

SUPPRESSED = "·"
TITLES = {
    "started": "Trajectories started", "ended": "Trajectories ended", "running": "Running at quarter end",
    "outcomes": "Outcomes (ended in the year)", "invoices": "Invoices", "invoiced_amount": "Invoiced, EUR excl. VAT",
    "paid_work": "Ended with paid work",
}


def cell(value: Any, money: bool = False) -> str:
    if value is None:
        return SUPPRESSED
    number = Decimal(str(value))
    return f"{number:,.2f}" if money else f"{int(number)}"


def rounding_note(report: dict[str, Any]) -> str:
    """What the reader must know to read the figures (art 6.3), in one line."""
    edition = f"correction {report['edition'] - 1} · " if report["edition"] > 1 else ""
    return (f"{edition}counts rounded to multiples of {report['rounding_base']} (totals on their own, so they need not "
            f"add up), amounts to EUR {report['amount_step']:,} and only for {report['min_invoices']}+ invoices, "
            f"durations for {report['min_group_durations']}+ ended ({SUPPRESSED}: group too small) · left out "
            f"(restriction, objection): {report['left_out']}")


def table_rows(table: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of one report table (counts, or the invoiced amounts), with the municipality first."""
    money = table["measure"] == "invoiced_amount"
    header = ["municipality", *table["columns"]]
    rows = [[row["municipality"] or "all", *(cell(v, money) for v in row["values"])] for row in table["rows"]]
    return header, rows


def duration_rows(report: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    header = ["group", "period", "ended", "median weeks", "p25", "p75"]
    rows = [[d["municipality"] or "all", d["period"], cell(d["ended"]),
             *(SUPPRESSED if d[k] is None else str(d[k]) for k in ("median_weeks", "p25_weeks", "p75_weeks"))]
            for d in report["durations"]]
    return header, rows


def trend_rows(report: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    header = ["quarter", "ended", "paid work", "share paid work"]
    rows = [[p["quarter"], cell(p["ended"]), cell(p["paid_work"]),
             SUPPRESSED if p["share_paid_work"] is None else f"{Decimal(str(p['share_paid_work'])):.0%}"]
            for p in report["trend"]]
    return header, rows


def svg_chart(report: dict[str, Any]) -> str:
    """Bars: trajectories started and ended per quarter (all municipalities, rounded); line: share reaching paid
    work."""
    tables = {t["measure"]: t for t in report["tables"]}

    def totals(measure: str) -> list[int | None]:
        row = next(r for r in tables[measure]["rows"] if r["municipality"] is None)
        return [None if v is None else int(Decimal(str(v))) for v in row["values"][:4]]

    started, ended = totals("started"), totals("ended")
    shares = [None if p["share_paid_work"] is None else float(p["share_paid_work"]) for p in report["trend"]]
    width, height, left, bottom, top = 760, 360, 60, 300, 50
    plot_w, plot_h = width - left - 60, bottom - top
    peak = max([v for v in started + ended if v] + [1])
    group = plot_w / 4
    bar = group / 4
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
           f'<title>{escape(f"werkbrug report {report["year"]}")}</title>',
           '<rect width="100%" height="100%" fill="white"/>',
           f'<text x="{left}" y="24" font-size="15" font-weight="bold">Trajectories {report["year"]}: started and '
           f'ended per quarter, share reaching paid work</text>',
           f'<text x="{left}" y="40" fill="#666">counts rounded to multiples of {report["rounding_base"]}; '
           f'trend: {escape(report["trend_signal"])}</text>',
           f'<line x1="{left}" y1="{bottom}" x2="{left + plot_w}" y2="{bottom}" stroke="#333"/>',
           f'<line x1="{left}" y1="{top}" x2="{left}" y2="{bottom}" stroke="#333"/>',
           f'<text x="{left - 8}" y="{top + 4}" text-anchor="end">{peak}</text>',
           f'<text x="{left - 8}" y="{bottom + 4}" text-anchor="end">0</text>',
           f'<text x="{left + plot_w + 8}" y="{top + 4}">100%</text>']
    points = []
    for i in range(4):
        x0 = left + i * group + bar
        for j, (values, colour) in enumerate(((started, "#4e79a7"), (ended, "#f28e2b"))):
            x, v = x0 + j * bar, values[i]
            if v is None:
                out.append(f'<text x="{x + bar / 2:.1f}" y="{bottom - 6}" text-anchor="middle">{SUPPRESSED}</text>')
                continue
            h = plot_h * v / peak
            out.append(f'<rect x="{x:.1f}" y="{bottom - h:.1f}" width="{bar - 2:.1f}" height="{h:.1f}" '
                       f'fill="{colour}"><title>{v}</title></rect>')
        out.append(f'<text x="{x0 + bar:.1f}" y="{bottom + 18}" text-anchor="middle">Q{i + 1}</text>')
        if shares[i] is not None:
            points.append((x0 + bar, bottom - plot_h * shares[i]))
    if len(points) > 1:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        out.append(f'<polyline points="{path}" fill="none" stroke="#59a14f" stroke-width="2"/>')
    out += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="#59a14f"/>' for x, y in points]
    legend = (("#4e79a7", "started"), ("#f28e2b", "ended"), ("#59a14f", "share paid work (right axis)"))
    for k, (colour, label) in enumerate(legend):
        x = left + k * 170
        out.append(f'<rect x="{x}" y="{bottom + 32}" width="12" height="12" fill="{colour}"/>')
        out.append(f'<text x="{x + 18}" y="{bottom + 43}">{label}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
