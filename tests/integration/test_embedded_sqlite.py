"""The embedded database on mongoeco's SQLite engine (what the chaos run kills and restarts): committed
writes survive SIGKILL, and the outbox relay, which reads outside a unit of work, waits for an open
transaction instead of failing (the engine refuses another session's operations while one is open)."""

from __future__ import annotations

import asyncio
import signal
import uuid
from datetime import UTC, datetime

import pytest

from services.intake.bootstrap import definition as intake
from shared.config import Settings
from shared.contracts.parties import Party
from shared.messaging.relay import OutboxRelay
from shared.privacy.crypto import FieldCipher
from shared.storage.embedded import free_port, start_embedded, url_for
from shared.storage.mongo import MongoStorage, connect
from tests.unit.builders import a_referral_registered, an_envelope

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sqlite_server(tmp_path_factory):
    """One server for this module's tests (each uses a database of its own); restartable after a kill."""
    port, path = free_port(), str(tmp_path_factory.mktemp("sqlite") / "db.sqlite")
    procs = [start_embedded(port, engine="sqlite", path=path)]

    def restart_after_kill():
        procs[-1].send_signal(signal.SIGKILL)
        procs[-1].wait(timeout=10)
        procs.append(start_embedded(port, engine="sqlite", path=path))

    yield url_for(port), restart_after_kill
    procs[-1].terminate()
    procs[-1].wait(timeout=10)


async def storage_on(url: str, name: str) -> MongoStorage:
    settings = Settings()
    d = intake(settings)
    storage = MongoStorage(connect(url, 3000), name, d.party, d.repositories,
                           FieldCipher(settings.field_key.get_secret_value()))
    await storage.detect_server()
    await storage.ensure_schema()
    return storage


async def test_committed_writes_survive_a_killed_sqlite_database_server(sqlite_server):
    url, restart_after_kill = sqlite_server
    storage = await storage_on(url, "survives")
    ids = [str(uuid.uuid4()) for _ in range(5)]
    for message_id in ids:
        async with storage.client.start_session() as session, await session.start_transaction():
            await storage.db.inbox.insert_one({"_id": message_id, "at": datetime.now(UTC)}, session=session)
    await storage.client.close()
    restart_after_kill()
    storage = await storage_on(url, "survives")
    found = await storage.db.inbox.count_documents({"_id": {"$in": ids}})
    await storage.client.close()
    assert found == len(ids)


async def test_the_relay_waits_for_an_open_transaction_on_the_sqlite_engine(sqlite_server):
    url, _ = sqlite_server
    storage = await storage_on(url, "relay")
    envelope = an_envelope(a_referral_registered(), Party.WERKSAAM, subject="psn_" + "a" * 26)
    await storage.db.outbox.insert_one({
        "_id": str(envelope.id), "type": envelope.type, "version": envelope.version,
        "routing_key": envelope.routing_key, "correlation_id": str(envelope.correlation_id),
        "payload": storage.cipher.encrypt(envelope.model_dump(mode="json"), str(envelope.id)), "trace": {},
        "status": "pending", "attempts": 0, "created_at": datetime.now(UTC), "next_attempt_at": datetime.now(UTC)})
    published = []

    async def publish(env):
        published.append(env.id)

    relay = OutboxRelay(storage, publish, 0.05, "intake")
    async with storage.unit_of_work() as uow:  # a handler's transaction is open...
        await storage.db.lifecycles.insert_one({"_id": str(uuid.uuid4())}, session=uow._session)
        relaying = asyncio.create_task(relay.relay_once())  # ...while the relay polls
        await asyncio.sleep(0.2)
        await uow._session.commit_transaction()
    assert await relaying == 1
    assert published == [envelope.id]
    await storage.client.close()


CLIENT_DIES_IN_A_TRANSACTION = """
import asyncio, sys
from pymongo import AsyncMongoClient

async def main():
    client = AsyncMongoClient(sys.argv[1])
    async with client.start_session() as session:
        await session.start_transaction()
        await client.killed_client.inbox.insert_one({"_id": "half-done"}, session=session)
        print("open", flush=True)
        await asyncio.sleep(600)

asyncio.run(main())
"""


async def test_a_client_killed_inside_a_transaction_does_not_block_the_database(sqlite_server):
    import sys

    url, _ = sqlite_server
    storage = await storage_on(url, "killed_client")
    client = await asyncio.create_subprocess_exec(sys.executable, "-c", CLIENT_DIES_IN_A_TRANSACTION, url,
                                                  stdout=asyncio.subprocess.PIPE)
    assert client.stdout is not None
    assert (await client.stdout.readline()).strip() == b"open"
    client.send_signal(signal.SIGKILL)
    await client.wait()
    await asyncio.sleep(0.5)
    async with storage.unit_of_work() as uow:  # another service's (or the restarted one's) transaction
        await storage.db.inbox.insert_one({"_id": "next"}, session=uow._session)
        await uow._session.commit_transaction()
    assert await storage.db.inbox.count_documents({}) == 1, "the killed client's write was rolled back"
    await storage.client.close()
