"""Partners who join the cooperation later (agreement art 13, 16): `werkbrug partner add | remove | list`.

A partner joins by addendum: its name, legal basis, purpose, the topics (routing keys) granted to it and
its contact point. `add` refuses unless every existing party (the two founding parties and every partner
in force) consented (art 13.1) and unless the partner's broker user is free; it then records the addendum
and the consents, and only then creates the partner's broker user (`<namespace>.<name>`: its own in this
namespace, so the same name in another namespace of the broker is another user) with exactly its
permissions, declares one queue per granted topic, announces it with `werksaam.all.party.joined.v2`, and
writes the partner's contract: an AsyncAPI document of its broker, vhost, user and queues (exactly its
topics).

A partner is consumer-only: it may bind and read its granted topics and publish nothing (no retours
either; it has no event type to send until an addendum and the register grant it one).

Leaving (art 13.2) or removal (art 16.3): `werkbrug partner remove NAME --kind left|removed`. At once:
`werksaam.all.party.left.v2` is announced, the partner's permissions and topic permissions are cleared and
its connections closed (RabbitMQ does not re-check an open channel), its user is deleted, and its
queues are deleted. Undelivered messages policy: what the partner had not taken when it left is
destroyed with its queues, not kept and not re-sent anywhere: after leaving it has no ground to receive
personal data (art 11.3), and the senders keep their own records. The register records how many
messages were destroyed (a count, never their content).

The partner register is an append-only JSON-lines file, `var/partners/<namespace>.jsonl`
(WERKBRUG_PARTNERS_FILE): every addendum, every consent and every departure is a new line, nothing is
overwritten, so it is its own version history, and it outlives the (embedded, in-memory) databases as
the broker's users do. It is the operator's record, not any one service's data.
"""

from __future__ import annotations

import json
import os
import secrets
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

import aio_pika
from faststream.rabbit import QueueType, RabbitBroker, RabbitQueue
from pydantic import BaseModel, ConfigDict, Field, field_validator

from infra.identities import (
    ANNOUNCEMENTS,
    import_grants,
    partner_grant,
    partner_queue_prefix,
    partner_user,
    revoke,
    user_exists,
)
from shared.asyncapi import Contract
from shared.config import ADMIN_USER, Settings
from shared.contracts.envelope import BROADCAST, Envelope, envelope_model, lookup
from shared.contracts.events import DepartureKind, GdprBasis, PartnerName, PartyJoined, PartyLeft
from shared.contracts.parties import RESERVED_IDS, PartyRecord, Role, load_parties
from shared.messaging.topology import Topology

ROOT = Path(__file__).resolve().parent.parent
RESERVED = {ADMIN_USER, *RESERVED_IDS}  # and every party in the register of parties (`_not_reserved`)


class PartnerRefused(Exception):
    """The addendum or the request is not acceptable; the reasons say why (nothing was changed)."""

    def __init__(self, *reasons: str) -> None:
        self.reasons = reasons
        super().__init__("; ".join(reasons))


