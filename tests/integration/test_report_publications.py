"""The yearly report over the real broker (art 6.2, 6.3; issue 15 items 2 and 4): a restricted and an
objecting person do not block it and are left out; a closed year is published once; one more ended
trajectory and an erasure after publication cannot be read off any difference of two published figures
across the editions WerkSaam received."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime

import pytest

from shared.contracts.commands import (
    EndTrajectory,
    GetReport,
    PublishReport,
    RecordConfidentialityStatement,
    StartTrajectory,
)
from shared.contracts.events import Outcome, ReportPublished, Right
from tests.harness import wait_for
from tests.integration.test_full_process import approved_case
from tests.integration.test_subject_rights import DESK, request_until_done
from tests.unit.test_report import differences, published

pytestmark = pytest.mark.integration

YEAR = 2029  # no other test has trajectories in it; the session's clock (conftest) sees it closed


async def run(client, case, start: date, end: date | None) -> None:
    rid = uuid.UUID(case.referral_id)
    assert (await client.send("trajectory", StartTrajectory(referral_id=rid, start_date=start))).ok
    if end is not None:
        ended = await client.send("trajectory", EndTrajectory(referral_id=rid, end_date=end, outcome=Outcome.EDUCATION))
        assert ended.ok, ended.reasons


async def received(client, report_id: str) -> ReportPublished:
    async def at_werksaam():
        answer = await client.send("intake", GetReport(year=YEAR))
        return answer.result if answer.ok and answer.result["report_id"] == report_id else None

    return ReportPublished.model_validate(await wait_for(at_werksaam, what="WerkSaam receives the edition"))


async def test_restricted_and_objecting_persons_are_left_out_and_later_editions_disclose_no_one(services, client):
    cases = await asyncio.gather(*(approved_case(client, seed) for seed in range(2900, 2910)))
    counted, restricted, objecting, late = cases[:7], cases[7], cases[8], cases[9]
    for case in [*counted, restricted]:
        await run(client, case, date(YEAR, 1, 15), date(YEAR, 6, 1))
    await run(client, objecting, date(YEAR, 2, 1), None)
    await run(client, late, date(YEAR, 2, 1), None)

    signed = await client.send("subject_rights", RecordConfidentialityStatement(
        staff=DESK, signed_on=datetime.now(UTC).date(), actor="privacy.werksaam"))
    assert signed.ok, signed.reasons
    await request_until_done(client, restricted.command.bsn, Right.RESTRICTION)
    await request_until_done(client, objecting.command.bsn, Right.OBJECTION)

    # Publishing is not blocked (it was refused subject_restricted), and the restricted person is left out:
    # 7 counted show as 5 ended; with her, 8 would show as 10.
    first = await client.send("trajectory", PublishReport(year=YEAR))
    assert first.ok, first.reasons
    edition_1 = await received(client, first.result["report_id"])
    assert edition_1.edition == 1 and published(edition_1)["ended:None:year"] == 5

    # One more ended trajectory: the year is not published again, only corrected, and the correction
    # repeats every figure (8 ended would show as 10 if it were published anew).
    await client.send("trajectory", EndTrajectory(referral_id=uuid.UUID(late.referral_id), end_date=date(YEAR, 9, 1),
                                                  outcome=Outcome.EDUCATION))
    again = await client.send("trajectory", PublishReport(year=YEAR))
    assert not again.ok and [r.code.value for r in again.reasons] == ["report_already_published"]
    second = await client.send("trajectory", PublishReport(year=YEAR, correction=True))
    assert second.ok, second.reasons
    edition_2 = await received(client, second.result["report_id"])
    assert edition_2.edition == 2 and edition_2.corrects == edition_1.report_id

    # An erasure after publication: a third edition, the same again.
    await request_until_done(client, counted[0].command.bsn, Right.ERASURE)
    third = await client.send("trajectory", PublishReport(year=YEAR, correction=True))
    assert third.ok, third.reasons
    edition_3 = await received(client, third.result["report_id"])

    # The attacker: every difference of two published figures across the editions. The same figure in two
    # editions never differs, so the late trajectory (her municipality, outcome, invoices) and the erased
    # person leave no trace; and the cross-edition differences are exactly those within the first edition.
    attack = differences(edition_1, edition_2, edition_3)
    assert all(d == 0 for (a, b), d in attack.items() if a.split("#")[1] == b.split("#")[1])
    within_first = {(a.split("#")[1], b.split("#")[1]): d for (a, b), d in differences(edition_1).items()}
    for (a, b), d in attack.items():
        x, y = a.split("#")[1], b.split("#")[1]
        if x != y:
            assert d == within_first.get((x, y), -within_first.get((y, x), d)), (a, b)
