"""The embedded MongoDB-wire-compatible server for tests and `make demo` (mongoeco).

Used only when MONGODB_URL is unset. It runs as its own process and speaks the real wire protocol,
so services use the same PyMongo code as against a real MongoDB. It is for correctness, not volume.
The memory engine (default) loses everything when the process ends; the SQLite engine keeps committed
writes in a file (WAL), so a server killed with SIGKILL and started again on the same file has them
(the chaos run kills and restarts its database servers this way).

    python -m shared.storage.embedded --port 27027                                   # memory, until killed
    python -m shared.storage.embedded --port 27027 --engine sqlite --path var/x.db   # persistent
    python -m shared.storage.embedded --port 27027 --load var/dump                 # start with a dump loaded

A dump (`--load DIR`) is `DIR/<database>/<collection>.bson`, documents as concatenated BSON (the layout
of mongodump). It is inserted in-process before the server listens: over the wire, mongoeco inserts a
few hundred documents a second and slows as a collection grows; in-process, over a thousand (the
benchmark seeds 10,000 data subjects this way, see bench/seed.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _engine(engine: str, path: str | None):
    if engine == "memory":
        return None  # mongoeco's default
    if not path:
        raise SystemExit("the sqlite engine needs --path")
    from mongoeco.engines.sqlite import SQLiteEngine

    return SQLiteEngine(path=path)


def _server_class():
    from mongoeco.wire import AsyncMongoEcoProxyServer
    from mongoeco.wire.sessions import wire_session_key

    class Server(AsyncMongoEcoProxyServer):
        """mongoeco's wire server, plus: the open transaction of a client whose connection closed is aborted.

        mongoeco never times a transaction out, and its SQLite engine refuses every other session's
        operation while one is open, so a service killed inside a transaction would block its database until
        the server restarts. (Real MongoDB aborts it after `transactionLifetimeLimitSeconds` and blocks no
        one meanwhile.) A session's commands arrive on the connection its client is using; when the last
        connection a session used closes, the client is gone."""

        def __init__(self, **kwargs) -> None:
            super().__init__(**kwargs)
            self._session_connection: dict[object, asyncio.Task | None] = {}
            store, resolve = self._session_store, self._session_store.resolve_for_command

            def resolve_and_note(client, body, *, capability):
                session = resolve(client, body, capability=capability)
                if session is not None:
                    self._session_connection[wire_session_key(body["lsid"])] = asyncio.current_task()
                return session

            store.resolve_for_command = resolve_and_note

        def _connection_done(self, handler: asyncio.Task) -> None:
            gone = [key for key, task in self._session_connection.items() if task is handler]
            for key in gone:
                del self._session_connection[key]
                context = self._session_store._sessions.get(key)
                if context is not None and context.session.active and context.session.transaction_active:
                    with contextlib.suppress(Exception):
                        context.session.abort_transaction()
                        print("aborted the open transaction of a client that disconnected", flush=True)
            super()._connection_done(handler)

    return Server


def _read_dump(directory: str) -> list[tuple[str, str, list[dict]]]:
    """A dump's documents: (database, collection, documents) per `<database>/<collection>.bson`."""
    from pathlib import Path

    from bson import decode_all
    from bson.codec_options import CodecOptions

    options = CodecOptions(tz_aware=True)
    return [(file.parent.name, file.stem, decode_all(file.read_bytes(), options))
            for file in sorted(Path(directory).glob("*/*.bson"))]


async def _load(client, directory: str) -> int:
    """Insert a dump's documents through an in-process client of the engine; returns how many."""
    count = 0
    for database, name, documents in await asyncio.to_thread(_read_dump, directory):
        for i in range(0, len(documents), 5000):
            await client[database][name].insert_many(documents[i:i + 5000], ordered=False)
        count += len(documents)
    return count


async def _serve(port: int, engine: str = "memory", path: str | None = None, load: str | None = None) -> None:
    from mongoeco import AsyncMongoClient
    from mongoeco.engines.memory import MemoryEngine

    # The server's client of the engine, opened first (connecting the engine) so a dump can be loaded through it.
    async with AsyncMongoClient(_engine(engine, path) or MemoryEngine()) as client:
        if load:
            started = time.perf_counter()
            count = await _load(client, load)
            print(f"loaded {count} documents from {load} in {time.perf_counter() - started:.1f}s", flush=True)
        server = _server_class()(host="127.0.0.1", port=port, client=client)
        address = await server.start()
        print(f"embedded mongodb listening on {address.host}:{address.port}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await server.close()

def url_for(port: int) -> str:
    return f"mongodb://127.0.0.1:{port}/?directConnection=true"


def _wait_until_listening(port: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"embedded MongoDB exited with code {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"embedded MongoDB did not listen on port {port} within {timeout:.0f}s")


@contextlib.contextmanager
def embedded_mongodb(port: int | None = None, log_path: str | None = None, load: str | None = None,
                     timeout: float = 30.0) -> Iterator[str]:
    """Start the embedded server (memory engine) as a child process, with a dump loaded if given; yields its
    URL; stops it on exit."""
    port = port or free_port()
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL
    proc = start_embedded(port, stdout=log, load=load, timeout=timeout)
    try:
        yield url_for(port)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        if log is not subprocess.DEVNULL:
            log.close()


def start_embedded(port: int, *, engine: str = "memory", path: str | None = None, stdout=None,
                   wait: bool = True, load: str | None = None, timeout: float = 30.0,
                   new_session: bool = False) -> subprocess.Popen:
    """Start an embedded server process on `port` (and wait until it listens); the caller stops it.
    `new_session`: in a session of its own, out of reach of the terminal's Ctrl-C."""
    command = [sys.executable, "-m", "shared.storage.embedded", "--port", str(port), "--engine", engine]
    if path:
        command += ["--path", path]
    if load:
        command += ["--load", load]
    proc = subprocess.Popen(command, stdout=stdout or subprocess.DEVNULL, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, env=os.environ.copy(), start_new_session=new_session)
    if wait:
        try:
            _wait_until_listening(port, proc, timeout)
        except RuntimeError:
            proc.kill()
            raise
    return proc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=27027)
    parser.add_argument("--engine", choices=("memory", "sqlite"), default="memory")
    parser.add_argument("--path", help="database file of the sqlite engine")
    parser.add_argument("--load", help="a dump directory (<database>/<collection>.bson) to insert before listening")
    args = parser.parse_args()
    asyncio.run(_serve(args.port, args.engine, args.path, args.load))


if __name__ == "__main__":
    main()
