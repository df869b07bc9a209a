"""What a service's handlers see and return: the types between the pipeline and the handlers.

A module with no dependency on the pipeline, so that the capabilities (the subject-rights responder, the breach
desk) and the services' handlers import these without importing the pipeline itself. Imports point one way:
contracts → domain → unit of work → messaging → capabilities → bootstrap → runtime (checked by import-linter,
`[tool.importlinter]` in pyproject.toml).
Handlers stay plain functions: `async def handler(message: Incoming[T], uow) -> None` for events,
`async def handler(command, uow) -> Answer | dict | list | None` for commands.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from shared.contracts.commands import Command
from shared.contracts.envelope import Envelope, EventData
from shared.contracts.reasons import Reason
from shared.unit_of_work import UnitOfWork

T = TypeVar("T", bound=EventData)


@dataclass(frozen=True)
class Incoming(Generic[T]):
    """A validated event as a handler sees it."""

    envelope: Envelope
    data: T


EventHandler = Callable[[Incoming[Any], UnitOfWork], Awaitable[None]]
CommandHandler = Callable[[Any, UnitOfWork], Awaitable["Answer | dict[str, Any] | list[dict[str, Any]] | None"]]


@dataclass(frozen=True)
class Answer:
    """What a command handler returns when it wants to say more than "done, here is the result":
    a refusal that was nevertheless recorded (ok=False with reasons), or the lifecycle it started."""

    result: dict[str, Any] | list[dict[str, Any]] | None = None
    ok: bool = True
    reasons: tuple[Reason, ...] = ()
    lifecycle_id: uuid.UUID | None = None


@dataclass(frozen=True)
class Job:
    """Work a service does on a timer: every `interval` seconds it gives itself a command, which runs through
    the pipeline like any other (transaction, processing log, tracing)."""

    name: str
    interval: float
    command: Callable[[], Command]


@runtime_checkable
class BoundByPipeline(Protocol):
    """An event handler that needs what only the running pipeline knows: the service's checked processing
    activities and a way to destroy its dead letters about a subject (the subject-rights responder). The
    pipeline binds it once, when it is built."""

    def bind(self, activities: Iterable[Any], destroy_dead_letters: Callable[[str], Awaitable[int]] | None) -> (
            EventHandler): ...

