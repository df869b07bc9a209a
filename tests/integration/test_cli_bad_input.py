"""The `werkbrug` command line never shows a traceback (issue 14 item 7): every bad input, an unknown virtual host,
an unreachable broker and a wrong password give one clear line and the documented exit code. Run as people run
it: `python -m cli` in its own process.

Input that the command line refuses itself is given with AMQP_URL pointing at a port nobody listens on: had the
command line tried to send anything, it would have said the broker is unreachable (exit 3), not refused the input
(exit 2). So exit 2 shows the refusal came first and nothing was sent."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
import uuid

import pytest

from shared.config import ADMIN_USER, dev_password

pytestmark = pytest.mark.integration

DONE, NOTHING_FOUND, REFUSED, NO_ANSWER, NOT_ADMITTED = 0, 1, 2, 3, 4
REFERRAL = str(uuid.uuid4())
QUOTE = ["quote", REFERRAL, "--start", "2027-01-04", "--weeks", "26"]


def _unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


NOWHERE = f"amqp://{ADMIN_USER}:{dev_password(ADMIN_USER)}@127.0.0.1:{_unused_port()}/"


async def werkbrug(*args: str, amqp_url: str = NOWHERE, namespace: str = "werkbrug",
                   env: dict[str, str] | None = None, **env_vars: str) -> tuple[int, str, str]:
    env = {**os.environ, "WERKBRUG_ACTOR": "test.operator", "WERKBRUG_NAMESPACE": namespace, "AMQP_URL": amqp_url,
           "COLUMNS": "80", **(env or {}), **env_vars}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "cli", *args, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def one_clear_line(code: int, out: str, err: str, expected_code: int, *words: str) -> str:
    assert "Traceback" not in out + err, out + err
    assert code == expected_code, (code, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert all(w in lines[0] for w in words), lines[0]
    return lines[0]


@pytest.mark.parametrize("amount,words", [
    pytest.param("abc", ("--amount", "not an amount"), id="not-a-number"),
    pytest.param("-5", ("--amount", "negative"), id="negative"),
    pytest.param("NaN", ("--amount", "finite"), id="nan"),
    pytest.param("Infinity", ("--amount", "finite"), id="infinity"),
    pytest.param("1e400", ("--amount", "at most"), id="huge"),
    pytest.param("4800.001", ("--amount", "2 decimals"), id="fractions-of-a-cent"),
    pytest.param("0", ("amount", "more than 0"), id="zero"),
])
async def test_a_bad_amount_is_refused_before_anything_is_sent(amount, words):
    one_clear_line(*await werkbrug(*QUOTE, "--amount", amount), REFUSED, *words)


async def test_an_advance_above_the_amount_is_refused():
    one_clear_line(*await werkbrug(*QUOTE, "--amount", "1000.00", "--advance", "1000.01"), REFUSED,
                   "invoicing_schedule_invalid", "advance")


async def test_a_bad_advance_is_refused():
    one_clear_line(*await werkbrug(*QUOTE, "--amount", "1000.00", "--advance", "NaN"), REFUSED, "--advance")


async def test_a_bsn_file_that_is_not_utf8_is_refused(tmp_path):
    bsn = tmp_path / "bsn.txt"
    bsn.write_bytes(b"\xff\xfe1\x002\x003\x00")
    one_clear_line(*await werkbrug("subject-request", "submit", str(bsn), "--right", "access",
                                   "--identity-method", "digid", "--verified-by", "privacy.werksaam"),
                   REFUSED, "not UTF-8")


async def test_a_corrections_file_that_is_not_utf8_is_refused(tmp_path):
    bsn, corrections = tmp_path / "bsn.txt", tmp_path / "corrections.json"
    bsn.write_text("123456782\n")
    corrections.write_bytes(b'{"family_name": "\xe9\xff"}')
    one_clear_line(*await werkbrug("subject-request", "submit", str(bsn), "--right", "rectification",
                                   "--identity-method", "digid", "--verified-by", "privacy.werksaam",
                                   "--corrections", str(corrections)), REFUSED, "not UTF-8")


async def test_a_corrections_file_that_is_not_json_is_refused(tmp_path):
    bsn, corrections = tmp_path / "bsn.txt", tmp_path / "corrections.json"
    bsn.write_text("123456782\n")
    corrections.write_text('{"family_name": ')
    one_clear_line(*await werkbrug("subject-request", "submit", str(bsn), "--right", "rectification",
                                   "--identity-method", "digid", "--verified-by", "privacy.werksaam",
                                   "--corrections", str(corrections)), REFUSED, "corrections", "not JSON")


async def test_a_person_file_that_is_not_utf8_is_refused(tmp_path):
    person = tmp_path / "person.json"
    person.write_bytes(b'{"given_name": "\xff"}')
    one_clear_line(*await werkbrug("refer", str(person)), REFUSED, "refused")


async def test_an_unknown_service_is_refused_at_once():
    started = time.monotonic()
    one_clear_line(*await werkbrug("referrals", "--service", "nosuch"), REFUSED, "unknown service", "intake")
    assert time.monotonic() - started < 10, "refused before connecting, not after a timeout"


async def test_a_service_that_does_not_keep_referrals_is_refused_for_referrals():
    one_clear_line(*await werkbrug("referrals", "--service", "subject_rights"), REFUSED, "unknown service")


async def test_an_unknown_party_is_refused_at_once():
    one_clear_line(*await werkbrug("confidentiality", "list", "--party", "nosuch"), REFUSED, "unknown party")


async def test_an_unknown_command_or_option_is_one_line():
    one_clear_line(*await werkbrug("nosuch"), REFUSED, "bad input")
    one_clear_line(*await werkbrug("referrals", "--colour", "blue"), REFUSED, "bad input", "--colour")


async def test_an_unreachable_broker_is_said_in_one_line():
    line = one_clear_line(*await werkbrug("referrals"), NO_ANSWER, "not reachable", "127.0.0.1")
    assert dev_password(ADMIN_USER) not in line


async def test_a_wrong_password_is_said_in_one_line():
    wrong = "amqp://werksaam:not-the-password@127.0.0.1:5672/"  # a party's own command line, its password wrong
    line = one_clear_line(*await werkbrug("referrals", amqp_url=wrong), NOT_ADMITTED, "refused the login")
    assert "not-the-password" not in line


async def test_a_namespace_without_its_virtual_host_is_said_in_one_line():
    admin = f"amqp://{ADMIN_USER}:{dev_password(ADMIN_USER)}@127.0.0.1:5672/"
    namespace = f"wbt-none-{uuid.uuid4().hex[:6]}"
    line = one_clear_line(*await werkbrug("referrals", amqp_url=admin, namespace=namespace), NOT_ADMITTED,
                          "virtual host", namespace)
    assert dev_password(ADMIN_USER) not in line


async def test_a_bad_namespace_setting_is_refused():
    one_clear_line(*await werkbrug("referrals", namespace="Not A Namespace!"), REFUSED,
                   "bad setting", "WERKBRUG_NAMESPACE")


# -- letters to the person: refused before anything is sent -----------------------------------------------------


async def test_a_letter_without_a_file_to_write_it_to_is_refused(tmp_path):
    one_clear_line(*await werkbrug("subject-request", "letter", REFERRAL), REFUSED, "--html", "--pdf")
    one_clear_line(*await werkbrug("breach", "letter", REFERRAL), REFUSED, "--html", "--pdf")
    assert not list(tmp_path.iterdir())


async def test_a_letter_in_a_language_there_are_no_letters_in_is_refused(tmp_path):
    one_clear_line(*await werkbrug("subject-request", "letter", REFERRAL, "--lang", "de", "--html",
                                   str(tmp_path / "letter.html")), REFUSED, "bad input", "--lang")
    assert not (tmp_path / "letter.html").exists()


async def test_a_breach_measure_without_words_is_refused(tmp_path):
    one_clear_line(*await werkbrug("breach", "letter", REFERRAL, "--measure", "apologised_on_tv", "--html",
                                   str(tmp_path / "letter.html")), REFUSED, "bad input", "--measure")


async def test_a_bad_letterhead_setting_is_refused_before_anything_is_sent(tmp_path):
    settings = tmp_path / "letterhead.toml"
    settings.write_text('name = "WerkSaam Westfriesland"\nfax = "0229 00 00 00"\n')
    line = one_clear_line(*await werkbrug("subject-request", "letter", REFERRAL, "--html", str(tmp_path / "l.html"),
                                          WERKBRUG_LETTERHEAD_EMAIL=""), REFUSED, "bad letterhead setting",
                          "WERKBRUG_LETTERHEAD_EMAIL")
    assert "string_too_short" in line
    one_clear_line(*await werkbrug("breach", "letter", REFERRAL, "--html", str(tmp_path / "l.html"),
                                   WERKBRUG_LETTERHEAD_FILE=str(settings)), REFUSED, "bad letterhead setting")
    assert not (tmp_path / "l.html").exists()


# -- the trajectory, report, invoice, wait and file-input commands (issue 17): refused before anything is sent -----

def refused_lines(code: int, out: str, err: str, *expected: tuple[str, ...]) -> None:
    """Exit 2 with one line per reason, each line holding its words, and no traceback."""
    assert "Traceback" not in out + err, out + err
    assert code == REFUSED, (code, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == len(expected), err
    for line, words in zip(lines, expected, strict=True):
        assert all(w in line for w in words), (line, words)


START = ["trajectory", "start", REFERRAL]


@pytest.mark.parametrize("args,words", [
    pytest.param([*START, "--on", "2030-02-30"], ("--on", "2030-02-30"), id="no-such-day"),
    pytest.param([*START, "--on", "07-01-2030"], ("--on",), id="not-iso"),
    pytest.param(["trajectory", "start", "not-an-id", "--on", "2030-01-07"], ("not an id",), id="bad-referral"),
    pytest.param(["trajectory", "progress", REFERRAL, "--on", "2030-03-02", "--phase", "lunch", "--status",
                  "on_track"], ("--phase", "lunch"), id="unknown-phase"),
    pytest.param(["trajectory", "progress", REFERRAL, "--on", "2030-03-02", "--phase", "training", "--status",
                  "fine"], ("--status", "fine"), id="unknown-status"),
    pytest.param(["trajectory", "end", REFERRAL, "--on", "2030-06-28", "--outcome", "retired"], ("--outcome",),
                 id="unknown-outcome"),
    pytest.param(["invoices", "--referral", "R-1"], ("not an id",), id="invoices-bad-referral"),
    pytest.param(["report", "publish", "1999"], ("1999",), id="report-year-out-of-range"),
    pytest.param(["report", "1999"], ("1999",), id="report-show-by-default-checks-the-year-too"),
    pytest.param([*START, "--on", "2030-01-07", "--json", "--id-only"], ("--json", "--id-only"), id="two-outputs"),
    pytest.param(["wait"], ("referral id", "--report"), id="wait-for-nothing"),
    pytest.param(["wait", REFERRAL, "--at", "offer"], ("--for",), id="wait-without-state"),
    pytest.param(["wait", REFERRAL, "--at", "offer", "--for", "quote_received"], ("quote_received", "offer"),
                 id="wait-for-a-state-of-another-service"),
    pytest.param(["wait", REFERRAL, "--at", "subject_rights", "--for", "open"], ("unknown service",),
                 id="wait-at-a-service-without-referrals"),
    pytest.param(["wait", "--report", "2030", "--for", "ended"], ("--report",), id="wait-report-with-state"),
])
async def test_a_bad_trajectory_report_invoice_or_wait_input_is_refused_before_anything_is_sent(args, words):
    one_clear_line(*await werkbrug(*args), REFUSED, *words)


async def test_an_end_whose_details_do_not_fit_its_outcome_is_refused_with_one_line_per_field():
    refused_lines(*await werkbrug("trajectory", "end", REFERRAL, "--on", "2030-06-28", "--outcome", "paid_work"),
                  ("outcome_details_invalid", "contract_type"), ("outcome_details_invalid", "hours_band"))
    refused_lines(*await werkbrug("trajectory", "end", REFERRAL, "--on", "2030-06-28", "--outcome", "education",
                                  "--stop-reason", "moved_away"), ("outcome_details_invalid", "stop_reason"))


async def test_a_person_file_with_more_than_the_person_is_refused_per_field(tmp_path):
    person = tmp_path / "person.json"
    person.write_text('{"bsn": "123456782", "actor": "someone.else", "command_id": "x", "shoe_size": 44}')
    code, out, err = await werkbrug("refer", str(person))
    assert code == REFUSED and "Traceback" not in out + err
    assert "unknown_field" in err and "missing_field at given_name" in err and "support_need" in err, err
    assert "someone.else" not in err and "123456782" not in err


async def test_schema_and_example_need_no_staff_id_and_no_broker(tmp_path):
    env_less = {"WERKBRUG_ACTOR": ""}  # nobody named: these two send nothing to any service
    for name in ("person", "addendum", "corrections", "staff-register"):
        code, out, err = await werkbrug("schema", name, env=env_less)
        assert code == DONE and '"$schema"' in out, err
        code, out, err = await werkbrug("example", name, env=env_less)
        assert code == DONE and out.startswith("{"), err
    code, out, _ = await werkbrug("schema", env=env_less)
    assert code == DONE and all(n in out for n in ("person", "addendum", "corrections", "staff-register"))
    one_clear_line(*await werkbrug("schema", "shoes", env=env_less), REFUSED, "shoes")