class Contact(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(min_length=1, max_length=100)
    email: str = Field(pattern=r"^[^@\s]{1,64}@[^@\s]{1,190}\.[a-z]{2,20}$")


class Consent(BaseModel):
    """One existing party's consent to the addendum (art 13.1)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    party: str = Field(pattern=r"^[a-z][a-z0-9-]{2,30}$")
    signed_by: str = Field(min_length=1, max_length=100, description="Role of the signatory, e.g. director.")
    signed_on: date
    reference: str = Field(min_length=1, max_length=100, description="Where the signed addendum is filed.")


class Addendum(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    addendum_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    name: PartnerName
    organisation: str = Field(min_length=1, max_length=200)
    legal_basis: GdprBasis
    purpose: str = Field(min_length=1, max_length=500)
    topics: list[str] = Field(min_length=1, max_length=50)
    contact: Contact
    effective_from: date
    consents: list[Consent] = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value in RESERVED or value in load_parties().ids():
            raise ValueError(f"{value} is reserved")
        return value

    def as_party(self) -> PartyRecord:
        """The partner as a party of the cooperation: a reader, admitted by this addendum."""
        return PartyRecord(id=self.name, organisation=self.organisation, roles=frozenset({Role.READER}),
                           legal_basis=self.legal_basis, admitted_by=self.addendum_id)


def topic_problems(topics: list[str]) -> list[str]:
    """A topic may be granted if it is one exact routing key of a registered event type, sent by a party
    that may send it, leaving that party (not internal), not a retour (those answer their sender), and addressed
    to all parties: a message addressed to a party is that party's alone (art 5.5, 11.3)."""
    problems = []
    for topic in topics:
        parts = topic.split(".")
        spec = lookup(f"{parts[2]}.{parts[3]}", int(parts[4][1:])) if (
            len(parts) == 5 and parts[4][:1] == "v" and parts[4][1:].isdigit()) else None
        if spec is None or parts[0] not in spec.sources or topic not in spec.routing_keys():
            problems.append(f"{topic}: not the routing key of a registered event and a party that sends it")
        elif spec.model.internal or spec.event_type == "retour.issued":
            problems.append(f"{topic}: not shared beyond its sender")
        elif parts[1] != BROADCAST:
            problems.append(f"{topic}: addressed to {parts[1]} alone; a partner is granted only what is addressed "
                            "to all parties")
    if len(set(topics)) != len(topics):
        problems.append("a topic is granted twice")
    return problems


class PartnerRegister:
    """The append-only register of addenda, consents and departures of one namespace."""

    def __init__(self, settings: Settings, path: Path | None = None) -> None:
        self.settings = settings
        configured = os.environ.get("WERKBRUG_PARTNERS_FILE")
        self.path = path or (Path(configured) if configured else
                             ROOT / "var" / "partners" / f"{settings.namespace}.jsonl")

    def records(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def in_force(self) -> dict[str, Addendum]:
        partners: dict[str, Addendum] = {}
        for record in self.records():
            if record["action"] == "joined":
                addendum = Addendum.model_validate(record["addendum"])
                partners[addendum.name] = addendum
            else:
                partners.pop(record["partner"], None)
        return partners

    def broker_user(self, name: str) -> str:
        """The broker user of partner `name` as recorded when it joined; a partner recorded before broker users
        were per namespace has the user `name`."""
        users = [r.get("user", name) for r in self.records() if r["action"] == "joined" and r["partner"] == name]
        return users[-1] if users else name

    def append(self, action: Literal["joined", "left", "removed"], **fields: Any) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        record = {"at": datetime.now(UTC).isoformat(), "action": action, **fields}
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, sort_keys=True, default=str) + "\n")


def partner_dir(settings: Settings, name: str) -> Path:
    return ROOT / "var" / "partners" / settings.namespace / name


def partner_queue(settings: Settings, name: str, topic: str) -> RabbitQueue:
    return RabbitQueue(partner_queue_prefix(settings.namespace, name) + topic, queue_type=QueueType.QUORUM,
                       durable=True, routing_key=topic)


