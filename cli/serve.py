"""Running werkbrug on one machine: `werkbrug serve` and `werkbrug stop`. The supervisor is infra/serve.py; these
commands give no command to a service, so they need no actor (--as)."""

import sys
from pathlib import Path
from typing import Annotated

import typer

from cli.app import app, console
from infra.serve import DB_PORT, HTTP_PORT, Config, ServeRefused, serve_detached, serve_foreground, show_status
from infra.serve import stop as stop_serve

PANEL = "Operator: run it on one machine"

_VAR = typer.Option("--var", envvar="WERKBRUG_VAR_DIR", show_envvar=True, file_okay=False,
                    help="Where the data (data/), logs (log/) and state (run/) are. Default: var/ of the checkout.")


@app.command(rich_help_panel=PANEL)
def serve(
    detach: Annotated[bool, typer.Option("--detach", help="Run in the background; `werkbrug stop` stops it.")] = False,
    status: Annotated[bool, typer.Option("--status", help="Show the status of a serve that runs (exit 3 when a "
                                                          "process is not running, 1 when none runs).")] = False,
    var: Annotated[Path | None, _VAR] = None,
    db_port: Annotated[int | None, typer.Option(
        envvar="WERKBRUG_SERVE_DB_PORT", show_envvar=True, min=1024, max=65530,
        help=f"First of five ports of the database servers, one per service (default {DB_PORT}).")] = None,
    http_port: Annotated[int | None, typer.Option(
        envvar="WERKBRUG_SERVE_HTTP_PORT", show_envvar=True, min=1024, max=65530,
        help=f"First of five ports of the services' health routes (default {HTTP_PORT}).")] = None,
) -> None:
    """Run the five services on this machine, each on an embedded database server whose data is a file under
    var/data/ (kept across restarts). A supervisor restarts a process that dies (with backoff) and shows a live
    status; Ctrl-C stops the services (SIGTERM), then the database servers. Needs the broker running and the
    namespace declared (`make broker`); the staff registers are read from WERKBRUG_STAFF_DIR (var/staff/)."""
    if detach and status:
        _refused(ServeRefused(2, "--detach or --status, not both"))
    try:
        config = Config.from_environment(var, db_port, http_port)
        if status:
            code = show_status(config.layout, console)
        elif detach:
            code = serve_detached(config, console)
        else:
            code = serve_foreground(config, console)
    except ServeRefused as exc:
        _refused(exc)
    raise typer.Exit(code)


@app.command(rich_help_panel=PANEL)
def stop(var: Annotated[Path | None, _VAR] = None) -> None:
    """Stop a `werkbrug serve` that runs on this var/: the services first (each finishes the message in hand),
    then the database servers. Also ends what a serve that died left running."""
    try:
        code = stop_serve(Config.from_environment(var).layout, console)
    except ServeRefused as exc:
        _refused(exc)
    raise typer.Exit(code)


def _refused(exc: ServeRefused) -> None:
    print(exc.line, file=sys.stderr)
    raise typer.Exit(exc.code)
