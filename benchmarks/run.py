"""Run the benchmark suite and write `benchmark.json` and `benchmark.md`.

    python -m benchmarks.run [--quick] [--base-url URL] [--out DIR] [--only cost,overhead,...]

Without `--base-url` every model call goes to the stub server (in a child process); with it,
to that OpenAI-compatible server (e.g. `vllm serve`), which also serves scenario 5 in place
of the embedded model. Scenarios: cost (1 and 2), overhead (3), throughput (4), embedded (5).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import report as rep
from benchmarks.endpoint import Endpoint, InProcessEndpoint, open_endpoint
from benchmarks.scale import throughput
from benchmarks.scenarios import (
    QUICK,
    Plan,
    cost_and_latency,
    cost_figures,
    embedded,
    overhead,
)

log = logging.getLogger("benchmarks")
Scenario = Callable[[Endpoint, Plan, Path], dict[str, Any]]
SCENARIOS: dict[str, Scenario] = {
    "cost": cost_and_latency,
    "overhead": overhead,
    "throughput": throughput,
    "embedded": embedded,
}


def benchmark(
    plan: Plan,
    *,
    out_dir: Path,
    names: Sequence[str] = tuple(SCENARIOS),
    base_url: str | None = None,
    mode: str = "full",
    endpoint_options: dict[str, Any] | None = None,
    workdir: Path | None = None,
) -> tuple[dict[str, Any], Path, Path]:
    """Run the named scenarios; write the JSON and Markdown reports; return them with paths.

    A scenario that fails is reported as failed; the others still run.
    """
    unknown = sorted(set(names) - set(SCENARIOS))
    if unknown:
        raise ValueError(f"unknown scenarios {unknown}; choose from {sorted(SCENARIOS)}")
    started, clock = datetime.now(UTC), time.perf_counter()
    results: dict[str, Any] = {}
    errors: dict[str, str] = {}
    load: dict[str, tuple[list[float], list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="theramind-bench-") as tmp:
        root = workdir or Path(tmp)
        with open_endpoint(base_url, **(endpoint_options or {})) as endpoint:
            label = endpoint.label
            for name in names:
                target: Endpoint = endpoint
                if name == "embedded" and base_url is None:
                    target = InProcessEndpoint(plan.embedded_model, "in-process (llama.cpp)")
                before = rep.load_average()
                log.info("scenario %s: starting", name)
                try:
                    results[name] = SCENARIOS[name](target, plan, root / name)
                except Exception as exc:  # one broken scenario must not lose the others
                    log.exception("scenario %s failed", name)
                    errors[name] = f"{type(exc).__name__}: {exc}"
                load[name] = (before, rep.load_average())
    report = {
        "mode": mode,
        "endpoint": label,
        "started_at": started.isoformat(timespec="seconds"),
        "wall_s": round(time.perf_counter() - clock, 1),
        "machine": rep.machine(),
        "versions": rep.versions(),
        "load": load,
        "plan": vars(plan),
        "goals": rep.goals(results),
        "scenarios": results,
        "errors": errors,
    }
    js, md = rep.write(report, out_dir)
    return report, js, md


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a few minutes)")
    parser.add_argument(
        "--base-url",
        default=os.environ.get("THERAMIND_BASE_URL"),
        help="an OpenAI-compatible server instead of the stub (default: $THERAMIND_BASE_URL)",
    )
    parser.add_argument(
        "--model",
        default=os.environ.get("THERAMIND_MODEL", "default"),
        help="the served model's name, with --base-url",
    )
    parser.add_argument(
        "--structured-output",
        default="json_schema",
        choices=("json_schema", "json_object", "prompt"),
        help="with --base-url",
    )
    parser.add_argument(
        "--embedded-threads",
        type=int,
        default=None,
        help="llama.cpp threads for scenario 5 (default: the preset's, i.e. every core)",
    )
    parser.add_argument("--out", type=Path, default=Path("runs/benchmarks"), help="report folder")
    parser.add_argument(
        "--only", default=",".join(SCENARIOS), help=f"comma-separated subset of {list(SCENARIOS)}"
    )
    parser.add_argument(
        "--render", type=Path, default=None, help="only re-render the Markdown of a JSON report"
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="log progress")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the suite from the command line; print the Markdown report."""
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    if args.render:
        report = json.loads(args.render.read_text(encoding="utf-8"))
        cost = report["scenarios"].get("cost")
        if cost:
            cost["figures"] = cost_figures(cost["counselors"], Plan(**report["plan"]))
        report["goals"] = rep.goals(report["scenarios"])
        _, md = rep.write(report, args.out)
        print(md.read_text(encoding="utf-8"))
        return 0
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    options = (
        {"model": args.model, "structured_output": args.structured_output}
        if args.base_url
        else None
    )
    plan = QUICK if args.quick else Plan()
    if args.embedded_threads:
        model = {"preset": "embedded", "n_threads": args.embedded_threads}
        plan = dataclasses.replace(plan, embedded_model=model)
    _, js, md = benchmark(
        plan,
        out_dir=args.out,
        names=names,
        base_url=args.base_url,
        mode="quick" if args.quick else "full",
        endpoint_options=options,
    )
    print(md.read_text(encoding="utf-8"))
    print(f"Wrote {js} and {md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
