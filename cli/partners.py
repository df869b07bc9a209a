"""Partners (art 13, 16): admit by addendum, remove, list."""

import json
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.table import Table

from cli.app import _run, app, console, err
from shared.config import get_settings
from shared.contracts.reasons import reasons_from_validation_error

PANEL = "Cooperation: partners"

partner = typer.Typer(help="Partners (art 13, 16): admit one by addendum, remove one, list those in force.",
                      no_args_is_help=True)
app.add_typer(partner, name="partner", rich_help_panel=PANEL)


@partner.command("add")
def partner_add(
    addendum: Annotated[Path, typer.Argument(help="The addendum as JSON: name, organisation, legal_basis, purpose, "
                                                  "topics, contact, effective_from, consents of every party. "
                                                  "`werkbrug schema addendum` prints its JSON Schema, `werkbrug "
                                                  "example addendum` a valid example.")],
    as_json_: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Admit a partner: every party's consent is recorded first, then its broker user, queues and contract."""
    from infra.partners import Addendum, PartnerRefused, add_partner

    try:
        parsed = Addendum.model_validate_json(addendum.read_bytes())
        result = _run(add_partner(get_settings(), parsed))
    except ValidationError as exc:
        for reason in reasons_from_validation_error(exc):
            err.print(f"refused: {reason}")
        raise typer.Exit(2) from None
    except PartnerRefused as exc:
        for reason in exc.reasons:
            err.print(f"refused: {reason}")
        raise typer.Exit(2) from None
    secret = result.asyncapi.with_name("amqp-password")
    if as_json_:
        print(json.dumps({"partner": result.name, "user": result.user, "queues": result.queues,
                          "asyncapi": str(result.asyncapi),
                          "password_file": str(secret), "announcement": str(result.announcement)}, indent=2))
        return
    console.print(f"{result.name} joined as broker user {result.user}; queues: {', '.join(result.queues)}")
    console.print(f"its contract: {result.asyncapi}; its broker password (give it over securely): {secret}")


@partner.command("remove")
def partner_remove(
    name: Annotated[str, typer.Argument()],
    kind: Annotated[str, typer.Option(help="left (art 13.2) or removed (art 16.3)")] = "left",
) -> None:
    """End a partner's access at once; what it had not taken is destroyed (README: undelivered messages)."""
    from infra.partners import PartnerRefused, departure_notice, remove_partner
    from shared.contracts.events import DepartureKind

    settings = get_settings()
    try:
        destroyed = _run(remove_partner(settings, name, DepartureKind(kind)))
    except (PartnerRefused, ValueError) as exc:
        err.print(f"refused: {exc}")
        raise typer.Exit(2) from None
    console.print(f"{departure_notice(settings, name, DepartureKind(kind))}; "
                  f"{destroyed} undelivered messages destroyed")


@partner.command("list")
def partner_list(as_json_: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The partners in force, with their legal basis and topics."""
    from infra.partners import PartnerRegister

    partners = PartnerRegister(get_settings()).in_force()
    if as_json_:
        print(json.dumps([a.model_dump(mode="json", exclude={"contact"}) for a in partners.values()], indent=2))
        return
    if not partners:
        err.print("no partners")
        raise typer.Exit(1)
    table = Table("partner", "organisation", "legal basis", "since", "topics")
    for a in partners.values():
        table.add_row(a.name, a.organisation, a.legal_basis, str(a.effective_from), "\n".join(a.topics))
    console.print(table)


