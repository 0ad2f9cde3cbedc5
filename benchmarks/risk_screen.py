"""Benchmark the layered risk screen: detection, false alarms and latency per message.

Usage: python benchmarks/risk_screen.py [--cases tests/data/risk_cases.yaml]
       [--multilingual tests/data/risk_multilingual.yaml] [--heldout] [--repeat 5]

Reports detection and false-alarm rates per language and kind for each layer (patterns,
semantic) and for their combination, and the per-message latency of the whole screen with the
semantic layer loaded.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import yaml

from theramind.records import RISK_ORDER, RiskScreen, is_elevated
from theramind.safety import screen
from theramind.safety.semantic import semantic_screen

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
DEFAULT_CASES = DATA / "risk_cases.yaml"
MULTILINGUAL = DATA / "risk_multilingual.yaml"
HELDOUT = DATA / "risk_heldout.yaml"
LAYERS = ("patterns", "semantic", "combined")


def _rate(hits: int, total: int) -> str:
    return f"{hits / total:6.1%} ({hits}/{total})" if total else "   n/a"


def _level(result: RiskScreen, layer: str) -> str:
    if layer == "combined":
        return result.level
    verdict = result.layer(layer)
    return verdict.level if verdict is not None and verdict.available else "none"


def evaluate(cases: list[dict[str, Any]]) -> list[str]:
    """Return report lines on the English set: detection and false alarms per group."""
    lines = []
    results = [(c, screen(c["text"])) for c in cases]
    risk = [(c, r) for c, r in results if c["level"] != "none"]
    benign = [(c, r) for c, r in results if c["level"] == "none"]
    for layer in LAYERS:
        met = sum(RISK_ORDER[_level(r, layer)] >= RISK_ORDER[c["level"]] for c, r in risk)
        elevated = sum(is_elevated(_level(r, layer)) for _, r in risk)
        alarms = sum(_level(r, layer) != "none" for _, r in benign)
        lines.append(
            f"{layer:<9} level >= expected {_rate(met, len(risk))}  elevated "
            f"{_rate(elevated, len(risk))}  false alarms {_rate(alarms, len(benign))}"
        )
    for group in sorted({c["group"] for c, _ in results}):
        part = [(c, r) for c, r in results if c["group"] == group]
        if part[0][0]["level"] == "none":
            ok = sum(r.level != "none" for _, r in part)
            lines.append(f"  {group:<28} false alarms {_rate(ok, len(part))}")
        else:
            ok = sum(RISK_ORDER[r.level] >= RISK_ORDER[c["level"]] for c, r in part)
            lines.append(f"  {group:<28} detection    {_rate(ok, len(part))}")
    missed = [c["text"] for c, r in risk if RISK_ORDER[r.level] < RISK_ORDER[c["level"]]]
    flagged = [f"{c['text']} -> {r.level} {r.categories}" for c, r in benign if r.level != "none"]
    lines += [f"  missed: {t}" for t in missed] + [f"  false alarm: {t}" for t in flagged]
    return lines


def by_language(cases: list[dict[str, Any]]) -> list[str]:
    """Return a table of detection (risk kinds) or false alarms (the rest) per language and kind.

    Detection counts a level at or above the expected one; a false alarm is any level.
    """
    results = [(c, screen(c["text"])) for c in cases]
    head = f"{'lang':<5} {'kind':<15} {'n':>3}  " + "  ".join(f"{x:>10}" for x in LAYERS)
    lines = [head]
    keys = sorted({(c["lang"], c["kind"]) for c in cases}, key=lambda k: (k[0] != "en", k))
    for lang, kind in keys:
        part = [(c, r) for c, r in results if c["lang"] == lang and c["kind"] == kind]
        cells = []
        for layer in LAYERS:
            if part[0][0]["level"] == "none":
                n = sum(_level(r, layer) != "none" for _, r in part)
                cells.append(f"FA {n:>2}/{len(part):<3}")
            else:
                n = sum(RISK_ORDER[_level(r, layer)] >= RISK_ORDER[c["level"]] for c, r in part)
                cells.append(f"{n:>2}/{len(part):<3}    ")
        lines.append(f"{lang:<5} {kind:<15} {len(part):>3}  " + "  ".join(cells))
    for lang in sorted({c["lang"] for c in cases}, key=lambda x: (x != "en", x)):
        mine = [(c, r) for c, r in results if c["lang"] == lang]
        risk = [(c, r) for c, r in mine if c["level"] != "none"]
        safe = [r for c, r in mine if c["level"] == "none"]
        cells = []
        for layer in LAYERS:
            det = sum(RISK_ORDER[_level(r, layer)] >= RISK_ORDER[c["level"]] for c, r in risk)
            fa = sum(_level(r, layer) != "none" for r in safe)
            cells.append(f"{layer} det {_rate(det, len(risk))} FA {_rate(fa, len(safe))}")
        detected = sum(r.language == lang for _, r in mine)
        lines.append(f"{lang}: " + "; ".join(cells) + f"; language detected {detected}/{len(mine)}")
    for c, r in results:
        wrong = (
            r.level != "none"
            if c["level"] == "none"
            else RISK_ORDER[r.level] < RISK_ORDER[c["level"]]
        )
        if wrong:
            lines.append(f"  wrong ({c['lang']} {c['kind']}): {c['text']} -> {r.level}")
    return lines


def latency(texts: list[str], repeat: int) -> list[str]:
    """Return report lines on per-message latency of the whole screen (models loaded)."""
    times = []
    for _ in range(repeat):
        for text in texts:
            start = time.perf_counter()
            screen(text)
            times.append((time.perf_counter() - start) * 1000)
    times.sort()
    p95 = times[int(0.95 * (len(times) - 1))]
    patterns_only = []
    for text in texts:
        start = time.perf_counter()
        screen(text, semantic=False)
        patterns_only.append((time.perf_counter() - start) * 1000)
    return [
        f"whole screen per message: p50 {statistics.median(times):.2f} ms, p95 {p95:.2f} ms, "
        f"max {times[-1]:.2f} ms over {len(times)} calls",
        f"patterns layer alone: p50 {statistics.median(patterns_only):.3f} ms",
    ]


def main() -> None:
    """Run the benchmark and print the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=Path, default=DEFAULT_CASES)
    parser.add_argument("--multilingual", type=Path, default=MULTILINGUAL)
    parser.add_argument("--heldout", action="store_true", help="score the held-out batch too")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    start = time.perf_counter()
    screen("warm up", semantic=False)
    print(f"load + compile patterns: {(time.perf_counter() - start) * 1000:.1f} ms")
    start = time.perf_counter()
    semantic_screen()
    print(f"load semantic layer (encoder + classifier): {time.perf_counter() - start:.2f} s")
    cases = yaml.safe_load(args.cases.read_text(encoding="utf-8"))["cases"]
    print(f"\n== English set {args.cases.name} ({len(cases)})")
    for line in evaluate(cases):
        print(line)
    multi = yaml.safe_load(args.multilingual.read_text(encoding="utf-8"))["cases"]
    print(f"\n== per language and kind {args.multilingual.name} ({len(multi)})")
    for line in by_language(multi):
        print(line)
    if args.heldout:
        held = yaml.safe_load(HELDOUT.read_text(encoding="utf-8"))["cases"]
        print(f"\n== held-out batch {HELDOUT.name} ({len(held)})")
        for line in by_language(held):
            print(line)
    print()
    for line in latency([c["text"] for c in multi + cases[:100]], args.repeat):
        print(line)


if __name__ == "__main__":
    main()
