"""`make bench` / `python -m bench`: measure werkbrug against its floors and write the figures.

    python -m bench                 # the full run (about 15 minutes on 2 cores with the embedded database)
    python -m bench --quick         # tiny sizes: checks the machinery works (seconds)
    python -m bench --publish       # also write docs/benchmarks.md and docs/benchmarks.svg
    python -m bench --profile       # run the hop workers under pyinstrument (var/bench/profiles/)
    python -m bench --only hop_memory_traced,broker_floor
    python -m bench --only subject_requests --subjects 3000   # item 6 alone, at another size
    python -m bench --only subject_requests --subjects 10000 --subject-access 10   # fewer, slow requests
    python -m bench --render var/bench/results.json --publish   # re-render the page from a run
    python -m bench --render A.json B.json --publish   # one page from several runs (B: item 6 at 10,000)

Writes var/bench/results.json (every run and the figures), var/bench/benchmarks.md and .svg.
Storage: an embedded server per run, or a real MongoDB when MONGODB_URL is set. Uses the RabbitMQ at
AMQP_URL in vhosts of its own (`wbb-…`, one per run of a stage, as werkbrug has one per namespace), deleted
afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import aio_pika

from bench import figures, report, stages, subjects
from bench.harness import FULL, QUICK, ROOT, Context
from shared.config import Settings


@dataclass(frozen=True)
class Stage:
    """One configuration the benchmark runs: `repeats` times, interleaved with the others, or once."""

    name: str
    title: str
    run: Callable[[Context, int], Awaitable[dict[str, Any]]]
    repeated: bool = True


# The order within one round; each stage's figures are computed in bench/figures.py.
STAGES = [
    Stage("broker_floor", "broker floor: bare aio-pika consume → publish with confirms → ack", stages.broker_floor),
    Stage("storage_floor", "storage floor: the hop's database work straight through PyMongo", stages.storage_floor),
    Stage("hop_memory_traced", "werkbrug hop, in-memory unit of work (storage excluded), tracing on",
          partial(stages.hop, storage="memory", traced=True)),
    Stage("hop_memory_untraced", "werkbrug hop, in-memory unit of work, tracing off",
          partial(stages.hop, storage="memory", traced=False)),
    Stage("hop_mongo_traced", "werkbrug hop, MongoDB unit of work, tracing on",
          partial(stages.hop, storage="mongo", traced=True)),
    Stage("hop_mongo_untraced", "werkbrug hop, MongoDB unit of work, tracing off",
          partial(stages.hop, storage="mongo", traced=False)),
    Stage("lifecycle", "full lifecycles: referral to last invoice through every service", stages.lifecycle,
          repeated=False),
    Stage("subject_requests", "data-subject access and erasure across every service, many subjects stored",
          subjects.subject_requests, repeated=False),
]


async def rabbitmq_version(connection: aio_pika.abc.AbstractRobustConnection) -> str:
    properties = getattr(connection.transport.connection, "server_properties", {}) or {}
    version = properties.get("version", "unknown")
    return version.decode() if isinstance(version, bytes) else str(version)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    sizes = QUICK if args.quick else FULL
    if args.repeats:
        sizes = sizes.__class__(**{**sizes.as_dict(), "repeats": args.repeats})
    base = Settings()
    subjects = args.subjects or sizes.subjects
    if subjects != sizes.subjects:
        sizes = sizes.__class__(**{**sizes.as_dict(), "subjects": subjects})
    if args.subject_access:  # fewer requests where each takes long (the embedded server at 10,000 subjects)
        n = args.subject_access
        sizes = sizes.__class__(**{**sizes.as_dict(), "subject_access": n, "subject_erasures": max(2, n // 3),
                                   "subject_parallel": max(4, n // 3)})
    settings = base.model_copy(update={"namespace": f"wbb-{uuid.uuid4().hex[:6]}"})
    out = Path(args.out)
    log_dir = out / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    profile_dir = out / "profiles" if args.profile else None
    if profile_dir:
        profile_dir.mkdir(parents=True, exist_ok=True)
    chosen = [s for s in STAGES if not args.only or s.name in args.only.split(",")]
    from infra.identities import deprovision, provision

    provision(settings)  # the run's own vhost (each stage's runs make theirs too)
    connection = await aio_pika.connect_robust(settings.broker_url())
    started = time.perf_counter()
    runs: dict[str, list[dict[str, Any]]] = {s.name: [] for s in chosen}
    try:
        ctx = Context(settings, sizes, out, settings.mongodb_url, connection, log_dir, profile_dir)
        header = {
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {**stages.machine(), "rabbitmq": await rabbitmq_version(connection)},
            "backend": ctx.backend, "sizes": sizes.as_dict(), "quick": args.quick,
            "settings": {"prefetch": settings.prefetch, "relay_interval_s": settings.relay_interval},
        }
        print(f"werkbrug bench · {header['backend']} · {header['machine']['cores']} cores · "
              f"Python {header['machine']['python']} · RabbitMQ {header['machine']['rabbitmq']}", flush=True)
        if any(s.name == "subject_requests" for s in chosen):
            print(f"  subject_requests at {sizes.subjects:,} subjects", flush=True)
        for round_no in range(sizes.repeats):
            for stage in chosen:
                if not stage.repeated and round_no > 0:
                    continue
                t0 = time.perf_counter()
                result = await stage.run(ctx, round_no)
                runs[stage.name].append(result)
                print(f"  round {round_no + 1}/{sizes.repeats} {stage.name:<20} {_line(result)}"
                      f"  ({time.perf_counter() - t0:.0f}s)", flush=True)
    finally:
        await connection.close()
        deprovision(settings)
    header["machine"]["load_average_after"] = stages.machine()["load_average"]
    results = {**header, "seconds": round(time.perf_counter() - started, 1),
               "stages": {s.name: s.title for s in chosen}, "runs": runs}
    results["figures"] = figures.compute(runs)
    return results


def _line(result: dict[str, Any]) -> str:
    latency = result.get("latency", {})
    return (f"{result.get('per_second', 0):>9.1f}/s  p50 {latency.get('p50_ms', 0):>8.1f} ms"
            f"  p99 {latency.get('p99_ms', 0):>8.1f} ms")


def merged(files: list[dict[str, Any]]) -> dict[str, Any]:
    """Results rendered together: the first file's header (machine, sizes, when), the runs of all."""
    results = dict(files[0])
    runs: dict[str, list[dict[str, Any]]] = {}
    for other in files:
        for name, stage_runs in other["runs"].items():
            runs.setdefault(name, []).extend(stage_runs)
        results["stages"] = {**other.get("stages", {}), **results.get("stages", {})}
    results["runs"] = runs
    results["figures"] = figures.compute(runs)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one round: checks that it works")
    parser.add_argument("--repeats", type=int, default=0, help="rounds of the repeated stages (default 5)")
    parser.add_argument("--only", default="", help="comma-separated stage names")
    parser.add_argument("--subjects", type=int, default=0,
                        help="data subjects seeded for the subject_requests stage (default 10,000)")
    parser.add_argument("--subject-access", type=int, default=0,
                        help="access requests one at a time in the subject_requests stage (default 30; "
                             "erasures and parallel requests a third of it)")
    parser.add_argument("--out", default=str(ROOT / "var" / "bench"))
    parser.add_argument("--profile", action="store_true", help="run hop workers under pyinstrument")
    parser.add_argument("--publish", action="store_true", help="also write docs/benchmarks.md and .svg")
    parser.add_argument("--render", metavar="RESULTS_JSON", nargs="+",
                        help="do not run: render the page from a results file (several: the first's header, "
                             "every file's runs, e.g. a full run and a subject_requests run at another size)")
    args = parser.parse_args()
    # SIGTERM as Ctrl-C: the stages' clean-up (worker processes, database servers, queues) still runs.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    out = Path(args.out)
    if args.render:
        results = merged([json.loads(Path(path).read_text()) for path in args.render])
    else:
        results = asyncio.run(run(args))
        (out / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
        stamp = results["when"].replace(":", "").replace("-", "")[:15]
        (out / f"results-{stamp}.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    report.write(results, out / "benchmarks.md", out / "benchmarks.svg", chart_link="benchmarks.svg")
    if args.publish:
        report.write(results, ROOT / "docs" / "benchmarks.md", ROOT / "docs" / "benchmarks.svg",
                     chart_link="benchmarks.svg")
    print(report.summary(results))
    print(f"written: {out / 'benchmarks.md'}" + ("" if args.render else f", {out / 'results.json'}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
