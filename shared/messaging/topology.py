"""Names and shapes of every exchange and queue, derived from the namespace.

- `<ns>.events`   durable topic exchange for all events (routing key party.subject.event.vN)
- `<ns>.commands` durable direct exchange, one binding per service (routing key = service name)
- `<ns>.dlx`      durable direct exchange for dead letters (routing key = service name)
- `<ns>.<service>.<binding>` one durable quorum queue per consumer, dead-lettering to the DLX after
  `delivery_limit` deliveries
- `<ns>.<service>.parking`   one quorum queue per service holding its dead letters
"""

from __future__ import annotations

from dataclasses import dataclass

from faststream.rabbit import ExchangeType, QueueType, RabbitExchange, RabbitQueue


@dataclass(frozen=True)
class Topology:
    namespace: str
    delivery_limit: int = 5

    @property
    def events(self) -> RabbitExchange:
        return RabbitExchange(f"{self.namespace}.events", type=ExchangeType.TOPIC, durable=True)

    @property
    def commands(self) -> RabbitExchange:
        return RabbitExchange(f"{self.namespace}.commands", type=ExchangeType.DIRECT, durable=True)

    @property
    def dlx(self) -> RabbitExchange:
        return RabbitExchange(f"{self.namespace}.dlx", type=ExchangeType.DIRECT, durable=True)

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

    def command_queue(self, service: str) -> RabbitQueue:
        return RabbitQueue(f"{self.namespace}.{service}.commands", queue_type=QueueType.QUORUM, durable=True,
                           arguments=self._dead_lettering(service), routing_key=service)

    def parking_queue(self, service: str) -> RabbitQueue:
        return RabbitQueue(f"{self.namespace}.{service}.parking", queue_type=QueueType.QUORUM, durable=True,
                           routing_key=service)
