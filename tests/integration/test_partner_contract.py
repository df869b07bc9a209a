"""A partner builds a consumer from the published contract alone (docs/asyncapi/werkbrug.json) with plain
aio-pika and a JSON Schema validator, and every event the scenario emits validates against it.

Nothing from werkbrug's code is imported for the consumer side: the routing keys, the exchange and the
message schemas all come from the document.
"""

from __future__ import annotations

import asyncio
import collections
import json
import random
from pathlib import Path

import aio_pika
import pytest
from jsonschema import Draft202012Validator, FormatChecker

from dev.scenario import play_all, synthetic_cases

pytestmark = pytest.mark.integration

CONTRACT = Path(__file__).resolve().parents[2] / "docs" / "asyncapi" / "werkbrug.json"


def contract_schemas() -> tuple[dict[str, Draft202012Validator], str]:
    """Routing key → validator of its message, and the events exchange, read from the AsyncAPI document."""
    doc = json.loads(CONTRACT.read_text())
    validators: dict[str, Draft202012Validator] = {}
    exchanges = set()
    for operation in doc["operations"].values():
        if operation["action"] != "send":
            continue
        channel = doc["channels"][operation["channel"]["$ref"].rsplit("/", 1)[1]]
        exchanges.add(channel["bindings"]["amqp"]["exchange"]["name"])
        for ref in channel["messages"].values():
            message = doc["components"]["messages"][ref["$ref"].rsplit("/", 1)[1]]
            schema = {"$ref": message["payload"]["$ref"], "components": doc["components"]}
            validators[channel["address"]] = Draft202012Validator(schema, format_checker=FormatChecker())
    (exchange,) = exchanges
    return validators, exchange


async def test_a_consumer_built_from_the_contract_alone_validates_every_event_the_scenario_emits(
        services, client, amqp, settings):
    validators, documented_exchange = contract_schemas()
    assert documented_exchange == "werkbrug.events"
    exchange = documented_exchange.replace("werkbrug.", f"{settings.namespace}.", 1)  # this test's namespace

    channel = await amqp.channel()
    queue = await channel.declare_queue(exclusive=True, auto_delete=True)
    for routing_key in validators:
        await queue.bind(exchange, routing_key)
    seen: collections.Counter = collections.Counter()
    invalid: list[tuple[str, str]] = []

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        async with message.process():
            body = json.loads(message.body)
            errors = sorted(validators[message.routing_key].iter_errors(body), key=str)
            if errors:
                invalid.append((message.routing_key, errors[0].message[:200]))
            assert message.message_id == body["id"], "the AMQP message id is the event id (dedupe on it)"
            seen[message.routing_key] += 1

    tag = await queue.consume(on_message)
    cases = synthetic_cases(random.Random(11), 8)
    cases[1].plan = "reject_then_approve"
    cases = await play_all(client, cases, seed=11)
    await asyncio.sleep(1.0)  # the last retours
    await queue.cancel(tag)
    await channel.close()

    assert not invalid, invalid
    expected = {"werksaam.heliomare.referral.registered.v2", "heliomare.werksaam.referral.accepted.v2",
                "heliomare.werksaam.referral.declined.v2", "heliomare.werksaam.quote.sent.v2",
                "werksaam.heliomare.quote.approved.v2", "werksaam.heliomare.quote.rejected.v2",
                "heliomare.werksaam.retour.referral-registered.v2", "werksaam.heliomare.retour.quote-sent.v2"}
    assert expected <= set(seen), sorted(expected - set(seen))
    assert sum(seen.values()) >= 30
