"""The benchmark's driver side: sizes, the run context, worker processes, and the closed-loop load.

The driver is both producer and sink: it publishes messages (persistent, publisher confirms, mandatory)
with at most `window` in flight, and consumes what comes out at the other end, so throughput and
latency are timed on one clock. Throughput is messages ÷ (last received - first published); latency is
per message, publish → receipt at the sink.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika

from bench.stats import latency_summary, rate
from shared.config import Settings
from shared.storage.embedded import embedded_mongodb

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Sizes:
    messages: int  # per throughput run (saturated: `window` in flight)
    latency_messages: int  # per unloaded-latency run (one in flight)
    window: int  # messages in flight in a throughput run
    warmup: int  # messages sent and received before timing starts
    repeats: int  # runs of each broker/hop configuration, interleaved
    storage_ops: int  # hop-equivalents in a storage-floor run
    lifecycles: int  # full lifecycles in the lifecycle stage
    lifecycle_concurrency: int
    fast_factor: int = 5  # stages without a database run this many times `messages`
    subjects: int = 10_000  # data subjects seeded into every holder's database (subject-requests stage)
    subject_templates: int = 8  # people played through the services whose documents are copied
    subject_access: int = 30  # access requests one at a time (p50 / p99)
    subject_erasures: int = 15  # erasure requests one at a time, each a different subject
    subject_parallel: int = 16  # access requests with `subject_concurrency` in flight (throughput)
    subject_concurrency: int = 4

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


FULL = Sizes(messages=200, latency_messages=40, window=32, warmup=20, repeats=5, storage_ops=200,
             lifecycles=12, lifecycle_concurrency=4)
QUICK = Sizes(messages=20, latency_messages=5, window=8, warmup=3, repeats=1, storage_ops=20,
              lifecycles=1, lifecycle_concurrency=1, fast_factor=1, subjects=100, subject_templates=4,
              subject_access=4, subject_erasures=2, subject_parallel=4, subject_concurrency=2)


@dataclass
class Context:
    """What every stage gets: settings, sizes, where to write, the storage to use, and a broker connection."""

    settings: Settings
    sizes: Sizes
    out: Path
    mongodb_url: str | None  # a real MongoDB (MONGODB_URL), or None: an embedded server per run
    connection: aio_pika.abc.AbstractRobustConnection
    log_dir: Path
    profile_dir: Path | None = None
    run_counter: int = 0
    notes: list[str] = field(default_factory=list)

    def namespace(self, what: str) -> str:
        """A fresh namespace (queues, exchanges, database names) for one run."""
        self.run_counter += 1
        return f"{self.settings.namespace}-{what[:6]}{self.run_counter}"

    @contextlib.asynccontextmanager
    async def vhost(self, ns: str) -> AsyncIterator[tuple[Settings, aio_pika.abc.AbstractRobustConnection]]:
        """A run's own broker vhost (one per namespace, as werkbrug runs) with the parties' users; the
        namespace's settings and an admin connection to it. The vhost is deleted afterwards."""
        from infra.identities import deprovision, provision

        settings = self.settings.model_copy(update={"namespace": ns})
        await asyncio.to_thread(provision, settings)
        connection = await aio_pika.connect_robust(settings.broker_url())
        try:
            yield settings, connection
        finally:
            await connection.close()
            await asyncio.to_thread(deprovision, settings)

    @contextlib.contextmanager
    def database(self, name: str) -> Iterator[str]:
        """A database server for one run: the real one, or a fresh embedded server (its collections start
        empty, so runs are comparable: the embedded engine slows down as collections grow)."""
        if self.mongodb_url:
            yield self.mongodb_url
            return
        with embedded_mongodb(log_path=str(self.log_dir / f"mongo-{name}.log")) as url:
            yield url

    @property
    def backend(self) -> str:
        return "mongodb (MONGODB_URL)" if self.mongodb_url else "embedded mongoeco (memory engine, one server per run)"


