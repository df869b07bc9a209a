"""Services as separate processes, killed (SIGKILL) mid-stream and restarted: nothing is lost, nothing
happens twice. The broker keeps what was not acked; the outbox keeps what was not yet published; the
inbox drops what is delivered again."""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid

import aio_pika
import pytest

from infra.identities import deprovision, provision
from infra.processes import ServiceProcess
from infra.services import DEFINITIONS
from shared.client import CommandClient
from shared.contracts.commands import GetReferral, ListReferrals
from shared.messaging.topology import Topology
from shared.storage.embedded import embedded_mongodb
from tests.harness import queue_depth, wait_for
from tests.integration.test_flow import a_referral
from tests.staff import TEST_STAFF

pytestmark = pytest.mark.integration

REFERRALS = 30


@pytest.fixture
async def cluster(tmp_path, settings):
    """intake and offer as processes, each on its own embedded database, in a namespace of their own."""
    ns = f"wbk-{uuid.uuid4().hex[:8]}"
    own = settings.model_copy(update={"namespace": ns})
    topology = Topology(ns, own.delivery_limit)
    provision(own)
    with contextlib.ExitStack() as stack:
        urls = {name: settings.mongodb_url if _shared_db() else stack.enter_context(embedded_mongodb())
                for name in DEFINITIONS}
        procs = {name: ServiceProcess(name, own, urls[name], tmp_path) for name in DEFINITIONS}
        for p in procs.values():
            p.start()
        try:
            for p in procs.values():
                await p.wait_healthy()
            yield own, procs, topology
        finally:
            for p in procs.values():
                p.stop()
            deprovision(own)


def _shared_db() -> bool:
    import os

    return bool(os.environ.get("MONGODB_URL"))


async def test_killed_services_lose_nothing_and_do_nothing_twice(cluster):
    settings, procs, topology = cluster
    rng = random.Random(99)
    async with CommandClient(settings, timeout=60, actors=TEST_STAFF) as client:
        # Heliomare's service dies while the referrals are on their way to it...
        procs["offer"].kill()
        submitted = []
        for i in range(REFERRALS):
            result = await client.send("intake", a_referral(rng))
            assert result.ok, result.reasons
            submitted.append(result.result["referral_id"])
            if i == REFERRALS // 2:
                procs["intake"].kill()  # ...and WerkSaam's dies mid-stream too, with events in its outbox
                procs["intake"].start()
                await procs["intake"].wait_healthy()
        procs["offer"].start()
        await procs["offer"].wait_healthy()
        await asyncio.sleep(0.5)
        procs["offer"].kill()  # and once more while it works through the backlog
        procs["offer"].start()
        await procs["offer"].wait_healthy()

        async def all_registered():
            cases = (await client.send("offer", ListReferrals(limit=1000))).result
            return cases if len(cases) >= REFERRALS else None

        cases = await wait_for(all_registered, within=90, what="every referral registered at Heliomare")
        ids = [c["referral_id"] for c in cases]
        assert sorted(ids) == sorted(submitted), "every referral arrived"
        assert len(ids) == len(set(ids)), "none arrived twice"

        async def all_answered():
            for rid in submitted:
                view = (await client.send("intake", GetReferral(referral_id=uuid.UUID(rid)))).result
                answered = [d for d in view["deliveries"] if d["retour"]]
                if len(answered) != 1 or answered[0]["retour"]["status"] != "accepted":
                    return False
            return True

        await wait_for(all_answered, within=90, what="a retour for every referral sent")

    connection = await aio_pika.connect_robust(settings.broker_url())
    async with connection:
        for name in DEFINITIONS:
            assert await queue_depth(connection, topology.parking_queue(name).name) == 0, f"{name} dead-lettered"


async def test_sigterm_stops_a_service_gracefully_and_it_resumes_where_it_stopped(cluster):
    settings, procs, _ = cluster
    rng = random.Random(77)
    offer = procs["offer"]
    async with CommandClient(settings, timeout=60, actors=TEST_STAFF) as client:
        submitted = []
        for i in range(12):
            result = await client.send("intake", a_referral(rng))
            submitted.append(result.result["referral_id"])
            if i == 4:
                offer.stop()  # SIGTERM while registrations are arriving
        # uvicorn re-raises the signal after its shutdown, so the exit status is SIGTERM's; the log tells
        # that the consumers stopped and in-flight handlers finished (FastStream's graceful timeout).
        log = offer.log_path.read_text()
        assert "FastStream app shut down gracefully" in log
        assert "Traceback" not in log
        offer.start()
        await offer.wait_healthy()

        async def all_registered():
            cases = (await client.send("offer", ListReferrals(limit=1000))).result
            return cases if len(cases) >= len(submitted) else None

        cases = await wait_for(all_registered, within=60, what="every referral registered after the restart")
        assert sorted(c["referral_id"] for c in cases) == sorted(submitted)
