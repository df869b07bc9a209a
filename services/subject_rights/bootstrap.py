"""subject_rights wiring (the bootstrap): storage of its requests and the handlers for each message."""

from __future__ import annotations

from datetime import timedelta
from functools import partial

from services.subject_rights import handlers
from services.subject_rights.domain import ChasePolicy, SubjectRequest
from shared.bootstrap import service
from shared.config import Settings, get_settings
from shared.contracts.commands import (
    ChaseSubjectRequests,
    ExtendSubjectRequest,
    GetSubjectRequest,
    ListSubjectRequests,
    SubjectRightsCommand,
    SubmitSubjectRequest,
)
from shared.contracts.events import BreachReported, SubjectRequestAnswered, SubjectRequestIssued
from shared.contracts.parties import Party
from shared.messaging.definition import ServiceDefinition
from shared.messaging.handlers import Job
from shared.privacy.breaches import BREACHES, breach_desk
from shared.privacy.pseudonym import Pseudonymiser
from shared.unit_of_work import RepositorySpec

REQUESTS = RepositorySpec("requests", SubjectRequest, encrypted=("package",),
                          indexes=(("subject",), ("status",)), retention="subject-rights")


def data_holders(settings: Settings) -> dict[Party, list[str]]:
    """The services of each party that may hold data on a subject (WERKBRUG_SUBJECT_DATA_HOLDERS)."""
    holders: dict[Party, list[str]] = {}
    for item in settings.subject_data_holders.split(","):
        party, _, service = item.strip().partition(":")
        holders.setdefault(Party(party), []).append(service)
    return holders


def definition(settings: Settings | None = None) -> ServiceDefinition:
    settings = settings or get_settings()
    pseudonymise = Pseudonymiser(settings.pseudonym_key.get_secret_value())
    policy = ChasePolicy(reminder_after=timedelta(seconds=settings.subject_reminder_after),
                         max_reminders=settings.subject_max_reminders,
                         escalate_days_before_due=settings.subject_escalate_days)
    days = {"escalate_days": settings.subject_escalate_days}
    breach_events, breach_commands = breach_desk(Party.WERKSAAM)
    return service(
        name="subject_rights",
        party=Party.WERKSAAM,
        description="WerkSaam's contact point for data-subject requests (GDPR art 15-21, agreement art 10): "
                    "receives them, fans them out to every service that holds data, gathers the answers, "
                    "and watches the legal deadlines. WerkSaam's breach desk (art 12, GDPR art 33-34): reports "
                    "breaches, receives Heliomare's, and tracks the 24-hour and 72-hour clocks.",
        repositories=[REQUESTS, BREACHES],
        event_handlers={SubjectRequestAnswered: handlers.on_subject_request_answered, **breach_events},
        command_type=SubjectRightsCommand,
        command_handlers={
            SubmitSubjectRequest: partial(handlers.submit_subject_request, pseudonymise=pseudonymise,
                                          holders=data_holders(settings)),
            ExtendSubjectRequest: partial(handlers.extend_subject_request, **days),
            ChaseSubjectRequests: partial(handlers.chase_subject_requests, policy=policy),
            GetSubjectRequest: partial(handlers.get_subject_request, **days),
            ListSubjectRequests: partial(handlers.list_subject_requests, **days),
            **breach_commands,
        },
        emits=(SubjectRequestIssued, BreachReported),
        answers_subject_requests=False,  # it coordinates them
        jobs=[Job("chase-subject-requests", settings.subject_chase_interval, ChaseSubjectRequests)],
    )
