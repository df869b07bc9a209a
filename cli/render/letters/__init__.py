"""Letters to the person in plain Dutch (B1), English as the second language (GDPR art 12(1)).

One template per letter kind (templates/), filled from the view a service returned (`GetSubjectRequest`, a breach
desk's `ListBreaches` entry) through content.py, which puts every value in words (vocabulary.py, register_words.py)
and drops every identifier. The sender's letterhead comes from configuration (letterhead.py). chromium.py prints a
letter to PDF and PNG.

    kind = letter_kind(view)                       # "access", "erasure", ... (or NoLetter: why none can be made)
    html = request_letter(view, "nl", Letterhead())
    html = breach_letter(breach_view, "nl", Letterhead(), measures=["access_blocked"])

The machine-readable package the person may also ask for (art 15(3), art 20) is `werkbrug subject-request show
ID --json`, not a letter.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from cli.render.letters import content
from cli.render.letters.letterhead import Letterhead
from cli.render.letters.vocabulary import LANGUAGES, BreachMeasure, Lang, UnknownCode
from shared.contracts.events import Right

__all__ = [
    "LANGUAGES",
    "BreachMeasure",
    "Lang",
    "LetterKind",
    "Letterhead",
    "NoLetter",
    "UnknownCode",
    "breach_letter",
    "letter_kind",
    "request_letter",
]

TEMPLATES = Path(__file__).with_name("templates")


class LetterKind(StrEnum):
    ACCESS = "access"  # art 15
    PORTABILITY = "portability"  # art 20
    REPEAT = "repeat"  # art 12(5): answered by the earlier answer
    RECTIFICATION = "rectification"  # art 16, 19
    ERASURE = "erasure"  # art 17
    RESTRICTION = "restriction"  # art 18
    LIFT_RESTRICTION = "lift_restriction"  # art 18(3)
    OBJECTION = "objection"  # art 21
    REFUSAL = "refusal"  # art 12(4)
    EXTENSION = "extension"  # art 12(3)
    BREACH = "breach"  # art 34


TEMPLATE_OF = {
    LetterKind.ACCESS: "access", LetterKind.PORTABILITY: "access", LetterKind.REPEAT: "repeat",
    LetterKind.RECTIFICATION: "rectification", LetterKind.ERASURE: "erasure", LetterKind.RESTRICTION: "restriction",
    LetterKind.LIFT_RESTRICTION: "restriction", LetterKind.OBJECTION: "objection", LetterKind.REFUSAL: "refusal",
    LetterKind.EXTENSION: "extension", LetterKind.BREACH: "breach",
}

SUBJECTS: dict[LetterKind, tuple[str, str]] = {
    LetterKind.ACCESS: ("Uw vraag: welke gegevens hebben wij over u?",
                        "Your request: which data do we hold about you?"),
    LetterKind.PORTABILITY: ("Uw gegevens in een bestand", "Your data in a file"),
    LetterKind.REPEAT: ("Uw vraag: u kreeg al antwoord", "Your request: you already have our answer"),
    LetterKind.RECTIFICATION: ("Uw gegevens zijn verbeterd", "Your data has been corrected"),
    LetterKind.ERASURE: ("Uw gegevens zijn gewist", "Your data has been erased"),
    LetterKind.RESTRICTION: ("Wij gebruiken uw gegevens minder", "We have restricted the use of your data"),
    LetterKind.LIFT_RESTRICTION: ("De beperking van uw gegevens is gestopt", "The restriction on your data has ended"),
    LetterKind.OBJECTION: ("Uw bezwaar tegen het gebruik van uw gegevens", "Your objection to the use of your data"),
    LetterKind.REFUSAL: ("Wij kunnen uw vraag nu niet uitvoeren", "We cannot carry out your request now"),
    LetterKind.EXTENSION: ("Uw vraag: wij hebben meer tijd nodig", "Your request: we need more time"),
    LetterKind.BREACH: ("Er is een datalek geweest met uw gegevens",
                        "There has been a data breach involving your data"),
}

_BY_RIGHT = {
    Right.ACCESS: LetterKind.ACCESS, Right.PORTABILITY: LetterKind.PORTABILITY,
    Right.RECTIFICATION: LetterKind.RECTIFICATION, Right.ERASURE: LetterKind.ERASURE,
    Right.RESTRICTION: LetterKind.RESTRICTION, Right.LIFT_RESTRICTION: LetterKind.LIFT_RESTRICTION,
    Right.OBJECTION: LetterKind.OBJECTION,
}


class NoLetter(Exception):
    """No letter can be made from this view (yet): `waiting` when the answer is not complete (exit 1), otherwise
    refused (exit 2). The message names no personal data."""

    def __init__(self, message: str, *, waiting: bool = False) -> None:
        super().__init__(message)
        self.waiting = waiting


def letter_kind(view: dict[str, Any], *, extension: bool = False) -> LetterKind:
    """The letter a request's view calls for: its answer, its refusal, or (asked for, or while the request waits
    for its answers after an extension) the notice of the extension."""
    if extension:
        if not view.get("extended"):
            raise NoLetter(f"request {view['request_id']} was not extended: no extension notice")
        return LetterKind.EXTENSION
    match view["status"]:
        case "refused":
            return LetterKind.REFUSAL
        case "open" if view.get("extended"):
            return LetterKind.EXTENSION
        case "open":
            raise NoLetter(f"request {view['request_id']} is open: not every service has answered; no letter yet",
                           waiting=True)
    if view.get("answered_by"):
        return LetterKind.REPEAT
    return _BY_RIGHT[Right(view["right"])]


def _environment() -> Environment:
    return Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["j2", "html"]),
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


def _render(kind: LetterKind, lang: Lang, letterhead: Letterhead, **context: Any) -> str:
    if lang not in LANGUAGES:
        raise NoLetter(f"no letters in {lang!r}; one of {', '.join(LANGUAGES)}")
    subject = SUBJECTS[kind][0 if lang == "nl" else 1]
    template = _environment().get_template(f"{TEMPLATE_OF[kind]}.html.j2")
    return template.render(lang=lang, nl=lang == "nl", letterhead=letterhead, subject=subject, kind=kind.value,
                           **context)


def request_letter(view: dict[str, Any], lang: Lang, letterhead: Letterhead, *, kind: LetterKind | None = None,
                   today: date | None = None) -> str:
    """The letter (HTML) answering a data-subject request, from its `GetSubjectRequest` view (with the answers)."""
    kind = kind or letter_kind(view)
    today = today or date.today()
    facts = content.request_facts(view, lang, today)
    context: dict[str, Any] = {**facts, "parties": content.parties(view, lang)}
    if kind in {LetterKind.ACCESS, LetterKind.PORTABILITY}:
        log = content.processing_log(view, lang)
        context |= {"portability": kind == LetterKind.PORTABILITY, "log": log,
                    "log_rows": [[r.when, r.who, r.what, r.why] for r in log]}
    elif kind == LetterKind.RECTIFICATION:
        context["corrections"] = content.corrections(view, lang)
    elif kind == LetterKind.ERASURE:
        context["erasure_verified"] = bool(view.get("erasure_verified"))
    elif kind in {LetterKind.RESTRICTION, LetterKind.LIFT_RESTRICTION}:
        context["lifted"] = kind == LetterKind.LIFT_RESTRICTION
    elif kind == LetterKind.REFUSAL:
        context["grounds"] = content.refusal_grounds(view, lang)
    elif kind == LetterKind.EXTENSION and not facts["extension_reason"]:
        raise NoLetter(f"request {view['request_id']} was not extended: no extension notice")
    return _render(kind, lang, letterhead, **context)


def breach_letter(breach: dict[str, Any], lang: Lang, letterhead: Letterhead, *, measures: list[str] = (),
                  today: date | None = None) -> str:
    """The letter (HTML) to the persons a breach concerns (art 34), once the breach desk decided to inform them.
    It names no person: the desk sends it to each person the breach concerns."""
    decision = breach.get("subjects_decision")
    if decision is None:
        raise NoLetter(f"breach {breach['breach_id']}: the decision on informing the persons is not recorded yet "
                       "(werkbrug breach decide-subjects)")
    if not decision["inform"]:
        raise NoLetter(f"breach {breach['breach_id']}: the breach desk decided not to inform the persons "
                       f"({decision['reason']})")
    facts = content.breach_facts(breach, lang, list(measures), today or date.today())
    return _render(LetterKind.BREACH, lang, letterhead, person=None, **facts)
