"""The yearly report on executed trajectories (art 6.2) and the quarterly figures and trend (art 6.1, 3.5).

Pure computation, no I/O. The report must not be traceable to persons (art 6.3), also not by subtracting
one published figure from another: a total from its cells, one municipality from all, or a figure from
the same figure in an earlier publication. So statistical disclosure control covers every publication:

- **Rounding, not suppression.** Every count, cells and totals alike, is rounded on its own to the nearest
  multiple of 5 (0-2 show as 0, 3-7 as 5), as Statistics Netherlands does. Every published count, and so
  every difference of two of them, is a multiple of 5: no difference can say "1 more in Hoorn". Totals do
  not always add up; that is the price, and the report says so.
- **Amounts** are rounded to a multiple of EUR 5,000 and shown only for a group with at least
  `MIN_INVOICES` (10) invoices: one invoice (a few thousand euros) is below the rounding step, and with ten
  of them no single one dominates the sum.
- **Durations** (median and quartiles, whole weeks) only for a group of at least `MIN_GROUP_DURATIONS`
  (20) ended trajectories: each quartile then has at least 5 trajectories on either side of it, so none of
  them is one person's duration or moved by one person alone by more than a rounding.
- **The trend** (share reaching paid work) is computed from the rounded counts: it tells nothing more.
- **A period is published once, after it closed** (`closes_on`: 1 February of the next year, so that
  December's ends and final invoices are in). A later publication of the same year is a correction, and
  a correction is protected the same way: a figure is published anew only where the count it rests on
  (the count itself, the invoices of an amount, the ended trajectories of a duration) moved by at least
  the rounding base (5) since the figure was last published; otherwise the earlier figure is repeated.
  One more ended trajectory, one erased person, one late invoice: every published figure stays as it was.
  Several changes in one cell together show, rounded, once they add up to 5.
- **Restricted (art 18) and objecting (art 21) persons are left out** of the figures (the handler does
  that); `left_out` says how many, rounded and corrected like every count.

`figures` are the published values by key (JSON-able: counts int, amounts decimal strings or None,
durations [median, p25, p75] or None); `anchors` the true count each figure rests on at its last
publication. Both are kept by Heliomare (never sent) so that a correction can apply the rule above.
"""

from __future__ import annotations

import statistics
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from shared.contracts.events import (
    AMOUNT_STEP,
    ROUNDING_BASE,
    AmountRow,
    AmountTable,
    CountRow,
    CountTable,
    DurationFigure,
    Outcome,
    ReportColumn,
    ReportMeasure,
    ReportPublished,
    TrendPoint,
    TrendSignal,
)
from shared.contracts.parties import Municipality

BASE = ROUNDING_BASE
MIN_INVOICES = 10
MIN_GROUP_DURATIONS = 20
CLOSED_AFTER = timedelta(days=31)  # after the year's end: the year may be published from 1 February
QUARTERS = (ReportColumn.Q1, ReportColumn.Q2, ReportColumn.Q3, ReportColumn.Q4)
FLOWS = (*QUARTERS, ReportColumn.YEAR)
OUTCOME_COLUMNS = {Outcome.PAID_WORK: ReportColumn.PAID_WORK, Outcome.EDUCATION: ReportColumn.EDUCATION,
                   Outcome.OTHER_PROVISION: ReportColumn.OTHER_PROVISION,
                   Outcome.STOPPED_EARLY: ReportColumn.STOPPED_EARLY}
MUNICIPALITIES: tuple[Municipality | None, ...] = (*Municipality, None)  # None: all municipalities
# The count tables: measure, columns, rows.
COUNT_TABLES: tuple[tuple[ReportMeasure, tuple[ReportColumn, ...], tuple[Municipality | None, ...]], ...] = (
    (ReportMeasure.STARTED, FLOWS, MUNICIPALITIES),
    (ReportMeasure.ENDED, FLOWS, MUNICIPALITIES),
    (ReportMeasure.RUNNING, QUARTERS, MUNICIPALITIES),
    (ReportMeasure.OUTCOMES, (*OUTCOME_COLUMNS.values(), ReportColumn.TOTAL), MUNICIPALITIES),
    (ReportMeasure.INVOICES, FLOWS, MUNICIPALITIES),
    (ReportMeasure.PAID_WORK, FLOWS, (None,)),
)
DURATION_GROUPS: tuple[tuple[Municipality | None, ReportColumn], ...] = (
    *((None, q) for q in FLOWS), *((m, ReportColumn.YEAR) for m in Municipality))
LEFT_OUT = "left_out"
TREND_MARGIN = Decimal("0.05")
CENT = Decimal("0.01")


