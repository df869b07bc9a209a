"""Declare werkbrug's exchanges and queues on the broker (idempotent): `python -m infra.declare`.

First the namespace's vhost and each party's broker user with its permissions (infra.identities, through
rabbitmqctl). Services declare their own exchanges and queues on start-up too; declaring up front means no
event published before a service first starts is unroutable.
"""

from __future__ import annotations

import asyncio

from faststream.rabbit import RabbitBroker

from infra.identities import deprovision, provision
from infra.services import DEFINITIONS
from shared.config import Settings, get_settings
from shared.messaging.topology import Topology, service_bindings


async def declare_all(settings: Settings | None = None) -> None:
    settings = settings or get_settings()
    topology = Topology(settings.namespace, settings.delivery_limit)
    provision(settings)  # the vhost, the parties' users and their permissions first
    broker = RabbitBroker(settings.broker_url(), logger=None)
    await broker.connect()
    try:
        for name, make in DEFINITIONS.items():
            definition = make(settings)
            keys = [key for key, _ in service_bindings(definition)]
            await topology.declare(broker, name, keys)
            print(f"{settings.namespace}: declared {name}: {len(keys)} consumer queues, commands, parking")
    finally:
        await broker.stop()


async def delete_all(settings: Settings) -> None:
    """Remove the settings' namespace from the broker: its vhost, and with it every exchange, queue and
    permission in it (the demo cleans up so; the tests' teardown does the same)."""
    deprovision(settings)


if __name__ == "__main__":
    asyncio.run(declare_all())
