"""Dead letters: what the parking queues hold, why, and replaying a message after a fix.

Only the broker puts a message in a service's parking queue `<ns>.<service>.parking`: it dead-letters
there (through the dead-letter exchange `<ns>.dlx`, which no party may publish to) what a consumer queue
of the service rejected or gave up on, with the message as it was sent (its broker-validated `user_id`
too) and the broker's own `x-death` headers (reason, queue, routing keys, time). Two ways:
- refused by the service (it broke the contract): the service rejected it after recording why in its own
  database (reason codes, schema paths, the routing key, when), keyed by a digest of the message id and
  body (`dead_letter_key`). The listing asks each service for those records (query `ListDeadLetters`);
- given up on after the delivery limit (a failure that is not a refusal, e.g. a bug): `x-death` reason
  `delivery_limit`; the service recorded giving up on it at the last delivery (reason `delivery_limit`).
No header a sender could write (any `x-werkbrug-…`) is read. A parked message its service has no record of
did not come from the service's queues: no party can put one there (no party writes to the dlx or the
default exchange), only the operator, who may write everywhere. It is listed as not recorded, and never
replayed.

Replay publishes the original body again under the `user_id` the parked message carries (validated by the
broker when it was first published, kept by dead-lettering; the operator's user may impersonate), on the
routing key its envelope names, and only then takes it off the parking queue. It refuses (ReplayRefused,
and the message stays parked) a message its service has no record of, one without a `user_id`, one whose
`user_id` is not its envelope's
source, whose message id is not the envelope's id, whose routing key is not the one the broker
dead-lettered it from, or that its sender's own broker permissions would not let it publish. Replay is
idempotent: the receiving service's inbox has the message id, so a message handled after all, or
replayed twice, has no second effect.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aio_pika
from pydantic import ValidationError

from infra.identities import founding_grant
from infra.services import DEFINITIONS
from shared.client import CommandClient
from shared.config import Settings
from shared.contracts.commands import ListDeadLetters
from shared.contracts.envelope import Envelope
from shared.contracts.parties import Party
from shared.contracts.staff import StaffRegister
from shared.messaging.failover import Failover, connect_any
from shared.messaging.pipeline import dead_letter_key
from shared.messaging.topology import Topology

BROKER_HEADERS = ("x-death", "x-first-death-", "x-last-death-")  # set by the broker when it dead-letters


class ReplayRefused(Exception):
    """A parked message that may not be sent again; it stays parked. The text names no value of it."""


@dataclass
class DeadLetter:
    service: str
    message_id: str | None
    routing_key: str | None
    reason: str
    dead_lettered_at: str | None
    correlation_id: str | None
    size: int
    user_id: str | None
    recorded: bool  # the service recorded why it refused it, or that it gave up on it
    headers: dict[str, Any]
    body: bytes
    reasons: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {"service": self.service, "message_id": self.message_id, "routing_key": self.routing_key,
                "reason": self.reason, "reasons": self.reasons, "dead_lettered_at": self.dead_lettered_at,
                "correlation_id": self.correlation_id, "user_id": self.user_id, "size": self.size,
                "recorded": self.recorded}

    @property
    def death(self) -> dict[str, Any]:
        """The broker's latest dead-lettering of it (RabbitMQ puts it first in `x-death`)."""
        deaths = self.headers.get("x-death")
        return dict(deaths[0]) if isinstance(deaths, list) and deaths and isinstance(deaths[0], dict) else {}

    def broker_headers(self) -> dict[str, Any]:
        """Only the headers the broker writes when it dead-letters (never what a sender wrote)."""
        return {k: v for k, v in self.headers.items() if k.startswith(BROKER_HEADERS)}


def _describe(service: str, message: aio_pika.abc.AbstractIncomingMessage,
              records: dict[str, dict[str, Any]]) -> DeadLetter:
    headers = dict(message.headers or {})
    letter = DeadLetter(service, message.message_id, None, "?", None, message.correlation_id, len(message.body),
                        message.user_id, False, headers, message.body)
    death = letter.death
    letter.routing_key = next(iter(death.get("routing-keys") or []), None)
    letter.dead_lettered_at = str(death["time"]) if death.get("time") else None
    record = records.get(dead_letter_key(message.message_id, message.body))
    if record is not None:
        letter.recorded, letter.reasons = True, list(record["reasons"])
        letter.reason = ",".join(r["code"] for r in letter.reasons)
        letter.routing_key, letter.dead_lettered_at = record["routing_key"], record["at"]
    elif death:
        letter.reason = str(death.get("reason") or "?")
    else:
        letter.reason = "not_dead_lettered_by_the_broker"
    return letter


