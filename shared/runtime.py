"""Runs a `ServiceDefinition` as a FastStream application on RabbitMQ and MongoDB.

This is where the adapters meet: the broker (FastStream over aio-pika, with its
RabbitTelemetryMiddleware), the database (PyMongo async), the outbox relay, the dead-letter sink,
the ASGI health route and the AsyncAPI document. Services contain no broker or database code.

Broker settings that matter (FastStream's defaults are not safe for this):
- publishes are persistent, mandatory, with publisher confirms, and `on_return_raises`, so an
  unroutable message is an error and not a silent loss; `message_id` is always the event id;
- prefetch is bounded (`WERKBRUG_PREFETCH`);
- every consumer acks manually, after its transaction committed.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any

from faststream import AckPolicy
from faststream.asgi import AsgiFastStream, AsyncAPIRoute, make_ping_asgi
from faststream.opentelemetry import TelemetryMiddleware
from faststream.rabbit import Channel, RabbitBroker, RabbitMessage
from faststream.rabbit.opentelemetry.provider import RabbitTelemetrySettingsProvider
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.semconv.trace import SpanAttributes

from shared.asyncapi import Contract
from shared.config import Settings, get_settings
from shared.contracts.commands import CommandResult
from shared.contracts.envelope import Envelope, EventData, envelope_model, lookup
from shared.contracts.events import Retour
from shared.contracts.parties import Party
from shared.contracts.reasons import Reason, ReasonCode
from shared.logs import configure_logging, hold_payload_loggers, own_id
from shared.messaging.definition import ServiceDefinition
from shared.messaging.failover import Failover, connect_any, fail_over
from shared.messaging.handlers import Job
from shared.messaging.pipeline import DeadLetterSink, Pipeline, RawMessage
from shared.messaging.relay import OutboxRelay
from shared.messaging.topology import REPLY_KEY, ExchangesMissing, Topology, service_bindings
from shared.privacy.crypto import FieldCipher
from shared.privacy.pseudonym import Pseudonymiser, mentions
from shared.privacy.retention import RetentionJob
from shared.staff import StaffFile, register_path
from shared.storage.mongo import MongoStorage, connect, is_outage
from shared.telemetry import TRACER_NAME, make_tracer_provider

log = logging.getLogger("werkbrug.runtime")
__version__ = "0.1.0"
OUTAGE_RETRIES = 40  # with the backoff capped at 15 s: about 9 minutes of database outage per message


def raw_from(msg: RabbitMessage) -> RawMessage:
    pika = msg.raw_message
    return RawMessage(
        body=msg.body,
        headers=dict(pika.headers or {}),
        routing_key=pika.routing_key or "",
        message_id=pika.message_id,
        correlation_id=pika.correlation_id,
        user_id=pika.user_id,
    )


async def _the_message(msg: RabbitMessage) -> RabbitMessage:
    """Decoder that hands the handler the message itself: the pipeline validates the body, FastStream must
    not. With FastDepends off (`apply_types=False`) the handler is called with what the decoder returns."""
    return msg


def _model_bound_by(key: str) -> type[EventData]:
    """The event type a binding key delivers (`<sender>.<recipient>.<type>.v<n>`; `*.<party>.retour.<type>.v2`:
    retours)."""
    event_type, version = key.split(".", 2)[2].rsplit(".v", 1)
    if event_type.startswith("retour."):
        return Retour
    spec = lookup(event_type, int(version))
    assert spec is not None, key
    return spec.model


def _documented(consumer: Callable[[RabbitMessage], Awaitable[Any]], model: Any) -> Callable:
    """Name the message a consumer takes, for the AsyncAPI document only: with FastDepends off nothing
    is validated from this annotation; the pipeline validates the body against the contract itself."""
    consumer.__annotations__ = {"msg": model, "return": None}
    return consumer


class _AttributesWithoutEcho(RabbitTelemetrySettingsProvider):
    """FastStream's consumer span attributes, with the message's own ids shown only when they are ids: a
    sender's message_id or correlation_id could be any text (a person's name) and is never echoed."""

    def get_consume_attrs_from_message(self, msg) -> dict[str, Any]:
        attrs = super().get_consume_attrs_from_message(msg)
        for key in (SpanAttributes.MESSAGING_MESSAGE_ID, SpanAttributes.MESSAGING_MESSAGE_CONVERSATION_ID):
            if attrs.get(key) is not None:
                attrs[key] = own_id(attrs[key])
        return attrs


class _TelemetryWithoutEcho(TelemetryMiddleware):
    def __init__(self, *, tracer_provider) -> None:
        super().__init__(settings_provider_factory=lambda _: _AttributesWithoutEcho(),
                         tracer_provider=tracer_provider)


class _ParkingQueue(DeadLetterSink):
    """The service's parking queue, which only the broker fills (dead-lettering what the service rejects or
    gives up on). The service reads it only to destroy what it holds about an erased subject."""

    def __init__(self, topology: Topology, service: str, party: Party, settings: Settings) -> None:
        self._topology, self._service = topology, service
        # Its own party's user may read its parking queue; any node of the cluster will do.
        self._nodes = Failover(settings.broker_urls(party.value))
        self._pseudonymise = Pseudonymiser(settings.pseudonym_key.get_secret_value())

    async def destroy_about(self, subject: str) -> int:
        """Take every dead letter about the subject out of this service's parking queue (erasure). The
        others are left unacknowledged and go back when the channel closes."""
        destroyed = 0
        connection = await connect_any(self._nodes, timeout=10)
        async with connection:
            channel = await connection.channel()
            queue = await channel.get_queue(self._topology.parking_queue(self._service).name, ensure=False)
            while (message := await queue.get(no_ack=False, fail=False, timeout=10)) is not None:
                if mentions(message.body, subject, self._pseudonymise):
                    await message.ack()
                    destroyed += 1
        if destroyed:
            log.info("%s destroyed %d dead letters about an erased subject", self._service, destroyed)
        return destroyed



class ServiceRuntime:
    def __init__(
        self,
        definition: ServiceDefinition,
        settings: Settings | None = None,
        *,
        mongodb_url: str | None = None,
        span_exporters: Sequence[SpanExporter] = (),
    ) -> None:
        hold_payload_loggers()
        self.definition = d = definition
        self.settings = s = settings or get_settings()
        self.mongodb_url = mongodb_url or s.mongodb_url
        self.owns_process = False  # run as `python -m services.<name>`: process-wide tuning is its own
        self.topology = Topology(s.namespace, s.delivery_limit)
        self.tracer_provider = make_tracer_provider(d.name, d.party, s, span_exporters)
        self.tracer = self.tracer_provider.get_tracer(TRACER_NAME)
        # Each service connects as its party's broker user and stamps every publish with that user as the
        # AMQP user_id, which the broker checks against the connection: the sending party cannot be forged.
        # On a cluster (WERKBRUG_AMQP_NODES) the connection moves to the next node when its node goes away.
        self.broker = fail_over(RabbitBroker(
            s.broker_url(d.party.value),
            default_channel=Channel(prefetch_count=s.prefetch, publisher_confirms=True, on_return_raises=True),
            middlewares=[_TelemetryWithoutEcho(tracer_provider=self.tracer_provider)],
            # No dependency injection per message: the handlers take the message and nothing else, and
            # FastDepends resolved the message argument through worker threads (4 thread hand-offs per
            # message, measured in `make bench`).
            apply_types=False,
            # FastStream's per-message "Received" / "Processed" lines at DEBUG: the processing log and the
            # spans record every message; two log lines per message cost more than the span (make bench).
            log_level=logging.DEBUG,
            app_id=f"werkbrug-{d.name}",
            graceful_timeout=15.0,
            description=d.description,
            fail_fast=True,
        ), s.broker_urls(d.party.value))
        # The client connects lazily: building the app (for AsyncAPI docs) needs no database.
        self.client = connect(self.mongodb_url or "mongodb://127.0.0.1:27017/", s.db_timeout_ms)
        self.cipher = FieldCipher(s.field_key.get_secret_value())
        self.storage = MongoStorage(self.client, s.database_name(d.name), d.party, d.repositories, self.cipher)
        dead_letters = _ParkingQueue(self.topology, d.name, d.party, s)
        self.staff = StaffFile(register_path(s, d.party), d.party)  # the party's own staff register
        self.pipeline = Pipeline(d, self.storage.unit_of_work, dead_letters, self.tracer, s.max_message_bytes,
                                 s.delivery_limit, staff=self.staff)
        self.relay = OutboxRelay(self.storage, self.publish_envelope, s.relay_interval, d.name)
        self.retention = RetentionJob(d.name, d.party, d.repositories, self.storage.unit_of_work)
        self.jobs: list[tuple[str, float, Callable[[], Awaitable[Any]]]] = [
            (job.name, job.interval, partial(self._run_job_command, job)) for job in d.jobs]
        self.jobs.append(("retention", s.retention_interval, self.retention.run))
        self._job_tasks: list[asyncio.Task] = []
        self._subscribe()
        self.publishers = self._publishers()
        self.app = AsgiFastStream(
            self.broker,
            asgi_routes=[("/health", make_ping_asgi(self.broker, timeout=5.0))],
            # The document at /docs/asyncapi (HTML) and /docs/asyncapi.json. No "try it out" route: FastStream's
            # would let anyone who reaches this port publish through the service's broker connection or swap
            # it for a test broker while the request runs.
            asyncapi_path=AsyncAPIRoute("/docs/asyncapi", try_it_out_path=None),
            specification=Contract(
                self.broker, vhost=s.amqp_vhost, user=d.party.value, title=f"werkbrug {d.name} ({d.party.value})",
                version=__version__, description=d.description,
            ),
            on_startup=[self._before_broker],
            after_startup=[self._after_broker],
            on_shutdown=[self._before_stop],
            after_shutdown=[self._after_stop],
        )

    # -- wiring ------------------------------------------------------------------------------------

    def bindings(self) -> list[tuple[str, str]]:
        return service_bindings(self.definition)

    def queue_names(self) -> list[str]:
        return self.topology.queue_names(self.definition.name, [key for key, _ in self.bindings()])

    def _subscribe(self) -> None:
        d, t = self.definition, self.topology
        for key, description in self.bindings():
            self.broker.subscriber(
                t.consumer_queue(d.name, key), exchange=t.events, ack_policy=AckPolicy.MANUAL,
                decoder=_the_message, title=f"{d.name}:{key}", description=description,
            )(_documented(self._event_consumer(), envelope_model(_model_bound_by(key))))
        self.broker.subscriber(
            t.command_queue(d.name, d.party.value), exchange=t.commands, decoder=_the_message,
            ack_policy=AckPolicy.NACK_ON_ERROR,
            # The answer goes out on the replies exchange (_answer), never FastStream's own reply to the
            # default exchange, on which no party may write.
            no_reply=True,
            title=f"{d.name}:commands", description=f"commands for {d.name} (request/reply on {t.replies.name})",
        )(_documented(self._command_consumer(), d.command_union))

    def _event_consumer(self):
        async def consume(msg: RabbitMessage) -> None:
            delay = 0.5
            for _ in range(OUTAGE_RETRIES):
                try:
                    outcome = await self.pipeline.handle_event(raw_from(msg))
                except Exception as exc:
                    if is_outage(exc):
                        # The database is away: hold the message and wait, rather than burn deliveries
                        # towards the dead-letter limit for something that is not the message's fault.
                        log.warning("%s: database unreachable; message %s waits %.1fs", self.definition.name,
                                    own_id(msg.raw_message.message_id), delay)
                        await asyncio.sleep(delay)
                        delay = min(delay * 2, 15.0)
                        continue
                    # A bug, or a message that breaks the code: requeue; after the delivery limit the broker
                    # dead-letters it to the parking queue.
                    log.error("%s: handling failed (%s); message %s requeued", self.definition.name,
                              type(exc).__name__, own_id(msg.raw_message.message_id),
                              exc_info=_traceback_without_values(exc))
                    await self._last_delivery_failed(msg)
                    await asyncio.sleep(0.5)
                    await msg.nack(requeue=True)
                    return
                _log_repeat(self.definition.name, msg, outcome.status)
                if outcome.status == "deferred":  # does not follow from our records yet (NotYet): try later
                    await asyncio.sleep(_defer_pause(msg))
                    await msg.nack(requeue=True)
                    return
                if outcome.status == "dead_lettered":
                    # Refused, and why is committed: the broker dead-letters it (x-dead-letter-exchange) to
                    # this service's parking queue, as it was sent (its user_id too) with its x-death headers.
                    await msg.reject(requeue=False)
                else:
                    await msg.ack()
                return
            await msg.nack(requeue=True)

        return consume

    async def _last_delivery_failed(self, msg: RabbitMessage) -> None:
        """At the last delivery the broker allows, record that the service gives up on the message (the
        broker dead-letters it when it is given back): every genuine dead letter has the service's record."""
        count = (msg.raw_message.headers or {}).get("x-delivery-count") or 0
        if not isinstance(count, int) or count < self.settings.delivery_limit:
            return
        try:
            await self.pipeline.record_failure(raw_from(msg))
        except Exception as exc:
            log.error("%s: could not record giving up on message %s (%s)", self.definition.name,
                      msg.raw_message.message_id, type(exc).__name__)

    def _command_consumer(self):
        async def command(msg: RabbitMessage) -> None:
            try:
                # The broker-validated sender: the service executes a command only from its own party.
                reply = await self.pipeline.handle_command(msg.body, user_id=msg.raw_message.user_id,
                                                           message_id=msg.raw_message.message_id)
            except Exception as exc:
                # An outage or a bug: nothing was committed. Answer at once (the person is waiting) with a
                # code, never the exception's text (it may quote data); the log says where, not what.
                log.error("%s: command %s failed (%s)", self.definition.name, own_id(msg.raw_message.message_id),
                          type(exc).__name__, exc_info=_traceback_without_values(exc))
                reply = CommandResult(ok=False, reasons=[Reason(code=ReasonCode.SERVICE_UNAVAILABLE)]).model_dump(
                    mode="json")
            await self._answer(msg, reply)

        return command

    async def _answer(self, msg: RabbitMessage, reply: dict) -> None:
        """Answer on the replies exchange under the asker's key, which must be one of our own party's
        (`<party>.<32 hex>`; the broker's topic permissions would refuse any other). Not mandatory: a requester
        that gave up is no reason to retry the command (a command that ran keeps its result in the inbox;
        asking again with the same command id returns it; a refused command changed nothing)."""
        reply_to = msg.raw_message.reply_to or ""
        found = REPLY_KEY.match(reply_to)
        if found is None or found["party"] != self.definition.party.value:
            log.warning("%s: command %s asked for its answer elsewhere than a %s client; not answered",
                        self.definition.name, own_id(msg.raw_message.message_id), self.definition.party.value)
            return
        await self.broker.publish(
            json.dumps(reply).encode(), exchange=self.topology.replies, routing_key=reply_to,
            correlation_id=msg.raw_message.correlation_id, content_type="application/json",
            user_id=self.definition.party.value, mandatory=False, persist=False)

    def _publishers(self) -> dict[str, object]:
        """One documented FastStream publisher per routing key this service sends on (AsyncAPI)."""
        d, t, party = self.definition, self.topology, self.definition.party.value
        emitted = [(f"{party}.{to}.{m.event_type}.v{m.version}", m, (m.__doc__ or "").strip())
                   for m in d.emits for to in sorted(m.recipients_from(party))]
        emitted += [(Retour.routing_key_from(party, sender, m), Retour, f"retour answering {m.event_type} v{m.version}")
                    for m in d.event_handlers for sender in sorted(m.senders()) if sender != party]
        return {
            key: self.broker.publisher(key, exchange=t.events, schema=envelope_model(model), title=f"{d.name}:{key}",
                                       description=description, persist=True, mandatory=True)
            for key, model, description in emitted
        }

    async def publish_envelope(self, envelope: Envelope) -> None:
        # A documented publisher where there is one; a retour to a message of a type we do not know
        # (refused as such) still goes out, on the plain broker publish with the same guarantees.
        publisher = self.publishers.get(envelope.routing_key)
        target = {} if publisher else {"exchange": self.topology.events, "routing_key": envelope.routing_key}
        await (publisher or self.broker).publish(
            envelope.model_dump_json().encode(),
            **target,
            message_id=str(envelope.id),
            correlation_id=str(envelope.correlation_id),
            message_type=f"{envelope.type}.v{envelope.version}",
            timestamp=envelope.time,
            content_type="application/json",
            user_id=self.definition.party.value,
            persist=True,
            mandatory=True,
        )

    # -- lifecycle ---------------------------------------------------------------------------------

    async def _before_broker(self) -> None:
        if not self.mongodb_url:
            raise SystemExit(
                f"werkbrug-{self.definition.name}: MONGODB_URL is not set. Start all services with `werkbrug "
                "serve` or `make demo` (which start the embedded database) or point MONGODB_URL at a MongoDB "
                "replica set."
            )
        attempts = self.settings.startup_attempts
        await _with_retries(f"MongoDB for {self.definition.name}", lambda: self.client.admin.command("ping"), attempts)
        log.info("%s uses %s", self.definition.name, await self.storage.detect_server())
        await self.storage.ensure_schema()
        await _with_retries("RabbitMQ", self.broker.connect, attempts)
        await self.declare()

    async def declare(self) -> None:
        """Declare the exchanges and this service's queues (before any consumer starts)."""
        d = self.definition
        try:
            await self.topology.declare(self.broker, d.name, d.party.value, [key for key, _ in self.bindings()])
        except ExchangesMissing as exc:
            raise SystemExit(f"werkbrug-{d.name}: {exc}") from None

    async def _after_broker(self) -> None:
        if self.owns_process:
            tune_garbage_collector()
        self.relay.start()
        self._job_tasks = [asyncio.create_task(self._every(*job), name=f"{self.definition.name}-{job[0]}")
                           for job in self.jobs]
        log.info("werkbrug-%s (%s) running", self.definition.name, self.definition.party.value)

    async def _before_stop(self) -> None:
        for task in self._job_tasks:
            task.cancel()
        await asyncio.gather(*self._job_tasks, return_exceptions=True)
        self._job_tasks = []
        await self.relay.stop()

    async def _every(self, name: str, interval: float, run: Callable[[], Awaitable[Any]]) -> None:
        """Run a job on its timer; a failure (the database away) is logged and tried again next time."""
        while True:
            await asyncio.sleep(interval)
            with self.tracer.start_as_current_span(f"{self.definition.name} job {name}"):
                try:
                    await run()
                except Exception as exc:
                    log.warning("%s: job %s failed (%s); next run in %.0fs", self.definition.name, name,
                                type(exc).__name__, interval)

    async def _run_job_command(self, job: Job) -> None:
        # In the process, not over the broker: no message can claim to be a job.
        reply = await self.pipeline.run_job(job.command())
        if not reply["ok"]:
            log.warning("%s: job %s refused: %s", self.definition.name, job.name,
                        ", ".join(r["code"] for r in reply["reasons"]))

    async def _after_stop(self) -> None:
        await self.client.close()
        self.tracer_provider.shutdown()

    async def start(self) -> None:
        """Start without the HTTP server (tests run services in-process this way)."""
        await self._before_broker()
        await self.broker.start()
        await self._after_broker()

    async def stop(self, keep_tracing: bool = False) -> None:
        """Stop (in-process runs). `keep_tracing`: leave the span exporters open for a restarted runtime."""
        await self._before_stop()
        await self.broker.stop()
        if keep_tracing:
            await self.client.close()
            return
        await self._after_stop()


