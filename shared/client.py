"""A client for the people's side: sends commands to a service and waits for its answer.

Used by the `werkbrug` CLI, the demo and the tests. A command goes to the commands exchange under its
service's key `<party>.<service>` (request/reply: the answer comes on the replies exchange under this client's
own key `<party>.<32 hex>`, to its own exclusive queue; see topology), published as the party that
owns the service: one connection per party it sends to, as that party's broker user, and every command
carries that user as its AMQP `user_id` (the broker checks it against the connection; the service runs a
command only from its own party).

- `CommandClient(settings)` as the operator (AMQP_URL's user is not a party, e.g. werkbrug-admin on a
  developer machine): connects as each party it sends to, with the party's password from
  WERKBRUG_AMQP_PASSWORDS or the development one.
- `CommandClient(settings, party=...)`, or AMQP_URL naming a party's own user: what a party's own tooling
  has in production, ONE party. Sending to another party's service is refused by the broker (topic
  permissions): `CommandRefused`, at once, not a time-out.
- `actors`: staff registers per party; a command sent without an actor gets the first member in force of the
  sending party's register whose role may give it (tests, the demo, the benchmarks; never the CLI, whose
  user names themselves with --as). The service checks the actor against its own party's register again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import unquote, urlsplit

import aio_pika
import aiormq

from shared.config import Settings, get_settings
from shared.contracts.commands import Command, CommandResult
from shared.contracts.parties import SERVICE_PARTY, Party
from shared.contracts.staff import StaffRegister
from shared.messaging.failover import Failover, connect_any
from shared.messaging.topology import Topology, command_key, reply_key


async def answers_to(channel: aio_pika.abc.AbstractChannel, topology: Topology, party: str, on_answer) -> str:
    """Open this connection's own answer queue (exclusive: it goes with the connection), bound to the replies
    exchange under a new key of `party`, and consume it with `on_answer`. Returns the key to give as reply_to."""
    key = reply_key(party)
    queue = await channel.declare_queue(topology.reply_queue(key), exclusive=True, auto_delete=True)
    await queue.bind(topology.replies.name, routing_key=key)
    await queue.consume(on_answer, no_ack=True)
    return key


def _lost(connection: aio_pika.abc.AbstractConnection) -> bool:
    """Closed by us, or by the broker (a node that stopped, a broken socket): aio-pika's plain connection says
    `is_closed` only after our own close(); one the broker closed is no longer `connected`."""
    return connection.is_closed or not connection.connected.is_set()


class CommandRefused(RuntimeError):
    """The broker refused a command before any service saw it (not this party's service, or no such one)."""


class _Line:
    """One party's connection: publishes its commands under its user_id, takes the answers on its own queue."""

    def __init__(self, urls: list[str], party: str, topology: Topology, timeout: float) -> None:
        self.nodes, self.party, self.topology, self.timeout = Failover(urls), party, topology, timeout
        self.exchange_name = topology.commands.name
        self.reply_key = ""
        self.node = self.nodes.current
        self.connection: aio_pika.abc.AbstractConnection | None = None
        self.channel: aio_pika.abc.AbstractChannel | None = None
        self.pending: dict[str, asyncio.Future] = {}
        self._opening = asyncio.Lock()

    async def _ready(self) -> aio_pika.abc.AbstractChannel:
        async with self._opening:
            if self.connection is None or _lost(self.connection):
                if self.connection is not None:  # its node went away: start with the next one
                    self.nodes.failed(self.node)
                    with contextlib.suppress(Exception):
                        await self.connection.close()
                    self.channel = None
                self.connection = await connect_any(self.nodes, timeout=self.timeout)
                self.node = self.nodes.current
            if self.channel is None or self.channel.is_closed:
                # A refused publish closes the channel (and its reply consumer) for every request on it.
                for future in self.pending.values():
                    if not future.done():
                        future.set_exception(CommandRefused("the broker closed the channel"))
                self.pending = {}
                self.channel = await self.connection.channel(publisher_confirms=True, on_return_raises=True)
                self.channel.close_callbacks.add(self._closed)
                self.reply_key = await answers_to(self.channel, self.topology, self.party, self._answered)
            return self.channel

    def _closed(self, _channel: object, reason: object = None) -> None:
        """The channel went (a refused publish, the broker away): nobody answers on it any more, so every
        request still waiting on it ends now instead of at its time-out. A connection that broke is no
        refusal: whether the command ran is not known (sent again with its id, it is not done twice)."""
        for future in self.pending.values():
            if not future.done():
                future.set_exception(
                    ConnectionError(f"the connection of {self.party}'s commands to the broker was lost")
                    if isinstance(reason, ConnectionError) else
                    CommandRefused(f"the broker closed {self.party}'s command channel"))

    async def _answered(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        future = self.pending.pop(message.correlation_id or "", None)
        if future is not None and not future.done():
            future.set_result(message.body)

    async def request(self, service: str, body: bytes, message_id: str | None) -> bytes:
        channel = await self._ready()
        correlation = uuid.uuid4().hex
        answered = asyncio.get_running_loop().create_future()
        self.pending[correlation] = answered
        key = command_key(self.party, service)
        message = aio_pika.Message(
            body, content_type="application/json", message_id=message_id, correlation_id=correlation,
            reply_to=self.reply_key, user_id=self.party, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
        try:
            exchange = await channel.get_exchange(self.exchange_name, ensure=False)
            await exchange.publish(message, key, mandatory=True, timeout=self.timeout)
            return await asyncio.wait_for(answered, self.timeout)
        except aiormq.exceptions.ChannelAccessRefused:
            raise CommandRefused(
                f"the broker refused {self.party} sending a command to {service} (ACCESS_REFUSED): a party "
                "sends commands only to its own services") from None
        except aio_pika.exceptions.DeliveryError:
            raise CommandRefused(f"no service {service} of {self.party} takes commands (unroutable)") from None
        finally:
            self.pending.pop(correlation, None)
            if answered.done() and not answered.cancelled():
                answered.exception()  # retrieved: a refusal raised above may have closed the channel too

    async def close(self) -> None:
        if self.connection is not None and not self.connection.is_closed:
            await self.connection.close()


class CommandClient:
    def __init__(
        self,
        settings: Settings | None = None,
        timeout: float = 30.0,
        *,
        party: Party | str | None = None,
        owners: Mapping[str, Party] = SERVICE_PARTY,
        actors: Mapping[Party, StaffRegister] | None = None,
    ) -> None:
        self.settings = settings or get_settings()
        self.topology = Topology(self.settings.namespace, self.settings.delivery_limit)
        self.timeout = timeout
        self.owners = dict(owners)
        self.actors = actors
        own_user = unquote(urlsplit(self.settings.amqp_url).username or "")
        if party is None and own_user in {p.value for p in Party}:
            party = own_user  # AMQP_URL is a party's own user: that party's tooling, nothing else
        self.party = Party(party) if party is not None else None
        self._lines: dict[str, _Line] = {}

    async def __aenter__(self) -> CommandClient:
        return self  # connections open lazily, one per party sent to

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        lines, self._lines = list(self._lines.values()), {}
        for line in lines:
            await line.close()

    def reachable(self, services) -> list[str]:
        """Of `services`, those this client may send to: all, or its one party's own."""
        return [s for s in services if self.party is None or self.owners.get(s) == self.party]

    def sender_for(self, service: str) -> str:
        """The party a command to `service` is sent as: the one client's party, else the service's owner."""
        if self.party is not None:
            return self.party.value
        owner = self.owners.get(service)
        if owner is None:
            raise CommandRefused(f"{service} is not a werkbrug service")
        return owner.value

    def _line(self, party: str) -> _Line:
        if party not in self._lines:
            self._lines[party] = _Line(self.settings.broker_urls(party), party, self.topology, self.timeout)
        return self._lines[party]

    async def send(self, service: str, command: Command) -> CommandResult:
        if command.actor is None and self.actors is not None:
            owner = self.owners.get(service) if self.party is None else self.party
            register = self.actors.get(owner) if owner is not None else None
            member = register.first_with(type(command).roles, datetime.now(UTC).date()) if register else None
            if member is not None:
                command = command.model_copy(update={"actor": member.staff_id})
        return await self.send_raw(service, command.model_dump_json().encode(), message_id=str(command.command_id))

    async def send_raw(self, service: str, body: bytes, message_id: str | None = None) -> CommandResult:
        reply = await self._line(self.sender_for(service)).request(service, body, message_id)
        return CommandResult.model_validate(json.loads(reply))