class ParkingQueues:
    """Looks at and replays dead letters. Messages it does not take stay parked, in their order."""

    def __init__(self, settings: Settings, actor: str | None = None, timeout: float = 10.0,
                 actors: Mapping[Party, StaffRegister] | None = None) -> None:
        """`actor`: who asks the services for their records (the command line's --as); `actors`: the staff
        registers to choose a member from when none is named (the demo, the tests, tools of the operator)."""
        self.settings = settings
        self.topology = Topology(settings.namespace, settings.delivery_limit)
        self.actor, self.timeout, self.actors = actor, timeout, actors

    async def list(self, service: str | None = None) -> list[DeadLetter]:
        return await self._scan(service, take=None)

    async def replay(self, message_id: str, service: str | None = None) -> DeadLetter | None:
        """Publish the parked message again and take it off the parking queue. None if it is not parked;
        ReplayRefused (and it stays parked) if it may not be sent again."""
        replayed = await self._scan(service, take=message_id)
        return replayed[0] if replayed else None

    async def _records(self, service: str, messages: list[aio_pika.abc.AbstractIncomingMessage]) -> dict:
        """What the service recorded about these parked messages (its reasons), by key. A service that does
        not answer leaves them unexplained here."""
        keys = sorted({dead_letter_key(m.message_id, m.body) for m in messages})
        if not keys:
            return {}
        try:
            async with CommandClient(self.settings, timeout=self.timeout, actors=self.actors) as client:
                reply = await client.send(service, ListDeadLetters(keys=keys, actor=self.actor))
        except TimeoutError:
            return {}
        return {r["key"]: r for r in reply.result or []} if reply.ok else {}

    async def _scan(self, service: str | None, take: str | None) -> list[DeadLetter]:
        found: list[DeadLetter] = []
        refusal: str | None = None
        connection = await connect_any(Failover(self.settings.broker_urls()), timeout=10)  # any node of a cluster
        async with connection:
            channel = await connection.channel()
            publisher = await connection.channel(publisher_confirms=True, on_return_raises=True)
            events = await publisher.get_exchange(self.topology.events.name)
            for name in [service] if service else list(DEFINITIONS):
                queue = await channel.get_queue(self.topology.parking_queue(name).name, ensure=True)
                held = []
                while (message := await queue.get(no_ack=False, fail=False)) is not None:
                    held.append(message)
                wanted = [m for m in held if take is None or m.message_id == take]
                records = await self._records(name, wanted)
                for message in held:
                    if take is not None and message.message_id != take:
                        continue
                    letter = _describe(name, message, records)
                    if take is None:
                        found.append(letter)
                        continue
                    refusal = replay_refusal(self.settings.namespace, letter)
                    if refusal is None:
                        envelope = Envelope.model_validate_json(letter.body)
                        await events.publish(_original(message), routing_key=envelope.routing_key, mandatory=True)
                        await message.ack()
                        held.remove(message)
                        found.append(letter)
                        break
                for message in held:
                    await message.nack(requeue=True)
                if found and take is not None:
                    break
        if take is not None and not found and refusal is not None:
            raise ReplayRefused(refusal)
        return found


def replay_refusal(namespace: str, letter: DeadLetter) -> str | None:
    """Why a parked message may not be sent again (None: it may). It is sent only as the broker-validated
    sender it carries, and only as that sender could send it itself."""
    if not letter.recorded:
        return (f"not_recorded: {letter.service} never refused nor gave up on it, so the broker did not "
                "dead-letter it from its queues; it is not replayed")
    if not letter.user_id:
        return "no_user_id: the broker never validated who sent it; it is not replayed"
    try:
        envelope = Envelope.model_validate_json(letter.body)
    except ValidationError:
        return "invalid_envelope: it is not a valid envelope; fix it at the sender and send it anew"
    if envelope.source.value != letter.user_id:
        return "sender_not_authenticated: its user_id is not its envelope's source; it is not replayed"
    if letter.message_id != str(envelope.id):
        return "message_id_mismatch: its message id is not its envelope's id"
    dead_lettered_from = letter.death.get("routing-keys") or []
    if envelope.routing_key not in dead_lettered_from:
        return "routing_mismatch: the broker did not dead-letter it from its envelope's routing key"
    try:
        party = Party(letter.user_id)
    except ValueError:
        return "source_not_permitted: only a founding party's messages are replayed"
    if not re.fullmatch(founding_grant(namespace, party).topic_write or "^$", envelope.routing_key):
        return "source_not_permitted: its sender may not publish on its routing key"
    return None


def _original(message: aio_pika.abc.AbstractIncomingMessage) -> aio_pika.Message:
    headers = {k: v for k, v in (message.headers or {}).items()
               if not k.startswith((*BROKER_HEADERS, "x-delivery-count"))}
    return aio_pika.Message(
        message.body, headers=headers, content_type=message.content_type, message_id=message.message_id,
        correlation_id=message.correlation_id, timestamp=message.timestamp, type=message.type,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        # Only the broker-validated sender it carries (the operator's user may impersonate: tag impersonator).
        user_id=message.user_id,
    )
