"""Composes a service: its own definition plus the capabilities every service has, applied by one mechanism.

A service's bootstrap calls `service(...)` with its name, party, storage and handlers. Every service that holds
records about data subjects answers data-subject requests (`shared.privacy.subject_data`); the messaging core
(`shared.messaging`) does not know that capability, it only runs the handlers it is given."""

from __future__ import annotations

from typing import Any

from shared.contracts.events import SubjectRequestAnswered, SubjectRequestIssued
from shared.messaging.definition import ServiceDefinition
from shared.privacy.subject_data import SubjectRequestResponder


def service(**fields: Any) -> ServiceDefinition:
    """The service's definition with the capabilities added (see the module docstring)."""
    definition = ServiceDefinition(**fields)
    if definition.answers_subject_requests and any(spec.about_subjects for spec in definition.repositories):
        definition.event_handlers = {
            **definition.event_handlers,
            SubjectRequestIssued: SubjectRequestResponder(definition.name, definition.party, definition.repositories)}
        definition.emits = (*definition.emits, SubjectRequestAnswered)
    return definition
