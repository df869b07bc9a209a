"""OpenTelemetry set-up for a werkbrug process.

Each service gets its own TracerProvider (resource `service.name` = werkbrug-<service>), handed to
FastStream's RabbitTelemetryMiddleware and to werkbrug's own spans. Export: OTLP/HTTP when
OTEL_EXPORTER_OTLP_ENDPOINT is set; JSON lines to WERKBRUG_SPAN_FILE when set (the demo reads them);
any extra exporter a test passes (the SDK's InMemorySpanExporter).

Span attributes carry pseudonyms, ids, types, outcomes and reason codes; never personal data.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)

from shared.config import Settings
from shared.contracts.parties import Party

TRACER_NAME = "werkbrug"


class JsonLinesSpanExporter(SpanExporter):
    """Appends one JSON object per finished span to a file (several processes may share it)."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = [json.dumps(span_to_dict(s), separators=(",", ":")) for s in spans]
        with self._lock, open(self._path, "a", encoding="utf-8") as fh:
            fh.write("".join(line + "\n" for line in lines))
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def span_to_dict(span: ReadableSpan) -> dict:
    ctx = span.get_span_context()
    return {
        "trace_id": f"{ctx.trace_id:032x}",
        "span_id": f"{ctx.span_id:016x}",
        "parent_id": f"{span.parent.span_id:016x}" if span.parent else None,
        "name": span.name,
        "service": span.resource.attributes.get("service.name"),
        "start": span.start_time,
        "end": span.end_time,
        "status": span.status.status_code.name,
        "attributes": dict(span.attributes or {}),
        "links": [f"{lk.context.trace_id:032x}:{lk.context.span_id:016x}" for lk in span.links],
    }


def make_tracer_provider(
    service: str, party: Party, settings: Settings, extra_exporters: Sequence[SpanExporter] = ()
) -> TracerProvider:
    provider = TracerProvider(
        resource=Resource.create(
            {"service.name": f"werkbrug-{service}", "service.namespace": settings.namespace,
             "werkbrug.party": party.value}
        )
    )
    if settings.otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    if settings.span_file:
        provider.add_span_processor(BatchSpanProcessor(JsonLinesSpanExporter(settings.span_file),
                                                       schedule_delay_millis=500))
    for exporter in extra_exporters:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider
