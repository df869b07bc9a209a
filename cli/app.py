"""The command line's shared parts: the Typer app, the consoles, who gives the command (art 8), and the
plumbing every command group uses to talk to the services over the broker."""

import asyncio
import re
import sys
import time
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn
from zoneinfo import ZoneInfo

import typer
from rich.console import Console

from cli.render.letters.chromium import NoBrowser, PrintFailed, print_pdf
from infra.services import DEFINITIONS
from shared.client import CommandClient
from shared.config import get_settings
from shared.contracts.commands import (
    CommandResult,
    ReadProcessingLog,
)
from shared.contracts.parties import Role, load_parties
from shared.contracts.reasons import Reason, ReasonCode

app = typer.Typer(help="werkbrug: refer, quote and decide; trace flows and read the processing log.",
                  no_args_is_help=True, add_completion=False)
console = Console()
err = Console(stderr=True, soft_wrap=True)  # one line per problem, however narrow the terminal
DESK_ZONE = ZoneInfo("Europe/Amsterdam")  # a time typed at a desk without an offset is Dutch time
# Each party's breach desk: a commissioner's is its subject_rights service, a provider's its offer service.
BREACH_DESKS = {party: "subject_rights" if load_parties().has_role(party, Role.COMMISSIONER) else "offer"
                for party in load_parties().service_parties()}

# -- who gives the command (agreement art 8) ------------------------------------------------------------------

ACTOR_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{1,40}$")
_actor: str | None = None  # set by the callback, for this run


# Commands that send nothing to any service (they print what the command line itself knows): no actor needed.
LOCAL_COMMANDS = {"schema", "example", "serve", "stop"}  # need no --as: no command to a service


@app.callback()
def _who(
    ctx: typer.Context,
    actor: Annotated[str | None, typer.Option("--as", envvar="WERKBRUG_ACTOR", show_envvar=True,
                                              help="Your staff id: every command is given by someone, and "
                                                   "personal data is shown only to staff with a confidentiality "
                                                   "statement (art 8).")] = None,
) -> None:
    """Every command names its actor; the services log it with each processing. (`serve` and `stop` run
    processes on this machine and give no command to a service: they need none.)"""
    global _actor
    if "--help" in sys.argv[1:] or ctx.invoked_subcommand in LOCAL_COMMANDS:
        return
    if actor is None or not ACTOR_PATTERN.match(actor):
        err.print("say who you are: --as STAFF_ID or WERKBRUG_ACTOR (lowercase letters, digits, . _ -)")
        raise typer.Exit(2)
    _actor = actor


def actor() -> str | None:
    """The staff id this run gives its commands as."""
    return _actor


def _as_actor(command):
    """The command as given by the actor of this run."""
    return command.model_copy(update={"actor": _actor, "command_id": uuid.uuid4()})


def _refuse(reasons: list[Reason]) -> NoReturn:
    for reason in reasons:
        err.print(f"refused: {reason}")
    raise typer.Exit(2)


def _service(name: str | None, answering: type | None = None) -> str | None:
    """A service name as typed, checked against the known services (and, with `answering`, those that answer
    that command) before anything connects: a wrong name is refused at once, not after a timeout."""
    known = [s for s in DEFINITIONS if answering is None or answering in DEFINITIONS[s]().command_handlers]
    if name is not None and name not in known:
        err.print(f"unknown service {name!r}; one of {', '.join(known)}")
        raise typer.Exit(2)
    return name



async def _send_each(services: list[str], command) -> dict[str, CommandResult]:
    async with CommandClient(get_settings(), timeout=15) as client:
        return {s: await client.send(s, _as_actor(command)) for s in services}


# -- plumbing -----------------------------------------------------------------------------------------------

async def _send(service: str, command) -> CommandResult:
    async with CommandClient(get_settings(), timeout=15) as client:
        return await client.send(service, command.model_copy(update={"actor": _actor}))


def _answering(command_type: type) -> list[str]:
    """The services that answer this command (a referral view is not asked of subject_rights, which keeps none)."""
    return [s for s in DEFINITIONS if command_type in DEFINITIONS[s]().command_handlers]


async def _send_all(query) -> dict[str, CommandResult]:
    async with CommandClient(get_settings(), timeout=15) as client:
        return {s: await client.send(s, _as_actor(query)) for s in client.reachable(_answering(type(query)))}


def _unsigned(reply: CommandResult) -> bool:
    return not reply.ok and any(r.code == ReasonCode.NO_CONFIDENTIALITY_STATEMENT for r in reply.reasons)


async def _send_detailed(services: list[str] | None, query) -> tuple[dict[str, CommandResult], list[str]]:
    """A referral-level view (ReferralView) from each service (default: every one reachable): with its detail
    where the actor has a confidentiality statement in force (art 8), else the status view the service gives
    without one. Returns the answers and the services that gave the status view only."""
    replies: dict[str, CommandResult] = {}
    brief: list[str] = []
    async with CommandClient(get_settings(), timeout=15) as client:
        for s in services if services is not None else client.reachable(_answering(type(query))):
            reply = await client.send(s, _as_actor(query.model_copy(update={"detail": True})))
            if _unsigned(reply):
                reply = await client.send(s, _as_actor(query.model_copy(update={"detail": False})))
                brief.append(s)
            replies[s] = reply
    return replies, brief


def _status_only_note(brief: list[str]) -> None:
    if brief:
        err.print(f"status view only at {', '.join(brief)}: {_actor} has no confidentiality statement in force "
                  "there (art 8); municipality, support need, outcome, amounts and dates are left out")


