"""Comparing both parties' records of one referral: every fact they disagree on is named, none when they agree."""

from __future__ import annotations

import copy
import uuid

from infra.reconcile import compare, compare_all

RID, QID, TID = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())


def agreeing() -> dict[str, dict]:
    """An ended trajectory with both invoices, as intake and Heliomare's three services report it."""
    invoices = [{"number": "2027-000001", "amount_excl_vat": "1920.00"},
                {"number": "2027-000002", "amount_excl_vat": "2880.00"}]
    return {
        "intake": {"referral_id": RID, "status": "trajectory_ended", "approved_amount": "4800.00",
                   "quotes": [{"quote_id": QID, "amount": "4800.00", "decision": "approved"}],
                   "trajectory": {"trajectory_id": TID, "start_date": "2027-02-01", "end_date": "2027-07-01",
                                  "outcome": "paid_work"},
                   "invoices": invoices, "invoiced_total": "4800.00"},
        "offer": {"referral_id": RID, "status": "quote_approved",
                  "quotes": [{"quote_id": QID, "amount": "4800.00", "status": "approved"}]},
        "trajectory": {"referral_id": RID, "status": "ended", "trajectory_id": TID, "approved_amount": "4800.00",
                       "start_date": "2027-02-01", "end_date": "2027-07-01", "outcome": "paid_work"},
        "billing": {"referral_id": RID, "status": "ended", "approved_amount": "4800.00", "trajectory_id": TID,
                    "invoices": copy.deepcopy(invoices), "invoiced_total": "4800.00"},
    }


def facts(views) -> list[str]:
    return [d.fact for d in compare(RID, views)]


def test_records_that_agree_show_no_disagreement():
    assert compare(RID, agreeing()) == []
    assert compare_all({s: [v] for s, v in agreeing().items()}) == []


def test_an_end_werksaam_took_under_a_trajectory_heliomare_never_started_is_shown():
    views = agreeing()
    views["intake"]["trajectory"] = {"trajectory_id": str(uuid.uuid4()), "start_date": None,
                                     "end_date": "2027-07-01", "outcome": "paid_work"}
    views["trajectory"].update(status="commissioned", start_date=None, end_date=None, outcome=None)
    views["billing"].update(trajectory_id=None, invoices=[], invoiced_total="0")
    views["intake"].update(invoices=[], invoiced_total="0")
    found = facts(views)
    assert {"trajectory state", "trajectory id", "end date", "outcome"} <= set(found)
    [line] = [d.line() for d in compare(RID, views) if d.fact == "trajectory id"]
    assert RID in line and TID in line


def test_a_state_a_quote_decision_and_amounts_that_differ_are_each_shown():
    views = agreeing()
    views["offer"]["status"] = "quote_sent"
    views["offer"]["quotes"][0]["status"] = "sent"
    views["billing"]["invoices"][1]["amount_excl_vat"] = "2900.00"
    views["billing"]["invoiced_total"] = "4820.00"
    found = facts(views)
    assert "state" in found and f"quote {QID} decision" in found
    assert "invoice 2027-000002" in found and "invoiced" in found and "invoiced vs approved" in found


def test_a_referral_only_one_party_knows_is_shown():
    views = agreeing()
    assert facts({**views, "offer": None}) == ["referral"]
    assert facts({"intake": None, "offer": views["offer"], "trajectory": None, "billing": None}) == ["referral"]


def test_a_referral_refused_at_intake_and_unknown_to_heliomare_agrees():
    refused = {"referral_id": RID, "status": "refused", "quotes": [], "trajectory": None, "invoices": [],
               "invoiced_total": "0", "approved_amount": None}
    assert compare(RID, {"intake": refused, "offer": None, "trajectory": None, "billing": None}) == []


def test_a_message_still_on_its_way_to_heliomare_after_a_fresh_referral_is_not_a_state_disagreement():
    views = {"intake": {"referral_id": RID, "status": "registered", "quotes": [], "trajectory": None,
                        "invoices": [], "invoiced_total": "0", "approved_amount": None},
             "offer": {"referral_id": RID, "status": "accepted", "quotes": []}, "trajectory": None, "billing": None}
    assert compare(RID, views) == []
