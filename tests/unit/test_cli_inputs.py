"""The files a person writes for the command line: each example is valid for the model its command validates the file
with and for the JSON Schema `werkbrug schema` prints, and `--help` lists the fields and codes (issue 17)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest
from jsonschema import Draft202012Validator
from typer.testing import CliRunner

import cli.main  # noqa: F401  (registers every command group)
from cli.app import app
from cli.file_inputs import FILE_INPUTS, PLUMBING, PersonFile, example, json_schema
from services.intake.domain import target_group_reasons
from shared.contracts.commands import IdentityCheck, SubmitReferral, SubmitSubjectRequest
from shared.contracts.events import ContractType, HoursBand, Outcome, Phase, ProgressStatus, StopReason, SupportNeed
from shared.contracts.parties import Party
from shared.contracts.personal import date_of_birth_reasons
from shared.contracts.staff import StaffRegister
from shared.privacy.bsn import is_valid_bsn

runner = CliRunner(env={"COLUMNS": "400", "TERMINAL_WIDTH": "400"})


@pytest.mark.parametrize("name", list(FILE_INPUTS))
def test_each_example_is_valid_for_its_model_and_its_printed_schema(name):
    found = example(name)
    FILE_INPUTS[name].model().model_validate(found)
    schema = json_schema(name)
    Draft202012Validator.check_schema(schema)
    errors = list(Draft202012Validator(schema).iter_errors(found))
    assert not errors, [e.message for e in errors]


@pytest.mark.parametrize("name", list(FILE_INPUTS))
def test_each_schema_refuses_what_its_model_refuses(name):
    schema = json_schema(name)
    assert schema["additionalProperties"] is False, "a field the model does not know is refused"
    assert not Draft202012Validator(schema).is_valid({**example(name), "shoe_size": 44})


def test_the_person_example_passes_every_check_intake_makes():
    person = SubmitReferral(**PersonFile.model_validate(example("person")).model_dump())
    assert is_valid_bsn(person.bsn)
    assert target_group_reasons(person) == []
    assert date_of_birth_reasons(person.date_of_birth, datetime.now(UTC).date()) == []


def test_each_person_example_is_a_new_person_unless_seeded():
    assert example("person", seed=7) == example("person", seed=7)
    assert len({example("person")["bsn"] for _ in range(5)}) > 1
    assert all(is_valid_bsn(example("person", seed=s)["bsn"]) for s in range(50))


def test_the_person_file_holds_the_referrals_fields_and_never_who_gives_it():
    assert set(PersonFile.model_fields) == set(SubmitReferral.model_fields) - PLUMBING
    assert {"actor", "command_id"} <= PLUMBING
    assert not Draft202012Validator(json_schema("person")).is_valid({**example("person"), "actor": "someone.else"})


def test_the_addendum_example_grants_shareable_topics_with_every_founding_partys_consent():
    from infra.partners import topic_problems

    addendum = FILE_INPUTS["addendum"].model().model_validate(example("addendum"))
    assert topic_problems(addendum.topics) == []
    assert {c.party for c in addendum.consents} == {p.value for p in Party}


def test_the_corrections_example_makes_a_rectification_request():
    request = SubmitSubjectRequest.model_validate({
        "bsn": example("person")["bsn"], "right": "rectification", "corrections": example("corrections"),
        "identity": IdentityCheck(method="id_document_at_desk", verified_by="desk.hoorn",
                                  verified_at=datetime.now(UTC))})
    assert request.corrections is not None and request.corrections.family_name


def test_the_staff_register_example_is_a_partys_register_in_force():
    register = StaffRegister.model_validate(example("staff-register"))
    assert register.staff and all(m.in_force_on(date.today()) for m in register.staff)


def _help(*args: str) -> str:
    result = runner.invoke(app, ["--as", "a.reader", *args, "--help"])  # (the real entry point needs no --as)
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())  # the words, however the terminal wraps them


def test_refer_help_lists_every_field_of_the_person_file_and_every_support_need_code():
    text = _help("refer")
    assert "see SubmitReferral" not in text
    for name, field in PersonFile.model_fields.items():
        assert f"{name} ({'required' if field.is_required() else 'optional'}" in text, name
    assert all(code.value in text for code in SupportNeed)
    assert "werkbrug schema person" in text and "werkbrug example person" in text


@pytest.mark.parametrize("command,codes", [
    (("trajectory", "progress"), [*Phase, *ProgressStatus]),
    (("trajectory", "end"), [*Outcome, *ContractType, *HoursBand, *StopReason]),
])
def test_the_trajectory_commands_list_their_codes_in_help(command, codes):
    text = _help(*command).replace(" ", "")  # a choice list may be broken inside a word
    assert all(code.value.replace(" ", "") in text for code in codes)


def test_report_year_is_still_the_report_shown_and_publish_is_its_own_step():
    shown = runner.invoke(app, ["--as", "cw.bakker", "report", "2030", "--source", "offer"])
    assert shown.exit_code == 2 and "unknown service 'offer'" in shown.output, "routed to `report show`"
    assert "publish" in _help("report") and "--correction" in _help("report", "publish")


def test_schema_prints_json_and_lists_the_names_without_a_staff_id():
    listed = runner.invoke(app, ["schema"])
    assert listed.exit_code == 0 and all(name in listed.output for name in FILE_INPUTS)
    printed = runner.invoke(app, ["schema", "person"])
    assert printed.exit_code == 0 and json.loads(printed.output)["title"] == "person"
    given = runner.invoke(app, ["example", "person", "--seed", "3"])
    assert json.loads(given.output) == example("person", seed=3)
