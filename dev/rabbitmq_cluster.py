"""A private three-node RabbitMQ cluster on this machine, for the cluster run (dev/cluster.py).

Three nodes from the same installation as dev/rabbitmq_node.py's private node, each with its own name, AMQP
and distribution ports, data and log directories, and one Erlang cookie between them. The first node starts
the cluster; the others `join_cluster` it. Quorum queues declared on it get a member on every node (the
default initial group size is the cluster's size: three here, checked by the cluster run), and
their leaders are spread over the nodes (`queue_leader_locator = balanced`). Users, vhosts, permissions and
exchanges are cluster-wide: the namespace's definitions are applied once, on any node.

    python -m dev.rabbitmq_cluster start [--base var/cluster/rabbitmq]   # prints AMQP_URL and WERKBRUG_AMQP_NODES
    python -m dev.rabbitmq_cluster stop
"""

from __future__ import annotations

import argparse
import collections
import json
import secrets
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from dev.rabbitmq_node import RabbitNode, _tool
from infra.processes import ROOT

# Leaders spread over the nodes rather than all on the node the declaring client happens to use.
CLUSTER_CONF = "queue_leader_locator = balanced\ncluster_partition_handling = pause_minority\n"


class RabbitCluster:
    """`size` private RabbitMQ nodes under `base` (node1, node2, …) joined into one cluster."""

    def __init__(self, base: Path, size: int = 3, tag: str | None = None) -> None:
        self.base = base
        tag = tag or uuid.uuid4().hex[:6]  # two runs on one machine never meet
        cookie_file = base / "cookie"
        if cookie_file.exists():
            cookie = cookie_file.read_text().strip()
        else:
            cookie = secrets.token_hex(16).upper()
            base.mkdir(parents=True, exist_ok=True)
            cookie_file.write_text(cookie)
        names_file = base / "names"
        if names_file.exists():  # the same cluster again (stop, then start): the same node names
            names = names_file.read_text().split()
        else:
            names = [f"werkbrug-cluster{i}-{tag}@localhost" for i in range(1, size + 1)]
            names_file.write_text("\n".join(names) + "\n")
        self.nodes = [RabbitNode(base / f"node{i}", node=name, cookie=cookie, conf=CLUSTER_CONF)
                      for i, name in enumerate(names, start=1)]

    # -- addresses ---------------------------------------------------------------------------------

    @property
    def hosts(self) -> str:
        """The nodes as WERKBRUG_AMQP_NODES takes them: `127.0.0.1:<port>,…`."""
        return ",".join(f"127.0.0.1:{node.port}" for node in self.nodes)

    def node_named(self, name: str) -> RabbitNode:
        return next(node for node in self.nodes if node.node == name)

    def index_of_port(self, port: int) -> int:
        return next(i for i, node in enumerate(self.nodes) if node.port == port)

    # -- life --------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start every node (at once: each takes seconds), then join the others to the first."""
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            list(pool.map(lambda node: node.start(), self.nodes))
        first = self.nodes[0]
        for node in self.nodes[1:]:
            if first.node in self.running_nodes(node):
                continue  # already one cluster (a restart of the whole cluster)
            node.ctl("stop_app")
            node.ctl("reset")
            node.ctl("join_cluster", first.node)
            node.start_app()
        self.await_all_running()

    def running_nodes(self, via: RabbitNode) -> list[str]:
        status = json.loads(via.ctl("cluster_status", "--formatter", "json"))
        return list(status.get("running_nodes", []))

    def await_all_running(self, within: float = 120) -> None:
        deadline = time.monotonic() + within
        want = {node.node for node in self.nodes}
        while True:
            try:
                if set(self.running_nodes(self.nodes[0])) >= want:
                    return
            except (RuntimeError, subprocess.TimeoutExpired):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the cluster did not come together within {within:.0f}s")
            time.sleep(1)

    def via(self, exclude: RabbitNode | None = None) -> RabbitNode:
        """A node that answers (not `exclude`), to run rabbitmqctl on."""
        for node in self.nodes:
            if node is exclude or node.proc is None or node.proc.poll() is not None:
                continue
            return node
        raise RuntimeError("no node of the cluster is running")

    def ctl(self, *args: str, timeout: float = 120) -> str:
        """rabbitmqctl on any running node (cluster-wide commands: users, vhosts, import_definitions)."""
        return self.via().ctl(*args, timeout=timeout)

    def stop_node(self, node: RabbitNode) -> None:
        """Stop one node gracefully (rabbitmqctl stop): its clients' connections are closed."""
        node.stop()

    def drain(self, node: RabbitNode) -> None:
        """Put a node in maintenance mode before stopping it, as a rolling restart should (`rabbitmq-upgrade
        drain`): it closes its clients' connections and hands the leadership of its quorum queues to others."""
        self._upgrade(node, "drain")

    def revive(self, node: RabbitNode) -> None:
        """Out of maintenance mode again (it stays in it across a restart): `rabbitmq-upgrade revive`."""
        self._upgrade(node, "revive")

    def _upgrade(self, node: RabbitNode, command: str) -> None:
        done = subprocess.run([_tool("rabbitmq-upgrade"), "-n", node.node, command], env=node.env(),
                              capture_output=True, text=True, timeout=180, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"rabbitmq-upgrade {command} on {node.node} failed: "
                               f"{(done.stdout + done.stderr).strip()[-300:]}")

    def kill_node(self, node: RabbitNode) -> None:
        """SIGKILL one node: its clients' connections break, its peers see it gone."""
        node.kill()

    def restart_node(self, node: RabbitNode, within: float = 180) -> None:
        """Start a stopped node again on its own data: it rejoins the cluster by itself."""
        node.start(within=within)
        self.await_all_running(within)

    def await_quorum_safe(self, node: RabbitNode, within: float = 180) -> None:
        """Until stopping `node` leaves every quorum queue a majority (its members on other nodes caught up):
        what an operator checks before taking the next node of a rolling restart down."""
        deadline = time.monotonic() + within
        while True:
            done = subprocess.run([_tool("rabbitmq-queues"), "-n", node.node, "check_if_node_is_quorum_critical"],
                                  env=node.env(), capture_output=True, text=True, timeout=60, check=False)
            if done.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{node.node} stays quorum-critical: {(done.stdout + done.stderr).strip()[-300:]}")
            time.sleep(1)

    def rebalance(self) -> None:
        """Spread the quorum queues' leaders over the running nodes again (after a node came back it leads
        none): `rabbitmq-queues rebalance quorum`."""
        node = self.via()
        subprocess.run([_tool("rabbitmq-queues"), "-n", node.node, "rebalance", "quorum"], env=node.env(),
                       capture_output=True, text=True, timeout=120, check=False)

    def stop(self) -> None:
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            list(pool.map(lambda node: node.stop(), self.nodes))

    # -- what the queues look like -------------------------------------------------------------------

    def queues(self, vhost: str, via: RabbitNode | None = None) -> list[dict]:
        """Every queue of `vhost`: name, type, leader, members, online members, messages."""
        node = via or self.via()
        out = node.ctl("list_queues", "-p", vhost, "name", "type", "leader", "members", "online", "messages",
                       "--formatter", "json")
        return json.loads(out or "[]")

    def leaders(self, vhost: str, via: RabbitNode | None = None) -> dict[str, str]:
        """queue name -> the node that leads it (quorum queues)."""
        return {q["name"]: q["leader"] for q in self.queues(vhost, via) if q.get("type") == "quorum"}

    def busiest_leader(self, vhost: str, traffic: dict[str, int]) -> RabbitNode:
        """The node that leads the most traffic: `traffic` counts messages per queue name so far."""
        load: collections.Counter = collections.Counter({node.node: 0 for node in self.nodes})
        for queue, leader in self.leaders(vhost).items():
            load[leader] += traffic.get(queue, 0)
        return self.node_named(load.most_common(1)[0][0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("start", "stop"))
    parser.add_argument("--base", type=Path, default=ROOT / "var" / "cluster" / "rabbitmq")
    args = parser.parse_args()
    cluster = RabbitCluster(args.base.resolve())
    if args.action == "start":
        cluster.start()
        print(f"AMQP_URL={cluster.nodes[0].amqp_url}")
        print(f"WERKBRUG_AMQP_NODES={cluster.hosts}")
    else:
        cluster.stop()


if __name__ == "__main__":
    main()
