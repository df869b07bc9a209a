"""Staff are a party's own: the pipeline runs a command only for an actor in force in its party's staff register
with a role the command allows, one mechanism for every command; art 8 statements are recorded by a privacy
officer for another member of the same party's staff. Driven with in-memory fakes."""

from __future__ import annotations

import json
import logging
import typing
from datetime import UTC, date, datetime, timedelta

import pytest

from infra.services import DEFINITIONS
from services.intake.bootstrap import definition as intake_definition
from services.offer.bootstrap import definition as offer_definition
from shared.config import Settings
from shared.contracts.commands import (
    DecideReferral,
    GetReferral,
    ListConfidentialityStatements,
    ListReferrals,
    ReadProcessingLog,
    RecordConfidentialityStatement,
)
from shared.contracts.parties import Party
from shared.contracts.staff import Role, StaffMember, StaffRegister
from shared.staff import StaffFile, write_register
from tests.staff import TEST_STAFF
from tests.unit.builders import PSEUDONYM_KEY
from tests.unit.test_pipeline import Service, registered_case

TODAY = datetime.now(UTC).date()


@pytest.fixture
def offer() -> Service:
    return Service(offer_definition())


def codes(reply: dict) -> list[str]:
    return [r["code"] for r in reply["reasons"]]


def test_every_command_of_every_service_names_the_roles_that_may_give_it():
    for name, make in DEFINITIONS.items():
        union = typing.get_args(make(Settings()).command_union)[0]
        for command in typing.get_args(union):
            assert command.roles, f"{name}: {command.__name__} names no roles (nobody could give it)"
            assert command.roles <= set(Role)


@pytest.mark.parametrize("actor", ["nobody", "privacy.werksaam", "cw.bakker"])
async def test_an_actor_not_in_the_partys_own_register_is_refused_and_nothing_happens(offer, actor, caplog):
    """WerkSaam's staff are unknown at Heliomare, whatever their roles there."""
    referral_id = await registered_case(offer, accept=False)
    before = dict(offer.store.inbox)
    with caplog.at_level(logging.INFO):
        reply = await offer.as_given(DecideReferral(referral_id=referral_id, accept=True, actor=actor))
    assert not reply["ok"] and codes(reply) == ["unknown_actor"]
    assert actor not in json.dumps(reply) and actor not in caplog.text, "the actor is never echoed"
    assert offer.store.inbox == before and [c.status for c in offer.store.aggregates("cases")] == ["registered"]


async def test_a_member_without_a_role_that_may_is_refused(offer):
    referral_id = await registered_case(offer, accept=False)
    for command in (DecideReferral(referral_id=referral_id, accept=True, actor="fin.heliomare"),
                    ReadProcessingLog(subject="psn_" + "a" * 26, actor="am.jansen"),
                    RecordConfidentialityStatement(staff="am.devries", signed_on=TODAY, actor="am.jansen")):
        reply = await offer.as_given(command)
        assert codes(reply) == ["role_not_permitted"], command.command
        assert "am.jansen" not in json.dumps(reply) and "fin.heliomare" not in json.dumps(reply)
    assert [c.status for c in offer.store.aggregates("cases")] == ["registered"]
    assert (await offer.command(ListConfidentialityStatements()))["result"] == []


async def test_a_member_whose_membership_ended_or_has_not_begun_is_refused():
    register = TEST_STAFF[Party.HELIOMARE].with_member(StaffMember(
        staff_id="am.left", roles=frozenset({Role.ACCOUNT_MANAGER}), valid_from=date(2020, 1, 1),
        valid_until=TODAY - timedelta(days=1))).with_member(StaffMember(
            staff_id="am.next", roles=frozenset({Role.ACCOUNT_MANAGER}), valid_from=TODAY + timedelta(days=1)))
    offer = Service(offer_definition())
    offer.pipeline.staff = register
    for actor in ("am.left", "am.next"):
        reply = await offer.as_given(ListReferrals(actor=actor))
        assert codes(reply) == ["unknown_actor"]
    assert (await offer.as_given(ListReferrals(actor="am.jansen")))["ok"]


async def test_without_a_register_nobody_gives_a_command():
    offer = Service(offer_definition())
    offer.pipeline.staff = StaffRegister(party=Party.HELIOMARE)
    assert codes(await offer.as_given(ListReferrals(actor="am.jansen"))) == ["unknown_actor"]


async def test_a_command_without_an_actor_is_refused_but_the_services_own_job_runs_without_one(offer):
    assert codes(await offer.as_given(ListReferrals())) == ["actor_missing"]
    # A job is called in the process (Pipeline.run_job), never from the broker
    job = await offer.pipeline.run_job(ListReferrals())
    assert job["ok"], job["reasons"]


