"""Letters to the person (GDPR art 12(1), 15-21, 34): every kind, in Dutch and English, from realistic views.

The views are made as the services make them: the five services run in memory (tests/unit/cooperation.py), people
go through the whole process (referral, quote, trajectory, invoices), and the privacy desk takes their requests
and records a breach. Each letter is checked as a person would read it: no identifier, JSON or code, dates and
amounts written out, the complaint to the Autoriteit Persoonsgegevens, the contact details, the AVG explained.
The letters are also photographed with headless Chromium into var/letters/ for a person to look at.
"""

from __future__ import annotations

import random
import re
import uuid
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from cli.render.letters import (
    LANGUAGES,
    Letterhead,
    NoLetter,
    UnknownCode,
    breach_letter,
    letter_kind,
    request_letter,
)
from cli.render.letters import content as letter_content
from cli.render.letters.chromium import print_pdf, screenshots
from cli.render.letters.format import euros, period
from cli.render.letters.register_words import (
    ACTIVITIES,
    CATEGORIES,
    GROUNDS,
    LEGAL_BASES,
    activity_words,
    source_parties,
)
from cli.render.letters.vocabulary import (
    BREACH_RISKS,
    CODES,
    COLLECTIONS,
    MESSAGES,
    NOT_FOR_PERSONS,
    REFUSALS,
    FieldWords,
    field_words,
    message_words,
    word,
)
from infra.services import DEFINITIONS
from services.subject_rights.domain import RequestStatus
from shared.contracts import commands, events, parties, personal, reasons, staff
from shared.contracts.commands import (
    Command,
    DecideSubjectNotification,
    ExtendSubjectRequest,
    IdentityCheck,
    ListBreaches,
    RecordAuthorityNotification,
    ReportBreach,
)
from shared.contracts.envelope import _REGISTRY
from shared.contracts.events import BreachCause, BreachDataCategory, HeldRecord, Right
from shared.privacy.bsn import synthetic_bsn
from shared.privacy.grounds import GROUNDS as LEGAL_GROUNDS
from shared.privacy.processing_log import Kind
from shared.privacy.register import load_register
from shared.privacy.subject_data import processing_information, source_of
from tests.unit.cooperation import Cooperation, a_person_who_found_work, a_request, desk_signed, the_request

ROOT = Path(__file__).resolve().parents[2]
PICTURES = ROOT / "var" / "letters"
TODAY = date(2027, 7, 5)
LETTERHEAD = Letterhead(street="Loketstraat 12", phone="0229 28 28 28", email="privacy@werksaam.nl",
                        website="www.werksaam.nl", dpo_email="fg@werksaam.nl")  # as configured: not the examples

# -- reading a letter as a person does ------------------------------------------------------------------------------


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs) -> None:
        self._skip += tag in {"style", "script"}

    def handle_endtag(self, tag: str) -> None:
        self._skip -= tag in {"style", "script"}

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def visible(html: str) -> str:
    """The text a person sees (no markup, no style sheet), with its spaces made plain."""
    parser = _Text()
    parser.feed(html)
    return re.sub(r"\s+", " ", " ".join(parser.parts).replace("\u00a0", " "))


UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
SNAKE = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b")
ISO_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
DUTCH_DATE = re.compile(r"\b\d{1,2} (januari|februari|maart|april|mei|juni|juli|augustus|september|oktober|november|"
                        r"december) \d{4}\b")
ENGLISH_DATE = re.compile(r"\b\d{1,2} (January|February|March|April|May|June|July|August|September|October|November|"
                          r"December) \d{4}\b")
# English words that are field or collection names of the records: never in a Dutch letter.
FIELD_WORDS_NOT_DUTCH = ("municipality", "client", "quotes", "orders", "commission", "subject", "outcome", "phase",
                         "sequence", "invoices", "person", "trajectory", "progress", "decision", "referrals", "cases",
                         "trajectories", "accounts", "billing", "intake", "offer", "withheld", "erased", "held")
TECHNICAL = ("urn:", "GDPR 6(1)", "P7Y", "P90D", "P5Y", "psn_", "werkbrug", "subject_rights", ".v1", "None", "null",
             "true", "false", "Decimal", "0.21", "4800.00")


