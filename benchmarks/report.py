"""The benchmark report: machine and versions, goals, and the Markdown tables; JSON beside it."""

from __future__ import annotations

import importlib.metadata
import json
import math
import os
import platform
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

PACKAGES = (
    "theramind",
    "langgraph",
    "chromadb",
    "llama_cpp_python",
    "sentence-transformers",
    "torch",
)


def cpu_model() -> str:
    """Return the CPU model name (from /proc/cpuinfo where there is one)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """Describe the machine the benchmark ran on."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }


def versions() -> dict[str, str]:
    """Return the installed versions of the packages the figures depend on."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def load_average() -> list[float]:
    """Return the 1, 5 and 15 minute load averages (empty where unsupported)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


# --- goals ---------------------------------------------------------------------------------------


def _get(data: dict[str, Any], *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


Goal = tuple[str, tuple[str, ...], str, Callable[[float], bool]]
GOALS: tuple[Goal, ...] = (
    (
        "TheraMind model calls per turn (max)",
        ("cost", "figures", "calls_per_turn_max"),
        "≤ 3",
        lambda v: v <= 3,
    ),
    (
        "TheraMind calls in sequence per turn (max)",
        ("cost", "figures", "in_sequence_max"),
        "≤ 3",
        lambda v: v <= 3,
    ),
    (
        "TheraMind prompt tokens/turn, session {last} ÷ session 1, equal turn positions",
        ("cost", "figures", "growth_equal_position"),
        "≤ 1.15",
        lambda v: v <= 1.15,
    ),
    (
        "Prompt tokens/turn, TheraMind ÷ reference (session {at})",
        ("cost", "figures", "theramind_over_reference"),
        "≤ 0.4",
        lambda v: v <= 0.4,
    ),
    (
        "Framework overhead per turn, p50 (ms)",
        ("overhead", "summary", "overhead_ms", "p50"),
        "≤ 30",
        lambda v: v <= 30,
    ),
    (
        "Throughput speed-up at the top concurrency",
        ("throughput", "figures", "speedup_at_top"),
        "≥ 20×",
        lambda v: v >= 20,
    ),
    (
        "Embedded end to end, wall time incl. load (s)",
        ("embedded", "summary", "wall_s"),
        "≤ 180",
        lambda v: v <= 180,
    ),
)


def goals(scenarios: dict[str, Any]) -> list[dict[str, Any]]:
    """Check every goal whose figure was measured."""
    rows = []
    slots = {
        "at": _get(scenarios, "cost", "figures", "compare_at_session"),
        "last": _get(scenarios, "cost", "sessions"),
    }
    for name, path, goal, ok in GOALS:
        value = _get(scenarios, *path)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        rows.append(
            {
                "figure": name.format(**slots),
                "measured": value,
                "goal": goal,
                "met": bool(ok(value)),
            }
        )
    return rows


# --- Markdown ------------------------------------------------------------------------------------


def fmt(value: Any, digits: int = 1) -> str:
    """Format a number for a table ('–' for missing)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """Return a Markdown table's lines."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += [
        "| " + " | ".join(fmt(c) if not isinstance(c, str) else c for c in r) + " |" for r in rows
    ]
    return lines


def _dist(d: dict[str, Any] | None) -> list[str]:
    d = d or {}
    return [fmt(d.get("p50")), fmt(d.get("p95")), fmt(d.get("max"))]


def _injected(latency: float | None) -> str:
    if latency is None:
        return "the server's own latency (none injected)"
    return f"{fmt(latency * 1000, 0)} ms injected per model call"


def _memory(memory: dict[str, Any]) -> str:
    return f"{memory.get('backend', 'chroma')} + {memory.get('embedding_model', 'default')}"


def _calls(row: dict[str, Any]) -> str:
    rec, wire = row.get("recorded_calls_per_turn"), row.get("wire_calls_per_turn")
    return f"{fmt(rec, 2)} / {fmt(wire, 2)}"


