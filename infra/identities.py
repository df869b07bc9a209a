"""Broker identities and least privilege: one RabbitMQ user per party, permissions derived from the code.

- one vhost per namespace (`werkbrug`; tests use their own), so parallel runs never share a permission
  and a run's teardown removes everything it created by deleting its vhost;
- one user per founding party (`werksaam`, `heliomare`), global to the broker like any RabbitMQ user, with
  permissions on each namespace's vhost (the same party in every namespace); one user per partner *and
  namespace*, `<namespace>.<partner>` (`partner_user`): a partner name is given by one namespace's register,
  so the same name admitted in two namespaces of one broker is two users, two passwords, and removing one
  touches the other in nothing; `werkbrug-admin` (tags administrator, impersonator) for infra and operators;
- vhost permissions: a founding party configures only the queues of its own services, writes and reads
  those and the exchanges (`<ns>.<service>.…`); a partner only its own queues (`<ns>.partner.<name>.…`) and may
  read (bind to) the events exchange; nobody but the admin may touch another party's queues;
- the exchanges are the admin's (declared with the vhost): parties publish to and bind to them, but may not
  configure (delete, redeclare) them;
- topic permissions on `<ns>.commands`: a party may publish and bind only its own services' command keys
  (`<party>.<service>`), a partner none;
- topic permissions on `<ns>.events` (routing keys `<sender>.<recipient>.<type>.v<N>`): a party may publish only
  the routing keys its services send (its events to the parties it may address them to, and its retours,
  `^<party>\\.…$`, enumerated), and bind only the keys its services consume that are addressed to it or to all
  (or sent by its own services); a partner may bind exactly the topics its addendum grants, which are all
  broadcasts (`<sender>.all.…`), and publish nothing (agreement art 11.3).
- topic permissions on `<ns>.dlx` (a topic exchange only the broker writes to, dead-lettering): a party
  publishes nothing (`(?!)`, not even the empty key) and binds only its own services' names (their
  parking queues); a partner neither. (The vhost write permission on the dlx stays: RabbitMQ requires
  it of whoever declares a queue with that x-dead-letter-exchange; the broker's own dead-lettering is not
  subject to permissions.)
- publishers set the AMQP `user_id`, which RabbitMQ checks against the connection's user; consumers
  check it is the envelope's source (the pipeline's `sender_not_authenticated`).

The same definitions are imported into the local broker with `rabbitmqctl import_definitions` (by `make
broker`, the tests and `werkbrug partner`) and written to `infra/rabbitmq/definitions.json` for docker
compose (`python -m infra.identities --compose`).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.services import DEFINITIONS
from shared.config import ADMIN_USER, Settings, dev_password, get_settings
from shared.contracts.envelope import lookup
from shared.contracts.events import PartyJoined, PartyLeft
from shared.contracts.parties import load_parties
from shared.messaging.topology import Topology, command_key, service_bindings, service_publications

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_DEFINITIONS = ROOT / "infra" / "rabbitmq" / "definitions.json"
# Sent by `werkbrug partner` as WerkSaam (the cooperation's coordinator), not by a service.
ANNOUNCEMENTS = tuple(key for m in (PartyJoined, PartyLeft) for key in lookup(m.event_type, m.version).routing_keys())
NOTHING = "^$"  # a topic regex no routing key matches (a vhost permission of "" grants nothing)
NEVER = "(?!)"  # a regex nothing matches, not even the empty routing key


class BrokerAdminError(RuntimeError):
    """rabbitmqctl is missing or refused: the broker's users and permissions could not be set."""


@dataclass(frozen=True)
class Grant:
    """What one broker user may do in one vhost."""

    user: str
    configure: str
    write: str
    read: str
    topic_write: str | None = None  # None: no topic permission entry (unrestricted; the admin only)
    topic_read: str | None = None
    dlx_read: str = NEVER  # the parking keys (service names) it may bind on the dlx; it never writes there
    # Topic permission on the commands exchange (publish and bind alike): the command keys of the party's
    # own services, `<party>.<service>`; a partner none.
    commands: str | None = None
    # Topic permission on the replies exchange (publish and bind alike): `<party>.<32 hex>` of its own party.
    replies: str | None = None


def _escaped(name: str) -> str:
    return "".join("\\" + c if c in r".*+?()[]{}|^$\#" else c for c in name)