def partner_asyncapi(settings: Settings, addendum: Addendum) -> dict[str, Any]:
    """The partner's contract, with what it needs to connect and nothing more: the broker (host, port, vhost), its
    broker user, and one channel per granted topic (and per announcement): the queue to consume, the routing key
    and the message's JSON Schema. AsyncAPI 3.1, built by FastStream like every service's document and finished
    by `shared.asyncapi` (the vhost's name, where the correlation id is, the user)."""
    topology = Topology(settings.namespace, settings.delivery_limit)
    user = partner_user(settings.namespace, addendum.name)
    # The URL gives the server's host, port and protocol only (FastStream writes no credentials).
    broker = RabbitBroker(settings.broker_url(), logger=None,
                          description=f"werkbrug for {addendum.organisation}: the topics granted by addendum "
                                      f"{addendum.addendum_id}.")
    for topic in (*addendum.topics, *ANNOUNCEMENTS):
        _, _, subject, event_name, version = topic.split(".")
        spec = lookup(f"{subject}.{event_name}", int(version[1:]))
        assert spec is not None, topic
        queue = partner_queue(settings, addendum.name, topic)

        async def receive(message) -> None:  # documentation only: the partner writes its own consumer
            return None

        receive.__annotations__ = {"message": envelope_model(spec.model), "return": None}
        summary = " ".join((spec.model.__doc__ or spec.event_type).strip().split("\n\n")[0].split())
        broker.subscriber(queue, exchange=topology.events, title=f"{addendum.name}:{topic}",
                          description=f"{summary} Consume from queue `{queue.name}` and acknowledge: it is declared "
                                      "(durable, quorum) and bound to this routing key for you.")(receive)
    purpose = f"{addendum.purpose.rstrip('.')} (legal basis {addendum.legal_basis})."
    document = Contract(broker, vhost=settings.amqp_vhost, user=user, title=f"werkbrug for {addendum.name}",
                        version="1", description=purpose)
    return document.to_specification().to_jsonable()


async def _declare_queues(settings: Settings, name: str, topics: list[str]) -> None:
    topology = Topology(settings.namespace, settings.delivery_limit)
    connection = await aio_pika.connect_robust(settings.broker_url())
    async with connection:
        channel = await connection.channel()
        events = await channel.declare_exchange(topology.events.name, aio_pika.ExchangeType.TOPIC, durable=True)
        for topic in topics:
            queue = await channel.declare_queue(partner_queue(settings, name, topic).name, durable=True,
                                                arguments={"x-queue-type": "quorum"})
            await queue.bind(events, topic)


async def _delete_queues(settings: Settings, name: str, topics: list[str]) -> int:
    """Delete the partner's queues; the number of messages it had not taken."""
    destroyed = 0
    connection = await aio_pika.connect_robust(settings.broker_url())
    async with connection:
        for topic in topics:
            channel = await connection.channel()
            queue_name = partner_queue(settings, name, topic).name
            try:
                queue = await channel.declare_queue(queue_name, passive=True)
                destroyed += queue.declaration_result.message_count or 0
                await channel.queue_delete(queue_name)
            except aio_pika.exceptions.ChannelClosed:
                continue
    return destroyed


async def _announce(settings: Settings, data: PartyJoined | PartyLeft) -> Envelope:
    """Publish as the coordinator (WerkSaam: its own broker user, its user_id), with confirms and mandatory."""
    coordinator = load_parties().coordinator()
    envelope = Envelope.wrap(data, source=coordinator, subject=None, correlation_id=data.addendum_id)
    topology = Topology(settings.namespace, settings.delivery_limit)
    connection = await aio_pika.connect_robust(settings.broker_url(coordinator))
    async with connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        exchange = await channel.get_exchange(topology.events.name, ensure=False)
        await exchange.publish(
            aio_pika.Message(envelope.model_dump_json().encode(), message_id=str(envelope.id),
                             correlation_id=str(envelope.correlation_id), type=f"{envelope.type}.v{envelope.version}",
                             content_type="application/json", user_id=coordinator,
                             delivery_mode=aio_pika.DeliveryMode.PERSISTENT, timestamp=envelope.time),
            routing_key=envelope.routing_key, mandatory=True)
    return envelope


def departure_notice(settings: Settings, name: str, kind: DepartureKind) -> str:
    """Who ended whose cooperation (the reason the partner's connections are closed with, and the command line's
    line): a partner leaves by its own notice (art 13.2); the parties remove one (art 16.3)."""
    if kind == DepartureKind.LEFT:
        return f"werkbrug {settings.namespace}: partner {name} left the cooperation (art 13.2); its access has ended"
    return (f"werkbrug {settings.namespace}: the parties removed partner {name} from the cooperation (art 16.3); "
            "its access has ended")


