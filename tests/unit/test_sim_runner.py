"""The orchestrator and the experiment runner: reproducible, resumable, concurrent, robust."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from scripted import Counselor, scripted_backend
from theramind.errors import ConfigError
from theramind.llm import BaseBackend, Request, ScriptedBackend
from theramind.simulation import ExperimentConfig, ExperimentRunner, strip_volatile
from theramind.simulation.profiles import load_profiles
from theramind.simulation.records import EndReason, SessionLog, TrackKey, TurnLog, read_jsonl

PROFILES = load_profiles()
THERAPY_INDEX = ["cbt", "act", "psychodynamic", "person_centred", "dbt", "sfbt", "mi", "ipt"]


def experiment(tmp_path: Path, **changes: Any) -> ExperimentConfig:
    """A small scripted experiment with persistent (chroma + hashing) memory."""
    data: dict[str, Any] = {
        "name": "t",
        "counselors": ["theramind"],
        "patients": ["anxiety-priya", "addiction-sam", "family-aisha"],
        "sessions": 2,
        "round_cap": 8,
        "seeds": [0],
        "models": {"counselor": "scripted", "patient": "scripted", "judge": "scripted"},
        "memory": {"backend": "chroma", "embedding_model": "hashing", "min_similarity": 0.1},
        "concurrency": 3,
        "output_dir": str(tmp_path / "run"),
    }
    data.update(changes)
    return ExperimentConfig.model_validate(data)


def records(run_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """Turn and session records without clock readings, in a canonical order."""
    out = {}
    for name in ("turns", "sessions"):
        lines = (run_dir / f"{name}.jsonl").read_text().splitlines()
        rows = [strip_volatile(json.loads(line)) for line in lines]
        out[name] = sorted(rows, key=lambda r: json.dumps(r, sort_keys=True))
    return out


class Exploding:
    """A counselor handler that raises on its N-th perception call."""

    def __init__(self, after: int, inner: Counselor | None = None) -> None:
        self.after = after
        self.inner = inner or Counselor()
        self.seen = 0

    def __call__(self, request: Request) -> Any:
        if request.schema_name == "Perception":
            self.seen += 1
            if self.seen == self.after:
                raise RuntimeError("injected fault")
        return self.inner(request)


def faulty(patient_id: str, after: int) -> Callable[[TrackKey], Mapping[str, BaseBackend]]:
    def backends(key: TrackKey) -> Mapping[str, BaseBackend]:
        if key.patient_id == patient_id:
            return {"counselor": ScriptedBackend(handler=Exploding(after))}
        return {"counselor": scripted_backend(Counselor())}

    return backends


def healthy(key: TrackKey) -> Mapping[str, BaseBackend]:
    return {"counselor": scripted_backend(Counselor())}


def test_scripted_run_is_reproducible(tmp_path: Path) -> None:
    exp = experiment(tmp_path, counselors=["theramind", "plain"])
    first = ExperimentRunner(exp, output_dir=tmp_path / "a").run()
    second = ExperimentRunner(exp, output_dir=tmp_path / "b", concurrency=1).run()
    assert first.tracks_failed == second.tracks_failed == 0
    assert first.sessions_run == 12
    a, b = records(tmp_path / "a"), records(tmp_path / "b")
    assert a == b
    assert len(a["sessions"]) == 12 and len(a["turns"]) >= 12 * 2


def test_records_carry_decisions_latent_state_and_usage(tmp_path: Path) -> None:
    exp = experiment(tmp_path, patients=["anxiety-priya"])
    ExperimentRunner(exp, backends=healthy).run()
    run = tmp_path / "run"
    turns = read_jsonl(run / "turns.jsonl", TurnLog)
    sessions = read_jsonl(run / "sessions.jsonl", SessionLog)
    assert [s.session_no for s in sessions] == [1, 2]
    t = turns[0]
    assert t.response.strategy and t.response.therapies and t.response.perception
    assert t.usage["counselor"].calls == len(t.response.calls) >= 2
    s = sessions[0]
    assert s.end_reason.value in {"patient_closed", "counselor_closed", "round_cap"}
    assert s.latent_before.sessions == 0 and s.latent_after.sessions == 1
    assert s.questionnaire.alliance.bond >= 1
    assert s.counselor_close and s.counselor_close["decision"]["therapies"]
    assert s.usage["counselor"].calls > sum(
        len(x.response.calls) for x in turns if x.session_no == 1
    )
    assert s.model_ids == {"counselor": "scripted:scripted", "patient": "scripted-patient"}
    header = json.loads((run / "run.json").read_text())
    assert header["experiment"]["name"] == "t" and "settings" in header


def test_a_failing_patient_does_not_stop_the_others(tmp_path: Path) -> None:
    exp = experiment(tmp_path)
    summary = ExperimentRunner(exp, backends=faulty("addiction-sam", after=2)).run()
    assert summary.tracks_failed == 1
    assert summary.failures[0].patient_id == "addiction-sam"
    assert "injected fault" in (summary.failures[0].error or "")
    assert summary.failures[0].end_reason == EndReason.COUNSELOR_ERROR
    sessions = read_jsonl(tmp_path / "run" / "sessions.jsonl", SessionLog)
    done = {(s.patient_id, s.session_no) for s in sessions}
    assert {("anxiety-priya", 2), ("family-aisha", 2)} <= done
    assert not any(pid == "addiction-sam" for pid, _ in done)


def test_resume_after_a_crash_mid_session_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    exp = experiment(tmp_path)
    ExperimentRunner(exp, output_dir=tmp_path / "clean", backends=healthy).run()
    # Fail on the 7th perception: inside session 2, after some of its turns were recorded.
    broken = ExperimentRunner(exp, backends=faulty("family-aisha", after=7)).run()
    assert broken.tracks_failed == 1 and broken.failures[0].session_no == 2
    partial = read_jsonl(tmp_path / "run" / "turns.jsonl", TurnLog)
    assert any(t.patient_id == "family-aisha" and t.session_no == 2 for t in partial)
    resumed = ExperimentRunner(exp, backends=healthy).run()
    assert resumed.tracks_failed == 0
    assert resumed.sessions_resumed == 5 and resumed.sessions_run == 1
    assert records(tmp_path / "run") == records(tmp_path / "clean")


def test_resume_after_a_kill_redoes_the_unrecorded_session(tmp_path: Path) -> None:
    exp = experiment(tmp_path, patients=["anxiety-priya", "youth-noah"])
    ExperimentRunner(exp, backends=healthy).run()
    run = tmp_path / "run"
    expected = records(run)
    # A kill after the counselor closed session 2 but before its record was written,
    # with a torn half-line at the end of the file.
    lines = (run / "sessions.jsonl").read_text().splitlines()
    keep = [ln for ln in lines if not ('"youth-noah"' in ln and '"session_no":2' in ln)]
    (run / "sessions.jsonl").write_text("\n".join(keep) + "\n" + keep[0][:40])
    summary = ExperimentRunner(exp, backends=healthy).run()
    assert summary.sessions_run == 1
    assert records(run) == expected


def test_a_second_run_of_a_finished_experiment_does_nothing(tmp_path: Path) -> None:
    exp = experiment(tmp_path, patients=["rare-ada"], sessions=1)
    ExperimentRunner(exp).run()
    again = ExperimentRunner(exp).run()
    assert again.sessions_run == 0 and again.sessions_resumed == 1


def test_resume_refuses_a_changed_experiment(tmp_path: Path) -> None:
    ExperimentRunner(experiment(tmp_path, patients=["rare-ada"], sessions=1)).run()
    with pytest.raises(ConfigError, match="different experiment"):
        ExperimentRunner(experiment(tmp_path, patients=["rare-ada"], sessions=2)).run()
    fresh = ExperimentRunner(
        experiment(tmp_path, patients=["rare-ada"], sessions=2), fresh=True
    ).run()
    assert fresh.sessions_run == 2


def test_concurrency_keeps_each_patients_sessions_in_order(tmp_path: Path) -> None:
    patients = ["anxiety-priya", "addiction-sam", "family-aisha", "youth-noah", "rare-ada"]
    exp = experiment(tmp_path, patients=patients, counselors=["plain"], sessions=3, concurrency=5)
    ExperimentRunner(exp).run()
    run = tmp_path / "run"
    order: dict[str, list[tuple[int, int]]] = {}
    for line in (run / "turns.jsonl").read_text().splitlines():
        t = json.loads(line)
        order.setdefault(t["patient_id"], []).append((t["session_no"], t["round"]))
    interleaved = False
    for seq in order.values():
        assert seq == sorted(seq)
    first = [
        json.loads(line)["patient_id"] for line in (run / "turns.jsonl").read_text().splitlines()
    ][:10]
    interleaved = len(set(first)) > 1
    assert interleaved  # patients really ran at the same time
    sessions = read_jsonl(run / "sessions.jsonl", SessionLog)
    for pid in patients:
        assert [s.session_no for s in sessions if s.patient_id == pid] == [1, 2, 3]


def _forced(therapy: str) -> Callable[[TrackKey], Mapping[str, BaseBackend]]:
    pick = THERAPY_INDEX.index(therapy)

    def backends(key: TrackKey) -> Mapping[str, BaseBackend]:
        return {"counselor": scripted_backend(Counselor(pick=pick))}

    return backends


def test_latent_state_improves_only_under_the_responsive_therapy(tmp_path: Path) -> None:
    assert PROFILES["anxiety-priya"].responsiveness["cbt"] > 0.8
    assert PROFILES["anxiety-priya"].responsiveness["mi"] < 0.2

    def final_score(therapy: str) -> tuple[float, float, list[str]]:
        exp = experiment(
            tmp_path, patients=["anxiety-priya"], sessions=4, output_dir=str(tmp_path / therapy)
        )
        ExperimentRunner(exp, backends=_forced(therapy)).run()
        logs = read_jsonl(tmp_path / therapy / "sessions.jsonl", SessionLog)
        first, last = logs[0].latent_before, logs[-1].latent_after
        used = sorted({t for s in logs for t in s.therapies})
        return first.phq9 + first.gad7, last.phq9 + last.gad7, used

    start, good, used_good = final_score("cbt")
    _, wrong, used_wrong = final_score("mi")
    assert used_good == ["cbt"] and used_wrong == ["mi"]
    assert good < start - 3
    assert wrong >= start - 1
    assert good < wrong


def test_the_counselor_never_receives_latent_fields(tmp_path: Path) -> None:
    backend = scripted_backend(Counselor())
    exp = experiment(tmp_path, patients=["love-mara", "emotion-jonas"], sessions=2)
    ExperimentRunner(exp, backends={"counselor": backend}).run()
    prompts = "\n".join(m["content"] for r in backend.calls for m in r.messages).lower()
    assert prompts
    for pid in ("love-mara", "emotion-jonas"):
        profile = PROFILES[pid]
        for secret in profile.guidance:
            assert secret.lower() not in prompts
        for therapy, value in profile.responsiveness.items():
            assert f"{therapy}: {value}" not in prompts
    for word in ("phq", "gad-7", "gad7", "responsiveness", "latent", "alliance"):
        assert word not in prompts


def test_baselines_follow_their_call_patterns(tmp_path: Path) -> None:
    exp = experiment(
        tmp_path, patients=["stress-luis"], counselors=["plain", "reference"], sessions=3
    )
    ExperimentRunner(exp).run()
    turns = read_jsonl(tmp_path / "run" / "turns.jsonl", TurnLog)
    plain = [t for t in turns if t.counselor == "plain"]
    ref = [t for t in turns if t.counselor == "reference"]
    assert all(len(t.response.calls) == 1 for t in plain)
    assert all(len(t.response.calls) == 11 for t in ref)
    growth = {
        no: max(t.response.prompt_tokens for t in ref if t.session_no == no) for no in (1, 2, 3)
    }
    assert growth[1] < growth[2] < growth[3]  # the whole history is re-sent every turn
    # The published pattern: 4 of the 11 see the whole history, the reply this session only.
    first = ref[0].response.calls
    assert [c.agent for c in first].count("reference.memory") == 2
    assert [c.agent for c in first].count("reference.stage") == 2
    later = [t for t in ref if t.session_no == 3]
    assert later[0].response.calls[0].prompt_tokens > first[0].prompt_tokens  # history grows
    utterance_only = later[0].response.calls[1]  # the emotion check sees only the message
    assert utterance_only.prompt_tokens * 2 < later[0].response.calls[0].prompt_tokens
    sessions = read_jsonl(tmp_path / "run" / "sessions.jsonl", SessionLog)
    for s in (s for s in sessions if s.counselor == "reference"):
        assert s.counselor_close and s.counselor_close["therapy"]
        assert s.counselor_close["calls"] == []  # none at close
        # two opening calls, eleven a round, none at close
        assert s.usage["counselor"].calls == 2 + 11 * s.rounds


def test_fixed_therapy_and_no_memory_ablations(tmp_path: Path) -> None:
    counselor = Counselor(verdict="not_effective")
    exp = experiment(
        tmp_path,
        patients=["social-omar"],
        sessions=3,
        counselors=["theramind", "fixed_therapy", "theramind_no_memory"],
    )
    ExperimentRunner(exp, backends=lambda key: {"counselor": scripted_backend(counselor)}).run()
    sessions = read_jsonl(tmp_path / "run" / "sessions.jsonl", SessionLog)
    therapies = {
        c: [s.therapies for s in sessions if s.counselor == c]
        for c in ("theramind", "fixed_therapy", "theramind_no_memory")
    }
    assert len({tuple(t) for t in therapies["fixed_therapy"]}) == 1
    assert len({tuple(t) for t in therapies["theramind"]}) > 1  # switched after "not effective"
    turns = read_jsonl(tmp_path / "run" / "turns.jsonl", TurnLog)
    assert all(not t.response.recalled for t in turns if t.counselor == "theramind_no_memory")
    assert (tmp_path / "run" / "homes" / "theramind" / "s0" / "social-omar").is_dir()


def test_round_cap_ends_sessions(tmp_path: Path) -> None:
    exp = experiment(
        tmp_path, patients=["rare-bruno"], sessions=1, round_cap=2, counselors=["plain"]
    )
    ExperimentRunner(exp).run()
    (s,) = read_jsonl(tmp_path / "run" / "sessions.jsonl", SessionLog)
    assert s.rounds == 2 and s.end_reason.value == "round_cap"


def test_experiment_config_validation(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown roles"):
        experiment(tmp_path, models={"therapist": "scripted"})
    with pytest.raises(ValueError, match="names must be unique"):
        experiment(tmp_path, counselors=["plain", "plain"])
    with pytest.raises(ValueError):
        experiment(tmp_path, counselors=["oracle"])
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_worker_processes_give_the_same_records(tmp_path: Path) -> None:
    exp = experiment(
        tmp_path,
        patients=["anxiety-priya", "youth-zoe", "stress-hana"],
        counselors=["theramind", "plain"],
    )
    one = ExperimentRunner(exp, output_dir=tmp_path / "one").run()
    notes: list[str] = []
    two = ExperimentRunner(
        exp, output_dir=tmp_path / "two", workers=2, on_progress=lambda n: notes.append(n.kind)
    ).run()
    assert one.sessions_run == two.sessions_run == 12 and two.tracks_failed == 0
    assert two.turns_run == one.turns_run
    assert notes.count("session") == 12 and notes.count("track_done") == 6
    assert records(tmp_path / "one") == records(tmp_path / "two")
