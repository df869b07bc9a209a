"""Offer handlers: plain functions of (message, unit of work)."""

from __future__ import annotations

from services.offer.domain import Case
from shared.contracts.commands import DecideReferral, GetReferral, ListReferrals, SendQuote
from shared.contracts.events import QuoteApproved, QuoteRejected, ReferralRegistered
from shared.contracts.reasons import Reason, ReasonCode, Refusal
from shared.messaging.handlers import Incoming
from shared.privacy.register import performs
from shared.unit_of_work import UnitOfWork

# The registered processing activities (shared/privacy/register.toml) these handlers perform.
CASE_OVERVIEW = "urn:werkbrug:activity:heliomare:case-overview:v1"
QUOTE = "urn:werkbrug:activity:heliomare:quote:v3"
REFERRAL_REGISTRATION = "urn:werkbrug:activity:heliomare:referral-registration:v2"

# -- events from WerkSaam ---------------------------------------------------------------------------


@performs(REFERRAL_REGISTRATION)
async def on_referral_registered(event: Incoming[ReferralRegistered], uow: UnitOfWork) -> None:
    if await uow.cases.get(event.data.referral_id) is not None:
        raise Refusal(ReasonCode.DUPLICATE_REFERRAL)
    subject = event.envelope.subject
    if subject is None:  # the pipeline refuses these already; never register a case without its subject
        raise Refusal(Reason(code=ReasonCode.MISSING_FIELD, field="subject"))
    uow.cases.add(Case.register(event.data, subject, commissioner=event.envelope.source))


@performs(QUOTE)
async def on_quote_approved(event: Incoming[QuoteApproved], uow: UnitOfWork) -> None:
    (await _case(uow, event.data.referral_id, event)).quote_approved(event.data.quote_id,
                                                                      event.data.approved_amount)


@performs(QUOTE)
async def on_quote_rejected(event: Incoming[QuoteRejected], uow: UnitOfWork) -> None:
    (await _case(uow, event.data.referral_id, event)).quote_rejected(event.data.quote_id, event.data.reason)


# -- commands (Heliomare's account managers) -------------------------------------------------------


@performs(REFERRAL_REGISTRATION)
async def decide_referral(cmd: DecideReferral, uow: UnitOfWork) -> dict:
    case = await _case(uow, cmd.referral_id)
    if cmd.accept:
        case.accept()
    else:
        case.decline(cmd.decline_reason)
    return case.view()


@performs(QUOTE)
async def send_quote(cmd: SendQuote, uow: UnitOfWork) -> dict:
    case = await _case(uow, cmd.referral_id)
    case.send_quote(cmd)
    return case.view()


@performs(CASE_OVERVIEW)
async def get_referral(query: GetReferral, uow: UnitOfWork) -> dict:
    case = await _case(uow, query.referral_id)
    view = {**case.view(), "deliveries": await uow.deliveries(case.id)}
    if query.with_person:  # the messaging core let only staff with a confidentiality statement ask (art 8)
        view["person"] = case.client.model_dump(mode="json")
    return view


@performs(CASE_OVERVIEW)
async def list_referrals(query: ListReferrals, uow: UnitOfWork) -> list[dict]:
    filters = {"status": query.status} if query.status else {}
    return [c.view() for c in await uow.cases.find(limit=query.limit, **filters)]


async def _case(uow: UnitOfWork, referral_id, event: Incoming | None = None) -> Case:
    case = await uow.cases.require(referral_id, subject=event.envelope.subject if event else None)
    if event is not None and event.envelope.source != case.commissioner:  # only the referring commissioner decides
        raise Refusal(Reason(code=ReasonCode.SOURCE_NOT_PERMITTED, field="source",
                             detail="not the commissioner that referred the person"))
    return case
