"""No readable copy after a rectification or an erasure (issue 15, item 5), shown the way the privacy officer
looked: each service's database read directly, every encrypted part opened with every key the service still
holds (its master key and each data key it can unwrap), and the plain text and what opens searched for the
person's values.

- after a rectification no old value decrypts anywhere (outbox copies of sent messages, answers to an
  earlier access request, the contact point's packages);
- a withheld record keeps only the fields its ground requires (intake's referral under the Archiefwet);
- a later access request by an erased person makes nothing erased readable again, and copies nothing out of
  what the law keeps; a new referral after the erasure gets a new key and only its own data."""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from bson.binary import Binary
from cryptography.exceptions import InvalidTag
from pymongo import AsyncMongoClient

from dev.scenario import play_all
from shared.contracts.commands import Corrections
from shared.contracts.events import Right
from shared.privacy.crypto import unwrap
from shared.privacy.pseudonym import Pseudonymiser
from tests.integration.test_full_process import cases_for
from tests.integration.test_subject_rights import (
    DESK,  # noqa: F401  (the fixture below signs the desk's statement)
    HOLDERS,
    a_person_through_the_whole_process,
    desk_signed_a_confidentiality_statement,  # noqa: F401  (autouse fixture, shared)
    request_until_done,
)

pytestmark = pytest.mark.integration

EVERY_SERVICE = HOLDERS | {"subject_rights"}
KEPT_UNDER_THE_ARCHIEFWET = {"bsn", "given_name", "family_name", "date_of_birth"}


class Readable:
    """One document as whoever holds the service's keys can read it: its plain fields and every encrypted
    part that one of the keys opens."""

    def __init__(self, service: str, collection: str, doc: dict, opened: list[Any]) -> None:
        self.service, self.collection, self.doc, self.opened = service, collection, doc, opened
        self.text = json.dumps(_without_binaries(doc), default=str) + json.dumps(opened, default=str)

    @property
    def where(self) -> str:
        return f"{self.service}.{self.collection} {self.doc.get('_id')}"

    def shows(self, value: str) -> bool:
        return re.search(rf"(?<![\w@.-]){re.escape(value)}(?![\w@.-])", self.text, re.IGNORECASE) is not None


async def read_everything(services, mongodb_urls, settings) -> list[Readable]:
    found = []
    for service in sorted(EVERY_SERVICE):
        master = services[service].storage.cipher
        db = AsyncMongoClient(mongodb_urls[service], uuidRepresentation="standard")[settings.database_name(service)]
        try:
            keys = [master, *[unwrap(master, d["_id"], d["key"]) async for d in db.subject_keys.find({})]]
            for name in await db.list_collection_names():
                if name == "subject_keys":
                    continue  # the keys themselves (each opens only under its own id)
                async for doc in db[name].find({}):
                    opened = [plain for blob in _binaries(doc) if (plain := _open(blob, str(doc["_id"]), keys))]
                    found.append(Readable(service, name, doc, opened))
        finally:
            await db.client.close()
    return found


def about(readable: list[Readable], *marks: str) -> list[Readable]:
    """The documents that mention the person (their pseudonym, BSN or referral)."""
    return [r for r in readable if any(mark in r.text for mark in marks)]


def _open(blob: bytes, associated: str, keys) -> Any:
    for key in keys:
        with contextlib.suppress(InvalidTag, ValueError):  # not this key (or none opens it: shredded)
            return key.decrypt(blob, associated)
    return None


def _binaries(value: Any) -> Iterator[bytes]:
    if isinstance(value, Binary | bytes):
        yield bytes(value)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _binaries(v)
    elif isinstance(value, list):
        for v in value:
            yield from _binaries(v)


