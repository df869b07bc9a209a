"""Every cross-party message is addressed (issue 18): the envelope names its recipient, the routing key carries it,
and a consumer refuses what is addressed to another party, as it refuses a sender that may not send the type.
Driven through the one consumer pipeline on in-memory fakes; the broker's side is tests/integration/test_identity.py.
"""

from __future__ import annotations

import tomllib
import uuid

import pytest

import shared.contracts.envelope as envelope_module
from services.intake.bootstrap import definition as intake_definition
from services.offer.bootstrap import definition as offer_definition
from shared.config import Settings
from shared.contracts.commands import DecideQuote
from shared.contracts.events import QuoteApproved, Right, SubjectRequestIssued
from shared.contracts.parties import PARTIES_PATH, Party, PartyRegister
from shared.contracts.reasons import ReasonCode
from shared.messaging.topology import service_bindings, service_publications
from tests.unit.builders import (
    PSEUDONYM_KEY,
    VALID_BSN,
    a_quote_sent,
    a_referral_registered,
    a_submit_referral,
    an_envelope,
    pseudonymise,
    raw_of,
)
from tests.unit.test_pipeline import Service

SUBJECT = pseudonymise(VALID_BSN)
PERSONAL = (VALID_BSN, "Fenna", "de Boer", "1621AB", "fenna@example.nl")


def admit_a_second_provider(monkeypatch) -> PartyRegister:
    """The register of parties with a second provider admitted by addendum (its own services are not built here:
    the register of processing activities has no activity of it yet)."""
    document = tomllib.loads(PARTIES_PATH.read_text())
    document["party"].append({"id": "tweedeweg", "organisation": "Stichting Tweede Weg", "roles": ["provider"],
                              "legal_basis": "GDPR 6(1)(b)", "admitted_by": str(uuid.UUID(int=7))})
    register = PartyRegister.model_validate(document)
    monkeypatch.setattr(envelope_module, "load_parties", lambda: register)
    return register


def assert_parked_unanswered(service: Service, outcome, code: ReasonCode, *, answered: bool = False) -> None:
    assert outcome.status == "dead_lettered"
    assert [r.code for r in outcome.reasons] == [code]
    assert service.dead_letters.codes == [[code]]
    if answered:  # claimed to be for us (addressed to all): the claimed sender learns why it was refused
        [retour] = service.store.outbox
        assert retour.type == "retour.issued" and retour.recipient == "werksaam"
        assert [r["code"] for r in retour.data["reasons"]] == [code]
    else:
        assert service.store.outbox == [], "not handled, and not answered: it was not ours to answer"
    recorded = repr(service.dead_letters.letters) + repr(service.store.outbox)
    assert not any(value in recorded for value in PERSONAL), "no echo of the message's content"


async def test_a_referral_addressed_to_another_provider_is_parked_unhandled_and_unanswered(monkeypatch):
    offer = Service(offer_definition())  # Heliomare's
    admit_a_second_provider(monkeypatch)
    referral = an_envelope(a_referral_registered(), Party.WERKSAAM, subject=SUBJECT, to="tweedeweg")
    assert referral.routing_key == "werksaam.tweedeweg.referral.registered.v2"
    outcome = await offer.pipeline.handle_event(raw_of(referral))
    assert_parked_unanswered(offer, outcome, ReasonCode.NOT_ADDRESSED_TO_US)
    assert offer.store.aggregates("cases") == []


async def test_a_subject_request_addressed_to_the_commissioner_is_not_carried_out_by_the_provider():
    offer = Service(offer_definition())
    request = an_envelope(SubjectRequestIssued(request_id=uuid.uuid4(), right=Right.ERASURE,
                                               parties=[Party.WERKSAAM, Party.HELIOMARE], due="2027-02-01"),
                          Party.WERKSAAM, subject=SUBJECT, to=Party.WERKSAAM)
    outcome = await offer.pipeline.handle_event(raw_of(request))
    assert_parked_unanswered(offer, outcome, ReasonCode.NOT_ADDRESSED_TO_US)


@pytest.mark.parametrize("recipient", ["all", "werksaam", "nobody"])
async def test_a_referral_addressed_as_its_type_does_not_allow_is_refused(recipient):
    offer = Service(offer_definition())
    document = {**an_envelope(a_referral_registered(), Party.WERKSAAM, subject=SUBJECT).model_dump(mode="json"),
                "recipient": recipient}
    outcome = await offer.pipeline.handle_event(raw_of(document))
    assert_parked_unanswered(offer, outcome, ReasonCode.RECIPIENT_NOT_PERMITTED, answered=recipient == "all")
    assert offer.store.aggregates("cases") == []


