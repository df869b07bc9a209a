"""Dates, times, amounts and periods as a person reads them, in Dutch or English.

Dutch: "3 maart 2027", "3 maart 2027 om 14:05", "€ 4.800,00", "21%", "26 weken", "7 jaar".
English: "3 March 2027", "3 March 2027 at 14:05", "€4,800.00", "21%", "26 weeks", "7 years".
Times are shown in Dutch time (Europe/Amsterdam), where the person and the desk are.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from cli.render.letters.vocabulary import Lang
from shared.privacy.periods import parse_duration

LOCAL = ZoneInfo("Europe/Amsterdam")

MONTHS = {
    "nl": ("januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus", "september", "oktober",
           "november", "december"),
    "en": ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"),
}


def as_date(value: date | datetime | str) -> date:
    """A date, or the Dutch day of a moment (an ISO string as the views carry it, or a datetime)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=LOCAL)).astimezone(LOCAL).date()
    return value


def day(value: date | datetime | str, lang: Lang) -> str:
    d = as_date(value)
    return f"{d.day} {MONTHS[lang][d.month - 1]} {d.year}"


def moment(value: datetime | str, lang: Lang) -> str:
    """A moment as its Dutch day and time, to the minute."""
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    local = (when if when.tzinfo else when.replace(tzinfo=LOCAL)).astimezone(LOCAL)
    return f"{day(local, lang)} {'om' if lang == 'nl' else 'at'} {local:%H:%M}"


def euros(value: Decimal | str | float, lang: Lang) -> str:
    """An amount in euros with cents: "€ 4.800,00" (Dutch) or "€4,800.00" (English). The space after the euro sign
    does not break (a table cell keeps the amount on one line)."""
    amount = Decimal(str(value)).quantize(Decimal("0.01"))
    sign = "-" if amount < 0 else ""
    text = f"{abs(amount):,.2f}"  # 4,800.00
    if lang == "nl":
        return f"{sign}€\u00a0{text.replace(',', ' ').replace('.', ',').replace(' ', '.')}"
    return f"{sign}€{text}"


def percent(value: Decimal | str, lang: Lang) -> str:
    share = (Decimal(str(value)) * 100).normalize()
    text = f"{share:f}"
    return f"{text.replace('.', ',') if lang == 'nl' else text}%"


def weeks(value: int, lang: Lang) -> str:
    if lang == "nl":
        return f"{value} {'week' if value == 1 else 'weken'}"
    return f"{value} {'week' if value == 1 else 'weeks'}"


def period(iso: str, lang: Lang) -> str:
    """A retention period of the register (ISO 8601, "P7Y", "P90D") in words: "7 jaar", "90 dagen"."""
    months, days = parse_duration(iso)
    parts = []
    years, months = divmod(months, 12)
    names = {"nl": (("jaar", "jaar"), ("maand", "maanden"), ("dag", "dagen")),
             "en": (("year", "years"), ("month", "months"), ("day", "days"))}[lang]
    for count, (one, many) in zip((years, months, days), names, strict=True):
        if count:
            parts.append(f"{count} {one if count == 1 else many}")
    return (" en " if lang == "nl" else " and ").join(parts) or ("0 dagen" if lang == "nl" else "0 days")


def postal_code(value: str) -> str:
    """"1621AB" as it is written on an envelope: "1621 AB"."""
    compact = value.replace(" ", "")
    return f"{compact[:4]} {compact[4:]}" if len(compact) == 6 else value


def joined(items: list[str], lang: Lang) -> str:
    """"a, b en c" / "a, b and c"."""
    items = [i for i in items if i]
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {'en' if lang == 'nl' else 'and'} {items[-1]}"
