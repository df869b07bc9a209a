"""`werkbrug serve`: the five services on one machine, each on an embedded database server of its own whose data
is a file under var/, supervised: a service or database server that dies is started again (with backoff), and
says so. In the foreground with a live status and a clean stop on Ctrl-C, or detached (`werkbrug stop` ends it).

    werkbrug serve [--detach] [--var DIR] [--db-port N] [--http-port N]      (cli/serve.py)
    werkbrug serve --status                                                  the status of a serve that runs
    werkbrug stop

`python -m infra.serve [--detach | --status | --stop]` does the same without the command line; `--supervise` is
the detached supervisor's own entry (`serve --detach` starts it as a process of its own session).

What runs, by default (each block of five ports moves with --db-port / --http-port, or WERKBRUG_SERVE_DB_PORT /
WERKBRUG_SERVE_HTTP_PORT; the order is DEFINITIONS'):

    service          party      database server (mongoeco, SQLite engine)     health route
    intake           werksaam   127.0.0.1:27101  var/data/intake.sqlite        http://127.0.0.1:8101/health
    offer            heliomare  127.0.0.1:27102  var/data/offer.sqlite         http://127.0.0.1:8102/health
    trajectory       heliomare  127.0.0.1:27103  var/data/trajectory.sqlite    http://127.0.0.1:8103/health
    billing          heliomare  127.0.0.1:27104  var/data/billing.sqlite       http://127.0.0.1:8104/health
    subject_rights   werksaam   127.0.0.1:27105  var/data/subject_rights.sqlite http://127.0.0.1:8105/health

Files under var/ (WERKBRUG_VAR_DIR or --var moves it):
    data/<service>.sqlite                 each service's database (committed writes survive SIGKILL)
    log/<service>.log, log/<service>-db.log, log/serve.log   the services', their database servers', the supervisor's
    run/serve.json                        what runs: pids, ports, states (rewritten on every change)
    run/serve.lock                        held by the supervisor while it runs (`already runs` is this lock)

It assumes the broker runs and the namespace is declared (`make broker` does both; `make run` does it first),
and checks both before it starts anything. Each service connects as its party's broker user (the development
passwords, or WERKBRUG_AMQP_PASSWORDS) and reads its party's staff register in WERKBRUG_STAFF_DIR (default
var/staff/ of the checkout, where `werkbrug staff add` writes).

Refusals are one line and an exit code (the command line's): 1 nothing runs (stop, --status), 2 it already runs,
var/ is not writable, a port is taken, or processes of a serve that died still run; 3 the broker is not
reachable or the namespace has no exchanges; 4 the broker refused the login or the namespace's virtual host.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from infra.processes import ROOT, DatabaseServer, ServiceProcess
from infra.services import DEFINITIONS
from shared.config import Settings
from shared.messaging.topology import Topology
from shared.staff import StaffRegisterInvalid, read_register, register_path

SERVICES = tuple(DEFINITIONS)  # their order fixes their ports
DB_PORT, HTTP_PORT = 27101, 8101
BACKOFF = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)  # seconds before restart 1, 2, 3 … of a process that keeps dying
STEADY = 30.0  # seconds up and healthy after which a process's next death is its first again
TICK = 1.0  # seconds between looks at every process
START_WAIT = 180.0  # how long `serve --detach` waits for every service to become healthy
STOP_WAIT = 90.0  # how long `stop` waits for the supervisor (services get 30 s each, in parallel, then databases)

NOTHING, REFUSED, NO_ANSWER, NOT_ADMITTED, FAILED = 1, 2, 3, 4, 5  # the command line's exit codes (cli/main.py)


class ServeRefused(Exception):
    """Why serve or stop does not do what was asked: one line, and the exit code."""

    def __init__(self, code: int, line: str) -> None:
        super().__init__(line)
        self.code, self.line = code, line


# -- where things are ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    var: Path

    @property
    def run(self) -> Path:
        return self.var / "run"

    @property
    def log(self) -> Path:
        return self.var / "log"

    @property
    def data(self) -> Path:
        return self.var / "data"

    @property
    def state(self) -> Path:
        return self.run / "serve.json"

    @property
    def lock(self) -> Path:
        return self.run / "serve.lock"

    @property
    def supervisor_log(self) -> Path:
        return self.log / "serve.log"

    def db_path(self, service: str) -> Path:
        return self.data / f"{service}.sqlite"

    def db_log(self, service: str) -> Path:
        return self.log / f"{service}-db.log"

    def shown(self, path: Path) -> str:
        """A path as the operator reads it: relative to the checkout when it is under it."""
        with contextlib.suppress(ValueError):
            return str(path.resolve().relative_to(ROOT))
        return str(path)


@dataclass(frozen=True)
class Ports:
    db: int = DB_PORT
    http: int = HTTP_PORT

    def db_port(self, service: str) -> int:
        return self.db + SERVICES.index(service)

    def http_port(self, service: str) -> int:
        return self.http + SERVICES.index(service)

    def every(self) -> list[tuple[int, str]]:
        return ([(self.db_port(s), f"the database server of {s}") for s in SERVICES]
                + [(self.http_port(s), f"the health route of {s}") for s in SERVICES])


@dataclass(frozen=True)
class Config:
    layout: Layout
    ports: Ports
    settings: Settings

    @classmethod
    def from_environment(cls, var: Path | None = None, db_port: int | None = None,
                         http_port: int | None = None) -> Config:
        """Options given win over WERKBRUG_VAR_DIR / WERKBRUG_SERVE_DB_PORT / WERKBRUG_SERVE_HTTP_PORT, which win
        over the defaults. Raises ValidationError for bad settings, ServeRefused for a bad port."""
        var = var or Path(os.environ.get("WERKBRUG_VAR_DIR") or ROOT / "var")
        ports = Ports(db_port or _port_setting("WERKBRUG_SERVE_DB_PORT", DB_PORT),
                      http_port or _port_setting("WERKBRUG_SERVE_HTTP_PORT", HTTP_PORT))
        for base in (ports.db, ports.http):
            if not 1024 <= base <= 65535 - len(SERVICES):
                raise ServeRefused(REFUSED, f"bad port {base}: a port from 1024 to {65535 - len(SERVICES)}")
        if abs(ports.db - ports.http) < len(SERVICES):
            raise ServeRefused(REFUSED, "the database and health ports overlap: keep them five apart at least")
        return cls(Layout(var.absolute()), ports, Settings())


def _port_setting(name: str, default: int) -> int:
    value = os.environ.get(name)
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ServeRefused(REFUSED, f"bad setting: {name} is not a port number") from None


# -- the state file (what `stop`, `--status` and the tests read) -------------------------------------------


class ProcessState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str  # "intake", "intake database"
    kind: Literal["service", "database"]
    service: str
    party: str
    pid: int | None
    port: int
    state: Literal["starting", "running", "unhealthy", "restarting", "stopping", "stopped"]
    since: AwareDatetime
    health: str
    restarts: int
    note: str = ""
    log: str


class ServeState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    supervisor_pid: int
    started_at: AwareDatetime
    detached: bool
    namespace: str
    broker: str  # host:port, never the credentials
    var: str
    staff_dir: str
    processes: list[ProcessState]

    def service(self, name: str) -> ProcessState:
        return next(p for p in self.processes if p.kind == "service" and p.service == name)

    def database(self, name: str) -> ProcessState:
        return next(p for p in self.processes if p.kind == "database" and p.service == name)

    @property
    def all_healthy(self) -> bool:
        return all(p.state == "running" for p in self.processes)


def read_state(layout: Layout) -> ServeState | None:
    """The state file, or None when there is none (or it is not one: a serve that died while writing it)."""
    try:
        return ServeState.model_validate_json(layout.state.read_bytes())
    except (OSError, ValidationError):
        return None


def _write_state(layout: Layout, state: ServeState) -> None:
    """Replace the file at once: a reader sees the old state or the new one."""
    fd, tmp = tempfile.mkstemp(dir=layout.run, prefix=".serve.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(state.model_dump_json(indent=2) + "\n")
        os.replace(tmp, layout.state)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# -- the lock: one supervisor per var/ -------------------------------------------------------------------


def running_pid(layout: Layout) -> int | None:
    """The pid of the supervisor that holds the lock, or None when no serve runs on this var/."""
    try:
        fd = os.open(layout.lock, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.read(fd, 32).decode(errors="replace").strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _take_lock(layout: Layout) -> int:
    fd = os.open(layout.lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise ServeRefused(REFUSED, _already_runs(layout, running_pid(layout))) from None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    return fd


def _already_runs(layout: Layout, pid: int | None) -> str:
    state = read_state(layout)
    since = f", since {_clock(state.started_at)}" if state else ""
    return (f"werkbrug serve already runs on {layout.shown(layout.var)} (supervisor pid {pid}{since}): "
            "`werkbrug serve --status` shows it, `werkbrug stop` stops it")


# -- before anything starts ------------------------------------------------------------------------------


def check_not_running(layout: Layout) -> None:
    pid = running_pid(layout)
    if pid is not None:
        raise ServeRefused(REFUSED, _already_runs(layout, pid))
    left = leftovers(layout)
    if left:
        raise ServeRefused(REFUSED, f"processes of a serve that ended without stopping them still run (pids "
                                    f"{', '.join(str(p.pid) for p in left)}): `werkbrug stop` ends them")


def check_writable(layout: Layout) -> None:
    for directory in (layout.run, layout.log, layout.data):
        try:
            directory.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=directory):
                pass
        except OSError as exc:
            raise ServeRefused(REFUSED, f"{layout.shown(layout.var)} is not writable ({type(exc).__name__} at "
                                        f"{layout.shown(directory)}): serve keeps its data, logs and state there; "
                                        "give another with --var or WERKBRUG_VAR_DIR") from None


def check_ports(ports: Ports) -> None:
    for port, what in ports.every():
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                raise ServeRefused(REFUSED, f"port {port} ({what}) is in use by another program: move the ports "
                                            "with --db-port / --http-port") from None


def _where(settings: Settings) -> str:
    url = urlsplit(settings.amqp_url)
    return f"{url.hostname or '?'}:{url.port or 5672}, namespace {settings.namespace}"


def _broker_refusal(exc: BaseException, settings: Settings, user: str) -> ServeRefused:
    """A failed connection as the command line explains it (cli/main.py `explain`), with what serve needs."""
    from aiormq import exceptions as amqp

    where = _where(settings)
    declare = f"`make broker`, or `WERKBRUG_NAMESPACE={settings.namespace} python -m infra.declare`"
    match exc:
        case amqp.ProbableAuthenticationError() | amqp.AuthenticationError():
            return ServeRefused(NOT_ADMITTED, f"the broker refused the login of {user} ({where}): wrong user or "
                                              "password (AMQP_URL, WERKBRUG_AMQP_PASSWORDS)")
        case amqp.ConnectionNotAllowed() | amqp.InvalidFrameError() if _vhost_refused(exc):
            return ServeRefused(NOT_ADMITTED, f"the broker refused the virtual host {settings.amqp_vhost} to {user} "
                                              f"({where}): the namespace is not declared, or {user} may not use it; "
                                              f"declare it with {declare}")
        case _:
            return ServeRefused(NO_ANSWER, f"the broker is not reachable ({where}); is RabbitMQ running? "
                                           "(`make broker` starts it)")


def _vhost_refused(exc: BaseException) -> bool:
    """RabbitMQ answers the opening of a vhost that does not exist, or that the user may not use, by closing the
    connection (530 NOT_ALLOWED); aiormq reports that as an unexpected frame. (The text is read, never shown.)"""
    from aiormq import exceptions as amqp

    return isinstance(exc, amqp.ConnectionNotAllowed) or ("OpenOk" in str(exc) and "Connection.Close" in str(exc))


async def check_broker(settings: Settings) -> None:
    """The broker answers, the namespace's exchanges exist, and every party's user may log in to its vhost."""
    import aio_pika
    from aiormq import exceptions as amqp

    parties = sorted({make().party.value for make in DEFINITIONS.values()})
    for user in (None, *parties):
        shown = user or urlsplit(settings.amqp_url).username or "AMQP_URL's user"
        try:
            connection = await aio_pika.connect(settings.broker_url(user), timeout=5)
        except (amqp.AMQPError, OSError, TimeoutError) as exc:
            raise _broker_refusal(exc, settings, shown) from None
        async with connection:
            if user is not None:
                continue
            for exchange in Topology(settings.namespace, settings.delivery_limit).exchanges():
                channel = await connection.channel()
                try:
                    await channel.get_exchange(exchange.name, ensure=True)  # a passive declare
                except amqp.ChannelNotFoundEntity:
                    raise ServeRefused(NO_ANSWER, f"the namespace {settings.namespace} is not declared on the "
                                                  f"broker (no exchange {exchange.name}): `make broker`, or "
                                                  f"`WERKBRUG_NAMESPACE={settings.namespace} python -m "
                                                  "infra.declare`") from None
                with contextlib.suppress(Exception):
                    await channel.close()


def staff_warnings(settings: Settings) -> list[str]:
    """What is wrong with the staff registers the services will read (not a refusal: a party's register may
    be filled later, the services read it again when it changes)."""
    lines = []
    for party in sorted({make().party for make in DEFINITIONS.values()}, key=lambda p: p.value):
        path = register_path(settings, party)
        try:
            register = read_register(path, party)
        except StaffRegisterInvalid:
            lines.append(f"the staff register of {party.value} ({path}) is not valid: its services refuse every "
                         "command by a person until it is fixed (`werkbrug staff list`)")
            continue
        if not register.staff:
            lines.append(f"no staff register for {party.value} at {path}: its services refuse every command by a "
                         f"person until `werkbrug staff add STAFF --party {party.value} --role ROLE` adds someone")
    return lines


def preflight(config: Config) -> None:
    """Every refusal, before anything starts (ServeRefused)."""
    check_not_running(config.layout)
    check_writable(config.layout)
    check_ports(config.ports)
    asyncio.run(check_broker(config.settings))


# -- what runs -------------------------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


def _clock(moment: datetime) -> str:
    """A moment as the operator reads it: local time, to the second."""
    return moment.astimezone().strftime("%H:%M:%S")


def _exit_words(code: int | None) -> str:
    if code is None:
        return "did not start"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


@dataclass
class Unit:
    """One supervised process: a service or its database server."""

    kind: Literal["service", "database"]
    service: str
    party: str
    port: int
    log_path: Path
    process: ServiceProcess | DatabaseServer
    state: str = "starting"
    since: datetime = field(default_factory=_now)
    health: str = "-"
    restarts: int = 0
    failures: int = 0  # deaths since it was last steady
    note: str = ""
    restart_at: float | None = None  # monotonic time of the next start
    healthy_since: float | None = None
    busy: bool = False  # being started or stopped right now

    @property
    def name(self) -> str:
        return self.service if self.kind == "service" else f"{self.service} database"

    @property
    def pid(self) -> int | None:
        proc = self.process.proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def set(self, state: str, note: str | None = None) -> None:
        if state != self.state:
            self.state, self.since = state, _now()
        if note is not None:
            self.note = note

    def start(self) -> None:
        """Start the process (a database server: and wait until it listens). Blocking."""
        self.process.start()

    def look(self) -> bool:
        """Is it healthy: a service answers its health route, a database server accepts a connection. Blocking."""
        if self.kind == "service":
            return self.process.healthy()
        if not self.process.running:
            return False
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
            return True
        return False

    def as_state(self) -> ProcessState:
        return ProcessState(name=self.name, kind=self.kind, service=self.service, party=self.party, pid=self.pid,
                            port=self.port, state=self.state, since=self.since, health=self.health,
                            restarts=self.restarts, note=self.note, log=str(self.log_path))


class Supervisor:
    """Starts the database servers, then the services; restarts what dies (backoff BACKOFF, reset after STEADY
    seconds healthy); stops the services first (SIGTERM), then the database servers."""

    def __init__(self, config: Config, detached: bool, say: Callable[[str], None]) -> None:
        self.config, self.detached, self.say = config, detached, say
        layout, ports, settings = config.layout, config.ports, config.settings
        self.started_at = _now()
        self.stopping = False
        self.units: list[Unit] = []
        for name in SERVICES:
            party = DEFINITIONS[name]().party.value
            db = DatabaseServer(name, layout.db_path(name), layout.db_log(name), port=ports.db_port(name),
                                own_session=True)
            self.units.append(Unit("database", name, party, db.port, db.log_path, db))
        for name in SERVICES:
            party = DEFINITIONS[name]().party.value
            db_url = next(u.process.url for u in self.units if u.service == name)
            service = ServiceProcess(name, settings, db_url, layout.log, http_port=ports.http_port(name),
                                     own_session=True)
            self.units.append(Unit("service", name, party, service.http_port, service.log_path, service))
        self._written: str | None = None
        self._starting: set[asyncio.Task] = set()

    # the state file

    def state(self) -> ServeState:
        return ServeState(supervisor_pid=os.getpid(), started_at=self.started_at, detached=self.detached,
                          namespace=self.config.settings.namespace, broker=_where(self.config.settings).split(",")[0],
                          var=str(self.config.layout.var), staff_dir=self.config.settings.staff_dir,
                          processes=[u.as_state() for u in self.units])

    def write_state(self) -> None:
        state = self.state()
        text = state.model_dump_json()
        if text != self._written:
            _write_state(self.config.layout, state)
            self._written = text

    # starting and restarting

    async def _start(self, unit: Unit) -> None:
        unit.busy = True
        unit.set("starting", "")
        unit.health, unit.healthy_since, unit.restart_at = "-", None, None
        try:
            await asyncio.to_thread(unit.start)
        except (RuntimeError, OSError) as exc:  # a database server that exited or did not listen in time
            self._died(unit, f"did not start ({type(exc).__name__})")
        finally:
            unit.busy = False
        self.write_state()

    def _died(self, unit: Unit, how: str) -> None:
        delay = BACKOFF[min(unit.failures, len(BACKOFF) - 1)]
        unit.failures += 1
        unit.restart_at = time.monotonic() + delay
        unit.health, unit.healthy_since = "-", None
        unit.set("restarting", f"{how}; restart {unit.restarts + 1} in {delay:.0f} s")
        self.say(f"{unit.name} {how}; restart {unit.restarts + 1} in {delay:.0f} s "
                 f"(log: {self.config.layout.shown(unit.log_path)})")

    async def start_all(self) -> None:
        self.write_state()
        await asyncio.gather(*(self._start(u) for u in self.units if u.kind == "database"))
        await asyncio.gather(*(self._start(u) for u in self.units if u.kind == "service"))

    async def tick(self) -> None:
        """One look at every process: restart what is due, notice what died, ask the rest how they are."""
        now = time.monotonic()
        due, looked = [], []
        for unit in self.units:
            if unit.busy:
                continue
            if unit.state == "restarting":
                if unit.restart_at is not None and now >= unit.restart_at:
                    unit.restarts += 1
                    self.say(f"{unit.name}: restart {unit.restarts}")
                    due.append(unit)
            elif unit.process.proc is not None and unit.process.proc.poll() is not None:
                self._died(unit, _exit_words(unit.process.proc.returncode))
            else:
                looked.append(unit)
        for unit in due:  # a database server takes a moment to listen: started beside the looks, not in turn
            unit.busy = True
            task = asyncio.create_task(self._start(unit))
            self._starting.add(task)
            task.add_done_callback(self._starting.discard)
        answers = await asyncio.gather(*(asyncio.to_thread(u.look) for u in looked))
        for unit, healthy in zip(looked, answers, strict=True):
            if unit.busy or unit.state == "restarting" or self.stopping:
                continue
            if healthy:
                unit.health = "healthy" if unit.kind == "service" else "listening"
                if unit.state != "running":
                    how = ("answers again" if unit.state == "unhealthy" else
                           f"is up again after restart {unit.restarts}" if unit.restarts else "is up")
                    unit.set("running", "")
                    unit.healthy_since = now
                    self.say(f"{unit.name} {how} (pid {unit.pid}, port {unit.port})")
                elif unit.failures and unit.healthy_since is not None and now - unit.healthy_since >= STEADY:
                    unit.failures = 0
            else:
                unit.health = "not answering" if unit.kind == "service" else "not listening"
                if unit.state == "running":
                    unit.set("unhealthy")
                    unit.healthy_since = None
                    self.say(f"{unit.name} stopped answering (pid {unit.pid}); see "
                             f"{self.config.layout.shown(unit.log_path)}")
        self.write_state()

    async def run(self, stop: asyncio.Event, on_tick: Callable[[], None] = lambda: None) -> None:
        await self.start_all()
        on_tick()
        while not stop.is_set():
            await self.tick()
            on_tick()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), TICK)
        await self.shutdown(on_tick)

    async def shutdown(self, on_tick: Callable[[], None] = lambda: None) -> None:
        """SIGTERM the services (each finishes the message in hand, up to 30 s), then the database servers."""
        self.stopping = True
        if self._starting:  # a start under way finishes first (a database server: < 30 s)
            await asyncio.gather(*self._starting, return_exceptions=True)
        for kind in ("service", "database"):
            units = [u for u in self.units if u.kind == kind]
            self.say(f"stopping the {'services' if kind == 'service' else 'database servers'} (SIGTERM)")
            for unit in units:
                unit.set("stopping", "")
            self.write_state()
            on_tick()
            await asyncio.gather(*(asyncio.to_thread(u.process.stop) for u in units))
            for unit in units:
                code = unit.process.proc.returncode if unit.process.proc is not None else None
                unit.health = "-"
                unit.set("stopped", "" if code in (None, 0, -signal.SIGTERM) else _exit_words(code))
            if kind == "database":
                self.say("stopped; the data stays in " + self.config.layout.shown(self.config.layout.data))
            self.write_state()
            on_tick()


# -- the status, as a table ------------------------------------------------------------------------------

_STATE_STYLE = {"running": "green", "starting": "yellow", "unhealthy": "red", "restarting": "red",
                "stopping": "yellow", "stopped": "dim"}


def print_table(console: Console, state: ServeState) -> None:
    """The status table; in a file or pipe as wide as it needs (rich would cut it at 80 columns)."""
    console.print(status_table(state), width=None if console.is_terminal else 140)


def _line(console: Console, text: str) -> None:
    """One line as it is: no wrapping (a script reads it), no markup or highlighting (paths have brackets)."""
    console.print(text, soft_wrap=True, highlight=False, markup=False)


def status_table(state: ServeState) -> Table:
    table = Table(title=f"werkbrug serve · namespace {state.namespace} · broker {state.broker} · "
                        f"supervisor pid {state.supervisor_pid}", title_justify="left")
    for column in ("service", "party", "pid", "state", "since", "health", "restarts", "port", "note"):
        table.add_column(column, justify="right" if column in ("pid", "restarts", "port") else "left")
    for p in sorted(state.processes, key=lambda p: (SERVICES.index(p.service), p.kind == "database")):
        table.add_row(p.name, p.party, str(p.pid or "-"), Text(p.state, style=_STATE_STYLE.get(p.state, "")),
                      _clock(p.since), p.health, str(p.restarts), str(p.port), p.note)
    return table


def where_lines(layout: Layout, settings: Settings) -> list[str]:
    return [f"logs: {layout.shown(layout.log)}/<service>.log, <service>-db.log, serve.log · data: "
            f"{layout.shown(layout.data)}/<service>.sqlite · state: {layout.shown(layout.state)} · staff "
            f"registers: {settings.staff_dir}"]


# -- the commands ----------------------------------------------------------------------------------------


class _EventLog:
    """The supervisor's lines: appended to var/log/serve.log, kept for the live view, printed when asked."""

    def __init__(self, path: Path, echo: Callable[[str], None] | None) -> None:
        self.path, self.echo = path, echo
        self.recent: deque[str] = deque(maxlen=6)

    def __call__(self, line: str) -> None:
        stamped = f"{_now().isoformat(timespec='seconds').replace('+00:00', 'Z')} {line}"
        self.recent.append(f"{_clock(_now())} {line}")
        # Neither a full disk nor a reader gone from the pipe may stop the supervisor (nor its shutdown).
        with contextlib.suppress(OSError), open(self.path, "a", encoding="utf-8") as fh:
            fh.write(stamped + "\n")
        if self.echo is not None:
            with contextlib.suppress(OSError):
                self.echo(stamped)


