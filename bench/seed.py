"""Seed every service's database with many data subjects in bulk, for the subject-requests stage.

How. A few people are first taken through the real services by the demo's scenario code (referral,
acceptance or refusal, quotes, trajectory, invoices: `dev.scenario`), so that every document about
them is one the services wrote themselves: aggregates, outbox records, processing-log records, inbox
records, lifecycle traces and data keys. Those people are the templates (`capture`). Each seeded subject
is then a copy of one template person (`Cloner`) with
- a new synthetic BSN and the pseudonym the services derive from it (the same key, `WERKBRUG_PSEUDONYM_KEY`);
- new ids wherever the template has a UUID, mapped consistently across the services (one referral's id
  is the same in intake, offer, trajectory and billing, as in the template);
- a new data key of its own in every service, wrapped by that service's master key, and every encrypted
  part (an aggregate's `_enc`, an outbox record's `payload`) decrypted with the template's key, rewritten
  and encrypted again with the new key, bound to its new id (`shared.privacy.crypto`, the functions the
  services use).
Nothing is built by hand, so the documents have the shape, size and count per person of what the services
write, and the stage follows the domain when it changes.

The copies are written with `insert_many` straight to MongoDB, or, for the embedded server, as a dump
(`<database>/<collection>.bson`) that the server inserts in-process before it listens (`--load`): over the
wire mongoeco inserts a few hundred documents a second, slowing as a collection grows.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bson
from pymongo import AsyncMongoClient

from shared.config import Settings
from shared.ids import uuid7
from shared.privacy.crypto import MASTER, FieldCipher, new_data_key, unwrap, wrap
from shared.privacy.pseudonym import Pseudonymiser

HOLDERS = ("intake", "offer", "trajectory", "billing")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

Documents = dict[str, list[dict[str, Any]]]  # collection -> documents


@dataclass
class Template:
    """Everything the services hold about one person, by service and collection."""

    bsn: str
    subject: str
    docs: dict[str, Documents] = field(default_factory=dict)

    def count(self) -> int:
        return sum(len(d) for by_coll in self.docs.values() for d in by_coll.values())


async def capture(settings: Settings, urls: dict[str, str], people: Iterable[tuple[str, str]]) -> list[Template]:
    """The documents each of `people` (bsn, pseudonym) has in each holder's database."""
    from infra.services import DEFINITIONS

    templates = [Template(bsn, subject) for bsn, subject in people]
    for service in HOLDERS:
        specs = [s for s in DEFINITIONS[service](settings).repositories if s.about_subjects]
        client = AsyncMongoClient(urls[service], tz_aware=True)
        db = client[settings.database_name(service)]
        try:
            for t in templates:
                docs: Documents = {}
                for spec in specs:
                    docs[spec.name] = await db[spec.name].find({"subject": t.subject}).to_list()
                docs["processing_log"] = await db.processing_log.find({"subject": t.subject}).to_list()
                lifecycles = {d["correlation_id"] for d in docs["processing_log"] if d.get("correlation_id")}
                messages = {d["message_id"] for d in docs["processing_log"] if d.get("message_id")}
                # Its outbox: messages about the person, and the retours and answers of its lifecycles.
                theirs = {"subject": None, "correlation_id": {"$in": sorted(lifecycles)}}
                docs["outbox"] = await db.outbox.find({"$or": [{"subject": t.subject}, theirs]}).to_list()
                docs["inbox"] = await db.inbox.find({"_id": {"$in": sorted(messages)}}).to_list()
                docs["lifecycles"] = await db.lifecycles.find({"_id": {"$in": sorted(lifecycles)}}).to_list()
                docs["subject_keys"] = await db.subject_keys.find({"_id": {"$regex": f"^{t.subject}"}}).to_list()
                t.docs[service] = {name: found for name, found in docs.items() if found}
        finally:
            await client.close()
    return [t for t in templates if any(t.docs.values())]


