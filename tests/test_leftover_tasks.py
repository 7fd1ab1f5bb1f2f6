"""The suite's guard against tasks a test leaves running (``tests/conftest.py``): they are
finished while the database is up instead of at the event loop's close, and one that will
not end names itself."""

from __future__ import annotations

import asyncio

import pytest

from tests import conftest


async def test_a_task_left_running_is_cancelled_before_the_next_test() -> None:
    before = set(asyncio.all_tasks())
    forever = asyncio.create_task(asyncio.sleep(3600))
    quick = asyncio.create_task(asyncio.sleep(0.01, "done"))
    await conftest.finish_leftover_tasks(before, "here")
    assert forever.cancelled()
    assert quick.result() == "done"  # waited for, not cancelled


async def test_a_task_that_ignores_its_cancellation_fails_with_its_stack(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(conftest, "LEFTOVER_GRACE_S", 0.01)
    monkeypatch.setattr(conftest, "LEFTOVER_CANCEL_S", 0.05)
    release = asyncio.Event()

    async def stubborn() -> None:
        while not release.is_set():
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                continue  # what a retry loop that swallows its cancellation does

    before = set(asyncio.all_tasks())
    task = asyncio.create_task(stubborn(), name="stubborn")
    with pytest.raises(pytest.fail.Exception, match=r"(?s)here left tasks .*stubborn"):
        await conftest.finish_leftover_tasks(before, "here")
    release.set()
    task.cancel()
    await task
    assert task.done()
