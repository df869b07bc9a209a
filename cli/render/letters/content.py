"""What a letter says, taken from the view a service returned: every value in words, nothing technical.

`GetSubjectRequest` returns a request with every service's answer as it was given (records as held, the art 15
information of the service's activities, its processing-log records). Here that becomes what the templates lay out:
per party the data it holds as labelled tables, why and on which ground, from where, to whom, for how long and
why that long, and who used the data when. Identifiers, pseudonyms, field names and codes are dropped or put in
words (cli/render/letters/vocabulary.py, register_words.py); a code without words stops the letter (UnknownCode).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from cli.render.letters import format as fmt
from cli.render.letters.register_words import (
    activity_words,
    category_words,
    ground_words,
    legal_basis_words,
    source_parties,
)
from cli.render.letters.vocabulary import (
    BREACH_ADVICE,
    BREACH_RISKS,
    NOT_APPLICABLE,
    REFUSALS,
    BreachMeasure,
    FieldWords,
    Lang,
    UnknownCode,
    collection_words,
    field_words,
    message_words,
    word,
)
from shared.contracts.events import BreachCause, BreachDataCategory, Correctable, Right
from shared.contracts.parties import Party, load_parties
from shared.contracts.reasons import ReasonCode

# -- tables --------------------------------------------------------------------------------------------------------


@dataclass
class Table:
    """A labelled table: `columns` None is a table of label and value pairs (rows of two)."""

    heading: str | None
    rows: list[list[str]]
    columns: list[str] | None = None


def value_in_words(spec: FieldWords, value: Any, lang: Lang) -> str:
    """One value as a person reads it, by the kind of its field."""
    match spec.kind:
        case "date":
            return fmt.day(value, lang)
        case "moment":
            return fmt.moment(value, lang)
        case "money":
            return fmt.euros(value, lang)
        case "rate":
            return fmt.percent(value, lang)
        case "weeks":
            return fmt.weeks(int(value), lang)
        case "number":
            return str(int(value))
        case "yes_no":
            return ("ja" if value else "nee") if lang == "nl" else ("yes" if value else "no")
        case "postal_code":
            return fmt.postal_code(str(value))
        case "code":
            return word(spec.codes, value, lang)
        case "text":
            return str(value)
    raise UnknownCode("kind of field", spec.kind)


def _empty(value: Any) -> bool:
    return value is None or value == [] or value == {}


@dataclass
class RecordPart:
    """One record a service holds on the person: its heading and its tables."""

    heading: str
    tables: list[Table]


WIDEST = 7  # a list with more columns than this shows each entry as its own table of label and value


def record_part(collection: str, data: dict[str, Any], lang: Lang) -> RecordPart:
    """A record as tables: its own values as label/value pairs, then one table per group of values (the person's
    details) and per list (quotes, invoices), in the record's order."""
    return RecordPart(collection_words(collection, lang), _tables(collection, (), data, None, lang))


def _tables(collection: str, path: tuple[str, ...], data: dict[str, Any], heading: str | None,
            lang: Lang) -> list[Table]:
    pairs: list[list[str]] = []
    nested: list[Table] = []
    for name, value in data.items():
        spec = field_words(collection, (*path, name))
        if spec.kind == "hidden" or _empty(value):
            continue
        if spec.kind == "group":
            nested += _tables(collection, (*path, name), value, spec.label(lang), lang)
        elif spec.kind == "list":
            nested += _list_tables(collection, (*path, name), value, spec, lang)
        else:
            pairs.append([spec.label(lang), value_in_words(spec, value, lang)])
    return ([Table(heading, pairs)] if pairs else []) + nested


def _list_tables(collection: str, path: tuple[str, ...], items: list[dict[str, Any]], spec: FieldWords,
                 lang: Lang) -> list[Table]:
    """A list of entries as a table with a column per field that any entry fills; a list too wide for a page as
    one table of label and value pairs per entry ("Offerte 1", "Offerte 2")."""
    names: list[str] = []
    for item in items:
        for name, value in item.items():
            if field_words(collection, (*path, name)).kind != "hidden" and not _empty(value) and name not in names:
                names.append(name)
    specs = {name: field_words(collection, (*path, name)) for name in names}
    rows = [[_cell(collection, (*path, name), specs[name], item.get(name), lang) for name in names] for item in items]
    labels = [specs[name].label(lang) for name in names]
    if len(names) <= WIDEST:
        return [Table(spec.label(lang), rows, columns=labels)]
    each = spec.each(lang) if spec.each else f"{spec.label(lang)} {{n}}"
    return [Table(each.format(n=n), [[label, cell] for label, cell in zip(labels, row, strict=True) if cell != "—"])
            for n, row in enumerate(rows, start=1)]