def _log_repeat(service: str, msg: RabbitMessage, outcome: str) -> None:
    """One line per message the broker delivered again or the inbox had seen before (ids only), so an
    operator, and the chaos run, can count redeliveries and the duplicates they caused."""
    pika = msg.raw_message
    if pika.redelivered or outcome == "duplicate":
        count = (pika.headers or {}).get("x-delivery-count", 0)
        count = count if type(count) is int else "*"  # the broker's count, or a sender's header: not echoed
        log.info("%s: repeat delivery message=%s redelivered=%s delivery_count=%s outcome=%s", service,
                 own_id(pika.message_id), str(bool(pika.redelivered)).lower(), count, outcome)


DEFER_PAUSE = 0.5  # seconds before the first retry of a message that does not follow yet; doubled each time


def _defer_pause(msg: RabbitMessage) -> float:
    """0.5, 1, 2, 4 s… (at most 8): with the default delivery limit of 5, a message waits about 7.5 s in all
    for what it follows from before it is refused."""
    count = (msg.raw_message.headers or {}).get("x-delivery-count", 0)
    count = count if isinstance(count, int) and 0 <= count < 8 else 4
    return min(DEFER_PAUSE * 2 ** count, 8.0)


async def _with_retries(what: str, attempt, tries: int) -> None:
    delay = 0.5
    for n in range(1, tries + 1):
        try:
            await attempt()
            return
        except Exception as exc:
            if n == tries:
                raise SystemExit(f"werkbrug: {what} is not reachable ({type(exc).__name__}); giving up") from None
            log.warning("%s not reachable (%s); retry %d/%d in %.1fs", what, type(exc).__name__, n, tries, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)