def _stop_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)


async def _supervise(config: Config, detached: bool, console: Console | None) -> None:
    live = console is not None and console.is_terminal
    echo = None if detached or live else (lambda line: print(line, flush=True))
    say = _EventLog(config.layout.supervisor_log, echo)
    supervisor = Supervisor(config, detached, say)
    say(f"werkbrug serve starts (pid {os.getpid()}, namespace {config.settings.namespace}, "
        f"{'detached' if detached else 'in the foreground'})")
    for line in staff_warnings(config.settings):
        say(line)
    stop = asyncio.Event()
    _stop_signals(stop)
    try:
        if live:
            assert console is not None

            def view() -> Group:
                hint = "Ctrl-C stops the services, then the database servers"
                return Group(status_table(supervisor.state()), *[Text(line, style="dim") for line in say.recent],
                             Text(where_lines(config.layout, config.settings)[0] + f" · {hint}", style="dim"))

            with Live(view(), console=console, refresh_per_second=2, transient=False) as display:
                await supervisor.run(stop, on_tick=lambda: display.update(view()))
        else:
            await supervisor.run(stop)
    finally:
        if not supervisor.stopping:  # an unexpected failure of the supervisor itself: stop what it started
            await supervisor.shutdown()
        config.layout.state.unlink(missing_ok=True)