def exactly(names: Iterable[str]) -> str:
    """A regex matching exactly these names (none: nothing)."""
    names = sorted(set(names))
    return f"^({'|'.join(_escaped(n) for n in names)})$" if names else NOTHING


def partner_queue_prefix(namespace: str, partner: str) -> str:
    return f"{namespace}.partner.{partner}."


def founding_grant(namespace: str, party: str) -> Grant:
    definitions = [make(None) for make in DEFINITIONS.values()]
    mine = [d for d in definitions if d.party == party]
    ns, services = _escaped(namespace), "|".join(_escaped(d.name) for d in mine)
    queues = rf"{ns}\.({services})\..+"
    # The exchanges are the operator's: a party may publish to them (write; the DLX because RabbitMQ wants
    # write on the dead-letter exchange from whoever declares a queue that dead-letters to it) and bind its
    # queues to them (read), but not configure them: it can neither delete nor redeclare them.
    exchanges = rf"{ns}\.(events|commands|dlx|replies)"
    # The command line's own answer queues (exclusive, one per connection): `<ns>.reply.<party>.<32 hex>`.
    replies = rf"{ns}\.reply\.{_escaped(party)}\.[0-9a-f]{{32}}"
    return Grant(
        user=party,
        configure=f"^({queues}|{replies})$",
        # No amq.default: the default exchange reaches every queue of the vhost by name. Answers to commands
        # go over the replies exchange, to the party's own clients only.
        write=rf"^({exchanges}|{queues}|{replies})$",
        read=rf"^({exchanges}|{queues}|{replies})$",
        topic_write=exactly([*(key for d in mine for key in service_publications(d)),
                             *(key for key in ANNOUNCEMENTS if key.startswith(f"{party}."))]),
        topic_read=exactly(key for d in mine for key, _ in service_bindings(d)),
        dlx_read=exactly(d.name for d in mine),
        commands=exactly(command_key(party, d.name) for d in mine),
        replies=rf"^{_escaped(party)}\.[0-9a-f]{{32}}$",
    )


def partner_user(namespace: str, partner: str) -> str:
    """A partner's broker user: its name within the namespace. Unambiguous, as neither a namespace nor a partner
    name holds a dot, and never a founding party's or the admin's (neither holds one either)."""
    return f"{namespace}.{partner}"


def partner_grant(namespace: str, partner: str, topics: Iterable[str]) -> Grant:
    ns, prefix = _escaped(namespace), _escaped(partner_queue_prefix(namespace, partner))
    return Grant(
        user=partner_user(namespace, partner),
        configure=f"^{prefix}.+$",
        write=f"^{prefix}.+$",
        read=rf"^({ns}\.events|{prefix}.+)$",
        topic_write=NOTHING,
        topic_read=exactly(topics),
        commands=NOTHING,
    )


def admin_grant() -> Grant:
    return Grant(user=ADMIN_USER, configure=".*", write=".*", read=".*")


def password_hash(password: str, salt: bytes | None = None) -> str:
    """RabbitMQ's rabbit_password_hashing_sha256: base64(salt[4] + sha256(salt + password))."""
    salt = os.urandom(4) if salt is None else salt
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def definitions(namespace: str, passwords: dict[str, str], partner_grants: Iterable[Grant] = (),
                exchanges: bool = True) -> dict[str, Any]:
    """RabbitMQ definitions: the vhost, every user with its password, permissions and topic permissions, and
    the namespace's exchanges (declared by the admin; an import never changes an existing exchange's type:
    `infra.declare` replaces one of the wrong type)."""
    grants = [admin_grant(), *(founding_grant(namespace, p) for p in load_parties().service_parties()), *partner_grants]
    users = [{"name": g.user, "password_hash": password_hash(passwords[g.user]),
              "hashing_algorithm": "rabbit_password_hashing_sha256",
              "tags": ["administrator", "impersonator"] if g.user == ADMIN_USER else [], "limits": {}}
             for g in grants]
    topology = Topology(namespace)
    out: dict[str, Any] = {
        "users": users,
        "vhosts": [{"name": namespace}],
        "permissions": [{"user": g.user, "vhost": namespace, "configure": g.configure, "write": g.write,
                         "read": g.read} for g in grants],
        "topic_permissions": [
            *({"user": g.user, "vhost": namespace, "exchange": topology.events.name,
               "write": g.topic_write, "read": g.topic_read} for g in grants if g.topic_write is not None),
            # Dead letters come only from the broker: no party writes to the dlx.
            *({"user": g.user, "vhost": namespace, "exchange": topology.dlx.name, "write": NEVER,
               "read": g.dlx_read} for g in grants if g.topic_write is not None),
            *({"user": g.user, "vhost": namespace, "exchange": topology.commands.name,
               "write": g.commands, "read": g.commands} for g in grants if g.commands is not None),
            *({"user": g.user, "vhost": namespace, "exchange": topology.replies.name,
               "write": g.replies or NEVER, "read": g.replies or NEVER} for g in grants if g.commands is not None),
        ],
    }
    if exchanges:
        out["exchanges"] = [
            {"name": e.name, "vhost": namespace, "type": e.type.value, "durable": True, "auto_delete": False,
             "internal": False, "arguments": {}}
            for e in topology.exchanges()
        ]
    return out


