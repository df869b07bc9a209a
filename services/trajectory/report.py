"""The yearly report on executed trajectories (art 6.2) and the quarterly figures and trend (art 6.1, 3.5).

Pure computation, no I/O. The report must not be traceable to persons (art 6.3), so:

- every count below the threshold (5) is suppressed (primary suppression), zeros included: a published
  0 next to a published total tells something about everyone in the total;
- then complementary (secondary) suppression: every published total is a linear equation over its
  cells (a row, a column, and tables that share a total, such as the outcomes per municipality whose
  row totals are the ended counts of the year). A suppressed count that these equations still determine
  could be recomputed from the totals, so another cell in one of its lines is suppressed too, the
  smallest non-zero one first and totals last, until none is. Counts cannot be negative, so a line whose
  published total equals its published members pins its suppressed members to 0; those are taken as
  known first. Then a cell is determined iff its unit vector lies in the row space of the equations
  restricted to the remaining suppressed cells (sparse Gaussian elimination modulo a large prime).
  Non-negativity can pin a cell in subtler ways (bounds that meet), so every suppressed count must also
  have a certificate: another non-negative table, differing in that cell, that agrees with everything
  published (`alternative`); a cell without one gets a complement as well. A recomputable 0 (a quarter
  in which nothing happened) is accepted: it tells nothing about a person;
- invoiced amounts are published only where the number of invoices is (same pattern, same equations);
- durations (median and quartiles, in weeks) only for groups of at least the threshold;
- the trend (share of ended trajectories that reached paid work, per quarter) only from published counts.
"""

from __future__ import annotations

import statistics
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from shared.contracts.events import (
    DurationFigure,
    Outcome,
    ReportColumn,
    ReportMeasure,
    ReportPublished,
    ReportRow,
    ReportTable,
    TrendPoint,
    TrendSignal,
)
from shared.contracts.parties import Municipality

THRESHOLD = 5
QUARTERS = (ReportColumn.Q1, ReportColumn.Q2, ReportColumn.Q3, ReportColumn.Q4)
OUTCOME_COLUMNS = {Outcome.PAID_WORK: ReportColumn.PAID_WORK, Outcome.EDUCATION: ReportColumn.EDUCATION,
                   Outcome.OTHER_PROVISION: ReportColumn.OTHER_PROVISION,
                   Outcome.STOPPED_EARLY: ReportColumn.STOPPED_EARLY}
MUNICIPALITIES: tuple[Municipality | None, ...] = (*Municipality, None)  # None: all municipalities
TREND_MARGIN = Decimal("0.05")
_P = (1 << 61) - 1  # a prime: exact rank for these small integer equations

Key = tuple[ReportMeasure, Municipality | None, ReportColumn]


@dataclass(frozen=True)
class Fact:
    """What the report counts of one trajectory: no subject, no id."""

    municipality: Municipality
    start_date: date | None
    end_date: date | None = None
    outcome: Outcome | None = None
    invoices: tuple[tuple[date, Decimal], ...] = ()


@dataclass
class Line:
    """A published total and the cells it adds up: sum(members) == total."""

    members: list[Key]
    total: Key


@dataclass
class Grid:
    values: dict[Key, int] = field(default_factory=dict)
    lines: list[Line] = field(default_factory=list)

    def totals(self) -> set[Key]:
        return {line.total for line in self.lines}


