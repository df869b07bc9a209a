"""The wire contract: envelope, event allow-lists (art 5.5), routing keys and reason codes."""

from __future__ import annotations

import functools
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from pydantic import ValidationError

from shared.contracts.commands import CommandResult, DecideQuote
from shared.contracts.envelope import Envelope, all_event_specs, event, known_versions, lookup, routing_key_for
from shared.contracts.events import (
    InvoiceMoment,
    InvoiceTranche,
    PartyJoined,
    QuoteApproved,
    QuoteRejected,
    QuoteSent,
    ReferralAccepted,
    ReferralDeclined,
    ReferralRegistered,
    Retour,
)
from shared.contracts.parties import Party, Role, load_parties
from shared.contracts.reasons import Reason, ReasonCode, Refusal, reasons_from_validation_error
from tests.unit.builders import (
    VALID_BSN,
    a_quote_sent,
    a_referral_registered,
    a_submit_referral,
    an_envelope,
    pseudonymise,
)

SUBJECT = pseudonymise(VALID_BSN)


def envelope_document(**overrides) -> dict:
    env = an_envelope(a_referral_registered(), Party.WERKSAAM, subject=SUBJECT)
    document = env.model_dump(mode="json")
    document.update(overrides)
    return document


# -- envelope ---------------------------------------------------------------------------------------


def test_a_wrapped_envelope_round_trips_through_json():
    env = an_envelope(a_referral_registered(), Party.WERKSAAM, subject=SUBJECT)
    again = Envelope.model_validate_json(env.model_dump_json())
    assert again == env
    assert ReferralRegistered.model_validate(again.data).bsn == VALID_BSN


def test_envelope_forbids_extra_fields():
    with pytest.raises(ValidationError) as info:
        Envelope.model_validate(envelope_document(remarks="free text"))
    assert [e["type"] for e in info.value.errors()] == ["extra_forbidden"]


def test_envelope_requires_a_timezone_aware_time():
    with pytest.raises(ValidationError) as info:
        Envelope.model_validate(envelope_document(time="2026-03-01T12:00:00"))
    assert info.value.errors()[0]["loc"] == ("time",)


def test_envelope_time_is_normalised_to_utc():
    env = Envelope.model_validate(envelope_document(time="2026-03-01T12:00:00+02:00"))
    assert env.time == datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    assert env.time.utcoffset() == timedelta(0)


@pytest.mark.parametrize("subject", [VALID_BSN, "psn_" + "a" * 25, "psn_" + "A" * 26, "psn_" + "1" * 26,
                                     "PSN_" + "a" * 26, SUBJECT + "\n", "x" + SUBJECT])
def test_envelope_subject_must_be_a_pseudonym(subject):
    with pytest.raises(ValidationError) as info:
        Envelope.model_validate(envelope_document(subject=subject))
    assert info.value.errors()[0]["loc"] == ("subject",)


def test_envelope_accepts_a_pseudonym_subject_or_none():
    assert Envelope.model_validate(envelope_document(subject=SUBJECT)).subject == SUBJECT
    assert Envelope.model_validate(envelope_document(subject=None)).subject is None


@pytest.mark.parametrize("type_", ["Referral.registered", "referral", "referral.registered.v2", "referral_x.y",
                                   "1referral.registered", ""])
def test_envelope_type_must_be_subject_dot_event(type_):
    with pytest.raises(ValidationError):
        Envelope.model_validate(envelope_document(type=type_))


@pytest.mark.parametrize("source", ["gemeente-hoorn", "WERKSAAM", ""])
def test_envelope_source_must_be_a_party(source):
    with pytest.raises(ValidationError):
        Envelope.model_validate(envelope_document(source=source))


@pytest.mark.parametrize("version", [0, 1000, -1])
def test_envelope_version_is_bounded(version):
    with pytest.raises(ValidationError):
        Envelope.model_validate(envelope_document(version=version))