def _cell(collection: str, path: tuple[str, ...], spec: FieldWords, value: Any, lang: Lang) -> str:
    if _empty(value):
        return "—"
    if spec.kind == "list":  # a list in a table cell: each entry as the field says ("{amount} {moment}")
        entries = []
        for item in value:
            words = {name: value_in_words(field_words(collection, (*path, name)), v, lang)
                     for name, v in item.items() if not _empty(v)
                     and field_words(collection, (*path, name)).kind != "hidden"}
            entries.append(spec.item.format(**words) if spec.item else ", ".join(words.values()))
        return "; ".join(entries)
    if spec.kind == "group":
        raise UnknownCode("kind of field", "group in a table cell")
    return value_in_words(spec, value, lang)


# -- the parties' answers --------------------------------------------------------------------------------------------


@dataclass
class Withheld:
    what: str  # the record's heading
    why: str  # the legal duty, in words
    until: str | None  # the date it may go


@dataclass
class Purpose:
    """One activity of a party: what it does with the data and why, which data, from whom, to whom, how long and
    why that long (art 15(1)(a)-(d), (g))."""

    name: str
    purpose: str
    categories: list[str]
    source: str
    recipients: str
    period: str
    why_that_long: str


@dataclass
class PartyPart:
    """What one party holds and does, from the answers of its services."""

    code: str
    name: str
    for_this_party: bool
    basis: str = ""
    records: list[RecordPart] = field(default_factory=list)
    withheld: list[Withheld] = field(default_factory=list)
    erased: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)  # records rectified, restricted, unrestricted, objected
    purposes: list[Purpose] = field(default_factory=list)  # the steps of the process (main activities)
    also: list[Purpose] = field(default_factory=list)  # what supports them (overviews, the log, retention, ...)
    recipients_notified: list[str] = field(default_factory=list)  # party codes (art 19)
    recipients_text: str = ""  # the same in words
    dead_letters_destroyed: int = 0
    answered: bool = False  # every service of the party asked has answered
    holds_nothing: bool = False  # they answered and none holds anything on the person

    @property
    def also_rows(self) -> list[list[str | list[str]]]:
        return [[p.name, p.purpose, [p.period, p.why_that_long]] for p in self.also]


def party_name(code: str, lang: Lang) -> str:
    return word(Party, code, lang)


def parties(view: dict[str, Any], lang: Lang) -> list[PartyPart]:
    """Per party (WerkSaam first), what its services answered."""
    answers: dict[str, dict] = view.get("answers") or {}
    out = []
    for entry in sorted(view.get("by_party", []), key=lambda p: p["party"] != "werksaam"):
        code = entry["party"]
        name = party_name(code, lang)
        part = PartyPart(code=code, name=name, for_this_party=entry["for_this_party"],
                         basis=legal_basis_words(load_parties().legal_basis(code).value, name)(lang))
        mine = [answers[s] for s in entry["services"] if s in answers]
        part.answered = bool(entry["services"]) and len(mine) == len(entry["services"])
        part.holds_nothing = part.answered and all(a["outcome"] == "nothing_held" for a in mine)
        seen: set[str] = set()
        for answer in mine:
            for record in answer.get("records", []):
                heading = collection_words(record["collection"], lang)
                status = record["status"]
                if record.get("ground"):
                    part.withheld.append(Withheld(
                        heading, ground_words(record["ground"])(lang),
                        fmt.day(record["keep_until"], lang) if record.get("keep_until") else None))
                elif status == "erased":
                    part.erased.append(heading)
                elif status in {"rectified", "restricted", "unrestricted", "objected"}:
                    part.changed.append(heading)
                if record.get("data"):
                    part.records.append(record_part(record["collection"], record["data"], lang))
            for info in answer.get("information", []):
                words = activity_words(info["activity"])
                if info["activity"] in seen or not words.about_the_person:
                    continue
                seen.add(info["activity"])
                (part.purposes if words.main else part.also).append(_purpose(info, words, lang))
            part.recipients_notified += [p for p in answer.get("recipients_notified", [])
                                         if p not in part.recipients_notified]
            part.dead_letters_destroyed += answer.get("dead_letters_destroyed", 0)
        part.recipients_text = fmt.joined([party_name(p, lang) for p in part.recipients_notified], lang)
        out.append(part)
    return out


def _purpose(info: dict[str, Any], words, lang: Lang) -> Purpose:
    senders, collector = source_parties(info["source"])
    if senders:
        source = fmt.joined([party_name(p, lang) for p in senders], lang)
    else:
        source = (f"u zelf, en medewerkers van {party_name(collector, lang)}" if lang == "nl"
                  else f"you, and staff of {party_name(collector, lang)}")
    recipients = fmt.joined([party_name(p, lang) for p in info["recipients"]], lang) or (
        "niemand" if lang == "nl" else "nobody")
    categories = [_capital(category_words(c)(lang)) for c in info["categories"]]
    return Purpose(words.name(lang), words.purpose(lang), categories, source,
                   recipients, fmt.period(info["retention"], lang), words.retention(lang))


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


