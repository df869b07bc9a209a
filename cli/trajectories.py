"""Trajectories (Bijlage 2 steps 4, 6, 7): Heliomare's job coach or account manager registers the start, progress
and end of the trajectory of an approved quote. Only dates and codes: no free text (art 5.5). Each goes to the
trajectory service, which sends it to WerkSaam (and to billing, which invoices at the start and the end)."""

from datetime import datetime
from typing import Annotated

import typer
from rich.table import Table

from cli.app import (
    ID_ONLY_HELP,
    _answer,
    _one_output,
    _refuse,
    _run,
    _send,
    _send_detailed,
    _status_only_note,
    _uuid,
    app,
    console,
    err,
)
from services.trajectory.domain import TrajectoryStatus
from shared.contracts.commands import EndTrajectory, ListReferrals, ReportProgress, StartTrajectory
from shared.contracts.events import (
    ContractType,
    HoursBand,
    Outcome,
    Phase,
    ProgressStatus,
    StopReason,
    outcome_detail_errors,
)
from shared.contracts.reasons import Reason, ReasonCode

PANEL = "Trajectories: job coach and account manager (Heliomare)"

trajectory = typer.Typer(help="A trajectory's start, progress reports and end (Bijlage 2 steps 4, 6, 7): dates and "
                              "codes only. Job coach or account manager (Heliomare).", no_args_is_help=True)

Referral = Annotated[str, typer.Argument(help="Referral id (the trajectory's id is derived from it and the quote).")]
JsonOption = Annotated[bool, typer.Option("--json")]


def _day(help: str):
    """A day as typed, as everywhere in this command line: YYYY-MM-DD (anything else is bad input, exit 2)."""
    return typer.Option(formats=["%Y-%m-%d"], metavar="YYYY-MM-DD", help=help)


@app.command(rich_help_panel=PANEL)
def trajectories(
    status: Annotated[TrajectoryStatus | None, typer.Option(help="Only trajectories in this state.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    as_json_: JsonOption = False,
) -> None:
    """Heliomare's trajectories: state, start, planned end, progress reports, end and outcome.

    Dates and outcomes need a confidentiality statement at trajectory (art 8); without one, ids and states."""
    query = ListReferrals(status=status.value if status else None, limit=limit)
    replies, brief = _run(_send_detailed(["trajectory"], query))
    reply = replies["trajectory"]
    _status_only_note(brief)
    if as_json_ or not reply.ok:
        _answer(reply, as_json_, str)
        return
    if not reply.result:
        err.print("no trajectories")
        raise typer.Exit(1)
    table = Table(title=f"trajectories · {len(reply.result)}")
    columns = ["referral", "trajectory", "status"] + ([] if brief else ["start", "planned end", "reports", "end",
                                                                          "outcome"])
    for column in columns:
        table.add_column(column)
    for t in reply.result:
        detail = [] if brief else [t.get("start_date") or "-", t.get("planned_end") or "-",
                                   str(len(t.get("progress") or [])), t.get("end_date") or "-", t.get("outcome") or "-"]
        table.add_row(t["referral_id"], t.get("trajectory_id") or "-", t["status"], *detail)
    console.print(table)


app.add_typer(trajectory, name="trajectory", rich_help_panel=PANEL)


@trajectory.command("start")
def trajectory_start(
    referral: Referral,
    on: Annotated[datetime, _day("The day it started; the planned end follows from the quote's duration.")],
    as_json_: JsonOption = False,
    id_only: Annotated[bool, typer.Option("--id-only", help=ID_ONLY_HELP)] = False,
) -> None:
    """Register the start (step 4) of the trajectory of WerkSaam's approved quote.

    Billing then invoices the quote's part in advance, if any (step 5)."""
    _one_output(as_json_, id_only)
    command = StartTrajectory(referral_id=_uuid(referral), start_date=on.date())
    _answer(_run(_send("trajectory", command)), as_json_,
            lambda r: f"referral {r['referral_id']}: trajectory {r['trajectory_id']} {r['status']} from "
                      f"{r['start_date']}, planned end {r['planned_end']}",
            id_only=(lambda r: r["trajectory_id"]) if id_only else None)


@trajectory.command("progress")
def trajectory_progress(
    referral: Referral,
    on: Annotated[datetime, _day("The day of the report (not before the start or the last report).")],
    phase: Annotated[Phase, typer.Option(help="Where in the trajectory the person is.")],
    status: Annotated[ProgressStatus, typer.Option(help="How it goes (a code, never the reason in words).")],
    as_json_: JsonOption = False,
) -> None:
    """Report progress (step 6), any number of times while the trajectory runs."""
    command = ReportProgress(referral_id=_uuid(referral), reported_on=on.date(), phase=phase, status=status)

    def summary(r: dict) -> str:
        last = r["progress"][-1]
        return (f"referral {r['referral_id']}: progress report #{last['sequence']} of {last['reported_on']}: "
                f"{last['phase']}, {last['status']}")

    _answer(_run(_send("trajectory", command)), as_json_, summary)


@trajectory.command("end")
def trajectory_end(
    referral: Referral,
    on: Annotated[datetime, _day("The day it ended (not before the start or the last report).")],
    outcome: Annotated[Outcome, typer.Option(help="The result; paid work is the highest goal (art 3.1).")],
    contract_type: Annotated[ContractType | None, typer.Option(help="Paid work: the contract.")] = None,
    hours_band: Annotated[HoursBand | None, typer.Option(help="Paid work: hours a week.")] = None,
    stop_reason: Annotated[StopReason | None, typer.Option(help="Stopped early: why (a code).")] = None,
    as_json_: JsonOption = False,
) -> None:
    """Register the end (step 7) with its outcome.

    paid_work needs --contract-type and --hours-band, stopped_early needs --stop-reason, and no outcome takes
    another's detail. Billing then invoices the part afterwards, if any (step 8; after an early stop pro rata to
    the planned duration)."""
    rid = _uuid(referral)
    wrong = outcome_detail_errors(outcome, contract_type, hours_band, stop_reason)
    if wrong:  # the same rule the service applies, before anything is sent
        _refuse([Reason(code=ReasonCode.OUTCOME_DETAILS_INVALID, field=f, detail=f"for {outcome}") for f in wrong])
    command = EndTrajectory(referral_id=rid, end_date=on.date(), outcome=outcome,
                            contract_type=contract_type, hours_band=hours_band, stop_reason=stop_reason)
    _answer(_run(_send("trajectory", command)), as_json_,
            lambda r: f"referral {r['referral_id']}: trajectory {r['trajectory_id']} {r['status']} on {r['end_date']}: "
                      f"{r['outcome']}")
