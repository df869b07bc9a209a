"""The subject_rights domain: legal deadlines (art 12(3)), routing by legal basis, refusals, reminders and
escalation, and the gathering of answers."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from services.subject_rights.domain import (
    ChasePolicy,
    RequestStatus,
    SubjectRequest,
    due_date,
    may_read,
    parties_for,
    restricted_now,
)
from shared.contracts.commands import Corrections, IdentityCheck, SubmitSubjectRequest
from shared.contracts.events import HeldRecord, Right, SubjectRequestAnswered, SubjectRequestIssued
from shared.contracts.parties import Party
from shared.contracts.reasons import ReasonCode, Refusal
from shared.privacy.periods import add_duration, add_months, parse_duration

SUBJECT = "psn_" + "c" * 26
HOLDERS = {Party.WERKSAAM: ["intake"], Party.HELIOMARE: ["offer", "trajectory", "billing"]}
NOW = datetime(2027, 1, 31, 10, 0, tzinfo=UTC)
POLICY = ChasePolicy(reminder_after=timedelta(days=2), max_reminders=2, escalate_days_before_due=10)


def identity(method: str = "id_document_at_desk") -> IdentityCheck:
    return IdentityCheck(method=method, verified_by="desk.hoorn", verified_at=NOW)


def submit(right: Right = Right.ACCESS, *, now: datetime = NOW, open_same=None, restricted=False, earlier=(),
           **fields) -> SubjectRequest:
    cmd = SubmitSubjectRequest(bsn="111222333", right=right, identity=fields.pop("identity", identity()), **fields)
    return SubjectRequest.receive(cmd, SUBJECT, now, HOLDERS, open_same, restricted, earlier)


def answer(request: SubjectRequest, service: str, **fields) -> SubjectRequestAnswered:
    return SubjectRequestAnswered(request_id=request.id, right=request.right, service=service,
                                  outcome=fields.pop("outcome", "done"), **fields)


# -- deadlines ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("received", "due"), [
    (date(2027, 1, 31), date(2027, 2, 28)),  # no 31 February: the month's last day
    (date(2028, 1, 31), date(2028, 2, 29)),  # a leap year
    (date(2027, 1, 30), date(2027, 2, 28)),
    (date(2027, 3, 31), date(2027, 4, 30)),
    (date(2027, 2, 28), date(2027, 3, 28)),  # the same day, not the month's end
    (date(2027, 12, 15), date(2028, 1, 15)),  # over the year's end
    (date(2027, 8, 31), date(2027, 9, 30)),
])
def test_a_request_is_due_one_calendar_month_after_receipt_or_on_the_last_day_of_a_shorter_month(received, due):
    assert due_date(received) == due


def test_the_deadline_counts_from_the_dutch_day_of_receipt_not_the_utc_day():
    late_evening = datetime(2027, 1, 30, 23, 30, tzinfo=UTC)  # 31 January, 00:30 in Amsterdam
    assert submit(received_at=late_evening).due == date(2027, 2, 28)
    assert submit(received_at=late_evening).received_at == late_evening


def test_an_extension_adds_two_months_to_the_original_month_once_when_told_within_the_first_month():
    request = submit()
    request.extend("complex_request", told_at=NOW + timedelta(days=20), now=NOW + timedelta(days=20))
    assert (request.original_due, request.due) == (date(2027, 2, 28), date(2027, 4, 30))
    with pytest.raises(Refusal) as twice:
        request.extend("complex_request", told_at=NOW + timedelta(days=21), now=NOW + timedelta(days=21))
    assert twice.value.reasons[0].code == ReasonCode.INVALID_TRANSITION


def test_an_extension_after_the_first_month_is_refused():
    request = submit()
    with pytest.raises(Refusal) as late:
        request.extend("number_of_requests", told_at=NOW + timedelta(days=29), now=NOW + timedelta(days=29))
    assert late.value.reasons[0].code == ReasonCode.EXTENSION_TOO_LATE
    assert request.due == date(2027, 2, 28)


def test_an_extension_told_in_time_counts_even_when_the_desk_records_it_after_the_first_month():
    request = submit()
    request.extend("complex_request", told_at=NOW + timedelta(days=27), now=NOW + timedelta(days=33))
    assert request.due == date(2027, 4, 30) and request.extension_told_at == NOW + timedelta(days=27)


@pytest.mark.parametrize("told", [NOW + timedelta(days=3), NOW - timedelta(days=1)])
def test_an_extension_told_in_the_future_or_before_the_request_arrived_is_refused(told):
    request = submit()
    with pytest.raises(Refusal) as bad:
        request.extend("complex_request", told_at=told, now=NOW + timedelta(days=1))
    assert bad.value.reasons[0].code == ReasonCode.INVALID_VALUE and request.due == date(2027, 2, 28)


@pytest.mark.parametrize("field", ["received_at", "person_told_at"])
def test_a_request_received_in_the_future_is_refused_and_sends_nothing(field):
    request = submit(Right.ACCESS, **{field: NOW + timedelta(days=2)})
    assert request.status == RequestStatus.REFUSED and request.pop_events() == []
    assert [(r.code, r.field) for r in request.refusal_reasons] == [(ReasonCode.INVALID_VALUE, field)]


def test_periods_of_the_register_are_iso_durations_and_add_up_by_calendar():
    assert parse_duration("P7Y") == (84, 0) and parse_duration("P90D") == (0, 90)
    assert parse_duration("P1Y6M2W1D") == (18, 15)
    assert add_duration(date(2034, 2, 28), "P7Y", sign=-1) == date(2027, 2, 28)
    assert add_months(date(2024, 2, 29), 12) == date(2025, 2, 28)
    for bad in ("7Y", "P", "PT5H", "P-1Y"):
        with pytest.raises(ValueError):
            parse_duration(bad)


# -- routing by legal basis -----------------------------------------------------------------------


def test_access_goes_to_every_party_portability_only_to_heliomare_and_objection_only_to_werksaam():
    assert parties_for(Right.ACCESS) == [Party.HELIOMARE, Party.WERKSAAM]
    assert parties_for(Right.PORTABILITY) == [Party.HELIOMARE]  # 6(1)(b): handed over to Heliomare
    assert parties_for(Right.OBJECTION) == [Party.WERKSAAM]  # 6(1)(e)
    access, portability = submit(Right.ACCESS), submit(Right.PORTABILITY)
    assert {a.service for a in access.asked} == {"intake", "offer", "trajectory", "billing"}
    assert {a.service for a in portability.asked} == {"offer", "trajectory", "billing"}
    assert {a.service for a in submit(Right.OBJECTION).asked} == {"intake"}


def test_a_request_for_one_party_asks_only_its_services_names_it_in_the_message_and_says_the_other_did_nothing():
    request = submit(Right.ERASURE, parties=[Party.WERKSAAM])
    [sent] = request.pop_events()
    assert sent.data.parties == [Party.WERKSAAM] and [a.service for a in request.asked] == ["intake"]
    request.record_answer(answer(request, "intake"), Party.WERKSAAM, NOW)
    by_party = {p["party"]: p for p in request.view(NOW.date(), 10)["by_party"]}
    assert by_party["werksaam"] == {"party": "werksaam", "for_this_party": True, "services": ["intake"],
                                    "did": "intake done"}
    assert by_party["heliomare"]["services"] == [] and "not for this party" in by_party["heliomare"]["did"]
    objection = {p["party"]: p for p in submit(Right.OBJECTION).view(NOW.date(), 10)["by_party"]}
    assert "objection does not apply" in objection["heliomare"]["did"]
    assert objection["werksaam"]["did"] == "waiting for intake"


def test_an_accepted_request_is_sent_once_to_each_party_it_is_for_with_its_deadline_and_the_corrections():
    request = submit(Right.RECTIFICATION, corrections=Corrections(family_name="Jansen-de Vries"))
    sent = request.pop_events()
    assert [s.to for s in sent] == ["heliomare", "werksaam"]  # addressed, one message per party
    for one in sent:
        assert isinstance(one.data, SubjectRequestIssued) and one.subject == SUBJECT
        assert (one.data.right, one.data.due, one.data.attempt) == (Right.RECTIFICATION, date(2027, 2, 28), 1)
        assert one.data.corrections == {"family_name": "Jansen-de Vries"}
        assert one.correlation_id == request.id


def test_a_request_for_one_party_is_sent_to_that_party_only():
    [sent] = submit(Right.OBJECTION).pop_events()
    assert sent.to == "werksaam" and sent.data.parties == [Party.WERKSAAM]


@pytest.mark.parametrize(("right", "fields", "code"), [
    (Right.ACCESS, {"identity": identity("not_verified")}, ReasonCode.IDENTITY_NOT_VERIFIED),
    (Right.PORTABILITY, {"parties": [Party.WERKSAAM]}, ReasonCode.RIGHT_NOT_APPLICABLE),
    (Right.OBJECTION, {"parties": [Party.HELIOMARE, Party.WERKSAAM]}, ReasonCode.RIGHT_NOT_APPLICABLE),
    (Right.RECTIFICATION, {}, ReasonCode.MISSING_FIELD),
    (Right.LIFT_RESTRICTION, {"person_told_at": NOW}, ReasonCode.NOT_RESTRICTED),
    (Right.LIFT_RESTRICTION, {"restricted": True}, ReasonCode.NOT_TOLD_BEFORE_LIFTING),
])
def test_a_request_that_cannot_be_taken_is_recorded_as_refused_with_its_reason_and_sends_nothing(
        right, fields, code):
    request = submit(right, **fields)
    assert request.status == RequestStatus.REFUSED and code in {r.code for r in request.refusal_reasons}
    assert request.pop_events() == [] and request.asked == []


def test_a_second_request_for_the_same_right_while_one_is_open_is_refused():
    first = submit()
    assert submit(open_same=first).refusal_reasons[0].code == ReasonCode.DUPLICATE_REQUEST


def done(request: SubjectRequest, at: datetime) -> SubjectRequest:
    for a in request.asked:
        request.record_answer(answer(request, a.service), a.party, at)
    assert request.status == RequestStatus.COMPLETED
    return request


def test_access_asked_again_within_30_days_of_an_answer_is_answered_by_that_answer_unless_an_update_is_asked():
    first = done(submit(Right.ACCESS), NOW + timedelta(days=2))
    again = submit(Right.ACCESS, now=NOW + timedelta(days=20), earlier=[first])
    assert (again.status, again.answered_by, again.asked, again.pop_events()) == (
        RequestStatus.COMPLETED, first.id, [], [])
    assert "answered by request" in {p["party"]: p for p in again.by_party()}["heliomare"]["did"]
    update = submit(Right.ACCESS, now=NOW + timedelta(days=20), earlier=[first], update=True)
    assert update.status == RequestStatus.OPEN and len(update.asked) == 4 and update.answered_by is None
    later = submit(Right.ACCESS, now=NOW + timedelta(days=40), earlier=[first])
    assert later.status == RequestStatus.OPEN and later.answered_by is None  # a reasonable interval passed
    erasure = submit(Right.ERASURE, now=NOW + timedelta(days=20), earlier=[first])
    assert erasure.status == RequestStatus.OPEN  # only access and portability repeat an answer


def test_a_restricted_persons_data_is_read_only_by_the_officer_handling_the_request():
    access = done(submit(Right.ACCESS, actor="desk.hoorn"), NOW)
    assert may_read("desk.enkhuizen", access, [access])  # not restricted: any desk member with a statement
    restriction = done(submit(Right.RESTRICTION, actor="privacy.anna"), NOW + timedelta(days=1))
    requests = [access, restriction]
    assert may_read("privacy.anna", restriction, requests) and may_read("privacy.anna", access, requests)
    assert may_read("desk.hoorn", access, requests)  # who took that request
    assert not may_read("desk.enkhuizen", access, requests) and not may_read(None, restriction, requests)
    lifted = done(submit(Right.LIFT_RESTRICTION, actor="privacy.anna", person_told_at=NOW, restricted=True),
                  NOW + timedelta(days=2))
    assert may_read("desk.enkhuizen", access, [*requests, lifted])
    objection = done(submit(Right.OBJECTION, actor="privacy.bas"), NOW + timedelta(days=3))
    assert not may_read("desk.enkhuizen", access, [*requests, lifted, objection])  # an objection stays


def test_a_correction_is_checked_like_the_field_it_corrects():
    with pytest.raises(ValueError):
        Corrections(postal_code="not a postal code")
    with pytest.raises(ValueError):
        Corrections(bsn="111222333")  # a BSN is not corrected: another BSN is another person


def test_the_latest_restriction_or_lifting_decides_whether_the_subject_is_restricted():
    restriction = submit(Right.RESTRICTION)
    restriction.status, restriction.completed_at = RequestStatus.COMPLETED, NOW
    assert restricted_now([restriction])
    lifting = submit(Right.LIFT_RESTRICTION, restricted=True, person_told_at=NOW)
    lifting.status, lifting.completed_at = RequestStatus.COMPLETED, NOW + timedelta(days=1)
    assert not restricted_now([restriction, lifting])


# -- answers --------------------------------------------------------------------------------------


def test_the_request_completes_when_every_service_asked_has_answered_and_a_second_answer_changes_nothing():
    request = submit()
    for service in ("intake", "offer", "trajectory"):
        party = Party.WERKSAAM if service == "intake" else Party.HELIOMARE
        request.record_answer(answer(request, service), party, NOW)
    assert request.status == RequestStatus.OPEN
    request.record_answer(answer(request, "billing", outcome="nothing_held"), Party.HELIOMARE, NOW)
    assert request.status == RequestStatus.COMPLETED and set(request.package.answers) == {
        "intake", "offer", "trajectory", "billing"}
    request.record_answer(answer(request, "billing", outcome="done"), Party.HELIOMARE, NOW)
    assert request.package.answers["billing"]["outcome"] == "nothing_held"


def test_an_answer_from_a_service_that_was_not_asked_or_of_another_party_is_refused():
    request = submit(Right.PORTABILITY)
    with pytest.raises(Refusal) as unknown:
        request.record_answer(answer(request, "intake"), Party.WERKSAAM, NOW)
    assert unknown.value.reasons[0].code == ReasonCode.UNKNOWN_REQUEST
    with pytest.raises(Refusal):
        request.record_answer(answer(request, "offer"), Party.WERKSAAM, NOW)  # offer is Heliomare's


def test_an_erasure_is_verified_only_when_nothing_but_the_withheld_records_stays_readable():
    request = submit(Right.ERASURE)
    kept = HeldRecord(collection="referrals", record_id="r1", status="withheld", ground="Archiefwet",
                      keep_until=date(2034, 1, 1))
    request.record_answer(answer(request, "intake", records=[kept], readable_after=["referrals/r1"]),
                          Party.WERKSAAM, NOW)
    request.record_answer(answer(request, "offer", readable_after=["outbox/x"]), Party.HELIOMARE, NOW)
    for service in ("trajectory", "billing"):
        request.record_answer(answer(request, service), Party.HELIOMARE, NOW)
    assert request.status == RequestStatus.COMPLETED and request.erasure_verified is False


# -- reminders and escalation ---------------------------------------------------------------------


def test_a_silent_service_is_asked_again_after_the_interval_and_the_request_escalated_after_the_reminders():
    request = submit()
    request.pop_events()
    for service in ("intake", "offer", "trajectory"):
        request.record_answer(answer(request, service),
                              Party.WERKSAAM if service == "intake" else Party.HELIOMARE, NOW)
    assert request.chase(NOW + timedelta(days=1), POLICY) == []  # not yet
    moments = [NOW + timedelta(days=2 * n + 2) for n in range(POLICY.max_reminders + 1)]
    assert request.chase(moments[0], POLICY) == ["billing"]
    [reminder] = request.pop_events()
    assert reminder.data.attempt == 2 and reminder.data.request_id == request.id
    assert request.chase(moments[1], POLICY) == ["billing"] and request.escalated_at is None
    assert request.chase(moments[2], POLICY) == []  # the reminders are used up: escalated instead
    assert request.escalated_at == moments[2] and "billing" in request.escalation
    assert request.deadline_state(moments[2].date(), 10) == "at_risk"


def test_a_request_near_its_deadline_is_escalated_and_one_past_it_is_overdue():
    request = submit()
    near = datetime(2027, 2, 20, tzinfo=UTC)  # 8 days before 28 February
    request.chase(near, POLICY)
    assert request.escalated_at == near and "days to the deadline" in request.escalation
    assert request.deadline_state(date(2027, 3, 1), 10) == "overdue"
    assert request.deadline_state(date(2027, 2, 1), 10) == "at_risk"  # escalated stays at risk


def test_an_overdue_escalation_says_how_many_days_overdue_not_a_negative_number_of_days_to_go():
    request = submit()
    request.chase(datetime(2027, 3, 2, 9, tzinfo=UTC), POLICY)  # due 28 February
    assert request.escalation.startswith("2 days overdue;") and "-" not in request.escalation.split(";")[0]
    due_today = submit()
    due_today.chase(datetime(2027, 2, 28, 9, tzinfo=UTC), POLICY)
    assert due_today.escalation.startswith("due today;")


def test_a_completed_or_refused_request_is_not_chased():
    refused = submit(identity=identity("not_verified"))
    assert refused.chase(NOW + timedelta(days=40), POLICY) == [] and refused.escalated_at is None
    assert refused.deadline_state(date(2027, 6, 1), 10) == "closed"


def test_the_request_id_is_the_lifecycle_of_every_message_about_it():
    request = submit()
    assert isinstance(request.id, uuid.UUID)
    request.chase(NOW + timedelta(days=3), POLICY)
    assert {e.correlation_id for e in request.pop_events()} == {request.id}


def test_a_bsn_that_fails_the_11_test_is_refused_at_the_door_rather_than_asked_about():
    cmd = SubmitSubjectRequest(bsn="111222334", right=Right.ACCESS, identity=identity())
    request = SubjectRequest.receive(cmd, SUBJECT, NOW, HOLDERS, None, False)
    assert request.status == RequestStatus.REFUSED and request.refusal_reasons[0].code == ReasonCode.BSN_INVALID
    assert request.pop_events() == []


def test_request_ids_are_time_ordered_so_the_newest_are_listed_first():
    first = submit()
    time.sleep(0.002)  # UUIDv7 orders by the millisecond of creation
    assert first.id < submit().id