class Worker:
    """A `python -m bench.worker …` process: waits for READY, returns its STATS after SIGTERM."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path, profile: Path | None = None) -> None:
        self.args, self.env, self.log_path, self.profile = args, env, log_path, profile
        self.proc: asyncio.subprocess.Process | None = None
        self.stats: dict[str, Any] = {}
        self._ready = asyncio.Event()
        self._pump: asyncio.Task | None = None

    async def start(self, within: float = 60.0) -> None:
        prefix = [sys.executable]
        if self.profile is not None:
            # pyinstrument's text tree by default; BENCH_PROFILER=cprofile writes cProfile stats (.pstats)
            # instead, whose call counts show what runs per message (pyinstrument's samples do not).
            if os.environ.get("BENCH_PROFILER") == "cprofile":
                prefix += ["-m", "cProfile", "-o", f"{self.profile}.pstats"]
            else:
                prefix += ["-m", "pyinstrument", "-r", "text", "-o", str(self.profile), "--no-color"]
        self.proc = await asyncio.create_subprocess_exec(
            *prefix, "-m", "bench.worker", *self.args, cwd=ROOT, env={**os.environ, **self.env},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
        self._pump = asyncio.create_task(self._read())
        ready = asyncio.create_task(self._ready.wait())
        await asyncio.wait({ready, self._pump}, timeout=within, return_when=asyncio.FIRST_COMPLETED)
        if not self._ready.is_set():
            ready.cancel()
            await self.stop()
            raise RuntimeError(f"bench worker {self.args[0]} did not start; see {self.log_path}")

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        with open(self.log_path, "ab") as log:  # noqa: ASYNC230 (a local log file, line by line)
            async for line in self.proc.stdout:
                log.write(line)
                text = line.decode(errors="replace").strip()
                if text == "READY":
                    self._ready.set()
                elif text.startswith("STATS "):
                    self.stats = json.loads(text[6:])

    async def stop(self) -> dict[str, Any]:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 60)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        if self._pump is not None:
            await self._pump
        return self.stats


@dataclass
class LoadResult:
    sent: int
    received: int
    seconds: float
    latencies: list[float]
    refused: int = 0  # answers that were refusals (a retour `rejected`): the run measured the wrong path

    def summary(self) -> dict[str, Any]:
        return {"messages": self.received, "seconds": round(self.seconds, 3), "refused": self.refused,
                "per_second": round(rate(self.received, self.seconds), 1), "latency": latency_summary(self.latencies)}


async def closed_loop(
    connection: aio_pika.abc.AbstractRobustConnection,
    exchange: str,
    messages: list[tuple[str, str, bytes]],  # (message id, routing key, body)
    sink_queue: str,
    window: int,
    answer_to: Callable[[aio_pika.abc.AbstractIncomingMessage], tuple[str, bool]],
    within: float = 600.0,
    publisher: aio_pika.abc.AbstractRobustConnection | None = None,
    user_id: str | None = None,
) -> LoadResult:
    """Publish `messages` with at most `window` unanswered; time each until its answer reaches the sink.

    `answer_to` names the message an answer is about and whether it is a success. `publisher` (default:
    `connection`) is the connection to publish on, as the party `user_id` when the consumer checks the
    sender (werkbrug refuses a message whose AMQP user_id is not its source party)."""
    publish_channel = await (publisher or connection).channel(publisher_confirms=True, on_return_raises=True)
    sink_channel = await connection.channel()
    refused = 0
    sent_at: dict[str, float] = {}
    latencies: list[float] = []
    gate = asyncio.Semaphore(window)
    done = asyncio.Event()
    first = last = 0.0
    expected = len(messages)

    async def on_answer(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        nonlocal last, refused
        now = time.perf_counter()
        about, ok = answer_to(message)
        started = sent_at.pop(about, None)
        if started is None:
            return  # a late answer from the warm-up or a redelivery: not this run's
        refused += not ok
        latencies.append(now - started)
        last = now
        gate.release()
        if len(latencies) == expected:
            done.set()

    try:
        target = await publish_channel.get_exchange(exchange, ensure=False)
        queue = await sink_channel.get_queue(sink_queue)
        tag = await queue.consume(on_answer, no_ack=True)
        publishes: set[asyncio.Task] = set()
        for message_id, routing_key, body in messages:
            await gate.acquire()
            now = time.perf_counter()
            first = first or now
            sent_at[message_id] = now
            task = asyncio.create_task(target.publish(
                aio_pika.Message(body, message_id=message_id, correlation_id=str(uuid.uuid4()),
                                 # as a werkbrug sender's relay publishes it: in the sender's trace (W3C)
                                 headers={"traceparent": f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"},
                                 content_type="application/json", delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                                 user_id=user_id),
                routing_key=routing_key, mandatory=True))
            publishes.add(task)
            task.add_done_callback(publishes.discard)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), within)
        await asyncio.gather(*publishes)
        await queue.cancel(tag)
    finally:
        await publish_channel.close()
        await sink_channel.close()
    return LoadResult(expected, len(latencies), (last - first) if latencies else 0.0, latencies, refused)
