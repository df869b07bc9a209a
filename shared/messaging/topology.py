"""Names and shapes of every exchange and queue, derived from the namespace.

- `<ns>.events`   durable topic exchange for all events (routing key `<sender>.<recipient>.<subject>.<event>.v<N>`,
  the recipient a party or `all`): topic permissions let a party bind only what is addressed to it or to all
- `<ns>.commands` durable topic exchange, one binding per service (routing key `<party>.<service>`, e.g.
  `werksaam.intake`): topic permissions let a party publish and bind only its own services' keys
- `<ns>.dlx`      durable topic exchange for dead letters (routing key = service name). Only the broker
  writes to it (dead-lettering what a consumer queue rejects or gives up on); every party's topic
  permission on it writes nothing and reads only its own services' names (to bind their parking queues)
- `<ns>.replies`  durable topic exchange for the answers to commands (routing key `<party>.<32 hex>`, the
  asking client's own exclusive queue `<ns>.reply.<party>.<32 hex>`): a party publishes and binds only keys of
  its own party, so its services answer only its own clients; nobody needs write on the default exchange
- exchanges are the operator's: `infra.declare` / `infra.identities` (werkbrug-admin) declare them; a service
  only checks they exist (a passive declare) and declares its own queues
- `<ns>.<service>.<binding>` one durable quorum queue per consumer, dead-lettering to the DLX after
  `delivery_limit` deliveries
- `<ns>.<service>.parking`   one quorum queue per service holding its dead letters
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

import aiormq
from faststream.rabbit import ExchangeType, QueueType, RabbitBroker, RabbitExchange, RabbitQueue

from shared.contracts.envelope import BROADCAST, EventData, lookup
from shared.contracts.events import Retour

if TYPE_CHECKING:
    from shared.messaging.definition import ServiceDefinition


def reads(party: str, model: type[EventData], sender: str, recipient: str) -> bool:
    """Whether `party`'s services may read `model` from `sender` to `recipient`: what is addressed to the party or
    to all; and its own services' messages to another party (billing reads the trajectory's messages to the
    commissioner), unless the party could be their recipient itself (then only those addressed to it)."""
    if model.between_parties and sender == party:
        return False  # read from the other parties only
    if recipient in {party, BROADCAST}:
        return True
    return sender == party and party not in model.recipients_from(sender)


def service_bindings(definition: ServiceDefinition) -> list[tuple[str, str]]:
    """(binding key, description) of every event consumer of a service: one per event type, sending party and
    recipient it reads (`reads`), and one per event type it emits, for the retours addressed to its party that
    answer it."""
    party = definition.party.value
    bindings: list[tuple[str, str]] = []
    for model in definition.event_handlers:
        spec = lookup(model.event_type, model.version)
        assert spec is not None, model
        summary = (model.__doc__ or "").strip().splitlines()[0] if model.__doc__ else ""
        keys = [key for key in spec.routing_keys() if reads(party, model, *key.split(".")[:2])]
        bindings += [(key, f"{model.event_type} v{model.version}. {summary}".strip()) for key in keys]
    for model in definition.emits:
        if model.internal:
            continue  # never answered: it does not leave the party
        about = f"retours answering our {model.event_type} v{model.version}"
        if model.between_parties:  # only the other parties read it, so only they answer it
            others = sorted(p for p in model.senders() if p != definition.party)
            bindings += [(Retour.routing_key_from(p, party, model), about) for p in others]
        else:
            bindings.append((Retour.binding_for(model, party), about))
    return bindings


def service_publications(definition: ServiceDefinition) -> list[str]:
    """Every routing key a service publishes on: its own events to each party it may address them to, and its
    retours to the other parties whose messages it consumes."""
    party = definition.party.value
    keys = [f"{party}.{to}.{m.event_type}.v{m.version}"
            for m in definition.emits for to in sorted(m.recipients_from(party))]
    return keys + [Retour.routing_key_from(party, sender, m) for m in definition.event_handlers
                   for sender in sorted(m.senders()) if sender != party]


REPLY_KEY = re.compile(r"^(?P<party>[a-z][a-z0-9-]*)\.[0-9a-f]{32}$")


def reply_key(party: str) -> str:
    """A new answer key for a client of `party`: `<party>.<32 hex>`."""
    return f"{party}.{uuid.uuid4().hex}"


def command_key(party: str, service: str) -> str:
    """The routing key of a service's commands on the commands exchange: `<party>.<service>`."""
    return f"{party}.{service}"


