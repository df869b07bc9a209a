"""A broker of several nodes (WERKBRUG_AMQP_NODES): how the setting is read and refused, the order in which a
process tries the nodes, and the choice of the next node when one goes away (shared/messaging/failover.py).
The run against a real three-node cluster is tests/integration/test_cluster.py (make cluster)."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import pytest
from aiormq import exceptions as amqp
from faststream.rabbit import RabbitBroker
from pydantic import ValidationError
from yarl import URL

from cli import main as cli
from shared.config import Settings
from shared.messaging import failover as failover_module
from shared.messaging.failover import Failover, connect_any, fail_over, failover_connection

ADMIN = "amqp://werkbrug-admin:s3cret@10.0.0.1:5672/"


def settings(**env: object) -> Settings:
    return Settings(**{"AMQP_URL": ADMIN, "WERKBRUG_NAMESPACE": "wbunit", **env})


# -- the setting -----------------------------------------------------------------------------------


def test_without_nodes_a_process_knows_only_amqp_urls_node():
    assert settings().broker_nodes == ["10.0.0.1:5672"]
    assert settings().broker_urls() == [settings().broker_url()]


def test_nodes_are_read_from_a_comma_separated_environment_variable(monkeypatch):
    monkeypatch.setenv("AMQP_URL", ADMIN)
    monkeypatch.setenv("WERKBRUG_AMQP_NODES", "10.0.0.1:5672, 10.0.0.2:5673 ,rabbit-3")
    assert Settings().broker_nodes == ["10.0.0.1:5672", "10.0.0.2:5673", "rabbit-3:5672"]


def test_amqp_urls_node_comes_first_and_the_others_follow_it_in_the_list_wrapping():
    s = settings(AMQP_URL="amqp://werkbrug-admin:s3cret@10.0.0.2:5673/",
                 WERKBRUG_AMQP_NODES="10.0.0.1:5672,10.0.0.2:5673,10.0.0.3")
    # Processes pointed at different nodes spread over the other nodes when theirs goes away.
    assert s.broker_nodes == ["10.0.0.2:5673", "10.0.0.3:5672", "10.0.0.1:5672"]


def test_amqp_urls_node_outside_the_list_is_tried_first_then_the_whole_list():
    s = settings(WERKBRUG_AMQP_NODES="10.0.0.2,10.0.0.3")
    assert s.broker_nodes == ["10.0.0.1:5672", "10.0.0.2:5672", "10.0.0.3:5672"]


def test_a_node_listed_twice_is_tried_once():
    assert settings(WERKBRUG_AMQP_NODES="10.0.0.2,10.0.0.2:5672,10.0.0.1").broker_nodes == [
        "10.0.0.1:5672", "10.0.0.2:5672"]


def test_the_default_port_follows_the_scheme_and_ipv6_hosts_keep_their_brackets():
    s = settings(AMQP_URL="amqps://werkbrug-admin:s3cret@[fd00::1]/", WERKBRUG_AMQP_NODES="[fd00::2],[fd00::3]:5999")
    assert s.broker_nodes == ["[fd00::1]:5671", "[fd00::2]:5671", "[fd00::3]:5999"]


def test_every_nodes_url_carries_the_user_password_and_vhost():
    s = settings(WERKBRUG_AMQP_NODES="10.0.0.1,10.0.0.2:5673", WERKBRUG_AMQP_PASSWORDS={"heliomare": "h-pw"})
    urls = [urlsplit(u) for u in s.broker_urls("heliomare")]
    assert [(u.username, u.password, u.path) for u in urls] == [("heliomare", "h-pw", "/wbunit")] * 2
    assert [(u.hostname, u.port) for u in urls] == [("10.0.0.1", 5672), ("10.0.0.2", 5673)]
    assert s.broker_urls("heliomare")[0] == s.broker_url("heliomare")


@pytest.mark.parametrize("nodes", [
    "10.0.0.2:notaport", "10.0.0.2:70000", "10.0.0.2:0", "amqp://10.0.0.2", "user:pw@10.0.0.2", "10.0.0.2/vhost",
    "10.0.0.2,,10.0.0.3", "fd00::2", ":5672",
])
def test_a_node_that_is_no_host_or_host_and_port_is_refused_naming_the_setting_not_the_value(nodes):
    with pytest.raises(ValidationError) as refused:
        settings(WERKBRUG_AMQP_NODES=nodes)
    code, lines = cli.explain(refused.value)
    assert code == cli.REFUSED
    assert lines == ["bad setting: WERKBRUG_AMQP_NODES (value_error)"]


@pytest.mark.parametrize("url", ["amqp://u:p@10.0.0.1:5672,10.0.0.2:5672/", "http://u:p@10.0.0.1/", "amqp:///"])
def test_an_amqp_url_with_several_hosts_or_none_is_refused(url):
    with pytest.raises(ValidationError) as refused:
        settings(AMQP_URL=url)
    assert cli.explain(refused.value) == (cli.REFUSED, ["bad setting: AMQP_URL (value_error)"])


# -- the choice of node --------------------------------------------------------------------------------


NODES = ["amqp://a:1@n1:5672/v", "amqp://a:1@n2:5672/v", "amqp://a:1@n3:5672/v"]


def test_the_node_in_use_stays_while_it_serves_and_the_next_takes_over_when_it_goes():
    nodes = Failover(NODES)
    assert nodes.current == NODES[0]
    assert nodes.failed(NODES[0]) == NODES[1]
    assert nodes.failed(NODES[1]) == NODES[2]
    assert nodes.failed(NODES[2]) == NODES[0]  # wraps: the first may be back


def test_a_failure_another_connection_already_moved_past_changes_nothing():
    nodes = Failover(NODES)
    nodes.failed(NODES[0])
    assert nodes.failed(NODES[0]) == NODES[1]  # a second connection on n1 reports it too: stays on n2


def test_a_single_node_is_tried_again_and_again():
    nodes = Failover(NODES[:1])
    assert nodes.failed(NODES[0]) == NODES[0]
    assert nodes.round() == NODES[:1]


def test_a_round_starts_at_the_node_in_use():
    nodes = Failover(NODES)
    nodes.failed(NODES[0])
    assert nodes.round() == [NODES[1], NODES[2], NODES[0]]


def test_a_broker_without_nodes_is_refused():
    with pytest.raises(ValueError, match="at least one node"):
        Failover([])


class _Connect:
    """aio_pika.connect as the nodes answer: an exception to raise, or a connection."""

    def __init__(self, answers: dict[str, object]) -> None:
        self.answers, self.asked = answers, []

    async def __call__(self, url: str, **_: object) -> object:
        self.asked.append(url)
        answer = self.answers[url]
        if isinstance(answer, BaseException):
            raise answer
        return answer


async def test_a_one_shot_connection_goes_to_the_first_node_that_answers(monkeypatch):
    connect = _Connect({NODES[0]: ConnectionRefusedError(), NODES[1]: TimeoutError(), NODES[2]: "connection"})
    monkeypatch.setattr(failover_module.aio_pika, "connect", connect)
    nodes = Failover(NODES)
    assert await connect_any(nodes) == "connection"
    assert connect.asked == NODES
    assert nodes.current == NODES[2]  # the next connection starts there


async def test_a_node_that_refuses_the_login_is_not_worked_around(monkeypatch):
    connect = _Connect({NODES[0]: amqp.AuthenticationError("no"), NODES[1]: "connection", NODES[2]: "connection"})
    monkeypatch.setattr(failover_module.aio_pika, "connect", connect)
    with pytest.raises(amqp.AuthenticationError):
        await connect_any(Failover(NODES))
    assert connect.asked == NODES[:1]  # users are cluster-wide: every node would refuse it


async def test_when_no_node_answers_the_first_nodes_error_is_raised(monkeypatch):
    connect = _Connect({NODES[0]: ConnectionRefusedError("n1"), NODES[1]: TimeoutError(),
                        NODES[2]: amqp.ProbableAuthenticationError("closed while starting")})
    monkeypatch.setattr(failover_module.aio_pika, "connect", connect)
    with pytest.raises(ConnectionRefusedError, match="n1"):
        await connect_any(Failover(NODES))
    assert connect.asked == NODES


async def test_a_robust_connection_that_loses_its_node_reconnects_to_the_next():
    nodes = Failover(NODES)
    connection = failover_connection(nodes)(URL(NODES[0]))
    assert connection.url == URL(NODES[0])
    lost = asyncio.get_running_loop().create_future()
    lost.set_exception(amqp.ConnectionClosed(320, "CONNECTION_FORCED"))
    await connection._on_connection_close(lost)
    assert (connection.url, nodes.current) == (URL(NODES[1]), NODES[1])
    failed_attempt = asyncio.get_running_loop().create_future()
    failed_attempt.set_exception(ConnectionRefusedError())
    await connection._on_connection_close(failed_attempt)
    assert connection.url == URL(NODES[2])
    await connection.close()
    assert nodes.current == NODES[2]  # closing it ourselves is no failure


def test_a_faststream_broker_connects_through_the_failover_connection():
    broker = fail_over(RabbitBroker(NODES[0]), NODES)
    connection_class = broker._connection_kwargs["connection_class"]
    assert connection_class.failover.urls == tuple(NODES)


def test_a_service_runtime_fails_over_over_the_settings_nodes():
    from services.intake.bootstrap import definition
    from shared.runtime import ServiceRuntime

    s = settings(WERKBRUG_AMQP_NODES="10.0.0.1,10.0.0.2,10.0.0.3", MONGODB_URL="mongodb://127.0.0.1:1/",
                 WERKBRUG_SPAN_FILE="")
    runtime = ServiceRuntime(definition(s), s)
    urls = runtime.broker._connection_kwargs["connection_class"].failover.urls
    assert [urlsplit(u).hostname for u in urls] == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    assert {urlsplit(u).username for u in urls} == {"werksaam"}


def test_a_message_to_a_person_names_the_nodes_and_not_the_password(monkeypatch):
    from shared import config

    assert settings().broker_shown == "10.0.0.1:5672"
    clustered = settings(WERKBRUG_AMQP_NODES="10.0.0.2,10.0.0.3")
    assert clustered.broker_shown == "10.0.0.1:5672 or 2 other nodes (WERKBRUG_AMQP_NODES)"
    monkeypatch.setattr(config, "get_settings", lambda: clustered)
    monkeypatch.setattr(cli, "get_settings", lambda: clustered)
    code, lines = cli.explain(ConnectionRefusedError())
    assert code == cli.NO_ANSWER
    assert lines == ["the broker is not reachable (10.0.0.1:5672 or 2 other nodes (WERKBRUG_AMQP_NODES), namespace "
                     "wbunit); is RabbitMQ running?"]
    assert "s3cret" not in lines[0]
