"""Words for every code the data of a letter carries, in Dutch (B1) and English.

A letter to a person never shows a code, a field name or an identifier: each is looked up here. A code without
words is an error (`UnknownCode`), never shown as it is; tests/unit/test_letters.py checks that every value of
every enum of the contracts, every field of every record a service holds on a person, every activity and category
of the register, every message type and every legal ground has words here, so adding one without words fails.

Conventions: Dutch in the "u" form, short and active ("Heliomare had geen plek"); labels start with a capital,
phrases used inside a sentence do not.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from shared.contracts.commands import SubjectNotificationReason
from shared.contracts.events import (
    BreachCause,
    BreachDataCategory,
    BreachSubjectCategory,
    ContractType,
    Correctable,
    DeclineReason,
    DepartureKind,
    HoursBand,
    InvoiceBasis,
    InvoiceMoment,
    Outcome,
    Phase,
    ProgressStatus,
    QuoteKind,
    QuoteRejectReason,
    ReportColumn,
    ReportMeasure,
    Right,
    StopReason,
    SupportNeed,
    TrendSignal,
)
from shared.contracts.parties import LegalBasis, Municipality, Party
from shared.contracts.parties import Role as PartyRole
from shared.contracts.reasons import ReasonCode
from shared.contracts.staff import Role

Lang = Literal["nl", "en"]
LANGUAGES: tuple[Lang, ...] = ("nl", "en")


@dataclass(frozen=True)
class W:
    """The same words in Dutch and in English."""

    nl: str
    en: str

    def __call__(self, lang: Lang) -> str:
        return self.nl if lang == "nl" else self.en


class UnknownCode(LookupError):
    """A code, field or activity without words: the letter is not written (it would show the code)."""

    def __init__(self, domain: str, code: object) -> None:
        self.domain, self.code = domain, str(code)
        super().__init__(f"no words for {domain} {self.code!r} (cli/render/letters/vocabulary.py)")


# -- the measures a breach letter can name (chosen by the privacy officer when printing it) -------------------


class BreachMeasure(StrEnum):
    """What was done about a breach, as the privacy officer says when the letter is made (art 34(2), 33(3)(d))."""

    RECIPIENT_ASKED_TO_DELETE = "recipient_asked_to_delete"
    ACCESS_BLOCKED = "access_blocked"
    PASSWORDS_CHANGED = "passwords_changed"
    DEVICE_WIPED = "device_wiped"
    SOFTWARE_FIXED = "software_fixed"
    STAFF_INSTRUCTED = "staff_instructed"
    POLICE_REPORT = "police_report"


# -- codes ------------------------------------------------------------------------------------------------------

_TECHNICAL = W("een technische fout in een bericht tussen WerkSaam en Heliomare",
               "a technical error in a message between WerkSaam and Heliomare")
_STAFF = W("een medewerker mocht dit niet doen", "a member of staff was not allowed to do this")
_REPORT = W("het jaarverslag kon nog niet of niet opnieuw worden gemaakt", "the yearly report could not be made (yet)")

CODES: dict[type[StrEnum] | str, dict[str, W]] = {
    Party: {
        "werksaam": W("WerkSaam Westfriesland", "WerkSaam Westfriesland"),
        "heliomare": W("Heliomare", "Heliomare"),
    },
    Municipality: {
        "drechterland": W("Drechterland", "Drechterland"),
        "enkhuizen": W("Enkhuizen", "Enkhuizen"),
        "hoorn": W("Hoorn", "Hoorn"),
        "koggenland": W("Koggenland", "Koggenland"),
        "medemblik": W("Medemblik", "Medemblik"),
        "opmeer": W("Opmeer", "Opmeer"),
        "stede-broec": W("Stede Broec", "Stede Broec"),
    },
    LegalBasis: {
        "GDPR 6(1)(e)": W("een taak die de wet geeft (AVG artikel 6 lid 1 onder e)",
                          "a task given by law (GDPR article 6(1)(e))"),
        "GDPR 6(1)(b)": W("een overeenkomst met u (AVG artikel 6 lid 1 onder b)",
                          "an agreement with you (GDPR article 6(1)(b))"),
        "GDPR 6(1)(a)": W("uw toestemming (AVG artikel 6 lid 1 onder a)", "your consent (GDPR article 6(1)(a))"),
        "GDPR 6(1)(c)": W("een plicht die de wet geeft (AVG artikel 6 lid 1 onder c)",
                          "a duty given by law (GDPR article 6(1)(c))"),
        "GDPR 6(1)(d)": W("het beschermen van iemands leven of gezondheid (AVG artikel 6 lid 1 onder d)",
                          "protecting someone's life or health (GDPR article 6(1)(d))"),
        "GDPR 6(1)(f)": W("een gerechtvaardigd belang (AVG artikel 6 lid 1 onder f)",
                          "a legitimate interest (GDPR article 6(1)(f))"),
    },
    SupportNeed: {
        "job_coaching": W("begeleiding door een jobcoach", "guidance by a job coach"),
        "workplace_adaptation": W("een aangepaste werkplek", "an adapted workplace"),
        "vocational_training": W("een opleiding voor een beroep", "vocational training"),
        "sheltered_work": W("beschut werk", "sheltered work"),
        "job_search": W("hulp bij het zoeken naar werk", "help with finding a job"),
    },
    DeclineReason: {
        "no_capacity": W("Heliomare had geen plek", "Heliomare had no place"),
        "outside_expertise": W("Heliomare kan u niet goed helpen met uw vraag",
                               "Heliomare is not the right organisation for your needs"),
        "person_unreachable": W("Heliomare kon u niet bereiken", "Heliomare could not reach you"),
        "other": W("een andere reden", "another reason"),
    },
    QuoteRejectReason: {
        "amount_too_high": W("het bedrag was te hoog", "the amount was too high"),
        "duration_too_long": W("het traject duurde te lang", "the trajectory would take too long"),
        "plan_not_suitable": W("het plan paste niet bij u", "the plan did not suit you"),
        "other": W("een andere reden", "another reason"),
    },
    QuoteKind: {
        "quote": W("offerte", "quote"),
        "reintegration_plan": W("re-integratieplan", "reintegration plan"),
    },
    InvoiceMoment: {
        "advance": W("vooraf", "in advance"),
        "afterwards": W("achteraf", "afterwards"),
    },
    InvoiceBasis: {
        "schedule": W("volgens de offerte", "as in the quote"),
        "early_stop": W("afrekening na eerder stoppen", "settlement after an early stop"),
    },
    Phase: {
        "orientation": W("oriëntatie", "orientation"),
        "training": W("training", "training"),
        "work_experience": W("werkervaringsplaats", "work experience placement"),
        "job_search": W("werk zoeken", "looking for work"),
        "placement": W("aan het werk bij een werkgever", "placed with an employer"),
        "aftercare": W("nazorg", "aftercare"),
    },
    ProgressStatus: {
        "on_track": W("gaat volgens plan", "on track"),
        "delayed": W("loopt achter", "delayed"),
        "at_risk": W("gaat moeilijk", "at risk"),
        "paused": W("staat even stil", "paused"),
    },
    Outcome: {
        "paid_work": W("betaald werk", "paid work"),
        "education": W("een opleiding", "education"),
        "other_provision": W("een andere voorziening", "another provision"),
        "stopped_early": W("eerder gestopt", "stopped early"),
    },
    ContractType: {
        "permanent": W("vast contract", "permanent contract"),
        "fixed_term": W("tijdelijk contract", "fixed-term contract"),
        "temporary_agency": W("uitzendwerk", "agency work"),
        "sheltered": W("beschut werk", "sheltered work"),
        "self_employed": W("eigen bedrijf", "self-employed"),
    },
    HoursBand: {
        "under_12": W("minder dan 12 uur per week", "fewer than 12 hours a week"),
        "12_to_24": W("12 tot 24 uur per week", "12 to 24 hours a week"),
        "24_to_32": W("24 tot 32 uur per week", "24 to 32 hours a week"),
        "32_or_more": W("32 uur of meer per week", "32 hours a week or more"),
    },
    StopReason: {
        "person_withdrew": W("u wilde stoppen", "you chose to stop"),
        "moved_away": W("u bent verhuisd", "you moved away"),
        "no_longer_entitled": W("u had geen recht meer op steun", "you were no longer entitled to support"),
        "not_feasible": W("het traject was niet haalbaar", "the trajectory was not feasible"),
        "other": W("een andere reden", "another reason"),
    },
    Right: {
        "access": W("inzage in uw gegevens", "access to your data"),
        "rectification": W("uw gegevens verbeteren", "correcting your data"),
        "erasure": W("uw gegevens wissen", "erasing your data"),
        "restriction": W("minder gebruik van uw gegevens (beperking)", "restricting the use of your data"),
        "lift_restriction": W("de beperking stoppen", "lifting the restriction"),
        "portability": W("uw gegevens in een bestand", "your data in a file (portability)"),
        "objection": W("bezwaar tegen het gebruik van uw gegevens", "objecting to the use of your data"),
    },
    Correctable: {
        "given_name": W("voornaam", "first name"),
        "family_name": W("achternaam", "surname"),
        "date_of_birth": W("geboortedatum", "date of birth"),
        "postal_code": W("postcode", "postal code"),
        "phone": W("telefoonnummer", "phone number"),
        "email": W("e-mailadres", "e-mail address"),
    },
    BreachCause: {
        "lost_or_stolen_device": W("een laptop of telefoon is kwijtgeraakt of gestolen",
                                   "a laptop or phone was lost or stolen"),
        "misdirected_message": W("een bericht is naar de verkeerde persoon of organisatie gegaan",
                                 "a message went to the wrong person or organisation"),
        "unauthorised_access": W("iemand heeft gegevens bekeken zonder dat dit mocht",
                                 "someone looked at data without permission"),
        "stolen_credentials": W("iemand heeft een wachtwoord of inlogcode gestolen",
                                "someone stole a password or login"),
        "malware": W("een computervirus of een ander schadelijk programma", "a computer virus or other malware"),
        "software_error": W("een fout in een computerprogramma", "an error in a computer program"),
        "human_error": W("een medewerker heeft een fout gemaakt", "a member of staff made a mistake"),
        "unknown": W("dat weten wij nog niet", "we do not know yet"),
    },
    BreachDataCategory: {
        "pseudonym": W("een code die wij gebruiken in plaats van uw naam", "a code we use instead of your name"),
        "identification": W("uw naam, geboortedatum en burgerservicenummer (BSN)",
                            "your name, date of birth and citizen service number (BSN)"),
        "contact": W("uw postcode, telefoonnummer en e-mailadres", "your postal code, phone number and e-mail address"),
        "residence": W("uw gemeente", "your municipality"),
        "support_need": W("welke begeleiding u nodig heeft", "the kind of support you need"),
        "quote": W("de offerte voor uw traject", "the quote for your trajectory"),
        "trajectory": W("gegevens over uw traject naar werk", "data about your trajectory towards work"),
        "invoice": W("de facturen voor uw traject", "the invoices for your trajectory"),
        "subject_request": W("uw vragen over uw gegevens", "your requests about your data"),
    },
    BreachSubjectCategory: {
        "jobseekers": W("werkzoekenden", "jobseekers"),
        "staff": W("medewerkers", "members of staff"),
        "partner_contacts": W("contactpersonen van partners", "contact persons of partners"),
    },
    SubjectNotificationReason: {
        "high_risk": W("er is een groot risico voor u", "there is a high risk to you"),
        "no_high_risk": W("er is geen groot risico voor u", "there is no high risk to you"),
        "data_unintelligible": W("de gegevens waren versleuteld en voor anderen niet te lezen",
                                 "the data was encrypted and could not be read by others"),
        "risk_no_longer_likely": W("wij hebben het risico weggenomen", "we have removed the risk"),
        "disproportionate_effort": W("wij informeren iedereen met een openbare mededeling",
                                     "we inform everyone by a public announcement"),
    },
    BreachMeasure: {
        "recipient_asked_to_delete": W("Wij hebben de ontvanger gevraagd de gegevens te wissen. Dat is gebeurd.",
                                       "We asked the recipient to delete the data. This has been done."),
        "access_blocked": W("Wij hebben de toegang tot de gegevens geblokkeerd.", "We blocked access to the data."),
        "passwords_changed": W("Wij hebben wachtwoorden en inlogcodes veranderd.", "We changed passwords and logins."),
        "device_wiped": W("Wij hebben het apparaat op afstand gewist.", "We wiped the device remotely."),
        "software_fixed": W("Wij hebben de fout in het programma hersteld.", "We fixed the error in the program."),
        "staff_instructed": W("Wij hebben onze medewerkers opnieuw uitgelegd hoe zij zorgvuldig werken met "
                              "gegevens.", "We explained again to our staff how to handle data with care."),
        "police_report": W("Wij hebben aangifte gedaan bij de politie.", "We reported it to the police."),
    },
    ReasonCode: {
        "malformed_json": _TECHNICAL, "oversized": _TECHNICAL, "invalid_envelope": _TECHNICAL,
        "unknown_field": _TECHNICAL, "unknown_event_type": _TECHNICAL, "unsupported_version": _TECHNICAL,
        "source_not_permitted": _TECHNICAL, "sender_not_authenticated": _TECHNICAL,
        "recipient_not_permitted": _TECHNICAL, "not_addressed_to_us": _TECHNICAL, "routing_mismatch": _TECHNICAL,
        "message_id_mismatch": _TECHNICAL, "delivery_limit_exceeded": _TECHNICAL, "unknown_command": _TECHNICAL,
        "unfiltered_read": _TECHNICAL, "service_unavailable": _TECHNICAL, "retour_not_from_recipient": _TECHNICAL,
        "retour_about_unsent_event": _TECHNICAL, "retour_contradicts_answer": _TECHNICAL,
        "missing_field": W("er ontbrak een gegeven", "a piece of information was missing"),
        "invalid_value": W("een gegeven was niet juist", "a piece of information was not correct"),
        "bsn_invalid": W("het burgerservicenummer (BSN) klopt niet", "the citizen service number (BSN) is not valid"),
        "not_resident_west_friesland": W("u woont niet in een van de zeven gemeenten van West-Friesland",
                                         "you do not live in one of the seven municipalities of West-Friesland"),
        "no_labour_disability": W("er is bij u geen arbeidsbeperking vastgesteld",
                                  "no labour disability was established for you"),
        "no_participatiewet_entitlement": W("u heeft geen recht op steun uit de Participatiewet",
                                            "you are not entitled to support under the Participatiewet"),
        "unknown_referral": W("de aanmelding is niet bekend", "the referral is not known"),
        "unknown_quote": W("de offerte is niet bekend", "the quote is not known"),
        "duplicate_referral": W("u was al aangemeld", "you had been referred already"),
        "invalid_transition": W("deze stap kon op dat moment niet", "this step was not possible at that moment"),
        "quote_superseded": W("er was al een nieuwere offerte", "there was a newer quote already"),
        "invoicing_schedule_invalid": W("de verdeling van de betalingen klopte niet",
                                        "the payment schedule did not add up"),
        "no_approved_quote": W("er was nog geen goedgekeurde offerte", "there was no approved quote yet"),
        "unknown_trajectory": W("het traject is niet bekend", "the trajectory is not known"),
        "trajectory_not_started": W("het traject was nog niet begonnen", "the trajectory had not started yet"),
        "trajectory_already_started": W("het traject was al begonnen", "the trajectory had started already"),
        "trajectory_ended": W("het traject was al afgelopen", "the trajectory had ended already"),
        "date_before_start": W("een datum lag vóór de start van het traject",
                               "a date was before the start of the trajectory"),
        "date_out_of_order": W("de datums stonden niet in de goede volgorde", "the dates were not in the right order"),
        "outcome_details_invalid": W("de gegevens over het resultaat pasten niet bij elkaar",
                                     "the details of the result did not fit together"),
        "invoice_exceeds_approved": W("de factuur was hoger dan het goedgekeurde bedrag",
                                      "the invoice was higher than the approved amount"),
        "duplicate_invoice": W("de factuur was al eerder gestuurd", "the invoice had been sent before"),
        "subject_erased": W("uw gegevens waren al gewist", "your data had been erased already"),
        "subject_restricted": W("het gebruik van uw gegevens is beperkt", "the use of your data is restricted"),
        "identity_not_verified": W("wij konden niet controleren wie u bent", "we could not check who you are"),
        "right_not_applicable": W("dit recht geldt niet voor deze organisatie",
                                  "this right does not apply to this organisation"),
        "duplicate_request": W("u heeft dezelfde vraag al gesteld en die behandelen wij nog",
                               "you asked the same already and we are still handling it"),
        "unknown_request": W("de vraag is niet bekend", "the request is not known"),
        "extension_too_late": W("het uitstel is te laat gemeld", "the extension was announced too late"),
        "not_told_before_lifting": W("wij moeten u eerst laten weten dat de beperking stopt",
                                     "we must first tell you that the restriction ends"),
        "not_restricted": W("het gebruik van uw gegevens was niet beperkt", "the use of your data was not restricted"),
        "actor_missing": _STAFF, "no_confidentiality_statement": _STAFF, "unknown_actor": _STAFF,
        "role_not_permitted": _STAFF, "not_for_oneself": _STAFF,
        "unknown_breach": W("het datalek is niet bekend", "the data breach is not known"),
        "report_period_open": _REPORT, "report_already_published": _REPORT,
        "date_implausible": W("een datum kan niet kloppen", "a date cannot be right"),
        "date_before_referral": W("een datum lag vóór de aanmelding", "a date was before the referral"),
    },
    # -- codes of the services' own records (their values are strings, not contract enums) -----------------------
    "referral_status": {
        "refused": W("niet aangemeld", "not referred"),
        "registered": W("aangemeld bij Heliomare", "referred to Heliomare"),
        "accepted": W("Heliomare begeleidt u", "Heliomare has taken you on"),
        "declined": W("Heliomare kon u niet begeleiden", "Heliomare could not take you on"),
        "quote_received": W("WerkSaam beoordeelt de offerte", "WerkSaam is assessing the quote"),
        "quote_rejected": W("WerkSaam wacht op een nieuwe offerte", "WerkSaam is waiting for a new quote"),
        "quote_approved": W("WerkSaam heeft de offerte goedgekeurd", "WerkSaam approved the quote"),
        "trajectory_running": W("uw traject loopt", "your trajectory is running"),
        "trajectory_ended": W("uw traject is afgelopen", "your trajectory has ended"),
    },
    "case_status": {
        "registered": W("aanmelding ontvangen", "referral received"),
        "accepted": W("Heliomare begeleidt u", "Heliomare has taken you on"),
        "declined": W("Heliomare kon u niet begeleiden", "Heliomare could not take you on"),
        "quote_sent": W("offerte gestuurd naar WerkSaam", "quote sent to WerkSaam"),
        "quote_rejected": W("WerkSaam heeft de offerte afgewezen", "WerkSaam rejected the quote"),
        "quote_approved": W("WerkSaam heeft de offerte goedgekeurd", "WerkSaam approved the quote"),
    },
    "trajectory_status": {
        "commissioned": W("opdracht gekregen, nog niet begonnen", "commissioned, not started yet"),
        "running": W("loopt", "running"),
        "ended": W("afgelopen", "ended"),
    },
    "quote_status": {
        "sent": W("gestuurd", "sent"),
        "approved": W("goedgekeurd", "approved"),
        "rejected": W("afgewezen", "rejected"),
    },
    "record_status": {
        "held": W("bewaard", "kept"),
        "erased": W("gewist", "erased"),
        "withheld": W("bewaard omdat de wet dat verplicht", "kept because the law requires it"),
        "rectified": W("verbeterd", "corrected"),
        "restricted": W("beperkt", "restricted"),
        "unrestricted": W("niet meer beperkt", "no longer restricted"),
        "objected": W("niet meer gebruikt", "no longer used"),
    },
    "identity_method": {
        "id_document_at_desk": W("met uw identiteitsbewijs aan de balie", "with your identity document at the desk"),
        "digid": W("met DigiD", "with DigiD"),
        "known_contact": W("omdat wij u al kennen", "because we know you already"),
        "not_verified": W("niet", "not"),
    },
    "extension_reason": {
        "complex_request": W("Uw vraag is ingewikkeld. Het kost meer tijd om alles goed uit te zoeken.",
                             "Your request is complex. It takes more time to look into everything properly."),
        "number_of_requests": W("Wij moeten op dit moment veel vragen tegelijk beantwoorden.",
                                "We have to answer many requests at the same time."),
    },
    "processing_kind": {
        "change": W("vastgelegd of veranderd", "recorded or changed"),
        "read": W("bekeken", "looked at"),
        "personal_data_read": W("bekeken door een medewerker", "looked at by a member of staff"),
    },
}

# Contract enums that never reach a person's letter, and why (the test asks for a decision on every enum).
NOT_FOR_PERSONS: dict[type[StrEnum], str] = {
    ReportMeasure: "the yearly report holds aggregates only, no personal data (art 6.3)",
    ReportColumn: "the yearly report holds aggregates only, no personal data (art 6.3)",
    TrendSignal: "the yearly report holds aggregates only, no personal data (art 6.3)",
    DepartureKind: "about partner organisations, not about persons",
    Role: "staff roles: the letter names organisations, not staff",
    PartyRole: "the parties' roles in the cooperation: the letter names the organisations themselves",
}


def word(domain: type[StrEnum] | str, code: object, lang: Lang) -> str:
    """The words for a code; `UnknownCode` when there are none (the code is never shown instead)."""
    table = CODES.get(domain)
    name = domain if isinstance(domain, str) else domain.__name__
    if table is None:
        raise UnknownCode(name, code)
    value = code.value if isinstance(code, StrEnum) else str(code)
    if value not in table:
        raise UnknownCode(name, value)
    return table[value](lang)


# -- the fields of the records the services hold on a person -------------------------------------------------

Kind = Literal["hidden", "text", "postal_code", "date", "moment", "money", "rate", "weeks", "number", "yes_no",
               "code", "group", "list"]


@dataclass(frozen=True)
class FieldWords:
    """A field's label, and how its value is shown. `codes` names the vocabulary of a code; for a list, `item` says how
    one entry shows inside a table cell (e.g. "{amount} {moment}") and `each` heads an entry shown on its own
    ("Offerte {n}")."""

    label: W
    kind: Kind = "text"
    codes: type[StrEnum] | str | None = None
    item: str | None = None
    each: W | None = None


def _f(nl: str, en: str, kind: Kind = "text", codes: type[StrEnum] | str | None = None,
       item: str | None = None, each: W | None = None) -> FieldWords:
    return FieldWords(W(nl, en), kind, codes, item, each)


HIDDEN = _f("", "", "hidden")

# Looked up by the longest matching end of "<collection>.<path>" (list entries add no step): "referrals.status"
# before "status", "trajectory.progress.status" as "progress.status". A name that means different things in
# different records (status) has no entry of its own, so a new record with it fails the test until it gets words.
FIELDS: dict[str, FieldWords] = {
    # identifiers and bookkeeping: never shown
    "id": HIDDEN, "version": HIDDEN, "subject": HIDDEN, "quote_id": HIDDEN, "trajectory_id": HIDDEN,
    "invoice_id": HIDDEN, "order_id": HIDDEN, "referral_id": HIDDEN,
    "refusal_reasons.field": HIDDEN, "refusal_reasons.detail": HIDDEN,
    # the person
    "person": _f("Uw persoonsgegevens", "Your personal details", "group"),
    "client": _f("Uw persoonsgegevens", "Your personal details", "group"),
    "bsn": _f("Burgerservicenummer (BSN)", "Citizen service number (BSN)"),
    "given_name": _f("Voornaam", "First name"),
    "family_name": _f("Achternaam", "Surname"),
    "date_of_birth": _f("Geboortedatum", "Date of birth", "date"),
    "postal_code": _f("Postcode", "Postal code", "postal_code"),
    "phone": _f("Telefoonnummer", "Phone number"),
    "email": _f("E-mailadres", "E-mail address"),
    # the referral
    "referrals.status": _f("Stand van zaken", "Where things stand", "code", "referral_status"),
    "cases.status": _f("Stand van zaken", "Where things stand", "code", "case_status"),
    "trajectories.status": _f("Stand van zaken", "Where things stand", "code", "trajectory_status"),
    "submitted_at": _f("Aangemeld op", "Referred on", "moment"),
    "registered_at": _f("Ontvangen op", "Received on", "moment"),
    "municipality": _f("Gemeente", "Municipality", "code", Municipality),
    "provider": _f("Doorverwezen naar", "Referred to", "code", Party),  # the organisation, by its name
    "commissioner": _f("Aangemeld door", "Referred by", "code", Party),
    "support_need": _f("Begeleiding die u nodig heeft", "Support you need", "code", SupportNeed),
    "requested_start": _f("Gewenste startdatum", "Requested start", "date"),
    "refusal_reasons": _f("Waarom de aanmelding niet doorging", "Why the referral did not go ahead", "list"),
    "refusal_reasons.code": _f("Reden", "Reason", "code", ReasonCode),
    "decline_reason": _f("Waarom Heliomare u niet kon begeleiden", "Why Heliomare could not take you on", "code",
                         DeclineReason),
    # quotes
    "quotes": _f("Offertes voor uw traject", "Quotes for your trajectory", "list",
                 each=W("Offerte {n}", "Quote {n}")),
    "quotes.sequence": HIDDEN,  # the quotes are numbered in the letter as they come
    "quotes.kind": _f("Soort", "Kind", "code", QuoteKind),
    "quotes.amount": _f("Bedrag zonder btw", "Amount excluding VAT", "money"),
    "planned_start": _f("Geplande start", "Planned start", "date"),
    "duration_weeks": _f("Duur", "Duration", "weeks"),
    "invoicing": _f("Afspraak over de betaling", "Payment schedule", "list", item="{amount} {moment}"),
    "invoicing.moment": _f("Wanneer", "When", "code", InvoiceMoment),
    "invoicing.amount": _f("Bedrag", "Amount", "money"),
    "quotes.received_at": _f("Ontvangen op", "Received on", "moment"),
    "quotes.sent_at": _f("Gestuurd op", "Sent on", "moment"),
    "quotes.decision": _f("Besluit van WerkSaam", "WerkSaam's decision", "code", "quote_status"),
    "quotes.status": _f("Besluit van WerkSaam", "WerkSaam's decision", "code", "quote_status"),
    "quotes.reject_reason": _f("Reden van afwijzing", "Reason for rejection", "code", QuoteRejectReason),
    "quotes.decided_at": _f("Besloten op", "Decided on", "moment"),
    "approved_amount": _f("Goedgekeurd bedrag zonder btw", "Approved amount excluding VAT", "money"),
    # the trajectory
    "trajectory": _f("Uw traject", "Your trajectory", "group"),
    "start_date": _f("Startdatum", "Start date", "date"),
    "planned_end": _f("Geplande einddatum", "Planned end date", "date"),
    "end_date": _f("Einddatum", "End date", "date"),
    "outcome": _f("Resultaat", "Result", "code", Outcome),
    "contract_type": _f("Soort contract", "Type of contract", "code", ContractType),
    "hours_band": _f("Uren per week", "Hours a week", "code", HoursBand),
    "stop_reason": _f("Waarom het traject stopte", "Why the trajectory stopped", "code", StopReason),
    "progress": _f("Hoe het traject ging", "How the trajectory went", "list"),
    "progress.sequence": _f("Nummer", "Number", "number"),
    "progress.reported_on": _f("Datum", "Date", "date"),
    "progress.phase": _f("Fase", "Phase", "code", Phase),
    "progress.status": _f("Hoe het gaat", "How it goes", "code", ProgressStatus),
    # billing
    "commission": _f("Opdracht van WerkSaam", "WerkSaam's commission", "group"),
    "start": _f("Start van het traject", "Start of the trajectory", "group"),
    "end": _f("Einde van het traject", "End of the trajectory", "group"),
    "orders": _f("Geplande betalingen", "Planned payments", "list"),
    "orders.moment": _f("Wanneer", "When", "code", InvoiceMoment),
    "orders.basis": _f("Grond", "Basis", "code", InvoiceBasis),
    "orders.amount": _f("Bedrag zonder btw", "Amount excluding VAT", "money"),
    "orders.due_on": _f("Datum", "Date", "date"),
    "invoices": _f("Facturen voor uw traject", "Invoices for your trajectory", "list",
                   each=W("Factuur {n}", "Invoice {n}")),
    "invoices.number": _f("Factuurnummer", "Invoice number"),
    "invoices.invoice_date": _f("Datum", "Date", "date"),
    "invoices.moment": _f("Wanneer", "When", "code", InvoiceMoment),
    "invoices.basis": _f("Grond", "Basis", "code", InvoiceBasis),
    "invoices.amount": _f("Bedrag zonder btw", "Amount excluding VAT", "money"),
    "invoices.amount_excl_vat": _f("Bedrag zonder btw", "Amount excluding VAT", "money"),
    "invoices.vat_rate": _f("Btw-tarief", "VAT rate", "rate"),
    "invoices.vat_amount": _f("Btw", "VAT", "money"),
    "invoices.total": _f("Totaal", "Total", "money"),
}

# Headings of the records each service holds on a person (`HeldRecord.collection`).
COLLECTIONS: dict[str, W] = {
    "referrals": W("Uw aanmelding", "Your referral"),
    "cases": W("Uw aanmelding bij Heliomare", "Your referral at Heliomare"),
    "trajectories": W("Uw traject", "Your trajectory"),
    "accounts": W("Betalingen voor uw traject", "Payments for your trajectory"),
}


def field_words(collection: str, path: tuple[str, ...]) -> FieldWords:
    """The words of a field at `path` in a record of `collection`, by the longest matching end of the full path."""
    full = (collection, *path)
    for start in range(len(full)):
        key = ".".join(full[start:])
        if key in FIELDS:
            return FIELDS[key]
    raise UnknownCode("field", ".".join(path))


def collection_words(collection: str, lang: Lang) -> str:
    if collection not in COLLECTIONS:
        raise UnknownCode("record", collection)
    return COLLECTIONS[collection](lang)


# -- the messages a processing-log record names (what happened) --------------------------------------------------

MESSAGES: dict[str, W] = {
    # events between and within the parties
    "referral.registered": W("aanmelding doorgegeven aan Heliomare", "referral passed on to Heliomare"),
    "referral.accepted": W("Heliomare nam de aanmelding aan", "Heliomare accepted the referral"),
    "referral.declined": W("Heliomare wees de aanmelding af", "Heliomare declined the referral"),
    "quote.sent": W("offerte gestuurd aan WerkSaam", "quote sent to WerkSaam"),
    "quote.approved": W("WerkSaam keurde de offerte goed", "WerkSaam approved the quote"),
    "quote.rejected": W("WerkSaam wees de offerte af", "WerkSaam rejected the quote"),
    "retour.issued": W("ontvangst van een bericht bevestigd", "receipt of a message confirmed"),
    "party.joined": W("een nieuwe partner sloot zich aan", "a new partner joined"),
    "party.left": W("een partner stopte", "a partner left"),
    "trajectory.commissioned": W("opdracht voor uw traject vastgelegd", "commission for your trajectory recorded"),
    "trajectory.started": W("start van uw traject", "start of your trajectory"),
    "trajectory.progressed": W("voortgang van uw traject", "progress of your trajectory"),
    "trajectory.ended": W("einde van uw traject", "end of your trajectory"),
    "invoice.issued": W("factuur voor uw traject", "invoice for your trajectory"),
    "report.published": W("jaarverslag (zonder namen)", "yearly report (without names)"),
    "subject-request.issued": W("uw vraag over uw gegevens doorgegeven", "your request about your data passed on"),
    "subject-request.answered": W("uw vraag over uw gegevens beantwoord", "your request about your data answered"),
    "breach.reported": W("datalek gemeld", "data breach reported"),
    # commands and queries of staff
    "submit_referral": W("aanmelding vastgelegd", "referral recorded"),
    "decide_quote": W("besluit over de offerte", "decision on the quote"),
    "decide_referral": W("besluit over de aanmelding", "decision on the referral"),
    "send_quote": W("offerte gemaakt", "quote made"),
    "start_trajectory": W("start van uw traject vastgelegd", "start of your trajectory recorded"),
    "report_progress": W("voortgang vastgelegd", "progress recorded"),
    "end_trajectory": W("einde van uw traject vastgelegd", "end of your trajectory recorded"),
    "publish_report": W("jaarverslag gemaakt (zonder namen)", "yearly report made (without names)"),
    "get_referral": W("uw dossier bekeken", "your file looked at"),
    "list_referrals": W("overzicht van aanmeldingen bekeken", "list of referrals looked at"),
    "get_report": W("jaarverslag bekeken", "yearly report looked at"),
    "list_invoices": W("overzicht van facturen bekeken", "list of invoices looked at"),
    "submit_subject_request": W("uw vraag over uw gegevens vastgelegd", "your request about your data recorded"),
    "extend_subject_request": W("meer tijd genomen voor uw vraag", "more time taken for your request"),
    "chase_subject_requests": W("herinnering over uw vraag", "reminder about your request"),
    "get_subject_request": W("uw vraag over uw gegevens bekeken", "your request about your data looked at"),
    "list_subject_requests": W("overzicht van vragen bekeken", "list of requests looked at"),
    "report_breach": W("datalek gemeld", "data breach reported"),
    "record_authority_notification": W("melding aan de Autoriteit Persoonsgegevens vastgelegd",
                                       "notification to the Dutch Data Protection Authority recorded"),
    "decide_subject_notification": W("besloten of wij u over een datalek informeren",
                                     "decided whether to inform you of a data breach"),
    "list_breaches": W("overzicht van datalekken bekeken", "list of data breaches looked at"),
    "read_processing_log": W("dit overzicht van het gebruik van uw gegevens bekeken",
                             "this record of the use of your data looked at"),
    "record_confidentiality_statement": W("geheimhoudingsverklaring van een medewerker vastgelegd",
                                          "a staff member's confidentiality statement recorded"),
    "list_confidentiality_statements": W("geheimhoudingsverklaringen bekeken", "confidentiality statements looked at"),
    "list_dead_letters": W("niet verwerkte berichten bekeken", "unprocessed messages looked at"),
    "record_dead_letter_read": W("een niet verwerkt bericht bekeken", "an unprocessed message looked at"),
    # timers
    "retention": W("gegevens vernietigd omdat de bewaartermijn voorbij was",
                   "data destroyed because the retention period had passed"),
}


def message_words(message_type: str | None, lang: Lang) -> str | None:
    """What a processing-log record's message was: "quote.sent.v1", "command:send_quote", "job:retention".
    None when the record names no message (the activity then says what happened)."""
    if not message_type:
        return None
    name = message_type.split(":", 1)[1] if ":" in message_type else message_type.rsplit(".v", 1)[0]
    if name not in MESSAGES:
        raise UnknownCode("message", name)
    return MESSAGES[name](lang)


# -- why a request was refused, and what the person can do (art 12(4)) -------------------------------------------

REFUSALS: dict[str, W] = {
    "identity_not_verified": W(
        "Wij konden niet controleren dat u het bent. Dat moeten wij doen, zodat niemand anders uw gegevens krijgt. "
        "Kom langs aan de balie met uw paspoort, identiteitskaart of rijbewijs. Of stel uw vraag met DigiD.",
        "We could not check that it is you. We must do so, so that nobody else gets your data. Come to the desk "
        "with your passport, identity card or driving licence, or ask with DigiD."),
    "duplicate_request": W(
        "U heeft dezelfde vraag al eerder gesteld. Die vraag behandelen wij nog. U krijgt daarop antwoord. U hoeft "
        "niets te doen.",
        "You asked the same question before. We are still handling it, and you will get an answer to it. You do "
        "not need to do anything."),
    "missing_field": W(
        "U vroeg ons uw gegevens te verbeteren. Maar wij weten niet welke gegevens niet kloppen. Laat ons weten wat "
        "er niet klopt en wat het moet zijn.",
        "You asked us to correct your data, but we do not know which data is wrong. Tell us what is wrong and what "
        "it should be."),
    "not_restricted": W(
        "U vroeg ons de beperking van uw gegevens te stoppen. Maar het gebruik van uw gegevens was niet beperkt. "
        "Er hoeft dus niets te veranderen.",
        "You asked us to lift the restriction on your data, but the use of your data was not restricted. So "
        "nothing needs to change."),
    "not_told_before_lifting": W(
        "Voordat een beperking stopt, moeten wij u dat eerst laten weten. Dat is nog niet gebeurd. U krijgt eerst "
        "een brief van ons. Daarna stopt de beperking.",
        "Before a restriction ends, we must tell you first. That has not happened yet. You will get a letter from "
        "us first; after that the restriction ends."),
    "bsn_invalid": W(
        "Het burgerservicenummer (BSN) dat wij kregen, klopt niet. Kijk uw BSN na op uw paspoort, identiteitskaart "
        "of rijbewijs. Stel daarna uw vraag opnieuw.",
        "The citizen service number (BSN) we were given is not valid. Check your BSN on your passport, identity "
        "card or driving licence, and then ask again."),
    "invalid_value": W(
        "Een gegeven bij uw vraag klopte niet, bijvoorbeeld een datum. Stel uw vraag opnieuw. Wij helpen u daarbij.",
        "A detail of your request was not correct, for example a date. Please ask again; we will help you."),
}

# Why a right does not apply to a party's processing (art 20(1)(a), 21(1)), by the right.
NOT_APPLICABLE: dict[str, W] = {
    "portability": W(
        "U kunt uw gegevens alleen in een bestand krijgen als een organisatie ze gebruikt met uw toestemming of "
        "voor een overeenkomst met u. WerkSaam gebruikt uw gegevens voor een taak die de wet geeft. Daarom geldt "
        "dit niet voor de gegevens bij WerkSaam. Voor uw gegevens bij Heliomare kan het wel.",
        "You can only get your data in a file when an organisation uses it with your consent or for a contract with "
        "you. WerkSaam uses your data for a task given by law, so this does not apply to the data at WerkSaam. It "
        "does apply to your data at Heliomare."),
    "objection": W(
        "U kunt alleen bezwaar maken als een organisatie uw gegevens gebruikt voor een taak van algemeen belang. "
        "Heliomare gebruikt uw gegevens voor de afspraken met u over uw begeleiding. Daartegen kunt u geen bezwaar "
        "maken. Tegen het gebruik door WerkSaam kan het wel. Wilt u stoppen met de begeleiding door Heliomare? "
        "Zeg het tegen uw begeleider.",
        "You can only object when an organisation uses your data for a task in the public interest. Heliomare uses "
        "your data for what it agreed with you about your guidance, and you cannot object to that. You can object "
        "to the use by WerkSaam. If you want to stop Heliomare's guidance, tell your coach."),
}


# -- a data breach: what it can mean for the person, and what they can do (art 34(2), 33(3)(c)) -------------------

BREACH_RISKS: dict[str, W] = {
    "pseudonym": W("Die code zegt zonder onze sleutel niets over u. Het risico daarvan is klein.",
                   "Without our key that code says nothing about you. The risk of that is small."),
    "identification": W("Iemand kan proberen zich voor te doen als u, bijvoorbeeld om een lening of een abonnement "
                        "af te sluiten. Dat heet identiteitsfraude.",
                        "Someone may try to pretend to be you, for example to take out a loan or a subscription. "
                        "That is called identity fraud."),
    "contact": W("U kunt berichten of telefoontjes krijgen van mensen die zich voordoen als WerkSaam, Heliomare of "
                 "een andere organisatie.",
                 "You may get messages or calls from people pretending to be WerkSaam, Heliomare or another "
                 "organisation."),
    "residence": W("Anderen kunnen weten in welke gemeente u woont.",
                   "Others may know which municipality you live in."),
    "support_need": W("Anderen kunnen weten dat u begeleiding krijgt bij het vinden van werk.",
                      "Others may know that you get support to find work."),
    "quote": W("Anderen kunnen zien wat uw traject kost.", "Others may see what your trajectory costs."),
    "trajectory": W("Anderen kunnen weten hoe uw traject naar werk gaat.",
                    "Others may know how your trajectory towards work is going."),
    "invoice": W("Anderen kunnen zien wat uw traject kost.", "Others may see what your trajectory costs."),
    "subject_request": W("Anderen kunnen weten dat u ons een vraag stelde over uw gegevens.",
                         "Others may know that you asked us about your data."),
}

BREACH_ADVICE: dict[str, W] = {
    "identification": W("Vraagt iemand u om een kopie van uw identiteitsbewijs of om uw BSN? Wees voorzichtig. "
                        "Denkt u dat iemand misbruik maakt van uw gegevens? Neem dan contact op met het Centraal "
                        "Meldpunt Identiteitsfraude van de Rijksoverheid.",
                        "Be careful if someone asks for a copy of your identity document or your BSN. If you think "
                        "someone is misusing your data, contact the government's Central Identity Fraud Desk "
                        "(Centraal Meldpunt Identiteitsfraude)."),
    "contact": W("Wees voorzichtig met berichten die om uw gegevens, een wachtwoord of geld vragen. WerkSaam en "
                 "Heliomare vragen u daar nooit om per e-mail, sms of telefoon. Twijfelt u? Bel ons.",
                 "Be careful with messages asking for your data, a password or money. WerkSaam and Heliomare never "
                 "ask for these by e-mail, text message or phone. In doubt? Call us."),
}
