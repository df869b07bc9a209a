"""A private RabbitMQ node of its own, for runs that stop and start the broker (the chaos run).

The shared broker on 5672 serves everybody's test runs, so it is never stopped. This starts a second
node from the same installation with its own name, ports, data and log directories, Erlang cookie and
no plugins, under a directory of the caller's (e.g. var/chaos/rabbitmq), and stops and starts its
application with `rabbitmqctl -n <node> stop_app / start_app`.

    python -m dev.rabbitmq_node start [--base var/chaos/rabbitmq]   # prints the AMQP URL
    python -m dev.rabbitmq_node stop_app | start_app | stop
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from infra.processes import ROOT
from shared.storage.embedded import free_port

NODE = "werkbrug-chaos@localhost"
# Debian's /usr/sbin wrappers switch to the rabbitmq user when run as root, which would give the node
# that user's cookie and home; the scripts they wrap run as whoever calls them.
_BIN = Path("/usr/lib/rabbitmq/bin")


def _tool(name: str) -> str:
    if (_BIN / name).exists():
        return str(_BIN / name)
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")
    if not found:
        raise RuntimeError(f"{name} not found: install the Debian package rabbitmq-server")
    return found


class RabbitNode:
    """One RabbitMQ node, private to the caller: its own ports and directories under `base`."""

    def __init__(self, base: Path, node: str = NODE, port: int | None = None) -> None:
        self.base, self.node = base, node
        self.ports_file = base / "ports"
        if port is None and self.ports_file.exists():  # the same node again: same ports
            port, dist = (int(p) for p in self.ports_file.read_text().split())
        else:
            port, dist = port or free_port(), free_port()
        self.port, self.dist_port = port, dist
        self.proc: subprocess.Popen | None = None

    @property
    def amqp_url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def env(self) -> dict[str, str]:
        b = self.base
        return {
            **os.environ,
            "HOME": str(b / "home"),  # its own .erlang.cookie, shared by the server and rabbitmqctl below
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(b / "mnesia"),
            "RABBITMQ_LOG_BASE": str(b / "log"),
            "RABBITMQ_PID_FILE": str(b / "node.pid"),
            "RABBITMQ_CONFIG_FILE": str(b / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(b / "advanced.config"),
            "RABBITMQ_CONF_ENV_FILE": str(b / "rabbitmq-env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(b / "enabled_plugins"),  # none: no management port to clash
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }

    def _write_files(self) -> None:
        for d in ("home", "mnesia", "log"):
            (self.base / d).mkdir(parents=True, exist_ok=True)
        self.ports_file.write_text(f"{self.port} {self.dist_port}\n")
        (self.base / "rabbitmq.conf").write_text(
            "# a private node for the chaos run (dev/rabbitmq_node.py)\n"
            "loopback_users.guest = true\n"
            "disk_free_limit.absolute = 50MB\n"
            "log.file.level = info\n"
        )
        (self.base / "advanced.config").write_text("[].\n")
        (self.base / "rabbitmq-env.conf").write_text("")
        (self.base / "enabled_plugins").write_text("[].\n")

    def ctl(self, *args: str, timeout: float = 120) -> str:
        done = subprocess.run([_tool("rabbitmqctl"), "-n", self.node, *args], env=self.env(), capture_output=True,
                              text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed ({done.returncode}): "
                               f"{(done.stderr or done.stdout).strip()[-400:]}")
        return done.stdout

    def start(self, within: float = 120) -> None:
        self._write_files()
        with open(self.base / "log" / "server.out", "ab") as out:
            self.proc = subprocess.Popen([_tool("rabbitmq-server")], env=self.env(), stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + within
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"RabbitMQ node {self.node} exited ({self.proc.returncode}); see {self.base}/log")
            try:
                self.ctl("await_startup", "--timeout", "10", timeout=30)
                return
            except (RuntimeError, subprocess.TimeoutExpired):
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)

    def stop_app(self) -> None:
        self.ctl("stop_app")

    def start_app(self) -> None:
        self.ctl("start_app")
        self.ctl("await_startup", "--timeout", "60")

    def stop(self) -> None:
        """Stop the whole node (and its process group, should it not stop)."""
        try:
            self.ctl("stop", timeout=60)
        except (RuntimeError, subprocess.TimeoutExpired):
            pass
        if self.proc is not None:
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("start", "stop_app", "start_app", "stop"))
    parser.add_argument("--base", type=Path, default=ROOT / "var" / "chaos" / "rabbitmq")
    args = parser.parse_args()
    node = RabbitNode(args.base.resolve())
    if args.action == "start":
        node.start()
        print(node.amqp_url)
    else:
        getattr(node, args.action)()


if __name__ == "__main__":
    main()
