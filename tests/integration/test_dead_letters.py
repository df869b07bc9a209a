"""Operating dead letters: a message the service failed on is parked, listed with its reason, replayed
after the fix as the broker-validated sender it carried, and a replay is idempotent."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from datetime import UTC, datetime

import pytest

from infra.dead_letters import ParkingQueues
from shared.contracts.commands import GetReferral, ReadProcessingLog, RecordConfidentialityStatement
from shared.contracts.events import ReferralRegistered
from shared.messaging.pipeline import dead_letter_key
from tests.harness import wait_for
from tests.integration.test_bad_input import publish, registered_envelope
from tests.integration.test_cli import werkbrug
from tests.staff import TEST_CLIENT

pytestmark = pytest.mark.integration


async def test_a_parked_message_is_listed_replayed_after_the_fix_and_replaying_is_idempotent(
        services, client, amqp, settings, monkeypatch):
    handlers = services["offer"].pipeline.event_handlers
    fixed = handlers[ReferralRegistered]

    async def broken(event, uow):
        raise RuntimeError("a bug in the new release")

    monkeypatch.setitem(handlers, ReferralRegistered, broken)
    env = registered_envelope(settings, random.Random("replay"))
    body = env.model_dump_json().encode()
    # A header claiming another sender is ignored: the replay goes out as the user_id the broker validated.
    await publish(amqp, settings, body, env.routing_key, str(env.id), str(env.correlation_id),
                  headers={"x-werkbrug-original-user-id": "heliomare"})
    parking = ParkingQueues(settings, actor=TEST_CLIENT)  # its listing names who asks (art 8)

    async def parked():
        return [d for d in await parking.list("offer") if d.message_id == str(env.id)]

    [letter] = await wait_for(parked, within=30, what="the message in offer's parking queue")
    assert letter.reason == "delivery_limit_exceeded" and letter.routing_key == env.routing_key
    assert letter.death["reason"] == "delivery_limit", "the broker's own account agrees"
    assert letter.recorded, "offer recorded giving up on it at the last delivery"
    assert letter.user_id == "werksaam", "parked under the broker-validated sender"

    code, out, _ = await werkbrug(settings, "dlq", "list", "--service", "offer", "--json")
    assert code == 0 and str(env.id) in out
    assert env.data["bsn"] not in out, "the listing shows no personal data"
    code, out, _ = await werkbrug(settings, "trace", str(env.correlation_id))
    assert code == 0 and "dead letters" in out and "delivery_limit" in out, "the operator's view shows it too"

    # The body may hold personal data: only for staff with a confidentiality statement at the party (art 8).
    code, out, err = await werkbrug(settings, "--as", "ops.nostatement", "dlq", "show", str(env.id), "--body")
    assert code == 2 and "no_confidentiality_statement" in err and env.data["bsn"] not in out + err
    signed = await client.send("offer", RecordConfidentialityStatement(
        staff="ops.signed", signed_on=datetime.now(UTC).date(), actor="privacy.heliomare"))
    assert signed.ok, signed.reasons
    code, out, err = await werkbrug(settings, "--as", "ops.signed", "dlq", "show", str(env.id), "--body")
    assert code == 0 and env.data["bsn"] in out, err
    code, out, _ = await werkbrug(settings, "--as", "ops.nostatement", "dlq", "show", str(env.id))
    assert code == 0 and str(env.id) in out and env.data["bsn"] not in out, "without --body: headers and reasons"

    monkeypatch.setitem(handlers, ReferralRegistered, fixed)  # the fix is deployed
    code, out, err = await werkbrug(settings, "dlq", "replay", str(env.id))
    assert code == 0, err

    async def registered():
        return (await client.send("offer", GetReferral(referral_id=env.correlation_id))).ok

    await wait_for(registered, what="the replayed referral registered")
    assert not await parked(), "taken off the parking queue"
    code, _, _ = await werkbrug(settings, "dlq", "replay", str(env.id))
    assert code == 1, "nothing left to replay"

    # The sender's outbox could deliver it again too: still one case, and one accepted retour.
    await publish(amqp, settings, body, env.routing_key, str(env.id), str(env.correlation_id))
    await asyncio.sleep(1.0)  # time for a second effect to show, if there were one
    view = await client.send("offer", GetReferral(referral_id=env.correlation_id))
    assert view.ok and view.result["status"] == "registered"
    log = await client.send("offer", ReadProcessingLog(correlation_id=env.correlation_id))
    handled = [r for r in log.result if r["message_type"] == "referral.registered.v2"]
    assert [r["status"] for r in handled] == ["ok"], json.dumps(handled)[:300]
    assert uuid.UUID(handled[0]["message_id"]) == env.id


async def test_reading_a_parked_body_leaves_a_record_naming_the_reader_the_message_and_its_subject(
        services, client, amqp, settings):
    """`dlq show --body` (art 8): the statement check and the processing-log record are one query at the
    service whose parking queue holds the message; without a statement nothing is shown."""
    env = registered_envelope(settings, random.Random("dlq-read"), shoe_size=44)  # refused: an unknown field
    body = env.model_dump_json().encode()
    await publish(amqp, settings, body, env.routing_key, str(env.id), str(env.correlation_id))
    parking = ParkingQueues(settings, actor=TEST_CLIENT)  # its listing names who asks (art 8)

    async def parked():
        return [d for d in await parking.list("offer") if d.message_id == str(env.id) and d.recorded]

    await wait_for(parked, within=30, what="the refused message parked and recorded at offer")
    key = dead_letter_key(str(env.id), body)

    async def reads() -> list[dict]:
        code, out, err = await werkbrug(settings, "log", "--subject", env.subject, "--json")
        assert code in (0, 1), err
        return [r for r in (json.loads(out) if code == 0 else []) if r["message_id"] == f"dead-letter:{key}"]

    code, out, err = await werkbrug(settings, "--as", "ops.nostatement", "dlq", "show", str(env.id), "--body")
    assert code == 2 and "no_confidentiality_statement" in err and env.data["bsn"] not in out + err
    signed = await client.send("offer", RecordConfidentialityStatement(
        staff="ops.signed", signed_on=datetime.now(UTC).date(), actor="privacy.heliomare"))
    assert signed.ok, signed.reasons
    code, out, err = await werkbrug(settings, "--as", "ops.signed", "dlq", "show", str(env.id), "--body")
    assert code == 0 and env.data["bsn"] in out, err

    [read] = await reads()
    assert (read["actor"], read["service"], read["party"], read["subject"]) == (
        "ops.signed", "offer", "heliomare", env.subject)
    assert read["message_type"] == "query:record_dead_letter_read"
    assert read["correlation_id"] == str(env.correlation_id)
    log = (await client.send("offer", ReadProcessingLog(subject=env.subject))).result
    assert [r["actor"] for r in log if r["message_id"] == f"dead-letter:{key}"] == ["ops.signed"]
