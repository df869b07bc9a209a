"""Retours are final and come from the recipient; events must follow from the receiver's records; where the
parties' records disagree, `werkbrug reconcile` says so. On the real broker, each attack done as the hostile
party does it: with only its own broker credentials, on its own connection."""

from __future__ import annotations

import json
import logging
import random
import uuid
from datetime import timedelta

import pytest
from aio_pika.exceptions import ChannelClosed

from dev.scenario import until_status
from shared.contracts.commands import EndTrajectory, ReadProcessingLog, StartTrajectory
from shared.contracts.envelope import Envelope
from shared.contracts.events import Outcome, Retour, TrajectoryEnded, TrajectoryStarted
from shared.contracts.parties import Party
from shared.contracts.reasons import Reason, ReasonCode
from tests.harness import wait_for
from tests.integration.test_bad_input import recorded_reasons, spying_on
from tests.integration.test_cli import werkbrug
from tests.integration.test_flow import a_referral
from tests.integration.test_full_process import START, approved_referral, view
from tests.integration.test_identity import connect_as, publish
from tests.staff import TEST_CLIENT

pytestmark = pytest.mark.integration

WAITED = 40.0  # a message that does not follow yet is tried for about 7.5 s before it is refused


async def as_heliomare(settings, envelope: Envelope) -> str:
    """Publish as Heliomare: its own broker user, its own connection, its own user_id."""
    connection = await connect_as(settings, "heliomare")
    async with connection:
        await publish(connection, settings, envelope, envelope.routing_key, user_id="heliomare")
    return str(envelope.id)


async def parked(parking, seen: list, message_id: str, within: float = 20.0):
    async def found():
        seen.extend(await parking.messages())
        return next((m for m in seen if m.message_id == message_id), None)

    return await wait_for(found, within=within, what=f"{message_id} in the parking queue")


async def why(client, service: str, message) -> list[str]:
    """The reason codes the service recorded for a message it parked (never a header of the message)."""
    return [r["code"] for r in await recorded_reasons(client, service, message)]


async def processing_status(client, service: str, referral_id: str, message_id: str) -> list[str]:
    reply = await client.send(service, ReadProcessingLog(correlation_id=uuid.UUID(referral_id), limit=1000))
    assert reply.ok, reply.reasons
    return [r["status"] for r in reply.result if r["message_id"] == message_id]


def a_retour(about: str, about_type: str, status: str, subject: str | None, referral_id: str,
             reasons: list[Reason] = ()) -> Envelope:
    retour = Retour(about_event_id=uuid.UUID(about), about_type=about_type, about_version=2, status=status,
                    reasons=list(reasons))
    return Envelope.wrap(retour, source=Party.HELIOMARE, recipient=Party.WERKSAAM,
                         subject=subject, correlation_id=uuid.UUID(referral_id))


# -- retours ------------------------------------------------------------------------------------------------------


async def registered_and_answered(client, seed: int) -> tuple[str, dict, dict]:
    """A referral intake sent and offer answered; its id, intake's view and the answered delivery."""
    submitted = await client.send("intake", a_referral(random.Random(seed)))
    assert submitted.ok, submitted.reasons
    rid = submitted.result["referral_id"]

    async def answered():
        v = await view(client, "intake", rid)
        d = next((d for d in v["deliveries"] if d["type"] == "referral.registered" and d["retour"]), None)
        return (v, d) if d else None

    v, delivery = await wait_for(answered, what="offer's retour to the registration")
    return rid, v, delivery


async def test_a_second_retour_contradicting_the_first_is_refused_and_the_delivery_record_kept(
        services, client, amqp, settings, caplog):
    caplog.set_level(logging.INFO)
    rid, before, delivery = await registered_and_answered(client, seed=301)
    assert delivery["retour"]["status"] == "accepted"
    async with spying_on(amqp, settings, "intake", "werksaam") as (parking, _):
        contradicting = a_retour(delivery["event_id"], "referral.registered", "rejected", before["subject"], rid,
                                 [Reason(code=ReasonCode.INVALID_VALUE)])
        dead = await parked(parking, [], await as_heliomare(settings, contradicting))
    assert await why(client, "intake", dead) == [ReasonCode.RETOUR_CONTRADICTS_ANSWER.value]
    after = await view(client, "intake", rid)
    [kept] = [d for d in after["deliveries"] if d["event_id"] == delivery["event_id"]]
    assert kept["retour"] == delivery["retour"], "the sender's delivery record is unchanged"
    assert after["status"] == before["status"]
    assert await processing_status(client, "intake", rid, str(contradicting.id)) == ["refused"]
    # The same answer again under a new id: a duplicate, no effect, not parked.
    same = a_retour(delivery["event_id"], "referral.registered", "accepted", before["subject"], rid)
    await as_heliomare(settings, same)
    await wait_for(lambda: logged(caplog, f"message={same.id}", "outcome=duplicate"), what="the repeat retour")
    again = await view(client, "intake", rid)
    assert [d for d in again["deliveries"] if d["event_id"] == delivery["event_id"]] == [kept]


