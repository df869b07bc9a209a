"""Every AsyncAPI document werkbrug publishes passes the official parser (@asyncapi/parser, `make node-deps`)
without an error, a warning or an info, and a partner's contract carries what the partner needs to connect
and nothing more: the broker, its vhost and user, its queues, and messages typed as they travel."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from infra.asyncapi import DOCS, documents, render
from infra.partners import Addendum, partner_asyncapi
from shared.config import Settings
from shared.contracts.envelope import Envelope
from shared.contracts.events import ReportPublished
from shared.contracts.parties import Party
from tests.asyncapi_parser import complaints, parse

GRANTED = ["heliomare.all.report.published.v3", "heliomare.werksaam.trajectory.ended.v2"]
ANNOUNCED = ["werksaam.all.party.joined.v2", "werksaam.all.party.left.v2"]


def settings(namespace: str = "werkbrug", url: str | None = None) -> Settings:
    extra = {"AMQP_URL": url} if url else {}
    return Settings(WERKBRUG_NAMESPACE=namespace, MONGODB_URL=None, WERKBRUG_SPAN_FILE=None,
                    OTEL_EXPORTER_OTLP_ENDPOINT=None, **extra)


def an_addendum(name: str = "monitor", topics: list[str] = GRANTED) -> Addendum:
    return Addendum(
        name=name, organisation="Arbeidsmarktmonitor West-Friesland", legal_basis="GDPR 6(1)(e)",
        purpose="Monitor the regional outcomes of reintegration.", topics=topics,
        contact={"name": "Functionaris", "email": "privacy@monitor.example.nl"}, effective_from=date(2027, 1, 1),
        consents=[{"party": p.value, "signed_by": "director", "signed_on": "2026-12-01", "reference": "ADD-1"}
                  for p in Party])


def written(tmp_path: Path, name: str, document: dict) -> Path:
    path = tmp_path / f"{name}.json"
    path.write_text(render(document))
    return path


def test_every_asyncapi_document_passes_the_official_parser_without_an_error_warning_or_info(tmp_path):
    committed = sorted(DOCS.glob("*.json"))
    assert {p.stem for p in committed} == {"werkbrug", "intake", "offer", "trajectory", "billing", "subject_rights"}
    fresh = [written(tmp_path, f"generated-{name}", doc) for name, doc in documents().items()]
    partner = written(tmp_path, "partner-monitor", partner_asyncapi(settings(), an_addendum()))
    over_tls = written(tmp_path, "partner-over-tls", partner_asyncapi(
        settings("coop-b", "amqps://werkbrug-admin:secret@broker.example.nl:5671/?cafile=/etc/ca.pem"),
        an_addendum("regiomon", topics=["heliomare.all.report.published.v3"])))

    verdicts = parse([*committed, *fresh, partner, over_tls])

    assert complaints(verdicts) == {}
    assert {v["version"] for v in verdicts} == {"3.1.0"}


def test_the_parser_check_reports_a_broken_document_as_errors(tmp_path):
    document = partner_asyncapi(settings(), an_addendum())
    next(iter(document["components"]["messages"].values()))["correlationId"] = {
        "location": "$message.property#/correlation_id"}  # no such runtime expression
    document["operations"]["dangling"] = {"action": "receive", "channel": {"$ref": "#/channels/nowhere"}}

    [verdict] = parse([written(tmp_path, "broken", document)])

    assert {e["code"] for e in verdict["errors"]} >= {"invalid-ref"}
    assert any("location" in e["message"] for e in verdict["errors"])


def test_a_partners_contract_names_its_broker_vhost_user_and_queues_and_nothing_more():
    document = partner_asyncapi(settings("coop-a"), an_addendum())

    [(server_name, server)] = document["servers"].items()
    assert server_name == "broker"
    assert (server["host"], server["pathname"], server["protocol"]) == ("127.0.0.1:5672", "/coop-a", "amqp")
    [scheme_ref] = server["security"]
    scheme = document["components"]["securitySchemes"][scheme_ref["$ref"].rsplit("/", 1)[1]]
    assert scheme["type"] == "userPassword"
    assert scheme["x-username"] == "coop-a.monitor", "the partner's own broker user, per namespace"
    assert "`coop-a.monitor`" in scheme["description"]

    # Exactly its topics and the announcements, each a queue of its own in the vhost named as it is.
    channels = document["channels"]
    assert sorted(c["address"] for c in channels.values()) == sorted([*GRANTED, *ANNOUNCED])
    for channel in channels.values():
        amqp = channel["bindings"]["amqp"]
        assert amqp["is"] == "queue" and "exchange" not in amqp
        assert amqp["queue"]["vhost"] == "coop-a", "the vhost's name, not the URL path"
        assert amqp["queue"]["name"] == f"coop-a.partner.monitor.{channel['address']}"
        assert amqp["queue"]["name"] in channel["description"]
        assert channel["servers"] == [{"$ref": f"#/servers/{server_name}"}]
    assert {op["action"] for op in document["operations"].values()} == {"receive"}, "a partner publishes nothing"

    # The correlation id is where it is: the envelope's field (and the AMQP property), not a header.
    schemas = document["components"]["schemas"]
    for message in document["components"]["messages"].values():
        assert message["correlationId"]["location"] == "$message.payload#/correlation_id"
        assert "AMQP property" in message["correlationId"]["description"]
        payload = schemas[message["payload"]["$ref"].rsplit("/", 1)[1]]
        assert "correlation_id" in payload["required"]

    # Nothing more: no other party's queues or exchanges, no credentials.
    text = json.dumps(document)
    for foreign in ("coop-a.intake", "coop-a.offer", "coop-a.trajectory", "coop-a.billing", "coop-a.subject_rights",
                    "coop-a.commands", "coop-a.replies", "coop-a.dlx", "-dev", "werkbrug-admin", "password\":"):
        assert foreign not in text, foreign


def test_a_partners_contract_gives_the_broker_it_will_reach_over_tls():
    document = partner_asyncapi(
        settings("coop-b", "amqps://werkbrug-admin:secret@broker.example.nl:5671/?cafile=/etc/ca.pem"),
        an_addendum("regiomon"))
    [server] = document["servers"].values()
    assert (server["host"], server["pathname"], server["protocol"]) == ("broker.example.nl:5671", "/coop-b", "amqps")
    assert "secret" not in json.dumps(document) and "cafile" not in json.dumps(document)


def test_the_yearly_report_validates_against_the_partners_contract_with_its_figures_typed_as_they_travel():
    from tests.unit.test_report import SCENARIO, report_of

    report, _, _ = report_of(SCENARIO)
    message = json.loads(Envelope.wrap(report, source=Party.HELIOMARE, subject=None,
                                       correlation_id=uuid.uuid4()).model_dump_json())
    document = partner_asyncapi(settings(), an_addendum())
    schemas = document["components"]["schemas"]
    validator = Draft202012Validator({"$ref": "#/components/schemas/ReportPublishedMessage",
                                      "components": {"schemas": schemas}}, format_checker=FormatChecker())
    assert list(validator.iter_errors(message)) == []
    rows = message["data"]["invoiced_amount"]["rows"]
    assert any(v is None for r in rows for v in r["values"]), "the scenario has a suppressed amount"
    assert any(isinstance(v, str) for r in rows for v in r["values"]), "and a published one"

    # Each figure as what it is: a count an integer multiple of 5, an amount a decimal string in steps of EUR
    # 5,000 or null (suppressed), a share a decimal string with three decimals.
    def refused(path: list, value) -> bool:
        bad = json.loads(json.dumps(message))
        target = bad["data"]
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value
        return bool(list(validator.iter_errors(bad)))

    amount_at = next(["invoiced_amount", "rows", i, "values", j] for i, r in enumerate(rows)
                     for j, v in enumerate(r["values"]) if v is not None)
    assert refused(amount_at, 5000)  # a number, not the decimal string
    assert refused(amount_at, "5000")  # no cents
    assert refused(amount_at, "5001.00")  # not rounded
    assert not refused(amount_at, None)  # suppressed
    assert refused(["tables", 0, "rows", 0, "values", 0], "5")
    assert refused(["tables", 0, "rows", 0, "values", 0], 3)
    assert refused(["tables", 0, "rows", 0, "values", 0], None)  # a count is never suppressed, only rounded
    assert refused(["trend", 0, "share_paid_work"], 0.5)
    assert refused(["trend", 0, "share_paid_work"], "0.5")
    assert not refused(["trend", 0, "share_paid_work"], "0.500")
    assert isinstance(ReportPublished.model_validate(message["data"]).invoiced_amount.rows[0].values, list)
    assert Decimal(message["data"]["invoiced_amount"]["rows"][amount_at[2]]["values"][amount_at[4]]) % 5000 == 0


@pytest.mark.parametrize("service", ["intake", "trajectory"])
def test_a_running_service_serves_its_finished_document_as_json_and_no_try_it_out_route(service):
    from infra.services import DEFINITIONS
    from shared.runtime import ServiceRuntime

    s = settings()
    runtime = ServiceRuntime(DEFINITIONS[service](s), s)

    async def call(method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        sent: list[dict] = []

        async def receive() -> dict:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict) -> None:
            sent.append(message)

        await runtime.app({"type": "http", "method": method, "path": path, "raw_path": path.encode(),
                           "query_string": b"", "headers": [(b"content-type", b"application/json")],
                           "http_version": "1.1", "scheme": "http", "server": ("test", 80),
                           "client": ("test", 1), "root_path": ""}, receive, send)
        return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])

    status, body = asyncio.run(call("GET", "/docs/asyncapi.json"))
    assert status == 200
    assert json.loads(body) == json.loads((DOCS / f"{service}.json").read_text())
    # FastStream's "try it out" would publish through the service's own broker connection for anyone who
    # reaches the port (in docker compose: every container of every party on the network).
    try_it = json.dumps({"channelName": f"werkbrug.{service}.commands", "message": {"message": {}},
                         "options": {"sendToRealBroker": True}}).encode()
    status, _ = asyncio.run(call("POST", "/docs/asyncapi/try", try_it))
    assert status == 404
