"""The benchmark's statistics: percentiles, summaries, ratios to a floor, same-round pairing."""

from __future__ import annotations

import random

import pytest

from bench.figures import compute
from bench.stats import cost_above, latency_summary, percentile, rate, ratio, repeated, spread


def test_percentile_interpolates_between_closest_ranks_like_numpy():
    values = [15, 20, 35, 40, 50]
    assert percentile(values, 0) == 15
    assert percentile(values, 100) == 50
    assert percentile(values, 50) == 35
    assert percentile(values, 40) == pytest.approx(29.0)  # rank 1.6: 20 + 0.6 * 15
    assert percentile(values, 99) == pytest.approx(49.6)


def test_percentile_does_not_depend_on_order():
    values = [random.Random(1).random() for _ in range(101)]
    shuffled = random.Random(2).sample(values, len(values))
    assert percentile(shuffled, 99) == percentile(sorted(values), 99) == sorted(values)[99]


def test_percentile_refuses_nothing_and_out_of_range():
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_latency_summary_reports_milliseconds():
    summary = latency_summary([0.001 * i for i in range(1, 101)])  # 1..100 ms
    assert summary["n"] == 100
    assert summary["p50_ms"] == pytest.approx(50.5)
    assert summary["p99_ms"] == pytest.approx(99.01)
    assert summary["max_ms"] == pytest.approx(100.0)
    assert latency_summary([]) == {"n": 0}


def test_rates_ratios_and_cost_above_a_floor():
    assert rate(300, 1.5) == 200
    assert rate(5, 0) == 0
    assert ratio(50, 200) == 0.25
    assert ratio(50, 0) is None
    # 100/s costs 10 ms a message, 400/s 2.5 ms: 7.5 ms above the floor
    assert cost_above(100, 400) == pytest.approx(7.5)
    assert cost_above(0, 400) is None


def test_repeated_runs_report_median_and_noise():
    r = repeated([10.0, 30.0, 20.0])
    assert (r["median"], r["min"], r["max"], r["runs"]) == (20.0, 10.0, 30.0, 3)
    assert spread([10.0, 30.0, 20.0]) == 1.0
    assert spread([7.0]) == 0.0


def test_ratios_are_taken_within_a_round_then_the_median():
    def run(per_second):
        return {"per_second": per_second, "latency": {"n": 1, "p50_ms": 1.0, "p99_ms": 2.0}}

    runs = {
        "broker_floor": [run(100), run(400), run(200)],
        "hop_memory_traced": [run(60), run(200), run(80)],  # 60 %, 50 %, 40 % of their own round's floor
        "hop_memory_untraced": [run(75), run(200), run(100)],  # tracing: 80 %, 100 %, 80 %
    }
    f = compute(runs)
    assert f["hop_storage_excluded"]["ratio_to_floor"] == pytest.approx(0.5)
    # not the ratio of the medians (80 / 200 = 40 %)
    assert f["hop_storage_excluded"]["ratios"] == pytest.approx([0.6, 0.5, 0.4])
    assert f["tracing"]["storage_excluded_ratio"] == pytest.approx(0.8)
    target = next(t for t in f["targets"] if t["target"].startswith("hop throughput"))
    assert target["met"] is True
    tracing = next(t for t in f["targets"] if "storage excluded" in t["target"] and "tracing" in t["target"])
    assert tracing["measured"] == pytest.approx(0.2) and tracing["met"] is False


def _subject_run(subjects: int, access_p99_ms: float) -> dict:
    lat = {"n": 30, "p50_ms": access_p99_ms / 2, "p99_ms": access_p99_ms}
    floor = {"n": 30, "p50_ms": 50.0, "p99_ms": 100.0}
    return {"per_second": 1.5, "requests": 16, "seconds": 10.7, "latency": lat, "loaded_latency": lat,
            "erasure_latency": {"n": 15, "p50_ms": 400.0, "p99_ms": 900.0}, "floor_latency": floor,
            "submit_reply": lat, "access_by_service": {}, "erasure_by_service": {},
            "log_records_per_subject": {}, "seed": {"subjects": subjects}}


def test_subject_requests_are_reported_as_multiples_of_their_floor_in_the_same_run():
    f = compute({"subject_requests": [_subject_run(10_000, 1200.0)]})
    assert f["subject_access"]["latency_ratio"] == {"p50": pytest.approx(12.0), "p99": pytest.approx(12.0)}
    assert f["subject_erasure"]["latency_ratio"] == {"p50": pytest.approx(8.0), "p99": pytest.approx(9.0)}


def test_subject_access_target_is_judged_only_at_the_size_it_names():
    def judged(subjects: int, p99: float):
        [target] = [t for t in compute({"subject_requests": [_subject_run(subjects, p99)]})["targets"]
                    if t["target"].startswith("subject access")]
        return target["met"], target["measured"]

    assert judged(10_000, 1900.0) == (True, pytest.approx(1.9))
    assert judged(10_000, 2100.0) == (False, pytest.approx(2.1))
    assert judged(3_000, 1000.0) == (None, pytest.approx(1.0))  # shown, not judged


def test_runs_rendered_together_keep_the_first_header_and_take_the_largest_size_as_headline():
    from bench.__main__ import merged

    full = {"when": "first", "machine": {"cores": 2}, "stages": {"subject_requests": "item 6"},
            "runs": {"broker_floor": [{"per_second": 100.0}], "subject_requests": [_subject_run(1_000, 500.0)]}}
    large = {"when": "second", "machine": {"cores": 2}, "stages": {"subject_requests": "item 6"},
             "runs": {"subject_requests": [_subject_run(10_000, 9000.0)]}}
    results = merged([full, large])
    assert results["when"] == "first"
    assert len(results["runs"]["subject_requests"]) == 2 and results["runs"]["broker_floor"]
    assert results["figures"]["subject_rights"]["subjects"] == 10_000
    assert [row["subjects"] for row in results["figures"]["subject_rights"]["sizes"]] == [1_000, 10_000]
    assert full["runs"]["subject_requests"] == [_subject_run(1_000, 500.0)]  # the inputs are not changed
