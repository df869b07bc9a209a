"""From the runs to the reported figures: medians over rounds, same-round ratios to the floors, targets.

A ratio is taken within one round (the hop of round 2 over the floor of round 2) and then the median of
those ratios is reported: on a shared 2-core machine the absolute rates drift with whatever else runs,
the same-round ratios much less.
"""

from __future__ import annotations

import statistics
from typing import Any

from bench.stats import cost_above, ratio, repeated

# The targets.
HOP_TO_BROKER_FLOOR_MIN = 0.50
TRACING_COST_MAX = 0.15


def _rates(runs: dict[str, list[dict[str, Any]]], name: str) -> list[float]:
    return [r["per_second"] for r in runs.get(name, []) if r.get("per_second")]


def _paired(runs, top: str, bottom: str, fn) -> list[float]:
    a, b = _rates(runs, top), _rates(runs, bottom)
    values = [fn(x, y) for x, y in zip(a, b, strict=False)]
    return [v for v in values if v is not None]


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _latency(runs, name: str, key: str = "latency") -> dict[str, float | None]:
    """Median over rounds of each run's p50 and p99 (ms)."""
    rs = [r[key] for r in runs.get(name, []) if r.get(key, {}).get("n")]
    return {"p50_ms": _median([x["p50_ms"] for x in rs]), "p99_ms": _median([x["p99_ms"] for x in rs])}


def _stage(runs, name: str, floor: str | None = None, unit: str = "messages/s") -> dict[str, Any] | None:
    if not runs.get(name):
        return None
    out: dict[str, Any] = {"unit": unit, "throughput": repeated(_rates(runs, name)),
                           "latency": _latency(runs, name), "loaded_latency": _latency(runs, name, "loaded_latency"),
                           "cpu_ms_per_message": _median([r["cpu_ms_per_message"] for r in runs[name]
                                                          if r.get("cpu_ms_per_message")])}
    if floor:
        out["floor"] = floor
        out["ratio_to_floor"] = _median(_paired(runs, name, floor, ratio))
        out["ratios"] = _paired(runs, name, floor, ratio)
    return out


def compute(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    f: dict[str, Any] = {}
    f["broker_floor"] = _stage(runs, "broker_floor")
    f["storage_floor"] = _stage(runs, "storage_floor", unit="hops/s")
    if f["storage_floor"]:
        f["storage_floor"]["db_commands_per_message"] = runs["storage_floor"][0].get("db_commands_per_message")
    f["hop_storage_excluded"] = _stage(runs, "hop_memory_traced", "broker_floor")
    f["hop_storage_excluded_untraced"] = _stage(runs, "hop_memory_untraced", "broker_floor")
    f["hop"] = _stage(runs, "hop_mongo_traced", "broker_floor")
    f["hop_untraced"] = _stage(runs, "hop_mongo_untraced", "broker_floor")
    if f["hop"]:
        f["hop"]["ratio_to_storage_floor"] = _median(_paired(runs, "hop_mongo_traced", "storage_floor", ratio))
        f["hop"]["cost_above_storage_floor_ms"] = _median(
            _paired(runs, "hop_mongo_traced", "storage_floor", cost_above))
        f["hop"]["db_commands_per_message"] = _median(
            [r["db_commands_per_message"] for r in runs["hop_mongo_traced"] if r.get("db_commands_per_message")])
    cpu = {name: [r.get("cpu_ms_per_message") for r in runs.get(name, [])]
           for name in ("hop_memory_traced", "hop_memory_untraced", "hop_mongo_traced", "hop_mongo_untraced")}

    def cpu_ratio(untraced: str, traced: str) -> float | None:
        # CPU per message untraced ÷ traced: the throughput ratio of a CPU-bound worker; steadier than rates.
        pairs = [u / t for u, t in zip(cpu[untraced], cpu[traced], strict=False) if u and t]
        return _median(pairs)

    f["tracing"] = {
        "storage_excluded_cpu_ratio": cpu_ratio("hop_memory_untraced", "hop_memory_traced"),
        "with_storage_cpu_ratio": cpu_ratio("hop_mongo_untraced", "hop_mongo_traced"),
        "storage_excluded_ratio": _median(_paired(runs, "hop_memory_traced", "hop_memory_untraced", ratio)),
        "with_storage_ratio": _median(_paired(runs, "hop_mongo_traced", "hop_mongo_untraced", ratio)),
        "storage_excluded_ratios": _paired(runs, "hop_memory_traced", "hop_memory_untraced", ratio),
        "with_storage_ratios": _paired(runs, "hop_mongo_traced", "hop_mongo_untraced", ratio),
    }
    life = runs.get("lifecycle") or []
    if life:
        stage = _stage(runs, "lifecycle", unit="lifecycles/s")
        per = _median([r["messages_per_lifecycle"] for r in life if r.get("messages_per_lifecycle")])
        broker = f["broker_floor"]["throughput"]["median"] if f["broker_floor"] else None
        floor = broker / per if broker and per else None
        stage["messages_per_lifecycle"] = per
        stage["floor_per_second"] = floor  # the broker floor spent on a lifecycle's messages
        stage["ratio_to_floor"] = ratio(stage["throughput"]["median"], floor) if floor else None
        stage["completed"] = sum(r["completed"] for r in life)
        stage["lifecycles"] = sum(r["lifecycles"] for r in life)
        f["lifecycle"] = stage
    f["subject_rights"] = None  # issue 8 item 6: added with the subject_rights service
    f["targets"] = targets(f)
    return f


def targets(f: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    hop = f.get("hop_storage_excluded")
    if hop and hop.get("ratio_to_floor") is not None:
        out.append({"target": "hop throughput, storage excluded, ≥ 50 % of the bare broker round trip",
                    "measured": hop["ratio_to_floor"], "met": hop["ratio_to_floor"] >= HOP_TO_BROKER_FLOOR_MIN})
    for key, what in (("storage_excluded_ratio", "storage excluded, rate"),
                      ("storage_excluded_cpu_ratio", "storage excluded, CPU per message"),
                      ("with_storage_ratio", "with storage, rate"),
                      ("with_storage_cpu_ratio", "with storage, CPU per message")):
        value = f["tracing"].get(key)
        if value is not None:
            out.append({"target": f"tracing costs ≤ 15 % of throughput ({what})", "measured": 1 - value,
                        "met": 1 - value <= TRACING_COST_MAX})
    out.append({"target": "subject access across all services: p99 < 2 s at 10,000 subjects",
                "measured": None, "met": None})
    return out
