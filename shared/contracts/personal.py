"""The personal data of a referral: what WerkSaam's intake holds, hands over in `referral.registered`
(art 5.5 of the agreement: the allow-list) and Heliomare's offer keeps. One model for both parties'
records, so that a correction (art 16) means the same fields everywhere. Stored encrypted (the
repository's personal part); never printed (`repr=False`), never in an error (`hide_input_in_errors`)."""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


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