def quarter_of(day: date) -> ReportColumn:
    return QUARTERS[(day.month - 1) // 3]


def quarter_end(year: int, q: ReportColumn) -> date:
    month = 3 * (QUARTERS.index(q) + 1)
    return date(year, month, 31 if month in (3, 12) else 30)


# -- the counts and their equations ------------------------------------------------------------------


def _add_table(grid: Grid, measure: ReportMeasure, counts: dict[tuple[Municipality, ReportColumn], int],
               columns: Iterable[ReportColumn], *, row_totals: bool) -> None:
    """A municipality x column table with column totals (all municipalities) and, where the columns add
    up (flows, not stocks), row totals in the YEAR column."""
    columns = list(columns)
    places = [m for m in MUNICIPALITIES if m is not None]
    for m in places:
        for c in columns:
            grid.values[(measure, m, c)] = counts.get((m, c), 0)
        if row_totals:
            grid.values[(measure, m, ReportColumn.YEAR)] = sum(counts.get((m, c), 0) for c in columns)
            grid.lines.append(Line([(measure, m, c) for c in columns], (measure, m, ReportColumn.YEAR)))
    for c in columns + ([ReportColumn.YEAR] if row_totals else []):
        grid.values[(measure, None, c)] = sum(grid.values[(measure, m, c)] for m in places)
        grid.lines.append(Line([(measure, m, c) for m in places], (measure, None, c)))
    if row_totals:
        grid.lines.append(Line([(measure, None, c) for c in columns], (measure, None, ReportColumn.YEAR)))


def build_grid(facts: list[Fact], year: int) -> Grid:
    grid = Grid()
    started: dict = {}
    ended: dict = {}
    running: dict = {}
    invoices: dict = {}
    outcomes: dict = {}
    paid_by_quarter: dict = {}
    for f in facts:
        m = f.municipality
        if f.start_date and f.start_date.year == year:
            started[(m, quarter_of(f.start_date))] = started.get((m, quarter_of(f.start_date)), 0) + 1
        if f.end_date and f.end_date.year == year:
            q = quarter_of(f.end_date)
            ended[(m, q)] = ended.get((m, q), 0) + 1
            if f.outcome:
                o = OUTCOME_COLUMNS[f.outcome]
                outcomes[(m, o)] = outcomes.get((m, o), 0) + 1
                if f.outcome == Outcome.PAID_WORK:
                    paid_by_quarter[(None, q)] = paid_by_quarter.get((None, q), 0) + 1
        for q in QUARTERS:
            end_of_q = quarter_end(year, q)
            if f.start_date and f.start_date <= end_of_q and (f.end_date is None or f.end_date > end_of_q):
                running[(m, q)] = running.get((m, q), 0) + 1
        for day, _amount in f.invoices:
            if day.year == year:
                invoices[(m, quarter_of(day))] = invoices.get((m, quarter_of(day)), 0) + 1
    _add_table(grid, ReportMeasure.STARTED, started, QUARTERS, row_totals=True)
    _add_table(grid, ReportMeasure.ENDED, ended, QUARTERS, row_totals=True)
    _add_table(grid, ReportMeasure.RUNNING, running, QUARTERS, row_totals=False)
    _add_table(grid, ReportMeasure.INVOICES, invoices, QUARTERS, row_totals=True)
    # Outcomes of the year: its row totals ARE the ended counts of the year (shared cells, linked tables).
    places = [m for m in MUNICIPALITIES if m is not None]
    columns = list(OUTCOME_COLUMNS.values())
    for m in places:
        for c in columns:
            grid.values[(ReportMeasure.OUTCOMES, m, c)] = outcomes.get((m, c), 0)
        grid.lines.append(Line([(ReportMeasure.OUTCOMES, m, c) for c in columns],
                               (ReportMeasure.ENDED, m, ReportColumn.YEAR)))
    for c in columns:
        grid.values[(ReportMeasure.OUTCOMES, None, c)] = sum(outcomes.get((m, c), 0) for m in places)
        grid.lines.append(Line([(ReportMeasure.OUTCOMES, m, c) for m in places], (ReportMeasure.OUTCOMES, None, c)))
    grid.lines.append(Line([(ReportMeasure.OUTCOMES, None, c) for c in columns],
                           (ReportMeasure.ENDED, None, ReportColumn.YEAR)))
    # Paid work per quarter (the trend): adds up to the paid-work column total of the outcomes.
    for q in QUARTERS:
        grid.values[(ReportMeasure.PAID_WORK, None, q)] = paid_by_quarter.get((None, q), 0)
    grid.lines.append(Line([(ReportMeasure.PAID_WORK, None, q) for q in QUARTERS],
                           (ReportMeasure.OUTCOMES, None, ReportColumn.PAID_WORK)))
    return grid


# -- suppression ---------------------------------------------------------------------------------------


def determined(grid: Grid, suppressed: set[Key]) -> set[Key]:
    """The suppressed cells that the published values and the equations pin down exactly."""
    pivots: dict[Key, dict[Key, int]] = {}  # fully reduced row echelon form, pivot coefficient 1
    for line in grid.lines:
        row = {k: 1 for k in line.members if k in suppressed}
        if line.total in suppressed:
            row[line.total] = (row.get(line.total, 0) - 1) % _P
        row = {k: v for k, v in row.items() if v}
        for col in [c for c in row if c in pivots]:
            factor = row.get(col, 0)
            if factor:
                for k, v in pivots[col].items():
                    row[k] = (row.get(k, 0) - factor * v) % _P
                row = {k: v for k, v in row.items() if v}
        if not row:
            continue
        col = min(row, key=_order)
        inverse = pow(row[col], _P - 2, _P)
        row = {k: v * inverse % _P for k, v in row.items()}
        for other in pivots.values():
            factor = other.get(col, 0)
            if factor:
                for k, v in row.items():
                    other[k] = (other.get(k, 0) - factor * v) % _P
                for k in [k for k, v in other.items() if not v]:
                    del other[k]
        pivots[col] = row
    return {col for col, row in pivots.items() if len(row) == 1}


def forced_zero(grid: Grid, suppressed: set[Key]) -> set[Key]:
    """Suppressed cells that counts being non-negative pin to 0: the members of a line whose published total
    equals the sum of its published members (repeated, since a cell found to be 0 counts as published)."""
    zero: set[Key] = set()
    changed = True
    while changed:
        changed = False
        for line in grid.lines:
            if line.total in suppressed and line.total not in zero:
                continue
            open_members = [k for k in line.members if k in suppressed and k not in zero]
            if open_members and sum(grid.values[k] for k in line.members if k not in open_members) == \
                    grid.values[line.total]:
                zero.update(open_members)
                changed = True
    return zero


def alternative(grid: Grid, suppressed: set[Key], cell: Key, budget: int = 20_000) -> dict[Key, int] | None:
    """A certificate that `cell` cannot be recomputed: changes of one to suppressed cells, starting with
    `cell`, after which every line adds up again and no count is negative, i.e. another table that agrees
    with everything published. None if the search finds none within its budget."""
    lines_of = _lines_of(grid)
    left = [budget]

    def imbalance(line: Line, d: dict[Key, int]) -> int:
        return sum(d.get(k, 0) for k in line.members) - d.get(line.total, 0)

    def search(d: dict[Key, int]) -> dict[Key, int] | None:
        broken = next((line for k in d for line in lines_of.get(k, []) if imbalance(line, d)), None)
        if broken is None:
            return d
        left[0] -= 1
        if left[0] <= 0:
            return None
        b = imbalance(broken, d)
        for k in sorted((*broken.members, broken.total), key=lambda k: -grid.values[k]):
            if k in suppressed and k not in d:
                step = b if k == broken.total else -b
                if grid.values[k] + step >= 0 and (found := search({**d, k: step})):
                    return found
        return None

    for first in (-1, 1):
        if grid.values[cell] + first >= 0 and (found := search({cell: first})):
            return found
    return None


def exposed(grid: Grid, suppressed: set[Key], certified: set[Key] | None = None) -> set[Key]:
    """Suppressed counts of 1 or more that may be recomputable: determined by the equations once the cells
    that non-negativity pins to 0 are known, or for which no alternative table was found (counts cannot be
    negative, which can pin a cell in subtler ways). A recomputable 0 tells nothing about a person.
    `certified`: cells already shown safe (suppressing more cells keeps them safe)."""
    certified = set() if certified is None else certified
    zero = forced_zero(grid, suppressed)
    found = {k for k in determined(grid, suppressed - zero) if grid.values[k] > 0}
    for k in sorted(suppressed - found - certified, key=_order):
        if grid.values[k] > 0:
            if alternative(grid, suppressed, k) is None:
                found.add(k)
            else:
                certified.add(k)
    return found


def _lines_of(grid: Grid) -> dict[Key, list[Line]]:
    lines_of: dict[Key, list[Line]] = {}
    for line in grid.lines:
        for k in (*line.members, line.total):
            lines_of.setdefault(k, []).append(line)
    return lines_of


def suppress(grid: Grid, threshold: int = THRESHOLD) -> set[Key]:
    """Primary suppression of every count below the threshold, then complementary suppression until
    no suppressed count can be recomputed from the published ones."""
    suppressed = {k for k, v in grid.values.items() if v < threshold}
    totals, lines_of, certified = grid.totals(), _lines_of(grid), set()

    def cost(k: Key) -> tuple:
        v = grid.values[k]
        return (k in totals, v == 0, v, _order(k))

    while found := exposed(grid, suppressed, certified):
        cell = min(found, key=_order)
        partners = {k for line in lines_of.get(cell, []) for k in (*line.members, line.total)} - suppressed
        if not partners:  # cannot happen: a determined cell has a published partner in some line
            raise AssertionError("no complementary cell available")
        suppressed.add(min(partners, key=cost))
    return suppressed


def _order(k: Key) -> tuple:
    measure, m, c = k
    return (list(ReportMeasure).index(measure), MUNICIPALITIES.index(m), list(ReportColumn).index(c))


# -- the report -----------------------------------------------------------------------------------------


def _weeks(values: list[int]) -> tuple[Decimal, Decimal, Decimal]:
    weeks = sorted(Decimal(d) / 7 for d in values)
    p25, median, p75 = statistics.quantiles(weeks, n=4, method="inclusive")
    one = Decimal("0.1")
    return tuple(Decimal(x).quantize(one, rounding=ROUND_HALF_UP) for x in (median, p25, p75))  # type: ignore[return-value]


def build_report(facts: list[Fact], year: int, published_on: date, report_id: uuid.UUID,
                 threshold: int = THRESHOLD) -> ReportPublished:
    grid = build_grid(facts, year)
    hidden = suppress(grid, threshold)

    def shown(key: Key) -> int | None:
        return None if key in hidden else grid.values[key]

    amounts: dict[tuple[Municipality | None, ReportColumn], Decimal] = {}
    for f in facts:
        for day, amount in f.invoices:
            if day.year == year:
                for m in (f.municipality, None):
                    for c in (quarter_of(day), ReportColumn.YEAR):
                        amounts[(m, c)] = amounts.get((m, c), Decimal(0)) + amount

    def table(measure: ReportMeasure, columns: list[ReportColumn], rows=MUNICIPALITIES) -> ReportTable:
        out = []
        for m in rows:
            values: list[Decimal | None] = []
            for c in columns:
                key = (measure, m, c)
                if measure == ReportMeasure.INVOICED_AMOUNT:
                    count_key = (ReportMeasure.INVOICES, m, c)
                    values.append(None if count_key in hidden else amounts.get((m, c), Decimal("0.00")))
                else:
                    if measure == ReportMeasure.OUTCOMES and c == ReportColumn.TOTAL:
                        key = (ReportMeasure.ENDED, m, ReportColumn.YEAR)
                    if measure == ReportMeasure.PAID_WORK and c == ReportColumn.YEAR:
                        key = (ReportMeasure.OUTCOMES, None, ReportColumn.PAID_WORK)
                    v = shown(key)
                    values.append(None if v is None else Decimal(v))
            out.append(ReportRow(municipality=m, values=values))
        return ReportTable(measure=measure, columns=columns, rows=out)

    flows = [*QUARTERS, ReportColumn.YEAR]
    tables = [
        table(ReportMeasure.STARTED, flows),
        table(ReportMeasure.ENDED, flows),
        table(ReportMeasure.RUNNING, list(QUARTERS)),
        table(ReportMeasure.OUTCOMES, [*OUTCOME_COLUMNS.values(), ReportColumn.TOTAL]),
        table(ReportMeasure.INVOICES, flows),
        table(ReportMeasure.INVOICED_AMOUNT, flows),
        table(ReportMeasure.PAID_WORK, flows, rows=(None,)),
    ]

    durations = []
    ended = [f for f in facts if f.end_date and f.end_date.year == year and f.start_date]
    groups: list[tuple[Municipality | None, ReportColumn, list[Fact]]] = [
        (None, q, [f for f in ended if quarter_of(f.end_date) == q]) for q in QUARTERS]  # type: ignore[arg-type]
    groups.append((None, ReportColumn.YEAR, ended))
    groups += [(m, ReportColumn.YEAR, [f for f in ended if f.municipality == m]) for m in Municipality]
    for m, period, members in groups:
        count = shown((ReportMeasure.ENDED, m, period))
        if len(members) >= threshold:
            median, p25, p75 = _weeks([(f.end_date - f.start_date).days for f in members])  # type: ignore[operator]
            durations.append(DurationFigure(municipality=m, period=period, ended=count, median_weeks=median,
                                            p25_weeks=p25, p75_weeks=p75))
        else:
            durations.append(DurationFigure(municipality=m, period=period, ended=count))

    trend = []
    for q in QUARTERS:
        n_ended, n_paid = shown((ReportMeasure.ENDED, None, q)), shown((ReportMeasure.PAID_WORK, None, q))
        share = None
        if n_ended and n_paid is not None:
            share = (Decimal(n_paid) / Decimal(n_ended)).quantize(Decimal("0.001"), rounding=ROUND_HALF_UP)
        trend.append(TrendPoint(quarter=q, ended=n_ended, paid_work=n_paid, share_paid_work=share))
    return ReportPublished(report_id=report_id, year=year, published_on=published_on, threshold=threshold,
                           tables=tables, durations=durations, trend=trend, trend_signal=signal(trend))


def signal(trend: list[TrendPoint]) -> TrendSignal:
    """Rising, falling or stable share reaching paid work: the last published quarter against the first."""
    shares = [p.share_paid_work for p in trend if p.share_paid_work is not None]
    if len(shares) < 2:
        return TrendSignal.INSUFFICIENT_DATA
    change = shares[-1] - shares[0]
    if change > TREND_MARGIN:
        return TrendSignal.RISING
    if change < -TREND_MARGIN:
        return TrendSignal.FALLING
    return TrendSignal.STABLE