def test_envelope_wrap_refuses_a_source_party_not_allowed_for_the_type():
    with pytest.raises(ValueError, match="may not send"):
        Envelope.wrap(a_referral_registered(), source=Party.HELIOMARE, recipient=Party.WERKSAAM, subject=SUBJECT,
                      correlation_id=uuid.uuid4())
    with pytest.raises(ValueError, match="may not send"):
        Envelope.wrap(a_quote_sent(uuid.uuid4()), source=Party.WERKSAAM, recipient=Party.HELIOMARE, subject=SUBJECT,
                      correlation_id=uuid.uuid4())


def test_envelope_wrap_fills_identity_type_and_time():
    causation = uuid.uuid4()
    data = a_referral_registered()
    env = Envelope.wrap(data, source=Party.WERKSAAM, recipient=Party.HELIOMARE, subject=SUBJECT,
                        correlation_id=data.referral_id, causation_id=causation)
    assert (env.type, env.version, env.source, env.recipient) == ("referral.registered", 2, Party.WERKSAAM,
                                                                  "heliomare")
    assert env.routing_key == "werksaam.heliomare.referral.registered.v2"
    assert env.correlation_id == data.referral_id and env.causation_id == causation
    assert env.time.tzinfo is not None
    assert env.data["referral_id"] == str(data.referral_id)


# -- event allow-lists (art 5.5) ---------------------------------------------------------------------


@pytest.mark.parametrize("spec", all_event_specs(), ids=lambda s: f"{s.event_type}.v{s.version}")
def test_every_event_model_forbids_unknown_fields(spec):
    with pytest.raises(ValidationError) as info:
        spec.model.model_validate({"remarks": "medical history"})
    assert any(e["type"] == "extra_forbidden" and e["loc"] == ("remarks",) for e in info.value.errors())


@pytest.mark.parametrize(
    "data",
    [
        a_referral_registered(),
        ReferralAccepted(referral_id=uuid.uuid4()),
        ReferralDeclined(referral_id=uuid.uuid4(), reason="no_capacity"),
        a_quote_sent(uuid.uuid4()),
        QuoteApproved(referral_id=uuid.uuid4(), quote_id=uuid.uuid4(), approved_amount=Decimal("10.00")),
        QuoteRejected(referral_id=uuid.uuid4(), quote_id=uuid.uuid4(), reason="amount_too_high"),
        Retour(about_event_id=uuid.uuid4(), about_type="referral.registered", about_version=2, status="accepted"),
    ],
    ids=lambda d: d.event_type,
)
def test_a_valid_event_refuses_one_field_more(data):
    document = {**data.model_dump(mode="json"), "extra": "x"}
    with pytest.raises(ValidationError) as info:
        type(data).model_validate(document)
    assert [e["type"] for e in info.value.errors()] == ["extra_forbidden"]


def test_event_models_are_frozen():
    data = ReferralAccepted(referral_id=uuid.uuid4())
    with pytest.raises(ValidationError):
        data.referral_id = uuid.uuid4()


def test_only_the_referral_registration_carries_personal_data():
    personal = {"bsn", "given_name", "family_name", "date_of_birth", "postal_code", "phone", "email"}
    carriers = {spec.event_type for spec in all_event_specs() if personal & set(spec.model.model_fields)}
    assert carriers == {"referral.registered"}


def test_the_answers_carry_only_ids_codes_and_amounts():
    assert set(ReferralAccepted.model_fields) == {"referral_id"}
    assert set(ReferralDeclined.model_fields) == {"referral_id", "reason"}
    assert set(QuoteApproved.model_fields) == {"referral_id", "quote_id", "approved_amount"}
    assert set(QuoteRejected.model_fields) == {"referral_id", "quote_id", "reason"}


