"""The sender of the letters: WerkSaam Westfriesland, the contact point for the person (agreement art 10.3).

Read with pydantic-settings from, in order of precedence, the environment (`WERKBRUG_LETTERHEAD_NAME`, ...) and a
TOML file (`WERKBRUG_LETTERHEAD_FILE`, default `var/letterhead.toml`, keys as the fields below). The defaults are
EXAMPLE values (addresses under the reserved `.example` domain): a letter made with them says so at its top, so it
is not sent by mistake. See README, "Letters to the person".
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_FILE = Path("var/letterhead.toml")
Line = Annotated[str, Field(min_length=1, max_length=120)]


class Letterhead(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WERKBRUG_LETTERHEAD_", extra="forbid", frozen=True)

    name: Line = "WerkSaam Westfriesland"
    department: Line = "Privacyloket"
    street: Line = "Voorbeeldstraat 1"
    postal_code: Line = "1620 AA"
    city: Line = "Hoorn"
    phone: Line = "0229 00 00 00"
    email: Line = "privacy@werksaam.example"
    website: Line = "www.werksaam.example"
    dpo_email: Line = Field("fg@werksaam.example", description="The data protection officer (functionaris "
                                                                "gegevensbescherming), GDPR art 13(1)(b), 38(4).")
    signatory: Line = Field("Het Privacyloket van WerkSaam Westfriesland",
                            description="Who signs the letters (a team, not a person's name).")

    @property
    def example(self) -> bool:
        """Made with the example values: not to be sent."""
        return any(value.endswith(".example") for value in (self.email, self.website, self.dpo_email))

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = Path(os.environ.get("WERKBRUG_LETTERHEAD_FILE", DEFAULT_FILE))
        return init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=toml_file)
