"""Who takes part in the cooperation, in which role, and the facts about them that the software needs.

The parties are data: the register of parties (`shared/parties.toml`, loaded by `load_parties`) says which
parties there are, the roles each holds, its organisation, its legal basis (agreement art 9) and what admitted
it (the agreement itself, or an addendum: art 13.1). Event types name the ROLE that may send them
(`shared.contracts.envelope.event`); the register resolves which parties hold it. Code asks "is this party a
provider", never "is this Heliomare".

`Party` names the identities of the two founding parties, for the places that need exactly them (their
services' deployment, their broker users, development staff registers).
"""

from __future__ import annotations

import functools
import tomllib
import uuid
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Party(StrEnum):
    """A founding party of the agreement. The value is its party id: its broker identity and the first word of
    its routing keys. Every other party is known by its id in the register of parties only."""

    WERKSAAM = "werksaam"  # WerkSaam Westfriesland, commissioner (opdrachtgever)
    HELIOMARE = "heliomare"  # Stichting Heliomare, reintegration provider


class Role(StrEnum):
    """What a party does in the cooperation; event types name the roles that may send them."""

    COMMISSIONER = "commissioner"  # refers, approves quotes, pays (opdrachtgever, art 5, 7)
    PROVIDER = "provider"  # quotes, runs trajectories, invoices, reports yearly (art 5.2, 6.2, 7.1)
    COORDINATOR = "coordinator"  # announces partners, data subjects' contact point, notifies the AP (5.3, 10.3, 12.3)
    READER = "reader"  # receives the topics granted to it and sends nothing (art 13.1)


# The roles of a party that runs werkbrug services (a reader runs none).
SERVICE_ROLES = frozenset({Role.COMMISSIONER, Role.PROVIDER})

# The role whose party runs each service: a commissioner runs intake and subject_rights, a provider offer,
# trajectory and billing. Its party's id is the service's command key's first word (`<party>.<service>`).
SERVICE_ROLE: dict[str, Role] = {
    "intake": Role.COMMISSIONER,
    "subject_rights": Role.COMMISSIONER,
    "offer": Role.PROVIDER,
    "trajectory": Role.PROVIDER,
    "billing": Role.PROVIDER,
}

# The party that runs each service in the founding deployment (the one the command line addresses by default):
# the founding party holding the service's role (tests/unit/test_wiring.py checks both against the register).
SERVICE_PARTY: dict[str, Party] = {
    "intake": Party.WERKSAAM,
    "subject_rights": Party.WERKSAAM,
    "offer": Party.HELIOMARE,
    "trajectory": Party.HELIOMARE,
    "billing": Party.HELIOMARE,
}


class LegalBasis(StrEnum):
    """The GDPR art 6(1) grounds; the register of parties gives each party its own (agreement art 9)."""

    CONSENT = "GDPR 6(1)(a)"
    CONTRACT = "GDPR 6(1)(b)"  # Heliomare: its contract with the person
    LEGAL_OBLIGATION = "GDPR 6(1)(c)"
    VITAL_INTERESTS = "GDPR 6(1)(d)"
    PUBLIC_TASK = "GDPR 6(1)(e)"  # WerkSaam: Participatiewet
    LEGITIMATE_INTERESTS = "GDPR 6(1)(f)"


# A party id: lower-case letters and digits, as a broker user name and a routing-key word (no dot).
PartyId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9]{2,30}$")]
# Words that can never be a party's id: a routing-key word with another meaning, or a broker user of ours.
RESERVED_IDS = frozenset({"all", "partner", "guest", "werkbrug"})

PARTIES_PATH = Path(__file__).resolve().parents[1] / "parties.toml"


class UnknownParty(LookupError):
    """A party id that the register of parties does not hold."""


