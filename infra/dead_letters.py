"""Dead letters: what the parking queues hold, and replaying a message after a fix.

A message reaches a service's parking queue `<ns>.<service>.parking` in two ways:
- refused by the pipeline (it broke the contract): headers `x-werkbrug-reason(s)`,
  `x-werkbrug-original-routing-key`, `x-werkbrug-dead-lettered-at`;
- given up on by the broker after the delivery limit (a failure that is not a refusal, e.g. a bug):
  RabbitMQ's `x-death` / `x-first-death-reason: delivery_limit` headers.

Replay publishes the original body again, with its original routing key and message id, and only then
takes it off the parking queue. It is idempotent: the receiving service's inbox has the message id, so a
message that was handled after all, or is replayed twice, has no second effect.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aio_pika

from infra.services import DEFINITIONS
from shared.config import Settings
from shared.messaging.topology import Topology


@dataclass
class DeadLetter:
    service: str
    message_id: str | None
    routing_key: str | None
    reason: str
    dead_lettered_at: str | None
    correlation_id: str | None
    size: int
    headers: dict[str, Any]
    body: bytes

    def summary(self) -> dict[str, Any]:
        return {"service": self.service, "message_id": self.message_id, "routing_key": self.routing_key,
                "reason": self.reason, "dead_lettered_at": self.dead_lettered_at,
                "correlation_id": self.correlation_id, "size": self.size}


def _describe(service: str, message: aio_pika.abc.AbstractIncomingMessage) -> DeadLetter:
    headers = dict(message.headers or {})
    death = (headers.get("x-death") or [{}])[0]
    routing_key = headers.get("x-werkbrug-original-routing-key") or next(iter(death.get("routing-keys", [])), None)
    reason = headers.get("x-werkbrug-reason") or headers.get("x-first-death-reason") or death.get("reason") or "?"
    at = headers.get("x-werkbrug-dead-lettered-at") or (str(death["time"]) if death.get("time") else None)
    return DeadLetter(service, message.message_id, routing_key, str(reason), at, message.correlation_id,
                      len(message.body), headers, message.body)


class ParkingQueues:
    """Looks at and replays dead letters. Messages it does not take stay parked, in their order."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topology = Topology(settings.namespace, settings.delivery_limit)

    async def list(self, service: str | None = None) -> list[DeadLetter]:
        return await self._scan(service, take=None)

    async def replay(self, message_id: str, service: str | None = None) -> DeadLetter | None:
        """Publish the parked message again and take it off the parking queue. None if it is not parked."""
        replayed = await self._scan(service, take=message_id)
        return replayed[0] if replayed else None

    async def _scan(self, service: str | None, take: str | None) -> list[DeadLetter]:
        found: list[DeadLetter] = []
        connection = await aio_pika.connect_robust(self.settings.broker_url(), timeout=10)
        async with connection:
            channel = await connection.channel()
            publisher = await connection.channel(publisher_confirms=True, on_return_raises=True)
            events = await publisher.get_exchange(self.topology.events.name)
            for name in [service] if service else list(DEFINITIONS):
                queue = await channel.get_queue(self.topology.parking_queue(name).name, ensure=True)
                held = []
                while (message := await queue.get(no_ack=False, fail=False)) is not None:
                    letter = _describe(name, message)
                    if take is not None and letter.message_id == take and letter.routing_key:
                        await events.publish(_original(message), routing_key=letter.routing_key, mandatory=True)
                        await message.ack()
                        found.append(letter)
                        continue
                    held.append(message)
                    if take is None:
                        found.append(letter)
                for message in held:
                    await message.nack(requeue=True)
        return found


def _original(message: aio_pika.abc.AbstractIncomingMessage) -> aio_pika.Message:
    headers = {k: v for k, v in (message.headers or {}).items()
               if not k.startswith(("x-werkbrug-", "x-death", "x-first-death", "x-last-death", "x-delivery-count"))}
    return aio_pika.Message(
        message.body, headers=headers, content_type=message.content_type, message_id=message.message_id,
        correlation_id=message.correlation_id, timestamp=message.timestamp, type=message.type,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        # The original sender's broker identity (the operator's user may impersonate: tag impersonator).
        user_id=str((message.headers or {}).get("x-werkbrug-original-user-id") or message.user_id or "") or None,
    )
