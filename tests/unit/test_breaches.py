"""Personal-data breaches (agreement art 12, GDPR art 33-34): the 24-hour and 72-hour clocks, the decision on
informing the subjects, and each party's breach desk on the real pipeline over in-memory fakes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from services.offer.bootstrap import definition as offer_definition
from services.subject_rights.bootstrap import definition as subject_rights_definition
from shared.config import Settings
from shared.contracts.commands import (
    DecideSubjectNotification,
    ListBreaches,
    ReadProcessingLog,
    RecordAuthorityNotification,
    ReportBreach,
    SubjectNotificationReason,
)
from shared.contracts.events import BreachCause, BreachDataCategory, BreachReported, BreachSubjectCategory
from shared.contracts.parties import Party
from shared.contracts.reasons import ReasonCode, Refusal
from shared.privacy.breaches import Breach, clock
from shared.unit_of_work import SubjectState
from tests.unit.builders import PSEUDONYM_KEY, an_envelope, raw_of
from tests.unit.test_pipeline import Service

DETECTED = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
SUBJECTS = ["psn_" + c * 26 for c in "abc"]


def report(detected_at: datetime = DETECTED, **fields) -> ReportBreach:
    return ReportBreach(**{
        "detected_at": detected_at, "presumed_cause": BreachCause.MISDIRECTED_MESSAGE,
        "data_categories": [BreachDataCategory.IDENTIFICATION, BreachDataCategory.CONTACT],
        "subject_categories": [BreachSubjectCategory.JOBSEEKERS],
        "window_since": detected_at - timedelta(days=2), "window_until": detected_at,
        "services": ["offer"], "affected_subjects": SUBJECTS, **fields})


def received(at: datetime) -> Breach:
    own = Breach.report(report(), Party.HELIOMARE, DETECTED + timedelta(hours=2))
    [event] = own.pop_events()
    return Breach.receive(event.data, Party.HELIOMARE, at)


# -- a clock ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("done_after", "now_after", "state"), [
    (timedelta(hours=23), timedelta(hours=30), "met"),
    (timedelta(hours=24), timedelta(hours=30), "met"),  # on the deadline is in time
    (timedelta(hours=25), timedelta(hours=30), "late"),
    (None, timedelta(hours=23), "running"),
    (None, timedelta(hours=24, seconds=1), "overdue"),
])
def test_a_clock_is_met_late_running_or_overdue(done_after, now_after, state):
    due = DETECTED + timedelta(hours=24)
    done = DETECTED + done_after if done_after is not None else None
    assert clock(due, done, DETECTED + now_after)["state"] == state


def test_a_running_clock_says_how_many_hours_are_left():
    assert clock(DETECTED + timedelta(hours=72), None, DETECTED + timedelta(hours=60))["hours_left"] == 12.0


# -- the 24-hour clock: informing the other parties -----------------------------------------------------


def test_a_breach_reported_within_24_hours_of_detection_met_the_clock_to_inform_the_other_parties():
    breach = Breach.report(report(), Party.HELIOMARE, DETECTED + timedelta(hours=3))
    assert breach.clocks(DETECTED + timedelta(days=5))["inform_parties"]["state"] == "met"


def test_a_breach_reported_after_24_hours_is_shown_late():
    breach = Breach.report(report(), Party.HELIOMARE, DETECTED + timedelta(hours=26))
    assert breach.clocks(DETECTED + timedelta(hours=26))["inform_parties"]["state"] == "late"


def test_the_receiver_is_informed_when_the_report_reaches_it():
    assert received(DETECTED + timedelta(hours=5)).clocks(DETECTED)["inform_parties"]["state"] == "met"
    assert received(DETECTED + timedelta(hours=25)).clocks(DETECTED)["inform_parties"]["state"] == "late"


# -- the 72-hour clock: notifying the Autoriteit Persoonsgegevens -------------------------------------------


def test_the_72_hour_clock_of_a_received_breach_runs_from_when_the_report_arrived():
    arrived = DETECTED + timedelta(hours=20)
    breach = received(arrived)
    authority = breach.clocks(arrived + timedelta(hours=71))["notify_authority"]
    assert authority["due"] == (arrived + timedelta(hours=72)).isoformat()
    assert authority["state"] == "running"
    assert breach.clocks(arrived + timedelta(hours=73))["notify_authority"]["state"] == "overdue"
    assert breach.overdue(arrived + timedelta(hours=73))


def test_the_72_hour_clock_of_an_own_breach_runs_from_its_detection():
    breach = Breach.report(report(), Party.WERKSAAM, DETECTED + timedelta(hours=1))
    assert breach.clocks(DETECTED)["notify_authority"]["due"] == (DETECTED + timedelta(hours=72)).isoformat()


def test_recording_the_notification_meets_the_72_hour_clock_or_shows_it_late():
    breach = received(DETECTED)
    at = DETECTED + timedelta(hours=50)
    breach.record_authority_notification(RecordAuthorityNotification(breach_id=breach.id, at=at,
                                                                     reference="AP-2027-0042"), at)
    assert breach.clocks(DETECTED + timedelta(days=9))["notify_authority"]["state"] == "met"
    late = received(DETECTED)
    at = DETECTED + timedelta(hours=80)
    late.record_authority_notification(RecordAuthorityNotification(breach_id=late.id, at=at, reference="AP-1"), at)
    assert late.clocks(at)["notify_authority"]["state"] == "late"
    assert not late.overdue(at + timedelta(days=30))


def test_a_notification_needs_the_authoritys_reference_unless_it_was_not_required():
    breach = received(DETECTED)
    with pytest.raises(Refusal) as refused:
        breach.record_authority_notification(RecordAuthorityNotification(breach_id=breach.id, at=DETECTED),
                                             DETECTED)
    assert refused.value.reasons[0].code == ReasonCode.MISSING_FIELD
    breach.record_authority_notification(RecordAuthorityNotification(breach_id=breach.id, at=DETECTED,
                                                                     not_required=True), DETECTED)
    assert breach.clocks(DETECTED + timedelta(days=9))["notify_authority"]["state"] == "met"


def test_a_notification_in_the_future_is_refused():
    breach = received(DETECTED)
    with pytest.raises(Refusal):
        breach.record_authority_notification(RecordAuthorityNotification(
            breach_id=breach.id, at=DETECTED + timedelta(hours=2), reference="AP-1"), DETECTED)


# -- art 34: informing the subjects -------------------------------------------------------------------------


@pytest.mark.parametrize(("inform", "reason", "accepted"), [
    (True, SubjectNotificationReason.HIGH_RISK, True),
    (False, SubjectNotificationReason.DATA_UNINTELLIGIBLE, True),
    (False, SubjectNotificationReason.NO_HIGH_RISK, True),
    (True, SubjectNotificationReason.NO_HIGH_RISK, False),
    (False, SubjectNotificationReason.HIGH_RISK, False),
])
def test_the_decision_on_informing_the_subjects_needs_a_matching_ground(inform, reason, accepted):
    breach = received(DETECTED)
    decide = DecideSubjectNotification(breach_id=breach.id, inform=inform, reason=reason)
    if not accepted:
        with pytest.raises(Refusal):
            breach.decide_subject_notification(decide, DETECTED)
        return
    breach.decide_subject_notification(decide, DETECTED)
    assert breach.view(DETECTED)["subjects_decision"] == {"inform": inform, "reason": reason.value,
                                                          "decided_at": DETECTED.isoformat()}
    with pytest.raises(Refusal):  # decided once
        breach.decide_subject_notification(decide, DETECTED)


def test_the_report_counts_every_named_subject_once_and_may_count_more():
    breach = Breach.report(report(affected_subjects=[*SUBJECTS, SUBJECTS[0]]), Party.HELIOMARE, DETECTED)
    assert breach.subject_count == 3
    assert Breach.report(report(subject_count=7), Party.HELIOMARE, DETECTED).subject_count == 7
    with pytest.raises(Refusal):
        Breach.report(report(subject_count=2), Party.HELIOMARE, DETECTED)


def test_a_breach_detected_in_the_future_is_refused():
    with pytest.raises(Refusal):
        Breach.report(report(detected_at=DETECTED + timedelta(hours=1)), Party.HELIOMARE, DETECTED)


# -- the desks on the pipeline --------------------------------------------------------------------------------


@pytest.fixture
def offer() -> Service:
    return Service(offer_definition())


@pytest.fixture
def desk() -> Service:
    return Service(subject_rights_definition(Settings(WERKBRUG_PSEUDONYM_KEY=PSEUDONYM_KEY)))


async def test_heliomares_report_is_sent_with_its_subjects_and_each_is_named_in_the_processing_log(offer):
    reply = await offer.command(report(detected_at=datetime.now(UTC) - timedelta(hours=1)))
    assert reply["ok"], reply["reasons"]
    [sent] = offer.store.outbox_of("breach.reported")
    assert sent.source == Party.HELIOMARE and sent.subject is None
    assert sent.correlation_id == uuid.UUID(reply["result"]["breach_id"])
    assert BreachReported.model_validate(sent.data).affected_subjects == SUBJECTS
    logged = [r for r in offer.store.processing_log if r.operation == "offer.report_breach"]
    assert sorted(r.subject for r in logged) == SUBJECTS
    assert {r.activity_id for r in logged} == {"urn:werkbrug:activity:heliomare:breach-notification:v2"}


async def test_a_breach_is_reported_even_when_an_affected_subjects_processing_is_restricted(offer):
    offer.store.subject_states[SUBJECTS[0]] = SubjectState(SUBJECTS[0], restricted_since=DETECTED)
    assert (await offer.command(report(detected_at=datetime.now(UTC))))["ok"]


async def test_werksaam_receives_heliomares_report_and_shows_its_72_hour_clock_overdue_when_not_met(offer, desk):
    await offer.command(report(detected_at=datetime.now(UTC) - timedelta(hours=2)))
    [sent] = offer.store.outbox_of("breach.reported")
    assert (await desk.pipeline.handle_event(raw_of(sent))).status == "accepted"
    assert [r.status for r in desk.retours()] == ["accepted"]

    [breach] = (await desk.command(ListBreaches()))["result"]
    assert breach["reported_by"] == "heliomare" and breach["subject_count"] == 3
    assert breach["clocks"]["inform_parties"]["state"] == "met"
    assert breach["clocks"]["notify_authority"]["state"] == "running"
    later = datetime.now(UTC) + timedelta(hours=73)
    assert [b["breach_id"] for b in (await desk.command(ListBreaches(overdue=True, now=later)))["result"]] == [
        breach["breach_id"]]
    assert (await desk.command(ListBreaches(overdue=True)))["result"] == []

    noted = await desk.command(RecordAuthorityNotification(breach_id=uuid.UUID(breach["breach_id"]),
                                                           at=datetime.now(UTC), reference="AP-2027-7"))
    assert noted["ok"] and noted["result"]["clocks"]["notify_authority"]["state"] == "met"
    assert (await desk.command(ListBreaches(overdue=True, now=later)))["result"] == []


async def test_a_report_from_oneself_on_the_events_exchange_is_not_consumed(desk):
    own = an_envelope(Breach.report(report(), Party.WERKSAAM, DETECTED).pop_events()[0].data, Party.WERKSAAM)
    assert (await desk.pipeline.handle_event(raw_of(own))).status == "dead_lettered"


async def test_an_unknown_breach_is_refused(desk):
    reply = await desk.command(DecideSubjectNotification(breach_id=uuid.uuid4(), inform=True,
                                                         reason=SubjectNotificationReason.HIGH_RISK))
    assert [r["code"] for r in reply["reasons"]] == ["unknown_breach"]


async def test_the_subjects_in_a_window_are_read_from_the_processing_log_only_with_a_time_range(offer):
    refused = await offer.command(ReadProcessingLog(distinct_subjects=True, since=DETECTED))
    assert [r["code"] for r in refused["reasons"]] == ["unfiltered_read"]
    before = datetime.now(UTC)
    await offer.command(report(detected_at=before))
    after = datetime.now(UTC) + timedelta(seconds=1)
    found = await offer.command(ReadProcessingLog(distinct_subjects=True, since=before, until=after))
    assert found["result"] == [{"subject": s} for s in SUBJECTS]
    empty = await offer.command(ReadProcessingLog(distinct_subjects=True, since=after, until=after + timedelta(1)))
    assert empty["result"] == []