@pytest.mark.parametrize("field,value", [("bsn", "12345678"), ("bsn", "12345678a"), ("postal_code", "1621 AB"),
                                         ("postal_code", "0621AB"), ("municipality", "amsterdam"),
                                         ("email", "not-an-email"), ("phone", "call me"),
                                         ("support_need", "diagnosis: depression"), ("given_name", "")])
def test_referral_registered_refuses_values_outside_its_shape(field, value):
    document = {**a_referral_registered().model_dump(mode="json"), field: value}
    with pytest.raises(ValidationError) as info:
        ReferralRegistered.model_validate(document)
    assert info.value.errors()[0]["loc"] == (field,)


def test_quote_sent_refuses_a_schedule_that_does_not_add_up():
    document = a_quote_sent(uuid.uuid4(), amount="4800.00").model_dump(mode="json")
    document["invoicing"] = [{"moment": "advance", "amount": "2400.00"}, {"moment": "afterwards", "amount": "2399.99"}]
    with pytest.raises(ValidationError, match="add up"):
        QuoteSent.model_validate(document)


def test_quote_sent_accepts_a_schedule_that_adds_up_in_any_split():
    document = a_quote_sent(uuid.uuid4(), amount="4800.00").model_dump(mode="json")
    document["invoicing"] = [{"moment": "advance", "amount": "1000.00"}, {"moment": "advance", "amount": "800.00"},
                             {"moment": "afterwards", "amount": "3000"}]
    assert QuoteSent.model_validate(document).amount == Decimal("4800.00")


@pytest.mark.parametrize("amount", ["0", "-1.00", "250000.01", "10.001", "NaN", "Infinity"])
def test_euro_amounts_are_positive_bounded_and_in_cents(amount):
    with pytest.raises(ValidationError):
        InvoiceTranche(moment=InvoiceMoment.ADVANCE, amount=amount)


def test_quote_sent_needs_at_least_one_tranche():
    document = a_quote_sent(uuid.uuid4()).model_dump(mode="json")
    document["invoicing"] = []
    with pytest.raises(ValidationError):
        QuoteSent.model_validate(document)


# -- routing keys and the registry ------------------------------------------------------------------


def test_routing_key_names_party_subject_event_and_version():
    env = an_envelope(a_referral_registered(), Party.WERKSAAM, subject=SUBJECT)
    assert env.routing_key == "werksaam.heliomare.referral.registered.v2"
    env = an_envelope(a_quote_sent(uuid.uuid4()), Party.HELIOMARE, subject=SUBJECT)
    assert env.routing_key == "heliomare.werksaam.quote.sent.v2"


def test_retour_routing_key_names_what_it_answers():
    retour = Retour(about_event_id=uuid.uuid4(), about_type="referral.registered", about_version=2,
                    status="accepted")
    env = an_envelope(retour, Party.HELIOMARE)
    assert env.routing_key == "heliomare.werksaam.retour.referral-registered.v2"
    assert routing_key_for(Party.WERKSAAM, Party.HELIOMARE, "retour.issued", 2, {"about_type": "quote.sent"}) == \
        "werksaam.heliomare.retour.quote-sent.v2"


def test_retour_binding_collects_every_partys_answers_to_one_partys_events_of_one_type():
    assert Retour.binding_for(ReferralAccepted, "heliomare") == "*.heliomare.retour.referral-accepted.v2"
    assert Retour.binding_for(ReferralRegistered, "werksaam") == "*.werksaam.retour.referral-registered.v2"


def test_routing_key_of_an_unknown_type_uses_the_type_itself():
    assert routing_key_for("werksaam", "heliomare", "referral.exploded", 3, {}) == \
        "werksaam.heliomare.referral.exploded.v3"