def _without_binaries(value: Any) -> Any:
    if isinstance(value, Binary | bytes):
        return "<encrypted>"
    if isinstance(value, dict):
        return {k: _without_binaries(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_binaries(v) for v in value]
    return value


def postal(code: str) -> str:
    return code.replace(" ", "").upper()


def subject_of(settings, bsn: str) -> str:
    return Pseudonymiser(settings.pseudonym_key.get_secret_value())(bsn)


def person_fields(readable: Readable) -> list[dict]:
    """The personal data (`person` of a referral) in what opened."""
    return [o["person"] for o in readable.opened if isinstance(o, dict) and isinstance(o.get("person"), dict)]


async def test_after_a_rectification_no_service_holds_a_readable_copy_of_the_old_values(
        services, client, settings, mongodb_urls):
    case = await a_person_through_the_whole_process(client, seed=71)
    person = case.command
    subject = subject_of(settings, person.bsn)
    # An access request first: every service's answer and the contact point's package copy the data as it was.
    await request_until_done(client, person.bsn, Right.ACCESS)
    first = Corrections(family_name="Tussenstand-Eerst")  # corrected once, then again: this one is old too
    await request_until_done(client, person.bsn, Right.RECTIFICATION, corrections=first)
    new = Corrections(family_name="Zonnebloem-Verbeterd", email="verbeterd.adres@example.org", postal_code="1699ZZ")
    assert postal(person.postal_code) != new.postal_code and person.family_name != new.family_name
    await request_until_done(client, person.bsn, Right.RECTIFICATION, corrections=new)

    readable = about(await read_everything(services, mongodb_urls, settings), subject, person.bsn, case.referral_id)
    old = [person.family_name, first.family_name, person.email, postal(person.postal_code)]
    leaks = [(r.where, value) for r in readable for value in old if value and r.shows(value)]
    assert leaks == [], "an old value still reads after the rectification"
    # The corrected values are what the records hold (it was not done by making everything unreadable).
    [referral] = [r for r in readable if r.service == "intake" and r.collection == "referrals"]
    [held] = person_fields(referral)
    assert (held["family_name"], held["email"], held["postal_code"]) == (
        new.family_name, new.email, new.postal_code)
    # What the delivery bookkeeping needs is still there: each message sent in the lifecycle and its retour.
    sent = [r.doc for r in readable if r.service == "intake" and r.collection == "outbox"
            and r.doc["type"] == "referral.registered"]
    assert sent and all(d["status"] == "sent" and d.get("retour", {}).get("status") == "accepted" for d in sent)


async def test_a_withheld_referral_keeps_only_the_fields_its_archive_ground_requires(
        services, client, settings, mongodb_urls):
    case = await a_person_through_the_whole_process(client, seed=72)
    person = case.command
    subject = subject_of(settings, person.bsn)
    done = await request_until_done(client, person.bsn, Right.ERASURE)

    readable = about(await read_everything(services, mongodb_urls, settings), subject, person.bsn, case.referral_id)
    [referral] = [r for r in readable if r.service == "intake" and r.collection == "referrals"]
    assert "_withheld" in referral.doc
    [kept] = person_fields(referral)
    assert {k for k, v in kept.items() if v is not None} == KEPT_UNDER_THE_ARCHIEFWET
    assert kept["bsn"] == person.bsn  # what the ground needs is still readable
    gone = [person.phone, person.email, postal(person.postal_code)]
    leaks = [(r.where, value) for r in readable for value in gone if value and r.shows(value)]
    assert leaks == [], "a field the ground does not need is still readable"
    # The replies to commands about her (the referral's view) are no longer kept in any inbox.
    replies = [r.where for r in readable if r.collection == "inbox" and (r.doc.get("result") or {}).get("result")]
    assert replies == []
    [record] = done["answers"]["intake"]["records"]
    assert record["status"] == "withheld" and "Archiefwet" in record["ground"]
    assert "Kept:" in record["ground"]  # the person is told what stays


async def test_a_later_access_request_by_an_erased_person_makes_nothing_of_her_readable_again(
        services, client, settings, mongodb_urls):
    case = await a_person_through_the_whole_process(client, seed=73)
    person = case.command
    subject = subject_of(settings, person.bsn)
    await request_until_done(client, person.bsn, Right.ERASURE)

    later = await request_until_done(client, person.bsn, Right.ACCESS)

    readable = about(await read_everything(services, mongodb_urls, settings), subject, person.bsn, case.referral_id)
    values = [person.bsn, person.given_name, person.family_name, person.phone, person.email,
              postal(person.postal_code)]
    outside = [(r.where, value) for r in readable if "_withheld" not in r.doc
               for value in values if value and r.shows(value)]
    assert outside == [], "the later request made erased data readable again"
    kept = [f for r in readable if "_withheld" in r.doc for f in person_fields(r)]
    assert kept and all({k for k, v in f.items() if v is not None} <= KEPT_UNDER_THE_ARCHIEFWET for f in kept)
    # The answer says what is kept, on which ground and until when, without copying it out.
    [withheld] = later["answers"]["intake"]["records"]
    assert withheld["status"] == "withheld" and withheld["data"] is None and "Archiefwet" in withheld["ground"]
    assert later["answers"]["offer"]["outcome"] == "nothing_held"


async def test_a_new_referral_after_an_erasure_gets_a_new_key_that_opens_only_its_own_data(
        services, client, settings, mongodb_urls):
    [first] = await play_all(client, cases_for([("approve", "both", "paid_work")], seed=74), seed=74)
    person = first.command
    subject = subject_of(settings, person.bsn)
    await request_until_done(client, person.bsn, Right.ERASURE)
    before = {k["_id"] for k in await _keys_of(mongodb_urls, settings, "intake", subject)}

    again = person.model_copy(update={"command_id": uuid.uuid4(), "phone": "0612345670",
                                      "email": "nieuw.begin@example.org"})
    reply = await client.send("intake", again)
    assert reply.ok, reply.reasons
    after = {k["_id"] for k in await _keys_of(mongodb_urls, settings, "intake", subject)}
    assert after - before, "the new lifecycle has a key of its own"

    readable = about(await read_everything(services, mongodb_urls, settings), subject, person.bsn)
    old = [r for r in readable if r.service == "intake" and r.collection == "outbox"
           and r.doc["correlation_id"] == first.referral_id and r.doc["type"] == "referral.registered"]
    assert old and all(not r.opened for r in old), "the erased lifecycle's copy opens with the new key"
    # They name a key that is gone for good (not one of the same id made again), so the service itself sees them
    # as unreadable: what it lists as readable on her is the withheld record and the new lifecycle only.
    assert not {r.doc["key"] for r in old} & after
    async with services["intake"].storage.unit_of_work() as uow:
        listed = await uow.readable_about(subject)
    assert not {f"outbox/{r.doc['_id']}" for r in old} & set(listed)
    assert f"referrals/{first.referral_id}" in listed and f"referrals/{reply.result['referral_id']}" in listed
    erased = [v for v in (person.phone, person.email) if v]  # (the new referral gave new ones)
    assert not [r.where for r in readable for v in erased if r.shows(v)]
    new = [r for r in readable if r.service == "intake" and r.collection == "referrals"
           and r.doc["_id"] == reply.result["referral_id"]]
    assert [f["email"] for r in new for f in person_fields(r)] == ["nieuw.begin@example.org"]


async def _keys_of(mongodb_urls, settings, service: str, subject: str) -> list[dict]:
    db = AsyncMongoClient(mongodb_urls[service], uuidRepresentation="standard")[settings.database_name(service)]
    try:
        return await db.subject_keys.find({"_id": {"$regex": f"^{re.escape(subject)}"}}, {"_id": 1}).to_list()
    finally:
        await db.client.close()
