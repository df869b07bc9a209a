"""The in-memory store behaves like the storage it stands beside: shared committed state, rollback without commit."""

from __future__ import annotations

import pytest

from services.intake.bootstrap import REFERRALS
from services.intake.domain import Referral, ReferralStatus
from services.offer.bootstrap import CASES
from services.offer.domain import Case, CaseStatus
from shared.contracts.parties import Party
from shared.storage.memory import MemoryStore, MemoryUnitOfWork
from shared.unit_of_work import ConcurrencyError, DuplicateMessage, InboxEntry
from tests.unit.builders import VALID_BSN, a_referral_registered, a_submit_referral, pseudonymise

SUBJECT = pseudonymise(VALID_BSN)


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore(Party.HELIOMARE, [CASES])


async def add_case(store: MemoryStore) -> Case:
    case = Case.register(a_referral_registered(), SUBJECT, commissioner="werksaam")
    async with store.unit_of_work() as uow:
        uow.cases.add(case)
        await uow.commit()
    return case


async def test_committed_aggregates_are_seen_by_the_next_unit_of_work(store):
    case = await add_case(store)
    async with store.unit_of_work() as uow:
        found = await uow.cases.get(case.id)
    assert found is not None and found.id == case.id and found.version == 1


async def test_an_uncommitted_change_is_lost(store):
    case = await add_case(store)
    async with store.unit_of_work() as uow:
        loaded = await uow.cases.get(case.id)
        loaded.accept()
    assert store.rows["cases"][case.id].status == CaseStatus.REGISTERED
    assert store.outbox == [] and store.commits == 1


async def test_a_committed_change_is_stored_as_a_copy_with_its_events_in_the_outbox(store):
    case = await add_case(store)
    async with store.unit_of_work() as uow:
        loaded = await uow.cases.get(case.id)
        loaded.accept()
        await uow.commit()
    loaded.status = CaseStatus.DECLINED  # after the commit: must not leak into the store
    stored = store.rows["cases"][case.id]
    assert stored.status == CaseStatus.ACCEPTED and stored.version == 2
    assert [e.type for e in store.outbox] == ["referral.accepted"]
    assert store.outbox[0].source == Party.HELIOMARE


async def test_units_of_work_on_one_store_share_its_state(store):
    await add_case(store)
    first, second = MemoryUnitOfWork(store), MemoryUnitOfWork(store)
    assert len(await first.cases.find()) == len(await second.cases.find()) == 1


async def test_the_inbox_refuses_a_message_twice(store):
    async with store.unit_of_work() as uow:
        uow.inbox = InboxEntry("m-1", "event", "referral.registered")
        await uow.commit()
    async with store.unit_of_work() as uow:
        assert (await uow.processed("m-1")).type == "referral.registered"
        uow.inbox = InboxEntry("m-1", "event", "referral.registered")
        with pytest.raises(DuplicateMessage):
            await uow.commit()
    assert store.commits == 1


async def test_a_concurrent_change_is_detected(store):
    case = await add_case(store)
    async with store.unit_of_work() as slow, store.unit_of_work() as fast:
        (await slow.cases.get(case.id)).accept()
        (await fast.cases.get(case.id)).decline("no_capacity")
        await fast.commit()
        with pytest.raises(ConcurrencyError):
            await slow.commit()
    assert store.rows["cases"][case.id].status == CaseStatus.DECLINED


async def test_find_matches_attributes_newest_first_within_the_limit():
    store = MemoryStore(Party.WERKSAAM, [REFERRALS])
    referrals = [Referral.submit(a_submit_referral(labour_disability=i % 2 == 0), pseudonymise) for i in range(5)]
    async with store.unit_of_work() as uow:
        for r in referrals:
            uow.referrals.add(r)
        await uow.commit()
    async with store.unit_of_work() as uow:
        registered = await uow.referrals.find(status="registered")
        assert [r.id for r in registered] == [referrals[4].id, referrals[2].id, referrals[0].id]
        assert [r.id for r in await uow.referrals.find(limit=2)] == [referrals[4].id, referrals[3].id]
        assert all(r.status == ReferralStatus.REFUSED for r in await uow.referrals.find(status=ReferralStatus.REFUSED))