def test_registry_lists_each_type_with_the_roles_that_send_it_and_the_parties_holding_them():
    spec = lookup("referral.registered", 2)
    assert spec is not None and spec.model is ReferralRegistered
    assert spec.sent_by == frozenset({Role.COMMISSIONER}) and spec.model.sent_to == frozenset({Role.PROVIDER})
    assert spec.sources == frozenset({Party.WERKSAAM})
    assert spec.routing_keys() == ["werksaam.heliomare.referral.registered.v2"]
    assert lookup("quote.sent", 2).routing_keys() == ["heliomare.werksaam.quote.sent.v2"]
    assert lookup("retour.issued", 2).sources == frozenset(Party)
    assert lookup("party.joined", 2).sent_by == frozenset({Role.COORDINATOR})
    assert lookup("party.joined", 2).routing_keys() == ["werksaam.all.party.joined.v2"]
    assert lookup("trajectory.commissioned", 2).routing_keys() == ["heliomare.heliomare.trajectory.commissioned.v2"]
    assert lookup("subject-request.issued", 2).routing_keys() == [
        "werksaam.heliomare.subject-request.issued.v2", "werksaam.werksaam.subject-request.issued.v2"]
    assert lookup("referral.registered", 1) is None
    assert known_versions("referral.registered") == [2]
    assert known_versions("referral.exploded") == []


def test_every_event_type_names_roles_and_never_a_party():
    for spec in all_event_specs():
        assert spec.sent_by and all(type(role) is Role for role in spec.sent_by | spec.model.sent_to), spec.event_type
        assert Role.READER not in spec.sent_by, spec.event_type  # a reader sends nothing
    with pytest.raises(TypeError, match="roles"):
        event("person.named", 1, sent_by={Party.WERKSAAM}, sent_to={Role.PROVIDER})
    with pytest.raises(TypeError, match="roles"):
        event("person.named", 1, sent_by={Role.COMMISSIONER}, sent_to={Party.HELIOMARE})


def test_an_envelope_is_addressed_only_as_its_type_allows():
    data = a_referral_registered()
    wrap = functools.partial(Envelope.wrap, data, source=Party.WERKSAAM, subject=SUBJECT,
                             correlation_id=data.referral_id)
    for wrong in ("werksaam", "all", "nobody", None):  # not a provider, a broadcast, no party, not addressed
        with pytest.raises(ValueError, match="may not be addressed"):
            wrap(recipient=wrong)
    joined = PartyJoined(addendum_id=uuid.uuid4(), partner="monitor", legal_basis="GDPR 6(1)(e)", purpose="Figures.",
                         topics=["heliomare.all.report.published.v3"], effective_from=date(2027, 1, 1))
    announcement = Envelope.wrap(joined, source=Party.WERKSAAM, subject=None, correlation_id=joined.addendum_id)
    assert announcement.recipient == "all" and announcement.routing_key == "werksaam.all.party.joined.v2"
    with pytest.raises(ValueError, match="may not be addressed"):  # a broadcast is addressed to all, not one party
        Envelope.wrap(joined, source=Party.WERKSAAM, subject=None, correlation_id=joined.addendum_id,
                      recipient="heliomare")


def test_each_party_has_a_legal_basis():
    parties = load_parties()
    assert {p.value for p in Party} <= set(parties.ids())
    assert {p: parties.legal_basis(p).value for p in Party} == {"werksaam": "GDPR 6(1)(e)",
                                                                "heliomare": "GDPR 6(1)(b)"}


# -- reason codes -------------------------------------------------------------------------------------


def _errors_of(model, document) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        model.model_validate(document)
    return info.value


def test_validation_errors_become_reason_codes_by_kind():
    document = a_referral_registered().model_dump(mode="json")
    del document["given_name"]
    document["colour"] = "blue"
    document["referral_id"] = "not-a-uuid"
    reasons = reasons_from_validation_error(_errors_of(ReferralRegistered, document), prefix="data")
    by_field = {r.field: r.code for r in reasons}
    assert by_field == {"data.given_name": ReasonCode.MISSING_FIELD, "data": ReasonCode.UNKNOWN_FIELD,
                        "data.referral_id": ReasonCode.INVALID_VALUE}


