"""Building blocks of a service's domain model: aggregates that record the events they cause.

As in cosmicpython: an aggregate changes its own state and appends the events that follow from the
change; the unit of work collects them on commit and writes them to the outbox in the same
transaction. The domain knows nothing about brokers or databases.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, PrivateAttr

from shared.contracts.envelope import EventData


@dataclass(frozen=True)
class Outgoing:
    """An event an aggregate caused, before it is wrapped in an envelope."""

    data: EventData
    subject: str | None
    correlation_id: uuid.UUID


class Aggregate(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    id: uuid.UUID
    version: int = 0

    _events: list[Outgoing] = PrivateAttr(default_factory=list)

    def emit(self, data: EventData, *, subject: str | None, correlation_id: uuid.UUID | None = None) -> None:
        self._events.append(Outgoing(data, subject, correlation_id or self.id))

    def pop_events(self) -> list[Outgoing]:
        events, self._events = self._events, []
        return events
