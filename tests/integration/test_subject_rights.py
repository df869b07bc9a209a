"""Data-subject rights over the real broker (GDPR art 15-21, agreement art 10): WerkSaam's subject_rights
service fans a request out to every service that holds data on the subject and gathers the answers.

Access returns one package from every service; erasure leaves nothing readable on the subject in any
service database, outbox or dead-letter queue except the records a legal duty keeps (each with its
ground); a late message cannot bring erased data back; a silent service leads to reminders and escalation,
not a hang; and bad input gets a clear, recorded outcome."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pymongo import AsyncMongoClient

from cli.render.letters import Letterhead, request_letter
from dev.scenario import play_all, until_status
from shared.contracts.commands import (
    ChaseSubjectRequests,
    Corrections,
    GetReferral,
    GetSubjectRequest,
    IdentityCheck,
    ListSubjectRequests,
    ReadProcessingLog,
    RecordConfidentialityStatement,
    ReportProgress,
    StartTrajectory,
    SubmitSubjectRequest,
)
from shared.contracts.envelope import Envelope
from shared.contracts.events import Phase, ProgressStatus, ReferralRegistered, Right
from shared.contracts.parties import Party
from shared.privacy.bsn import synthetic_bsn
from shared.privacy.crypto import retained_key_id
from shared.privacy.pseudonym import Pseudonymiser
from shared.runtime import ServiceRuntime
from tests.harness import queue_depth, wait_for
from tests.integration.test_bad_input import publish
from tests.integration.test_full_process import cases_for

pytestmark = pytest.mark.integration

HOLDERS = {"intake", "offer", "trajectory", "billing"}
DESK = "desk.hoorn"  # WerkSaam's privacy desk: the packages hold personal data, shown only under art 8


@pytest.fixture(autouse=True)
async def desk_signed_a_confidentiality_statement(services, client):
    signed = await client.send("subject_rights", RecordConfidentialityStatement(
        staff=DESK, signed_on=datetime.now(UTC).date(), actor="privacy.werksaam"))
    assert signed.ok, signed.reasons


def verified(by: str = "desk.hoorn") -> IdentityCheck:
    return IdentityCheck(method="id_document_at_desk", verified_by=by, verified_at=datetime.now(UTC))


async def request_until_done(client, bsn: str, right: Right, **fields) -> dict:
    # Taken by the desk that then reads the answer: for a restricted person only the officer handling it may.
    reply = await client.send("subject_rights", SubmitSubjectRequest(bsn=bsn, right=right, identity=verified(),
                                                                      actor=DESK, **fields))
    assert reply.ok, reply.reasons
    request_id = uuid.UUID(reply.result["request_id"])

    async def completed():
        found = (await client.send("subject_rights", GetSubjectRequest(request_id=request_id, actor=DESK))).result
        return found if found["status"] == "completed" else None

    return await wait_for(completed, within=60, what=f"{right.value} request answered by every service")


async def a_person_through_the_whole_process(client, seed: int):
    [case] = await play_all(client, cases_for([("approve", "both", "paid_work")], seed=seed), seed=seed)
    assert case.outcome == "trajectory_ended"
    return case


async def test_access_returns_one_package_with_the_data_of_every_service_and_the_art_15_information(
        services, client, settings):
    case = await a_person_through_the_whole_process(client, seed=51)
    person = case.command
    done = await request_until_done(client, person.bsn, Right.ACCESS)

    assert {s["service"] for s in done["services"]} == HOLDERS
    assert set(done["answers"]) == HOLDERS
    for service, answer in done["answers"].items():
        assert answer["outcome"] == "done", service
        assert answer["records"] and all(r["data"] for r in answer["records"]), service
        assert answer["information"], service  # purposes, categories, recipients, retention, source
        assert answer["processing_log"], service  # who processed it, when, why, on which basis
        assert {r["subject"] for r in answer["processing_log"]} == {done["subject"]}
    intake_referral = done["answers"]["intake"]["records"][0]["data"]
    assert intake_referral["person"]["family_name"] == person.family_name
    offer_case = done["answers"]["offer"]["records"][0]["data"]
    assert offer_case["client"]["bsn"] == person.bsn
    info = {i["activity"]: i for a in done["answers"].values() for i in a["information"]}
    referral_intake = info["urn:werkbrug:activity:werksaam:referral-intake:v2"]
    assert referral_intake["recipients"] == ["heliomare"] and referral_intake["retention"] == "P7Y"
    assert info["urn:werkbrug:activity:heliomare:referral-registration:v2"]["source"] == "received from werksaam"

    letter = request_letter(done, "nl", Letterhead())  # the person's letter, from the package as the desk gets it
    assert person.family_name in letter and "Archiefwet" in letter and done["request_id"] not in letter


async def test_erasure_leaves_no_readable_personal_data_anywhere_except_what_the_law_keeps(
        services, client, settings, mongodb_urls, amqp):
    case = await a_person_through_the_whole_process(client, seed=52)
    person = case.command
    subject = Pseudonymiser(settings.pseudonym_key.get_secret_value())(person.bsn)
    # A dead letter about the person: a referral that broke the contract at offer, carrying the BSN.
    bad = json.dumps({"id": str(uuid.uuid4()), "type": "referral.registered", "bsn": person.bsn,
                      "given_name": person.given_name}).encode()
    parking = services["offer"].topology.parking_queue("offer").name
    before = await queue_depth(amqp, parking)
    await publish(amqp, settings, bad, "werksaam.heliomare.referral.registered.v2", message_id=str(uuid.uuid4()))
    await wait_for(lambda: _deeper(amqp, parking, before), what="the bad message parked")

    access = await request_until_done(client, person.bsn, Right.ACCESS)  # a copy of everything, at WerkSaam
    done = await request_until_done(client, person.bsn, Right.ERASURE)

    answers = done["answers"]
    statuses = {s: {r["status"] for r in a["records"]} for s, a in answers.items()}
    assert statuses == {"intake": {"withheld"}, "billing": {"withheld"}, "offer": {"erased"},
                        "trajectory": {"erased"}}
    for service in ("intake", "billing"):
        [record] = answers[service]["records"]
        assert "17(3)(b)" in record["ground"] and record["keep_until"]
        assert answers[service]["readable_after"] == [f"{record['collection']}/{record['record_id']}"]
    for service in ("offer", "trajectory"):
        assert answers[service]["readable_after"] == []
    assert answers["offer"]["dead_letters_destroyed"] >= 1
    assert done["erasure_verified"] is True

    # The contact point keeps how the access request was handled, not the data it disclosed.
    kept = (await client.send("subject_rights", GetSubjectRequest(request_id=uuid.UUID(access["request_id"]),
                                                                  actor=DESK))).result
    assert kept["status"] == "completed" and set(kept["answers"]) == HOLDERS
    assert all(r["data"] is None for a in kept["answers"].values() for r in a["records"])

    # An independent scan of every service database, outbox and dead-letter queue.
    secrets = [person.bsn, person.given_name, person.family_name, person.phone]
    for service in HOLDERS | {"subject_rights"}:
        db = AsyncMongoClient(mongodb_urls[service], uuidRepresentation="standard")[settings.database_name(service)]
        try:
            keys = {d["_id"] async for d in db.subject_keys.find({}, {"_id": 1})}
            assert subject not in keys, f"{service} still has the subject's data key"
            for name in await db.list_collection_names():
                async for doc in db[name].find({}):
                    text = json.dumps(doc, default=str)
                    for secret in secrets:
                        assert secret not in text, f"{service}.{name} holds personal data in plain text"
                    if doc.get("subject") == subject and name not in {"processing_log", "subjects"}:
                        withheld = "_withheld" in doc
                        readable_key = doc.get("_key") == retained_key_id(subject) or "_enc" not in doc
                        if name == "outbox":
                            assert doc.get("key") != subject or subject not in keys
                        else:
                            assert withheld and readable_key, f"{service}.{name} {doc['_id']} not erased"
                            assert any(law in doc["_withheld"]["ground"] for law in ("17(3)(b)", "art 5(2)"))
        finally:
            await db.client.close()
        parked = await _bodies(amqp, services[service].topology.parking_queue(service).name)
        assert not [b for b in parked if subject.encode() in b or person.bsn.encode() in b], service

    # A message still in flight cannot bring the erased data back.
    late = Envelope.wrap(ReferralRegistered(**{**_registered(case), "referral_id": uuid.uuid4()}),
                         source=Party.WERKSAAM, recipient=Party.HELIOMARE, subject=subject, correlation_id=uuid.uuid4())
    late = late.model_copy(update={"time": datetime.now(UTC) - timedelta(minutes=5)})
    await publish(amqp, settings, late.model_dump_json().encode(), late.routing_key, message_id=str(late.id))
    await wait_for(lambda: _refused(services["offer"], late.id), what="the late message refused")
    db = AsyncMongoClient(mongodb_urls["offer"], uuidRepresentation="standard")[settings.database_name("offer")]
    try:
        assert await db.cases.count_documents({"subject": subject}) == 0
    finally:
        await db.client.close()


async def test_a_silent_service_is_asked_again_then_escalated_and_the_request_completes_when_it_answers(
        services, client, settings, mongodb_urls, span_exporter):
    case = await a_person_through_the_whole_process(client, seed=53)
    await services["billing"].stop(keep_tracing=True)  # billing is down
    try:
        reply = await client.send("subject_rights", SubmitSubjectRequest(bsn=case.command.bsn, right=Right.ACCESS,
                                                                          identity=verified()))
        request_id = uuid.UUID(reply.result["request_id"])

        async def answered_by_the_others():
            found = (await client.send("subject_rights", GetSubjectRequest(request_id=request_id, actor=DESK))).result
            return found if sum(s["answered"] for s in found["services"]) == 3 else None

        await wait_for(answered_by_the_others, within=30, what="three answers")
        later = datetime.now(UTC) + timedelta(seconds=settings.subject_reminder_after + 1)
        for n in range(settings.subject_max_reminders + 1):
            chased = (await client.send("subject_rights", ChaseSubjectRequests(
                now=later + n * timedelta(seconds=settings.subject_reminder_after + 1)))).result
            if n < settings.subject_max_reminders:
                assert chased["asked_again"] == {str(request_id): ["billing"]}
        found = (await client.send("subject_rights", GetSubjectRequest(request_id=request_id, actor=DESK))).result
        assert found["status"] == "open" and found["escalated_at"] and "billing" in found["escalation"]
        at_risk = (await client.send("subject_rights", ListSubjectRequests(at_risk=True))).result
        assert str(request_id) in {r["request_id"] for r in at_risk}
    finally:
        services.runtimes["billing"] = await _restart(services["billing"], settings, mongodb_urls, span_exporter)

    async def completed():
        found = (await client.send("subject_rights", GetSubjectRequest(request_id=request_id, actor=DESK))).result
        return found if found["status"] == "completed" else None

    done = await wait_for(completed, within=60, what="billing answers the queued reminders after its restart")
    assert done["answers"]["billing"]["outcome"] == "done"


@pytest.mark.parametrize(("right", "fields", "code"), [
    (Right.ACCESS, {"identity": IdentityCheck(method="not_verified", verified_by="desk.hoorn",
                                              verified_at=datetime.now(UTC))}, "identity_not_verified"),
    (Right.PORTABILITY, {"parties": [Party.WERKSAAM]}, "right_not_applicable"),
    (Right.OBJECTION, {"parties": [Party.HELIOMARE]}, "right_not_applicable"),
    (Right.LIFT_RESTRICTION, {}, "not_told_before_lifting"),
    (Right.RECTIFICATION, {}, "missing_field"),
])
async def test_a_request_that_cannot_be_taken_is_refused_with_its_reason_and_recorded(
        services, client, right, fields, code):
    bsn = synthetic_bsn(random.Random(code + right.value))
    reply = await client.send("subject_rights", SubmitSubjectRequest(
        bsn=bsn, right=right, **{"identity": verified(), **fields}))
    assert not reply.ok and code in {r.code.value for r in reply.reasons}
    recorded = (await client.send("subject_rights", GetSubjectRequest(
        request_id=uuid.UUID(reply.result["request_id"]), actor=DESK))).result
    assert recorded["status"] == "refused" and code in {r["code"] for r in recorded["reasons"]}
    assert recorded["services"] == []  # nothing was sent


async def test_a_repeated_request_is_refused_while_the_first_is_open_and_an_unknown_subject_gets_nothing_held(
        services, client):
    bsn = synthetic_bsn(random.Random(99))  # nobody werkbrug knows
    first = await client.send("subject_rights", SubmitSubjectRequest(bsn=bsn, right=Right.ACCESS,
                                                                      identity=verified()))
    again = await client.send("subject_rights", SubmitSubjectRequest(bsn=bsn, right=Right.ACCESS,
                                                                      identity=verified()))
    assert first.ok and not again.ok and {r.code.value for r in again.reasons} == {"duplicate_request"}
    request_id = uuid.UUID(first.result["request_id"])

    async def completed():
        found = (await client.send("subject_rights", GetSubjectRequest(request_id=request_id, actor=DESK))).result
        return found if found["status"] == "completed" else None

    done = await wait_for(completed, within=30, what="every service answers")
    assert {a["outcome"] for a in done["answers"].values()} == {"nothing_held"}


async def test_access_asked_again_soon_after_an_answer_is_answered_by_it_unless_the_person_asks_for_an_update(
        services, client):
    bsn = synthetic_bsn(random.Random(712))
    first = await request_until_done(client, bsn, Right.ACCESS)

    again = await client.send("subject_rights", SubmitSubjectRequest(bsn=bsn, right=Right.ACCESS, identity=verified()))
    assert again.ok, again.reasons
    assert (again.result["status"], again.result["answered_by"]) == ("completed", first["request_id"])
    assert again.result["services"] == []  # nothing sent: art 12(5), the earlier answer is the answer
    assert all("answered by request" in p["did"] for p in again.result["by_party"])

    update = await request_until_done(client, bsn, Right.ACCESS, update=True)  # the person asks for an update
    assert update["answered_by"] is None and set(update["answers"]) == HOLDERS


async def test_restriction_stops_processing_until_it_is_lifted_after_the_person_was_told(services, client):
    [case] = await play_all(client, cases_for([("approve", "both", "running")], seed=54), seed=54)

    await request_until_done(client, case.command.bsn, Right.RESTRICTION)
    later = case.trajectory.start + timedelta(weeks=case.trajectory.weeks_run)  # after the reports so far
    progress = ReportProgress(referral_id=uuid.UUID(case.referral_id), reported_on=later,
                              phase=Phase.TRAINING, status=ProgressStatus.ON_TRACK)
    refused = await client.send("trajectory", progress)
    assert not refused.ok and {r.code.value for r in refused.reasons} == {"subject_restricted"}

    await request_until_done(client, case.command.bsn, Right.LIFT_RESTRICTION,
                             person_told_at=datetime.now(UTC))
    accepted = await client.send("trajectory", progress.model_copy(update={"command_id": uuid.uuid4()}))
    assert accepted.ok, accepted.reasons


# -- a request for one party is that party's alone (art 10.3); objection only where it applies -----------


async def test_an_erasure_for_werksaam_only_is_carried_out_by_intake_alone_and_heliomare_keeps_its_case(
        services, client, settings):
    [case] = await play_all(client, cases_for([("approve", "both", "running")], seed=761), seed=761)
    rid = uuid.UUID(case.referral_id)

    async def settled() -> dict | None:  # every message Heliomare sent about the case answered by now
        views = {s: (await client.send(s, GetReferral(referral_id=rid, detail=True))).result
                 for s in ("offer", "trajectory")}
        waiting = [d for v in views.values() for d in v.get("deliveries", [])
                   if d["expects_retour"] and not d["retour"]]
        return None if waiting else views

    before = await wait_for(settled, what="the retours to Heliomare's messages about the case")

    done = await request_until_done(client, case.command.bsn, Right.ERASURE, parties=[Party.WERKSAAM])

    assert {s["service"] for s in done["services"]} == {"intake"} and set(done["answers"]) == {"intake"}
    by_party = {p["party"]: p for p in done["by_party"]}
    assert by_party["werksaam"]["for_this_party"] and by_party["werksaam"]["did"].startswith("intake done")
    assert not by_party["heliomare"]["for_this_party"] and by_party["heliomare"]["services"] == []
    assert by_party["heliomare"]["did"].startswith("nothing")
    # Heliomare's services did nothing: never sent the request, its case and trajectory are as they were and go on
    # being processed.
    await _not_sent_to_heliomare(services, client, done["request_id"])
    for service, view in before.items():
        after = await client.send(service, GetReferral(referral_id=rid, detail=True))
        assert after.ok and after.result == view, service
    subject = Pseudonymiser(settings.pseudonym_key.get_secret_value())(case.command.bsn)
    for name in ("offer", "trajectory", "billing"):
        async with services[name].storage.unit_of_work() as uow:
            state = await uow.subject_state(subject)
        assert (state.erased_at, state.restricted_since, state.objected_since) == (None, None, None), name
    later = case.trajectory.start + timedelta(weeks=case.trajectory.weeks_run)
    progress = await client.send("trajectory", ReportProgress(referral_id=rid, reported_on=later,
                                                              phase=Phase.TRAINING, status=ProgressStatus.ON_TRACK))
    assert progress.ok, progress.reasons


async def test_an_objection_has_effect_only_at_werksaam_whose_public_task_it_concerns(services, client, settings):
    [case] = cases_for([("approve", "both", "running")], seed=762)
    case.trajectory, plan = None, case.trajectory  # approved, not yet started
    [case] = await play_all(client, [case], seed=762)
    rid = uuid.UUID(case.referral_id)

    done = await request_until_done(client, case.command.bsn, Right.OBJECTION)

    assert done["parties"] == ["werksaam"] and set(done["answers"]) == {"intake"}
    by_party = {p["party"]: p for p in done["by_party"]}
    assert "does not apply" in by_party["heliomare"]["did"]
    await _not_sent_to_heliomare(services, client, done["request_id"])
    subject = Pseudonymiser(settings.pseudonym_key.get_secret_value())(case.command.bsn)
    async with services["intake"].storage.unit_of_work() as uow:
        assert (await uow.subject_state(subject)).objected_since is not None
    for name in ("offer", "trajectory", "billing"):
        async with services[name].storage.unit_of_work() as uow:
            assert (await uow.subject_state(subject)).objected_since is None, name
    await until_status(client, "trajectory", case.referral_id, {"commissioned"})
    started = await client.send("trajectory", StartTrajectory(referral_id=rid, start_date=plan.start))
    assert started.ok, started.reasons  # Heliomare's own processing (6(1)(b)) goes on


async def _not_sent_to_heliomare(services, client, request_id: str) -> None:
    """A request for WerkSaam only is addressed to WerkSaam only (art 10.3): the coordinator sent Heliomare no
    message about it, and no Heliomare service has a record of one."""
    async with services["subject_rights"].storage.unit_of_work() as uow:
        sent = await uow.deliveries(uuid.UUID(request_id))
    assert {d["routing_key"] for d in sent if d["type"] == "subject-request.issued"} == {
        "werksaam.werksaam.subject-request.issued.v2"}
    for service in ("offer", "trajectory", "billing"):
        reply = await client.send(service, ReadProcessingLog(correlation_id=uuid.UUID(request_id)))
        records = reply.result or []
        assert reply.ok and not any(r["message_type"] == "subject-request.issued.v2" for r in records), service


# -- helpers ---------------------------------------------------------------------------------------


def _registered(case) -> dict:
    c = case.command
    return {"referral_id": uuid.UUID(case.referral_id), "bsn": c.bsn, "given_name": c.given_name,
            "family_name": c.family_name, "date_of_birth": c.date_of_birth,
            "municipality": "hoorn", "postal_code": c.postal_code.replace(" ", ""), "phone": c.phone,
            "email": c.email, "support_need": c.support_need, "requested_start": c.requested_start}


async def _deeper(amqp, queue: str, before: int) -> bool:
    return await queue_depth(amqp, queue) > before


async def _bodies(amqp, queue: str) -> list[bytes]:
    channel = await amqp.channel()
    bodies = []
    try:
        q = await channel.get_queue(queue, ensure=False)
        while (message := await q.get(no_ack=False, fail=False)) is not None:
            bodies.append(message.body)
    finally:
        await channel.close()  # everything goes back
    return bodies


async def _refused(runtime: ServiceRuntime, event_id: uuid.UUID) -> bool:
    async with runtime.storage.unit_of_work() as uow:
        entry = await uow.processed(str(event_id))
    return bool(entry and entry.result and "subject_erased" in entry.result.get("refused", []))


async def _restart(runtime: ServiceRuntime, settings, mongodb_urls, span_exporter) -> ServiceRuntime:
    fresh = ServiceRuntime(runtime.definition, settings, mongodb_url=runtime.mongodb_url,
                           span_exporters=[span_exporter])
    await fresh.start()
    return fresh


async def test_rectification_is_carried_out_by_every_service_that_holds_the_field_and_passed_on_to_its_recipients(
        services, client, mongodb_urls, settings):
    case = await a_person_through_the_whole_process(client, seed=55)
    done = await request_until_done(client, case.command.bsn, Right.RECTIFICATION,
                                    corrections=Corrections(family_name="Van der Berg", postal_code="1621AB"))
    rectified = {s: [r["status"] for r in a["records"]] for s, a in done["answers"].items()}
    assert rectified == {"intake": ["rectified"], "offer": ["rectified"], "trajectory": [], "billing": []}
    assert done["answers"]["intake"]["recipients_notified"] == ["heliomare"]
    async with services["intake"].storage.unit_of_work() as uow:
        [referral] = await uow.referrals.find(subject=done["subject"])
    async with services["offer"].storage.unit_of_work() as uow:
        [held] = await uow.cases.find(subject=done["subject"])
    assert (referral.person.family_name, referral.person.postal_code) == ("Van der Berg", "1621AB")
    assert (held.client.family_name, held.client.postal_code) == ("Van der Berg", "1621AB")


async def test_a_malformed_answer_is_dead_lettered_and_the_request_waits_for_a_good_one(
        services, client, amqp, settings):
    bsn = synthetic_bsn(random.Random("malformed answer"))
    reply = await client.send("subject_rights", SubmitSubjectRequest(bsn=bsn, right=Right.ACCESS,
                                                                      identity=verified()))
    request_id = reply.result["request_id"]
    parking = services["subject_rights"].topology.parking_queue("subject_rights").name
    before = await queue_depth(amqp, parking)
    bad = {"id": str(uuid.uuid4()), "type": "subject-request.answered", "version": 2, "source": "heliomare",
           "time": datetime.now(UTC).isoformat(), "subject": reply.result["subject"], "correlation_id": request_id,
           "data": {"request_id": request_id, "right": "access", "service": "offer", "outcome": "maybe"}}
    await publish(amqp, settings, json.dumps(bad).encode(), "heliomare.werksaam.subject-request.answered.v2", bad["id"])
    await wait_for(lambda: _deeper(amqp, parking, before), what="the malformed answer parked")

    async def completed():
        found = (await client.send("subject_rights",
                                   GetSubjectRequest(request_id=uuid.UUID(request_id), actor=DESK))).result
        return found if found["status"] == "completed" else None

    done = await wait_for(completed, within=30, what="the good answers")
    assert done["answers"]["offer"]["outcome"] == "nothing_held"  # the real one, not the malformed one


async def test_every_request_is_one_trace_across_all_services_without_personal_data(
        services, client, span_exporter):
    case = await a_person_through_the_whole_process(client, seed=56)
    done = await request_until_done(client, case.command.bsn, Right.ACCESS)
    for runtime in services.runtimes.values():
        runtime.tracer_provider.force_flush()
    spans = [s for s in span_exporter.get_finished_spans()  # (reading it back is a query of its own)
             if s.attributes.get("werkbrug.correlation_id") == done["request_id"] and " query " not in s.name]
    assert {s.attributes.get("werkbrug.service") or s.name.split()[0] for s in spans} >= {
        "subject_rights", "intake", "offer", "trajectory", "billing"}
    traces = {}
    for s in spans:
        traces.setdefault(s.context.trace_id, []).append(s.name)
    assert len(traces) == 1, list(traces.values())
    person = case.command
    for span in spans:
        text = json.dumps(dict(span.attributes), default=str)
        assert person.bsn not in text and person.family_name not in text


async def test_the_retention_job_destroys_what_has_passed_its_period_in_the_real_database(
        services, client, settings, mongodb_urls):
    case = await a_person_through_the_whole_process(client, seed=57)
    subject = Pseudonymiser(settings.pseudonym_key.get_secret_value())(case.command.bsn)
    trajectory = services["trajectory"]
    report = await trajectory.retention.run(datetime.now(UTC) + timedelta(days=366 * 7 + 400))
    assert report.destroyed.get("trajectories", 0) >= 1 and report.subjects_shredded >= 1
    async with trajectory.storage.unit_of_work() as uow:
        assert await uow.trajectories.find(subject=subject) == []
        assert await uow.readable_about(subject) == []
        log = await uow.read_processing_log(ReadProcessingLog(subject=subject))
    assert any(r.operation == "trajectory.retention" and r.activity_id.endswith(":retention:v1") for r in log)