def test_reasons_never_repeat_the_rejected_value():
    bsn_like = "987654329"
    document = a_referral_registered().model_dump(mode="json")
    document.update(referral_id=bsn_like, postal_code=bsn_like, given_name=bsn_like * 20, email=bsn_like,
                    date_of_birth=bsn_like, municipality=bsn_like, unexpected=bsn_like, bsn=bsn_like + "0")
    error = _errors_of(ReferralRegistered, document)
    assert bsn_like in str(error)  # pydantic itself does quote it ...
    reasons = reasons_from_validation_error(error, prefix="data")
    assert len(reasons) == 8
    for reason in reasons:  # ... the reasons do not
        assert bsn_like not in str(reason)
        assert bsn_like not in reason.model_dump_json()
        assert bsn_like not in repr(reason)


def test_reasons_from_a_command_never_repeat_the_bsn():
    bsn_like = "987654329"
    error = _errors_of(DecideQuote, {"referral_id": bsn_like, "quote_id": bsn_like, "approve": bsn_like,
                                     "reject_reason": bsn_like})
    for reason in reasons_from_validation_error(error):
        assert bsn_like not in reason.model_dump_json()


def test_reasons_are_capped_at_twenty():
    from pydantic import create_model

    many = create_model("Many", __module__="shared.contracts.probe", **{f"f{i}": (int, ...) for i in range(30)})
    assert len(reasons_from_validation_error(_errors_of(many, {}))) == 20


def test_reason_reads_as_code_field_and_detail():
    assert str(Reason(code=ReasonCode.BSN_INVALID, field="bsn", detail="11-test")) == "bsn_invalid at bsn (11-test)"
    assert str(Reason(code=ReasonCode.UNKNOWN_QUOTE)) == "unknown_quote"


def test_refusal_carries_reasons_built_from_codes():
    refusal = Refusal(ReasonCode.UNKNOWN_REFERRAL, Reason(code=ReasonCode.INVALID_VALUE, field="subject"))
    assert [r.code for r in refusal.reasons] == [ReasonCode.UNKNOWN_REFERRAL, ReasonCode.INVALID_VALUE]
    assert str(refusal) == "unknown_referral, invalid_value at subject"


def test_reason_forbids_extra_fields():
    with pytest.raises(ValidationError):
        Reason(code=ReasonCode.OVERSIZED, value="123456782")


# -- commands ----------------------------------------------------------------------------------------


def test_commands_forbid_unknown_fields():
    with pytest.raises(ValidationError) as info:
        DecideQuote(referral_id=uuid.uuid4(), quote_id=uuid.uuid4(), approve=True, remarks="x")
    assert info.value.errors()[0]["type"] == "extra_forbidden"


def test_commands_get_an_idempotency_key_by_default():
    a = DecideQuote(referral_id=uuid.uuid4(), quote_id=uuid.uuid4(), approve=True)
    b = DecideQuote(referral_id=a.referral_id, quote_id=a.quote_id, approve=True)
    assert a.command_id != b.command_id


def test_submit_referral_leaves_the_eleven_test_to_the_domain_but_bounds_the_length():
    """The 11-test is the domain's (so it can answer with bsn_invalid); the command only bounds the size."""
    assert a_submit_referral(bsn="12345").bsn == "12345"
    with pytest.raises(ValidationError):
        a_submit_referral(bsn="1" * 21)


def test_command_result_forbids_extra_fields():
    with pytest.raises(ValidationError):
        CommandResult(ok=True, extra=1)


def test_offsets_other_than_utc_are_accepted_as_aware():
    tz = timezone(timedelta(hours=-5))
    env = Envelope.model_validate(envelope_document(time=datetime(2026, 1, 1, 7, tzinfo=tz).isoformat()))
    assert env.time == datetime(2026, 1, 1, 12, tzinfo=UTC)