# -- art 8: statements against the party's own register ---------------------------------------------------


async def test_a_privacy_officer_records_a_statement_for_another_member_and_the_act_is_logged(offer, caplog):
    command = RecordConfidentialityStatement(staff="am.jansen", signed_on=TODAY, actor="privacy.heliomare")
    with caplog.at_level(logging.INFO, logger="werkbrug.pipeline"):
        reply = await offer.as_given(command)
    assert reply["ok"], reply["reasons"]
    assert f"confidentiality statement recorded by command {command.command_id}" in caplog.text
    [listed] = (await offer.command(ListConfidentialityStatements()))["result"]
    assert (listed["staff"], listed["recorded_by"], listed["applies"]) == ("am.jansen", "privacy.heliomare", True)
    referral_id = await registered_case(offer, accept=False)
    assert (await offer.as_given(GetReferral(referral_id=referral_id, with_person=True, actor="am.jansen")))["ok"]


async def test_nobody_records_their_own_statement(offer):
    reply = await offer.as_given(RecordConfidentialityStatement(staff="privacy.heliomare", signed_on=TODAY,
                                                                actor="privacy.heliomare"))
    assert codes(reply) == ["not_for_oneself"]
    assert (await offer.command(ListConfidentialityStatements()))["result"] == []


async def test_a_statement_for_someone_not_in_the_partys_register_is_refused(offer):
    for staff in ("nobody", "privacy.werksaam"):  # unknown; the other party's
        reply = await offer.as_given(RecordConfidentialityStatement(staff=staff, signed_on=TODAY,
                                                                    actor="privacy.heliomare"))
        assert codes(reply) == ["unknown_actor"] and staff not in json.dumps(reply)
    assert (await offer.command(ListConfidentialityStatements()))["result"] == []


async def test_the_other_partys_staff_member_with_a_statement_there_is_unknown_here():
    """WerkSaam's privacy officer has a statement at WerkSaam: at Heliomare the id means nobody."""
    intake = Service(intake_definition(Settings(WERKBRUG_PSEUDONYM_KEY=PSEUDONYM_KEY)))
    assert (await intake.as_given(RecordConfidentialityStatement(staff="cw.bakker", signed_on=TODAY,
                                                                 actor="privacy.werksaam")))["ok"]
    offer = Service(offer_definition())
    referral_id = await registered_case(offer, accept=False)
    reply = await offer.as_given(GetReferral(referral_id=referral_id, with_person=True, actor="cw.bakker"))
    assert codes(reply) == ["unknown_actor"] and "person" not in json.dumps(reply)


# -- the register file ----------------------------------------------------------------------------------


def test_a_service_reads_its_register_again_when_the_file_changes_and_refuses_everyone_when_it_is_broken(
        tmp_path, caplog):
    path = tmp_path / "heliomare.json"
    source = StaffFile(path, Party.HELIOMARE)
    assert source.current().staff == ()  # none yet: nobody
    write_register(path, TEST_STAFF[Party.HELIOMARE])
    assert source.current().member("am.jansen", TODAY) is not None
    write_register(path, StaffRegister(party=Party.HELIOMARE, staff=(StaffMember(
        staff_id="coach.smit", roles=frozenset({Role.JOB_COACH}), valid_from=date(2020, 1, 1)),)))
    assert source.current().member("am.jansen", TODAY) is None
    path.write_text('{"party": "heliomare", "staff": [{"staff_id": "x"}]}')
    with caplog.at_level(logging.ERROR):
        assert source.current().staff == ()
    assert "not a valid staff register" in caplog.text
    write_register(path, TEST_STAFF[Party.WERKSAAM])  # another party's register
    assert source.current().staff == ()


def test_a_register_holds_each_staff_id_once_and_dates_in_order():
    member = StaffMember(staff_id="am.jansen", roles=frozenset({Role.ACCOUNT_MANAGER}), valid_from=date(2020, 1, 1))
    with pytest.raises(ValueError, match="twice"):
        StaffRegister(party=Party.HELIOMARE, staff=(member, member))
    with pytest.raises(ValueError, match="before"):
        StaffMember(staff_id="am.x", roles=frozenset({Role.FINANCE}), valid_from=date(2021, 1, 1),
                    valid_until=date(2020, 1, 1))
    with pytest.raises(ValueError):
        StaffMember(staff_id="am.x", roles=frozenset(), valid_from=date(2021, 1, 1))
