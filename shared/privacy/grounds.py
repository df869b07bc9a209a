"""The legal grounds on which a record is withheld from erasure (GDPR art 17(3)(b)), and what each keeps.

A ground keeps a record only for the duty it names, so it keeps only the personal fields that duty needs
(art 5(1)(c), data minimisation); the others are dropped at the erasure, before the record is re-encrypted
under the subject's retained key. The ground's text names the fields kept, so the answer to the erasure
request, and any later access request, tells the person what stays and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from shared.domain import Withholding
from shared.privacy.periods import add_months


@dataclass(frozen=True)
class Ground:
    key: str  # a stable name of the ground, for the words a letter to the person uses (cli/render/letters)
    law: str  # the legal duty, cited
    keeps: tuple[str, ...]  # the personal fields the duty needs
    why: str  # why those fields, and why not the others
    years: int  # how long the duty keeps the record after its lifecycle ended

    def withholding(self, start: date) -> Withholding:
        return Withholding(ground=f"{self.law}. {self.why}", keep_until=add_months(start, self.years * 12),
                           keeps=self.keeps)


ARCHIEFWET_REINTEGRATION = Ground(
    key="archiefwet-reintegration",
    law="GDPR art 17(3)(b): Archiefwet 1995 art 3 with the Selectielijst gemeenten en intergemeentelijke organen: "
        "the re-integration file and its payments are kept 7 years after the trajectory ends",
    keeps=("bsn", "given_name", "family_name", "date_of_birth"),
    why="Kept: BSN, names and date of birth, which say whose file it is; the municipality, decisions and amounts "
        "are kept as they are. Not kept: postal code, phone and e-mail, which the archive duty does not need",
    years=7,
)

FISCAL_ADMINISTRATION = Ground(
    key="fiscal-administration",
    law="GDPR art 17(3)(b): Algemene wet inzake rijksbelastingen art 52 and Wet op de omzetbelasting 1968 art 35a: "
        "invoices and the administration behind them are kept 7 years",
    keeps=(),
    why="Kept: the pseudonymous account and its invoices; it holds no name or contact data",
    years=7,
)


GROUNDS = (ARCHIEFWET_REINTEGRATION, FISCAL_ADMINISTRATION)


def ground_of(text: str) -> Ground | None:
    """The ground a withheld record's text (`Withholding.ground`, as an answer carries it) was written from."""
    return next((g for g in GROUNDS if text.startswith(g.law)), None)
