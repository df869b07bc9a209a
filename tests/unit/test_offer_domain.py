"""Offer (Heliomare): a case per referral, its acceptance or decline, and its quotes (art 7.1)."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

import pytest

from services.offer.domain import Case, CaseStatus
from shared.contracts.commands import SendQuote
from shared.contracts.events import (
    DeclineReason,
    InvoiceMoment,
    InvoiceTranche,
    QuoteKind,
    QuoteRejectReason,
    QuoteSent,
    ReferralAccepted,
    ReferralDeclined,
)
from shared.contracts.parties import Municipality
from shared.contracts.reasons import ReasonCode, Refusal
from tests.unit.builders import VALID_BSN, a_referral_registered, a_send_quote, pseudonymise

SUBJECT = pseudonymise(VALID_BSN)


def a_case() -> Case:
    return Case.register(a_referral_registered(), SUBJECT, commissioner="werksaam")


def accepted() -> Case:
    case = a_case()
    case.accept()
    case.pop_events()
    return case


def quoted(amount: str = "4800.00"):
    case = accepted()
    quote = case.send_quote(a_send_quote(case.id, amount=amount))
    case.pop_events()
    return case, quote


def codes_of(info: pytest.ExceptionInfo[Refusal]) -> list[ReasonCode]:
    return [r.code for r in info.value.reasons]


# -- registration -----------------------------------------------------------------------------------


def test_a_registered_referral_becomes_a_case_under_the_shared_referral_id():
    event = a_referral_registered()
    case = Case.register(event, SUBJECT, commissioner="werksaam")
    assert case.id == event.referral_id
    assert case.status == CaseStatus.REGISTERED
    assert case.subject == SUBJECT
    assert case.municipality == Municipality.HOORN
    assert case.client.bsn == VALID_BSN and case.client.postal_code == "1621AB"
    assert case.pop_events() == []


def test_the_clients_personal_data_is_hidden_from_repr_and_view():
    case = a_case()
    text = repr(case) + str(case.client) + str(case.view())
    for value in (VALID_BSN, "Fenna", "de Boer", "fenna@example.nl", "1621AB"):
        assert value not in text


# -- accept / decline -------------------------------------------------------------------------------


def test_accepting_a_registered_case_emits_referral_accepted():
    case = a_case()
    case.accept()
    assert case.status == CaseStatus.ACCEPTED
    [event] = case.pop_events()
    assert event.data == ReferralAccepted(referral_id=case.id)
    assert event.subject == SUBJECT and event.correlation_id == case.id


def test_accepting_twice_is_refused():
    case = accepted()
    with pytest.raises(Refusal) as info:
        case.accept()
    assert codes_of(info) == [ReasonCode.INVALID_TRANSITION]
    assert case.pop_events() == []


@pytest.mark.parametrize("accept_first", [False, True])
def test_declining_emits_referral_declined_with_the_reason(accept_first):
    case = accepted() if accept_first else a_case()
    case.decline(DeclineReason.PERSON_UNREACHABLE)
    assert case.status == CaseStatus.DECLINED
    assert case.decline_reason == DeclineReason.PERSON_UNREACHABLE
    [event] = case.pop_events()
    assert event.data == ReferralDeclined(referral_id=case.id, reason=DeclineReason.PERSON_UNREACHABLE)


def test_declining_needs_a_reason():
    case = a_case()
    with pytest.raises(Refusal) as info:
        case.decline(None)
    assert [(r.code, r.field) for r in info.value.reasons] == [(ReasonCode.MISSING_FIELD, "decline_reason")]
    assert case.status == CaseStatus.REGISTERED
    assert case.pop_events() == []


def test_a_declined_case_can_be_neither_accepted_nor_quoted():
    case = a_case()
    case.decline(DeclineReason.NO_CAPACITY)
    case.pop_events()
    with pytest.raises(Refusal):
        case.accept()
    with pytest.raises(Refusal):
        case.send_quote(a_send_quote(case.id))
    assert case.pop_events() == []


def test_declining_after_a_quote_is_refused():
    case, _ = quoted()
    with pytest.raises(Refusal) as info:
        case.decline(DeclineReason.OTHER)
    assert codes_of(info) == [ReasonCode.INVALID_TRANSITION]


# -- quotes -----------------------------------------------------------------------------------------


def test_a_quote_needs_an_accepted_case():
    case = a_case()
    with pytest.raises(Refusal) as info:
        case.send_quote(a_send_quote(case.id))
    assert codes_of(info) == [ReasonCode.INVALID_TRANSITION]
    assert case.quotes == []


def test_sending_a_quote_emits_quote_sent_with_its_schedule():
    case = accepted()
    quote = case.send_quote(a_send_quote(case.id, amount="4800.00"))
    assert case.status == CaseStatus.QUOTE_SENT
    assert quote.sequence == 1 and quote.status == "sent"
    [event] = case.pop_events()
    assert isinstance(event.data, QuoteSent)
    assert event.data.quote_id == quote.quote_id
    assert event.data.amount == Decimal("4800.00")
    assert sum(t.amount for t in event.data.invoicing) == Decimal("4800.00")
    assert event.data.kind == QuoteKind.QUOTE


def test_a_reintegration_plan_is_sent_as_its_kind():
    case = accepted()
    case.send_quote(a_send_quote(case.id, kind=QuoteKind.REINTEGRATION_PLAN))
    [event] = case.pop_events()
    assert event.data.kind == QuoteKind.REINTEGRATION_PLAN


def test_a_quote_whose_schedule_does_not_add_up_is_refused():
    case = accepted()
    cmd = SendQuote(referral_id=case.id, amount=Decimal("4800.00"), planned_start=date(2027, 1, 4),
                    duration_weeks=26,
                    invoicing=[InvoiceTranche(moment=InvoiceMoment.ADVANCE, amount=Decimal("2400.00")),
                               InvoiceTranche(moment=InvoiceMoment.AFTERWARDS, amount=Decimal("2400.01"))])
    with pytest.raises(Refusal) as info:
        case.send_quote(cmd)
    assert [(r.code, r.field) for r in info.value.reasons] == [(ReasonCode.INVOICING_SCHEDULE_INVALID, "invoicing")]
    assert case.status == CaseStatus.ACCEPTED and case.quotes == []
    assert case.pop_events() == []


def test_a_schedule_invoiced_wholly_in_advance_is_accepted():
    case = accepted()
    cmd = a_send_quote(case.id, amount="999.99",
                       invoicing=[InvoiceTranche(moment=InvoiceMoment.ADVANCE, amount=Decimal("999.99"))])
    assert case.send_quote(cmd).amount == Decimal("999.99")


def test_no_second_quote_while_one_is_pending():
    case, _ = quoted()
    with pytest.raises(Refusal) as info:
        case.send_quote(a_send_quote(case.id))
    assert codes_of(info) == [ReasonCode.INVALID_TRANSITION]
    assert len(case.quotes) == 1


def test_approval_marks_the_quote_approved():
    case, quote = quoted(amount="4800.00")
    case.quote_approved(quote.quote_id, Decimal("4800"))
    assert case.status == CaseStatus.QUOTE_APPROVED
    assert case.approved_quote() is not None and case.approved_quote().quote_id == quote.quote_id


def test_approval_of_another_amount_is_refused():
    case, quote = quoted(amount="4800.00")
    with pytest.raises(Refusal) as info:
        case.quote_approved(quote.quote_id, Decimal("5000.00"))
    assert [(r.code, r.field) for r in info.value.reasons] == [(ReasonCode.INVALID_VALUE, "data.approved_amount")]
    assert case.status == CaseStatus.QUOTE_SENT
    assert case.approved_quote() is None


def test_approval_of_an_unknown_quote_is_refused():
    case, _ = quoted()
    with pytest.raises(Refusal) as info:
        case.quote_approved(uuid.uuid4(), Decimal("4800.00"))
    assert codes_of(info) == [ReasonCode.UNKNOWN_QUOTE]


def test_rejection_marks_the_quote_rejected_and_allows_a_new_one_with_sequence_two():
    case, first = quoted(amount="4800.00")
    case.quote_rejected(first.quote_id, QuoteRejectReason.AMOUNT_TOO_HIGH)
    assert case.status == CaseStatus.QUOTE_REJECTED
    assert case.quotes[0].status == "rejected" and case.quotes[0].reject_reason == QuoteRejectReason.AMOUNT_TOO_HIGH
    second = case.send_quote(a_send_quote(case.id, amount="4200.00"))
    assert second.sequence == 2
    [event] = case.pop_events()
    assert event.data.sequence == 2
    assert case.status == CaseStatus.QUOTE_SENT


def test_a_decision_on_a_superseded_quote_is_refused():
    case, first = quoted()
    case.quote_rejected(first.quote_id, QuoteRejectReason.OTHER)
    second = case.send_quote(a_send_quote(case.id, amount="4200.00"))
    with pytest.raises(Refusal) as info:
        case.quote_approved(first.quote_id, Decimal("4800.00"))
    assert codes_of(info) == [ReasonCode.QUOTE_SUPERSEDED]
    case.quote_approved(second.quote_id, Decimal("4200.00"))
    assert case.approved_quote().quote_id == second.quote_id


def test_a_second_decision_on_the_same_quote_is_refused():
    case, quote = quoted()
    case.quote_approved(quote.quote_id, quote.amount)
    with pytest.raises(Refusal) as info:
        case.quote_rejected(quote.quote_id, QuoteRejectReason.OTHER)
    assert codes_of(info) == [ReasonCode.INVALID_TRANSITION]
    assert case.status == CaseStatus.QUOTE_APPROVED


def test_no_new_quote_after_approval():
    case, quote = quoted()
    case.quote_approved(quote.quote_id, quote.amount)
    with pytest.raises(Refusal):
        case.send_quote(a_send_quote(case.id))


def test_the_view_lists_quotes_without_personal_data():
    case, quote = quoted(amount="1500.00")
    view = case.view()
    assert view["status"] == "quote_sent"
    assert view["quotes"] == [{"quote_id": str(quote.quote_id), "sequence": 1, "amount": "1500.00",
                               "status": "sent", "reject_reason": None}]
