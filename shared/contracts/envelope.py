"""The event envelope and the registry of event types.

Every message on the events exchange is an `Envelope` whose `data` is validated against the event
type's own model. That model is the allow-list of agreement art 5.5: it forbids extra fields, so a
message can carry nothing beyond what its type declares. Event types register themselves with
`@event(...)`; each is defined once, in `shared.contracts.events`. An event type names the roles that may
send it (`sent_by`); the register of parties says which parties hold them (`EventData.senders()`).

Every message is addressed: the envelope names its sender (`source`) and its `recipient`, a party or `all`
(a broadcast, for the types that are one), and its routing key carries both:
``<sender>.<recipient>.<subject>.<event>.v<N>``, e.g. ``werksaam.heliomare.referral.registered.v2``. An event type
names the roles that may send it (`sent_by`) and the roles it may be addressed to (`sent_to`), or is a
broadcast; the register of parties resolves both into parties. The broker lets a party bind only keys
addressed to it (or broadcasts), and every consumer refuses an envelope addressed to another party.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, create_model, field_validator

from shared.contracts.parties import Party, Role, load_parties
from shared.ids import uuid7
from shared.privacy.pseudonym import PSEUDONYM_PATTERN

BROADCAST = "all"  # the recipient of a message addressed to every party (a reserved word, never a party's id)
Recipient = Annotated[str, Field(pattern=r"^[a-z][a-z0-9]{2,30}$", description=(
    "The party the message is addressed to, or `all` for a broadcast."))]


class EventData(BaseModel):
    """Base of every event payload: a closed allow-list of fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_type: ClassVar[str]
    version: ClassVar[int]
    sent_by: ClassVar[frozenset[Role]]  # the roles whose parties may send it
    sent_to: ClassVar[frozenset[Role]]  # the roles whose parties it may be addressed to (none: a broadcast)
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

    @classmethod
    def broadcast(cls) -> bool:
        return not cls.sent_to

    @classmethod
    def recipients_from(cls, sender: str) -> frozenset[str]:
        """Whom `sender` may address it to: `all` for a broadcast; itself only for an internal type; else the
        parties holding a role it is sent to."""
        if cls.broadcast():
            return frozenset({BROADCAST})
        if cls.internal:
            return frozenset({sender})
        return load_parties().with_role(*cls.sent_to)


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

    def routing_keys(self, recipient: str | None = None) -> list[str]:
        """Every routing key of the type: each sender to each party it may address (only to `recipient`)."""
        return [f"{s}.{r}.{self.event_type}.v{self.version}" for s in sorted(self.sources)
                for r in sorted(self.model.recipients_from(s)) if recipient in (None, r)]


_REGISTRY: dict[tuple[str, int], EventSpec] = {}


def event(event_type: str, version: int, *, sent_by: Iterable[Role], sent_to: Iterable[Role] | str):
    """Register an event type. `sent_by` are the roles whose parties may send it, `sent_to` the roles it may be
    addressed to, or BROADCAST (never a party: which parties hold a role is data, in the register of parties)."""
    sent_by = frozenset(sent_by)
    sent_to = frozenset() if sent_to == BROADCAST else frozenset(sent_to)
    if not sent_by or not all(type(r) is Role for r in sent_by | sent_to):
        raise TypeError(f"{event_type} v{version}: sent_by and sent_to name roles (shared.contracts.parties.Role)")

    def register(cls: type[EventData]) -> type[EventData]:
        key = (event_type, version)
        if key in _REGISTRY:
            raise RuntimeError(f"event type {event_type} v{version} defined twice")
        # Art 5.5: the fields are the allow-list the register of processing activities grants the sender. That
        # is checked when a service starts (ServiceDefinition.activities), not here: a contract loads no files.
        cls.event_type = event_type
        cls.version = version
        cls.sent_by = sent_by
        cls.sent_to = sent_to
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
    recipient: Recipient
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
        return routing_key_for(self.source, self.recipient, self.type, self.version, self.data)

    @classmethod
    def wrap(
        cls,
        data: EventData,
        *,
        source: Party,
        subject: str | None,
        correlation_id: uuid.UUID,
        causation_id: uuid.UUID | None = None,
        recipient: str | None = None,
    ) -> Self:
        """The envelope of `data` from `source` to `recipient` (a broadcast's is `all`; an internal type's its
        sender). Raises ValueError when `source` may not send it or may not address it so."""
        if source not in data.senders():
            raise ValueError(f"{source} may not send {data.event_type}")
        if recipient is None and (data.broadcast() or data.internal):
            recipient = BROADCAST if data.broadcast() else source
        if recipient not in data.recipients_from(source):
            raise ValueError(f"{data.event_type} from {source} may not be addressed to {recipient!s:.40}")
        return cls(
            id=uuid7(),
            type=data.event_type,
            version=data.version,
            source=source,
            recipient=recipient,
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


def expects_retour(event_type: str, version: int, routing_key: str) -> bool:
    """Whether a sent event is answered by a retour: one that crosses to another party (not internal, not addressed
    to its own sender, not itself a retour)."""
    spec = lookup(event_type, version)
    sender, _, rest = routing_key.partition(".")
    recipient = rest.partition(".")[0]
    return not (spec and (spec.model.internal or spec.event_type == "retour.issued")) and recipient != sender


def routing_key_for(source: str, recipient: str, event_type: str, version: int, data: dict[str, Any]) -> str:
    """`<sender>.<recipient>.<subject>.<event>.v<N>` (a retour's subject-event names the type it answers)."""
    spec = lookup(event_type, version)
    subject_event = spec.model.routing_subject_of(data) if spec else event_type
    return f"{source}.{recipient}.{subject_event}.v{version}"
