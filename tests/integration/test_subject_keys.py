"""Subject keys and outbox copies in the real (embedded) database, without the broker: a destroyed key is never
made again, and a rectification leaves no readable copy of the old values in the outbox."""

from __future__ import annotations

import uuid

import pytest

from services.intake.bootstrap import definition as intake
from services.intake.domain import Referral
from shared.config import Settings
from shared.domain import Outgoing
from shared.privacy.crypto import FieldCipher, live_key_id
from shared.storage.embedded import embedded_mongodb
from shared.storage.mongo import MongoStorage, connect
from tests.unit.builders import a_referral_registered, a_submit_referral, pseudonymise

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server():
    with embedded_mongodb() as url:
        yield url


@pytest.fixture
async def storage(server):
    settings = Settings()
    d = intake(settings)
    storage = MongoStorage(connect(server, 3000), f"keys_{uuid.uuid4().hex[:8]}", d.party, d.repositories,
                           FieldCipher(settings.field_key.get_secret_value()))
    await storage.detect_server()
    await storage.ensure_schema()
    yield storage
    await storage.client.close()


async def a_referral(storage: MongoStorage, **overrides) -> Referral:
    async with storage.unit_of_work() as uow:
        referral = Referral.submit(a_submit_referral(**overrides), pseudonymise)
        uow.referrals.add(referral)
        await uow.commit()
    return referral


async def test_an_erased_subjects_key_is_never_made_again_and_what_comes_later_gets_a_key_of_its_own(storage):
    first = await a_referral(storage)
    subject = first.subject
    async with storage.unit_of_work() as uow:
        await uow.erase_record("referrals", await uow.referrals.get(first.id))
        await uow.shred_subject(subject)
        await uow.commit()

    second = await a_referral(storage, email="nieuw@example.org")

    db = storage.db
    keys = {d["_id"] for d in await db.subject_keys.find({}).to_list()}
    [old_copy] = await db.outbox.find({"correlation_id": str(first.id)}).to_list()
    assert old_copy["key"] == live_key_id(subject) and old_copy["key"] not in keys  # gone, not made again
    assert (await db.referrals.find_one({"_id": str(second.id)}))["_key"] == live_key_id(subject, 1) in keys
    [new_copy] = await db.outbox.find({"correlation_id": str(second.id)}).to_list()
    async with storage.unit_of_work() as uow:
        assert sorted(await uow.readable_about(subject)) == sorted([f"referrals/{second.id}",
                                                                    f"outbox/{new_copy['_id']}"])
        assert (await uow.referrals.get(second.id)).person.email == "nieuw@example.org"


async def test_a_rectification_leaves_a_sent_copy_only_its_delivery_record_and_corrects_a_waiting_one(storage):
    referral = await a_referral(storage)
    db = storage.db
    [sent] = await db.outbox.find({"correlation_id": str(referral.id)}).to_list()
    await db.outbox.update_one({"_id": sent["_id"]}, {"$set": {"status": "sent", "retour": {"status": "accepted"}}})
    async with storage.unit_of_work() as uow:  # another message about her, not yet sent
        uow.emit(Outgoing(a_referral_registered(referral.id, family_name=referral.person.family_name),
                          subject=referral.subject, correlation_id=referral.id, to="heliomare"))
        await uow.commit()

    async with storage.unit_of_work() as uow:
        dropped = await uow.rectify_copies(referral.subject, {"family_name": "Jansen"})
        await uow.commit()

    assert dropped == 1
    after = {d["_id"]: d for d in await db.outbox.find({"correlation_id": str(referral.id)}).to_list()}
    assert "payload" not in after[sent["_id"]]
    assert {k: after[sent["_id"]][k] for k in ("type", "routing_key", "status", "retour")} == {
        "type": "referral.registered", "routing_key": sent["routing_key"], "status": "sent",
        "retour": {"status": "accepted"}}
    [waiting] = [d for i, d in after.items() if i != sent["_id"]]
    cipher = await storage.keys.cipher(waiting["key"])
    assert cipher.decrypt(waiting["payload"], waiting["_id"])["data"]["family_name"] == "Jansen"
    async with storage.unit_of_work() as uow:
        deliveries = await uow.deliveries(referral.id)
    assert [(d["event_id"], d["status"]) for d in deliveries] == [(sent["_id"], "sent"), (waiting["_id"], "pending")]