def read_as_a_person(html: str, lang: str) -> str:
    """Everything a letter must and must not show, whatever its kind. Returns the visible text."""
    text = visible(html)
    assert not UUID.search(text), UUID.search(text)
    assert not set(text) & set('{}[]"'), f"JSON-like characters: {set(text) & set('{}[]')}"
    assert not SNAKE.findall(text), SNAKE.findall(text)
    assert not ISO_DATE.search(text), ISO_DATE.search(text)
    for technical in TECHNICAL:
        assert technical not in text, technical
    if lang == "nl":
        for name in FIELD_WORDS_NOT_DUTCH:
            assert not re.search(rf"\b{name}\b", text, re.IGNORECASE), name
        assert DUTCH_DATE.search(text) and not ENGLISH_DATE.search(text)
        assert "Autoriteit Persoonsgegevens" in text and "klacht" in text and "rechter" in text
        assert text.count("Algemene verordening gegevensbescherming") == 1  # the AVG explained, once
        assert "Heeft u vragen?" in text
    else:
        assert ENGLISH_DATE.search(text) and not DUTCH_DATE.search(text)
        assert "Autoriteit Persoonsgegevens" in text and "complain" in text and "court" in text
        assert text.count("General Data Protection Regulation") == 1
    assert "Postbus 93374" in text  # where to complain
    for contact in (LETTERHEAD.phone, LETTERHEAD.email, LETTERHEAD.dpo_email, LETTERHEAD.street):
        assert contact in text, contact
    assert "Niet versturen" not in text and "Do not send" not in text  # configured letterhead: no example banner
    return text


# -- the views, as the services make them ----------------------------------------------------------------------------


def a_bsn(name: str) -> str:
    return synthetic_bsn(random.Random(f"letters-{name}"))


def identity(method: str = "id_document_at_desk") -> IdentityCheck:
    return IdentityCheck(method=method, verified_by="desk.hoorn", verified_at=datetime.now(UTC))


