"""The yearly report (art 6.2, 6.3): counts below 5 suppressed, with complementary suppression so that no
suppressed count can be recomputed from the totals; quarterly figures and the trend (art 6.1, 3.5)."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from datetime import date, timedelta
from decimal import Decimal

import pytest

from services.trajectory.report import (
    THRESHOLD,
    Fact,
    alternative,
    build_grid,
    build_report,
    exposed,
    signal,
    suppress,
)
from shared.contracts.events import Outcome, ReportColumn, ReportMeasure, ReportPublished, TrendPoint, TrendSignal
from shared.contracts.parties import Municipality
from shared.report_view import svg_chart, table_rows

YEAR = 2027
M = Municipality


def facts(spec: dict[tuple[Municipality, int], int], ended_after_weeks: int | None = 20,
          outcome=Outcome.PAID_WORK) -> list[Fact]:
    """`spec`: (municipality, month of start) -> number of trajectories started then."""
    out = []
    for (m, month), n in spec.items():
        for i in range(n):
            start = date(YEAR, month, 1 + i % 27)
            end = start + timedelta(weeks=ended_after_weeks) if ended_after_weeks else None
            out.append(Fact(m, start, end, outcome if end else None, ((start, Decimal("1000.00")),)))
    return out


SCENARIO = facts({(M.HOORN, 1): 3, (M.HOORN, 4): 10, (M.MEDEMBLIK, 1): 8, (M.MEDEMBLIK, 4): 9,
                  (M.ENKHUIZEN, 2): 12, (M.ENKHUIZEN, 5): 6})
CELL_OF_3 = (ReportMeasure.STARTED, M.HOORN, ReportColumn.Q1)


def published(report: ReportPublished) -> dict[tuple, Decimal]:
    return {(t.measure, row.municipality, c): v for t in report.tables for row in t.rows
            for c, v in zip(t.columns, row.values, strict=True) if v is not None}


def test_a_cell_of_3_is_not_published():
    grid = build_grid(SCENARIO, YEAR)
    assert grid.values[CELL_OF_3] == 3
    report = build_report(SCENARIO, YEAR, date(YEAR + 1, 1, 15), uuid.uuid4())
    started = next(t for t in report.tables if t.measure == ReportMeasure.STARTED)
    hoorn = next(r for r in started.rows if r.municipality == M.HOORN)
    assert hoorn.values[started.columns.index(ReportColumn.Q1)] is None


def test_a_cell_of_3_cannot_be_recovered_from_the_totals():
    """Exactly: the equations (rows, columns, linked tables) do not determine it; and concretely: another
    table with non-negative counts agrees with everything published and has another value there."""
    grid = build_grid(SCENARIO, YEAR)
    hidden = suppress(grid)
    assert CELL_OF_3 in hidden and exposed(grid, hidden) == set()
    other = alternative_completion(grid, hidden, CELL_OF_3)
    assert other[CELL_OF_3] != 3 and all(v >= 0 for v in other.values())
    for line in grid.lines:  # the alternative satisfies every published total
        assert sum(other[k] for k in line.members) == other[line.total]
    assert all(other[k] == v for k, v in grid.values.items() if k not in hidden)


def test_a_single_small_cell_in_a_row_gets_a_complement_in_its_row():
    grid = build_grid(SCENARIO, YEAR)
    hidden = suppress(grid)
    hoorn_row = [(ReportMeasure.STARTED, M.HOORN, q) for q in (ReportColumn.Q1, ReportColumn.Q2,
                                                               ReportColumn.Q3, ReportColumn.Q4, ReportColumn.YEAR)]
    assert sum(k in hidden for k in hoorn_row) >= 2


@pytest.mark.parametrize("seed", range(12))
def test_no_suppressed_count_is_determined_and_no_count_below_5_is_published(seed):
    import random

    rng = random.Random(seed)
    spec = {(rng.choice(list(M)), rng.randrange(1, 13)): rng.randrange(1, 9) for _ in range(14)}
    mixed = facts(spec, ended_after_weeks=rng.choice([8, 20, None]),
                  outcome=rng.choice(list(Outcome)))
    grid = build_grid(mixed, YEAR)
    hidden = suppress(grid)
    assert exposed(grid, hidden) == set()
    for cell in (k for k in hidden if grid.values[k] > 0):  # each has a concrete alternative
        assert alternative_completion(grid, hidden, cell)[cell] != grid.values[cell]
    report = build_report(mixed, YEAR, date(YEAR + 1, 1, 15), uuid.uuid4())
    for (measure, _, _), value in published(report).items():
        if measure != ReportMeasure.INVOICED_AMOUNT:
            assert value >= THRESHOLD
    for point in report.trend:
        assert point.ended is None or point.ended >= THRESHOLD
        assert point.paid_work is None or point.paid_work >= THRESHOLD


def test_invoiced_amounts_are_shown_only_where_the_invoice_count_is():
    report = build_report(SCENARIO, YEAR, date(YEAR + 1, 1, 15), uuid.uuid4())
    shown = published(report)
    for (_, m, c) in [k for k in shown if k[0] == ReportMeasure.INVOICED_AMOUNT]:
        assert (ReportMeasure.INVOICES, m, c) in shown
    assert shown[(ReportMeasure.INVOICED_AMOUNT, None, ReportColumn.YEAR)] == Decimal("48000.00")


def test_durations_are_given_only_for_groups_of_at_least_5():
    report = build_report(SCENARIO, YEAR, date(YEAR + 1, 1, 15), uuid.uuid4())
    for figure in report.durations:
        group = [f for f in SCENARIO if f.end_date and (figure.municipality in (None, f.municipality))]
        if figure.median_weeks is not None:
            assert len(group) >= THRESHOLD
    whole_year = next(d for d in report.durations if d.municipality is None and d.period == ReportColumn.YEAR)
    assert whole_year.median_weeks == Decimal("20.0") and whole_year.ended == 48


def test_the_report_is_not_about_a_person_and_carries_no_ids_of_people():
    report = build_report(SCENARIO, YEAR, date(YEAR + 1, 1, 15), uuid.uuid4())
    assert ReportPublished.about_a_person is False
    assert "psn_" not in report.model_dump_json()


def test_quarterly_share_reaching_paid_work_and_its_trend():
    points = [TrendPoint(quarter=q, ended=10, paid_work=p, share_paid_work=Decimal(p) / 10)
              for q, p in zip((ReportColumn.Q1, ReportColumn.Q2, ReportColumn.Q3), (5, 6, 8), strict=True)]
    assert signal(points) == TrendSignal.RISING
    assert signal(points[:1]) == TrendSignal.INSUFFICIENT_DATA
    assert signal(list(reversed(points))) == TrendSignal.FALLING
    many = facts({(M.HOORN, 1): 6, (M.MEDEMBLIK, 1): 6, (M.HOORN, 4): 6, (M.MEDEMBLIK, 4): 6}, ended_after_weeks=2)
    report = build_report(many, YEAR, date(YEAR + 1, 1, 15), uuid.uuid4())
    assert [(p.ended, p.paid_work, p.share_paid_work) for p in report.trend[:2]] == [
        (12, 12, Decimal("1.000")), (12, 12, Decimal("1.000"))]
    assert report.trend_signal == TrendSignal.STABLE


def test_the_report_renders_as_a_table_and_as_an_svg_chart():
    report = build_report(SCENARIO, YEAR, date(YEAR + 1, 1, 15), uuid.uuid4()).model_dump(mode="json")
    header, rows = table_rows(report["tables"][0])
    assert header[0] == "municipality" and rows[-1][0] == "all" and "·" in rows[[r[0] for r in rows].index("hoorn")]
    svg = svg_chart(report)
    root = ET.fromstring(svg)  # noqa: S314 (our own output)
    assert root.tag.endswith("svg") and root.findall(".//{http://www.w3.org/2000/svg}rect")


def test_an_empty_year_is_all_suppressed_and_still_a_valid_report():
    report = build_report([], YEAR, date(YEAR + 1, 1, 15), uuid.uuid4())
    assert all(v is None for t in report.tables for r in t.rows for v in r.values
               if t.measure != ReportMeasure.INVOICED_AMOUNT)
    assert report.trend_signal == TrendSignal.INSUFFICIENT_DATA


# -- the certificate, checked independently ---------------------------------------------------------------------


def alternative_completion(grid, hidden, cell) -> dict:
    """Another table, from the report's own certificate search, checked here on its own terms: non-negative,
    every line adds up, everything published unchanged, and `cell` different."""
    changes = alternative(grid, hidden, cell)
    assert changes is not None, "the cell is pinned down by the published totals"
    other = dict(grid.values)
    for k, step in changes.items():
        assert k in hidden, "only suppressed cells may differ"
        other[k] += step
    assert all(v >= 0 for v in other.values())
    assert all(sum(other[k] for k in line.members) == other[line.total] for line in grid.lines)
    return other
