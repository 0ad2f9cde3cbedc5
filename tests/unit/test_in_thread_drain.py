"""A cancelled `in_thread` call waits for its thread, even when every task is cancelled."""

from __future__ import annotations

import asyncio
import threading

from theramind.simulation import orchestrator
from theramind.simulation.orchestrator import in_thread


def test_cancelling_every_task_does_not_end_a_call_still_in_its_thread() -> None:
    # At exit `asyncio.run` cancels every pending task; the track must still wait for its
    # call before it goes on to close the store the call is using.
    entered, release = threading.Event(), threading.Event()
    order: list[str] = []

    def blocking() -> None:
        entered.set()
        release.wait(10)
        order.append("call returned")

    async def track() -> None:
        try:
            await in_thread(blocking)
        finally:
            order.append("track closes")

    async def main() -> None:
        task = asyncio.create_task(track())
        while not entered.is_set():
            await asyncio.sleep(0.01)
        for pending in asyncio.all_tasks():
            if pending is not asyncio.current_task():
                pending.cancel()
        await asyncio.sleep(0.2)
        assert not task.done(), order
        release.set()
        await asyncio.gather(task, return_exceptions=True)

    try:
        asyncio.run(main())
    finally:
        release.set()
        orchestrator._DRAINING.clear()
    assert order == ["call returned", "track closes"]
