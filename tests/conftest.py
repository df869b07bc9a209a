"""Test fixtures: the real RabbitMQ, the embedded MongoDB (or MONGODB_URL), a namespace per run."""

from __future__ import annotations

import contextlib
import os
import uuid
from datetime import date

import aio_pika
import pytest

from infra.services import DEFINITIONS
from shared.config import Settings
from shared.storage.embedded import embedded_mongodb


def _staff_registers_for_the_tests() -> str:
    """Every party's staff register for this run, in a directory of its own, named by WERKBRUG_STAFF_DIR for
    everything the tests start (services in this process, the CLI and services as processes)."""
    import atexit
    import shutil
    import tempfile
    from pathlib import Path

    from shared.staff import write_register
    from tests.staff import TEST_STAFF

    directory = tempfile.mkdtemp(prefix="werkbrug-staff-")
    atexit.register(shutil.rmtree, directory, True)
    for party, register in TEST_STAFF.items():
        write_register(Path(directory) / f"{party.value}.json", register)
    return directory


os.environ["WERKBRUG_STAFF_DIR"] = _staff_registers_for_the_tests()


@pytest.fixture(scope="session")
def mongodb_urls() -> dict[str, str]:
    """One database server per service: MONGODB_URL for all of them, or an embedded server each.

    Each service gets its own embedded server because the embedded engine loses committed writes when
    transactions on different databases of one server interleave; a service serialises its own.
    """
    if os.environ.get("MONGODB_URL"):
        yield dict.fromkeys(DEFINITIONS, os.environ["MONGODB_URL"])
        return
    with contextlib.ExitStack() as stack:
        yield {name: stack.enter_context(embedded_mongodb()) for name in DEFINITIONS}


@pytest.fixture(scope="session")
def mongodb_url(mongodb_urls) -> str:
    return next(iter(mongodb_urls.values()))


@pytest.fixture(scope="session")
def namespace() -> str:
    return f"wbt-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def settings(namespace, mongodb_url) -> Settings:
    return Settings(
        WERKBRUG_NAMESPACE=namespace,
        MONGODB_URL=mongodb_url,
        WERKBRUG_RELAY_INTERVAL=0.05,
        WERKBRUG_SPAN_FILE=None,
        WERKBRUG_REPORT_TODAY=date(2033, 3, 1),  # the report's rules see every year the tests publish as closed
    )


@pytest.fixture(scope="session")
def broker_identities(settings):
    """The run's own vhost with every party's broker user and permissions; on teardown the vhost goes,
    and with it every exchange, queue and permission this run created (the users are shared, like guest)."""
    from infra.identities import deprovision, provision

    provision(settings)
    yield settings
    deprovision(settings)


@pytest.fixture(scope="session")
async def amqp(settings, broker_identities):
    """A raw aio-pika connection as the operator (werkbrug-admin, who may set any user_id), for what a
    test does behind the services' backs."""
    connection = await aio_pika.connect_robust(settings.broker_url())
    yield connection
    await connection.close()


@pytest.fixture(scope="session")
def span_exporter():
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    return InMemorySpanExporter()


@pytest.fixture(scope="session")
async def services(settings, mongodb_urls, amqp, span_exporter):
    """intake and offer running in this process against the real broker and database."""
    from tests.harness import start_in_process

    running = await start_in_process(settings, mongodb_urls, span_exporters=[span_exporter])
    await _test_client_signed(settings)
    yield running
    await running.stop()


async def _test_client_signed(settings) -> None:
    """The tests' own client reads referral-level detail (ReferralView.detail) under a confidentiality statement
    at every service (art 8), recorded by another member of the party, as the party's privacy officer would.
    The staff the tests name have none unless a test records one."""
    from datetime import UTC, datetime

    from shared.client import CommandClient
    from shared.contracts.commands import RecordConfidentialityStatement
    from tests.staff import TEST_CLIENT, TEST_STAFF

    async with CommandClient(settings, actors=TEST_STAFF) as c:
        for name, make in DEFINITIONS.items():
            officer = {"werksaam": "privacy.werksaam", "heliomare": "privacy.heliomare"}[make().party.value]
            signed = await c.send(name, RecordConfidentialityStatement(
                staff=TEST_CLIENT, signed_on=datetime.now(UTC).date(), actor=officer))
            assert signed.ok, (name, signed.reasons)


@pytest.fixture
async def client(settings):
    from shared.client import CommandClient
    from tests.staff import TEST_STAFF

    # Commands the tests send without an actor are given by a member of the party's staff whose role may.
    async with CommandClient(settings, actors=TEST_STAFF) as c:
        yield c
