"""The retention job (agreement art 11.4): destroy personal data whose retention period has passed.

Each repository that holds records about subjects names the register activity whose retention period
applies to it (`RepositorySpec.retention`). A record's period starts when its lifecycle ended
(`Aggregate.retention_start`); a record withheld from an erasure request is kept until the date its legal
ground gives. When the period has passed the job deletes the record, and once nothing is left on the
subject in this service it destroys the subject's data keys, which makes the outbox copies unreadable too.
Every destruction is written to the processing log (activity `retention`), in the same transaction.

Each service runs the job on a timer (`WERKBRUG_RETENTION_INTERVAL`, default daily).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from shared.contracts.parties import Party
from shared.privacy.periods import add_duration
from shared.privacy.processing_log import Processing
from shared.privacy.register import load_register
from shared.unit_of_work import RepositorySpec, UnitOfWork

log = logging.getLogger("werkbrug.retention")

BATCH = 100


@dataclass
class RetentionReport:
    destroyed: dict[str, int] = field(default_factory=dict)  # repository -> records destroyed
    subjects_shredded: int = 0

    @property
    def total(self) -> int:
        return sum(self.destroyed.values())


class RetentionJob:
    def __init__(self, service: str, party: Party, specs: list[RepositorySpec],
                 uow_factory: Callable[[], UnitOfWork]) -> None:
        register = load_register()
        self.service = service
        self.specs = [s for s in specs if s.about_subjects]
        self.periods = {s.name: register.by_name(party, s.retention).retention for s in self.specs if s.retention}
        self.activity = register.by_name(party, "retention")
        self.uow_factory = uow_factory

    async def run(self, now: datetime | None = None) -> RetentionReport:
        now = now or datetime.now(UTC)
        today, report = now.date(), RetentionReport()
        for name, period in self.periods.items():
            started_before = add_duration(today, period, sign=-1)
            while True:
                async with self.uow_factory() as uow:
                    destroyed = await self._batch(uow, name, started_before, now, report)
                if destroyed < BATCH:
                    break
        if report.total:
            log.info("%s retention: destroyed %s; shredded the keys of %d subjects", self.service,
                     report.destroyed, report.subjects_shredded)
        return report

    async def _batch(self, uow: UnitOfWork, name: str, started_before, now: datetime, report: RetentionReport) -> int:
        uow.processing = Processing(activity=self.activity, operation=f"{self.service}.retention",
                                    service=self.service, started_at=now, message_type="job:retention")
        due = await uow.repositories[name].retention_due(started_before, now.date(), limit=BATCH)
        subjects = set()
        for aggregate in due:
            await uow.erase_record(name, aggregate)
            if subject := getattr(aggregate, "subject", None):
                subjects.add(subject)
        for subject in sorted(subjects):
            if not await self._anything_left(uow, subject):
                await uow.shred_subject(subject, retained_too=True)
                report.subjects_shredded += 1
        uow.processing.subjects |= subjects
        await uow.commit()
        report.destroyed[name] = report.destroyed.get(name, 0) + len(due)
        return len(due)

    async def _anything_left(self, uow: UnitOfWork, subject: str) -> bool:
        for spec in self.specs:
            if await uow.repositories[spec.name].find(limit=1, subject=subject):
                return True
        return False