def _by_request(rows: list[dict[str, Any]]) -> str:
    first, last = rows[0].get("prompt_tokens_by_request"), rows[-1].get("prompt_tokens_by_request")
    if not first or not last:
        return "- (no per-request breakdown)"
    parts = [
        f"{name} {fmt(first.get(name), 0)} → {fmt(last.get(name), 0)}"
        for name in sorted({*first, *last})
    ]
    return (
        f"- TheraMind prompt tokens/turn by request, session {rows[0]['session']} → "
        f"{rows[-1]['session']}: " + ", ".join(parts) + " (text = the reply)."
    )


def _cost(cost: dict[str, Any]) -> list[str]:
    ours, ref = cost["counselors"]["theramind"], cost["counselors"]["reference"]
    lat = cost.get("injected_latency_s")
    lines = [
        f"## 1. Cost per turn — patient `{cost['patient']}`, seed {cost['seed']}, "
        f"{cost['sessions']} sessions, {_injected(lat)}, TheraMind memory "
        f"{_memory(cost['memory'])}",
        "",
        "Calls: *rec* = the framework's own record (TurnRecord.calls, attempts counted), "
        "*wire* = the server's log. *Seq* = most calls run one after another in a turn, "
        "from the logged request intervals. Tokens from the server's log (≈ chars/4, the "
        "same rule for both counselors).",
        "",
    ]
    ref_rows = {r["session"]: r for r in ref["cost"]["sessions"]}
    rows = []
    for r in ours["cost"]["sessions"]:
        b = ref_rows.get(r["session"], {})
        rows.append(
            [
                r["session"],
                r["turns"],
                _calls(r),
                r["in_sequence_max"],
                fmt(r["prompt_tokens_per_turn"], 0),
                fmt(r["completion_tokens_per_turn"], 0),
                f"{r['open_calls']} + {r['close_calls']}",
                b.get("turns"),
                _calls(b),
                b.get("in_sequence_max"),
                fmt(b.get("prompt_tokens_per_turn"), 0),
                fmt(b.get("completion_tokens_per_turn"), 0),
            ]
        )
    lines += table(
        [
            "session",
            "TM turns",
            "TM calls/turn rec / wire",
            "TM seq",
            "TM prompt tok/turn",
            "TM compl. tok/turn",
            "TM calls open + close",
            "Ref turns",
            "Ref calls/turn rec / wire",
            "Ref seq",
            "Ref prompt tok/turn",
            "Ref compl. tok/turn",
        ],
        rows,
    )
    fig = cost["figures"]
    oc, rc = ours["cost"], ref["cost"]
    lines += [
        "",
        f"- Equal-length sessions, turn k against turn k (the first "
        f"{fmt(fig.get('equal_length_turns'))} turns of every session): "
        f"session {cost['sessions']} ÷ session 1 "
        f"**{fmt(fig.get('growth_equal_position'), 2)}** (reference: "
        f"{fmt(fig.get('reference_growth_equal_position'), 2)}).",
        f"- Averaged over whole sessions of unequal length, session {cost['sessions']} ÷ "
        "session 1: "
        f"**{fmt(fig['growth_last_over_first'], 2)}** (reference: "
        f"{fmt(fig['reference_growth_last_over_first'], 2)}); session {cost['sessions']} ÷ "
        f"session 2: {fmt(fig.get('growth_last_over_second'), 2)}; least-squares change from "
        f"session 2 on: {fmt(fig.get('slope_per_session_from_2'))} tokens/turn per session "
        f"(reference: {fmt(fig.get('reference_slope_per_session_from_2'))}).",
        _by_request(oc["sessions"]),
        f"- TheraMind ÷ reference prompt tokens/turn at session {fig['compare_at_session']}: "
        f"**{fmt(fig['theramind_over_reference'], 3)}**.",
        f"- Calls per turn including session open and close calls: TheraMind "
        f"{fmt(oc['calls_per_turn_with_open_and_close'], 2)}, reference "
        f"{fmt(rc['calls_per_turn_with_open_and_close'], 2)}.",
        f"- Cross-check, record vs wire: turns whose call counts differ: TheraMind "
        f"{oc['turns_where_record_and_wire_differ']}, reference "
        f"{rc['turns_where_record_and_wire_differ']}; prompt tokens recorded / wire: TheraMind "
        f"{fmt(oc['prompt_tokens_recorded'])} / {fmt(oc['prompt_tokens_wire'])}, reference "
        f"{fmt(rc['prompt_tokens_recorded'])} / {fmt(rc['prompt_tokens_wire'])}.",
    ]
    if oc.get("server_counters"):
        lines.append(
            f"- Server counters (/metrics deltas): TheraMind {oc['server_counters']}, "
            f"reference {rc['server_counters']}."
        )
    return lines


