"""Imported cohorts in experiments: `patients: {dir, select, sample, seed}`."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from theramind.errors import ConfigError
from theramind.simulation import ExperimentConfig
from theramind.simulation.experiment import PatientSample, load_experiment
from theramind.simulation.profiles import load_profiles

PROFILES = load_profiles()


def _exp(**patients: object) -> ExperimentConfig:
    return ExperimentConfig.model_validate(
        {"name": "c", "counselors": ["plain"], "patients": dict(patients)}
    )


def test_dir_moves_to_profiles_dir_relative_to_the_experiment_file(tmp_path: Path) -> None:
    path = tmp_path / "exp.yaml"
    spec = {"dir": "cohort", "sample": 3, "seed": 1}
    path.write_text(yaml.safe_dump({"name": "c", "counselors": ["plain"], "patients": spec}))
    exp = load_experiment(path)
    assert exp.profiles_dir == str((tmp_path / "cohort").resolve())
    assert isinstance(exp.patients, PatientSample)
    assert (exp.patients.sample, exp.patients.seed) == (3, 1)


def test_sample_is_seeded_and_drawn_from_the_selection() -> None:
    a = [p.id for p in _exp(sample=5, seed=0).choose(PROFILES)]
    b = [p.id for p in _exp(sample=5, seed=0).choose(PROFILES)]
    others = {tuple(p.id for p in _exp(sample=5, seed=s).choose(PROFILES)) for s in range(1, 6)}
    assert a == b and len(set(a)) == 5 and set(a) <= set(PROFILES)
    assert any(set(o) != set(a) for o in others)  # another seed, another cohort
    zh = _exp(select=["language:zh"], sample=4, seed=3).choose(PROFILES)
    assert len(zh) == 4 and all(p.language == "zh" for p in zh)
    everyone = _exp(select=["category:anxiety"]).choose(PROFILES)
    assert everyone and all(p.category == "anxiety" for p in everyone)


def test_bad_cohorts_get_clear_errors() -> None:
    with pytest.raises(ConfigError, match="more than the"):
        _exp(select=["category:anxiety"], sample=500).choose(PROFILES)
    with pytest.raises(ValueError, match="sample"):
        _exp(sample=0)
    with pytest.raises(ValueError, match=r"extra|samples"):
        _exp(samples=3)
    with pytest.raises(ValueError, match="disagree"):
        ExperimentConfig.model_validate(
            {"name": "c", "counselors": ["plain"], "profiles_dir": "a", "patients": {"dir": "b"}}
        )
