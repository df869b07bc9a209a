"""The files a person writes for the command line, each with the model its command validates it with, its JSON
Schema and a valid example (`werkbrug schema NAME`, `werkbrug example NAME`: cli/inputs.py). The schema and the
field list in `--help` come from that model, so they cannot drift from what the command accepts."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, create_model

from shared.contracts.commands import Corrections, SubmitReferral
from shared.contracts.parties import Municipality, Party
from shared.privacy.bsn import synthetic_bsn

# What a command adds to the person's fields itself: never from the file (who gives it is --as).
PLUMBING = frozenset({"command", "command_id", "actor"})

PersonFile: type[BaseModel] = create_model(
    "PersonFile",
    __config__=ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True, title="person"),
    __doc__="SubmitReferral's fields, one JSON object. Intake checks the target group of art 4 and the BSN, and "
            "refuses with every reason that applies.",
    **{name: (field.annotation, field) for name, field in SubmitReferral.model_fields.items() if name not in PLUMBING},
)


def person_example(rng: random.Random) -> dict[str, Any]:
    """A person intake accepts: a synthetic BSN (passes the 11-test, drawn anew unless seeded), resident of Hoorn."""
    return {
        "bsn": synthetic_bsn(rng), "given_name": "Fenna", "family_name": "de Boer", "date_of_birth": "1991-04-12",
        "municipality": "Hoorn", "postal_code": "1621 AB", "phone": "+31 6 12345678", "email": "fenna@example.nl",
        "labour_disability": True, "participatiewet_entitlement": True, "support_need": "job_coaching",
        "requested_start": "2030-01-07",
    }


def _addendum_model() -> type[BaseModel]:
    from infra.partners import Addendum  # imports the broker libraries: only when asked

    return Addendum


def addendum_example(_: random.Random) -> dict[str, Any]:
    return {
        "name": "werkpunt", "organisation": "Stichting Werkpunt West-Friesland", "legal_basis": "GDPR 6(1)(e)",
        "purpose": "Labour-market statistics for West-Friesland from the yearly report (no personal data)",
        "topics": ["heliomare.all.report.published.v3"],
        "contact": {"name": "Privacy officer Werkpunt", "email": "privacy@werkpunt.example"},
        "effective_from": "2030-01-01",
        "consents": [
            {"party": Party.WERKSAAM.value, "signed_by": "director", "signed_on": "2029-12-01",
             "reference": "WS-2029-113"},
            {"party": Party.HELIOMARE.value, "signed_by": "director", "signed_on": "2029-12-03",
             "reference": "HM-2029-0457"},
        ],
    }


def corrections_example(_: random.Random) -> dict[str, Any]:
    return {"family_name": "de Boer-Visser", "postal_code": "1623AB", "phone": "+31 6 87654321"}


def _staff_register_model() -> type[BaseModel]:
    from shared.contracts.staff import StaffRegister

    return StaffRegister


def staff_register_example(_: random.Random) -> dict[str, Any]:
    from infra.staff import DEVELOPMENT_STAFF

    return DEVELOPMENT_STAFF[Party.HELIOMARE].model_dump(mode="json")


@dataclass(frozen=True)
class FileInput:
    name: str
    read_by: str  # the command that reads the file
    what: str
    model: Callable[[], type[BaseModel]]  # called when asked: some models import heavy libraries
    example: Callable[[random.Random], dict[str, Any]]


FILE_INPUTS: dict[str, FileInput] = {i.name: i for i in (
    FileInput("person", "werkbrug refer PERSON.json", "the person a caseworker refers", lambda: PersonFile,
              person_example),
    FileInput("addendum", "werkbrug partner add ADDENDUM.json", "a partner's addendum with every party's consent "
              "(art 13.1)", _addendum_model, addendum_example),
    FileInput("corrections", "werkbrug subject-request submit --right rectification --corrections FILE",
              "the corrected personal data (GDPR art 16)", lambda: Corrections, corrections_example),
    FileInput("staff-register", "every service of the party, from <WERKBRUG_STAFF_DIR>/<party>.json (werkbrug "
              "staff add|end edit it)", "a party's staff register (art 8), as its identity administration writes it",
              _staff_register_model, staff_register_example),
)}

InputName = StrEnum("InputName", {name: name for name in FILE_INPUTS})


def json_schema(name: str) -> dict[str, Any]:
    """The JSON Schema (2020-12) of one file input."""
    entry = FILE_INPUTS[name]
    schema = entry.model().model_json_schema()
    about = f"{entry.what[0].upper()}{entry.what[1:]}; read by {entry.read_by}. {schema.get('description', '')}"
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema, "title": name,
            "description": about.strip()}


def example(name: str, seed: int | None = None) -> dict[str, Any]:
    return FILE_INPUTS[name].example(random.Random(seed))


# -- the fields in words, for --help -----------------------------------------------------------------------------

def _kind(prop: dict[str, Any], defs: dict[str, Any]) -> str:
    if "$ref" in prop:
        prop = defs[prop["$ref"].rsplit("/", 1)[-1]]
    if "anyOf" in prop:
        prop = next(p for p in prop["anyOf"] if p.get("type") != "null")
        return _kind(prop, defs)
    if "enum" in prop:
        return "one of " + ", ".join(prop["enum"])
    if prop.get("format") == "date":
        return "date YYYY-MM-DD"
    return {"boolean": "true or false", "integer": "a whole number"}.get(prop.get("type", ""), "text")


def field_lines(model: type[BaseModel]) -> list[str]:
    """One line per field: name, required or optional, what it takes, what it means."""
    schema = model.model_json_schema()
    required, defs = set(schema.get("required", [])), schema.get("$defs", {})
    lines = []
    for name, prop in schema["properties"].items():
        meaning = prop.get("description") or (defs.get(prop.get("$ref", "").rsplit("/", 1)[-1], {}).get("description"))
        lines.append(f"{name} ({'required' if name in required else 'optional'}; {_kind(prop, defs)})"
                     + (f": {meaning}" if meaning else ""))
    return lines


def person_help() -> str:
    municipalities = ", ".join(m.value for m in Municipality)
    fields = "\n".join(f"  {line}" for line in field_lines(PersonFile))
    return ("Refer a person to Heliomare. The personal data comes from a file, which keeps the BSN and name out of "
            "shell history and process lists.\n\n"
            "PERSON.json is one JSON object with these fields (`werkbrug schema person` prints its JSON Schema, "
            "`werkbrug example person` a valid example):\n\n"
            f"{fields}\n\n"
            f"The municipality is written as people write it (Hoorn, Stede Broec; compared as {municipalities}). "
            "Intake refuses with every reason that applies (bsn_invalid, not_resident_west_friesland, "
            "no_labour_disability, ...) and keeps no personal data of a refused referral.")
