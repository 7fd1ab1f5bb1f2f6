"""Waiting for helper tasks without taking over their outcome."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any


async def ended(
    tasks: Sequence[asyncio.Task[Any]], *, ignoring: tuple[type[BaseException], ...] = ()
) -> None:
    """Once every task has ended, however; then the first error one of them ended with,
    unless it is one of ``ignoring`` (a cancelled task's is never raised).

    Not ``await task`` under a suppressed CancelledError: cancelled while waiting, that
    cancels the task and hands the caller the task's CancelledError, which the caller cannot
    tell from its own — the caller's cancellation was swallowed and it went on.
    ``asyncio.wait`` leaves the caller's cancellation alone (and the tasks running)."""
    if tasks:
        await asyncio.wait(tasks)
    for task in tasks:
        if task.cancelled():
            continue
        error = task.exception()
        if error is not None and not isinstance(error, ignoring):
            raise error