@pytest.fixture(scope="module")
async def views() -> dict[str, Any]:
    """One view per letter kind (and the refusals by ground), from one in-memory cooperation."""
    coop = Cooperation()
    await desk_signed(coop)
    out: dict[str, Any] = {}
    people = {name: (await a_person_who_found_work(coop, bsn=a_bsn(name), given_name=given, family_name=family)).bsn
              for name, given, family in (("anna", "Anna", "Visser"), ("bram", "Bram", "de Vries"),
                                          ("chantal", "Chantal", "Bakker"), ("daan", "Daan", "Smit"),
                                          ("eva", "Eva", "Meijer"), ("gijs", "Gijs", "de Jong"),
                                          ("hanna", "Hanna", "Mulder"))}
    out["access"] = await a_request(coop, people["anna"], Right.ACCESS)
    out["portability"] = await a_request(coop, people["anna"], Right.PORTABILITY)
    out["repeat"] = await a_request(coop, people["anna"], Right.ACCESS)
    out["rectification"] = await a_request(coop, people["bram"], Right.RECTIFICATION,
                                           corrections={"family_name": "de Vries-Jansen", "phone": "06 98765432"})
    out["restriction"] = await a_request(coop, people["chantal"], Right.RESTRICTION)
    out["lift_restriction"] = await a_request(coop, people["chantal"], Right.LIFT_RESTRICTION,
                                              person_told_at=datetime.now(UTC))
    out["objection"] = await a_request(coop, people["daan"], Right.OBJECTION)
    out["erasure"] = await a_request(coop, people["eva"], Right.ERASURE)
    out["erasure:werksaam"] = await a_request(coop, people["hanna"], Right.ERASURE, parties=["werksaam"])
    # refusals, one per ground the desk can refuse on
    nobody = a_bsn("nobody")
    out["refused:identity_not_verified"] = await a_request(coop, nobody, Right.ACCESS, method="not_verified")
    out["refused:right_not_applicable"] = await a_request(coop, nobody, Right.PORTABILITY, parties=["werksaam"])
    out["refused:objection_not_applicable"] = await a_request(coop, nobody, Right.OBJECTION, parties=["heliomare"])
    out["refused:missing_field"] = await a_request(coop, nobody, Right.RECTIFICATION)
    out["refused:not_told_before_lifting"] = await a_request(coop, nobody, Right.LIFT_RESTRICTION)
    out["refused:invalid_value"] = await a_request(coop, nobody, Right.ACCESS,
                                                   received_at=datetime.now(UTC) + timedelta(days=3))
    # an open request, extended: billing is down, so it waits for billing's answer
    coop.down = {"billing"}
    waiting = await a_request(coop, people["gijs"], Right.ACCESS)
    out["open"] = waiting
    out["refused:duplicate_request"] = await a_request(coop, people["gijs"], Right.ACCESS)
    extended = await coop.command("subject_rights", ExtendSubjectRequest(
        request_id=uuid.UUID(waiting["request_id"]), reason="complex_request", person_told_at=datetime.now(UTC)))
    assert extended["ok"], extended["reasons"]
    out["extension"] = await the_request(coop, waiting["request_id"])
    coop.down = set()
    # a breach at Heliomare, reported to WerkSaam, which decides to inform the persons
    now = datetime.now(UTC)
    reported = await coop.command("offer", ReportBreach(
        detected_at=now - timedelta(hours=3), presumed_cause=BreachCause.MISDIRECTED_MESSAGE,
        data_categories=[BreachDataCategory.IDENTIFICATION, BreachDataCategory.CONTACT,
                         BreachDataCategory.SUPPORT_NEED],
        subject_categories=["jobseekers"], window_since=now - timedelta(days=2), window_until=now - timedelta(hours=3),
        services=["offer"], subject_count=4))
    assert reported["ok"], reported["reasons"]
    breach_id = uuid.UUID(reported["result"]["breach_id"])
    for command in (RecordAuthorityNotification(breach_id=breach_id, at=now, reference="AP-2027-0042"),
                    DecideSubjectNotification(breach_id=breach_id, inform=True, reason="high_risk")):
        done = await coop.command("subject_rights", command)
        assert done["ok"], done["reasons"]
    listed = await coop.command("subject_rights", ListBreaches())
    [out["breach"]] = [b for b in listed["result"] if b["breach_id"] == str(breach_id)]
    not_told = await coop.command("offer", ReportBreach(
        detected_at=now - timedelta(hours=1), presumed_cause=BreachCause.LOST_OR_STOLEN_DEVICE,
        data_categories=[BreachDataCategory.PSEUDONYM], subject_categories=["jobseekers"],
        window_since=now - timedelta(days=1), window_until=now - timedelta(hours=1), services=["offer"]))
    not_told_id = uuid.UUID(not_told["result"]["breach_id"])
    decided = await coop.command("offer", DecideSubjectNotification(breach_id=not_told_id, inform=False,
                                                                    reason="data_unintelligible"))
    assert decided["ok"], decided["reasons"]
    out["breach:not_informed"] = decided["result"]
    out["breach:undecided"] = (await coop.command("subject_rights", ListBreaches()))["result"][0] | {
        "subjects_decision": None}
    out["names"] = {"anna": "Anna Visser"}
    return out


def letter(views: dict[str, Any], name: str, lang: str = "nl", **options: Any) -> str:
    if name.startswith("breach"):
        return breach_letter(views[name], lang, LETTERHEAD, today=TODAY, **options)
    return request_letter(views[name], lang, LETTERHEAD, today=TODAY, **options)


KINDS = ["access", "portability", "repeat", "rectification", "erasure", "restriction", "lift_restriction",
         "objection", "refused:identity_not_verified", "extension", "breach"]


# -- every kind, in both languages ------------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("name", KINDS)
def test_every_letter_reads_as_plain_language_without_ids_codes_or_json(views, name, lang):
    read_as_a_person(letter(views, name, lang), lang)


def test_the_views_call_for_the_letter_of_their_kind(views):
    assert {name: letter_kind(views[name]).value for name in KINDS if name != "breach"} == {
        "access": "access", "portability": "portability", "repeat": "repeat", "rectification": "rectification",
        "erasure": "erasure", "restriction": "restriction", "lift_restriction": "lift_restriction",
        "objection": "objection", "refused:identity_not_verified": "refusal", "extension": "extension"}


