"""Who takes part in the cooperation, and the facts about them that the software needs."""

from __future__ import annotations

from enum import StrEnum


class Party(StrEnum):
    """A party to the agreement. The value is its broker identity and the first word of its routing keys."""

    WERKSAAM = "werksaam"  # WerkSaam Westfriesland, commissioner (opdrachtgever)
    HELIOMARE = "heliomare"  # Stichting Heliomare, reintegration provider


# The party that owns each service: only it may give the service commands (its key on the commands exchange
# is `<party>.<service>`). The same as each ServiceDefinition's party (tests/unit/test_wiring.py checks).
SERVICE_PARTY: dict[str, Party] = {
    "intake": Party.WERKSAAM,
    "subject_rights": Party.WERKSAAM,
    "offer": Party.HELIOMARE,
    "trajectory": Party.HELIOMARE,
    "billing": Party.HELIOMARE,
}


class LegalBasis(StrEnum):
    """GDPR art 6(1) grounds that the agreement (art 9) assigns to each party."""

    PUBLIC_TASK = "GDPR 6(1)(e)"  # WerkSaam: Participatiewet
    CONTRACT = "GDPR 6(1)(b)"  # Heliomare: its contract with the person


LEGAL_BASIS: dict[Party, LegalBasis] = {
    Party.WERKSAAM: LegalBasis.PUBLIC_TASK,
    Party.HELIOMARE: LegalBasis.CONTRACT,
}


class Municipality(StrEnum):
    """The seven West-Frisian municipalities for which WerkSaam executes the Participatiewet (art 4)."""

    DRECHTERLAND = "drechterland"
    ENKHUIZEN = "enkhuizen"
    HOORN = "hoorn"
    KOGGENLAND = "koggenland"
    MEDEMBLIK = "medemblik"
    OPMEER = "opmeer"
    STEDE_BROEC = "stede-broec"
