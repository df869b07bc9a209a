"""The committed contract documents are what the code generates (run `make docs` after a change)."""

from infra.asyncapi import documents, event_schemas, files


def test_committed_asyncapi_documents_and_event_schemas_match_the_code():
    for path, text in files().items():
        assert path.exists(), f"{path} missing: run `make docs`"
        assert path.read_text() == text, f"{path.name} is stale: run `make docs`"


def test_every_event_has_a_json_schema_that_refuses_fields_beyond_its_allow_list():
    from jsonschema import Draft202012Validator

    from shared.contracts.envelope import all_event_specs

    schemas = event_schemas()
    assert set(schemas) == {f"{s.event_type}.v{s.version}.json" for s in all_event_specs()}
    schema = schemas["referral.registered.v2.json"]
    Draft202012Validator.check_schema(schema)
    errors = list(Draft202012Validator(schema).iter_errors({"data": {"shoe_size": 44}}))
    assert any("shoe_size" in e.message for e in errors)


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
