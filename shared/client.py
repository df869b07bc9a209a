"""A client for the people's side: sends commands to a service and waits for its answer.

Used by the demo and the tests now, and by the `werkbrug` CLI later. Commands go to the commands
exchange with the service name as routing key (request/reply over RabbitMQ's direct reply-to).
"""

from __future__ import annotations

import json

from faststream.rabbit import RabbitBroker

from shared.config import Settings, get_settings
from shared.contracts.commands import Command, CommandResult
from shared.messaging.topology import Topology


class CommandClient:
    def __init__(self, settings: Settings | None = None, timeout: float = 30.0) -> None:
        self.settings = settings or get_settings()
        self.topology = Topology(self.settings.namespace, self.settings.delivery_limit)
        self.broker = RabbitBroker(self.settings.broker_url(), app_id="werkbrug-client", logger=None)
        self.timeout = timeout

    async def __aenter__(self) -> CommandClient:
        await self.broker.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.broker.stop()

    async def send(self, service: str, command: Command) -> CommandResult:
        return await self.send_raw(service, command.model_dump_json().encode(), message_id=str(command.command_id))

    async def send_raw(self, service: str, body: bytes, message_id: str | None = None) -> CommandResult:
        reply = await self.broker.request(
            body, exchange=self.topology.commands, routing_key=service, timeout=self.timeout,
            content_type="application/json", message_id=message_id, persist=True,
        )
        return CommandResult.model_validate(json.loads(reply.body))
