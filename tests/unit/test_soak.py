"""A small soak: faulty server, two processes on one store, SIGKILLs; nothing escapes or is lost."""

from __future__ import annotations

from pathlib import Path

from benchmarks.soak import run


def test_a_small_soak_loses_nothing_and_leaks_nothing(tmp_path: Path) -> None:
    report = run(3, 2, 2, 1.5, tmp_path / "soak", kill_gap_s=1.5)
    assert report["sigkills"] >= 1, report
    assert report["faulted_requests"] > 0, report
    assert report["acknowledged_turns"] > 0, report
    assert report["exceptions_escaped"] == 0, report
    assert report["worker_crashes"] == 0, report
    assert report["acknowledged_lost"] == 0, report
    assert report["duplicated"] == 0, report
    assert report["sessions_misnumbered"] == 0, report
    assert report["cross_patient_items"] == 0, report
