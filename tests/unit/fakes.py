"""Test doubles that are not storage (the in-memory store itself is product code: shared/storage/memory.py)."""

from __future__ import annotations

from shared.contracts.reasons import Reason, ReasonCode
from shared.messaging.pipeline import DeadLetterSink
from shared.storage.memory import MemoryStore
from shared.unit_of_work import DeadLetterRecord


class RecordingDeadLetters(DeadLetterSink):
    """A fake service's parking queue, seen through what the service recorded about the messages it refused
    (the broker, not the service, parks them: the pipeline records why and answers "dead_lettered")."""

    def __init__(self, store: MemoryStore | None = None) -> None:
        self.store = store

    @property
    def letters(self) -> list[tuple[DeadLetterRecord, list[Reason]]]:
        records = self.store.dead_letters.values() if self.store is not None else ()
        return [(r, [Reason.model_validate(x) for x in r.reasons]) for r in records]

    @property
    def codes(self) -> list[list[ReasonCode]]:
        return [[r.code for r in reasons] for _, reasons in self.letters]
