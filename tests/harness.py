"""Running werkbrug's services for integration tests: in-process (fast, traceable) or as processes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import aio_pika

from infra.services import DEFINITIONS
from shared.config import Settings
from shared.runtime import ServiceRuntime


@dataclass
class InProcess:
    runtimes: dict[str, ServiceRuntime]

    def __getitem__(self, name: str) -> ServiceRuntime:
        return self.runtimes[name]

    async def stop(self) -> None:
        for runtime in self.runtimes.values():
            await runtime.stop()


async def start_in_process(settings: Settings, mongodb_urls: dict[str, str], span_exporters=()) -> InProcess:
    runtimes = {
        name: ServiceRuntime(make(settings), settings, mongodb_url=mongodb_urls[name], span_exporters=span_exporters)
        for name, make in DEFINITIONS.items()
    }
    for runtime in runtimes.values():
        await runtime.start()
    return InProcess(runtimes)


async def wait_for(predicate: Callable, within: float = 20.0, interval: float = 0.1, what: str = "condition"):
    """Poll an async predicate until it returns something truthy."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        value = await predicate()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what} (last: {value!r})")
        await asyncio.sleep(interval)


async def queue_depth(connection: aio_pika.abc.AbstractRobustConnection, name: str) -> int:
    channel = await connection.channel()
    try:
        queue = await channel.declare_queue(name, passive=True)
        return queue.declaration_result.message_count or 0
    finally:
        await channel.close()
