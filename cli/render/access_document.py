"""The answer to an access request (GDPR art 15) as a readable document for the person (HTML).

The JSON package (`werkbrug subject-request show <id> --json`) is the complete, machine-readable answer;
this is the same content laid out for a person: per party and service the data held, the art 15(1)
information (purposes, categories, recipients, retention and its ground, source), and the processing log
(who processed the data, when, why and on which legal basis). Everything is HTML-escaped.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;color:#222;line-height:1.4}
h1{font-size:1.5rem} h2{font-size:1.2rem;border-bottom:1px solid #ccc;margin-top:2rem} h3{font-size:1rem}
table{border-collapse:collapse;width:100%;font-size:.85rem;margin:.5rem 0} td,th{border:1px solid #ddd;
padding:.25rem .4rem;text-align:left;vertical-align:top} th{background:#f4f4f4} pre{white-space:pre-wrap;
font-size:.8rem;background:#f8f8f8;padding:.5rem} .ground{color:#8a4b00}
"""

RIGHT_TITLES = {
    "access": "Inzage in uw persoonsgegevens (AVG art 15) — access to your personal data",
    "portability": "Uw gegevens in een overdraagbaar formaat (AVG art 20) — data portability",
}


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def render_access_document(request: dict[str, Any]) -> str:
    """HTML for a completed access or portability request as `GetSubjectRequest` returns it."""
    parts = [
        "<!doctype html><html lang='nl'><head><meta charset='utf-8'>",
        f"<title>{escape(RIGHT_TITLES.get(request['right'], request['right']))}</title><style>{_STYLE}</style>",
        "</head><body>",
        f"<h1>{escape(RIGHT_TITLES.get(request['right'], request['right']))}</h1>",
        _table(["request", "received", "answered", "deadline"],
               [[request["request_id"], request["received_at"], request.get("completed_at") or "—",
                 request["due"]]]),
        "<p>WerkSaam Westfriesland answers for every party to the cooperation agreement (art 10.3): "
        "WerkSaam and Stichting Heliomare.</p>",
    ]
    for service, answer in sorted(request.get("answers", {}).items(), key=lambda kv: kv[0]):
        parts.append(f"<h2>{escape(service)}</h2>")
        if answer["outcome"] == "nothing_held":
            parts.append("<p>This service holds no data about you.</p>")
            continue
        parts.append("<h3>The data held</h3>")
        for record in answer.get("records", []):
            ground = (f"<p class='ground'>Kept on legal grounds: {escape(record['ground'])} (until "
                      f"{escape(str(record.get('keep_until')))})</p>") if record.get("ground") else ""
            data = json.dumps(record.get("data"), indent=2, ensure_ascii=False, default=str)
            if record.get("status") == "withheld" and record.get("data") is None:
                # after an erasure: kept for the legal duty alone, its values are not copied out (subject_data)
                body = "<p>Kept only for the legal duty above, which names the fields it keeps; their values are " \
                       "not copied into this answer.</p>"
            else:
                body = f"<pre>{escape(data)}</pre>"
            parts.append(f"<p>{escape(record['collection'])} {escape(record['record_id'])}</p>{ground}{body}")
        if answer.get("information"):
            parts.append("<h3>Why and how it is processed</h3>")
            parts.append(_table(
                ["processing", "purpose", "legal basis", "categories", "recipients", "kept", "source"],
                [[i["name"], i["purpose"], i["legal_basis"], ", ".join(i["categories"]),
                  ", ".join(i["recipients"]) or "none", f"{i['retention']} — {i['retention_ground']}", i["source"]]
                 for i in answer["information"]]))
        if answer.get("processing_log"):
            parts.append("<h3>Who processed it, when, why (processing log)</h3>")
            parts.append(_table(
                ["time", "party", "operation", "activity", "legal basis", "status"],
                [[r["time"], r["party"], r["operation"], r["activity_id"], r["legal_basis"], r["status"]]
                 for r in answer["processing_log"]]))
    parts.append("</body></html>")
    return "\n".join(parts)
