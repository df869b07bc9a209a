"""Confidentiality statements and the staff registers (agreement art 8)."""

import json
from datetime import UTC, datetime
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.table import Table

from cli.app import BREACH_DESKS, _answer, _desk, _run, _send, _send_each, _services_of, app, console, err
from shared.config import get_settings
from shared.contracts.commands import (
    ListConfidentialityStatements,
    RecordConfidentialityStatement,
)
from shared.contracts.parties import Party
from shared.contracts.reasons import reasons_from_validation_error
from shared.contracts.staff import Role

PANEL = "Identity administration: staff and confidentiality"

confidentiality = typer.Typer(help="Confidentiality statements (art 8): who may see personal data.",
                              no_args_is_help=True)
app.add_typer(confidentiality, name="confidentiality", rich_help_panel=PANEL)



@confidentiality.command("sign")
def confidentiality_sign(
    staff: Annotated[str, typer.Argument(help="The staff id of who signed.")],
    party: Annotated[str, typer.Option(help="The party the staff member works for (its services keep it).")],
    signed_on: Annotated[datetime, typer.Option(formats=["%Y-%m-%d"], help="When it was signed.")],
    ended_on: Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"],
                                                      help="It no longer applies from this day.")] = None,
    as_json_: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Record a signed confidentiality statement (or its end) at every service of the party."""
    try:
        command = RecordConfidentialityStatement(staff=staff, signed_on=signed_on.date(),
                                                 ended_on=ended_on.date() if ended_on else None)
    except ValidationError as exc:
        for reason in reasons_from_validation_error(exc):
            err.print(f"refused: {reason}")
        raise typer.Exit(2) from None
    services = _services_of(party) if party in BREACH_DESKS else []
    if not services:
        err.print(f"unknown party {party!r}; one of {', '.join(BREACH_DESKS)}")
        raise typer.Exit(2)
    replies = _run(_send_each(services, command))
    if as_json_:
        print(json.dumps({s: r.model_dump(mode="json") for s, r in replies.items()}, indent=2))
    for service, reply in replies.items():
        if not reply.ok:
            err.print(f"{service} refused: {', '.join(str(r) for r in reply.reasons)}")
    if not all(r.ok for r in replies.values()):
        raise typer.Exit(2)
    if not as_json_:
        console.print(f"{staff}: statement of {signed_on.date()} recorded at {', '.join(services)}")


@confidentiality.command("list")
def confidentiality_list(
    party: Annotated[str, typer.Option(help="Whose register.")] = "werksaam",
    as_json_: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The staff with a confidentiality statement, as the party's first service keeps them."""
    _desk(party)  # an unknown party is refused at once
    reply = _run(_send(_services_of(party)[0], ListConfidentialityStatements()))
    if as_json_ or not reply.ok:
        _answer(reply, as_json_, str)
        return
    if not reply.result:
        err.print("no statements")
        raise typer.Exit(1)
    table = Table("staff", "signed on", "ended on", "in force", "recorded by")
    for s in reply.result:
        table.add_row(s["staff"], s["signed_on"], s["ended_on"] or "-", "yes" if s["applies"] else "no",
                      s["recorded_by"])
    console.print(table)


staff_cli = typer.Typer(help="The party's staff register (art 8): who may give which command. Kept by the party's "
                              "identity administration; its services read it again when it changes.",
                         no_args_is_help=True)
app.add_typer(staff_cli, name="staff", rich_help_panel=PANEL)


def _party_arg(party: str) -> Party:
    try:
        return Party(party)
    except ValueError:
        err.print(f"unknown party; one of {', '.join(p.value for p in Party)}")
        raise typer.Exit(2) from None


def _register_of(party: Party):
    from shared.staff import StaffRegisterInvalid, read_register, register_path

    path = register_path(get_settings(), party)
    try:
        return path, read_register(path, party)
    except StaffRegisterInvalid as exc:
        err.print(f"refused: {exc}")
        raise typer.Exit(2) from None


@staff_cli.command("list")
def staff_list(
    party: Annotated[str, typer.Option(help="Whose register.")] = "werksaam",
    as_json_: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The members of a party's staff register, with their roles and the days they are in force."""
    path, register = _register_of(_party_arg(party))
    if as_json_:
        print(register.model_dump_json(indent=2))
        return
    if not register.staff:
        err.print(f"no staff register at {path}: nobody may give a command to {party}'s services")
        raise typer.Exit(1)
    today = datetime.now(UTC).date()
    table = Table("staff", "roles", "from", "until", "in force", title=f"staff of {party} · {path}")
    for m in sorted(register.staff, key=lambda m: m.staff_id):
        table.add_row(m.staff_id, ", ".join(sorted(m.roles)), m.valid_from.isoformat(),
                      m.valid_until.isoformat() if m.valid_until else "-", "yes" if m.in_force_on(today) else "no")
    console.print(table)


@staff_cli.command("add")
def staff_add(
    staff: Annotated[str, typer.Argument(help="The staff id (as the party's own login knows them).")],
    party: Annotated[str, typer.Option(help="The party whose register it is.")],
    role: Annotated[list[Role], typer.Option(help="A role (repeat for more).")],
    valid_from: Annotated[datetime | None, typer.Option("--from", formats=["%Y-%m-%d"],
                                                        help="First day in force; default today.")] = None,
    valid_until: Annotated[datetime | None, typer.Option("--until", formats=["%Y-%m-%d"],
                                                         help="Last day in force.")] = None,
) -> None:
    """Add a member to a party's staff register, or give a member new roles or dates."""
    from infra.staff import add_member
    from shared.contracts.staff import StaffMember

    who = _party_arg(party)
    _register_of(who)  # refuses a broken register before writing
    try:
        member = StaffMember(staff_id=staff, roles=frozenset(role),
                             valid_from=(valid_from.date() if valid_from else datetime.now(UTC).date()),
                             valid_until=valid_until.date() if valid_until else None)
    except ValidationError as exc:
        for reason in reasons_from_validation_error(exc):
            err.print(f"refused: {reason}")
        raise typer.Exit(2) from None
    add_member(get_settings(), who, member)
    console.print(f"{staff}: {', '.join(sorted(member.roles))} at {party} from {member.valid_from}")


@staff_cli.command("end")
def staff_end(
    staff: Annotated[str, typer.Argument(help="The staff id.")],
    party: Annotated[str, typer.Option(help="The party whose register it is.")],
    on: Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"], help="Last day in force; default today.")
                  ] = None,
) -> None:
    """End a membership (left, changed job): from the next day the member gives no command."""
    from infra.staff import end_member

    who = _party_arg(party)
    _register_of(who)
    last_day = on.date() if on else datetime.now(UTC).date()
    try:
        ended = end_member(get_settings(), who, staff, last_day)
    except ValidationError:
        err.print("refused: the last day is before the first day in force")
        raise typer.Exit(2) from None
    if ended is None:
        err.print(f"not in {party}'s staff register")
        raise typer.Exit(1)
    console.print(f"{staff}: in force at {party} until {last_day}")
