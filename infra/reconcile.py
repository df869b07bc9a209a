"""Where the two parties' records about one referral disagree (`werkbrug reconcile`, `werkbrug status`).

WerkSaam's intake keeps the referral as WerkSaam saw it (its decisions, and the trajectory and invoices as
Heliomare reported them); Heliomare's offer, trajectory and billing keep it as Heliomare did. Each service
answers for its own records only (GetReferral, ListReferrals); this module compares the answers, fact by
fact, and names every fact on which they differ: never silently.

A difference can be a message still on its way (its retour not yet back): run it again; one that stays is a
disagreement the parties must settle between them (agreement art 3.3). Only ids, codes, states, dates and
amounts are compared and printed, never personal data.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

WERKSAAM_SERVICES = ("intake",)
HELIOMARE_SERVICES = ("offer", "trajectory", "billing")
REFERRAL_SERVICES = (*WERKSAAM_SERVICES, *HELIOMARE_SERVICES)

# intake's referral status → what Heliomare's offer must say of the case
_OFFER_STATUS_FOR = {
    "registered": {"registered", "accepted", "quote_sent"},  # Heliomare's answer may be on its way
    "accepted": {"accepted", "quote_sent"},
    "declined": {"declined"},
    "quote_received": {"quote_sent"},
    "quote_rejected": {"quote_rejected", "quote_sent"},  # a new quote may be on its way
    "quote_approved": {"quote_approved"},
    "trajectory_running": {"quote_approved"},
    "trajectory_ended": {"quote_approved"},
}
# intake's trajectory state → Heliomare's trajectory service status
_TRAJECTORY_STATUS_FOR = {None: {"commissioned"}, "running": {"running"}, "ended": {"ended"}}


@dataclass(frozen=True)
class Disagreement:
    referral_id: str
    fact: str  # what is compared: "state", "trajectory id", "start date", "invoiced"...
    werksaam: str  # what WerkSaam's records say (service: value)
    heliomare: str  # what Heliomare's records say

    def line(self) -> str:
        return f"{self.referral_id}  {self.fact}: WerkSaam {self.werksaam} ≠ Heliomare {self.heliomare}"


def compare(referral_id: str, views: dict[str, dict[str, Any] | None]) -> list[Disagreement]:
    """The disagreements between intake's view and Heliomare's services' views of one referral. A view is
    None when the service does not know the referral."""
    out: list[Disagreement] = []

    def differ(fact: str, werksaam: str, heliomare: str) -> None:
        out.append(Disagreement(referral_id, fact, werksaam, heliomare))

    intake, offer = views.get("intake"), views.get("offer")
    trajectory, billing = views.get("trajectory"), views.get("billing")
    if intake is None:
        for service in HELIOMARE_SERVICES:
            if views.get(service) is not None:
                differ("referral", "intake: unknown", f"{service}: {views[service].get('status')}")
        return out
    if intake.get("status") == "refused":  # refused at intake, never sent: Heliomare should know nothing
        for service in HELIOMARE_SERVICES:
            if views.get(service) is not None:
                differ("referral", "intake: refused (never sent)", f"{service}: {views[service].get('status')}")
        return out
    if offer is None:
        differ("referral", f"intake: {intake['status']}", "offer: unknown")
    elif offer.get("status") not in _OFFER_STATUS_FOR.get(intake["status"], set()):
        differ("state", f"intake: {intake['status']}", f"offer: {offer.get('status')}")

    # quotes: the same quotes, amounts and decisions on both sides
    ours = {q["quote_id"]: q for q in intake.get("quotes", [])}
    theirs = {q["quote_id"]: q for q in (offer or {}).get("quotes", [])}
    for quote_id in sorted(set(ours) | set(theirs)):
        mine, other = ours.get(quote_id), theirs.get(quote_id)
        if mine is None or other is None:
            if offer is not None:
                differ(f"quote {quote_id}", "intake: " + ("received" if mine else "unknown"),
                       "offer: " + ("sent" if other else "unknown"))
            continue
        if _amount(mine.get("amount")) != _amount(other.get("amount")):
            differ(f"quote {quote_id} amount", f"intake: {mine.get('amount')}", f"offer: {other.get('amount')}")
        decided, status = mine.get("decision"), other.get("status")
        if decided in {"approved", "rejected"} and status != decided:
            differ(f"quote {quote_id} decision", f"intake: {decided}", f"offer: {status}")
        if decided is None and status in {"approved", "rejected"}:
            differ(f"quote {quote_id} decision", "intake: none", f"offer: {status}")

    approved = _amount(intake.get("approved_amount"))
    for service, view in (("trajectory", trajectory), ("billing", billing)):
        if view is not None and approved is not None and _amount(view.get("approved_amount")) != approved:
            differ("approved amount", f"intake: {approved}", f"{service}: {view.get('approved_amount')}")
    if approved is not None and trajectory is None:
        differ("commission", f"intake: approved {approved}", "trajectory: unknown")

    # the trajectory: the id the start gave, its dates and outcome
    reported = intake.get("trajectory") or {}
    state = "ended" if reported.get("end_date") else ("running" if reported.get("start_date") else None)
    if trajectory is not None and approved is not None:
        if trajectory.get("status") not in _TRAJECTORY_STATUS_FOR[state]:
            differ("trajectory state", f"intake: {state or 'not started'}", f"trajectory: {trajectory.get('status')}")
        if reported.get("trajectory_id") and reported["trajectory_id"] != trajectory.get("trajectory_id"):
            differ("trajectory id", f"intake: {reported['trajectory_id']}",
                   f"trajectory: {trajectory.get('trajectory_id')}")
        for fact, key in (("start date", "start_date"), ("end date", "end_date"), ("outcome", "outcome")):
            if reported.get(key) != trajectory.get(key):
                differ(fact, f"intake: {reported.get(key) or '-'}", f"trajectory: {trajectory.get(key) or '-'}")
    if billing is not None and reported.get("trajectory_id") and billing.get("trajectory_id") not in (
            None, reported["trajectory_id"]):
        differ("trajectory id", f"intake: {reported['trajectory_id']}", f"billing: {billing.get('trajectory_id')}")

    # invoices: the same invoices, and never more than approved on either side
    if billing is not None or intake.get("invoices"):
        received = {i["number"]: _amount(i.get("amount_excl_vat")) for i in intake.get("invoices", [])}
        issued = {i["number"]: _amount(i.get("amount_excl_vat")) for i in (billing or {}).get("invoices", [])}
        for number in sorted(set(received) | set(issued)):
            if received.get(number) != issued.get(number):
                differ(f"invoice {number}", f"intake: {received.get(number) or 'not received'}",
                       f"billing: {issued.get(number) or 'not issued'}")
        invoiced = _amount(intake.get("invoiced_total")) or Decimal(0)
        billed = _amount((billing or {}).get("invoiced_total")) or Decimal(0)
        if invoiced != billed:
            differ("invoiced", f"intake: {invoiced}", f"billing: {billed}")
        if approved is not None and max(invoiced, billed) > approved:
            differ("invoiced vs approved", f"intake: approved {approved}", f"billing: invoiced {billed}")
    return out


def compare_all(views: dict[str, list[dict[str, Any]]]) -> list[Disagreement]:
    """Every referral any service knows (ListReferrals per service), compared."""
    by_referral: dict[str, dict[str, dict[str, Any]]] = {}
    for service, rows in views.items():
        for row in rows:
            by_referral.setdefault(row["referral_id"], {})[service] = row
    out: list[Disagreement] = []
    for referral_id in sorted(by_referral):
        known = by_referral[referral_id]
        out += compare(referral_id, {s: known.get(s) for s in REFERRAL_SERVICES})
    return out


def _amount(value: Any) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None