# -- the local broker, through rabbitmqctl ---------------------------------------------------------


CTL_TIMEOUT = 60  # below the tests' own timeout (120 s), so that a stuck CLI node is always ended here
# Each rabbitmqctl is an Erlang node with a port from a small range (by default 35672-35682); a CLI node that
# outlived its caller keeps one. A wider range leaves room until such nodes are gone (`su` keeps this setting).
CTL_DIST_PORTS = {"RABBITMQ_CTL_DIST_PORT_MIN": "35672", "RABBITMQ_CTL_DIST_PORT_MAX": "35772"}
CTL_LOCK = Path(tempfile.gettempdir()) / "werkbrug-rabbitmqctl.lock"


@contextlib.contextmanager
def _ctl_lock() -> Iterator[None]:
    with open(CTL_LOCK, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _rabbitmqctl(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    binary = os.environ.get("WERKBRUG_RABBITMQCTL") or shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    if not Path(binary).exists():
        raise BrokerAdminError("rabbitmqctl not found: run on the broker's machine (as root) or set "
                               "WERKBRUG_RABBITMQCTL")
    # One rabbitmqctl at a time on this machine: each is an Erlang node that takes a port of the small
    # distribution range (35672-35682), and concurrent `import_definitions` calls were seen to hang the
    # CLI nodes until the range ran out and every later call failed ("Distribution failed").
    with _ctl_lock():
        process = subprocess.Popen([binary, "-q", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   start_new_session=True, env={**os.environ, **CTL_DIST_PORTS})
        try:
            stdout, stderr = process.communicate(timeout=CTL_TIMEOUT)
        except subprocess.TimeoutExpired:
            # The CLI runs as `su rabbitmq -c ...` with an Erlang node beneath: end the whole group, or the
            # node outlives us and keeps its distribution port.
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise BrokerAdminError(f"rabbitmqctl {args[0]} did not finish within {CTL_TIMEOUT} s") from None
    result = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    if check and result.returncode != 0:
        raise BrokerAdminError(f"rabbitmqctl {args[0]} failed ({result.returncode}): {result.stderr.strip()[:300]}")
    return result


def _passwords(settings: Settings, users: Iterable[str]) -> dict[str, str]:
    """The password each user gets: the one its URL would carry (WERKBRUG_AMQP_PASSWORDS, or the dev one)."""
    from urllib.parse import unquote, urlsplit

    return {user: unquote(urlsplit(settings.broker_url(user)).password or "") for user in users}


def import_grants(settings: Settings, grants: Iterable[Grant] = (), passwords: dict[str, str] | None = None,
                  ctl=None) -> None:
    """Create or update the namespace's vhost, the admin and founding users and `grants` (partners).
    `ctl`: how to run rabbitmqctl (default: the local broker; the chaos run passes its private node's)."""
    ctl = ctl or _rabbitmqctl
    grants = list(grants)
    known = _passwords(settings, [ADMIN_USER, *load_parties().service_parties()]) | (passwords or {})
    document = definitions(settings.namespace, known, grants)
    if settings.amqp_vhost != settings.namespace:
        for entry in (*document["vhosts"], *document["permissions"], *document["topic_permissions"],
                      *document["exchanges"]):
            entry["vhost"] = settings.amqp_vhost
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(document, fh)
    try:
        os.chmod(fh.name, 0o644)  # the broker node (user rabbitmq) may read it itself
        ctl("import_definitions", fh.name)
    finally:
        os.unlink(fh.name)


def provision(settings: Settings | None = None) -> None:
    """The namespace's vhost and every founding party's user and permissions (idempotent)."""
    import_grants(settings or get_settings())


def revoke(settings: Settings, user: str, reason: str) -> None:
    """Take away everything `user` may do in the namespace's vhost, and close its connections at once
    (RabbitMQ does not re-check a permission on an open channel)."""
    vhost = settings.amqp_vhost
    _rabbitmqctl("clear_topic_permissions", "-p", vhost, user, check=False)
    _rabbitmqctl("clear_permissions", "-p", vhost, user, check=False)
    _rabbitmqctl("close_all_user_connections", user, reason[:200], check=False)
    remaining = _rabbitmqctl("list_user_permissions", user, "--formatter", "json", check=False)
    try:
        elsewhere = json.loads(remaining.stdout or "[]") if remaining.returncode == 0 else []
    except json.JSONDecodeError:
        elsewhere = []
    if not elsewhere:
        _rabbitmqctl("delete_user", user, check=False)


def user_exists(user: str) -> bool:
    """Whether the broker has this user (rabbitmqctl answers `no_such_user` otherwise)."""
    result = _rabbitmqctl("list_user_permissions", user, "--formatter", "json", check=False)
    if result.returncode == 0:
        return True
    if "no_such_user" in result.stderr:
        return False
    raise BrokerAdminError(f"rabbitmqctl list_user_permissions failed ({result.returncode}): "
                           f"{result.stderr.strip()[:300]}")


def deprovision(settings: Settings) -> None:
    """Delete the namespace's vhost (its exchanges, queues, permissions and topic permissions) and its partners'
    broker users (`<namespace>.<partner>`), which exist for this namespace only."""
    _rabbitmqctl("delete_vhost", settings.amqp_vhost, check=False)
    listed = _rabbitmqctl("list_users", "--formatter", "json", check=False)
    try:
        users = [u["user"] for u in json.loads(listed.stdout or "[]")] if listed.returncode == 0 else []
    except (json.JSONDecodeError, KeyError, TypeError):
        users = []
    for user in users:
        if user.startswith(partner_user(settings.namespace, "")):
            _rabbitmqctl("delete_user", user, check=False)


def write_compose_definitions(path: Path = COMPOSE_DEFINITIONS) -> str:
    """definitions.json for docker compose: namespace `werkbrug`, the development passwords (salts kept
    when the password still matches, so the file only changes when the definitions do)."""
    users = [ADMIN_USER, *load_parties().service_parties()]
    document = definitions("werkbrug", {u: dev_password(u) for u in users}, exchanges=True)
    old = json.loads(path.read_text()) if path.exists() else {}
    old_hashes = {u["name"]: u["password_hash"] for u in old.get("users", [])}
    for user in document["users"]:
        previous = old_hashes.get(user["name"])
        if previous and password_hash(dev_password(user["name"]), base64.b64decode(previous)[:4]) == previous:
            user["password_hash"] = previous
    document = {"rabbit_version": "3.13.7", "rabbitmq_version": "3.13.7", **document, "parameters": [],
                "global_parameters": [], "policies": [], "queues": [], "bindings": []}
    return json.dumps(document, indent=2) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--compose", action="store_true", help="write infra/rabbitmq/definitions.json")
    parser.add_argument("--check", action="store_true", help="with --compose: exit 1 when the file is stale")
    args = parser.parse_args()
    if args.compose:
        text = write_compose_definitions()
        if args.check:
            if COMPOSE_DEFINITIONS.read_text() != text:
                print("infra/rabbitmq/definitions.json is stale; run python -m infra.identities --compose",
                      file=sys.stderr)
                return 1
            return 0
        COMPOSE_DEFINITIONS.write_text(text)
        print(f"wrote {COMPOSE_DEFINITIONS.relative_to(ROOT)}")
        return 0
    settings = get_settings()
    provision(settings)
    print(f"{settings.namespace}: vhost {settings.amqp_vhost}, users {ADMIN_USER}, "
          + ", ".join(load_parties().service_parties()) + " with their permissions")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
