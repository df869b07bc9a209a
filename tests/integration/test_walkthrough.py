"""The README's walkthrough "From referral to report, by command", run exactly as written: every line of its code
block, in order, as its own `werkbrug` process (`python -m cli`) against the running services, with the ids that
earlier lines captured (`NAME=$(werkbrug ... --id-only)`) put in where later lines say `$NAME`."""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import sys
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SECTION = "## From referral to report, by command"
CAPTURE = re.compile(r"^([A-Z][A-Z0-9_]*)=\$\((werkbrug .*)\)$")
REDIRECT = re.compile(r"^(werkbrug .*?)\s+>\s+(\S+)$")
VARIABLE = re.compile(r"\$([A-Z][A-Z0-9_]*)")
# Every step of Bijlage 2 (and the report and the checks) must be in the walkthrough: the README cannot lose one.
STEPS = ["refer", "accept", "quote", "approve", "trajectory start", "trajectory progress", "trajectory end",
         "invoices", "report publish", "report 2030", "reconcile", "status"]


def walkthrough() -> list[str]:
    """The command lines of the README section's sh block: comments and blank lines left out."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert SECTION in readme, "the README has no walkthrough section"
    section = readme.split(SECTION, 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "the walkthrough section has no ```sh block"
    return [line.strip() for line in block.group(1).splitlines() if line.strip() and not line.strip().startswith("#")]


async def _werkbrug(settings, cwd: Path, args: list[str]) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if k != "WERKBRUG_ACTOR"}  # every line names who gives it
    env.update({"WERKBRUG_NAMESPACE": settings.namespace, "AMQP_URL": settings.amqp_url, "COLUMNS": "200",
                "PYTHONPATH": str(ROOT)})  # this checkout's code, run from the walkthrough's own directory
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "cli", *args, cwd=cwd, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=90)
    return proc.returncode, out.decode(), err.decode()


def test_the_walkthrough_names_every_step_and_only_werkbrug_commands():
    lines = walkthrough()
    commands = []
    for line in lines:
        found = CAPTURE.match(line) or REDIRECT.match(line)
        command = found.group(2 if CAPTURE.match(line) else 1) if found else line
        assert command.startswith("werkbrug "), f"not a werkbrug command: {line}"
        commands.append(command)
    text = "\n".join(commands)
    for step in STEPS:
        assert re.search(rf"werkbrug (--as \S+ )?{step}\b", text), f"the walkthrough has no step {step!r}"
    assert all(re.match(r"werkbrug --as \S+ ", c) for c in commands if not c.startswith("werkbrug example")), \
        "every step names who gives it"


Werkbrug = Callable[[list[str]], Awaitable[tuple[int, str, str]]]


async def play(werkbrug: Werkbrug, directory: Path, after: Callable[[str], Awaitable[None]] | None = None
               ) -> tuple[dict[str, str], list[tuple[str, str, str]]]:
    """Run the walkthrough's lines in order with `werkbrug` (the command line as its own process), in `directory`;
    `after(line)` runs after each line (to restart parts of the system mid-way). Returns the captured variables
    and what each line printed."""
    variables: dict[str, str] = {}
    said: list[tuple[str, str, str]] = []  # (line, stdout, stderr)
    for line in walkthrough():
        captured, redirected = CAPTURE.match(line), REDIRECT.match(line)
        command = captured.group(2) if captured else redirected.group(1) if redirected else line
        unset = [name for name in VARIABLE.findall(command) if name not in variables]
        assert not unset, f"{line}: {', '.join(unset)} used before a line captures it"
        args = shlex.split(VARIABLE.sub(lambda m: variables[m.group(1)], command))[1:]
        code, out, err = await werkbrug(args)
        assert code == 0, f"{line}\n exit {code}\n{out}\n{err}"
        assert "Traceback" not in out + err, line
        if captured:
            variables[captured.group(1)] = out.strip()
            assert re.fullmatch(r"[0-9a-f-]{36}", variables[captured.group(1)]), (line, out)
        if redirected:
            (directory / redirected.group(2)).write_text(out)
        said.append((line, out, err))
        if after is not None:
            await after(line)
    for line, out, err in said:
        print(f"$ {line}\n{out}{err}")
    return variables, said


def check_the_outcome(variables: dict[str, str], said: list[tuple[str, str, str]]) -> None:
    """What the walkthrough must have produced: both invoices, the report published and received, the parties
    agreeing, the status at its end, and no line but the example printing the person's data."""

    def output(fragment: str) -> str:
        return next(out for line, out, _ in said if fragment in line)

    invoices = output("invoices --referral")
    assert invoices.count("2030-0") >= 2 and "advance" in invoices and "afterwards" in invoices, invoices
    total = re.search(r"total[\s│]+([\d.]+)[\s│]+([\d.]+)[\s│]+([\d.]+)", invoices)
    assert total and Decimal(total.group(1)) == Decimal("4800.00"), "the approved amount, invoiced in two parts"
    assert "edition 1 published" in output("report publish 2030")
    assert "Yearly report" in output("cw.bakker report 2030")
    assert "the parties agree on 1 referral" in output(" reconcile $REFERRAL")
    status = output(" status $REFERRAL")
    assert "intake: trajectory_ended" in status and "billing: ended" in status, status
    assert variables["REFERRAL"] in output("trajectory start")
    for line, out, err in said:
        if not line.startswith("werkbrug example"):
            assert '"bsn"' not in out and "de Boer" not in out + err, f"{line} printed the person's data"


async def test_the_readme_walkthrough_takes_one_person_from_referral_to_report(services, settings, tmp_path):
    started = time.monotonic()
    variables, said = await play(lambda args: _werkbrug(settings, tmp_path, args), tmp_path)
    took = time.monotonic() - started
    check_the_outcome(variables, said)
    print(f"walkthrough: {len(said)} commands in {took:.1f} s")


async def test_a_step_given_by_the_wrong_staff_or_waited_for_in_vain_says_so_with_its_exit_code(
        services, settings, tmp_path):
    import uuid

    nobody = str(uuid.uuid4())
    code, _, err = await _werkbrug(settings, tmp_path, ["--as", "fin.heliomare", "trajectory", "start", nobody,
                                                        "--on", "2030-01-07"])
    assert code == 2 and "role_not_permitted" in err, err
    code, _, err = await _werkbrug(settings, tmp_path, ["--as", "cw.bakker", "wait", nobody, "--at", "offer",
                                                        "--for", "registered"])
    assert code == 2 and "unknown_actor" in err, "WerkSaam's caseworker is no member of Heliomare's staff"
    code, _, err = await _werkbrug(settings, tmp_path, ["--as", "cw.bakker", "reconcile", nobody])
    assert code == 2 and "unknown_actor at offer, trajectory, billing" in err, err
    code, _, err = await _werkbrug(settings, tmp_path, ["--as", "am.jansen", "wait", nobody, "--at", "offer",
                                                        "--for", "registered", "--within", "1"])
    assert code == 1 and f"offer does not know referral {nobody} after 1 s" in err, err
    code, _, err = await _werkbrug(settings, tmp_path, ["--as", "cw.bakker", "wait", "--report", "2028",
                                                        "--within", "1"])
    assert code == 1 and "has not received the report 2028" in err, err
