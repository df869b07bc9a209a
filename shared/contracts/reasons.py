"""Machine-readable reason codes of retour messages, refusals and dead letters.

In the spirit of the iWmo/iJw retour codes: a receiver never just drops a message, it answers with
what was wrong. A reason names a code, optionally the field it is about and a short technical detail;
it never repeats the rejected value (that could be personal data).

Trust boundary: a reason, a dead letter's headers and a log line name only schema paths of the contract and
codes. A path is built from the contract's own field names: an unknown field is named by the object that had
it (`data`, `data.address`), never by its key, and any other path element that is not a declared field name of
the contract (a dict key, a list index, a union branch) is shown as `*`. A key a party made up, which could be a
person's name, is never echoed.
"""

from __future__ import annotations

import re
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class ReasonCode(StrEnum):
    # transport and contract (raised by the messaging core for every consumer)
    MALFORMED_JSON = "malformed_json"
    OVERSIZED = "oversized"
    INVALID_ENVELOPE = "invalid_envelope"
    UNKNOWN_FIELD = "unknown_field"
    MISSING_FIELD = "missing_field"
    INVALID_VALUE = "invalid_value"
    UNKNOWN_EVENT_TYPE = "unknown_event_type"
    UNSUPPORTED_VERSION = "unsupported_version"
    SOURCE_NOT_PERMITTED = "source_not_permitted"
    SENDER_NOT_AUTHENTICATED = "sender_not_authenticated"  # AMQP user_id absent or not the envelope's source
    RECIPIENT_NOT_PERMITTED = "recipient_not_permitted"  # the type may not be addressed to that recipient
    NOT_ADDRESSED_TO_US = "not_addressed_to_us"  # addressed to another party: never handled, only parked
    ROUTING_MISMATCH = "routing_mismatch"
    MESSAGE_ID_MISMATCH = "message_id_mismatch"
    DELIVERY_LIMIT = "delivery_limit_exceeded"
    # target group, agreement art 4 (intake)
    BSN_INVALID = "bsn_invalid"
    NOT_RESIDENT_WEST_FRIESLAND = "not_resident_west_friesland"
    NO_LABOUR_DISABILITY = "no_labour_disability"
    NO_PARTICIPATIEWET_ENTITLEMENT = "no_participatiewet_entitlement"
    # process order (Bijlage 2)
    UNKNOWN_REFERRAL = "unknown_referral"
    UNKNOWN_QUOTE = "unknown_quote"
    DUPLICATE_REFERRAL = "duplicate_referral"
    INVALID_TRANSITION = "invalid_transition"
    QUOTE_SUPERSEDED = "quote_superseded"
    INVOICING_SCHEDULE_INVALID = "invoicing_schedule_invalid"
    # trajectory and invoicing (Bijlage 2 steps 4-9, art 7)
    NO_APPROVED_QUOTE = "no_approved_quote"
    UNKNOWN_TRAJECTORY = "unknown_trajectory"
    TRAJECTORY_NOT_STARTED = "trajectory_not_started"
    TRAJECTORY_ALREADY_STARTED = "trajectory_already_started"
    TRAJECTORY_ENDED = "trajectory_ended"
    DATE_BEFORE_START = "date_before_start"
    DATE_OUT_OF_ORDER = "date_out_of_order"
    OUTCOME_DETAILS_INVALID = "outcome_details_invalid"
    INVOICE_EXCEEDS_APPROVED = "invoice_exceeds_approved"
    DUPLICATE_INVOICE = "duplicate_invoice"
    UNKNOWN_COMMAND = "unknown_command"
    UNFILTERED_READ = "unfiltered_read"
    # data-subject rights (GDPR art 12-22, agreement art 10)
    SUBJECT_ERASED = "subject_erased"  # the subject's data was erased: a late message cannot bring it back
    SUBJECT_RESTRICTED = "subject_restricted"  # processing restricted (art 18) or objected to (art 21)
    IDENTITY_NOT_VERIFIED = "identity_not_verified"
    RIGHT_NOT_APPLICABLE = "right_not_applicable"  # not available for the legal basis of the processing
    DUPLICATE_REQUEST = "duplicate_request"
    UNKNOWN_REQUEST = "unknown_request"
    EXTENSION_TOO_LATE = "extension_too_late"
    NOT_TOLD_BEFORE_LIFTING = "not_told_before_lifting"
    NOT_RESTRICTED = "not_restricted"
    # confidentiality (agreement art 8)
    ACTOR_MISSING = "actor_missing"  # who gives the command is not said
    NO_CONFIDENTIALITY_STATEMENT = "no_confidentiality_statement"  # personal data only for staff who signed one
    # personal-data breaches (agreement art 12, GDPR art 33-34)
    UNKNOWN_BREACH = "unknown_breach"
    # the service failed: nothing was changed, the same command may be sent again
    SERVICE_UNAVAILABLE = "service_unavailable"
    # the yearly report (h5: art 6.2, 6.3): a year is published once, after it closed; then only corrections
    REPORT_PERIOD_OPEN = "report_period_open"
    REPORT_ALREADY_PUBLISHED = "report_already_published"
    # dates that cannot be true (issue 14: echo and laxness, h4)
    DATE_IMPLAUSIBLE = "date_implausible"  # a date of birth in the future, or more than OLDEST_AGE years ago
    DATE_BEFORE_REFERRAL = "date_before_referral"  # a quote's or trajectory's start before the referral was made
    # retours final and from the recipient; events follow from the receiver's records (h3, issue 14)
    RETOUR_NOT_FROM_RECIPIENT = "retour_not_from_recipient"  # the answering party was not sent the event
    RETOUR_ABOUT_UNSENT_EVENT = "retour_about_unsent_event"  # we never sent that event (or not of that type)
    RETOUR_CONTRADICTS_ANSWER = "retour_contradicts_answer"  # the event was answered already, otherwise
    # staff are a party's own (h1: the staff register per party, issue 14 item 6)
    UNKNOWN_ACTOR = "unknown_actor"  # the actor is not in force in the sending party's staff register
    ROLE_NOT_PERMITTED = "role_not_permitted"  # the actor holds no role that may give this command
    NOT_FOR_ONESELF = "not_for_oneself"  # nobody records their own confidentiality statement