def serve_foreground(config: Config, console: Console) -> int:
    """Run the supervisor here until Ctrl-C (or SIGTERM/SIGHUP). Returns the exit code."""
    preflight(config)
    lock = _take_lock(config.layout)
    try:
        asyncio.run(_supervise(config, detached=False, console=console))
    finally:
        os.close(lock)
    return 0


def serve_detached(config: Config, console: Console, wait: float = START_WAIT) -> int:
    """Start the supervisor as a process of its own (its own session, out of reach of this terminal) and wait
    until every service is healthy. Returns the exit code: 0 all healthy, 3 not within `wait` seconds (it keeps
    running and trying), or the supervisor's own refusal."""
    preflight(config)
    layout = config.layout
    command = [sys.executable, "-m", "infra.serve", "--supervise", "--var", str(layout.var),
               "--db-port", str(config.ports.db), "--http-port", str(config.ports.http)]
    with open(layout.supervisor_log, "ab") as log:
        proc = subprocess.Popen(command, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    deadline = time.monotonic() + wait
    state = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:  # its own refusal (a race with another serve), or a failure: its last line
            code = proc.returncode if proc.returncode in (REFUSED, NO_ANSWER, NOT_ADMITTED) else FAILED
            raise ServeRefused(code, _last_line(layout.supervisor_log)
                               or f"the supervisor ended at once; see {layout.shown(layout.supervisor_log)}")
        state = read_state(layout)
        if state is not None and state.supervisor_pid == proc.pid and state.all_healthy:
            print_table(console, state)
            _line(console, f"werkbrug runs detached (supervisor pid {proc.pid}): `werkbrug serve --status` shows "
                           "it, `werkbrug stop` stops it")
            for line in where_lines(layout, config.settings) + staff_warnings(config.settings):
                _line(console, line)
            return 0
        time.sleep(0.25)
    if state is not None:
        print_table(console, state)
    not_yet = [p.name for p in state.processes if p.state != "running"] if state else list(SERVICES)
    raise ServeRefused(NO_ANSWER, f"started detached (supervisor pid {proc.pid}), but not healthy within {wait:.0f} "
                                  f"s: {', '.join(not_yet)}; it keeps trying (see {layout.shown(layout.log)}/), "
                                  "`werkbrug stop` stops it")


def _last_line(path: Path) -> str:
    with contextlib.suppress(OSError):
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
        return lines[-1] if lines else ""
    return ""


def show_status(layout: Layout, console: Console) -> int:
    """Print the table of a running serve: 0 all running, 3 not all, 1 none runs."""
    pid = running_pid(layout)
    state = read_state(layout)
    if pid is None or state is None:
        raise ServeRefused(NOTHING, f"werkbrug serve does not run on {layout.shown(layout.var)}")
    print_table(console, state)
    if not state.all_healthy:
        down = [p.name for p in state.processes if p.state != "running"]
        _line(console, f"not running: {', '.join(down)}")
        return NO_ANSWER
    return 0


def _own_process(pid: int, process: ProcessState) -> bool:
    """Is `pid` still the process the state file names (and not a new one under a reused pid)?"""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    if process.kind == "service":
        return f"services.{process.service}".encode() in cmdline
    return b"shared.storage.embedded" in cmdline and str(process.port).encode() in cmdline


def leftovers(layout: Layout) -> list[ProcessState]:
    """Processes a serve started that still run although its supervisor is gone (killed, or the machine's
    operator ended it by hand)."""
    if running_pid(layout) is not None:
        return []
    state = read_state(layout)
    if state is None:
        return []
    return [p for p in state.processes if p.pid is not None and _own_process(p.pid, p)]


def stop(layout: Layout, console: Console, wait: float = STOP_WAIT) -> int:
    """Stop a detached (or foreground) serve on this var/: SIGTERM its supervisor, which stops the services and
    then the database servers; wait until it is gone. Ends left-over processes of a serve that died."""
    pid = running_pid(layout)
    if pid is None:
        left = leftovers(layout)
        if not left:
            layout.state.unlink(missing_ok=True)
            raise ServeRefused(NOTHING, f"werkbrug serve does not run on {layout.shown(layout.var)}: nothing to stop")
        for kind in ("service", "database"):
            _end([p for p in left if p.kind == kind])
        layout.state.unlink(missing_ok=True)
        _line(console, f"the supervisor was gone; ended what it had left running: {', '.join(p.name for p in left)}")
        return 0
    if pid <= 0:
        raise ServeRefused(REFUSED, f"{layout.shown(layout.lock)} is held, but names no supervisor: stop it by hand")
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + wait
    while running_pid(layout) is not None:
        if time.monotonic() > deadline:
            raise ServeRefused(NO_ANSWER, f"the supervisor (pid {pid}) is still stopping after {wait:.0f} s; see "
                                          f"{layout.shown(layout.supervisor_log)}")
        time.sleep(0.2)
    _line(console, f"stopped werkbrug serve (supervisor pid {pid}): the services, then the database servers; the "
                   f"data stays in {layout.shown(layout.data)}")
    return 0


def _end(processes: list[ProcessState], wait: float = 30.0) -> None:
    for p in processes:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p.pid, signal.SIGTERM)  # type: ignore[arg-type]
    deadline = time.monotonic() + wait
    for p in processes:
        while _own_process(p.pid, p) and time.monotonic() < deadline:  # type: ignore[arg-type]
            time.sleep(0.1)
        if _own_process(p.pid, p):  # type: ignore[arg-type]
            with contextlib.suppress(ProcessLookupError):
                os.kill(p.pid, signal.SIGKILL)  # type: ignore[arg-type]


