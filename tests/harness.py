"""Running werkbrug's services for integration tests: in-process (fast, traceable) or as processes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aio_pika

from infra.services import DEFINITIONS
from shared.config import Settings
from shared.runtime import ServiceRuntime

ROOT = Path(__file__).resolve().parent.parent


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


def all_queue_names(settings: Settings) -> list[str]:
    names: list[str] = []
    for make in DEFINITIONS.values():
        names += ServiceRuntime(make(settings), settings).queue_names()
    return names


class ServiceProcess:
    """A service as its own OS process (`python -m services.<name>`), for kill-and-restart tests."""

    def __init__(self, name: str, settings: Settings, mongodb_url: str, log_dir: Path) -> None:
        self.name, self.settings, self.log_path = name, settings, log_dir / f"{name}.log"
        self.mongodb_url = mongodb_url
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        env = {**os.environ, "WERKBRUG_NAMESPACE": self.settings.namespace,
               "MONGODB_URL": self.mongodb_url, "AMQP_URL": self.settings.amqp_url,
               "WERKBRUG_RELAY_INTERVAL": str(self.settings.relay_interval), "PYTHONUNBUFFERED": "1"}
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", f"services.{self.name}"], cwd=ROOT, env=env,
                                     stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def terminate(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


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
