"""The `werkbrug` command line, as people use it: a separate process against the running services."""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import uuid

import pytest

from infra.scenario import until_status
from tests.harness import wait_for
from tests.integration.test_flow import a_referral

pytestmark = pytest.mark.integration


async def werkbrug(settings, *args: str) -> tuple[int, str, str]:
    env = {"WERKBRUG_ACTOR": "test.operator", **os.environ, "WERKBRUG_NAMESPACE": settings.namespace,
           "AMQP_URL": settings.amqp_url, "COLUMNS": "200"}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "infra.cli", *args, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    return proc.returncode, out.decode(), err.decode()


async def test_a_referral_from_file_to_approved_quote_through_the_command_line(services, client, settings, tmp_path):
    person = tmp_path / "person.json"
    referral = a_referral(random.Random("cli"))
    person.write_text(referral.model_dump_json(exclude={"command_id"}))

    code, out, _ = await werkbrug(settings, "refer", str(person), "--json")
    assert code == 0, out
    rid = json.loads(out)["result"]["referral_id"]
    await until_status(client, "offer", rid, {"registered"})
    assert (await werkbrug(settings, "accept", rid))[0] == 0
    code, out, err = await werkbrug(settings, "quote", rid, "--amount", "4800.00", "--start", "2027-01-04",
                                    "--weeks", "26", "--advance", "1920.00", "--json")
    assert code == 0, err
    quote_id = json.loads(out)["result"]["quotes"][-1]["quote_id"]
    await until_status(client, "intake", rid, {"quote_received"})
    assert (await werkbrug(settings, "approve", rid, quote_id))[0] == 0
    await until_status(client, "offer", rid, {"quote_approved"})

    code, out, _ = await werkbrug(settings, "status", rid)
    assert code == 0 and "quote_approved" in out and "referral.registered" in out and "accepted" in out
    code, out, _ = await werkbrug(settings, "trace", rid, "--svg", str(tmp_path / "flow.svg"))
    assert code == 0 and "submit_referral" in out and "on_quote_approved" in out
    assert (tmp_path / "flow.svg").read_text().startswith("<svg")
    code, out, _ = await werkbrug(settings, "log", "--referral", rid, "--json")
    records = json.loads(out)
    assert code == 0 and {r["party"] for r in records} == {"werksaam", "heliomare"}
    assert referral.bsn not in out and referral.family_name not in out
    code, out, _ = await werkbrug(settings, "referrals", "--status", "quote_approved", "--json")
    assert code == 0 and rid in out
    code, out, _ = await werkbrug(settings, "health")
    assert code == 0 and "intake" in out and "offer" in out


async def test_the_command_line_refuses_clearly_with_exit_codes(services, settings, tmp_path):
    person = tmp_path / "person.json"
    bad = a_referral(random.Random("cli-bad"), bsn="123456789", municipality="Amsterdam")
    person.write_text(bad.model_dump_json(exclude={"command_id"}))
    code, _, err = await werkbrug(settings, "refer", str(person))
    assert code == 2 and "bsn_invalid" in err and "not_resident_west_friesland" in err
    assert "123456789" not in err

    person.write_text('{"bsn": "123456782", "shoe_size": 44}')
    code, _, err = await werkbrug(settings, "refer", str(person))
    assert code == 2 and "unknown_field" in err

    assert (await werkbrug(settings, "status", str(uuid.uuid4())))[0] == 1
    assert (await werkbrug(settings, "status", "not-an-id"))[0] == 2
    assert (await werkbrug(settings, "log"))[0] == 2, "an unfiltered read of the log is refused"
    code, _, err = await werkbrug(settings, "approve", str(uuid.uuid4()), str(uuid.uuid4()))
    assert code == 2 and "unknown_referral" in err


async def test_finance_lists_invoices_and_the_report_is_shown_from_the_command_line(services, client, settings,
                                                                                   tmp_path):
    from infra.scenario import REPORT_YEAR, play_all, synthetic_cases, with_trajectories

    rng = random.Random("cli-money")
    cases = with_trajectories(synthetic_cases(rng, 3), rng)
    cases = await play_all(client, cases, seed=3)
    assert any(c.trajectory for c in cases)

    async def invoiced():
        code, out, _ = await werkbrug(settings, "invoices", "--year", str(REPORT_YEAR), "--json")
        rows = json.loads(out).get("result") or [] if code == 0 else []
        return rows if any(r["referral_id"] in {c.referral_id for c in cases} for r in rows) else None

    rows = await wait_for(invoiced, within=30, what="invoices for the scenario's trajectories")
    assert all(r["number"].startswith(f"{REPORT_YEAR}-") for r in rows)
    code, out, _ = await werkbrug(settings, "invoices", "--year", str(REPORT_YEAR))
    assert code == 0 and "total" in out

    code, out, err = await werkbrug(settings, "report", str(REPORT_YEAR), "--source", "trajectory",
                                    "--svg", str(tmp_path / "report.svg"))
    assert code == 0, err
    assert "Yearly report" in out and (tmp_path / "report.svg").read_text().startswith("<svg")
    assert all(c.command.family_name not in out for c in cases)
