"""The command line's one failure handler: every kind of failure becomes one line and its exit code, and an error's
own text (which could quote a person's data or a password) is never shown."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation

import pytest
import typer
from aiormq import exceptions as amqp

from cli import main as cli
from cli.referrals import _euros
from cli.render.trace_view import FlowRefused
from shared.contracts.commands import DecideQuote

SECRET = "fenna-de-boer-987654329"  # what an exception's text could carry


def _validation_error():
    from pydantic import ValidationError

    try:
        DecideQuote.model_validate({"referral_id": SECRET, "quote_id": SECRET, "approve": True, SECRET: 1})
    except ValidationError as exc:
        return exc
    raise AssertionError("not refused")


FAILURES = [
    pytest.param(TimeoutError(SECRET), cli.NO_ANSWER, "did not answer", id="timeout"),
    pytest.param(amqp.ProbableAuthenticationError(SECRET), cli.NOT_ADMITTED, "refused the login", id="login"),
    pytest.param(amqp.AuthenticationError(SECRET), cli.NOT_ADMITTED, "refused the login", id="auth-mechanism"),
    pytest.param(amqp.InvalidFrameError(f"Expected one of ['Connection.OpenOk'], got <Connection.Close {SECRET}>"),
                 cli.NOT_ADMITTED, "virtual host", id="no-vhost"),
    pytest.param(amqp.ConnectionNotAllowed(SECRET), cli.NOT_ADMITTED, "virtual host", id="vhost-not-allowed"),
    pytest.param(amqp.ChannelAccessRefused(SECRET), cli.NOT_ADMITTED, "refused access", id="access-refused"),
    pytest.param(amqp.ChannelNotFoundEntity(SECRET), cli.NO_ANSWER, "do not exist", id="no-exchange"),
    pytest.param(amqp.AMQPConnectionError(SECRET), cli.NO_ANSWER, "not reachable", id="unreachable"),
    pytest.param(ConnectionRefusedError(111, SECRET), cli.NO_ANSWER, "not reachable", id="connection-refused"),
    pytest.param(UnicodeDecodeError("utf-8", SECRET.encode(), 0, 1, SECRET), cli.REFUSED, "not UTF-8", id="utf8"),
    pytest.param(json.JSONDecodeError(SECRET, SECRET, 0), cli.REFUSED, "not JSON", id="json"),
    pytest.param(InvalidOperation(SECRET), cli.REFUSED, "not a number", id="decimal"),
    pytest.param(_validation_error(), cli.REFUSED, "refused: ", id="validation"),
    pytest.param(FlowRefused("intake: unknown_referral"), cli.REFUSED, "unknown_referral", id="flow-refused"),
    pytest.param(PermissionError(13, SECRET, "out/answer.html"), cli.REFUSED, "answer.html", id="file"),
    pytest.param(KeyError(SECRET), cli.FAILED, "unexpectedly (KeyError)", id="anything-else"),
    pytest.param(RuntimeError(SECRET), cli.FAILED, "unexpectedly (RuntimeError)", id="runtime-error"),
]


@pytest.mark.parametrize("exc,code,words", FAILURES)
def test_each_failure_is_one_line_and_its_code_without_the_errors_text(exc, code, words):
    got, lines = cli.explain(exc)
    assert got == code
    assert lines and all("\n" not in line for line in lines)
    assert words in " ".join(lines)
    assert SECRET not in " ".join(lines)


def test_main_turns_an_unexpected_error_into_one_line_and_exit_5(monkeypatch, capsys):
    def boom(*args, **kwargs):
        raise ZeroDivisionError(SECRET)

    monkeypatch.setattr(cli, "app", boom)
    with pytest.raises(SystemExit) as exited:
        cli.main(["referrals"])
    assert exited.value.code == cli.FAILED
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and "ZeroDivisionError" in err
    assert SECRET not in out + err and "Traceback" not in out + err


@pytest.mark.parametrize("typed,expected", [("4800", "4800.00"), (" 4800.5 ", "4800.50"), ("0.01", "0.01"),
                                            ("4800.000", "4800.00"), ("250000", "250000.00"), ("0", "0.00")])
def test_an_amount_is_read_as_whole_cents(typed, expected):
    assert _euros(typed) == Decimal(expected)


@pytest.mark.parametrize("typed", ["abc", "-5", "-0.01", "NaN", "sNaN", "Infinity", "-Infinity", "1e400",
                                   "250000.01", "4800.001", "1e-7", "", "4,800.00", "0x10"])
def test_an_amount_that_is_not_whole_cents_within_bounds_is_refused(typed):
    with pytest.raises(typer.BadParameter):
        _euros(typed)
