"""Declare werkbrug's exchanges and queues on the broker (idempotent): `python -m infra.declare`.

Services declare their own on start-up too; declaring up front means no event published before a
service first starts is unroutable.
"""

from __future__ import annotations

import asyncio

from faststream.rabbit import RabbitBroker

from infra.services import DEFINITIONS
from shared.config import get_settings
from shared.messaging.topology import Topology, service_bindings


async def declare_all() -> None:
    settings = get_settings()
    topology = Topology(settings.namespace, settings.delivery_limit)
    broker = RabbitBroker(settings.amqp_url, logger=None)
    await broker.connect()
    try:
        for name, make in DEFINITIONS.items():
            definition = make(settings)
            keys = [key for key, _ in service_bindings(definition)]
            await topology.declare(broker, name, keys)
            print(f"declared {name}: {len(keys)} consumer queues, commands, parking")
    finally:
        await broker.stop()


if __name__ == "__main__":
    asyncio.run(declare_all())