async def logged(caplog, *parts: str) -> bool:
    return any(all(p in r.getMessage() for p in parts) for r in caplog.records)


async def test_a_retour_about_an_event_never_sent_or_of_another_type_is_refused(services, client, amqp, settings):
    rid, before, delivery = await registered_and_answered(client, seed=302)
    seen: list = []
    async with spying_on(amqp, settings, "intake", "werksaam") as (parking, _):
        never_sent = a_retour(str(uuid.uuid4()), "referral.registered", "rejected", before["subject"], rid)
        dead = await parked(parking, seen, await as_heliomare(settings, never_sent))
        assert await why(client, "intake", dead) == [ReasonCode.RETOUR_ABOUT_UNSENT_EVENT.value]
        # About an event intake did send Heliomare, named as another type (on that type's retour key).
        other_type = a_retour(delivery["event_id"], "quote.approved", "rejected", before["subject"], rid)
        dead = await parked(parking, seen, await as_heliomare(settings, other_type))
        assert await why(client, "intake", dead) == [ReasonCode.RETOUR_ABOUT_UNSENT_EVENT.value]
    after = await view(client, "intake", rid)
    assert after["deliveries"] == before["deliveries"], "every delivery record as it was"
    assert after["status"] == before["status"]


async def test_a_party_answering_its_own_event_is_refused_by_the_broker(services, client, settings):
    """Heliomare's billing reads its trajectory.started (addressed to WerkSaam), but no service of Heliomare answers
    its own events: no retour key of Heliomare's answers trajectory.started, to WerkSaam or to itself, so the broker
    refuses it (the service would refuse it too: retour_not_from_recipient, unit test_pipeline)."""
    rid, subject = await approved_referral(client, seed=303)
    assert (await client.send("trajectory", StartTrajectory(referral_id=uuid.UUID(rid), start_date=START))).ok

    async def sent():
        v = await view(client, "trajectory", rid)
        return next((d for d in v["deliveries"] if d["type"] == "trajectory.started" and d["retour"]), None)

    delivery = await wait_for(sent, what="WerkSaam's retour to the start")
    for to in (Party.WERKSAAM, Party.HELIOMARE):
        retour = Retour(about_event_id=uuid.UUID(delivery["event_id"]), about_type="trajectory.started",
                        about_version=2, status="rejected", reasons=[Reason(code=ReasonCode.INVALID_VALUE)])
        own = Envelope.wrap(retour, source=Party.HELIOMARE, recipient=to, subject=subject,
                            correlation_id=uuid.UUID(rid))
        with pytest.raises(ChannelClosed, match="ACCESS_REFUSED"):
            await as_heliomare(settings, own)
    after = await view(client, "trajectory", rid)
    [kept] = [d for d in after["deliveries"] if d["event_id"] == delivery["event_id"]]
    assert kept["retour"] == delivery["retour"] and kept["retour"]["from"] == "werksaam"


# -- order across the parties ------------------------------------------------------------------------------------


