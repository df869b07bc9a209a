"""What a service is, as the messaging core sees it: its party, storage, handlers and the messages it sends,
checked against the register of processing activities (deny by default) when a pipeline is built from it.

A service's bootstrap (`services/<name>/bootstrap.py`) writes one through `shared.bootstrap.service`, which adds
the capabilities every service has (answering data-subject requests); this module knows none of them."""

from __future__ import annotations

import functools
import operator
import typing
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import Field, TypeAdapter

from shared.contracts.commands import (
    CORE_COMMANDS,
    Command,
    ListConfidentialityStatements,
    ListDeadLetters,
    ReadProcessingLog,
    RecordConfidentialityStatement,
    RecordDeadLetterRead,
)
from shared.contracts.envelope import EventData
from shared.contracts.events import Retour
from shared.contracts.parties import Party
from shared.messaging.handlers import CommandHandler, EventHandler, Job
from shared.privacy.register import Activity, UnregisteredProcessing, activity_of, load_register
from shared.unit_of_work import RepositorySpec


@dataclass
class ServiceDefinition:
    """Everything the runtime needs to know about a service: its party, storage and handlers."""

    name: str
    party: Party
    repositories: list[RepositorySpec]
    event_handlers: dict[type[EventData], EventHandler]
    command_type: Any
    command_handlers: dict[type[Command], CommandHandler]
    emits: tuple[type[EventData], ...]
    retour_handler: EventHandler | None = None
    description: str = ""
    answers_subject_requests: bool = True  # False only for the service that coordinates them
    jobs: list[Job] = field(default_factory=list)
    _command_adapter: TypeAdapter | None = field(default=None, init=False, repr=False)

    @property
    def command_adapter(self) -> TypeAdapter:
        """The service's own commands, plus those every service answers (its processing log, the register of
        confidentiality statements)."""
        if self._command_adapter is None:
            self._command_adapter = TypeAdapter(self.command_union)
        return self._command_adapter

    @property
    def command_union(self) -> Any:
        """Every command the service answers, as one type discriminated by `command`."""
        own = typing.get_args(typing.get_args(self.command_type)[0]) or (typing.get_args(self.command_type)[0],)
        return Annotated[functools.reduce(operator.or_, (*own, *CORE_COMMANDS)), Field(discriminator="command")]

    def activities(self) -> dict[object, Activity]:
        """The registered activity of every handler, checked against the register. Deny by default:
        raises UnregisteredProcessing for any handler or message the register does not allow."""
        register, party, found = load_register(), self.party, {}

        def declared(handler, what: str) -> Activity:
            activity_id = activity_of(handler)
            if activity_id is None:
                raise UnregisteredProcessing(f"{self.name}: the handler for {what} declares no processing activity")
            activity = register.get(activity_id)
            if activity.party != party:
                raise UnregisteredProcessing(f"{self.name}: {activity_id} is an activity of {activity.party.value}")
            return activity

        for model in {*self.event_handlers, *self.emits, Retour}:  # art 5.5: each one's fields are its allow-list
            register.check_fields(f"{model.event_type}.v{model.version}", model.model_fields, model.senders())
        for model, handler in self.event_handlers.items():
            message = f"{model.event_type}.v{model.version}"
            activity = declared(handler, message)
            if message not in activity.receives:
                raise UnregisteredProcessing(f"{self.name}: {activity.id} does not receive {message}")
            found[model] = activity
        for model, handler in self.command_handlers.items():
            found[model] = declared(handler, model.__name__)
        for model in self.emits:
            register.sender_of(party, f"{model.event_type}.v{model.version}")
        found[Retour] = register.receiver_of(party, f"{Retour.event_type}.v{Retour.version}")
        register.sender_of(party, f"{Retour.event_type}.v{Retour.version}")
        found[ReadProcessingLog] = register.by_name(party, "processing-log-access")
        found[RecordConfidentialityStatement] = found[ListConfidentialityStatements] = register.by_name(
            party, "confidentiality")
        found[ListDeadLetters] = found[Retour]  # why a message was refused: part of answering what was sent
        found[RecordDeadLetterRead] = found[Retour]  # reading a refused message to set it right, likewise
        return found
