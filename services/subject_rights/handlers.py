"""subject_rights handlers: plain functions of (message, unit of work).

The messaging core around them does validation, deduplication, retours, tracing and the commit.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from services.subject_rights.domain import (
    ChasePolicy,
    RequestStatus,
    SubjectRequest,
    local_day,
    may_read,
    restricted_now,
)
from shared.contracts.commands import (
    ChaseSubjectRequests,
    ExtendSubjectRequest,
    GetSubjectRequest,
    ListSubjectRequests,
    SubmitSubjectRequest,
)
from shared.contracts.events import Right, SubjectRequestAnswered
from shared.contracts.parties import Party
from shared.contracts.reasons import Reason, ReasonCode, Refusal
from shared.messaging.handlers import Answer, Incoming
from shared.privacy.register import performs
from shared.unit_of_work import UnitOfWork

SUBJECT_RIGHTS = "urn:werkbrug:activity:werksaam:subject-rights:v3"


def _now() -> datetime:
    return datetime.now(UTC)


# -- commands (the privacy desk) ----------------------------------------------------------------------


@performs(SUBJECT_RIGHTS)
async def submit_subject_request(cmd: SubmitSubjectRequest, uow: UnitOfWork, *, pseudonymise: Callable[[str], str],
                                 holders: dict[Party, list[str]]) -> Answer:
    subject = pseudonymise(cmd.bsn)  # the BSN goes no further than this line
    earlier = await uow.requests.find(limit=100, subject=subject)
    open_same = next((r for r in earlier if r.status == RequestStatus.OPEN and r.right == cmd.right), None)
    request = SubjectRequest.receive(cmd, subject, _now(), holders, open_same, restricted_now(earlier), earlier)
    uow.requests.add(request)
    view = request.view(local_day(_now()), escalate_days=0)
    return Answer(view, ok=request.status != RequestStatus.REFUSED, reasons=tuple(request.refusal_reasons),
                  lifecycle_id=request.id)


@performs(SUBJECT_RIGHTS)
async def extend_subject_request(cmd: ExtendSubjectRequest, uow: UnitOfWork, *, escalate_days: int) -> dict:
    request = await _require(uow, cmd.request_id)
    request.extend(cmd.reason, cmd.person_told_at, _now())
    return request.view(local_day(_now()), escalate_days)


@performs(SUBJECT_RIGHTS)
async def chase_subject_requests(cmd: ChaseSubjectRequests, uow: UnitOfWork, *, policy: ChasePolicy) -> dict:
    now = cmd.now or _now()
    asked_again: dict[str, list[str]] = {}
    escalated = []
    for request in await uow.requests.find(limit=1000, status=RequestStatus.OPEN.value):
        was_escalated = request.escalated_at is not None
        if services := request.chase(now, policy):
            asked_again[str(request.id)] = services
        if request.escalated_at is not None and not was_escalated:
            escalated.append(str(request.id))
    return {"asked_again": asked_again, "escalated": escalated}


@performs(SUBJECT_RIGHTS)
async def get_subject_request(query: GetSubjectRequest, uow: UnitOfWork, *, escalate_days: int) -> dict:
    request = await _require(uow, query.request_id)
    if not may_read(query.actor, request, await uow.requests.find(limit=1000, subject=request.subject)):
        raise Refusal(Reason(code=ReasonCode.SUBJECT_RESTRICTED, field="actor",
                             detail="the person's processing is restricted or objected to: only the privacy "
                                    "officer handling the request reads their data"))
    return request.view(local_day(_now()), escalate_days, with_package=True)


@performs(SUBJECT_RIGHTS)
async def list_subject_requests(query: ListSubjectRequests, uow: UnitOfWork, *, escalate_days: int) -> list[dict]:
    filters = {"status": query.status} if query.status else {}
    if query.at_risk:
        filters["status"] = RequestStatus.OPEN.value
    today = local_day(_now())
    views = [r.view(today, escalate_days) for r in await uow.requests.find(limit=query.limit, **filters)]
    if query.at_risk:
        views = [v for v in views if v["deadline"] in {"at_risk", "overdue"}]
    return views


# -- events (the services' answers) ------------------------------------------------------------------


@performs(SUBJECT_RIGHTS)
async def on_subject_request_answered(event: Incoming[SubjectRequestAnswered], uow: UnitOfWork) -> None:
    request = await uow.requests.get(event.data.request_id)
    if request is None:
        raise Refusal(Reason(code=ReasonCode.UNKNOWN_REQUEST, field="request_id"))
    if request.subject != event.envelope.subject:
        raise Refusal(Reason(code=ReasonCode.INVALID_VALUE, field="subject", detail="not this request's subject"))
    request.record_answer(event.data, event.envelope.source, _now())
    if request.status == RequestStatus.COMPLETED and request.right == Right.ERASURE:
        await _erase_our_copies(uow, request.subject)
    elif request.status == RequestStatus.COMPLETED and request.right == Right.RECTIFICATION:
        await _forget_old_values(uow, request)


async def _forget_old_values(uow: UnitOfWork, rectification: SubjectRequest) -> None:
    """After a rectification the packages of the subject's earlier completed requests lose the copies of the data
    as it was (access answers, earlier corrections); how each request was handled stays (art 5(1)(d), 16). Its
    outbox copies (the requests it sent, an earlier rectification's corrections among them) go as everywhere."""
    for earlier in await uow.requests.find(limit=1000, subject=rectification.subject, status=RequestStatus.COMPLETED):
        if earlier.id != rectification.id:
            earlier.forget_copies()
    await uow.rectify_copies(rectification.subject, rectification.package.corrections or {})


async def _erase_our_copies(uow: UnitOfWork, subject: str) -> None:
    """The contact point's own copies go too: the packages of earlier requests lose the data they disclosed,
    the request records are kept (under the subject's retained key) to account for their handling, and the
    subject's key is destroyed, which shreds the outbox copies (corrections) as everywhere else."""
    for request in await uow.requests.find(limit=1000, subject=subject):
        request.forget_copies()
        await uow.withhold_record("requests", request, request.accountability())
    await uow.shred_subject(subject)


async def _require(uow: UnitOfWork, request_id) -> SubjectRequest:
    request = await uow.requests.get(request_id)
    if request is None:
        raise Refusal(Reason(code=ReasonCode.UNKNOWN_REQUEST, field="request_id"))
    return request
