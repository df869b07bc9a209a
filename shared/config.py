"""Configuration of every werkbrug process, read from the environment (pydantic-settings).

Every value has a default that works on a developer machine with the embedded database; production
sets them explicitly (see README, "Configuration").
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Annotated
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Development keys. They make `make demo` work out of the box and MUST be replaced in production
# (WERKBRUG_PSEUDONYM_KEY / WERKBRUG_FIELD_KEY). They are 32 random-looking bytes, hex encoded.
_DEV_PSEUDONYM_KEY = "7765726b627275672d6465762d70736575646f6e796d2d6b65792d2d2d2d2d21"
_DEV_FIELD_KEY = "7765726b627275672d6465762d6669656c642d6b65792d2d2d2d2d2d2d2d2d21"
# The broker user of infra and operators (`make broker` provisions it locally, definitions.json in compose).
ADMIN_USER = "werkbrug-admin"
_ROOT = Path(__file__).resolve().parent.parent


def dev_password(user: str) -> str:
    """The PUBLIC development password of a broker user (infra/rabbitmq/rabbitmq.conf): `<user>-dev`."""
    return f"{user}-dev"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", populate_by_name=True)

    amqp_url: str = Field(
        f"amqp://{ADMIN_USER}:{dev_password(ADMIN_USER)}@127.0.0.1:5672/", validation_alias="AMQP_URL",
        description="The broker, and the user of this process. Without a vhost in the path: the namespace's vhost.",
    )
    amqp_nodes: Annotated[tuple[str, ...], NoDecode] = Field(
        (), validation_alias="WERKBRUG_AMQP_NODES",
        description="The nodes of a RabbitMQ cluster, comma-separated `host:port` (port default: AMQP_URL's). A "
                    "process connects to AMQP_URL's node first and, when that goes away, to the next one in this list "
                    "(from AMQP_URL's place in it, wrapping). Unset: AMQP_URL's node only.",
    )
    amqp_passwords: dict[str, SecretStr] = Field(
        default_factory=dict, validation_alias="WERKBRUG_AMQP_PASSWORDS",
        description="JSON object: broker password per party user, for a process that connects as a party other "
                    "than AMQP_URL's user (the demo, the tests, `werkbrug partner`). Unset: the development password.",
    )
    mongodb_url: str | None = Field(None, validation_alias="MONGODB_URL")

    namespace: str = Field(
        "werkbrug",
        validation_alias="WERKBRUG_NAMESPACE",
        description="Prefix of every exchange, queue and database name; tests use their own.",
        pattern=r"^[a-z][a-z0-9-]{1,30}$",
    )
    prefetch: int = Field(16, ge=1, le=1000, validation_alias="WERKBRUG_PREFETCH")
    max_message_bytes: int = Field(64 * 1024, ge=1024, validation_alias="WERKBRUG_MAX_MESSAGE_BYTES")
    delivery_limit: int = Field(
        5, ge=1, validation_alias="WERKBRUG_DELIVERY_LIMIT",
        description="Deliveries of one message before the broker dead-letters it (quorum x-delivery-limit).",
    )
    relay_interval: float = Field(
        1.0, gt=0, validation_alias="WERKBRUG_RELAY_INTERVAL",
        description="Outbox poll interval (s). A commit wakes its own process's relay at once; the poll is for "
                    "retries and records left by a crash, so it need not be short: each poll is a query.",
    )
    http_port: int = Field(0, ge=0, validation_alias="WERKBRUG_HTTP_PORT")
    http_host: str = Field("127.0.0.1", validation_alias="WERKBRUG_HTTP_HOST",
                           description="Bind address of health and AsyncAPI routes (0.0.0.0 in containers).")
    startup_attempts: int = Field(
        8, ge=1, le=100, validation_alias="WERKBRUG_STARTUP_ATTEMPTS",
        description="Tries to reach the database and the broker at start-up (backoff 0.5 s doubling to 10 s).",
    )
    db_timeout_ms: int = Field(10_000, ge=100, validation_alias="WERKBRUG_DB_TIMEOUT_MS",
                               description="How long the driver looks for a reachable database server.")

    staff_dir: str = Field(
        str(_ROOT / "var" / "staff"), validation_alias="WERKBRUG_STAFF_DIR",
        description="Directory of the staff registers, `<party>.json` each, kept by the party's identity "
                    "administration (`werkbrug staff`); a service reads its own party's and re-reads it on change.")

    pseudonym_key: SecretStr = Field(SecretStr(_DEV_PSEUDONYM_KEY), validation_alias="WERKBRUG_PSEUDONYM_KEY")
    field_key: SecretStr = Field(SecretStr(_DEV_FIELD_KEY), validation_alias="WERKBRUG_FIELD_KEY")

    # VAT on Heliomare's invoices (billing). Default 21 %: the general rate of the Wet op de omzetbelasting
    # 1968, art 9 lid 1 (21 % since 1 October 2012; Belastingdienst, "Btw-tarieven"). Some reintegration
    # services are exempt from VAT (Wet OB 1968 art 11, e.g. where they count as education or care, or
    # under a ruling for the provider): such a provider sets WERKBRUG_VAT_RATE=0.
    vat_rate: Decimal = Field(Decimal("0.21"), ge=0, le=1, max_digits=5, decimal_places=4,
                              validation_alias="WERKBRUG_VAT_RATE")

    subject_data_holders: str = Field(
        "werksaam:intake,heliomare:offer,heliomare:trajectory,heliomare:billing",
        validation_alias="WERKBRUG_SUBJECT_DATA_HOLDERS", pattern=r"^[a-z]+:[a-z_]+(,[a-z]+:[a-z_]+)*$",
        description="party:service of every service that may hold data on a subject (asked by subject_rights).")
    retention_interval: float = Field(
        86_400, gt=0, validation_alias="WERKBRUG_RETENTION_INTERVAL",
        description="Seconds between runs of each service's retention job (art 11.4).")
    subject_chase_interval: float = Field(
        300, gt=0, validation_alias="WERKBRUG_SUBJECT_CHASE_INTERVAL",
        description="Seconds between checks of open data-subject requests for silent services and deadlines.")
    subject_reminder_after: float = Field(
        2 * 86_400, gt=0, validation_alias="WERKBRUG_SUBJECT_REMINDER_AFTER",
        description="Seconds without an answer after which a service is asked again.")
    subject_max_reminders: int = Field(
        3, ge=0, le=50, validation_alias="WERKBRUG_SUBJECT_MAX_REMINDERS",
        description="Reminders to a silent service before the request is escalated to the privacy officer.")
    subject_escalate_days: int = Field(
        10, ge=0, le=30, validation_alias="WERKBRUG_SUBJECT_ESCALATE_DAYS",
        description="A request still open this many days before its deadline is escalated and listed at risk.")
    report_today: date | None = Field(
        None, validation_alias="WERKBRUG_REPORT_TODAY",
        description="The day the trajectory service takes as today when it decides whether a year has closed and "
                    "may be published (art 6.2). Unset (production): the system clock. Set by the demo and the "
                    "tests, whose synthetic years have not ended yet.")

    otlp_endpoint: str | None = Field(None, validation_alias="OTEL_EXPORTER_OTLP_ENDPOINT")
    span_file: str | None = Field(
        None, validation_alias="WERKBRUG_SPAN_FILE",
        description="Append finished spans as JSON lines to this file (used by `make demo`).",
    )

    @field_validator("amqp_nodes", mode="before")
    @classmethod
    def _nodes(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",")] if value.strip() else []
        if not isinstance(value, list | tuple):
            return value
        return tuple(_node(str(entry)) for entry in value)

    @field_validator("amqp_url")
    @classmethod
    def _amqp_url(cls, value: str) -> str:
        url = urlsplit(value)
        if url.scheme not in ("amqp", "amqps") or not url.hostname:
            raise ValueError("AMQP_URL must be amqp://user:password@host[:port][/vhost] (or amqps://)")
        try:
            url.port  # noqa: B018 (a port that is no number raises here)
        except ValueError:
            raise ValueError("AMQP_URL has a port that is no number from 1 to 65535 (one host only: list the "
                             "cluster's other nodes in WERKBRUG_AMQP_NODES)") from None
        return value

    @property
    def broker_nodes(self) -> list[str]:
        """`host:port` of every broker node in the order a process tries them: AMQP_URL's first, then those after
        it in WERKBRUG_AMQP_NODES (wrapping), or the whole list when AMQP_URL's node is not in it."""
        url = urlsplit(self.amqp_url)
        first = _node(url.netloc.rpartition("@")[2], default_port=_default_port(url.scheme))
        nodes = [_node(n, default_port=_default_port(url.scheme)) for n in self.amqp_nodes]
        if first in nodes:
            at = nodes.index(first)
            nodes = nodes[at:] + nodes[:at]
        return list(dict.fromkeys([first, *nodes]))

    @property
    def broker_shown(self) -> str:
        """The broker as a message to a person names it (never its credentials)."""
        nodes = self.broker_nodes
        others = len(nodes) - 1
        if not others:
            return nodes[0]
        return f"{nodes[0]} or {others} other node{'s' if others > 1 else ''} (WERKBRUG_AMQP_NODES)"

    def broker_urls(self, user: str | None = None) -> list[str]:
        """broker_url(user) on every node, in the order of broker_nodes."""
        url = urlsplit(self.broker_url(user))
        userinfo = url.netloc.rpartition("@")[0]
        return [urlunsplit((url.scheme, f"{userinfo}@{node}", url.path, url.query, "")) for node in self.broker_nodes]

    @property
    def amqp_vhost(self) -> str:
        """The vhost of AMQP_URL's path; without one, the namespace's own vhost (one per namespace)."""
        path = urlsplit(self.amqp_url).path
        return unquote(path[1:]) if len(path) > 1 else self.namespace

    def broker_url(self, user: str | None = None) -> str:
        """AMQP_URL on the namespace's vhost, as AMQP_URL's own user, or as `user` (a party's broker user:
        its password from WERKBRUG_AMQP_PASSWORDS, else AMQP_URL's when that is the same user, else the
        development password)."""
        url = urlsplit(self.amqp_url)
        if user is None or user == url.username:
            user, password = url.username or "", unquote(url.password or "")
        else:
            password = dev_password(user)
        if user in self.amqp_passwords:
            password = self.amqp_passwords[user].get_secret_value()
        host = url.hostname or "127.0.0.1"
        netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}" + (f":{url.port}" if url.port else "")
        return urlunsplit((url.scheme, netloc, "/" + quote(self.amqp_vhost, safe=""), url.query, ""))

    def database_name(self, service: str) -> str:
        return f"{self.namespace}-{service}".replace("-", "_")


def _default_port(scheme: str) -> int:
    return 5671 if scheme == "amqps" else 5672


def _node(entry: str, default_port: int | None = None) -> str:
    """One broker node as `host:port` (an IPv6 host in brackets); ValueError when it is not one."""
    entry = entry.strip()
    if not entry or any(c in entry for c in "/@?#, ") or (entry.count(":") > 1 and not entry.startswith("[")):
        raise ValueError("a broker node is host or host:port (IPv6: [address]:port), separated by commas")
    probe = urlsplit(f"amqp://{entry}")
    try:
        port = probe.port
    except ValueError:
        raise ValueError("a broker node's port is a number from 1 to 65535") from None
    if not probe.hostname or port == 0:
        raise ValueError("a broker node is host or host:port (IPv6: [address]:port), separated by commas")
    host = f"[{probe.hostname}]" if ":" in probe.hostname else probe.hostname
    if port is None and default_port is None:
        return host
    return f"{host}:{port or default_port}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
