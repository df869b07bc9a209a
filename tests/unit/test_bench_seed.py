"""The benchmark's seeding: a template person's documents copied as another person, with keys of their own."""

from __future__ import annotations

import json
import uuid

import pytest
from cryptography.exceptions import InvalidTag

from bench.seed import Cloner, Template
from shared.config import Settings
from shared.privacy.crypto import FieldCipher, new_data_key, unwrap, wrap
from shared.privacy.pseudonym import Pseudonymiser
from tests.unit.builders import FIELD_KEY, OTHER_VALID_BSN, PSEUDONYM_KEY, VALID_BSN


@pytest.fixture
def settings() -> Settings:
    return Settings(WERKBRUG_FIELD_KEY=FIELD_KEY, WERKBRUG_PSEUDONYM_KEY=PSEUDONYM_KEY)


def a_template(settings: Settings) -> Template:
    master = FieldCipher(settings.field_key.get_secret_value())
    subject = Pseudonymiser(PSEUDONYM_KEY)(VALID_BSN)
    referral, event = str(uuid.uuid4()), str(uuid.uuid4())
    docs = {}
    for service in ("intake", "offer"):
        key = new_data_key()
        record = str(uuid.uuid4())
        docs[service] = {
            "subject_keys": [{"_id": subject, "key": wrap(master, subject, key)}],
            "referrals": [{"_id": record, "subject": subject, "referral_id": referral, "_key": subject,
                           "_enc": FieldCipher(key).encrypt({"bsn": VALID_BSN, "referral": referral}, record)}],
            "outbox": [{"_id": event, "subject": subject, "key": subject, "correlation_id": referral,
                        "payload": FieldCipher(key).encrypt({"id": event, "subject": subject}, event)}],
            "processing_log": [{"_id": str(uuid.uuid4()), "subject": subject, "correlation_id": referral,
                                "message_id": event}],
        }
    return Template(VALID_BSN, subject, docs)


def test_a_copy_is_another_person_under_keys_of_their_own(settings):
    template = a_template(settings)
    subject, copy = Cloner(settings).clone(template, OTHER_VALID_BSN)

    assert subject == Pseudonymiser(PSEUDONYM_KEY)(OTHER_VALID_BSN)
    master = FieldCipher(settings.field_key.get_secret_value())
    for service, docs in copy.items():
        [key] = docs["subject_keys"]
        assert key["_id"] == subject
        cipher = unwrap(master, subject, key["key"])
        [record] = docs["referrals"]
        plain = cipher.decrypt(record["_enc"], record["_id"])
        assert plain == {"bsn": OTHER_VALID_BSN, "referral": record["referral_id"]}
        [message] = docs["outbox"]
        assert cipher.decrypt(message["payload"], message["_id"]) == {"id": message["_id"], "subject": subject}
        old = template.docs[service]["referrals"][0]
        assert record["_id"] != old["_id"] and record["referral_id"] != old["referral_id"]
        assert template.subject not in json.dumps(docs, default=str)
        with pytest.raises(InvalidTag):  # the template's key does not open the copy
            old_key = unwrap(master, template.subject, template.docs[service]["subject_keys"][0]["key"])
            old_key.decrypt(record["_enc"], record["_id"])


def test_a_copy_keeps_one_id_for_one_referral_across_services(settings):
    _, copy = Cloner(settings).clone(a_template(settings), OTHER_VALID_BSN)
    referral_ids = {docs["referrals"][0]["referral_id"] for docs in copy.values()}
    event_ids = {docs["outbox"][0]["_id"] for docs in copy.values()}
    assert len(referral_ids) == 1 and len(event_ids) == 1
    for docs in copy.values():
        [log] = docs["processing_log"]
        assert log["correlation_id"] in referral_ids and log["message_id"] in event_ids
