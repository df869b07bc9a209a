"""The yearly report (art 6.2, 6.3): statistical disclosure control over every publication. Counts rounded
to base 5 (cells and totals on their own), amounts to EUR 5,000 for groups of 10 invoices or more, durations
for groups of 20 or more; a closed year published once, corrections repeating every figure that moved by
less than 5; restricted and objecting persons left out, not blocking."""

from __future__ import annotations

import base64
import hashlib
import itertools
import random
import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from cli.render.report_view import svg_chart, table_rows
from services.trajectory.bootstrap import definition as trajectory_definition
from services.trajectory.domain import InvoicedAmount, Trajectory, TrajectoryStatus
from services.trajectory.report import (
    MIN_GROUP_DURATIONS,
    MIN_INVOICES,
    Fact,
    build_report,
    closes_on,
    round_amount,
    round_count,
    signal,
)
from shared.config import Settings
from shared.contracts.commands import GetReport, PublishReport
from shared.contracts.events import Outcome, ReportColumn, ReportPublished, TrendPoint, TrendSignal
from shared.contracts.parties import Municipality
from shared.unit_of_work import SubjectState
from tests.unit.test_pipeline import Service

YEAR = 2027
M = Municipality
PUBLISHED_ON = closes_on(YEAR)


def facts(spec: dict[tuple[Municipality, int], int], ended_after_weeks: int | None = 20,
          outcome=Outcome.PAID_WORK, amount: str = "1000.00") -> list[Fact]:
    """`spec`: (municipality, month of start) -> number of trajectories started then."""
    out = []
    for (m, month), n in spec.items():
        for i in range(n):
            start = date(YEAR, month, 1 + i % 27)
            end = start + timedelta(weeks=ended_after_weeks + i % 5) if ended_after_weeks else None
            out.append(Fact(m, start, end, outcome if end else None, ((start, Decimal(amount)),)))
    return out


SCENARIO = facts({(M.HOORN, 1): 3, (M.HOORN, 4): 10, (M.MEDEMBLIK, 1): 8, (M.MEDEMBLIK, 4): 9,
                  (M.ENKHUIZEN, 2): 12, (M.ENKHUIZEN, 5): 6})


def report_of(the_facts, previous=None, **kw) -> tuple[ReportPublished, dict, dict]:
    return build_report(the_facts, YEAR, PUBLISHED_ON, uuid.uuid4(), previous=previous, **kw)


def published(report: ReportPublished) -> dict[str, Decimal]:
    """Every number a report publishes, by name: the attacker's view of it."""
    out: dict[str, Decimal] = {"left_out": Decimal(report.left_out)}
    for t in report.tables:
        for row in t.rows:
            for c, v in zip(t.columns, row.values, strict=True):
                out[f"{t.measure}:{row.municipality}:{c}"] = Decimal(v)
    for row in report.invoiced_amount.rows:
        for c, v in zip(report.invoiced_amount.columns, row.values, strict=True):
            if v is not None:
                out[f"invoiced_amount:{row.municipality}:{c}"] = v
    for d in report.durations:
        for name in ("median_weeks", "p25_weeks", "p75_weeks"):
            if getattr(d, name) is not None:
                out[f"duration:{d.municipality}:{d.period}:{name}"] = Decimal(getattr(d, name))
    for p in report.trend:
        if p.share_paid_work is not None:
            out[f"share:{p.quarter}"] = p.share_paid_work
    return out


def differences(*reports: ReportPublished) -> dict[tuple[str, str], Decimal]:
    """The attacker: every difference of two published figures, within a report and across reports
    (a cell from its total, one municipality from all, a figure from the same figure in another edition)."""
    figures = {f"{n}#{name}": v for n, r in enumerate(reports) for name, v in published(r).items()}
    return {(a, b): figures[a] - figures[b] for a, b in itertools.combinations(sorted(figures), 2)}


