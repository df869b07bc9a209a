"""`werkbrug serve` and `werkbrug stop`, as an operator runs them: the five services and their embedded SQLite database
servers as processes, against the real broker, in a namespace and a var/ of this module's own. What was
submitted is still there after a service is killed (the supervisor restarts it), after a database server is
killed (restarted on its file), and after the whole serve is stopped and started again."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from infra.identities import deprovision, provision
from infra.processes import ROOT
from infra.serve import SERVICES, Layout, read_state, running_pid
from shared.client import CommandClient
from shared.config import Settings
from shared.contracts.commands import GetReferral
from tests.harness import wait_for
from tests.integration.test_flow import a_referral
from tests.staff import TEST_STAFF

pytestmark = pytest.mark.integration


def _free_block(low: int, high: int) -> int:
    """The first of five consecutive free ports, chosen at random (other runs on this machine use theirs)."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(low, high)
        try:
            for port in range(base, base + len(SERVICES)):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError("no five free ports in a row")


class Served:
    """A namespace of its own on the real broker, a var/ and ports of its own, and the command line to run."""

    def __init__(self, var: Path) -> None:
        self.settings = Settings(WERKBRUG_NAMESPACE=f"wbv-{uuid.uuid4().hex[:8]}")
        self.layout = Layout(var)
        self.db_port, self.http_port = _free_block(21000, 29000), _free_block(31000, 39000)
        self.env = {**os.environ, "WERKBRUG_NAMESPACE": self.settings.namespace, "AMQP_URL": self.settings.amqp_url,
                    "WERKBRUG_VAR_DIR": str(var), "WERKBRUG_SERVE_DB_PORT": str(self.db_port),
                    "WERKBRUG_SERVE_HTTP_PORT": str(self.http_port), "WERKBRUG_ACTOR": "test.operator",
                    "COLUMNS": "200"}

    async def werkbrug(self, *args: str, **env: str) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "cli", *args, cwd=ROOT,
                                                    env={**self.env, **env}, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
        return proc.returncode, out.decode(), err.decode()

    def state(self):
        return read_state(self.layout)

    def pids(self) -> list[int]:
        state = self.state()
        return [p.pid for p in state.processes if p.pid] + [state.supervisor_pid] if state else []


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (not yet reaped by its parent) is gone for every purpose here
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    return False


def one_clear_line(err: str) -> bool:
    return len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.fixture
def served(tmp_path):
    served = Served(tmp_path / "var")
    provision(served.settings)  # what `make broker` does for a namespace: its vhost, exchanges, users
    yield served
    with contextlib.suppress(Exception):
        subprocess.run([sys.executable, "-m", "cli", "stop"], cwd=ROOT, env=served.env, timeout=120,
                       capture_output=True, check=False)
    deprovision(served.settings)


async def referral_at(client: CommandClient, service: str, referral_id: str) -> dict | None:
    """The referral as the service has it; None while the service cannot answer (restarting, its database away)."""
    try:
        reply = await client.send(service, GetReferral(referral_id=uuid.UUID(referral_id)))
    except TimeoutError:
        return None
    return reply.result if reply.ok else None


async def all_running(served: Served, within: float = 60.0):
    async def running():
        state = served.state()
        return state if state is not None and state.all_healthy else None

    return await wait_for(running, within=within, interval=0.25, what="every process of serve running")


