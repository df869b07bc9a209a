"""The register of processing activities, the legal bases and the legal grounds, in words a person reads.

The register (shared/privacy/register.toml) is written for the parties and the supervisor, in English, with
article numbers. A letter tells the person the same in plain Dutch (B1) or English: what each party does with
their data, why, on which legal ground, where the data comes from, and how long it is kept and why that long.

Each activity's words say for which version of the activity they were written: a new version of an activity (a
change of the agreement, art 14) fails tests/unit/test_letters.py until its words are read again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cli.render.letters.vocabulary import UnknownCode, W
from shared.contracts.parties import LegalBasis
from shared.privacy.grounds import ground_of
from shared.privacy.register import ACTIVITY_ID


@dataclass(frozen=True)
class ActivityWords:
    version: int  # the register version these words were written for
    name: W  # what the party does
    purpose: W  # why
    retention: W  # why it keeps the data that long
    about_the_person: bool = True  # False: the activity's data is not about the person (staff, partners)
    main: bool = False  # one of the steps of the process itself (the letter gives it a table of its own)


_ARCHIEFWET_7 = W("De Archiefwet verplicht WerkSaam om re-integratiedossiers 7 jaar te bewaren. De 7 jaar "
                  "beginnen als uw traject is afgelopen.",
                  "The Archives Act (Archiefwet) requires WerkSaam to keep reintegration files for 7 years. "
                  "The 7 years start when your trajectory has ended.")
_FINANCE_7 = W("De Archiefwet verplicht WerkSaam om gegevens over betalingen 7 jaar te bewaren.",
               "The Archives Act requires WerkSaam to keep payment records for 7 years.")
_TAX_7 = W("De belastingwet verplicht Heliomare om de administratie 7 jaar te bewaren (Algemene wet inzake "
           "rijksbelastingen, artikel 52).",
           "Tax law requires Heliomare to keep its records for 7 years (General State Taxes Act, article 52).")
_RETOUR = W("Bevestigen dat berichten zijn aangekomen", "Confirming that messages arrived")
_RETOUR_WHY = W("WerkSaam en Heliomare laten elkaar weten dat een bericht over u is aangekomen. Zo raakt er "
                "niets kwijt.",
                "WerkSaam and Heliomare tell each other that a message about you has arrived, so that nothing "
                "gets lost.")
_RETOUR_LONG = W("Dit is alleen nodig tot beide organisaties hebben gecontroleerd dat alles klopt.",
                 "This is only needed until both organisations have checked that everything matches.")
_BREACH = W("Datalekken melden en bijhouden", "Reporting and tracking data breaches")
_BREACH_WHY = W("Gaan er gegevens naar iemand die ze niet mag hebben? Dat heet een datalek. WerkSaam en Heliomare "
                "melden een datalek aan elkaar en aan de Autoriteit Persoonsgegevens. Is er een groot risico voor "
                "u? Dan krijgt u een brief.",
                "If data reaches someone who may not have it, that is a data breach. WerkSaam and Heliomare report "
                "a breach to each other and to the Dutch Data Protection Authority. If there is a high risk to you, "
                "you get a letter.")
_BREACH_LONG = W("De AVG verplicht ons om elk datalek vast te leggen. Wij bewaren dat 7 jaar, net zo lang als de "
                 "gegevens waar het over gaat.",
                 "The GDPR requires us to record every data breach. We keep that for 7 years, as long as the data "
                 "it concerns.")
_SECRECY = W("Geheimhouding van medewerkers", "Confidentiality of staff")
_SECRECY_WHY = W("Alleen medewerkers die geheimhouding hebben beloofd, mogen uw gegevens zien.",
                 "Only staff who have promised confidentiality may see your data.")
_SECRECY_LONG = W("Zo lang als de overzichten waarin de medewerker staat: 7 jaar.",
                  "As long as the records that name the member of staff: 7 years.")
_DESTROY_WHY = W("Is de bewaartermijn voorbij? Dan vernietigen wij uw gegevens.",
                 "When the retention period has passed, we destroy your data.")


def _log(party: str) -> ActivityWords:
    return ActivityWords(
        1, W("Bijhouden wie uw gegevens gebruikt", "Keeping track of who uses your data"),
        W(f"{party} houdt bij wie uw gegevens gebruikt, wanneer en waarom. Zo kunnen wij u dat laten zien, zoals in "
          "deze brief.",
          f"{party} records who uses your data, when and why, so that we can show you, as in this letter."),
        W("Zo lang als de gegevens waar het over gaat: 7 jaar.", "As long as the data it is about: 7 years."))


ACTIVITIES: dict[str, ActivityWords] = {
    # -- WerkSaam Westfriesland -----------------------------------------------------------------------------------
    "werksaam:referral-intake": ActivityWords(
        2, W("Uw aanmelding beoordelen en doorgeven aan Heliomare", "Assessing your referral and passing it on to "
                                                                     "Heliomare"),
        W("WerkSaam kijkt of u hulp kunt krijgen bij het vinden van werk. Kan dat? Dan meldt WerkSaam u aan bij "
          "Heliomare. Heliomare begeleidt u naar betaald werk.",
          "WerkSaam checks whether you can get help to find work. If so, WerkSaam refers you to Heliomare, which "
          "guides you towards paid work."),
        _ARCHIEFWET_7, main=True),
    "werksaam:quote-decision": ActivityWords(
        2, W("Besluiten over de offerte van Heliomare", "Deciding on Heliomare's quote"),
        W("Heliomare maakt een offerte voor uw traject. WerkSaam keurt die goed of af. WerkSaam betaalt Heliomare "
          "nooit meer dan het goedgekeurde bedrag.",
          "Heliomare makes a quote for your trajectory. WerkSaam approves or rejects it, and never pays Heliomare "
          "more than the approved amount."),
        _FINANCE_7, main=True),
    "werksaam:case-overview": ActivityWords(
        1, W("Overzicht voor uw klantmanager", "Overview for your caseworker"),
        W("Uw klantmanager bij WerkSaam volgt hoe het gaat met uw aanmelding en uw traject.",
          "Your caseworker at WerkSaam follows how your referral and your trajectory are going."),
        W("Zo lang als uw aanmelding zelf: 7 jaar na het einde van uw traject.",
          "As long as your referral itself: 7 years after your trajectory ends.")),
    "werksaam:exchange-acknowledgement": ActivityWords(2, _RETOUR, _RETOUR_WHY, _RETOUR_LONG),
    "werksaam:processing-log-access": _log("WerkSaam"),
    "werksaam:trajectory-monitoring": ActivityWords(
        2, W("Uw traject volgen", "Following your trajectory"),
        W("WerkSaam houdt bij wanneer uw traject begint, hoe het gaat en hoe het afloopt.",
          "WerkSaam records when your trajectory starts, how it goes and how it ends."),
        _ARCHIEFWET_7, main=True),
    "werksaam:invoice-verification": ActivityWords(
        2, W("Facturen controleren en betalen", "Checking and paying invoices"),
        W("WerkSaam controleert de facturen van Heliomare voor uw traject en betaalt ze. WerkSaam betaalt nooit meer "
          "dan het goedgekeurde bedrag.",
          "WerkSaam checks and pays Heliomare's invoices for your trajectory, never more than the approved amount."),
        _FINANCE_7, main=True),
    "werksaam:trajectory-report": ActivityWords(
        3, W("Het jaarverslag van Heliomare ontvangen", "Receiving Heliomare's yearly report"),
        W("WerkSaam bekijkt elk jaar en elk kwartaal hoe de samenwerking gaat. In het verslag staan alleen aantallen, "
          "geen gegevens over u.",
          "WerkSaam looks every year and every quarter at how the cooperation is going. The report holds only "
          "numbers, no data about you."),
        W("De Archiefwet verplicht WerkSaam om evaluaties 10 jaar te bewaren.",
          "The Archives Act requires WerkSaam to keep evaluations for 10 years."), about_the_person=False),
    "werksaam:subject-rights": ActivityWords(
        3, W("Uw vragen over uw gegevens behandelen", "Handling your requests about your data"),
        W("WerkSaam is uw vaste contactpunt voor vragen over uw gegevens, ook over de gegevens bij Heliomare. "
          "WerkSaam regelt uw vraag met Heliomare en let op de termijnen.",
          "WerkSaam is your single point of contact for requests about your data, also about the data at "
          "Heliomare. WerkSaam arranges your request with Heliomare and watches the deadlines."),
        W("WerkSaam moet kunnen laten zien hoe uw vraag is behandeld. Geen wet zegt hoe lang. WerkSaam heeft "
          "gekozen voor 5 jaar.",
          "WerkSaam must be able to show how your request was handled. No law says for how long; WerkSaam chose "
          "5 years.")),
    "werksaam:retention": ActivityWords(
        1, W("Gegevens op tijd vernietigen", "Destroying data on time"), _DESTROY_WHY,
        W("WerkSaam moet kunnen laten zien wat er is vernietigd. Dat bewaart WerkSaam 7 jaar.",
          "WerkSaam must be able to show what was destroyed. It keeps that for 7 years.")),
    "werksaam:partner-administration": ActivityWords(
        2, W("Partners van de samenwerking bijhouden", "Keeping track of the partners of the cooperation"),
        W("WerkSaam houdt bij welke organisaties meedoen aan de samenwerking.",
          "WerkSaam records which organisations take part in the cooperation."),
        W("De Archiefwet verplicht WerkSaam om afspraken met organisaties 7 jaar te bewaren.",
          "The Archives Act requires WerkSaam to keep agreements with organisations for 7 years."),
        about_the_person=False),
    "werksaam:breach-notification": ActivityWords(2, _BREACH, _BREACH_WHY, _BREACH_LONG),
    "werksaam:confidentiality": ActivityWords(1, _SECRECY, _SECRECY_WHY, _SECRECY_LONG, about_the_person=False),
    # -- Heliomare ------------------------------------------------------------------------------------------------
    "heliomare:referral-registration": ActivityWords(
        2, W("Uw aanmelding ontvangen en aannemen", "Receiving and accepting your referral"),
        W("Heliomare krijgt uw aanmelding van WerkSaam. Heliomare kijkt of het u kan begeleiden naar betaald werk.",
          "Heliomare receives your referral from WerkSaam and checks whether it can guide you towards paid work."),
        _TAX_7, main=True),
    "heliomare:quote": ActivityWords(
        3, W("Een offerte of re-integratieplan maken", "Making a quote or reintegration plan"),
        W("Heliomare maakt een offerte voor uw traject en stuurt die naar WerkSaam. WerkSaam betaalt volgens die "
          "offerte.",
          "Heliomare makes a quote for your trajectory and sends it to WerkSaam, which pays according to it."),
        _TAX_7, main=True),
    "heliomare:case-overview": ActivityWords(
        1, W("Overzicht voor uw accountmanager", "Overview for your account manager"),
        W("Uw accountmanager bij Heliomare volgt hoe het met u gaat.",
          "Your account manager at Heliomare follows how you are doing."),
        W("Zo lang als uw dossier zelf: 7 jaar.", "As long as your file itself: 7 years.")),
    "heliomare:exchange-acknowledgement": ActivityWords(2, _RETOUR, _RETOUR_WHY, _RETOUR_LONG),
    "heliomare:processing-log-access": _log("Heliomare"),
    "heliomare:trajectory": ActivityWords(
        2, W("Uw traject uitvoeren", "Carrying out your trajectory"),
        W("Heliomare begeleidt u naar betaald werk. Heliomare laat WerkSaam weten wanneer uw traject begint, hoe het "
          "gaat en hoe het afloopt.",
          "Heliomare guides you towards paid work, and tells WerkSaam when your trajectory starts, how it goes and "
          "how it ends."),
        _TAX_7, main=True),
    "heliomare:trajectory-report": ActivityWords(
        3, W("Het jaarverslag maken", "Making the yearly report"),
        W("Heliomare telt elk jaar hoeveel trajecten er waren en hoe ze afliepen. In het verslag staan alleen "
          "aantallen. Niemand kan zien dat het over u gaat. Heeft u bezwaar gemaakt of uw gegevens laten beperken? "
          "Dan telt Heliomare u niet mee.",
          "Every year Heliomare counts how many trajectories there were and how they ended. The report holds only "
          "numbers: nobody can tell it is about you. If you objected or had your data restricted, Heliomare leaves "
          "you out."),
        W("Zo lang als de trajecten die het telt: 7 jaar. Het verslag zelf bevat geen gegevens over u.",
          "As long as the trajectories it counts: 7 years. The report itself holds no data about you.")),
    "heliomare:billing": ActivityWords(
        2, W("Uw traject factureren", "Invoicing your trajectory"),
        W("Heliomare stuurt WerkSaam facturen voor uw traject, nooit meer dan het goedgekeurde bedrag.",
          "Heliomare sends WerkSaam invoices for your trajectory, never more than the approved amount."),
        W("De belastingwet verplicht Heliomare om facturen 7 jaar te bewaren (Algemene wet inzake rijksbelastingen "
          "artikel 52 en Wet op de omzetbelasting artikel 35a).",
          "Tax law requires Heliomare to keep invoices for 7 years (General State Taxes Act article 52 and VAT Act "
          "article 35a)."), main=True),
    "heliomare:subject-rights": ActivityWords(
        2, W("Uw vragen over uw gegevens uitvoeren", "Carrying out your requests about your data"),
        W("Heliomare voert uw vraag over uw gegevens uit. WerkSaam regelt dat voor u.",
          "Heliomare carries out your request about your data. WerkSaam arranges this for you."),
        W("Heliomare moet kunnen laten zien hoe uw vraag is uitgevoerd. Geen wet zegt hoe lang. Heliomare bewaart "
          "dit 5 jaar.",
          "Heliomare must be able to show how your request was carried out. No law says for how long; Heliomare "
          "keeps this for 5 years.")),
    "heliomare:retention": ActivityWords(
        1, W("Gegevens op tijd vernietigen", "Destroying data on time"), _DESTROY_WHY,
        W("Heliomare moet kunnen laten zien wat er is vernietigd. Dat bewaart Heliomare 7 jaar.",
          "Heliomare must be able to show what was destroyed. It keeps that for 7 years.")),
    "heliomare:breach-notification": ActivityWords(2, _BREACH, _BREACH_WHY, _BREACH_LONG),
    "heliomare:confidentiality": ActivityWords(1, _SECRECY, _SECRECY_WHY, _SECRECY_LONG, about_the_person=False),
}


def activity_words(activity_id: str) -> ActivityWords:
    """The words of a registered activity (any version) by its id."""
    match = ACTIVITY_ID.match(activity_id)
    key = f"{match['party']}:{match['slug']}" if match else activity_id
    if key not in ACTIVITIES:
        raise UnknownCode("activity", key)
    return ACTIVITIES[key]


CATEGORIES: dict[str, W] = {
    "identification": W("wie u bent: naam, geboortedatum en BSN", "who you are: name, date of birth and BSN"),
    "contact": W("hoe wij u bereiken: postcode, telefoon en e-mail", "how we reach you: postal code, phone and e-mail"),
    "residence": W("uw gemeente", "your municipality"),
    "support need (code, no health details)": W("welke begeleiding u nodig heeft (geen medische gegevens)",
                                                "the support you need (no medical details)"),
    "target-group checks (not shared)": W("of u bij de doelgroep hoort (wordt niet doorgegeven)",
                                          "whether you belong to the target group (not passed on)"),
    "pseudonym": W("een code in plaats van uw naam", "a code instead of your name"),
    "quote and its decision": W("de offerte en het besluit daarover", "the quote and the decision on it"),
    "referral status": W("hoe het met uw aanmelding staat", "where your referral stands"),
    "case status": W("hoe het met uw aanmelding staat", "where your referral stands"),
    "trajectory dates": W("datums van uw traject", "dates of your trajectory"),
    "progress and outcome (codes, no health details)": W("voortgang en resultaat (geen medische gegevens)",
                                                         "progress and result (no medical details)"),
    "invoice": W("facturen", "invoices"),
    "the request and how the identity was verified": W("uw vraag en hoe wij controleerden wie u bent",
                                                       "your request and how we checked who you are"),
    "copies of the data held (access, portability)": W("een kopie van uw gegevens (als u om inzage vraagt)",
                                                       "a copy of your data (when you ask for access)"),
    "partner's contact person (register only)": W("contactpersonen van partners", "contact persons of partners"),
    "pseudonyms of the affected subjects": W("de code in plaats van uw naam, als u bij een datalek hoort",
                                             "the code instead of your name, if a data breach concerns you"),
    "the breach (codes, no free text)": W("gegevens over het datalek", "details of the data breach"),
    "staff id (not a data subject of the cooperation)": W("medewerkers", "members of staff"),
    "approved quote": W("de goedgekeurde offerte", "the approved quote"),
    "invoiced amounts": W("gefactureerde bedragen", "invoiced amounts"),
    "pseudonym (read to leave out restricted and objecting persons, not sent)": W(
        "een code in plaats van uw naam (alleen om u zo nodig niet mee te tellen)",
        "a code instead of your name (only to leave you out where needed)"),
    "counted (not sent)": W("gegevens die meetellen in het jaarverslag (worden niet doorgegeven)",
                            "data counted in the yearly report (not passed on)"),
    "trajectory dates and outcome": W("datums en resultaat van uw traject", "dates and result of your trajectory"),
}


def category_words(name: str) -> W:
    if name not in CATEGORIES:
        raise UnknownCode("category", name)
    return CATEGORIES[name]


# Why a party may use the data: one sentence per legal basis (agreement art 9), with the party's name.
LEGAL_BASES: dict[LegalBasis, W] = {
    LegalBasis.PUBLIC_TASK: W(
        "{party} gebruikt uw gegevens voor een taak die de wet aan {party} geeft: de Participatiewet. Daarom mag "
        "{party} dit doen (AVG artikel 6 lid 1 onder e: een taak van algemeen belang).",
        "{party} uses your data for a task the law gives {party}: the Participatiewet (Participation Act). That "
        "is why {party} may do this (GDPR article 6(1)(e): a task in the public interest)."),
    LegalBasis.CONTRACT: W(
        "{party} gebruikt uw gegevens om de afspraken met u uit te voeren: uw begeleiding naar werk. Daarom mag "
        "{party} dit doen (AVG artikel 6 lid 1 onder b: een overeenkomst).",
        "{party} uses your data to carry out what it agreed with you: guiding you towards work. That is why "
        "{party} may do this (GDPR article 6(1)(b): a contract)."),
    # The grounds a party admitted later by addendum may have (none of the present parties does).
    LegalBasis.CONSENT: W(
        "{party} gebruikt uw gegevens omdat u daar toestemming voor gaf (AVG artikel 6 lid 1 onder a).",
        "{party} uses your data because you gave your consent (GDPR article 6(1)(a))."),
    LegalBasis.LEGAL_OBLIGATION: W(
        "{party} gebruikt uw gegevens omdat de wet {party} dat verplicht (AVG artikel 6 lid 1 onder c).",
        "{party} uses your data because the law obliges {party} to (GDPR article 6(1)(c))."),
    LegalBasis.VITAL_INTERESTS: W(
        "{party} gebruikt uw gegevens om uw leven of gezondheid te beschermen (AVG artikel 6 lid 1 onder d).",
        "{party} uses your data to protect your life or health (GDPR article 6(1)(d))."),
    LegalBasis.LEGITIMATE_INTERESTS: W(
        "{party} gebruikt uw gegevens voor een gerechtvaardigd belang (AVG artikel 6 lid 1 onder f).",
        "{party} uses your data for a legitimate interest (GDPR article 6(1)(f))."),
}


def legal_basis_words(basis: str, party: str) -> W:
    try:
        words = LEGAL_BASES[LegalBasis(basis)]
    except ValueError:
        raise UnknownCode("legal basis", basis) from None
    return W(words.nl.format(party=party), words.en.format(party=party))


# The legal duties that keep a record after an erasure (shared/privacy/grounds.py), by the ground's key.
GROUNDS: dict[str, W] = {
    "archiefwet-reintegration": W(
        "De Archiefwet verplicht WerkSaam om uw re-integratiedossier en de betalingen 7 jaar te bewaren. Daarom "
        "blijven uw BSN, naam en geboortedatum bewaard, en ook uw gemeente, de besluiten en de bedragen. Uw "
        "postcode, telefoonnummer en e-mailadres zijn gewist.",
        "The Archives Act requires WerkSaam to keep your reintegration file and its payments for 7 years. So your "
        "BSN, name and date of birth are kept, and so are your municipality, the decisions and the amounts. Your "
        "postal code, phone number and e-mail address have been erased."),
    "fiscal-administration": W(
        "De belastingwet verplicht Heliomare om facturen en de administratie daarvan 7 jaar te bewaren. Daarin "
        "staan uw naam en contactgegevens niet, alleen een code.",
        "Tax law requires Heliomare to keep invoices and the records behind them for 7 years. They do not hold your "
        "name or contact details, only a code."),
}


def ground_words(text: str) -> W:
    """The words for a withheld record's ground, as the answer carries it (`HeldRecord.ground`)."""
    ground = ground_of(text)
    if ground is None or ground.key not in GROUNDS:
        raise UnknownCode("legal ground", ground.key if ground else "(not a known ground)")
    return GROUNDS[ground.key]


_RECEIVED = re.compile(r"^received from (?P<parties>[a-z, ]+)$")
_COLLECTED = re.compile(r"^collected by (?P<party>[a-z]+) from the person or its own staff$")


def source_parties(source: str) -> tuple[list[str], str | None]:
    """Where an activity's data comes from, as `shared.privacy.subject_data.source_of` says it: (the parties whose
    messages bring it, the party that collects it itself from the person). Exactly one of the two is given."""
    if match := _RECEIVED.match(source):
        return [p.strip() for p in match["parties"].split(",")], None
    if match := _COLLECTED.match(source):
        return [], match["party"]
    raise UnknownCode("source", "(not a known form)")
