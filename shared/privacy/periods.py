"""Calendar arithmetic for legal periods: the art 12(3) deadlines and the retention periods of the register.

A period of months ends on the same day of the month, or on the month's last day when that day does not
exist (received 31 January: due 28 February, or 29 in a leap year). This is how the EDPB reads art 12(3)
(Guidelines 01/2022 on the right of access, §159, following Regulation 1182/71 art 3(2)(c)).
"""

from __future__ import annotations

import calendar
import re
from datetime import date, timedelta

_DURATION = re.compile(r"^P(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?$")


def add_months(day: date, months: int) -> date:
    """The same day `months` later (or earlier), clamped to the last day of a shorter month."""
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def parse_duration(text: str) -> tuple[int, int]:
    """An ISO 8601 date duration (P7Y, P90D, P1Y6M, P2W) as (months, days)."""
    match = _DURATION.match(text)
    if not match or text == "P":
        raise ValueError(f"not an ISO 8601 date duration: {text!r}")
    parts = {k: int(v) for k, v in match.groupdict(default="0").items()}
    return parts["years"] * 12 + parts["months"], parts["weeks"] * 7 + parts["days"]


def add_duration(day: date, text: str, sign: int = 1) -> date:
    months, days = parse_duration(text)
    return add_months(day, sign * months) + timedelta(days=sign * days)
