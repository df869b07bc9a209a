"""Start werkbrug's services as separate OS processes (`python -m services.<name>`), and their embedded
database servers on mongoeco's SQLite engine, and stop them (the demo, the chaos run, the benchmarks, `werkbrug
serve`)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from infra.services import DEFINITIONS
from shared.config import Settings
from shared.storage.embedded import free_port, start_embedded, url_for

ROOT = Path(__file__).resolve().parent.parent


class ChildProcess:
    """A process this one started: running, killed (SIGKILL: no chance to finish anything) or stopped (SIGTERM,
    then SIGKILL after `stop_within` seconds)."""

    proc: subprocess.Popen | None = None
    stop_within: float = 10.0

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.running:
            assert self.proc is not None
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.running:
            assert self.proc is not None
            self.proc.terminate()
            try:
                self.proc.wait(timeout=self.stop_within)
            except subprocess.TimeoutExpired:
                self.kill()


class ServiceProcess(ChildProcess):
    stop_within = 30.0  # SIGTERM: it finishes the message in hand and flushes its spans

    def __init__(self, name: str, settings: Settings, mongodb_url: str, log_dir: Path,
                 extra_env: dict[str, str] | None = None, http_port: int | None = None,
                 own_session: bool = False) -> None:
        """`http_port`: where its health route listens (default: any free port). `own_session`: the process
        does not get the terminal's signals (Ctrl-C), so whoever started it decides when and in what order
        it stops (`werkbrug serve`)."""
        self.name, self.settings, self.mongodb_url = name, settings, mongodb_url
        self.log_path = log_dir / f"{name}.log"
        self.http_port = http_port or free_port()
        self.extra_env = extra_env or {}
        self.own_session = own_session
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        env = {
            **os.environ,
            "WERKBRUG_NAMESPACE": self.settings.namespace,
            "MONGODB_URL": self.mongodb_url,
            # Each service connects as its own party's broker user.
            "AMQP_URL": self.settings.broker_url(DEFINITIONS[self.name]().party.value),
            # A cluster's other nodes, to move to when AMQP_URL's goes away.
            **({"WERKBRUG_AMQP_NODES": ",".join(self.settings.amqp_nodes)} if self.settings.amqp_nodes else {}),
            "WERKBRUG_RELAY_INTERVAL": str(self.settings.relay_interval),
            "WERKBRUG_HTTP_PORT": str(self.http_port),
            "PYTHONUNBUFFERED": "1",
            **({"WERKBRUG_REPORT_TODAY": self.settings.report_today.isoformat()} if self.settings.report_today else {}),
            **self.extra_env,
        }
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", f"services.{self.name}"], cwd=ROOT, env=env,
                                         stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=self.own_session)


    def healthy(self) -> bool:
        """Does FastStream's ASGI ping route answer 204 (broker connected)? Blocks up to 2 s."""
        return self.running and _status(f"http://127.0.0.1:{self.http_port}/health") == 204

    async def wait_healthy(self, within: float = 60.0) -> None:
        """Until FastStream's ASGI ping route answers 204 (broker connected)."""
        deadline = asyncio.get_running_loop().time() + within
        url = f"http://127.0.0.1:{self.http_port}/health"
        while asyncio.get_running_loop().time() < deadline:
            if not self.running:
                raise RuntimeError(f"{self.name} exited; see {self.log_path}")
            if await asyncio.to_thread(_status, url) == 204:
                return
            await asyncio.sleep(0.2)
        raise RuntimeError(f"{self.name} not healthy within {within:.0f}s; see {self.log_path}")



class DatabaseServer(ChildProcess):
    """A service's embedded database server on mongoeco's SQLite engine: a file of its own (committed writes
    survive SIGKILL), killable, and restartable on the same file and port."""

    def __init__(self, service: str, path: Path, log_path: Path, port: int | None = None,
                 own_session: bool = False) -> None:
        self.service, self.path, self.log_path = service, path, log_path
        self.port = port or free_port()
        self.own_session = own_session
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return url_for(self.port)


    def start(self) -> None:
        """Start it and wait until it listens (RuntimeError if it exits or does not listen within 30 s)."""
        with open(self.log_path, "ab") as log:
            self.proc = start_embedded(self.port, engine="sqlite", path=str(self.path), stdout=log,
                                       new_session=self.own_session)



def _status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (loopback only)
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None
