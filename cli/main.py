"""The entry point: runs the command line and turns every failure into one line and an exit code."""

import json
import logging
import socket
import sys
from decimal import InvalidOperation
from pathlib import Path

from pydantic import ValidationError
from typer import _click as click  # the click typer runs on (vendored): its exceptions

# The command groups register themselves on `app` when imported; `--help` lists them in this order.
# isort: off
from cli import (referrals, trajectories, finance, waiting, subject_requests, breaches, flows, operations,  # noqa: F401
                 staff, partners, inputs, serve)
# isort: on
from cli.app import app
from cli.render.letters.letterhead import Letterhead
from cli.render.trace_view import FlowRefused
from shared.client import CommandRefused
from shared.config import Settings, get_settings
from shared.contracts.reasons import reasons_from_validation_error

DONE, NOTHING_FOUND, REFUSED, NO_ANSWER, NOT_ADMITTED, FAILED = 0, 1, 2, 3, 4, 5


def _where() -> str:
    """The broker and namespace this run talks to, without credentials."""
    try:
        settings = get_settings()
        return f"{settings.broker_shown}, namespace {settings.namespace}"
    except Exception:  # the settings themselves are wrong: said by the ValidationError's own line
        return "the broker"


def _closed_while_opening(exc: BaseException) -> bool:
    """RabbitMQ answers the opening of a connection on a virtual host that does not exist, or that the user may not
    use, by closing it (530 NOT_ALLOWED); aiormq reports that as an unexpected frame. (The text is read to classify
    the error, never shown.)"""
    text = str(exc)
    return "OpenOk" in text and "Connection.Close" in text


def explain(exc: BaseException) -> tuple[int, list[str]]:
    """An exception as the lines a person reads and the exit code. Only the exception's class decides; its text,
    which may quote a value or a password, is never shown (except the reason codes of a refusal)."""
    from aiormq import exceptions as amqp

    no_vhost = (f"the broker refused the virtual host ({_where()}): it does not exist, or this user may not use it; "
                "check WERKBRUG_NAMESPACE and AMQP_URL")
    match exc:
        case TimeoutError():
            return NO_ANSWER, [f"a service did not answer in time; is it running? ({_where()}; make demo starts "
                               "them)"]
        case amqp.ProbableAuthenticationError() | amqp.AuthenticationError():
            return NOT_ADMITTED, [f"the broker refused the login ({_where()}): wrong user or password in AMQP_URL"]
        case amqp.ConnectionNotAllowed():
            return NOT_ADMITTED, [no_vhost]
        case amqp.InvalidFrameError() if _closed_while_opening(exc):
            return NOT_ADMITTED, [no_vhost]
        case amqp.ChannelAccessRefused():
            return NOT_ADMITTED, [f"the broker refused access ({_where()}): this user may not use that exchange "
                                  "or queue"]
        case amqp.ChannelNotFoundEntity():
            return NO_ANSWER, [f"the namespace's exchanges or queues do not exist ({_where()}); are its services "
                               "started?"]
        case amqp.AMQPConnectionError() | ConnectionError() | socket.gaierror() | amqp.AMQPError():
            return NO_ANSWER, [f"the broker is not reachable ({_where()}); is RabbitMQ running?"]
        case UnicodeError():
            return REFUSED, ["bad input: a file given is not UTF-8 text"]
        case json.JSONDecodeError():
            return REFUSED, ["bad input: a file given is not JSON"]
        case InvalidOperation():
            return REFUSED, ["bad input: not a number"]
        case ValidationError() if exc.title == Settings.__name__:
            return REFUSED, [f"bad setting: {_setting_named(e['loc'])} ({e['type']})" for e in exc.errors()]
        case ValidationError() if exc.title == Letterhead.__name__:
            return REFUSED, [f"bad letterhead setting: {_letterhead_setting(e['loc'])} ({e['type']})"
                             for e in exc.errors()]
        case ValidationError():
            return REFUSED, [f"refused: {reason}" for reason in reasons_from_validation_error(exc)]
        case FlowRefused() | CommandRefused():  # our own words: which party, which service, the broker's code
            return REFUSED, [f"refused: {exc}"]
        case OSError():
            name = Path(str(exc.filename)).name if getattr(exc, "filename", None) else "a file"
            return REFUSED, [f"cannot use {name}: {type(exc).__name__}"]
        case _:
            return FAILED, [f"werkbrug failed unexpectedly ({type(exc).__name__}); nothing was changed by this "
                            "command line itself. The error's text is not shown: it could quote data."]


def _setting_named(loc: tuple) -> str:
    """The environment variable a bad setting came from (its name, never its value)."""
    names = {str(f.validation_alias or name) for name, f in Settings.model_fields.items()}
    return str(loc[0]) if loc and str(loc[0]) in names else "a setting"


def _letterhead_setting(loc: tuple) -> str:
    """The letterhead setting that is wrong, as its environment variable (or key of the letterhead file)."""
    name = str(loc[0]) if loc else ""
    return f"WERKBRUG_LETTERHEAD_{name.upper()}" if name in Letterhead.model_fields else "a letterhead setting"


def main(argv: list[str] | None = None) -> None:
    """Run the command line; every failure becomes one line and an exit code (see the module's docstring)."""
    logging.getLogger().addHandler(logging.NullHandler())  # libraries' own complaints are explained here instead
    try:
        code = app(args=argv, standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        print(exc.format_message())
        code = REFUSED
    except click.ClickException as exc:
        hint = f" (see {exc.ctx.command_path} --help)" if getattr(exc, "ctx", None) else ""
        _say(f"bad input: {exc.format_message()}{hint}")
        code = REFUSED
    except click.exceptions.Abort:
        _say("aborted")
        code = 130
    except Exception as exc:
        code, lines = explain(exc)
        for line in lines:
            _say(line)
    sys.exit(code if isinstance(code, int) else DONE)


def _say(line: str) -> None:
    """One line on stderr, as it is (no wrapping, no markup)."""
    print(line.replace("\n", " "), file=sys.stderr)


if __name__ == "__main__":
    main()
