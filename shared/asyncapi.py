"""The AsyncAPI documents werkbrug serves and publishes: FastStream's, corrected where they misstate the broker.

FastStream 0.7 generates AsyncAPI 3 documents; its `schema_version` takes any "3.x" and then uses its 3.0.0
generator. AsyncAPI 3.1.0 is a superset of 3.0.0 for everything FastStream writes (3.1.0 changes only message
examples, multi-format schemas and the server/operation binding lists), so the documents are generated as
3.1.0 directly, and the official parser (`make node-deps`, `infra/node/asyncapi-validate.mjs`) checks them.

What FastStream gets wrong for a RabbitMQ consumer, corrected in `finish`:

- the vhost in every channel binding is the broker URL's path (`/werkbrug`), a vhost that does not exist;
  it is the vhost's name (`werkbrug`);
- every message's `correlationId` points at a `correlation_id` header that no werkbrug message carries. An
  event's correlation id is its envelope's `correlation_id` (the payload), repeated in the AMQP *property*
  correlation_id, which an AsyncAPI runtime expression cannot name (only `$message.header` and
  `$message.payload`): the location is the payload, the description names the property. A command carries
  none in its payload (the property only matches the answer to the request): no `correlationId`;
- the broker user is named nowhere: when the document is one user's (a service's party, a partner), the
  server's security scheme (`userPassword`) names it, in its description and in `x-username` (AsyncAPI has
  no field for a user name).

And FastStream names a document's only server `development`, whatever it is: it is called `broker`.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from faststream.specification import AsyncAPI

SCHEMA_VERSION = "3.1.0"
CORRELATION = {
    "location": "$message.payload#/correlation_id",
    "description": "The envelope's correlation_id: the lifecycle the message belongs to (the referral, for a "
                   "referral's messages). Every message carries the same value as its AMQP property correlation_id "
                   "(a property, not a header).",
}


def finish(document: dict[str, Any], *, vhost: str, user: str | None = None) -> dict[str, Any]:
    """A copy of FastStream's document with the vhost, the correlation id and the broker user as they are."""
    doc = copy.deepcopy(document)
    doc["asyncapi"] = SCHEMA_VERSION
    for channel in doc.get("channels", {}).values():
        amqp = channel.get("bindings", {}).get("amqp", {})
        for kind in ("queue", "exchange"):
            if kind in amqp:
                amqp[kind]["vhost"] = vhost
    components = doc.get("components", {})
    schemas = components.get("schemas", {})
    for message in components.get("messages", {}).values():
        if "correlationId" not in message:
            continue
        payload = _resolve(schemas, message.get("payload", {}))
        if "correlation_id" in payload.get("properties", {}) and "correlation_id" in payload.get("required", []):
            message["correlationId"] = dict(CORRELATION)
        else:
            del message["correlationId"]
    if list(doc.get("servers", {})) == ["development"]:  # FastStream's name for a broker's only server
        doc["servers"] = {"broker": doc["servers"]["development"]}
        for channel in doc.get("channels", {}).values():
            if "servers" in channel:
                channel["servers"] = [{"$ref": "#/servers/broker"} if ref == {"$ref": "#/servers/development"}
                                      else ref for ref in channel["servers"]]
    for server in doc.get("servers", {}).values():
        if server.get("protocol", "").startswith("amqp"):
            where = f"RabbitMQ (AMQP 0-9-1), vhost `{vhost}` (the URL path `/{vhost}`)."
            server["description"] = f"{server['description']} {where}" if server.get("description") else where
            if user is not None:
                server["security"] = [{"$ref": "#/components/securitySchemes/broker_user"}]
    if user is not None:
        components.setdefault("securitySchemes", {})["broker_user"] = {
            "type": "userPassword",
            "description": f"Broker user `{user}`; its password is handed over separately, never in this document.",
            "x-username": user,
        }
        doc["components"] = components
    return doc


def _resolve(schemas: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref", "")
    return schemas.get(ref.rsplit("/", 1)[-1], {}) if ref.startswith("#/components/schemas/") else schema


class Finished:
    """A FastStream `Specification` whose content is a finished document."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document

    @property
    def title(self) -> str:
        return self.document["info"]["title"]

    def to_jsonable(self) -> dict[str, Any]:
        return copy.deepcopy(self.document)

    def to_json(self) -> str:
        return json.dumps(self.document, ensure_ascii=False)

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.document, sort_keys=False, allow_unicode=True)


class Contract(AsyncAPI):
    """FastStream's AsyncAPI factory, at AsyncAPI 3.1.0, finished (see the module's docstring) for one vhost and,
    when the document is one user's, that broker user."""

    def __init__(self, *brokers: Any, vhost: str, user: str | None = None, **kwargs: Any) -> None:
        super().__init__(*brokers, schema_version=SCHEMA_VERSION, **kwargs)
        self.vhost, self.user = vhost, user

    def to_specification(self) -> Finished:  # type: ignore[override]
        return Finished(finish(super().to_specification().to_jsonable(), vhost=self.vhost, user=self.user))