def _latency(cost: dict[str, Any]) -> list[str]:
    lat = cost.get("injected_latency_s")
    lines = [
        "",
        f"## 2. Turn latency — {_injected(lat)} (same run)",
        "",
    ]
    rows = []
    for name, label in (("theramind", "TheraMind"), ("reference", "Reference")):
        r = cost["counselors"][name]["latency"]
        rows.append(
            [
                label,
                r["wall_ms"]["n"],
                *_dist(r["wall_ms"]),
                fmt(r.get("wall_over_injected_p50"), 2),
                fmt(r["model_ms"]["p50"]),
            ]
        )
    lines += table(
        [
            "counselor",
            "turns",
            "p50 ms",
            "p95 ms",
            "max ms",
            "p50 ÷ injected latency",
            "model time p50 ms",
        ],
        rows,
    )
    warm = cost["counselors"]["theramind"].get("embedder_warmup_s")
    lines += ["", f"- The embedding model was loaded before the first turn ({fmt(warm, 2)} s)."]
    recall = cost["counselors"]["theramind"]["latency"].get("recall")
    if recall:
        lines += [
            f"- recall runs before the perceive call, on the turn's thread: recall p50 "
            f"{fmt(recall['recall_ms']['p50'])} ms; it overlapped a model call in "
            f"{recall['overlapped_turns']} of {recall['turns']} turns (hidden p50 "
            f"{fmt(recall['hidden_ms']['p50'])} ms, {fmt(recall['hidden_share'] * 100, 0)} % "
            "of all recall time).",
        ]
    return lines


def _overhead(ov: dict[str, Any]) -> list[str]:
    s = ov["summary"]
    lines = [
        "",
        f"## 3. Framework overhead per turn — {fmt(ov['memories_at_start'])} memories for the "
        f"patient, {_injected(ov.get('injected_latency_s'))}, "
        f"{s['turns']} warm turns, memory {_memory(ov['memory'])}, checkpointer "
        f"{ov.get('checkpointer', 'sqlite')}",
        "",
        "Overhead = turn wall time − time inside model calls (the router's own clock).",
        "",
    ]
    rows = [
        ["overhead (wall − model time)", *_dist(s["overhead_ms"])],
        ["overhead by TurnRecord.calls[].latency_s", *_dist(s["overhead_by_recorded_calls_ms"])],
        ["process CPU time per turn", *_dist(s["cpu_ms"])],
        ["turn wall time", *_dist(s["wall_ms"])],
        ["model time", *_dist(s["model_ms"])],
    ]
    rows += [[f"part: {label}", *_dist(d)] for label, d in s["parts_ms"].items()]
    lines += table(["per turn", "p50 ms", "p95 ms", "max ms"], rows)
    lines += [
        "",
        "- Parts are time spent inside those calls, summed per turn; checkpoint writes run "
        "partly in the background, so parts may overlap.",
        f"- Cold first turn (excluded above): {fmt(s['cold_first_turn_overhead_ms'])} "
        f"ms overhead. Embedding model loaded before the clock in "
        f"{fmt(ov.get('embedder_warmup_s'), 2)} s; seeding the memories took "
        f"{fmt(ov['seeding_s'])} s.",
    ]
    return lines


def _memory_label(memory: Any) -> str:
    """Render a memory configuration (a mapping or an older report's text)."""
    if isinstance(memory, dict):
        return f"{memory.get('backend')} + {memory.get('embedding_model')}"
    return str(memory)