async def test_a_referral_survives_a_killed_service_a_killed_database_server_and_a_restart_of_the_whole_serve(
        served, tmp_path):
    # Detached: it returns once every service answers its health route.
    code, out, err = await served.werkbrug("serve", "--detach")
    assert code == 0, err
    state = served.state()
    assert state.all_healthy and len(state.processes) == 2 * len(SERVICES), out
    assert "werkbrug runs detached" in out and "werkbrug stop" in out
    assert all((served.layout.log / f"{s}.log").exists() and served.layout.db_path(s).exists() for s in SERVICES)
    code, out, err = await served.werkbrug("health")
    assert code == 0 and all(f"{s}: answers" in out for s in SERVICES), out + err
    code, _, err = await served.werkbrug("serve", "--detach")
    assert code == 2 and "already runs" in err and one_clear_line(err)

    person = tmp_path / "person.json"
    person.write_text(a_referral(random.Random("serve")).model_dump_json(exclude={"command_id", "command", "actor"}))
    code, out, err = await served.werkbrug("refer", str(person), "--json")
    assert code == 0, err
    first = json.loads(out)["result"]["referral_id"]
    async with CommandClient(served.settings, timeout=5, actors=TEST_STAFF) as client:
        await wait_for(lambda: referral_at(client, "offer", first), within=30, what="the referral at offer")

        # (a) a service killed: the supervisor starts it again and says so; what it had is still there
        intake = state.service("intake")
        os.kill(intake.pid, signal.SIGKILL)

        async def intake_restarted():
            now = served.state().service("intake")
            return now if now.state == "running" and now.pid != intake.pid else None

        restarted = await wait_for(intake_restarted, within=30, what="intake restarted")
        assert restarted.restarts == 1
        assert "intake killed by SIGKILL; restart 1 in 1 s" in served.layout.supervisor_log.read_text()
        assert (await wait_for(lambda: referral_at(client, "intake", first), within=30,
                               what="the referral at the restarted intake"))["status"] == "registered"

        # (b) a database server killed: started again on its file; the service goes on with what it had
        database = served.state().database("offer")
        os.kill(database.pid, signal.SIGKILL)

        async def database_restarted():
            now = served.state().database("offer")
            return now if now.state == "running" and now.pid != database.pid else None

        await wait_for(database_restarted, within=30, what="offer's database server restarted")
        assert "offer database killed by SIGKILL" in served.layout.supervisor_log.read_text()
        await wait_for(lambda: referral_at(client, "offer", first), within=30,
                       what="the referral at offer after its database server restarted")
        second = await client.send("intake", a_referral(random.Random("serve-2")))
        assert second.ok, second.reasons
        second_id = second.result["referral_id"]
        await wait_for(lambda: referral_at(client, "offer", second_id), within=30,
                       what="a referral submitted after the restart, at offer")

    # (c) the whole serve stopped: everything ends, services first
    pids = served.pids()
    code, out, err = await served.werkbrug("stop")
    assert code == 0 and "stopped" in out, err
    assert not any(alive(pid) for pid in pids), "every process ended"
    assert running_pid(served.layout) is None and served.state() is None
    log = served.layout.supervisor_log.read_text()
    assert log.index("stopping the services (SIGTERM)") < log.index("stopping the database servers (SIGTERM)")
    code, _, err = await served.werkbrug("serve", "--status")
    assert code == 1 and one_clear_line(err)

    # ...and started again, in the foreground this time: everything is where it was
    foreground = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cli", "serve", cwd=ROOT, env=served.env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    try:
        state = await all_running(served)
        async with CommandClient(served.settings, timeout=5, actors=TEST_STAFF) as client:
            for rid in (first, second_id):
                for service in ("intake", "offer"):
                    assert await wait_for(lambda s=service, r=rid: referral_at(client, s, r), within=30,
                                          what=f"{rid} at {service} after the restart")
        pids = served.pids()
        foreground.send_signal(signal.SIGINT)  # Ctrl-C
        out, err = await asyncio.wait_for(foreground.communicate(), timeout=90)
    finally:
        if foreground.returncode is None:
            foreground.kill()
    assert foreground.returncode == 0, err.decode()
    assert "Traceback" not in out.decode() + err.decode()
    assert "stopping the services (SIGTERM)" in out.decode(), "the foreground says what it does"
    assert not any(alive(pid) for pid in pids), "Ctrl-C ended every process"
    assert running_pid(served.layout) is None and served.state() is None


async def test_a_serve_whose_supervisor_died_is_refused_until_stop_ends_what_it_left(served):
    code, _, err = await served.werkbrug("serve", "--detach")
    assert code == 0, err
    state = served.state()
    os.kill(state.supervisor_pid, signal.SIGKILL)
    await wait_for(lambda: asyncio.sleep(0, result=running_pid(served.layout) is None), within=10,
                   what="the lock released")
    code, _, err = await served.werkbrug("serve", "--detach")
    assert code == 2 and "still run" in err and "werkbrug stop" in err and one_clear_line(err)
    code, out, err = await served.werkbrug("stop")
    assert code == 0 and "the supervisor was gone" in out, err
    assert not any(alive(p.pid) for p in state.processes if p.pid)
    assert served.state() is None