# -- within one publication ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(8))
def test_every_published_count_and_every_difference_of_two_is_a_multiple_of_5(seed):
    rng = random.Random(seed)
    spec = {(rng.choice(list(M)), rng.randrange(1, 13)): rng.randrange(1, 9) for _ in range(14)}
    mixed = facts(spec, ended_after_weeks=rng.choice([8, 20, None]), outcome=rng.choice(list(Outcome)))
    report, _, _ = report_of(mixed)
    counts = [v for t in report.tables for r in t.rows for v in r.values]
    assert counts and all(v % 5 == 0 for v in counts)
    count_names = [n for n in published(report) if not n.startswith(("invoiced_amount", "duration", "share"))]
    figures = published(report)
    assert all((figures[a] - figures[b]) % 5 == 0 for a, b in itertools.combinations(count_names, 2))


def test_all_minus_hoorn_no_longer_gives_the_one_trajectory_ended_elsewhere_nor_its_invoices():
    """The finding: Hoorn's row and the all-municipalities row differed by 1 ended and 3 invoices of EUR 9,800."""
    many = facts({(M.HOORN, 1): 14, (M.HOORN, 3): 13}, amount="1000.00")
    one_elsewhere = Fact(M.MEDEMBLIK, date(YEAR, 2, 1), date(YEAR, 6, 1), Outcome.EDUCATION,
                         ((date(YEAR, 2, 1), Decimal("3000.00")), (date(YEAR, 4, 1), Decimal("3000.00")),
                          (date(YEAR, 6, 2), Decimal("3800.00"))))
    report, _, _ = report_of([*many, one_elsewhere])
    figures = published(report)
    ended_all, ended_hoorn = figures["ended:None:year"], figures[f"ended:{M.HOORN}:year"]
    assert (ended_all - ended_hoorn) % 5 == 0  # never 1
    amount_all = figures["invoiced_amount:None:year"]
    assert amount_all % 5000 == 0 and f"invoiced_amount:{M.MEDEMBLIK}:year" not in figures  # 3 invoices: none
    money_and_counts = {(a, b): d for (a, b), d in differences(report).items()
                        if not any(k in a + b for k in ("duration", "share"))}
    assert all(abs(d) != Decimal("9800.00") and abs(d) != 1 for d in money_and_counts.values())


def test_a_count_of_1_or_2_shows_as_0_and_3_to_7_as_5():
    assert [round_count(n) for n in range(13)] == [0, 0, 0, 5, 5, 5, 5, 5, 10, 10, 10, 10, 10]
    assert round_amount(Decimal("4380.00")) == Decimal("5000.00") and round_amount(Decimal("2400")) == Decimal("0.00")


def test_amounts_are_rounded_to_5000_and_shown_only_for_groups_of_at_least_10_invoices():
    report, _, _ = report_of(SCENARIO)
    shown = published(report)
    counts = {(f.municipality, f.invoices[0][0].month): 0 for f in SCENARIO}
    for name, value in shown.items():
        if name.startswith("invoiced_amount"):
            assert value % 5000 == 0
    per_place = {m: sum(1 for f in SCENARIO if f.municipality == m) for m in M}
    for m, n in per_place.items():
        assert (f"invoiced_amount:{m}:year" in shown) == (n >= MIN_INVOICES)
    assert shown["invoiced_amount:None:year"] == Decimal("50000.00")  # 48 invoices of 1,000
    assert counts  # the scenario has invoices