def test_the_access_letter_shows_each_partys_data_in_labelled_tables_with_dates_and_euros_written_out(views):
    text = read_as_a_person(letter(views, "access"), "nl")
    assert "Beste Anna Visser," in text
    for heading in ("Uw gegevens bij WerkSaam Westfriesland", "Uw gegevens bij Heliomare", "Uw aanmelding",
                    "Uw persoonsgegevens", "Offerte 1", "Uw traject", "Facturen voor uw traject",
                    "Betalingen voor uw traject", "Opdracht van WerkSaam"):
        assert heading in text, heading
    assert "Voornaam Anna" in text and "Achternaam Visser" in text and "Gemeente Hoorn" in text
    assert "Geboortedatum 12 april 1991" in text and "Postcode 1621 AB" in text
    assert "Bedrag zonder btw € 4.800,00" in text and "€ 2.400,00 vooraf; € 2.400,00 achteraf" in text
    assert "Resultaat betaald werk" in text and "Uren per week 24 tot 32 uur per week" in text
    assert "Soort contract tijdelijk contract" in text and "begeleiding door een jobcoach" in text
    assert "€ 504,00" in text and "€ 2.904,00" in text and "21%" in text
    assert "Startdatum 11 januari 2027" in text and "1 maart 2027 training gaat volgens plan" in text


def test_the_access_letter_says_why_on_which_ground_from_whom_to_whom_and_how_long(views):
    text = read_as_a_person(letter(views, "access"), "nl")
    assert "een taak die de wet aan WerkSaam Westfriesland geeft: de Participatiewet" in text
    assert "AVG artikel 6 lid 1 onder e" in text and "AVG artikel 6 lid 1 onder b" in text
    assert "Uw aanmelding beoordelen en doorgeven aan Heliomare" in text
    assert "Van wie u zelf, en medewerkers van WerkSaam Westfriesland" in text  # collected by WerkSaam
    assert "Van wie WerkSaam Westfriesland" in text  # Heliomare received it from WerkSaam
    assert "Aan wie Heliomare" in text and "Hoe lang bewaard 7 jaar" in text
    assert "De Archiefwet verplicht WerkSaam om re-integratiedossiers 7 jaar te bewaren" in text
    assert "belastingwet verplicht Heliomare" in text and "90 dagen" in text
    assert "Neemt een computer besluiten over u? Nee." in text  # art 15(1)(h)
    assert "Wat kunt u nog meer doen?" in text and "bezwaar maken" in text
    assert "Bijlage: wie uw gegevens gebruikte" in text and "Offerte gestuurd aan WerkSaam" in text
    assert "Geheimhouding van medewerkers" not in text  # the staff register is not about the person


def test_the_english_access_letter_has_the_same_content_in_english(views):
    text = read_as_a_person(letter(views, "access", "en"), "en")
    assert "Dear Anna Visser," in text and "Your data at Heliomare" in text
    assert "Amount excluding VAT €4,800.00" in text and "€2,400.00 in advance; €2,400.00 afterwards" in text
    assert "Date of birth 12 April 1991" in text and "Result paid work" in text
    assert "GDPR article 6(1)(e)" in text and "How long it is kept 7 years" in text


def test_the_portability_letter_is_about_heliomares_data_and_the_file_sent_with_it(views):
    text = read_as_a_person(letter(views, "portability"), "nl")
    assert "in een bestand" in text and "Uw gegevens bij Heliomare" in text
    assert "Uw gegevens bij WerkSaam" not in text  # art 20(1)(a): not WerkSaam's public task


def test_a_repeated_request_is_told_the_earlier_answer_stands(views):
    text = read_as_a_person(letter(views, "repeat"), "nl")
    assert "minder dan 30 dagen geleden al antwoord" in text and "gratis" in text


def test_the_rectification_letter_names_what_was_corrected_and_who_was_told(views):
    text = read_as_a_person(letter(views, "rectification"), "nl")
    assert "Achternaam de Vries-Jansen" in text and "Telefoonnummer 06 98765432" in text
    assert "WerkSaam Westfriesland heeft uw gegevens verbeterd" in text and "Heliomare heeft uw gegevens" in text
    assert "de verbetering ook aan hen doorgegeven (AVG artikel 19)" in text
    assert "verbeterd. WerkSaam Westfriesland gaf uw gegevens eerder aan Heliomare" in text
    assert "Vraag ons om het te verbeteren" not in text  # the right just exercised is not offered again


