"""Building blocks of a service's domain model: aggregates that record the events they cause.

As in cosmicpython: an aggregate changes its own state and appends the events that follow from the
change; the unit of work collects them on commit and writes them to the outbox in the same
transaction. The domain knows nothing about brokers or databases.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, PrivateAttr

from shared.contracts.envelope import EventData
from shared.contracts.reasons import Refusal


class NotYet(Refusal):
    """An event that does not follow from the receiver's records YET: what it follows from (a start, an
    approval) travels on another queue and may still come. The messaging core holds it back and tries
    again a few times; when the broker's delivery count reaches its last allowed delivery, it is refused
    like any Refusal, with these reasons. An event that contradicts the records outright (a second,
    different start; another trajectory id than the recorded one) raises a plain Refusal at once."""


@dataclass(frozen=True)
class Outgoing:
    """An event an aggregate caused, before it is wrapped in an envelope."""

    data: EventData
    subject: str | None
    correlation_id: uuid.UUID
    to: str | None = None  # the recipient party; None for a broadcast or an internal type (Envelope.wrap)


@dataclass(frozen=True)
class Withholding:
    """Why a record is kept despite an erasure request (GDPR art 17(3)(b)), and until when."""

    ground: str
    keep_until: date
    # The personal fields (of the record's `personal_field`) the ground needs; the others are dropped when the
    # record is withheld (art 5(1)(c): a legal duty keeps what it requires, not the whole record).
    keeps: tuple[str, ...] = ()


class Aggregate(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    id: uuid.UUID
    version: int = 0

    _events: list[Outgoing] = PrivateAttr(default_factory=list)

    def emit(self, data: EventData, *, subject: str | None, correlation_id: uuid.UUID | None = None,
             to: str | None = None) -> None:
        """Emit an event addressed `to` a party (None: a broadcast, or an internal type to our own party)."""
        self._events.append(Outgoing(data, subject, correlation_id or self.id, to))

    def pop_events(self) -> list[Outgoing]:
        events, self._events = self._events, []
        return events

    # -- what the data-subject rights and the retention job ask of a record ------------------------

    def retention_start(self) -> date | None:
        """When this record's retention period starts to run (its lifecycle ended); None while it is
        still needed. The retention job destroys it once the period of its activity has passed."""
        return None

    def withholding(self) -> Withholding | None:
        """A legal duty to keep this record despite an erasure request (art 17(3)(b)), or None: erase it."""
        return None

    # The field holding the record's personal data (a `PersonalData`), if it holds any: what art 16 corrects.
    personal_field: ClassVar[str | None] = None

    def keep_only_for(self, withholding: Withholding) -> None:
        """Drop the personal fields the withholding ground does not need (when the record is withheld)."""
        if self.personal_field is None or (personal := getattr(self, self.personal_field)) is None:
            return
        kept = {k: v for k, v in personal.model_dump().items() if k in withholding.keeps}
        setattr(self, self.personal_field, type(personal).model_validate(kept) if kept else None)

    def rectify(self, corrections: dict[str, Any]) -> bool:
        """Correct personal data (art 16). True when the record held any of the corrected fields."""
        if self.personal_field is None:
            return False
        personal = corrected(getattr(self, self.personal_field), corrections)
        if personal is None:
            return False
        setattr(self, self.personal_field, personal)
        return True


def corrected(personal: BaseModel | None, corrections: dict[str, Any]) -> BaseModel | None:
    """The personal data with the corrections applied (validated as the model requires), or None when it
    holds none of the corrected fields."""
    if personal is None:
        return None
    applicable = {k: v for k, v in corrections.items() if k in type(personal).model_fields}
    if not applicable:
        return None
    return type(personal).model_validate({**personal.model_dump(), **applicable})


def corrected_copy(value: Any, corrections: dict[str, Any]) -> Any:
    """A copy of a message's data with every field a correction names holding its corrected value, at any depth
    (the personal data of a record in an access answer too)."""
    if isinstance(value, dict):
        return {k: corrections[k] if k in corrections and isinstance(v, str) else corrected_copy(v, corrections)
                for k, v in value.items()}
    if isinstance(value, list):
        return [corrected_copy(v, corrections) for v in value]
    return value
