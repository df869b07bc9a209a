"""Machine-readable reason codes of retour messages, refusals and dead letters.

In the spirit of the iWmo/iJw retour codes: a receiver never just drops a message, it answers with
what was wrong. A reason names a code, optionally the field it is about and a short technical detail;
it never repeats the rejected value (that could be personal data).
"""

from __future__ import annotations

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


def reasons_from_validation_error(exc, prefix: str = "", tagged_union: bool = False) -> list[Reason]:
    """Turn a pydantic ValidationError into reasons, keeping location and error type, dropping the input.

    `tagged_union`: the first location element is the union's tag (the command name); drop it."""
    out: list[Reason] = []
    for err in exc.errors(include_input=False, include_url=False):
        path = err["loc"][1:] if tagged_union and len(err["loc"]) > 1 else err["loc"]
        loc = ".".join(str(p) for p in (prefix, *path) if p != "")
        kind = err["type"]
        if kind == "extra_forbidden":
            code = ReasonCode.UNKNOWN_FIELD
        elif kind == "missing":
            code = ReasonCode.MISSING_FIELD
        else:
            code = ReasonCode.INVALID_VALUE
        out.append(Reason(code=code, field=loc[:200] or None, detail=kind[:300]))
    return out[:20]