class JoinResult(BaseModel):
    name: str
    user: str = Field(description="Its broker user, `<namespace>.<name>`.")
    password: str
    queues: list[str]
    asyncapi: Path
    announcement: uuid.UUID


async def add_partner(settings: Settings, addendum: Addendum, register: PartnerRegister | None = None) -> JoinResult:
    """Art 13.1: consents first, then the broker identity, then the announcement."""
    register = register or PartnerRegister(settings)
    in_force = register.in_force()
    problems = topic_problems(addendum.topics)
    if addendum.name in in_force:
        problems.append(f"{addendum.name} is a partner already")
    parties = load_parties().joined(*(a.as_party() for a in in_force.values()))  # the partners are readers
    existing = set(parties.ids())
    consented = {c.party for c in addendum.consents}
    problems += [f"no consent of {party} (art 13.1)" for party in sorted(existing - consented)]
    problems += [f"{party} is not a party" for party in sorted(consented - existing)]
    if problems:
        raise PartnerRefused(*problems)
    # Its own user in this namespace: one that exists already is not this register's partner (a register lost
    # or replaced), and taking it over would change a password someone holds.
    user = partner_user(settings.namespace, addendum.name)
    if user_exists(user):
        raise PartnerRefused(f"broker user {user} exists already, but {addendum.name} is not in this namespace's "
                             f"partner register ({register.path}): restore the register, or delete the user if it "
                             "is a leftover (rabbitmqctl delete_user)")

    register.append("joined", partner=addendum.name, user=user, addendum=addendum.model_dump(mode="json"))
    password = secrets.token_urlsafe(24)
    topics = [*addendum.topics, *ANNOUNCEMENTS]
    import_grants(settings, [partner_grant(settings.namespace, addendum.name, topics)], {user: password})
    await _declare_queues(settings, addendum.name, topics)
    announcement = await _announce(settings, PartyJoined(
        addendum_id=addendum.addendum_id, partner=addendum.name, legal_basis=addendum.legal_basis,
        purpose=addendum.purpose, topics=addendum.topics, effective_from=addendum.effective_from))

    out = partner_dir(settings, addendum.name)
    out.mkdir(parents=True, exist_ok=True)
    document = out / "asyncapi.json"
    document.write_text(json.dumps(partner_asyncapi(settings, addendum), indent=2, sort_keys=True) + "\n")
    secret = out / "amqp-password"
    secret.write_text(password + "\n")
    secret.chmod(0o600)
    return JoinResult(name=addendum.name, user=user, password=password, asyncapi=document, announcement=announcement.id,
                      queues=[partner_queue(settings, addendum.name, t).name for t in topics])


async def remove_partner(settings: Settings, name: str, kind: DepartureKind,
                         register: PartnerRegister | None = None) -> int:
    """Art 13.2 / 16.3: announce, revoke at once, destroy what it had not taken. Returns that count."""
    register = register or PartnerRegister(settings)
    addendum = register.in_force().get(name)
    if addendum is None:
        raise PartnerRefused(f"{name} is not a partner in force")
    # Announced while the leaver's queues still exist, so the announcement is routed even to no one else.
    await _announce(settings, PartyLeft(addendum_id=addendum.addendum_id, partner=name, kind=kind,
                                        effective_from=datetime.now(UTC).date()))
    revoke(settings, register.broker_user(name), departure_notice(settings, name, kind))
    destroyed = await _delete_queues(settings, name, [*addendum.topics, *ANNOUNCEMENTS])
    register.append(kind.value, partner=name, addendum_id=str(addendum.addendum_id), destroyed_messages=destroyed)
    secret = partner_dir(settings, name) / "amqp-password"
    secret.unlink(missing_ok=True)
    return destroyed
