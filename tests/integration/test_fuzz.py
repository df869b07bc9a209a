"""Fuzz run (issue 7): hypothesis-generated bad input for every consumer of every service, over the real broker.

For each consumer (every binding of `service_bindings(definition)`), hypothesis draws valid envelopes built
from the real event models and then corrupts them into eight classes of input: malformed, oversized,
wrong-typed, extra-field, forged-source, unknown-version, replayed and out-of-order. They are published on
the events exchange with the consumer's binding key (so every service bound to that key receives them),
and each delivery is accounted for:

- contract violations are rejected by the receiving service, which records why (its `ListDeadLetters`
  answers the reason codes), and the broker parks them in its parking queue (`x-death`), and are
  answered with a rejected retour when the routing key names another party (never for retours);
- business refusals (a referral that does not exist) are answered with a rejected retour carrying reason
  codes, or, between a party's own services, recorded as refused in the processing log;
- a replayed message id has exactly one effect (one state change at most, one retour at most);
- a valid retour about an event the service never sent, or from the party that sent it, is parked with its
  reason and never answered; random retours about events really sent and answered, by the party they went
  to, are duplicates (the same answer) or parked as contradicting it, and no delivery record changes;
- no service crashes on any of it (each answers its `ListReferrals` query afterwards), and refused input
  changes no state (the `ListReferrals` views, and billing's invoices, are the same before and after).

The outcome of each delivery is observed by wrapping each in-process pipeline's `handle_event` (the
ledger that proves every message was accounted for); everything asserted about it is checked against
what the broker and the services show from the outside: parking queues, retours, query results.

Run it on its own with `pytest -m fuzz -s`; it prints its seed and its figures. WERKBRUG_FUZZ_SEED pins the
seed to reproduce a run.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import uuid
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import aio_pika
import pytest
from hypothesis import HealthCheck, Phase, given, seed
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from pydantic import ValidationError

from infra.services import DEFINITIONS
from shared.contracts.commands import (
    GetReferral,
    ListBreaches,
    ListDeadLetters,
    ListInvoices,
    ListReferrals,
    ListSubjectRequests,
    ReadProcessingLog,
)
from shared.contracts.envelope import Envelope, EventData, known_versions, lookup
from shared.contracts.events import (
    BreachCause,
    BreachDataCategory,
    BreachReported,
    BreachSubjectCategory,
    ContractType,
    DeclineReason,
    HoursBand,
    InvoiceBasis,
    InvoiceIssued,
    InvoiceMoment,
    InvoiceTranche,
    Outcome,
    ProgressStatus,
    QuoteApproved,
    QuoteKind,
    QuoteRejected,
    QuoteRejectReason,
    QuoteSent,
    ReferralAccepted,
    ReferralDeclined,
    ReferralRegistered,
    ReportPublished,
    Retour,
    Right,
    StopReason,
    SubjectRequestAnswered,
    SubjectRequestIssued,
    SupportNeed,
    TrajectoryCommissioned,
    TrajectoryEnded,
    TrajectoryProgressed,
    TrajectoryStarted,
    TrendSignal,
    vat_of,
)
from shared.contracts.events import (
    Phase as TrajectoryPhase,
)
from shared.contracts.parties import Municipality, Party
from shared.contracts.reasons import Reason, ReasonCode
from shared.messaging.pipeline import dead_letter_key
from shared.messaging.topology import service_bindings
from shared.privacy.bsn import synthetic_bsn
from tests.harness import wait_for
from tests.integration.test_bad_input import Spy, recorded_reasons

pytestmark = [pytest.mark.integration, pytest.mark.fuzz]

SEED = int(os.environ.get("WERKBRUG_FUZZ_SEED") or random.SystemRandom().randrange(2**32))
EXAMPLES = int(os.environ.get("WERKBRUG_FUZZ_EXAMPLES") or 2)  # hypothesis examples per class per consumer

CONTRACT_CLASSES = ("malformed", "oversized", "wrong_typed", "extra_field", "forged_source", "unknown_version")
BUSINESS_CLASSES = ("replayed", "out_of_order")
CLASSES = CONTRACT_CLASSES + BUSINESS_CLASSES

# A valid message about a referral nobody knows is refused (unknown_referral), except where it is the first
# message of a lifecycle at that service, or where no referral is involved.
FIRST_OR_ANY_ORDER = {
    ("offer", ReferralRegistered), ("trajectory", TrajectoryCommissioned), ("billing", TrajectoryCommissioned),
}
# What may follow from a message still on its way (billing: the start from its commission, the end from the
# start) is held back a few deliveries (NotYet), then refused with the reason it does not follow.
WAITS_FOR = {("billing", TrajectoryStarted): ReasonCode.NO_APPROVED_QUOTE,
             ("billing", TrajectoryEnded): ReasonCode.TRAJECTORY_NOT_STARTED}

FIGURES: dict[str, Counter] = defaultdict(Counter)


# --- the consumers -----------------------------------------------------------------------------------------


def _other(party: Party) -> Party:
    return next(p for p in Party if p != party)


@dataclass(frozen=True)
class Consumer:
    service: str
    party: Party
    binding: str
    model: type[EventData]  # what arrives on it
    sender: Party  # who legitimately sends on it
    routing_key: str  # the key we publish on: the binding, with the answering party for retour bindings
    about: type[EventData] | None = None  # retour bindings: the event type the retours answer

    @property
    def label(self) -> str:
        return f"{self.service}:{self.binding}"


def all_consumers(settings) -> list[Consumer]:
    out = []
    for name, make in DEFINITIONS.items():
        definition = make(settings)
        for key, _ in service_bindings(definition):
            assert "#" not in key, key
            party_word, recipient, subject, event, version = key.split(".")
            if subject == "retour":
                sender = _other(definition.party)  # retours answer our events; the other party reads them
                about = next(m for m in definition.emits
                             if _matches(key, Retour.routing_key_from(sender.value, definition.party.value, m)))
                out.append(Consumer(name, definition.party, key, Retour, sender,
                                    f"{sender.value}.{recipient}.retour.{event}.{version}", about))
            else:
                spec = lookup(f"{subject}.{event}", int(version[1:]))
                assert spec is not None, key
                out.append(Consumer(name, definition.party, key, spec.model, Party(party_word), key))
    return out


def _matches(binding: str, routing_key: str) -> bool:
    b, k = binding.split("."), routing_key.split(".")
    return len(b) == len(k) and all(x in ("*", y) for x, y in zip(b, k, strict=True))


def receivers(consumers: list[Consumer], routing_key: str) -> dict[str, Party]:
    """Every service that has a queue bound to the routing key (one delivery each)."""
    return {c.service: c.party for c in consumers if _matches(c.binding, routing_key)}


# --- hypothesis: valid message contents per event type -----------------------------------------------------

DATES = st.dates(date(2020, 1, 1), date(2035, 12, 31))
CENTS = st.integers(1, 25_000_000)  # 0.01 .. 250 000.00 euros
NAMES = st.text(st.characters(categories=("L",), max_codepoint=0x2FFF), min_size=1, max_size=40)
PSEUDONYM = st.text("abcdefghijklmnopqrstuvwxyz234567", min_size=26, max_size=26).map("psn_".__add__)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
# Values no field of a contract can take: a string, number or date field never accepts a list or an object
# (lists given for list fields, and objects for `data`, are swapped for the other kind when built).
WRONG_TYPED = st.lists(JSON_VALUES, max_size=3) | st.dictionaries(st.text(max_size=5), JSON_VALUES, max_size=3)


def euros(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2)


@st.composite
def schedules(draw) -> tuple[Decimal, list[InvoiceTranche]]:
    total = draw(CENTS)
    parts = [total]
    if total >= 2 and draw(st.booleans()):
        first = draw(st.integers(1, total - 1))
        parts = [first, total - first]
    moments = st.sampled_from(InvoiceMoment)
    return euros(total), [InvoiceTranche(moment=draw(moments), amount=euros(p)) for p in parts]


@st.composite
def quote_sent(draw) -> dict:
    amount, invoicing = draw(schedules())
    return {"sequence": draw(st.integers(1, 100)), "kind": draw(st.sampled_from(QuoteKind)), "amount": amount,
            "planned_start": draw(DATES), "duration_weeks": draw(st.integers(1, 260)), "invoicing": invoicing}


@st.composite
def commissioned(draw) -> dict:
    amount, invoicing = draw(schedules())
    return {"approved_amount": amount, "invoicing": invoicing, "planned_start": draw(DATES),
            "duration_weeks": draw(st.integers(1, 260)), "municipality": draw(st.sampled_from(Municipality)),
            "commissioner": "werksaam"}


@st.composite
def started(draw) -> dict:
    start = draw(DATES)
    return {"start_date": start, "planned_end": start + timedelta(days=draw(st.integers(1, 2000)))}


@st.composite
def ended(draw) -> dict:
    outcome = draw(st.sampled_from(Outcome))
    paid, stopped = outcome == Outcome.PAID_WORK, outcome == Outcome.STOPPED_EARLY
    return {"end_date": draw(DATES), "outcome": outcome,
            "contract_type": draw(st.sampled_from(ContractType)) if paid else None,
            "hours_band": draw(st.sampled_from(HoursBand)) if paid else None,
            "stop_reason": draw(st.sampled_from(StopReason)) if stopped else None}


@st.composite
def invoice(draw) -> dict:
    day, amount = draw(DATES), euros(draw(CENTS))
    rate = draw(st.sampled_from([Decimal("0"), Decimal("0.09"), Decimal("0.21")])
                | st.decimals(Decimal("0"), Decimal("1"), places=4))
    vat = vat_of(amount, rate)
    return {"invoice_number": f"{day.year:04d}-{draw(st.integers(1, 999_999)):06d}", "invoice_date": day,
            "moment": draw(st.sampled_from(InvoiceMoment)), "basis": draw(st.sampled_from(InvoiceBasis)),
            "amount_excl_vat": amount, "vat_rate": rate, "vat_amount": vat, "total": amount + vat}


@st.composite
def breach(draw) -> dict:
    since = draw(st.datetimes(datetime(2020, 1, 1), datetime(2035, 1, 1), timezones=st.just(UTC)))
    subjects = draw(st.lists(PSEUDONYM, max_size=5, unique=True))
    return {"detected_at": since, "reported_at": since, "presumed_cause": draw(st.sampled_from(BreachCause)),
            "data_categories": draw(st.lists(st.sampled_from(BreachDataCategory), min_size=1, max_size=3)),
            "subject_categories": [draw(st.sampled_from(BreachSubjectCategory))],
            "subject_count": len(subjects) + draw(st.integers(0, 100)), "affected_subjects": subjects,
            "window_since": since, "window_until": since + timedelta(hours=draw(st.integers(1, 1000))),
            "services": draw(st.lists(st.sampled_from(["intake", "offer", "trajectory", "billing"]), min_size=1,
                                      max_size=4, unique=True))}


def contents(model: type[EventData], about: type[EventData] | None) -> st.SearchStrategy[dict]:
    """Valid field values of one event type, except its ids (fresh ones are made for every message)."""
    if model is ReferralRegistered:
        return st.fixed_dictionaries({
            "bsn": st.integers(0, 2**32).map(lambda n: synthetic_bsn(random.Random(n))),
            "given_name": NAMES, "family_name": NAMES, "date_of_birth": st.dates(date(1940, 1, 1), date(2008, 1, 1)),
            "municipality": st.sampled_from(Municipality),
            "postal_code": st.from_regex(r"[1-9][0-9]{3}[A-Z]{2}", fullmatch=True),
            "phone": st.none() | st.from_regex(r"\+?[0-9]{6,15}", fullmatch=True),
            "email": st.none() | st.from_regex(r"[a-z0-9]{1,20}@[a-z]{1,20}\.[a-z]{2,6}", fullmatch=True),
            "support_need": st.sampled_from(SupportNeed), "requested_start": st.none() | DATES,
        })
    if model is Retour:
        assert about is not None
        reasons = st.lists(st.builds(Reason, code=st.sampled_from(ReasonCode),
                                     field=st.none() | st.from_regex(r"[a-z_.]{1,30}", fullmatch=True)), max_size=3)
        return st.fixed_dictionaries(
            {"about_type": st.just(about.event_type), "about_version": st.just(about.version),
             "status": st.sampled_from(["accepted", "rejected"]), "reasons": reasons},
            optional={"about_event_id": st.none()},
        )
    strategies = {
        ReferralAccepted: st.just({}),
        ReferralDeclined: st.fixed_dictionaries({"reason": st.sampled_from(DeclineReason)}),
        QuoteSent: quote_sent(),
        QuoteApproved: st.fixed_dictionaries({"approved_amount": CENTS.map(euros)}),
        QuoteRejected: st.fixed_dictionaries({"reason": st.sampled_from(QuoteRejectReason)}),
        TrajectoryCommissioned: commissioned(),
        TrajectoryStarted: started(),
        TrajectoryProgressed: st.fixed_dictionaries({
            "sequence": st.integers(1, 500), "reported_on": DATES, "phase": st.sampled_from(TrajectoryPhase),
            "status": st.sampled_from(ProgressStatus)}),
        TrajectoryEnded: ended(),
        InvoiceIssued: invoice(),
        SubjectRequestIssued: st.fixed_dictionaries({
            "right": st.sampled_from([Right.ACCESS, Right.PORTABILITY, Right.RESTRICTION]), "due": DATES,
            "parties": st.just(["werksaam", "heliomare"]), "attempt": st.integers(1, 5)}),
        SubjectRequestAnswered: st.fixed_dictionaries({
            "right": st.sampled_from(Right), "service": st.sampled_from(["intake", "offer", "trajectory", "billing"]),
            "outcome": st.sampled_from(["done", "nothing_held"])}),
        BreachReported: breach(),
        ReportPublished: st.fixed_dictionaries({
            "year": st.integers(2080, 2100), "edition": st.integers(1, 100), "published_on": DATES,
            "min_invoices": st.integers(5, 1000), "min_group_durations": st.integers(5, 1000),
            "left_out": st.integers(0, 1000).map(lambda n: 5 * n), "tables": st.just([]),
            "invoiced_amount": st.just({"columns": [], "rows": []}), "durations": st.just([]), "trend": st.just([]),
            "trend_signal": st.sampled_from(TrendSignal)}),
    }
    return strategies[model]


def bases(consumer: Consumer) -> st.SearchStrategy[dict]:
    subject = PSEUDONYM if consumer.model.about_a_person else st.none() | PSEUDONYM
    return st.fixed_dictionaries({"fields": contents(consumer.model, consumer.about), "subject": subject})


def _not_json(body: bytes) -> bool:
    try:
        json.loads(body)
    except (ValueError, RecursionError):
        return True
    return False


def corruptions(consumer: Consumer, klass: str, settings) -> st.SearchStrategy:
    """What is done to a valid message of the consumer to make it one of the class."""
    envelope_fields, data_fields = list(Envelope.model_fields), list(consumer.model.model_fields)
    taken = set(envelope_fields) | set(data_fields)
    match klass:
        case "malformed":
            return st.one_of(
                st.tuples(st.just("bytes"), st.binary(max_size=300).filter(_not_json)),
                st.tuples(st.just("text"), st.text(max_size=200).map(str.encode).filter(_not_json)),
                st.tuples(st.just("truncated"), st.floats(0, 1, exclude_max=True)),
            )
        case "oversized":
            return st.tuples(st.sampled_from(["data", "envelope", "whitespace"]), st.integers(1, 8192))
        case "wrong_typed":
            places = [st.tuples(st.just("envelope"), st.sampled_from(envelope_fields))]
            if data_fields:
                places.append(st.tuples(st.just("data"), st.sampled_from(data_fields)))
            return st.tuples(st.one_of(places), WRONG_TYPED)
        case "extra_field":
            key = st.from_regex(r"[a-z][a-z_]{0,19}", fullmatch=True).filter(lambda k: k not in taken)
            return st.tuples(st.sampled_from(["envelope", "data"]), key, JSON_VALUES)
        case "unknown_version":
            known = known_versions(consumer.model.event_type)
            return st.integers(2, 999).filter(lambda v: v not in known)
        case "replayed":
            return st.integers(2, 3)  # copies of the same message
        case _:
            return st.none()


def applies(consumer: Consumer, klass: str) -> bool:
    if klass == "out_of_order":  # needs a referral that has to exist first
        return "referral_id" in consumer.model.model_fields and (consumer.service, consumer.model) not in \
            FIRST_OR_ANY_ORDER
    return True


def draw(strategy: st.SearchStrategy, n: int, seed_: int) -> list[Any]:
    """n examples of a strategy, generated by hypothesis (no shrinking: nothing fails in here)."""
    out: list[Any] = []

    @hypothesis_settings(max_examples=n, database=None, deadline=None, phases=[Phase.generate],
                         suppress_health_check=list(HealthCheck))
    @seed(seed_)
    @given(strategy)
    def collect(value):
        out.append(value)

    collect()
    return out[:n]


# --- building and accounting messages ----------------------------------------------------------------------


@dataclass
class Sent:
    consumer: Consumer
    klass: str
    body: bytes
    message_id: str
    correlation_id: str | None
    source: Party  # the envelope's (possibly forged) source
    copies: int = 1
    expected_code: str | None = None  # contract classes: the reason the dead letter must carry
    referral_id: uuid.UUID | None = None

    @property
    def routing_key(self) -> str:
        return self.consumer.routing_key


def _uuid_fields(model: type[EventData]) -> list[str]:
    return [n for n, f in model.model_fields.items() if f.annotation in (uuid.UUID, uuid.UUID | None)]


def _still_valid(consumer: Consumer, doc: dict) -> bool:
    """Whether a corrupted message would still pass the contract (then it is no contract violation)."""
    try:
        Envelope.model_validate(doc)
        consumer.model.model_validate(doc["data"])
    except (ValidationError, TypeError, KeyError):
        return False
    return True


def build(consumer: Consumer, klass: str, base: dict, corruption: Any, settings) -> Sent:
    fields = {**{name: uuid.uuid4() for name in _uuid_fields(consumer.model)}, **base["fields"]}
    data = consumer.model(**fields)
    referral_id = fields.get("referral_id")
    envelope = Envelope.wrap(data, source=consumer.sender, subject=base["subject"],
                             correlation_id=referral_id or uuid.uuid4(), recipient=consumer.routing_key.split(".")[1])
    assert envelope.routing_key == consumer.routing_key
    doc = json.loads(envelope.model_dump_json())
    sent = Sent(consumer, klass, b"", str(envelope.id), str(envelope.correlation_id), consumer.sender,
                referral_id=referral_id)

    def dumps() -> bytes:
        return json.dumps(doc).encode()

    match klass:
        case "malformed":
            kind, what = corruption
            sent.expected_code = ReasonCode.MALFORMED_JSON
            sent.correlation_id = None
            if kind == "truncated":
                whole = dumps()
                sent.body = whole[: int(what * len(whole))]
            else:
                sent.body = what
            return sent
        case "oversized":
            where, extra = corruption
            target = settings.max_message_bytes + extra
            sent.expected_code = ReasonCode.OVERSIZED
            if where == "whitespace":
                body = dumps()
                sent.body = body + b" " * (target - len(body))
            else:
                container = doc["data"] if where == "data" else doc
                container["padding"] = ""
                container["padding"] = "x" * (target - len(dumps()))
                sent.body = dumps()
            assert len(sent.body) == target > settings.max_message_bytes
            return sent
        case "wrong_typed":
            (where, name), value = corruption
            container = doc if where == "envelope" else doc["data"]
            if isinstance(container[name], list) and isinstance(value, list):
                value = {"items": value}
            elif isinstance(container[name], dict) and isinstance(value, dict):
                value = [value]
            container[name] = value
            if _still_valid(consumer, doc):
                # The drawn value happens to fit (an empty object for an optional mapping, say `corrections`):
                # a list of lists fits no field of a contract (no scalar, object or list-of-records field).
                container[name] = [[value]]
                assert not _still_valid(consumer, doc), (consumer.label, where, name)
            sent.expected_code = ReasonCode.INVALID_VALUE
        case "extra_field":
            where, key, value = corruption
            (doc if where == "envelope" else doc["data"])[key] = value
            sent.expected_code = ReasonCode.UNKNOWN_FIELD
        case "forged_source":
            not_permitted = [p for p in Party if p not in consumer.model.senders()]
            if not_permitted:  # a party that may not send the type
                sent.source, sent.expected_code = not_permitted[0], ReasonCode.SOURCE_NOT_PERMITTED
            else:  # every party may send it (retours): the routing key names another party than the envelope
                sent.source, sent.expected_code = _other(consumer.sender), ReasonCode.ROUTING_MISMATCH
            doc["source"] = sent.source.value
        case "unknown_version":
            doc["version"] = corruption
            sent.expected_code = ReasonCode.UNSUPPORTED_VERSION
        case "replayed":
            sent.copies = corruption
        case "out_of_order":
            pass
    sent.body = dumps()
    return sent


def generate(consumers: list[Consumer], classes: tuple[str, ...], settings) -> list[Sent]:
    out = []
    for consumer in consumers:
        for klass in classes:
            if not applies(consumer, klass):
                continue
            seed_ = zlib.crc32(f"{SEED}:{consumer.label}:{klass}".encode())
            strategy = st.tuples(bases(consumer), corruptions(consumer, klass, settings))
            out += [build(consumer, klass, base, corruption, settings)
                    for base, corruption in draw(strategy, EXAMPLES, seed_)]
    random.Random(SEED).shuffle(out)
    return out


@dataclass
class Expected:
    status: str  # dead_lettered | rejected | accepted
    code: str | None
    retour: bool  # a retour from the receiving service's party is expected


def expectation(sent: Sent, service: str, party: Party) -> Expected:
    named, subject_word = Party(sent.routing_key.split(".")[0]), sent.routing_key.split(".")[2]
    if sent.klass in CONTRACT_CLASSES:
        # answered when the routing key names another party, unless it is a retour
        return Expected("dead_lettered", sent.expected_code, named != party and subject_word != "retour")
    model = sent.consumer.model
    crossed = sent.source != party and model is not Retour
    if model is Retour and sent.consumer.about.from_each_service:  # never sent by this service: not its own
        return Expected("accepted", None, False)
    if model is Retour and sent.source == party:  # a party does not answer its own events
        return Expected("dead_lettered", ReasonCode.RETOUR_NOT_FROM_RECIPIENT, False)
    if model is Retour:
        # about an event this service never sent (a fresh id, or none): refused and parked, never answered
        return Expected("dead_lettered", ReasonCode.RETOUR_ABOUT_UNSENT_EVENT, False)
    if (service, model) in WAITS_FOR:
        return Expected("rejected", WAITS_FOR[(service, model)], crossed)
    if model in (Retour, ReportPublished, SubjectRequestIssued, BreachReported) or (
            (service, model) in FIRST_OR_ANY_ORDER):
        return Expected("accepted", None, crossed)  # (a request about someone unknown: "nothing held")
    if model is SubjectRequestAnswered:
        return Expected("rejected", ReasonCode.UNKNOWN_REQUEST, crossed)
    return Expected("rejected", ReasonCode.UNKNOWN_REFERRAL, crossed)


@dataclass
class Ledger:
    """What each pipeline made of each of our deliveries, in the order they were handled."""

    ids: set[str]
    outcomes: dict[tuple[str, str], list[Any]] = field(default_factory=lambda: defaultdict(list))
    crashes: dict[tuple[str, str], list[str]] = field(default_factory=lambda: defaultdict(list))

    def watch(self, services, monkeypatch) -> None:
        for name in DEFINITIONS:
            pipeline = services[name].pipeline
            original = pipeline.handle_event

            async def handle(raw, _original=original, _name=name):
                try:
                    outcome = await _original(raw)
                except Exception as exc:
                    if raw.message_id in self.ids:
                        self.crashes[(raw.message_id, _name)].append(type(exc).__name__)
                    raise
                if raw.message_id in self.ids and outcome.status != "deferred":  # held back: not yet handled
                    self.outcomes[(raw.message_id, _name)].append(outcome)
                return outcome

            monkeypatch.setattr(pipeline, "handle_event", handle)


async def state(client) -> dict[str, Any]:
    """Every service's `ListReferrals` view (each must answer), and billing's invoices."""
    views: dict[str, Any] = {}
    for name in DEFINITIONS:
        query, key = (ListSubjectRequests(limit=1000), "request_id") if name == "subject_rights" else (
            ListReferrals(limit=1000, detail=True), "referral_id")
        reply = await client.send(name, query)
        assert reply.ok, (name, reply.reasons)
        assert len(reply.result) < 1000, "the comparison needs every referral in one page"
        views[name] = {v[key]: v for v in reply.result}
    for name in ("offer", "subject_rights"):  # the breach desks; clocks read at one fixed moment
        reply = await client.send(name, ListBreaches(limit=1000, now=datetime(2040, 1, 1, tzinfo=UTC)))
        assert reply.ok, (name, reply.reasons)
        views[f"{name} breaches"] = {v["breach_id"]: v for v in reply.result}
    invoices = await client.send("billing", ListInvoices(limit=10_000, detail=True))
    assert invoices.ok, invoices.reasons
    views["billing invoices"] = invoices.result
    return views


async def settled_state(client) -> dict[str, Any]:
    """The state once what earlier tests left in flight has landed (two equal reads in a row)."""
    previous = await state(client)
    for _ in range(20):
        await asyncio.sleep(0.3)
        current = await state(client)
        if current == previous:
            return current
        previous = current
    return previous


async def publish_all(amqp, settings, messages: list[Sent]) -> None:
    channel = await amqp.channel(publisher_confirms=True, on_return_raises=True)
    try:
        exchange = await channel.get_exchange(f"{settings.namespace}.events")
        for sent in messages:
            for _ in range(sent.copies):
                await exchange.publish(
                    aio_pika.Message(sent.body, message_id=sent.message_id, correlation_id=sent.correlation_id,
                                     content_type="application/json", delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                                     user_id=sent.routing_key.split(".")[0]),
                    routing_key=sent.routing_key, mandatory=True,
                )
    finally:
        await channel.close()


@pytest.fixture(scope="module", autouse=True)
def print_figures():
    yield
    if not FIGURES:
        return
    columns = ("consumers", "messages", "published", "deliveries", "dead_lettered", "refused", "accepted",
               "duplicates", "rejected_retours", "accepted_retours")
    print(f"\nfuzz run, seed {SEED} (WERKBRUG_FUZZ_SEED={SEED} repeats it), {EXAMPLES} examples per class per consumer")
    print("deliveries = published x receiving services; each is dead_lettered, refused (a business refusal with "
          "reason codes), accepted, or a suppressed duplicate")
    print(f"{'class':<16}" + "".join(f"{c:>17}" for c in columns))
    total: Counter = Counter()
    for klass in CLASSES:
        if klass in FIGURES:
            row = FIGURES[klass]
            total.update(row)
            print(f"{klass:<16}" + "".join(f"{row[c]:>17}" for c in columns))
    total["consumers"] = max(FIGURES[k]["consumers"] for k in FIGURES)  # the same consumers, not a sum
    print(f"{'total':<16}" + "".join(f"{total[c]:>17}" for c in columns))


# --- the run -----------------------------------------------------------------------------------------------


@dataclass
class Run:
    messages: list[Sent]
    ledger: Ledger
    before: dict[str, Any]
    after: dict[str, Any]
    parked: dict[tuple[str, str], list[aio_pika.abc.AbstractIncomingMessage]]
    retours: dict[tuple[str, str], list[dict]]  # (about id, answering party) -> retour envelopes
    receivers: dict[str, dict[str, Party]]


async def fuzz(classes, services, amqp, settings, client, monkeypatch) -> Run:
    consumers = all_consumers(settings)
    messages = generate(consumers, classes, settings)
    assert len({m.message_id for m in messages}) == len(messages)
    routed = {m.message_id: receivers(consumers, m.routing_key) for m in messages}
    ns = settings.namespace
    parking = {name: await Spy.bind(amqp, f"{ns}.dlx", name) for name in DEFINITIONS}
    retour_spy = await Spy.bind(amqp, f"{ns}.events", "*.*.retour.#")
    try:
        before = await settled_state(client)
        ledger = Ledger({m.message_id for m in messages})
        ledger.watch(services, monkeypatch)
        await publish_all(amqp, settings, messages)

        deliveries = {(m.message_id, name): m.copies for m in messages for name in routed[m.message_id]}

        async def all_handled():
            return all(len(ledger.outcomes[key]) >= n for key, n in deliveries.items()) or (
                bool(ledger.crashes) and "crashed")

        await wait_for(all_handled, within=90, interval=0.2, what="every delivery to be handled")
        assert not ledger.crashes, f"handlers crashed on: {dict(ledger.crashes)}"

        parked: dict[tuple[str, str], list] = defaultdict(list)
        retours: dict[tuple[str, str], list[dict]] = defaultdict(list)

        async def drain() -> None:
            for name, spy in parking.items():
                for m in await spy.messages():
                    if m.message_id in ledger.ids:
                        parked[(m.message_id, name)].append(m)
            for m in await retour_spy.messages():
                if m.message_id in ledger.ids:
                    continue  # our own input on a retour binding, not a service's answer
                doc = json.loads(m.body)
                about = doc["data"]["about_event_id"]
                if about in ledger.ids:
                    retours[(about, doc["source"])].append(doc)

        want_parked = {(m.message_id, name) for m in messages for name, party in routed[m.message_id].items()
                       if expectation(m, name, party).status == "dead_lettered"}
        want_retours = Counter((m.message_id, party.value) for m in messages
                               for name, party in routed[m.message_id].items()
                               if expectation(m, name, party).retour)

        async def answered():
            await drain()
            return want_parked <= set(parked) and all(len(retours[k]) >= n for k, n in want_retours.items())

        try:
            await wait_for(answered, within=60, interval=0.2, what="the dead letters and retours")
        except AssertionError:
            sent = {m.message_id: m for m in messages}
            unparked = [(sent[i].klass, sent[i].routing_key, name) for i, name in sorted(want_parked - set(parked))]
            unanswered = [(sent[i].klass, sent[i].routing_key, party) for (i, party), n in want_retours.items()
                          if len(retours[(i, party)]) < n]
            raise AssertionError(f"fuzz seed {SEED} (WERKBRUG_FUZZ_SEED to replay): not parked {unparked[:10]}; "
                                 f"no retour {unanswered[:10]}") from None
        await asyncio.sleep(1.0)  # room for anything that should not come: a second retour, a late dead letter
        await drain()
        after = await state(client)
    finally:
        for spy in (*parking.values(), retour_spy):
            await spy.close()
    return Run(messages, ledger, before, after, dict(parked), dict(retours), routed)


async def dead_letter_records(run: Run, client) -> dict[tuple[str, str], dict]:
    """What each service recorded about the messages the broker parked for it, by (service, key)."""
    keys: dict[str, set[str]] = defaultdict(set)
    for (_, name), letters in run.parked.items():
        keys[name] |= {dead_letter_key(d.message_id, d.body) for d in letters}
    found: dict[tuple[str, str], dict] = {}
    for name, wanted in keys.items():
        ordered = sorted(wanted)
        for start in range(0, len(ordered), 500):
            reply = await client.send(name, ListDeadLetters(keys=ordered[start:start + 500]))
            assert reply.ok, reply.reasons
            found |= {(name, r["key"]): r for r in reply.result}
    return found


async def check(run: Run, client) -> None:
    """Every delivery accounted for, each as expected, and the figures recorded."""
    problems: list[str] = []
    recorded = await dead_letter_records(run, client)
    for klass in {m.klass for m in run.messages}:
        FIGURES[klass]["consumers"] += len({m.consumer.label for m in run.messages if m.klass == klass})
    for m in run.messages:
        row = FIGURES[m.klass]
        row["messages"] += 1
        row["published"] += m.copies
        for name, party in run.receivers[m.message_id].items():
            expected = expectation(m, name, party)
            outcomes = run.ledger.outcomes[(m.message_id, name)]
            where = f"{m.klass} {m.consumer.label} -> {name} ({m.message_id})"
            row["deliveries"] += m.copies
            if len(outcomes) != m.copies:
                problems.append(f"{where}: {len(outcomes)} outcomes for {m.copies} deliveries")
                continue
            # copies handled at once may finish in any order: the one with an effect, then the duplicates
            first, *rest = sorted(outcomes, key=lambda o: o.status == "duplicate")
            row["duplicates"] += sum(o.status == "duplicate" for o in rest)
            if any(o.status != "duplicate" for o in rest):
                problems.append(f"{where}: a replay had a second effect: {[o.status for o in rest]}")
            codes = [r.code.value for r in first.reasons]
            if first.status != expected.status:
                problems.append(f"{where}: {first.status} {codes}, expected {expected.status} {expected.code}")
                continue
            if expected.code and expected.code not in codes:
                problems.append(f"{where}: reasons {codes} lack {expected.code}")
            answers = run.retours.get((m.message_id, party.value), [])
            if first.status == "dead_lettered":
                row["dead_lettered"] += 1
                dead = run.parked.get((m.message_id, name), [])
                if len(dead) != 1:
                    problems.append(f"{where}: {len(dead)} dead letters in the parking queue")
                else:
                    record = recorded.get((name, dead_letter_key(dead[0].message_id, dead[0].body)))
                    reason = [r["code"] for r in record["reasons"]] if record else None
                    if reason != codes:
                        problems.append(f"{where}: {name} recorded the dead letter's reasons as {reason}, not {codes}")
                    death = (dead[0].headers.get("x-death") or [{}])[0]
                    if death.get("reason") != "rejected" or death.get("routing-keys") != [m.routing_key]:
                        problems.append(f"{where}: not dead-lettered by the broker from {m.routing_key}: {death}")
                    if dead[0].body != m.body or any(k.startswith("x-werkbrug-") for k in dead[0].headers):
                        problems.append(f"{where}: the dead letter is not the message as it was sent")
            elif (m.message_id, name) in run.parked:
                problems.append(f"{where}: {first.status} but also dead-lettered")
            if first.status == "rejected":
                row["refused"] += 1
                if not expected.retour:
                    lifecycle = m.referral_id or uuid.UUID(m.correlation_id)
                    log = await client.send(name, ReadProcessingLog(correlation_id=lifecycle))
                    if not any(r["message_id"] == m.message_id and r["status"] == "refused" for r in log.result or []):
                        problems.append(f"{where}: the refusal is not in {name}'s processing log")
            if first.status == "accepted":
                row["accepted"] += 1
            if expected.retour:
                wanted = "accepted" if first.status == "accepted" else "rejected"
                # one retour from each of the party's services that received it (a subject-rights request
                # reaches every service of a party; any other message one service per party)
                answering = sum(1 for p in run.receivers[m.message_id].values() if p == party)
                if len(answers) != answering:
                    problems.append(f"{where}: {len(answers)} retours, expected {answering}")
                    continue
                mine = next((a for a in answers if a["data"]["status"] == wanted
                             and [r["code"] for r in a["data"]["reasons"]] == codes), answers[0])
                status, answered = mine["data"]["status"], [r["code"] for r in mine["data"]["reasons"]]
                row[f"{status}_retours"] += 1
                if status != wanted or answered != codes:
                    problems.append(f"{where}: retour {status} {answered}, expected {wanted} {codes}")
            elif answers:
                problems.append(f"{where}: answered by {len(answers)} retour(s), expected none")
    assert not problems, f"{len(problems)} problems (seed {SEED}):\n" + "\n".join(problems[:40])

    for klass in {m.klass for m in run.messages}:
        row = FIGURES[klass]
        accounted = row["dead_lettered"] + row["refused"] + row["accepted"] + row["duplicates"]
        assert accounted == row["deliveries"], f"{klass}: {accounted} of {row['deliveries']} deliveries accounted for"


def accepted_referrals(run: Run) -> dict[str, set[str]]:
    """The referrals each service may have learnt of: from the deliveries it accepted."""
    out: dict[str, set[str]] = defaultdict(set)
    for m in run.messages:
        for name, party in run.receivers[m.message_id].items():
            if m.referral_id and expectation(m, name, party).status == "accepted":
                out[name].add(str(m.referral_id))
    return out


def assert_only_accepted_input_changed_state(run: Run) -> None:
    new = accepted_referrals(run)
    assert run.after["billing invoices"] == run.before["billing invoices"], "fuzzed input produced an invoice"
    for name in DEFINITIONS:
        before, after = run.before[name], run.after[name]
        changed = [rid for rid in before if after.get(rid) != before[rid]]
        assert not changed, f"{name}: fuzzed input changed existing referrals {changed}"
        assert set(after) - set(before) == new[name], f"{name}: referrals that appeared {set(after) - set(before)}"


# --- the tests ---------------------------------------------------------------------------------------------


async def test_contract_violations_on_every_consumer_are_parked_with_a_reason_and_change_nothing(
        services, amqp, settings, client, monkeypatch):
    run = await fuzz(CONTRACT_CLASSES, services, amqp, settings, client, monkeypatch)
    await check(run, client)
    assert run.after == run.before, "refused input changed a service's state"


async def test_a_replayed_message_has_exactly_one_effect_on_every_consumer(
        services, amqp, settings, client, monkeypatch):
    run = await fuzz(("replayed",), services, amqp, settings, client, monkeypatch)
    await check(run, client)
    assert_only_accepted_input_changed_state(run)
    for name, referrals in accepted_referrals(run).items():
        assert referrals <= set(run.after[name]), f"{name} lost accepted referrals"


async def test_out_of_order_messages_are_refused_with_a_reason_and_answered_not_parked(
        services, amqp, settings, client, monkeypatch):
    run = await fuzz(("out_of_order",), services, amqp, settings, client, monkeypatch)
    await check(run, client)
    # Refused everywhere: billing too holds a start or an end back until what it follows from came, then refuses.
    assert_only_accepted_input_changed_state(run)
    assert not accepted_referrals(run)


async def test_random_retours_about_answered_events_are_duplicates_or_refused_and_change_nothing(
        services, amqp, settings, client, monkeypatch):
    """Every event of a lifecycle that crossed and was answered, answered again by the party it went to (its
    own broker user): the same answer is a duplicate; any other (status or reasons) is parked as
    contradicting the recorded one, and no delivery record changes."""
    from tests.integration.test_full_process import approved_referral
    from tests.integration.test_identity import connect_as

    rid, subject = await approved_referral(client, seed=SEED % 10_000)
    owners = ("intake", "offer")

    async def answered_deliveries():
        found = {}
        for name in owners:
            reply = await client.send(name, GetReferral(referral_id=uuid.UUID(rid)))
            assert reply.ok, reply.reasons
            crossing = [d for d in reply.result["deliveries"] if d["expects_retour"]]
            if not crossing or any(d["retour"] is None for d in crossing):
                return None
            found[name] = crossing
        return found

    before = await wait_for(answered_deliveries, what="every crossing of the lifecycle answered")
    reasons = st.lists(st.sampled_from(ReasonCode), max_size=2)
    answers = st.tuples(st.sampled_from(["accepted", "rejected"]), reasons)
    messages: list[tuple[Envelope, bool]] = []  # (retour, the same answer as recorded)
    for deliveries in before.values():
        for d in deliveries:
            recorded = d["retour"]
            drawn = draw(answers, EXAMPLES * 3, zlib.crc32(f"{SEED}:{d['event_id']}".encode()))
            drawn.append((recorded["status"], [r["code"] for r in recorded["reasons"]]))  # the same answer again
            for status, codes in drawn:
                retour = Retour(about_event_id=uuid.UUID(d["event_id"]), about_type=d["type"], about_version=2,
                                status=status, reasons=[Reason(code=c) for c in codes])
                envelope = Envelope.wrap(retour, source=Party(recorded["from"]), subject=subject,
                                         correlation_id=uuid.UUID(rid), recipient=_other(Party(recorded["from"])))
                same = (status, sorted(codes)) == (recorded["status"], sorted(r["code"] for r in recorded["reasons"]))
                messages.append((envelope, same))
    ledger = Ledger({str(e.id) for e, _ in messages})
    ledger.watch(services, monkeypatch)
    parking = {name: await Spy.bind(amqp, f"{settings.namespace}.dlx", name) for name in owners}
    try:
        for party in Party:
            connection = await connect_as(settings, party.value)
            async with connection:
                channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
                exchange = await channel.get_exchange(f"{settings.namespace}.events", ensure=False)
                for envelope, _ in messages:
                    if envelope.source == party:
                        await exchange.publish(aio_pika.Message(envelope.model_dump_json().encode(),
                                                                message_id=str(envelope.id), user_id=party.value,
                                                                content_type="application/json"),
                                               routing_key=envelope.routing_key, mandatory=True)

        async def all_handled():
            return len(ledger.outcomes) >= len(messages)

        await wait_for(all_handled, within=60, interval=0.2, what="every retour handled")
        contradicting = {str(e.id) for e, same in messages if not same}
        parked: set[str] = set()

        async def all_parked():
            for name, spy in parking.items():  # why each was parked: the service's own record, not a header
                for m in await spy.messages():
                    if m.message_id in contradicting and m.message_id not in parked and \
                            ReasonCode.RETOUR_CONTRADICTS_ANSWER.value in {
                                r["code"] for r in await recorded_reasons(client, name, m)}:
                        parked.add(m.message_id)
            return contradicting <= parked

        await wait_for(all_parked, what="every contradicting retour parked")
    finally:
        for spy in parking.values():
            await spy.close()
    assert not ledger.crashes
    for envelope, same in messages:
        [(key, outcomes)] = [(k, o) for k, o in ledger.outcomes.items() if k[0] == str(envelope.id)]
        assert [o.status for o in outcomes] == ["duplicate" if same else "dead_lettered"], (key, same)
    FIGURES["retours"].update(messages=len(messages), duplicates=sum(same for _, same in messages),
                              dead_lettered=len(contradicting))
    assert await answered_deliveries() == before, "a delivery record changed"


async def test_every_malformed_message_without_a_message_id_is_answered_with_its_own_retour(
        services, amqp, settings):
    """Two different malformed messages, neither with an AMQP message_id, from a sender the routing key names:
    each is dead-lettered and each should be answered with a rejected retour (told apart by correlation id)."""
    ns, routing_key = settings.namespace, "heliomare.werksaam.referral.accepted.v2"
    parking = await Spy.bind(amqp, f"{ns}.dlx", "intake")
    answers = await Spy.bind(amqp, f"{ns}.events", "werksaam.heliomare.retour.referral-accepted.v2")
    correlation_ids = [str(uuid.uuid4()) for _ in range(2)]
    try:
        channel = await amqp.channel(publisher_confirms=True, on_return_raises=True)
        exchange = await channel.get_exchange(f"{ns}.events")
        for n, correlation_id in enumerate(correlation_ids):
            await exchange.publish(aio_pika.Message(f"not json {n}".encode(), correlation_id=correlation_id),
                                   routing_key=routing_key, mandatory=True)
        await channel.close()
        parked, answered = set(), set()

        async def both_parked():
            parked.update(m.correlation_id for m in await parking.messages())
            return set(correlation_ids) <= parked

        await wait_for(both_parked, what="both malformed messages in intake's parking queue")

        async def both_answered():
            got = await answers.messages()
            answered.update(json.loads(m.body)["correlation_id"] for m in got)
            return set(correlation_ids) <= answered

        await wait_for(both_answered, within=5, what="a rejected retour for each malformed message")
    finally:
        await parking.close()
        await answers.close()


DLX_ATTEMPTS = 40  # per party


def dlx_attempt() -> st.SearchStrategy:
    """A publish to the dead-letter exchange as a hostile party makes it: a routing key (a parking key of
    either party, a wildcard, anything), a body (a real envelope of any consumer, or bytes), and headers
    that claim a sender, a reason, a broker's x-death."""
    keys = st.one_of(st.sampled_from([*DEFINITIONS, "", "#", "*", "offer.parking", "intake.x"]),
                     st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=40))
    claims = st.fixed_dictionaries({}, optional={
        "x-werkbrug-original-user-id": st.sampled_from([p.value for p in Party]),
        "x-werkbrug-reason": st.sampled_from([c.value for c in ReasonCode]),
        "x-first-death-reason": st.sampled_from(["rejected", "delivery_limit"]),
        "x-death": st.just([{"reason": "rejected", "count": 1,
                             "routing-keys": ["werksaam.heliomare.quote.approved.v2"]}]),
    })
    return st.tuples(keys, st.binary(max_size=300), claims, st.sampled_from([p.value for p in Party]))