class Reason(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code: ReasonCode
    field: str | None = Field(None, max_length=200, description="Dotted path of the offending field.")
    detail: str | None = Field(None, max_length=300, description="Technical detail, never the value.")

    def __str__(self) -> str:
        where = f" at {self.field}" if self.field else ""
        what = f" ({self.detail})" if self.detail else ""
        return f"{self.code.value}{where}{what}"


class Refusal(Exception):
    """A message or command that is understood but refused. Carries reason codes, never personal data."""

    def __init__(self, *reasons: Reason | ReasonCode) -> None:
        self.reasons = tuple(r if isinstance(r, Reason) else Reason(code=r) for r in reasons)
        super().__init__(", ".join(str(r) for r in self.reasons))


PLACEHOLDER = "*"  # a path element that is not a field name of the contract: never echoed
_ERROR_TYPE = re.compile(r"^[a-z][a-z0-9_]{0,60}$")  # pydantic's error types (`int_parsing`, `extra_forbidden`)


def reasons_from_validation_error(exc, prefix: str = "", tagged_union: bool = False) -> list[Reason]:
    """Turn a pydantic ValidationError into reasons, keeping the contract path and error type, dropping the input
    and every key the message made up (see the module's docstring).

    `tagged_union`: the first location element is the union's tag (the command name); drop it."""
    names = contract_field_names()
    out: list[Reason] = []
    for err in exc.errors(include_input=False, include_url=False):
        path = err["loc"][1:] if tagged_union and len(err["loc"]) > 1 else err["loc"]
        kind = err["type"]
        if kind == "extra_forbidden":
            code = ReasonCode.UNKNOWN_FIELD
            path = path[:-1]  # the object that had the unknown key, not the key
        elif kind == "missing":
            code = ReasonCode.MISSING_FIELD
        else:
            code = ReasonCode.INVALID_VALUE
        shown = [p if isinstance(p, str) and p in names else PLACEHOLDER for p in path]
        loc = ".".join(p for p in (prefix, *shown) if p != "")
        reason = Reason(code=code, field=loc[:200] or None,
                        detail=kind if _ERROR_TYPE.match(kind) else None)
        if reason not in out:
            out.append(reason)
    return out[:20]


def contract_field_names() -> frozenset[str]:
    """Every field name declared by a model of werkbrug's own (contracts, commands, records): the only words a
    path in a reason may hold."""
    from pydantic import BaseModel

    names: set[str] = set()
    seen: set[type] = set()
    todo = list(BaseModel.__subclasses__())
    while todo:
        cls = todo.pop()
        if cls in seen:
            continue
        seen.add(cls)
        todo += cls.__subclasses__()
        if cls.__module__.split(".", 1)[0] in _OWN_PACKAGES:
            names.update(cls.model_fields)
    return frozenset(names)


_OWN_PACKAGES = frozenset({"shared", "services", "infra"})


def received_reasons(reasons: list[Reason]) -> list[dict[str, str | None]]:
    """The reasons of a retour another party sent, as they are kept and shown here: the code, and the field
    only as a path of contract field names (`*` for any other word). The other party's free text (`detail`)
    is its own words and is not kept."""
    names = contract_field_names()

    def path(field: str | None) -> str | None:
        if field is None:
            return None
        return ".".join(p if p in names else PLACEHOLDER for p in field.split("."))[:200]

    return [{"code": r.code.value, "field": path(r.field), "detail": None} for r in reasons]