@dataclass(frozen=True)
class Fact:
    """What the report counts of one trajectory: no subject, no id."""

    municipality: Municipality
    start_date: date | None
    end_date: date | None = None
    outcome: Outcome | None = None
    invoices: tuple[tuple[date, Decimal], ...] = ()


def closes_on(year: int) -> date:
    """The first day on which the year counts as closed and may be published."""
    return date(year + 1, 1, 1) + CLOSED_AFTER


def quarter_of(day: date) -> ReportColumn:
    return QUARTERS[(day.month - 1) // 3]


def quarter_end(year: int, q: ReportColumn) -> date:
    month = 3 * (QUARTERS.index(q) + 1)
    return date(year, month, 31 if month in (3, 12) else 30)


def round_count(n: int) -> int:
    """To the nearest multiple of 5, halves up: 0-2 -> 0, 3-7 -> 5, 8-12 -> 10."""
    return BASE * ((n + BASE // 2) // BASE)


def round_amount(amount: Decimal) -> Decimal:
    return ((amount / AMOUNT_STEP).quantize(Decimal(1), rounding=ROUND_HALF_UP) * AMOUNT_STEP).quantize(CENT)


def key(measure: ReportMeasure | str, municipality: Municipality | None, column: ReportColumn) -> str:
    return f"{measure}:{municipality.value if municipality else 'all'}:{column}"


# -- the true values ---------------------------------------------------------------------------------------


@dataclass
class Truth:
    """The exact figures of one year (kept inside Heliomare, never sent)."""

    counts: dict[str, int]
    amounts: dict[str, Decimal]  # invoiced_amount key -> exact sum (its count: the invoices key)
    durations: dict[str, list[int]]  # duration key -> days of each ended trajectory in the group


def truth_of(facts: Iterable[Fact], year: int, left_out: int = 0) -> Truth:
    counts: dict[str, int] = {}
    amounts: dict[str, Decimal] = {}
    durations: dict[str, list[int]] = {f"duration:{m.value if m else 'all'}:{c}": [] for m, c in DURATION_GROUPS}

    def add(measure: ReportMeasure, m: Municipality, columns: Iterable[ReportColumn], amount: Decimal | None = None):
        for place in (m, None):
            for c in columns:
                k = key(measure, place, c)
                counts[k] = counts.get(k, 0) + 1
                if amount is not None:
                    ka = key(ReportMeasure.INVOICED_AMOUNT, place, c)
                    amounts[ka] = amounts.get(ka, Decimal(0)) + amount

    for f in facts:
        m = f.municipality
        if f.start_date and f.start_date.year == year:
            add(ReportMeasure.STARTED, m, (quarter_of(f.start_date), ReportColumn.YEAR))
        if f.end_date and f.end_date.year == year:
            q = quarter_of(f.end_date)
            add(ReportMeasure.ENDED, m, (q, ReportColumn.YEAR))
            if f.outcome:
                add(ReportMeasure.OUTCOMES, m, (OUTCOME_COLUMNS[f.outcome], ReportColumn.TOTAL))
                if f.outcome == Outcome.PAID_WORK:
                    add(ReportMeasure.PAID_WORK, m, (q, ReportColumn.YEAR))
            if f.start_date:
                days = (f.end_date - f.start_date).days
                for group in (key("duration", None, q), key("duration", None, ReportColumn.YEAR),
                              key("duration", m, ReportColumn.YEAR)):
                    durations[group].append(days)
        for q in QUARTERS:
            end_of_q = quarter_end(year, q)
            if f.start_date and f.start_date <= end_of_q and (f.end_date is None or f.end_date > end_of_q):
                add(ReportMeasure.RUNNING, m, (q,))
        for day, amount in f.invoices:
            if day.year == year:
                add(ReportMeasure.INVOICES, m, (quarter_of(day), ReportColumn.YEAR), amount)
    published = {key(measure, m, c): counts.get(key(measure, m, c), 0)  # every published cell, zeros included
                 for measure, columns, rows in COUNT_TABLES for m in rows for c in columns}
    published[LEFT_OUT] = left_out
    return Truth(published, amounts, durations)


def candidates(truth: Truth) -> tuple[dict[str, Any], dict[str, int]]:
    """What a first publication shows (figures), and the true count each figure rests on (anchors)."""
    figures: dict[str, Any] = {}
    anchors: dict[str, int] = {}
    for k, n in truth.counts.items():
        figures[k], anchors[k] = round_count(n), n
    for k in (k for k in truth.counts if k.startswith(f"{ReportMeasure.INVOICES}:")):
        ka = k.replace(f"{ReportMeasure.INVOICES}:", f"{ReportMeasure.INVOICED_AMOUNT}:", 1)
        n = truth.counts[k]
        figures[ka] = str(round_amount(truth.amounts.get(ka, Decimal(0)))) if n >= MIN_INVOICES else None
        anchors[ka] = n
    for k, days in truth.durations.items():
        figures[k] = list(_weeks(days)) if len(days) >= MIN_GROUP_DURATIONS else None
        anchors[k] = len(days)
    return figures, anchors


def settle(truth: Truth, previous: tuple[dict[str, Any], dict[str, int]] | None
           ) -> tuple[dict[str, Any], dict[str, int]]:
    """The figures to publish: the candidates, except that in a correction every figure whose anchor moved
    by less than the rounding base since its last publication is repeated as it was."""
    figures, anchors = candidates(truth)
    if previous is None:
        return figures, anchors
    before, before_anchors = previous
    for k in figures:
        if k in before and k in before_anchors and abs(anchors[k] - before_anchors[k]) < BASE:
            figures[k], anchors[k] = before[k], before_anchors[k]
    return figures, anchors


def _weeks(days: list[int]) -> tuple[int, int, int]:
    weeks = sorted(Decimal(d) / 7 for d in days)
    p25, median, p75 = statistics.quantiles(weeks, n=4, method="inclusive")
    return tuple(int(Decimal(x).quantize(Decimal(1), rounding=ROUND_HALF_UP)) for x in (median, p25, p75))  # type: ignore[return-value]


# -- the report --------------------------------------------------------------------------------------------


def assemble(figures: dict[str, Any], year: int, published_on: date, report_id: uuid.UUID, edition: int = 1,
             corrects: uuid.UUID | None = None) -> ReportPublished:
    """The `report.published` payload of these figures."""
    tables = [CountTable(measure=measure, columns=list(columns),
                         rows=[CountRow(municipality=m, values=[figures[key(measure, m, c)] for c in columns])
                               for m in rows])
              for measure, columns, rows in COUNT_TABLES]
    amounts = AmountTable(columns=list(FLOWS), rows=[
        AmountRow(municipality=m, values=[figures[key(ReportMeasure.INVOICED_AMOUNT, m, c)] for c in FLOWS])
        for m in MUNICIPALITIES])
    durations = []
    for m, period in DURATION_GROUPS:
        weeks = figures[key("duration", m, period)]
        median, p25, p75 = weeks if weeks is not None else (None, None, None)
        ended = figures[key(ReportMeasure.ENDED, m, period)]
        durations.append(DurationFigure(municipality=m, period=period, ended=ended, median_weeks=median,
                                        p25_weeks=p25, p75_weeks=p75))
    trend = []
    for q in QUARTERS:
        ended, paid = figures[key(ReportMeasure.ENDED, None, q)], figures[key(ReportMeasure.PAID_WORK, None, q)]
        share = None
        if ended:  # from the rounded counts: capped at 1 (rounded separately, paid work may exceed ended)
            share = min(Decimal(1), Decimal(paid) / Decimal(ended)).quantize(Decimal("0.001"), rounding=ROUND_HALF_UP)
        trend.append(TrendPoint(quarter=q, ended=ended, paid_work=paid, share_paid_work=share))
    return ReportPublished(report_id=report_id, year=year, edition=edition, corrects=corrects,
                           published_on=published_on, min_invoices=MIN_INVOICES,
                           min_group_durations=MIN_GROUP_DURATIONS, left_out=figures[LEFT_OUT], tables=tables,
                           invoiced_amount=amounts, durations=durations, trend=trend, trend_signal=signal(trend))


def build_report(facts: Iterable[Fact], year: int, published_on: date, report_id: uuid.UUID, *,
                 left_out: int = 0, previous: tuple[dict[str, Any], dict[str, int]] | None = None,
                 edition: int = 1, corrects: uuid.UUID | None = None
                 ) -> tuple[ReportPublished, dict[str, Any], dict[str, int]]:
    """The report, and the figures and anchors to keep for a later correction."""
    figures, anchors = settle(truth_of(facts, year, left_out), previous)
    return assemble(figures, year, published_on, report_id, edition, corrects), figures, anchors


def signal(trend: list[TrendPoint]) -> TrendSignal:
    """Rising, falling or stable share reaching paid work: the last quarter with a share against the first."""
    shares = [p.share_paid_work for p in trend if p.share_paid_work is not None]
    if len(shares) < 2:
        return TrendSignal.INSUFFICIENT_DATA
    change = shares[-1] - shares[0]
    if change > TREND_MARGIN:
        return TrendSignal.RISING
    if change < -TREND_MARGIN:
        return TrendSignal.FALLING
    return TrendSignal.STABLE