class Cloner:
    """Copies of a template person as another person (see the module docstring)."""

    def __init__(self, settings: Settings) -> None:
        self.master = FieldCipher(settings.field_key.get_secret_value())
        self.pseudonymise = Pseudonymiser(settings.pseudonym_key.get_secret_value())

    def clone(self, template: Template, bsn: str) -> tuple[str, dict[str, Documents]]:
        """(the new subject's pseudonym, its documents by service and collection)."""
        subject = self.pseudonymise(bsn)
        ids: dict[str, str] = {}

        def new_id(match: re.Match) -> str:
            old = match.group(0)
            if old not in ids:
                ids[old] = str(uuid7())
            return ids[old]

        def text(value: str) -> str:
            if value == template.bsn:
                return bsn
            return UUID.sub(new_id, value.replace(template.subject, subject))

        def walk(value: Any) -> Any:
            if isinstance(value, dict):
                return {k: walk(v) for k, v in value.items()}
            if isinstance(value, list):
                return [walk(v) for v in value]
            if isinstance(value, str):
                return text(value)
            return value

        out: dict[str, Documents] = {}
        for service, by_coll in template.docs.items():
            old_keys = {MASTER: self.master}
            new_keys = {MASTER: self.master}
            key_docs = []
            for doc in by_coll.get("subject_keys", []):
                old_keys[doc["_id"]] = unwrap(self.master, doc["_id"], doc["key"])
                key_id, key = text(doc["_id"]), new_data_key()
                new_keys[key_id] = FieldCipher(key)
                key_docs.append({**doc, "_id": key_id, "key": wrap(self.master, key_id, key)})

            def reencrypt(doc: dict[str, Any], blob_field: str, key_field: str, old_keys: dict[str, FieldCipher],
                          new_keys: dict[str, FieldCipher]) -> dict[str, Any]:
                new = walk({k: v for k, v in doc.items() if k != blob_field})
                if blob_field in doc:
                    old_key = doc.get(key_field) or template.subject
                    plain = old_keys[old_key].decrypt(doc[blob_field], doc["_id"])
                    new[blob_field] = new_keys[text(old_key)].encrypt(walk(plain), new["_id"])
                return new

            copies: Documents = {}
            for name, docs in by_coll.items():
                if name == "subject_keys":
                    copies[name] = key_docs
                elif name == "outbox":
                    copies[name] = [reencrypt(d, "payload", "key", old_keys, new_keys) for d in docs]
                else:
                    copies[name] = [reencrypt(d, "_enc", "_key", old_keys, new_keys) for d in docs]
            out[service] = copies
        return subject, out


class Batch:
    """Documents for many subjects, gathered per database and collection, then written in bulk."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.docs: dict[str, Documents] = defaultdict(lambda: defaultdict(list))

    def add(self, by_service: dict[str, Documents]) -> None:
        for service, by_coll in by_service.items():
            for name, docs in by_coll.items():
                self.docs[service][name].extend(docs)

    def counts(self) -> dict[str, dict[str, int]]:
        return {s: {c: len(d) for c, d in by_coll.items()} for s, by_coll in self.docs.items()}

    def write_dump(self, directory: Path, service: str) -> Path:
        """`directory/<service>/<database>/<collection>.bson`, for the embedded server's `--load`."""
        root = directory / service
        db_dir = root / self.settings.database_name(service)
        db_dir.mkdir(parents=True, exist_ok=True)
        for name, docs in self.docs[service].items():
            (db_dir / f"{name}.bson").write_bytes(b"".join(bson.encode(d) for d in docs))
        return root

    async def insert(self, url: str, service: str, chunk: int = 2000) -> None:
        """insert_many into a real MongoDB, `chunk` documents a command."""
        client = AsyncMongoClient(url, tz_aware=True)
        try:
            db = client[self.settings.database_name(service)]
            for name, docs in self.docs[service].items():
                for i in range(0, len(docs), chunk):
                    await db[name].insert_many(docs[i:i + chunk], ordered=False)
        finally:
            await client.close()


def new_bsns(rng, count: int, taken: set[str]) -> list[str]:
    """`count` distinct synthetic BSNs (valid by the 11-test) not in `taken`."""
    from shared.privacy.bsn import synthetic_bsn

    out: list[str] = []
    seen = set(taken)
    while len(out) < count:
        bsn = synthetic_bsn(rng)
        if bsn not in seen:
            seen.add(bsn)
            out.append(bsn)
    return out

