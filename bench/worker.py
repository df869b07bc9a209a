"""The consumer side of the broker-floor and hop stages, each run as its own process (as a service runs).

    python -m bench.worker echo --queue Q --exchange X --key K        # bare aio-pika: consume, publish, ack
    python -m bench.worker hop --namespace NS --storage mongo|memory   # werkbrug's offer service, one hop

Both print `READY` when they consume, and on SIGTERM print `STATS {json}` (what they did, and the CPU time
the process used from READY to SIGTERM: on a shared machine CPU per message is steadier than a rate).

`echo` is the floor: what the broker costs a consumer that does what a hop does with the broker and
nothing else — consume with the same prefetch, publish a persistent message with publisher confirms
(mandatory), then ack.

`hop` is werkbrug's own offer service (`shared.runtime.ServiceRuntime`) handling
`werksaam.heliomare.referral.registered.v2`: the pipeline validates the envelope and the event, checks the inbox,
registers the case, and writes case + retour (outbox) + inbox + processing log in one transaction; the
outbox relay publishes the retour with confirms. With `--storage memory` the unit of work is the
in-memory fake of the unit tests (tests/unit/fakes.py) and the relay reads that fake's outbox: the same
pipeline and broker work with no database at all ("storage excluded").
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import gc
import json
import signal
import time
from typing import Any

import aio_pika

# Database commands of start-up and shut-down, not of handling a message.
SET_UP = {"ping", "buildInfo", "listCollections", "create", "createIndexes", "endSessions", "hello", "isMaster"}


def command_key(event) -> str:
    """A database command as counted: its name and the collection it works on (`find inbox`)."""
    target = event.command.get(event.command_name)
    return f"{event.command_name} {target}" if isinstance(target, str) else event.command_name


def _ready() -> None:
    print("READY", flush=True)


def _stats(stats: dict[str, Any]) -> None:
    print("STATS " + json.dumps(stats), flush=True)


async def _until_terminated() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def _time_garbage_collection() -> list[float]:
    """Seconds spent in the cyclic garbage collector from now on (a one-element list, kept up to date)."""
    spent, started = [0.0], [0.0]

    def on_collection(phase: str, info: dict) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            spent[0] += time.perf_counter() - started[0]

    gc.callbacks.append(on_collection)
    return spent


# -- the floor: bare aio-pika ------------------------------------------------------------------------


async def echo(args: argparse.Namespace) -> None:
    connection = await aio_pika.connect(args.amqp_url)
    channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
    await channel.set_qos(prefetch_count=args.prefetch)
    exchange = await channel.get_exchange(args.exchange)
    queue = await channel.get_queue(args.queue)
    handled = 0

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        nonlocal handled
        await exchange.publish(
            aio_pika.Message(message.body, message_id=message.message_id, correlation_id=message.correlation_id,
                             content_type="application/json", delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key=args.key, mandatory=True,
        )
        await message.ack()
        handled += 1

    await queue.consume(on_message)
    _ready()
    cpu = time.process_time()
    await _until_terminated()
    cpu = time.process_time() - cpu
    await channel.close()
    await connection.close()
    _stats({"handled": handled, "cpu_seconds": round(cpu, 3)})


# -- one werkbrug hop --------------------------------------------------------------------------------


class _MemoryRelay:
    """The outbox relay over the in-memory store, doing what `shared.messaging.relay.OutboxRelay` does with
    a database: woken by a commit that wrote outbox records (or the poll interval), it publishes the new
    envelopes through the runtime's publish, in their trace context, the confirms awaited together."""

    def __init__(self, store, publish, interval: float) -> None:
        self._store, self._publish, self._interval = store, publish, interval
        self._next = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self.published = 0

    def unit_of_work(self):
        """The store's unit of work, nudging the relay after a commit that wrote outbox records."""
        uow = self._store.unit_of_work()
        commit = uow.commit

        async def commit_and_nudge() -> None:
            before = len(self._store.outbox)
            await commit()
            if len(self._store.outbox) > before:
                self._wake.set()

        uow.commit = commit_and_nudge
        return uow

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _one(self, envelope) -> None:
        from opentelemetry import context, propagate

        # As the real relay: in the trace context stored at commit (here the lifecycle's), so that
        # FastStream's producer spans continue the trace.
        token = context.attach(propagate.extract(self._store.lifecycles.get(envelope.correlation_id) or {}))
        try:
            await self._publish(envelope)
        finally:
            context.detach(token)

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            batch = self._store.outbox[self._next:self._next + 100]
            if batch:
                await asyncio.gather(*(self._one(envelope) for envelope in batch))
                self._next += len(batch)
                self.published += len(batch)
            if len(batch) < 100:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self._interval)


async def hop(args: argparse.Namespace) -> None:
    from pymongo import monitoring

    from services.offer.bootstrap import definition
    from shared.config import Settings
    from shared.logs import configure_logging
    from shared.runtime import ServiceRuntime, tune_garbage_collector

    configure_logging("offer")  # as `python -m services.offer` does (run_service)

    commands: collections.Counter[str] = collections.Counter()

    class Count(monitoring.CommandListener):
        def started(self, event: monitoring.CommandStartedEvent) -> None:
            if event.command_name not in SET_UP:
                commands[command_key(event)] += 1

        def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
            pass

        def failed(self, event: monitoring.CommandFailedEvent) -> None:
            pass

    monitoring.register(Count())
    settings = Settings()  # from the environment the driver set
    runtime = ServiceRuntime(definition(settings), settings, mongodb_url=args.mongodb_url or None)
    outcomes: collections.Counter[str] = collections.Counter()
    handle = runtime.pipeline.handle_event

    async def counted(raw):
        outcome = await handle(raw)
        outcomes[outcome.status] += 1
        return outcome

    runtime.pipeline.handle_event = counted
    if args.storage == "memory":
        from shared.storage.memory import MemoryStore

        store = MemoryStore(runtime.definition.party, runtime.definition.repositories)
        relay = _MemoryRelay(store, runtime.publish_envelope, settings.relay_interval)
        runtime.pipeline.uow_factory = relay.unit_of_work
        runtime.relay = relay
        await runtime.broker.connect()
        await runtime.declare()
        await runtime.broker.start()
        runtime.relay.start()
        tune_garbage_collector()  # what the runtime does once started in its own process (run_service)
    else:
        runtime.owns_process = True
        await runtime.start()
    gc_seconds = _time_garbage_collection()
    _ready()
    cpu = time.process_time()
    await _until_terminated()
    cpu = time.process_time() - cpu
    published = runtime.relay.published
    if args.storage == "memory":
        await runtime.relay.stop()
        await runtime.broker.stop()
        runtime.tracer_provider.shutdown()
    else:
        await runtime.stop()
    _stats({"handled": sum(outcomes.values()), "outcomes": dict(outcomes), "published": published,
            "db_commands": dict(commands), "cpu_seconds": round(cpu, 3), "gc_seconds": round(gc_seconds[0], 3)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode", required=True)
    e = sub.add_parser("echo")
    e.add_argument("--amqp-url", required=True)
    e.add_argument("--queue", required=True)
    e.add_argument("--exchange", required=True)
    e.add_argument("--key", required=True)
    e.add_argument("--prefetch", type=int, required=True)
    h = sub.add_parser("hop")
    h.add_argument("--storage", choices=("mongo", "memory"), required=True)
    h.add_argument("--mongodb-url", default="")
    args = parser.parse_args()
    asyncio.run(echo(args) if args.mode == "echo" else hop(args))


if __name__ == "__main__":
    main()