def test_the_erasure_letter_says_what_was_erased_and_what_the_law_keeps_why_and_until_when(views):
    text = read_as_a_person(letter(views, "erasure"), "nl")
    assert "Heliomare heeft gewist: Uw aanmelding bij Heliomare Uw traject" in text
    assert "De Archiefwet verplicht WerkSaam om uw re-integratiedossier en de betalingen 7 jaar te bewaren" in text
    assert "Uw postcode, telefoonnummer en e-mailadres zijn gewist" in text
    assert "De belastingwet verplicht Heliomare om facturen" in text
    assert re.search(r"Bewaard tot \d{1,2} \w+ 20\d\d", text)
    assert "Er was niets meer, behalve wat hierboven staat" in text  # the erasure was verified


def test_an_erasure_for_one_party_says_nothing_changes_at_the_other(views):
    text = read_as_a_person(letter(views, "erasure:werksaam"), "nl")
    assert "U vroeg dit niet voor Heliomare. Bij Heliomare verandert niets." in text
    assert "De Archiefwet verplicht WerkSaam" in text and "Heliomare heeft gewist" not in text


def test_the_restriction_letters_say_what_changes_and_that_the_person_is_told_before_it_ends(views):
    restricted = read_as_a_person(letter(views, "restriction"), "nl")
    assert "Wij hebben uw gegevens beperkt" in restricted and "laten wij het u altijd eerst weten" in restricted
    assert "uw aanmelding en uw traject niet verder" in restricted
    lifted = read_as_a_person(letter(views, "lift_restriction"), "nl")
    assert "gebruiken uw gegevens weer" in lifted


def test_the_objection_letter_says_werksaam_stops_and_why_heliomare_goes_on(views):
    text = read_as_a_person(letter(views, "objection"), "nl")
    assert "WerkSaam Westfriesland gebruikt uw gegevens vanaf nu niet meer" in text
    assert "Voor Heliomare verandert niets" in text and "geen bezwaar maken" in text
    assert "Dan kunt u bezwaar maken" not in text  # the right just exercised is not offered again


@pytest.mark.parametrize(("name", "says"), [
    ("refused:identity_not_verified", "Kom langs aan de balie met uw paspoort"),
    ("refused:right_not_applicable", "Daarom geldt dit niet voor de gegevens bij WerkSaam"),
    ("refused:objection_not_applicable", "Heliomare gebruikt uw gegevens voor de afspraken met u"),
    ("refused:missing_field", "wij weten niet welke gegevens niet kloppen"),
    ("refused:not_told_before_lifting", "moeten wij u dat eerst laten weten"),
    ("refused:invalid_value", "Een gegeven bij uw vraag klopte niet"),
    ("refused:duplicate_request", "Die vraag behandelen wij nog"),
])
def test_a_refusal_letter_gives_each_ground_in_words_and_what_the_person_can_do(views, name, says):
    assert views[name]["status"] == RequestStatus.REFUSED
    text = read_as_a_person(letter(views, name), "nl")
    assert "Wij kunnen uw vraag nu niet uitvoeren" in text and says in text


def test_every_ground_the_desk_refuses_a_request_on_has_its_own_explanation(views):
    codes = {r["code"] for name, view in views.items() if name.startswith("refused:") for r in view["reasons"]}
    assert codes - {"right_not_applicable"} <= set(REFUSALS), codes - set(REFUSALS)


def test_the_extension_letter_gives_the_reason_and_the_new_date(views):
    view = views["extension"]
    assert view["status"] == "open" and view["extended"]
    text = read_as_a_person(letter(views, "extension"), "nl")
    assert "Uw vraag is ingewikkeld" in text and "AVG artikel 12 lid 3" in text
    due, first = date.fromisoformat(view["due"]), date.fromisoformat(view["original_due"])
    assert f"uiterlijk op {due.day} " in text and f"uiterlijk op {first.day} " in text


