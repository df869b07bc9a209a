"""The register of parties (shared/parties.toml): parties are data, validated as a whole, and event types'
senders are resolved through it by role."""

from __future__ import annotations

import tomllib
import uuid

import pytest
from pydantic import ValidationError

import shared.contracts.envelope as envelope_module
from shared.contracts.envelope import Envelope, lookup
from shared.contracts.events import QuoteSent, ReferralAccepted, ReferralRegistered, Retour
from shared.contracts.parties import (
    PARTIES_PATH,
    LegalBasis,
    Party,
    PartyRecord,
    PartyRegister,
    Role,
    UnknownParty,
    load_parties,
)

SECOND_PROVIDER = {"id": "tweedeweg", "organisation": "Stichting Tweede Weg", "roles": ["provider"],
                   "legal_basis": "GDPR 6(1)(b)", "admitted_by": str(uuid.UUID(int=7))}


def _document() -> dict:
    return tomllib.loads(PARTIES_PATH.read_text())


def _refused(document: dict, match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        PartyRegister.model_validate(document)


def test_the_register_holds_the_founding_parties_with_their_roles_basis_and_the_agreement_as_admission():
    parties = load_parties()
    assert parties.ids() == ["heliomare", "werksaam"]
    assert parties.with_role(Role.COMMISSIONER) == {"werksaam"}
    assert parties.with_role(Role.PROVIDER) == {"heliomare"}
    assert parties.coordinator() == "werksaam"
    assert parties.get("werksaam").organisation == "WerkSaam Westfriesland"
    assert parties.legal_basis("heliomare") == LegalBasis.CONTRACT
    assert {parties.get(p).admitted_by for p in Party} == {"agreement"}
    assert parties.service_parties() == ["heliomare", "werksaam"]


def test_an_unknown_party_is_not_in_the_register():
    with pytest.raises(UnknownParty):
        load_parties().get("nobody")


def test_a_party_admitted_by_addendum_joins_in_its_role():
    document = _document()
    document["party"].append(SECOND_PROVIDER)
    parties = PartyRegister.model_validate(document)
    assert parties.with_role(Role.PROVIDER) == {"heliomare", "tweedeweg"}
    assert parties.get("tweedeweg").admitted_by == uuid.UUID(int=7)


@pytest.mark.parametrize(("change", "match"), [
    (lambda d: d["party"].append(dict(d["party"][0])), "unique"),
    (lambda d: d["party"].pop(1), "at least 2|founding parties"),
    (lambda d: d["party"][1].update(roles=["provider", "coordinator"]), "coordinator is a commissioner"),
    (lambda d: d["party"][1].update(roles=["commissioner", "coordinator"]), "exactly one party coordinates"),
    (lambda d: d["party"][0].update(roles=["commissioner"]), "exactly one party coordinates"),
    (lambda d: d["party"][1].update(roles=["commissioner"]), "needs a provider"),
    (lambda d: d["party"].append({**SECOND_PROVIDER, "roles": ["reader", "provider"]}), "reader holds no other"),
    (lambda d: d["party"].append({**SECOND_PROVIDER, "admitted_by": "agreement"}), "founding parties"),
    (lambda d: d["party"][1].update(admitted_by=str(uuid.UUID(int=1))), "founding parties"),
    (lambda d: d["party"].append({**SECOND_PROVIDER, "id": "all"}), "reserved"),
    (lambda d: d["party"].append({**SECOND_PROVIDER, "id": "Tweede.Weg"}), "pattern"),
    (lambda d: d["party"].append({**SECOND_PROVIDER, "legal_basis": "GDPR 6(1)(z)"}), "legal_basis"),
    (lambda d: d["party"].append({**SECOND_PROVIDER, "roles": []}), "roles"),
    (lambda d: d["party"].append({**SECOND_PROVIDER, "bank": "NL00"}), "Extra inputs"),
])
def test_an_invalid_register_of_parties_is_refused_as_a_whole(change, match):
    document = _document()
    change(document)
    _refused(document, match)


def test_joining_a_partner_validates_the_register_as_a_whole():
    parties = load_parties()
    reader = PartyRecord(id="cbsstat", organisation="CBS", roles=frozenset({Role.READER}),
                         legal_basis=LegalBasis.PUBLIC_TASK, admitted_by=uuid.UUID(int=3))
    assert parties.joined(reader).with_role(Role.READER) == {"cbsstat"}
    with pytest.raises(ValidationError, match="unique"):
        parties.joined(reader, reader)


def test_the_senders_of_an_event_type_follow_the_register_of_parties(monkeypatch):
    document = _document()
    document["party"].append(SECOND_PROVIDER)
    with_two = PartyRegister.model_validate(document)
    monkeypatch.setattr(envelope_module, "load_parties", lambda: with_two)

    assert ReferralAccepted.senders() == {"heliomare", "tweedeweg"}
    assert lookup("quote.sent", 2).routing_keys() == ["heliomare.werksaam.quote.sent.v2",
                                                      "tweedeweg.werksaam.quote.sent.v2"]
    assert Retour.senders() == {"heliomare", "tweedeweg", "werksaam"}
    assert ReferralRegistered.senders() == {"werksaam"}  # a provider does not refer
    # a referral is addressed to one provider or the other, never to all
    assert lookup("referral.registered", 2).routing_keys() == ["werksaam.heliomare.referral.registered.v2",
                                                               "werksaam.tweedeweg.referral.registered.v2"]
    quote = QuoteSent.model_validate({
        "referral_id": str(uuid.uuid4()), "quote_id": str(uuid.uuid4()), "sequence": 1, "kind": "quote",
        "amount": "100.00", "planned_start": "2026-01-05", "duration_weeks": 4,
        "invoicing": [{"moment": "advance", "amount": "100.00"}]})
    with pytest.raises(ValueError, match="may not send"):
        Envelope.wrap(quote, source=Party.WERKSAAM, recipient=Party.HELIOMARE, subject=None,
                      correlation_id=uuid.uuid4())
