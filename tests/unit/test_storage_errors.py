"""The Mongo unit of work speaks the port's language to the messaging core: a write conflict or a transient
transaction error of the driver becomes `ConcurrencyError` (retry the whole unit of work), anything else passes
through unchanged, and the transaction is aborted and the write lock released either way."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from pymongo.errors import DuplicateKeyError, OperationFailure

from shared.storage.mongo import MongoUnitOfWork
from shared.unit_of_work import ConcurrencyError


class Session:
    def __init__(self) -> None:
        self.in_transaction, self.aborted, self.ended = True, False, False

    async def abort_transaction(self) -> None:
        self.aborted, self.in_transaction = True, False

    async def __aexit__(self, *exc: object) -> None:
        self.ended = True


def a_unit_of_work() -> MongoUnitOfWork:
    uow = MongoUnitOfWork.__new__(MongoUnitOfWork)  # only what leaving the unit of work touches
    uow._session, uow._storage = Session(), SimpleNamespace(write_lock=asyncio.Lock())
    return uow


async def leave(uow: MongoUnitOfWork, exc: BaseException | None) -> None:
    await uow._storage.write_lock.acquire()
    await uow.__aexit__(type(exc) if exc else None, exc, None)


@pytest.mark.parametrize("error", [
    OperationFailure("Write conflict during plan execution", code=112),
    OperationFailure("anything", code=251, details={"errorLabels": ["TransientTransactionError"]}),
], ids=["write-conflict", "transient-label"])
async def test_a_transient_transaction_error_leaves_the_unit_of_work_as_a_concurrency_error(error):
    uow = a_unit_of_work()
    with pytest.raises(ConcurrencyError) as raised:
        await leave(uow, error)
    assert raised.value.__cause__ is error
    assert uow._session.aborted and uow._session.ended and not uow._storage.write_lock.locked()


@pytest.mark.parametrize("error", [DuplicateKeyError("E11000"), OperationFailure("bad query", code=2),
                                   ValueError("a handler's own error")], ids=["duplicate-key", "other", "handler"])
async def test_any_other_error_passes_through_unchanged(error):
    uow = a_unit_of_work()
    await leave(uow, error)  # returns None: the original exception propagates from the `async with`
    assert uow._session.aborted and not uow._storage.write_lock.locked()


async def test_a_unit_of_work_left_without_an_error_raises_nothing():
    uow = a_unit_of_work()
    await leave(uow, None)
    assert uow._session.ended and not uow._storage.write_lock.locked()
