"""The personal data of a referral: what WerkSaam's intake holds, hands over in `referral.registered`
(art 5.5 of the agreement: the allow-list) and Heliomare's offer keeps. One model for both parties'
records, so that a correction (art 16) means the same fields everywhere. Stored encrypted (the
repository's personal part); never printed (`repr=False`), never in an error (`hide_input_in_errors`)."""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.reasons import Reason, ReasonCode

OLDEST_AGE = 120  # years: a date of birth further back is a typing error, not a person


class PersonalData(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    bsn: str = Field(repr=False)
    given_name: str = Field(repr=False)
    family_name: str = Field(repr=False)
    date_of_birth: date = Field(repr=False)
    # None only in a record withheld from erasure whose ground does not need it (shared.privacy.grounds)
    postal_code: str | None = Field(None, repr=False)
    phone: str | None = Field(None, repr=False)
    email: str | None = Field(None, repr=False)

    @classmethod
    def of(cls, source: Any, **overrides: Any) -> PersonalData:
        """Taken from a message that carries these fields (a `SubmitReferral`, a `ReferralRegistered`)."""
        return cls(**{name: getattr(source, name) for name in cls.model_fields} | overrides)


def date_of_birth_reasons(born: date, today: date, field: str = "date_of_birth") -> list[Reason]:
    """A date of birth that cannot be true: in the future, or more than OLDEST_AGE years ago. Checked where a
    referral is made (intake) and where it is received (offer); the date itself is never repeated."""
    if born > today:
        return [Reason(code=ReasonCode.DATE_IMPLAUSIBLE, field=field, detail="in the future")]
    try:
        earliest = today.replace(year=today.year - OLDEST_AGE)
    except ValueError:  # 29 February
        earliest = today.replace(year=today.year - OLDEST_AGE, day=28)
    if born < earliest:
        return [Reason(code=ReasonCode.DATE_IMPLAUSIBLE, field=field, detail=f"more than {OLDEST_AGE} years ago")]
    return []
