"""The committed contract documents are what the code generates (run `make docs` after a change)."""

from infra.asyncapi import DOCS, documents, render


def test_committed_asyncapi_documents_match_the_code():
    for name, doc in documents().items():
        path = DOCS / f"{name}.json"
        assert path.exists(), f"{path} missing: run `make docs`"
        assert path.read_text() == render(doc), f"{path.name} is stale: run `make docs`"


def test_every_published_event_has_a_typed_payload_schema():
    combined = documents()["werkbrug"]
    schemas = combined["components"]["schemas"]
    for expected in ("ReferralRegisteredMessage", "QuoteSentMessage", "QuoteApprovedMessage", "RetourMessage"):
        assert expected in schemas, expected
    registered = schemas["ReferralRegistered"]
    assert registered["additionalProperties"] is False, "art 5.5: the allow-list is closed"


def test_the_event_catalogue_is_current():
    from infra.catalogue import PATH, render

    assert PATH.read_text() == render(), "docs/events.md is stale: run `make docs`"
