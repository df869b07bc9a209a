"""A data-subject request in a terminal (used by `werkbrug subject-request show` and `make demo`)."""

from __future__ import annotations

from collections import Counter

from rich.console import Console
from rich.table import Table

from shared.contracts.events import Right
from shared.contracts.reasons import Reason


def deadline_markup(state: str) -> str:
    colour = {"overdue": "red", "at_risk": "yellow", "on_time": "green"}.get(state, "dim")
    return f"[{colour}]{state}[/]"


def print_subject_request(console: Console, view: dict) -> None:
    """A request as `GetSubjectRequest` returns it: its deadline and escalation, per service the outcome and
    what became of each record, what an erasure withheld and on which ground, and whether it was verified."""
    identity = view["identity"]
    console.print(f"[bold]request {view['request_id']}[/] · {view['right']} · {view['status']} · "
                  f"subject {view['subject']}")
    console.print(f"parties {', '.join(view['parties'])} · identity {identity['method']} "
                  f"(verified by {identity['verified_by']})")
    due = view["due"] + (f" (extended; first due {view['original_due']})" if view["extended"] else "")
    console.print(f"received {view['received_at'][:19]} · due {due} · deadline {deadline_markup(view['deadline'])}")
    if view["escalated_at"]:
        console.print(f"[bold red]escalated {view['escalated_at'][:19]}: {view['escalation']}[/]")
    if view["completed_at"]:
        console.print(f"closed {view['completed_at'][:19]}")
    if view.get("answered_by"):
        console.print(f"answered by request {view['answered_by']} (a repetition within 30 days, art 12(5))")
    if view["erasure_verified"] is not None:
        console.print("erasure verified: " + ("[green]yes[/] (each service can read only what it withheld)"
                                              if view["erasure_verified"] else
                                              "[red]no[/] (a service can still read more than it withheld)"))
    for reason in view["reasons"]:
        console.print(f"[red]refused: {Reason.model_validate(reason)}[/]")
    for party in view.get("by_party", []):
        colour = "" if party["for_this_party"] else "[dim]"
        console.print(f"{colour}{party['party']}: {party['did']}" + ("[/]" if colour else ""))
    answers = view.get("answers") or {}
    erasure = view["right"] == Right.ERASURE
    if view["services"]:
        table = Table(title="services asked")
        columns = ["service", "asked", "answer", "records"]
        columns += ["dead letters\ndestroyed", "still\nreadable"] if erasure else []
        columns += ["recipients notified"] if view["right"] == Right.RECTIFICATION else []
        for column in columns:
            table.add_column(column, no_wrap=column in {"service", "records"},
                             justify="right" if column in {"asked", *columns[4:]} else "left")
        for asked in view["services"]:
            answer = answers.get(asked["service"], {})
            statuses = Counter(r["status"] for r in answer.get("records", []))
            row = [f"{asked['party']} / {asked['service']}", str(asked["attempts"]),
                   asked["outcome"] if asked["answered"] else "[yellow]waiting[/]",
                   ", ".join(f"{n} {s}" for s, n in sorted(statuses.items())) or "-"]
            if erasure:
                row += [str(answer.get("dead_letters_destroyed", "-")) if answer else "-",
                        str(len(answer.get("readable_after", []))) if answer else "-"]
            if view["right"] == Right.RECTIFICATION:
                row.append(", ".join(answer.get("recipients_notified", [])) or "-")
            table.add_row(*row)
        console.print(table)
    withheld = [(service, r) for service, answer in sorted(answers.items()) for r in answer.get("records", [])
                if r.get("ground")]
    if withheld:
        table = Table(title="withheld: kept on a legal ground (art 17(3)(b)) until the date given")
        for column in ("service", "record", "ground", "keep until"):
            table.add_column(column, overflow="fold" if column == "record" else "ellipsis",
                             no_wrap=column == "keep until")
        for service, r in withheld:
            table.add_row(service, f"{r['collection']}/{r['record_id']}", r["ground"], str(r.get("keep_until") or "-"))
        console.print(table)