class ExchangesMissing(RuntimeError):
    """The namespace's exchanges are not on the broker: the operator has not declared them."""


@dataclass(frozen=True)
class Topology:
    namespace: str
    delivery_limit: int = 5

    # The exchanges as services see them: declare=False is a passive declare (does it exist?), which needs no
    # configure permission; the parties have none on the exchanges, so none can delete or redeclare them.

    @property
    def events(self) -> RabbitExchange:
        return RabbitExchange(f"{self.namespace}.events", type=ExchangeType.TOPIC, durable=True, declare=False)

    @property
    def commands(self) -> RabbitExchange:
        return RabbitExchange(f"{self.namespace}.commands", type=ExchangeType.TOPIC, durable=True, declare=False)

    @property
    def dlx(self) -> RabbitExchange:
        return RabbitExchange(f"{self.namespace}.dlx", type=ExchangeType.TOPIC, durable=True, declare=False)

    @property
    def replies(self) -> RabbitExchange:
        """Answers to commands, under the asking client's key `<party>.<32 hex>` (reply_key). Not RabbitMQ's
        direct reply-to: that needs write on the default exchange, which reaches every queue by name."""
        return RabbitExchange(f"{self.namespace}.replies", type=ExchangeType.TOPIC, durable=True, declare=False)

    def reply_queue(self, key: str) -> str:
        """The asking client's own queue for its answers (exclusive: gone with its connection)."""
        return f"{self.namespace}.reply.{key}"

    def exchanges(self) -> tuple[RabbitExchange, ...]:
        """The namespace's exchanges, as the operator declares them."""
        return self.events, self.commands, self.dlx, self.replies

    def _dead_lettering(self, service: str) -> dict:
        return {
            "x-dead-letter-exchange": self.dlx.name,
            "x-dead-letter-routing-key": service,
            "x-delivery-limit": self.delivery_limit,
        }

    def consumer_queue(self, service: str, binding_key: str) -> RabbitQueue:
        name = f"{self.namespace}.{service}.{binding_key.replace('*', 'any').replace('#', 'all')}"
        return RabbitQueue(name, queue_type=QueueType.QUORUM, durable=True,
                           arguments=self._dead_lettering(service), routing_key=binding_key)

    def command_queue(self, service: str, party: str) -> RabbitQueue:
        return RabbitQueue(f"{self.namespace}.{service}.commands", queue_type=QueueType.QUORUM, durable=True,
                           arguments=self._dead_lettering(service), routing_key=command_key(party, service))

    def parking_queue(self, service: str) -> RabbitQueue:
        return RabbitQueue(f"{self.namespace}.{service}.parking", queue_type=QueueType.QUORUM, durable=True,
                           routing_key=service)

    def queue_names(self, service: str, binding_keys: list[str]) -> list[str]:
        return [self.consumer_queue(service, key).name for key in binding_keys] + [
            f"{self.namespace}.{service}.commands", self.parking_queue(service).name]

    async def declare(self, broker: RabbitBroker, service: str, party: str, binding_keys: list[str]) -> None:
        """Check the exchanges exist (ExchangesMissing if not) and declare every queue of one service with
        its bindings. Idempotent."""
        for exchange in self.exchanges():
            try:
                await broker.declare_exchange(exchange)
            except aiormq.exceptions.ChannelNotFoundEntity:
                raise ExchangesMissing(
                    f"exchange {exchange.name} does not exist on the broker: the operator declares the exchanges "
                    "of a namespace; run `make broker` (or `python -m infra.declare`) first") from None
        for key in binding_keys:
            queue = await broker.declare_queue(self.consumer_queue(service, key))
            await queue.bind(exchange=self.events.name, routing_key=key)
        commands = await broker.declare_queue(self.command_queue(service, party))
        await commands.bind(exchange=self.commands.name, routing_key=command_key(party, service))
        parking = await broker.declare_queue(self.parking_queue(service))
        await parking.bind(exchange=self.dlx.name, routing_key=service)
