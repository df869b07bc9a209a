"""A party's staff register as its services read it: one JSON file per party, kept by the party's identity
administration (`werkbrug staff …` edits it), read again whenever it changes.

`<WERKBRUG_STAFF_DIR>/<party>.json` holds a `StaffRegister` (shared/contracts/staff.py). A missing or invalid
file is an empty register: every command from a person is refused until it is fixed (fail closed), and the
service logs why once per change of the file.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from pydantic import ValidationError

from shared.config import Settings
from shared.contracts.parties import Party
from shared.contracts.staff import StaffRegister

log = logging.getLogger("werkbrug.staff")


class StaffRegisterInvalid(RuntimeError):
    """The register file is there but unreadable or not a valid register of this party."""


def register_path(settings: Settings, party: Party | str) -> Path:
    return Path(settings.staff_dir) / f"{Party(party).value}.json"


def read_register(path: Path, party: Party | str) -> StaffRegister:
    """The register in `path` (empty when there is none). Raises StaffRegisterInvalid."""
    party = Party(party)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return StaffRegister(party=party)
    except OSError as exc:
        raise StaffRegisterInvalid(f"{path}: cannot be read ({type(exc).__name__})") from None
    try:
        register = StaffRegister.model_validate_json(data)
    except ValidationError as exc:
        where = ", ".join(".".join(str(p) for p in e["loc"]) or "-" for e in exc.errors(include_input=False)[:5])
        raise StaffRegisterInvalid(f"{path}: not a valid staff register (at {where})") from None
    if register.party != party:
        raise StaffRegisterInvalid(f"{path}: the register of another party")
    return register


def write_register(path: Path, register: StaffRegister) -> None:
    """Replace the file at once (a reader sees the old register or the new one, never half of it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(register.model_dump_json(indent=2) + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_registers(settings: Settings) -> dict[Party, StaffRegister]:
    """Every party's register (for tools that act for both parties on a developer machine: the demo, tests)."""
    return {party: read_register(register_path(settings, party), party) for party in Party}


class StaffFile:
    """A party's register file, read again when it changes (a stat per command: cheap)."""

    def __init__(self, path: Path, party: Party) -> None:
        self.path, self.party = path, party
        self._seen: tuple | None = ()
        self._register = StaffRegister(party=party)

    def current(self) -> StaffRegister:
        try:
            st = self.path.stat()
            seen: tuple | None = (st.st_mtime_ns, st.st_size, st.st_ino)
        except OSError:
            seen = None
        if seen != self._seen:
            self._seen = seen
            try:
                self._register = read_register(self.path, self.party)
            except StaffRegisterInvalid as exc:
                log.error("staff register of %s: %s; every command from staff is refused until it is fixed",
                          self.party.value, exc)
                self._register = StaffRegister(party=self.party)
            if seen is None:
                log.warning("no staff register of %s at %s: every command from staff is refused", self.party.value,
                            self.path)
        return self._register
