"""Builders of valid commands, events and broker messages, with overrides for what a test varies."""

from __future__ import annotations

import json
import uuid
from datetime import date
from decimal import Decimal
from typing import Any

from shared.contracts.commands import SendQuote, SubmitReferral
from shared.contracts.envelope import Envelope, EventData
from shared.contracts.events import (
    InvoiceMoment,
    InvoiceTranche,
    QuoteKind,
    QuoteSent,
    ReferralRegistered,
    SupportNeed,
)
from shared.contracts.parties import Municipality, Party
from shared.messaging.pipeline import RawMessage
from shared.privacy.pseudonym import Pseudonymiser

PSEUDONYM_KEY = "a1" * 32
FIELD_KEY = "b2" * 32
pseudonymise = Pseudonymiser(PSEUDONYM_KEY)

VALID_BSN = "123456782"
OTHER_VALID_BSN = "111222333"


def a_submit_referral(**overrides: Any) -> SubmitReferral:
    fields: dict[str, Any] = dict(
        bsn=VALID_BSN, given_name="Fenna", family_name="de Boer", date_of_birth=date(1991, 4, 12),
        municipality="Hoorn", postal_code="1621 AB", phone="+31 6 12345678", email="fenna@example.nl",
        labour_disability=True, participatiewet_entitlement=True, support_need=SupportNeed.JOB_COACHING,
        requested_start=date(2027, 1, 4),
    )
    fields.update(overrides)
    return SubmitReferral(**fields)


def a_referral_registered(referral_id: uuid.UUID | None = None, **overrides: Any) -> ReferralRegistered:
    fields: dict[str, Any] = dict(
        referral_id=referral_id or uuid.uuid4(), bsn=VALID_BSN, given_name="Fenna", family_name="de Boer",
        date_of_birth=date(1991, 4, 12), municipality=Municipality.HOORN, postal_code="1621AB",
        phone="+31 6 12345678", email="fenna@example.nl", support_need=SupportNeed.JOB_COACHING,
        requested_start=date(2027, 1, 4),
    )
    fields.update(overrides)
    return ReferralRegistered(**fields)


def a_schedule(amount: str) -> list[InvoiceTranche]:
    total = Decimal(amount)
    half = (total / 2).quantize(Decimal("0.01"))
    return [InvoiceTranche(moment=InvoiceMoment.ADVANCE, amount=half),
            InvoiceTranche(moment=InvoiceMoment.AFTERWARDS, amount=total - half)]


def a_send_quote(referral_id: uuid.UUID, amount: str = "4800.00", **overrides: Any) -> SendQuote:
    fields: dict[str, Any] = dict(
        referral_id=referral_id, amount=Decimal(amount), planned_start=date(2027, 1, 4), duration_weeks=26,
        invoicing=a_schedule(amount),
    )
    fields.update(overrides)
    return SendQuote(**fields)


def a_quote_sent(referral_id: uuid.UUID, amount: str = "4800.00", sequence: int = 1,
                 quote_id: uuid.UUID | None = None) -> QuoteSent:
    return QuoteSent(
        referral_id=referral_id, quote_id=quote_id or uuid.uuid4(), sequence=sequence, kind=QuoteKind.QUOTE,
        amount=Decimal(amount), planned_start=date(2027, 1, 4), duration_weeks=26, invoicing=a_schedule(amount),
    )


def an_envelope(data: EventData, source: Party, subject: str | None = None,
                correlation_id: uuid.UUID | None = None, to: str | None = None) -> Envelope:
    """`data` from `source`, addressed `to` a party (default: the one other party it may go to; a broadcast or an
    internal type: as Envelope.wrap addresses it)."""
    referral_id = getattr(data, "referral_id", None)
    if to is None and not (data.broadcast() or data.internal):
        to = min(data.recipients_from(source) - {source}, default=source)
    return Envelope.wrap(data, source=source, subject=subject, recipient=to,
                         correlation_id=correlation_id or referral_id or uuid.uuid4())


def raw_of(envelope: Envelope | dict[str, Any], *, routing_key: str | None = None, message_id: Any = "same",
           body: bytes | None = None, headers: dict[str, Any] | None = None, user_id: Any = "same") -> RawMessage:
    """The broker message carrying an envelope (or an envelope-like document), as a publisher sends it.

    By default the routing key, message id and sender (AMQP user_id) follow the envelope; override them to
    break the contract.
    """
    if isinstance(envelope, Envelope):
        document = envelope.model_dump(mode="json")
        key = envelope.routing_key
    else:
        document = envelope
        key = f"{document['source']}.{document.get('recipient')}.{document['type']}.v{document['version']}"
    return RawMessage(
        body=json.dumps(document).encode() if body is None else body,
        headers=headers or {},
        routing_key=key if routing_key is None else routing_key,
        message_id=str(document.get("id")) if message_id == "same" else message_id,
        correlation_id=str(document.get("correlation_id")),
        user_id=str(document.get("source")) if user_id == "same" else user_id,
    )