STAFF_REFUSALS = {ReasonCode.UNKNOWN_ACTOR, ReasonCode.ROLE_NOT_PERMITTED, ReasonCode.ACTOR_MISSING}


def _refuse_unsigned(replies: dict[str, CommandResult]) -> None:
    """Comparing the parties' records needs every service's view: refused, not compared as 'unknown', when a
    service does not know the actor (staff ids are per party) or the actor has no statement there."""
    for code in sorted(STAFF_REFUSALS):
        if refusing := [s for s, r in replies.items() if any(x.code == code for x in r.reasons)]:
            err.print(f"refused: {code} at {', '.join(refusing)}: comparing the parties' records needs a staff id "
                      "on both parties' registers")
            raise typer.Exit(2)
    if unsigned := [s for s, r in replies.items() if _unsigned(r)]:
        err.print(f"refused: no_confidentiality_statement at {', '.join(unsigned)}: comparing the parties' records "
                  f"reads referral-level data (art 8)")
        raise typer.Exit(2)


async def _ping_all() -> dict[str, dict]:
    out = {}
    async with CommandClient(get_settings(), timeout=5) as client:
        for service in client.reachable(DEFINITIONS):
            started = time.perf_counter()
            try:
                reply = await client.send(service, _as_actor(ReadProcessingLog(trace_id="0" * 32, limit=1)))
                # A refusal is an answer too: the service consumed the command and replied (an actor of one party
                # is unknown to the other party's services).
                out[service] = {"ok": True, "error": None, "ms": (time.perf_counter() - started) * 1000,
                                "refused": [r.code.value for r in reply.reasons] if not reply.ok else []}
            except TimeoutError:
                out[service] = {"ok": False, "error": "no answer", "ms": (time.perf_counter() - started) * 1000,
                                "refused": []}
    return out


def _answer(reply: CommandResult, as_json_: bool, summary, id_only=None) -> None:
    """Print a command's answer: its JSON, or with `id_only` (a function of the result) only the id it gave, for
    scripts (`REFERRAL=$(werkbrug refer person.json --id-only)`), or the one-line summary; a refusal's reasons, one
    line each, on stderr (exit 2)."""
    if as_json_:
        print(reply.model_dump_json(indent=2))
    elif reply.ok and id_only is not None:
        print(id_only(reply.result))
    elif reply.ok:
        console.print(summary(reply.result))
    else:
        for reason in reply.reasons:
            err.print(f"refused: {reason}")
    if not reply.ok:
        raise typer.Exit(2)


ID_ONLY_HELP = "Print only the id it gave, for scripts: REFERRAL=$(werkbrug ... --id-only)."


def _one_output(as_json_: bool, id_only: bool) -> None:
    """--json and --id-only each say what to print: refused together, before anything is sent."""
    if as_json_ and id_only:
        err.print("bad input: --json and --id-only exclude each other")
        raise typer.Exit(2)


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        err.print(f"not an id: {value!r}")
        raise typer.Exit(2) from None


async def _read_all(query: ReadProcessingLog) -> list[dict]:
    records: list[dict] = []
    async with CommandClient(get_settings(), timeout=15) as client:
        for service in client.reachable(DEFINITIONS):
            reply = await client.send(service, _as_actor(query))
            if not reply.ok:
                err.print(f"{service} refused: {', '.join(str(r) for r in reply.reasons)}")
                raise typer.Exit(2)
            records += reply.result or []
    return sorted(records, key=lambda r: r["time"])


def _run(coroutine):
    """Run one conversation with the broker. Whatever goes wrong is explained, in one line, by `main`."""
    return asyncio.run(coroutine)


def _check_key(key: str) -> None:
    try:
        uuid.UUID(key)
        return
    except ValueError:
        pass
    if len(key) == 32 and all(c in "0123456789abcdef" for c in key):
        return
    err.print("give a trace id (32 lowercase hex) or a referral id (UUID)")
    raise typer.Exit(2)


def _local(moment: str) -> str:
    """A stored (UTC) time as people read it: Dutch time, to the minute."""
    return datetime.fromisoformat(moment).astimezone(DESK_ZONE).strftime("%Y-%m-%d %H:%M")


def _utc(value: datetime | None) -> datetime | None:
    """A time a person typed: without an offset it is Dutch time (Europe/Amsterdam), as everywhere in this CLI."""
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=DESK_ZONE)).astimezone(UTC)





def _desk(party: str) -> str:
    if party not in BREACH_DESKS:
        err.print(f"unknown party {party!r}; one of {', '.join(BREACH_DESKS)}")
        raise typer.Exit(2)
    return BREACH_DESKS[party]


def _services_of(party: str) -> list[str]:
    return [name for name, make in DEFINITIONS.items() if make().party.value == party]


# -- letters to the person ------------------------------------------------------------------------------------------


class Language(StrEnum):
    """The language of a letter to the person: Dutch (B1), or English as the second language."""

    nl = "nl"
    en = "en"


def write_letter(letter: str, *, html: Path | None, pdf: Path | None, what: str) -> None:
    """Write a letter where the command was told, readable by the owner only (it holds the person's data). A PDF
    needs Chromium (`make chromium`): without it, one line and exit 5."""
    if html is not None:
        html.touch(mode=0o600, exist_ok=True)
        html.write_text(letter, encoding="utf-8")
        err.print(f"wrote {html}: {what}, HTML")
    if pdf is not None:
        try:
            print_pdf(letter, pdf)
        except (NoBrowser, PrintFailed) as exc:
            err.print(f"no PDF written: {exc}")
            raise typer.Exit(5) from None
        err.print(f"wrote {pdf}: {what}, PDF")