async def test_an_envelope_without_a_recipient_is_refused_as_an_invalid_envelope():
    offer = Service(offer_definition())
    document = an_envelope(a_referral_registered(), Party.WERKSAAM, subject=SUBJECT).model_dump(mode="json")
    del document["recipient"]
    outcome = await offer.pipeline.handle_event(raw_of(document, routing_key="werksaam.referral.registered.v2"))
    assert outcome.status == "dead_lettered"
    assert [(r.code, r.field) for r in outcome.reasons] == [(ReasonCode.MISSING_FIELD, "recipient")]
    assert offer.store.aggregates("cases") == []


async def test_a_message_addressed_to_us_is_answered_to_its_sender():
    offer = Service(offer_definition())
    referral = an_envelope(a_referral_registered(), Party.WERKSAAM, subject=SUBJECT)
    assert (await offer.pipeline.handle_event(raw_of(referral))).status == "accepted"
    [retour] = offer.store.retours_sent
    assert (retour.source, retour.recipient) == (Party.HELIOMARE, "werksaam")
    [case] = offer.store.aggregates("cases")
    assert case.commissioner == "werksaam"  # every message about the case goes back to the one who referred


async def test_the_provider_takes_a_decision_only_from_the_commissioner_that_referred():
    offer = Service(offer_definition())
    referral = an_envelope(a_referral_registered(), Party.WERKSAAM, subject=SUBJECT)
    await offer.pipeline.handle_event(raw_of(referral))
    [case] = offer.store.aggregates("cases")
    offer.store.rows["cases"][case.id] = case.model_copy(update={"commissioner": "gemeentex"})  # another's referral
    decision = an_envelope(QuoteApproved(referral_id=case.id, quote_id=uuid.uuid4(), approved_amount="100.00"),
                           Party.WERKSAAM, subject=SUBJECT)
    outcome = await offer.pipeline.handle_event(raw_of(decision))
    assert outcome.status == "rejected"
    assert [(r.code, r.field) for r in outcome.reasons] == [(ReasonCode.SOURCE_NOT_PERMITTED, "source")]


async def test_the_commissioner_takes_a_quote_only_from_the_provider_it_referred_to():
    intake = Service(intake_definition(Settings(WERKBRUG_PSEUDONYM_KEY=PSEUDONYM_KEY)))
    answer = await intake.command(a_submit_referral())
    referral_id = uuid.UUID(answer["result"]["referral_id"])
    [referral] = intake.store.aggregates("referrals")
    assert referral.provider == "heliomare"
    [sent] = intake.store.outbox_of("referral.registered")
    assert sent.recipient == "heliomare" and sent.routing_key == "werksaam.heliomare.referral.registered.v2"
    intake.store.rows["referrals"][referral_id] = referral.model_copy(update={"provider": "tweedeweg"})
    quote = an_envelope(a_quote_sent(referral_id), Party.HELIOMARE, subject=referral.subject)
    outcome = await intake.pipeline.handle_event(raw_of(quote))
    assert [(r.code, r.field) for r in outcome.reasons] == [(ReasonCode.SOURCE_NOT_PERMITTED, "source")]
    assert (await intake.command(DecideQuote(referral_id=referral_id, quote_id=uuid.uuid4(), approve=True)))[
        "ok"] is False


def test_a_party_publishes_only_addressed_keys_and_binds_only_what_is_addressed_to_it_or_to_all():
    settings = Settings(WERKBRUG_PSEUDONYM_KEY=PSEUDONYM_KEY)
    for definition in (offer_definition(), intake_definition(settings)):
        party = definition.party.value
        for key, _ in service_bindings(definition):
            sender, recipient = key.split(".")[:2]
            assert recipient in {party, "all"} or sender == party, (definition.name, key)
            assert recipient != "*" and "#" not in key
        for key in service_publications(definition):
            assert key.startswith(f"{party}.") and key.split(".")[1] != "*", key


def test_a_partner_is_granted_only_what_is_addressed_to_all_parties():
    from infra.partners import topic_problems

    assert topic_problems(["heliomare.all.report.published.v3"]) == []
    [addressed] = topic_problems(["werksaam.heliomare.referral.registered.v2"])  # every referral, every person
    assert "addressed to heliomare alone" in addressed
    [old] = topic_problems(["werksaam.referral.registered.v1"])  # the routing key before messages were addressed
    assert "not the routing key of a registered event" in old
    [forged] = topic_problems(["heliomare.all.referral.registered.v2"])  # a sender it is not, a broadcast it is not
    assert "not the routing key of a registered event" in forged
    [internal] = topic_problems(["heliomare.heliomare.trajectory.commissioned.v2"])
    assert "not shared beyond its sender" in internal