def _traceback_without_values(exc: BaseException):
    """Log where it failed, not what it failed on: exception messages may quote data."""
    return (type(exc), type(exc)(), exc.__traceback__) if _constructible(exc) else False


def _constructible(exc: BaseException) -> bool:
    try:
        type(exc)()
    except Exception:
        return False
    return True


def app_factory(make_definition):
    """`faststream docs gen --factory services.<name>.app:create` builds the app without connecting."""

    def create() -> AsgiFastStream:
        return ServiceRuntime(make_definition()).app

    return create


async def preflight(settings: Settings, service: str) -> None:
    """Before the application starts: are the database and the broker there? Waits with backoff, and ends
    with one clear line (no stack trace) when they stay away."""
    if not settings.mongodb_url:
        raise SystemExit(f"werkbrug-{service}: MONGODB_URL is not set. Start all services with `werkbrug serve` "
                         "or `make demo` (which start the embedded database) or point MONGODB_URL at a MongoDB "
                         "replica set.")
    client = connect(settings.mongodb_url, settings.db_timeout_ms)
    try:
        await _with_retries(f"MongoDB for {service}", lambda: client.admin.command("ping"), settings.startup_attempts)
    finally:
        await client.close()

    nodes = Failover(settings.broker_urls())

    async def broker_answers() -> None:
        connection = await connect_any(nodes, timeout=5)
        await connection.close()

    await _with_retries("RabbitMQ", broker_answers, settings.startup_attempts)


# Young objects allocated before the collector runs. Python's default (2,000) made the collector take a
# tenth of a traced hop's CPU: every message allocates spans, envelopes and pydantic models that die
# young; most collections found nothing to free (make bench, hop stages: 0.10 s → 0.03 s of GC per 1,060).
GC_YOUNG_THRESHOLD = 10_000


def tune_garbage_collector() -> None:
    """Once a service has started in its own process: move everything loaded so far (modules, schemas,
    the service's wiring: it lives as long as the process) out of the collector's sight (`gc.freeze`),
    so that full collections no longer walk it, and collect the young generation less often. Per-message
    garbage is mostly acyclic and freed by reference counting anyway."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


def run_service(definition: ServiceDefinition) -> None:
    """Entry point of `python -m services.<name>`."""
    configure_logging(definition.name)
    settings = get_settings()
    asyncio.run(preflight(settings, definition.name))
    runtime = ServiceRuntime(definition, settings)
    runtime.owns_process = True
    # No access log: the health route is asked every second by `werkbrug serve` (and by compose's health checks).
    asyncio.run(runtime.app.run(log_level=logging.INFO,
                                run_extra_options={"host": settings.http_host, "port": settings.http_port,
                                                   "access_log": "false"}))
