"""One OpenTelemetry trace follows a referral from submission to approval across both services, and
nothing exported (spans, their attributes, events, links, resources) or logged carries personal data."""

from __future__ import annotations

import collections
import json
import logging
import random
import uuid

import pytest
from opentelemetry.trace import SpanKind

from dev.scenario import play_all, synthetic_cases
from shared.contracts.commands import ReadProcessingLog
from shared.logs import hold_payload_loggers

pytestmark = pytest.mark.integration

DISTINCT_GIVEN = ["Quirijntje", "Wopkje", "Sjoukje", "Hiltsje", "Jurrigje", "Tjitske", "Aukje", "Fokeltje"]
DISTINCT_FAMILY = ["Zwaagstra", "Wijbenga", "Terpstra", "Hylkema", "Osinga", "Algra", "Bouwhuis", "Dijkstra"]


def personal_values(cases) -> set[str]:
    values = set()
    for c in cases:
        cmd = c.command
        values |= {cmd.bsn, cmd.given_name, cmd.family_name, cmd.date_of_birth.isoformat(),
                   cmd.date_of_birth.strftime("%d-%m-%Y"), cmd.postal_code, cmd.postal_code.replace(" ", "")}
        if cmd.phone:
            values |= {cmd.phone, cmd.phone.replace(" ", "")}
    return values


def exported_text(spans) -> str:
    parts = []
    for s in spans:
        parts.append(s.to_json())  # name, context, attributes, events, links, resource, status
    return "\n".join(parts)


async def test_one_trace_per_referral_across_both_parties_without_personal_data(
        services, client, span_exporter, caplog):
    caplog.set_level(logging.DEBUG)  # everything werkbrug logs, at every level
    hold_payload_loggers()  # what the runtime does: wire-level loggers never log bodies
    span_exporter.clear()
    rng = random.Random(42)
    cases = synthetic_cases(rng, 8)
    for i, case in enumerate(cases):
        case.command = case.command.model_copy(update={"given_name": DISTINCT_GIVEN[i],
                                                       "family_name": DISTINCT_FAMILY[i]})
        case.plan = "reject_then_approve" if i == 1 else case.plan
    cases = await play_all(client, cases, seed=42, concurrency=4)
    assert all(c.outcome for c in cases), [(c.plan, c.outcome) for c in cases]
    for runtime in services.runtimes.values():
        runtime.tracer_provider.force_flush()
    spans = span_exporter.get_finished_spans()

    # One trace per lifecycle: every werkbrug step of the referral, in both services, in one trace.
    approved = next(c for c in cases if c.plan == "reject_then_approve")
    assert approved.outcome == "quote_approved"
    steps = [s for s in spans if s.attributes.get("werkbrug.correlation_id") == approved.referral_id
             and s.name.split(" ", 1)[0] in ("intake", "offer") and " query " not in s.name]
    traces = collections.Counter(f"{s.context.trace_id:032x}" for s in steps)
    assert len(traces) == 1, f"the referral's steps are spread over {len(traces)} traces"
    (trace_id,) = traces
    in_trace = [s for s in spans if f"{s.context.trace_id:032x}" == trace_id]
    names = {s.name for s in in_trace}
    services_seen = {s.resource.attributes["service.name"] for s in in_trace}
    assert {"werkbrug-intake", "werkbrug-offer"} <= services_seen
    for expected in ("intake command submit_referral", "offer handle referral.registered",
                     "offer command send_quote", "intake handle quote.sent", "intake command decide_quote",
                     "offer handle quote.rejected", "offer handle quote.approved",
                     "intake handle retour.issued", "offer handle retour.issued"):
        assert expected in names, f"{expected} missing from the referral's trace"
    # The handling spans are FastStream's consumer spans (one span per message, named for what was done),
    # and the relay's publishes are FastStream's producer spans, in the same trace: it crossed the broker.
    handled = next(s for s in in_trace if s.name == "offer handle quote.approved")
    assert handled.kind == SpanKind.CONSUMER and handled.attributes["messaging.operation"] == "process"
    published = [s for s in in_trace if s.name.endswith(" publish")
                 and str(s.attributes.get("messaging.rabbitmq.destination.routing_key", "")).endswith(
                     "quote.approved.v2")]
    assert published and published[0].kind == SpanKind.PRODUCER
    assert handled.parent.span_id in {s.parent.span_id for s in published}  # both children of the create span
    # The trace is connected: every span but the root has its parent in the trace.
    ids = {s.context.span_id for s in in_trace}
    roots = [s for s in in_trace if s.parent is None or s.parent.span_id not in ids]
    assert len(roots) == 1, [s.name for s in roots]

    # No personal data anywhere it was exported or logged, nor in the processing logs.
    processing_log = []
    for case in cases:
        for service in ("intake", "offer"):
            if case.referral_id:
                reply = await client.send(service, ReadProcessingLog(correlation_id=uuid.UUID(case.referral_id)))
                processing_log += reply.result or []
    assert processing_log
    haystacks = {"spans": exported_text(spans), "logs": "\n".join(r.getMessage() for r in caplog.records)
                 + "\n".join(json.dumps(r.__dict__, default=str) for r in caplog.records),
                 "processing log": json.dumps(processing_log)}
    leaks = {(where, value) for value in personal_values(cases) for where, text in haystacks.items()
             if value in text}
    assert not leaks, f"personal data found in telemetry: {sorted(w for w, _ in leaks)}"
    # ...while pseudonyms are there, so a trace can still be tied to a subject by those allowed to.
    assert any(str(s.attributes.get("werkbrug.subject", "")).startswith("psn_") for s in steps)
