"""Memory writes off the reply's path: one worker, in order, and reads wait for their patient."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_all
from typing import Any

logger = logging.getLogger(__name__)


def _report(key: str, exc: BaseException) -> None:
    logger.warning("memory write for %s failed: %s", key, exc)


class BackgroundWriter:
    """Run writes on one worker thread in submission order; `flush` waits for a key's writes.

    A turn's memory write need not delay the reply: the next read of that patient's memory
    waits for it (`flush(key)`), so nothing reads around a pending write. After `close`,
    writes run inline. A write that fails is logged; the caller's record stays authoritative.
    """

    def __init__(self, name: str = "memory-writer") -> None:
        """Create the writer; its thread starts with the first write."""
        self._name = name
        self._executor: ThreadPoolExecutor | None = None
        self._pending: dict[str, list[Future[Any]]] = {}
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, key: str, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> None:
        """Queue `fn(*args, **kwargs)` under `key`; run it now if the writer is closed."""
        with self._lock:
            future = None
            if not self._closed:
                if self._executor is None:
                    self._executor = ThreadPoolExecutor(1, thread_name_prefix=self._name)
                future = self._executor.submit(fn, *args, **kwargs)
                self._pending.setdefault(key, []).append(future)
        if future is None:
            self._run_inline(key, fn, *args, **kwargs)
        else:  # outside the lock: a finished future runs its callback at once
            future.add_done_callback(lambda f: self._done(key, f))

    def _run_inline(self, key: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        try:
            fn(*args, **kwargs)
        except Exception as exc:  # same contract as a background write
            _report(key, exc)

    def _done(self, key: str, future: Future[Any]) -> None:
        with self._lock:
            queue = self._pending.get(key, [])
            if future in queue:
                queue.remove(future)
            if not queue:
                self._pending.pop(key, None)
        exc = future.exception()
        if exc is not None:
            _report(key, exc)

    def pending(self, key: str | None = None) -> int:
        """Return how many writes are queued or running (for one key, or all)."""
        with self._lock:
            if key is not None:
                return len(self._pending.get(key, ()))
            return sum(len(q) for q in self._pending.values())

    def flush(self, key: str | None = None, timeout: float | None = None) -> None:
        """Wait until the writes queued so far (for one key, or all) have finished."""
        with self._lock:
            if key is not None:
                futures = list(self._pending.get(key, ()))
            else:
                futures = [f for q in self._pending.values() for f in q]
        if futures:
            wait_all(futures, timeout=timeout)

    def close(self) -> None:
        """Finish every queued write, stop the worker; later writes run inline."""
        with self._lock:
            self._closed = True
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)
