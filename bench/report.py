"""The benchmark's report: a Markdown page (table, targets, method, how to reproduce) and an SVG chart."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

ROWS = [  # (figure key, label)
    ("broker_floor", "1. broker floor (bare aio-pika)"),
    ("storage_floor", "2. storage floor (PyMongo, hop's writes)"),
    ("hop_storage_excluded", "3a. hop, storage excluded (in-memory UoW)"),
    ("hop", "3b. hop, MongoDB"),
    ("hop_storage_excluded_untraced", "5a. hop, storage excluded, tracing off"),
    ("hop_untraced", "5b. hop, MongoDB, tracing off"),
    ("lifecycle", "4. full lifecycle (4 services)"),
    ("subject_floor", "6. subject floor (processing-log reads, 4 services)"),
    ("subject_access", "6a. subject access, all services"),
    ("subject_erasure", "6b. subject erasure, all services"),
]
FLOORS = {"broker_floor", "storage_floor", "subject_floor"}


def _num(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f} ms"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f} %"


def table(results: dict[str, Any]) -> list[str]:
    f = results["figures"]
    lines = ["| stage | throughput (median) | runs (min-max) | ratio to its floor | latency p50 | latency p99 "
             "| worker CPU per message |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for key, label in ROWS:
        fig = f.get(key)
        if not fig:
            continue
        t = fig["throughput"]
        digits = 2 if fig["unit"] in {"lifecycles/s", "requests/s"} else 0
        floor = "(floor)" if key in FLOORS else _pct(fig.get("ratio_to_floor"))
        if times := fig.get("latency_ratio"):  # a latency against a latency floor: how many times the floor
            floor = f"latency {_num(times.get('p50'))}x (p50), {_num(times.get('p99'))}x (p99)"
        rate = f"{_num(t.get('median'), digits)} {fig['unit']}" if t.get("runs") else "-"
        runs = f"{_num(t.get('min'), digits)}-{_num(t.get('max'), digits)} ({t['runs']})" if t.get("runs") else "-"
        lines.append(
            f"| {label} | {rate} | {runs} | {floor} | {_num(fig['latency']['p50_ms'])} ms | "
            f"{_num(fig['latency']['p99_ms'])} ms | {_ms(fig.get('cpu_ms_per_message'))} |")
    return lines


def summary(results: dict[str, Any]) -> str:
    f = results["figures"]
    out = ["", *table(results), ""]
    hop, storage = f.get("hop"), f.get("storage_floor") or {}
    if hop:
        out.append(f"hop vs storage floor: {_pct(hop.get('ratio_to_storage_floor'))}, cost above it "
                   f"{_num(hop.get('cost_above_storage_floor_ms'), 2)} ms/message; db commands per hop "
                   f"{hop.get('db_commands_per_message')} (floor {storage.get('db_commands_per_message')})")
    t = f["tracing"]
    out.append(f"tracing on/off: storage excluded {_pct(t.get('storage_excluded_ratio'))} "
               f"(CPU {_pct(t.get('storage_excluded_cpu_ratio'))}), with storage {_pct(t.get('with_storage_ratio'))} "
               f"(CPU {_pct(t.get('with_storage_cpu_ratio'))})")
    for target in f["targets"]:
        met = {True: "met", False: "NOT met", None: "not judged" if target["measured"] is not None
               else "not measured"}[target["met"]]
        shown = target.get("shown") or _pct(target["measured"])
        measured = "" if target["measured"] is None else f" (measured {shown})"
        out.append(f"target: {target['target']}: {met}{measured}")
    return "\n".join(out)


# -- chart -----------------------------------------------------------------------------------------


def chart(results: dict[str, Any]) -> str:
    """Two panels, one row per stage: throughput (log scale, per second) and latency p50 / p99 (log, ms)."""
    f = results["figures"]
    rows = [(label, f[key]) for key, label in ROWS if f.get(key)]
    label_w, panel_w, row_h, top = 300, 330, 26, 56
    width = label_w + 2 * panel_w + 60
    height = top + row_h * len(rows) + 50
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="10" y="20" font-size="15" font-weight="bold">werkbrug benchmark · {escape(results["backend"])}'
           f'</text>',
           f'<text x="10" y="38" fill="#555">{results["machine"]["cores"]} cores · Python '
           f'{results["machine"]["python"]} · RabbitMQ {escape(str(results["machine"]["rabbitmq"]))} · '
           f'{escape(results["when"])}</text>']

    def scale(lo: float, hi: float, x0: float):
        span = math.log10(hi) - math.log10(lo)
        return lambda v: x0 + (math.log10(max(v, lo)) - math.log10(lo)) / span * (panel_w - 20)

    rates = [r["throughput"]["median"] for _, r in rows if r["throughput"].get("median")]
    lats = [v for _, r in rows for v in (r["latency"]["p50_ms"], r["latency"]["p99_ms"]) if v]
    r_lo, r_hi = 10 ** math.floor(math.log10(min(rates))), 10 ** math.ceil(math.log10(max(rates)))
    l_lo, l_hi = 10 ** math.floor(math.log10(min(lats))), 10 ** math.ceil(math.log10(max(lats)))
    if r_hi == r_lo:
        r_hi *= 10
    if l_hi == l_lo:
        l_hi *= 10
    x_rate, x_lat = scale(r_lo, r_hi, label_w), scale(l_lo, l_hi, label_w + panel_w + 30)
    out.append(f'<text x="{label_w}" y="{top - 6}" font-weight="bold">throughput per second (log)</text>')
    out.append(f'<text x="{label_w + panel_w + 30}" y="{top - 6}" font-weight="bold">latency ms, p50 '
               f'<tspan fill="#2b6cb0">■</tspan> p99 <tspan fill="#c05621">■</tspan> (log)</text>')
    for i, (label, fig) in enumerate(rows):
        y = top + i * row_h
        out.append(f'<text x="10" y="{y + 16}">{escape(label)}</text>')
        value = fig["throughput"].get("median") or 0
        if value:
            w = x_rate(value) - label_w
            colour = "#718096" if "floor" in label else "#2f855a"
            value_digits = 2 if value < 10 else 0
            out.append(f'<rect x="{label_w}" y="{y + 4}" width="{w:.1f}" height="{row_h - 8}" fill="{colour}"/>')
            out.append(f'<text x="{label_w + w + 4:.1f}" y="{y + 16}">{value:,.{value_digits}f}</text>')
        for j, (key, colour) in enumerate((("p50_ms", "#2b6cb0"), ("p99_ms", "#c05621"))):
            v = fig["latency"].get(key)
            if v:
                x0 = label_w + panel_w + 30
                h = (row_h - 8) / 2
                out.append(f'<rect x="{x0}" y="{y + 4 + j * h:.1f}" width="{x_lat(v) - x0:.1f}" height="{h:.1f}" '
                           f'fill="{colour}"/>')
                out.append(f'<text x="{x_lat(v) + 4:.1f}" y="{y + 4 + (j + 1) * h - 1:.1f}" font-size="10">'
                           f'{v:,.1f}</text>')
    axis_y = top + row_h * len(rows) + 14
    for lo, hi, x in ((r_lo, r_hi, x_rate), (l_lo, l_hi, x_lat)):
        tick = lo
        while tick <= hi:
            out.append(f'<text x="{x(tick):.1f}" y="{axis_y}" font-size="10" fill="#555" text-anchor="middle">'
                       f'{tick:g}</text>')
            tick *= 10
    out.append("</svg>")
    return "\n".join(out) + "\n"


# -- page ------------------------------------------------------------------------------------------


def write(results: dict[str, Any], md_path: Path, svg_path: Path, chart_link: str) -> None:
    md_path.parent.mkdir(parents=True, exist_ok=True)
    svg_path.write_text(chart(results))
    md_path.write_text(page(results, chart_link))


def subject_section(f: dict[str, Any]) -> list[str]:
    """Item 6: how the stores were seeded, the figures against their floor, and where the time goes."""
    rights, access, erasure = f.get("subject_rights"), f.get("subject_access"), f.get("subject_erasure")
    if not rights:
        return []
    seed = rights["seed"]
    documents = {service: sum(counts.values()) for service, counts in seed["documents"].items()}
    per_subject = {service: n / seed["subjects"] for service, n in documents.items()}
    floor = f["subject_floor"]["latency"]
    lines = [
        "",
        f"### Data-subject requests at {seed['subjects']:,} subjects (item 6)",
        "",
        f"Measured {rights.get('when') or ''} (`python -m bench`, or alone: `python -m bench --only "
        f"subject_requests --subjects {seed['subjects']}`).",
        "",
        f"- **Seeded**: {seed['subjects']:,} subjects in each of {', '.join(documents)}: "
        f"{sum(documents.values()):,} documents ("
        + ", ".join(f"{s} {n:,.0f} per subject" for s, n in per_subject.items())
        + f"), copied from {seed['templates']} people played through the services "
        f"({seed['template_seconds']:.0f} s), built in {seed['clone_seconds']:.0f} s, loaded in "
        f"{seed['load_seconds']:.0f} s, services started on them in {seed['start_seconds']:.0f} s. "
        "Processing-log records per subject (median of the subjects asked): "
        + ", ".join(f"{s} {n:g}" for s, n in rights["log_records_per_subject"].items()) + ".",
        f"- **Access**, one at a time ({rights['access_n']} requests): p50 {_num(access['latency']['p50_ms'])} ms, "
        f"p99 {_num(access['latency']['p99_ms'])} ms: {_num(access['latency_ratio']['p50'])} and "
        f"{_num(access['latency_ratio']['p99'])} times the floor's (p50 {_num(floor['p50_ms'])} ms, "
        f"p99 {_num(floor['p99_ms'])} ms). The submit's reply alone: p50 {_num(rights['submit_reply']['p50_ms'])} ms.",
        f"- **Erasure**, one at a time ({rights['erasure_n']} subjects): p50 {_num(erasure['latency']['p50_ms'])} ms, "
        f"p99 {_num(erasure['latency']['p99_ms'])} ms ({_num(erasure['latency_ratio']['p50'])} and "
        f"{_num(erasure['latency_ratio']['p99'])} times the floor's).",
        f"- **Access in parallel**: {rights['requests']} requests, {_num(rights['per_second'], 2)} completed per "
        f"second; latency under that load p50 {_num(access['loaded_latency'].get('p50_ms'))} ms, "
        f"p99 {_num(access['loaded_latency'].get('p99_ms'))} ms.",
        "",
        "Where a request's time goes: from the request's receipt at subject_rights to each service's answer "
        "recorded there (ms, one request at a time):",
        "",
        "| service | access p50 | access p99 | erasure p50 | erasure p99 |",
        "|---|---:|---:|---:|---:|",
    ]
    for service, a in rights["access_by_service"].items():
        e = rights["erasure_by_service"].get(service, {})
        lines.append(f"| {service} | {_num(a.get('p50_ms'), 0)} | {_num(a.get('p99_ms'), 0)} | "
                     f"{_num(e.get('p50_ms'), 0)} | {_num(e.get('p99_ms'), 0)} |")
    if len(rights.get("sizes", [])) > 1:
        lines += ["", "By the number of subjects stored (each its own run; ms):", "",
                  "| subjects | access p50 | access p99 | p99 ÷ floor p99 | erasure p50 | erasure p99 | floor p50 "
                  "| floor p99 | access/s (parallel) |",
                  "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for row in rights["sizes"]:
            lines.append(f"| {row['subjects']:,} | {_num(row['access_p50'], 0)} | {_num(row['access_p99'], 0)} | "
                         f"{_num(row['access_ratio_p99'])} | {_num(row['erasure_p50'], 0)} | "
                         f"{_num(row['erasure_p99'], 0)} | {_num(row['floor_p50'], 0)} | {_num(row['floor_p99'], 0)} | "
                         f"{_num(row['per_second'], 2)} |")
    return lines


def page(results: dict[str, Any], chart_link: str) -> str:
    from bench.method import closing_note, method, reproduce

    f, m = results["figures"], results["machine"]
    lines = [
        "# Benchmarks",
        "",
        "Generated by `make bench` (`python -m bench --publish`); the numbers below are from one run. "
        "Every figure is also in `var/bench/results.json` with each round's values.",
        "",
        f"- **When**: {results['when']}; the run took {results['seconds']:.0f} s"
        f"{' (quick sizes)' if results.get('quick') else ''}.",
        f"- **Machine**: {m['cores']} cores, Python {m['python']}, RabbitMQ {m['rabbitmq']}, {m['platform']}; "
        f"load average {m['load_average']} before, {m.get('load_average_after')} after "
        "(other work shares this machine: the same-round ratios are the headline, not the absolute rates).",
        f"- **Storage**: {results['backend']}.",
        f"- **Settings**: prefetch {results['settings']['prefetch']}, relay poll interval "
        f"{results['settings']['relay_interval_s']} s; sizes {results['sizes']}.",
        "",
        *table(results),
        "",
        f"![throughput and latency per stage]({chart_link})",
        "",
        "Throughput is measured with "
        f"{results['sizes']['window']} messages in flight (saturated); latency with one in flight (a single "
        "message through an idle pipeline, publish → answer received). The ratio of a hop is to the broker "
        "floor of the same round; of a lifecycle, to the broker floor divided by the messages a lifecycle "
        "puts on the broker.",
        "",
        "## Against the targets",
        "",
        "| target | measured | |",
        "|---|---:|---|",
    ]
    for t in f["targets"]:
        met = {True: "met", False: "**not met**", None: "not measured yet" if t["measured"] is None
               else "not judged: another size"}[t["met"]]
        shown = t.get("shown") or (_pct(t["measured"]) if t["measured"] is not None else "-")
        lines.append(f"| {t['target']} | {shown} | {met} |")
    hop = f.get("hop") or {}
    storage = f.get("storage_floor") or {}
    tr = f["tracing"]
    excluded = f.get("hop_storage_excluded") or {}
    lines += [
        "",
        f"- Hop with storage excluded, per round: {', '.join(_pct(v) for v in excluded.get('ratios', []))} of "
        "that round's broker floor (the median is the figure above). On this machine the rounds swing that much;"
        " read the figure with its rounds, not alone.",
        f"- Hop with MongoDB storage: {_pct(hop.get('ratio_to_floor'))} of the broker floor and "
        f"{_pct(hop.get('ratio_to_storage_floor'))} of the storage floor; its cost above the storage floor is "
        f"{_num(hop.get('cost_above_storage_floor_ms'), 2)} ms per message (1/hop - 1/storage floor). It sent "
        f"{hop.get('db_commands_per_message')} database commands per message; the storage floor "
        f"{storage.get('db_commands_per_message')}.",
        f"- Tracing on ÷ off, throughput: {_pct(tr.get('storage_excluded_ratio'))} with storage excluded "
        f"(rounds: {', '.join(_pct(v) for v in tr.get('storage_excluded_ratios', []))}), "
        f"{_pct(tr.get('with_storage_ratio'))} with MongoDB storage "
        f"(rounds: {', '.join(_pct(v) for v in tr.get('with_storage_ratios', []))}). By the worker's CPU per "
        f"message (off ÷ on, what a CPU-bound worker's throughput would be): "
        f"{_pct(tr.get('storage_excluded_cpu_ratio'))} storage excluded, {_pct(tr.get('with_storage_cpu_ratio'))} "
        "with storage.",
    ]
    life = f.get("lifecycle")
    if life:
        lines.append(
            f"- Lifecycles: {life['completed']} of {life['lifecycles']} completed; "
            f"{_num(life.get('messages_per_lifecycle'))} broker messages each (events, retours, commands and "
            f"replies), so the broker floor allows {_num(life.get('floor_per_second'), 2)} lifecycles/s.")
    lines += subject_section(f)
    lines += ["", method(), "", closing_note(results), "", reproduce(), ""]
    return "\n".join(lines)
