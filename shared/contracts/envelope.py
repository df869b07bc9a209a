"""The event envelope and the registry of event types.

Every message on the events exchange is an `Envelope` whose `data` is validated against the event
type's own model. That model is the allow-list of agreement art 5.5: it forbids extra fields, so a
message can carry nothing beyond what its type declares. Event types register themselves with
`@event(...)`; each is defined once, in `shared.contracts.events`. An event type names the roles that may
send it (`sent_by`); the register of parties says which parties hold them (`EventData.senders()`).

Routing keys name party, subject, event and version: ``werksaam.referral.registered.v1``.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, create_model, field_validator

from shared.contracts.parties import Party, Role, load_parties
from shared.ids import uuid7
from shared.privacy.pseudonym import PSEUDONYM_PATTERN


class EventData(BaseModel):
    """Base of every event payload: a closed allow-list of fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_type: ClassVar[str]
    version: ClassVar[int]
    sent_by: ClassVar[frozenset[Role]]  # the roles whose parties may send it
    about_a_person: ClassVar[bool] = True  # the envelope must then carry the subject's pseudonym
    internal: ClassVar[bool] = False  # read only by the sending party's own services: never answered by a retour
    concerns_subject_rights: ClassVar[bool] = False  # handled even while the subject's processing is restricted
    from_each_service: ClassVar[bool] = False  # sent by several services of a party (their retours reach all)
    between_parties: ClassVar[bool] = False  # sent by several parties; each party reads only the others' ones

    @classmethod
    def routing_subject_of(cls, data: dict[str, Any]) -> str:
        """The `subject.event` part of the routing key (retours refine it with what they answer)."""
        return cls.event_type

    @classmethod
    def senders(cls) -> frozenset[str]:
        """The ids of the parties that may send it: those holding one of its roles in the register of parties."""
        return load_parties().with_role(*cls.sent_by)


@dataclass(frozen=True)
class EventSpec:
    model: type[EventData]
    event_type: str
    version: int
    sent_by: frozenset[Role]

    @property
    def sources(self) -> frozenset[str]:
        """The parties that may send it (resolved through the register of parties)."""
        return self.model.senders()

    def routing_keys(self) -> list[str]:
        return [f"{p}.{self.event_type}.v{self.version}" for p in sorted(self.sources)]


_REGISTRY: dict[tuple[str, int], EventSpec] = {}


def event(event_type: str, version: int, *, sent_by: Iterable[Role]):
    """Register an event type. `sent_by` are the roles whose parties may send it (never a party: which parties
    hold a role is data, in the register of parties)."""
    sent_by = frozenset(sent_by)
    if not sent_by or not all(type(r) is Role for r in sent_by):
        raise TypeError(f"{event_type} v{version}: sent_by names one or more roles (shared.contracts.parties.Role)")

    def register(cls: type[EventData]) -> type[EventData]:
        key = (event_type, version)
        if key in _REGISTRY:
            raise RuntimeError(f"event type {event_type} v{version} defined twice")
        # Art 5.5: the fields are the allow-list the register of processing activities grants the sender. That
        # is checked when a service starts (ServiceDefinition.activities), not here: a contract loads no files.
        cls.event_type = event_type
        cls.version = version
        cls.sent_by = sent_by
        _REGISTRY[key] = EventSpec(cls, event_type, version, sent_by)
        return cls

    return register


def lookup(event_type: str, version: int) -> EventSpec | None:
    return _REGISTRY.get((event_type, version))


def known_versions(event_type: str) -> list[int]:
    return sorted(v for (t, v) in _REGISTRY if t == event_type)


def all_event_specs() -> list[EventSpec]:
    return list(_REGISTRY.values())


def now_utc() -> datetime:
    return datetime.now(UTC)


class Envelope(BaseModel):
    """What travels on the wire. `data` is checked against the event type's model by `open_envelope`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: uuid.UUID
    type: str = Field(pattern=r"^[a-z][a-z-]*\.[a-z][a-z-]*$", max_length=80)
    version: int = Field(ge=1, le=999)
    source: Party
    time: AwareDatetime
    subject: str | None = Field(pattern=PSEUDONYM_PATTERN, description="Pseudonym of the data subject.")
    correlation_id: uuid.UUID = Field(description="The lifecycle this event belongs to (the referral id).")
    causation_id: uuid.UUID | None = None
    data: dict[str, Any]

    @field_validator("time")
    @classmethod
    def _utc(cls, v: datetime) -> datetime:
        return v.astimezone(UTC)

    @property
    def routing_key(self) -> str:
        return routing_key_for(self.source, self.type, self.version, self.data)

    @classmethod
    def wrap(
        cls,
        data: EventData,
        *,
        source: Party,
        subject: str | None,
        correlation_id: uuid.UUID,
        causation_id: uuid.UUID | None = None,
    ) -> Self:
        if source not in data.senders():
            raise ValueError(f"{source} may not send {data.event_type}")
        return cls(
            id=uuid7(),
            type=data.event_type,
            version=data.version,
            source=source,
            time=now_utc(),
            subject=subject,
            correlation_id=correlation_id,
            causation_id=causation_id,
            data=data.model_dump(mode="json"),
        )


@functools.cache
def envelope_model(model: type[EventData]) -> type[Envelope]:
    """The envelope with `data` typed as one event type: the message schema published for partners."""
    return create_model(
        f"{model.__name__}Message",
        __base__=Envelope,
        __doc__=f"{model.event_type} v{model.version}: {(model.__doc__ or '').strip()}",
        type=(Literal[model.event_type], model.event_type),  # type: ignore[valid-type]
        version=(Literal[model.version], model.version),  # type: ignore[valid-type]
        data=(model, ...),
    )


def routing_key_for(source: Party | str, event_type: str, version: int, data: dict[str, Any]) -> str:
    spec = lookup(event_type, version)
    subject_event = spec.model.routing_subject_of(data) if spec else event_type
    return f"{Party(source).value}.{subject_event}.v{version}"