def test_durations_are_given_only_for_groups_of_at_least_20_in_whole_weeks():
    report, _, _ = report_of(SCENARIO)
    for figure in report.durations:
        group = [f for f in SCENARIO if f.end_date and figure.municipality in (None, f.municipality)
                 and (figure.period == ReportColumn.YEAR or
                      (f.end_date.month - 1) // 3 == ["q1", "q2", "q3", "q4"].index(figure.period))]
        assert (figure.median_weeks is not None) == (len(group) >= MIN_GROUP_DURATIONS), figure
    small = facts({(M.HOORN, 1): 7})  # 5-7 ended: the finding; no quartiles
    assert all(d.median_weeks is None for d in report_of(small)[0].durations)
    whole_year = next(d for d in report.durations if d.municipality is None and d.period == ReportColumn.YEAR)
    assert whole_year.median_weeks == 22 and whole_year.ended == 50


def test_a_year_is_closed_from_1_february_of_the_next_year():
    assert closes_on(2027) == date(2028, 2, 1)


def test_the_report_is_not_about_a_person_and_carries_no_ids_of_people():
    report, _, _ = report_of(SCENARIO)
    assert ReportPublished.about_a_person is False
    assert "psn_" not in report.model_dump_json()


def test_money_travels_as_decimal_strings_and_counts_as_integers():
    data = report_of(SCENARIO)[0].model_dump(mode="json")
    assert all(isinstance(v, int) for t in data["tables"] for r in t["rows"] for v in r["values"])
    assert all(v is None or isinstance(v, str) for r in data["invoiced_amount"]["rows"] for v in r["values"])
    assert isinstance(data["left_out"], int)


def test_quarterly_share_reaching_paid_work_and_its_trend():
    points = [TrendPoint(quarter=q, ended=10, paid_work=p, share_paid_work=Decimal(p) / 10)
              for q, p in zip((ReportColumn.Q1, ReportColumn.Q2, ReportColumn.Q3), (5, 5, 10), strict=True)]
    assert signal(points) == TrendSignal.RISING
    assert signal(points[:1]) == TrendSignal.INSUFFICIENT_DATA
    assert signal(list(reversed(points))) == TrendSignal.FALLING
    many = facts({(M.HOORN, 1): 6, (M.MEDEMBLIK, 1): 6, (M.HOORN, 4): 6, (M.MEDEMBLIK, 4): 6}, ended_after_weeks=2)
    report, _, _ = report_of(many)
    assert [(p.ended, p.paid_work, p.share_paid_work) for p in report.trend[:2]] == [
        (10, 10, Decimal("1.000")), (10, 10, Decimal("1.000"))]
    assert report.trend_signal == TrendSignal.STABLE


def test_the_report_renders_as_a_table_and_as_an_svg_chart():
    report = report_of(SCENARIO)[0].model_dump(mode="json")
    header, rows = table_rows(report["tables"][0])
    assert header[0] == "municipality" and rows[-1][0] == "all"
    header, rows = table_rows(report["invoiced_amount"])
    assert rows[-1][-1] == "50,000.00"
    root = ET.fromstring(svg_chart(report))  # noqa: S314 (our own output)
    assert root.tag.endswith("svg") and root.findall(".//{http://www.w3.org/2000/svg}rect")


def test_an_empty_year_is_all_zeros_and_still_a_valid_report():
    report, _, _ = report_of([])
    assert all(v == 0 for t in report.tables for r in t.rows for v in r.values)
    assert report.trend_signal == TrendSignal.INSUFFICIENT_DATA


# -- across publications: a correction ----------------------------------------------------------------------------

BASE_YEAR = facts({(M.HOORN, 1): 9, (M.HOORN, 4): 8, (M.MEDEMBLIK, 2): 11, (M.MEDEMBLIK, 5): 7,
                   (M.ENKHUIZEN, 3): 12, (M.ENKHUIZEN, 6): 6}, outcome=Outcome.EDUCATION, amount="4000.00")


def her(municipality: Municipality, outcome: Outcome, amount: str) -> Fact:
    return Fact(municipality, date(YEAR, 3, 2), date(YEAR, 9, 14), outcome,
                ((date(YEAR, 3, 2), Decimal(amount)), (date(YEAR, 9, 20), Decimal(amount))))


WORLDS = [*((m, o, "4380.00") for m in M for o in Outcome),
          (M.HOORN, Outcome.PAID_WORK, "1200.00"), (M.HOORN, Outcome.PAID_WORK, "9000.00")]


def test_one_more_ended_trajectory_after_publication_cannot_be_read_off_any_difference_of_two_figures():
    """Publish; her trajectory ends (a late registration); publish a correction. In every world (her
    municipality, outcome, amount) the attacker gets exactly the same differences of every two figures
    across both editions, so none of them tells where she lived, what she reached or what she cost."""
    first, figures, anchors = report_of(BASE_YEAR)
    attacks = []
    for m, o, a in WORLDS:
        correction, _, _ = report_of([*BASE_YEAR, her(m, o, a)], previous=(figures, anchors), edition=2,
                                     corrects=first.report_id)
        assert correction.edition == 2 and correction.corrects == first.report_id
        attacks.append(differences(first, correction))
    assert all(attack == attacks[0] for attack in attacks)
    # and concretely: no figure of the correction differs from the same figure of the first edition
    assert all(d == 0 for (a, b), d in attacks[0].items() if a.split("#")[1] == b.split("#")[1])


def test_an_erasure_after_publication_cannot_be_read_off_a_correction():
    for m, o, a in WORLDS[::3]:
        with_her = [*BASE_YEAR, her(m, o, a)]
        first, figures, anchors = report_of(with_her)
        correction, _, _ = report_of(BASE_YEAR, previous=(figures, anchors), edition=2)
        assert published(correction) == published(first)
        attack = differences(first, correction)
        assert all(d == 0 for (x, y), d in attack.items() if x.split("#")[1] == y.split("#")[1])


def test_a_correction_shows_a_change_once_it_adds_up_to_5_in_a_figure():
    first, figures, anchors = report_of(BASE_YEAR)
    late = [her(M.HOORN, Outcome.PAID_WORK, "4000.00") for _ in range(6)]
    correction, figures2, anchors2 = report_of([*BASE_YEAR, *late], previous=(figures, anchors), edition=2)
    before, after = published(first), published(correction)
    assert after[f"ended:{M.HOORN}:year"] - before[f"ended:{M.HOORN}:year"] in (5, 10)
    assert after[f"ended:{M.MEDEMBLIK}:year"] == before[f"ended:{M.MEDEMBLIK}:year"]  # unchanged there
    # a third edition with one more person repeats the second's figures
    third, _, _ = report_of([*BASE_YEAR, *late, her(M.HOORN, Outcome.PAID_WORK, "4000.00")],
                            previous=(figures2, anchors2), edition=3)
    assert published(third) == after


def test_the_number_left_out_is_rounded_like_every_count():
    assert report_of(SCENARIO, left_out=2)[0].left_out == 0
    assert report_of(SCENARIO, left_out=3)[0].left_out == 5
    first, figures, anchors = report_of(SCENARIO, left_out=1)
    assert report_of(SCENARIO, left_out=2, previous=(figures, anchors), edition=2)[0].left_out == first.left_out


# -- the service: closed years once, restricted and objecting persons left out -------------------------------------

TODAY = date(YEAR + 1, 3, 1)


@pytest.fixture
def trajectory() -> Service:
    return Service(trajectory_definition(Settings(WERKBRUG_REPORT_TODAY=TODAY)))


def stored(service: Service, subject: str, municipality: Municipality = M.HOORN, weeks: int = 20) -> Trajectory:
    rid = uuid.uuid4()
    start = date(YEAR, 2, 1)
    t = Trajectory(id=rid, subject=subject, municipality=municipality, status=TrajectoryStatus.ENDED,
                   quote_id=uuid.uuid4(), trajectory_id=uuid.uuid4(), approved_amount=Decimal("4000.00"),
                   planned_start=start, duration_weeks=weeks, invoicing=[], start_date=start,
                   planned_end=start + timedelta(weeks=weeks), end_date=start + timedelta(weeks=weeks),
                   outcome=Outcome.PAID_WORK,
                   invoices=[InvoicedAmount(invoice_id=uuid.uuid4(), invoice_date=start, amount=Decimal("4000.00"))])
    t.version = 1
    service.store.rows["trajectories"][rid] = t
    return t


def psn(name: str) -> str:
    """A well-formed pseudonym for a test subject."""
    return "psn_" + base64.b32encode(hashlib.sha256(name.encode()).digest()).decode().lower()[:26]


def codes(answer: dict) -> list[str]:
    return [r["code"] for r in answer["reasons"]]


async def test_a_restricted_and_an_objecting_person_are_left_out_and_do_not_block_the_report(trajectory):
    for n in range(12):
        stored(trajectory, psn(str(n)))
    restricted, objected = psn("restricted"), psn("objected")
    stored(trajectory, restricted)
    stored(trajectory, objected)
    now = datetime.now(UTC)
    trajectory.store.subject_states[restricted] = SubjectState(restricted, restricted_since=now)
    trajectory.store.subject_states[objected] = SubjectState(objected, objected_since=now)
    answer = await trajectory.command(PublishReport(year=YEAR))
    assert answer["ok"], answer["reasons"]
    report = ReportPublished.model_validate(answer["result"])
    assert published(report)[f"ended:{M.HOORN}:year"] == 10  # 12 counted, rounded; the two left out
    assert report.left_out == 0  # 2 left out, rounded: says nothing about whether anyone was
    logged = {r.subject for r in trajectory.store.processing_log}
    assert restricted not in logged and objected not in logged and psn("1") in logged
    [sent] = trajectory.store.outbox_of("report.published")
    assert sent.subject is None


async def test_a_year_is_published_once_after_it_closed_and_then_only_corrected(trajectory):
    for n in range(12):
        stored(trajectory, psn(str(n)))
    early = await trajectory.command(PublishReport(year=YEAR + 1))
    assert not early["ok"] and codes(early) == ["report_period_open"]
    nothing = await trajectory.command(PublishReport(year=YEAR, correction=True))
    assert not nothing["ok"] and codes(nothing) == ["invalid_value"]
    first = await trajectory.command(PublishReport(year=YEAR))
    assert first["ok"] and first["result"]["edition"] == 1
    again = await trajectory.command(PublishReport(year=YEAR))
    assert not again["ok"] and codes(again) == ["report_already_published"]
    stored(trajectory, psn("late"), municipality=M.ENKHUIZEN)
    correction = await trajectory.command(PublishReport(year=YEAR, correction=True))
    assert correction["ok"] and correction["result"]["edition"] == 2
    assert correction["result"]["corrects"] == first["result"]["report_id"]
    assert correction["result"]["tables"] == first["result"]["tables"]  # one more: nothing moves
    shown = await trajectory.command(GetReport(year=YEAR))
    assert shown["result"] == correction["result"]
    assert len(trajectory.store.outbox_of("report.published")) == 2


async def test_a_publication_without_what_a_correction_needs_is_not_corrected_unprotected(trajectory):
    from services.trajectory.domain import PublishedReport

    old = PublishedReport(id=uuid.uuid4(), year=YEAR, published_on=TODAY, report={})  # as report.published v1 kept it
    old.version = 1
    trajectory.store.rows["reports"][old.id] = old
    refused = await trajectory.command(PublishReport(year=YEAR, correction=True))
    assert not refused["ok"] and codes(refused) == ["invalid_value"]
    assert trajectory.store.outbox_of("report.published") == []


def test_the_contract_refuses_an_unrounded_count_or_amount_so_werksaam_never_accepts_one():
    from pydantic import ValidationError

    good = report_of(SCENARIO)[0].model_dump(mode="json")
    for path, value in ((("tables", 0, "rows", 0, "values", 0), 3), (("left_out",), 1),
                        (("invoiced_amount", "rows", 7, "values", 4), "4380.00"),
                        (("durations", 4, "median_weeks"), "20.5")):
        bad = ReportPublished.model_validate(good).model_dump(mode="json")
        target = bad
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value
        with pytest.raises(ValidationError):
            ReportPublished.model_validate(bad)
