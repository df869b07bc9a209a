"""The register of processing activities (agreement art 3.7, Bijlage 1), loaded from `register.toml`.

It is the one source of truth for what werkbrug may do with personal data:
- every handler declares the activity it performs (`@performs(...)`); a handler without one, with one
  that is not registered, of another party, or handling a message its activity does not receive, is
  refused when the service starts (deny by default);
- every event type's fields must equal the allow-list of the activity that sends it (art 5.5); an
  event type that no activity sends does not load;
- the processing log names the activity (id and version) and its legal basis (art 9).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import tomllib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.contracts.parties import LegalBasis, Party, load_parties

REGISTER_PATH = Path(__file__).with_name("register.toml")
ACTIVITY_ID = re.compile(
    r"^urn:werkbrug:activity:(?P<party>[a-z][a-z0-9-]*):(?P<slug>[a-z][a-z0-9-]*):v(?P<version>\d+)$"
)


class UnregisteredProcessing(Exception):
    """Processing that the register does not allow. Raised at start-up or import, never at run time."""


class Category(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    fields: tuple[str, ...]


class MessageGrant(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    message: str = Field(pattern=r"^[a-z][a-z-]*\.[a-z][a-z-]*\.v\d+$")
    fields: tuple[str, ...]


class Activity(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    name: str
    purpose: str
    party: Party
    legal_basis: LegalBasis
    recipients: tuple[Party, ...] = ()
    retention: str = Field(pattern=r"^P(\d+[YMWD])+$")
    retention_ground: str
    categories: tuple[Category, ...] = ()
    sends: tuple[MessageGrant, ...] = ()
    receives: tuple[str, ...] = ()

    @field_validator("id")
    @classmethod
    def _id_shape(cls, value: str) -> str:
        if not ACTIVITY_ID.match(value):
            raise ValueError("activity id must look like urn:werkbrug:activity:<party>:<name>:v<N>")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Activity:
        if ACTIVITY_ID.match(self.id)["party"] != self.party.value:
            raise ValueError(f"{self.id}: id names another party than {self.party.value}")
        basis = load_parties().legal_basis(self.party)  # art 9: as the register of parties says
        if basis != self.legal_basis:
            raise ValueError(f"{self.id}: {self.party.value} processes on {basis} (art 9)")
        return self

    @property
    def version(self) -> int:
        return int(ACTIVITY_ID.match(self.id)["version"])

    def grant(self, message: str) -> MessageGrant | None:
        return next((g for g in self.sends if g.message == message), None)


class Register(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    activity: tuple[Activity, ...]

    @model_validator(mode="after")
    def _unique(self) -> Register:
        ids = [a.id for a in self.activity]
        if len(ids) != len(set(ids)):
            raise ValueError("activity ids must be unique")
        sent: dict[tuple[Party, str], str] = {}
        for a in self.activity:
            for g in a.sends:
                if (a.party, g.message) in sent:
                    raise ValueError(f"{g.message} is sent by two activities of {a.party.value}")
                sent[(a.party, g.message)] = a.id
        return self

    def get(self, activity_id: str) -> Activity:
        for a in self.activity:
            if a.id == activity_id:
                return a
        raise UnregisteredProcessing(f"activity {activity_id} is not in the register of processing activities")

    def sender_of(self, party: str, message: str) -> Activity:
        for a in self.activity:
            if a.party == party and a.grant(message):
                return a
        raise UnregisteredProcessing(f"no activity of {party} may send {message}")

    def receiver_of(self, party: str, message: str) -> Activity:
        for a in self.activity:
            if a.party == party and message in a.receives:
                return a
        raise UnregisteredProcessing(f"no activity of {party} receives {message}")

    def by_name(self, party: str, name: str) -> Activity:
        """The activity of a party with this name (the id's last word before the version)."""
        for a in self.activity:
            if a.party == party and ACTIVITY_ID.match(a.id)["slug"] == name:
                return a
        raise UnregisteredProcessing(f"{party} has no registered activity {name}")

    def allowed_fields(self, party: str, message: str) -> tuple[str, ...]:
        return self.sender_of(party, message).grant(message).fields  # type: ignore[union-attr]

    def check_fields(self, message: str, fields: Iterable[str], senders: Iterable[str]) -> None:
        """Art 5.5: a message type's fields are exactly the allow-list the register grants each party that may
        send it. Raises UnregisteredProcessing otherwise (checked when a service starts, and by the tests for
        every event type)."""
        for party in senders:
            allowed = set(self.allowed_fields(party, message))
            if set(fields) != allowed:
                raise UnregisteredProcessing(f"{message} has fields {sorted(fields)}, but the register allows "
                                             f"{party} to send exactly {sorted(allowed)}")


@functools.cache
def load_register(path: Path = REGISTER_PATH) -> Register:
    with path.open("rb") as fh:
        return Register.model_validate(tomllib.load(fh))


# -- a changed activity is a new version ---------------------------------------------------------

LOCK_PATH = REGISTER_PATH.with_name("register.lock.json")


def fingerprint(activity: Activity) -> str:
    """What an activity says, hashed: it may not change under the same id (art 14: a change is a new version)."""
    canonical = json.dumps(activity.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def changed_without_new_version(register: Register, lock: dict[str, str]) -> list[str]:
    return [a.id for a in register.activity if a.id in lock and lock[a.id] != fingerprint(a)]


def write_lock(register: Register, path: Path = LOCK_PATH) -> None:
    """Record the fingerprints of the activities as agreed (keeps the ones of earlier versions)."""
    lock = json.loads(path.read_text()) if path.exists() else {}
    stale = changed_without_new_version(register, lock)
    if stale:
        raise UnregisteredProcessing(f"changed without a new version: {', '.join(stale)}")
    lock.update({a.id: fingerprint(a) for a in register.activity})
    path.write_text(json.dumps(dict(sorted(lock.items())), indent=2) + "\n")


if __name__ == "__main__":  # python -m shared.privacy.register: record newly agreed activity versions
    write_lock(load_register())
    print(f"wrote {LOCK_PATH}")


# -- handlers declare their activity --------------------------------------------------------------

_ATTRIBUTE = "__werkbrug_activity__"


def performs(activity_id: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare the registered processing activity a handler performs."""

    def mark(handler: Callable[..., Any]) -> Callable[..., Any]:
        setattr(handler, _ATTRIBUTE, activity_id)
        return handler

    return mark


def activity_of(handler: Callable[..., Any]) -> str | None:
    while isinstance(handler, functools.partial):
        handler = handler.func
    return getattr(handler, _ATTRIBUTE, None)
