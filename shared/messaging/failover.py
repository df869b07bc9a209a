"""Moving to another broker node when the one in use goes away (a RabbitMQ cluster; WERKBRUG_AMQP_NODES).

`Failover` is the choice alone: the nodes in the order to try them (Settings.broker_urls), the one in use, and
the next one once that fails or goes away. One `Failover` is shared by every connection made for one purpose,
so a new connection after a failure starts where the last one left off and never goes back to a node that just
went away while another is there.

- A service's FastStream broker connects through `FailoverConnection`, aio-pika's robust connection that
  reconnects to the next node instead of the same one, and restores its channels, queues and consumers there.
  What was delivered and not acknowledged on the lost connection goes back to its queue (quorum queues: on the
  surviving members) and comes again; the inbox drops what was handled. A publish whose confirm did not come
  raises; the outbox record stays pending and the relay sends it again on the new connection.
- One-shot connections (the command client, tools) use `connect_any`: each node once, from the one in use.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import aio_pika
from aiormq import exceptions as amqp
from faststream.rabbit import RabbitBroker
from yarl import URL

log = logging.getLogger("werkbrug.failover")


class Failover:
    """The nodes of one broker in the order to try them, and the one in use: the same node while it serves,
    the next one (wrapping) once it fails or goes away."""

    def __init__(self, urls: Sequence[str]) -> None:
        if not urls:
            raise ValueError("a broker has at least one node")
        self.urls = tuple(urls)
        self._index = 0

    @property
    def current(self) -> str:
        return self.urls[self._index]

    def failed(self, url: str) -> str:
        """`url` could not be reached or went away. If it is the node in use, the next one is; if another
        connection moved on already, nothing changes. Returns the node to try now."""
        if url == self.current and len(self.urls) > 1:
            self._index = (self._index + 1) % len(self.urls)
            log.warning("broker node %s went away or cannot be reached; moving to %s", where(url), where(self.current))
        return self.current

    def round(self) -> list[str]:
        """Every node once, starting with the one in use."""
        return [*self.urls[self._index:], *self.urls[:self._index]]


def where(url: str) -> str:
    """host:port of a broker URL (never its credentials)."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or (5671 if parts.scheme == 'amqps' else 5672)}"


def answered_no(exc: BaseException) -> bool:
    """Did a node answer and refuse (login, virtual host)? Every node of a cluster would say the same (users and
    permissions are cluster-wide), so trying the next one is no use. Anything else (refused or broken
    connection, time-out, a node closing while it starts or stops) means this node is not there."""
    return isinstance(exc, amqp.AuthenticationError | amqp.ConnectionNotAllowed | amqp.InvalidFrameError)


async def connect_any(failover: Failover, **kwargs: Any) -> aio_pika.abc.AbstractConnection:
    """A plain connection to the first node, from the one in use, that takes it. A refusal by a node that
    answered is raised at once; when no node can be reached, the first node's error."""
    first: BaseException | None = None
    for url in failover.round():
        try:
            return await aio_pika.connect(url, **kwargs)
        except Exception as exc:
            if answered_no(exc):
                raise
            first = first or exc
            failover.failed(url)
    assert first is not None
    raise first


class FailoverConnection(aio_pika.RobustConnection):
    """aio-pika's robust connection over several nodes: a connection that closes, or an attempt that fails,
    moves it to the next node (`failover`, set by `failover_connection`); restoring the channels, queues and
    consumers is aio-pika's, on whichever node it reaches."""

    failover: Failover

    def __init__(self, url: Any, loop: Any = None, **kwargs: Any) -> None:
        self._node = self.failover.current
        super().__init__(url=self._node, loop=loop, **kwargs)

    async def _on_connection_close(self, closing: Any) -> None:
        # Called for a connection that was lost and for an attempt that failed alike (aio-pika's
        # UnderlayConnection.connect calls it with the attempt's error); not when we close it ourselves.
        if not self._close_called:
            self._node = self.failover.failed(self._node)
            self.url = URL(self._node)
        await super()._on_connection_close(closing)


def failover_connection(failover: Failover) -> type[FailoverConnection]:
    """A FailoverConnection class bound to `failover` (aio-pika's connect_robust takes a class)."""
    return type("FailoverConnection", (FailoverConnection,), {"failover": failover})


def fail_over(broker: RabbitBroker, urls: Sequence[str]) -> RabbitBroker:
    """Make a FastStream broker connect through a FailoverConnection over `urls` (Settings.broker_urls).
    FastStream hands its connection arguments to aio-pika's connect_robust, which takes the class to use."""
    kwargs = getattr(broker, "_connection_kwargs", None)
    if not isinstance(kwargs, dict) or "url" not in kwargs:  # a FastStream that connects otherwise: say so at once
        raise RuntimeError("this FastStream version does not pass connection arguments to aio-pika's "
                           "connect_robust: broker failover cannot be set up")
    kwargs["connection_class"] = failover_connection(Failover(urls))
    return broker