async def test_no_publish_to_the_dead_letter_exchange_by_any_party_is_accepted(services, amqp, settings):
    """The dead-letter path fuzzed: hypothesis-drawn publishes to `<ns>.dlx` as each party, with only that
    party's own credentials. The broker refuses every one (ACCESS_REFUSED), and none of them reaches the
    exchange: a queue of the operator bound to it with `#` (and so every parking queue, which is bound to it)
    gets none of them. (It may get genuine dead letters of the services meanwhile, from earlier tests' work.)"""
    ns = settings.namespace
    attempts = draw(dlx_attempt(), DLX_ATTEMPTS * len(Party), SEED)
    watch = await Spy.bind(amqp, f"{ns}.dlx", "#")
    refused: Counter = Counter()
    sent: set[str] = set()
    connections = {p.value: await aio_pika.connect_robust(settings.broker_url(p.value)) for p in Party}
    try:
        for key, body, headers, party in attempts:
            channel = await connections[party].channel(publisher_confirms=True, on_return_raises=True)
            exchange = await channel.get_exchange(f"{ns}.dlx", ensure=False)
            message_id = str(uuid.uuid4())
            sent.add(message_id)
            try:
                await exchange.publish(aio_pika.Message(body, headers=headers, user_id=party,
                                                        message_id=message_id), routing_key=key)
            except aio_pika.exceptions.ChannelClosed as exc:
                refused[("ACCESS_REFUSED" in str(exc), party)] += 1
            else:
                raise AssertionError(f"fuzz seed {SEED}: {party} published to the dlx on {key!r}")
        await asyncio.sleep(0.5)
        reached = [m.message_id for m in await watch.messages() if m.message_id in sent]
        assert reached == [], f"fuzz seed {SEED}: a publish reached the dlx"
    finally:
        for connection in connections.values():
            await connection.close()
        await watch.close()
    assert set(refused) == {(True, p.value) for p in Party}, refused
    print(f"\nfuzz seed {SEED}: {sum(refused.values())} publishes to the dlx, all refused by the broker: "
          f"{dict((p, n) for (_, p), n in refused.items())}")