def _throughput(tp: dict[str, Any]) -> list[str]:
    lat = tp.get("injected_latency_s")
    lines = [
        "",
        f"## 4. Throughput — {tp['patients']} patients × {tp['sessions_per_patient']} sessions, "
        f"{_injected(lat)}, memory: "
        f"{_memory_label(tp['memory'])}",
        "",
        "*CPU busy* = this process's CPU time ÷ (wall time × usable cores); the stub server's "
        "own process is not counted.",
        "",
    ]
    rows = [
        [
            r["concurrency"],
            r["patients"],
            r["sessions"],
            r["failed_patients"],
            r["turns"],
            fmt(r["calls_per_turn"], 2),
            r["wire_calls"],
            fmt(r["wall_s"]),
            fmt(r["sessions_per_min"]),
            fmt(r["turns_per_s"], 2),
            *_dist(r["turn_latency_ms"])[:2],
            fmt((r.get("cpu_share") or math.nan) * 100, 0),
            fmt(r.get("cpu_ms_per_turn")),
            fmt((r.get("conditions_after") or {}).get("load_1m"), 2),
            fmt((r.get("conditions_after") or {}).get("cpu_reference_ms")),
            f"{fmt(r['speedup'], 2)}×",
        ]
        for r in tp["levels"]
    ]
    lines += table(
        [
            "concurrency",
            "patients",
            "sessions",
            "failed",
            "turns",
            "calls/turn",
            "wire calls",
            "wall s",
            "sessions/min",
            "turns/s",
            "turn p50 ms",
            "turn p95 ms",
            "CPU busy %",
            "CPU ms/turn",
            "load 1m",
            "ref loop ms",
            "speed-up",
        ],
        rows,
    )
    return lines


def _embedded(em: dict[str, Any]) -> list[str]:
    s = em["summary"]
    lines = ["", f"## 5. End to end on `{em['model']}` — 1 patient, scripted patient side", ""]
    lines += table(
        [
            "sessions",
            "turns",
            "calls",
            "wall s (incl. load)",
            "process CPU s",
            "first open s (incl. load)",
            "model s",
            "prompt tok",
            "completion tok",
            "completion tok / model s",
            "tok / wall s",
            "turns with a fallback",
        ],
        [
            [
                s["sessions"],
                s["turns"],
                s["calls"],
                fmt(s["wall_s"]),
                fmt(s.get("cpu_s")),
                fmt(s["first_open_s"]),
                fmt(s["model_s"]),
                s["prompt_tokens"],
                s["completion_tokens"],
                fmt(s["completion_tokens_per_model_s"]),
                fmt(s["tokens_per_wall_s"]),
                s["turns_with_fallback"],
            ]
        ],
    )
    lines += ["", f"- Turns per session {s['turns_per_session']}, ended by {s['end_reasons']}."]
    return lines


def markdown(report: dict[str, Any]) -> str:
    """Render the report as Markdown."""
    m, v = report["machine"], report["versions"]
    lines = [
        f"# TheraMind benchmarks ({report['mode']})",
        "",
        f"- Machine: {m['cpu']}, {m['cores']} cores ({m['usable_cores']} usable), {m['os']}.",
        "- Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()) + ".",
        f"- Model endpoint: {report['endpoint']}. Run {report['started_at']}, "
        f"{fmt(report['wall_s'])} s in all.",
        "- Load average (1/5/15 min) before → after each scenario: "
        + "; ".join(f"{k} {b} → {a}" for k, (b, a) in report["load"].items())
        + ".",
        "- Timings are wall-clock on a shared machine: other work on the same cores adds noise "
        "and inflates every latency and overhead figure; counts and token figures are exact.",
        "",
        "## Goals",
        "",
    ]
    lines += table(
        ["figure", "measured", "goal", "met"],
        [[g["figure"], fmt(g["measured"], 2), g["goal"], g["met"]] for g in report["goals"]],
    )
    sc = report["scenarios"]
    if "cost" in sc:
        lines += ["", *_cost(sc["cost"]), *_latency(sc["cost"])]
    if "overhead" in sc:
        lines += _overhead(sc["overhead"])
    if "throughput" in sc:
        lines += _throughput(sc["throughput"])
    if "embedded" in sc:
        lines += _embedded(sc["embedded"])
    for name, error in report.get("errors", {}).items():
        lines += ["", f"**Scenario {name} failed:** `{error}`"]
    return "\n".join(lines) + "\n"


def write(report: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    """Write `benchmark.json` and `benchmark.md` into `out_dir`; return both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    js, md = out_dir / "benchmark.json", out_dir / "benchmark.md"
    js.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    md.write_text(markdown(report), encoding="utf-8")
    return js, md
