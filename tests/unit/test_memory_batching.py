"""Less work per turn: pooled embedding passes and batched memory writes."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from theramind.memory import HashingEmbedder, InMemoryIndex, VectorMemory
from theramind.memory.batching import BatchingEmbedder


class SlowEmbedder:
    """A hashing embedder that takes a while per pass and counts its passes."""

    def __init__(self, delay_s: float = 0.05, fail: bool = False) -> None:
        self.inner = HashingEmbedder(64)
        self.delay_s = delay_s
        self.fail = fail
        self.calls: list[list[str]] = []
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.inner.name

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            self.calls.append(list(texts))
        time.sleep(self.delay_s)
        if self.fail:
            raise RuntimeError("model down")
        return self.inner.embed(texts)


def _concurrently(n: int, fn: Any) -> list[Any]:
    results: list[Any] = [None] * n
    start = threading.Barrier(n)

    def run(i: int) -> None:
        start.wait()
        try:
            results[i] = fn(i)
        except Exception as exc:  # collected for the assertion
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return results


def test_concurrent_callers_share_passes_and_get_their_own_vectors() -> None:
    slow = SlowEmbedder()
    batched = BatchingEmbedder(slow, cache_size=0)
    texts = [f"session {i} said something about sleep number {i}" for i in range(16)]
    results = _concurrently(16, lambda i: batched.embed([texts[i], "shared focus"]))
    expected = slow.inner.embed(texts)
    focus = slow.inner.embed(["shared focus"])[0]
    for i, rows in enumerate(results):
        assert isinstance(rows, np.ndarray) and rows.shape == (2, 64)
        assert np.allclose(rows[0], expected[i]) and np.allclose(rows[1], focus)
    # Sixteen callers, far fewer forward passes; the shared text is embedded once per pass.
    assert len(slow.calls) < 8
    assert all(call.count("shared focus") == 1 for call in slow.calls)
    assert batched.passes == len(slow.calls)


def test_a_lone_caller_is_not_delayed_and_the_cache_spares_a_second_pass() -> None:
    slow = SlowEmbedder(delay_s=0.0)
    batched = BatchingEmbedder(slow)
    first = batched.embed(["I slept badly", "focus"])
    again = batched.embed(["focus", "I slept badly"])
    assert np.allclose(first[::-1], again)
    assert slow.calls == [["I slept badly", "focus"]]
    assert batched.name == slow.name


def test_a_failed_pass_fails_every_waiting_caller_and_none_hangs() -> None:
    batched = BatchingEmbedder(SlowEmbedder(fail=True), cache_size=0)
    results = _concurrently(6, lambda i: batched.embed([f"text {i}"]))
    assert all(isinstance(r, RuntimeError) for r in results)
    with pytest.raises(RuntimeError, match="model down"):
        batched.embed(["after the failure"])


class CountingIndex(InMemoryIndex):
    """An in-memory index that counts upserts and searches."""

    def __init__(self) -> None:
        super().__init__()
        self.upserts = 0
        self.searches = 0

    def upsert(self, *args: Any, **kwargs: Any) -> None:
        self.upserts += 1
        super().upsert(*args, **kwargs)

    def query_many(self, *args: Any, **kwargs: Any) -> Any:
        self.searches += 1
        return super().query_many(*args, **kwargs)


def test_queued_turn_writes_of_one_patient_go_in_one_upsert() -> None:
    index = CountingIndex()
    memory = VectorMemory(index, HashingEmbedder())
    gate = threading.Event()
    # Hold the writer so several turns' writes queue, as under concurrent load.
    memory._writer.submit("other", gate.wait)
    for turn in range(1, 6):
        memory.remember_soon(
            "p1",
            [("disclosure", f"turn {turn}: the bus was crowded {turn}")],
            session_no=2,
            turn=turn,
        )
    gate.set()
    memory.flush()
    assert index.upserts == 1 and index.searches == 1
    items = memory.export_patient("p1")
    assert [(m.session_no, m.turn) for m in items] == [(2, t) for t in range(1, 6)]


def test_a_batch_skips_duplicates_of_the_store_and_of_itself() -> None:
    index = CountingIndex()
    memory = VectorMemory(index, HashingEmbedder())
    memory.remember("p1", "disclosure", "my dog Biscuit died", session_no=1)
    ids = memory.remember_many(
        "p1",
        [
            ("disclosure", "my dog Biscuit died"),
            ("disclosure", "I started running on Sundays"),
            ("disclosure", "I started running on Sundays"),
            ("summary", "I started running on Sundays"),
        ],
        session_no=2,
    )
    assert ids[0] is None and ids[1] is not None and ids[2] is None and ids[3] is not None
    assert memory.count("p1") == 3