def test_an_open_request_has_no_letter_yet_and_a_request_not_extended_no_extension_notice(views):
    assert not views["open"]["extended"]  # as it was before the extension
    with pytest.raises(NoLetter) as waiting:
        letter_kind(views["open"])
    assert waiting.value.waiting
    with pytest.raises(NoLetter):
        letter_kind(views["access"], extension=True)


def test_the_breach_letter_says_what_happened_which_data_what_it_can_mean_what_was_done_and_what_to_do(views):
    html = letter(views, "breach", measures=["recipient_asked_to_delete", "staff_instructed"])
    text = read_as_a_person(html, "nl")
    assert "Er is een datalek geweest" in text and "Het datalek was bij Heliomare" in text
    assert "een bericht is naar de verkeerde persoon of organisatie gegaan" in text
    assert "uw naam, geboortedatum en burgerservicenummer (BSN)" in text and "identiteitsfraude" in text
    assert "Wij hebben de ontvanger gevraagd de gegevens te wissen" in text
    assert "gemeld bij de Autoriteit Persoonsgegevens" in text and "Centraal Meldpunt Identiteitsfraude" in text
    assert "Beste meneer, mevrouw," in text  # it names no person: the desk sends it to each one concerned


def test_no_breach_letter_before_the_decision_or_when_the_desk_decided_not_to_inform(views):
    with pytest.raises(NoLetter, match="decided not to inform"):
        letter(views, "breach:not_informed")
    with pytest.raises(NoLetter, match="not recorded yet"):
        letter(views, "breach:undecided")


def test_whatever_the_data_holds_is_escaped(views):
    view = {**views["access"], "answers": {
        service: {**answer, "records": [
            {**r, "data": {**r["data"], "person": {**r["data"]["person"], "family_name": "<script>x</script>"}}}
            if r["collection"] == "referrals" else r for r in answer["records"]]}
        for service, answer in views["access"]["answers"].items()}}
    html = request_letter(view, "nl", LETTERHEAD, today=TODAY)
    assert "<script>x" not in html and "&lt;script&gt;x&lt;/script&gt;" in html


def test_a_letter_with_the_example_letterhead_says_it_must_not_be_sent(views):
    text = visible(request_letter(views["repeat"], "nl", Letterhead(), today=TODAY))
    assert Letterhead().example and "Niet versturen" in text


def test_the_letterhead_comes_from_the_environment_over_the_file(tmp_path, monkeypatch):
    settings = tmp_path / "letterhead.toml"
    settings.write_text('name = "WerkSaam Westfriesland"\nphone = "0229 11 11 11"\nemail = "loket@werksaam.nl"\n')
    monkeypatch.setenv("WERKBRUG_LETTERHEAD_FILE", str(settings))
    monkeypatch.setenv("WERKBRUG_LETTERHEAD_PHONE", "0229 22 22 22")
    letterhead = Letterhead()
    assert (letterhead.phone, letterhead.email, letterhead.city) == ("0229 22 22 22", "loket@werksaam.nl", "Hoorn")


def test_a_bad_letterhead_file_is_refused(tmp_path, monkeypatch):
    settings = tmp_path / "letterhead.toml"
    settings.write_text('name = ""\nfax = "0229"\n')
    monkeypatch.setenv("WERKBRUG_LETTERHEAD_FILE", str(settings))
    with pytest.raises(ValueError) as refused:
        Letterhead()
    assert {e["loc"][0] for e in refused.value.errors()} == {"name", "fax"}


# -- words for every code: a code added without words fails here ---------------------------------------------------


def _contract_enums() -> set[type]:
    from enum import StrEnum
    return {o for module in (commands, events, parties, personal, reasons, staff) for o in vars(module).values()
            if isinstance(o, type) and issubclass(o, StrEnum) and o.__module__ == module.__name__}


def test_every_value_of_every_enum_of_the_contracts_has_words_or_is_never_shown_to_a_person():
    enums = _contract_enums()
    undecided = {e.__name__ for e in enums if e not in CODES and e not in NOT_FOR_PERSONS}
    assert not undecided, f"add words to cli/render/letters/vocabulary.py CODES (or NOT_FOR_PERSONS): {undecided}"
    for enum in enums & set(CODES):
        for member in enum:
            for lang in LANGUAGES:
                assert word(enum, member, lang).strip(), (enum.__name__, member.value, lang)