# -- the processing log: who used the data, when and why ------------------------------------------------------------


@dataclass
class LogRow:
    when: str
    who: str
    what: str
    why: str


def processing_log(view: dict[str, Any], lang: Lang) -> list[LogRow]:
    """Every processing-log record the services gave, oldest first, in words."""
    records = [r for answer in (view.get("answers") or {}).values() for r in answer.get("processing_log", [])]
    rows = []
    for record in sorted(records, key=lambda r: r["time"]):
        why = activity_words(record["activity_id"]).name(lang)
        what = message_words(record.get("message_type"), lang) or why
        if record.get("status") == "refused":
            what += " (geweigerd)" if lang == "nl" else " (refused)"
        rows.append(LogRow(fmt.moment(record["time"], lang), party_name(record["party"], lang),
                           _capital(what), why))
    return rows


# -- the person ----------------------------------------------------------------------------------------------------


def person_name(view: dict[str, Any]) -> str | None:
    """The person's name as a service holds it (access and portability answers only), for the salutation."""
    for answer in (view.get("answers") or {}).values():
        for record in answer.get("records", []):
            data = record.get("data") or {}
            person = data.get("person") or data.get("client") or {}
            if person.get("given_name") and person.get("family_name"):
                return f"{person['given_name']} {person['family_name']}"
    return None


def corrections(view: dict[str, Any], lang: Lang) -> list[list[str]]:
    """The corrections a rectification asked for, as label and new value (the value shown as the person gave it)."""
    out = []
    for name, value in (view.get("corrections") or {}).items():
        spec = field_words("referrals", ("person", name))
        out.append([word(Correctable, name, lang).capitalize(), value_in_words(spec, value, lang)])
    return out


# -- the request itself ----------------------------------------------------------------------------------------------


def request_facts(view: dict[str, Any], lang: Lang, today: date) -> dict[str, Any]:
    """What every letter about a request says about the request: when it came, which right, the dates."""
    return {
        "right": view["right"],
        "right_words": word(Right, view["right"], lang),
        "received": fmt.day(view["received_at"], lang),
        "due": fmt.day(view["due"], lang),
        "original_due": fmt.day(view["original_due"], lang),
        "completed": fmt.day(view["completed_at"], lang) if view.get("completed_at") else None,
        "extension_reason": word("extension_reason", view["extension_reason"], lang)
        if view.get("extension_reason") else None,
        "extension_told": fmt.day(view["extension_told_at"], lang) if view.get("extension_told_at") else None,
        "today": fmt.day(today, lang),
        "person": person_name(view),
    }


def refusal_grounds(view: dict[str, Any], lang: Lang) -> list[str]:
    """Why a request was refused, each ground with what the person can do, in words (art 12(4))."""
    out: list[str] = []
    for reason in view.get("reasons", []):
        code = reason["code"]
        if code == "right_not_applicable" and view["right"] in NOT_APPLICABLE:
            text = NOT_APPLICABLE[view["right"]](lang)
        elif code in REFUSALS:
            text = REFUSALS[code](lang)
        else:
            text = word(ReasonCode, code, lang)
            text = _capital(text) + "."
        if text not in out:
            out.append(text)
    return out


# -- a breach notice (GDPR art 34) ---------------------------------------------------------------------------------


def breach_facts(breach: dict[str, Any], lang: Lang, measures: list[str], today: date) -> dict[str, Any]:
    """What a breach letter tells the person (art 34(2), 33(3)(b)-(d)), from the breach desk's view."""
    categories = breach["data_categories"]
    risks = list(dict.fromkeys(BREACH_RISKS[c](lang) for c in categories if c in BREACH_RISKS))
    missing = [c for c in categories if c not in BREACH_RISKS]
    if missing:
        raise UnknownCode("breach data category", missing[0])
    authority = breach.get("authority") or {}
    return {
        "today": fmt.day(today, lang),
        "party": party_name(breach["reported_by"], lang),
        "by_heliomare": breach["reported_by"] == "heliomare",
        "cause": word(BreachCause, breach["presumed_cause"], lang),
        "cause_unknown": breach["presumed_cause"] == "unknown",
        "detected": fmt.day(breach["detected_at"], lang),
        "since": fmt.moment(breach["window"]["since"], lang),
        "until": fmt.moment(breach["window"]["until"], lang),
        "data": [word(BreachDataCategory, c, lang) for c in categories],
        "risks": risks,
        "advice": [BREACH_ADVICE[c](lang) for c in categories if c in BREACH_ADVICE],
        "measures": [word(BreachMeasure, m, lang) for m in measures],
        "authority_notified": fmt.day(authority["notified_at"], lang) if authority.get("notified_at") else None,
    }
