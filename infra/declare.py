"""Declare werkbrug's exchanges and queues on the broker (idempotent): `python -m infra.declare`.

First the namespace's vhost, its exchanges and each party's broker user with its permissions
(infra.identities, through rabbitmqctl). The exchanges are the operator's: an exchange of the wrong type (the
commands exchange was direct before it became a topic exchange) is deleted and declared again. Services
only check the exchanges exist and declare their own queues on start-up too; declaring up front means no
event published before a service first starts is unroutable.
"""

from __future__ import annotations

import asyncio

import aio_pika
import aiormq
from faststream.rabbit import RabbitBroker

from infra.identities import deprovision, provision
from infra.services import DEFINITIONS
from infra.staff import ensure_development_registers
from shared.config import Settings, get_settings
from shared.messaging.topology import Topology, service_bindings


async def declare_exchanges(settings: Settings) -> list[str]:
    """Declare the namespace's exchanges as the operator (werkbrug-admin); one that exists with another
    type is deleted and declared again (its bindings go with it: the services' queues are bound again by
    declare_all, or by each service on start-up). Returns the names of the exchanges replaced.

    Only the commands exchange has changed type so far; commands are request/reply, so nothing durable is
    lost by replacing it (a command in flight is answered by no one and its sender times out)."""
    topology = Topology(settings.namespace, settings.delivery_limit)
    replaced: list[str] = []
    connection = await aio_pika.connect(settings.broker_url(), timeout=10)
    async with connection:
        for exchange in topology.exchanges():
            kind = aio_pika.ExchangeType(exchange.type.value)
            channel = await connection.channel()
            try:
                await channel.declare_exchange(exchange.name, kind, durable=True)
            except aiormq.exceptions.ChannelPreconditionFailed:  # exists with another type (or arguments)
                channel = await connection.channel()
                await channel.exchange_delete(exchange.name)
                await channel.declare_exchange(exchange.name, kind, durable=True)
                replaced.append(exchange.name)
            if not channel.is_closed:
                await channel.close()
    return replaced


async def declare_all(settings: Settings | None = None) -> None:
    settings = settings or get_settings()
    topology = Topology(settings.namespace, settings.delivery_limit)
    provision(settings)  # the vhost, its exchanges, the parties' users and their permissions first
    for path in ensure_development_registers(settings):
        print(f"{settings.namespace}: wrote the development staff register {path} (each party keeps its own: "
              "`werkbrug staff`)")
    for name in await declare_exchanges(settings):
        print(f"{settings.namespace}: replaced exchange {name}: it had another type (restart running services)")
    broker = RabbitBroker(settings.broker_url(), logger=None)
    await broker.connect()
    try:
        for name, make in DEFINITIONS.items():
            definition = make(settings)
            keys = [key for key, _ in service_bindings(definition)]
            await topology.declare(broker, name, definition.party.value, keys)
            print(f"{settings.namespace}: declared {name}: {len(keys)} consumer queues, commands, parking")
    finally:
        await broker.stop()


async def delete_all(settings: Settings) -> None:
    """Remove the settings' namespace from the broker: its vhost, and with it every exchange, queue and
    permission in it, and its partners' broker users (the demo cleans up so; the tests' teardown does the same)."""
    deprovision(settings)


if __name__ == "__main__":
    asyncio.run(declare_all())
