"""Records appended to JSONL files: the folder made when needed, lines whole under threads."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

from theramind.simulation.records import JsonlWriter, RunEvent, read_jsonl


def event(i: int) -> RunEvent:
    return RunEvent(kind="retry", experiment="e", seed=i, detail={"pad": "x" * 2000})


def test_the_folder_is_made_on_first_write_and_again_if_it_went_away(tmp_path: Path) -> None:
    path = tmp_path / "runs" / "deep" / "events.jsonl"
    writer = JsonlWriter(path)
    writer.append(event(1))
    writer.append(event(2))
    shutil.rmtree(tmp_path / "runs")
    writer.append(event(3))
    assert [r.seed for r in read_jsonl(path, RunEvent)] == [3]


def test_lines_from_many_threads_never_interleave(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    writers = [JsonlWriter(path) for _ in range(4)]  # separate writers, as separate processes

    def write(k: int) -> None:
        for i in range(50):
            writers[k].append(event(k * 100 + i))

    threads = [threading.Thread(target=write, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seeds = sorted(r.seed or 0 for r in read_jsonl(path, RunEvent))
    assert seeds == sorted(k * 100 + i for k in range(4) for i in range(50))
