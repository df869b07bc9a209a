"""`werkbrug wait`: for scripts, until a service's records show what the next step follows from.

The parties' services exchange messages asynchronously: when WerkSaam's caseworker has referred a person, Heliomare's
offer has it a moment later; when the coach ends a trajectory, billing invoices and WerkSaam's intake records the
invoices a moment after that. A person at a desk sees it in their list; a script waits for it:

    werkbrug --as am.jansen wait $REFERRAL --at offer --for registered
    werkbrug --as am.jansen accept $REFERRAL

It asks the service for the referral's status view (no personal data, no confidentiality statement needed) with
growing pauses (0.1 s, doubling, at most 2 s) until it shows one of the states, or the time is up (exit 1)."""

import asyncio
from typing import Annotated

import typer

from cli.app import _as_actor, _run, _uuid, app, console, err
from services.billing.domain import AccountStatus
from services.intake.domain import ReferralStatus
from services.offer.domain import CaseStatus
from services.trajectory.domain import TrajectoryStatus
from shared.client import CommandClient
from shared.config import get_settings
from shared.contracts.commands import CommandResult, GetReferral, GetReport
from shared.contracts.reasons import ReasonCode

PANEL = "Scripts: wait for the other party's message"

# The states of a referral at each service that keeps referrals, as the service spells them.
STATES: dict[str, list[str]] = {
    "intake": [s.value for s in ReferralStatus], "offer": [s.value for s in CaseStatus],
    "trajectory": [s.value for s in TrajectoryStatus], "billing": [s.value for s in AccountStatus],
}
LONGEST_PAUSE = 2.0


async def _until(service: str, query, reached, on_its_way: set[ReasonCode], within: float
                 ) -> tuple[bool, CommandResult]:
    """Ask `service` until `reached(result)`; a refusal with only `on_its_way` codes (the service does not know it
    yet) is asked again, any other refusal ends the wait at once."""
    loop = asyncio.get_running_loop()
    deadline, pause = loop.time() + within, 0.1
    async with CommandClient(get_settings(), timeout=15) as client:
        while True:
            reply = await client.send(service, _as_actor(query))
            if reply.ok and reached(reply.result):
                return True, reply
            if not reply.ok and not {r.code for r in reply.reasons} <= on_its_way:
                return False, reply
            if loop.time() + pause > deadline:
                return False, reply
            await asyncio.sleep(pause)
            pause = min(pause * 2, LONGEST_PAUSE)


def _refused(reply: CommandResult) -> None:
    for reason in reply.reasons:
        err.print(f"refused: {reason}")
    raise typer.Exit(2)


@app.command(rich_help_panel=PANEL)
def wait(
    referral: Annotated[str | None, typer.Argument(help="Referral id.")] = None,
    at: Annotated[str, typer.Option(help=f"The service whose records to wait for: {', '.join(STATES)}.")] = "intake",
    for_: Annotated[list[str] | None, typer.Option(
        "--for", metavar="STATE", help="A state of the referral at that service; repeat for any of several. "
                                       + "; ".join(f"{s}: {', '.join(v)}" for s, v in STATES.items()) + ".")] = None,
    report: Annotated[int | None, typer.Option(min=2000, max=2100, metavar="YEAR",
                                               help="Instead of a referral: until WerkSaam's intake has received the "
                                                    "year's report.")] = None,
    within: Annotated[float, typer.Option(min=1, max=600, help="Seconds to wait at most; then exit 1.")] = 60,
    as_json_: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Wait until a service has what the next step follows from: a referral's state, or the year's report.

    `wait REFERRAL --at offer --for registered`, or `wait --report 2030` (at intake). For scripts, between the
    steps of two parties: exit 0 when it does, 1 when not within the time, 2 when the service refuses (a staff id
    it does not know, say)."""
    if (referral is None) == (report is None):
        err.print("bad input: give a referral id, or --report YEAR")
        raise typer.Exit(2)
    if report is not None:
        if for_ or at != "intake":
            err.print("bad input: --report waits at intake (WerkSaam receives the report); no --for or --at")
            raise typer.Exit(2)
        done, reply = _run(_until("intake", GetReport(year=report), lambda r: True, {ReasonCode.INVALID_VALUE},
                                  within))
        if as_json_:
            print(reply.model_dump_json(indent=2))
        if done:
            if not as_json_:
                console.print(f"intake: report {report} edition {reply.result.get('edition', 1)} received")
            return
        if {r.code for r in reply.reasons} <= {ReasonCode.INVALID_VALUE}:
            err.print(f"intake has not received the report {report} after {within:g} s")
            raise typer.Exit(1)
        _refused(reply)
    rid = _uuid(referral)
    if at not in STATES:
        err.print(f"unknown service {at!r}; one of {', '.join(STATES)}")
        raise typer.Exit(2)
    if not for_:
        err.print("bad input: say what to wait for: --for STATE")
        raise typer.Exit(2)
    if unknown := [s for s in for_ if s not in STATES[at]]:
        for state in unknown:
            err.print(f"bad input: {state!r} is no state of a referral at {at}; one of {', '.join(STATES[at])}")
        raise typer.Exit(2)
    done, reply = _run(_until(at, GetReferral(referral_id=rid), lambda r: r.get("status") in for_,
                              {ReasonCode.UNKNOWN_REFERRAL}, within))
    if as_json_:
        print(reply.model_dump_json(indent=2))
    if done:
        if not as_json_:
            console.print(f"{at}: referral {rid} is {reply.result['status']}")
        return
    if reply.ok:
        err.print(f"{at}: referral {rid} is {reply.result.get('status')}, not {' or '.join(for_)}, after {within:g} s")
        raise typer.Exit(1)
    if {r.code for r in reply.reasons} <= {ReasonCode.UNKNOWN_REFERRAL}:
        err.print(f"{at} does not know referral {rid} after {within:g} s")
        raise typer.Exit(1)
    _refused(reply)
