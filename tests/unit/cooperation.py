"""The whole cooperation in memory: the five services on in-memory stores, and a bus that hands every event a
service sent to every other service that takes its type (as the broker's bindings do). For tests that need a
person's data spread over both parties as the process leaves it (the letters to the person)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from services.billing.bootstrap import definition as billing_definition
from services.intake.bootstrap import definition as intake_definition
from services.offer.bootstrap import definition as offer_definition
from services.subject_rights.bootstrap import definition as subject_rights_definition
from services.trajectory.bootstrap import definition as trajectory_definition
from shared.config import Settings
from shared.contracts.commands import (
    Command,
    DecideQuote,
    DecideReferral,
    EndTrajectory,
    GetSubjectRequest,
    IdentityCheck,
    RecordConfidentialityStatement,
    ReportProgress,
    StartTrajectory,
    SubmitSubjectRequest,
)
from shared.contracts.events import ContractType, HoursBand, Outcome, Phase, ProgressStatus, Right
from tests.unit.builders import PSEUDONYM_KEY, a_send_quote, a_submit_referral, raw_of
from tests.unit.test_pipeline import Service

DESK = "desk.hoorn"  # WerkSaam's privacy desk (tests/staff.py)


class Cooperation:
    """intake, subject_rights (WerkSaam) and offer, trajectory, billing (Heliomare), wired by an in-memory bus."""

    def __init__(self) -> None:
        settings = Settings(WERKBRUG_PSEUDONYM_KEY=PSEUDONYM_KEY)
        self.services = {d.name: Service(d) for d in (
            intake_definition(settings), subject_rights_definition(settings), offer_definition(settings),
            trajectory_definition(settings), billing_definition(settings))}
        self._sent = dict.fromkeys(self.services, 0)
        self.down: set[str] = set()  # services that receive nothing (a service that is not running)

    async def command(self, service: str, command: Command) -> dict[str, Any]:
        """A command to one service; then every event it causes is delivered, until the bus is quiet."""
        reply = await self.services[service].command(command)
        await self.settle()
        return reply

    async def settle(self) -> None:
        moved = True
        while moved:
            moved = False
            for name, sender in self.services.items():
                waiting = sender.store.outbox[self._sent[name]:]
                self._sent[name] = len(sender.store.outbox)
                for envelope in waiting:
                    for other, receiver in self.services.items():
                        if other != name and other not in self.down and self._takes(receiver, envelope):
                            await receiver.pipeline.handle_event(raw_of(envelope))
                            moved = True

    @staticmethod
    def _takes(receiver: Service, envelope) -> bool:
        definition = receiver.definition
        if envelope.type == "retour.issued":
            return definition.retour_handler is not None and envelope.source != definition.party
        return any(t.event_type == envelope.type for t in definition.event_handlers)


@dataclass
class Person:
    """A person referred by WerkSaam and guided by Heliomare to paid work, as the process leaves their data."""

    bsn: str
    referral_id: uuid.UUID


async def a_person_who_found_work(coop: Cooperation, **referral: Any) -> Person:
    submitted = await coop.command("intake", a_submit_referral(**referral))
    assert submitted["ok"], submitted["reasons"]
    referral_id = uuid.UUID(submitted["result"]["referral_id"])
    assert (await coop.command("offer", DecideReferral(referral_id=referral_id, accept=True)))["ok"]
    quote = await coop.command("offer", a_send_quote(referral_id, amount="4800.00"))
    assert quote["ok"], quote["reasons"]
    quote_id = uuid.UUID(quote["result"]["quotes"][-1]["quote_id"])
    assert (await coop.command("intake", DecideQuote(referral_id=referral_id, quote_id=quote_id, approve=True)))["ok"]
    steps = [StartTrajectory(referral_id=referral_id, start_date=date(2027, 1, 11)),
             ReportProgress(referral_id=referral_id, reported_on=date(2027, 3, 1), phase=Phase.TRAINING,
                            status=ProgressStatus.ON_TRACK),
             EndTrajectory(referral_id=referral_id, end_date=date(2027, 6, 28), outcome=Outcome.PAID_WORK,
                           contract_type=ContractType.FIXED_TERM, hours_band=HoursBand.FROM_24_TO_32)]
    for step in steps:
        done = await coop.command("trajectory", step)
        assert done["ok"], done["reasons"]
    return Person(bsn=referral.get("bsn", a_submit_referral().bsn), referral_id=referral_id)


async def desk_signed(coop: Cooperation) -> None:
    signed = await coop.command("subject_rights", RecordConfidentialityStatement(
        staff=DESK, signed_on=datetime.now(UTC).date(), actor="privacy.officer"))
    assert signed["ok"], signed["reasons"]


async def a_request(coop: Cooperation, bsn: str, right: Right, **fields: Any) -> dict[str, Any]:
    """Submit a request at the desk and return its view as `GetSubjectRequest` gives it (the package included)."""
    identity = IdentityCheck(method=fields.pop("method", "id_document_at_desk"), verified_by=DESK,
                             verified_at=datetime.now(UTC))
    reply = await coop.command("subject_rights", SubmitSubjectRequest(bsn=bsn, right=right, identity=identity,
                                                                      actor=DESK, **fields))
    return await the_request(coop, reply["result"]["request_id"])


async def the_request(coop: Cooperation, request_id: str | uuid.UUID) -> dict[str, Any]:
    found = await coop.command("subject_rights", GetSubjectRequest(request_id=uuid.UUID(str(request_id)), actor=DESK))
    assert found["ok"], found["reasons"]
    return found["result"]