def _literal(model, name: str) -> set[str]:
    from typing import get_args
    return set(get_args(model.model_fields[name].annotation))


@pytest.mark.parametrize(("domain", "values"), [
    ("identity_method", _literal(IdentityCheck, "method")),
    ("extension_reason", _literal(ExtendSubjectRequest, "reason")),
    ("record_status", _literal(HeldRecord, "status")),
    ("processing_kind", set(__import__("typing").get_args(Kind))),
    ("quote_status", {"sent", "approved", "rejected"}),
])
def test_every_value_of_a_literal_code_has_words(domain, values):
    assert values and values == set(CODES[domain]), values ^ set(CODES[domain])


def _holder_records() -> list[tuple[str, type]]:
    """Every record a service answering subject requests holds on a person."""
    found = []
    for make in DEFINITIONS.values():
        definition = make()
        if definition.answers_subject_requests:
            found += [(spec.name, spec.model) for spec in definition.repositories if spec.about_subjects]
    return found


def _fields(model, path: tuple[str, ...] = ()):
    from typing import get_args, get_origin

    from pydantic import BaseModel
    for name, info in model.model_fields.items():
        annotation = info.annotation
        args = [a for a in get_args(annotation) if a is not type(None)] or [annotation]
        inner = args[0]
        if get_origin(inner) is list:
            inner = get_args(inner)[0]
        yield (*path, name), annotation, inner
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            yield from _fields(inner, (*path, name))


def _fits(words: FieldWords, annotation, inner) -> bool:
    """Whether a field's words show its type: an enum as its words, a date as a date, a model as a table."""
    import uuid as uuid_module
    from datetime import date as date_type
    from datetime import datetime as datetime_type
    from decimal import Decimal
    from enum import StrEnum
    from typing import get_args, get_origin

    from pydantic import BaseModel
    if words.kind == "hidden":
        return True
    is_list = get_origin(annotation) is list or any(get_origin(a) is list for a in get_args(annotation))
    if isinstance(inner, type) and issubclass(inner, BaseModel):
        return words.kind == ("list" if is_list else "group")
    if isinstance(inner, type) and issubclass(inner, StrEnum):
        codes = words.codes if isinstance(words.codes, str) else words.codes.__name__
        return words.kind == "code" and set(CODES[words.codes]) >= {m.value for m in inner} and bool(codes)
    if inner is datetime_type or getattr(inner, "__name__", "") == "AwareDatetime":
        return words.kind == "moment"
    if inner is date_type:
        return words.kind == "date"
    if inner is Decimal:
        return words.kind in {"money", "rate"}
    if inner is uuid_module.UUID:
        return False  # an identifier is never shown
    if inner is int:
        return words.kind in {"number", "weeks"}
    if inner is bool:
        return words.kind == "yes_no"
    return words.kind in {"text", "postal_code", "code"}


def test_every_field_of_every_record_held_on_a_person_has_words_that_fit_its_type():
    records = _holder_records()
    assert {name for name, _ in records} == {"referrals", "cases", "trajectories", "accounts"}
    for collection, model in records:
        assert collection in COLLECTIONS, collection
        for path, annotation, inner in _fields(model):
            words = field_words(collection, path)  # UnknownCode when there are none
            assert _fits(words, annotation, inner), (collection, path, words.kind)
            assert words.kind == "hidden" or (words.label.nl and words.label.en), (collection, path)


def test_a_field_without_words_stops_the_letter_instead_of_showing_its_name():
    with pytest.raises(UnknownCode):
        field_words("referrals", ("status_reason",))
    with pytest.raises(UnknownCode):
        field_words("cases", ("quotes", "new_field"))
    with pytest.raises(UnknownCode):
        word("referral_status", "archived", "nl")
    view = {"by_party": [{"party": "werksaam", "for_this_party": True, "services": ["intake"], "did": ""}],
            "answers": {"intake": {"outcome": "done", "records": [
                {"collection": "referrals", "record_id": "1", "status": "held", "data": {"hobby": "chess"}}]}}}
    with pytest.raises(UnknownCode):
        letter_content.parties(view, "nl")


