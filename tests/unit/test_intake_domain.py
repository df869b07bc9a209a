"""Intake (WerkSaam): the referral checked against art 4, and the commissioner's quote decisions."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from services.intake import handlers
from services.intake.bootstrap import REFERRALS
from services.intake.domain import (
    Referral,
    ReferralStatus,
    normalise_municipality,
    normalise_postal_code,
    target_group_reasons,
)
from shared.contracts.commands import SubmitReferral
from shared.contracts.events import (
    DeclineReason,
    QuoteApproved,
    QuoteRejected,
    QuoteRejectReason,
    ReferralRegistered,
)
from shared.contracts.parties import Municipality, Party
from shared.contracts.reasons import ReasonCode, Refusal
from shared.storage.memory import MemoryStore
from tests.unit.builders import OTHER_VALID_BSN, VALID_BSN, a_quote_sent, a_submit_referral, pseudonymise

PERSONAL_VALUES = [VALID_BSN, "Fenna", "de Boer", "1991-04-12", "1621AB", "1621 AB", "12345678", "fenna@example.nl"]


def submitted(**overrides) -> Referral:
    return Referral.submit(a_submit_referral(**overrides), pseudonymise)


def registered() -> Referral:
    referral = submitted()
    referral.pop_events()
    return referral


def with_quote(referral: Referral | None = None, amount: str = "4800.00", sequence: int = 1):
    referral = referral or registered()
    quote = a_quote_sent(referral.id, amount=amount, sequence=sequence)
    referral.quote_received(quote)
    return referral, quote


def codes_of(refusal: pytest.ExceptionInfo[Refusal]) -> list[ReasonCode]:
    return [r.code for r in refusal.value.reasons]


# -- step 1: submit ----------------------------------------------------------------------------------


def test_a_valid_referral_is_registered_under_a_pseudonym():
    referral = submitted()
    assert referral.status == ReferralStatus.REGISTERED
    assert referral.subject == pseudonymise(VALID_BSN)
    assert referral.refusal_reasons == []
    assert referral.municipality == Municipality.HOORN
    assert referral.person is not None and referral.person.bsn == VALID_BSN


def test_a_valid_referral_emits_referral_registered_with_only_allow_listed_data():
    referral = submitted()
    [event] = referral.pop_events()
    assert isinstance(event.data, ReferralRegistered)
    assert event.subject == referral.subject
    assert event.correlation_id == referral.id
    data = event.data
    assert data.referral_id == referral.id
    assert (data.bsn, data.postal_code, data.municipality) == (VALID_BSN, "1621AB", Municipality.HOORN)
    dumped = data.model_dump(mode="json")
    assert set(dumped) <= set(ReferralRegistered.model_fields)
    assert "labour_disability" not in dumped and "participatiewet_entitlement" not in dumped
    assert referral.pop_events() == []


@pytest.mark.parametrize(
    "overrides,code,field",
    [
        ({"bsn": "123456789"}, ReasonCode.BSN_INVALID, "bsn"),
        ({"bsn": "12345678"}, ReasonCode.BSN_INVALID, "bsn"),
        ({"bsn": "\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18\uff12"}, ReasonCode.BSN_INVALID, "bsn"),
        ({"municipality": "Amsterdam"}, ReasonCode.NOT_RESIDENT_WEST_FRIESLAND, "municipality"),
        ({"municipality": "Hoorn NH"}, ReasonCode.NOT_RESIDENT_WEST_FRIESLAND, "municipality"),
        ({"labour_disability": False}, ReasonCode.NO_LABOUR_DISABILITY, "labour_disability"),
        ({"participatiewet_entitlement": False}, ReasonCode.NO_PARTICIPATIEWET_ENTITLEMENT,
         "participatiewet_entitlement"),
        ({"postal_code": "0621AB"}, ReasonCode.INVALID_VALUE, "postal_code"),
        ({"postal_code": "16210"}, ReasonCode.INVALID_VALUE, "postal_code"),
        ({"postal_code": "1621 A1"}, ReasonCode.INVALID_VALUE, "postal_code"),
    ],
)
def test_each_failed_check_refuses_with_its_own_reason(overrides, code, field):
    referral = submitted(**overrides)
    assert referral.status == ReferralStatus.REFUSED
    assert [(r.code, r.field) for r in referral.refusal_reasons] == [(code, field)]


def test_every_failed_check_is_reported_not_only_the_first():
    referral = submitted(bsn="111111111", municipality="Zaanstad", labour_disability=False,
                         participatiewet_entitlement=False, postal_code="ABCDEF")
    assert [r.code for r in referral.refusal_reasons] == [
        ReasonCode.BSN_INVALID, ReasonCode.NOT_RESIDENT_WEST_FRIESLAND, ReasonCode.NO_LABOUR_DISABILITY,
        ReasonCode.NO_PARTICIPATIEWET_ENTITLEMENT, ReasonCode.INVALID_VALUE,
    ]


def test_target_group_reasons_lists_all_art_4_failures():
    cmd = a_submit_referral(bsn="000000000", municipality="Purmerend", labour_disability=False,
                            participatiewet_entitlement=False)
    assert len(target_group_reasons(cmd)) == 4
    assert target_group_reasons(a_submit_referral()) == []


@pytest.mark.parametrize("overrides", [{"municipality": "Amsterdam"}, {"labour_disability": False},
                                       {"postal_code": "nope"}, {"bsn": "123456789"}])
def test_a_refused_referral_keeps_no_personal_data_and_emits_nothing(overrides):
    referral = submitted(**overrides)
    assert referral.status == ReferralStatus.REFUSED
    assert referral.person is None
    assert referral.municipality is None and referral.support_need is None and referral.requested_start is None
    assert referral.pop_events() == []
    stored = referral.model_dump_json() + repr(referral) + str(referral.view())
    for value in PERSONAL_VALUES:
        assert value not in stored


def test_a_refused_referral_with_an_invalid_bsn_has_no_subject():
    assert submitted(bsn="123456789").subject is None


def test_a_refused_referral_with_a_valid_bsn_keeps_only_its_pseudonym():
    referral = submitted(municipality="Amsterdam")
    assert referral.subject == pseudonymise(VALID_BSN)


def test_refusal_reasons_never_repeat_the_submitted_values():
    referral = submitted(bsn="987654321", municipality="Amsterdam", postal_code="12")
    for reason in referral.refusal_reasons:
        text = reason.model_dump_json()
        assert "987654321" not in text
        assert "amsterdam" not in text.lower()


def test_personal_data_is_hidden_from_the_repr():
    referral = submitted()
    text = repr(referral) + repr(referral.person) + str(referral.person)
    for value in (VALID_BSN, "Fenna", "de Boer", "fenna@example.nl"):
        assert value not in text


def test_view_has_no_personal_data():
    view = str(submitted().view())
    for value in PERSONAL_VALUES:
        assert value not in view


@pytest.mark.parametrize("raw,expected", [("Hoorn", "hoorn"), ("  HOORN  ", "hoorn"), ("Stede Broec", "stede-broec"),
                                          ("stede-broec", "stede-broec"), ("Stede -  Broec", "stede-broec"),
                                          ("STEDE-BROEC", "stede-broec")])
def test_municipality_is_normalised(raw, expected):
    assert normalise_municipality(raw) == expected


@pytest.mark.parametrize("raw", ["Drechterland", "Enkhuizen", "Hoorn", "Koggenland", "Medemblik", "Opmeer",
                                 "Stede Broec"])
def test_each_of_the_seven_municipalities_is_in_the_target_group(raw):
    referral = submitted(municipality=raw)
    assert referral.status == ReferralStatus.REGISTERED
    assert referral.municipality == Municipality(normalise_municipality(raw))


@pytest.mark.parametrize("raw,expected", [("1621AB", "1621AB"), ("1621 ab", "1621AB"), (" 1621  Ab ", "1621AB"),
                                          ("9999ZZ", "9999ZZ")])
def test_postal_code_is_normalised(raw, expected):
    assert normalise_postal_code(raw) == expected


@pytest.mark.parametrize("raw", ["0621AB", "1621A", "1621ABC", "162AB", "ABCD12", "", "1621-AB"])
def test_postal_code_that_is_not_dutch_is_refused(raw):
    assert normalise_postal_code(raw) is None


@pytest.mark.parametrize("postal_code", ["1621\u00c4B", "\uff11\uff16\uff12\uff11AB", "\u0661\u0666\u0662\u0661AB"])
def test_a_postal_code_with_non_ascii_characters_is_refused_with_a_reason(postal_code):
    referral = submitted(postal_code=postal_code)
    assert referral.status == ReferralStatus.REFUSED
    assert [(r.code, r.field) for r in referral.refusal_reasons] == [(ReasonCode.INVALID_VALUE, "postal_code")]


# -- Heliomare's answers -----------------------------------------------------------------------------


def test_provider_acceptance_moves_a_registered_referral_on():
    referral = registered()
    referral.provider_accepted()
    assert referral.status == ReferralStatus.ACCEPTED


def test_a_quote_overtaking_the_acceptance_is_tolerated():
    referral, _ = with_quote()
    assert referral.status == ReferralStatus.QUOTE_RECEIVED
    referral.provider_accepted()  # arrives late, on its own queue
    assert referral.status == ReferralStatus.QUOTE_RECEIVED


def test_acceptance_of_a_declined_referral_is_refused():
    referral = registered()
    referral.provider_declined(DeclineReason.NO_CAPACITY)
    with pytest.raises(Refusal) as info:
        referral.provider_accepted()
    assert codes_of(info) == [ReasonCode.INVALID_TRANSITION]


def test_acceptance_of_a_refused_referral_is_refused():
    referral = submitted(labour_disability=False)
    with pytest.raises(Refusal) as info:
        referral.provider_accepted()
    assert codes_of(info) == [ReasonCode.INVALID_TRANSITION]


@pytest.mark.parametrize("accept_first", [False, True])
def test_provider_may_decline_before_a_quote(accept_first):
    referral = registered()
    if accept_first:
        referral.provider_accepted()
    referral.provider_declined(DeclineReason.OUTSIDE_EXPERTISE)
    assert referral.status == ReferralStatus.DECLINED
    assert referral.decline_reason == DeclineReason.OUTSIDE_EXPERTISE


def test_a_decline_after_a_quote_is_refused():
    referral, _ = with_quote()
    with pytest.raises(Refusal) as info:
        referral.provider_declined(DeclineReason.NO_CAPACITY)
    assert codes_of(info) == [ReasonCode.INVALID_TRANSITION]
    assert referral.status == ReferralStatus.QUOTE_RECEIVED


def test_a_received_quote_is_kept_with_its_terms():
    referral, quote = with_quote(amount="1234.50")
    [kept] = referral.quotes
    assert (kept.quote_id, kept.amount, kept.sequence, kept.decision) == (quote.quote_id, Decimal("1234.50"), 1, None)


def test_the_same_quote_twice_is_refused():
    referral, quote = with_quote()
    referral.status = ReferralStatus.QUOTE_REJECTED  # even when a new quote would be welcome
    with pytest.raises(Refusal) as info:
        referral.quote_received(quote)
    assert codes_of(info) == [ReasonCode.INVALID_TRANSITION]


def test_a_second_quote_while_one_awaits_a_decision_is_refused():
    referral, _ = with_quote()
    with pytest.raises(Refusal) as info:
        referral.quote_received(a_quote_sent(referral.id, sequence=2))
    assert codes_of(info) == [ReasonCode.INVALID_TRANSITION]


def test_a_quote_for_a_refused_referral_is_refused():
    referral = submitted(municipality="Amsterdam")
    with pytest.raises(Refusal):
        referral.quote_received(a_quote_sent(referral.id))


# -- step 3: the commissioner's decision -------------------------------------------------------------


def test_approving_the_quote_emits_quote_approved_with_the_amount():
    referral, quote = with_quote(amount="4800.00")
    referral.decide_quote(quote.quote_id, approve=True, reason=None)
    assert referral.status == ReferralStatus.QUOTE_APPROVED
    assert referral.quotes[-1].decision == "approved" and referral.quotes[-1].decided_at is not None
    [event] = referral.pop_events()
    assert isinstance(event.data, QuoteApproved)
    assert event.data.approved_amount == Decimal("4800.00")
    assert (event.data.referral_id, event.data.quote_id) == (referral.id, quote.quote_id)
    assert event.subject == referral.subject


def test_rejecting_the_quote_emits_quote_rejected_with_the_reason():
    referral, quote = with_quote()
    referral.decide_quote(quote.quote_id, approve=False, reason=QuoteRejectReason.AMOUNT_TOO_HIGH)
    assert referral.status == ReferralStatus.QUOTE_REJECTED
    assert referral.quotes[-1].reject_reason == QuoteRejectReason.AMOUNT_TOO_HIGH
    [event] = referral.pop_events()
    assert isinstance(event.data, QuoteRejected)
    assert event.data.reason == QuoteRejectReason.AMOUNT_TOO_HIGH


def test_rejecting_needs_a_reason():
    referral, quote = with_quote()
    with pytest.raises(Refusal) as info:
        referral.decide_quote(quote.quote_id, approve=False, reason=None)
    assert [(r.code, r.field) for r in info.value.reasons] == [(ReasonCode.MISSING_FIELD, "reject_reason")]
    assert referral.status == ReferralStatus.QUOTE_RECEIVED
    assert referral.quotes[-1].decision is None
    assert referral.pop_events() == []


def test_deciding_an_unknown_quote_is_refused():
    referral, _ = with_quote()
    with pytest.raises(Refusal) as info:
        referral.decide_quote(uuid.uuid4(), approve=True, reason=None)
    assert codes_of(info) == [ReasonCode.UNKNOWN_QUOTE]


def test_deciding_a_superseded_quote_is_refused():
    referral, first = with_quote()
    referral.decide_quote(first.quote_id, approve=False, reason=QuoteRejectReason.DURATION_TOO_LONG)
    referral, second = with_quote(referral, amount="4000.00", sequence=2)
    referral.pop_events()
    with pytest.raises(Refusal) as info:
        referral.decide_quote(first.quote_id, approve=True, reason=None)
    assert codes_of(info) == [ReasonCode.QUOTE_SUPERSEDED]
    referral.decide_quote(second.quote_id, approve=True, reason=None)
    [event] = referral.pop_events()
    assert event.data.approved_amount == Decimal("4000.00")


def test_deciding_twice_is_refused():
    referral, quote = with_quote()
    referral.decide_quote(quote.quote_id, approve=True, reason=None)
    referral.pop_events()
    with pytest.raises(Refusal) as info:
        referral.decide_quote(quote.quote_id, approve=False, reason=QuoteRejectReason.OTHER)
    assert codes_of(info) == [ReasonCode.INVALID_TRANSITION]
    assert referral.status == ReferralStatus.QUOTE_APPROVED
    assert referral.pop_events() == []


def test_a_new_quote_may_follow_a_rejection():
    referral, first = with_quote()
    referral.decide_quote(first.quote_id, approve=False, reason=QuoteRejectReason.PLAN_NOT_SUITABLE)
    referral, _ = with_quote(referral, sequence=2)
    assert referral.status == ReferralStatus.QUOTE_RECEIVED
    assert [q.sequence for q in referral.quotes] == [1, 2]


def test_no_quote_after_approval():
    referral, quote = with_quote()
    referral.decide_quote(quote.quote_id, approve=True, reason=None)
    with pytest.raises(Refusal):
        referral.quote_received(a_quote_sent(referral.id, sequence=2))


# -- the submit handler and its duplicate check -----------------------------------------------------


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore(Party.WERKSAAM, [REFERRALS])


async def submit(store: MemoryStore, cmd: SubmitReferral):
    async with store.unit_of_work() as uow:
        answer = await handlers.submit_referral(cmd, uow, pseudonymise=pseudonymise)
        await uow.commit()
    return answer


async def test_submit_handler_registers_and_emits_once(store):
    answer = await submit(store, a_submit_referral())
    assert answer.ok and answer.lifecycle_id is not None
    assert [e.type for e in store.outbox] == ["referral.registered"]
    assert [r.status for r in store.aggregates("referrals")] == [ReferralStatus.REGISTERED]


async def test_a_second_referral_for_a_person_with_an_open_one_is_refused(store):
    await submit(store, a_submit_referral())
    answer = await submit(store, a_submit_referral())
    assert not answer.ok
    assert [r.code for r in answer.reasons] == [ReasonCode.DUPLICATE_REFERRAL]
    refused = [r for r in store.aggregates("referrals") if r.status == ReferralStatus.REFUSED]
    assert len(refused) == 1 and refused[0].person is None


async def test_a_refused_duplicate_referral_sends_nothing_to_heliomare(store):
    await submit(store, a_submit_referral())
    answer = await submit(store, a_submit_referral())
    assert not answer.ok
    assert len(store.outbox_of("referral.registered")) == 1


async def test_a_person_may_be_referred_again_after_a_decline(store):
    first = await submit(store, a_submit_referral())
    async with store.unit_of_work() as uow:
        referral = await uow.referrals.get(first.lifecycle_id)
        referral.provider_declined(DeclineReason.NO_CAPACITY)
        await uow.commit()
    again = await submit(store, a_submit_referral())
    assert again.ok


async def test_another_person_is_not_a_duplicate(store):
    await submit(store, a_submit_referral())
    assert (await submit(store, a_submit_referral(bsn=OTHER_VALID_BSN))).ok


async def test_an_open_referral_is_found_however_many_refused_ones_follow_it(store):
    await submit(store, a_submit_referral())
    for _ in range(20):
        assert not (await submit(store, a_submit_referral(labour_disability=False))).ok
    answer = await submit(store, a_submit_referral())
    assert not answer.ok
    assert [r.code for r in answer.reasons] == [ReasonCode.DUPLICATE_REFERRAL]
