"""One referral's processing-log records across both parties, linked by trace id, and the operator's
trace view built from them."""

from __future__ import annotations

import json
import random
import uuid

import pytest

from cli.render.trace_view import as_json, as_svg, as_tree, load_flow
from dev.scenario import play_all, synthetic_cases
from shared.contracts.commands import ReadProcessingLog

pytestmark = pytest.mark.integration


async def read_log(client, service: str, **filters) -> list[dict]:
    reply = await client.send(service, ReadProcessingLog(**filters))
    assert reply.ok, reply.reasons
    return reply.result


async def test_a_referrals_records_at_both_parties_share_its_trace_and_link_to_the_sending_span(
        services, client, settings, span_exporter):
    [case] = synthetic_cases(random.Random(5), 1)
    case.plan = "reject_then_approve"
    [case] = await play_all(client, [case], seed=5)
    assert case.outcome == "quote_approved"
    rid = uuid.UUID(case.referral_id)

    werksaam = await read_log(client, "intake", correlation_id=rid)
    heliomare = await read_log(client, "offer", correlation_id=rid)
    changes = [r for r in werksaam + heliomare if not str(r["message_type"]).startswith("query:")]
    assert {r["party"] for r in changes} == {"werksaam", "heliomare"}
    assert len({r["trace_id"] for r in changes}) == 1, "every change of the referral is in its one trace"
    assert {r["legal_basis"] for r in werksaam} == {"GDPR 6(1)(e)"}
    assert {r["legal_basis"] for r in heliomare} == {"GDPR 6(1)(b)"}
    assert {r["subject"] for r in changes} == {changes[0]["subject"]} and changes[0]["subject"].startswith("psn_")
    assert case.command.bsn not in json.dumps(werksaam + heliomare), "pseudonyms only"

    # Heliomare's registration names WerkSaam as the party whose message triggered it, and the span that
    # sent it, which is a span WerkSaam's intake exported in the same trace (Logboek's cross-party link).
    [registered] = [r for r in heliomare if r["message_type"] == "referral.registered.v2"]
    assert registered["foreign"]["party"] == "werksaam"
    for runtime in services.runtimes.values():
        runtime.tracer_provider.force_flush()
    intake_spans = {f"{s.context.span_id:016x}": s for s in span_exporter.get_finished_spans()
                    if s.resource.attributes["service.name"] == "werkbrug-intake"}
    sender = intake_spans[registered["foreign"]["span_id"]]
    assert f"{sender.context.trace_id:032x}" == registered["trace_id"]

    # Each record says which processing sent the message that caused it: the chain is complete.
    emitted = {e for r in changes for e in r["emitted"]}
    caused_by_events = [r for r in changes if not str(r["message_type"]).startswith("command:")]
    orphans = [(r["service"], r["message_type"], r["operation"]) for r in caused_by_events
               if r["message_id"] not in emitted]
    assert caused_by_events and not orphans

    # The trace view, from the logs alone.
    flow = await load_flow(settings, str(rid), client=client)
    assert flow.trace_ids == {changes[0]["trace_id"]}
    assert [s.step for s in flow.roots][:1] == ["submit_referral"]
    assert {s.party for s in flow.steps} == {"werksaam", "heliomare"}
    registered_step = next(s for s in flow.steps if s.message_type == "referral.registered.v2")
    assert any(registered_step in s.children for s in flow.steps if s.step == "submit_referral")
    assert "retour accepted" in as_json(flow)
    svg = as_svg(flow)
    assert svg.startswith("<svg") and "werksaam / intake" in svg and "heliomare / offer" in svg
    assert case.command.family_name not in svg
    assert as_tree(flow).label

    # By trace id the same flow comes back.
    by_trace = await load_flow(settings, changes[0]["trace_id"], client=client)
    assert {s.span_id for s in by_trace.steps} == {s.span_id for s in flow.steps}


async def test_an_unfiltered_read_of_the_log_is_refused(services, client):
    reply = await client.send("intake", ReadProcessingLog())
    assert not reply.ok and reply.reasons[0].code.value == "unfiltered_read"


async def test_the_log_command_lists_a_refused_and_a_successful_personal_data_read_with_actor_and_marker(
        services, client, settings):

    from tests.integration.test_cli import werkbrug
    from tests.integration.test_confidentiality import registered_at_offer_with_a_signed_account_manager

    referral, rid = await registered_at_offer_with_a_signed_account_manager(client, "log-actor")
    claimed = "femke.vanderheijden"  # well-formed, not in Heliomare's staff register

    code, out, err = await werkbrug(settings, "--as", claimed, "person", rid, "--service", "offer")
    assert code == 2 and "unknown_actor" in err and referral.family_name not in out + err
    code, out, err = await werkbrug(settings, "--as", "am.jansen", "person", rid, "--service", "offer")
    assert code == 0 and referral.family_name in out, err

    code, out, err = await werkbrug(settings, "--as", "test.operator", "trace", rid)
    assert code == 0, err

    code, out, err = await werkbrug(settings, "--as", "test.operator", "log", "--referral", rid, "--json")
    assert code == 0, err
    records = json.loads(out)
    subject = next(r["subject"] for r in records if r["message_type"] == "command:submit_referral")
    # The trace read the logs naming its actor, and those reads are reads of personal data (about the subject).
    code, by_subject, err = await werkbrug(settings, "--as", "test.operator", "log", "--subject", subject, "--json")
    assert code == 0, err
    log_reads = {(r["service"], r["actor"], r["kind"]) for r in json.loads(by_subject)
                 if r["message_type"] == "query:read_processing_log"}
    assert {("offer", "test.operator", "personal_data_read"), ("intake", "test.operator", "personal_data_read")
            } <= log_reads, log_reads
    persons = [(r["actor"], r["kind"], r["status"], r["reasons"]) for r in records
               if r["message_type"] == "query:get_referral" and r["kind"] == "personal_data_read"]
    assert persons == [("(unknown)", "personal_data_read", "refused", ["unknown_actor"]),
                       ("am.jansen", "personal_data_read", "ok", [])]
    assert claimed not in out, "the claimed actor is never written"
    assert {r["subject"] for r in records if r["kind"] == "personal_data_read"} == {subject}, \
        "the refused attempt is about the referral's subject"

    code, out, err = await werkbrug(settings, "--as", "test.operator", "log", "--referral", rid)
    assert code == 0, err
    rows = [line for line in out.splitlines() if "get_referral" in line]
    assert any("am.jansen" in row and "PERSONAL DATA READ" in row and "ok" in row for row in rows), out
    assert any("(unknown)" in row and "attempted" in row and "REFUSED (unknown_actor)" in row for row in rows), out
    assert "actor" in out and claimed not in out