async def test_an_end_for_a_trajectory_never_started_is_rejected_and_changes_nothing_on_either_side(
        services, client, amqp, settings):
    rid, subject = await approved_referral(client, seed=304)
    intake_before, billing_before = await view(client, "intake", rid), await view(client, "billing", rid)
    forged = Envelope.wrap(TrajectoryEnded(referral_id=uuid.UUID(rid), trajectory_id=uuid.uuid4(),
                                           end_date=START + timedelta(weeks=8), outcome=Outcome.EDUCATION),
                           source=Party.HELIOMARE, recipient=Party.WERKSAAM,
                           subject=subject, correlation_id=uuid.UUID(rid))
    async with spying_on(amqp, settings, "intake", "werksaam") as (_, retours):
        message_id = await as_heliomare(settings, forged)
        seen: list[Retour] = []

        async def answered():
            for m in await retours.messages():
                seen.append(Retour.model_validate(json.loads(m.body)["data"]))
            return next((r for r in seen if str(r.about_event_id) == message_id), None)

        retour = await wait_for(answered, within=WAITED, what="WerkSaam's answer to the end")
    assert retour.status == "rejected"
    assert [r.code for r in retour.reasons] == [ReasonCode.TRAJECTORY_NOT_STARTED]
    await wait_for(lambda: _refused_at(client, "billing", rid, message_id), within=WAITED,
                   what="billing's refusal of the end")
    intake_after, billing_after = await view(client, "intake", rid), await view(client, "billing", rid)
    for key in ("status", "trajectory", "invoices", "invoiced_total"):
        assert intake_after[key] == intake_before[key], key
    for key in ("status", "trajectory_id", "outcome", "invoices", "orders"):
        assert billing_after[key] == billing_before[key], key
    # The real start is then taken by both, under Heliomare's own trajectory id.
    assert (await client.send("trajectory", StartTrajectory(referral_id=uuid.UUID(rid), start_date=START))).ok
    await until_status(client, "intake", rid, {"trajectory_running"})
    await until_status(client, "billing", rid, {"running"})
    trajectory = await view(client, "trajectory", rid)
    assert (await view(client, "intake", rid))["trajectory"]["trajectory_id"] == trajectory["trajectory_id"]


async def _refused_at(client, service: str, rid: str, message_id: str) -> bool:
    return "refused" in await processing_status(client, service, rid, message_id)


async def test_a_legitimate_start_and_end_arriving_in_reverse_order_are_both_taken(services, client, settings,
                                                                                    caplog):
    caplog.set_level(logging.INFO)
    rid, subject = await approved_referral(client, seed=305)
    commission = await view(client, "trajectory", rid)
    tid, qid = uuid.UUID(commission["trajectory_id"]), uuid.UUID(commission["quote_id"])
    started = Envelope.wrap(TrajectoryStarted(referral_id=uuid.UUID(rid), trajectory_id=tid, quote_id=qid,
                                              start_date=START, planned_end=START + timedelta(weeks=26)),
                            source=Party.HELIOMARE, recipient=Party.WERKSAAM,
                            subject=subject, correlation_id=uuid.UUID(rid))
    ended = Envelope.wrap(TrajectoryEnded(referral_id=uuid.UUID(rid), trajectory_id=tid,
                                          end_date=START + timedelta(weeks=20), outcome=Outcome.EDUCATION),
                          source=Party.HELIOMARE, recipient=Party.WERKSAAM,
                          subject=subject, correlation_id=uuid.UUID(rid))
    await as_heliomare(settings, ended)
    for service in ("intake", "billing"):
        await wait_for(lambda s=service: logged(caplog, f"{s} holds back trajectory.ended {ended.id}"),
                       what=f"{service} holding the end back")
    await as_heliomare(settings, started)
    await until_status(client, "intake", rid, {"trajectory_ended"}, within=WAITED)
    await until_status(client, "billing", rid, {"ended"}, within=WAITED)
    taken = await view(client, "intake", rid)
    assert taken["trajectory"]["trajectory_id"] == str(tid) and taken["trajectory"]["end_date"] is not None
    # Heliomare's messages bypassed its own trajectory service: its records now disagree with WerkSaam's.
    code, out, err = await werkbrug(settings, "--as", TEST_CLIENT, "reconcile", rid)
    assert code == 2, (out, err)
    assert "trajectory state" in out and "Traceback" not in out + err


async def test_reconcile_finds_no_disagreement_on_a_clean_lifecycle(services, client, settings):
    rid, _ = await approved_referral(client, seed=306)
    r = uuid.UUID(rid)
    assert (await client.send("trajectory", StartTrajectory(referral_id=r, start_date=START))).ok
    assert (await client.send("trajectory", EndTrajectory(referral_id=r, end_date=START + timedelta(weeks=20),
                                                          outcome=Outcome.EDUCATION))).ok
    await until_status(client, "intake", rid, {"trajectory_ended"}, within=WAITED)

    async def settled():
        i, b = await view(client, "intake", rid), await view(client, "billing", rid)
        numbers = sorted(x["number"] for x in b["invoices"])
        return (b["status"] == "ended" and b["invoices"] and all(o.get("invoice_id") for o in b["orders"])
                and sorted(x["number"] for x in i["invoices"]) == numbers)

    await wait_for(settled, within=WAITED, what="the invoices at WerkSaam")
    code, out, err = await werkbrug(settings, "--as", TEST_CLIENT, "reconcile", rid)
    assert code == 0, (out, err)
    assert "agree" in out and "Traceback" not in out + err