def test_every_activity_category_legal_basis_and_ground_of_the_register_has_words_written_for_its_version():
    register = load_register()
    for activity in register.activity:
        words = activity_words(activity.id)
        assert words.version == activity.version, f"{activity.id}: read its words again for the new version"
        for category in activity.categories:
            assert category.name in CATEGORIES, category.name
    lock = __import__("json").loads((ROOT / "shared/privacy/register.lock.json").read_text())
    for activity_id in lock:  # older versions appear in older processing-log records
        activity_words(activity_id)
    assert set(ACTIVITIES) == {f"{a.party.value}:{a.id.split(':')[-2]}" for a in register.activity}
    assert set(LEGAL_BASES) == set(parties.LegalBasis)
    assert {g.key for g in LEGAL_GROUNDS} == set(GROUNDS)


def test_where_the_data_comes_from_is_read_from_every_activitys_source():
    register = load_register()
    for info in processing_information(register.activity, register):
        senders, collector = source_parties(info.source)
        assert bool(senders) != bool(collector), info.source
        assert set(senders) | ({collector} if collector else set()) <= {p.value for p in parties.Party}
    assert source_parties(source_of(register.get("urn:werkbrug:activity:heliomare:quote:v3"), register)) == (
        ["werksaam"], None)


def test_every_message_a_processing_log_names_has_words():
    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    names = {t for t, _ in _REGISTRY} | {c.model_fields["command"].default for c in subclasses(Command)
                                         if "command" in c.model_fields} | {"retention"}
    assert names - set(MESSAGES) == set(), names - set(MESSAGES)
    assert message_words("quote.sent.v1", "nl") == "offerte gestuurd aan WerkSaam"
    assert message_words("query:get_referral", "en") == "your file looked at"
    assert message_words(None, "nl") is None  # the activity then says what happened
    with pytest.raises(UnknownCode):
        message_words("command:launch_rocket", "nl")


def test_every_breach_data_category_says_what_it_can_mean_for_the_person():
    assert set(BREACH_RISKS) == {c.value for c in BreachDataCategory}


@pytest.mark.parametrize(("value", "nl", "en"), [
    ("4800.00", "€ 4.800,00", "€4,800.00"), ("1234567.5", "€ 1.234.567,50", "€1,234,567.50"),
    ("0.05", "€ 0,05", "€0.05"), ("-10", "-€ 10,00", "-€10.00"),
])
def test_amounts_are_euros_with_the_languages_own_separators(value, nl, en):
    assert euros(value, "nl").replace("\u00a0", " ") == nl and euros(value, "en") == en


def test_periods_and_dates_are_words():
    assert (period("P7Y", "nl"), period("P90D", "nl"), period("P1Y6M", "en")) == (
        "7 jaar", "90 dagen", "1 year and 6 months")
    from cli.render.letters.format import day, moment
    assert day("2027-03-03", "nl") == "3 maart 2027" and day("2027-03-03", "en") == "3 March 2027"
    assert moment("2027-07-01T07:30:00+00:00", "nl") == "1 juli 2027 om 09:30"  # Dutch summer time


# -- for a person to look at: PNG pictures and a PDF -----------------------------------------------------------------


def test_the_letters_are_printed_to_pdf_and_photographed_to_png_in_var_letters(views):
    PICTURES.mkdir(parents=True, exist_ok=True)
    pages = []
    for name, lang in [(name, "nl") for name in KINDS] + [("access", "en"), ("breach", "en")]:
        options = {"measures": ["recipient_asked_to_delete"]} if name == "breach" else {}
        html = letter(views, name, lang, **options)
        stem = f"{name.replace('refused:', 'refusal-').replace('_', '-')}-{lang}"
        (PICTURES / f"{stem}.html").write_text(html, encoding="utf-8")
        pages.append((html, PICTURES / f"{stem}.png"))
    screenshots(pages)
    for _, picture in pages:
        data = picture.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000, picture
        height = int.from_bytes(data[20:24], "big")
        assert height > 1000, (picture, height)  # the whole letter, not a window's worth
    pdf = PICTURES / "access-nl.pdf"
    print_pdf(letter(views, "access"), pdf)
    document = pdf.read_bytes()
    assert document.startswith(b"%PDF") and document.count(b"/Type /Page") > 3
