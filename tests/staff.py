"""The staff registers the tests run with: the development staff, and a few members tests name."""

from __future__ import annotations

from datetime import UTC, datetime

from infra.staff import DEV_FROM, DEVELOPMENT_STAFF
from shared.contracts.parties import Party
from shared.contracts.staff import Role, StaffMember, StaffRegister

EVERY_ROLE = frozenset(Role)


def _with(register: StaffRegister, *members: tuple[str, frozenset[Role]]) -> StaffRegister:
    for staff_id, roles in members:
        register = register.with_member(StaffMember(staff_id=staff_id, roles=roles, valid_from=DEV_FROM))
    return register


# Whom the tests' own client names when a command names nobody: first in each register, with every role, so
# that what the tests do in passing is told apart from what the staff a test names do.
TEST_CLIENT = "test.client"


def _first(register: StaffRegister, staff_id: str) -> StaffRegister:
    member = StaffMember(staff_id=staff_id, roles=EVERY_ROLE, valid_from=DEV_FROM)
    return register.model_copy(update={"staff": (member, *register.staff)})


TEST_STAFF: dict[Party, StaffRegister] = {
    Party.WERKSAAM: _with(
        _first(DEVELOPMENT_STAFF[Party.WERKSAAM], TEST_CLIENT),
        ("desk.hoorn", frozenset({Role.PRIVACY_OFFICER})),  # the privacy desk of the subject-rights tests
        ("desk.enkhuizen", frozenset({Role.PRIVACY_OFFICER})),  # another desk: the officer handling a restriction
        ("privacy.officer", frozenset({Role.PRIVACY_OFFICER})),  # records the statements the CLI tests need
        # Staff ids are per party: each party employs an operator the command-line tests know as test.operator.
        ("test.operator", EVERY_ROLE),
    ),
    Party.HELIOMARE: _with(
        _first(DEVELOPMENT_STAFF[Party.HELIOMARE], TEST_CLIENT),
        ("am.pietersen", frozenset({Role.ACCOUNT_MANAGER})),
        ("privacy.officer", frozenset({Role.PRIVACY_OFFICER})),
        ("ops.signed", frozenset({Role.OPERATOR})),
        ("ops.nostatement", frozenset({Role.OPERATOR})),
        ("fin.nostatement", frozenset({Role.FINANCE})),  # no statement (the walkthrough signs fin.heliomare)
        ("test.operator", EVERY_ROLE),
    ),
}


def given_by_staff(register: StaffRegister, command):
    """The command with an actor: the first member in force whose role may give it, unless it names one (what
    CommandClient(actors=...) does for the integration tests)."""
    if command.actor is not None:
        return command
    member = register.first_with(type(command).roles, datetime.now(UTC).date())
    return command.model_copy(update={"actor": member.staff_id}) if member else command
