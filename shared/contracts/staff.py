"""A party's staff: who may give which command (agreement art 8: staff are a party's own).

Each party keeps its own register of staff: a staff id, the roles the member holds, and the days the
membership is valid. A command names its actor (a staff id); the party's services run it only when the actor
is in force in THAT party's register with a role the command allows (`Command.roles`). A staff id of the
other party is unknown here, whatever it is called there.

The register is maintained by the party's identity administration (see README, "Trust boundary"): werkbrug
trusts the broker credentials to say which party sends, and the party's own login to say which member of
its staff is at the keyboard; it checks the staff id against the register and the roles.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.contracts.parties import Party

StaffId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{1,40}$")]


class Role(StrEnum):
    """What a member of staff does; each command names the roles that may give it."""

    CASEWORKER = "caseworker"  # WerkSaam: refers people, decides quotes
    ACCOUNT_MANAGER = "account_manager"  # Heliomare: accepts referrals, sends quotes, publishes the report
    JOB_COACH = "job_coach"  # Heliomare: starts, reports on and ends trajectories
    FINANCE = "finance"  # invoices
    PRIVACY_OFFICER = "privacy_officer"  # processing log, confidentiality statements, subject requests, breaches
    OPERATOR = "operator"  # health, traces, dead letters


ANYONE = frozenset(Role)


class StaffMember(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    staff_id: StaffId
    roles: frozenset[Role] = Field(min_length=1, max_length=len(Role))
    valid_from: date
    valid_until: date | None = Field(None, description="The last day of the membership (left, changed job).")

    @model_validator(mode="after")
    def _ordered(self) -> StaffMember:
        if self.valid_until is not None and self.valid_until < self.valid_from:
            raise ValueError("valid_until before valid_from")
        return self

    def in_force_on(self, day: date) -> bool:
        return self.valid_from <= day and (self.valid_until is None or day <= self.valid_until)


class StaffRegister(BaseModel):
    """One party's register of staff."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    party: Party
    staff: tuple[StaffMember, ...] = Field(default=(), max_length=10_000)

    @model_validator(mode="after")
    def _unique(self) -> StaffRegister:
        ids = [m.staff_id for m in self.staff]
        if len(ids) != len(set(ids)):
            raise ValueError("a staff id appears twice")
        return self

    def member(self, staff_id: str | None, day: date) -> StaffMember | None:
        """The member with this id in force on `day`, or None."""
        return next((m for m in self.staff if m.staff_id == staff_id and m.in_force_on(day)), None)

    def first_with(self, roles: frozenset[Role], day: date) -> StaffMember | None:
        """The first member in force on `day` holding one of `roles` (tests and the demo fill in an actor so)."""
        return next((m for m in self.staff if m.in_force_on(day) and m.roles & roles), None)

    def with_member(self, member: StaffMember) -> StaffRegister:
        """The register with `member` added, or replacing the one with its id."""
        others = tuple(m for m in self.staff if m.staff_id != member.staff_id)
        return self.model_copy(update={"staff": (*others, member)})

    def current(self) -> StaffRegister:
        """A register is its own source (StaffSource): what the pipeline asks for each command."""
        return self
