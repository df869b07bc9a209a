"""The staff registers on a developer machine: named staff per role for each party (like the development
broker passwords, PUBLIC and for development only), written where a party's services read them when there
is none yet (`make broker`, the demo, the benchmarks).

In production each party's identity administration keeps its own register (`werkbrug staff add|end|list`
on that party's machine, or by writing `<WERKBRUG_STAFF_DIR>/<party>.json` from its own identity system).
"""

from __future__ import annotations

from datetime import date

from shared.config import Settings
from shared.contracts.parties import Party
from shared.contracts.staff import Role, StaffMember, StaffRegister
from shared.staff import read_register, register_path, write_register

DEV_FROM = date(2020, 1, 1)


def _member(staff_id: str, *roles: Role) -> StaffMember:
    return StaffMember(staff_id=staff_id, roles=frozenset(roles), valid_from=DEV_FROM)


# Comparing both parties' records (`werkbrug reconcile`, `werkbrug status`) asks every service, and each checks the
# actor against its own party's register: so both parties appoint an operator under this one id (each on its own
# register, with its own confidentiality statement). Staff ids stay per party; this is the same id twice.
JOINT_OPERATOR = "ops.joint"

DEVELOPMENT_STAFF: dict[Party, StaffRegister] = {
    Party.WERKSAAM: StaffRegister(party=Party.WERKSAAM, staff=(
        _member("cw.bakker", Role.CASEWORKER),
        _member("cw.visser", Role.CASEWORKER),
        _member("privacy.werksaam", Role.PRIVACY_OFFICER),
        _member("privacy.desk", Role.PRIVACY_OFFICER),  # the demo's privacy desk (data-subject requests)
        _member("fin.werksaam", Role.FINANCE),
        _member("ops.werksaam", Role.OPERATOR),
        _member(JOINT_OPERATOR, Role.OPERATOR),
    )),
    Party.HELIOMARE: StaffRegister(party=Party.HELIOMARE, staff=(
        _member("am.jansen", Role.ACCOUNT_MANAGER),
        _member("am.devries", Role.ACCOUNT_MANAGER),
        _member("coach.smit", Role.JOB_COACH),
        _member("fin.heliomare", Role.FINANCE),
        _member("privacy.heliomare", Role.PRIVACY_OFFICER),
        _member("ops.heliomare", Role.OPERATOR),
        _member(JOINT_OPERATOR, Role.OPERATOR),
    )),
}


def ensure_development_registers(settings: Settings, registers: dict[Party, StaffRegister] | None = None
                                 ) -> list[str]:
    """Write each party's development register where there is none (never over an existing one). Returns
    the paths written."""
    written = []
    for party, register in (registers or DEVELOPMENT_STAFF).items():
        path = register_path(settings, party)
        if not path.exists():
            write_register(path, register)
            written.append(str(path))
    return written


def add_member(settings: Settings, party: Party, member: StaffMember) -> StaffRegister:
    """Add a member to the party's register, or replace the one with the same id (new roles or dates)."""
    path = register_path(settings, party)
    register = read_register(path, party).with_member(member)
    write_register(path, StaffRegister.model_validate(register.model_dump()))
    return register


def end_member(settings: Settings, party: Party, staff_id: str, last_day: date) -> StaffMember | None:
    """End a membership on `last_day` (the member stays in the register, for the record). None: unknown."""
    path = register_path(settings, party)
    register = read_register(path, party)
    member = next((m for m in register.staff if m.staff_id == staff_id), None)
    if member is None:
        return None
    ended = StaffMember.model_validate({**member.model_dump(), "valid_until": last_day})
    write_register(path, register.with_member(ended))
    return ended
