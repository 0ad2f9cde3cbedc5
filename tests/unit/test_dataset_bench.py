"""The ESConv import benchmark's generator: valid records import, its faults are all named."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the `benchmarks` package

from benchmarks.import_esconv import generate

from theramind import load_config
from theramind.datasets import import_profiles


def test_generated_records_import_with_every_fault_rejected(tmp_path: Path) -> None:
    records = generate(40, seed=3)
    source = tmp_path / "gen.json"
    source.write_text(json.dumps(records))
    therapies = load_config().taxonomy().therapy_ids
    result = import_profiles("esconv", source, tmp_path / "out", therapies, seed=3)
    faulty = {str(i) for i in range(40) if i % 10 == 9}
    assert {r.record for r in result.rejected} == faulty
    assert len(result.written) == 40 - len(faulty)
    assert result.defaulted["responsiveness"] == len(result.written)
