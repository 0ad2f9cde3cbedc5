"""The benchmark suite, run tiny on the stub and a scripted model, so it cannot rot."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the `benchmarks` package

from benchmarks.endpoint import ExternalEndpoint, StubEndpoint, WireCall, plausible_reply
from benchmarks.measure import calls_in_sequence, distribution, overlap, percentile
from benchmarks.run import benchmark, parse_args
from benchmarks.scenarios import Plan, cost_and_latency

TINY = Plan(
    sessions=2,
    latency_s=0.02,
    compare_at=2,
    memory={"backend": "inmemory", "embedding_model": "hashing"},
    overhead_memories=20,
    overhead_sessions=1,
    throughput_patients=2,
    throughput_sessions=1,
    concurrency=(1, 2),
    throughput_latency_s=0.01,
    embedded_model={"backend": "scripted", "model": "scripted"},
    embedded_sessions=1,
    embedded_turns=2,
)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The whole suite, tiny, once for the module."""
    out = tmp_path_factory.mktemp("bench")
    report, js, md = benchmark(TINY, out_dir=out, mode="tiny")
    return {"report": report, "json": js, "md": md}


def test_every_scenario_runs_and_both_reports_are_written(run: dict[str, Any]) -> None:
    report = run["report"]
    assert report["errors"] == {}
    assert set(report["scenarios"]) == {"cost", "overhead", "throughput", "embedded"}
    assert json.loads(run["json"].read_text())["mode"] == "tiny"
    text = run["md"].read_text()
    for heading in (
        "## Goals",
        "## 1. Cost per turn",
        "## 2. Turn latency",
        "## 3. Framework",
        "## 4. Throughput",
        "## 5. End to end",
    ):
        assert heading in text
    assert report["machine"]["cores"] >= 1 and report["machine"]["cpu"]
    for name in ("python", "theramind", "langgraph", "chromadb", "llama_cpp_python"):
        assert report["versions"][name]
    assert {g["figure"].split(",")[0] for g in report["goals"]} >= {
        "TheraMind model calls per turn (max)"
    }


def test_cost_theramind_stays_within_three_calls_and_the_baseline_costs_more(
    run: dict[str, Any],
) -> None:
    cost = run["report"]["scenarios"]["cost"]
    ours = cost["counselors"]["theramind"]["cost"]
    ref = cost["counselors"]["reference"]["cost"]
    assert ours["turns"] >= 4 and ref["turns"] >= 4
    assert ours["calls_per_turn_max"] <= 3 and ours["recorded_calls_per_turn_max"] <= 3
    assert ours["in_sequence_max"] <= 3
    assert ref["calls_per_turn_mean"] > ours["calls_per_turn_mean"]
    assert ref["in_sequence_max"] > ours["in_sequence_max"]
    # the framework's records agree with the stub's own log
    assert ours["turns_where_record_and_wire_differ"] == 0
    assert ref["turns_where_record_and_wire_differ"] == 0
    fig = cost["figures"]
    assert fig["theramind_over_reference"] < 1
    assert fig["reference_growth_last_over_first"] > 1  # the transcript grows
    assert fig["growth_last_over_first"] is not None
    lat = cost["counselors"]["theramind"]["latency"]
    assert lat["wall_ms"]["n"] == ours["turns"] and lat["wall_ms"]["p50"] > 0


def test_overhead_seeds_memories_and_splits_the_turn(run: dict[str, Any]) -> None:
    ov = run["report"]["scenarios"]["overhead"]
    assert ov["memories_at_start"] == 20
    summary = ov["summary"]
    assert summary["turns"] >= 1
    assert summary["overhead_ms"]["p50"] >= 0
    assert {"recall", "remember", "checkpoint", "store"} <= set(summary["parts_ms"])


def test_throughput_counts_every_level(run: dict[str, Any]) -> None:
    tp = run["report"]["scenarios"]["throughput"]
    levels = {row["concurrency"]: row for row in tp["levels"]}
    assert set(levels) == {1, 2}
    for row in levels.values():
        assert row["failed_patients"] == 0 and row["sessions"] == 2
        assert row["wire_calls"] >= 3 * row["turns"]
    assert levels[1]["speedup"] == 1.0
    assert tp["figures"]["top_concurrency"] == 2


def test_end_to_end_runs_on_a_scripted_model(run: dict[str, Any]) -> None:
    em = run["report"]["scenarios"]["embedded"]["summary"]
    assert em["turns"] == 2 and em["sessions"] == 1
    assert em["calls"] >= 2 * 3
    assert em["completion_tokens"] > 0


def test_an_external_server_is_logged_on_the_client_side(tmp_path: Path) -> None:
    plan = Plan(**{**vars(TINY), "sessions": 1, "compare_at": 1})
    with StubEndpoint(latency_s=0.01) as stub:
        external = ExternalEndpoint(stub.base_url, model="stub")
        assert external.counters() is None  # the stub publishes no /metrics
        result = cost_and_latency(external, plan, tmp_path)
        served = len(stub.since(0))
    ours = result["counselors"]["theramind"]["cost"]
    logged = external.mark()
    assert served == logged > 0
    assert ours["calls_per_turn_max"] <= 3 and ours["turns_where_record_and_wire_differ"] == 0


def test_calls_in_sequence_counts_the_critical_path() -> None:
    def call(start: float, end: float) -> WireCall:
        return WireCall(start, end, 1, 1)

    serial = [call(0, 1), call(1.1, 2), call(2.1, 3)]
    assert calls_in_sequence(serial) == 3
    parallel = [call(0, 1), call(0.05, 1.05), call(1.1, 2)]
    assert calls_in_sequence(parallel) == 2
    assert calls_in_sequence([]) == 0
    assert overlap((0, 1), (0.5, 2)) == pytest.approx(0.5)
    assert overlap((0, 1), (2, 3)) == 0.0


def test_statistics() -> None:
    assert percentile([1, 2, 3, 4], 50) == pytest.approx(2.5)
    d = distribution([0.01, 0.02, 0.03], 1000)
    assert d["n"] == 3 and d["p50"] == pytest.approx(20.0) and d["max"] == pytest.approx(30.0)


def test_the_stub_answer_is_a_calm_patient_who_stays() -> None:
    schema = {
        "type": "object",
        "properties": {
            "risk_level": {"enum": ["none", "low", "moderate", "high"]},
            "risk_evidence": {"type": "string"},
            "wants_to_end": {"type": "boolean"},
        },
    }
    for i in range(20):
        body = {
            "messages": [{"role": "user", "content": f"message {i}"}],
            "response_format": {"type": "json_schema", "json_schema": {"schema": schema}},
        }
        value = json.loads(plausible_reply(body) or "{}")
        assert value["risk_level"] == "none" and value["wants_to_end"] is False
    assert plausible_reply({"messages": [{"role": "user", "content": "hi"}]}) is None


def test_command_line_defaults() -> None:
    args = parse_args(["--quick", "--only", "cost", "--out", "x"])
    assert args.quick and args.only == "cost" and args.out == Path("x")