class PartyRecord(BaseModel):
    """One party in the register: its id, organisation, roles, legal basis and what admitted it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: PartyId
    organisation: str = Field(min_length=1, max_length=200)
    roles: frozenset[Role] = Field(min_length=1)
    legal_basis: LegalBasis
    admitted_by: Literal["agreement"] | uuid.UUID = Field(
        description="'agreement' for a founding party, else the id of the addendum that admitted it (art 13.1).")

    @model_validator(mode="after")
    def _consistent(self) -> PartyRecord:
        if self.id in RESERVED_IDS:
            raise ValueError(f"{self.id} is reserved")
        if Role.READER in self.roles and len(self.roles) > 1:
            raise ValueError(f"{self.id}: a reader holds no other role (it sends nothing)")
        if Role.COORDINATOR in self.roles and Role.COMMISSIONER not in self.roles:
            raise ValueError(f"{self.id}: the coordinator is a commissioner (art 5.3, 10.3)")
        founding = self.id in {p.value for p in Party}
        if founding != (self.admitted_by == "agreement"):
            raise ValueError(f"{self.id}: the founding parties, and only they, are admitted by the agreement")
        return self

    @property
    def runs_services(self) -> bool:
        return bool(self.roles & SERVICE_ROLES)


class PartyRegister(BaseModel):
    """The register of parties: every party of the cooperation (validated as a whole)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    party: tuple[PartyRecord, ...] = Field(min_length=2)

    @model_validator(mode="after")
    def _whole(self) -> PartyRegister:
        ids = [p.id for p in self.party]
        if len(ids) != len(set(ids)):
            raise ValueError("party ids must be unique")
        if missing := {p.value for p in Party} - set(ids):
            raise ValueError(f"the founding parties must be in the register: {', '.join(sorted(missing))}")
        if len(self.with_role(Role.COORDINATOR)) != 1:
            raise ValueError("exactly one party coordinates the cooperation (art 5.3, 10.3)")
        for role in (Role.COMMISSIONER, Role.PROVIDER):
            if not self.with_role(role):
                raise ValueError(f"the cooperation needs a {role.value}")
        return self

    def get(self, party: str) -> PartyRecord:
        for record in self.party:
            if record.id == party:
                return record
        raise UnknownParty(f"{party!s:.40} is not in the register of parties")

    def ids(self) -> list[str]:
        return sorted(p.id for p in self.party)

    def with_role(self, *roles: Role) -> frozenset[str]:
        """The ids of the parties holding any of `roles`."""
        return frozenset(p.id for p in self.party if p.roles & set(roles))

    def has_role(self, party: str, role: Role) -> bool:
        return any(p.id == party and role in p.roles for p in self.party)

    def legal_basis(self, party: str) -> LegalBasis:
        return self.get(party).legal_basis

    def sole(self, role: Role) -> str:
        """The one party holding `role`. Raises UnknownParty when none or several do (then the sender must choose)."""
        holders = self.with_role(role)
        if len(holders) != 1:
            raise UnknownParty(f"{len(holders)} parties are a {role.value}: name the one meant")
        (holder,) = holders
        return holder

    def coordinator(self) -> str:
        (coordinator,) = self.with_role(Role.COORDINATOR)
        return coordinator

    def joined(self, *parties: PartyRecord) -> PartyRegister:
        """The register with `parties` admitted too (partners by addendum), validated as a whole."""
        return PartyRegister(party=(*self.party, *parties))

    def service_parties(self) -> list[str]:
        """The parties that run werkbrug services (commissioners and providers), sorted."""
        return sorted(self.with_role(*SERVICE_ROLES))


@functools.cache
def load_parties(path: Path = PARTIES_PATH) -> PartyRegister:
    """The register of parties, read and validated once per path."""
    with path.open("rb") as fh:
        return PartyRegister.model_validate(tomllib.load(fh))


class Municipality(StrEnum):
    """The seven West-Frisian municipalities for which WerkSaam executes the Participatiewet (art 4)."""

    DRECHTERLAND = "drechterland"
    ENKHUIZEN = "enkhuizen"
    HOORN = "hoorn"
    KOGGENLAND = "koggenland"
    MEDEMBLIK = "medemblik"
    OPMEER = "opmeer"
    STEDE_BROEC = "stede-broec"