async def test_serve_refuses_clearly_and_starts_nothing(served, tmp_path):
    """Each refusal is one line and the documented exit code; no process is left, no state written."""
    url = urlsplit(served.settings.amqp_url)
    admin = f"{url.username}:{url.password}"
    cases = [
        ("the broker not reachable", 3, "not reachable", {"AMQP_URL": f"amqp://{admin}@127.0.0.1:9/"}),
        ("a wrong password", 4, "refused the login", {"AMQP_URL": "amqp://werkbrug-admin:wrong@127.0.0.1:5672/"}),
        ("a namespace not declared", 4, "not declared", {"WERKBRUG_NAMESPACE": f"wbv-{uuid.uuid4().hex[:8]}"}),
    ]
    for what, expected, words, env in cases:
        code, _, err = await served.werkbrug("serve", "--detach", **env)
        assert code == expected and words in err and one_clear_line(err), (what, code, err)
        assert served.state() is None and running_pid(served.layout) is None, what

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code, _, err = await served.werkbrug("serve", WERKBRUG_VAR_DIR=str(blocker / "var"))
    assert code == 2 and "is not writable" in err and one_clear_line(err)

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", served.db_port + 2))
        taken.listen()
        code, _, err = await served.werkbrug("serve", "--detach")
    assert code == 2 and f"port {served.db_port + 2}" in err and "trajectory" in err and one_clear_line(err)

    code, _, err = await served.werkbrug("stop")
    assert code == 1 and "does not run" in err and one_clear_line(err)
    code, _, err = await served.werkbrug("serve", "--status")
    assert code == 1 and one_clear_line(err)
    assert served.state() is None and not (served.layout.log / "intake.log").exists(), "nothing was started"



async def test_the_readme_walkthrough_on_werkbrug_serve_finds_everything_where_it_was_after_restarts(served, tmp_path):
    """Issue 17, as it is shown: `werkbrug serve` started, one person taken from referral to invoices and the
    report with the README's commands alone, the whole serve stopped and started again after the trajectory's
    start, billing's database server killed after its end, and afterwards, once more restarted, every record
    where it was."""
    from tests.integration.test_walkthrough import check_the_outcome, play

    closed_2030 = {"WERKBRUG_REPORT_TODAY": "2031-02-01"}  # the walkthrough's dates are in 2030 (README)
    code, _, err = await served.werkbrug("serve", "--detach", **closed_2030)
    assert code == 0, err
    env = {**served.env, "PYTHONPATH": str(ROOT)}
    env.pop("WERKBRUG_ACTOR")  # every line of the walkthrough names who gives it

    async def werkbrug(args: list[str]) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "cli", *args, cwd=tmp_path, env=env,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
        return proc.returncode, out.decode(), err.decode()

    async def restart_parts(line: str) -> None:
        if " trajectory start " in line:  # every service and database server stopped and started again
            code, _, err = await served.werkbrug("stop")
            assert code == 0, err
            code, _, err = await served.werkbrug("serve", "--detach", **closed_2030)
            assert code == 0, err
        elif " trajectory end " in line:  # billing's database server killed while billing has work to do
            database = served.state().database("billing")
            os.kill(database.pid, signal.SIGKILL)

            async def database_restarted():
                now = served.state().database("billing")
                return now if now.state == "running" and now.pid != database.pid else None

            await wait_for(database_restarted, within=30, what="billing's database server restarted")

    variables, said = await play(werkbrug, tmp_path, after=restart_parts)
    check_the_outcome(variables, said)
    log = served.layout.supervisor_log.read_text()
    assert "billing database killed by SIGKILL" in log

    status_before = next(out for line, out, _ in said if " status $REFERRAL" in line)
    code, _, err = await served.werkbrug("stop")
    assert code == 0, err
    code, _, err = await served.werkbrug("serve", "--detach", **closed_2030)
    assert code == 0, err
    code, status_after, err = await werkbrug(["--as", "ops.joint", "status", variables["REFERRAL"]])
    assert code == 0, err
    assert status_after == status_before, "after a restart every record is where it was"
    code, invoices, err = await werkbrug(["--as", "fin.heliomare", "invoices", "--referral", variables["REFERRAL"]])
    assert code == 0 and invoices == next(out for line, out, _ in said if "invoices --referral" in line), err