# -- `python -m infra.serve` ------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--detach", action="store_true", help="run in the background; `--stop` stops it")
    what.add_argument("--status", action="store_true", help="the status of a running serve")
    what.add_argument("--stop", action="store_true", help="stop a running serve")
    what.add_argument("--supervise", action="store_true", help=argparse.SUPPRESS)  # the detached supervisor
    parser.add_argument("--var", type=Path, help="where data, logs and state are (default var/ of the checkout)")
    parser.add_argument("--db-port", type=int, help=f"first of five database ports (default {DB_PORT})")
    parser.add_argument("--http-port", type=int, help=f"first of five health ports (default {HTTP_PORT})")
    args = parser.parse_args(argv)
    console = Console()
    try:
        config = Config.from_environment(args.var, args.db_port, args.http_port)
        if args.status:
            return show_status(config.layout, console)
        if args.stop:
            return stop(config.layout, console)
        if args.detach:
            return serve_detached(config, console)
        if args.supervise:
            check_writable(config.layout)
            lock = _take_lock(config.layout)
            try:
                asyncio.run(_supervise(config, detached=True, console=None))
            finally:
                os.close(lock)
            return 0
        return serve_foreground(config, console)
    except ServeRefused as exc:
        print(exc.line, file=sys.stderr)
        return exc.code
    except ValidationError as exc:
        print(f"bad setting: {', '.join(str(e['loc'][0]) for e in exc.errors() if e['loc'])}", file=sys.stderr)
        return REFUSED
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # what started was stopped on the way out (_supervise); one line, no traceback
        print(f"werkbrug serve failed unexpectedly ({type(exc).__name__})", file=sys.stderr)
        return FAILED


if __name__ == "__main__":
    sys.exit(main())
