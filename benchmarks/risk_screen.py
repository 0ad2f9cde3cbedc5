"""Benchmark the deterministic risk screen: detection, false alarms and latency per message.

Usage: python benchmarks/risk_screen.py [--cases tests/data/risk_cases.yaml] [--repeat 20]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import yaml

from theramind.records import RISK_ORDER, is_elevated
from theramind.safety import load_patterns, screen

DEFAULT_CASES = Path(__file__).resolve().parents[1] / "tests" / "data" / "risk_cases.yaml"


def _rate(hits: int, total: int) -> str:
    return f"{hits / total:6.1%} ({hits}/{total})" if total else "   n/a"


def evaluate(cases: list[dict[str, Any]]) -> list[str]:
    """Return report lines on detection and false alarms per group."""
    lines = []
    results = [(c, screen(c["text"])) for c in cases]
    risk = [(c, r) for c, r in results if c["level"] != "none"]
    benign = [(c, r) for c, r in results if c["level"] == "none"]
    met = sum(RISK_ORDER[r.level] >= RISK_ORDER[c["level"]] for c, r in risk)
    lines.append(f"detection, level >= expected   {_rate(met, len(risk))}")
    elevated = sum(is_elevated(r.level) for _, r in risk)
    lines.append(f"detection, elevated (>= mod.)  {_rate(elevated, len(risk))}")
    for group in sorted({c["group"] for c, _ in risk}):
        part = [(c, r) for c, r in risk if c["group"] == group]
        ok = sum(RISK_ORDER[r.level] >= RISK_ORDER[c["level"]] for c, r in part)
        lines.append(f"  {group:<28} {_rate(ok, len(part))}")
    labelled = [(c, r) for c, r in risk if c.get("category")]
    cat_hits = sum(c["category"] in r.categories for c, r in labelled)
    lines.append(f"category recall (labelled)     {_rate(cat_hits, len(labelled))}")
    alarms = sum(r.level != "none" for _, r in benign)
    lines.append(f"false alarms, any level        {_rate(alarms, len(benign))}")
    for group in sorted({c["group"] for c, _ in benign}):
        part = [r for c, r in benign if c["group"] == group]
        lines.append(f"  {group:<28} {_rate(sum(r.level != 'none' for r in part), len(part))}")
    missed = [c["text"] for c, r in risk if RISK_ORDER[r.level] < RISK_ORDER[c["level"]]]
    flagged = [f"{c['text']} -> {r.level} {r.categories}" for c, r in benign if r.level != "none"]
    lines += [f"  missed: {t}" for t in missed] + [f"  false alarm: {t}" for t in flagged]
    return lines


def latency(texts: list[str], repeat: int) -> list[str]:
    """Return report lines on per-message latency (patterns already loaded and compiled)."""
    load_patterns("en")
    times = []
    for _ in range(repeat):
        for text in texts:
            start = time.perf_counter()
            screen(text)
            times.append((time.perf_counter() - start) * 1000)
    times.sort()
    p95 = times[int(0.95 * (len(times) - 1))]
    long_text = " ".join(texts)[:4000]
    start = time.perf_counter()
    screen(long_text)
    long_ms = (time.perf_counter() - start) * 1000
    return [
        f"latency per message: mean {statistics.fmean(times):.3f} ms, "
        f"median {statistics.median(times):.3f} ms, p95 {p95:.3f} ms, "
        f"max {times[-1]:.3f} ms over {len(times)} calls",
        f"latency for a 4,000-character message: {long_ms:.2f} ms",
    ]


def main() -> None:
    """Run the benchmark and print the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=Path, default=DEFAULT_CASES)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    cases = yaml.safe_load(args.cases.read_text(encoding="utf-8"))["cases"]
    start = time.perf_counter()
    screen("warm up")
    print(f"cases: {args.cases} ({len(cases)})")
    print(f"first call (load + compile patterns): {(time.perf_counter() - start) * 1000:.1f} ms")
    for line in evaluate(cases) + latency([c["text"] for c in cases], args.repeat):
        print(line)


if __name__ == "__main__":
    main()
